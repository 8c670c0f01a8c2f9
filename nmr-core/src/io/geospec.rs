//! Green Imaging GeoSpec `.txt` exports (INI-like sections, `[Data]` rows).

use super::{Columns, ImportedTrain, ParseError, Rows, number};
use crate::Acquisition;

/// A GeoSpec file is sectioned, with a `[Data]` section.
pub(super) fn recognises(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    first.starts_with('[')
        && text
            .lines()
            .any(|l| l.trim().eq_ignore_ascii_case("[data]"))
}

pub(super) fn parse(text: &str) -> Result<ImportedTrain, ParseError> {
    let mut acquisition = Acquisition::default();
    let (data_line, rows) = read_sections(text, &mut acquisition, true)?;
    let (train, _) = rows.into_train(data_line)?;
    Ok(ImportedTrain::new(
        train.with_acquisition(acquisition),
        "GeoSpec exports the receiver's real and imaginary channels, not phased",
    ))
}

/// Reads the metadata of the sections before `[Data]` into `acquisition`.
pub(super) fn read_header(text: &str, acquisition: &mut Acquisition) -> Result<(), ParseError> {
    read_sections(text, acquisition, false).map(|_| ())
}

/// Walks the sections: metadata into `acquisition`, and (when `data`) the `[Data]` rows, which
/// are returned with the line of the `[Data]` heading. Without `data` it stops at `[Data]`.
fn read_sections(
    text: &str,
    acquisition: &mut Acquisition,
    data: bool,
) -> Result<(usize, Rows), ParseError> {
    let mut section = String::new();
    let mut rows = Rows::new(Columns::Complex);
    let mut data_line = 0;
    let mut header_seen = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = trimmed[1..trimmed.len() - 1].to_ascii_lowercase();
            if section == "data" {
                data_line = line;
                if !data {
                    break;
                }
            }
            continue;
        }
        if section == "data" {
            let fields: Vec<&str> = trimmed.split('\t').collect();
            if !header_seen
                && fields
                    .first()
                    .is_some_and(|f| f.trim().parse::<f64>().is_err())
            {
                header_seen = true; // "X  Y  Real  Imaginary"
                continue;
            }
            header_seen = true;
            if fields.len() < 4 {
                return Err(ParseError::Row {
                    line,
                    message: format!(
                        "expected time, 0, real, imaginary separated by TABs, found {} fields",
                        fields.len()
                    ),
                });
            }
            rows.lines.push(line);
            rows.times_s.push(number(fields[0], line, "time")? / 1e3);
            rows.first.push(number(fields[2], line, "real")?);
            if let Some(im) = rows.second.as_mut() {
                im.push(number(fields[3], line, "imaginary")?);
            }
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let metadata = |scale: f64| -> Result<Option<f64>, ParseError> {
            match value.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v * scale)),
                _ => Err(ParseError::Metadata {
                    line,
                    key: key.trim().to_owned(),
                    message: format!("`{value}` is not a number"),
                }),
            }
        };
        match (section.as_str(), key.trim()) {
            // Tau is half the echo spacing, in ms.
            ("parameters", "Tau") => acquisition.te_s = metadata(2e-3)?,
            ("results", "AcqNSA") => acquisition.scans = metadata(1.0)?.map(|v| v as u32),
            // The resonant frequency is given in kHz.
            ("calibration", "Resonant Frequency") => acquisition.freq_hz = metadata(1e3)?,
            ("sample state", "Temperature") => acquisition.temp_c = metadata(1.0)?,
            _ => {}
        }
    }
    Ok((data_line, rows))
}

#[cfg(test)]
mod tests {
    use super::super::parse_echo_train;
    use crate::Signal;

    #[test]
    fn reads_sections_and_data() {
        let text = "[GITData]\n;comment\n[Parameters]\nTau=0.054\n[Results]\nAcqNSA=32\n[Calibration]\nResonant Frequency=2195.8\n[Sample State]\nTemperature=25.0\n[Data]\r\nX\tY\tReal\tImaginary\r\n0.108\t0.0\t-48037.0\t-11846.0\r\n0.216\t0.0\t-48075.5\t-9315.0\r\n";
        let train = parse_echo_train(text).unwrap();
        assert_eq!(train.len(), 2);
        assert!((train.acquisition().te_s.unwrap() - 0.000108).abs() < 1e-15);
        assert_eq!(train.acquisition().scans, Some(32));
        assert_eq!(train.acquisition().freq_hz, Some(2_195_800.0));
        assert_eq!(train.acquisition().temp_c, Some(25.0));
        let Signal::Complex { re, im } = train.signal() else {
            panic!("complex expected")
        };
        assert_eq!((re[1], im[1]), (-48075.5, -9315.0));
    }

    #[test]
    fn bad_rows_name_their_line() {
        let e = parse_echo_train("[Parameters]\n[Data]\nX\tY\tReal\tImaginary\n0.1\t0\t1\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("line 4"), "{e}");
        let e = parse_echo_train("[Parameters]\nTau=abc\n[Data]\n0.1\t0\t1\t0\n").unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("Tau"),
            "{e}"
        );
        let e = parse_echo_train("[Parameters]\n[Data]\n").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }
}
