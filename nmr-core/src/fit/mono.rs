//! The mono-exponential fit, `A·exp(−t/T2) + C` (or without C: see [`super::offset`]): the
//! appliance's inner loop.
//!
//! The model is separable: for a given rate R = 1/T2 the amplitude A and offset C follow by linear
//! least squares. The fit therefore searches R alone (variable projection, Kaufman's Gauss–Newton
//! step with Levenberg–Marquardt damping), starting from a log-linear fit of the early echoes. Each
//! step costs one pass over the echoes that accumulates a handful of sums; on uniformly spaced echoes
//! the exponentials come from a running product, so no `exp` is evaluated per echo.
//!
//! Magnitude-only data are then refined against the Rician mean of `|A·exp(−t/T2) + C|` with the
//! noise σ (see [`super::rician`]) by Levenberg–Marquardt, which removes the noise-floor bias. σ is
//! held at its independent estimate (from the echoes well above the noise), so a baseline and the
//! floor stay apart; when too few echoes stand above the noise to measure σ that way, σ is fitted
//! instead and the offset is fixed at zero (the two cannot be told apart), which the report says.
//!
//! Standard errors come from the covariance `σ̂²·(JᵀJ)⁻¹` at the solution, with σ̂² the residual
//! variance, widened further when the fit misfits or the noise is correlated (see
//! [`super::misfit`], which also holds the lack-of-fit tests behind the `misfit` flag).
//!
//! ## Reference
//! Golub GH, Pereyra V. The differentiation of pseudo-inverses and nonlinear least squares problems
//! whose variables separate. SIAM J Numer Anal 1973;10:413–432. Kaufman L. A variable projection
//! method for solving separable nonlinear least squares problems. BIT 1975;15:49–57.

use serde::{Deserialize, Serialize};
use wide::f64x2;

use super::misfit::{LackOfFit, assess};
use super::offset::{OffsetChoice, OffsetModel};
use super::rician::rician_mean;
use super::{FitError, FitInput, FitOptions};
use crate::linalg::{invert3, solve3};
use crate::noise::{NoiseEstimate, NoiseMethod};
use crate::{EchoTrain, SignalKind};

/// Echoes the mono-exponential fit needs at least (three parameters and two degrees of freedom).
pub const MIN_ECHOES: usize = 5;

const MAX_ITERATIONS: u32 = 100;

/// The report of a mono-exponential fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonoFit {
    /// T2 in milliseconds.
    pub t2_ms: f64,
    /// Its standard error.
    pub t2_ms_se: f64,
    /// R2 = 1/T2 in s⁻¹.
    pub r2_per_s: f64,
    /// Its standard error.
    pub r2_per_s_se: f64,
    /// A: the decaying signal extrapolated to t = 0, in signal units.
    pub amplitude: f64,
    /// Its standard error.
    pub amplitude_se: f64,
    /// C: the constant baseline (0 when the offset model is `none`).
    pub offset: f64,
    /// Its standard error.
    pub offset_se: f64,
    /// χ² over its degrees of freedom against the independent noise estimate (≈ 1 when the model
    /// fits; NaN, written `null`, when the noise is zero).
    #[serde(deserialize_with = "crate::json_float::null_as_nan")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub chi2_red: f64,
    /// A over the noise SD per echo (infinite, written `null`, for a noiseless train).
    #[serde(deserialize_with = "crate::json_float::null_as_infinity")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub snr: f64,
    /// Noise SD per echo and channel (`noise.sd`).
    pub noise_sd: f64,
    /// Echoes the fit used.
    pub echoes_used: usize,
    /// Whether the solver met its convergence criterion.
    pub converged: bool,
    /// Solver iterations.
    pub iterations: u32,
    /// Receiver phase removed by phasing, in radians.
    pub phase_rad: f64,
    /// Whether the Rician noise floor was modelled (magnitude data).
    pub rician_corrected: bool,
    /// The kind of values fitted (complex data are phased and fitted as their real channel).
    #[serde(default = "complex_kind")]
    pub signal_kind: SignalKind,
    /// The offset model used, and why.
    #[serde(default)]
    pub offset_model: OffsetChoice,
    /// The noise estimate and how it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<NoiseEstimate>,
    /// The model does not describe the echoes within their noise (see `lack_of_fit`); the standard
    /// errors are then widened by `lack_of_fit.se_inflation`.
    #[serde(default)]
    pub misfit: bool,
    /// The lack-of-fit tests behind `misfit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lack_of_fit: Option<LackOfFit>,
    /// Data minus model for each echo used, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residuals: Option<Vec<f64>>,
}

/// Stored reports from before the signal kind was recorded came from the board: complex.
fn complex_kind() -> SignalKind {
    SignalKind::Complex
}

