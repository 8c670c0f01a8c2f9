//! The appliance's configuration: one TOML file, every key optional, with `FERROCOUNT_*`
//! environment overrides.
//!
//! What it is for: where the data lives, which board the engine drives (and on a real board, its
//! SPI device and GPIO lines), the indication cut-offs, where the web face listens (and with which
//! certificate), how long sessions last, how many sign-in failures are tolerated, body-size and
//! time limits, and the log format. The one wiring point ([`crate::assembly`]) reads it; the web
//! face takes the [`HttpConfig`] part.
//!
//! What it is not for: measurement settings (the acquisition engine has its own) or anything
//! secret — no password or token is ever configured here.
//!
//! Layering, last wins: built-in defaults, then the TOML file, then environment variables.
//! Environment names are `FERROCOUNT_` followed by the key, with `__` between nested keys:
//! `FERROCOUNT_LISTEN=0.0.0.0:8443`, `FERROCOUNT_HTTP__SESSION_IDLE_MINUTES=5`,
//! `FERROCOUNT_LOG__FORMAT=json`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use nmr_core::assay::Indications;
use serde::{Deserialize, Serialize};

pub use crate::interop::destination::DestinationConfig;
pub use crate::site::{PaperSize, PatientNamePolicy, QcConfig, QcPolicy, SiteConfig, SiteTimeZone};
use crate::twin::{TwinAddress, TwinAddressError};

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
    /// The board: `simulated` (default), `spi` (real hardware, set up by [`SpiConfig`]) or
    /// `twin` (a board twin in another process, at [`TwinSettings::address`]).
    pub board: BoardChoice,
    /// The real board's SPI device and GPIO lines (read when `board = "spi"`).
    pub spi: SpiConfig,
    /// The board twin's address and link limits (read when `board = "twin"`).
    pub twin: TwinSettings,
    /// A TOML file of indication cut-offs replacing the built-in table
    /// ([`DEFAULT_INDICATIONS_TOML`]).
    pub indications_file: Option<PathBuf>,
    /// The site: time zone, lab and instrument identity, paper size, patient name policy.
    pub site: SiteConfig,
    /// The QC policy that gates patient runs.
    pub qc: QcConfig,
    /// The web face.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Backups.
    pub backup: BackupConfig,
    /// Where released results are sent (`[[destinations]]`, issue 14): HL7 v2 over MLLP, FHIR.
    pub destinations: Vec<DestinationConfig>,
}

impl Default for ApplianceConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./ferrocount-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            board: BoardChoice::Simulated,
            spi: SpiConfig::default(),
            twin: TwinSettings::default(),
            indications_file: None,
            site: SiteConfig::default(),
            qc: QcConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            backup: BackupConfig::default(),
            destinations: Vec::new(),
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

/// Which board the engine drives. Written as text in the configuration and after `--board`:
/// `simulated`, `spi`, `twin` (at the configured `[twin] address`) or `twin:ADDRESS`
/// (`twin:unix:PATH`, `twin:tcp:HOST:PORT`). Built by [`crate::assembly::build_board`], the one
/// place a choice becomes a board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum BoardChoice {
    /// The simulated board (no hardware needed).
    Simulated,
    /// The front-end board over Linux spidev (needs the `hw-linux` build), set up by
    /// [`SpiConfig`].
    Spi,
    /// A board twin (`ferrocount board twin`) in another process: at this address, or at
    /// [`TwinSettings::address`] when none is given.
    Twin(Option<TwinAddress>),
}

impl BoardChoice {
    /// Every choice's text, for messages.
    pub const CHOICES: &'static str = "simulated, spi, twin, twin:unix:PATH, twin:tcp:HOST:PORT";
}

impl fmt::Display for BoardChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoardChoice::Simulated => f.write_str("simulated"),
            BoardChoice::Spi => f.write_str("spi"),
            BoardChoice::Twin(None) => f.write_str("twin"),
            BoardChoice::Twin(Some(address)) => write!(f, "twin:{address}"),
        }
    }
}

impl FromStr for BoardChoice {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "simulated" => Ok(BoardChoice::Simulated),
            "spi" => Ok(BoardChoice::Spi),
            "twin" => Ok(BoardChoice::Twin(None)),
            other if other.starts_with("twin:") => other["twin:".len()..]
                .parse()
                .map(|address| BoardChoice::Twin(Some(address)))
                .map_err(|e: TwinAddressError| ConfigError::Invalid(format!("board: {e}"))),
            other => Err(ConfigError::Invalid(format!(
                "board {other:?}: expected one of {}",
                Self::CHOICES
            ))),
        }
    }
}

