//! T2 fitting (temporary module root on branch `spectrum`; replaced by main's on merge).

pub mod bi;
mod exp_sum;
mod nnls;
mod screen;
pub mod spectrum;

/// Temporary stand-in for main's `FitError` until the merge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Too few echoes.
    #[error("too few echoes: {used} used, {needed} needed")]
    TooFewEchoes { used: usize, needed: usize },
    /// No signal.
    #[error("no signal")]
    NoSignal,
    /// T2 beyond the window.
    #[error("T2 beyond window")]
    T2BeyondWindow,
    /// T2 below echo spacing.
    #[error("T2 below echo spacing")]
    T2BelowEchoSpacing,
}
