//! Sums of exponentials plus a constant, fitted by variable projection.
//!
//! Model: `y(t) = Σ_k a_k·exp(−r_k t) + c` with `K` = 1 or 2 rates, the offset `c` fitted or fixed
//! at zero. For fixed rates the amplitudes and the offset are linear and solved exactly by least squares (QR); only the rates are iterated,
//! by Levenberg–Marquardt on `θ_k = ln r_k` (which keeps every rate positive) with Kaufman's
//! approximation of the variable-projection Jacobian. Seeds come from an exhaustive coarse grid of
//! rate tuples, whose linear subproblems cost O(1) each once the grid's Gram products are known.
//!
//! Private building block for the bi-exponential fit and its mono-exponential comparison model, so
//! both models are fitted by the same code on the same points. It works on plain slices and knows
//! nothing of echo trains, phasing or which echoes were dropped.
//!
//! ## Reference
//! G. H. Golub and V. Pereyra, "The differentiation of pseudo-inverses and nonlinear least squares
//! problems whose variables separate", SIAM J. Numer. Anal. 10 (1973) 413–432; and "Separable
//! nonlinear least squares: the variable projection method and its applications", Inverse Problems
//! 19 (2003) R1–R26. L. Kaufman, "A variable projection method for solving separable nonlinear least
//! squares problems", BIT 15 (1975) 49–57.

use nalgebra::{DMatrix, DVector};

use super::echo_times::EchoTimes;

/// Bounds and grid for the rate search, in 1/s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RateBounds {
    /// Smallest rate allowed (longest T2).
    pub min_per_s: f64,
    /// Largest rate allowed (shortest T2).
    pub max_per_s: f64,
}

impl RateBounds {
    /// Bounds for a train: T2 from a quarter of the echo spacing to 20 × the last echo time. A
    /// rate that ends on a bound marks the fit as not converged.
    pub fn for_train(echo_spacing_s: f64, t_last_s: f64) -> Self {
        Self {
            min_per_s: 1.0 / (20.0 * t_last_s),
            max_per_s: 4.0 / echo_spacing_s,
        }
    }
}

/// A converged (or abandoned) exponential-sum fit.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExpSumFit {
    /// Rates in 1/s, sorted fastest first.
    pub rates_per_s: Vec<f64>,
    /// Amplitudes matching `rates_per_s`.
    pub amplitudes: Vec<f64>,
    /// The constant term.
    pub offset: f64,
    /// Residual sum of squares.
    pub rss: f64,
    /// `true` when the iteration met its tolerance (not the cap, not a bound-stuck stall).
    pub converged: bool,
    /// Levenberg–Marquardt iterations taken from the best seed.
    pub iterations: u32,
    /// `true` when some rate ended on its bound.
    pub at_bound: bool,
    /// Whether the offset was fitted (else it is zero).
    pub with_offset: bool,
    /// For magnitudes fitted against the Rician mean ([`super::rician_exp_sum`]): the noise σ of
    /// that model. `None` for the Gaussian model.
    pub rician_sigma: Option<f64>,
}

impl ExpSumFit {
    /// Number of free parameters: one amplitude and one rate per component, plus the offset.
    pub fn parameter_count(&self) -> usize {
        2 * self.rates_per_s.len() + usize::from(self.with_offset)
    }

    /// The noise-free signal `Σ a_k·exp(−r_k t) + c` at time `t_s`.
    pub fn signal(&self, t_s: f64) -> f64 {
        self.rates_per_s
            .iter()
            .zip(&self.amplitudes)
            .map(|(r, a)| a * (-r * t_s).exp())
            .sum::<f64>()
            + self.offset
    }

    /// The model at time `t_s`: the signal, or its Rician mean for a magnitude fit.
    pub fn model(&self, t_s: f64) -> f64 {
        let signal = self.signal(t_s);
        match self.rician_sigma {
            Some(sigma) => super::rician::rician_mean(signal, sigma).0,
            None => signal,
        }
    }

