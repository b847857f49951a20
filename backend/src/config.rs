//! Every setting in one struct, loaded in layers:
//! built-in defaults < TOML file (`--config`) < `BRIDGE_*` environment < flags.
//!
//! Environment names map onto the TOML keys: `BRIDGE_PORT=9000` sets `port`,
//! `BRIDGE_LIMITS__MAX_FRAME_BYTES=1024` sets `limits.max_frame_bytes` (a
//! double underscore separates sections). Values are read as TOML values
//! (numbers, booleans), falling back to strings.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the default `www/` is when the binary runs from a checkout.
const CHECKOUT_WWW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the node keeps its state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In this process's memory: nothing to install; a restart starts over (a new epoch).
    #[default]
    Memory,
    /// On NATS JetStream (`[nats]`): any number of nodes serve one stream; restarts lose nothing.
    Nats,
}

/// The backend's settings. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (default 127.0.0.1: loopback only).
    pub bind: IpAddr,
    /// Port (default 8765; 0 picks a free one).
    pub port: u16,
    /// Static files: the dashboard, the demo page and `pkg/` (default `./www`,
    /// else the checkout's `www/`).
    pub www_dir: PathBuf,
    /// Log format (default text). `RUST_LOG` sets the filter (default `info`).
    pub log_format: LogFormat,
    /// Allow a non-loopback bind without tokens (default false: refused).
    pub allow_insecure_remote: bool,
    /// Exit after this long with no connections and no HTTP requests (ms; 0 = never, the default).
    pub idle_timeout_ms: u64,
    /// Enable the demo fault switch (`/api/demo/faults`; loopback binds only; default false).
    pub demo: bool,
    /// Where state is kept (default `memory`; `nats` needs `[nats]`).
    pub store: StoreKind,
    /// This node's name in status, metrics and logs (default empty: `node-` and 8 random hex
    /// digits, new at every start). 1 to 64 of `A-Z a-z 0-9 . _ -`.
    pub node_id: String,
    /// Per-connection limits.
    pub limits: Limits,
    /// Heartbeats and handshake timing.
    pub heartbeat: Heartbeat,
    /// The evolution socket.
    pub evolution: Evolution,
    /// The agents socket.
    pub agents: Agents,
    /// Bridge reports.
    pub reports: Reports,
    /// Tokens and origins.
    pub auth: Auth,
    /// Graceful shutdown.
    pub shutdown: Shutdown,
    /// The LLM proxy.
    pub llm: Llm,
    /// The NATS store (used when `store = "nats"`).
    pub nats: Nats,
}

impl Default for Config {
    fn default() -> Self {
        let www = if Path::new("www").is_dir() { PathBuf::from("www") } else { PathBuf::from(CHECKOUT_WWW) };
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8765,
            www_dir: www,
            log_format: LogFormat::Text,
            allow_insecure_remote: false,
            idle_timeout_ms: 0,
            demo: false,
            store: StoreKind::Memory,
            node_id: String::new(),
            limits: Limits::default(),
            heartbeat: Heartbeat::default(),
            evolution: Evolution::default(),
            agents: Agents::default(),
            reports: Reports::default(),
            auth: Auth::default(),
            shutdown: Shutdown::default(),
            llm: Llm::default(),
            nats: Nats::default(),
        }
    }
}

