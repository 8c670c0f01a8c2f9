//! The mono-exponential fit with stimulated echoes: T2 and the refocusing angle β together.
//!
//! Model: echo k (1-based) is `A·Eₖ(R2, β) + C`, `Eₖ` the extended phase graph of a CPMG with
//! refocusing angle β ([`crate::epg`]), with the sample's T1 assumed (default 1 s: stimulated
//! echoes depend on it only weakly over a few echo spacings). A coil that refocuses by β < 180°
//! makes the plain exponential fit biased (the train decays more slowly than T2 after its first
//! echoes); this fit is not.
//!
//! Every echo is fitted, the first included: the pattern of the first echoes is what identifies β.
//! The echoes must be uniformly spaced (echo k at about k·TE, as a CPMG acquires them). A, C are
//! linear; (A, R2, β, C) are refined together by Levenberg–Marquardt with the EPG's exact
//! derivatives (carried through the graph, [`crate::epg::cpmg_echoes_with_derivatives`]), from the
//! best β of a coarse grid (180° down to 60°) at the plain fit's R2. The graph leaves out pathways
//! worth less than 1e-4 of the noise per echo, all of them together (its bound). β is
//! kept in (0°, 180°] (the graph is symmetric about 180°). Standard errors, the offset model and
//! the misfit tests are those of the plain fit ([`super::offset`], [`super::misfit`]).
//!
//! [`fit_cpmg_t2`] is the rule the appliance uses: the plain fit, unless the β fit finds the
//! refocusing clearly imperfect (the upper end of β's 95 % interval below
//! [`REFOCUSING_IMPERFECT_BELOW_DEG`]). The misfit tests cannot stand in for it: at T2 ≫ TE and
//! T1 > T2 the stimulated echoes mostly slow the envelope down, which biases the plain T2 by a few
//! per cent without a misfit they can see (a coil at β = 150°, T2 250 ms, SNR 250: χ²ᵣ 1.25). The
//! β fit costs many passes of the graph, so a pre-test made for the purpose ([`refocusing_score`],
//! a score test at β = 180° along the stimulated echoes' own pattern) decides whether it is made.
//!
//! Not for: magnitude-data Rician modelling (a magnitude train is fitted with Gaussian noise and its
//! floor goes into C), or a B1 distribution across the sample (one effective β).
//!
//! ## Reference
//! T. Prasloski, B. Mädler, Q.-S. Xiang, A. MacKay, C. Laule, "Applications of stimulated echo
//! correction to multicomponent T2 analysis", Magn. Reson. Med. 67 (2012) 1803–1814; J. Doucette
//! et al., DECAES (2020).

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use super::misfit::{LackOfFit, assess};
use super::offset::{OffsetChoice, OffsetModel};
use super::{FitError, FitInput, FitOptions, MonoFit, fit_mono};
use crate::epg::{EXACT_TOLERANCE, cpmg_echoes_into, cpmg_echoes_with_derivatives};
use crate::noise::NoiseEstimate;
use crate::{EchoTrain, SignalKind};

/// The appliance uses the β fit when the upper end of β's 95 % interval lies below this angle.
pub const REFOCUSING_IMPERFECT_BELOW_DEG: f64 = 175.0;

/// T1 assumed for the stimulated echoes unless told otherwise, seconds.
pub const DEFAULT_T1_S: f64 = 1.0;

const MAX_ITERATIONS: u32 = 60;

