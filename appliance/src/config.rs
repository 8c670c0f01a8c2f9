//! The appliance's configuration: one TOML file, every key optional, with `FERROCOUNT_*`
//! environment overrides.
//!
//! What it is for: where the data lives, where the web face listens (and with which
//! certificate), how long sessions last, how many sign-in failures are tolerated, body-size and
//! time limits, and the log format. `ferrocount serve` reads it; the web face takes the
//! [`HttpConfig`] part.
//!
//! What it is not for: measurement settings (the acquisition engine has its own) or anything
//! secret — no password or token is ever configured here.
//!
//! Layering, last wins: built-in defaults, then the TOML file, then environment variables.
//! Environment names are `FERROCOUNT_` followed by the key, with `__` between nested keys:
//! `FERROCOUNT_LISTEN=0.0.0.0:8443`, `FERROCOUNT_HTTP__SESSION_IDLE_MINUTES=5`,
//! `FERROCOUNT_LOG__FORMAT=json`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "FERROCOUNT_";

/// Everything `ferrocount serve` can be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApplianceConfig {
    /// Data directory (the database is `ferrocount.db` inside it).
    pub data_dir: PathBuf,
    /// Address and port the web face listens on.
    pub listen: SocketAddr,
    /// The board: `simulated` (default) or `spi` (real hardware).
    pub board: BoardChoice,
    /// The web face.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Backups.
    pub backup: BackupConfig,
}

impl Default for ApplianceConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./ferrocount-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            board: BoardChoice::Simulated,
            http: HttpConfig::default(),
            log: LogConfig::default(),
            backup: BackupConfig::default(),
        }
    }
}

/// Backups: who they are encrypted for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// The lab's age X25519 public keys (`age1…`) every backup is encrypted for: the admin page's
    /// download and `ferrocount backup` without `--recipient`. Only the public half is configured;
    /// the identity that decrypts stays with the lab. Empty: no backup can be made.
    pub recipients: Vec<String>,
}

/// Which board the engine drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardChoice {
    /// The simulated board (no hardware needed).
    Simulated,
    /// The front-end board over Linux spidev (needs the `hw-linux` build).
    Spi,
}

/// Settings of the web face.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The instrument's name in every page's header and printed reports, e.g.
    /// "Ferrocount FC-01 · Oncology day unit".
    pub instrument_name: String,
    /// A browser session ends after this many minutes without a request.
    pub session_idle_minutes: u32,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// A request that takes longer than this is answered 408/503, seconds.
    pub request_timeout_s: u64,
    /// Failed sign-ins for one user name within the throttle window before it is refused.
    pub max_failed_logins_per_user: u32,
    /// Failed sign-ins from one client address within the window before it is refused.
    pub max_failed_logins_per_address: u32,
    /// The sign-in throttle window, minutes.
    pub login_throttle_minutes: u32,
    /// TLS certificate and key; plain HTTP when absent.
    pub tls: Option<TlsConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            instrument_name: "Ferrocount".to_owned(),
            session_idle_minutes: 15,
            max_body_bytes: 64 * 1024,
            request_timeout_s: 30,
            max_failed_logins_per_user: 5,
            max_failed_logins_per_address: 20,
            login_throttle_minutes: 15,
            tls: None,
        }
    }
}

/// A PEM certificate chain and its private key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert_file: PathBuf,
    /// Private key, PEM.
    pub key_file: PathBuf,
}

/// Log settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `ferrocount=debug,tower_http=info`
    /// (`RUST_LOG` wins when set).
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for journald or a collector).
    Json,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An explicitly named configuration file does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    /// A key has the wrong type, is unknown, or a file is not valid TOML.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ApplianceConfig {
    /// Loads defaults, then `file` (which must exist when given), then `FERROCOUNT_*` variables
    /// from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::base(file)?
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .extract()
            .map_err(|error| ConfigError::Invalid(error.to_string()))
    }

    /// Like [`load`](Self::load) with given environment variables instead of the process's
    /// (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        variables: &[(&str, &str)],
    ) -> Result<Self, ConfigError> {
        let owned: Vec<(String, String)> = variables
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut figment = Self::base(file)?;
        // The same nesting rule as the `Env` provider, applied to the given pairs.
        let mut dict = figment::value::Dict::new();
        for (key, value) in &owned {
            if let Some(rest) = key.strip_prefix(ENV_PREFIX) {
                insert_nested(&mut dict, &rest.to_ascii_lowercase(), value);
            }
        }
        figment = figment.merge(Serialized::defaults(dict));
        figment
            .extract()
            .map_err(|error| ConfigError::Invalid(error.to_string()))
    }

    fn base(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_owned()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        Ok(figment)
    }
}

/// Puts `value` at the `__`-separated `key` path of `dict`, parsed as figment parses
/// environment values (numbers, booleans, else strings).
fn insert_nested(dict: &mut figment::value::Dict, key: &str, value: &str) {
    let parsed: figment::value::Value = value
        .parse()
        .unwrap_or_else(|_| figment::value::Value::from(value.to_owned()));
    match key.split_once("__") {
        None => {
            dict.insert(key.to_owned(), parsed);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_owned())
                .or_insert_with(|| figment::value::Value::from(figment::value::Dict::new()));
            if let figment::value::Value::Dict(_, inner) = entry {
                insert_nested(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn no_file_and_no_environment_gives_the_documented_defaults() {
        let config = ApplianceConfig::load_with_env(None, &[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./ferrocount-data"));
        assert_eq!(config.http.session_idle_minutes, 15);
        assert_eq!(config.board, BoardChoice::Simulated);
        assert_eq!(config.log.format, LogFormat::Text);
        assert!(config.http.tls.is_none());
    }

    #[test]
    fn a_named_file_that_is_missing_is_an_error() {
        let error = ApplianceConfig::load_with_env(Some(Path::new("/nonexistent/f.toml")), &[])
            .unwrap_err();
        assert!(matches!(error, ConfigError::MissingFile(_)), "{error}");
    }

    #[test]
    fn the_file_sets_keys_and_the_environment_wins_over_it() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "listen = \"0.0.0.0:9000\"\n[http]\nsession_idle_minutes = 5\n[log]\nformat = \"json\""
        )
        .unwrap();
        let config = ApplianceConfig::load_with_env(
            Some(file.path()),
            &[("FERROCOUNT_HTTP__SESSION_IDLE_MINUTES", "7")],
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.http.session_idle_minutes, 7);
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_by_name() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "[http]\nsession_idle_minutes = \"soon\"").unwrap();
        let error = ApplianceConfig::load_with_env(Some(file.path()), &[]).unwrap_err();
        assert!(
            error.to_string().contains("session_idle_minutes"),
            "{error}"
        );
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "lisen = \"0.0.0.0:1\"").unwrap();
        let error = ApplianceConfig::load_with_env(Some(file.path()), &[]).unwrap_err();
        assert!(error.to_string().contains("lisen"), "{error}");
    }
}
