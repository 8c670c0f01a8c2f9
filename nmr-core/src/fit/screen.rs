//! The gate every multi-parameter fit passes first: is there a measurable decay in this train?
//!
//! A mono-exponential-plus-offset fit (by the same variable-projection code the bi fit uses) must
//! show its amplitude at [`MIN_SIGNAL_SIGMAS`] standard errors, and its T2 must lie between two echo
//! spacings and ten times the last echo time. Otherwise the train is refused with a clear error
//! instead of producing components or a distribution made of noise.
//!
//! Not a replacement for the lead's mono fit (`fit::mono`), which is the reported mono result.

use super::FitError;
use super::exp_sum::{ExpSumFit, RateBounds, fit_exp_sum};

/// The mono amplitude must exceed this many of its standard errors.
pub(crate) const MIN_SIGNAL_SIGMAS: f64 = 5.0;
/// A mono T2 above this multiple of the last echo time is beyond the window.
pub(crate) const MAX_T2_OVER_WINDOW: f64 = 10.0;
/// A mono T2 below this multiple of the echo spacing is too fast to measure.
pub(crate) const MIN_T2_OVER_ECHO_SPACING: f64 = 2.0;

/// Rate bounds for every exponential search on a train: T2 from TE/4 to 20 × the last echo time.
pub(crate) fn rate_bounds(echo_spacing_s: f64, t_last_s: f64) -> RateBounds {
    RateBounds {
        min_per_s: 1.0 / (20.0 * t_last_s),
        max_per_s: 4.0 / echo_spacing_s,
    }
}

/// Fits the mono comparison model and refuses noise, decays beyond the window and decays faster
/// than two echo spacings.
pub(crate) fn screen_mono(
    times_s: &[f64],
    y: &[f64],
    echo_spacing_s: f64,
) -> Result<ExpSumFit, FitError> {
    let t_last = *times_s.last().ok_or(FitError::NoSignal)?;
    let mono = fit_exp_sum(times_s, y, 1, rate_bounds(echo_spacing_s, t_last))
        .ok_or(FitError::NoSignal)?;
    let amplitude = mono.amplitudes[0];
    let significant = mono
        .covariance(times_s)
        .is_some_and(|c| amplitude > MIN_SIGNAL_SIGMAS * c[(0, 0)].sqrt());
    let t2_s = 1.0 / mono.rates_per_s[0];
    if !significant {
        // A decay much longer than the window also leaves the amplitude undetermined (it trades
        // off against the offset): say which.
        return Err(if t2_s > t_last {
            FitError::T2BeyondWindow
        } else {
            FitError::NoSignal
        });
    }
    if t2_s > MAX_T2_OVER_WINDOW * t_last {
        return Err(FitError::T2BeyondWindow);
    }
    if t2_s < MIN_T2_OVER_ECHO_SPACING * echo_spacing_s {
        return Err(FitError::T2BelowEchoSpacing);
    }
    Ok(mono)
}
