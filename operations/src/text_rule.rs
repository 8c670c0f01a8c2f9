//! How the operations layer's free-text rules ("1 to 500 characters once surrounding white space
//! is dropped") are stated in the API's OpenAPI document: as one ECMA-262 pattern built from the
//! same bounds the parser checks. Not for: checking text (each rule's parser does that).

/// A pattern matching text whose trimmed form has `min` to `max` characters (`1 <= min <= max`):
/// optional surrounding white space around a run that begins and ends with a non-space.
pub fn trimmed_chars_pattern(min: usize, max: usize) -> String {
    let min = min.max(1);
    let max = max.max(min);
    if min == 1 {
        format!(r"^\s*\S(?:[\s\S]{{0,{}}}\S)?\s*$", max.saturating_sub(2))
    } else {
        format!(r"^\s*\S[\s\S]{{{},{}}}\S\s*$", min - 2, max - 2)
    }
}