/// Per-connection limits, shared by both sockets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most WebSocket connections at once; more get HTTP 503 with `Retry-After` (default 10,000).
    pub max_connections: usize,
    /// Largest text frame accepted; larger ones get `too_large` and the connection stays (default 64 KiB).
    pub max_frame_bytes: usize,
    /// Frames above this are not even read: the connection is closed with 1009 (default 1 MiB).
    pub hard_frame_bytes: usize,
    /// Sustained frames per second per connection (default 200).
    pub rate_per_sec: u32,
    /// Burst of frames allowed above the rate (default 400).
    pub rate_burst: u32,
    /// Bad frames (errors of any kind) tolerated in a burst before the connection is
    /// closed with 4429; the allowance refills at one per second (default 20).
    pub max_bad_frames: u32,
    /// Frames waiting to be written to one connection (acks, messages, routed requests;
    /// events are read from the shared history instead). A consumer this far behind is
    /// closed with 4000 "slow consumer" (default 256).
    pub outbound_queue: usize,
    /// A write that cannot complete in this time drops the connection: no close frame can get
    /// through a stuck write, so the client sees 1006 (ms, default 10 s).
    pub write_timeout_ms: u64,
    /// Read buffer per connection, bytes (default 1 KiB: it stays allocated on idle sockets; a larger
    /// frame is read in several reads into room reserved for its whole size).
    pub read_buffer_bytes: usize,
    /// Outgoing bytes buffered before a write is forced, per connection (default 16 KiB; allocated only while sending).
    pub write_buffer_bytes: usize,
    /// HTTP requests handled at once, node-wide; more get 503 `overloaded` with `Retry-After: 1`
    /// at once (default 1,024). Upgraded sockets and open dashboard streams do not count.
    pub max_http_requests: usize,
    /// Dashboard streams (`/api/dashboard/stream`) open at once; more get 503 (default 64).
    pub max_dashboard_streams: usize,
    /// WebSocket handshakes admitted per second, node-wide; more get 503 `too_many_handshakes` with
    /// `Retry-After`, so a reconnect storm (a node of the cluster died) arrives spread out (default 1,000).
    pub handshakes_per_sec: u32,
    /// Handshakes admitted at once above that rate (default 2,000).
    pub handshake_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_frame_bytes: 64 * 1024,
            hard_frame_bytes: 1024 * 1024,
            rate_per_sec: 200,
            rate_burst: 400,
            max_bad_frames: 20,
            outbound_queue: 256,
            write_timeout_ms: 10_000,
            read_buffer_bytes: 1024,
            write_buffer_bytes: 16 * 1024,
            max_http_requests: 1024,
            max_dashboard_streams: 64,
            handshakes_per_sec: 1_000,
            handshake_burst: 2_000,
        }
    }
}

/// Handshake and liveness timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Heartbeat {
    /// The server pings every connection this often, and tells clients to (ms, default 15 s).
    pub interval_ms: u64,
    /// A connection silent for this long is closed with 4408 (ms, default 30 s; it must be longer than
    /// `interval_ms`, so raising one may mean raising the other).
    pub timeout_ms: u64,
    /// `hello` must arrive within this time of the upgrade (ms, default 10 s).
    pub hello_timeout_ms: u64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self { interval_ms: 15_000, timeout_ms: 30_000, hello_timeout_ms: 10_000 }
    }
}

/// The evolution socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Evolution {
    /// Events kept for resume (default 10,000).
    pub history_events: usize,
    /// Bytes of events kept for resume (default 16 MiB).
    pub history_bytes: usize,
    /// Publishes remembered for deduplication by (publisher, id) (default 10,000).
    pub dedup_entries: usize,
    /// How long a publish id is remembered (ms, default 10 min).
    pub dedup_ttl_ms: u64,
    /// Subscription patterns per connection (default 256).
    pub max_subscriptions: usize,
    /// Actions one connection may handle (default 64).
    pub max_actions: usize,
    /// Requests one connection may have waiting for a response (default 256).
    pub max_pending_requests: usize,
    /// How long a request waits for its handler when it does not say (ms, default 30 s).
    pub request_timeout_ms: u64,
    /// Longest `timeout_ms` a request may ask for (ms, default 5 min).
    pub max_request_timeout_ms: u64,
    /// Answered requests remembered so a re-sent id gets the same response (default 10,000).
    pub response_cache_entries: usize,
}

impl Default for Evolution {
    fn default() -> Self {
        Self {
            history_events: 10_000,
            history_bytes: 16 * 1024 * 1024,
            dedup_entries: 10_000,
            dedup_ttl_ms: 600_000,
            max_subscriptions: 256,
            max_actions: 64,
            max_pending_requests: 256,
            request_timeout_ms: 30_000,
            max_request_timeout_ms: 300_000,
            response_cache_entries: 10_000,
        }
    }
}

