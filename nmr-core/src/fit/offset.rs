//! Whether a decay model carries a constant baseline: the `--offset free|none|auto` choice.
//!
//! - `free` fits the baseline C (the default: unbiased whatever the baseline, at the price of a
//!   wider T2 interval when the window is short against T2);
//! - `none` fixes C = 0 (what an instrument whose receiver offsets are cancelled, or a vendor who
//!   fits without one, does);
//! - `auto` fits both and keeps the offset when the extra-sum-of-squares F-test finds it
//!   significant at [`OFFSET_SIGNIFICANCE`]: `F = (RSS_none − RSS_free)/(RSS_free/(m − p))`, one
//!   extra parameter. The test is the F rather than χ² against the noise estimate, so it does not
//!   lean on that estimate; a liberal level (0.01) is chosen because wrongly dropping a real offset
//!   biases T2, while wrongly keeping a null one only widens its interval.
//!
//! The report ([`OffsetChoice`]) says which model was used and why.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

/// Significance level at which `auto` keeps the offset.
pub const OFFSET_SIGNIFICANCE: f64 = 0.01;

/// The offset model asked for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetModel {
    /// Fit a constant baseline C.
    #[default]
    Free,
    /// No baseline: C = 0.
    None,
    /// Decide by the F-test; see the module docs.
    Auto,
}

impl OffsetModel {
    /// The name the command line and the JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetModel::Free => "free",
            OffsetModel::None => "none",
            OffsetModel::Auto => "auto",
        }
    }
}

/// Which offset model a fit used, and why.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OffsetChoice {
    /// What was asked for.
    pub requested: OffsetModel,
    /// What was used: `free` or `none`.
    pub used: OffsetModel,
    /// Why, in words.
    pub reason: String,
    /// The F statistic of `auto`'s test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f_statistic: Option<f64>,
    /// Its p-value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
}

impl Default for OffsetChoice {
    /// What stored reports from before the choice existed used: a free offset.
    fn default() -> Self {
        Self::as_asked(OffsetModel::Free)
    }
}

impl OffsetChoice {
    /// `free` or `none` used as asked.
    pub fn as_asked(model: OffsetModel) -> Self {
        Self {
            requested: model,
            used: model,
            reason: format!("--offset {} was asked for", model.as_str()),
            f_statistic: None,
            p_value: None,
        }
    }

    /// Used `none` although `requested` asked otherwise, because the data cannot carry an offset.
    pub fn forced_none(requested: OffsetModel, why: &str) -> Self {
        Self {
            requested,
            used: OffsetModel::None,
            reason: why.to_owned(),
            f_statistic: None,
            p_value: None,
        }
    }

    /// `auto`'s verdict from the two fits' residual sums of squares, `m` points and `p_free`
    /// parameters in the model with the offset.
    pub fn decide(rss_none: f64, rss_free: f64, m: usize, p_free: usize) -> Self {
        let dof = m.saturating_sub(p_free).max(1) as f64;
        let f = if rss_free > 0.0 {
            ((rss_none - rss_free).max(0.0)) / (rss_free / dof)
        } else if rss_none > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        let p = if f.is_infinite() {
            0.0
        } else {
            FisherSnedecor::new(1.0, dof).map_or(f64::NAN, |d| d.sf(f))
        };
        let keep = p < OFFSET_SIGNIFICANCE;
        Self {
            requested: OffsetModel::Auto,
            used: if keep {
                OffsetModel::Free
            } else {
                OffsetModel::None
            },
            reason: if keep {
                format!(
                    "auto: the offset is significant (F = {f:.3}, p = {p:.2e} < {OFFSET_SIGNIFICANCE})"
                )
            } else {
                format!(
                    "auto: no significant offset (F = {f:.3}, p = {p:.3} ≥ {OFFSET_SIGNIFICANCE})"
                )
            },
            f_statistic: Some(f),
            p_value: Some(p),
        }
    }
}
