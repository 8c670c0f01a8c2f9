//! Does an echo train prefer two exponentials to one? The model comparison behind the
//! `biexponential_preferred` QC flag.
//!
//! Both models are fitted to the phased real signal by variable projection: for given decay
//! rates the amplitudes and the offset are a linear least-squares problem, so only the rates are
//! searched (a log-spaced grid, then Nelder–Mead on the log rates for the two-component model
//! and golden-section search for the mono one).
//!
//! - mono: A·e^(−R t) + C (3 parameters)
//! - bi: A₁·e^(−R₁ t) + A₂·e^(−R₂ t) + C (5 parameters)
//!
//! The extra-sum-of-squares F test, F = ((RSS₁ − RSS₂)/2)/(RSS₂/(n − 5)), is compared with
//! F(2, n − 5). Because the second rate is unidentified when its amplitude is zero, the test is
//! anti-conservative under a mono-exponential truth; so the default level is strict (10⁻⁴) and the
//! two-component fit is only preferred when both amplitudes are positive, the smaller one holds at
//! least 5 % of the signal and the rates differ by at least a factor 1.5. A clot, settling cells or
//! free particle clusters give exactly such a second, faster (or slower) population.
//!
//! Not a T2 fitter: the reported T2 comes from `crate::fit`.

use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

/// Settings of the comparison. `Default` gives the documented defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BiexponentialOptions {
    /// Significance level of the F test (default 1e-4).
    pub alpha: f64,
    /// Smallest share of the total amplitude the minor component must hold (default 0.05).
    pub min_minor_fraction: f64,
    /// Smallest ratio of the two rates (default 1.5).
    pub min_rate_ratio: f64,
    /// Leave out the first echo, as the T2 fit does (default true).
    pub drop_first_echo: bool,
}

impl Default for BiexponentialOptions {
    fn default() -> Self {
        BiexponentialOptions {
            alpha: 1.0e-4,
            min_minor_fraction: 0.05,
            min_rate_ratio: 1.5,
            drop_first_echo: true,
        }
    }
}

/// One exponential component of the two-component fit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecayComponent {
    /// Amplitude at t = 0.
    pub amplitude: f64,
    /// T2, ms.
    pub t2_ms: f64,
}

/// The outcome of the comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BiexponentialCheck {
    /// Residual sum of squares of the mono-exponential fit.
    pub rss_mono: f64,
    /// Residual sum of squares of the two-component fit.
    pub rss_bi: f64,
    /// The F statistic.
    pub f_statistic: f64,
    /// Its p-value under F(2, n − 5).
    pub p_value: f64,
    /// The two components, faster first.
    pub components: [DecayComponent; 2],
    /// True when the data prefer two components (see the module docs for the criteria).
    pub preferred: bool,
}

/// Rates on the search grid per decade.
const GRID_PER_DECADE: usize = 12;

