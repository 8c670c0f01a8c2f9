//! Quality control: Levey–Jennings charts per control material and lot, the phantom history, and
//! the form to record a QC measurement.

use askama::Template;
use askama_web::WebTemplate;

use super::layout::Layout;
use super::paths;
use crate::charts::{LeveyJenningsChart, levey_jennings_chart};

/// One phantom check (a sealed T2 reference measured on the instrument).
#[derive(Clone, Debug, PartialEq)]
pub struct PhantomRow {
    /// When, local-readable.
    pub measured_at: String,
    /// Phantom name and serial.
    pub phantom: String,
    /// Measured T2, ms.
    pub t2_ms: f64,
    /// Certified T2, ms.
    pub expected_t2_ms: f64,
    /// Allowed deviation, %.
    pub tolerance_percent: f64,
    /// Magnet temperature during the check, °C (when the check came from a stored measurement).
    pub temp_c: Option<f64>,
    /// Who measured it.
    pub operator: String,
    /// The stored Westgard verdict (`pass`, `warning` or `reject`) when the check was judged
    /// against a target; it decides the badge, since multirules (4-1s, 10-x) can reject a value
    /// within tolerance.
    pub verdict: Option<String>,
    /// The rules it broke, e.g. "1-2s, 1-3s" (empty when none).
    pub rules: String,
}

impl PhantomRow {
    /// Deviation from the certified value, %.
    pub fn deviation_percent(&self) -> f64 {
        (self.t2_ms - self.expected_t2_ms) / self.expected_t2_ms * 100.0
    }

    /// "32.01 °C", or "—" when not recorded.
    pub fn temp_text(&self) -> String {
        self.temp_c
            .filter(|t| t.is_finite())
            .map(|t| format!("{t:.2} °C"))
            .unwrap_or_else(|| "—".into())
    }

    /// The badge: the stored verdict, else the tolerance check.
    pub fn verdict_label(&self) -> &'static str {
        match self.verdict.as_deref() {
            Some("pass") => "Pass",
            Some("warning") => "Warning",
            Some(_) => "Reject",
            None if self.passed() => "Pass",
            None => "Fail",
        }
    }

    /// The badge's CSS class.
    pub fn verdict_class(&self) -> &'static str {
        match self.verdict_label() {
            "Pass" => "status-ok",
            "Warning" => "status-warn",
            _ => "status-fail",
        }
    }

    /// Within tolerance.
    pub fn passed(&self) -> bool {
        self.deviation_percent().abs() <= self.tolerance_percent
    }

    /// "+1.3 %".
    pub fn deviation_text(&self) -> String {
        let deviation = self.deviation_percent();
        if deviation.is_finite() {
            format!("{deviation:+.1} %")
        } else {
            "—".into()
        }
    }
}

/// A control material and lot the form can record against.
#[derive(Clone, Debug, PartialEq)]
pub struct QcMaterialOption {
    /// Form value (the material-lot id).
    pub id: i64,
    /// "Phantom T2 high · lot PH-24 (ms)".
    pub label: String,
}

/// The QC page.
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "qc.html")]
pub struct QcPage {
    /// Frame.
    pub layout: Layout,
    /// One chart per control material and lot.
    pub charts: Vec<LeveyJenningsChart>,
    /// Recent phantom checks, newest first.
    pub phantom_history: Vec<PhantomRow>,
    /// Materials and lots the form offers.
    pub materials: Vec<QcMaterialOption>,
    /// What was wrong with the last submission.
    pub form_error: Option<String>,
    /// True when this user may record a measurement (the form is shown).
    pub can_record: bool,
}

impl QcPage {
    /// Every chart as SVG.
    pub fn chart_svgs(&self) -> Vec<String> {
        self.charts.iter().map(levey_jennings_chart).collect()
    }

    /// The form's target.
    pub fn action(&self) -> &'static str {
        paths::QC_MEASUREMENTS
    }
}
