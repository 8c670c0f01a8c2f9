//! Errors of the engine's handle: a request refused before anything was queued, or a request
//! about a run the engine cannot act on.

use crate::store::runs::RunState;
use crate::store::{RunId, StoreError};

/// Why the engine refused a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A field of the request is wrong.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Simulation truth was given, but the board is real hardware.
    #[error(
        "simulated tube contents were given, but the engine drives a real board: simulation truth is refused on hardware"
    )]
    SimulationOnHardware,
    /// The run is not one the engine is working on.
    #[error("run {0} is not queued or measuring on this appliance")]
    NotActive(RunId),
    /// The run is not waiting for a tube.
    #[error("run {0} is not waiting for a tube")]
    NotAwaitingTube(RunId),
    /// The run cannot be cancelled in its state.
    #[error("run {run} is {state}: it cannot be cancelled")]
    NotCancellable {
        /// The run.
        run: RunId,
        /// Its state.
        state: RunState,
    },
    /// The simulated lot's dilution series gave no calibration, or the board is not simulated.
    #[error("no calibration was made: {0}")]
    Calibration(super::failure::Failure),
    /// The engine has stopped.
    #[error("the acquisition engine has stopped")]
    Stopped,
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
