//! Starting a run at the bedside: patient MRN, draw time, blood volume, indication and reagent lot,
//! with big controls for a tablet.

use askama::Template;
use askama_web::WebTemplate;

use super::count_view::CountView;
use super::layout::Layout;
use super::paths;

/// What the form holds (empty on first display, the submitted values after a validation error).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewRunForm {
    /// Patient MRN (a new MRN creates the patient).
    pub patient_mrn: String,
    /// Date of birth, `YYYY-MM-DD` (the `date` input's format).
    pub birth_date: String,
    /// The specimen's accession number.
    pub accession: String,
    /// Draw time as `YYYY-MM-DDTHH:MM` (the `datetime-local` input's format).
    pub drawn_at: String,
    /// Blood volume in mL, as typed.
    pub blood_ml: String,
    /// Chosen indication.
    pub indication: String,
    /// Chosen reagent lot.
    pub reagent_lot: String,
    /// Simulated cells (only on a simulated board).
    pub simulate_cells: String,
    /// Simulated board only: wait for the operator to confirm each tube, as on hardware.
    pub confirm_tubes: bool,
}

/// The new-run page.
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "new_run.html")]
pub struct NewRunPage {
    /// Frame.
    pub layout: Layout,
    /// The form's values.
    pub form: NewRunForm,
    /// Configured indications (`breast`, `prostate`, …).
    pub indications: Vec<String>,
    /// Reagent lots with an approved calibration.
    pub reagent_lots: Vec<String>,
    /// What was wrong with the last submission, one line per field.
    pub errors: Vec<String>,
    /// True on a simulated board: shows the "simulated cells" field.
    pub simulation: bool,
    /// When today's QC failed: a warning above the form (the run may still be started).
    pub qc_warning: Option<String>,
    /// The smallest processed blood volume a run takes, mL (the one limit, for the field's
    /// `min`).
    pub blood_ml_min: f64,
    /// The largest, mL (the field's `max`).
    pub blood_ml_max: f64,
    /// The site's time zone (the draw time is local time there): `Europe/Berlin`.
    pub time_zone: String,
    /// The open steps of the instrument's set-up: while any is open, the page shows them instead
    /// of the form.
    pub setup_open: Vec<super::SetupStepView>,
}

impl NewRunPage {
    /// The form's target.
    pub fn action(&self) -> &'static str {
        paths::RUNS
    }

    /// True when `option` is the chosen indication.
    pub fn indication_selected(&self, option: &str) -> bool {
        self.form.indication == option
    }

    /// True when `option` is the chosen lot.
    pub fn lot_selected(&self, option: &str) -> bool {
        self.form.reagent_lot == option
    }
}

/// One step already reported by a running run (the live view renders these on load, and the
/// script appends newer ones as they arrive).
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressStep {
    /// The event kind as sent over server-sent events: `step`, `insert_tube`, `replicate`, `fit`,
    /// `result`, `failed`.
    pub kind: String,
    /// The text shown.
    pub text: String,
    /// For an `insert_tube` step still waiting for the operator: the tube number, so a reloaded
    /// page shows the confirm button again.
    pub awaiting_tube: Option<u32>,
}

/// The live view of one run.
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "live_run.html")]
pub struct LiveRunPage {
    /// Frame.
    pub layout: Layout,
    /// Run id.
    pub run_id: i64,
    /// Patient MRN.
    pub patient_mrn: String,
    /// Indication and lot, e.g. "breast · lot RL-2611 · 7.5 mL".
    pub sample_summary: String,
    /// Steps already reported.
    pub steps: Vec<ProgressStep>,
    /// True once the run has finished (no event stream is opened).
    pub finished: bool,
    /// The result of a finished run (shown at once; no dead spinner).
    pub result: Option<CountView>,
    /// Why a run stopped short of a result (failed, cancelled, interrupted).
    pub failure: Option<String>,
    /// What was wrong with the last cancel form.
    pub cancel_error: Option<String>,
}

impl LiveRunPage {
    /// The event stream.
    pub fn events_href(&self) -> String {
        paths::run_events(self.run_id)
    }

    /// Where the confirm button posts.
    pub fn confirm_href(&self) -> String {
        paths::run_confirm_tube(self.run_id)
    }

    /// Where the cancel form posts.
    pub fn cancel_href(&self) -> String {
        paths::run_cancel(self.run_id)
    }

    /// The full report.
    pub fn report_href(&self) -> String {
        paths::run(self.run_id)
    }

    /// The script's address.
    pub fn script_href(&self) -> &'static str {
        paths::LIVE_RUN_SCRIPT
    }
}
