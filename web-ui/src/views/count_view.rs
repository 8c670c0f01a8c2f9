//! A CTC count as pages show it: value, interval, category, call and status, worded by
//! [`super::format`]. The printed count, the reported call and the status were decided by the
//! operations layer (`operations::reported`); this only words them.

use super::format;

/// A count estimate for display.
#[derive(Clone, Debug, PartialEq)]
pub struct CountView {
    /// Estimated CTC per 7.5 mL (full precision, for charts).
    pub per_7_5ml: f64,
    /// 95 % interval per 7.5 mL (full precision, for charts).
    pub per_7_5ml_ci95: [f64; 2],
    /// The count as printed: "4 CTC/7.5 mL (95 % CI 1–10)" (whole cells, never rounded across
    /// the cut-off).
    pub line: String,
    /// `quantified`, `below_loq` or `not_detected`.
    pub category: String,
    /// The reported call: `favorable`, `unfavorable`, `indeterminate`, or empty when no call was
    /// made.
    pub call: String,
    /// The indication the call was made for.
    pub indication: String,
    /// The cut-off as printed ("5 CTC/7.5 mL"), empty without one.
    pub cutoff: String,
    /// True when the 95 % interval contains the cut-off (the call is then indeterminate).
    pub interval_spans_cutoff: bool,
    /// The result version shown (above 1: it corrects the earlier ones, which are kept).
    pub version: u32,
    /// `PRELIMINARY`, `FINAL` or `CORRECTED` for the current version; empty for an earlier one.
    pub status: String,
    /// Whether a QC flag holds the result (it cannot be released until resolved).
    pub qc_hold: bool,
}

impl CountView {
    /// "4 CTC/7.5 mL (95 % CI 1–10)", or the upper bound for "not detected".
    pub fn text(&self) -> String {
        self.line.clone()
    }

    /// "Quantified", "Detected, below LoQ", "Not detected".
    pub fn category_words(&self) -> String {
        format::category_words(&self.category)
    }

    /// "Favourable", "Unfavourable", "Indeterminate", "No call".
    pub fn call_words(&self) -> String {
        format::call_words(&self.call)
    }

    /// Whether the version shown corrects an earlier one.
    pub fn corrected(&self) -> bool {
        self.version > 1
    }

    /// "Corrected (version 2)", for a badge beside a corrected result.
    pub fn corrected_words(&self) -> String {
        format!("Corrected (version {})", self.version)
    }

    /// Whether the result is not released (preliminary): it is then marked so wherever it
    /// shows.
    pub fn preliminary(&self) -> bool {
        self.status == "PRELIMINARY"
    }

    /// "Preliminary — not released", "Final", "Corrected", for the status badge.
    pub fn status_words(&self) -> String {
        match self.status.as_str() {
            "PRELIMINARY" => "Preliminary — not released".to_owned(),
            "FINAL" => "Final".to_owned(),
            "CORRECTED" => "Corrected, released".to_owned(),
            _ => String::new(),
        }
    }

    /// CSS class for the status badge.
    pub fn status_class(&self) -> &'static str {
        match self.status.as_str() {
            "PRELIMINARY" => "status-preliminary",
            "FINAL" | "CORRECTED" => "status-final",
            _ => "status-none",
        }
    }

    /// CSS class for the call badge.
    pub fn call_class(&self) -> &'static str {
        match self.call.as_str() {
            "unfavorable" | "unfavourable" => "call-unfavourable",
            "favorable" | "favourable" => "call-favourable",
            "indeterminate" => "call-indeterminate",
            _ => "call-none",
        }
    }
}
