//! Echo-train files, parsed from text: Ferrocount's CSV and two real instrument exports.
//!
//! [`parse_echo_train`] recognises the format by content, not by file name:
//! - **CSV** (ours): `#` comment lines, where `# key=value` sets metadata (`te_ms`, `te_us`, `te_s`,
//!   `scans`, `freq_hz`, `temp_c`); then a header naming the time column with its unit (`t_s`,
//!   `t_ms` or `t_us`) followed by `re,im` (complex) or one `magnitude`/`amplitude` column.
//! - **Green Imaging GeoSpec** `.txt`: INI-like sections with the acquisition in `[Parameters]`,
//!   `[Results]`, `[Calibration]` and `[Sample State]`, and TAB-separated `time_ms, 0, real,
//!   imaginary` rows after `[Data]`.
//! - **Bruker minispec** `.dps`: TAB-separated `index, time_ms, amplitude` rows, no header.
//!
//! [`declared_acquisition`] reads only what a file declares before its first echo (its echo time,
//! scans…), so a caller can check a file's echo time from its first kilobytes.
//!
//! Errors name the line (1-based) and what was wrong. Reading files and walking folders is the
//! caller's business; this module only sees text.

mod csv;
mod geospec;
mod header;
mod minispec;

use thiserror::Error;

pub use csv::write_csv;
pub use header::declared_acquisition;

use crate::{EchoTrain, TrainError};

/// Why a text is not a readable echo train.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum ParseError {
    /// Nothing in the text looks like a known format.
    #[error(
        "not a recognised echo-train file: expected a CSV header such as `t_ms,re,im`, a GeoSpec `[Data]` section, or minispec `index<TAB>time<TAB>amplitude` rows; the first line is `{first_line}`"
    )]
    UnknownFormat {
        /// The first non-empty line, shortened.
        first_line: String,
    },
    /// A header that does not name the columns we need.
    #[error("line {line}: {message}")]
    Header {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value that is not a number, or a row of the wrong width.
    #[error("line {line}: {message}")]
    Row {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A metadata value that is not valid.
    #[error("line {line}: metadata `{key}`: {message}")]
    Metadata {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The numbers do not form a valid train.
    #[error("line {line}: {source}")]
    Train {
        /// 1-based line of the offending echo (or of the header when no echo is to blame).
        line: usize,
        /// The train's own complaint.
        source: TrainError,
    },
}

/// Parses an echo train from the text of a file in any supported format.
pub fn parse_echo_train(text: &str) -> Result<EchoTrain, ParseError> {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if geospec::recognises(text) {
        geospec::parse(text)
    } else if minispec::recognises(first) {
        minispec::parse(text)
    } else if csv::recognises(text) {
        csv::parse(text)
    } else {
        Err(ParseError::UnknownFormat {
            first_line: first.chars().take(60).collect(),
        })
    }
}

/// Rows of numbers with the line each came from, and the columns as built by the format parser.
pub(crate) struct Rows {
    pub lines: Vec<usize>,
    pub times_s: Vec<f64>,
    pub first: Vec<f64>,
    pub second: Option<Vec<f64>>,
}

impl Rows {
    pub(crate) fn new(complex: bool) -> Self {
        Self {
            lines: Vec::new(),
            times_s: Vec::new(),
            first: Vec::new(),
            second: complex.then(Vec::new),
        }
    }

    /// Builds the train, pointing a train error at the line of the echo it names.
    pub(crate) fn into_train(self, header_line: usize) -> Result<EchoTrain, ParseError> {
        let Rows {
            lines,
            times_s,
            first,
            second,
        } = self;
        let result = match second {
            Some(im) => EchoTrain::complex(times_s, first, im),
            None => EchoTrain::magnitude(times_s, first),
        };
        result.map_err(|source| {
            let index = match source {
                TrainError::NotFinite { index, .. }
                | TrainError::NotIncreasing { index, .. }
                | TrainError::NegativeMagnitude { index, .. } => Some(index),
                TrainError::Empty | TrainError::LengthMismatch { .. } => None,
            };
            let line = index
                .and_then(|i| lines.get(i).copied())
                .unwrap_or(header_line);
            ParseError::Train { line, source }
        })
    }
}

/// Parses one numeric field, naming the line and column when it is not a number.
pub(crate) fn number(field: &str, line: usize, column: &str) -> Result<f64, ParseError> {
    field.trim().parse::<f64>().map_err(|_| ParseError::Row {
        line,
        message: format!("{column} `{}` is not a number", field.trim()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_text_is_refused_with_its_first_line() {
        let e = parse_echo_train("hello world\n1 2 3\n").unwrap_err();
        assert!(e.to_string().contains("hello world"), "{e}");
        assert!(matches!(
            parse_echo_train(""),
            Err(ParseError::UnknownFormat { .. })
        ));
    }
}
