//! The calibration of one reagent lot at one echo time: ΔR2 = b + s·N, its uncertainty, and the
//! detection limits in cells.
//!
//! Built from a spiked dilution series ([`SpikedSample`]s: known cell numbers, each with the ΔR2 of
//! its own control and quad-marker tubes), at least five levels including 0, each level with
//! replicate samples:
//!
//! 1. **Weights.** The variance of ΔR2 is modelled as v(N) = v₀ + v₁·N (v₁ ≥ 0: more iron, shorter
//!    T2, noisier R2), fitted to the per-level replicate variances; each sample is weighted
//!    1/v(N). Per-level variances from two or three replicates are too noisy to weight by directly.
//! 2. **Line.** Weighted least squares ΔR2 = b + s·N; SEs and cov(b, s) scaled by the weighted
//!    residual variance, with n − 2 degrees of freedom ([`super::weighted_fit`]).
//! 3. **Linearity** (EP06, [`super::linearity`]): a non-linear series is refused.
//! 4. **Limits** (EP17-A2, [`super::ep17`]), on the samples' ΔR2 converted to cells with the line:
//!    LoB from the blank level (one blank material, K = 1; parametric or non-parametric, chosen in
//!    [`CalibrationOptions`]), LoD = LoB + c_p·SD_L from the low levels, LoQ = the lowest level
//!    whose cell CV meets the goal (default 20 %), never below the LoD.
//!
//! A calibration is stored as TOML ([`Calibration::to_toml`], [`Calibration::from_toml`]) and only
//! applies to its own lot and echo time ([`Calibration::check_applies`]). Pure: the `created` time
//! is handed in by the caller.

use serde::{Deserialize, Serialize};

use super::delta_r2::DeltaR2;
use super::ep17::{lob_nonparametric, lob_parametric, lod_parametric};
use super::error::AssayError;
use super::linearity::{AllowableNonlinearity, Linearity, check_linearity};
use super::plausibility::check_calibration;
use super::weighted_fit::fit_polynomial;

/// One spiked sample of the dilution series: a known number of cells and the measured ΔR2.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpikedSample {
    /// Cells spiked into the processed sample.
    pub cells: f64,
    /// ΔR2 of the sample's quad-marker tube against its control tube.
    pub delta: DeltaR2,
}

/// Which limit of blank the calibration reports as `lob_cells`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LobMethod {
    /// mean + c_p·SD of the blanks: right for the continuous, near-normal ΔR2 blanks of NMR.
    #[default]
    Parametric,
    /// The blank result at rank 0.5 + 0.95·N: for skewed blanks; needs many (≥ 60 in EP17).
    Nonparametric,
}

/// Choices a lab makes when building a calibration; `Default` gives the documented defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationOptions {
    /// Imprecision goal that defines the LoQ, as a CV fraction (default 0.20).
    pub cv_goal: f64,
    /// Allowable deviation from linearity (default max(1 cell, 10 %)).
    pub allowable_nonlinearity: AllowableNonlinearity,
    /// LoB method reported as `lob_cells` (default parametric).
    pub lob_method: LobMethod,
    /// Non-zero levels at or below this many cells are the LoD's low-level samples; `None`
    /// (default) takes the lowest non-zero level alone.
    pub low_level_max_cells: Option<f64>,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        CalibrationOptions {
            cv_goal: 0.20,
            allowable_nonlinearity: AllowableNonlinearity::default(),
            lob_method: LobMethod::Parametric,
            low_level_max_cells: None,
        }
    }
}

/// Fewest distinct levels (including 0) a dilution series needs.
pub const MIN_LEVELS: usize = 5;

