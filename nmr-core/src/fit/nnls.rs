//! Non-negative least squares (Lawson–Hanson active set), in Gram form.
//!
//! Solves `min ‖A x − b‖²` subject to `x ≥ 0` given only the Gram matrix `H = AᵀA` and the
//! projected data `g = Aᵀb`. The T2 spectrum never forms `A` explicitly: its compressed,
//! Tikhonov-augmented system `[S Vᵀ; √α I]` is known only through `H = V S² Vᵀ + α I`, and working
//! on `H` keeps every iteration at the size of the passive set. For a full-column-rank `A` this is
//! exactly Lawson and Hanson's algorithm NNLS, with the passive-set least-squares subproblem solved by
//! a Cholesky factorisation of `H_PP` (the "fast NNLS" arrangement of Bro and de Jong).
//!
//! This module is a private numeric building block: it knows nothing of echoes or T2.
//!
//! ## Reference
//! C. L. Lawson and R. J. Hanson, *Solving Least Squares Problems*, Prentice-Hall, 1974, ch. 23.
//! R. Bro and S. de Jong, "A fast non-negativity-constrained least squares algorithm",
//! J. Chemometrics 11 (1997) 393–401.

use nalgebra::{DMatrix, DVector};

/// The result of [`nnls_gram`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NnlsSolution {
    /// The minimiser, every entry ≥ 0.
    pub x: DVector<f64>,
    /// Indices with `x > 0` (the passive set), ascending.
    pub passive: Vec<usize>,
    /// `true` when the KKT conditions were met before the iteration cap.
    pub converged: bool,
}

/// Why [`nnls_gram`] could not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NnlsError {
    /// `H` is not square or `g` does not match it.
    Shape,
    /// `H` or `g` holds a NaN or an infinity.
    NotFinite,
    /// A passive-set block of `H` was not positive definite (`A` lacks full column rank there).
    Singular,
}

/// Minimises `½ xᵀ H x − gᵀ x` over `x ≥ 0`, i.e. `‖A x − b‖²` with `H = AᵀA`, `g = Aᵀb`.
///
/// `H` must be symmetric positive definite on every subset of columns the algorithm visits (true
/// when `A` has full column rank, and always true for a Tikhonov-augmented system with α > 0).
/// `initial_passive` is a guess of the passive set (e.g. the solution of a neighbouring problem;
/// `&[]` for a cold start). The guess is pruned until its least-squares solution is strictly positive, which is a
/// valid Lawson–Hanson state, so the answer is the same as from a cold start; only the number of
/// iterations changes.
pub(crate) fn nnls_gram(
    h: &DMatrix<f64>,
    g: &DVector<f64>,
    initial_passive: &[usize],
) -> Result<NnlsSolution, NnlsError> {
    let n = g.len();
    if h.nrows() != n || h.ncols() != n {
        return Err(NnlsError::Shape);
    }
    if h.iter().chain(g.iter()).any(|v| !v.is_finite()) {
        return Err(NnlsError::NotFinite);
    }
    let mut x = DVector::<f64>::zeros(n);
    let mut passive = vec![false; n];
    if n == 0 {
        return Ok(NnlsSolution {
            x,
            passive: Vec::new(),
            converged: true,
        });
    }
    // Dual-feasibility tolerance, on the scale of the gradient g − Hx.
    let scale = g.amax().max(h.amax()) * (n as f64);
    let tol = 1e-12 * scale.max(f64::MIN_POSITIVE);
    let max_outer = 3 * n + 10;
    let mut converged = false;
    // Variables that just failed to enter (their subproblem value came out ≤ 0 by rounding):
    // excluded until the next successful step, which breaks the classic Lawson–Hanson cycle.
    let mut blocked = vec![false; n];

    let mut set: Vec<usize> = initial_passive.iter().copied().filter(|&j| j < n).collect();
    set.sort_unstable();
    set.dedup();
    while !set.is_empty() {
        let Ok(s_p) = solve_passive(h, g, &set) else {
            break; // a singular guess: start cold
        };
        if s_p.iter().all(|&v| v > 0.0) {
            for (k, &j) in set.iter().enumerate() {
                x[j] = s_p[k];
                passive[j] = true;
            }
            break;
        }
        set = set
            .iter()
            .zip(s_p.iter())
            .filter(|(_, v)| **v > 0.0)
            .map(|(j, _)| *j)
            .collect();
    }

    for _ in 0..max_outer {
        let w = g - h * &x;
        let candidate = (0..n)
            .filter(|&j| !passive[j] && !blocked[j] && w[j] > tol)
            .max_by(|&a, &b| w[a].total_cmp(&w[b]));
        let Some(j_new) = candidate else {
            converged = true;
            break;
        };
        passive[j_new] = true;

        // Inner loop: keep the iterate feasible while the subproblem solution leaves the orthant.
        let mut first_inner = true;
        loop {
            let set: Vec<usize> = (0..n).filter(|&j| passive[j]).collect();
            let s_p = solve_passive(h, g, &set)?;
            if s_p.iter().all(|&v| v > 0.0) {
                for (k, &j) in set.iter().enumerate() {
                    x[j] = s_p[k];
                }
                blocked.iter_mut().for_each(|b| *b = false);
                break;
            }
            if first_inner {
                let k_new = set
                    .iter()
                    .position(|&j| j == j_new)
                    .expect("j_new was just made passive");
                if s_p[k_new] <= 0.0 {
                    // Rounding: the entering variable cannot increase. Undo and block it.
                    passive[j_new] = false;
                    blocked[j_new] = true;
                    break;
                }
            }
            first_inner = false;
            // Step from x towards s as far as feasibility allows; the variable that limits the step
            // (and any other that lands on zero) leaves the passive set.
            let mut step = 1.0_f64;
            let mut limiting = None;
            for (k, &j) in set.iter().enumerate() {
                if s_p[k] <= 0.0 {
                    let denom = x[j] - s_p[k];
                    if denom > 0.0 && x[j] / denom < step {
                        step = x[j] / denom;
                        limiting = Some(j);
                    }
                }
            }
            for (k, &j) in set.iter().enumerate() {
                x[j] += step * (s_p[k] - x[j]);
            }
            let floor = 1e-14 * x.amax();
            for &j in &set {
                if Some(j) == limiting || x[j] <= floor {
                    x[j] = 0.0;
                    passive[j] = false;
                }
            }
            if !passive.iter().any(|&p| p) {
                break;
            }
        }
    }
    for v in x.iter_mut() {
        if *v < 0.0 {
            *v = 0.0;
        }
    }
    let passive_list = (0..n).filter(|&j| x[j] > 0.0).collect();
    Ok(NnlsSolution {
        x,
        passive: passive_list,
        converged,
    })
}