/// A fit of T2 and the refocusing angle.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpgFit {
    /// T2 in milliseconds.
    pub t2_ms: f64,
    /// Its standard error.
    pub t2_ms_se: f64,
    /// R2 = 1/T2 in s⁻¹.
    pub r2_per_s: f64,
    /// Its standard error.
    pub r2_per_s_se: f64,
    /// Refocusing angle β in degrees.
    pub refocusing_angle_deg: f64,
    /// Its standard error.
    pub refocusing_angle_deg_se: f64,
    /// A: the transverse magnetisation after excitation, in signal units.
    pub amplitude: f64,
    /// Its standard error.
    pub amplitude_se: f64,
    /// C (0 without an offset).
    pub offset: f64,
    /// Its standard error.
    pub offset_se: f64,
    /// T1 assumed, ms.
    pub t1_ms_assumed: f64,
    /// χ² over its degrees of freedom against the independent noise estimate.
    pub chi2_red: f64,
    /// A over the noise SD.
    pub snr: f64,
    /// Noise SD per echo.
    pub noise_sd: f64,
    /// Echoes fitted (all of them).
    pub echoes_used: usize,
    /// The solver met its tolerance.
    pub converged: bool,
    /// Solver iterations.
    pub iterations: u32,
    /// The kind of values fitted.
    pub signal_kind: SignalKind,
    /// The offset model used, and why.
    pub offset_model: OffsetChoice,
    /// The noise estimate.
    pub noise: NoiseEstimate,
    /// The model does not describe the echoes within their noise.
    pub misfit: bool,
    /// The lack-of-fit tests.
    pub lack_of_fit: LackOfFit,
}

/// Fits T2 and β together; `t1_s` is the T1 assumed for the stimulated echoes.
///
/// # Errors
/// Whatever the plain fit (the gate) refuses, [`FitError::NotIdentifiable`] for echoes that are
/// not uniformly spaced, and [`FitError::InvalidOptions`] for a non-positive T1.
pub fn fit_mono_epg(
    train: &EchoTrain,
    options: &FitOptions,
    t1_s: f64,
) -> Result<EpgFit, FitError> {
    if !(t1_s > 0.0 && t1_s.is_finite()) {
        return Err(FitError::InvalidOptions {
            detail: format!("T1 must be a positive number of seconds, got {t1_s}"),
        });
    }
    let all_echoes = FitOptions {
        drop_first_echo: false,
        residuals: false,
        ..options.clone()
    };
    let plain = fit_mono(train, &all_echoes)?;
    let input = FitInput::new(train, &all_echoes);
    let times = input.times_s;
    let m = times.len();
    let te_s = input.echo_spacing_s;
    let uniform = times
        .iter()
        .enumerate()
        .all(|(k, &t)| (t - (k as f64 + 1.0) * te_s).abs() <= 0.51 * te_s);
    if !uniform {
        return Err(FitError::NotIdentifiable {
            what: "the refocusing angle",
            detail: "the echoes are not at whole multiples of one echo spacing".into(),
        });
    }
    // The graph may leave out pathways worth 1e-4 of the noise per echo, no more: the parameters
    // then move by less than a few thousandths of their standard errors.
    let relative_noise = plain.noise_sd / plain.amplitude;
    let tolerance = if relative_noise.is_finite() && relative_noise > 0.0 {
        (1e-4 * relative_noise).max(EXACT_TOLERANCE)
    } else {
        EXACT_TOLERANCE
    };
    let problem = EpgProblem {
        y: &input.signal,
        te_s,
        r1_per_s: 1.0 / t1_s,
        tolerance,
    };
    let (solution, choice) = match plain.offset_model.used {
        OffsetModel::None => (problem.solve(plain.r2_per_s, false), plain.offset_model),
        _ => {
            let free = problem.solve(plain.r2_per_s, true);
            if options.offset == OffsetModel::Auto {
                let none = problem.solve(plain.r2_per_s, false);
                match (free, none) {
                    (Some(free), Some(none)) => {
                        let choice = OffsetChoice::decide(none.rss, free.rss, m, 4);
                        if choice.used == OffsetModel::Free {
                            (Some(free), choice)
                        } else {
                            (Some(none), choice)
                        }
                    }
                    (free, _) => (free, plain.offset_model),
                }
            } else {
                (free, plain.offset_model)
            }
        }
    };
    let Some(solution) = solution else {
        return Err(FitError::NotIdentifiable {
            what: "the refocusing angle",
            detail: "no angle gives a well-posed fit".into(),
        });
    };
    let model = problem.model(&solution);
    let residuals: Vec<f64> = input
        .signal
        .iter()
        .zip(&model)
        .map(|(y, f)| y - f)
        .collect();
    let noise = input.noise.clone().with_correlation(&residuals);
    let parameters = 3 + usize::from(solution.with_offset);
    let (misfit, lack_of_fit) = assess(&residuals, None, None, &noise, parameters);
    let dof = m.saturating_sub(parameters).max(1) as f64;
    let variance = solution.rss / dof;
    let covariance = problem.covariance(&solution);
    let se = |k: usize| {
        covariance.as_ref().map_or(f64::NAN, |c| {
            lack_of_fit.se_inflation * (variance * c[(k, k)]).max(0.0).sqrt()
        })
    };
    let [a, r2, beta, c] = solution.p;
    Ok(EpgFit {
        t2_ms: 1e3 / r2,
        t2_ms_se: 1e3 * se(1) / (r2 * r2),
        r2_per_s: r2,
        r2_per_s_se: se(1),
        refocusing_angle_deg: beta.to_degrees(),
        refocusing_angle_deg_se: se(2).to_degrees(),
        amplitude: a,
        amplitude_se: se(0),
        offset: c,
        offset_se: if solution.with_offset { se(3) } else { 0.0 },
        t1_ms_assumed: t1_s * 1e3,
        chi2_red: lack_of_fit.chi2_red,
        snr: if noise.sd > 0.0 {
            a / noise.sd
        } else {
            f64::INFINITY
        },
        noise_sd: noise.sd,
        echoes_used: m,
        converged: solution.converged,
        iterations: solution.iterations,
        signal_kind: input.kind,
        offset_model: choice,
        noise,
        misfit,
        lack_of_fit,
    })
}

