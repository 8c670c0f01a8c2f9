//! The T2 distribution: a regularised non-negative inverse Laplace transform of an echo train.
//!
//! The phased real channel `y_i` (first echo dropped by default) is modelled as
//! `y_i = Σ_j K_ij f_j + c` with `K_ij = exp(−t_i / T2_j)` on log-spaced T2 bins, amplitudes
//! `f ≥ 0` and a free baseline `c` ([`Baseline::Constant`], the default). The inversion minimises
//! `‖K f + c − y‖² + α ‖f‖²` over `f ≥ 0`, with α picked by generalised cross-validation.
//!
//! How it stays fast for 25,000-echo trains:
//! 1. Only `G = KᵀK` (n×n), `Kᵀy`, `Kᵀ1`, `Σy` and `Σy²` are ever formed. For uniformly spaced echoes
//!    every `G_ab = Σ_i exp(−t_i (r_a + r_b))` is a geometric series with a closed form, and `Kᵀy` runs
//!    as a recurrence (one multiply per term, stopped once the kernel underflows); irregular times
//!    fall back to the direct products.
//! 2. The baseline is eliminated exactly: with `u = Kᵀ1`, the centred products
//!    `G' = G − u uᵀ/m`, `b' = Kᵀy − u Σy/m` and `Σy² − (Σy)²/m` describe the same problem with `c`
//!    minimised out; afterwards `c = (Σy − uᵀf)/m`. The baseline is not regularised and may be negative.
//! 3. `G' = V Σ² Vᵀ` is eigendecomposed and truncated to singular values above
//!    [`SpectrumOptions::svd_relative_threshold`] × the largest. The data enter only through
//!    `z = Σ⁻¹ Vᵀ b'`, and the problem becomes `min ‖Σ Vᵀ f − z‖² + α‖f‖²`, `f ≥ 0`: a small augmented
//!    system `[Σ Vᵀ; √α I] f ≈ [z; 0]` solved by Lawson–Hanson NNLS on its Gram matrix
//!    `V Σ² Vᵀ + α I`.
//! 4. For every trial α the exact residual `‖K f + c − y‖² = fᵀG'f − 2fᵀb' + y'ᵀy'` costs O(n²), and
//!    the effective number of parameters is `tr(H_PP (H_PP + α I)⁻¹)` over the passive bins `P`, where
//!    `H = V Σ² Vᵀ`. GCV(α) = RSS / (m − 1 − df)² is minimised on a log grid, then refined by golden
//!    section.
//!
//! What it is not for: multi-dimensional (T1–T2, D–T2) inversions, and it does not decide whether a
//! sample is bi-exponential (that is [`crate::fit::bi`]'s model comparison).
//!
//! ## Reference
//! L. Venkataramanan, Y.-Q. Song and M. D. Hürlimann, "Solving Fredholm integrals of the first kind
//! with tensor product structure in 2 and 2.5 dimensions", IEEE Trans. Signal Process. 50 (2002)
//! 1017–1026 (SVD compression). G. H. Golub, M. Heath and G. Wahba, "Generalized cross-validation as
//! a method for choosing a good ridge parameter", Technometrics 21 (1979) 215–223 (GCV).
//! P. C. Hansen, "Analysis of discrete ill-posed problems by means of the L-curve", SIAM Rev. 34
//! (1992) 561–580 (L-curve).
//! C. L. Lawson and R. J. Hanson, *Solving Least Squares Problems*, 1974 (NNLS).

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::{Deserialize, Serialize};

use super::FitError;
use super::echo_times;
use super::nnls::nnls_gram;
use super::{FitInput, FitOptions, fit_mono};
use crate::EchoTrain;

/// How the regularisation weight α is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlphaChoice {
    /// Generalised cross-validation (Golub, Heath & Wahba 1979): minimise RSS/(m − 1 − df)².
    Gcv,
    /// Morozov's discrepancy principle: the largest α whose RSS stays within (m − 1)·σ² plus two
    /// SDs of its χ² spread, σ being the train's noise SD (from the quadrature channel). Falls back
    /// to GCV when σ is unknown.
    Discrepancy,
    /// The L-curve's corner (Hansen 1992): the α of largest curvature of
    /// `(ln ‖K f + c − y‖, ln ‖f‖)` over the α grid (half a decade apart, refined by a parabola).
    LCurve,
    /// A fixed α, in the units of the objective `‖K f + c − y‖² + α‖f‖²` (kernel entries ≤ 1).
    Fixed(f64),
}

/// How the train's baseline is modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// A free, unregularised constant (may be negative): the usual choice for phased data with a
    /// receiver offset, and for magnitude data with a noise floor.
    Constant,
    /// No baseline: the train decays to zero.
    None,
}

/// Settings of [`fit_spectrum`]. `Default` gives 100 bins from TE to 2 × the last echo time,
/// GCV, a constant baseline and every echo used.
///
/// Why the bins stop there: a bin shorter than the first echo time is pinned by the first one or
/// two echoes only, so noise there becomes spurious fast peaks that drag the log-mean down (seeded
/// mono trains at SNR 150, TE 4 ms: log-mean errors up to 20 % with bins from TE/2, 8.5 % from TE);
/// a bin much longer than the window is indistinguishable from the free baseline and trades
/// amplitude with it.
///
/// Why the first echo is kept here although the mono and bi fits drop it: the shortest bins are
/// pinned only by the earliest echoes. Without the first echo, amplitude in bins with T2 ≲ 2·TE is an
/// unconstrained extrapolation to t = 0; on the GeoSpec Bunter sandstone train it inflates the
/// total amplitude from 50.9k to 69.6k and drags the log-mean T2 from 12.9 ms to 3.0 ms (vendor:
/// 12.777 ms). Vendors and NMRInversions.jl invert all echoes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpectrumOptions {
    /// Number of log-spaced T2 bins (≥ 2).
    pub bins: usize,
    /// Shortest bin; `None` = the echo spacing.
    pub t2_min_ms: Option<f64>,
    /// Longest bin; `None` = 2 × the last echo time.
    pub t2_max_ms: Option<f64>,
    /// How α is chosen.
    pub alpha: AlphaChoice,
    /// How the baseline is modelled.
    pub baseline: Baseline,
    /// Skip the first echo (imperfect refocusing). Default `false`: see the type's docs.
    pub drop_first_echo: bool,
    /// Singular values of K below this fraction of the largest are discarded.
    pub svd_relative_threshold: f64,
}

impl Default for SpectrumOptions {
    fn default() -> Self {
        Self {
            bins: 100,
            t2_min_ms: None,
            t2_max_ms: None,
            alpha: AlphaChoice::Gcv,
            baseline: Baseline::Constant,
            drop_first_echo: false,
            svd_relative_threshold: 1e-6,
        }
    }
}

/// Which rule produced the reported α.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlphaMethod {
    /// Generalised cross-validation.
    Gcv,
    /// Discrepancy principle.
    Discrepancy,
    /// The L-curve's corner.
    LCurve,
    /// Given by the caller.
    Fixed,
}

