//! Why a run stopped short of a result: a failure with its cause, a cancel, or a shutdown.

use std::fmt;

use serde::Serialize;

/// The kind of cause of a failed run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The board: no answer, a protocol or board fault, a refused setting.
    Board,
    /// The magnet temperature was unstable or drifted during a measurement.
    Temperature,
    /// Quality control: today's QC rejected, or readings unusable for a result.
    Qc,
    /// No calibration for the reagent lot and echo time, or a calibration that does not apply.
    Calibration,
    /// The database refused or failed a write.
    Storage,
}

impl FailureKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Board => "board",
            Self::Temperature => "temperature",
            Self::Qc => "qc",
            Self::Calibration => "calibration",
            Self::Storage => "storage",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run's failure: its kind and a sentence a technician can act on. Displayed (and stored as the
/// run's failure cause) as `kind: message`.
#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{kind}: {message}")]
pub struct Failure {
    /// The kind of cause.
    pub kind: FailureKind,
    /// What happened.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(error: crate::store::StoreError) -> Self {
        Self::new(FailureKind::Storage, error.to_string())
    }
}

/// Why the workflow stopped early.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Stop {
    /// It failed.
    Failed(Failure),
    /// Someone cancelled it, for this reason.
    Cancelled(crate::store::Actor, String),
    /// The engine is shutting down.
    Shutdown,
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Self {
        Self::Failed(failure)
    }
}

impl From<super::instrument::BoardFault> for Stop {
    fn from(fault: super::instrument::BoardFault) -> Self {
        Self::Failed(fault.into())
    }
}

impl From<crate::store::StoreError> for Stop {
    fn from(error: crate::store::StoreError) -> Self {
        Self::Failed(error.into())
    }
}