/// Compares mono- and bi-exponential fits of `signal` at `times_s` (phased real channel). `None`
/// when there are fewer than 12 echoes, the lengths differ, or a value is not finite.
pub fn compare_mono_bi(
    times_s: &[f64],
    signal: &[f64],
    options: &BiexponentialOptions,
) -> Option<BiexponentialCheck> {
    if times_s.len() != signal.len() {
        return None;
    }
    let skip = usize::from(options.drop_first_echo);
    let t = times_s.get(skip..)?;
    let y = signal.get(skip..)?;
    let n = t.len();
    if n < 12 || t.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let t_min = t.iter().copied().fold(f64::INFINITY, f64::min).max(1.0e-9);
    let t_max = t.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if t_max <= t_min {
        return None;
    }
    let problem = Problem { t, y };

    // Rates from a tenth of the window's inverse to three times the first time's inverse.
    let ln_low = (0.1 / t_max).ln();
    let ln_high = (3.0 / t_min).ln();
    let steps = (((ln_high - ln_low) / std::f64::consts::LN_10) * GRID_PER_DECADE as f64).ceil()
        as usize
        + 1;
    let grid: Vec<f64> = (0..steps)
        .map(|i| ln_low + (ln_high - ln_low) * i as f64 / (steps - 1) as f64)
        .collect();

    // Mono: grid, then golden-section search around the best grid point.
    let (best_mono, _) = grid
        .iter()
        .map(|&ln_r| (ln_r, problem.rss_mono(ln_r)))
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let step = grid[1] - grid[0];
    let ln_r_mono = golden_section(
        |ln_r| problem.rss_mono(ln_r),
        best_mono - step,
        best_mono + step,
    );
    let rss_mono = problem.rss_mono(ln_r_mono);

    // Bi: grid over pairs (faster, slower), then Nelder–Mead on the log rates. The grid's
    // exponentials are computed once; each pair then needs one dot product and a 3×3 solve.
    let columns: Vec<Vec<f64>> = grid
        .iter()
        .map(|ln_r| {
            let r = ln_r.exp();
            t.iter().map(|&ti| (-r * ti).exp()).collect()
        })
        .collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let sums: Vec<f64> = columns.iter().map(|c| c.iter().sum()).collect();
    let squares: Vec<f64> = columns.iter().map(|c| dot(c, c)).collect();
    let with_y: Vec<f64> = columns.iter().map(|c| dot(c, y)).collect();
    let sum_y: f64 = y.iter().sum();
    let sum_yy = dot(y, y);
    let mut best_pair = (grid[0], grid[1]);
    let mut best_rss = f64::INFINITY;
    for i in 1..grid.len() {
        for j in 0..i {
            let cross = dot(&columns[i], &columns[j]);
            let gram = Matrix3::new(
                squares[i], cross, sums[i], cross, squares[j], sums[j], sums[i], sums[j], n as f64,
            );
            let rhs = Vector3::new(with_y[i], with_y[j], sum_y);
            let Some(cholesky) = gram.cholesky() else {
                continue;
            };
            let rss = sum_yy - cholesky.solve(&rhs).dot(&rhs);
            if rss < best_rss {
                best_rss = rss;
                best_pair = (grid[i], grid[j]);
            }
        }
    }
    let (ln_fast, ln_slow) = nelder_mead(
        |p| problem.rss_bi(p[0], p[1]),
        [best_pair.0, best_pair.1],
        step,
    );
    let rss_bi = problem.rss_bi(ln_fast, ln_slow).min(rss_mono);
    let (amplitudes, _) = problem.solve_bi(ln_fast, ln_slow)?;

    let df_bi = (n - 5) as f64;
    let f_statistic = if rss_bi > 0.0 {
        ((rss_mono - rss_bi) / 2.0) / (rss_bi / df_bi)
    } else {
        f64::INFINITY
    };
    let p_value = FisherSnedecor::new(2.0, df_bi)
        .map(|f| f.sf(f_statistic.max(0.0)))
        .unwrap_or(1.0);
    let components = [
        DecayComponent {
            amplitude: amplitudes[0],
            t2_ms: 1000.0 / ln_fast.exp(),
        },
        DecayComponent {
            amplitude: amplitudes[1],
            t2_ms: 1000.0 / ln_slow.exp(),
        },
    ];
    let both_positive = amplitudes[0] > 0.0 && amplitudes[1] > 0.0;
    let total = amplitudes[0] + amplitudes[1];
    let minor_fraction = amplitudes[0].min(amplitudes[1]) / total;
    let rate_ratio = (ln_fast - ln_slow).exp();
    let preferred = p_value < options.alpha
        && both_positive
        && minor_fraction >= options.min_minor_fraction
        && rate_ratio >= options.min_rate_ratio;
    Some(BiexponentialCheck {
        rss_mono,
        rss_bi,
        f_statistic,
        p_value,
        components,
        preferred,
    })
}

/// The data and the linear sub-problems of variable projection.
struct Problem<'a> {
    t: &'a [f64],
    y: &'a [f64],
}

