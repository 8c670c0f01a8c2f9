//! Sums of exponentials fitted to magnitudes: the Rician mean of `|Σ a_k·exp(−r_k t) + c|`.
//!
//! A magnitude train's noise floor lifts its tail (see [`super::rician`]); a Gaussian fit of a sum
//! of exponentials then lengthens the slow component and shifts the fraction, as the mono fit
//! would. This refines a Gaussian [`ExpSumFit`] (its seed) by Levenberg–Marquardt on all of
//! `(a_1, r_1, …, a_K, r_K[, c])` against the Rician mean with noise σ, and estimates σ jointly by
//! the method of moments exactly as the mono fit does for magnitudes: the residuals' sum of squares
//! is matched to the model's own Rician variance summed over the echoes (`ν² + 2σ² − E²`, which
//! shrinks on the floor), alternating with the fit until σ settles, so the floor's mean and spread
//! pin the baseline c and σ apart.
//!
//! The result is an [`ExpSumFit`] whose `rician_sigma` is set: its [`ExpSumFit::model`] is then
//! the Rician mean and its covariance weights the Jacobian by the mean's slope, so the
//! bi-exponential report and its model comparison need nothing else.
//!
//! Not for: complex or phased-real data (Gaussian noise: [`super::exp_sum`] alone).

use nalgebra::{DMatrix, DVector};

use super::exp_sum::{ExpSumFit, RateBounds};
use super::rician::rician_mean;

const MAX_ITERATIONS: u32 = 100;

/// Rounds of the σ–fit alternation at most.
const MAX_SIGMA_ROUNDS: usize = 20;

/// Refines `start` (fitted to the magnitudes `y` at `times_s` with the Gaussian model) against
/// the Rician mean, from the model-free noise estimate `sigma0`. The number of components and
/// whether the offset is fitted are `start`'s. A refinement that cannot improve on its start
/// keeps the start's parameters, now judged by the Rician model.
pub(crate) fn refine_rician(
    times_s: &[f64],
    y: &[f64],
    start: &ExpSumFit,
    sigma0: f64,
    bounds: RateBounds,
) -> ExpSumFit {
    let moment_parameters = start.parameter_count() + 1;
    let mut sigma = sigma0;
    // While σ still moves, a few steps per round suffice (the parameters and σ settle together;
    // a full solve at each passing σ was three quarters of the cost); the last σ gets a full one.
    let mut fit = levenberg_marquardt(times_s, y, start, sigma, bounds, STEPS_PER_SIGMA_ROUND);
    for _ in 0..MAX_SIGMA_ROUNDS {
        let Some(next) = moment_sigma(times_s, y, &fit, sigma, moment_parameters) else {
            break;
        };
        let settled = (next / sigma - 1.0).abs() < 1e-4;
        sigma = next;
        if settled {
            break;
        }
        fit = levenberg_marquardt(times_s, y, &fit, sigma, bounds, STEPS_PER_SIGMA_ROUND);
    }
    levenberg_marquardt(times_s, y, &fit, sigma, bounds, MAX_ITERATIONS)
}

/// Levenberg–Marquardt steps per round of the σ alternation before the last.
const STEPS_PER_SIGMA_ROUND: u32 = 4;

/// The parameters of a fit as `[a_1, r_1, …, a_K, r_K(, c)]`.
fn parameters_of(fit: &ExpSumFit) -> Vec<f64> {
    let mut p: Vec<f64> = fit
        .amplitudes
        .iter()
        .zip(&fit.rates_per_s)
        .flat_map(|(&a, &r)| [a, r])
        .collect();
    if fit.with_offset {
        p.push(fit.offset);
    }
    p
}

/// The noise-free signal ν at `t` for parameters `p` of `components` components.
fn signal(p: &[f64], components: usize, with_offset: bool, t: f64) -> f64 {
    let decay: f64 = (0..components)
        .map(|k| p[2 * k] * (-p[2 * k + 1] * t).exp())
        .sum();
    decay + if with_offset { p[2 * components] } else { 0.0 }
}

/// Σ (y − E[y])² of the Rician model.
fn rss(
    times_s: &[f64],
    y: &[f64],
    p: &[f64],
    components: usize,
    with_offset: bool,
    sigma: f64,
) -> f64 {
    times_s
        .iter()
        .zip(y)
        .map(|(&t, &v)| {
            let (mean, _) = rician_mean(signal(p, components, with_offset, t), sigma);
            (v - mean) * (v - mean)
        })
        .sum()
}

