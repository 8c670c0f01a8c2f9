//! Magritek Prospa CPMG exports (`CPMGFast`, `cpmgfast`): TAB-separated rows of `time_s, real,
//! imaginary` (the NMR-MOUSE's `data-*.dat`) or `time_s, real, imaginary, magnitude` (the rock-core
//! analyser's `<name>.dat`). The channels are the receiver's, so the train is complex and is phased
//! here; the magnitude column, when present, is redundant and not read. Times are taken as stored
//! (the rock-core export stores the first echo at half the echo time; a mono fit's T2 does not
//! depend on a shift of the time axis, a spectrum's short bins do).
//!
//! The parameter file beside the data (`acqu.par`, or `<name>.par`) gives the echo time, scans and
//! frequency; its `nrEchoes`, when present, must match the rows. A two-column file is Prospa's T2
//! distribution (T2 in s, amplitude), the vendor's result, not data.

use super::parameters::Parameters;
use super::{Columns, ImportedTrain, ParseError, Rows, number};

/// Rows of three or four numbers whose first (the time in seconds) is not a whole number (that is
/// minispec's echo index); two-number rows are recognised too, to be refused as a distribution.
pub(super) fn recognises(first_line: &str) -> bool {
    let fields: Vec<&str> = first_line.split('\t').map(str::trim).collect();
    (2..=4).contains(&fields.len())
        && fields.iter().all(|f| f.parse::<f64>().is_ok())
        && fields[0].parse::<u64>().is_err()
}

pub(super) fn parse(
    text: &str,
    parameters: Option<&str>,
) -> Result<Vec<ImportedTrain>, ParseError> {
    let mut rows = Rows::new(Columns::Complex);
    let mut width = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let fields: Vec<&str> = trimmed.split('\t').collect();
        let expected = *width.get_or_insert(fields.len());
        if expected == 2 {
            return Err(ParseError::NotAnEchoTrain {
                what: "a Prospa T2 distribution (two columns: T2 in s, amplitude), the vendor's result"
                    .into(),
            });
        }
        if fields.len() != expected {
            return Err(ParseError::Row {
                line,
                message: format!(
                    "expected {expected} TAB-separated values (time in s, real, imaginary{}), found {}",
                    if expected == 4 { ", magnitude" } else { "" },
                    fields.len()
                ),
            });
        }
        rows.lines.push(line);
        rows.times_s.push(number(fields[0], line, "time")?);
        rows.first.push(number(fields[1], line, "real")?);
        if let Some(im) = rows.second.as_mut() {
            im.push(number(fields[2], line, "imaginary")?);
        }
    }
    let echoes = rows.times_s.len();
    let acquisition = match parameters {
        Some(text) => {
            let parameters = Parameters::parse(text);
            if let Some(expected) = parameters.number("nrEchoes")?
                && expected != echoes as f64
            {
                return Err(ParseError::Parameters {
                    message: format!(
                        "the parameter file says nrEchoes = {expected} but the data hold {echoes} echoes: it belongs to another acquisition"
                    ),
                });
            }
            parameters.acquisition()?
        }
        None => crate::Acquisition::default(),
    };
    let (train, _) = rows.into_train(1)?;
    Ok(vec![ImportedTrain::new(
        train.with_acquisition(acquisition),
        "Prospa exports the receiver's real and imaginary channels",
    )])
}

#[cfg(test)]
mod tests {
    use super::super::read_echo_trains;
    use crate::SignalKind;

    #[test]
    fn reads_three_and_four_column_exports_with_their_parameters() {
        let par = "echoTime = 72.5\nnrScans = 8\nb1Freq       =  13.24\nnrEchoes = 2\n";
        let text = "7.25e-005\t2.2718\t0.0899843\n0.000145\t3.04452\t0.0624918\n";
        let trains = read_echo_trains(text.as_bytes(), Some(par)).unwrap();
        assert_eq!(trains.len(), 1);
        let train = &trains[0].train;
        assert_eq!(train.signal_kind(), SignalKind::Complex);
        assert_eq!(train.times_s(), &[7.25e-5, 0.000145]);
        assert!((train.acquisition().te_s.unwrap() - 72.5e-6).abs() < 1e-15);
        assert_eq!(train.acquisition().scans, Some(8));
        assert!((train.acquisition().freq_hz.unwrap() - 13.24e6).abs() < 1e-3);
        let four =
            "0.0001155\t12.884\t-0.514908\t12.8943\n0.0003465\t14.6433\t0.0787049\t14.6435\n";
        let trains = read_echo_trains(four.as_bytes(), None).unwrap();
        assert_eq!(trains[0].train.len(), 2);
    }

    #[test]
    fn a_distribution_a_short_row_and_a_foreign_parameter_file_are_refused() {
        let e = read_echo_trains(b"0.000231\t0.115577\n0.000241815\t0.107403\n", None).unwrap_err();
        assert!(e.to_string().contains("T2 distribution"), "{e}");
        let e = read_echo_trains(b"0.1\t1\t0\n0.2\t1\n", None).unwrap_err();
        assert!(e.to_string().starts_with("line 2"), "{e}");
        let e = read_echo_trains(b"0.1\t1\t0\n0.2\t1\t0\n", Some("nrEchoes = 1000\n")).unwrap_err();
        assert!(e.to_string().contains("nrEchoes = 1000"), "{e}");
        let e = read_echo_trains(b"0.1\t1\t0\n", Some("echoTime = fast\n")).unwrap_err();
        assert!(e.to_string().contains("echoTime"), "{e}");
    }
}
