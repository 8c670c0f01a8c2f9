//! How numbers, categories and calls read on a page: one wording everywhere.
//!
//! "4.2 CTC/7.5 mL (95 % CI 1.1–9.8)", "Not detected", "Detected, below LoQ", "Unfavourable".
//! The HTTP side may reuse these for server-sent event texts so the live view and the report
//! agree. Not here: computing counts or deciding categories.

/// A count per 7.5 mL with the precision a reader needs: one decimal below 100, none above.
pub fn per_7_5ml(value: f64) -> String {
    if !value.is_finite() {
        "—".to_string()
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// "4.2 CTC/7.5 mL (95 % CI 1.1–9.8)".
pub fn count_with_interval(per_7_5ml_value: f64, ci95: [f64; 2]) -> String {
    format!(
        "{} CTC/7.5 mL (95 % CI {}–{})",
        per_7_5ml(per_7_5ml_value),
        per_7_5ml(ci95[0]),
        per_7_5ml(ci95[1])
    )
}

/// The reporting category in words.
pub fn category_words(category: &str) -> String {
    match category {
        "quantified" => "Quantified".to_string(),
        "below_loq" => "Detected, below LoQ".to_string(),
        "not_detected" => "Not detected".to_string(),
        other => other.replace('_', " "),
    }
}

/// The prognostic call in words ("favorable" → "Favourable").
pub fn call_words(call: &str) -> String {
    match call {
        "favorable" | "favourable" => "Favourable".to_string(),
        "unfavorable" | "unfavourable" => "Unfavourable".to_string(),
        "indeterminate" => "Indeterminate".to_string(),
        "" => "No call".to_string(),
        other => other.replace('_', " "),
    }
}

/// A count as the result line reads: the number and interval, or for a sample with nothing
/// detected, the upper bound only ("Not detected (at most 2.8 CTC/7.5 mL, 95 %)").
pub fn result_line(per_7_5ml_value: f64, ci95: [f64; 2], category: &str) -> String {
    match category {
        "not_detected" => format!(
            "Not detected (at most {} CTC/7.5 mL, 95 %)",
            per_7_5ml(ci95[1])
        ),
        _ => count_with_interval(per_7_5ml_value, ci95),
    }
}

/// A value with an optional standard error: "84.2 ± 0.6 ms".
pub fn with_se(value: f64, se: Option<f64>, decimals: usize, unit: &str) -> String {
    match se.filter(|s| s.is_finite()) {
        Some(se) => format!("{value:.decimals$} ± {se:.decimals$} {unit}"),
        None => format!("{value:.decimals$} {unit}"),
    }
    .trim_end()
    .to_string()
}

/// A Larmor frequency in MHz with Hz resolution: "21.472 350 MHz".
pub fn frequency_mhz(freq_hz: f64) -> String {
    let mhz = format!("{:.6}", freq_hz / 1e6);
    match mhz.split_once('.') {
        Some((whole, fraction)) if fraction.len() == 6 => {
            format!("{whole}.{} {} MHz", &fraction[..3], &fraction[3..])
        }
        _ => format!("{mhz} MHz"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_with_units_and_intervals() {
        assert_eq!(
            count_with_interval(4.24, [1.06, 9.81]),
            "4.2 CTC/7.5 mL (95 % CI 1.1–9.8)"
        );
        assert_eq!(
            count_with_interval(212.0, [190.2, 236.7]),
            "212 CTC/7.5 mL (95 % CI 190–237)"
        );
        assert_eq!(
            result_line(0.0, [0.0, 2.84], "not_detected"),
            "Not detected (at most 2.8 CTC/7.5 mL, 95 %)"
        );
        assert_eq!(per_7_5ml(f64::NAN), "—");
    }

    #[test]
    fn categories_and_calls_read_as_words() {
        assert_eq!(category_words("below_loq"), "Detected, below LoQ");
        assert_eq!(category_words("not_detected"), "Not detected");
        assert_eq!(category_words("quantified"), "Quantified");
        assert_eq!(call_words("unfavorable"), "Unfavourable");
        assert_eq!(call_words("favorable"), "Favourable");
        assert_eq!(call_words("indeterminate"), "Indeterminate");
    }

    #[test]
    fn frequencies_and_standard_errors() {
        assert_eq!(frequency_mhz(21_472_350.0), "21.472 350 MHz");
        assert_eq!(with_se(84.234, Some(0.61), 1, "ms"), "84.2 ± 0.6 ms");
        assert_eq!(with_se(84.234, None, 1, "ms"), "84.2 ms");
    }
}
