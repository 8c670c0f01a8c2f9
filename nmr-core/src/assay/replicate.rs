//! Replicate R2 measurements of one tube and their summary (mean, SD, CV).
//!
//! Each tube is read several times (default 3); each reading is one T2 fit, kept here as its R2
//! and the fit's own standard error. The summary's SD is the sample SD of the replicate R2 values
//! (n − 1 denominator): it captures tube handling, temperature and fit noise together, which the
//! fits' own SEs alone do not.

use serde::{Deserialize, Serialize};

use super::error::AssayError;
use super::tube::TubeKind;

/// One reading of one tube: a fitted R2 and that fit's standard error.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Replicate {
    /// Fitted transverse relaxation rate, 1/s.
    pub r2_per_s: f64,
    /// Standard error of `r2_per_s` from the fit's covariance, 1/s.
    pub r2_per_s_se: f64,
}

impl Replicate {
    /// A replicate from a fitted R2 and its standard error.
    pub fn new(r2_per_s: f64, r2_per_s_se: f64) -> Self {
        Replicate {
            r2_per_s,
            r2_per_s_se,
        }
    }
}

/// Replicate statistics of one tube.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TubeSummary {
    /// What the tube holds.
    pub kind: TubeKind,
    /// Number of replicate readings.
    pub replicates: usize,
    /// Mean R2 over the replicates, 1/s.
    pub mean_r2_per_s: f64,
    /// Sample SD of the replicate R2 values (n − 1 denominator), 1/s.
    pub sd_r2_per_s: f64,
    /// Coefficient of variation of the replicate R2 values, as a fraction (0.01 = 1 %).
    pub cv: f64,
    /// Root-mean-square of the fits' own R2 standard errors, 1/s: the precision one reading has
    /// from its noise alone, used as a floor for the tube's uncertainty.
    pub fit_se_rms_per_s: f64,
}

/// A replicate reading that stands apart from the others of its tube.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicateOutlier {
    /// Which reading (0-based, in the order given).
    pub index: usize,
    /// Its R2, 1/s.
    pub r2_per_s: f64,
    /// The mean R2 of the other readings, 1/s.
    pub others_r2_per_s: f64,
    /// `r2 / others − 1`.
    pub relative_difference: f64,
    /// The difference in standard errors.
    pub z: f64,
}

/// Family-wise level of [`find_outlier`]'s test.
pub const OUTLIER_SIGNIFICANCE: f64 = 0.01;
/// Smallest relative difference [`find_outlier`] names: half the default replicate-CV limit, so
/// that a reading is named only when it matters for the tube.
pub const MIN_OUTLIER_RELATIVE_DIFFERENCE: f64 = 0.01;

/// The rule that names a drifting or otherwise deviant reading among a tube's replicates.
///
/// With at least three readings, each reading i is compared with the mean of the others:
/// `zᵢ = (R2ᵢ − mean₋ᵢ) / √(seᵢ² + Σ_{j≠i} seⱼ²/(n − 1)²)`, the standard errors being the fits'
/// own (honest: widened on misfit). The reading with the largest |zᵢ| is named when |zᵢ| exceeds
/// the two-sided Bonferroni critical value at [`OUTLIER_SIGNIFICANCE`] over the n readings, and
/// its R2 differs from the others' by at least [`MIN_OUTLIER_RELATIVE_DIFFERENCE`]. With two
/// readings neither can be told to be the odd one: `None`.
pub fn find_outlier(replicates: &[Replicate]) -> Option<ReplicateOutlier> {
    use statrs::distribution::{ContinuousCDF, Normal};
    let n = replicates.len();
    if n < 3 {
        return None;
    }
    let critical = Normal::standard().inverse_cdf(1.0 - OUTLIER_SIGNIFICANCE / (2.0 * n as f64));
    let mut best: Option<ReplicateOutlier> = None;
    for (i, r) in replicates.iter().enumerate() {
        let others: Vec<&Replicate> = replicates
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| o)
            .collect();
        let m = others.len() as f64;
        let mean = others.iter().map(|o| o.r2_per_s).sum::<f64>() / m;
        let var_mean = others.iter().map(|o| o.r2_per_s_se.powi(2)).sum::<f64>() / (m * m);
        let scale = (r.r2_per_s_se.powi(2) + var_mean).sqrt();
        if !(scale > 0.0 && mean > 0.0) {
            continue;
        }
        let z = (r.r2_per_s - mean) / scale;
        if best.as_ref().is_none_or(|b| z.abs() > b.z.abs()) {
            best = Some(ReplicateOutlier {
                index: i,
                r2_per_s: r.r2_per_s,
                others_r2_per_s: mean,
                relative_difference: r.r2_per_s / mean - 1.0,
                z,
            });
        }
    }
    best.filter(|b| {
        b.z.abs() > critical && b.relative_difference.abs() >= MIN_OUTLIER_RELATIVE_DIFFERENCE
    })
}