/// A peak left out of the summary statistics, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExcludedPeak {
    /// The peak.
    pub peak: SpectrumPeak,
    /// Why it was left out.
    pub reason: String,
}

/// What a technician should know about a distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpectrumFlag {
    /// More than 1 % of the amplitude sits in the three shortest bins: the distribution may go on
    /// below the grid (shorten the echo spacing, or lower the shortest bin).
    SignalAtShortEdge,
    /// More than 1 % of the amplitude sits in the three longest bins: T2 at 99 % is not measured
    /// (the train is too short for the slowest component).
    SignalAtLongEdge,
    /// A short peak (below three echo spacings) that the noise could have made: its amplitude is
    /// below three standard errors of an isolated component there. Left out of the summary.
    UnsupportedShortComponent,
    /// A tiny isolated peak (< 1 % of the amplitude, apart from the rest): left out of the summary.
    MinorIsolatedPeak,
}

/// One peak of a T2 distribution: a run of adjacent bins above 1 % of the tallest bin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpectrumPeak {
    /// Amplitude-weighted geometric mean T2 of the peak's bins.
    pub t2_logmean_ms: f64,
    /// T2 of the peak's tallest bin.
    pub t2_mode_ms: f64,
    /// Sum of the peak's bin amplitudes.
    pub amplitude: f64,
    /// `amplitude` / total amplitude of the spectrum.
    pub fraction: f64,
    /// First and last bin index of the peak (inclusive).
    pub first_bin: usize,
    /// Last bin index of the peak (inclusive).
    pub last_bin: usize,
}

/// A T2 distribution and how it was obtained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct T2Spectrum {
    /// Bin centres, log-spaced, ascending.
    pub t2_bins_ms: Vec<f64>,
    /// Non-negative amplitude per bin, in signal units (a bin's echo-zero contribution).
    pub amplitudes: Vec<f64>,
    /// Amplitude-weighted geometric mean T2 ("T2LM") over the peaks the summary keeps (see
    /// [`summary_peaks`]: minor isolated peaks and unsupported short components are left out).
    pub t2_logmean_ms: f64,
    /// T2 below which 99 % of the kept amplitude lies (interpolated in log T2 on the cumulative
    /// sum).
    pub t2_at_99_ms: f64,
    /// Sum of the bin amplitudes: the extrapolated signal at t = 0 without the baseline.
    pub total_amplitude: f64,
    /// Fitted baseline (0 with [`Baseline::None`]).
    pub offset: f64,
    /// Peaks, in order of increasing T2.
    pub peaks: Vec<SpectrumPeak>,
    /// The regularisation weight used.
    pub alpha: f64,
    /// How `alpha` was chosen.
    pub alpha_method: AlphaMethod,
    /// Effective number of fitted parameters (trace of the influence matrix, plus the baseline).
    pub effective_parameters: f64,
    /// Residual norm ‖K f + c − y‖.
    pub residual_norm: f64,
    /// Reduced χ²: RSS / ((m − df) σ²) with σ the train's noise SD; `None` when σ is unknown.
    pub chi2_red: Option<f64>,
    /// Echoes in the inversion.
    /// Whether the non-negative solve at the chosen α met its optimality (KKT) conditions.
    pub converged: bool,
    pub echoes_used: usize,
    /// Singular values of the kernel kept after truncation.
    pub singular_values_kept: usize,
    /// Peaks left out of `t2_logmean_ms` and `t2_at_99_ms` (see [`summary_peaks`]).
    pub excluded_peaks: Vec<ExcludedPeak>,
    /// Log-mean over the whole distribution, nothing left out.
    pub t2_logmean_all_ms: f64,
    /// T2 at 99 % over the whole distribution.
    pub t2_at_99_all_ms: f64,
    /// Flags (edges, unsupported short components, minor peaks).
    pub flags: Vec<SpectrumFlag>,
}

/// Most bins an inversion accepts (the Gram matrix is bins × bins).
pub const MAX_BINS: usize = 1000;
/// Shortest bin T2 accepted, in seconds (1 ns): keeps every kernel rate finite.
const MIN_BIN_T2_S: f64 = 1e-9;

/// Fewest echoes an inversion accepts.
pub const MIN_SPECTRUM_ECHOES: usize = 8;

/// Products of the kernel with itself and the data: all the inversion needs from the echoes.
#[derive(Clone, Debug)]
struct KernelProducts {
    gram: DMatrix<f64>,
    kty: DVector<f64>,
    kt1: DVector<f64>,
    sum_y: f64,
    sum_y2: f64,
    m: usize,
}

/// Largest tolerated `|t_i − (t_0 + i Δt)| / t_i` for the closed-form (uniform) path. The absolute
/// kernel error is `sup_r r e^{−r t} |δt| = |δt| / (e t)`, so this bounds it by 4e-7 of the largest
/// kernel entry: far below any measurable noise. It admits times stored as 32-bit floats.
const UNIFORM_RELATIVE_TOLERANCE: f64 = 1e-6;

/// `Some((t_0, Δt))` when the times are uniformly spaced to within [`UNIFORM_RELATIVE_TOLERANCE`].
fn uniform_spacing(times_s: &[f64]) -> Option<(f64, f64)> {
    echo_times::uniform_spacing(times_s, UNIFORM_RELATIVE_TOLERANCE)
}

/// Below this a kernel entry no longer contributes to `Kᵀy` in double precision.
const KERNEL_UNDERFLOW: f64 = 1e-30;

fn kernel_products(times_s: &[f64], y: &[f64], rates_per_s: &[f64]) -> KernelProducts {
    let m = times_s.len();
    let n = rates_per_s.len();
    let sum_y = y.iter().sum();
    let sum_y2 = y.iter().map(|v| v * v).sum();
    let mut kty = DVector::zeros(n);
    let mut kt1 = DVector::zeros(n);
    let gram = if let Some((t0, dt)) = uniform_spacing(times_s) {
        // Σ_{i<m} e^{−s (t0 + i dt)} = e^{−s t0} (1 − e^{−s m dt}) / (1 − e^{−s dt}), via expm1.
        let series = |s: f64| -> f64 {
            if s * dt < 1e-300 {
                m as f64
            } else {
                (-s * t0).exp() * (-(-s * m as f64 * dt).exp_m1()) / (-(-s * dt).exp_m1())
            }
        };
        for (j, &r) in rates_per_s.iter().enumerate() {
            kt1[j] = series(r);
            let q = (-r * dt).exp();
            let mut k = (-r * t0).exp();
            let mut acc = 0.0;
            for &v in y {
                if k < KERNEL_UNDERFLOW {
                    break;
                }
                acc += k * v;
                k *= q;
            }
            kty[j] = acc;
        }
        DMatrix::from_fn(n, n, |a, b| series(rates_per_s[a] + rates_per_s[b]))
    } else {
        let kernel = DMatrix::from_fn(m, n, |i, j| (-rates_per_s[j] * times_s[i]).exp());
        let yv = DVector::from_column_slice(y);
        kty = kernel.tr_mul(&yv);
        for j in 0..n {
            kt1[j] = kernel.column(j).sum();
        }
        kernel.tr_mul(&kernel)
    };
    KernelProducts {
        gram,
        kty,
        kt1,
        sum_y,
        sum_y2,
        m,
    }
}

