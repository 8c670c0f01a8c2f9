//! The bi-exponential fit and the mono-versus-bi model comparison.
//!
//! Model: `y(t) = A_f·exp(−t/T2f) + A_s·exp(−t/T2s) + C` on the phased real channel, first echo
//! dropped by default. Heterogeneous samples (clots, settling cells, free particle clusters) decay
//! like this; the instrument must notice, not average them into one misleading T2.
//!
//! Fitting is by variable projection: for given rates the three linear parameters `A_f`, `A_s`, `C`
//! are solved exactly by least squares, and Levenberg–Marquardt iterates only the two log-rates,
//! seeded by an exhaustive coarse grid over rate pairs (so no start value is needed and a poor local
//! minimum is unlikely). The mono-exponential comparison model `A·exp(−t/T2) + C` is fitted by the same
//! code on the same points, so the two residual sums are comparable.
//!
//! The verdict ([`ModelComparison::preferred`]) is [`Model::Bi`] only when both hold:
//! - the extra-sum-of-squares F-test (2 extra parameters) is significant at
//!   [`BI_SIGNIFICANCE`] = 0.001, and
//! - the two components are identifiable: the fit converged inside the rate bounds, both amplitudes
//!   are positive, `T2s/T2f ≥` [`MIN_T2_RATIO`], `T2f ≥ 2·TE` and `T2s ≤` the last echo time, and the
//!   covariance exists.
//!
//! Otherwise the report says mono is preferred and lists the [`BiProblem`]s. A two-component fit
//! that fails a check is **not identifiable** ([`BiFit::identifiable`] false, with the reasons in
//! words in [`BiFit::not_identifiable`]): its component numbers (a fraction outside [0, 1], a
//! negative amplitude, a T2 outside the window…) are not results and the command line never prints
//! them as such.
//!
//! The offset follows [`FitOptions::offset`] (`free`, `none`, or `auto`: the two-component model
//! with and without C compared by the F-test of [`super::offset`]); the mono comparison model
//! uses the same choice. Why α = 0.001: the verdict is a per-tube QC flag, and a false flag costs a
//! re-measurement on every one-in-α tube; moreover the F reference distribution is only approximate
//! here (under the mono hypothesis the second T2 is not identified, Davies 1987), so the true false
//! alarm rate sits above the nominal one and a small α keeps it low. Real two-pool decays at the
//! instrument's SNR give p-values many orders of magnitude smaller, so little power is lost.
//!
//! Magnitude trains (issue 12) are fitted against the Rician mean of `|A_f·e^(−t/T2f) +
//! A_s·e^(−t/T2s) + C|` with the noise σ, like the mono fit: the Gaussian fit above is the seed,
//! [`super::rician_exp_sum`] refines all parameters and σ (method of moments), and both the bi and
//! the mono comparison model are judged by the Rician residuals, so the F-test compares like with
//! like. The Gaussian model put the noise floor into `C` and lengthened the slow component where
//! its tail nears the floor.
//!
//! What it is not for: more than two components (use the T2 spectrum).
//!
//! ## Reference
//! G. H. Golub and V. Pereyra, "The differentiation of pseudo-inverses and nonlinear least squares
//! problems whose variables separate", SIAM J. Numer. Anal. 10 (1973) 413–432; "Separable nonlinear
//! least squares: the variable projection method and its applications", Inverse Problems 19 (2003)
//! R1–R26. R. B. Davies, "Hypothesis testing when a nuisance parameter is present only under the
//! alternative", Biometrika 74 (1987) 33–43.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::FitError;
use super::exp_sum::{ExpSumFit, RateBounds, fit_exp_sum};
use super::offset::{OffsetChoice, OffsetModel};
use super::rician_exp_sum::{refine_rician, rician_variances};
use super::{FitInput, FitOptions, fit_mono};
use crate::{EchoTrain, SignalKind};

/// Significance level of the F-test that must be passed before bi is preferred.
pub const BI_SIGNIFICANCE: f64 = 0.001;
/// Smallest ratio T2s/T2f at which two components count as distinct.
pub const MIN_T2_RATIO: f64 = 1.5;
/// Fewest echoes (after dropping) a bi fit accepts: five parameters and room to judge them.
pub const MIN_BI_ECHOES: usize = 8;

/// A decay model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// One exponential plus offset.
    Mono,
    /// Two exponentials plus offset.
    Bi,
}

