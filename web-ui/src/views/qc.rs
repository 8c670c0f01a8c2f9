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

/// A choice in one of the set-up forms' lists (a material, or a lot of one).
#[derive(Clone, Debug, PartialEq)]
pub struct QcChoice {
    /// Form value (the material's or the lot's id).
    pub id: i64,
    /// "Phantom T2 high (phantom, T2 in ms)", "Phantom T2 high · lot PH-24, expires 2027-03-31".
    pub label: String,
}

/// The lab admin's forms that define control materials and lots and set a lot's target.
#[derive(Clone, Debug, PartialEq)]
pub struct QcSetup {
    /// The materials a lot can be added to.
    pub materials: Vec<QcChoice>,
    /// The lots a target can be set for.
    pub lots: Vec<QcChoice>,
    /// What was wrong with the last set-up form (it opens the section).
    pub error: Option<String>,
    /// Whether the instrument's set-up checklist still has a QC step open (materials of both
    /// levels, a lot with a target of each): the checklist links here, so the section opens.
    pub checklist_open: bool,
}

impl QcSetup {
    /// The section starts open when there is nothing to do QC with yet, when the set-up
    /// checklist has a QC step open, or when a form was refused.
    pub fn open(&self) -> bool {
        self.materials.is_empty()
            || self.lots.is_empty()
            || self.checklist_open
            || self.error.is_some()
    }

    /// The material form's target.
    pub fn materials_action(&self) -> &'static str {
        paths::QC_MATERIALS
    }

    /// The lot form's target.
    pub fn lots_action(&self) -> &'static str {
        paths::QC_LOTS
    }

    /// The target form's target.
    pub fn targets_action(&self) -> &'static str {
        paths::QC_TARGETS
    }
}

/// A value the review lists under its chart: rejected or warned by a Westgard rule, or
/// commented.
#[derive(Clone, Debug, PartialEq)]
pub struct QcNote {
    /// When, readable.
    pub measured_at: String,
    /// The value with its unit.
    pub value: String,
    /// "Reject", "Warning" or "Pass".
    pub verdict: String,
    /// The rules it broke ("1-3s, R-4s"), or empty.
    pub rules: String,
    /// The comment recorded with it, or empty.
    pub comment: String,
    /// Who recorded it.
    pub recorded_by: String,
    /// The QC result's id (the anchor `qc-result-{id}`).
    pub result_id: i64,
    /// The corrective actions recorded against it: "2026-12-02 09:14 UTC · Olga Tester: what".
    pub corrective_actions: Vec<String>,
    /// Where a corrective action is recorded: a rejected value, for those who record QC.
    pub corrective_action_href: Option<String>,
}

/// A lot's review under its Levey–Jennings chart: the observed statistics over the range against
/// the target, and the rejections, warnings and comments.
#[derive(Clone, Debug, PartialEq)]
pub struct QcLotReview {
    /// "Control CTC low (negative control) · lot QC-N-1".
    pub title: String,
    /// Values in the range.
    pub values: usize,
    /// Rejected values (left out of the statistics).
    pub rejected: usize,
    /// Warned values.
    pub warned: usize,
    /// Observed mean, SD and CV (each "—" when there are too few values).
    pub mean: String,
    /// Observed SD.
    pub sd: String,
    /// Observed CV.
    pub cv: String,
    /// The target's mean and SD, or "no target".
    pub target: String,
    /// Rejections, warnings and comments, oldest first.
    pub notes: Vec<QcNote>,
    /// Said when the range holds more of the lot's values than the review reads.
    pub more: Option<String>,
}

