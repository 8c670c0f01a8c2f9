//! The one wiring point: configuration in, a running appliance out.
//!
//! [`ApplianceBuilder`] opens the store (migrations applied), builds the board the configuration
//! chooses ([`build_board`], the one place a [`BoardChoice`] becomes a board), reads the
//! indication cut-offs (the configured file, else the built-in table), and starts the
//! acquisition engine on them. `ferrocount serve`, `run`, `demo` and the end-to-end test helpers
//! all assemble the appliance here, so they cannot drift apart.
//!
//! What it is not for: the web face (the binary mounts it on the assembled store and engine),
//! logging, signals, or the first administrator.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{ApplianceConfig, BoardChoice, ConfigError, SpiConfig, TwinSettings};
use crate::engine::{Board, Engine, EngineConfig, EngineError, EngineHandle, SimulatedInstrument};
use crate::sim_board::{Faults, SimBoardConfig, SimClock};
use crate::store::{Store, StoreError};
use crate::twin::{TwinAddress, TwinLinkOptions, twin_instrument};

/// Why the appliance could not be assembled. Each names the part and what was wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum AssemblyError {
    /// The configuration (indications, board settings) is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory's database could not be opened or migrated.
    #[error("opening the data directory {}: {source}", data_dir.display())]
    Store {
        /// The data directory.
        data_dir: PathBuf,
        /// What the store said.
        source: StoreError,
    },
    /// The board could not be built or opened.
    #[error("board = \"{choice}\": {message}")]
    Board {
        /// The configured choice.
        choice: BoardChoice,
        /// What was wrong.
        message: String,
    },
    /// The acquisition engine did not start.
    #[error("starting the acquisition engine: {0}")]
    Engine(#[from] EngineError),
}

/// What the simulated board should do differently from its defaults (`ferrocount run`'s
/// `--seed` and `--sim-*` options). Refused on a real board.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Simulation {
    /// Seed of the board's randomness; `None`: one past the last run's id, so successive runs on
    /// one database differ.
    pub seed: Option<u64>,
    /// Injected board faults.
    pub faults: Faults,
    /// Magnet temperature drift, °C per second.
    pub magnet_drift_c_per_s: f64,
}

impl Simulation {
    fn is_default(&self) -> bool {
        self.faults == Faults::default() && self.magnet_drift_c_per_s == 0.0
    }
}

/// Assembles the appliance from its configuration.
#[derive(Clone, Debug)]
pub struct ApplianceBuilder {
    config: ApplianceConfig,
    simulation: Simulation,
}

/// The assembled appliance: the open store and the running engine on its board.
#[derive(Clone, Debug)]
pub struct Appliance {
    /// The configuration it was built from.
    pub config: ApplianceConfig,
    /// The database.
    pub store: Store,
    /// The acquisition engine (the board's one owner).
    pub engine: EngineHandle,
}

impl ApplianceBuilder {
    /// An appliance built as `config` says.
    pub fn new(config: ApplianceConfig) -> Self {
        Self {
            config,
            simulation: Simulation::default(),
        }
    }

    /// Overrides the simulated board's seed and faults.
    #[must_use]
    pub fn simulation(mut self, simulation: Simulation) -> Self {
        self.simulation = simulation;
        self
    }

    /// Reads the indications, opens the store, builds the board and starts the engine. A
    /// configuration error stops it before anything is opened.
    pub async fn build(self) -> Result<Appliance, AssemblyError> {
        let settings = engine_settings(&self.config)?;
        if self.config.board != BoardChoice::Simulated && !self.simulation.is_default() {
            let message = match self.config.board {
                BoardChoice::Twin(_) => {
                    "a board twin's faults and drift are its own: give them to `ferrocount board twin`"
                }
                _ => "simulated faults and drift need the simulated board",
            };
            return Err(AssemblyError::Board {
                choice: self.config.board.clone(),
                message: message.to_owned(),
            });
        }
        let store = Store::open(&self.config.data_dir)
            .await
            .map_err(|source| AssemblyError::Store {
                data_dir: self.config.data_dir.clone(),
                source,
            })?
            // Every release writes its messages for the configured destinations (issue 14).
            .with_outbox(crate::interop::destination::outbox_targets(
                &self.config.destinations,
            ));
        let seed = match self.simulation.seed {
            Some(seed) => seed,
            None => next_simulation_seed(&store)
                .await
                .map_err(|source| AssemblyError::Store {
                    data_dir: self.config.data_dir.clone(),
                    source,
                })?,
        };
        let board = match build_board(&self.config, &self.simulation, seed) {
            Ok(board) => board,
            Err(error) => {
                store.close().await;
                return Err(error);
            }
        };
        let engine = Engine::start(store.clone(), board, settings).await?;
        Ok(Appliance {
            config: self.config,
            store,
            engine,
        })
    }
}

