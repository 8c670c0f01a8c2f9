//! ΔR2 = R2(labelled tube) − R2(control tube), with an honest standard error.
//!
//! The SE combines both tubes' replicate spread the Welch way, SE = √(s₁²/n₁ + s₂²/n₂), and
//! carries the Welch–Satterthwaite degrees of freedom, so a 95 % interval uses a Student t
//! quantile (with three replicates per tube that is typically 2.8–4.3, not 1.96: the price of
//! estimating an SD from three numbers). Three replicates can agree by chance far better than the
//! instrument can measure; so the SE never goes below the fits' own precision,
//! √(σ̄²_fit,1/n₁ + σ̄²_fit,2/n₂), and when that floor is used its degrees of freedom are infinite
//! (the fit SEs come from hundreds of echoes each).

use serde::{Deserialize, Serialize};

use super::error::AssayError;
use super::quantile::t95;
use super::replicate::TubeSummary;
use super::tube::{Marker, TubeKind};

/// Which term set the SE of a ΔR2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeSource {
    /// Replicate spread of the two tubes (Welch).
    ReplicateSpread,
    /// The fits' own standard errors (the replicates agreed better than the fits allow).
    FitPrecision,
}

/// A ΔR2 with its standard error and degrees of freedom.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeltaR2 {
    /// R2(labelled) − R2(control), 1/s.
    pub delta_r2_per_s: f64,
    /// Standard error of `delta_r2_per_s`, 1/s.
    pub se_per_s: f64,
    /// Degrees of freedom of `se_per_s` (Welch–Satterthwaite; infinite when the fit floor is used).
    pub df: f64,
    /// Which term set the SE.
    pub se_source: SeSource,
}

impl DeltaR2 {
    /// ΔR2 of `labelled` against `control`.
    pub fn between(labelled: &TubeSummary, control: &TubeSummary) -> Self {
        let v1 = labelled.sd_r2_per_s.powi(2) / labelled.replicates as f64;
        let v2 = control.sd_r2_per_s.powi(2) / control.replicates as f64;
        let welch_var = v1 + v2;
        let floor_var = labelled.fit_se_rms_per_s.powi(2) / labelled.replicates as f64
            + control.fit_se_rms_per_s.powi(2) / control.replicates as f64;
        let delta = labelled.mean_r2_per_s - control.mean_r2_per_s;
        if welch_var >= floor_var && welch_var > 0.0 {
            let df1 = (labelled.replicates - 1) as f64;
            let df2 = (control.replicates - 1) as f64;
            let df = welch_var.powi(2) / (v1.powi(2) / df1 + v2.powi(2) / df2);
            DeltaR2 {
                delta_r2_per_s: delta,
                se_per_s: welch_var.sqrt(),
                df,
                se_source: SeSource::ReplicateSpread,
            }
        } else {
            DeltaR2 {
                delta_r2_per_s: delta,
                se_per_s: floor_var.sqrt(),
                df: f64::INFINITY,
                se_source: SeSource::FitPrecision,
            }
        }
    }

    /// Two-sided 95 % confidence interval of ΔR2, 1/s.
    pub fn ci95_per_s(&self) -> [f64; 2] {
        let half = t95(self.df) * self.se_per_s;
        [self.delta_r2_per_s - half, self.delta_r2_per_s + half]
    }
}

/// ΔR2 of one single-marker tube against the control: one entry of a marker profile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarkerSignal {
    /// The marker the tube was labelled with.
    pub marker: Marker,
    /// Its ΔR2 against the control tube.
    pub delta: DeltaR2,
}