impl Problem<'_> {
    /// RSS of A·e^(−R t) + C at the best A, C for R = e^ln_r.
    fn rss_mono(&self, ln_r: f64) -> f64 {
        let r = ln_r.exp();
        let n = self.t.len() as f64;
        let (mut se, mut see, mut sy, mut sey) = (0.0, 0.0, 0.0, 0.0);
        for (&t, &y) in self.t.iter().zip(self.y) {
            let e = (-r * t).exp();
            se += e;
            see += e * e;
            sy += y;
            sey += e * y;
        }
        let det = see * n - se * se;
        if det.abs() <= f64::EPSILON * see * n {
            return f64::INFINITY;
        }
        let a = (sey * n - se * sy) / det;
        let c = (see * sy - se * sey) / det;
        self.t
            .iter()
            .zip(self.y)
            .map(|(&t, &y)| (y - a * (-r * t).exp() - c).powi(2))
            .sum()
    }

    /// Amplitudes (A₁, A₂, C) and RSS of the two-component model at the given log rates.
    fn solve_bi(&self, ln_r1: f64, ln_r2: f64) -> Option<([f64; 3], f64)> {
        let (r1, r2) = (ln_r1.exp(), ln_r2.exp());
        let mut gram = Matrix3::<f64>::zeros();
        let mut rhs = Vector3::<f64>::zeros();
        for (&t, &y) in self.t.iter().zip(self.y) {
            let basis = Vector3::new((-r1 * t).exp(), (-r2 * t).exp(), 1.0);
            gram += basis * basis.transpose();
            rhs += basis * y;
        }
        let beta = gram.cholesky()?.solve(&rhs);
        let rss = self
            .t
            .iter()
            .zip(self.y)
            .map(|(&t, &y)| {
                (y - beta[0] * (-r1 * t).exp() - beta[1] * (-r2 * t).exp() - beta[2]).powi(2)
            })
            .sum();
        Some(([beta[0], beta[1], beta[2]], rss))
    }

    fn rss_bi(&self, ln_r1: f64, ln_r2: f64) -> f64 {
        if (ln_r1 - ln_r2).abs() < 1.0e-6 {
            return f64::INFINITY;
        }
        self.solve_bi(ln_r1, ln_r2)
            .map_or(f64::INFINITY, |(_, rss)| rss)
    }
}

/// Minimises a unimodal `f` on [low, high] by golden-section search.
fn golden_section(f: impl Fn(f64) -> f64, mut low: f64, mut high: f64) -> f64 {
    let ratio = (5.0_f64.sqrt() - 1.0) / 2.0;
    let mut x1 = high - ratio * (high - low);
    let mut x2 = low + ratio * (high - low);
    let (mut f1, mut f2) = (f(x1), f(x2));
    for _ in 0..60 {
        if f1 < f2 {
            high = x2;
            x2 = x1;
            f2 = f1;
            x1 = high - ratio * (high - low);
            f1 = f(x1);
        } else {
            low = x1;
            x1 = x2;
            f1 = f2;
            x2 = low + ratio * (high - low);
            f2 = f(x2);
        }
    }
    0.5 * (low + high)
}