/// The agents socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Agents {
    /// Agent names remembered (online or with queued messages) (default 10,000).
    pub max_agents: usize,
    /// Unacknowledged messages kept per agent (default 1,000).
    pub queue_messages: usize,
    /// Bytes of unacknowledged messages kept per agent (default 1 MiB).
    pub queue_bytes: usize,
    /// Bytes of unacknowledged messages kept for all agents together (default 256 MiB), so
    /// `max_agents` × `queue_bytes` (10 GiB) is never reached.
    pub total_queue_bytes: usize,
    /// Longest `expires_in_ms` honoured; also the expiry of messages that set none (ms, default 24 h).
    pub max_expiry_ms: u64,
    /// (sender, id) pairs remembered for deduplication (default 100,000).
    pub dedup_entries: usize,
    /// How long a (sender, id) pair is remembered (ms, default 24 h).
    pub dedup_ttl_ms: u64,
}

impl Default for Agents {
    fn default() -> Self {
        Self {
            max_agents: 10_000,
            queue_messages: 1_000,
            queue_bytes: 1024 * 1024,
            total_queue_bytes: 256 * 1024 * 1024,
            max_expiry_ms: 86_400_000,
            dedup_entries: 100_000,
            dedup_ttl_ms: 86_400_000,
        }
    }
}

/// Bridge reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reports {
    /// Bridges remembered (default 1,000); the longest-silent is forgotten first.
    pub max_bridges: usize,
    /// Largest report body (default 256 KiB).
    pub max_report_bytes: usize,
    /// A bridge silent this long is shown as stale (ms, default 30 s).
    pub stale_after_ms: u64,
    /// A bridge silent this long is forgotten (ms, default 10 min).
    pub forget_after_ms: u64,
}

impl Default for Reports {
    fn default() -> Self {
        Self { max_bridges: 1_000, max_report_bytes: 256 * 1024, stale_after_ms: 30_000, forget_after_ms: 600_000 }
    }
}

/// A role a token can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Subscribe to evolution events.
    Subscribe,
    /// Publish events and send evolution requests.
    Publish,
    /// Handle evolution requests.
    Handle,
    /// Use the agents socket.
    Agent,
    /// Send bridge reports.
    Report,
    /// Use the LLM proxy (`/api/llm/chat/completions`), and so the server's upstream key.
    Llm,
}

impl Role {
    /// The role's name in config files and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Subscribe => "subscribe",
            Role::Publish => "publish",
            Role::Handle => "handle",
            Role::Agent => "agent",
            Role::Report => "report",
            Role::Llm => "llm",
        }
    }
}

/// One access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Who holds it (appears in logs, as the publisher, and as the identity for agent takeover).
    pub name: String,
    /// The secret (16 to 512 bytes).
    pub token: String,
    /// What it may do.
    pub roles: Vec<Role>,
}

/// Tokens and origins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// Access tokens; when empty (the default) no token is needed and every role is granted.
    pub tokens: Vec<Token>,
    /// Browser origins allowed to open sockets, besides the server's own origin. A `*`
    /// port matches any port. Default: `http://localhost:*`, `http://127.0.0.1:*`.
    /// Requests without an `Origin` header (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// Host names (without port) requests may be addressed to, against DNS rebinding.
    /// Default empty: on a loopback bind, only `localhost`, `*.localhost` and loopback
    /// addresses; on any other bind, every name. Requests without `Host` pass.
    pub allowed_hosts: Vec<String>,
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            allowed_origins: vec!["http://localhost:*".into(), "http://127.0.0.1:*".into()],
            allowed_hosts: Vec::new(),
        }
    }
}

/// The LLM proxy: `POST /api/llm/chat/completions` forwarded to an OpenAI-compatible upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Llm {
    /// The upstream chat completions URL (default LM Studio: http://127.0.0.1:1234/v1/chat/completions).
    pub upstream: String,
    /// Sent upstream as `Authorization: Bearer ...` when set (never taken from the client).
    pub api_key: Option<String>,
    /// Retries, delays and timeouts for upstream calls (default: 2 retries, 500 ms base,
    /// 60 s per attempt, 120 s in total).
    pub policy: bridge_core::retry::PolicyOverride,
    /// The upstream's circuit breaker (default: opens after 5 failures, 30 s reset).
    pub breaker: bridge_core::breaker::BreakerConfig,
    /// Largest request body accepted (default 1 MiB).
    pub max_body_bytes: usize,
}

