//! A CTC count as pages show it: value, interval, category and call, worded by [`super::format`].

use super::format;

/// A count estimate for display.
#[derive(Clone, Debug, PartialEq)]
pub struct CountView {
    /// Estimated CTC per 7.5 mL.
    pub per_7_5ml: f64,
    /// 95 % interval per 7.5 mL.
    pub per_7_5ml_ci95: [f64; 2],
    /// `quantified`, `below_loq` or `not_detected`.
    pub category: String,
    /// `favorable`, `unfavorable`, or empty when no call was made.
    pub call: String,
    /// The indication the call was made for.
    pub indication: String,
    /// True when the 95 % interval contains the cut-off: the call could go either way.
    pub interval_spans_cutoff: bool,
    /// The result version shown (above 1: it corrects the earlier ones, which are kept).
    pub version: u32,
}

impl CountView {
    /// "4.2 CTC/7.5 mL (95 % CI 1.1–9.8)", or the upper bound for "not detected".
    pub fn text(&self) -> String {
        format::result_line(self.per_7_5ml, self.per_7_5ml_ci95, &self.category)
    }

    /// "Quantified", "Detected, below LoQ", "Not detected".
    pub fn category_words(&self) -> String {
        format::category_words(&self.category)
    }

    /// "Favourable", "Unfavourable", "No call".
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

    /// CSS class for the call badge.
    pub fn call_class(&self) -> &'static str {
        match self.call.as_str() {
            "unfavorable" | "unfavourable" => "call-unfavourable",
            "favorable" | "favourable" => "call-favourable",
            _ => "call-none",
        }
    }
}