/// Fits `A·exp(−t/T2) + C` to a train, with the offset model of `options.offset`.
///
/// # Errors
/// [`FitError`] when the data cannot identify T2: too few echoes, no signal above the noise, a T2 far
/// beyond the acquisition window, or a signal gone within about two echoes.
///
/// # Example
/// ```
/// use nmr_core::{CpmgSimulation, fit::{FitOptions, fit_mono}};
/// let mut sim = CpmgSimulation::mono(1.0, 0.080, 0.0005, 1000);
/// sim.noise_sd = 0.01;
/// let fit = fit_mono(&sim.simulate(7), &FitOptions::default())?;
/// assert!((fit.t2_ms - 80.0).abs() < 4.0 * fit.t2_ms_se);
/// # Ok::<(), nmr_core::fit::FitError>(())
/// ```
pub fn fit_mono(train: &EchoTrain, options: &FitOptions) -> Result<MonoFit, FitError> {
    let input = FitInput::new(train, options);
    let n = input.times_s.len();
    if n < MIN_ECHOES {
        return Err(FitError::TooFewEchoes {
            used: n,
            needed: MIN_ECHOES,
        });
    }
    let problem = Problem::new(input.times_s, &input.signal);
    let seed = log_linear_seed(&input)?;
    let solve = |with_offset: bool| {
        let solution = problem.solve_projected(seed, with_offset);
        if solution.converged {
            return solution;
        }
        // A poor seed: restart from the best rate of a coarse grid.
        let grid_seed = problem.best_rate_on_grid(input.echo_spacing_s, with_offset);
        let retry = problem.solve_projected(grid_seed, with_offset);
        if retry.chi2 < solution.chi2 || retry.converged {
            retry
        } else {
            solution
        }
    };
    let (solution, choice) = if input.magnitude && input.noise_sd > 0.0 {
        fit_magnitude(&input, &problem, solve(true), options.offset)
    } else {
        match options.offset {
            OffsetModel::Free => (solve(true), OffsetChoice::as_asked(OffsetModel::Free)),
            OffsetModel::None => (solve(false), OffsetChoice::as_asked(OffsetModel::None)),
            OffsetModel::Auto => {
                let (free, none) = (solve(true), solve(false));
                let choice = OffsetChoice::decide(none.chi2, free.chi2, n, 3);
                let used = if choice.used == OffsetModel::Free {
                    free
                } else {
                    none
                };
                (used, choice)
            }
        }
    };
    report(&input, &problem, solution, options, choice)
}

/// The Rician fits of magnitude data, with the offset model asked for.
///
/// σ is estimated jointly with the decay by the method of moments: the residuals' sum of squares
/// is matched to the Rician model's own variance summed over the echoes (`ν² + 2σ² − E²`, which
/// shrinks on the floor), alternating with the fit until σ settles. The floor's mean and its
/// spread then pin the baseline C and σ separately, where the mean alone could not.
fn fit_magnitude(
    input: &FitInput,
    problem: &Problem<'_>,
    gaussian: Solution,
    offset: OffsetModel,
) -> (Solution, OffsetChoice) {
    let fit = |third: Third| {
        let start = if third == Third::Offset {
            gaussian
        } else {
            Solution {
                offset: 0.0,
                ..gaussian
            }
        };
        let mut sigma = input.noise_sd;
        let mut solution = problem.solve_rician(start, sigma, third);
        let parameters = if third == Third::Offset { 4 } else { 3 };
        for _ in 0..12 {
            let Some(next) = problem.moment_sigma(&solution, sigma, parameters) else {
                break;
            };
            let settled = (next / sigma - 1.0).abs() < 1e-4;
            sigma = next;
            solution = problem.solve_rician(solution, sigma, third);
            if settled {
                break;
            }
        }
        solution.rician_sigma_fitted = true;
        solution
    };
    match offset {
        OffsetModel::Free => (
            fit(Third::Offset),
            OffsetChoice::as_asked(OffsetModel::Free),
        ),
        OffsetModel::None => (fit(Third::Held), OffsetChoice::as_asked(OffsetModel::None)),
        OffsetModel::Auto => {
            let (free, none) = (fit(Third::Offset), fit(Third::Held));
            let choice = OffsetChoice::decide(none.chi2, free.chi2, input.times_s.len(), 4);
            let used = if choice.used == OffsetModel::Free {
                free
            } else {
                none
            };
            (used, choice)
        }
    }
}

/// A log-linear fit of the early echoes, where the signal is well above the noise and any offset:
/// the seed rate for the projected search.
fn log_linear_seed(input: &FitInput) -> Result<f64, FitError> {
    let (t, y) = (&input.times_s, &input.signal);
    let head = y.len().min(4);
    let start = y[..head].iter().sum::<f64>() / head as f64;
    let threshold = (0.2 * start).max(3.0 * input.noise_sd);
    let prefix = y.iter().position(|&v| v <= threshold).unwrap_or(y.len());
    if prefix < 3 {
        if start > 10.0 * input.noise_sd {
            return Err(FitError::T2BelowEchoSpacing {
                te_ms: input.echo_spacing_s * 1e3,
                echoes_with_signal: prefix,
            });
        }
        // No clear early signal: let the projected search start from a rate spanning the window.
        return Ok(1.0 / window_s(t));
    }
    let stride = prefix.div_ceil(64);
    let (mut sw, mut st, mut sl, mut stt, mut stl) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in (0..prefix).step_by(stride) {
        // Var(ln y) ≈ σ²/y², so weight by y².
        let w = y[i] * y[i];
        let l = y[i].ln();
        sw += w;
        st += w * t[i];
        sl += w * l;
        stt += w * t[i] * t[i];
        stl += w * t[i] * l;
    }
    let denom = sw * stt - st * st;
    let slope = if denom > 0.0 {
        (sw * stl - st * sl) / denom
    } else {
        0.0
    };
    let rate = -slope;
    Ok(if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        1.0 / window_s(t)
    })
}

