//! Honest misfit: does the model describe the echoes within their noise?
//!
//! Two lack-of-fit tests, each at half of [`MISFIT_SIGNIFICANCE`] (so the pair's false-alarm rate
//! on data the model describes is at most that, and measured by the seeded tests):
//!
//! 1. **χ² against the independent noise estimate.** `χ²ᵣ = Σ rᵢ²/vᵢ / (m − p)` with `vᵢ` the noise
//!    variance of echo i (σ², or the Rician variance for magnitudes) from [`crate::noise`], never
//!    from the residuals themselves. Since σ̂ is itself estimated, the test statistic is
//!    `z = ln χ²ᵣ / √(2/(m − p) + 4·var(ln σ̂))`, one-sided.
//! 2. **A runs test on the residuals' signs** (Wald–Wolfowitz, one-sided: too few runs), which sees a
//!    systematic pattern that a χ² near one can hide. When the noise is correlated from echo to echo
//!    (see [`crate::noise::NoiseEstimate::correlated`]), every k-th residual is used, k the lag at
//!    which the correlation has fallen below 0.1, so the signs are independent again.
//!
//! **Widening rule.** Standard errors come from the covariance with the residual variance. When the
//! fit misfits, or the noise is correlated, that still assumes independent residuals, so they are
//! further multiplied by the AR(1) factor `√((1 + ρ)/(1 − ρ))`, ρ being the residuals' own lag-one
//! autocorrelation clamped to [0, 0.98]: the effective number of independent echoes is what the
//! correlated residuals allow (Bayley & Hammersley 1946). A misfit's factor is reported.
//!
//! ## Reference
//! A. Wald and J. Wolfowitz, "On a test whether two samples are from the same population", Ann.
//! Math. Stat. 11 (1940) 147–162. G. V. Bayley and J. M. Hammersley, "The 'effective' number of
//! independent observations in an autocorrelated time series", JRSS Suppl. 8 (1946) 184–197.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use crate::noise::{NoiseEstimate, lag1_autocorrelation};

/// Significance level of the misfit flag (both tests together).
pub const MISFIT_SIGNIFICANCE: f64 = 0.001;

/// The lack-of-fit tests of one fit.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LackOfFit {
    /// χ² over its degrees of freedom, against the independent noise estimate.
    pub chi2_red: f64,
    /// One-sided p-value of the χ² test (σ̂'s own uncertainty included).
    pub chi2_p_value: f64,
    /// Runs of equal residual sign.
    pub runs: usize,
    /// Runs expected of independent residuals with the same signs.
    pub runs_expected: f64,
    /// One-sided p-value of the runs test (too few runs).
    pub runs_p_value: f64,
    /// Every `thinning`-th residual entered the runs test (1 unless the noise is correlated).
    pub thinning: usize,
    /// Lag-one autocorrelation of the residuals.
    pub residual_lag1: f64,
    /// The factor the standard errors were multiplied by (1 when not widened).
    pub se_inflation: f64,
    /// The level of the pair of tests.
    pub significance: f64,
}

/// Both tests on `residuals` (data − model, echo order) with per-echo noise variances
/// `variances` (or σ² for all when `None`), for a model of `parameters` parameters. A caller that
/// already summed the squared residuals in echo order passes that sum as `sum_squares` (it is
/// the same number; the fit's inner loop need not sum them twice). Returns the verdict and the
/// tests.
pub(crate) fn assess(
    residuals: &[f64],
    variances: Option<&[f64]>,
    sum_squares: Option<f64>,
    noise: &NoiseEstimate,
    parameters: usize,
) -> (bool, LackOfFit) {
    let m = residuals.len();
    let dof = m.saturating_sub(parameters).max(1) as f64;
    let sigma2 = noise.sd * noise.sd;
    let chi2: f64 = match variances {
        Some(v) => residuals
            .iter()
            .zip(v)
            .map(|(r, v)| if *v > 0.0 { r * r / v } else { 0.0 })
            .sum(),
        None if sigma2 > 0.0 => {
            sum_squares.unwrap_or_else(|| residuals.iter().map(|r| r * r).sum::<f64>()) / sigma2
        }
        None => f64::INFINITY,
    };
    let chi2_red = chi2 / dof;
    let standard = Normal::standard();
    let chi2_p_value = if chi2_red.is_finite() && chi2_red > 0.0 {
        let spread = (2.0 / dof + 4.0 * noise.log_sd_variance).sqrt();
        standard.sf(chi2_red.ln() / spread)
    } else if chi2_red == 0.0 {
        1.0
    } else {
        0.0
    };
    let thinning = match noise.lag1_correlation {
        Some(rho) if noise.correlated && rho > 0.1 => {
            ((0.1f64).ln() / rho.ln()).ceil().clamp(1.0, 1000.0) as usize
        }
        _ => 1,
    };
    let (runs, runs_expected, runs_p_value) = runs_test(residuals, thinning);
    let half = MISFIT_SIGNIFICANCE / 2.0;
    let misfit = chi2_p_value < half || runs_p_value < half;
    let residual_lag1 = lag1_autocorrelation(residuals);
    let se_inflation = if misfit || noise.correlated {
        let rho = residual_lag1.clamp(0.0, 0.98);
        ((1.0 + rho) / (1.0 - rho)).sqrt()
    } else {
        1.0
    };
    (
        misfit,
        LackOfFit {
            chi2_red,
            chi2_p_value,
            runs,
            runs_expected,
            runs_p_value,
            thinning,
            residual_lag1,
            se_inflation,
            significance: MISFIT_SIGNIFICANCE,
        },
    )
}