impl TryFrom<String> for BoardChoice {
    type Error = ConfigError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<BoardChoice> for String {
    fn from(choice: BoardChoice) -> Self {
        choice.to_string()
    }
}

/// The real front-end board on Linux: its spidev node, SPI clock, and the GPIO lines of its
/// data-ready and reset signals (each optional: without data ready the driver polls the status
/// block; without reset it resets by command only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpiConfig {
    /// The spidev node, e.g. `/dev/spidev0.0`. Required when `board = "spi"`.
    pub device: Option<PathBuf>,
    /// SPI clock, Hz.
    pub clock_hz: u32,
    /// The board's data-ready output, as a GPIO input line.
    pub data_ready: Option<GpioLine>,
    /// The board's reset input (active low), as a GPIO output line.
    pub reset: Option<GpioLine>,
}

impl Default for SpiConfig {
    fn default() -> Self {
        Self {
            device: None,
            clock_hz: 4_000_000,
            data_ready: None,
            reset: None,
        }
    }
}

/// Where the board twin listens and how long the appliance waits for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwinSettings {
    /// `unix:PATH` or `tcp:HOST:PORT`. Required when `board = "twin"` (unless `--board
    /// twin:ADDRESS` gives it).
    pub address: Option<TwinAddress>,
    /// Longest wait for any one exchange with the twin, ms: a twin that hangs fails the run
    /// with a board cause after this long.
    pub link_timeout_ms: u64,
}

impl Default for TwinSettings {
    fn default() -> Self {
        Self {
            address: None,
            link_timeout_ms: 5_000,
        }
    }
}

/// One line of a GPIO character device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioLine {
    /// The chip, e.g. `/dev/gpiochip0`.
    pub chip: PathBuf,
    /// The line offset on that chip (on a Raspberry Pi, the BCM number).
    pub line: u32,
}

/// The built-in indication cut-offs (`config/indications.toml`), used unless the configuration
/// names an `indications_file`. Stated here once; every command and test reaches it through
/// [`ApplianceConfig::indications`] or [`default_indications`].
pub const DEFAULT_INDICATIONS_TOML: &str = include_str!("../../config/indications.toml");

/// The built-in indication cut-offs, parsed.
pub fn default_indications() -> Result<Indications, ConfigError> {
    Indications::from_toml(DEFAULT_INDICATIONS_TOML)
        .map_err(|e| ConfigError::Invalid(format!("the built-in indications: {e}")))
}

/// Reads an indications TOML file (the configuration's `indications_file`, or `ferrocount
/// count --indications`).
pub fn indications_from_file(file: &Path) -> Result<Indications, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Unreadable {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    Indications::from_toml(&text)
        .map_err(|e| ConfigError::Invalid(format!("{}: {e}", file.display())))
}

/// How long an API token works unless `http.token_life_days` says otherwise, days.
pub const DEFAULT_TOKEN_LIFE_DAYS: u32 = 90;

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
    /// Failed sign-ins for one user name from one client address within the throttle window
    /// before that user name is refused from that address (other addresses are not affected).
    pub max_failed_logins_per_user: u32,
    /// Retired: sign-ins are throttled per user name and address together (a per-address limit
    /// locked out everyone behind one proxy). Still read, and ignored, so that configuration
    /// files written for earlier versions load.
    #[serde(skip_serializing)]
    pub max_failed_logins_per_address: Option<u32>,
    /// The sign-in throttle window, minutes.
    pub login_throttle_minutes: u32,
    /// An API token stops working this many days after it was made (a password change ends it
    /// sooner).
    pub token_life_days: u32,
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
            max_failed_logins_per_address: None,
            login_throttle_minutes: 15,
            token_life_days: DEFAULT_TOKEN_LIFE_DAYS,
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
    /// A file the configuration names could not be read.
    #[error("{}: {message}", file.display())]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// The operating system's reason.
        message: String,
    },
}

impl ApplianceConfig {
    /// The indication cut-offs: the configured `indications_file`, else the built-in table.
    pub fn indications(&self) -> Result<Indications, ConfigError> {
        match &self.indications_file {
            Some(file) => indications_from_file(file),
            None => default_indications(),
        }
    }

