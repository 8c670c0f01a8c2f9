//! From a measured ΔR2 to a CTC count with a 95 % interval, concentrations and a category.
//!
//! N = (ΔR2 − b)/s. Its variance by the delta method, with ΔR2 independent of the calibration:
//!
//! Var N = [SE²(ΔR2) + Var b + N²·Var s + 2N·cov(b, s)] / s²
//!
//! and a Student t quantile with Welch–Satterthwaite degrees of freedom combining the ΔR2 term
//! (its own df, from the replicates) and the calibration term (the line's n − 2). The interval is
//! cut at 0 (a tube cannot hold fewer than no cells), which cannot lower its coverage.
//!
//! Concentrations (per mL, per 7.5 mL) also carry the Poisson sampling of the blood draw: the
//! processed volume held N cells while the patient's blood has a concentration λ, and N ~
//! Poisson(λ·V). The 95 % interval of λ·V is the Garwood interval widened by the measurement:
//! [Garwood_low(N_low), Garwood_high(N_high)] where [N_low, N_high] is the cell interval. It is
//! exact Garwood when the count is measured exactly and conservative otherwise (each source of
//! error is allowed its full 95 % range).
//!
//! Category: `not_detected` when N ≤ LoB, `below_loq` when N < LoQ, `quantified` otherwise
//! (on the uncut estimate).
//!
//! Every count passes [`super::plausibility::check_count`] before it is returned: a count that is
//! not finite, negative, outside its own interval, or from a volume or calibration outside the
//! physical ranges is an error naming the quantity, never a result.

use serde::{Deserialize, Serialize};

use super::calibration::Calibration;
use super::delta_r2::DeltaR2;
use super::error::AssayError;
use super::plausibility::{check_blood_ml, check_count};
use super::poisson::{garwood_lower95, garwood_upper95};
use super::quantile::t95;

/// Millilitres in the CellSearch reporting volume.
pub const CELLSEARCH_VOLUME_ML: f64 = 7.5;

/// How a count is reported to lab users: `not_detected` (the estimate is at or below the limit
/// of blank, LoB: not told apart from a blank), `below_loq` (detected, above the LoB, but below
/// the limit of quantitation: the number is imprecise), `quantified` (at or above the LoQ).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CountCategory {
    /// Not told apart from a blank: the estimate is at or below the LoB.
    NotDetected,
    /// Detected, but below the limit of quantitation: the number is imprecise.
    BelowLoq,
    /// A quantitative value.
    Quantified,
}

crate::vocabulary::vocabulary!(CountCategory, "count category", "not_detected, below_loq, quantified", {
    NotDetected => "not_detected",
    BelowLoq => "below_loq",
    Quantified => "quantified",
});

/// A CTC count with its uncertainty, in the processed sample and per blood volume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountEstimate {
    /// The measured ΔR2, 1/s.
    pub delta_r2_per_s: f64,
    /// Its standard error, 1/s.
    pub delta_r2_per_s_se: f64,
    /// Cells in the processed sample, (ΔR2 − b)/s cut at 0.
    pub cells: f64,
    /// (ΔR2 − b)/s before the cut (may be negative): what the category is judged on.
    pub cells_uncut: f64,
    /// Standard error of the cell estimate (delta method).
    pub cells_se: f64,
    /// Degrees of freedom of `cells_se` (Welch–Satterthwaite).
    pub cells_df: f64,
    /// 95 % interval of the cells in the processed sample.
    pub cells_ci95: [f64; 2],
    /// Blood volume processed, mL.
    pub blood_ml: f64,
    /// Cells per mL of blood.
    pub per_ml: f64,
    /// 95 % interval per mL, including the Poisson sampling of the draw.
    pub per_ml_ci95: [f64; 2],
    /// Cells per 7.5 mL of blood.
    pub per_7_5ml: f64,
    /// 95 % interval per 7.5 mL, including the Poisson sampling of the draw.
    pub per_7_5ml_ci95: [f64; 2],
    /// Reporting category.
    pub category: CountCategory,
}