/// A calibration, as stored in its TOML file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Reagent lot the calibration belongs to.
    pub lot: String,
    /// Echo time the calibration was measured at, ms.
    pub te_ms: f64,
    /// s: ΔR2 per cell, (1/s)/cell.
    pub slope_per_s_per_cell: f64,
    /// Standard error of the slope.
    pub slope_se: f64,
    /// b: ΔR2 at zero cells (background), 1/s.
    pub intercept_per_s: f64,
    /// Standard error of the intercept.
    pub intercept_se: f64,
    /// cov(b, s), (1/s)²/cell.
    pub slope_intercept_cov: f64,
    /// Residual degrees of freedom of the line (n − 2); absent in a hand-written file, which is
    /// then treated as having exact SEs (normal quantiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_df: Option<f64>,
    /// Limit of blank, cells (by `lob_method`).
    pub lob_cells: f64,
    /// Limit of detection, cells.
    pub lod_cells: f64,
    /// Limit of quantitation, cells.
    pub loq_cells: f64,
    /// When the calibration was made, RFC 3339 text.
    pub created: String,
    /// The LoB method behind `lob_cells`.
    #[serde(default)]
    pub lob_method: LobMethod,
    /// Parametric LoB, cells (for the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lob_parametric_cells: Option<f64>,
    /// Non-parametric LoB, cells (for the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lob_nonparametric_cells: Option<f64>,
    /// CV goal behind `loq_cells`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv_goal: Option<f64>,
    /// Levels of the series, cells.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels_cells: Vec<f64>,
    /// Number of spiked samples in the series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// The EP06 linearity result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linearity: Option<Linearity>,
}

/// Echo times closer than this (ms) are the same echo time.
const TE_TOLERANCE_MS: f64 = 1.0e-4;

impl Calibration {
    /// Builds a calibration for `lot` at `te_ms` from a dilution series.
    pub fn from_series(
        lot: &str,
        te_ms: f64,
        created: &str,
        series: &[SpikedSample],
        options: &CalibrationOptions,
    ) -> Result<Calibration, AssayError> {
        AssayError::check("echo time (ms)", te_ms, true)?;
        for sample in series {
            AssayError::check(
                "spiked sample ΔR2 (1/s)",
                sample.delta.delta_r2_per_s,
                false,
            )?;
        }
        let cells: Vec<f64> = series.iter().map(|s| s.cells).collect();
        let levels = check_series_design(&cells)?;
        let groups: Vec<Vec<f64>> = levels
            .iter()
            .map(|&level| {
                series
                    .iter()
                    .filter(|s| s.cells == level)
                    .map(|s| s.delta.delta_r2_per_s)
                    .collect()
            })
            .collect();

        // 1. Variance model and weights.
        let variance = VarianceModel::fit(&levels, &groups);
        let x: Vec<f64> = series.iter().map(|s| s.cells).collect();
        let y: Vec<f64> = series.iter().map(|s| s.delta.delta_r2_per_s).collect();
        let w: Vec<f64> = x.iter().map(|&n| 1.0 / variance.at(n)).collect();

        // 2. The line.
        let line = fit_polynomial(&x, &y, &w, 1).ok_or_else(|| {
            AssayError::Series("the weighted line could not be fitted".to_string())
        })?;
        let intercept = line.coefficients[0];
        let slope = line.coefficients[1];
        if slope.is_nan() || slope <= 2.0 * line.se(1) {
            return Err(AssayError::Series(format!(
                "ΔR2 does not rise with the number of cells (slope {slope:.3e} ± {:.1e} (1/s)/cell)",
                line.se(1)
            )));
        }

        // 3. Linearity.
        let linearity =
            check_linearity(&x, &y, &w, &line, &levels, &options.allowable_nonlinearity)
                .ok_or_else(|| {
                    AssayError::Series("the EP06 quadratic could not be fitted".to_string())
                })?;
        if !linearity.linear {
            let worst = linearity
                .worst_excess()
                .expect("a non-linear verdict requires a level beyond its allowance");
            return Err(AssayError::Nonlinear {
                level_cells: worst.level_cells,
                max_deviation_cells: worst.deviation_cells.abs(),
                allowable_cells: worst.allowable_cells,
            });
        }

        // 4. Limits, in cells.
        let to_cells = |delta: f64| (delta - intercept) / slope;
        let cell_groups: Vec<Vec<f64>> = groups
            .iter()
            .map(|g| g.iter().map(|&d| to_cells(d)).collect())
            .collect();
        let blanks = &cell_groups[0];
        let parametric = lob_parametric(std::slice::from_ref(blanks))?;
        let nonparametric = lob_nonparametric(blanks)
            .ok_or_else(|| AssayError::Series("no usable blank results".to_string()))?;
        // A limit of blank below no cells says only that every positive estimate is above the
        // blanks: it is reported as 0 (the raw values stay in the record below).
        let lob = match options.lob_method {
            LobMethod::Parametric => parametric.lob,
            LobMethod::Nonparametric => nonparametric,
        }
        .max(0.0);
        let low_max = options.low_level_max_cells.unwrap_or(levels[1]);
        let low_groups: Vec<Vec<f64>> = levels
            .iter()
            .zip(&cell_groups)
            .filter(|(level, _)| **level > 0.0 && **level <= low_max)
            .map(|(_, g)| g.clone())
            .collect();
        if low_groups.is_empty() {
            return Err(AssayError::Series(format!(
                "no non-zero level at or below {low_max} cells for the limit of detection"
            )));
        }
        let lod = lod_parametric(lob, &low_groups)?.lod;
        let loq_level = levels
            .iter()
            .zip(&cell_groups)
            .skip(1)
            .find(|(_, g)| level_cv(g).is_some_and(|cv| cv <= options.cv_goal))
            .map(|(level, _)| *level)
            .ok_or(AssayError::NoLoq {
                cv_goal_pct: options.cv_goal * 100.0,
            })?;

        let calibration = Calibration {
            lot: lot.to_string(),
            te_ms,
            slope_per_s_per_cell: slope,
            slope_se: line.se(1),
            intercept_per_s: intercept,
            intercept_se: line.se(0),
            slope_intercept_cov: line.covariance[0][1],
            fit_df: Some(line.df as f64),
            lob_cells: lob,
            lod_cells: lod,
            loq_cells: loq_level.max(lod),
            created: created.to_string(),
            lob_method: options.lob_method,
            lob_parametric_cells: Some(parametric.lob),
            lob_nonparametric_cells: Some(nonparametric),
            cv_goal: Some(options.cv_goal),
            levels_cells: levels,
            samples: Some(series.len()),
            linearity: Some(linearity),
        };
        calibration.validate()?;
        Ok(calibration)
    }

