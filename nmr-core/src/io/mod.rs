//! Echo-train files: Ferrocount's CSV and real instruments' exports, recognised by content.
//!
//! [`read_echo_trains`] recognises the format by content, not by file name, and returns every
//! train the file holds, each with the [`SignalKind`] it was read as and why:
//! - **CSV** (ours): `#` comment lines, where `# key=value` sets metadata (`te_ms`, `te_us`, `te_s`,
//!   `scans`, `freq_hz`, `temp_c`); then a header naming the time column with its unit (`t_s`,
//!   `t_ms` or `t_us`) followed by `re,im` (complex), `real` (phased real channel), `magnitude`, or
//!   `amplitude` (a magnitude unless a value is negative, then a real channel).
//! - **Green Imaging GeoSpec** `.txt`: INI-like sections with the acquisition in `[Parameters]`,
//!   `[Results]`, `[Calibration]` and `[Sample State]`, and TAB-separated `time_ms, 0, real,
//!   imaginary` rows after `[Data]`: complex, not phased.
//! - **Bruker minispec** `.dps`: TAB-separated `index, time_ms, amplitude` rows, no header. The
//!   amplitude is the instrument's phased real channel (it goes negative in the noisy tail).
//! - **Magritek Prospa** (`CPMGFast`, `cpmgfast`): TAB-separated `time_s, real, imaginary` rows, or
//!   `time_s, real, imaginary, magnitude` (the magnitude column is redundant and not read): complex.
//!   The `acqu.par` or `<name>.par` beside it gives the echo time, scans and frequency.
//! - **Magritek Spinsolve** `T1IRT2` (`T1IRT2.dat` + `acqu.par`): one comma-separated line of
//!   `re, im` pairs per inversion delay; every line is a train of its own, complex, labelled with
//!   its delay, which the `acqu.par` (`minTau`, `maxTau`, `tauSteps`, `logspace`) defines.
//! - **Tecmag TNMR** `.tnt` (binary, `TNT1.xxx`): complex single-precision points, `acq_points`
//!   per echo, summed into one complex echo each; the echo time is the sequence's `Echo_Time`.
//!
//! Files that are an instrument's result rather than its data (a Prospa T2 distribution) are
//! refused as [`ParseError::NotAnEchoTrain`], so a caller can skip them.
//!
//! [`declared_acquisition`] reads only what a file declares before its first echo (its echo time,
//! scans…), so a caller can check a file's echo time from its first kilobytes.
//!
//! Errors name the line (1-based) and what was wrong. Reading files and walking folders is the
//! caller's business; this module only sees bytes and text.

mod csv;
mod geospec;
mod header;
mod minispec;
mod parameters;
mod prospa;
mod spinsolve;
mod tecmag;

use thiserror::Error;

pub use csv::write_csv;
pub use header::declared_acquisition;

use crate::{EchoTrain, SignalKind, TrainError};

/// One train read from a file: the train, which part of the file it is, and why its values were
/// read as the kind they were.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedTrain {
    /// The train.
    pub train: EchoTrain,
    /// Which train of a multi-train file (e.g. `inversion delay 3000 ms`); `None` for a file that
    /// holds one.
    pub label: Option<String>,
    /// Why the values were read as `train.signal_kind()`.
    pub signal_reason: String,
}