/// The engine's settings for `config`, for what counts without the board (a correction's recount
/// from the command line): the same as [`ApplianceBuilder::build`] gives the engine.
pub fn engine_settings(config: &ApplianceConfig) -> Result<EngineConfig, ConfigError> {
    Ok(EngineConfig {
        site: config.site.clone(),
        qc_policy: config.qc.policy,
        ..EngineConfig::new(config.indications()?)
    })
}

impl Appliance {
    /// Stops the engine (the board halted, a run in flight recorded `interrupted`) and closes the
    /// database.
    pub async fn shutdown(&self) {
        self.engine.shutdown().await;
        self.store.close().await;
    }
}

/// One past the last run's id (1 on a fresh database).
async fn next_simulation_seed(store: &Store) -> Result<u64, StoreError> {
    Ok(store
        .recent_runs(1)
        .await?
        .first()
        .map_or(1, |run| run.id.0.unsigned_abs() + 1))
}

/// The board a configuration chooses: the one place a [`BoardChoice`] becomes a board.
pub fn build_board(
    config: &ApplianceConfig,
    simulation: &Simulation,
    seed: u64,
) -> Result<Box<dyn Board>, AssemblyError> {
    let choice = &config.board;
    match choice {
        BoardChoice::Simulated => {
            let mut config = SimBoardConfig {
                seed,
                faults: simulation.faults.clone(),
                ..SimBoardConfig::default()
            };
            config.magnet.drift_c_per_s = simulation.magnet_drift_c_per_s;
            Ok(Box::new(SimulatedInstrument::simulated(
                config,
                SimClock::instant(),
            )))
        }
        BoardChoice::Spi => spi_board(&config.spi).map_err(|message| AssemblyError::Board {
            choice: choice.clone(),
            message,
        }),
        BoardChoice::Twin(address) => {
            twin_board(address.as_ref(), &config.twin).map_err(|message| AssemblyError::Board {
                choice: choice.clone(),
                message,
            })
        }
    }
}

/// The board twin at the given address (or the configured one). Nothing is connected here: the
/// engine takes the board over first thing, and a twin that is not there yet is a logged board
/// error, not a service that cannot start.
fn twin_board(
    address: Option<&TwinAddress>,
    settings: &TwinSettings,
) -> Result<Box<dyn Board>, String> {
    let address = address.or(settings.address.as_ref()).ok_or_else(|| {
        "no twin address: set [twin] address (e.g. \"unix:/run/ferrocount/twin.sock\") or give \
         --board twin:unix:PATH"
            .to_owned()
    })?;
    if settings.link_timeout_ms == 0 {
        return Err("[twin] link_timeout_ms must be positive".to_owned());
    }
    let options = TwinLinkOptions {
        io_timeout: Duration::from_millis(settings.link_timeout_ms),
        ..TwinLinkOptions::default()
    };
    Ok(Box::new(twin_instrument(address, options)))
}