    /// Degrees of freedom of the line's SEs (infinite when the file does not say).
    pub fn df(&self) -> f64 {
        self.fit_df.unwrap_or(f64::INFINITY)
    }

    /// Refuses to apply this calibration to another reagent lot or echo time.
    pub fn check_applies(&self, lot: Option<&str>, te_ms: f64) -> Result<(), AssayError> {
        if let Some(lot) = lot
            && lot != self.lot
        {
            return Err(AssayError::CalibrationMismatch(format!(
                "the calibration is for reagent lot `{}`, the sample used lot `{lot}`",
                self.lot
            )));
        }
        if !te_ms.is_finite() || (te_ms - self.te_ms).abs() > TE_TOLERANCE_MS {
            return Err(AssayError::CalibrationMismatch(format!(
                "the calibration was made at an echo time of {} ms, the echo trains were acquired at {te_ms} ms",
                self.te_ms
            )));
        }
        Ok(())
    }

    /// The calibration as TOML text.
    pub fn to_toml(&self) -> Result<String, AssayError> {
        toml::to_string_pretty(self).map_err(|e| AssayError::Config {
            what: "calibration".to_string(),
            reason: e.to_string(),
        })
    }

    /// Reads a calibration from TOML text and checks its numbers.
    pub fn from_toml(text: &str) -> Result<Calibration, AssayError> {
        let calibration: Calibration = toml::from_str(text).map_err(|e| AssayError::Config {
            what: "calibration file".to_string(),
            reason: e.to_string(),
        })?;
        calibration.validate()?;
        Ok(calibration)
    }