/// The marker profile of a run: ΔR2 per single-marker tube, in the order given.
///
/// A profile describes which markers the cells carry; it is never turned into counts that are
/// added up, because one cell carries several markers and would be counted several times. The
/// count comes from the quad-marker tube alone.
pub fn marker_profile(
    control: &TubeSummary,
    single_marker_tubes: &[TubeSummary],
) -> Result<Vec<MarkerSignal>, AssayError> {
    single_marker_tubes
        .iter()
        .map(|tube| match tube.kind {
            TubeKind::Single(marker) => Ok(MarkerSignal {
                marker,
                delta: DeltaR2::between(tube, control),
            }),
            other => Err(AssayError::Series(format!(
                "{other} given where a single-marker tube was expected"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assay::replicate::Replicate;

    fn tube(kind: TubeKind, values: &[f64], se: f64) -> TubeSummary {
        let replicates: Vec<Replicate> = values.iter().map(|&v| Replicate::new(v, se)).collect();
        TubeSummary::from_replicates(kind, &replicates).expect("valid replicates")
    }

    #[test]
    fn welch_se_and_df_match_hand_computation() {
        // Quad: 3.5, 3.6, 3.7 (s² = 0.01); control: 3.0, 3.0, 3.3 (mean 3.1, s² = 0.03).
        let quad = tube(TubeKind::Quad, &[3.5, 3.6, 3.7], 0.001);
        let control = tube(TubeKind::Control, &[3.0, 3.0, 3.3], 0.001);
        let delta = DeltaR2::between(&quad, &control);
        let v1: f64 = 0.01 / 3.0;
        let v2: f64 = 0.03 / 3.0;
        assert!((delta.delta_r2_per_s - 0.5).abs() < 1e-12);
        assert!((delta.se_per_s - (v1 + v2).sqrt()).abs() < 1e-12);
        let df = (v1 + v2).powi(2) / (v1.powi(2) / 2.0 + v2.powi(2) / 2.0);
        assert!((delta.df - df).abs() < 1e-9);
        assert_eq!(delta.se_source, SeSource::ReplicateSpread);
        let [low, high] = delta.ci95_per_s();
        assert!(low < 0.5 && high > 0.5);
    }

    #[test]
    fn agreeing_replicates_fall_back_to_fit_precision() {
        let quad = tube(TubeKind::Quad, &[3.5, 3.5, 3.5], 0.03);
        let control = tube(TubeKind::Control, &[3.0, 3.0, 3.0], 0.03);
        let delta = DeltaR2::between(&quad, &control);
        assert_eq!(delta.se_source, SeSource::FitPrecision);
        assert!((delta.se_per_s - (2.0 * 0.0009_f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!(delta.df.is_infinite());
    }

    #[test]
    fn marker_profile_refuses_non_marker_tubes() {
        let control = tube(TubeKind::Control, &[3.0, 3.1, 3.0], 0.01);
        let her2 = tube(TubeKind::Single(Marker::Her2), &[3.2, 3.3, 3.2], 0.01);
        let profile = marker_profile(&control, std::slice::from_ref(&her2)).expect("markers");
        assert_eq!(profile[0].marker, Marker::Her2);
        assert!((profile[0].delta.delta_r2_per_s - 0.2).abs() < 1e-9);
        let quad = tube(TubeKind::Quad, &[3.2, 3.3, 3.2], 0.01);
        assert!(marker_profile(&control, &[quad]).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::assay::replicate::Replicate;
    use proptest::prelude::*;

    proptest! {
        /// A common shift of every R2 (a different patient baseline) changes neither ΔR2 nor its
        /// SE or degrees of freedom; swapping the tubes negates ΔR2 and keeps the SE.
        #[test]
        fn baseline_shift_invariance(
            quad in proptest::collection::vec(2.0f64..5.0, 2..6),
            control in proptest::collection::vec(2.0f64..5.0, 2..6),
            se in 0.0f64..0.01,
            shift in -1.0f64..1.0,
        ) {
            let summary = |kind, values: &[f64], shift: f64| {
                let replicates: Vec<Replicate> =
                    values.iter().map(|v| Replicate::new(v + shift, se)).collect();
                TubeSummary::from_replicates(kind, &replicates).expect("valid")
            };
            let a = DeltaR2::between(&summary(TubeKind::Quad, &quad, 0.0), &summary(TubeKind::Control, &control, 0.0));
            let b = DeltaR2::between(&summary(TubeKind::Quad, &quad, shift), &summary(TubeKind::Control, &control, shift));
            prop_assert!((a.delta_r2_per_s - b.delta_r2_per_s).abs() < 1e-9);
            prop_assert!((a.se_per_s - b.se_per_s).abs() < 1e-9);
            let swapped = DeltaR2::between(&summary(TubeKind::Control, &control, 0.0), &summary(TubeKind::Quad, &quad, 0.0));
            prop_assert!((a.delta_r2_per_s + swapped.delta_r2_per_s).abs() < 1e-12);
            prop_assert!((a.se_per_s - swapped.se_per_s).abs() < 1e-12);
        }
    }
}