/// One regularised solve.
#[derive(Clone, Debug)]
struct RegularisedSolution {
    f: DVector<f64>,
    passive: Vec<usize>,
    rss: f64,
    df: f64,
    /// Whether NNLS met its KKT conditions before its iteration cap.
    converged: bool,
}

/// The compressed problem, ready to be solved for any α.
struct CompressedProblem {
    /// Truncated `V Σ² Vᵀ`.
    h: DMatrix<f64>,
    /// `V Vᵀ b'` (data projected on the kept subspace).
    g: DVector<f64>,
    /// Full (untruncated) centred products for the exact residual.
    gram: DMatrix<f64>,
    b: DVector<f64>,
    yy: f64,
    largest_eigenvalue: f64,
    kept: usize,
}

impl CompressedProblem {
    /// Solves for one α; `warm` is a guess of the passive set (from a neighbouring α).
    fn solve(&self, alpha: f64, warm: &[usize]) -> Option<RegularisedSolution> {
        let n = self.g.len();
        let mut h_alpha = self.h.clone();
        for d in 0..n {
            h_alpha[(d, d)] += alpha;
        }
        let sol = nnls_gram(&h_alpha, &self.g, warm).ok()?;
        let converged = sol.converged;
        let f = sol.x;
        let rss = (f.dot(&(&self.gram * &f)) - 2.0 * f.dot(&self.b) + self.yy).max(0.0);
        // Effective parameters: tr(H_PP (H_PP + α I)⁻¹) = p − α tr((H_PP + α I)⁻¹).
        let p = sol.passive.len();
        let df = if p == 0 {
            0.0
        } else {
            let block = DMatrix::from_fn(p, p, |r, c| h_alpha[(sol.passive[r], sol.passive[c])]);
            let inverse = block.cholesky()?.inverse();
            (p as f64 - alpha * inverse.trace()).clamp(0.0, p as f64)
        };
        Some(RegularisedSolution {
            f,
            passive: sol.passive,
            rss,
            df,
            converged,
        })
    }
}

/// The T2 distribution of a train.
///
/// The train is phased; with the default options every echo is used (see [`SpectrumOptions`]).
/// The mono fit is the gate: a train it refuses (no signal, T2 far beyond the window, decay within
/// two echoes) is refused here with the same error.
///
/// # Errors
/// [`FitError::TooFewEchoes`] below [`MIN_SPECTRUM_ECHOES`], [`FitError::InvalidOptions`] for an
/// unusable bin range or α, and whatever [`fit_mono`] refuses.
///
/// # Example
/// ```
/// use nmr_core::{CpmgSimulation, fit::{SpectrumOptions, fit_spectrum}};
/// let mut sim = CpmgSimulation::mono(100.0, 0.080, 0.001, 1000);
/// sim.noise_sd = 0.2;
/// let spectrum = fit_spectrum(&sim.simulate(3), &SpectrumOptions::default())?;
/// assert_eq!(spectrum.peaks.len(), 1);
/// assert!((spectrum.t2_logmean_ms / 80.0 - 1.0).abs() < 0.03);
/// # Ok::<(), nmr_core::fit::FitError>(())
/// ```
///
/// ## Reference
/// Venkataramanan, Song & Hürlimann (2002); Golub, Heath & Wahba (1979); Lawson & Hanson (1974):
/// see the module docs.
pub fn fit_spectrum(train: &EchoTrain, options: &SpectrumOptions) -> Result<T2Spectrum, FitError> {
    let fit_options = FitOptions {
        drop_first_echo: options.drop_first_echo,
        ..FitOptions::default()
    };
    let input = FitInput::new(train, &fit_options);
    let used = input.times_s.len();
    if used < MIN_SPECTRUM_ECHOES {
        return Err(FitError::TooFewEchoes {
            used,
            needed: MIN_SPECTRUM_ECHOES,
        });
    }
    fit_mono(train, &fit_options)?;
    invert(
        input.times_s,
        &input.signal,
        Some(input.noise_sd),
        input.echo_spacing_s,
        options,
    )
}

fn unsolvable(what: &str) -> FitError {
    FitError::NotIdentifiable {
        what: "the T2 distribution",
        detail: format!("the regularised NNLS failed for {what} (a singular passive-set system)"),
    }
}

