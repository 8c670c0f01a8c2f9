//! One run's report: sample, result, tubes and replicates with their decays and T2
//! distributions, QC flags, the calibration used, result versions, the release form and the audit
//! trail. Prints as a report (the stylesheet's print rules drop navigation and forms).

use askama::Template;
use askama_web::WebTemplate;

use super::audit_entry::AuditEntry;
use super::count_view::CountView;
use super::format;
use super::layout::Layout;
use super::paths;
use crate::charts::{DecayChart, T2DistributionChart, decay_chart, t2_distribution_chart};

/// The sample and who ran it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunHeader {
    /// Run id.
    pub run_id: i64,
    /// Patient id.
    pub patient_id: i64,
    /// Patient MRN.
    pub patient_mrn: String,
    /// Draw time, local-readable.
    pub drawn_at: String,
    /// Blood volume, mL.
    pub blood_ml: f64,
    /// Indication.
    pub indication: String,
    /// Reagent lot.
    pub reagent_lot: String,
    /// Operator's name.
    pub operator: String,
    /// Run state in words ("Finished", "Failed: board not answering", …).
    pub state: String,
    /// Start time, local-readable.
    pub started_at: String,
    /// End time, local-readable.
    pub finished_at: Option<String>,
}

/// One replicate measurement of a tube.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicateView {
    /// 1-based replicate number.
    pub number: u32,
    /// Fitted T2, ms.
    pub t2_ms: Option<f64>,
    /// Its standard error, ms.
    pub t2_ms_se: Option<f64>,
    /// R2 = 1/T2, 1/s.
    pub r2_per_s: Option<f64>,
    /// Signal-to-noise ratio.
    pub snr: Option<f64>,
    /// Reduced χ² of the fit.
    pub chi2_red: Option<f64>,
    /// False when the replicate was excluded (e.g. an outlier), with the reason in `note`.
    pub used: bool,
    /// Why it was excluded or flagged.
    pub note: String,
    /// The decay chart's input.
    pub decay: DecayChart,
    /// The T2 distribution's input, when computed.
    pub t2_distribution: Option<T2DistributionChart>,
}

impl ReplicateView {
    /// "84.2 ± 0.6 ms" or "no fit".
    pub fn t2_text(&self) -> String {
        match self.t2_ms.filter(|t| t.is_finite()) {
            Some(t2) => format::with_se(t2, self.t2_ms_se, 1, "ms"),
            None => "no fit".to_string(),
        }
    }

    /// "12.34 1/s" or "—".
    pub fn r2_text(&self) -> String {
        self.r2_per_s
            .filter(|r| r.is_finite())
            .map(|r| format!("{r:.2} 1/s"))
            .unwrap_or_else(|| "—".into())
    }

    /// "310" or "—".
    pub fn snr_text(&self) -> String {
        self.snr
            .filter(|s| s.is_finite())
            .map(|s| format!("{s:.0}"))
            .unwrap_or_else(|| "—".into())
    }

    /// "1.03" or "—".
    pub fn chi2_text(&self) -> String {
        self.chi2_red
            .filter(|c| c.is_finite())
            .map(|c| format!("{c:.2}"))
            .unwrap_or_else(|| "—".into())
    }

    /// The decay chart.
    pub fn decay_svg(&self) -> String {
        decay_chart(&self.decay)
    }

    /// The T2 distribution chart (a "no data yet" panel when none was computed).
    pub fn t2_distribution_svg(&self) -> Option<String> {
        self.t2_distribution.as_ref().map(t2_distribution_chart)
    }
}

/// One tube of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct TubeView {
    /// 1-based tube number.
    pub number: u32,
    /// What is in it: "baseline (no particles)", "quad (targeted particles)", …
    pub role: String,
    /// Mean R2 of the used replicates, 1/s.
    pub mean_r2_per_s: Option<f64>,
    /// Coefficient of variation of the replicate R2, %.
    pub cv_percent: Option<f64>,
    /// Replicates.
    pub replicates: Vec<ReplicateView>,
}

impl TubeView {
    /// True when any replicate has a T2 distribution.
    pub fn has_t2_distributions(&self) -> bool {
        self.replicates.iter().any(|r| r.t2_distribution.is_some())
    }

    /// "12.34 1/s (CV 0.8 %)" or "—".
    pub fn summary(&self) -> String {
        match (
            self.mean_r2_per_s.filter(|r| r.is_finite()),
            self.cv_percent.filter(|c| c.is_finite()),
        ) {
            (Some(r2), Some(cv)) => format!("mean R2 {r2:.2} 1/s (CV {cv:.1} %)"),
            (Some(r2), None) => format!("mean R2 {r2:.2} 1/s"),
            _ => "no usable replicate".to_string(),
        }
    }
}

/// The QC a result relied on, as stored with its run when it was judged.
#[derive(Clone, Debug, PartialEq)]
pub struct QcReliedView {
    /// When and for what it was judged: "at release, Wed 2 Dec 2026, 11:02 CET".
    pub judged: String,
    /// One line per control value: level, material, lot, time, verdict.
    pub values: Vec<String>,
}

/// A QC flag raised on the run.
#[derive(Clone, Debug, PartialEq)]
pub struct QcFlagView {
    /// `warn` (look at it; may be released) or `hold` (must be resolved first).
    pub severity: String,
    /// Stable code, e.g. `low_snr`.
    pub code: String,
    /// What it is about ("tube 2 replicate 3", "run").
    pub subject: String,
    /// Plain-language message.
    pub message: String,
}