/// Time of the last echo: how long the decay was watched.
fn window_s(times_s: &[f64]) -> f64 {
    times_s[times_s.len() - 1]
}

/// Where the fit ended.
#[derive(Clone, Copy, Debug)]
struct Solution {
    amplitude: f64,
    rate: f64,
    offset: f64,
    chi2: f64,
    converged: bool,
    iterations: u32,
    /// Whether the offset C is a fitted parameter.
    offset_fitted: bool,
    /// For magnitude data: the noise σ of the Rician model.
    rician_sigma: Option<f64>,
    /// Whether that σ was fitted (the train reaches the floor and σ has no independent estimate)
    /// or held at its estimate.
    rician_sigma_fitted: bool,
    /// The Gaussian model's sums at `rate`, kept from the search so that the covariance needs no
    /// further pass over the echoes (`None` for the Rician model).
    sums: Option<Sums>,
}

/// The third parameter of the Rician model besides A and R (σ is held within one solve).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Third {
    /// C, fitted.
    Offset,
    /// None: C = 0.
    Held,
}

/// The sums one pass over the echoes gives at a rate R (e = exp(−R·t)).
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    e: f64,
    ee: f64,
    te: f64,
    tee: f64,
    ttee: f64,
    ye: f64,
    tye: f64,
}

impl Sums {
    /// Adds one echo at time `t` with value `y` and exponential `e`.
    #[inline(always)]
    fn add(&mut self, t: f64, y: f64, e: f64) {
        let (te, ee) = (t * e, e * e);
        self.e += e;
        self.ee += ee;
        self.te += te;
        self.tee += t * ee;
        self.ttee += t * t * ee;
        self.ye += y * e;
        self.tye += y * te;
    }
}

/// The echoes to fit, with what every pass needs precomputed.
struct Problem<'a> {
    t: &'a [f64],
    y: &'a [f64],
    n: f64,
    sum_y: f64,
    sum_yy: f64,
    /// `Some((t0, dt))` when the echoes are uniformly spaced.
    uniform: Option<(f64, f64)>,
}

impl<'a> Problem<'a> {
    fn new(t: &'a [f64], y: &'a [f64]) -> Self {
        let n = t.len();
        let dt = (t[n - 1] - t[0]) / (n - 1) as f64;
        let tolerance = 1e-9 * t[n - 1].abs().max(dt);
        // One pass for the spacing check and the data's two sums.
        let (mut uniform, mut sum_y, mut sum_yy) = (true, 0.0, 0.0);
        for (i, (&ti, &yi)) in t.iter().zip(y).enumerate() {
            uniform &= (ti - (t[0] + i as f64 * dt)).abs() <= tolerance;
            sum_y += yi;
            sum_yy += yi * yi;
        }
        Self {
            t,
            y,
            n: n as f64,
            sum_y,
            sum_yy,
            uniform: uniform.then_some((t[0], dt)),
        }
    }

    /// One pass: the sums at rate `rate`.
    ///
    /// On uniformly spaced echoes two running products, over the even and the odd echoes, feed two
    /// sets of partial sums: a single product chain and single accumulators would make every echo
    /// wait for the previous one's multiply and adds. The two chains are the two lanes of one
    /// vector register (`wide::f64x2`: SSE2 on x86-64, NEON on ARM), so each of the pass's
    /// operations is one instruction for two echoes; left to itself the compiler had paired
    /// different sums of one echo instead, at half the speed. Each lane does the same IEEE
    /// operations in the same order as the plain code, so the sums are the same to the bit. Four
    /// chains were slower: their accumulators no longer fit in the registers.
    fn sums(&self, rate: f64) -> Sums {
        let Some((t0, dt)) = self.uniform else {
            let mut s = Sums::default();
            for (&t, &y) in self.t.iter().zip(self.y) {
                s.add(t, y, (-rate * t).exp());
            }
            return s;
        };
        let q = (-rate * dt).exp();
        let q_pair = f64x2::splat(q * q);
        let e0 = (-rate * t0).exp();
        let mut e = f64x2::new([e0, e0 * q]);
        // One slot per chain in each accumulator, so that the two chains' arithmetic runs as one
        // vector operation (the even echoes in the first slot, the odd ones in the second).
        let zero = f64x2::ZERO;
        let (mut se, mut see, mut ste, mut stee) = (zero, zero, zero, zero);
        let (mut sttee, mut sye, mut stye) = (zero, zero, zero);
        let t_chunks = self.t.chunks_exact(2);
        let y_chunks = self.y.chunks_exact(2);
        let (t_rest, y_rest) = (t_chunks.remainder(), y_chunks.remainder());
        for (t, y) in t_chunks.zip(y_chunks) {
            let (t, y) = (f64x2::new([t[0], t[1]]), f64x2::new([y[0], y[1]]));
            let (te, ee) = (t * e, e * e);
            se += e;
            see += ee;
            ste += te;
            stee += t * ee;
            sttee += t * t * ee;
            sye += y * e;
            stye += y * te;
            e *= q_pair;
        }
        let total = |pair: f64x2| {
            let [even, odd] = pair.to_array();
            even + odd
        };
        let mut s = Sums {
            e: total(se),
            ee: total(see),
            te: total(ste),
            tee: total(stee),
            ttee: total(sttee),
            ye: total(sye),
            tye: total(stye),
        };
        // The echoes after the last whole chunk continue the first chain.
        let mut e_rest = e.to_array()[0];
        for (&t, &y) in t_rest.iter().zip(y_rest) {
            s.add(t, y, e_rest);
            e_rest *= q;
        }
        s
    }

