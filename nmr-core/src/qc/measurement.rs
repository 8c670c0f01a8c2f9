//! QC of single measurements and of a run's replicates: the checks a technician needs before a
//! count is released.
//!
//! Each check compares a number with a limit from [`MeasurementQcLimits`] (documented defaults)
//! and raises a [`QcFlag`] with a stable code, a severity and a message saying what was seen and
//! what to do. Inputs are plain numbers ([`MeasurementQcInput`]), so the checks do not depend on
//! how the echo train was fitted. Westgard rules over control materials are in
//! [`super::westgard`].

use serde::{Deserialize, Serialize};

use super::flag::{QcCode, QcFlag, Severity};

/// Limits of the per-measurement checks. `Default` gives the documented defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasurementQcLimits {
    /// SNR (amplitude / noise SD of the fitted train) below which a measurement is held.
    /// Default 50: at 500 echoes and T2 ≈ 300 ms the R2 precision is then still ≈ 1 %.
    pub min_snr_hold: f64,
    /// SNR below which a measurement is flagged as a warning. Default 100.
    pub min_snr_warn: f64,
    /// Largest allowed relative difference between a measurement's first-echo amplitude and the
    /// expected fill (a reference amplitude, or the median of the run). Default 0.15 (15 %).
    pub max_fill_deviation: f64,
    /// Largest allowed spread (max − min) of magnet temperature over a run, °C. Default 0.5.
    pub max_temp_drift_c: f64,
    /// Largest allowed CV of a tube's replicate R2 values, as a fraction. Default 0.02 (2 %).
    pub max_replicate_cv: f64,
}

impl Default for MeasurementQcLimits {
    fn default() -> Self {
        MeasurementQcLimits {
            min_snr_hold: 50.0,
            min_snr_warn: 100.0,
            max_fill_deviation: 0.15,
            max_temp_drift_c: 0.5,
            max_replicate_cv: 0.02,
        }
    }
}

/// What the per-measurement checks look at, for one echo train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasurementQcInput {
    /// What the measurement is (file name, tube and replicate).
    pub subject: String,
    /// Fitted amplitude / noise SD.
    pub snr: f64,
    /// Amplitude of the signal at the first echo (fitted A·e^(−TE/T2) + C, or the first phased
    /// echo), in the train's units.
    pub first_echo_amplitude: f64,
    /// Did the T2 fit converge?
    pub converged: bool,
    /// Did a model comparison prefer two exponentials? `None` when no comparison was made.
    pub biexponential_preferred: Option<bool>,
    /// Magnet temperature at the measurement, °C, if recorded.
    pub temp_c: Option<f64>,
    /// The fit's misfit, when the model did not describe the echoes (see
    /// `nmr_core::fit::misfit`).
    #[serde(default)]
    pub misfit: Option<MisfitSeen>,
}

/// What a misfitting fit showed: its χ² against the noise and how much its errors were widened.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MisfitSeen {
    /// χ²ᵣ against the independent noise estimate.
    pub chi2_red: f64,
    /// The factor the standard errors were widened by.
    pub se_widening: f64,
}