impl QcFlagView {
    /// "Warning" or "Hold".
    pub fn severity_label(&self) -> &'static str {
        match self.severity.as_str() {
            "hold" => "Hold",
            "warn" => "Warning",
            _ => "Note",
        }
    }

    /// CSS class with the severity colour.
    pub fn severity_class(&self) -> &'static str {
        match self.severity.as_str() {
            "hold" => "severity-hold",
            "warn" => "severity-warn",
            _ => "severity-note",
        }
    }
}

/// The calibration the count used.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationUsed {
    /// Calibration id.
    pub calibration_id: i64,
    /// Reagent lot.
    pub lot: String,
    /// Slope, (1/s) per cell.
    pub slope_per_s_per_cell: f64,
    /// Intercept, 1/s.
    pub intercept_per_s: f64,
    /// Limit of blank, cells.
    pub lob_cells: f64,
    /// Limit of detection, cells.
    pub lod_cells: f64,
    /// Limit of quantitation, cells.
    pub loq_cells: f64,
    /// When it was activated.
    pub activated_at: String,
}

impl CalibrationUsed {
    /// The calibration's page.
    pub fn href(&self) -> String {
        paths::calibration(self.calibration_id)
    }

    /// "LoB 1.2 · LoD 3.4 · LoQ 8.0 cells".
    pub fn limits_text(&self) -> String {
        format!(
            "LoB {:.1} · LoD {:.1} · LoQ {:.1} cells",
            self.lob_cells, self.lod_cells, self.loq_cells
        )
    }

    /// "ΔR2 = 0.020 + 0.00400 × cells (1/s)".
    pub fn line_text(&self) -> String {
        format!(
            "ΔR2 = {:.3} + {:.5} × cells (1/s)",
            self.intercept_per_s, self.slope_per_s_per_cell
        )
    }
}

/// An electronic signature.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// Printed name of the signer.
    pub name: String,
    /// What the signature means ("Reviewed and released").
    pub meaning: String,
    /// When, local-readable.
    pub at: String,
}

/// One version of the result (a correction is a new version with a reason).
#[derive(Clone, Debug, PartialEq)]
pub struct ResultVersion {
    /// 1-based version number.
    pub version: u32,
    /// When it was computed.
    pub created_at: String,
    /// The count.
    pub count: CountView,
    /// Why this version exists ("first computation", "recomputed with lot RL-2611 recalibration").
    pub reason: String,
    /// The release signature, when released.
    pub signature: Option<Signature>,
}

/// The release form's state.
#[derive(Clone, Debug, PartialEq)]
pub struct ReleaseForm {
    /// Printed name pre-filled with the signed-in clinician's name.
    pub printed_name: String,
    /// Meanings to choose from: the value posted and the words shown.
    pub meanings: Vec<(String, String)>,
    /// Why the last attempt failed ("password incorrect").
    pub error: Option<String>,
}

/// The correction form of a result (a new version with a reason, signed).
#[derive(Clone, Debug)]
pub struct CorrectionForm {
    /// Printed name pre-filled with the signed-in user's name.
    pub printed_name: String,
    /// The blood volume the current version was counted with, mL.
    pub blood_ml: f64,
    /// The current version's indication, or empty.
    pub indication: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// The run page.
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "run.html")]
pub struct RunPage {
    /// Frame.
    pub layout: Layout,
    /// Sample and run.
    pub run: RunHeader,
    /// The current result, when computed.
    pub result: Option<CountView>,
    /// The indication's cut-off, per 7.5 mL.
    pub cutoff_per_7_5ml: Option<f64>,
    /// Tubes with their replicates.
    pub tubes: Vec<TubeView>,
    /// QC flags.
    pub qc_flags: Vec<QcFlagView>,
    /// The QC the result relied on (`None`: no valid QC is recorded for the run).
    pub qc_relied: Option<QcReliedView>,
    /// The patient's previous released result and the change from it, in words.
    pub previous: Option<String>,
    /// Whether the requester may see the patient's history (else `previous` is never filled).
    pub previous_shown: bool,
    /// The calibration used.
    pub calibration: Option<CalibrationUsed>,
    /// Result versions, newest first.
    pub versions: Vec<ResultVersion>,
    /// The release form, present only when this user may release this result now (the page
    /// still withholds it while a `hold` flag is open, and says why).
    pub release: Option<ReleaseForm>,
    /// The correction form, present only when this user may release and the run has a result
    /// awaiting release or released.
    pub correction: Option<CorrectionForm>,
    /// The run's audit trail, oldest first.
    pub audit: Vec<AuditEntry>,
}

impl RunPage {
    /// The patient's page.
    pub fn patient_href(&self) -> String {
        paths::patient(self.run.patient_id)
    }

    /// The release form's target.
    pub fn release_href(&self) -> String {
        paths::run_release(self.run.run_id)
    }

    /// The clinical report as PDF.
    pub fn pdf_href(&self) -> String {
        paths::run_report_pdf(self.run.run_id)
    }

    /// The correction form's target.
    pub fn correction_href(&self) -> String {
        paths::run_corrections(self.run.run_id)
    }

    /// "5.0 CTC/7.5 mL" or empty.
    pub fn cutoff_text(&self) -> String {
        self.cutoff_per_7_5ml
            .map(|c| format!("{} CTC/7.5 mL", operations::reported::whole_cells(c, None)))
            .unwrap_or_default()
    }

    /// True when a flag holds the result.
    pub fn held(&self) -> bool {
        self.qc_flags.iter().any(|f| f.severity == "hold")
    }

    /// "7.5 mL".
    pub fn blood_text(&self) -> String {
        format!("{:.1} mL", self.run.blood_ml)
    }
}