    /// The best amplitude and offset (0 without one) at this rate, and the χ² they leave.
    fn project(&self, s: &Sums, with_offset: bool) -> Option<(f64, f64, f64)> {
        if !with_offset {
            if !(s.ee > 0.0) {
                return None;
            }
            let a = s.ye / s.ee;
            return Some((a, 0.0, (self.sum_yy - a * s.ye).max(0.0)));
        }
        let det = s.ee * self.n - s.e * s.e;
        if !(det > 1e-13 * s.ee * self.n) {
            return None;
        }
        let a = (s.ye * self.n - s.e * self.sum_y) / det;
        let c = (s.ee * self.sum_y - s.e * s.ye) / det;
        let chi2 = self.sum_yy - 2.0 * a * s.ye - 2.0 * c * self.sum_y
            + a * a * s.ee
            + 2.0 * a * c * s.e
            + self.n * c * c;
        Some((a, c, chi2.max(0.0)))
    }

    /// Variable projection over the rate, from `rate0`, with or without the offset.
    fn solve_projected(&self, rate0: f64, with_offset: bool) -> Solution {
        let mut rate = rate0;
        let mut sums = self.sums(rate);
        let Some((mut a, mut c, mut chi2)) = self.project(&sums, with_offset) else {
            return Solution {
                amplitude: f64::NAN,
                rate,
                offset: f64::NAN,
                chi2: f64::INFINITY,
                converged: false,
                iterations: 0,
                offset_fitted: with_offset,
                rician_sigma: None,
                rician_sigma_fitted: false,
                sums: None,
            };
        };
        let mut lambda = 1e-3;
        let mut converged = false;
        let mut iterations = 0;
        while iterations < MAX_ITERATIONS {
            iterations += 1;
            // Gradient of χ²/2 along R with A, C at their optimum, and the Schur complement of the
            // Gauss–Newton matrix (the curvature left once A and C are projected out).
            let g = -a * (sums.tye - a * sums.tee - c * sums.te);
            let h_rr = a * a * sums.ttee;
            let h_ra = -a * sums.tee;
            let h_rc = -a * sums.te;
            let schur = if with_offset {
                let det = sums.ee * self.n - sums.e * sums.e;
                h_rr - (h_ra * h_ra * self.n - 2.0 * h_ra * h_rc * sums.e + h_rc * h_rc * sums.ee)
                    / det
            } else {
                h_rr - h_ra * h_ra / sums.ee
            };
            if !(schur > 0.0) || !g.is_finite() {
                break;
            }
            // The Gauss–Newton step is negligible once it is below a thousandth of the rate's
            // standard error (or, on noiseless data, 1e-10 of the rate): another pass could move
            // the answer by nothing the data can see.
            let parameters = if with_offset { 3.0 } else { 2.0 };
            let rate_se = (chi2 / (self.n - parameters).max(1.0) / schur).sqrt();
            if (g / schur).abs() <= (1e-3 * rate_se).max(1e-10 * rate) {
                converged = true;
                break;
            }
            let mut accepted = false;
            while lambda < 1e12 {
                let step = g / (schur + lambda * h_rr);
                let mut trial = rate + step;
                if !(trial > 0.0) {
                    trial = rate / 10.0;
                }
                let trial_sums = self.sums(trial);
                if let Some((ta, tc, tchi2)) = self.project(&trial_sums, with_offset)
                    && tchi2 <= chi2
                {
                    let small_step = (trial - rate).abs() <= 1e-10 * rate;
                    let small_gain = chi2 - tchi2 <= 1e-15 * chi2.max(1e-300);
                    (rate, sums, a, c, chi2) = (trial, trial_sums, ta, tc, tchi2);
                    lambda = (lambda / 10.0).max(1e-12);
                    accepted = true;
                    converged = small_step || small_gain;
                    break;
                }
                lambda *= 10.0;
            }
            if !accepted {
                // No step along R lowers χ²: this is the minimum to working precision.
                converged = lambda >= 1e12;
                break;
            }
            if converged {
                break;
            }
        }
        Solution {
            amplitude: a,
            rate,
            offset: c,
            chi2,
            converged,
            iterations,
            offset_fitted: with_offset,
            rician_sigma: None,
            rician_sigma_fitted: false,
            sums: Some(sums),
        }
    }

    /// The rate on a coarse logarithmic grid (from a tenth of the window's rate to ten per echo
    /// spacing) with the lowest projected χ².
    fn best_rate_on_grid(&self, echo_spacing_s: f64, with_offset: bool) -> f64 {
        let low = 0.1 / window_s(self.t);
        let high = 10.0 / echo_spacing_s.max(1e-12);
        let steps = 40;
        (0..=steps)
            .map(|k| low * (high / low).powf(k as f64 / steps as f64))
            .filter_map(|r| {
                self.project(&self.sums(r), with_offset)
                    .map(|(_, _, chi2)| (r, chi2))
            })
            .min_by(|x, y| x.1.total_cmp(&y.1))
            .map_or(1.0 / window_s(self.t), |(r, _)| r)
    }

