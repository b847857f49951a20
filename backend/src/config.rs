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
}

impl Default for Config {
    fn default() -> Self {
        let www = if Path::new("www").is_dir() { PathBuf::from("www") } else { PathBuf::from(CHECKOUT_WWW) };
        Self { bind: IpAddr::V4(Ipv4Addr::LOCALHOST), port: 8765, www_dir: www, log_format: LogFormat::Text }
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
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse(format!("{}: {}", path.display(), e.message())))?
            }
            None => toml::Table::new(),
        };
        // Only variables naming a known top-level field are ours: other tools
        // use BRIDGE_* names too. Below that level, unknown names are errors.
        let known = toml::Table::try_from(Config::default()).unwrap_or_default();
        for (name, value) in env {
            let Some(key) = name.strip_prefix("BRIDGE_") else { continue };
            let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            if !known.contains_key(&path[0]) {
                continue;
            }
            set_path(&mut table, &path, parse_env_value(&value));
        }
        let config: Config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse(e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.www_dir.is_dir() {
            return Err(ConfigError::Invalid {
                field: "www_dir",
                message: format!("{} is not a directory", self.www_dir.display()),
            });
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
        assert!(e.to_string().contains("invalid type"), "{e}");
        let c = Config::load(None, env(&[("BRIDGE_URL", "x"), ("BRIDGE_CONFIG", "y")])).unwrap();
        assert_eq!(c, Config::default(), "variables that name no field are other tools' business");
        let e = Config::load(Some(Path::new("/nonexistent/x.toml")), env(&[])).unwrap_err();
        assert!(e.to_string().starts_with("cannot read config file /nonexistent/x.toml"), "{e}");
        let e = Config::load(None, env(&[("BRIDGE_WWW_DIR", "/nonexistent")])).unwrap_err();
        assert_eq!(e.to_string(), "invalid config: www_dir: /nonexistent is not a directory");
    }
}
