//! One replicate reading: a CPMG train measured, fitted and checked, ready to be committed.

use nmr_core::EchoTrain;
use nmr_core::assay::Replicate;
use nmr_core::fit::{
    CpmgT2, DEFAULT_T1_S, EpgFit, FitOptions, MonoFit, SpectrumOptions, T2Model, fit_cpmg_t2,
    fit_spectrum,
};
use nmr_core::qc::{
    BiexponentialOptions, MeasurementQcInput, MeasurementQcLimits, MisfitSeen, QcCode, QcFlag,
    Severity, check_measurement, compare_mono_bi,
};
use serde::Serialize;

use crate::store::measurements::{FitOutcome, StoredFit, T2Distribution};

/// What was made of one echo train.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reading {
    /// Which reading, e.g. "quad-marker tube reading 2".
    pub subject: String,
    /// The mono-exponential fit, or why it failed.
    pub fit: Result<MonoFit, String>,
    /// The fit of T2 with the refocusing angle, when the exponential misfitted.
    pub stimulated_echoes: Option<EpgFit>,
    /// Which model's T2 the reading uses, and why (`nmr_core::fit::fit_cpmg_t2`'s rule).
    pub t2_model: T2Model,
    /// Why that model.
    pub t2_model_reason: String,
    /// Fitted signal at the first echo, A·e^(−t₁/T2) + C.
    pub first_echo_amplitude: Option<f64>,
    /// Whether two exponentials describe the decay better (`None`: not compared).
    pub biexponential_preferred: Option<bool>,
    /// Magnet temperature during the reading, °C.
    pub temp_c: Option<f64>,
}

impl Reading {
    /// Fits `train` (default fit options, the refocusing rule of `fit_cpmg_t2`) and compares mono
    /// with bi-exponential.
    pub fn fit(subject: String, train: &EchoTrain) -> Self {
        let chosen = fit_cpmg_t2(train, &FitOptions::default(), DEFAULT_T1_S);
        let (fit, stimulated_echoes, t2_model, t2_model_reason) = match chosen {
            Ok(CpmgT2 {
                exponential,
                stimulated_echoes,
                used,
                reason,
                ..
            }) => (Ok(exponential), stimulated_echoes, used, reason),
            Err(e) => (
                Err(e.to_string()),
                None,
                T2Model::Exponential,
                "no fit".to_owned(),
            ),
        };
        let first_time_s = train.times_s().first().copied().unwrap_or(0.0);
        let first_echo_amplitude = fit
            .as_ref()
            .ok()
            .map(|f| f.amplitude * (-first_time_s * 1000.0 / f.t2_ms).exp() + f.offset);
        let biexponential_preferred = fit.as_ref().ok().and_then(|_| {
            compare_mono_bi(train, &BiexponentialOptions::default()).map(|check| check.preferred)
        });
        Self {
            subject,
            fit,
            stimulated_echoes,
            t2_model,
            t2_model_reason,
            first_echo_amplitude,
            biexponential_preferred,
            temp_c: train.acquisition().temp_c,
        }
    }

    /// A reading rebuilt from its stored fit (e.g. to recompute a result), with the model choice
    /// the stored fit recorded.
    pub fn from_stored(subject: String, stored: Option<&StoredFit>, temp_c: Option<f64>) -> Self {
        Self {
            subject,
            fit: match stored.map(|s| &s.outcome) {
                Some(FitOutcome::Mono(fit)) => Ok(fit.clone()),
                Some(FitOutcome::Error(error)) => Err(error.clone()),
                None => Err("not fitted".to_owned()),
            },
            stimulated_echoes: stored.and_then(|s| s.stimulated_echoes.clone()),
            t2_model: stored.map_or(T2Model::Exponential, |s| s.t2_model),
            t2_model_reason: stored.map_or_else(String::new, |s| s.t2_model_reason.clone()),
            first_echo_amplitude: stored.and_then(|s| s.first_echo_amplitude),
            biexponential_preferred: stored.and_then(|s| s.biexponential_preferred),
            temp_c,
        }
    }

    /// The reading as an assay replicate, when the fit succeeded: R2 of the model used.
    pub fn replicate(&self) -> Option<Replicate> {
        let fit = self.fit.as_ref().ok()?;
        Some(match (&self.t2_model, &self.stimulated_echoes) {
            (T2Model::StimulatedEchoes, Some(epg)) => Replicate::new(epg.r2_per_s, epg.r2_per_s_se),
            _ => Replicate::new(fit.r2_per_s, fit.r2_per_s_se),
        })
    }

    /// The misfit of the model used, if it misfits.
    fn misfit(&self) -> Option<MisfitSeen> {
        let fit = self.fit.as_ref().ok()?;
        match (&self.t2_model, &self.stimulated_echoes) {
            (T2Model::StimulatedEchoes, Some(epg)) => epg.misfit.then_some(MisfitSeen {
                chi2_red: epg.chi2_red,
                se_widening: epg.lack_of_fit.se_inflation,
            }),
            _ => fit.misfit.then(|| MisfitSeen {
                chi2_red: fit.chi2_red,
                se_widening: fit.lack_of_fit.as_ref().map_or(1.0, |l| l.se_inflation),
            }),
        }
    }