    /// Covariance of `(a_1, T2_1, …, a_K, T2_K[, c])` (T2 in s) as σ²(JᵀJ)⁻¹ with σ² = RSS/(m − p);
    /// `None` when JᵀJ is singular or there are no residual degrees of freedom. For a Rician fit
    /// each row of J carries the mean's slope ∂E/∂ν.
    pub fn covariance(&self, times_s: &[f64]) -> Option<DMatrix<f64>> {
        let m = times_s.len();
        let p = self.parameter_count();
        if m <= p {
            return None;
        }
        let slopes: Option<Vec<f64>> = self.rician_sigma.map(|sigma| {
            times_s
                .iter()
                .map(|&t| super::rician::rician_mean(self.signal(t), sigma).1)
                .collect()
        });
        let j = DMatrix::from_fn(m, p, |i, col| {
            let t = times_s[i];
            let slope = slopes.as_ref().map_or(1.0, |s| s[i]);
            if self.with_offset && col == p - 1 {
                return slope;
            }
            let k = col / 2;
            let r = self.rates_per_s[k];
            let e = (-r * t).exp();
            slope
                * if col % 2 == 0 {
                    e
                } else {
                    // ∂/∂T2 of a·exp(−t/T2) = a·t/T2²·exp(−t/T2) = a·t·r²·exp(−r t)
                    self.amplitudes[k] * t * r * r * e
                }
        });
        let jtj = j.tr_mul(&j);
        let inverse = jtj.cholesky()?.inverse();
        let sigma2 = self.rss / (m - p) as f64;
        let cov = inverse * sigma2;
        if cov.iter().all(|v| v.is_finite()) && (0..p).all(|d| cov[(d, d)] >= 0.0) {
            Some(cov)
        } else {
            None
        }
    }
}

/// The exact linear part for fixed rates: basis `Φ = [e^{−r_1 t}, …, 1]`, its least-squares
/// coefficients, their RSS, and the thin Q of Φ (for the variable-projection Jacobian).
struct LinearSolution {
    phi: DMatrix<f64>,
    amplitudes: Vec<f64>,
    offset: f64,
    rss: f64,
    q: DMatrix<f64>,
}

/// Solves the linear amplitudes and offset for fixed rates by QR; `None` when two columns of Φ
/// have merged (rank loss) or the solution is not finite.
fn linear_solve(
    times: &EchoTimes<'_>,
    y: &DVector<f64>,
    rates: &[f64],
    with_offset: bool,
) -> Option<LinearSolution> {
    let m = y.len();
    let k = rates.len();
    let mut phi = DMatrix::from_element(m, k + usize::from(with_offset), 1.0);
    for (c, &r) in rates.iter().enumerate() {
        times.decay_into(r, phi.column_mut(c).as_mut_slice());
    }
    let qr = phi.clone().qr();
    let r = qr.r();
    let r_max = r.diagonal().amax();
    if !(r_max > 0.0) || r.diagonal().iter().any(|d| d.abs() <= 1e-13 * r_max) {
        return None;
    }
    let q = qr.q();
    let qty = q.tr_mul(y);
    let coef = r.solve_upper_triangular(&qty)?;
    if !coef.iter().all(|v| v.is_finite()) {
        return None;
    }
    // Direct residual: no cancellation for near-perfect fits.
    let rss = (y - &phi * &coef).norm_squared();
    Some(LinearSolution {
        amplitudes: coef.rows(0, k).iter().copied().collect(),
        offset: if with_offset { coef[k] } else { 0.0 },
        rss,
        q,
        phi,
    })
}

/// Fits `components` (1 or 2) exponentials plus an offset.
///
/// Returns `None` only when no rate tuple gives a well-posed linear subproblem (e.g. fewer points
/// than parameters).
pub(crate) fn fit_exp_sum(
    times_s: &[f64],
    y: &[f64],
    components: usize,
    bounds: RateBounds,
    with_offset: bool,
) -> Option<ExpSumFit> {
    let m = times_s.len();
    if components == 0 || m < 2 * components + 2 || times_s.len() != y.len() {
        return None;
    }
    if !(bounds.min_per_s > 0.0
        && bounds.max_per_s > bounds.min_per_s
        && bounds.max_per_s.is_finite())
    {
        return None;
    }
    let yv = DVector::from_column_slice(y);
    let times = EchoTimes::new(times_s);
    let seeds = grid_seeds(&times, &yv, components, bounds, 3, with_offset);
    let mut best: Option<ExpSumFit> = None;
    for seed in seeds {
        if let Some(fit) = levenberg_marquardt(&times, &yv, &seed, bounds, with_offset)
            && best.as_ref().is_none_or(|b| fit.rss < b.rss)
        {
            best = Some(fit);
        }
    }
    best
}

