//! The board as the engine sees it: the few procedures a sample run needs, behind one object-safe
//! trait, so the engine's thread is the same code for the simulated board and for hardware.
//!
//! [`Instrument`] wraps a connected [`Frontend`] (any SPI device and pins) and, on a simulated
//! board only (in process, or a twin behind a socket), the [`VirtualTubeSlot`] through which the
//! engine puts virtual tubes in the coil.
//!
//! Not for: the procedures themselves ([`crate::procedures`]) or the driver ([`crate::frontend`]).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use crate::frontend::{Frontend, NoPin};
use crate::procedures::{
    self, CpmgMeasurement, CpmgSettings, IdentifyReport, ProcedureError, TuneReport, TuneSettings,
};
use crate::sim_board::{SimBoard, SimBoardConfig, SimClock, SimDelay, VirtualTubeSlot};

use super::failure::{Failure, FailureKind};

/// Why a board operation failed, sorted by cause.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BoardFault {
    /// The board did not answer, answered wrongly, or reported a fault.
    #[error("{0}")]
    Board(String),
    /// The magnet temperature moved beyond its guard during a measurement.
    #[error("{0}")]
    Temperature(String),
}

impl BoardFault {
    fn from_procedure<E: std::fmt::Debug>(what: &str, error: ProcedureError<E>) -> Self {
        match error {
            ProcedureError::TemperatureDrift { .. } => {
                Self::Temperature(format!("{what}: {error}"))
            }
            other => Self::Board(format!("{what}: {other}")),
        }
    }
}

impl From<BoardFault> for Failure {
    fn from(fault: BoardFault) -> Self {
        match fault {
            BoardFault::Board(message) => Failure::new(FailureKind::Board, message),
            BoardFault::Temperature(message) => Failure::new(FailureKind::Temperature, message),
        }
    }
}

/// What the acquisition engine asks of a board. Object-safe, so the engine holds a
/// `Box<dyn Board>` whatever the bus and pins are.
pub trait Board: Send {
    /// Connects (identity and protocol check) and reads temperatures and frequency.
    fn identify(&mut self) -> Result<IdentifyReport, BoardFault>;
    /// Finds f0 and sets the RF frequency to it.
    fn tune(&mut self, settings: &TuneSettings) -> Result<TuneReport, BoardFault>;
    /// The magnet temperature now, °C.
    fn magnet_temp_c(&mut self) -> Result<f64, BoardFault>;
    /// Waits `ms` milliseconds (virtual time on the simulated board).
    fn wait_ms(&mut self, ms: u32);
    /// Acquires one phased CPMG echo train.
    fn measure_cpmg(&mut self, settings: &CpmgSettings) -> Result<CpmgMeasurement, BoardFault>;
    /// Stops any sequence and flushes the FIFO: the safe state to leave the board in.
    fn halt(&mut self) -> Result<(), BoardFault>;
    /// Takes over a board this process did not leave itself (at start-up, after a crash or a
    /// kill): halts it and flushes its FIFO before anything else ([`procedures::take_over`]).
    fn take_over(&mut self) -> Result<(), BoardFault>;
    /// The virtual tube holder: `Some` only on a simulated board.
    fn tube_slot(&self) -> Option<&dyn VirtualTubeSlot>;
}

/// A connected front end, and the tube slot when it is the simulated board.
pub struct Instrument<SPI, DR, RST, D> {
    frontend: Frontend<SPI, DR, RST, D>,
    tube_slot: Option<Box<dyn VirtualTubeSlot>>,
}

/// The instrument on the simulated board.
pub type SimulatedInstrument = Instrument<SimBoard, NoPin, NoPin, SimDelay>;

impl<SPI, DR, RST, D> Instrument<SPI, DR, RST, D> {
    /// Real hardware: no tube slot, so simulation truth is refused.
    pub fn hardware(frontend: Frontend<SPI, DR, RST, D>) -> Self {
        Self {
            frontend,
            tube_slot: None,
        }
    }

    /// A simulated board behind `frontend` whose tubes go through `tube_slot` (a board twin).
    pub fn with_tube_slot(
        frontend: Frontend<SPI, DR, RST, D>,
        tube_slot: Box<dyn VirtualTubeSlot>,
    ) -> Self {
        Self {
            frontend,
            tube_slot: Some(tube_slot),
        }
    }

    /// Gives the front end back.
    pub fn into_frontend(self) -> Frontend<SPI, DR, RST, D> {
        self.frontend
    }
}

impl SimulatedInstrument {
    /// A simulated board built from `config`, on `clock`.
    pub fn simulated(config: SimBoardConfig, clock: SimClock) -> Self {
        let board = SimBoard::new(config, clock.clone());
        let tube_slot = board.tube_slot();
        Self {
            frontend: Frontend::new(board, clock.delay()),
            tube_slot: Some(Box::new(tube_slot)),
        }
    }
}

impl<SPI, DR, RST, D> Board for Instrument<SPI, DR, RST, D>
where
    SPI: SpiDevice + Send,
    SPI::Error: std::fmt::Debug,
    DR: InputPin + Send,
    RST: OutputPin + Send,
    D: DelayNs + Send,
{
    fn identify(&mut self) -> Result<IdentifyReport, BoardFault> {
        procedures::identify(&mut self.frontend)
            .map_err(|e| BoardFault::from_procedure("identify", e))
    }

    fn tune(&mut self, settings: &TuneSettings) -> Result<TuneReport, BoardFault> {
        procedures::tune(&mut self.frontend, settings)
            .map_err(|e| BoardFault::from_procedure("tune", e))
    }

    fn magnet_temp_c(&mut self) -> Result<f64, BoardFault> {
        self.frontend
            .magnet_temp_c()
            .map_err(|e| BoardFault::Board(format!("reading the magnet temperature: {e}")))
    }

    fn wait_ms(&mut self, ms: u32) {
        self.frontend.delay_us(ms.saturating_mul(1000));
    }

    fn measure_cpmg(&mut self, settings: &CpmgSettings) -> Result<CpmgMeasurement, BoardFault> {
        procedures::measure_cpmg(&mut self.frontend, settings)
            .map_err(|e| BoardFault::from_procedure("CPMG", e))
    }

    fn halt(&mut self) -> Result<(), BoardFault> {
        let halt = |fe: &mut Frontend<SPI, DR, RST, D>| {
            fe.halt()?;
            fe.flush_fifo()
        };
        halt(&mut self.frontend).map_err(|e| BoardFault::Board(format!("halting the board: {e}")))
    }

    fn take_over(&mut self) -> Result<(), BoardFault> {
        procedures::take_over(&mut self.frontend)
            .map_err(|e| BoardFault::Board(format!("taking over the board: {e}")))
    }

    fn tube_slot(&self) -> Option<&dyn VirtualTubeSlot> {
        self.tube_slot.as_deref()
    }
}