    /// σ by the method of moments at a Rician solution: the residual sum of squares over the sum of
    /// the model's variances at σ, scaled for the fitted parameters (the variances are nearly
    /// proportional to σ², so one step lands close and a few settle it).
    fn moment_sigma(&self, s: &Solution, sigma: f64, parameters: usize) -> Option<f64> {
        let m = self.t.len();
        if m <= parameters || !(sigma > 0.0) {
            return None;
        }
        let (mut rss, mut variance) = (0.0, 0.0);
        for (&t, &y) in self.t.iter().zip(self.y) {
            let nu = s.amplitude * (-s.rate * t).exp() + s.offset;
            let (mean, _) = rician_mean(nu, sigma);
            rss += (y - mean) * (y - mean);
            variance += (nu * nu + 2.0 * sigma * sigma - mean * mean).max(0.0);
        }
        let scale = m as f64 / (m - parameters) as f64;
        let next = sigma * (rss * scale / variance).sqrt();
        (next.is_finite() && next > 0.0).then_some(next)
    }

    /// The parameters `p = [A, R, x]` (x = C for [`Third::Offset`], unused for [`Third::Held`])
    /// with σ `sigma0`, as (A, R, C, σ).
    fn rician_parts(p: [f64; 3], third: Third, sigma0: f64) -> (f64, f64, f64, f64) {
        match third {
            Third::Offset => (p[0], p[1], p[2], sigma0),
            Third::Held => (p[0], p[1], 0.0, sigma0),
        }
    }

    /// Levenberg–Marquardt on (A, R, x) against the Rician mean of `|A·exp(−R·t) + C|` with σ, from
    /// the Gaussian solution; x is σ, C or nothing as `third` says.
    fn solve_rician(&self, start: Solution, sigma0: f64, third: Third) -> Solution {
        let chi2_at = |p: [f64; 3]| -> f64 {
            let (a, r, c, sigma) = Self::rician_parts(p, third, sigma0);
            self.t
                .iter()
                .zip(self.y)
                .map(|(&t, &y)| {
                    let (m, _) = rician_mean(a * (-r * t).exp() + c, sigma);
                    (y - m) * (y - m)
                })
                .sum()
        };
        let x0 = match third {
            Third::Offset => start.offset,
            Third::Held => 0.0,
        };
        let mut p = [start.amplitude, start.rate, x0];
        let failed = Solution {
            offset_fitted: third == Third::Offset,
            rician_sigma: Some(sigma0),
            converged: false,
            sums: None,
            ..start
        };
        if !p.iter().all(|v| v.is_finite()) {
            return failed;
        }
        let mut chi2 = chi2_at(p);
        let mut lambda = 1e-3;
        let mut converged = false;
        let mut iterations = start.iterations;
        while iterations < start.iterations + MAX_ITERATIONS {
            iterations += 1;
            let (mut jtj, mut jtr) = self.rician_normal_equations(p, third, sigma0);
            if third == Third::Held {
                hold_third_parameter(&mut jtj, &mut jtr);
            }
            let mut accepted = false;
            while lambda < 1e12 {
                let mut damped = jtj;
                for (k, row) in damped.iter_mut().enumerate() {
                    row[k] += lambda * jtj[k][k].max(1e-300);
                }
                let Some(step) = solve3(&damped, jtr) else {
                    lambda *= 10.0;
                    continue;
                };
                let trial = [p[0] + step[0], p[1] + step[1], p[2] + step[2]];
                if trial[1] > 0.0 && trial.iter().all(|v| v.is_finite()) {
                    let trial_chi2 = chi2_at(trial);
                    if trial_chi2 <= chi2 {
                        // The Bessel approximations are accurate to ~2e-7 with kinks where they
                        // switch form, so χ² is trustworthy to about 1e-8 of itself: ask no more
                        // of a step (a smaller gain is the zig-zag of a kink, not progress).
                        converged = (trial[1] - p[1]).abs() <= 1e-6 * p[1]
                            || chi2 - trial_chi2 <= 1e-8 * chi2.max(1e-300);
                        (p, chi2) = (trial, trial_chi2);
                        lambda = (lambda / 10.0).max(1e-12);
                        accepted = true;
                        break;
                    }
                }
                lambda *= 10.0;
            }
            if !accepted {
                converged = lambda >= 1e12;
                break;
            }
            if converged {
                break;
            }
        }
        let (a, r, c, sigma) = Self::rician_parts(p, third, sigma0);
        Solution {
            amplitude: a,
            rate: r,
            offset: c,
            chi2,
            converged,
            iterations,
            offset_fitted: third == Third::Offset,
            rician_sigma: Some(sigma),
            rician_sigma_fitted: start.rician_sigma_fitted,
            sums: None,
        }
    }

    /// JᵀJ and Jᵀr of the Rician model at `p` (see [`Self::rician_parts`]); `∂E/∂C = ∂E/∂ν`.
    fn rician_normal_equations(
        &self,
        p: [f64; 3],
        third: Third,
        sigma0: f64,
    ) -> ([[f64; 3]; 3], [f64; 3]) {
        let (a, r, c, sigma) = Self::rician_parts(p, third, sigma0);
        let mut jtj = [[0.0; 3]; 3];
        let mut jtr = [0.0; 3];
        for (&t, &y) in self.t.iter().zip(self.y) {
            let e = (-r * t).exp();
            let nu = a * e + c;
            let (m, slope) = rician_mean(nu, sigma);
            let third_derivative = match third {
                Third::Offset => slope,
                Third::Held => 0.0,
            };
            let j = [slope * e, -slope * a * t * e, third_derivative];
            for k in 0..3 {
                jtr[k] += j[k] * (y - m);
                for l in 0..3 {
                    jtj[k][l] += j[k] * j[l];
                }
            }
        }
        (jtj, jtr)
    }

