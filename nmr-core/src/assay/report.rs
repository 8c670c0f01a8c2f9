//! The count report: everything a clinician sees for one sample, computed from the tubes' replicate
//! statistics, the calibration of the lot and echo time, and the indication's cut-off.
//!
//! One shape serves `ferrocount count --json`, the results the appliance stores and the API, so a
//! result from the instrument and one computed by hand from exported trains read the same.
//!
//! Not here: fitting the trains or deciding QC flags (the caller brings both).

use serde::{Deserialize, Serialize};

use super::{
    AssayError, Calibration, Call, CountCategory, CountEstimate, DeltaR2, Indications, TubeKind,
    TubeSummary, marker_profile,
};
use crate::qc::{QcFlag, any_hold};

/// The report of one sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountReport {
    /// ΔR2 = R2(quad) − R2(control), 1/s.
    pub delta_r2_per_s: f64,
    /// Its standard error, 1/s.
    pub delta_r2_per_s_se: f64,
    /// Its degrees of freedom (Welch–Satterthwaite; infinite, written `null`, when the fits' own
    /// SEs dominate).
    #[serde(deserialize_with = "crate::json_float::null_as_infinity")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
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
    /// 95 % interval per mL, including the Poisson sampling of the draw.
    pub per_ml_ci95: [f64; 2],
    /// Cells per 7.5 mL.
    pub per_7_5ml: f64,
    /// 95 % interval per 7.5 mL.
    pub per_7_5ml_ci95: [f64; 2],
    /// `not_detected`, `below_loq` or `quantified`.
    pub category: CountCategory,
    /// `favorable` or `unfavorable` against the indication's cut-off (none without an indication).
    pub call: Option<Call>,
    /// The indication.
    pub indication: Option<String>,
    /// Its cut-off, per 7.5 mL.
    pub cutoff_per_7_5ml: Option<f64>,
    /// Whether the 95 % interval spans the cut-off.
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
    /// The calibration's reagent lot.
    pub calibration_lot: String,
    /// Echo time, ms.
    pub te_ms: f64,
    /// The control tube's replicate statistics.
    pub control: TubeSummary,
    /// The quad-marker tube's replicate statistics.
    pub labeled: TubeSummary,
    /// ΔR2 of each single-marker tube (a profile: never added into the count).
    pub marker_profile: Vec<TubeSignal>,
    /// ΔR2 of the CD45/IgG non-specific controls.
    pub nonspecific_controls: Vec<TubeSignal>,
}

/// ΔR2 of an extra tube against the control tube.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TubeSignal {
    /// The tube.
    pub tube: TubeKind,
    /// ΔR2, 1/s.
    pub delta_r2_per_s: f64,
    /// Its standard error.
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

/// What a report is computed from.
#[derive(Clone, Debug)]
pub struct CountInputs<'a> {
    /// The control tube.
    pub control: TubeSummary,
    /// The quad-marker tube.
    pub labeled: TubeSummary,
    /// Optional tubes: single markers and CD45/IgG controls.
    pub extra: Vec<TubeSummary>,
    /// The calibration of the lot at the run's echo time (the caller has checked it applies).
    pub calibration: &'a Calibration,
    /// Processed blood, mL.
    pub blood_ml: f64,
    /// The indication whose cut-off gives the call, if any.
    pub indication: Option<&'a str>,
    /// The configured cut-offs.
    pub indications: &'a Indications,
    /// Echo time, ms.
    pub te_ms: f64,
    /// QC flags the caller raised for the readings and the run.
    pub qc_flags: Vec<QcFlag>,
}

