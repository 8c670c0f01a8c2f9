//! The dashboard: instrument status, today's QC, runs in progress, recent results and results
//! awaiting release.

use askama::Template;
use askama_web::WebTemplate;

use super::count_view::CountView;
use super::format;
use super::layout::Layout;
use super::paths;

/// Instrument status.
#[derive(Clone, Debug, PartialEq)]
pub struct InstrumentStatus {
    /// Board description, e.g. "Front-end FE-2 rev B (SPI)" or "Simulated board".
    pub board: String,
    /// True when the board answers.
    pub board_ok: bool,
    /// Larmor frequency from the last tune, Hz.
    pub f0_hz: Option<f64>,
    /// Magnet temperature, °C.
    pub magnet_temp_c: Option<f64>,
    /// When the probe was last tuned, local-readable.
    pub last_tune: Option<String>,
}

impl InstrumentStatus {
    /// "21.472 350 MHz" or "not tuned".
    pub fn f0_text(&self) -> String {
        self.f0_hz
            .filter(|f| f.is_finite())
            .map(format::frequency_mhz)
            .unwrap_or_else(|| "not tuned yet".to_string())
    }

    /// "32.01 °C" or "unknown".
    pub fn magnet_temp_text(&self) -> String {
        self.magnet_temp_c
            .filter(|t| t.is_finite())
            .map(|t| format!("{t:.2} °C"))
            .unwrap_or_else(|| "unknown".to_string())
    }
}

/// Today's QC verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QcVerdict {
    /// All controls in.
    Passed,
    /// A warning rule (1-2s) or a phantom near its limit.
    Warning,
    /// A rejection rule or a phantom out: patient runs should wait.
    Failed,
    /// No QC measured today.
    NotRun,
}

impl QcVerdict {
    /// Words.
    pub fn label(self) -> &'static str {
        match self {
            QcVerdict::Passed => "Passed",
            QcVerdict::Warning => "Warning",
            QcVerdict::Failed => "Failed",
            QcVerdict::NotRun => "Not run today",
        }
    }

    /// CSS class.
    pub fn class(self) -> &'static str {
        match self {
            QcVerdict::Passed => "status-ok",
            QcVerdict::Warning => "status-warn",
            QcVerdict::Failed => "status-fail",
            QcVerdict::NotRun => "status-none",
        }
    }
}

/// Today's QC.
#[derive(Clone, Debug, PartialEq)]
pub struct QcToday {
    /// Verdict.
    pub status: QcVerdict,
    /// What failed or warned, one line each, e.g. "Phantom T2 high, lot PH-24: 1-3s (reject)".
    pub problems: Vec<String>,
    /// Controls measured today.
    pub measured: u32,
}

/// A run not yet finished.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInProgress {
    /// Run id.
    pub run_id: i64,
    /// Patient MRN.
    pub patient_mrn: String,
    /// When it started, local-readable.
    pub started_at: String,
    /// What it is doing, e.g. "Waiting for tube 2 of 3 (quad)".
    pub step: String,
}

impl RunInProgress {
    /// The live view.
    pub fn href(&self) -> String {
        paths::run_live(self.run_id)
    }
}

/// A finished result in a table.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    /// Run id.
    pub run_id: i64,
    /// Patient id.
    pub patient_id: i64,
    /// Patient MRN.
    pub patient_mrn: String,
    /// Draw time, local-readable.
    pub drawn_at: String,
    /// The count.
    pub count: CountView,
    /// "Released", "Awaiting release", "Held (QC)".
    pub status: String,
    /// Whether the reader may open the patient's page (operators do not browse patients).
    pub patient_link: bool,
}

impl ResultRow {
    /// The run's page.
    pub fn href(&self) -> String {
        paths::run(self.run_id)
    }

    /// The patient's page.
    pub fn patient_href(&self) -> String {
        paths::patient(self.patient_id)
    }
}

/// An open step of the instrument's set-up, in words, with the page where it is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupStepView {
    /// What the step asks for.
    pub text: String,
    /// The page where it is done.
    pub href: String,
    /// That page's name.
    pub page: String,
}

/// The dashboard.
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    /// Frame.
    pub layout: Layout,
    /// Instrument status.
    pub instrument: InstrumentStatus,
    /// Today's QC.
    pub qc_today: QcToday,
    /// One page of the runs in progress, oldest first.
    pub runs_in_progress: Vec<RunInProgress>,
    /// The next page of runs in progress, when there are more.
    pub in_flight_next_href: Option<String>,
    /// The first page of runs in progress, when this is a later one.
    pub in_flight_first_href: Option<String>,
    /// Most recent results, newest first.
    pub recent_results: Vec<ResultRow>,
    /// Results waiting for a clinician's release.
    pub awaiting_release: Vec<ResultRow>,
    /// The next page of results awaiting release, when more wait.
    pub awaiting_next_href: Option<String>,
    /// The first page of results awaiting release, when this is a later one.
    pub awaiting_first_href: Option<String>,
    /// Whether the reader may release results (the "awaiting release" section is theirs).
    pub may_release: bool,
    /// Whether the reader may start runs (the "start a new run" button).
    pub may_start_runs: bool,
    /// The open steps of the instrument's set-up (empty once it is set up).
    pub setup_open: Vec<SetupStepView>,
}

impl DashboardPage {
    /// The new-run page.
    pub fn new_run_href(&self) -> &'static str {
        paths::NEW_RUN
    }
}