/// The front-end board over spidev with its configured GPIO lines.
#[cfg(feature = "hw-linux")]
fn spi_board(spi: &SpiConfig) -> Result<Box<dyn Board>, String> {
    use crate::engine::Instrument;
    use crate::frontend::Frontend;
    use crate::linux;

    let device = spi.device.as_ref().ok_or_else(|| {
        "no SPI device configured: set [spi] device, e.g. \"/dev/spidev0.0\"".to_owned()
    })?;
    let device_text = device.display().to_string();
    let bus = linux::open_spidev(&device_text, spi.clock_hz).map_err(|e| e.to_string())?;
    let frontend = Frontend::new(bus, linux::Delay);
    let data_ready = spi
        .data_ready
        .as_ref()
        .map(|l| linux::open_data_ready(&l.chip.display().to_string(), l.line))
        .transpose()
        .map_err(|e| format!("[spi] data_ready: {e}"))?;
    let reset = spi
        .reset
        .as_ref()
        .map(|l| linux::open_reset_line(&l.chip.display().to_string(), l.line))
        .transpose()
        .map_err(|e| format!("[spi] reset: {e}"))?;
    Ok(match (data_ready, reset) {
        (Some(dr), Some(rst)) => Box::new(Instrument::hardware(
            frontend.with_data_ready(dr).with_reset_line(rst),
        )),
        (Some(dr), None) => Box::new(Instrument::hardware(frontend.with_data_ready(dr))),
        (None, Some(rst)) => Box::new(Instrument::hardware(frontend.with_reset_line(rst))),
        (None, None) => Box::new(Instrument::hardware(frontend)),
    })
}

/// Without the Linux adapters there is no real board to build.
#[cfg(not(feature = "hw-linux"))]
fn spi_board(_spi: &SpiConfig) -> Result<Box<dyn Board>, String> {
    Err(
        "this ferrocount was built without hardware support; build it with \
         `cargo build --release --features hw-linux` (or `--features rpi` on a Raspberry Pi) \
         to drive the front-end board"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &std::path::Path) -> ApplianceConfig {
        ApplianceConfig {
            data_dir: dir.to_owned(),
            ..ApplianceConfig::default()
        }
    }

    #[tokio::test]
    async fn the_default_configuration_assembles_a_simulated_appliance() {
        let dir = tempfile::tempdir().unwrap();
        let appliance = ApplianceBuilder::new(config_in(dir.path()))
            .build()
            .await
            .unwrap();
        assert!(appliance.engine.is_simulated());
        assert!(dir.path().join(crate::store::db::DATABASE_FILE).is_file());
        appliance.shutdown().await;
    }

    #[cfg(not(feature = "hw-linux"))]
    #[tokio::test]
    async fn spi_on_a_build_without_hardware_support_names_the_build_to_use() {
        let dir = tempfile::tempdir().unwrap();
        let config = ApplianceConfig {
            board: BoardChoice::Spi,
            ..config_in(dir.path())
        };
        let error = ApplianceBuilder::new(config)
            .build()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("board = \"spi\"") && error.contains("--features hw-linux"),
            "{error}"
        );
    }

    #[cfg(feature = "hw-linux")]
    #[tokio::test]
    async fn spi_without_a_device_or_with_a_missing_one_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ApplianceConfig {
            board: BoardChoice::Spi,
            ..config_in(dir.path())
        };
        let error = ApplianceBuilder::new(config.clone())
            .build()
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("[spi] device"), "{error}");
        config.spi.device = Some(PathBuf::from("/dev/spidev-absent.9"));
        let error = ApplianceBuilder::new(config)
            .build()
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("/dev/spidev-absent.9"), "{error}");
    }

    #[tokio::test]
    async fn simulated_faults_on_a_real_board_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = ApplianceConfig {
            board: BoardChoice::Spi,
            ..config_in(dir.path())
        };
        let simulation = Simulation {
            magnet_drift_c_per_s: 0.1,
            ..Simulation::default()
        };
        let error = ApplianceBuilder::new(config)
            .simulation(simulation)
            .build()
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("simulated board"), "{error}");
    }

    #[tokio::test]
    async fn a_bad_indications_file_stops_assembly_before_the_store_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let config = ApplianceConfig {
            indications_file: Some(dir.path().join("absent.toml")),
            ..config_in(&dir.path().join("data"))
        };
        let error = ApplianceBuilder::new(config)
            .build()
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("absent.toml"), "{error}");
        assert!(!dir.path().join("data").exists());
    }
}