/// Why the two components cannot be told apart or trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BiProblem {
    /// The optimiser stopped on its iteration cap or on a rate bound.
    NotConverged,
    /// One amplitude is zero or negative.
    NonPositiveAmplitude,
    /// T2s/T2f below [`MIN_T2_RATIO`]: the components have merged.
    ComponentsMerged,
    /// T2f shorter than two echo spacings.
    FastBelowWindow,
    /// T2s longer than the last echo time.
    SlowBeyondWindow,
    /// JᵀJ was singular, so no standard errors exist.
    SingularCovariance,
}

/// The F-test and information criteria for mono (3 parameters) versus bi (5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelComparison {
    /// `((RSS_mono − RSS_bi)/2) / (RSS_bi/(m − 5))`.
    pub f_statistic: f64,
    /// Upper tail of F(2, m − 5) at `f_statistic`.
    pub p_value: f64,
    /// The significance level applied ([`BI_SIGNIFICANCE`]).
    pub significance: f64,
    /// Residual sums of squares.
    pub rss_mono: f64,
    /// Residual sum of squares of the bi model.
    pub rss_bi: f64,
    /// Small-sample Akaike criterion `m ln(RSS/m) + 2k + 2k(k+1)/(m−k−1)`, k = parameters + 1 (σ).
    pub aicc_mono: f64,
    /// AICc of the bi model.
    pub aicc_bi: f64,
    /// Bayesian criterion `m ln(RSS/m) + k ln m`.
    pub bic_mono: f64,
    /// BIC of the bi model.
    pub bic_bi: f64,
    /// T2 of the mono comparison model.
    pub mono_t2_ms: f64,
    /// `true` when the two components passed every identifiability check.
    pub bi_identifiable: bool,
    /// The checks that failed (empty when identifiable).
    pub bi_problems: Vec<BiProblem>,
    /// The verdict: bi only when the F-test is significant and bi is identifiable.
    pub preferred: Model,
}

/// A bi-exponential fit with its model comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BiFit {
    /// Fast component T2.
    pub t2_fast_ms: f64,
    /// Its standard error; `None` without a covariance.
    pub t2_fast_ms_se: Option<f64>,
    /// Slow component T2.
    pub t2_slow_ms: f64,
    /// Its standard error.
    pub t2_slow_ms_se: Option<f64>,
    /// Fast amplitude `A_f` (signal units, at t = 0).
    pub amplitude_fast: f64,
    /// Its standard error.
    pub amplitude_fast_se: Option<f64>,
    /// Slow amplitude `A_s`.
    pub amplitude_slow: f64,
    /// Its standard error.
    pub amplitude_slow_se: Option<f64>,
    /// `A_f / (A_f + A_s)`.
    pub fraction_fast: f64,
    /// Its standard error by the delta method on the (A_f, A_s) covariance.
    pub fraction_fast_se: Option<f64>,
    /// Constant `C`.
    pub offset: f64,
    /// Its standard error.
    pub offset_se: Option<f64>,
    /// `RSS / ((m − 5) σ²)` with σ the train's noise SD; `None` when σ is unknown.
    pub chi2_red: Option<f64>,
    /// `(A_f + A_s) / σ` (σ from the train, else from the residuals).
    pub snr: f64,
    /// Noise SD used for `snr` and `chi2_red`.
    pub noise_sd: f64,
    /// Echoes fitted.
    pub echoes_used: usize,
    /// The optimiser met its tolerance inside the rate bounds.
    pub converged: bool,
    /// Levenberg–Marquardt iterations.
    pub iterations: u32,
    /// `y − model` per fitted echo, when asked for.
    pub residuals: Option<Vec<f64>>,
    /// Mono versus bi.
    pub comparison: ModelComparison,
    /// Whether the two components are physically meaningful and told apart (every check of
    /// [`ModelComparison::bi_problems`] passed). When false the component numbers are not results.
    pub identifiable: bool,
    /// Why not, in words with the offending numbers (empty when identifiable).
    pub not_identifiable: Vec<String>,
    /// The kind of values fitted.
    pub signal_kind: SignalKind,
    /// The offset model used, and why.
    pub offset_model: OffsetChoice,
    /// Whether the Rician noise floor was modelled (magnitude data).
    #[serde(default)]
    pub rician_corrected: bool,
}