/// Fewest replicates a tube needs for an SD.
pub const MIN_REPLICATES: usize = 2;

impl TubeSummary {
    /// Summarises the replicate readings of one tube. Needs at least [`MIN_REPLICATES`] finite
    /// readings with positive R2 and non-negative SE.
    pub fn from_replicates(kind: TubeKind, replicates: &[Replicate]) -> Result<Self, AssayError> {
        if replicates.len() < MIN_REPLICATES {
            return Err(AssayError::TooFewReplicates {
                tube: kind.to_string(),
                found: replicates.len(),
                needed: MIN_REPLICATES,
            });
        }
        for (index, replicate) in replicates.iter().enumerate() {
            AssayError::check(
                &format!("{kind} replicate {} R2 (1/s)", index + 1),
                replicate.r2_per_s,
                true,
            )?;
            let se = AssayError::check(
                &format!("{kind} replicate {} R2 SE (1/s)", index + 1),
                replicate.r2_per_s_se,
                false,
            )?;
            if se < 0.0 {
                return Err(AssayError::InvalidNumber {
                    what: format!("{kind} replicate {} R2 SE (1/s)", index + 1),
                    value: se,
                    must_be_positive: true,
                });
            }
        }
        let n = replicates.len() as f64;
        let mean = replicates.iter().map(|r| r.r2_per_s).sum::<f64>() / n;
        let variance = replicates
            .iter()
            .map(|r| (r.r2_per_s - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        let sd = variance.sqrt();
        let fit_se_rms = (replicates
            .iter()
            .map(|r| r.r2_per_s_se.powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        Ok(TubeSummary {
            kind,
            replicates: replicates.len(),
            mean_r2_per_s: mean,
            sd_r2_per_s: sd,
            cv: sd / mean,
            fit_se_rms_per_s: fit_se_rms,
        })
    }

    /// Standard error of the tube's mean R2 from the replicate spread, SD/√n, 1/s.
    pub fn se_of_mean_per_s(&self) -> f64 {
        self.sd_r2_per_s / (self.replicates as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drifting_reading_is_named_and_agreeing_ones_are_not() {
        let agree = [
            Replicate::new(3.000, 0.01),
            Replicate::new(3.012, 0.01),
            Replicate::new(2.995, 0.01),
        ];
        assert!(find_outlier(&agree).is_none());
        let drifted = [
            Replicate::new(3.000, 0.01),
            Replicate::new(3.150, 0.01),
            Replicate::new(2.995, 0.01),
        ];
        let outlier = find_outlier(&drifted).expect("reading 2 drifted");
        assert_eq!(outlier.index, 1);
        assert!((outlier.relative_difference - (3.150 / 2.9975 - 1.0)).abs() < 1e-12);
        // The same spread with honest (wide) errors is not an outlier, nor with two readings.
        let wide: Vec<Replicate> = drifted
            .iter()
            .map(|r| Replicate::new(r.r2_per_s, 0.1))
            .collect();
        assert!(find_outlier(&wide).is_none());
        assert!(find_outlier(&drifted[..2]).is_none());
    }

    #[test]
    fn summary_matches_hand_computation() {
        // R2 = 3.0, 3.1, 3.2: mean 3.1, SD 0.1 (n − 1), CV 0.1/3.1.
        let replicates = [
            Replicate::new(3.0, 0.01),
            Replicate::new(3.1, 0.02),
            Replicate::new(3.2, 0.02),
        ];
        let summary = TubeSummary::from_replicates(TubeKind::Control, &replicates).expect("valid");
        assert!((summary.mean_r2_per_s - 3.1).abs() < 1e-12);
        assert!((summary.sd_r2_per_s - 0.1).abs() < 1e-12);
        assert!((summary.cv - 0.1 / 3.1).abs() < 1e-12);
        assert!((summary.fit_se_rms_per_s - (0.0009_f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((summary.se_of_mean_per_s() - 0.1 / 3f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn one_replicate_or_bad_numbers_are_errors() {
        let one = [Replicate::new(3.0, 0.01)];
        assert!(matches!(
            TubeSummary::from_replicates(TubeKind::Quad, &one),
            Err(AssayError::TooFewReplicates { found: 1, .. })
        ));
        let nan = [Replicate::new(3.0, 0.01), Replicate::new(f64::NAN, 0.01)];
        assert!(TubeSummary::from_replicates(TubeKind::Quad, &nan).is_err());
        let negative_se = [Replicate::new(3.0, 0.01), Replicate::new(3.0, -0.01)];
        assert!(TubeSummary::from_replicates(TubeKind::Quad, &negative_se).is_err());
    }
}