impl CountReport {
    /// Computes the report.
    ///
    /// # Errors
    /// An unknown indication, a non-positive blood volume, or ΔR2 statistics the count cannot use.
    pub fn compute(inputs: CountInputs<'_>) -> Result<Self, AssayError> {
        let CountInputs {
            control,
            labeled,
            extra,
            calibration,
            blood_ml,
            indication,
            indications,
            te_ms,
            qc_flags,
        } = inputs;
        let delta = DeltaR2::between(&labeled, &control);
        let singles: Vec<TubeSummary> = extra
            .iter()
            .filter(|t| matches!(t.kind, TubeKind::Single(_)))
            .cloned()
            .collect();
        let profile = marker_profile(&control, &singles)?;
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
        let count = CountEstimate::from_delta(&delta, calibration, blood_ml)?;
        let call = indication
            .map(|name| indications.call(name, &count))
            .transpose()?;
        Ok(Self {
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
            category: count.category,
            call: call.as_ref().map(|c| c.call),
            indication: call.as_ref().map(|c| c.indication.clone()),
            cutoff_per_7_5ml: call.as_ref().map(|c| c.cutoff_per_7_5ml),
            call_interval_spans_cutoff: call.as_ref().map(|c| c.interval_spans_cutoff),
            qc_hold: any_hold(&qc_flags),
            qc_flags,
            lob_cells: calibration.lob_cells,
            lod_cells: calibration.lod_cells,
            loq_cells: calibration.loq_cells,
            calibration_lot: calibration.lot.clone(),
            te_ms,
            control,
            labeled,
            marker_profile: marker_signals,
            nonspecific_controls: nonspecific,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assay::{Marker, Replicate};

    fn calibration() -> Calibration {
        Calibration::from_toml(
            r#"
lot = "L1"
te_ms = 4.0
slope_per_s_per_cell = 0.01
slope_se = 0.0002
intercept_per_s = 0.05
intercept_se = 0.004
slope_intercept_cov = -2.0e-7
lob_cells = 1.5
lod_cells = 3.0
loq_cells = 6.0
created = "2026-11-24T04:00:00Z"
"#,
        )
        .expect("a valid calibration")
    }

    fn tube(kind: TubeKind, r2: [f64; 3]) -> TubeSummary {
        let replicates: Vec<Replicate> = r2.iter().map(|&r| Replicate::new(r, 0.001)).collect();
        TubeSummary::from_replicates(kind, &replicates).expect("three replicates")
    }

    fn indications() -> Indications {
        Indications::from_toml("[indications.breast]\nunfavorable_at_or_above_per_7_5ml = 5.0\n")
            .expect("valid cut-offs")
    }

    #[test]
    fn report_holds_the_count_its_call_and_the_profile_apart() {
        let (calibration, indications) = (calibration(), indications());
        // ΔR2 = 0.55 /s → N = (0.55 − 0.05)/0.01 = 50 cells in 3 mL → 125 per 7.5 mL.
        let report = CountReport::compute(CountInputs {
            control: tube(TubeKind::Control, [4.0, 4.01, 3.99]),
            labeled: tube(TubeKind::Quad, [4.55, 4.56, 4.54]),
            extra: vec![tube(TubeKind::Single(Marker::Epcam), [4.30, 4.31, 4.29])],
            calibration: &calibration,
            blood_ml: 3.0,
            indication: Some("breast"),
            indications: &indications,
            te_ms: 4.0,
            qc_flags: Vec::new(),
        })
        .expect("a report");
        assert!((report.delta_r2_per_s - 0.55).abs() < 1e-9);
        assert!((report.cells - 50.0).abs() < 1e-6, "{}", report.cells);
        assert!((report.per_7_5ml - 125.0).abs() < 1e-5);
        assert!(report.cells_ci95[0] < 50.0 && 50.0 < report.cells_ci95[1]);
        assert_eq!(report.category, CountCategory::Quantified);
        assert_eq!(report.call, Some(Call::Unfavorable));
        assert_eq!(report.marker_profile.len(), 1);
        assert!((report.marker_profile[0].delta_r2_per_s - 0.30).abs() < 1e-9);
        assert!(report.nonspecific_controls.is_empty());
        assert!(!report.qc_hold);
        // The JSON carries the keys the CLI and the API promise.
        let json = serde_json::to_value(&report).expect("serialisable");
        for key in [
            "delta_r2_per_s",
            "delta_r2_per_s_se",
            "cells",
            "cells_ci95",
            "per_ml",
            "per_ml_ci95",
            "per_7_5ml",
            "per_7_5ml_ci95",
            "category",
            "call",
            "qc_flags",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
    }

    #[test]
    fn an_unknown_indication_is_an_error_and_none_gives_no_call() {
        let (calibration, indications) = (calibration(), indications());
        let inputs = |indication| CountInputs {
            control: tube(TubeKind::Control, [4.0, 4.01, 3.99]),
            labeled: tube(TubeKind::Quad, [4.05, 4.06, 4.04]),
            extra: Vec::new(),
            calibration: &calibration,
            blood_ml: 7.5,
            indication,
            indications: &indications,
            te_ms: 4.0,
            qc_flags: Vec::new(),
        };
        assert!(CountReport::compute(inputs(Some("lung"))).is_err());
        let report = CountReport::compute(inputs(None)).expect("a report");
        assert_eq!(report.call, None);
        assert_eq!(report.category, CountCategory::NotDetected);
    }
}