/// Runs of equal sign among every `step`-th residual (zeros skipped): the count, its expectation
/// for independent signs, and the one-sided p-value of too few.
fn runs_test(residuals: &[f64], step: usize) -> (usize, f64, f64) {
    let (runs, positive, negative) = if step <= 1 && !residuals.contains(&0.0) {
        // Every residual has a sign: counts of comparisons, which the compiler turns into
        // vector loops (this runs on every fit; a branch per sign was a tenth of a fit).
        let positive = residuals.iter().filter(|&&r| r > 0.0).count();
        let changes = residuals
            .windows(2)
            .filter(|w| (w[0] > 0.0) != (w[1] > 0.0))
            .count();
        let runs = if residuals.is_empty() { 0 } else { 1 + changes };
        (runs, positive, residuals.len() - positive)
    } else {
        signed_runs(residuals, step)
    };
    runs_p_value(runs, positive, negative)
}

/// Runs, positives and negatives among every `step`-th residual, zeros skipped.
fn signed_runs(residuals: &[f64], step: usize) -> (usize, usize, usize) {
    let (mut positive, mut negative, mut changes) = (0usize, 0usize, 0usize);
    let mut previous: Option<bool> = None;
    for &r in residuals.iter().step_by(step.max(1)) {
        if r == 0.0 {
            continue;
        }
        let sign = r > 0.0;
        if sign {
            positive += 1;
        } else {
            negative += 1;
        }
        changes += usize::from(previous.is_some_and(|p| p != sign));
        previous = Some(sign);
    }
    let runs = if previous.is_some() { 1 + changes } else { 0 };
    (runs, positive, negative)
}

/// The runs test's expectation and one-sided p-value (too few runs) for `runs` among `positive`
/// and `negative` signs.
fn runs_p_value(runs: usize, positive: usize, negative: usize) -> (usize, f64, f64) {
    let (positive, negative) = (positive as f64, negative as f64);
    let n = positive + negative;
    if positive == 0.0 || negative == 0.0 {
        // All one sign over many echoes is itself the strongest pattern.
        let p = if n >= 20.0 { 0.0 } else { 1.0 };
        return (runs, 1.0, p);
    }
    let expected = 2.0 * positive * negative / n + 1.0;
    let variance =
        2.0 * positive * negative * (2.0 * positive * negative - n) / (n * n * (n - 1.0));
    let p = if variance > 0.0 {
        // Continuity correction of one half.
        Normal::standard().cdf((runs as f64 - expected + 0.5) / variance.sqrt())
    } else {
        1.0
    };
    (runs, expected, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_known_sequences() {
        // + + − − + + − − …: 50 runs of two in 100 signs; expected 51.
        let alternating_pairs: Vec<f64> = (0..100)
            .map(|i| if (i / 2) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let (runs, expected, p) = runs_test(&alternating_pairs, 1);
        assert_eq!(runs, 50);
        assert!((expected - 51.0).abs() < 1e-12);
        assert!(p > 0.3);
        // Fifty positives then fifty negatives: two runs, a certain pattern.
        let blocks: Vec<f64> = (0..100).map(|i| if i < 50 { 1.0 } else { -1.0 }).collect();
        let (runs, _, p) = runs_test(&blocks, 1);
        assert_eq!(runs, 2);
        assert!(p < 1e-12);
        // Thinning by two of the pairs gives alternation: + − + − …
        let (runs, _, _) = runs_test(&alternating_pairs, 2);
        assert_eq!(runs, 50);
    }

    #[test]
    fn the_counted_runs_match_the_sign_by_sign_count() {
        // A fixed pseudo-random sequence of signs (a 64-bit LCG), with and without exact zeros
        // (which the sign-by-sign count skips and the counted path hands over to it).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut residuals: Vec<f64> = (0..997)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.45
            })
            .collect();
        let counted = runs_test(&residuals, 1);
        let (runs, positive, negative) = signed_runs(&residuals, 1);
        assert_eq!(counted, runs_p_value(runs, positive, negative));
        assert!(positive > 0 && negative > 0);
        for i in [0, 1, 500, 996] {
            residuals[i] = 0.0;
        }
        let (runs, positive, negative) = signed_runs(&residuals, 1);
        assert_eq!(positive + negative, 993);
        assert_eq!(
            runs_test(&residuals, 1),
            runs_p_value(runs, positive, negative)
        );
    }
}
