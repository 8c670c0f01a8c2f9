//! A run's result: the count with its intervals, category, call and QC, from the replicate
//! readings of its tubes and the calibration of its lot and echo time.
//!
//! The keys are those of `ferrocount count --json` plus `run_id`, so a result from the appliance
//! and one computed by hand from exported trains read the same. The whole report is stored as the
//! result's JSON.

use nmr_core::assay::{
    Calibration, Call, CountEstimate, DeltaR2, Indications, TubeKind, TubeSummary, marker_profile,
};
use nmr_core::qc::{
    MeasurementQcInput, MeasurementQcLimits, QcFlag, any_hold, check_measurement,
    check_replicate_cv, check_temperature_drift, median_fill_amplitude,
};
use serde::{Deserialize, Serialize};

use crate::store::results::{ResultCall, ResultCategory, ResultSummary};
use crate::store::{RunId, StoreError};

use super::failure::{Failure, FailureKind};
use super::reading::{Reading, fit_failed_flag};

/// The result of a run (keys of `ferrocount count --json`, plus `run_id`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The run.
    pub run_id: RunId,
    /// ΔR2 = R2(quad) − R2(control), 1/s.
    pub delta_r2_per_s: f64,
    /// Its standard error, 1/s.
    pub delta_r2_per_s_se: f64,
    /// Its degrees of freedom.
    pub delta_r2_df: f64,
    /// Cells in the processed sample.
    pub cells: f64,
    /// Standard error of the cells.
    pub cells_se: f64,
    /// 95 % interval of the cells.
    pub cells_ci95: [f64; 2],
    /// Processed blood, mL.
    pub blood_ml: f64,
    /// Cells per mL.
    pub per_ml: f64,
    /// 95 % interval per mL (with the Poisson sampling of the draw).
    pub per_ml_ci95: [f64; 2],
    /// Cells per 7.5 mL.
    pub per_7_5ml: f64,
    /// 95 % interval per 7.5 mL.
    pub per_7_5ml_ci95: [f64; 2],
    /// `not_detected`, `below_loq` or `quantified`.
    pub category: String,
    /// `favorable` or `unfavorable` against the indication's cut-off.
    pub call: Option<String>,
    /// The indication.
    pub indication: Option<String>,
    /// Its cut-off, per 7.5 mL.
    pub cutoff_per_7_5ml: Option<f64>,
    /// Whether the interval spans the cut-off.
    pub call_interval_spans_cutoff: Option<bool>,
    /// QC flags of the readings and the run.
    pub qc_flags: Vec<QcFlag>,
    /// True when a flag holds the result.
    pub qc_hold: bool,
    /// Limit of blank, cells.
    pub lob_cells: f64,
    /// Limit of detection, cells.
    pub lod_cells: f64,
    /// Limit of quantitation, cells.
    pub loq_cells: f64,
    /// The calibration's lot.
    pub calibration_lot: String,
    /// Echo time, ms.
    pub te_ms: f64,
    /// The control tube's replicate statistics.
    pub control: TubeSummary,
    /// The quad-marker tube's replicate statistics.
    pub labeled: TubeSummary,
    /// ΔR2 of each single-marker tube (never added into the count).
    pub marker_profile: Vec<TubeSignal>,
    /// ΔR2 of the CD45/IgG non-specific controls.
    pub nonspecific_controls: Vec<TubeSignal>,
}

/// ΔR2 of an extra tube against the control tube.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TubeSignal {
    /// The tube.
    pub tube: TubeKind,
    /// ΔR2, 1/s.
    pub delta_r2_per_s: f64,
    /// Its SE.
    pub delta_r2_per_s_se: f64,
    /// Its 95 % interval.
    pub delta_r2_ci95: [f64; 2],
    /// CV of the tube's replicates.
    pub replicate_cv: f64,
}

impl TubeSignal {
    fn new(tube: &TubeSummary, delta: &DeltaR2) -> Self {
        Self {
            tube: tube.kind,
            delta_r2_per_s: delta.delta_r2_per_s,
            delta_r2_per_s_se: delta.se_per_s,
            delta_r2_ci95: delta.ci95_per_s(),
            replicate_cv: tube.cv,
        }
    }
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
        let delta = DeltaR2::between(&labeled, &control);
        let singles: Vec<TubeSummary> = extra
            .iter()
            .filter(|t| matches!(t.kind, TubeKind::Single(_)))
            .cloned()
            .collect();
        let profile = marker_profile(&control, &singles)
            .map_err(|e| Failure::new(FailureKind::Qc, e.to_string()))?;
        let marker_signals = singles
            .iter()
            .zip(&profile)
            .map(|(tube, signal)| TubeSignal::new(tube, &signal.delta))
            .collect();
        let nonspecific = extra
            .iter()
            .filter(|t| !matches!(t.kind, TubeKind::Single(_)))
            .map(|t| TubeSignal::new(t, &DeltaR2::between(t, &control)))
            .collect();
        let count = CountEstimate::from_delta(&delta, calibration, inputs.blood_ml)
            .map_err(|e| Failure::new(FailureKind::Qc, e.to_string()))?;
        let call = inputs
            .indication
            .filter(|name| inputs.indications.cutoff(name).is_ok())
            .map(|name| inputs.indications.call(name, &count))
            .transpose()
            .map_err(|e| Failure::new(FailureKind::Qc, e.to_string()))?;
        Ok(Self {
            run_id: inputs.run_id,
            delta_r2_per_s: delta.delta_r2_per_s,
            delta_r2_per_s_se: delta.se_per_s,
            delta_r2_df: delta.df,
            cells: count.cells,
            cells_se: count.cells_se,
            cells_ci95: count.cells_ci95,
            blood_ml: count.blood_ml,
            per_ml: count.per_ml,
            per_ml_ci95: count.per_ml_ci95,
            per_7_5ml: count.per_7_5ml,
            per_7_5ml_ci95: count.per_7_5ml_ci95,
            category: count.category.as_str().to_owned(),
            call: call.as_ref().map(|c| call_name(c.call).to_owned()),
            indication: call.as_ref().map(|c| c.indication.clone()),
            cutoff_per_7_5ml: call.as_ref().map(|c| c.cutoff_per_7_5ml),
            call_interval_spans_cutoff: call.as_ref().map(|c| c.interval_spans_cutoff),
            qc_hold: any_hold(&qc_flags),
            qc_flags,
            lob_cells: calibration.lob_cells,
            lod_cells: calibration.lod_cells,
            loq_cells: calibration.loq_cells,
            calibration_lot: calibration.lot.clone(),
            te_ms: inputs.te_ms,
            control,
            labeled,
            marker_profile: marker_signals,
            nonspecific_controls: nonspecific,
        })
    }

    /// The numbers the store keeps beside the report for trends.
    pub fn summary(&self) -> Result<ResultSummary, StoreError> {
        let category = match self.category.as_str() {
            "not_detected" => ResultCategory::NotDetected,
            "below_loq" => ResultCategory::BelowLoq,
            _ => ResultCategory::Quantified,
        };
        let call = self.call.as_deref().map(|call| match call {
            "unfavorable" => ResultCall::Unfavorable,
            _ => ResultCall::Favorable,
        });
        ResultSummary::new(self.per_7_5ml, self.per_7_5ml_ci95, category, call)
    }
}

fn call_name(call: Call) -> &'static str {
    match call {
        Call::Favorable => "favorable",
        Call::Unfavorable => "unfavorable",
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
    for summary in summaries {
        flags.extend(check_replicate_cv(
            &summary.kind.to_string(),
            summary.cv,
            limits,
        ));
    }
    flags
}