/// Inverts echoes already selected and phased (`times_s`, `y` real channel), with the given noise
/// SD (for χ² only; `None` if unknown).
pub(crate) fn invert(
    times_s: &[f64],
    y: &[f64],
    noise_sd: Option<f64>,
    echo_spacing_s: f64,
    options: &SpectrumOptions,
) -> Result<T2Spectrum, FitError> {
    let m = times_s.len();
    if m < MIN_SPECTRUM_ECHOES {
        return Err(FitError::TooFewEchoes {
            used: m,
            needed: MIN_SPECTRUM_ECHOES,
        });
    }
    let t_last = times_s[m - 1];
    let t2_min_s = options.t2_min_ms.map_or(echo_spacing_s, |v| v / 1e3);
    let t2_max_s = options.t2_max_ms.map_or(2.0 * t_last, |v| v / 1e3);
    let n = options.bins;
    let usable_range = t2_min_s >= MIN_BIN_T2_S && t2_max_s > t2_min_s && t2_max_s.is_finite();
    if !(2..=MAX_BINS).contains(&n) || !usable_range {
        return Err(FitError::InvalidOptions {
            detail: format!(
                "T2 bins: {n} from {:.4} ms to {:.4} ms (need 2..={MAX_BINS} bins and 1 ns ≤ min < max)",
                t2_min_s * 1e3,
                t2_max_s * 1e3
            ),
        });
    }
    let bins_s: Vec<f64> = (0..n)
        .map(|j| (t2_min_s.ln() + (t2_max_s / t2_min_s).ln() * j as f64 / (n - 1) as f64).exp())
        .collect();
    let rates: Vec<f64> = bins_s.iter().map(|t| 1.0 / t).collect();
    let products = kernel_products(times_s, y, &rates);
    let with_baseline = options.baseline == Baseline::Constant;
    let mf = products.m as f64;
    let (gram, b, yy) = if with_baseline {
        let u = &products.kt1;
        (
            &products.gram - (u * u.transpose()) / mf,
            &products.kty - u * (products.sum_y / mf),
            products.sum_y2 - products.sum_y * products.sum_y / mf,
        )
    } else {
        (products.gram.clone(), products.kty.clone(), products.sum_y2)
    };
    if !(gram.iter().chain(b.iter()).all(|v| v.is_finite()) && yy.is_finite()) {
        return Err(FitError::NotIdentifiable {
            what: "the T2 distribution",
            detail: "the kernel products overflowed".into(),
        });
    }
    let threshold = options.svd_relative_threshold;
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(FitError::InvalidOptions {
            detail: format!("svd_relative_threshold must lie in (0, 1), got {threshold}"),
        });
    }
    let problem = compress(gram, b, yy, threshold);
    let baseline_dof = if with_baseline { 1.0 } else { 0.0 };
    let dof_available = mf - baseline_dof;

    let (alpha, solution, method) = match options.alpha {
        AlphaChoice::Fixed(alpha) => {
            if !(alpha > 0.0 && alpha.is_finite()) {
                return Err(FitError::InvalidOptions {
                    detail: format!("fixed α must be positive and finite, got {alpha}"),
                });
            }
            let sol = problem
                .solve(alpha, &[])
                .ok_or_else(|| unsolvable("the fixed α"))?;
            (alpha, sol, AlphaMethod::Fixed)
        }
        AlphaChoice::Gcv => {
            let (alpha, sol) = gcv_search(&problem, dof_available)
                .ok_or_else(|| unsolvable("every α of the GCV search"))?;
            (alpha, sol, AlphaMethod::Gcv)
        }
        AlphaChoice::LCurve => {
            let (alpha, sol) =
                l_curve_search(&problem).ok_or_else(|| unsolvable("every α of the L-curve"))?;
            (alpha, sol, AlphaMethod::LCurve)
        }
        AlphaChoice::Discrepancy => match noise_sd.filter(|s| *s > 0.0 && s.is_finite()) {
            Some(sd) => {
                let (alpha, sol) =
                    discrepancy_search(&problem, discrepancy_target(dof_available, sd))
                        .ok_or_else(|| unsolvable("every α of the discrepancy search"))?;
                (alpha, sol, AlphaMethod::Discrepancy)
            }
            None => {
                let (alpha, sol) = gcv_search(&problem, dof_available)
                    .ok_or_else(|| unsolvable("every α of the GCV search"))?;
                (alpha, sol, AlphaMethod::Gcv)
            }
        },
    };
    let f = solution.f;
    let total: f64 = f.sum();
    if !(total > 0.0) {
        return Err(FitError::NotIdentifiable {
            what: "the T2 distribution",
            detail: format!("the regularised solution is all zero (α = {alpha:.3e})"),
        });
    }
    let offset = if with_baseline {
        (products.sum_y - products.kt1.dot(&f)) / mf
    } else {
        0.0
    };
    let t2_bins_ms: Vec<f64> = bins_s.iter().map(|t| t * 1e3).collect();
    let amplitudes: Vec<f64> = f.iter().copied().collect();
    let log_mean = (amplitudes
        .iter()
        .zip(&t2_bins_ms)
        .map(|(a, t)| a * t.ln())
        .sum::<f64>()
        / total)
        .exp();
    let df = solution.df + baseline_dof;
    let chi2_red = noise_sd
        .filter(|s| *s > 0.0 && s.is_finite())
        .and_then(|s| (mf > df).then(|| solution.rss / ((mf - df) * s * s)));
    let peaks = find_peaks(&t2_bins_ms, &amplitudes);
    let summary = summary_peaks(&peaks, &amplitudes, times_s, noise_sd, echo_spacing_s);
    let kept: Vec<f64> = amplitudes
        .iter()
        .enumerate()
        .map(|(j, a)| if summary.excluded_bins[j] { 0.0 } else { *a })
        .collect();
    let kept_total: f64 = kept.iter().sum();
    let (robust_log_mean, robust_99) = if kept_total > 0.0 {
        (
            (kept
                .iter()
                .zip(&t2_bins_ms)
                .map(|(a, t)| a * t.ln())
                .sum::<f64>()
                / kept_total)
                .exp(),
            quantile_t2(&t2_bins_ms, &kept, 0.99),
        )
    } else {
        (log_mean, quantile_t2(&t2_bins_ms, &amplitudes, 0.99))
    };
    let mut flags = summary.flags;
    let edge = |range: std::ops::Range<usize>| amplitudes[range].iter().sum::<f64>() / total;
    if edge(0..3.min(n)) > 0.01 {
        flags.push(SpectrumFlag::SignalAtShortEdge);
    }
    if edge(n.saturating_sub(3)..n) > 0.01 {
        flags.push(SpectrumFlag::SignalAtLongEdge);
    }
    Ok(T2Spectrum {
        t2_logmean_ms: robust_log_mean,
        t2_at_99_ms: robust_99,
        t2_logmean_all_ms: log_mean,
        t2_at_99_all_ms: quantile_t2(&t2_bins_ms, &amplitudes, 0.99),
        excluded_peaks: summary.excluded,
        flags,
        peaks,
        t2_bins_ms,
        amplitudes,
        total_amplitude: total,
        offset,
        alpha,
        alpha_method: method,
        effective_parameters: df,
        residual_norm: solution.rss.sqrt(),
        chi2_red,
        echoes_used: m,
        converged: solution.converged,
        singular_values_kept: problem.kept,
    })
}

fn compress(
    gram: DMatrix<f64>,
    b: DVector<f64>,
    yy: f64,
    relative_threshold: f64,
) -> CompressedProblem {
    let eigen = SymmetricEigen::new(gram.clone());
    let largest = eigen.eigenvalues.amax();
    let cutoff = largest * relative_threshold * relative_threshold;
    let kept: Vec<usize> = (0..eigen.eigenvalues.len())
        .filter(|&k| eigen.eigenvalues[k] > cutoff)
        .collect();
    let v = DMatrix::from_fn(gram.nrows(), kept.len(), |r, c| {
        eigen.eigenvectors[(r, kept[c])]
    });
    let lambda = DVector::from_fn(kept.len(), |c, _| eigen.eigenvalues[kept[c]]);
    let h = &v * DMatrix::from_diagonal(&lambda) * v.transpose();
    let g = &v * v.tr_mul(&b);
    CompressedProblem {
        h,
        g,
        gram,
        b,
        yy,
        largest_eigenvalue: largest,
        kept: kept.len(),
    }
}

/// Morozov's bound on the residual: the noise level (m − 1)σ² plus two standard deviations of its
/// χ² spread, so that an above-average noise draw still leaves room to regularise.
fn discrepancy_target(dof_available: f64, noise_sd: f64) -> f64 {
    dof_available * noise_sd * noise_sd * (1.0 + 2.0 * (2.0 / dof_available.max(1.0)).sqrt())
}

/// The log-α search range, relative to the largest eigenvalue of the centred Gram matrix: from
/// practically unregularised to smoothing every kept component away.
fn log_alpha_range(problem: &CompressedProblem) -> Option<(f64, f64)> {
    let scale = problem.largest_eigenvalue;
    (scale > 0.0 && scale.is_finite()).then(|| ((1e-12 * scale).ln(), (10.0 * scale).ln()))
}