/// Levenberg–Marquardt on all parameters against the Rician mean with σ held at `sigma`, at most
/// `max_iterations` steps.
fn levenberg_marquardt(
    times_s: &[f64],
    y: &[f64],
    start: &ExpSumFit,
    sigma: f64,
    bounds: RateBounds,
    max_iterations: u32,
) -> ExpSumFit {
    let components = start.rates_per_s.len();
    let with_offset = start.with_offset;
    let n = start.parameter_count();
    let mut p = parameters_of(start);
    let finish = |p: &[f64], rss: f64, converged: bool, iterations: u32| {
        let rates: Vec<f64> = (0..components).map(|k| p[2 * k + 1]).collect();
        let at_bound = rates.iter().any(|&r| {
            (r / bounds.min_per_s - 1.0).abs() < 1e-6 || (r / bounds.max_per_s - 1.0).abs() < 1e-6
        }) || start.at_bound;
        let mut pairs: Vec<(f64, f64)> =
            (0..components).map(|k| (p[2 * k + 1], p[2 * k])).collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        ExpSumFit {
            rates_per_s: pairs.iter().map(|q| q.0).collect(),
            amplitudes: pairs.iter().map(|q| q.1).collect(),
            offset: if with_offset { p[2 * components] } else { 0.0 },
            rss,
            converged: converged && !at_bound,
            iterations,
            at_bound,
            with_offset,
            rician_sigma: Some(sigma),
        }
    };
    if !p.iter().all(|v| v.is_finite()) {
        return finish(&p, f64::INFINITY, false, start.iterations);
    }
    let mut current = rss(times_s, y, &p, components, with_offset, sigma);
    let mut lambda = 1e-3;
    let mut converged = false;
    let mut iterations = start.iterations;
    let m = times_s.len();
    while iterations < start.iterations + max_iterations {
        iterations += 1;
        // Jacobian of the mean (∂E/∂ν times ∂ν/∂p) and the residuals.
        let mut jac = DMatrix::<f64>::zeros(m, n);
        let mut residual = DVector::<f64>::zeros(m);
        for (i, (&t, &v)) in times_s.iter().zip(y).enumerate() {
            let (mean, slope) = rician_mean(signal(&p, components, with_offset, t), sigma);
            residual[i] = v - mean;
            for k in 0..components {
                let e = (-p[2 * k + 1] * t).exp();
                jac[(i, 2 * k)] = slope * e;
                jac[(i, 2 * k + 1)] = -slope * p[2 * k] * t * e;
            }
            if with_offset {
                jac[(i, 2 * components)] = slope;
            }
        }
        let jtj = jac.tr_mul(&jac);
        let jtr = jac.tr_mul(&residual);
        // Stop once the Gauss–Newton step is below a hundredth of every parameter's standard
        // error (as the β fit does): a further step could move the answer by nothing the data
        // can see, where the χ² tests below would crawl along the amplitude–rate ridges.
        if let Some(cholesky) = jtj.clone().cholesky() {
            let gauss_newton = cholesky.solve(&jtr);
            let inverse = cholesky.inverse();
            let variance = current / (m as f64 - n as f64).max(1.0);
            if (0..n).all(|k| gauss_newton[k].abs() <= 1e-2 * (variance * inverse[(k, k)]).sqrt()) {
                converged = true;
                break;
            }
        }
        let mut accepted = false;
        while lambda < 1e12 {
            let mut damped = jtj.clone();
            for d in 0..n {
                damped[(d, d)] += lambda * jtj[(d, d)].max(1e-300);
            }
            let Some(step) = damped.cholesky().map(|c| c.solve(&jtr)) else {
                lambda *= 10.0;
                continue;
            };
            let trial: Vec<f64> = p.iter().zip(step.iter()).map(|(a, b)| a + b).collect();
            let rates_inside = (0..components).all(|k| {
                let r = trial[2 * k + 1];
                r >= bounds.min_per_s && r <= bounds.max_per_s
            });
            if rates_inside && trial.iter().all(|v| v.is_finite()) {
                let trial_rss = rss(times_s, y, &trial, components, with_offset, sigma);
                if trial_rss <= current {
                    // The Bessel approximations are accurate to ~2e-7 with kinks where they
                    // switch form: χ² is trustworthy to about 1e-8 of itself (as in the mono fit).
                    let small_step = (0..components)
                        .all(|k| (trial[2 * k + 1] - p[2 * k + 1]).abs() <= 1e-6 * p[2 * k + 1]);
                    converged =
                        small_step || current - trial_rss <= 1e-8 * current.max(f64::MIN_POSITIVE);
                    (p, current) = (trial, trial_rss);
                    lambda = (lambda / 10.0).max(1e-12);
                    accepted = true;
                    break;
                }
            }
            lambda *= 10.0;
        }
        if !accepted {
            // No downhill step at any damping: the minimum to working precision.
            converged = lambda >= 1e12;
            break;
        }
        if converged {
            break;
        }
    }
    finish(&p, current, converged, iterations)
}

/// σ by the method of moments at a Rician fit (as the mono fit's): the residual sum of squares
/// over the model's variances summed at σ, scaled for `parameters` fitted (σ among them).
fn moment_sigma(
    times_s: &[f64],
    y: &[f64],
    fit: &ExpSumFit,
    sigma: f64,
    parameters: usize,
) -> Option<f64> {
    let m = times_s.len();
    if m <= parameters || !(sigma > 0.0) {
        return None;
    }
    let (mut residual_ss, mut variance) = (0.0, 0.0);
    for (&t, &v) in times_s.iter().zip(y) {
        let nu = fit.signal(t);
        let (mean, _) = rician_mean(nu, sigma);
        residual_ss += (v - mean) * (v - mean);
        variance += (nu * nu + 2.0 * sigma * sigma - mean * mean).max(0.0);
    }
    let scale = m as f64 / (m - parameters) as f64;
    let next = sigma * (residual_ss * scale / variance).sqrt();
    (next.is_finite() && next > 0.0).then_some(next)
}

/// The Rician variance of each echo at σ (`ν² + 2σ² − E²`, floored at 1e-3 σ² as the mono fit's
/// χ² test does), for a χ² against an independent σ.
pub(crate) fn rician_variances(times_s: &[f64], fit: &ExpSumFit, sigma: f64) -> Vec<f64> {
    times_s
        .iter()
        .map(|&t| {
            let nu = fit.signal(t);
            let (mean, _) = rician_mean(nu, sigma);
            (nu * nu + 2.0 * sigma * sigma - mean * mean).max(1e-3 * sigma * sigma)
        })
        .collect()
}