impl CountEstimate {
    /// Counts the cells behind `delta` with `calibration`, for `blood_ml` of processed blood.
    pub fn from_delta(
        delta: &DeltaR2,
        calibration: &Calibration,
        blood_ml: f64,
    ) -> Result<CountEstimate, AssayError> {
        check_blood_ml(blood_ml)?;
        AssayError::check("ΔR2 (1/s)", delta.delta_r2_per_s, false)?;
        AssayError::check("ΔR2 standard error (1/s)", delta.se_per_s, false)?;
        let slope = calibration.slope_per_s_per_cell;
        AssayError::check("calibration slope", slope, true)?;
        let cells = (delta.delta_r2_per_s - calibration.intercept_per_s) / slope;

        let measurement_var = (delta.se_per_s / slope).powi(2);
        let calibration_var = ((calibration.intercept_se.powi(2)
            + cells.powi(2) * calibration.slope_se.powi(2)
            + 2.0 * cells * calibration.slope_intercept_cov)
            / slope.powi(2))
        .max(0.0);
        let total_var = measurement_var + calibration_var;
        let df = welch_satterthwaite(&[
            (measurement_var, delta.df),
            (calibration_var, calibration.df()),
        ]);
        let cells_se = total_var.sqrt();
        let half = t95(df) * cells_se;
        let cells_ci95 = [(cells - half).max(0.0), (cells + half).max(0.0)];

        let per_ml_ci95 = [
            garwood_lower95(cells_ci95[0]) / blood_ml,
            garwood_upper95(cells_ci95[1]) / blood_ml,
        ];
        let per_ml = cells.max(0.0) / blood_ml;
        let category = if cells <= calibration.lob_cells {
            CountCategory::NotDetected
        } else if cells < calibration.loq_cells {
            CountCategory::BelowLoq
        } else {
            CountCategory::Quantified
        };
        let count = CountEstimate {
            delta_r2_per_s: delta.delta_r2_per_s,
            delta_r2_per_s_se: delta.se_per_s,
            cells: cells.max(0.0),
            cells_uncut: cells,
            cells_se,
            cells_df: df,
            cells_ci95,
            blood_ml,
            per_ml,
            per_ml_ci95,
            per_7_5ml: per_ml * CELLSEARCH_VOLUME_ML,
            per_7_5ml_ci95: [
                per_ml_ci95[0] * CELLSEARCH_VOLUME_ML,
                per_ml_ci95[1] * CELLSEARCH_VOLUME_ML,
            ],
            category,
        };
        check_count(&count, calibration)?;
        Ok(count)
    }
}