/// Minimises `f` over two variables by Nelder–Mead from `start` with an initial simplex size
/// `scale`; returns the best point, ordered (larger, smaller).
fn nelder_mead(f: impl Fn([f64; 2]) -> f64, start: [f64; 2], scale: f64) -> (f64, f64) {
    let mut simplex = [
        start,
        [start[0] + scale, start[1]],
        [start[0], start[1] + scale],
    ];
    let mut values = simplex.map(&f);
    for _ in 0..200 {
        let mut order = [0usize, 1, 2];
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        simplex = order.map(|i| simplex[i]);
        values = order.map(|i| values[i]);
        if (values[2] - values[0]).abs() <= 1.0e-12 * values[0].abs().max(1.0e-300) {
            break;
        }
        let centroid = [
            0.5 * (simplex[0][0] + simplex[1][0]),
            0.5 * (simplex[0][1] + simplex[1][1]),
        ];
        let towards = |k: f64| {
            [
                centroid[0] + k * (simplex[2][0] - centroid[0]),
                centroid[1] + k * (simplex[2][1] - centroid[1]),
            ]
        };
        let reflected = towards(-1.0);
        let f_reflected = f(reflected);
        if f_reflected < values[0] {
            let expanded = towards(-2.0);
            let f_expanded = f(expanded);
            if f_expanded < f_reflected {
                simplex[2] = expanded;
                values[2] = f_expanded;
            } else {
                simplex[2] = reflected;
                values[2] = f_reflected;
            }
        } else if f_reflected < values[1] {
            simplex[2] = reflected;
            values[2] = f_reflected;
        } else {
            let contracted = towards(0.5);
            let f_contracted = f(contracted);
            if f_contracted < values[2] {
                simplex[2] = contracted;
                values[2] = f_contracted;
            } else {
                for k in 1..3 {
                    simplex[k] = [
                        0.5 * (simplex[0][0] + simplex[k][0]),
                        0.5 * (simplex[0][1] + simplex[k][1]),
                    ];
                    values[k] = f(simplex[k]);
                }
            }
        }
    }
    let best = (0..3)
        .min_by(|&a, &b| values[a].total_cmp(&values[b]))
        .map_or(start, |i| simplex[i]);
    (best[0].max(best[1]), best[0].min(best[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{Component, CpmgSimulation};

    fn real_signal(simulation: &CpmgSimulation, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let train = simulation.simulate(seed);
        (train.times_s().to_vec(), train.phase().real)
    }

    #[test]
    fn mono_exponential_trains_are_not_flagged() {
        let options = BiexponentialOptions::default();
        let mut flagged = 0;
        for seed in 0..40 {
            let mut simulation = CpmgSimulation::mono(1.0, 0.30, 0.004, 500);
            simulation.noise_sd = 1.0 / 300.0;
            let (t, y) = real_signal(&simulation, seed);
            let check = compare_mono_bi(&t, &y, &options).expect("comparable");
            assert!(check.rss_bi <= check.rss_mono);
            if check.preferred {
                flagged += 1;
            }
        }
        // At α = 1e-4 plus the amplitude and rate criteria, a false flag in 40 trains is rare.
        assert!(flagged <= 1, "{flagged} of 40 mono trains flagged");
    }

    #[test]
    fn a_second_population_is_found_and_flagged() {
        let mut simulation = CpmgSimulation::mono(1.0, 0.30, 0.004, 500);
        simulation.components = vec![
            Component {
                amplitude: 0.75,
                t2_s: 0.35,
            },
            Component {
                amplitude: 0.25,
                t2_s: 0.06,
            },
        ];
        simulation.noise_sd = 1.0 / 300.0;
        let (t, y) = real_signal(&simulation, 3);
        let check = compare_mono_bi(&t, &y, &BiexponentialOptions::default()).expect("comparable");
        assert!(check.preferred, "{check:?}");
        let [fast, slow] = check.components;
        assert!((fast.t2_ms - 60.0).abs() < 10.0, "{check:?}");
        assert!((slow.t2_ms - 350.0).abs() < 20.0, "{check:?}");
        assert!((fast.amplitude - 0.25).abs() < 0.05, "{check:?}");
    }

    #[test]
    fn noiseless_mono_fit_finds_the_rate() {
        let simulation = CpmgSimulation::mono(2.0, 0.25, 0.004, 300);
        let t = simulation.times_s();
        let y: Vec<f64> = t.iter().map(|&ti| simulation.ideal(ti)).collect();
        let problem = Problem {
            t: &t[1..],
            y: &y[1..],
        };
        let ln_r = golden_section(|l| problem.rss_mono(l), 0.0, 3.0);
        assert!((ln_r.exp() - 4.0).abs() < 1e-4, "{}", ln_r.exp());
    }

    #[test]
    fn short_or_bad_input_gives_none() {
        let options = BiexponentialOptions::default();
        assert!(compare_mono_bi(&[0.1, 0.2], &[1.0, 0.5], &options).is_none());
        let t: Vec<f64> = (1..=20).map(|i| f64::from(i) * 0.01).collect();
        let mut y: Vec<f64> = t.iter().map(|ti| (-ti * 3.0).exp()).collect();
        y[5] = f64::NAN;
        assert!(compare_mono_bi(&t, &y, &options).is_none());
        assert!(compare_mono_bi(&t, &y[..10], &options).is_none());
    }
}
