//! Linearity check after CLSI EP06: the weighted quadratic against the weighted line.
//!
//! Both polynomials are fitted to the same points with the same weights; at every calibration
//! level the difference quadratic − line (in cells, divided by the slope) is the deviation from
//! linearity. The calibration is called non-linear when the quadratic term is statistically
//! significant (two-sided t test at 5 %) **and** some level deviates by more than the allowable
//! nonlinearity, max(absolute cells, fraction × level). A significant but clinically negligible
//! curvature passes, as EP06 intends; so does a large deviation the data cannot tell from noise.

use serde::{Deserialize, Serialize};

use super::quantile::t_two_sided_p;
use super::weighted_fit::{WeightedPolyFit, fit_polynomial};

/// How much deviation from linearity is allowed: the larger of an absolute number of cells and a
/// fraction of the level.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllowableNonlinearity {
    /// Absolute allowance, cells (default 1).
    pub cells: f64,
    /// Relative allowance, fraction of the level (default 0.10 = 10 %).
    pub fraction: f64,
}

impl Default for AllowableNonlinearity {
    fn default() -> Self {
        AllowableNonlinearity {
            cells: 1.0,
            fraction: 0.10,
        }
    }
}

impl AllowableNonlinearity {
    /// The allowance at a level of `cells`.
    pub fn at(&self, level_cells: f64) -> f64 {
        self.cells.max(self.fraction * level_cells.abs())
    }
}

/// Deviation of the quadratic from the line at one level.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelDeviation {
    /// The level, cells.
    pub level_cells: f64,
    /// Quadratic − line at the level, in cells.
    pub deviation_cells: f64,
    /// The allowance at the level, cells.
    pub allowable_cells: f64,
}

/// Result of the EP06 comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linearity {
    /// Quadratic coefficient, (1/s)/cell².
    pub quadratic_coefficient: f64,
    /// Its standard error.
    pub quadratic_coefficient_se: f64,
    /// Two-sided p-value of the quadratic coefficient.
    pub quadratic_p_value: f64,
    /// Deviation at every level.
    pub levels: Vec<LevelDeviation>,
    /// True when the line is acceptable.
    pub linear: bool,
}

impl Linearity {
    /// The level whose deviation exceeds its allowance by the most (relative), if any exceeds it.
    pub fn worst_excess(&self) -> Option<LevelDeviation> {
        self.levels
            .iter()
            .filter(|d| d.deviation_cells.abs() > d.allowable_cells)
            .max_by(|a, b| {
                let ra = a.deviation_cells.abs() / a.allowable_cells;
                let rb = b.deviation_cells.abs() / b.allowable_cells;
                ra.total_cmp(&rb)
            })
            .copied()
    }
}

/// Compares a weighted quadratic with the fitted `line` on the points (x = cells, y = ΔR2,
/// weights w). `None` when the quadratic cannot be fitted (fewer than four points or three
/// distinct levels).
pub fn check_linearity(
    cells: &[f64],
    delta_r2_per_s: &[f64],
    weights: &[f64],
    line: &WeightedPolyFit,
    levels: &[f64],
    allowable: &AllowableNonlinearity,
) -> Option<Linearity> {
    let quadratic = fit_polynomial(cells, delta_r2_per_s, weights, 2)?;
    let slope = line.coefficients[1];
    let c2 = quadratic.coefficients[2];
    let c2_se = quadratic.se(2);
    let p_value = if c2_se > 0.0 {
        t_two_sided_p(c2 / c2_se, quadratic.df as f64)
    } else if c2.abs() > 0.0 {
        0.0
    } else {
        1.0
    };
    let deviations: Vec<LevelDeviation> = levels
        .iter()
        .map(|&level| LevelDeviation {
            level_cells: level,
            deviation_cells: (quadratic.predict(level) - line.predict(level)) / slope,
            allowable_cells: allowable.at(level),
        })
        .collect();
    let exceeds = deviations
        .iter()
        .any(|d| d.deviation_cells.abs() > d.allowable_cells);
    Some(Linearity {
        quadratic_coefficient: c2,
        quadratic_coefficient_se: c2_se,
        quadratic_p_value: p_value,
        levels: deviations,
        linear: !(p_value < 0.05 && exceeds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(curvature: f64) -> (Vec<f64>, Vec<f64>) {
        // Levels 0, 10, 20, 40, 80 in duplicate, ΔR2 = 0.05 + 0.01 N + c N² with ±0.002 scatter.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for level in [0.0, 10.0, 20.0, 40.0, 80.0] {
            for jitter in [-0.002, 0.002] {
                x.push(level);
                y.push(0.05 + 0.01 * level + curvature * level * level + jitter);
            }
        }
        (x, y)
    }

    #[test]
    fn straight_series_passes() {
        let (x, y) = series(0.0);
        let w = vec![1.0; x.len()];
        let line = fit_polynomial(&x, &y, &w, 1).expect("line");
        let levels = [0.0, 10.0, 20.0, 40.0, 80.0];
        let check = check_linearity(
            &x,
            &y,
            &w,
            &line,
            &levels,
            &AllowableNonlinearity::default(),
        )
        .expect("fit");
        assert!(check.linear);
        assert!(check.worst_excess().is_none());
    }

    #[test]
    fn curved_series_fails() {
        // c = −4e-5 bends the 80-cell level down by 0.256/s (25 cells' worth of slope): the best
        // line misses the levels by several cells, beyond 1 cell or 10 %.
        let (x, y) = series(-4.0e-5);
        let w = vec![1.0; x.len()];
        let line = fit_polynomial(&x, &y, &w, 1).expect("line");
        let levels = [0.0, 10.0, 20.0, 40.0, 80.0];
        let check = check_linearity(
            &x,
            &y,
            &w,
            &line,
            &levels,
            &AllowableNonlinearity::default(),
        )
        .expect("fit");
        assert!(!check.linear, "{check:?}");
        assert!(check.quadratic_p_value < 1e-6);
        assert!(check.worst_excess().is_some());
    }

    #[test]
    fn a_generous_allowance_accepts_the_same_curve() {
        let (x, y) = series(-4.0e-5);
        let w = vec![1.0; x.len()];
        let line = fit_polynomial(&x, &y, &w, 1).expect("line");
        let levels = [0.0, 10.0, 20.0, 40.0, 80.0];
        let allowance = AllowableNonlinearity {
            cells: 50.0,
            fraction: 0.0,
        };
        let check = check_linearity(&x, &y, &w, &line, &levels, &allowance).expect("fit");
        assert!(check.linear);
    }
}