/// Which model gave the T2 the appliance uses.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum T2Model {
    /// The plain exponential ([`fit_mono`]).
    Exponential,
    /// The β fit ([`fit_mono_epg`]).
    StimulatedEchoes,
}

/// The appliance's T2 of one train: the plain fit, the β fit, and which is used and why.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpmgT2 {
    /// The plain exponential fit.
    pub exponential: MonoFit,
    /// The β fit, when it could be made.
    pub stimulated_echoes: Option<EpgFit>,
    /// The model whose T2 is used.
    pub used: T2Model,
    /// Why, in words.
    pub reason: String,
    /// The pre-test's score for stimulated echoes ([`refocusing_score`]; `None` when it could not
    /// be made, and the β fit was then made anyway).
    #[serde(default)]
    pub refocusing_score: Option<f64>,
}

impl CpmgT2 {
    /// R2 and its standard error from the model used.
    pub fn r2_per_s(&self) -> (f64, f64) {
        match (&self.used, &self.stimulated_echoes) {
            (T2Model::StimulatedEchoes, Some(epg)) => (epg.r2_per_s, epg.r2_per_s_se),
            _ => (self.exponential.r2_per_s, self.exponential.r2_per_s_se),
        }
    }

    /// Whether the model used misfits the echoes.
    pub fn misfit(&self) -> bool {
        match (&self.used, &self.stimulated_echoes) {
            (T2Model::StimulatedEchoes, Some(epg)) => epg.misfit,
            _ => self.exponential.misfit,
        }
    }

    /// χ²ᵣ and the standard-error widening of the model used.
    pub fn chi2_red_and_widening(&self) -> (f64, f64) {
        match (&self.used, &self.stimulated_echoes) {
            (T2Model::StimulatedEchoes, Some(epg)) => (epg.chi2_red, epg.lack_of_fit.se_inflation),
            _ => (
                self.exponential.chi2_red,
                self.exponential
                    .lack_of_fit
                    .as_ref()
                    .map_or(1.0, |l| l.se_inflation),
            ),
        }
    }
}

/// The pre-test's threshold: the β fit is made only when the score for stimulated echoes exceeds
/// this many standard deviations (one-sided; 16 % of trains from a perfect coil pass it).
pub const REFOCUSING_SCORE_THRESHOLD: f64 = 1.0;