impl Default for Llm {
    fn default() -> Self {
        Self {
            upstream: "http://127.0.0.1:1234/v1/chat/completions".into(),
            api_key: None,
            policy: bridge_core::retry::PolicyOverride {
                max_retries: Some(2),
                base_delay_ms: Some(500),
                attempt_timeout_ms: Some(60_000),
                deadline_ms: Some(120_000),
                ..Default::default()
            },
            breaker: bridge_core::breaker::BreakerConfig::DEFAULT,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// The NATS store: where the cluster's event stream lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Nats {
    /// The NATS server(s), comma-separated `nats://host:port` (default `nats://127.0.0.1:4222`);
    /// `nats://user:password@host:port` for a server with accounts.
    pub url: String,
    /// The JetStream stream holding the events (default `BRIDGE_EVOLUTION`). Its limits are
    /// `evolution.history_events`, `evolution.history_bytes`, `max_age_ms`; its duplicate
    /// window is `evolution.dedup_ttl_ms`. Every node must use the same.
    pub stream: String,
    /// The first subject token(s): events go to `<prefix>.events`, requests between nodes to
    /// `<prefix>.requests.*` (default `bridge`).
    pub subject_prefix: String,
    /// Events older than this leave the stream (ms, default 7 days; at least `evolution.dedup_ttl_ms`).
    pub max_age_ms: u64,
    /// Copies of the stream in a NATS cluster (default 1; 3 on a three-server NATS cluster).
    pub replicas: usize,
    /// How long to try to reach NATS at start before giving up (ms, default 5 s).
    pub connect_timeout_ms: u64,
    /// How long to wait for JetStream to confirm a publish or answer (ms, default 5 s).
    pub request_timeout_ms: u64,
}

impl Default for Nats {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream: "BRIDGE_EVOLUTION".into(),
            subject_prefix: "bridge".into(),
            max_age_ms: 7 * 86_400_000,
            replicas: 1,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 5_000,
        }
    }
}

impl Nats {
    /// The URL with any password replaced by `redacted` (for printing).
    pub fn url_redacted(&self, redacted: &str) -> String {
        self.url
            .split(',')
            .map(|u| match (u.find("://"), u.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let userinfo = &u[scheme + 3..at];
                    match userinfo.split_once(':') {
                        Some((user, _)) => format!("{}{user}:{redacted}{}", &u[..scheme + 3], &u[at..]),
                        None => u.to_owned(),
                    }
                }
                _ => u.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn validate(&self, evolution: &Evolution) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, message: String| Err(ConfigError::Invalid { field, message });
        for u in self.url.split(',') {
            let u = u.trim();
            if !(u.starts_with("nats://") || u.starts_with("tls://")) || u.len() <= "nats://".len() {
                return invalid("nats.url", format!("\"{u}\" must look like nats://host:port"));
            }
        }
        let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if !name_ok(&self.stream) || self.stream.len() > 64 {
            return invalid("nats.stream", format!("\"{}\" must be 1 to 64 of A-Z a-z 0-9 _ -", self.stream));
        }
        if !self.subject_prefix.split('.').all(name_ok) {
            return invalid(
                "nats.subject_prefix",
                format!("\"{}\" must be dot-separated tokens of A-Z a-z 0-9 _ -", self.subject_prefix),
            );
        }
        if self.max_age_ms < evolution.dedup_ttl_ms {
            return invalid(
                "nats.max_age_ms",
                "must be at least evolution.dedup_ttl_ms (JetStream's duplicate window lies within the age limit)"
                    .into(),
            );
        }
        if !(1..=5).contains(&self.replicas) {
            return invalid("nats.replicas", "must be 1 to 5".into());
        }
        if self.connect_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return invalid("nats.request_timeout_ms", "the NATS timeouts must be greater than 0".into());
        }
        Ok(())
    }
}

