//! The assay's error type: what was wrong with the numbers handed to it, and where.

use thiserror::Error;

use super::plausibility::{CalibrationInvalid, ImplausibleCount};

/// Why an assay computation (tube statistics, calibration, counting, configuration) refused its
/// input. Every variant names the offending quantity so the message can be shown to a user as is.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AssayError {
    /// A tube had fewer replicate measurements than the statistic needs.
    #[error("{tube}: {found} replicate(s), at least {needed} needed")]
    TooFewReplicates {
        tube: String,
        found: usize,
        needed: usize,
    },
    /// A number that must be finite (and sometimes positive) was not.
    #[error("{what} must be a finite{positive} number, got {value}", positive = if *.must_be_positive { " positive" } else { "" })]
    InvalidNumber {
        what: String,
        value: f64,
        must_be_positive: bool,
    },
    /// The dilution series cannot support a calibration.
    #[error("calibration series: {0}")]
    Series(String),
    /// The linear model does not hold over the calibrated range (CLSI EP06).
    #[error(
        "calibration is not linear: deviation from linearity of {max_deviation_cells:.2} cells at {level_cells} cells exceeds the allowable {allowable_cells:.2} cells"
    )]
    Nonlinear {
        level_cells: f64,
        max_deviation_cells: f64,
        allowable_cells: f64,
    },
    /// No calibration level met the imprecision goal that defines the LoQ.
    #[error(
        "no calibration level reaches a CV of {cv_goal_pct:.0} % or less, so no limit of quantitation can be set"
    )]
    NoLoq { cv_goal_pct: f64 },
    /// The calibration was made for another reagent lot or echo time.
    #[error("calibration mismatch: {0}")]
    CalibrationMismatch(String),
    /// A calibration or configuration file could not be read.
    #[error("{what}: {reason}")]
    Config { what: String, reason: String },
    /// A calibration field outside its physical range.
    #[error(transparent)]
    Calibration(#[from] CalibrationInvalid),
    /// A count that must not become a result (not finite, negative, outside its own interval,
    /// or from a blood volume outside the physical range).
    #[error(transparent)]
    Implausible(#[from] ImplausibleCount),
    /// The requested indication has no configured cut-off.
    #[error("no cut-off is configured for indication `{0}` (known: {1})")]
    UnknownIndication(String, String),
}

impl AssayError {
    /// Checks that `value` is finite (and, when `positive`, above zero), naming it `what` otherwise.
    pub(crate) fn check(what: &str, value: f64, positive: bool) -> Result<f64, AssayError> {
        if value.is_finite() && (!positive || value > 0.0) {
            Ok(value)
        } else {
            Err(AssayError::InvalidNumber {
                what: what.to_string(),
                value,
                must_be_positive: positive,
            })
        }
    }
}