    /// The Rician model's parameters as `(p, third)` for a solution.
    fn rician_third(s: &Solution) -> (Third, [f64; 3]) {
        if s.offset_fitted {
            (Third::Offset, [s.amplitude, s.rate, s.offset])
        } else {
            (Third::Held, [s.amplitude, s.rate, 0.0])
        }
    }

    /// JᵀJ of the model at the solution: in (A, R, C) for the Gaussian model, in (A, R, σ or C)
    /// for the Rician one; a parameter that is not fitted is held (unit row, no coupling).
    fn normal_matrix(&self, s: &Solution) -> [[f64; 3]; 3] {
        if let Some(sigma) = s.rician_sigma {
            let (third, p) = Self::rician_third(s);
            let (mut jtj, mut jtr) = self.rician_normal_equations(p, third, sigma);
            if third == Third::Held {
                hold_third_parameter(&mut jtj, &mut jtr);
            }
            return jtj;
        }
        let sums = s.sums.unwrap_or_else(|| self.sums(s.rate));
        let a = s.amplitude;
        let mut jtj = [
            [sums.ee, -a * sums.tee, sums.e],
            [-a * sums.tee, a * a * sums.ttee, -a * sums.te],
            [sums.e, -a * sums.te, self.n],
        ];
        if !s.offset_fitted {
            let mut unused = [0.0; 3];
            hold_third_parameter(&mut jtj, &mut unused);
        }
        jtj
    }

    /// Data minus model at each echo, and their sum of squares, in one pass. On uniformly spaced
    /// echoes the Gaussian model takes its exponentials from a running product as [`Self::sums`]
    /// does (an `exp` per echo was a fifth of a 1,000-echo fit).
    fn residuals(&self, s: &Solution) -> (Vec<f64>, f64) {
        let mut chi2 = 0.0;
        let mut residual = |y: f64, model: f64| {
            let r = y - model;
            chi2 += r * r;
            r
        };
        let residuals = match (s.rician_sigma, self.uniform) {
            (None, Some((t0, dt))) => {
                let q = (-s.rate * dt).exp();
                let mut e = (-s.rate * t0).exp();
                self.y
                    .iter()
                    .map(|&y| {
                        let model = s.amplitude * e + s.offset;
                        e *= q;
                        residual(y, model)
                    })
                    .collect()
            }
            _ => self
                .t
                .iter()
                .zip(self.y)
                .map(|(&t, &y)| {
                    let v = s.amplitude * (-s.rate * t).exp() + s.offset;
                    residual(y, s.rician_sigma.map_or(v, |sigma| rician_mean(v, sigma).0))
                })
                .collect(),
        };
        (residuals, chi2)
    }
}

/// Makes the third parameter a constant of the normal equations: its step is zero and it does not
/// enter the covariance of the other two.
fn hold_third_parameter(jtj: &mut [[f64; 3]; 3], jtr: &mut [f64; 3]) {
    jtj[2] = [0.0, 0.0, 1.0];
    for row in jtj.iter_mut().take(2) {
        row[2] = 0.0;
    }
    jtr[2] = 0.0;
}