/// Best rate tuples on a log grid, ranked by RSS, preferring tuples with positive amplitudes.
fn grid_seeds(
    times: &EchoTimes<'_>,
    y: &DVector<f64>,
    components: usize,
    bounds: RateBounds,
    keep: usize,
    with_offset: bool,
) -> Vec<Vec<f64>> {
    const GRID: usize = 40;
    let (lo, hi) = (bounds.min_per_s.ln(), bounds.max_per_s.ln());
    let rates: Vec<f64> = (0..GRID)
        .map(|i| (lo + (hi - lo) * (i as f64 + 0.5) / GRID as f64).exp())
        .collect();
    let m = y.len();
    // Basis vectors, their Gram products with each other, with 1 and with y.
    let basis: Vec<Vec<f64>> = rates.iter().map(|&r| times.decay(r)).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
    let ones_dot: Vec<f64> = basis.iter().map(|b| b.iter().sum()).collect();
    let y_dot: Vec<f64> = basis.iter().map(|b| dot(b, y.as_slice())).collect();
    let y_sum: f64 = y.iter().sum();
    let yy = y.norm_squared();
    // Single components need only the diagonal.
    let mut gram = vec![vec![0.0; GRID]; GRID];
    for a in 0..GRID {
        let last = if components == 1 { a } else { GRID - 1 };
        for b in a..=last {
            let v = dot(&basis[a], &basis[b]);
            gram[a][b] = v;
            gram[b][a] = v;
        }
    }
    let mut scored: Vec<(bool, f64, Vec<usize>)> = Vec::new();
    let mut consider = |idx: Vec<usize>| {
        let k = idx.len();
        let n = k + usize::from(with_offset);
        let mut normal = DMatrix::<f64>::zeros(n, n);
        let mut rhs = DVector::<f64>::zeros(n);
        for (p, &a) in idx.iter().enumerate() {
            for (q, &b) in idx.iter().enumerate() {
                normal[(p, q)] = gram[a][b];
            }
            if with_offset {
                normal[(p, k)] = ones_dot[a];
                normal[(k, p)] = ones_dot[a];
            }
            rhs[p] = y_dot[a];
        }
        if with_offset {
            normal[(k, k)] = m as f64;
            rhs[k] = y_sum;
        }
        let Some(chol) = normal.cholesky() else {
            return;
        };
        let coef = chol.solve(&rhs);
        let rss = yy - coef.dot(&rhs);
        if rss.is_finite() {
            let positive = coef.rows(0, k).iter().all(|&a| a > 0.0);
            scored.push((positive, rss, idx));
        }
    };
    if components == 1 {
        for a in 0..GRID {
            consider(vec![a]);
        }
    } else {
        for a in 0..GRID {
            for b in (a + 2)..GRID {
                consider(vec![a, b]);
            }
        }
    }
    scored.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.total_cmp(&y.1)));
    scored
        .into_iter()
        .take(keep)
        .map(|(_, _, idx)| idx.iter().map(|&i| rates[i]).collect())
        .collect()
}

