//! Fitting echo trains: the numbers every count stands on.
//!
//! Each fit takes an [`EchoTrain`](crate::EchoTrain), phases it, and returns a report (estimates,
//! standard errors from the covariance, reduced χ², SNR, echoes used, residuals on request and a
//! convergence flag) or a [`FitError`] that says why the data cannot give an answer. A fit never
//! returns a silent nonsense number: a T2 the data cannot identify is an error, and a fit that did
//! not converge says so in its report.
//!
//! - [`fit_mono`]: `A·exp(−t/T2) + C` by variable projection, seeded by a log-linear fit, with a
//!   Rician noise-floor model for magnitude-only data.
//! - [`fit_bi`]: `A_f·exp(−t/T2f) + A_s·exp(−t/T2s) + C` by variable projection, with the
//!   mono-versus-bi [`ModelComparison`] (F-test, AICc, BIC, identifiability); magnitude-only data
//!   are refined against the Rician mean, as for the mono fit.
//! - [`fit_spectrum`]: the T2 distribution by SVD-compressed, Tikhonov-regularised NNLS with α
//!   chosen by GCV.
//! - [`fit_mono_epg`]: T2 with the refocusing angle β (stimulated echoes, extended phase graph), and
//!   [`fit_cpmg_t2`], the appliance's rule for when to use it.
//!
//! Every fit reports the signal kind it used, its offset model ([`offset`]) and its misfit
//! ([`misfit`]).
//!
//! Not here: what the fits mean for a patient (see the assay), or where trains come from.

pub mod bi;
mod echo_times;
pub mod epg_mono;
mod error;
mod exp_sum;
pub mod misfit;
mod mono;
mod nnls;
pub mod offset;
mod rician;
mod rician_exp_sum;
pub mod spectrum;

pub use bi::{BiFit, BiProblem, Model, ModelComparison, fit_bi};
pub use epg_mono::{
    CpmgT2, DEFAULT_T1_S, EpgFit, REFOCUSING_IMPERFECT_BELOW_DEG, REFOCUSING_SCORE_THRESHOLD,
    T2Model, fit_cpmg_t2, fit_mono_epg, refocusing_score,
};
pub use error::FitError;
pub use misfit::{LackOfFit, MISFIT_SIGNIFICANCE};
pub use mono::{MonoFit, fit_mono};
pub use offset::{OFFSET_SIGNIFICANCE, OffsetChoice, OffsetModel};
pub use rician::rician_mean;
pub use spectrum::{
    AlphaChoice, AlphaMethod, Baseline, ExcludedPeak, MINOR_PEAK_FRACTION, SpectrumFlag,
    SpectrumOptions, SpectrumPeak, T2Spectrum, fit_spectrum,
};

use serde::{Deserialize, Serialize};

/// Options shared by the fits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    /// Leave out the first echo, whose amplitude imperfect refocusing biases (default: true).
    pub drop_first_echo: bool,
    /// Return the residuals of the echoes used (default: false).
    pub residuals: bool,
    /// The offset model (default: [`OffsetModel::Free`]; the appliance uses the default).
    #[serde(default)]
    pub offset: OffsetModel,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            drop_first_echo: true,
            residuals: false,
            offset: OffsetModel::Free,
        }
    }
}

/// The echoes a fit uses: times and the phased signal, after dropping the first echo if asked.
/// The times are borrowed from the train and the signal is the phased channel itself, so preparing
/// a fit copies nothing.
pub(crate) struct FitInput<'a> {
    pub times_s: &'a [f64],
    pub signal: Vec<f64>,
    pub noise_sd: f64,
    pub noise: crate::noise::NoiseEstimate,
    pub phase_rad: f64,
    pub echo_spacing_s: f64,
    pub magnitude: bool,
    pub kind: crate::SignalKind,
    /// The phased value of the echo left out, if one was.
    pub dropped_echo: Option<f64>,
}

impl<'a> FitInput<'a> {
    pub(crate) fn new(train: &'a crate::EchoTrain, options: &FitOptions) -> Self {
        let phased = train.phase();
        let skip = usize::from(options.drop_first_echo && train.len() > 1);
        let dropped_echo = (skip == 1).then(|| phased.real[0]);
        let mut signal = phased.real;
        signal.drain(..skip);
        Self {
            times_s: &train.times_s()[skip..],
            signal,
            noise_sd: phased.noise_sd,
            noise: phased.noise,
            phase_rad: phased.angle_rad,
            echo_spacing_s: train.echo_spacing_s(),
            magnitude: train.is_magnitude(),
            kind: train.signal_kind(),
            dropped_echo,
        }
    }
}
