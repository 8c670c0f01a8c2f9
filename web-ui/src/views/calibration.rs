//! Calibration lots: the list, one lot's dilution-series plot with LoB, LoD and LoQ, and the
//! activation button.

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
    /// True when this user may activate it (lab admin, not active yet).
    pub can_activate: bool,
}

impl SelectedCalibration {
    /// The fit plot.
    pub fn chart_svg(&self) -> String {
        calibration_chart(&self.chart)
    }

    /// The activation form's target.
    pub fn activate_href(&self) -> String {
        paths::calibration_activate(self.calibration_id)
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
    /// All lots, newest first.
    pub lots: Vec<CalibrationLotRow>,
    /// The lot shown in detail (the active one by default).
    pub selected: Option<SelectedCalibration>,
    /// What was wrong with the last activation form.
    pub form_error: Option<String>,
}
