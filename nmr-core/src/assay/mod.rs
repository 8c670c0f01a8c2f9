//! The CTC assay: from replicate R2 values of a run's tubes to a count a clinician can trust.
//!
//! - [`tube`], [`replicate`]: what each tube holds; per-tube mean, SD and CV of R2.
//! - [`delta_r2`]: ΔR2 = R2(quad) − R2(control) with a Welch SE, and the marker profile.
//! - [`calibration`]: the per-lot, per-echo-time line ΔR2 = b + s·N from a dilution series, its
//!   linearity ([`linearity`], EP06) and detection limits ([`ep17`], EP17-A2), stored as TOML.
//! - [`count`]: N = (ΔR2 − b)/s with intervals, per mL and per 7.5 mL with the Poisson sampling of
//!   the draw ([`poisson`], Garwood), and the reporting category.
//! - [`indication`]: cut-offs per indication (configuration) and the favourable/unfavourable call.
//! - [`plausibility`]: the physical ranges every calibration and every count is checked against
//!   before anything uses it.
//!
//! Pure: numbers in, numbers and reports out. Not here: fitting echo trains ([`crate::fit`]),
//! files, clocks, QC flags ([`crate::qc`]).

pub mod calibration;
pub mod count;
pub mod delta_r2;
pub mod ep17;
pub mod error;
pub mod indication;
pub mod linearity;
pub mod plausibility;
pub mod poisson;
pub mod quantile;
pub mod replicate;
pub mod report;
pub mod tube;
pub mod weighted_fit;

pub use calibration::{
    Calibration, CalibrationOptions, LobMethod, SpikedSample, check_series_design,
};
pub use count::{CountCategory, CountEstimate};
pub use delta_r2::{DeltaR2, MarkerSignal, SeSource, marker_profile};
pub use error::AssayError;
pub use indication::{Call, CallOutcome, Cutoff, Indications};
pub use plausibility::{
    CalibrationInvalid, ImplausibleCount, check_blood_ml, check_calibration, check_count,
};
pub use replicate::{
    MIN_OUTLIER_RELATIVE_DIFFERENCE, OUTLIER_SIGNIFICANCE, Replicate, ReplicateOutlier,
    TubeSummary, find_outlier,
};
pub use report::{CountInputs, CountReport, TubeSignal};
pub use tube::{Marker, TubeKind};