/// Fits `A_f·exp(−t/T2f) + A_s·exp(−t/T2s) + C` to a train and compares it with the mono model.
///
/// The train is phased and (by default) its first echo dropped, as for [`fit_mono`]. The mono fit
/// is the gate: a train it refuses (no signal, T2 far beyond the window, decay within two echoes)
/// is refused here with the same error. A train that decays but is not two-component gives a
/// report whose `comparison.preferred` is [`Model::Mono`], with the reasons in
/// `comparison.bi_problems`.
///
/// # Errors
/// [`FitError::TooFewEchoes`] below [`MIN_BI_ECHOES`] used echoes, and whatever [`fit_mono`] refuses.
///
/// # Example
/// ```
/// use nmr_core::{Component, CpmgSimulation, fit::{FitOptions, Model, fit_bi}};
/// let mut sim = CpmgSimulation::mono(40.0, 0.020, 0.0005, 2000);
/// sim.components.push(Component { amplitude: 60.0, t2_s: 0.150 });
/// sim.noise_sd = 0.2;
/// let fit = fit_bi(&sim.simulate(1), &FitOptions::default())?;
/// assert_eq!(fit.comparison.preferred, Model::Bi);
/// assert!((fit.t2_fast_ms - 20.0).abs() < 1.0 && (fit.t2_slow_ms - 150.0).abs() < 5.0);
/// # Ok::<(), nmr_core::fit::FitError>(())
/// ```
///
/// ## Reference
/// Golub & Pereyra (1973, 2003), variable projection; see the module docs.
pub fn fit_bi(train: &EchoTrain, options: &FitOptions) -> Result<BiFit, FitError> {
    let input = FitInput::new(train, options);
    let used = input.times_s.len();
    if used < MIN_BI_ECHOES {
        return Err(FitError::TooFewEchoes {
            used,
            needed: MIN_BI_ECHOES,
        });
    }
    fit_mono(
        train,
        &FitOptions {
            residuals: false,
            ..options.clone()
        },
    )?;
    let rician_sigma = (input.magnitude && input.noise_sd > 0.0).then_some(input.noise_sd);
    let points = |with_offset: bool| {
        fit_bi_points(
            input.times_s,
            &input.signal,
            Some(input.noise_sd),
            input.echo_spacing_s,
            options.residuals,
            with_offset,
            rician_sigma,
        )
    };
    let (mut fit, choice) = match options.offset {
        OffsetModel::Free => (points(true)?, OffsetChoice::as_asked(OffsetModel::Free)),
        OffsetModel::None => (points(false)?, OffsetChoice::as_asked(OffsetModel::None)),
        OffsetModel::Auto => {
            let (free, none) = (points(true)?, points(false)?);
            let choice =
                OffsetChoice::decide(none.comparison.rss_bi, free.comparison.rss_bi, used, 5);
            if choice.used == OffsetModel::Free {
                (free, choice)
            } else {
                (none, choice)
            }
        }
    };
    fit.signal_kind = input.kind;
    fit.offset_model = choice;
    Ok(fit)
}