    /// Loads defaults, then `file` (which must exist when given), then `FERROCOUNT_*` variables
    /// from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Self = Self::base(file)?
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .extract()
            .map_err(|error| ConfigError::Invalid(error.to_string()))?;
        config.checked()
    }

    /// The configuration, its parts that cannot be checked by their types checked.
    fn checked(self) -> Result<Self, ConfigError> {
        crate::interop::destination::check(&self.destinations).map_err(ConfigError::Invalid)?;
        crate::interop::destination::check_site(&self.site.lab_name, &self.destinations)
            .map_err(ConfigError::Invalid)?;
        Ok(self)
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
        let config: Self = figment
            .extract()
            .map_err(|error| ConfigError::Invalid(error.to_string()))?;
        config.checked()
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
    fn the_documented_example_file_states_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ferrocount.example.toml");
        let config = ApplianceConfig::load_with_env(Some(&example), &[]).unwrap();
        assert_eq!(config, ApplianceConfig::default());
    }

    #[test]
    fn the_site_and_the_qc_policy_are_read_typed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("site.toml");
        std::fs::write(
            &file,
            "[site]\ntime_zone = \"Europe/Berlin\"\nlab_name = \"Labor Mitte\"\n\
             paper_size = \"Letter\"\npatient_name = \"initials\"\n[qc]\npolicy = \"run_but_hold\"\n",
        )
        .unwrap();
        let config = ApplianceConfig::load_with_env(Some(&file), &[]).unwrap();
        assert_eq!(config.site.time_zone.name(), "Europe/Berlin");
        assert_eq!(config.site.lab_name, "Labor Mitte");
        assert_eq!(config.site.paper_size, PaperSize::Letter);
        assert_eq!(config.site.patient_name, PatientNamePolicy::Initials);
        assert_eq!(config.qc.policy, QcPolicy::RunButHold);
        std::fs::write(&file, "[site]\ntime_zone = \"Berlin\"\n").unwrap();
        let error = ApplianceConfig::load_with_env(Some(&file), &[]).unwrap_err();
        assert!(error.to_string().contains("\"Berlin\""), "{error}");
    }

    #[test]
    fn a_lab_name_hl7_cannot_carry_is_refused_at_load_by_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.toml");
        let config = |lab_name: &str| {
            format!(
                "[site]\nlab_name = \"{lab_name}\"\n[[destinations]]\nkind = \"hl7v2\"\n\
                 address = \"127.0.0.1:2575\"\n"
            )
        };
        std::fs::write(&file, config(&"L".repeat(50))).unwrap();
        ApplianceConfig::load_with_env(Some(&file), &[]).unwrap();
        std::fs::write(&file, config(&"L".repeat(51))).unwrap();
        let error = ApplianceConfig::load_with_env(Some(&file), &[]).unwrap_err();
        assert!(error.to_string().contains("[site] lab_name"), "{error}");
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
    fn a_file_with_the_retired_per_address_limit_still_loads() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "[http]\nmax_failed_logins_per_user = 3\nmax_failed_logins_per_address = 20"
        )
        .unwrap();
        let config = ApplianceConfig::load_with_env(Some(file.path()), &[]).unwrap();
        assert_eq!(config.http.max_failed_logins_per_user, 3);
        assert_eq!(config.http.token_life_days, DEFAULT_TOKEN_LIFE_DAYS);
    }

    #[test]
    fn the_real_board_is_configured_by_device_clock_and_lines() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "board = \"spi\"\n[spi]\ndevice = \"/dev/spidev0.0\"\nclock_hz = 2000000\n\
             data_ready = {{ chip = \"/dev/gpiochip0\", line = 25 }}\n\
             reset = {{ chip = \"/dev/gpiochip0\", line = 24 }}"
        )
        .unwrap();
        let config = ApplianceConfig::load_with_env(Some(file.path()), &[]).unwrap();
        assert_eq!(config.board, BoardChoice::Spi);
        assert_eq!(config.spi.device, Some(PathBuf::from("/dev/spidev0.0")));
        assert_eq!(config.spi.clock_hz, 2_000_000);
        assert_eq!(config.spi.data_ready.as_ref().map(|l| l.line), Some(25));
        assert_eq!(config.spi.reset.as_ref().map(|l| l.line), Some(24));
        let from_env =
            ApplianceConfig::load_with_env(None, &[("FERROCOUNT_BOARD", "spi")]).unwrap();
        assert_eq!(from_env.board, BoardChoice::Spi);
    }

    #[test]
    fn an_unknown_board_is_refused_naming_the_choices() {
        let error = ApplianceConfig::load_with_env(None, &[("FERROCOUNT_BOARD", "fpga")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("fpga") && error.contains("simulated, spi"),
            "{error}"
        );
        for choice in [BoardChoice::Simulated, BoardChoice::Spi] {
            assert_eq!(choice.to_string().parse::<BoardChoice>().unwrap(), choice);
        }
    }

    #[test]
    fn indications_come_from_the_named_file_or_the_built_in_table() {
        let built_in = ApplianceConfig::default().indications().unwrap();
        assert!(built_in.cutoff("breast").is_ok());
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "[indications.melanoma]\nunfavorable_at_or_above_per_7_5ml = 2.0"
        )
        .unwrap();
        let config = ApplianceConfig {
            indications_file: Some(file.path().to_owned()),
            ..ApplianceConfig::default()
        };
        let table = config.indications().unwrap();
        assert!(table.cutoff("melanoma").is_ok());
        assert!(table.cutoff("breast").is_err());
        let missing = ApplianceConfig {
            indications_file: Some(PathBuf::from("/nonexistent/indications.toml")),
            ..ApplianceConfig::default()
        };
        let error = missing.indications().unwrap_err().to_string();
        assert!(error.contains("/nonexistent/indications.toml"), "{error}");
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