/// Graceful shutdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Shutdown {
    /// After the close frames are sent, how long to wait for connections to finish (ms, default 5 s).
    pub grace_ms: u64,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { grace_ms: 5_000 }
    }
}

/// Why the configuration was refused. Messages name the file, variable or field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a field has the wrong type or name.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value is out of range.
    #[error("invalid config: {field}: {message}")]
    Invalid {
        /// The field's TOML path.
        field: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl Config {
    /// Loads defaults < `file` < `env` (pairs of `BRIDGE_*` name and value) and validates.
    /// Flags are applied by the caller afterwards, followed by [`Config::validate`].
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse(format!("{}: {}", path.display(), e.message())))?
            }
            None => toml::Table::new(),
        };
        Self::from_table(table, env)
    }

    /// Like [`Config::load`], with the file's text given: defaults < `text` < `env`.
    pub fn from_toml(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let table = text.parse::<toml::Table>().map_err(|e| ConfigError::Parse(e.message().to_owned()))?;
        Self::from_table(table, env)
    }

    fn from_table(
        mut table: toml::Table,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        // Only variables naming a known top-level field are ours: other tools
        // use BRIDGE_* names too. Below that level, unknown names are errors.
        static KNOWN: std::sync::LazyLock<toml::Table> =
            std::sync::LazyLock::new(|| toml::Table::try_from(Config::default()).unwrap_or_default());
        for (name, value) in env {
            let Some(key) = name.strip_prefix("BRIDGE_") else { continue };
            let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            if !KNOWN.contains_key(&path[0]) {
                continue;
            }
            set_path(&mut table, &path, parse_env_value(&value));
        }
        // The merged table has no file positions, so name the key the error is about.
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            ConfigError::Parse(format!("{}: {} (from --config or a BRIDGE_* variable)", e.path(), e.inner().message()))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, message: String| Err(ConfigError::Invalid { field, message });
        if !self.www_dir.is_dir() {
            return invalid("www_dir", format!("{} is not a directory", self.www_dir.display()));
        }
        if !self.bind.is_loopback() && self.auth.tokens.is_empty() && !self.allow_insecure_remote {
            return invalid(
                "bind",
                format!(
                    "{} is reachable from other machines, and no tokens are configured; add [[auth.tokens]] \
                     or set allow_insecure_remote = true (--allow-insecure-remote) to accept that",
                    self.bind
                ),
            );
        }
        if !self.node_id.is_empty()
            && (self.node_id.len() > 64
                || !self.node_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return invalid("node_id", format!("\"{}\" must be 1 to 64 of A-Z a-z 0-9 . _ -", self.node_id));
        }
        if self.demo && !self.bind.is_loopback() {
            return invalid("demo", "the demo fault switch is only allowed on a loopback bind".into());
        }
        let l = &self.limits;
        let positive: [(&'static str, u64); 15] = [
            ("limits.max_connections", l.max_connections as u64),
            ("limits.max_frame_bytes", l.max_frame_bytes as u64),
            ("limits.rate_per_sec", u64::from(l.rate_per_sec)),
            ("limits.max_bad_frames", u64::from(l.max_bad_frames)),
            ("limits.outbound_queue", l.outbound_queue as u64),
            ("limits.write_timeout_ms", l.write_timeout_ms),
            ("limits.read_buffer_bytes", l.read_buffer_bytes as u64),
            ("limits.max_http_requests", l.max_http_requests as u64),
            ("limits.max_dashboard_streams", l.max_dashboard_streams as u64),
            ("limits.handshakes_per_sec", u64::from(l.handshakes_per_sec)),
            ("limits.handshake_burst", u64::from(l.handshake_burst)),
            ("heartbeat.interval_ms", self.heartbeat.interval_ms),
            ("heartbeat.hello_timeout_ms", self.heartbeat.hello_timeout_ms),
            ("evolution.history_events", self.evolution.history_events as u64),
            ("evolution.request_timeout_ms", self.evolution.request_timeout_ms),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return invalid(field, "must be greater than 0".into());
        }
        if l.hard_frame_bytes < l.max_frame_bytes {
            return invalid("limits.hard_frame_bytes", "must be at least limits.max_frame_bytes".into());
        }
        if l.rate_burst < l.rate_per_sec {
            return invalid("limits.rate_burst", "must be at least limits.rate_per_sec".into());
        }
        if self.heartbeat.timeout_ms <= self.heartbeat.interval_ms {
            return invalid("heartbeat.timeout_ms", "must be longer than heartbeat.interval_ms".into());
        }
        if self.evolution.max_request_timeout_ms < self.evolution.request_timeout_ms {
            return invalid("evolution.max_request_timeout_ms", "must be at least evolution.request_timeout_ms".into());
        }
        if self.reports.forget_after_ms < self.reports.stale_after_ms {
            return invalid("reports.forget_after_ms", "must be at least reports.stale_after_ms".into());
        }
        for t in &self.auth.tokens {
            let max = bridge_core::protocol::rules::MAX_TOKEN_BYTES;
            if t.token.len() < 16 || t.token.len() > max {
                let why = format!(
                    "the token of \"{}\" must be 16 to {max} bytes long (a hello carries at most {max})",
                    t.name
                );
                return invalid("auth.tokens", why);
            }
            if t.roles.is_empty() {
                return invalid("auth.tokens", format!("\"{}\" has no roles", t.name));
            }
        }
        let mut names = std::collections::HashSet::new();
        if let Some(t) = self.auth.tokens.iter().find(|t| !names.insert(t.token.as_str())) {
            return invalid("auth.tokens", format!("the token of \"{}\" is used twice", t.name));
        }
        if !(self.llm.upstream.starts_with("http://") || self.llm.upstream.starts_with("https://")) {
            return invalid("llm.upstream", format!("\"{}\" must start with http:// or https://", self.llm.upstream));
        }
        bridge_core::retry::RetryPolicy::default()
            .overridden(&self.llm.policy)
            .map_err(|e| ConfigError::Invalid { field: "llm.policy", message: e.to_string() })?;
        self.llm
            .breaker
            .validate()
            .map_err(|e| ConfigError::Invalid { field: "llm.breaker", message: e.to_string() })?;
        if self.store == StoreKind::Nats {
            self.nats.validate(&self.evolution)?;
        }
        if let Some(h) = self.auth.allowed_hosts.iter().find(|h| h.is_empty() || h.contains([':', '/', ' '])) {
            return invalid("auth.allowed_hosts", format!("\"{h}\" must be a host name or IP address, without port"));
        }
        for o in &self.auth.allowed_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) {
                return invalid("auth.allowed_origins", format!("\"{o}\" must start with http:// or https://"));
            }
        }
        Ok(())
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    // "key = <raw>" parses numbers, booleans, arrays and quoted strings; anything else is a plain string.
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn non_loopback_needs_tokens_or_consent() {
        let e = Config::load(None, env(&[("BRIDGE_BIND", "\"0.0.0.0\"")])).unwrap_err();
        assert!(e.to_string().starts_with("invalid config: bind: 0.0.0.0 is reachable from other machines"), "{e}");
        let ok = Config::load(None, env(&[("BRIDGE_BIND", "0.0.0.0"), ("BRIDGE_ALLOW_INSECURE_REMOTE", "true")]));
        assert!(ok.is_ok());
        let mut c = Config { bind: "0.0.0.0".parse().unwrap(), ..Config::default() };
        c.auth.tokens.push(Token { name: "ops".into(), token: "0123456789abcdef".into(), roles: vec![Role::Publish] });
        assert!(c.validate().is_ok());
        c.auth.tokens[0].token = "short".into();
        assert!(c.validate().unwrap_err().to_string().contains("must be 16 to 512 bytes"));
        c.auth.tokens[0].token = "x".repeat(513);
        assert!(c.validate().unwrap_err().to_string().contains("must be 16 to 512 bytes"));
    }

    #[test]
    fn defaults() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!((c.bind.to_string(), c.port), ("127.0.0.1".to_owned(), 8765));
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn file_then_env() {
        let dir = std::env::temp_dir().join(format!("bridge-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "port = 9000\nlog_format = \"json\"\n").unwrap();
        let c = Config::load(Some(&file), env(&[])).unwrap();
        assert_eq!((c.port, c.log_format), (9000, LogFormat::Json));
        let c = Config::load(Some(&file), env(&[("BRIDGE_PORT", "9100"), ("OTHER", "x")])).unwrap();
        assert_eq!(c.port, 9100, "env beats the file");
    }

    #[test]
    fn clear_errors() {
        let e = Config::load(None, env(&[("BRIDGE_PORT", "\"eighty\"")])).unwrap_err();
        assert!(e.to_string().contains("port: invalid type"), "{e}");
        let e = Config::load(None, env(&[("BRIDGE_LIMITS__MAX_FRAME_BYTES", "\"big\"")])).unwrap_err();
        assert!(e.to_string().contains("limits.max_frame_bytes: invalid type"), "{e}");
        let c = Config::load(None, env(&[("BRIDGE_URL", "x"), ("BRIDGE_CONFIG", "y")])).unwrap();
        assert_eq!(c, Config::default(), "variables that name no field are other tools' business");
        let e = Config::load(Some(Path::new("/nonexistent/x.toml")), env(&[])).unwrap_err();
        assert!(e.to_string().starts_with("cannot read config file /nonexistent/x.toml"), "{e}");
        let e = Config::load(None, env(&[("BRIDGE_WWW_DIR", "/nonexistent")])).unwrap_err();
        assert_eq!(e.to_string(), "invalid config: www_dir: /nonexistent is not a directory");
        let e = Config::load(None, env(&[("BRIDGE_LIMITS__RATE_BURST", "1")])).unwrap_err();
        assert_eq!(e.to_string(), "invalid config: limits.rate_burst: must be at least limits.rate_per_sec");
        let e = Config::load(None, env(&[("BRIDGE_LIMITS__NO_SUCH", "1")])).unwrap_err();
        assert!(e.to_string().contains("unknown field `no_such`"), "{e}");
    }

    #[test]
    fn the_nats_store_is_validated_when_chosen() {
        let c =
            Config::load(None, env(&[("BRIDGE_STORE", "nats"), ("BRIDGE_NATS__URL", "nats://10.0.0.1:4222")])).unwrap();
        assert_eq!((c.store, c.nats.url.as_str()), (StoreKind::Nats, "nats://10.0.0.1:4222"));
        let bad = |pairs: &[(&str, &str)]| {
            let mut all = vec![("BRIDGE_STORE", "nats")];
            all.extend_from_slice(pairs);
            Config::load(None, env(&all)).unwrap_err().to_string()
        };
        assert!(
            bad(&[("BRIDGE_NATS__URL", "http://x:4222")])
                .contains("nats.url: \"http://x:4222\" must look like nats://host:port")
        );
        assert!(bad(&[("BRIDGE_NATS__STREAM", "has.dot")]).contains("nats.stream"));
        assert!(bad(&[("BRIDGE_NATS__SUBJECT_PREFIX", "a..b")]).contains("nats.subject_prefix"));
        assert!(bad(&[("BRIDGE_NATS__MAX_AGE_MS", "1000")]).contains("at least evolution.dedup_ttl_ms"));
        assert!(bad(&[("BRIDGE_NATS__REPLICAS", "0")]).contains("nats.replicas: must be 1 to 5"));
        assert!(bad(&[("BRIDGE_NODE_ID", "no spaces")]).contains("node_id"));
        // The same bad URL is no concern of the memory store.
        assert!(Config::load(None, env(&[("BRIDGE_NATS__URL", "http://x")])).is_ok());
    }

    #[test]
    fn a_password_in_the_nats_url_is_redacted_for_printing() {
        let n = Nats { url: "nats://app:s3cret@h1:4222,nats://h2:4222".into(), ..Nats::default() };
        assert_eq!(n.url_redacted("<redacted>"), "nats://app:<redacted>@h1:4222,nats://h2:4222");
        let plain = Nats::default();
        assert_eq!(plain.url_redacted("x"), plain.url);
    }
}
