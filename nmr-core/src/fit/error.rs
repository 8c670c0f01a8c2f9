//! Why a fit gave no estimate.

use thiserror::Error;

/// A train from which a fit cannot give a trustworthy estimate, and why.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum FitError {
    /// Not enough echoes for the model's parameters.
    #[error("too few echoes: {used} used, the model needs at least {needed}")]
    TooFewEchoes {
        /// Echoes available to the fit (after dropping the first).
        used: usize,
        /// Echoes the model needs.
        needed: usize,
    },
    /// No decaying signal stands above the noise.
    #[error(
        "no decaying signal above the noise (amplitude {amplitude:.4} ± {amplitude_se:.4}, noise SD {noise_sd:.4})"
    )]
    NoSignal {
        /// Fitted amplitude.
        amplitude: f64,
        /// Its standard error.
        amplitude_se: f64,
        /// Noise per echo.
        noise_sd: f64,
    },
    /// The signal barely decays within the acquisition window, so T2 cannot be told from the offset.
    #[error(
        "T2 is not identifiable: it is far longer than the {window_ms:.3} ms acquisition window (estimate {t2_ms:.4} ms, relative SE {relative_se:.2})"
    )]
    T2BeyondWindow {
        /// The (untrustworthy) estimate.
        t2_ms: f64,
        /// Time of the last echo used.
        window_ms: f64,
        /// SE(T2)/T2 of the estimate.
        relative_se: f64,
    },
    /// The signal is gone within about two echoes, so the decay is not sampled.
    #[error(
        "T2 is not identifiable: the signal is gone within {echoes_with_signal} echo(es) of {te_ms:.4} ms; shorten the echo spacing"
    )]
    T2BelowEchoSpacing {
        /// Echo spacing.
        te_ms: f64,
        /// Echoes used whose expected signal exceeds three noise SDs.
        echoes_with_signal: usize,
    },
    /// The model's parameters are not determined by these data.
    #[error("{what} is not identifiable from these data: {detail}")]
    NotIdentifiable {
        /// Which estimate.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The caller's fit options are unusable (e.g. an empty or inverted T2 range).
    #[error("invalid fit options: {detail}")]
    InvalidOptions {
        /// What is wrong.
        detail: String,
    },
}
