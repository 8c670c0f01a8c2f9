//! The one error of the domain's named vocabularies (count category, call, tube kind, QC verdict):
//! a text that is none of a vocabulary's words.
//!
//! Each vocabulary type carries its own text form (`as_str`) and parses it back (`FromStr`), so
//! the database, the API and the command line write and read the same words, and nobody compares
//! the strings by hand.

/// A text that names no word of a vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?} is not one of: {expected}")]
pub struct UnknownName {
    /// The vocabulary, e.g. "count category".
    pub what: &'static str,
    /// The text that was read.
    pub text: String,
    /// The words it could have been.
    pub expected: &'static str,
}

/// Finds the word of `all` whose text is `text`.
pub(crate) fn parse_name<T: Copy>(
    text: &str,
    all: &[T],
    as_str: impl Fn(T) -> &'static str,
    what: &'static str,
    expected: &'static str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|word| as_str(*word) == text)
        .ok_or_else(|| UnknownName {
            what,
            text: text.to_owned(),
            expected,
        })
}

/// Gives a fieldless enum its text form: `ALL`, `as_str`, `Display` and `FromStr` (with
/// [`UnknownName`]), from one table of variants and their words.
macro_rules! vocabulary {
    ($type:ident, $what:literal, $expected:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $type {
            /// Every word of the vocabulary, in order.
            pub const ALL: &'static [$type] = &[$($type::$variant),+];

            /// The stable name used in JSON, reports and the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($type::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $type {
            type Err = $crate::vocabulary::UnknownName;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($type::$variant),)+
                    _ => Err($crate::vocabulary::UnknownName {
                        what: $what,
                        text: text.to_owned(),
                        expected: $expected,
                    }),
                }
            }
        }
    };
}
pub(crate) use vocabulary;
