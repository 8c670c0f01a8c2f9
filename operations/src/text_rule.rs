//! How the operations layer's free-text rules ("1 to 500 characters once surrounding white space
//! is dropped") are stated in the API's OpenAPI document: as one ECMA-262 pattern built from the
//! same bounds the parser checks. Not for: checking text (each rule's parser does that).

use appliance::store::text_pattern::{not_white_space, white_space};

/// A pattern matching text whose trimmed form has `min` to `max` characters (`1 <= min <= max`):
/// optional surrounding white space around a run that begins and ends with a non-space. White
/// space is Rust's (`str::trim`), not ECMA-262's `\s`, which also holds U+FEFF
/// ([`appliance::store::text_pattern`]).
pub fn trimmed_chars_pattern(min: usize, max: usize) -> String {
    let min = min.max(1);
    let max = max.max(min);
    let space = white_space();
    let text = not_white_space();
    if min == 1 {
        format!(
            r"^{space}*{text}(?:[\s\S]{{0,{}}}{text})?{space}*$",
            max.saturating_sub(2)
        )
    } else {
        format!(
            r"^{space}*{text}[\s\S]{{{},{}}}{text}{space}*$",
            min - 2,
            max - 2
        )
    }
}