/// Bisects log α for RSS(α) = `target_rss` (RSS grows with α) over the GCV range, warm-starting
/// each solve from the last accepted passive set.
fn discrepancy_search(
    problem: &CompressedProblem,
    target_rss: f64,
) -> Option<(f64, RegularisedSolution)> {
    let (mut lo, mut hi) = log_alpha_range(problem)?;
    let at_lo = problem.solve(lo.exp(), &[])?;
    if at_lo.rss >= target_rss {
        // Even the least regularised fit misses the noise level: σ is underestimated.
        return Some((lo.exp(), at_lo));
    }
    let mut best = (lo, at_lo);
    while hi - lo > 1e-2 {
        let mid = 0.5 * (lo + hi);
        match problem.solve(mid.exp(), &best.1.passive) {
            Some(sol) if sol.rss <= target_rss => {
                lo = mid;
                best = (mid, sol);
            }
            _ => hi = mid,
        }
    }
    Some((best.0.exp(), best.1))
}

/// Minimises GCV(α) = RSS / (m − df)² (df: effective parameters, m: echoes less the baseline) over
/// the α range: a 25-point log grid (half a decade apart) walked from strong to weak regularisation
/// with warm starts, then golden-section search in log α between the best point's neighbours.
fn gcv_search(
    problem: &CompressedProblem,
    dof_available: f64,
) -> Option<(f64, RegularisedSolution)> {
    const GRID: usize = 25;
    const GOLDEN_STEPS: usize = 12;
    let (lo, hi) = log_alpha_range(problem)?;
    let gcv = |log_alpha: f64, warm: &[usize]| -> Option<(f64, RegularisedSolution)> {
        let sol = problem.solve(log_alpha.exp(), warm)?;
        let denominator = dof_available - sol.df;
        if denominator <= 0.0 {
            return None;
        }
        Some((sol.rss / (denominator * denominator), sol))
    };
    let mut best: Option<(usize, f64, RegularisedSolution)> = None;
    let mut warm: Vec<usize> = Vec::new();
    let grid = |k: usize| hi - (hi - lo) * k as f64 / (GRID - 1) as f64;
    for k in 0..GRID {
        if let Some((score, sol)) = gcv(grid(k), &warm) {
            warm.clone_from(&sol.passive);
            if best.as_ref().is_none_or(|b| score < b.1) {
                best = Some((k, score, sol));
            }
        }
    }
    let (k_best, score_best, sol_best) = best?;
    let warm = sol_best.passive.clone();
    let (mut a, mut b) = (
        grid((k_best + 1).min(GRID - 1)),
        grid(k_best.saturating_sub(1)),
    );
    let score = |la: f64| gcv(la, &warm).map_or(f64::INFINITY, |(s, _)| s);
    let ratio = 0.5 * (5f64.sqrt() - 1.0);
    let mut c = b - ratio * (b - a);
    let mut d = a + ratio * (b - a);
    let (mut fc, mut fd) = (score(c), score(d));
    for _ in 0..GOLDEN_STEPS {
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - ratio * (b - a);
            fc = score(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + ratio * (b - a);
            fd = score(d);
        }
    }
    let refined = if fc <= fd { c } else { d };
    match gcv(refined, &warm) {
        Some((s, sol)) if s <= score_best => Some((refined.exp(), sol)),
        _ => Some((grid(k_best).exp(), sol_best)),
    }
}

/// T2 below which `fraction` of the amplitude lies, interpolated linearly in log T2 between the
/// centres of the bins whose cumulative sums bracket it.
fn quantile_t2(t2_ms: &[f64], amplitudes: &[f64], fraction: f64) -> f64 {
    let total: f64 = amplitudes.iter().sum();
    let target = fraction * total;
    let mut cumulative = 0.0;
    for (j, &a) in amplitudes.iter().enumerate() {
        let previous = cumulative;
        cumulative += a;
        if cumulative >= target && a > 0.0 {
            if j == 0 {
                return t2_ms[0];
            }
            let w = ((target - previous) / a).clamp(0.0, 1.0);
            return (t2_ms[j - 1].ln() + w * (t2_ms[j].ln() - t2_ms[j - 1].ln())).exp();
        }
    }
    t2_ms[t2_ms.len() - 1]
}

/// Which peaks the summary statistics leave out, with the flags that say so.
struct Summary {
    excluded: Vec<ExcludedPeak>,
    excluded_bins: Vec<bool>,
    flags: Vec<SpectrumFlag>,
}

/// The rule for the summary statistics (log-mean, T2 at 99 %): every peak counts except
///
/// 1. a **minor isolated peak**: one holding less than [`MINOR_PEAK_FRACTION`] (1 %) of the
///    amplitude and not the largest (peaks are separated by empty bins by construction), which a
///    regularised inversion puts at the grid's long end from a slight baseline error or noise; and
/// 2. an **unsupported short component**: a peak whose log-mean T2 is below three echo spacings and
///    whose amplitude is below three standard errors of a single component there, `σ /
///    √(Σᵢ exp(−2tᵢ/T2))` with σ the train's noise: the noise alone makes such peaks at low SNR.
///
/// Both stay in the distribution and in `peaks`; `t2_logmean_all_ms` and `t2_at_99_all_ms` keep
/// the figures over everything.
fn summary_peaks(
    peaks: &[SpectrumPeak],
    amplitudes: &[f64],
    times_s: &[f64],
    noise_sd: Option<f64>,
    echo_spacing_s: f64,
) -> Summary {
    let mut summary = Summary {
        excluded: Vec::new(),
        excluded_bins: vec![false; amplitudes.len()],
        flags: Vec::new(),
    };
    let largest = peaks
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.amplitude.total_cmp(&b.1.amplitude))
        .map(|(k, _)| k);
    for (k, peak) in peaks.iter().enumerate() {
        if Some(k) == largest {
            continue;
        }
        let reason = if let Some(sigma) = noise_sd.filter(|s| *s > 0.0)
            && peak.t2_logmean_ms < 3.0 * echo_spacing_s * 1e3
        {
            let rate = 1e3 / peak.t2_logmean_ms;
            let information: f64 = times_s.iter().map(|t| (-2.0 * rate * t).exp()).sum();
            let standard_error = sigma / information.sqrt();
            (peak.amplitude < 3.0 * standard_error).then(|| {
                (
                    SpectrumFlag::UnsupportedShortComponent,
                    format!(
                        "short peak at {:.3} ms holds {:.1} % of the amplitude, {:.1} standard errors: the noise could have made it",
                        peak.t2_logmean_ms,
                        100.0 * peak.fraction,
                        peak.amplitude / standard_error
                    ),
                )
            })
        } else {
            None
        };
        let reason = reason.or_else(|| {
            (peak.fraction < MINOR_PEAK_FRACTION).then(|| {
                (
                    SpectrumFlag::MinorIsolatedPeak,
                    format!(
                        "isolated peak at {:.3} ms holds {:.2} % of the amplitude (< {:.0} %)",
                        peak.t2_logmean_ms,
                        100.0 * peak.fraction,
                        100.0 * MINOR_PEAK_FRACTION
                    ),
                )
            })
        });
        if let Some((flag, reason)) = reason {
            for bin in peak.first_bin..=peak.last_bin {
                summary.excluded_bins[bin] = true;
            }
            if !summary.flags.contains(&flag) {
                summary.flags.push(flag);
            }
            summary.excluded.push(ExcludedPeak {
                peak: peak.clone(),
                reason,
            });
        }
    }
    summary
}