/// The angle below 180° whose pattern the pre-test looks for (its direction; the test is valid
/// for any).
const SCREEN_ANGLE_DEG: f64 = 174.0;

/// The echoes whose pattern the pre-test looks at.
const SCREEN_ECHOES: usize = 64;

/// The cheap pre-test for stimulated echoes: the score of the plain exponential's residuals (over
/// every echo, the first included) along the pattern a refocusing angle a little below 180° adds,
/// after projecting out what amplitude, rate and offset can absorb, in standard deviations of the
/// noise. Without stimulated echoes it is standard normal; imperfect refocusing makes it large and
/// positive (the first echo falls short, the later ones decay more slowly). `None` when the echoes
/// are not at whole multiples of one spacing or there is no noise to measure it against.
///
/// It costs the graph of the first 64 echoes and one pass of sums over the train: a small
/// fraction of the β fit, which the appliance then makes only when the score asks for it.
pub fn refocusing_score(
    train: &EchoTrain,
    exponential: &MonoFit,
    options: &FitOptions,
    t1_s: f64,
) -> Option<f64> {
    let all_echoes = FitOptions {
        drop_first_echo: false,
        residuals: false,
        ..options.clone()
    };
    let input = FitInput::new(train, &all_echoes);
    let (times, y) = (input.times_s, &input.signal);
    let te_s = input.echo_spacing_s;
    let uniform = times
        .iter()
        .enumerate()
        .all(|(k, &t)| (t - (k as f64 + 1.0) * te_s).abs() <= 0.51 * te_s);
    let sigma = exponential.noise_sd;
    let (a, r2, c) = (
        exponential.amplitude,
        exponential.r2_per_s,
        exponential.offset,
    );
    if !(uniform && sigma > 0.0 && a > 0.0 && t1_s > 0.0) {
        return None;
    }
    // The pattern: echoes at the screening angle minus the pure exponential, per unit amplitude,
    // over the first echoes, where it is distinct (the first falls short, the second overshoots);
    // later it mostly slows the decay, which the plain fit's rate absorbs. Left at zero after
    // them, it is still a fixed direction, so the score stays standard normal without stimulated
    // echoes, and the graph stays small.
    let m = y.len();
    let mut pattern = vec![0.0; m.min(SCREEN_ECHOES)];
    cpmg_echoes_into(
        te_s,
        r2,
        1.0 / t1_s,
        SCREEN_ANGLE_DEG.to_radians(),
        EXACT_TOLERANCE,
        &mut pattern,
    );
    let with_offset = exponential.offset_model.used != OffsetModel::None;
    let cols = 2 + usize::from(with_offset);
    // Columns: what the plain model absorbs (e, −A·t·e[, 1]) and the pattern; r the residuals.
    let mut gram = [[0.0; 4]; 4];
    let mut cross = [0.0; 4];
    let mut row = [0.0; 4];
    for (k, (&t, &value)) in times.iter().zip(y).enumerate() {
        let e = (-r2 * t).exp();
        row[0] = e;
        row[1] = -a * t * e;
        if with_offset {
            row[2] = 1.0;
        }
        row[cols] = pattern.get(k).map_or(0.0, |p| p - e);
        let residual = value - a * e - c;
        for i in 0..=cols {
            cross[i] += row[i] * residual;
            for j in i..=cols {
                gram[i][j] += row[i] * row[j];
            }
        }
    }
    let gram = DMatrix::from_fn(cols + 1, cols + 1, |i, j| gram[i.min(j)][i.max(j)]);
    let cross = DVector::from_column_slice(&cross[..=cols]);
    // The pattern's part that the plain model cannot absorb: the Schur complement.
    let absorbed = gram.view((0, 0), (cols, cols)).clone_owned().cholesky()?;
    let coupling = gram.view((0, cols), (cols, 1)).clone_owned();
    let solved = absorbed.solve(&coupling);
    let remaining = gram[(cols, cols)] - (coupling.transpose() * &solved)[(0, 0)];
    let score = cross[cols] - (solved.transpose() * cross.rows(0, cols))[(0, 0)];
    (remaining > 0.0).then(|| score / (sigma * remaining.sqrt()))
}

