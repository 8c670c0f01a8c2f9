//! A QC flag: a stable code, a severity and a message a technician understands.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How serious a flag is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Look at it; the result may be released.
    Warn,
    /// The result must be held until the cause is resolved.
    Hold,
}

/// The stable code of a per-measurement flag (used in JSON, storage and dashboards).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum QcCode {
    /// Signal-to-noise ratio below its limit.
    LowSnr,
    /// First-echo amplitude far below the expected fill: air bubble or short fill.
    LowFill,
    /// First-echo amplitude far above the expected fill: clot, overfill or wrong tube.
    HighFill,
    /// The echo train decays with two components: clot, settling cells or particle clusters.
    BiexponentialPreferred,
    /// The T2 fit did not converge.
    FitNotConverged,
    /// Magnet temperature moved more than its limit during the run.
    TemperatureDrift,
    /// The replicate R2 values of a tube disagree more than their limit.
    ReplicateCvHigh,
    /// The decay model does not describe the echoes within their noise.
    Misfit,
    /// One replicate reading of a tube differs from the others beyond its uncertainty.
    ReplicateOutlier,
}

impl QcCode {
    /// The code's stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            QcCode::LowSnr => "low_snr",
            QcCode::LowFill => "low_fill",
            QcCode::HighFill => "high_fill",
            QcCode::BiexponentialPreferred => "biexponential_preferred",
            QcCode::FitNotConverged => "fit_not_converged",
            QcCode::TemperatureDrift => "temperature_drift",
            QcCode::ReplicateCvHigh => "replicate_cv_high",
            QcCode::Misfit => "misfit",
            QcCode::ReplicateOutlier => "replicate_outlier",
        }
    }
}

impl fmt::Display for QcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One raised flag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QcFlag {
    /// Stable code.
    pub code: QcCode,
    /// Warn or hold.
    pub severity: Severity,
    /// What the flag is about (a file, a tube, "run").
    pub subject: String,
    /// Plain-language message: what was seen and what to do.
    pub message: String,
}

/// True when any flag holds the result.
pub fn any_hold(flags: &[QcFlag]) -> bool {
    flags.iter().any(|f| f.severity == Severity::Hold)
}