/// Levenberg–Marquardt on θ = ln(rates) with the Kaufman variable-projection Jacobian.
fn levenberg_marquardt(
    times: &EchoTimes<'_>,
    y: &DVector<f64>,
    seed: &[f64],
    bounds: RateBounds,
    with_offset: bool,
) -> Option<ExpSumFit> {
    const MAX_ITERATIONS: u32 = 200;
    let k = seed.len();
    let times_s = times.times_s();
    let (theta_lo, theta_hi) = (bounds.min_per_s.ln(), bounds.max_per_s.ln());
    let mut theta: Vec<f64> = seed
        .iter()
        .map(|r| r.ln().clamp(theta_lo, theta_hi))
        .collect();
    let rates_of = |th: &[f64]| th.iter().map(|v| v.exp()).collect::<Vec<f64>>();
    let mut current = linear_solve(times, y, &rates_of(&theta), with_offset)?;
    let mut mu = 1e-3;
    let mut converged = false;
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS {
        iterations += 1;
        let rates = rates_of(&theta);
        // Residual ρ = y − Φc and the Kaufman Jacobian dρ/dθ_k ≈ P⊥(a_k r_k t e^{−r_k t}) (the model's
        // derivative is −a_k r_k t e^{−r_k t}; ρ carries the opposite sign).
        let mut coef = DVector::from_element(k + usize::from(with_offset), current.offset);
        for (c, a) in current.amplitudes.iter().enumerate() {
            coef[c] = *a;
        }
        let residual = y - &current.phi * &coef;
        let mut jac = DMatrix::from_fn(y.len(), k, |i, c| {
            current.amplitudes[c] * rates[c] * times_s[i] * current.phi[(i, c)]
        });
        let projection = &current.q * current.q.tr_mul(&jac);
        jac -= projection;
        let jtj = jac.tr_mul(&jac);
        let jtr = jac.tr_mul(&residual);
        let gradient_floor =
            1e-12 * (current.rss + f64::MIN_POSITIVE).sqrt() * jtj.diagonal().amax().sqrt();
        if jtr.amax() <= gradient_floor {
            converged = true;
            break;
        }
        let mut improved = false;
        while mu <= 1e12 {
            let mut damped = jtj.clone();
            for d in 0..k {
                damped[(d, d)] += mu * jtj[(d, d)].max(1e-30);
            }
            let Some(chol) = damped.cholesky() else {
                mu *= 10.0;
                continue;
            };
            let step = chol.solve(&(-&jtr));
            let trial: Vec<f64> = theta
                .iter()
                .zip(step.iter())
                .map(|(t, s)| (t + s).clamp(theta_lo, theta_hi))
                .collect();
            match linear_solve(times, y, &rates_of(&trial), with_offset) {
                Some(next) if next.rss < current.rss => {
                    let relative_gain =
                        (current.rss - next.rss) / current.rss.max(f64::MIN_POSITIVE);
                    let step_size = theta
                        .iter()
                        .zip(&trial)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max);
                    theta = trial;
                    current = next;
                    mu = (mu / 3.0).max(1e-12);
                    improved = true;
                    if relative_gain < 1e-12 || step_size < 1e-10 {
                        converged = true;
                    }
                    break;
                }
                _ => mu *= 4.0,
            }
        }
        // No downhill step at any damping: a (local) minimum to working precision.
        if converged || !improved {
            converged = true;
            break;
        }
    }
    let at_bound = theta
        .iter()
        .any(|t| (t - theta_lo).abs() < 1e-9 || (t - theta_hi).abs() < 1e-9);
    let mut pairs: Vec<(f64, f64)> = rates_of(&theta)
        .into_iter()
        .zip(current.amplitudes)
        .collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    Some(ExpSumFit {
        rates_per_s: pairs.iter().map(|p| p.0).collect(),
        amplitudes: pairs.iter().map(|p| p.1).collect(),
        offset: current.offset,
        rss: current.rss,
        converged: converged && !at_bound,
        iterations,
        at_bound,
        with_offset,
        rician_sigma: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(te_s: f64, n: usize) -> Vec<f64> {
        (1..=n).map(|i| i as f64 * te_s).collect()
    }

    const BOUNDS: RateBounds = RateBounds {
        min_per_s: 0.1,
        max_per_s: 5000.0,
    };

    #[test]
    fn noiseless_mono_is_exact() {
        let t = times(1e-3, 300);
        let y: Vec<f64> = t.iter().map(|t| 80.0 * (-t / 0.05).exp() + 2.0).collect();
        let fit = fit_exp_sum(&t, &y, 1, BOUNDS, true).expect("well posed");
        assert!(fit.converged);
        assert!((1.0 / fit.rates_per_s[0] - 0.05).abs() < 1e-9);
        assert!((fit.amplitudes[0] - 80.0).abs() < 1e-7);
        assert!((fit.offset - 2.0).abs() < 1e-8);
    }

    #[test]
    fn noiseless_bi_is_exact() {
        let t = times(0.5e-3, 2000);
        let y: Vec<f64> = t
            .iter()
            .map(|t| 40.0 * (-t / 0.02).exp() + 60.0 * (-t / 0.15).exp() - 1.0)
            .collect();
        let fit = fit_exp_sum(&t, &y, 2, BOUNDS, true).expect("well posed");
        assert!(fit.converged, "{fit:?}");
        assert!((1.0 / fit.rates_per_s[0] - 0.02).abs() < 1e-7, "{fit:?}");
        assert!((1.0 / fit.rates_per_s[1] - 0.15).abs() < 1e-7, "{fit:?}");
        assert!((fit.amplitudes[0] - 40.0).abs() < 1e-6);
        assert!((fit.amplitudes[1] - 60.0).abs() < 1e-6);
        assert!((fit.offset + 1.0).abs() < 1e-6);
        let cov = fit.covariance(&t);
        // Exact data: zero residual gives a zero (but defined) covariance.
        assert!(cov.is_some());
    }

    #[test]
    fn too_few_points_is_none() {
        let t = times(1e-3, 5);
        let y = vec![1.0; 5];
        assert!(fit_exp_sum(&t, &y, 2, BOUNDS, true).is_none());
    }
}