/// The appliance's rule: the plain fit; the β fit when the pre-test ([`refocusing_score`]) sees a
/// sign of stimulated echoes; and the β fit's T2 used when it finds the refocusing clearly
/// imperfect: `β̂ + 1.96·se(β̂) <` [`REFOCUSING_IMPERFECT_BELOW_DEG`]. Near 180° the two agree and
/// the plain fit is the more precise.
///
/// # Errors
/// Whatever [`fit_mono`] refuses.
pub fn fit_cpmg_t2(train: &EchoTrain, options: &FitOptions, t1_s: f64) -> Result<CpmgT2, FitError> {
    let exponential = fit_mono(train, options)?;
    let score = refocusing_score(train, &exponential, options, t1_s);
    if let Some(z) = score
        && z <= REFOCUSING_SCORE_THRESHOLD
    {
        return Ok(CpmgT2 {
            exponential,
            stimulated_echoes: None,
            used: T2Model::Exponential,
            reason: format!(
                "no sign of stimulated echoes (pre-test score {z:.2} ≤ {REFOCUSING_SCORE_THRESHOLD}): plain exponential"
            ),
            refocusing_score: score,
        });
    }
    let stimulated_echoes = fit_mono_epg(train, options, t1_s).ok();
    let (used, reason) = match &stimulated_echoes {
        Some(epg) => {
            let upper = epg.refocusing_angle_deg + 1.96 * epg.refocusing_angle_deg_se;
            if upper.is_finite() && upper < REFOCUSING_IMPERFECT_BELOW_DEG {
                (
                    T2Model::StimulatedEchoes,
                    format!(
                        "refocusing angle {:.1}° ± {:.1}° is clearly below {REFOCUSING_IMPERFECT_BELOW_DEG}°: stimulated echoes modelled",
                        epg.refocusing_angle_deg, epg.refocusing_angle_deg_se
                    ),
                )
            } else {
                (
                    T2Model::Exponential,
                    format!(
                        "refocusing angle {:.1}° ± {:.1}° is not clearly below {REFOCUSING_IMPERFECT_BELOW_DEG}°: plain exponential",
                        epg.refocusing_angle_deg, epg.refocusing_angle_deg_se
                    ),
                )
            }
        }
        None => (
            T2Model::Exponential,
            "the refocusing angle could not be fitted: plain exponential".to_owned(),
        ),
    };
    Ok(CpmgT2 {
        exponential,
        stimulated_echoes,
        used,
        reason,
        refocusing_score: score,
    })
}

/// Where the β fit ended: `p = [A, R2, β, C]`.
#[derive(Clone, Copy, Debug)]
struct EpgSolution {
    p: [f64; 4],
    rss: f64,
    converged: bool,
    iterations: u32,
    with_offset: bool,
}

struct EpgProblem<'a> {
    y: &'a [f64],
    te_s: f64,
    r1_per_s: f64,
    /// How far the graph's echoes may be from the full graph's, per unit amplitude.
    tolerance: f64,
}

