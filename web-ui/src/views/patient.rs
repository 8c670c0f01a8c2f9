//! A patient: the CTC trend, the runs, a CSV export.

use askama::Template;
use askama_web::WebTemplate;

use super::count_view::CountView;
use super::layout::Layout;
use super::paths;
use crate::charts::{TrendChart, trend_chart};

/// One run in the patient's table.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientRunRow {
    /// Run id.
    pub run_id: i64,
    /// Draw time, local-readable.
    pub drawn_at: String,
    /// Blood volume, mL.
    pub blood_ml: f64,
    /// Reagent lot.
    pub reagent_lot: String,
    /// The count (absent when the run failed or is still running).
    pub count: Option<CountView>,
    /// "Released", "Awaiting release", "Failed: …".
    pub status: String,
}

impl PatientRunRow {
    /// The run's page.
    pub fn href(&self) -> String {
        paths::run(self.run_id)
    }
}

/// The patient page.
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "patient.html")]
pub struct PatientPage {
    /// Frame.
    pub layout: Layout,
    /// Patient id.
    pub patient_id: i64,
    /// Medical record number.
    pub mrn: String,
    /// The patient's indication, when recorded.
    pub indication: Option<String>,
    /// The trend chart's input.
    pub trend: TrendChart,
    /// The runs, newest first.
    pub runs: Vec<PatientRunRow>,
    /// Whether the viewer may start a run (the "New run" link is shown only then).
    pub may_start_runs: bool,
}

impl PatientPage {
    /// The trend as SVG.
    pub fn trend_svg(&self) -> String {
        trend_chart(&self.trend)
    }

    /// True when the trend has at least one result (the export and the chart key are shown).
    pub fn has_results(&self) -> bool {
        !self.trend.points.is_empty()
    }

    /// The CSV export.
    pub fn csv_href(&self) -> String {
        paths::patient_trend_csv(self.patient_id)
    }

    /// The new-run page (to run another sample for this patient).
    pub fn new_run_href(&self) -> &'static str {
        paths::NEW_RUN
    }
}