impl ImportedTrain {
    pub(crate) fn new(train: EchoTrain, signal_reason: impl Into<String>) -> Self {
        Self {
            train,
            label: None,
            signal_reason: signal_reason.into(),
        }
    }
}

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
    /// A recognised file that holds an instrument's result, not echo data.
    #[error("not an echo train: {what}")]
    NotAnEchoTrain {
        /// What the file is.
        what: String,
    },
    /// A format that needs its parameter file (`acqu.par`) to be read, or a parameter file that
    /// does not fit the data.
    #[error("{message}")]
    Parameters {
        /// What is missing or wrong.
        message: String,
    },
    /// A binary file that is cut short or inconsistent.
    #[error("byte {offset}: {message}")]
    Binary {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads every echo train a file holds, in any supported format.
///
/// `content` is the file's bytes; `parameters` the text of the instrument's parameter file beside
/// it (Prospa and Spinsolve `acqu.par`, or the `<name>.par` of a Prospa pair), when there is one.
/// Formats that need it refuse to guess without it.
pub fn read_echo_trains(
    content: &[u8],
    parameters: Option<&str>,
) -> Result<Vec<ImportedTrain>, ParseError> {
    if tecmag::recognises(content) {
        return tecmag::parse(content).map(|t| vec![t]);
    }
    let text = std::str::from_utf8(content).map_err(|e| ParseError::UnknownFormat {
        first_line: format!(
            "(binary data: not UTF-8 text at byte {}, and not a Tecmag TNT file)",
            e.valid_up_to()
        ),
    })?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if geospec::recognises(text) {
        geospec::parse(text).map(|t| vec![t])
    } else if minispec::recognises(first) {
        minispec::parse(text).map(|t| vec![t])
    } else if prospa::recognises(first) {
        prospa::parse(text, parameters)
    } else if spinsolve::recognises(first) {
        spinsolve::parse(text, parameters)
    } else if csv::recognises(text) {
        csv::parse(text).map(|t| vec![t])
    } else {
        Err(ParseError::UnknownFormat {
            first_line: first.chars().take(60).collect(),
        })
    }
}

/// Parses the one echo train of a text file in any supported single-train format (the first
/// train of a multi-train file).
pub fn parse_echo_train(text: &str) -> Result<EchoTrain, ParseError> {
    let mut trains = read_echo_trains(text.as_bytes(), None)?;
    if trains.is_empty() {
        return Err(ParseError::Train {
            line: 1,
            source: TrainError::Empty,
        });
    }
    Ok(trains.swap_remove(0).train)
}

/// The value columns a text format declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Columns {
    /// `re, im`.
    Complex,
    /// A phased real channel.
    Real,
    /// Magnitudes.
    Magnitude,
    /// `amplitude`: a magnitude unless a value is negative.
    Amplitude,
}

impl Columns {
    pub(crate) fn first_name(self) -> &'static str {
        match self {
            Columns::Complex => "re",
            Columns::Real => "real",
            Columns::Magnitude => "magnitude",
            Columns::Amplitude => "amplitude",
        }
    }
}

/// Rows of numbers with the line each came from, and the columns as built by the format parser.
pub(crate) struct Rows {
    pub lines: Vec<usize>,
    pub times_s: Vec<f64>,
    pub first: Vec<f64>,
    pub second: Option<Vec<f64>>,
    pub columns: Columns,
}

impl Rows {
    pub(crate) fn new(columns: Columns) -> Self {
        Self {
            lines: Vec::new(),
            times_s: Vec::new(),
            first: Vec::new(),
            second: (columns == Columns::Complex).then(Vec::new),
            columns,
        }
    }

    /// Builds the train, pointing a train error at the line of the echo it names, and says why
    /// its values are the kind they are.
    pub(crate) fn into_train(self, header_line: usize) -> Result<(EchoTrain, String), ParseError> {
        let Rows {
            lines,
            times_s,
            first,
            second,
            columns,
        } = self;
        let negative = first.iter().position(|v| *v < 0.0);
        let (kind, reason) = match (columns, second.is_some()) {
            (Columns::Complex, _) | (_, true) => (
                SignalKind::Complex,
                "the file gives in-phase and quadrature columns".to_owned(),
            ),
            (Columns::Real, false) => (
                SignalKind::Real,
                "the file's column is `real`: a phased real channel".to_owned(),
            ),
            (Columns::Magnitude, false) => (
                SignalKind::Magnitude,
                "the file's column is `magnitude`".to_owned(),
            ),
            (Columns::Amplitude, false) => match negative {
                Some(index) => (
                    SignalKind::Real,
                    format!(
                        "the `amplitude` column goes negative (line {}), which no magnitude detector gives: read as a phased real channel",
                        lines.get(index).copied().unwrap_or(header_line)
                    ),
                ),
                None => (
                    SignalKind::Magnitude,
                    "the `amplitude` column is read as a magnitude because no value is negative (override with --signal real if it is a phased channel)".to_owned(),
                ),
            },
        };
        let result = match (second, kind) {
            (Some(im), _) => EchoTrain::complex(times_s, first, im),
            (None, SignalKind::Real) => EchoTrain::real(times_s, first),
            (None, _) => EchoTrain::magnitude(times_s, first),
        };
        let train = result.map_err(|source| {
            let index = match source {
                TrainError::NotFinite { index, .. }
                | TrainError::NotIncreasing { index, .. }
                | TrainError::NegativeMagnitude { index, .. } => Some(index),
                TrainError::Empty
                | TrainError::LengthMismatch { .. }
                | TrainError::KindConversion { .. } => None,
            };
            let line = index
                .and_then(|i| lines.get(i).copied())
                .unwrap_or(header_line);
            ParseError::Train { line, source }
        })?;
        Ok((train, reason))
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