impl EpgProblem<'_> {
    fn echoes(&self, r2: f64, beta: f64) -> Vec<f64> {
        let mut e = vec![0.0; self.y.len()];
        cpmg_echoes_into(self.te_s, r2, self.r1_per_s, beta, self.tolerance, &mut e);
        e
    }

    /// Best A (and C) for given echoes shape, and the RSS.
    fn linear(&self, e: &[f64], with_offset: bool) -> Option<(f64, f64, f64)> {
        let n = e.len() as f64;
        let (se, see, sy, sye, syy) = e.iter().zip(self.y).fold(
            (0.0, 0.0, 0.0, 0.0, 0.0),
            |(se, see, sy, sye, syy), (e, y)| {
                (se + e, see + e * e, sy + y, sye + y * e, syy + y * y)
            },
        );
        let (a, c) = if with_offset {
            let det = see * n - se * se;
            if !(det > 1e-13 * see * n) {
                return None;
            }
            ((sye * n - se * sy) / det, (see * sy - se * sye) / det)
        } else {
            if !(see > 0.0) {
                return None;
            }
            (sye / see, 0.0)
        };
        let rss = syy - 2.0 * a * sye - 2.0 * c * sy + a * a * see + 2.0 * a * c * se + n * c * c;
        (a.is_finite() && c.is_finite()).then_some((a, c, rss.max(0.0)))
    }

    fn rss_at(&self, p: &[f64; 4]) -> f64 {
        let e = self.echoes(p[1], p[2]);
        e.iter()
            .zip(self.y)
            .map(|(e, y)| {
                let r = y - p[0] * e - p[3];
                r * r
            })
            .sum()
    }

    fn model(&self, s: &EpgSolution) -> Vec<f64> {
        self.echoes(s.p[1], s.p[2])
            .iter()
            .map(|e| s.p[0] * e + s.p[3])
            .collect()
    }

    /// The Jacobian columns (∂/∂A, ∂/∂R2, ∂/∂β[, ∂/∂C]) at `p`, from the graph's exact
    /// derivatives, and the echoes themselves.
    fn jacobian(&self, p: &[f64; 4], with_offset: bool) -> (DMatrix<f64>, Vec<f64>) {
        let m = self.y.len();
        let cols = 3 + usize::from(with_offset);
        let mut echoes = vec![[0.0; 3]; m];
        cpmg_echoes_with_derivatives(
            self.te_s,
            p[1],
            self.r1_per_s,
            p[2],
            self.tolerance,
            &mut echoes,
        );
        let j = DMatrix::from_fn(m, cols, |i, c| match c {
            0 => echoes[i][0],
            1 => p[0] * echoes[i][1],
            2 => p[0] * echoes[i][2],
            _ => 1.0,
        });
        let e = echoes.iter().map(|echo| echo[0]).collect();
        (j, e)
    }

    fn covariance(&self, s: &EpgSolution) -> Option<DMatrix<f64>> {
        let (j, _) = self.jacobian(&s.p, s.with_offset);
        let jtj = j.tr_mul(&j);
        let inverse = jtj.cholesky()?.inverse();
        inverse.iter().all(|v| v.is_finite()).then_some(inverse)
    }

    /// Grid over β at `r2_seed`, then Levenberg–Marquardt on (A, R2, β[, C]).
    fn solve(&self, r2_seed: f64, with_offset: bool) -> Option<EpgSolution> {
        let mut best: Option<([f64; 4], f64)> = None;
        for degrees in [
            180.0, 175.0, 170.0, 165.0, 160.0, 150.0, 140.0, 130.0, 120.0, 110.0, 100.0, 90.0,
            75.0, 60.0,
        ] {
            let beta = f64::to_radians(degrees);
            let e = self.echoes(r2_seed, beta);
            if let Some((a, c, rss)) = self.linear(&e, with_offset)
                && best.as_ref().is_none_or(|b| rss < b.1)
            {
                best = Some(([a, r2_seed, beta, c], rss));
            }
        }
        let (mut p, mut rss) = best?;
        // Start just inside 180°, where the graph has a slope in β.
        p[2] = p[2].min(f64::to_radians(179.0));
        rss = self.rss_at(&p).min(rss);
        let cols = 3 + usize::from(with_offset);
        let mut lambda = 1e-3;
        let mut converged = false;
        let mut iterations = 0;
        while iterations < MAX_ITERATIONS {
            iterations += 1;
            let (j, e) = self.jacobian(&p, with_offset);
            let r = DVector::from_fn(self.y.len(), |i, _| self.y[i] - p[0] * e[i] - p[3]);
            let jtj = j.tr_mul(&j);
            let jtr = j.tr_mul(&r);
            // Done once the Gauss–Newton step is below a hundredth of every parameter's standard
            // error: a further pass over the graph could move nothing the data can see.
            if let Some(inverse) = jtj.clone().cholesky().map(|c| c.inverse()) {
                let step = &inverse * &jtr;
                let variance = rss / self.y.len().saturating_sub(cols).max(1) as f64;
                let negligible = (0..cols).all(|d| {
                    let se = (variance * inverse[(d, d)]).max(0.0).sqrt();
                    step[d].abs() <= (1e-2 * se).max(1e-12 * p[d].abs())
                });
                if negligible {
                    converged = true;
                    break;
                }
            }
            let mut accepted = false;
            while lambda < 1e12 {
                let mut damped = jtj.clone();
                for d in 0..cols {
                    damped[(d, d)] += lambda * jtj[(d, d)].max(1e-300);
                }
                let Some(step) = damped.cholesky().map(|c| c.solve(&jtr)) else {
                    lambda *= 10.0;
                    continue;
                };
                let mut trial = p;
                for (d, value) in step.iter().enumerate() {
                    trial[d] += value;
                }
                // Keep β in (0, π]: the graph is symmetric about π.
                if trial[2] > std::f64::consts::PI {
                    trial[2] = 2.0 * std::f64::consts::PI - trial[2];
                }
                if trial[1] > 0.0 && trial[2] > 0.05 && trial.iter().all(|v| v.is_finite()) {
                    let trial_rss = self.rss_at(&trial);
                    if trial_rss <= rss {
                        let small_step = (trial[1] - p[1]).abs() <= 1e-7 * p[1]
                            && (trial[2] - p[2]).abs() <= 1e-7;
                        let small_gain = rss - trial_rss <= 1e-12 * rss.max(1e-300);
                        converged = small_step || small_gain;
                        p = trial;
                        rss = trial_rss;
                        lambda = (lambda / 10.0).max(1e-12);
                        accepted = true;
                        break;
                    }
                }
                lambda *= 10.0;
            }
            if !accepted {
                converged = true;
                break;
            }
            if converged {
                break;
            }
        }
        Some(EpgSolution {
            p,
            rss,
            converged,
            iterations,
            with_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpmgSimulation, Refocusing};

    fn simulation(beta_deg: f64, noise_sd: f64) -> CpmgSimulation {
        let mut sim = CpmgSimulation::mono(1.0, 0.1, 0.001, 500);
        sim.noise_sd = noise_sd;
        sim.phase_rad = 0.4;
        sim.refocusing = Refocusing {
            angle_deg: beta_deg,
            t1_s: 1.0,
        };
        sim
    }

    #[test]
    fn noiseless_stimulated_echoes_give_t2_and_beta_back() {
        for beta in [120.0, 150.0, 170.0] {
            let fit = fit_mono_epg(
                &simulation(beta, 0.0).simulate(1),
                &FitOptions::default(),
                1.0,
            )
            .expect("a clean train");
            assert!((fit.t2_ms / 100.0 - 1.0).abs() < 1e-5, "{beta}°: {fit:?}");
            assert!(
                (fit.refocusing_angle_deg - beta).abs() < 1e-3,
                "{beta}°: {fit:?}"
            );
            assert!(fit.converged);
        }
    }

    #[test]
    fn the_rule_keeps_the_plain_fit_at_180_and_models_150() {
        let perfect = fit_cpmg_t2(
            &simulation(180.0, 0.002).simulate(2),
            &FitOptions::default(),
            1.0,
        )
        .expect("clean");
        assert_eq!(perfect.used, T2Model::Exponential, "{}", perfect.reason);
        let imperfect = fit_cpmg_t2(
            &simulation(150.0, 0.002).simulate(3),
            &FitOptions::default(),
            1.0,
        )
        .expect("clean");
        assert_eq!(
            imperfect.used,
            T2Model::StimulatedEchoes,
            "{}",
            imperfect.reason
        );
        let (r2, se) = imperfect.r2_per_s();
        assert!((r2 - 10.0).abs() < 4.0 * se, "R2 {r2} ± {se}");
        // The plain fit of the same train is biased and says it misfits.
        assert!(
            imperfect.exponential.misfit,
            "{:?}",
            imperfect.exponential.lack_of_fit
        );
    }
}