/// Checks one measurement. `expected_fill_amplitude` is the amplitude a correctly filled tube
/// gives (a reference, or the median of the run); `None` skips the fill check.
pub fn check_measurement(
    input: &MeasurementQcInput,
    expected_fill_amplitude: Option<f64>,
    limits: &MeasurementQcLimits,
) -> Vec<QcFlag> {
    let mut flags = Vec::new();
    let flag = |code, severity, message: String| QcFlag {
        code,
        severity,
        subject: input.subject.clone(),
        message,
    };
    if !input.converged {
        flags.push(flag(
            QcCode::FitNotConverged,
            Severity::Hold,
            "The T2 fit did not converge: the echo train may be empty, truncated or corrupted. \
             Re-measure the tube."
                .to_string(),
        ));
    }
    if !input.snr.is_finite() || input.snr < limits.min_snr_hold {
        flags.push(flag(
            QcCode::LowSnr,
            Severity::Hold,
            format!(
                "Signal-to-noise ratio {:.0} is below the minimum of {:.0}. Check the tube is \
                 filled and seated, and re-tune the instrument before re-measuring.",
                input.snr, limits.min_snr_hold
            ),
        ));
    } else if input.snr < limits.min_snr_warn {
        flags.push(flag(
            QcCode::LowSnr,
            Severity::Warn,
            format!(
                "Signal-to-noise ratio {:.0} is below the usual {:.0}: the result is less precise.",
                input.snr, limits.min_snr_warn
            ),
        ));
    }
    if let Some(expected) = expected_fill_amplitude.filter(|e| e.is_finite() && *e > 0.0) {
        let deviation = input.first_echo_amplitude / expected - 1.0;
        if !deviation.is_finite() || deviation < -limits.max_fill_deviation {
            flags.push(flag(
                QcCode::LowFill,
                Severity::Hold,
                format!(
                    "First-echo signal is {:.0} % below the expected fill: likely an air bubble or \
                     a short fill. Tap the tube, check the volume and re-measure.",
                    -deviation * 100.0
                ),
            ));
        } else if deviation > limits.max_fill_deviation {
            flags.push(flag(
                QcCode::HighFill,
                Severity::Hold,
                format!(
                    "First-echo signal is {:.0} % above the expected fill: possible clot, \
                     overfill or wrong tube. Inspect the sample and re-measure.",
                    deviation * 100.0
                ),
            ));
        }
    }
    if let Some(seen) = input.misfit {
        flags.push(flag(
            QcCode::Misfit,
            Severity::Warn,
            format!(
                "The echo train does not follow the decay model within its noise (χ² {:.2} times \
                 the noise); its T2 uncertainty was widened {:.1}×. Check for a bubble, a clot, \
                 settling or a temperature change during the reading, and re-measure if it \
                 persists.",
                seen.chi2_red, seen.se_widening
            ),
        ));
    }
    if input.biexponential_preferred == Some(true) {
        flags.push(flag(
            QcCode::BiexponentialPreferred,
            Severity::Warn,
            "The signal decays with two components: the sample may hold a clot, settled cells or \
             particle clusters. Mix gently and re-measure if it persists."
                .to_string(),
        ));
    }
    flags
}

/// Checks the temperature drift over a run's measurements (max − min of the recorded
/// temperatures). Measurements without a temperature are ignored.
pub fn check_temperature_drift(
    measurements: &[MeasurementQcInput],
    limits: &MeasurementQcLimits,
) -> Option<QcFlag> {
    let temps: Vec<f64> = measurements
        .iter()
        .filter_map(|m| m.temp_c)
        .filter(|t| t.is_finite())
        .collect();
    let max = temps.iter().copied().reduce(f64::max)?;
    let min = temps.iter().copied().reduce(f64::min)?;
    (max - min > limits.max_temp_drift_c).then(|| QcFlag {
        code: QcCode::TemperatureDrift,
        severity: Severity::Hold,
        subject: "run".to_string(),
        message: format!(
            "Magnet temperature moved {:.2} °C during the run (limit {:.2} °C): the field and R2 \
             drift with it. Let the instrument settle and repeat the run.",
            max - min,
            limits.max_temp_drift_c
        ),
    })
}

/// Checks the CV of one tube's replicate R2 values.
pub fn check_replicate_cv(tube: &str, cv: f64, limits: &MeasurementQcLimits) -> Option<QcFlag> {
    (!cv.is_finite() || cv > limits.max_replicate_cv).then(|| QcFlag {
        code: QcCode::ReplicateCvHigh,
        severity: Severity::Hold,
        subject: tube.to_string(),
        message: format!(
            "The replicate R2 values of the {tube} differ by a CV of {:.1} % (limit {:.1} %). \
             Check mixing and filling, then re-measure the tube.",
            cv * 100.0,
            limits.max_replicate_cv * 100.0
        ),
    })
}

/// Names a replicate reading that differs from the others of its tube beyond its uncertainty (see
/// [`crate::assay::find_outlier`] for the rule); `labels` name the readings in order.
pub fn check_replicate_outlier(
    tube: &str,
    labels: &[String],
    replicates: &[crate::assay::Replicate],
) -> Option<QcFlag> {
    let outlier = crate::assay::find_outlier(replicates)?;
    let label = labels
        .get(outlier.index)
        .cloned()
        .unwrap_or_else(|| format!("{tube} reading {}", outlier.index + 1));
    Some(QcFlag {
        code: QcCode::ReplicateOutlier,
        severity: Severity::Warn,
        subject: label.clone(),
        message: format!(
            "{label} differs from the other readings of the {tube}: R2 {:.4} /s against {:.4} /s \
             ({:+.1} %, {:.1} standard errors). Check that reading (fill, bubbles, temperature) \
             and re-measure it.",
            outlier.r2_per_s,
            outlier.others_r2_per_s,
            100.0 * outlier.relative_difference,
            outlier.z
        ),
    })
}