    /// What the per-measurement QC checks look at, when the fit succeeded.
    pub fn qc_input(&self) -> Option<MeasurementQcInput> {
        let fit = self.fit.as_ref().ok()?;
        Some(MeasurementQcInput {
            subject: self.subject.clone(),
            snr: fit.snr,
            first_echo_amplitude: self.first_echo_amplitude.unwrap_or(f64::NAN),
            converged: fit.converged,
            biexponential_preferred: self.biexponential_preferred,
            temp_c: self.temp_c,
            misfit: self.misfit(),
        })
    }

    /// The flags of this reading on its own (no fill reference yet): a failed fit holds.
    pub fn flags(&self, limits: &MeasurementQcLimits) -> Vec<QcFlag> {
        match self.qc_input() {
            Some(input) => check_measurement(&input, None, limits),
            None => vec![fit_failed_flag(
                &self.subject,
                self.fit.as_ref().err().map_or("no fit", String::as_str),
            )],
        }
    }

    /// The fit as stored with the measurement.
    pub fn stored_fit(&self) -> StoredFit {
        StoredFit {
            outcome: match &self.fit {
                Ok(fit) => FitOutcome::Mono(fit.clone()),
                Err(error) => FitOutcome::Error(error.clone()),
            },
            stimulated_echoes: self.stimulated_echoes.clone(),
            t2_model: self.t2_model,
            t2_model_reason: self.t2_model_reason.clone(),
            biexponential_preferred: self.biexponential_preferred,
            first_echo_amplitude: self.first_echo_amplitude,
        }
    }
}

/// The T2 distribution of a train (regularised NNLS with the default options), as it is stored
/// with its measurement: computed once, when the train is measured (or, for a measurement stored
/// before distributions were kept, when its run is first viewed), never on a page view. A
/// distribution with a non-finite bin is stored as failed, naming it.
pub fn t2_distribution(train: &EchoTrain) -> T2Distribution {
    match fit_spectrum(train, &SpectrumOptions::default()) {
        Ok(spectrum) => {
            let finite = spectrum
                .t2_bins_ms
                .iter()
                .chain(&spectrum.amplitudes)
                .all(|v| v.is_finite());
            if !finite || !spectrum.alpha.is_finite() {
                return T2Distribution::Failed {
                    reason: "the inversion gave a non-finite bin or regularisation weight".into(),
                };
            }
            T2Distribution::Computed {
                t2_bins_ms: spectrum.t2_bins_ms,
                amplitudes: spectrum.amplitudes,
                t2_logmean_ms: Some(spectrum.t2_logmean_ms).filter(|t| t.is_finite()),
                alpha: spectrum.alpha,
                converged: spectrum.converged,
            }
        }
        Err(error) => T2Distribution::Failed {
            reason: error.to_string(),
        },
    }
}

/// The HOLD flag of a reading whose T2 fit failed.
pub fn fit_failed_flag(subject: &str, error: &str) -> QcFlag {
    QcFlag {
        code: QcCode::FitNotConverged,
        severity: Severity::Hold,
        subject: subject.to_owned(),
        message: format!(
            "The T2 fit failed ({error}); the reading is left out. Re-measure the tube."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nmr_core::simulate::CpmgSimulation;

    #[test]
    fn a_clean_decay_fits_and_raises_no_flag() {
        let simulation = CpmgSimulation {
            noise_sd: 0.002,
            ..CpmgSimulation::mono(1.0, 0.2, 0.001, 1000)
        };
        let reading = Reading::fit("control tube reading 1".into(), &simulation.simulate(3));
        let fit = reading.fit.as_ref().expect("a clean decay fits");
        assert!((fit.t2_ms - 200.0).abs() < 2.0, "T2 {}", fit.t2_ms);
        assert!(reading.flags(&MeasurementQcLimits::default()).is_empty());
        assert!(reading.replicate().is_some());
        assert!(reading.stored_fit().mono().is_some_and(|f| f.t2_ms > 0.0));
    }

    #[test]
    fn a_flat_train_is_held_with_the_fit_error() {
        let train = EchoTrain::magnitude(
            (1..=50).map(|k| f64::from(k) * 1e-3).collect(),
            vec![0.0; 50],
        )
        .expect("a valid train");
        let reading = Reading::fit("quad-marker tube reading 1".into(), &train);
        assert!(reading.fit.is_err());
        let flags = reading.flags(&MeasurementQcLimits::default());
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0].severity, Severity::Hold);
        assert!(reading.replicate().is_none());
        assert!(matches!(reading.stored_fit().outcome, FitOutcome::Error(_)));
    }
}
