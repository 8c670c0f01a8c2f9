//! Rust's white space stated as ECMA-262 character classes, for the patterns by which the OpenAPI
//! document states the text rules of the parsers (`Mrn::pattern`, `Username::pattern`, the
//! operations layer's trimmed-length rules).
//!
//! The parsers drop surrounding white space with `str::trim`, which drops exactly the characters
//! of Unicode's `White_Space` property (`char::is_whitespace`). ECMA-262's `\s` is another set:
//! it holds U+FEFF (ZERO WIDTH NO-BREAK SPACE), which `trim` keeps, and lacks U+0085 (NEXT
//! LINE), which `trim` drops; a pattern written with `\s` therefore disagreed with the server on
//! a label made only of U+FEFF (issue 16). These classes list `White_Space` itself.
//!
//! Not for: checking text (the parsers do that).

/// The ranges of Unicode's `White_Space` property, which `char::is_whitespace` and `str::trim`
/// use.
const WHITE_SPACE_RANGES: [(char, char); 10] = [
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

fn class(negated: bool) -> String {
    let mut out = String::from(if negated { "[^" } else { "[" });
    for (first, last) in WHITE_SPACE_RANGES {
        out.push_str(&format!("\\u{:04X}", u32::from(first)));
        if first != last {
            out.push_str(&format!("-\\u{:04X}", u32::from(last)));
        }
    }
    out.push(']');
    out
}

/// One white-space character as `str::trim` sees it, as an ECMA-262 class (`\uXXXX` escapes).
pub fn white_space() -> String {
    class(false)
}

/// One character that `str::trim` does not drop, as an ECMA-262 class.
pub fn not_white_space() -> String {
    class(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranges_are_exactly_rusts_white_space() {
        let listed: Vec<char> = WHITE_SPACE_RANGES
            .iter()
            .flat_map(|&(first, last)| first..=last)
            .collect();
        let rust: Vec<char> = (0..=0x10_FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        assert_eq!(listed, rust);
        assert!(!listed.contains(&'\u{feff}'));
        assert_eq!("\u{feff}".trim(), "\u{feff}");
    }

    #[test]
    fn the_classes_are_written_with_four_digit_escapes() {
        assert!(white_space().starts_with(r"[\u0009-\u000D\u0020\u0085"));
        assert!(not_white_space().starts_with(r"[^\u0009"));
        assert!(white_space().ends_with(r"\u3000]"));
    }
}