/// Welch–Satterthwaite degrees of freedom of a sum of variance terms (variance, df). Terms with
/// zero variance or infinite df add nothing to the denominator; all-exact terms give infinity.
pub fn welch_satterthwaite(terms: &[(f64, f64)]) -> f64 {
    let total: f64 = terms.iter().map(|(v, _)| v).sum();
    let denominator: f64 = terms
        .iter()
        .filter(|(v, df)| *v > 0.0 && df.is_finite() && *df > 0.0)
        .map(|(v, df)| v * v / df)
        .sum();
    if denominator > 0.0 {
        total * total / denominator
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assay::delta_r2::SeSource;
    use crate::assay::poisson::garwood_ci95;

    fn calibration() -> Calibration {
        Calibration {
            lot: "L".to_string(),
            te_ms: 4.0,
            slope_per_s_per_cell: 0.01,
            slope_se: 0.0002,
            intercept_per_s: 0.05,
            intercept_se: 0.004,
            slope_intercept_cov: -2.0e-7,
            fit_df: Some(28.0),
            lob_cells: 1.5,
            lod_cells: 3.0,
            loq_cells: 6.0,
            created: "2026-11-24T04:00:00Z".to_string(),
            lob_method: Default::default(),
            lob_parametric_cells: None,
            lob_nonparametric_cells: None,
            cv_goal: None,
            levels_cells: Vec::new(),
            samples: None,
            linearity: None,
        }
    }

    fn delta(value: f64, se: f64, df: f64) -> DeltaR2 {
        DeltaR2 {
            delta_r2_per_s: value,
            se_per_s: se,
            df,
            se_source: SeSource::ReplicateSpread,
        }
    }

    #[test]
    fn delta_method_by_hand() {
        // ΔR2 = 0.25 → N = (0.25 − 0.05)/0.01 = 20.
        let cal = calibration();
        let count = CountEstimate::from_delta(&delta(0.25, 0.01, 4.0), &cal, 7.5).expect("count");
        assert!((count.cells - 20.0).abs() < 1e-9);
        let meas = (0.01_f64 / 0.01).powi(2);
        let calv = (0.004_f64.powi(2) + 400.0 * 0.0002_f64.powi(2) + 2.0 * 20.0 * -2.0e-7) / 1e-4;
        assert!((count.cells_se - (meas + calv).sqrt()).abs() < 1e-9);
        let df = (meas + calv).powi(2) / (meas * meas / 4.0 + calv * calv / 28.0);
        assert!((count.cells_df - df).abs() < 1e-9);
        let half = t95(df) * (meas + calv).sqrt();
        assert!((count.cells_ci95[0] - (20.0 - half)).abs() < 1e-9);
        assert_eq!(count.category, CountCategory::Quantified);
        // Per 7.5 mL of 7.5 mL processed: the count itself; interval Garwood at the ends.
        assert!((count.per_7_5ml - 20.0).abs() < 1e-9);
        assert!((count.per_7_5ml_ci95[0] - garwood_ci95(20.0 - half)[0]).abs() < 1e-9);
        assert!((count.per_ml - 20.0 / 7.5).abs() < 1e-12);
    }

    #[test]
    fn exact_measurement_gives_the_garwood_interval() {
        // No measurement or calibration error: per 7.5 mL interval of 5 cells is [1.62, 11.67].
        let mut cal = calibration();
        cal.slope_se = 0.0;
        cal.intercept_se = 0.0;
        cal.slope_intercept_cov = 0.0;
        let count = CountEstimate::from_delta(&delta(0.10, 0.0, 4.0), &cal, 7.5).expect("count");
        assert!((count.cells - 5.0).abs() < 1e-9);
        assert!((count.per_7_5ml_ci95[0] - 1.62).abs() < 0.005);
        assert!((count.per_7_5ml_ci95[1] - 11.67).abs() < 0.005);
    }

    #[test]
    fn categories_follow_the_limits() {
        let cal = calibration();
        let at = |cells: f64| {
            CountEstimate::from_delta(&delta(0.05 + 0.01 * cells, 0.005, 4.0), &cal, 2.0)
                .expect("count")
                .category
        };
        assert_eq!(at(-2.0), CountCategory::NotDetected);
        assert_eq!(at(1.5), CountCategory::NotDetected);
        assert_eq!(at(2.0), CountCategory::BelowLoq);
        assert_eq!(at(5.9), CountCategory::BelowLoq);
        assert_eq!(at(6.0), CountCategory::Quantified);
        let negative =
            CountEstimate::from_delta(&delta(0.0, 0.005, 4.0), &cal, 2.0).expect("count");
        assert_eq!(negative.cells, 0.0);
        assert!(negative.cells_uncut < 0.0);
        assert!(negative.cells_ci95[0] >= 0.0);
    }

    #[test]
    fn bad_volume_is_an_error() {
        let cal = calibration();
        assert!(CountEstimate::from_delta(&delta(0.1, 0.01, 4.0), &cal, 0.0).is_err());
        assert!(CountEstimate::from_delta(&delta(f64::NAN, 0.01, 4.0), &cal, 1.0).is_err());
    }

    /// The outside probe's nonsense results: each is now an error naming the quantity, not a
    /// count. (The calibrations are built field by field, past `Calibration::validate`, as a
    /// program holding a `Calibration` could.)
    #[test]
    fn degenerate_inputs_give_a_named_error_not_a_count() {
        let twenty_cells = delta(0.25, 0.01, 4.0);
        type Edit = fn(&mut Calibration);
        let cases: [(&str, Edit, f64); 5] = [
            ("calibration", |c| c.slope_per_s_per_cell = 1e-300, 7.5),
            ("calibration", |c| c.slope_se = 1e308, 7.5),
            ("calibration", |c| c.intercept_per_s = 1e308, 7.5),
            ("blood_ml", |_| {}, 1e-300),
            ("blood_ml", |_| {}, 1e-320),
        ];
        for (quantity, edit, blood_ml) in cases {
            let mut cal = calibration();
            edit(&mut cal);
            match CountEstimate::from_delta(&twenty_cells, &cal, blood_ml) {
                Err(AssayError::Implausible(error)) => assert_eq!(error.quantity, quantity),
                other => panic!("{quantity}: {other:?}"),
            }
        }
        // A ΔR2 SE so large the interval is infinite.
        let wild = delta(0.25, 1e300, 4.0);
        match CountEstimate::from_delta(&wild, &calibration(), 7.5) {
            Err(AssayError::Implausible(error)) => {
                assert_eq!(error.quantity, "cells_se", "{error}")
            }
            other => panic!("{other:?}"),
        }
        // A ΔR2 far beyond any patient: more than 10⁵ cells per 7.5 mL.
        match CountEstimate::from_delta(&delta(5000.0, 0.01, 4.0), &calibration(), 7.5) {
            Err(AssayError::Implausible(error)) => assert_eq!(error.quantity, "per_7_5ml"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn welch_satterthwaite_limits() {
        assert!(welch_satterthwaite(&[(1.0, f64::INFINITY), (0.0, 3.0)]).is_infinite());
        assert!((welch_satterthwaite(&[(1.0, 5.0)]) - 5.0).abs() < 1e-12);
        // Two equal terms with 5 df each: (2)²/(1/5 + 1/5) = 10.
        assert!((welch_satterthwaite(&[(1.0, 5.0), (1.0, 5.0)]) - 10.0).abs() < 1e-12);
    }
}