    /// Checks every field against the physical ranges of [`super::plausibility`]; the one
    /// check every calibration passes before use, whether built here or read from a file.
    ///
    /// # Errors
    /// [`AssayError::Calibration`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), AssayError> {
        Ok(check_calibration(self)?)
    }
}

/// The variance model v(N) = v₀ + v₁·N of a spiked sample's ΔR2.
#[derive(Clone, Copy, Debug, PartialEq)]
struct VarianceModel {
    v0: f64,
    v1: f64,
}

impl VarianceModel {
    /// Fits v₀ + v₁·N to the per-level sample variances, weighting each by its degrees of
    /// freedom. Falls back to the pooled variance (v₁ = 0) when the fitted trend falls, and keeps
    /// v₀ at least a tenth of the pooled variance so no weight runs away.
    fn fit(levels: &[f64], groups: &[Vec<f64>]) -> VarianceModel {
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut w = Vec::new();
        for (&level, group) in levels.iter().zip(groups) {
            let n = group.len() as f64;
            let mean = group.iter().sum::<f64>() / n;
            let var = group.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            x.push(level);
            y.push(var);
            w.push(n - 1.0);
        }
        let pooled = y.iter().zip(&w).map(|(v, d)| v * d).sum::<f64>() / w.iter().sum::<f64>();
        // With all replicates identical, any positive constant gives the same line.
        let pooled = if pooled > 0.0 { pooled } else { 1.0 };
        let fitted = fit_polynomial(&x, &y, &w, 1)
            .map(|f| (f.coefficients[0], f.coefficients[1]))
            .filter(|&(_, v1)| v1 > 0.0);
        let (v0, v1) = fitted.unwrap_or((pooled, 0.0));
        VarianceModel {
            v0: v0.max(0.1 * pooled),
            v1,
        }
    }

    fn at(&self, cells: f64) -> f64 {
        self.v0 + self.v1 * cells
    }
}

/// The design rules of a dilution series, checked on its samples' cell numbers alone (so a
/// caller can check a series before measuring or fitting anything): every number of cells finite
/// and not negative, at least [`MIN_LEVELS`] distinct levels including a blank (0 cells), and
/// every level with at least two samples. Returns the levels in ascending order.
///
/// # Errors
/// [`AssayError::Series`] (or [`AssayError::InvalidNumber`]) saying which rule fails.
pub fn check_series_design(cells: &[f64]) -> Result<Vec<f64>, AssayError> {
    for &sample_cells in cells {
        AssayError::check("spiked cells", sample_cells, false)?;
        if sample_cells < 0.0 {
            return Err(AssayError::Series(format!(
                "a level of {sample_cells} cells is negative"
            )));
        }
    }
    let mut levels = cells.to_vec();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    if levels.len() < MIN_LEVELS || levels[0] != 0.0 {
        return Err(AssayError::Series(format!(
            "{} distinct level(s){}: at least {MIN_LEVELS} including 0 cells are needed",
            levels.len(),
            if levels.first() == Some(&0.0) {
                ""
            } else {
                " and no blank (0 cells)"
            }
        )));
    }
    if let Some(level) = levels
        .iter()
        .find(|&&level| cells.iter().filter(|&&c| c == level).count() < 2)
    {
        return Err(AssayError::Series(format!(
            "the level of {level} cells has a single sample; every level needs replicates"
        )));
    }
    Ok(levels)
}

