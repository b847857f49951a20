//! `bridge-backend`: parses flags, loads the config, binds, serves until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use bridge_backend::config::{Config, LogFormat, StoreKind};
use clap::Parser;

/// The bridge backend: evolution and agents sockets, health, status, metrics,
/// bridge reports, the LLM proxy and the dashboard.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML config file (also BRIDGE_CONFIG).
    #[arg(long, env = "BRIDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Port to listen on [default: 8765].
    #[arg(long)]
    port: Option<u16>,
    /// Directory of static files [default: www].
    #[arg(long)]
    www: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Enable the demo fault switch (/api/demo/*; loopback binds only).
    #[arg(long)]
    demo: bool,
    /// Exit after this many milliseconds with no connections and no requests.
    #[arg(long, value_name = "MS")]
    idle_timeout: Option<u64>,
    /// Allow a non-loopback --bind without tokens.
    #[arg(long)]
    allow_insecure_remote: bool,
    /// Where state is kept: memory (this process) or nats (NATS JetStream, for a cluster) [default: memory].
    #[arg(long, value_enum)]
    store: Option<StoreKind>,
    /// The NATS server for --store nats [default: nats://127.0.0.1:4222].
    #[arg(long, value_name = "URL")]
    nats_url: Option<String>,
    /// This node's name in status, metrics and logs [default: generated at start].
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,
    /// Validate the configuration, print it, and exit.
    #[arg(long)]
    check_config: bool,
}

fn load(cli: &Cli) -> Result<Config, bridge_backend::config::ConfigError> {
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(v) = cli.bind {
        config.bind = v;
    }
    if let Some(v) = cli.port {
        config.port = v;
    }
    if let Some(v) = &cli.www {
        config.www_dir = v.clone();
    }
    if let Some(v) = cli.log_format {
        config.log_format = v;
    }
    if cli.demo {
        config.demo = true;
    }
    if let Some(v) = cli.idle_timeout {
        config.idle_timeout_ms = v;
    }
    if cli.allow_insecure_remote {
        config.allow_insecure_remote = true;
    }
    if let Some(v) = cli.store {
        config.store = v;
    }
    if let Some(v) = &cli.nats_url {
        config.nats.url = v.clone();
    }
    if let Some(v) = &cli.node_id {
        config.node_id = v.clone();
    }
    config.validate()?;
    Ok(config)
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
    // A second Ctrl-C means "now": skip the grace period.
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("bridge-backend: second interrupt, exiting without waiting");
            std::process::exit(130);
        }
    });
}

/// What `--check-config` prints in place of a secret.
const REDACTED: &str = "<redacted>";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bridge-backend: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        // Printed configs end up in tickets and chats: secrets are shown as redacted.
        let mut shown = config.clone();
        for t in &mut shown.auth.tokens {
            t.token = REDACTED.into();
        }
        if shown.llm.api_key.is_some() {
            shown.llm.api_key = Some(REDACTED.into());
        }
        shown.nats.url = shown.nats.url_redacted(REDACTED);
        match toml::to_string_pretty(&shown) {
            Ok(text) => println!("# configuration is valid\n{text}"),
            Err(e) => println!("configuration is valid (cannot print it: {e})"),
        }
        return ExitCode::SUCCESS;
    }
    init_logs(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bridge-backend: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bridge-backend: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let local = listener.local_addr().unwrap_or(addr);
        // The store first: a node that cannot reach it says so and exits, before it claims to listen.
        let state = match bridge_backend::AppState::open(config, local).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bridge-backend: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(%local, www = %state.config().www_dir.display(), "listening");
        println!("bridge-backend listening on http://{local}/");
        match bridge_backend::serve(listener, state, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bridge-backend: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