/// The median first-echo amplitude of a run: the expected fill when no reference is configured.
pub fn median_fill_amplitude(measurements: &[MeasurementQcInput]) -> Option<f64> {
    let mut amplitudes: Vec<f64> = measurements
        .iter()
        .map(|m| m.first_echo_amplitude)
        .filter(|a| a.is_finite())
        .collect();
    if amplitudes.is_empty() {
        return None;
    }
    amplitudes.sort_by(f64::total_cmp);
    let n = amplitudes.len();
    Some(if n % 2 == 1 {
        amplitudes[n / 2]
    } else {
        0.5 * (amplitudes[n / 2 - 1] + amplitudes[n / 2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> MeasurementQcInput {
        MeasurementQcInput {
            subject: "control 1".to_string(),
            snr: 300.0,
            first_echo_amplitude: 1.0,
            converged: true,
            biexponential_preferred: Some(false),
            temp_c: Some(25.0),
            misfit: None,
        }
    }

    fn codes(flags: &[QcFlag]) -> Vec<(QcCode, Severity)> {
        flags.iter().map(|f| (f.code, f.severity)).collect()
    }

    #[test]
    fn a_good_measurement_raises_nothing() {
        assert!(check_measurement(&good(), Some(1.05), &MeasurementQcLimits::default()).is_empty());
    }

    #[test]
    fn each_problem_raises_its_flag() {
        let limits = MeasurementQcLimits::default();
        let mut m = good();
        m.snr = 70.0;
        assert_eq!(
            codes(&check_measurement(&m, None, &limits)),
            [(QcCode::LowSnr, Severity::Warn)]
        );
        m.snr = 20.0;
        assert_eq!(
            codes(&check_measurement(&m, None, &limits)),
            [(QcCode::LowSnr, Severity::Hold)]
        );
        let mut m = good();
        m.first_echo_amplitude = 0.7;
        assert_eq!(
            codes(&check_measurement(&m, Some(1.0), &limits)),
            [(QcCode::LowFill, Severity::Hold)]
        );
        m.first_echo_amplitude = 1.3;
        assert_eq!(
            codes(&check_measurement(&m, Some(1.0), &limits)),
            [(QcCode::HighFill, Severity::Hold)]
        );
        m.first_echo_amplitude = 1.1;
        assert!(check_measurement(&m, Some(1.0), &limits).is_empty());
        let mut m = good();
        m.converged = false;
        m.biexponential_preferred = Some(true);
        assert_eq!(
            codes(&check_measurement(&m, None, &limits)),
            [
                (QcCode::FitNotConverged, Severity::Hold),
                (QcCode::BiexponentialPreferred, Severity::Warn)
            ]
        );
        let flags = check_measurement(&m, None, &limits);
        assert!(flags[0].message.contains("did not converge"));
    }

    #[test]
    fn run_level_checks() {
        let limits = MeasurementQcLimits::default();
        let mut run = vec![good(), good(), good()];
        assert!(check_temperature_drift(&run, &limits).is_none());
        run[2].temp_c = Some(25.6);
        let flag = check_temperature_drift(&run, &limits).expect("drift");
        assert_eq!(flag.code, QcCode::TemperatureDrift);
        assert!(flag.message.contains("0.60 °C"), "{}", flag.message);
        assert!(check_replicate_cv("control tube", 0.01, &limits).is_none());
        assert_eq!(
            check_replicate_cv("control tube", 0.03, &limits).map(|f| f.code),
            Some(QcCode::ReplicateCvHigh)
        );
        run[1].first_echo_amplitude = 3.0;
        run[2].first_echo_amplitude = 2.0;
        assert_eq!(median_fill_amplitude(&run), Some(2.0));
    }
}