/// CV of one level's cell estimates (SD / mean); `None` for a non-positive mean.
fn level_cv(cells: &[f64]) -> Option<f64> {
    let n = cells.len() as f64;
    let mean = cells.iter().sum::<f64>() / n;
    if mean.is_nan() || mean <= 0.0 || cells.len() < 2 {
        return None;
    }
    let sd = (cells.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    Some(sd / mean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assay::delta_r2::SeSource;

    const CREATED: &str = "2026-11-24T04:00:00Z";

    fn sample(cells: f64, delta_r2_per_s: f64) -> SpikedSample {
        SpikedSample {
            cells,
            delta: DeltaR2 {
                delta_r2_per_s,
                se_per_s: 0.01,
                df: 4.0,
                se_source: SeSource::ReplicateSpread,
            },
        }
    }

    /// ΔR2 = 0.05 + 0.02·N with a fixed ±pattern of scatter (0.01/s) at every level.
    fn series() -> Vec<SpikedSample> {
        let scatter = [-0.01, 0.0, 0.01];
        let mut out = Vec::new();
        for level in [0.0, 5.0, 10.0, 20.0, 50.0, 100.0] {
            for (i, e) in scatter.iter().enumerate() {
                // Rotate the pattern per level so the line is not exactly through the means.
                let jitter = scatter[(i + level as usize) % 3] * 0.5 + e * 0.5;
                out.push(sample(level, 0.05 + 0.02 * level + jitter));
            }
        }
        out
    }

    #[test]
    fn builds_from_a_linear_series_and_matches_hand_computed_limits() {
        let series = series();
        let cal = Calibration::from_series(
            "LOT-1",
            4.0,
            CREATED,
            &series,
            &CalibrationOptions::default(),
        )
        .expect("calibration");
        assert!((cal.slope_per_s_per_cell - 0.02).abs() < 2e-4, "{cal:?}");
        assert!((cal.intercept_per_s - 0.05).abs() < 0.01);
        assert_eq!(cal.fit_df, Some(16.0));
        // LoB by hand: blanks in cells with the fitted line, mean + c_p·SD with N = 3, K = 1.
        let blanks: Vec<f64> = series
            .iter()
            .filter(|s| s.cells == 0.0)
            .map(|s| (s.delta.delta_r2_per_s - cal.intercept_per_s) / cal.slope_per_s_per_cell)
            .collect();
        let mean = blanks.iter().sum::<f64>() / 3.0;
        let sd = (blanks.iter().map(|b| (b - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let cp = 1.644_853_6 / (1.0 - 1.0 / 8.0);
        assert!((cal.lob_cells - (mean + cp * sd)).abs() < 1e-6);
        assert!(cal.lod_cells > cal.lob_cells);
        assert!(cal.loq_cells >= cal.lod_cells);
        assert!(cal.linearity.as_ref().is_some_and(|l| l.linear));
    }

    #[test]
    fn toml_round_trip_keeps_every_number() {
        let cal = Calibration::from_series(
            "LOT-1",
            4.0,
            CREATED,
            &series(),
            &CalibrationOptions::default(),
        )
        .expect("calibration");
        let text = cal.to_toml().expect("toml");
        for key in [
            "lot",
            "te_ms",
            "slope_per_s_per_cell",
            "slope_se",
            "intercept_per_s",
            "intercept_se",
            "slope_intercept_cov",
            "lob_cells",
            "lod_cells",
            "loq_cells",
            "created",
        ] {
            assert!(
                text.contains(&format!("{key} = ")),
                "missing {key} in\n{text}"
            );
        }
        let back = Calibration::from_toml(&text).expect("parse");
        assert_eq!(back, cal);
    }

    #[test]
    fn a_minimal_hand_written_file_is_accepted() {
        let text = r#"
lot = "A1"
te_ms = 4.0
slope_per_s_per_cell = 0.01
slope_se = 0.0002
intercept_per_s = 0.05
intercept_se = 0.003
slope_intercept_cov = -1e-7
lob_cells = 1.2
lod_cells = 2.5
loq_cells = 5.0
created = "2026-11-24T04:00:00+01:00"
"#;
        let cal = Calibration::from_toml(text).expect("minimal file");
        assert!(cal.df().is_infinite());
        assert!(Calibration::from_toml(&text.replace("+01:00", "")).is_err());
        assert!(Calibration::from_toml(&text.replace("0.01\n", "-0.01\n")).is_err());
        assert!(
            Calibration::from_toml(&text.replace("lod_cells = 2.5", "lod_cells = 0.5")).is_err()
        );
    }

    #[test]
    fn refuses_other_lots_and_echo_times() {
        let cal = Calibration::from_series(
            "LOT-1",
            4.0,
            CREATED,
            &series(),
            &CalibrationOptions::default(),
        )
        .expect("calibration");
        assert!(cal.check_applies(Some("LOT-1"), 4.0).is_ok());
        assert!(cal.check_applies(None, 4.000_01).is_ok());
        assert!(matches!(
            cal.check_applies(Some("LOT-2"), 4.0),
            Err(AssayError::CalibrationMismatch(_))
        ));
        assert!(matches!(
            cal.check_applies(None, 2.0),
            Err(AssayError::CalibrationMismatch(_))
        ));
    }

    #[test]
    fn refuses_thin_or_flat_or_curved_series() {
        let options = CalibrationOptions::default();
        let four_levels: Vec<SpikedSample> =
            series().into_iter().filter(|s| s.cells < 50.0).collect();
        assert!(matches!(
            Calibration::from_series("L", 4.0, CREATED, &four_levels, &options),
            Err(AssayError::Series(_))
        ));
        let no_blank: Vec<SpikedSample> = series()
            .into_iter()
            .filter(|s| s.cells != 0.0)
            .chain([sample(200.0, 4.05), sample(200.0, 4.06)])
            .collect();
        assert!(Calibration::from_series("L", 4.0, CREATED, &no_blank, &options).is_err());
        // The same scatter with no dependence on the cells.
        let flat: Vec<SpikedSample> = series()
            .iter()
            .map(|s| sample(s.cells, s.delta.delta_r2_per_s - 0.02 * s.cells))
            .collect();
        assert!(Calibration::from_series("L", 4.0, CREATED, &flat, &options).is_err());
        let curved: Vec<SpikedSample> = series()
            .iter()
            .map(|s| sample(s.cells, s.delta.delta_r2_per_s - 1.0e-4 * s.cells * s.cells))
            .collect();
        assert!(matches!(
            Calibration::from_series("L", 4.0, CREATED, &curved, &options),
            Err(AssayError::Nonlinear { .. })
        ));
    }

    #[test]
    fn nonparametric_lob_can_be_chosen() {
        let options = CalibrationOptions {
            lob_method: LobMethod::Nonparametric,
            ..CalibrationOptions::default()
        };
        let cal = Calibration::from_series("L", 4.0, CREATED, &series(), &options).expect("cal");
        assert_eq!(Some(cal.lob_cells), cal.lob_nonparametric_cells);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any calibration within the physical ranges survives TOML exactly.
        #[test]
        fn toml_round_trip_is_exact(
            te_ms in 0.1f64..50.0,
            slope in 1e-6f64..1.0,
            relative_slope_se in 0.0f64..0.5,
            intercept in -1.0f64..1.0,
            intercept_se in 0.0f64..0.1,
            correlation in -1.0f64..1.0,
            df in proptest::option::of(1.0f64..500.0),
            lob in 0.0f64..50.0,
            lod_above_lob in 0.0f64..50.0,
            loq_above_lod in 0.0f64..100.0,
            lot in "[A-Za-z0-9_-]{1,16}",
        ) {
            let lod = lob + lod_above_lob;
            let loq = lod + loq_above_lod;
            let slope_se = slope * relative_slope_se;
            let cov = correlation * slope_se * intercept_se;
            let calibration = Calibration {
                lot,
                te_ms,
                slope_per_s_per_cell: slope,
                slope_se,
                intercept_per_s: intercept,
                intercept_se,
                slope_intercept_cov: cov,
                fit_df: df,
                lob_cells: lob,
                lod_cells: lod,
                loq_cells: loq,
                created: "2026-11-24T04:00:00Z".to_string(),
                lob_method: LobMethod::Parametric,
                lob_parametric_cells: Some(lob),
                lob_nonparametric_cells: None,
                cv_goal: Some(0.2),
                levels_cells: vec![0.0, 5.0],
                samples: Some(10),
                linearity: None,
            };
            let text = calibration.to_toml().expect("serialises");
            prop_assert_eq!(Calibration::from_toml(&text).expect("parses"), calibration);
        }
    }
}