/// Peaks below this fraction of the amplitude, isolated from the rest, are left out of the
/// summary statistics.
pub const MINOR_PEAK_FRACTION: f64 = 0.01;

/// The L-curve's corner over the α grid of [`gcv_search`]: the point of largest curvature of
/// `(ln RSS^½, ln ‖f‖)`, from finite differences along the grid.
fn l_curve_search(problem: &CompressedProblem) -> Option<(f64, RegularisedSolution)> {
    const GRID: usize = 41;
    let (lo, hi) = log_alpha_range(problem)?;
    let mut points = Vec::with_capacity(GRID);
    let mut warm: Vec<usize> = Vec::new();
    for k in 0..GRID {
        let log_alpha = hi - (hi - lo) * k as f64 / (GRID - 1) as f64;
        if let Some(sol) = problem.solve(log_alpha.exp(), &warm) {
            warm.clone_from(&sol.passive);
            let norm = sol.f.norm();
            if sol.rss > 0.0 && norm > 0.0 {
                points.push((log_alpha, 0.5 * sol.rss.ln(), norm.ln(), sol));
            }
        }
    }
    if points.len() < 3 {
        return points.pop().map(|p| (p.0.exp(), p.3));
    }
    let mut best = (f64::NEG_INFINITY, 1);
    for i in 1..points.len() - 1 {
        let (a, b, c) = (&points[i - 1], &points[i], &points[i + 1]);
        let h = b.0 - a.0;
        let (dx, dy) = ((c.1 - a.1) / (2.0 * h), (c.2 - a.2) / (2.0 * h));
        let (ddx, ddy) = (
            (c.1 - 2.0 * b.1 + a.1) / (h * h),
            (c.2 - 2.0 * b.2 + a.2) / (h * h),
        );
        let speed = (dx * dx + dy * dy).powf(1.5);
        // Signed curvature; the corner bends towards the origin.
        let curvature = if speed > 0.0 {
            (dx * ddy - dy * ddx) / speed
        } else {
            0.0
        };
        if curvature.is_finite() && curvature > best.0 {
            best = (curvature, i);
        }
    }
    let chosen = points.swap_remove(best.1);
    Some((chosen.0.exp(), chosen.3))
}

