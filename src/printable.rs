//! Outside text made safe to print on a terminal: control characters (C0, DEL, C1, and the
//! Unicode bidirectional overrides) become visible escapes such as `\u{1b}`, so a lot name, a file
//! name or a line quoted from a file cannot move the cursor, recolour the screen or hide text.

use std::borrow::Cow;

/// `text` with every control character escaped; newlines too unless `keep_newlines`.
pub fn printable(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| is_control(c) && !(keep_newlines && c == '\n');
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// C0 and C1 controls, DEL, and the bidirectional embedding, override and isolate characters.
fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(printable("LOT-1 µ ΔR2", false), Cow::Borrowed(_)));
        assert_eq!(printable("A\u{1b}[2JB", false), "A\\u{1b}[2JB");
        assert_eq!(printable("a\nb\r", false), "a\\u{a}b\\u{d}");
        assert_eq!(printable("a\nb\r", true), "a\nb\\u{d}");
        assert_eq!(
            printable("x\u{9b}y\u{7f}\u{202e}", false),
            "x\\u{9b}y\\u{7f}\\u{202e}"
        );
    }
}