/// Fits both models to already selected, phased points and compares them.
///
/// `noise_sd`: the train's noise SD if known. `echo_spacing_s`: TE. `rician_sigma`: for
/// magnitudes, the model-free σ from which the Rician refinement starts (`None`: Gaussian data).
pub(crate) fn fit_bi_points(
    times_s: &[f64],
    y: &[f64],
    noise_sd: Option<f64>,
    echo_spacing_s: f64,
    want_residuals: bool,
    with_offset: bool,
    rician_sigma: Option<f64>,
) -> Result<BiFit, FitError> {
    let m = times_s.len();
    if m < MIN_BI_ECHOES {
        return Err(FitError::TooFewEchoes {
            used: m,
            needed: MIN_BI_ECHOES,
        });
    }
    let t_last = times_s[m - 1];
    let bounds = RateBounds::for_train(echo_spacing_s, t_last);
    let not_identifiable = |what: &'static str| FitError::NotIdentifiable {
        what,
        detail: "no rate pair gives a well-posed linear subproblem".into(),
    };
    let mono = fit_exp_sum(times_s, y, 1, bounds, with_offset)
        .ok_or_else(|| not_identifiable("the mono comparison model"))?;
    let bi = fit_exp_sum(times_s, y, 2, bounds, with_offset)
        .ok_or_else(|| not_identifiable("the bi-exponential model"))?;
    let (mono, bi) = match rician_sigma {
        Some(sigma) => (
            refine_rician(times_s, y, &mono, sigma, bounds),
            refine_rician(times_s, y, &bi, sigma, bounds),
        ),
        None => (mono, bi),
    };

    let covariance = bi.covariance(times_s);
    let se = |d: usize| covariance.as_ref().map(|c| c[(d, d)].sqrt());
    let (rate_f, rate_s) = (bi.rates_per_s[0], bi.rates_per_s[1]);
    let (a_f, a_s) = (bi.amplitudes[0], bi.amplitudes[1]);
    let sum = a_f + a_s;
    let fraction_fast = if sum != 0.0 { a_f / sum } else { f64::NAN };
    let fraction_fast_se = covariance.as_ref().and_then(|c| {
        if sum == 0.0 {
            return None;
        }
        let (df_daf, df_das) = (a_s / (sum * sum), -a_f / (sum * sum));
        let var = df_daf * df_daf * c[(0, 0)]
            + 2.0 * df_daf * df_das * c[(0, 2)]
            + df_das * df_das * c[(2, 2)];
        (var >= 0.0).then(|| var.sqrt())
    });

    let mut problems = Vec::new();
    if !bi.converged {
        problems.push(BiProblem::NotConverged);
    }
    if !(a_f > 0.0 && a_s > 0.0) {
        problems.push(BiProblem::NonPositiveAmplitude);
    }
    if rate_f / rate_s < MIN_T2_RATIO {
        problems.push(BiProblem::ComponentsMerged);
    }
    if 1.0 / rate_f < 2.0 * echo_spacing_s {
        problems.push(BiProblem::FastBelowWindow);
    }
    if 1.0 / rate_s > t_last {
        problems.push(BiProblem::SlowBeyondWindow);
    }
    if covariance.is_none() {
        problems.push(BiProblem::SingularCovariance);
    }
    let reasons: Vec<String> = problems
        .iter()
        .map(|problem| match problem {
            BiProblem::NotConverged => {
                "the optimiser stopped on its iteration cap or a rate bound".to_owned()
            }
            BiProblem::NonPositiveAmplitude => format!(
                "amplitudes {a_f:.4e} and {a_s:.4e} are not both positive (fast fraction {fraction_fast:.4e}, outside [0, 1] or at its edge)"
            ),
            BiProblem::ComponentsMerged => format!(
                "T2s/T2f = {:.3} is below {MIN_T2_RATIO}: the components have merged",
                rate_f / rate_s
            ),
            BiProblem::FastBelowWindow => format!(
                "T2f = {:.4} ms is shorter than two echo spacings ({:.4} ms)",
                1e3 / rate_f,
                2e3 * echo_spacing_s
            ),
            BiProblem::SlowBeyondWindow => format!(
                "T2s = {:.4} ms is longer than the last echo time ({:.4} ms)",
                1e3 / rate_s,
                1e3 * t_last
            ),
            BiProblem::SingularCovariance => {
                "the two components' parameters are not determined (singular covariance)".to_owned()
            }
        })
        .collect();

    let comparison = compare(&mono, &bi, m, problems);
    let sigma = noise_sd
        .filter(|s| *s > 0.0 && s.is_finite())
        .unwrap_or_else(|| (bi.rss / (m - bi.parameter_count()) as f64).sqrt());
    let dof = (m - bi.parameter_count()) as f64;
    let chi2_red = noise_sd
        .filter(|s| *s > 0.0 && s.is_finite())
        .map(|s| match bi.rician_sigma {
            // Each echo against its own Rician variance at the model-free σ (the spread shrinks
            // on the floor), as the mono fit's χ² does.
            Some(_) => {
                let variances = rician_variances(times_s, &bi, s);
                let chi2: f64 = times_s
                    .iter()
                    .zip(y)
                    .zip(&variances)
                    .map(|((&t, &v), var)| (v - bi.model(t)).powi(2) / var)
                    .sum();
                chi2 / dof
            }
            None => bi.rss / (dof * s * s),
        });
    let residuals = want_residuals.then(|| {
        times_s
            .iter()
            .zip(y)
            .map(|(t, v)| v - bi.model(*t))
            .collect()
    });
    Ok(BiFit {
        t2_fast_ms: 1e3 / rate_f,
        t2_fast_ms_se: se(1).map(|v| v * 1e3),
        t2_slow_ms: 1e3 / rate_s,
        t2_slow_ms_se: se(3).map(|v| v * 1e3),
        amplitude_fast: a_f,
        amplitude_fast_se: se(0),
        amplitude_slow: a_s,
        amplitude_slow_se: se(2),
        fraction_fast,
        fraction_fast_se,
        offset: bi.offset,
        offset_se: if with_offset { se(4) } else { Some(0.0) },
        chi2_red,
        snr: if sigma > 0.0 {
            sum / sigma
        } else {
            f64::INFINITY
        },
        noise_sd: sigma,
        echoes_used: m,
        converged: bi.converged,
        iterations: bi.iterations,
        residuals,
        identifiable: comparison.bi_identifiable,
        not_identifiable: reasons,
        comparison,
        signal_kind: SignalKind::Complex,
        offset_model: OffsetChoice::as_asked(if with_offset {
            OffsetModel::Free
        } else {
            OffsetModel::None
        }),
        rician_corrected: bi.rician_sigma.is_some(),
    })
}

