//! A run's result: the count with its intervals, category, call and QC, from the replicate
//! readings of its tubes and the calibration of its lot and echo time.
//!
//! The keys are those of `ferrocount count --json` plus `run_id`, so a result from the appliance
//! and one computed by hand from exported trains read the same. The store keeps the count report
//! typed, with its regulated values as columns (`ResultSummary::of`).

use nmr_core::assay::{
    AssayError, Calibration, CountInputs, CountReport, Indications, TubeKind, TubeSummary,
};
use nmr_core::qc::{
    MeasurementQcInput, MeasurementQcLimits, QcFlag, check_measurement, check_replicate_cv,
    check_replicate_outlier, check_temperature_drift, median_fill_amplitude,
};
use serde::{Deserialize, Serialize};

use crate::store::RunId;

use super::failure::{Failure, FailureKind};
use super::reading::{Reading, fit_failed_flag};

/// The result of a run: the count report (the keys of `ferrocount count --json`) plus `run_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunReport {
    /// The run.
    pub run_id: RunId,
    /// The count, its intervals, category, call and QC.
    #[serde(flatten)]
    pub count: CountReport,
}

/// The readings of one tube.
#[derive(Clone, Debug, PartialEq)]
pub struct TubeReadings {
    /// What it holds.
    pub kind: TubeKind,
    /// Its readings, in order.
    pub readings: Vec<Reading>,
}

impl TubeReadings {
    /// Replicate statistics from the readings whose fit succeeded; too few is a QC failure.
    pub fn summary(&self) -> Result<TubeSummary, Failure> {
        let replicates: Vec<_> = self
            .readings
            .iter()
            .filter_map(Reading::replicate)
            .collect();
        TubeSummary::from_replicates(self.kind, &replicates)
            .map_err(|e| Failure::new(FailureKind::Qc, format!("the {}: {e}", self.kind)))
    }
}

/// What else the report needs.
pub struct ReportInputs<'a> {
    /// The run.
    pub run_id: RunId,
    /// Calibration of the lot at the run's echo time.
    pub calibration: &'a Calibration,
    /// Processed blood, mL.
    pub blood_ml: f64,
    /// The indication, if any.
    pub indication: Option<&'a str>,
    /// The cut-offs.
    pub indications: &'a Indications,
    /// QC limits.
    pub limits: &'a MeasurementQcLimits,
    /// Echo time, ms.
    pub te_ms: f64,
}

impl RunReport {
    /// Builds the report. Fails (with the cause) when a tube has too few usable readings or the
    /// calibration does not apply.
    pub fn build(tubes: &[TubeReadings], inputs: &ReportInputs<'_>) -> Result<Self, Failure> {
        let calibration = inputs.calibration;
        calibration
            .check_applies(Some(&calibration.lot), inputs.te_ms)
            .map_err(|e| Failure::new(FailureKind::Calibration, e.to_string()))?;
        let find = |kind: TubeKind| {
            tubes
                .iter()
                .find(|t| t.kind == kind)
                .ok_or_else(|| Failure::new(FailureKind::Qc, format!("the run has no {kind}")))
        };
        let control = find(TubeKind::Control)?.summary()?;
        let labeled = find(TubeKind::Quad)?.summary()?;
        let mut extra = Vec::new();
        for tube in tubes
            .iter()
            .filter(|t| !matches!(t.kind, TubeKind::Control | TubeKind::Quad))
        {
            extra.push(tube.summary()?);
        }
        let qc_flags = run_flags(
            tubes,
            &extra_with(&control, &labeled, &extra),
            inputs.limits,
        );
        // An indication without a configured cut-off gives no call rather than failing the run.
        let indication = inputs
            .indication
            .filter(|name| inputs.indications.cutoff(name).is_ok());
        let count = CountReport::compute(CountInputs {
            control,
            labeled,
            extra,
            calibration,
            blood_ml: inputs.blood_ml,
            indication,
            indications: inputs.indications,
            te_ms: inputs.te_ms,
            qc_flags,
        })
        .map_err(|error| {
            // A count the plausibility check refuses fails the run with its cause: the
            // calibration's when the calibration is out of range, QC's otherwise.
            let kind = match &error {
                AssayError::Implausible(implausible) if implausible.quantity == "calibration" => {
                    FailureKind::Calibration
                }
                AssayError::Calibration(_) => FailureKind::Calibration,
                _ => FailureKind::Qc,
            };
            Failure::new(kind, error.to_string())
        })?;
        Ok(Self {
            run_id: inputs.run_id,
            count,
        })
    }
}

fn extra_with<'a>(
    control: &'a TubeSummary,
    labeled: &'a TubeSummary,
    extra: &'a [TubeSummary],
) -> Vec<&'a TubeSummary> {
    let mut all = vec![control, labeled];
    all.extend(extra);
    all
}

/// Every QC flag of the run: per reading (fill judged against the run's median), temperature
/// drift over the run, replicate CV of each tube, and a hold for each failed fit.
fn run_flags(
    tubes: &[TubeReadings],
    summaries: &[&TubeSummary],
    limits: &MeasurementQcLimits,
) -> Vec<QcFlag> {
    let inputs: Vec<MeasurementQcInput> = tubes
        .iter()
        .flat_map(|t| t.readings.iter().filter_map(Reading::qc_input))
        .collect();
    let expected_fill = median_fill_amplitude(&inputs);
    let mut flags: Vec<QcFlag> = inputs
        .iter()
        .flat_map(|input| check_measurement(input, expected_fill, limits))
        .collect();
    for tube in tubes {
        for reading in &tube.readings {
            if let Err(error) = &reading.fit {
                flags.push(fit_failed_flag(&reading.subject, error));
            }
        }
    }
    flags.extend(check_temperature_drift(&inputs, limits));
    for tube in tubes {
        let (labels, replicates): (Vec<String>, Vec<_>) = tube
            .readings
            .iter()
            .filter_map(|r| r.replicate().map(|rep| (r.subject.clone(), rep)))
            .unzip();
        flags.extend(check_replicate_outlier(
            &tube.kind.to_string(),
            &labels,
            &replicates,
        ));
    }
    for summary in summaries {
        flags.extend(check_replicate_cv(
            &summary.kind.to_string(),
            summary.cv,
            limits,
        ));
    }
    flags
}
