//! The driver's error type: the bus error wrapped, plus everything the protocol can report.

use super::protocol::BoardStatus;

/// What went wrong talking to the front end. `E` is the SPI bus error.
#[derive(Debug, thiserror::Error)]
pub enum Error<E> {
    /// The SPI bus reported an error.
    #[error("SPI bus error: {0:?}")]
    Spi(E),
    /// A GPIO line (data-ready or reset) reported an error.
    #[error("GPIO error on the {line} line: {kind:?}")]
    Pin {
        /// Which line.
        line: &'static str,
        /// What the pin driver said.
        kind: embedded_hal::digital::ErrorKind,
    },
    /// A value was refused before any I/O because it does not fit the board.
    #[error("invalid {name} = {value}: allowed {allowed}")]
    InvalidArgument {
        /// Parameter name with its unit.
        name: &'static str,
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: String,
    },
    /// A pulse program could not be built or loaded.
    #[error("pulse program: {0}")]
    Program(#[from] super::pulse_program::ProgramError),
    /// Responses kept failing their CRC after every retry.
    #[error("{command}: {attempts} corrupted responses in a row (CRC), giving up")]
    Crc {
        /// The command.
        command: &'static str,
        /// Attempts made.
        attempts: u32,
    },
    /// The board did not answer within the retry budget.
    #[error(
        "{command}: no answer from the board after {polls} polls over {attempts} attempts (about {budget_us} µs)"
    )]
    Timeout {
        /// The command.
        command: &'static str,
        /// Attempts (request sends) made.
        attempts: u32,
        /// Response polls made in total.
        polls: u32,
        /// Time budget spent waiting, in microseconds.
        budget_us: u64,
    },
    /// The board speaks another protocol major version.
    #[error(
        "board speaks protocol {board_major}.{board_minor}, this host speaks {host_major}.{host_minor}: incompatible major version"
    )]
    VersionMismatch {
        /// Host major version.
        host_major: u8,
        /// Host minor version.
        host_minor: u8,
        /// Board major version.
        board_major: u8,
        /// Board minor version.
        board_minor: u8,
    },
    /// The identity block does not start with the expected magic: not a Ferrocount front end.
    #[error("not a Ferrocount front end: identity magic {found:02x?}")]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// The board refused a command.
    #[error("{command}: board answered {status:?}")]
    Board {
        /// The command.
        command: &'static str,
        /// The board's status code.
        status: BoardStatus,
    },
    /// A well-formed frame carried a payload of the wrong shape.
    #[error("{command}: malformed answer ({what})")]
    Protocol {
        /// The command.
        command: &'static str,
        /// What was wrong.
        what: &'static str,
    },
    /// The echo FIFO overflowed: echoes were lost, the data are incomplete.
    #[error("echo FIFO overflow: {echoes_lost} echoes lost")]
    FifoOverflow {
        /// Echoes dropped by the board.
        echoes_lost: u16,
    },
    /// The board reset (power, watchdog, reset line) behind the host's back; its state is lost.
    #[error("the board reset unexpectedly; registers, program and data are lost")]
    BoardReset,
    /// The sequencer stopped with an error code.
    #[error("sequencer error code {code}")]
    Sequencer {
        /// The board's sequencer error code.
        code: u8,
    },
    /// The caller's poll hook aborted a wait (e.g. a temperature guard); the board was left running.
    #[error("aborted: {reason}")]
    Aborted {
        /// Why.
        reason: String,
    },
    /// A running sequence did not finish within its time budget.
    #[error("sequence still running after {waited_us} µs (expected {expected_us} µs)")]
    SequenceTimeout {
        /// Expected duration.
        expected_us: u64,
        /// Time waited.
        waited_us: u64,
    },
}