fn compare(
    mono: &ExpSumFit,
    bi: &ExpSumFit,
    m: usize,
    problems: Vec<BiProblem>,
) -> ModelComparison {
    let mf = m as f64;
    let extra = (bi.parameter_count() - mono.parameter_count()) as f64;
    let dof_bi = (m - bi.parameter_count()) as f64;
    let (rss_mono, rss_bi) = (mono.rss, bi.rss);
    let f_statistic = if rss_bi > 0.0 {
        ((rss_mono - rss_bi).max(0.0) / extra) / (rss_bi / dof_bi)
    } else if rss_mono > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let p_value = if f_statistic.is_infinite() {
        0.0
    } else {
        FisherSnedecor::new(extra, dof_bi).map_or(f64::NAN, |d| d.sf(f_statistic))
    };
    let criteria = |rss: f64, parameters: usize| {
        let k = (parameters + 1) as f64;
        let log_term = mf * (rss.max(f64::MIN_POSITIVE) / mf).ln();
        let aicc = log_term + 2.0 * k + 2.0 * k * (k + 1.0) / (mf - k - 1.0);
        let bic = log_term + k * mf.ln();
        (aicc, bic)
    };
    let (aicc_mono, bic_mono) = criteria(rss_mono, mono.parameter_count());
    let (aicc_bi, bic_bi) = criteria(rss_bi, bi.parameter_count());
    let bi_identifiable = problems.is_empty();
    let significant = p_value < BI_SIGNIFICANCE;
    ModelComparison {
        f_statistic,
        p_value,
        significance: BI_SIGNIFICANCE,
        rss_mono,
        rss_bi,
        aicc_mono,
        aicc_bi,
        bic_mono,
        bic_bi,
        mono_t2_ms: 1e3 / mono.rates_per_s[0],
        bi_identifiable,
        bi_problems: problems,
        preferred: if significant && bi_identifiable {
            Model::Bi
        } else {
            Model::Mono
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Component, CpmgSimulation, Signal};

    /// A simulated complex train (receiver phase 0.7 rad, so phasing is exercised).
    fn simulated(
        te_s: f64,
        echoes: usize,
        components: &[(f64, f64)],
        noise_sd: f64,
        seed: u64,
    ) -> EchoTrain {
        let simulation = CpmgSimulation {
            components: components
                .iter()
                .map(|&(amplitude, t2_s)| Component { amplitude, t2_s })
                .collect(),
            offset: 0.0,
            noise_sd,
            phase_rad: 0.7,
            te_s,
            echoes,
            magnitude: false,
            refocusing: Default::default(),
        };
        simulation.simulate(seed)
    }

    fn options(residuals: bool) -> FitOptions {
        FitOptions {
            residuals,
            ..FitOptions::default()
        }
    }

    #[test]
    fn recovers_two_components_at_snr_500() {
        for seed in 0..8 {
            let train = simulated(
                0.5e-3,
                2000,
                &[(40.0, 0.020), (60.0, 0.150)],
                100.0 / 500.0,
                seed,
            );
            let fit = fit_bi(&train, &options(false)).expect("clear signal");
            assert!(
                (fit.t2_fast_ms / 20.0 - 1.0).abs() < 0.05,
                "seed {seed}: {fit:?}"
            );
            assert!(
                (fit.t2_slow_ms / 150.0 - 1.0).abs() < 0.05,
                "seed {seed}: {fit:?}"
            );
            assert!(
                (fit.fraction_fast / 0.4 - 1.0).abs() < 0.05,
                "seed {seed}: {fit:?}"
            );
            assert_eq!(
                fit.comparison.preferred,
                Model::Bi,
                "seed {seed}: {:?}",
                fit.comparison
            );
        }
    }

    #[test]
    fn standard_errors_match_the_spread_over_seeds() {
        let trials = 200;
        let mut t2_fast = Vec::new();
        let mut fraction = Vec::new();
        let mut reported_t2_se = Vec::new();
        let mut reported_fraction_se = Vec::new();
        for seed in 0..trials {
            let train = simulated(1e-3, 500, &[(40.0, 0.020), (60.0, 0.150)], 0.5, 500 + seed);
            let fit = fit_bi(&train, &options(false)).expect("clear signal");
            t2_fast.push(fit.t2_fast_ms);
            fraction.push(fit.fraction_fast);
            reported_t2_se.push(fit.t2_fast_ms_se.expect("identifiable"));
            reported_fraction_se.push(fit.fraction_fast_se.expect("identifiable"));
        }
        let sd = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        // With 200 samples the SD itself is known to ±5 % (1σ); allow 20 %. (Seeds 500..560 alone
        // give a ratio of 1.41 for T2f: 60 trains are too few for this check.)
        let ratio_t2 = mean(&reported_t2_se) / sd(&t2_fast);
        let ratio_fraction = mean(&reported_fraction_se) / sd(&fraction);
        assert!(
            (0.8..1.2).contains(&ratio_t2),
            "T2f: reported SE / empirical SD = {ratio_t2}"
        );
        assert!(
            (0.8..1.2).contains(&ratio_fraction),
            "fraction: reported SE / empirical SD = {ratio_fraction}"
        );
    }

    #[test]
    fn mono_data_rarely_prefers_bi() {
        // α = 0.001 over 200 trains implies 0.2 false calls; allow 2 (P(≥3 | rate 0.001) ≈ 0.001).
        // Measured while writing this test: 1 of 6,000 trains over the three settings below.
        let settings = [
            (4e-3, 500, 0.3, 100.0 / 150.0),
            (0.5e-3, 2000, 0.05, 0.2),
            (1e-3, 1000, 0.1, 1.0),
        ];
        let mut bi_calls = 0;
        let mut trials = 0;
        for (k, &(te, echoes, t2, sd)) in settings.iter().enumerate() {
            for seed in 0..67 {
                let train = simulated(te, echoes, &[(100.0, t2)], sd, 10_000 * k as u64 + seed);
                let fit = fit_bi(&train, &options(false)).expect("clear mono signal");
                trials += 1;
                if fit.comparison.preferred == Model::Bi {
                    bi_calls += 1;
                }
                assert!((fit.comparison.mono_t2_ms / (t2 * 1e3) - 1.0).abs() < 0.05);
            }
        }
        assert_eq!(trials, 201);
        assert!(
            bi_calls <= 2,
            "{bi_calls} of {trials} mono trains called bi"
        );
    }

    #[test]
    fn clearly_bi_data_always_prefers_bi() {
        for seed in 0..50 {
            let train = simulated(
                1e-3,
                1000,
                &[(30.0, 0.015), (70.0, 0.120)],
                0.5,
                77_000 + seed,
            );
            let fit = fit_bi(&train, &options(false)).expect("clear signal");
            assert_eq!(
                fit.comparison.preferred,
                Model::Bi,
                "seed {seed}: {:?}",
                fit.comparison
            );
            assert!(fit.comparison.p_value < 1e-10);
            assert!(fit.comparison.aicc_bi < fit.comparison.aicc_mono);
            assert!(fit.comparison.bic_bi < fit.comparison.bic_mono);
        }
    }

    #[test]
    fn merged_components_are_reported_as_mono() {
        // T2s 100 and 110 ms: a ratio of 1.1, not resolvable as two pools.
        for seed in 0..10 {
            let train = simulated(
                1e-3,
                1000,
                &[(50.0, 0.100), (50.0, 0.110)],
                0.5,
                3_000 + seed,
            );
            let fit = fit_bi(&train, &options(false)).expect("clear signal");
            assert_eq!(
                fit.comparison.preferred,
                Model::Mono,
                "seed {seed}: {:?}",
                fit.comparison
            );
            assert!(fit.t2_fast_ms.is_finite() && fit.t2_slow_ms.is_finite());
            if fit.comparison.p_value < BI_SIGNIFICANCE {
                assert!(!fit.comparison.bi_problems.is_empty());
            }
        }
    }

    #[test]
    fn pure_noise_is_no_signal() {
        for seed in 0..10 {
            let train = simulated(1e-3, 500, &[], 1.0, seed);
            assert!(
                matches!(
                    fit_bi(&train, &options(false)),
                    Err(FitError::NoSignal { .. }
                        | FitError::T2BeyondWindow { .. }
                        | FitError::NotIdentifiable { .. })
                ),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn decay_far_beyond_the_window_is_refused() {
        // T2 = 100 s over a 0.5 s window: 0.5 % decay, buried in the offset.
        let train = simulated(1e-3, 500, &[(100.0, 100.0)], 0.1, 1);
        assert!(matches!(
            fit_bi(&train, &options(false)),
            Err(FitError::T2BeyondWindow { .. })
        ));
    }

    #[test]
    fn decay_faster_than_two_echoes_is_refused() {
        // T2 = 0.6 TE: only a handful of echoes above noise.
        let train = simulated(1e-3, 200, &[(1e5, 0.6e-3)], 0.1, 2);
        let result = fit_bi(&train, &options(false));
        assert!(
            matches!(result, Err(FitError::T2BelowEchoSpacing { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn too_few_echoes_is_refused() {
        let train = simulated(1e-3, 8, &[(100.0, 0.005)], 0.1, 3);
        assert!(matches!(
            fit_bi(&train, &options(false)),
            Err(FitError::TooFewEchoes { used: 7, .. })
        ));
    }

    #[test]
    fn residuals_are_returned_on_request_and_sum_to_the_rss() {
        let train = simulated(1e-3, 300, &[(30.0, 0.01), (70.0, 0.1)], 0.5, 4);
        let fit = fit_bi(&train, &options(true)).expect("clear signal");
        let residuals = fit.residuals.as_ref().expect("asked for");
        assert_eq!(residuals.len(), fit.echoes_used);
        let rss: f64 = residuals.iter().map(|r| r * r).sum();
        assert!((rss / fit.comparison.rss_bi - 1.0).abs() < 1e-9);
        let chi2 = fit.chi2_red.expect("noise known");
        assert!((0.8..1.2).contains(&chi2), "chi2_red {chi2}");
        assert!(
            fit_bi(&train, &options(false))
                .expect("same")
                .residuals
                .is_none()
        );
    }

    #[test]
    fn serialises_the_verdict_in_lower_case() {
        let train = simulated(1e-3, 300, &[(30.0, 0.01), (70.0, 0.1)], 0.5, 5);
        let fit = fit_bi(&train, &options(false)).expect("clear signal");
        let json = serde_json::to_value(&fit).expect("serialisable");
        assert_eq!(json["comparison"]["preferred"], "bi");
        assert_eq!(
            serde_json::to_value(Model::Mono).expect("unit variant"),
            "mono"
        );
        assert_eq!(
            serde_json::to_value(BiProblem::ComponentsMerged).expect("unit variant"),
            "components_merged"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn scaling_the_signal_scales_amplitudes_and_keeps_t2(scale in 0.01f64..100.0, seed in 0u64..1000) {
            let train = simulated(1e-3, 400, &[(30.0, 0.01), (70.0, 0.1)], 0.3, seed);
            let Signal::Complex { re, im } = train.signal() else { unreachable!("simulated complex") };
            let scaled = EchoTrain::complex(
                train.times_s().to_vec(),
                re.iter().map(|v| v * scale).collect(),
                im.iter().map(|v| v * scale).collect(),
            )
            .expect("a scaled valid train is valid");
            let a = fit_bi(&train, &options(false)).expect("clear signal");
            let b = fit_bi(&scaled, &options(false)).expect("clear signal");
            proptest::prop_assert!((a.t2_fast_ms / b.t2_fast_ms - 1.0).abs() < 1e-6);
            proptest::prop_assert!((a.t2_slow_ms / b.t2_slow_ms - 1.0).abs() < 1e-6);
            proptest::prop_assert!((b.amplitude_fast / (scale * a.amplitude_fast) - 1.0).abs() < 1e-6);
            proptest::prop_assert!((b.offset - scale * a.offset).abs() < 1e-6 * scale * a.amplitude_slow);
            proptest::prop_assert!((a.fraction_fast - b.fraction_fast).abs() < 1e-8);
        }
    }
}