/// The QC page.
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "qc.html")]
pub struct QcPage {
    /// Frame.
    pub layout: Layout,
    /// One chart per control material and lot.
    pub charts: Vec<LeveyJenningsChart>,
    /// Each chart's review (same order as `charts`; empty in a page built without one).
    pub reviews: Vec<QcLotReview>,
    /// The site's time zone, whose calendar days the range counts ("Europe/Berlin").
    pub zone_name: String,
    /// The range's first day as typed or chosen, `YYYY-MM-DD`.
    pub range_from: String,
    /// The range's last day.
    pub range_to: String,
    /// What is wrong with the typed range (the default range is shown instead).
    pub range_error: Option<String>,
    /// The link to every value of the last ten years.
    pub whole_history_href: String,
    /// Recent phantom checks, newest first.
    pub phantom_history: Vec<PhantomRow>,
    /// Materials and lots the form offers.
    pub materials: Vec<QcMaterialOption>,
    /// What was wrong with the last submission.
    pub form_error: Option<String>,
    /// True when this user may record a measurement (the form is shown).
    pub can_record: bool,
    /// The set-up forms, for those who may define materials, lots and targets.
    pub setup: Option<QcSetup>,
    /// A refused corrective action: the QC result it was for and what was wrong.
    pub corrective_error: Option<(i64, String)>,
}

impl QcPage {
    /// Every chart as SVG.
    pub fn chart_svgs(&self) -> Vec<String> {
        self.charts.iter().map(levey_jennings_chart).collect()
    }

    /// Every chart as SVG with its review, when it has one.
    pub fn chart_blocks(&self) -> Vec<(String, Option<QcLotReview>)> {
        self.charts
            .iter()
            .enumerate()
            .map(|(i, chart)| (levey_jennings_chart(chart), self.reviews.get(i).cloned()))
            .collect()
    }

    /// The range form's target.
    pub fn range_action(&self) -> &'static str {
        paths::QC
    }

    /// The form's target.
    pub fn action(&self) -> &'static str {
        paths::QC_MEASUREMENTS
    }

    /// What was wrong with a refused corrective action for the QC result `result_id`.
    pub fn corrective_error_for(&self, result_id: &i64) -> Option<&str> {
        self.corrective_error
            .as_ref()
            .filter(|(id, _)| id == result_id)
            .map(|(_, text)| text.as_str())
    }
}

#[cfg(test)]
mod tests {
    use askama::Template;

    use super::*;
    use crate::views::samples;

    fn setup(materials: usize, lots: usize) -> QcSetup {
        let choice = |id| QcChoice {
            id,
            label: format!("choice {id}"),
        };
        QcSetup {
            materials: (1..=materials as i64).map(choice).collect(),
            lots: (1..=lots as i64).map(choice).collect(),
            error: None,
            checklist_open: false,
        }
    }

    fn render(setup: Option<QcSetup>) -> String {
        let mut page = samples::qc();
        page.setup = setup;
        page.render().unwrap_or_else(|e| panic!("qc page: {e}"))
    }

    #[test]
    fn the_set_up_forms_are_only_for_those_who_may_manage_qc() {
        let html = render(None);
        assert!(!html.contains("Set up control materials"));
        assert!(!html.contains("/qc/materials") && !html.contains("/qc/targets"));
    }

    #[test]
    fn on_a_fresh_instrument_the_set_up_opens_with_only_the_material_form() {
        let mut page = samples::qc();
        page.charts.clear();
        page.materials.clear();
        page.setup = Some(setup(0, 0));
        let html = page.render().unwrap_or_else(|e| panic!("qc page: {e}"));
        assert!(
            html.contains("<details open>"),
            "open when nothing is defined"
        );
        assert!(html.contains("No control materials defined yet. Define one below"));
        assert!(html.contains("action=\"/qc/materials\""));
        assert!(
            !html.contains("action=\"/qc/lots\""),
            "no lot without a material"
        );
        assert!(
            !html.contains("action=\"/qc/targets\""),
            "no target without a lot"
        );
        assert!(html.contains("Define a control material first."));
    }

    #[test]
    fn once_lots_exist_the_set_up_is_collapsed_unless_a_form_was_refused() {
        let html = render(Some(setup(2, 2)));
        assert!(html.contains("<details>") && !html.contains("<details open>"));
        for action in ["/qc/materials", "/qc/lots", "/qc/targets"] {
            assert!(html.contains(&format!("action=\"{action}\"")), "{action}");
        }
        assert!(html.contains("name=\"expires_on\"") && html.contains("name=\"sd\""));
        assert!(html.contains("<option value=\"2\">choice 2</option>"));

        let mut refused = setup(2, 2);
        refused.error = Some("sd: the SD must be above 0".into());
        let html = render(Some(refused));
        assert!(html.contains("<details open>"));
        assert!(html.contains("sd: the SD must be above 0"));
    }
}
