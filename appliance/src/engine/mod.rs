//! The acquisition engine: the one owner of the board, and the sample-run workflow.
//!
//! A service starts it once ([`Engine::start`]) and shares the cheap cloneable
//! [`EngineHandle`]: callers queue runs ([`EngineHandle::start_run`]), confirm tubes, cancel,
//! read a status snapshot, and subscribe to progress events ([`RunEvent`]). Requests reach the
//! board's thread over a channel; one run measures at a time, the others wait `queued`.
//!
//! A run: checks (today's QC, board identity, stable temperature) → tune → the approved
//! calibration for the reagent lot and TE → for each tube (control, quad, then optional CD45/IgG and single-marker
//! tubes) `awaiting_tube` until the operator confirms it (the simulation confirms by itself unless
//! asked not to) → replicate readings, each fitted, checked and committed with its raw train at
//! once → the result → `awaiting_release`. A failure names its cause ([`FailureKind`]: board,
//! temperature, QC, calibration, storage) and keeps what was measured. At start, runs a crash left
//! in flight become `interrupted`; [`EngineHandle::shutdown`] halts the board and records every
//! run it held.
//!
//! On the simulated board a run may say what its virtual tubes hold ([`SimulatedTruth`]), and the
//! simulated lot ([`SIMULATED_LOT`]) is calibrated from a simulated dilution series when asked
//! ([`EngineHandle::calibrate_simulated_lot`], between runs), the calibration stored pending
//! until a lab admin approves it. On hardware, simulation truth is refused.
//!
//! Not here: HTTP, configuration files, the science (nmr-core), SQL (the store).

mod config;
mod control;
pub mod dilution_series;
mod error;
mod event;
mod failure;
mod handle;
mod instrument;
mod reading;
mod request;
mod run_report;
mod simulated_lot;
mod status;
mod worker;
mod workflow;

pub use config::EngineConfig;
pub use error::EngineError;
pub use event::{EventKind, RunEvent};
pub use failure::{Failure, FailureKind};
pub use handle::{DRAW_CLOCK_SKEW, EARLIEST_DRAW_YEAR, Engine, EngineHandle, check_draw_time};
pub use instrument::{Board, BoardFault, Instrument, SimulatedInstrument};
pub use reading::{Reading, t2_distribution};
pub use request::{DEFAULT_REPLICATES, MAX_REPLICATES, MIN_REPLICATES, RunRequest, RunTicket};
pub use run_report::{ReportInputs, RunReport, TubeReadings};
pub use simulated_lot::{
    DEFAULT_CONTROL_T2_MS, MAX_SIMULATED_CELLS, SIMULATED_BACKGROUND_PER_S, SIMULATED_LOT,
    SIMULATED_PER_CELL_DELTA_R2_PER_S, SimulatedTruth,
};
pub use status::{BoardStatus, EngineStatus, RunProgress};
