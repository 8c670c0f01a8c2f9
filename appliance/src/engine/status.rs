//! A snapshot of the instrument and of the engine's work, cheap to read at any moment (the web
//! face's dashboard and `GET /api/v1/instrument`).

use serde::Serialize;

use crate::store::RunId;
use crate::store::runs::RunState;

/// The instrument and what the engine is doing.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EngineStatus {
    /// The board, as last identified.
    pub board: Option<BoardStatus>,
    /// Larmor frequency found by the last tune, Hz (the engine's since it started; the
    /// operations layer's `instrument_status` falls back on the instrument log).
    pub f0_hz: Option<f64>,
    /// When the last tune was done, RFC 3339 (the engine's since it started; the operations
    /// layer's `instrument_status` reads it from the instrument log, which outlives a restart).
    pub last_tune_at: Option<String>,
    /// Magnet temperature at the last reading, °C.
    pub magnet_temp_c: Option<f64>,
    /// The run being measured.
    pub current_run: Option<RunProgress>,
    /// Runs waiting for the board, oldest first.
    pub queued: Vec<RunId>,
    /// True once the engine has stopped (shutdown, or its thread ended).
    pub stopped: bool,
}

/// The board's identity.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardStatus {
    /// Serial number.
    pub serial: u32,
    /// Firmware version.
    pub firmware: String,
    /// Whether it is the simulated board.
    pub simulated: bool,
}

/// Where the current run is.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunProgress {
    /// The run.
    pub run_id: RunId,
    /// Its state.
    pub state: RunState,
    /// What it is doing, in words.
    pub step: String,
}
