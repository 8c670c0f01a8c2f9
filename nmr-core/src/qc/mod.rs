//! Quality control: flags on single measurements and runs ([`measurement`]), the mono- versus
//! bi-exponential model comparison behind one of them ([`biexponential`]), and Westgard rules
//! over control-material histories ([`westgard`]).
//!
//! Pure checks over numbers; they decide nothing about storage or release, they only report
//! [`QcFlag`]s and [`westgard::WestgardViolation`]s with a severity (warn or hold).

pub mod biexponential;
pub mod control_level;
pub mod flag;
pub mod measurement;
pub mod westgard;

pub use biexponential::{BiexponentialCheck, BiexponentialOptions, compare_mono_bi};
pub use control_level::ControlLevel;
pub use flag::{QcCode, QcFlag, Severity, any_hold};
pub use measurement::{
    MeasurementQcInput, MeasurementQcLimits, MisfitSeen, check_measurement, check_replicate_cv,
    check_replicate_outlier, check_temperature_drift, median_fill_amplitude,
};
pub use westgard::{
    ControlResult, ControlTarget, QcVerdict, WestgardRule, WestgardViolation, evaluate,
    judge_latest,
};
