//! What a board twin knows and a real board would never say: its sequencer's real state, the
//! virtual tube and magnet, and the commands it has seen on the bus. Read over the simulation
//! side channel by tests and diagnostics; the appliance never decides anything from it.

use crate::frontend::SequencerState;
use crate::sim_board::VirtualTube;

/// Most bus commands a twin remembers per connection.
pub const BUS_LOG_CAPACITY: usize = 20_000;

/// A snapshot of the twin's truth.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TwinTruth {
    /// The board's serial number.
    pub serial: u32,
    /// The firmware version the board reports.
    pub firmware: (u8, u8, u8),
    /// The sequencer's state now (virtual time brought up to date).
    pub sequencer: SequencerState,
    /// START commands executed since the twin started.
    pub sequences_started: u32,
    /// Echoes waiting in the FIFO.
    pub fifo_level: usize,
    /// SPI transactions served since the twin started.
    pub transactions: u64,
    /// Virtual time since the twin started, seconds.
    pub virtual_time_s: f64,
    /// The magnet's true temperature, °C (not the sensor's reading).
    pub true_magnet_temp_c: f64,
    /// The true Larmor frequency, Hz.
    pub true_larmor_hz: f64,
    /// The tube in the coil.
    pub tube: VirtualTube,
    /// Bytes the host clocked out to the board since the twin started.
    pub bytes_written: u64,
    /// Bytes the board clocked out to the host since the twin started.
    pub bytes_read: u64,
    /// Bus connections accepted since the twin started.
    pub bus_connections: u64,
    /// The protocol commands written on the latest bus connection, in order (unreadable frames
    /// as `unreadable`), at most [`BUS_LOG_CAPACITY`].
    pub bus_log: Vec<String>,
}
