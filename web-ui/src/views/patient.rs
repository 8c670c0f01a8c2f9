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

/// A treatment or event marker on the trend, as listed under it.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientEventRow {
    /// The day, `YYYY-MM-DD`.
    pub occurred_on: String,
    /// What happened.
    pub label: String,
    /// Who recorded it and when: "Claire Tester, Wed 2 Dec 2026, 09:12 UTC".
    pub recorded: String,
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
    /// When the chart shows only the latest results: how many (older ones are in the CSV).
    pub trend_older: Option<u32>,
    /// One page of the runs, newest first.
    pub runs: Vec<PatientRunRow>,
    /// The next (older) page of runs, when there is one.
    pub runs_next_href: Option<String>,
    /// The first page of runs, when this is a later one.
    pub runs_first_href: Option<String>,
    /// Whether the viewer may start a run (the "New run" link is shown only then).
    pub may_start_runs: bool,
    /// The markers on the trend, by day.
    pub events: Vec<PatientEventRow>,
    /// Whether the viewer may add a marker (the form is shown only then).
    pub may_annotate: bool,
    /// The marker form as typed, when it is shown again with a problem: (day, label, problem).
    pub event_form: Option<(String, String, String)>,
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

    /// Where a marker is posted.
    pub fn events_href(&self) -> String {
        paths::patient_events(self.patient_id)
    }

    /// The marker form's day as typed (empty when the form is fresh).
    pub fn event_day(&self) -> &str {
        self.event_form.as_ref().map_or("", |(day, _, _)| day)
    }

    /// The marker form's label as typed.
    pub fn event_label(&self) -> &str {
        self.event_form.as_ref().map_or("", |(_, label, _)| label)
    }

    /// What is wrong with the marker form, when it is shown again.
    pub fn event_problem(&self) -> Option<&str> {
        self.event_form
            .as_ref()
            .map(|(_, _, problem)| problem.as_str())
    }

    /// The new-run page (to run another sample for this patient).
    pub fn new_run_href(&self) -> &'static str {
        paths::NEW_RUN
    }
}