/// Checks the solution for identifiability, runs the lack-of-fit tests and builds the report.
fn report(
    input: &FitInput,
    problem: &Problem<'_>,
    solution: Solution,
    options: &FitOptions,
    offset_model: OffsetChoice,
) -> Result<MonoFit, FitError> {
    let n = input.times_s.len();
    let window_ms = window_s(input.times_s) * 1e3;
    let Solution {
        amplitude,
        rate,
        offset,
        ..
    } = solution;
    if !(amplitude.is_finite() && rate.is_finite() && offset.is_finite()) || rate <= 0.0 {
        return Err(FitError::T2BeyondWindow {
            t2_ms: if rate > 0.0 {
                1e3 / rate
            } else {
                f64::INFINITY
            },
            window_ms,
            relative_se: f64::INFINITY,
        });
    }
    let (residuals, chi2) = problem.residuals(&solution);
    let parameters =
        2 + usize::from(solution.offset_fitted) + usize::from(solution.rician_sigma_fitted);
    let dof = n.saturating_sub(parameters).max(1) as f64;
    let residual_variance = chi2 / dof;
    let normal = problem.normal_matrix(&solution);
    let Some(inverse) = invert3(&normal) else {
        // A decay too slow to see makes amplitude and offset interchangeable: say which it is.
        let t2_ms = 1e3 / rate;
        return Err(if t2_ms > window_ms {
            FitError::T2BeyondWindow {
                t2_ms,
                window_ms,
                relative_se: f64::INFINITY,
            }
        } else {
            FitError::NotIdentifiable {
                what: "T2",
                detail: "amplitude, T2 and offset cannot be told apart (singular normal matrix)"
                    .into(),
            }
        });
    };
    // The noise: σ fitted by the Rician model, or the independent estimate with the correlation
    // the residuals show.
    let mut noise = input.noise.clone().with_correlation(&residuals);
    if let (Some(sigma), true) = (solution.rician_sigma, solution.rician_sigma_fitted) {
        noise.sd = sigma;
        noise.method = NoiseMethod::RicianFit;
    }
    // Per-echo variances of the Rician model (its spread shrinks on the floor), at the model-free
    // σ̂ so that the χ² test stays independent of the fit.
    let rician_variances: Option<Vec<f64>> = solution.rician_sigma.map(|_| {
        let sigma = input.noise_sd;
        input
            .times_s
            .iter()
            .map(|t| {
                let nu = amplitude * (-rate * t).exp() + offset;
                let (m, _) = rician_mean(nu, sigma);
                (nu * nu + 2.0 * sigma * sigma - m * m).max(1e-3 * sigma * sigma)
            })
            .collect()
    });
    let (misfit, lack_of_fit) = assess(
        &residuals,
        rician_variances.as_deref(),
        Some(chi2),
        &noise,
        parameters,
    );
    let inflation = lack_of_fit.se_inflation;
    let se = |k: usize| inflation * (residual_variance * inverse[k][k]).max(0.0).sqrt();
    let (amplitude_se, rate_se) = (se(0), se(1));
    let offset_se = if solution.offset_fitted { se(2) } else { 0.0 };
    let noise_sd = noise.sd;
    let t2_ms = 1e3 / rate;
    let t2_ms_se = 1e3 * rate_se / (rate * rate);
    let relative_se = rate_se / rate;

    let noise_level = residual_variance.sqrt().max(input.noise_sd);
    // No decaying amplitude stands out from the noise (or it has the wrong sign). Say why: a level
    // that is there but does not decay, a signal gone after the first echo, or no signal at all.
    if !(amplitude > 3.0 * amplitude_se / inflation) {
        let head = n.min(4);
        let early = input.signal[..head].iter().sum::<f64>() / head as f64;
        let floor = if input.magnitude {
            noise_level * (std::f64::consts::PI / 2.0).sqrt()
        } else {
            0.0
        };
        return Err(if early - floor > 5.0 * noise_level {
            FitError::T2BeyondWindow {
                t2_ms,
                window_ms,
                relative_se,
            }
        } else if input.dropped_echo.is_some_and(|y| y > 10.0 * noise_level) {
            FitError::T2BelowEchoSpacing {
                te_ms: input.echo_spacing_s * 1e3,
                echoes_with_signal: 1,
            }
        } else {
            FitError::NoSignal {
                amplitude,
                amplitude_se,
                noise_sd: input.noise_sd,
            }
        });
    }
    // Echoes whose expected decaying signal stands clear of the noise.
    let echoes_with_signal = input
        .times_s
        .partition_point(|&t| amplitude * (-rate * t).exp() > 3.0 * noise_level);
    if echoes_with_signal < 3 && t2_ms < 3.0 * input.echo_spacing_s * 1e3 {
        return Err(FitError::T2BelowEchoSpacing {
            te_ms: input.echo_spacing_s * 1e3,
            echoes_with_signal,
        });
    }
    let white_relative_se = relative_se / inflation;
    if t2_ms > window_ms && (white_relative_se > 0.5 || t2_ms > 20.0 * window_ms) {
        return Err(FitError::T2BeyondWindow {
            t2_ms,
            window_ms,
            relative_se,
        });
    }
    if !(white_relative_se <= 1.0) {
        return Err(FitError::NotIdentifiable {
            what: "T2",
            detail: format!("its relative standard error is {relative_se:.2}"),
        });
    }
    let snr = if noise_sd > 0.0 {
        amplitude / noise_sd
    } else {
        f64::INFINITY
    };
    Ok(MonoFit {
        t2_ms,
        t2_ms_se,
        r2_per_s: rate,
        r2_per_s_se: rate_se,
        amplitude,
        amplitude_se,
        offset,
        offset_se,
        chi2_red: lack_of_fit.chi2_red,
        snr,
        noise_sd,
        echoes_used: n,
        converged: solution.converged,
        iterations: solution.iterations,
        phase_rad: input.phase_rad,
        rician_corrected: solution.rician_sigma.is_some(),
        signal_kind: input.kind,
        offset_model,
        noise: Some(noise),
        misfit,
        lack_of_fit: Some(lack_of_fit),
        residuals: options.residuals.then_some(residuals),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{Component, CpmgSimulation};

    fn sim(t2_s: f64, te_s: f64, echoes: usize, noise_sd: f64) -> CpmgSimulation {
        let mut s = CpmgSimulation::mono(1.0, t2_s, te_s, echoes);
        s.noise_sd = noise_sd;
        s
    }

    #[test]
    fn noiseless_train_is_fitted_exactly() {
        let mut s = sim(0.08, 0.0005, 1000, 0.0);
        s.offset = 0.02;
        s.phase_rad = 1.1;
        let fit = fit_mono(&s.simulate(1), &FitOptions::default()).unwrap();
        assert!((fit.t2_ms - 80.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.amplitude - 1.0).abs() < 1e-8);
        assert!((fit.offset - 0.02).abs() < 1e-8);
        assert!(fit.converged);
        assert_eq!(fit.echoes_used, 999);
    }

    #[test]
    fn irregular_times_take_the_general_path() {
        let times: Vec<f64> = (1..=300).map(|k| 0.001 * (k as f64).powf(1.2)).collect();
        let re: Vec<f64> = times
            .iter()
            .map(|t| 2.0 * (-t / 0.05).exp() + 0.1)
            .collect();
        let train = EchoTrain::complex(times, re, vec![0.0; 300]).unwrap();
        let fit = fit_mono(&train, &FitOptions::default()).unwrap();
        assert!((fit.t2_ms - 50.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.offset - 0.1).abs() < 1e-8);
    }

    #[test]
    fn errors_name_what_the_data_cannot_give() {
        let opts = FitOptions::default();
        // Too few echoes.
        let e = fit_mono(&sim(0.08, 0.001, 4, 0.01).simulate(1), &opts).unwrap_err();
        assert_eq!(e, FitError::TooFewEchoes { used: 3, needed: 5 });
        // Pure noise.
        let mut noise = sim(0.08, 0.001, 500, 0.05);
        noise.components[0].amplitude = 0.0;
        for seed in 0..20 {
            let e = fit_mono(&noise.simulate(seed), &opts).unwrap_err();
            assert!(
                matches!(
                    e,
                    FitError::NoSignal { .. }
                        | FitError::T2BeyondWindow { .. }
                        | FitError::T2BelowEchoSpacing { .. }
                        | FitError::NotIdentifiable { .. }
                ),
                "{e:?}"
            );
        }
        // T2 one and two hundred times the window, over several noise draws.
        for (t2_s, seed) in [(50.0, 2), (100.0, 3), (100.0, 4), (100.0, 5), (100.0, 6)] {
            let e = fit_mono(&sim(t2_s, 0.001, 500, 0.01).simulate(seed), &opts).unwrap_err();
            assert!(
                matches!(e, FitError::T2BeyondWindow { .. }),
                "{t2_s} s, seed {seed}: {e:?}"
            );
        }
        // T2 half an echo spacing: the first echo (dropped) holds 13 σ of signal, the next 1.8 σ.
        let e = fit_mono(&sim(0.0005, 0.001, 500, 0.01).simulate(3), &opts).unwrap_err();
        assert!(matches!(e, FitError::T2BelowEchoSpacing { .. }), "{e:?}");
    }

    #[test]
    fn residuals_on_request_sum_to_chi2() {
        let opts = FitOptions {
            residuals: true,
            ..FitOptions::default()
        };
        let fit = fit_mono(&sim(0.08, 0.0005, 1000, 0.01).simulate(4), &opts).unwrap();
        let r = fit.residuals.as_ref().unwrap();
        assert_eq!(r.len(), fit.echoes_used);
        let var = r.iter().map(|v| v * v).sum::<f64>() / (r.len() - 3) as f64;
        assert!((var / (fit.noise_sd * fit.noise_sd) - fit.chi2_red).abs() < 1e-9);
        assert!((fit.chi2_red - 1.0).abs() < 0.15, "{}", fit.chi2_red);
    }

    #[test]
    fn magnitude_data_are_fitted_through_the_noise_floor() {
        // SNR 20, decay far into the floor: a Gaussian fit would be biased; the Rician one is not.
        let mut bias = 0.0;
        let trials = 60;
        for seed in 0..trials {
            let mut s = sim(0.08, 0.0005, 1000, 0.05);
            s.magnitude = true;
            let fit = fit_mono(&s.simulate(seed), &FitOptions::default()).unwrap();
            assert!(fit.rician_corrected);
            bias += fit.t2_ms / 80.0 - 1.0;
        }
        bias /= trials as f64;
        assert!(bias.abs() < 0.01, "mean relative bias {bias}");
    }

    #[test]
    fn magnitude_data_that_never_reach_the_floor_keep_the_independent_noise_estimate() {
        // T2 200 ms watched for 500 ms at SNR 2000: the floor is never reached, so σ cannot be
        // fitted; the reported SNR must still be the true one.
        let mut s = sim(0.2, 0.0005, 1000, 1.0 / 2000.0);
        s.magnitude = true;
        for seed in 0..5 {
            let fit = fit_mono(&s.simulate(seed), &FitOptions::default()).unwrap();
            assert!(
                (fit.snr / 2000.0 - 1.0).abs() < 0.1,
                "seed {seed}: SNR {}",
                fit.snr
            );
            // χ² is taken against the model-free σ̂ (MAD of ~1,000 second differences: its log has
            // SD ≈ 0.045), so χ²ᵣ spreads by ≈ 0.1 around one; allow three SDs.
            assert!(
                (fit.chi2_red - 1.0).abs() < 0.3,
                "seed {seed}: χ²red {}",
                fit.chi2_red
            );
            assert!(!fit.misfit, "seed {seed}: {:?}", fit.lack_of_fit);
            assert!(
                (fit.t2_ms - 200.0).abs() < 4.0 * fit.t2_ms_se,
                "seed {seed}: {fit:?}"
            );
        }
    }

    #[test]
    fn bi_exponential_data_still_give_a_flagged_but_honest_mono_fit() {
        let s = CpmgSimulation {
            components: vec![
                Component {
                    amplitude: 0.5,
                    t2_s: 0.01,
                },
                Component {
                    amplitude: 0.5,
                    t2_s: 0.2,
                },
            ],
            noise_sd: 0.002,
            ..sim(0.1, 0.0005, 2000, 0.0)
        };
        let fit = fit_mono(&s.simulate(5), &FitOptions::default()).unwrap();
        // The misfit shows in χ²_red, far above one.
        assert!(fit.chi2_red > 5.0, "{}", fit.chi2_red);
    }
}