/// Runs of bins above 1 % of the tallest bin.
fn find_peaks(t2_ms: &[f64], amplitudes: &[f64]) -> Vec<SpectrumPeak> {
    const PEAK_FLOOR: f64 = 0.01;
    let total: f64 = amplitudes.iter().sum();
    let tallest = amplitudes.iter().copied().fold(0.0, f64::max);
    if !(tallest > 0.0) {
        return Vec::new();
    }
    let floor = PEAK_FLOOR * tallest;
    let mut peaks = Vec::new();
    let mut j = 0;
    while j < amplitudes.len() {
        if amplitudes[j] <= floor {
            j += 1;
            continue;
        }
        let first = j;
        while j < amplitudes.len() && amplitudes[j] > floor {
            j += 1;
        }
        let last = j - 1;
        let run = first..=last;
        let amplitude: f64 = amplitudes[run.clone()].iter().sum();
        let log_mean = (run
            .clone()
            .map(|k| amplitudes[k] * t2_ms[k].ln())
            .sum::<f64>()
            / amplitude)
            .exp();
        let mode = run
            .clone()
            .max_by(|&a, &b| amplitudes[a].total_cmp(&amplitudes[b]))
            .unwrap_or(first);
        peaks.push(SpectrumPeak {
            t2_logmean_ms: log_mean,
            t2_mode_ms: t2_ms[mode],
            amplitude,
            fraction: amplitude / total,
            first_bin: first,
            last_bin: last,
        });
    }
    peaks
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    pub(super) fn train(
        te_s: f64,
        echoes: usize,
        components: &[(f64, f64)],
        offset: f64,
        noise_sd: f64,
        seed: u64,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0, noise_sd).expect("finite sd");
        let t: Vec<f64> = (1..=echoes).map(|i| i as f64 * te_s).collect();
        let y = t
            .iter()
            .map(|t| {
                components
                    .iter()
                    .map(|(a, t2)| a * (-t / t2).exp())
                    .sum::<f64>()
                    + offset
                    + normal.sample(&mut rng)
            })
            .collect();
        (t, y)
    }

    #[test]
    fn closed_form_products_match_direct_products() {
        let t: Vec<f64> = (1..=500).map(|i| i as f64 * 2e-4).collect();
        let y: Vec<f64> = t.iter().map(|t| (-t / 0.01).exp() + 0.3).collect();
        let rates: Vec<f64> = (0..20).map(|j| 1.0 / (1e-4 * 1.6f64.powi(j))).collect();
        let fast = kernel_products(&t, &y, &rates);
        assert!(uniform_spacing(&t).is_some());
        // Same times, perturbed beyond tolerance in one place, force the direct path.
        let mut t_irregular = t.clone();
        t_irregular[250] += 1e-6;
        assert!(uniform_spacing(&t_irregular).is_none());
        let direct_k = DMatrix::from_fn(t.len(), rates.len(), |i, j| (-rates[j] * t[i]).exp());
        let direct_gram = direct_k.tr_mul(&direct_k);
        let direct_kty = direct_k.tr_mul(&DVector::from_column_slice(&y));
        for a in 0..rates.len() {
            assert!((fast.kty[a] - direct_kty[a]).abs() <= 1e-10 * (1.0 + direct_kty[a].abs()));
            for b in 0..rates.len() {
                let want = direct_gram[(a, b)];
                assert!(
                    (fast.gram[(a, b)] - want).abs() <= 1e-10 * (1.0 + want),
                    "G[{a},{b}]"
                );
            }
        }
    }

    #[test]
    fn mono_train_gives_one_peak_at_the_true_t2() {
        let truth_s = 0.08;
        let (t, y) = train(1e-3, 1000, &[(100.0, truth_s)], 0.0, 0.2, 11);
        let spectrum = invert(
            &t[1..],
            &y[1..],
            Some(0.2),
            1e-3,
            &SpectrumOptions::default(),
        )
        .expect("clear signal");
        assert_eq!(spectrum.peaks.len(), 1, "{:?}", spectrum.peaks);
        let rel = spectrum.t2_logmean_ms / (truth_s * 1e3) - 1.0;
        assert!(
            rel.abs() < 0.03,
            "log-mean {} ms vs {} ms",
            spectrum.t2_logmean_ms,
            truth_s * 1e3
        );
        assert!(
            (spectrum.total_amplitude / 100.0 - 1.0).abs() < 0.03,
            "total {}",
            spectrum.total_amplitude
        );
        let chi2 = spectrum.chi2_red.expect("noise known");
        assert!((0.8..1.2).contains(&chi2), "chi2_red {chi2}");
    }

    #[test]
    fn bi_train_gives_two_peaks_near_the_truths() {
        let (t, y) = train(0.5e-3, 2000, &[(40.0, 0.020), (60.0, 0.150)], 0.0, 0.2, 21);
        let spectrum =
            invert(&t, &y, Some(0.2), 0.5e-3, &SpectrumOptions::default()).expect("clear signal");
        let major: Vec<&SpectrumPeak> = spectrum
            .peaks
            .iter()
            .filter(|p| p.fraction > 0.05)
            .collect();
        assert_eq!(major.len(), 2, "{:?}", spectrum.peaks);
        assert!(
            (major[0].t2_logmean_ms / 20.0 - 1.0).abs() < 0.15,
            "{:?}",
            major[0]
        );
        assert!(
            (major[1].t2_logmean_ms / 150.0 - 1.0).abs() < 0.15,
            "{:?}",
            major[1]
        );
        assert!((major[0].fraction - 0.4).abs() < 0.05, "{:?}", major[0]);
        let truth_log_mean = (0.4 * 20f64.ln() + 0.6 * 150f64.ln()).exp();
        assert!((spectrum.t2_logmean_ms / truth_log_mean - 1.0).abs() < 0.05);
    }

    #[test]
    fn mono_log_mean_is_close_over_seeds() {
        // The appliance's default train (TE 4 ms, 500 echoes, T2 300 ms) at SNR 500.
        for seed in 0..30 {
            let (t, y) = train(4e-3, 500, &[(100.0, 0.3)], 0.0, 100.0 / 500.0, 900 + seed);
            let spectrum =
                invert(&t, &y, Some(0.2), 4e-3, &SpectrumOptions::default()).expect("clear signal");
            let rel = spectrum.t2_logmean_ms / 300.0 - 1.0;
            assert!(
                rel.abs() < 0.04,
                "seed {seed}: log-mean {} ms",
                spectrum.t2_logmean_ms
            );
            assert_eq!(spectrum.peaks.len(), 1, "seed {seed}: {:?}", spectrum.peaks);
        }
    }

    #[test]
    fn baseline_is_recovered_and_can_be_switched_off() {
        let (t, y) = train(1e-3, 1000, &[(100.0, 0.05)], 7.0, 0.2, 5);
        let with =
            invert(&t, &y, Some(0.2), 1e-3, &SpectrumOptions::default()).expect("clear signal");
        assert!((with.offset - 7.0).abs() < 0.1, "offset {}", with.offset);
        assert!((with.t2_logmean_ms / 50.0 - 1.0).abs() < 0.03);
        let options = SpectrumOptions {
            baseline: Baseline::None,
            ..SpectrumOptions::default()
        };
        let without = invert(&t, &y, Some(0.2), 1e-3, &options).expect("clear signal");
        assert_eq!(without.offset, 0.0);
        // The constant has to go somewhere: the longest bins, which drags the log-mean up.
        assert!(without.t2_logmean_ms > with.t2_logmean_ms);
    }

    #[test]
    fn irregular_times_give_the_same_spectrum_as_regular_ones() {
        let (t, y) = train(1e-3, 600, &[(100.0, 0.05)], 0.0, 0.2, 6);
        let mut jittered = t.clone();
        for (i, v) in jittered.iter_mut().enumerate() {
            *v += if i % 2 == 0 { 1e-9 } else { -1e-9 } * 100.0;
        }
        assert!(uniform_spacing(&jittered).is_none());
        let regular =
            invert(&t, &y, Some(0.2), 1e-3, &SpectrumOptions::default()).expect("clear signal");
        let irregular = invert(&jittered, &y, Some(0.2), 1e-3, &SpectrumOptions::default())
            .expect("clear signal");
        assert!((regular.t2_logmean_ms / irregular.t2_logmean_ms - 1.0).abs() < 1e-3);
    }

    #[test]
    fn fixed_alpha_is_used_as_given() {
        let (t, y) = train(1e-3, 500, &[(100.0, 0.05)], 0.0, 0.2, 8);
        let options = SpectrumOptions {
            alpha: AlphaChoice::Fixed(1.0),
            ..SpectrumOptions::default()
        };
        let spectrum = invert(&t, &y, Some(0.2), 1e-3, &options).expect("clear signal");
        assert_eq!(spectrum.alpha, 1.0);
        assert_eq!(spectrum.alpha_method, AlphaMethod::Fixed);
        // More smoothing spreads the peak but keeps its centre.
        let heavy = SpectrumOptions {
            alpha: AlphaChoice::Fixed(10.0),
            ..SpectrumOptions::default()
        };
        let smooth = invert(&t, &y, Some(0.2), 1e-3, &heavy).expect("clear signal");
        let width = |s: &T2Spectrum| s.amplitudes.iter().filter(|a| **a > 0.0).count();
        assert!(width(&smooth) > width(&spectrum));
        assert!((smooth.t2_logmean_ms / 50.0 - 1.0).abs() < 0.1);
    }

    fn simulated(
        te_s: f64,
        echoes: usize,
        components: &[(f64, f64)],
        noise_sd: f64,
        seed: u64,
    ) -> EchoTrain {
        let simulation = crate::CpmgSimulation {
            components: components
                .iter()
                .map(|&(amplitude, t2_s)| crate::Component { amplitude, t2_s })
                .collect(),
            offset: 0.0,
            noise_sd,
            phase_rad: -1.1,
            te_s,
            echoes,
            magnitude: false,
            refocusing: Default::default(),
        };
        simulation.simulate(seed)
    }

    #[test]
    fn refuses_what_it_cannot_invert() {
        let options = SpectrumOptions::default();
        let noise = simulated(1e-3, 500, &[], 1.0, 9);
        let result = fit_spectrum(&noise, &options);
        assert!(
            matches!(result, Err(FitError::NoSignal { .. })),
            "{result:?}"
        );
        let short = simulated(1e-3, 7, &[(100.0, 0.003)], 0.1, 9);
        let result = fit_spectrum(&short, &options);
        assert!(
            matches!(result, Err(FitError::TooFewEchoes { used: 7, .. })),
            "{result:?}"
        );
        let flat = simulated(1e-3, 500, &[(100.0, 100.0)], 0.1, 9);
        let result = fit_spectrum(&flat, &options);
        // fit_mono (the gate) says one of these two, depending on the draw.
        assert!(
            matches!(
                result,
                Err(FitError::T2BeyondWindow { .. } | FitError::NotIdentifiable { .. })
            ),
            "{result:?}"
        );
        let fast = simulated(1e-3, 200, &[(1e5, 0.4e-3)], 0.1, 9);
        let result = fit_spectrum(&fast, &options);
        assert!(
            matches!(result, Err(FitError::T2BelowEchoSpacing { .. })),
            "{result:?}"
        );
        let inverted = SpectrumOptions {
            t2_min_ms: Some(10.0),
            t2_max_ms: Some(1.0),
            ..SpectrumOptions::default()
        };
        let clear = simulated(1e-3, 500, &[(100.0, 0.05)], 0.1, 9);
        assert!(matches!(
            fit_spectrum(&clear, &inverted),
            Err(FitError::InvalidOptions { .. })
        ));
        let no_bins = SpectrumOptions {
            bins: 1,
            ..SpectrumOptions::default()
        };
        assert!(matches!(
            fit_spectrum(&clear, &no_bins),
            Err(FitError::InvalidOptions { .. })
        ));
        let zero_min = SpectrumOptions {
            t2_min_ms: Some(0.0),
            ..SpectrumOptions::default()
        };
        assert!(matches!(
            fit_spectrum(&clear, &zero_min),
            Err(FitError::InvalidOptions { .. })
        ));
        let bad_threshold = SpectrumOptions {
            svd_relative_threshold: f64::NAN,
            ..SpectrumOptions::default()
        };
        assert!(matches!(
            fit_spectrum(&clear, &bad_threshold),
            Err(FitError::InvalidOptions { .. })
        ));
        let bad_alpha = SpectrumOptions {
            alpha: AlphaChoice::Fixed(-1.0),
            ..SpectrumOptions::default()
        };
        assert!(matches!(
            fit_spectrum(&clear, &bad_alpha),
            Err(FitError::InvalidOptions { .. })
        ));
    }

    #[test]
    fn simulated_trains_give_the_simulators_t2s() {
        let mono = simulated(0.5e-3, 2000, &[(100.0, 0.080)], 0.2, 31);
        let spectrum = fit_spectrum(&mono, &SpectrumOptions::default()).expect("clear signal");
        assert_eq!(spectrum.peaks.len(), 1, "{:?}", spectrum.peaks);
        assert!(
            (spectrum.t2_logmean_ms / 80.0 - 1.0).abs() < 0.03,
            "{}",
            spectrum.t2_logmean_ms
        );
        let bi = simulated(0.5e-3, 2000, &[(40.0, 0.020), (60.0, 0.150)], 0.2, 32);
        let spectrum = fit_spectrum(&bi, &SpectrumOptions::default()).expect("clear signal");
        let major: Vec<&SpectrumPeak> = spectrum
            .peaks
            .iter()
            .filter(|p| p.fraction > 0.05)
            .collect();
        assert_eq!(major.len(), 2, "{:?}", spectrum.peaks);
        assert!(
            (major[0].t2_logmean_ms / 20.0 - 1.0).abs() < 0.15,
            "{:?}",
            major[0]
        );
        assert!(
            (major[1].t2_logmean_ms / 150.0 - 1.0).abs() < 0.15,
            "{:?}",
            major[1]
        );
    }

    #[test]
    fn discrepancy_principle_meets_the_noise_level() {
        let (t, y) = train(1e-3, 1000, &[(100.0, 0.05)], 0.0, 0.2, 12);
        let options = SpectrumOptions {
            alpha: AlphaChoice::Discrepancy,
            ..SpectrumOptions::default()
        };
        let spectrum = invert(&t, &y, Some(0.2), 1e-3, &options).expect("clear signal");
        if spectrum.alpha_method == AlphaMethod::Discrepancy && spectrum.alpha > 1e-9 {
            // The chosen α keeps the RSS within (m − 1)σ² (unless the least-regularised fit already
            // exceeds it, the fallback excluded above); the NNLS active set makes RSS(α) jump, so
            // it cannot be pinned exactly.
            let target = discrepancy_target(t.len() as f64 - 1.0, 0.2);
            let rss = spectrum.residual_norm.powi(2);
            assert!(
                rss <= target * (1.0 + 1e-9) && rss > 0.9 * target,
                "rss {rss}, target {target}"
            );
        }
        assert_eq!(spectrum.alpha_method, AlphaMethod::Discrepancy);
        assert!((spectrum.t2_logmean_ms / 50.0 - 1.0).abs() < 0.05);
        let unknown = invert(&t, &y, None, 1e-3, &options).expect("clear signal");
        assert_eq!(unknown.alpha_method, AlphaMethod::Gcv);
    }

    #[test]
    fn quantile_interpolates_in_log_t2() {
        let t2 = [1.0, 10.0, 100.0, 1000.0];
        // Cumulative fractions 0.25, 0.5, 0.75, 1.0: the 0.5 quantile is bin 1 exactly; the 0.625
        // quantile is halfway (in log) from 10 to 100.
        let amplitudes = [1.0, 1.0, 1.0, 1.0];
        assert!((quantile_t2(&t2, &amplitudes, 0.5) - 10.0).abs() < 1e-12);
        assert!((quantile_t2(&t2, &amplitudes, 0.625) - 10f64.powf(1.5)).abs() < 1e-9);
        assert!((quantile_t2(&t2, &amplitudes, 0.99) - 10f64.powf(2.96)).abs() < 1e-9);
    }

    #[test]
    fn peaks_split_on_gaps() {
        let t2 = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
        let amplitudes = [0.0, 3.0, 1.0, 0.0, 0.0, 4.0];
        let peaks = find_peaks(&t2, &amplitudes);
        assert_eq!(peaks.len(), 2);
        assert_eq!((peaks[0].first_bin, peaks[0].last_bin), (1, 2));
        assert!((peaks[0].fraction - 0.5).abs() < 1e-12);
        assert!(
            (peaks[0].t2_logmean_ms - (0.75 * 2f64.ln() + 0.25 * 4f64.ln()).exp()).abs() < 1e-12
        );
        assert_eq!(peaks[0].t2_mode_ms, 2.0);
        assert_eq!(peaks[1].t2_mode_ms, 32.0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        #[test]
        fn scaling_the_signal_scales_the_spectrum(scale in 0.01f64..100.0, seed in 0u64..1000) {
            let (t, y) = train(1e-3, 400, &[(30.0, 0.01), (70.0, 0.1)], 0.0, 0.3, seed);
            let scaled: Vec<f64> = y.iter().map(|v| v * scale).collect();
            let a = invert(&t, &y, Some(0.3), 1e-3, &SpectrumOptions::default()).expect("clear signal");
            let b = invert(&t, &scaled, Some(0.3 * scale), 1e-3, &SpectrumOptions::default()).expect("clear signal");
            proptest::prop_assert!((a.t2_logmean_ms / b.t2_logmean_ms - 1.0).abs() < 1e-3);
            proptest::prop_assert!((b.total_amplitude / (scale * a.total_amplitude) - 1.0).abs() < 1e-3);
        }
    }
}
