//! Calibrations: the list (a page at a time), one calibration's dilution-series plot with LoB, LoD
//! and LoQ, its state and decision, the lab admin's approve/reject form and the import form.

use askama::Template;
use askama_web::WebTemplate;

use super::layout::Layout;
use super::paths;
use crate::charts::{CalibrationChart, calibration_chart};

/// One lot in the list.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationLotRow {
    /// Calibration id.
    pub calibration_id: i64,
    /// Reagent lot.
    pub lot: String,
    /// When it was created.
    pub created_at: String,
    /// Echo spacing it applies to, ms.
    pub te_ms: f64,
    /// Limit of blank, cells.
    pub lob_cells: f64,
    /// Limit of detection, cells.
    pub lod_cells: f64,
    /// Limit of quantitation, cells.
    pub loq_cells: f64,
    /// True for the lot counts use now.
    pub active: bool,
    /// `pending`, `approved`, `superseded` or `rejected`.
    pub state: String,
}

impl CalibrationLotRow {
    /// The state in words, as the badge shows it.
    pub fn state_text(&self) -> &'static str {
        state_words(&self.state)
    }

    /// The badge's class.
    pub fn state_class(&self) -> &'static str {
        state_class(&self.state)
    }
}

/// A state in words.
pub fn state_words(state: &str) -> &'static str {
    match state {
        "approved" => "Approved (in use)",
        "pending" => "Pending approval",
        "superseded" => "Superseded",
        "rejected" => "Rejected",
        _ => "Unknown",
    }
}

fn state_class(state: &str) -> &'static str {
    match state {
        "approved" => "status-ok",
        "pending" => "status-warn",
        "rejected" => "status-bad",
        _ => "muted",
    }
}

impl CalibrationLotRow {
    /// The lot's page.
    pub fn href(&self) -> String {
        paths::calibration(self.calibration_id)
    }
}

/// The lot shown in detail.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectedCalibration {
    /// Calibration id.
    pub calibration_id: i64,
    /// The fit plot's input (carries lot, replicates, line, band and limits).
    pub chart: CalibrationChart,
    /// Slope with SE, formatted: "0.00400 ± 0.00008 (1/s) per cell".
    pub slope_text: String,
    /// Intercept with SE, formatted.
    pub intercept_text: String,
    /// Residual degrees of freedom, weighting and other fit notes.
    pub fit_notes: Vec<String>,
    /// True when this lot is the active one.
    pub active: bool,
    /// `pending`, `approved`, `superseded` or `rejected`.
    pub state: String,
    /// Who decided, when and why, in words (none while pending).
    pub decision_text: Option<String>,
    /// True when this user may approve or reject it (a lab admin; it is pending).
    pub can_decide: bool,
}

impl SelectedCalibration {
    /// The fit plot.
    pub fn chart_svg(&self) -> String {
        calibration_chart(&self.chart)
    }

    /// The approval form's target.
    pub fn approve_href(&self) -> String {
        paths::calibration_approve(self.calibration_id)
    }

    /// The rejection form's target.
    pub fn reject_href(&self) -> String {
        paths::calibration_reject(self.calibration_id)
    }

    /// The state in words.
    pub fn state_text(&self) -> &'static str {
        state_words(&self.state)
    }

    /// The badge's class.
    pub fn state_class(&self) -> &'static str {
        state_class(&self.state)
    }

    /// "1.2 cells" per limit (two decimals below one cell, so a LoB of 0.039 does not read as
    /// zero), or "—".
    pub fn limit_text(value: Option<f64>) -> String {
        value
            .filter(|v| v.is_finite())
            .map(|v| {
                if v.abs() < 1.0 {
                    format!("{v:.2} cells")
                } else {
                    format!("{v:.1} cells")
                }
            })
            .unwrap_or_else(|| "—".into())
    }

    /// LoB in words.
    pub fn lob_text(&self) -> String {
        Self::limit_text(self.chart.lob_cells)
    }

    /// LoD in words.
    pub fn lod_text(&self) -> String {
        Self::limit_text(self.chart.lod_cells)
    }

    /// LoQ in words.
    pub fn loq_text(&self) -> String {
        Self::limit_text(self.chart.loq_cells)
    }
}

/// The calibration page.
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "calibration.html")]
pub struct CalibrationPage {
    /// Frame.
    pub layout: Layout,
    /// This page of calibrations, newest first.
    pub lots: Vec<CalibrationLotRow>,
    /// The next (older) page, when there is one.
    pub next_href: Option<String>,
    /// The calibration shown in detail (the approved one by default).
    pub selected: Option<SelectedCalibration>,
    /// What was wrong with the last approval or rejection form.
    pub form_error: Option<String>,
    /// True when this user may import a calibration (lab admins).
    pub can_import: bool,
    /// True when the simulated lot can be calibrated here (simulated board, lab admin).
    pub can_make_simulated: bool,
    /// The import form's content as typed (shown again with its error).
    pub import_content: String,
    /// The import form's note as typed.
    pub import_note: String,
    /// What was wrong with the last import.
    pub import_error: Option<String>,
}

impl CalibrationPage {
    /// The import form's target.
    pub fn import_href(&self) -> &'static str {
        paths::CALIBRATIONS
    }

    /// The simulated lot's calibration form target.
    pub fn make_simulated_href(&self) -> &'static str {
        paths::CALIBRATION_SIMULATED
    }
}
