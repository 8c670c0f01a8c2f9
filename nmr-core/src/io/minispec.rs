//! Bruker minispec `.dps` exports: TAB-separated `index, time_ms, amplitude` rows.
//!
//! The amplitude is the instrument's phased real channel (it goes negative in the noisy tail), so
//! the train is a real channel with Gaussian noise, not a magnitude train.

use super::{Columns, ImportedTrain, ParseError, Rows, number};

/// Three numeric fields, the first a whole number (the echo index).
pub(super) fn recognises(first_line: &str) -> bool {
    let fields: Vec<&str> = first_line.split_whitespace().collect();
    fields.len() == 3
        && fields[0].parse::<u64>().is_ok()
        && fields[1..].iter().all(|f| f.parse::<f64>().is_ok())
}

pub(super) fn parse(text: &str) -> Result<ImportedTrain, ParseError> {
    let mut rows = Rows::new(Columns::Real);
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if fields.len() != 3 {
            return Err(ParseError::Row {
                line,
                message: format!(
                    "expected index, time (ms) and amplitude, found {} fields",
                    fields.len()
                ),
            });
        }
        rows.lines.push(line);
        rows.times_s.push(number(fields[1], line, "time")? / 1e3);
        rows.first.push(number(fields[2], line, "amplitude")?);
    }
    let (train, _) = rows.into_train(1)?;
    Ok(ImportedTrain::new(
        train,
        "a minispec .dps amplitude is the instrument's phased real channel",
    ))
}

#[cfg(test)]
mod tests {
    use super::super::parse_echo_train;

    #[test]
    fn reads_rows_as_a_real_channel_in_milliseconds() {
        let train =
            parse_echo_train("0\t0.2150800000\t87.09\r\n1\t0.4272800000\t-85.41\r\n").unwrap();
        assert_eq!(train.signal_kind(), crate::SignalKind::Real);
        assert!((train.times_s()[1] - 0.00042728).abs() < 1e-15);
        let e = parse_echo_train("0\t0.2\t87\n1\t0.4\n").unwrap_err();
        assert!(e.to_string().starts_with("line 2"), "{e}");
    }
}