/// Solves `H_PP s = g_P` for the passive set `set` by Cholesky.
fn solve_passive(
    h: &DMatrix<f64>,
    g: &DVector<f64>,
    set: &[usize],
) -> Result<DVector<f64>, NnlsError> {
    let p = set.len();
    let h_pp = DMatrix::from_fn(p, p, |r, c| h[(set[r], set[c])]);
    let g_p = DVector::from_fn(p, |r, _| g[set[r]]);
    let chol = h_pp.cholesky().ok_or(NnlsError::Singular)?;
    let s = chol.solve(&g_p);
    if s.iter().all(|v| v.is_finite()) {
        Ok(s)
    } else {
        Err(NnlsError::Singular)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_problem(rng: &mut ChaCha8Rng, m: usize, n: usize) -> (DMatrix<f64>, DVector<f64>) {
        let a = DMatrix::from_fn(m, n, |_, _| rng.random_range(-1.0..1.0));
        let b = DVector::from_fn(m, |_, _| rng.random_range(-1.0..1.0));
        (a, b)
    }

    fn objective(a: &DMatrix<f64>, b: &DVector<f64>, x: &DVector<f64>) -> f64 {
        (a * x - b).norm_squared()
    }

    /// Independent check: enumerate every support set, solve the unconstrained least squares on
    /// it by SVD, keep the non-negative solutions, return the best objective.
    fn brute_force(a: &DMatrix<f64>, b: &DVector<f64>) -> f64 {
        let n = a.ncols();
        let mut best = b.norm_squared(); // x = 0
        for mask in 1u32..(1 << n) {
            let cols: Vec<usize> = (0..n).filter(|j| mask & (1 << j) != 0).collect();
            let sub = DMatrix::from_fn(a.nrows(), cols.len(), |r, c| a[(r, cols[c])]);
            let svd = sub.clone().svd(true, true);
            let Ok(xs) = svd.solve(b, 1e-12) else {
                continue;
            };
            if xs.iter().all(|&v| v >= 0.0) {
                let mut x = DVector::zeros(n);
                for (k, &j) in cols.iter().enumerate() {
                    x[j] = xs[k];
                }
                best = best.min(objective(a, b, &x));
            }
        }
        best
    }

    #[test]
    fn matches_brute_force_on_small_random_problems() {
        let mut rng = ChaCha8Rng::seed_from_u64(20261124);
        for trial in 0..300 {
            let n = 1 + trial % 7;
            let m = n + rng.random_range(0..6);
            let (a, b) = random_problem(&mut rng, m, n);
            let sol = nnls_gram(&a.tr_mul(&a), &a.tr_mul(&b), &[])
                .expect("full column rank with probability one");
            assert!(sol.converged, "trial {trial} did not converge");
            let got = objective(&a, &b, &sol.x);
            let want = brute_force(&a, &b);
            assert!(
                (got - want).abs() <= 1e-9 * (1.0 + want),
                "trial {trial}: nnls objective {got} vs brute force {want}"
            );
        }
    }

    #[test]
    fn satisfies_kkt_conditions() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for trial in 0..100 {
            let n = 5 + trial % 40;
            let m = n + 10;
            let (a, b) = random_problem(&mut rng, m, n);
            let sol = nnls_gram(&a.tr_mul(&a), &a.tr_mul(&b), &[]).expect("full column rank");
            let w = a.tr_mul(&(&b - &a * &sol.x)); // negative gradient
            let scale = a.tr_mul(&b).amax().max(1.0);
            for j in 0..n {
                assert!(sol.x[j] >= 0.0, "primal feasibility");
                assert!(w[j] <= 1e-9 * scale, "dual feasibility: w[{j}] = {}", w[j]);
                if sol.x[j] > 0.0 {
                    assert!(
                        w[j].abs() <= 1e-9 * scale,
                        "complementarity: x={} w={}",
                        sol.x[j],
                        w[j]
                    );
                }
            }
            assert_eq!(
                sol.passive,
                (0..n).filter(|&j| sol.x[j] > 0.0).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn recovers_a_non_negative_exact_solution() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (a, _) = random_problem(&mut rng, 30, 10);
        let truth = DVector::from_fn(10, |j, _| if j % 3 == 0 { 0.0 } else { j as f64 });
        let b = &a * &truth;
        let sol = nnls_gram(&a.tr_mul(&a), &a.tr_mul(&b), &[]).expect("full column rank");
        assert!((sol.x - truth).amax() < 1e-9);
    }

    #[test]
    fn warm_starts_reach_the_cold_start_solution() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for trial in 0..100 {
            let n = 3 + trial % 30;
            let (a, b) = random_problem(&mut rng, n + 5, n);
            let (h, g) = (a.tr_mul(&a), a.tr_mul(&b));
            let cold = nnls_gram(&h, &g, &[]).expect("full column rank");
            let guess: Vec<usize> = (0..n).filter(|_| rng.random_bool(0.5)).collect();
            let warm = nnls_gram(&h, &g, &guess).expect("full column rank");
            let (oc, ow) = (objective(&a, &b, &cold.x), objective(&a, &b, &warm.x));
            assert!(
                (oc - ow).abs() <= 1e-9 * (1.0 + oc),
                "trial {trial}: cold {oc} warm {ow}"
            );
            assert!(warm.converged);
        }
    }

    #[test]
    fn all_negative_correlation_gives_zero() {
        let h = DMatrix::identity(3, 3);
        let g = DVector::from_vec(vec![-1.0, -2.0, -0.5]);
        let sol = nnls_gram(&h, &g, &[]).expect("identity is positive definite");
        assert_eq!(sol.x, DVector::zeros(3));
        assert!(sol.passive.is_empty());
    }

    #[test]
    fn rejects_bad_input() {
        let h = DMatrix::identity(2, 2);
        assert_eq!(
            nnls_gram(&h, &DVector::zeros(3), &[]),
            Err(NnlsError::Shape)
        );
        let g = DVector::from_vec(vec![f64::NAN, 1.0]);
        assert_eq!(nnls_gram(&h, &g, &[]), Err(NnlsError::NotFinite));
        let singular = DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 1.0, 1.0]);
        let g = DVector::from_vec(vec![1.0, 1.0]);
        // Both columns identical: the second entering variable makes H_PP singular or is blocked.
        match nnls_gram(&singular, &g, &[]) {
            Ok(sol) => assert!(((&singular * &sol.x)[0] - 1.0).abs() < 1e-9),
            Err(e) => assert_eq!(e, NnlsError::Singular),
        }
    }
}
