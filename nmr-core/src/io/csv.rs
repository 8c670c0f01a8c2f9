//! Ferrocount's echo-train CSV: reading and writing.
//!
//! The columns after the time say what the values are: `re,im` (complex), `real` (a phased real
//! channel), `magnitude`. The ambiguous `amplitude` column (written by many tools for either) is
//! read as a magnitude unless a value is negative, which no magnitude detector gives, and then as a
//! phased real channel; the imported train says which rule decided.

use std::fmt::Write as _;

use super::{Columns, ImportedTrain, ParseError, Rows, number};
use crate::{Acquisition, Signal};

/// A CSV starts with `#` comments or has a header whose first column is a time with its unit.
pub(super) fn recognises(text: &str) -> bool {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    first.is_some_and(|l| l.starts_with('#'))
        || text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .and_then(|header| header.split(',').next())
            .is_some_and(|first| time_scale(first.trim()).is_some())
}

/// Units per second of a time column name (divide by it: division by an exact power of ten is
/// correctly rounded, so `100` µs reads as exactly `1e-4` s).
fn time_scale(column: &str) -> Option<f64> {
    match column.to_ascii_lowercase().as_str() {
        "t_s" => Some(1.0),
        "t_ms" => Some(1e3),
        "t_us" => Some(1e6),
        _ => None,
    }
}

pub(super) fn parse(text: &str) -> Result<ImportedTrain, ParseError> {
    let mut acquisition = Acquisition::default();
    let mut header: Option<(usize, f64, Columns)> = None;
    let mut rows = Rows::new(Columns::Magnitude);
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            read_metadata(comment, line, &mut acquisition)?;
            continue;
        }
        let Some((_, scale, columns)) = header else {
            let fields: Vec<&str> = trimmed.split(',').map(str::trim).collect();
            let read = read_header(&fields, line)?;
            rows = Rows::new(read.2);
            header = Some(read);
            continue;
        };
        let complex = columns == Columns::Complex;
        // Data rows are most of a file: split them without allocating.
        let width = if complex { 3 } else { 2 };
        let mut fields = [""; 3];
        let mut found = 0;
        for field in trimmed.split(',') {
            if let Some(slot) = fields.get_mut(found) {
                *slot = field;
            }
            found += 1;
        }
        if found != width {
            return Err(ParseError::Row {
                line,
                message: format!("expected {width} values, found {found}"),
            });
        }
        rows.lines.push(line);
        rows.times_s.push(number(fields[0], line, "time")? / scale);
        rows.first
            .push(number(fields[1], line, columns.first_name())?);
        if let Some(im) = rows.second.as_mut() {
            im.push(number(fields[2], line, "im")?);
        }
    }
    let Some((header_line, _, _)) = header else {
        return Err(ParseError::Header {
            line: text.lines().count().max(1),
            message: "no header row: expected e.g. `t_ms,re,im` or `t_ms,magnitude`".into(),
        });
    };
    let (train, reason) = rows.into_train(header_line)?;
    Ok(ImportedTrain::new(
        train.with_acquisition(acquisition),
        reason,
    ))
}

fn read_header(fields: &[&str], line: usize) -> Result<(usize, f64, Columns), ParseError> {
    let scale = time_scale(fields[0]).ok_or_else(|| ParseError::Header {
        line,
        message: format!("first column `{}` must be t_s, t_ms or t_us", fields[0]),
    })?;
    let rest: Vec<String> = fields[1..].iter().map(|f| f.to_ascii_lowercase()).collect();
    let columns = match rest
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["re", "im"] => Columns::Complex,
        ["real"] => Columns::Real,
        ["magnitude"] => Columns::Magnitude,
        ["amplitude"] => Columns::Amplitude,
        _ => {
            return Err(ParseError::Header {
                line,
                message: format!(
                    "after the time column expected `re,im`, `real`, `magnitude` or `amplitude`, found `{}`",
                    fields[1..].join(",")
                ),
            });
        }
    };
    Ok((line, scale, columns))
}

/// `# key=value` pairs (several may share a line, separated by spaces or commas).
pub(super) fn read_metadata(
    comment: &str,
    line: usize,
    acquisition: &mut Acquisition,
) -> Result<(), ParseError> {
    for pair in comment
        .split([' ', ',', ';', '\t'])
        .filter(|p| p.contains('='))
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = key.trim().to_ascii_lowercase();
        let bad = |message: &str| ParseError::Metadata {
            line,
            key: key.clone(),
            message: message.to_owned(),
        };
        let positive = |per_unit: f64| -> Result<f64, ParseError> {
            match value.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Ok(v / per_unit),
                _ => Err(bad(&format!("`{}` is not a positive number", value.trim()))),
            }
        };
        match key.as_str() {
            "te_s" => acquisition.te_s = Some(positive(1.0)?),
            "te_ms" => acquisition.te_s = Some(positive(1e3)?),
            "te_us" => acquisition.te_s = Some(positive(1e6)?),
            "freq_hz" => acquisition.freq_hz = Some(positive(1.0)?),
            "scans" | "na" => {
                let scans = value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        bad(&format!(
                            "`{}` is not a positive whole number",
                            value.trim()
                        ))
                    })?;
                acquisition.scans = Some(scans);
            }
            "temp_c" => match value.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => acquisition.temp_c = Some(v),
                _ => return Err(bad(&format!("`{}` is not a number", value.trim()))),
            },
            _ => {} // Other annotations are kept by the file, not by us.
        }
    }
    Ok(())
}

/// Writes a train as Ferrocount CSV: metadata comments, a `t_ms` column, and `re,im`, `real` or
/// `magnitude`. Values are written with full round-trip precision.
pub fn write_csv(train: &crate::EchoTrain) -> String {
    let mut out = String::with_capacity(train.len() * 40 + 128);
    let a = train.acquisition();
    if let Some(te) = a.te_s {
        let _ = writeln!(out, "# te_ms={}", te * 1e3);
    }
    if let Some(scans) = a.scans {
        let _ = writeln!(out, "# scans={scans}");
    }
    if let Some(f) = a.freq_hz {
        let _ = writeln!(out, "# freq_hz={f}");
    }
    if let Some(t) = a.temp_c {
        let _ = writeln!(out, "# temp_c={t}");
    }
    let times = train.times_s().iter().map(|t| t * 1e3);
    match train.signal() {
        Signal::Complex { re, im } => {
            out.push_str("t_ms,re,im\n");
            for ((t, x), y) in times.zip(re).zip(im) {
                let _ = writeln!(out, "{t},{x},{y}");
            }
        }
        Signal::Real(v) => {
            out.push_str("t_ms,real\n");
            for (t, x) in times.zip(v) {
                let _ = writeln!(out, "{t},{x}");
            }
        }
        Signal::Magnitude(m) => {
            out.push_str("t_ms,magnitude\n");
            for (t, x) in times.zip(m) {
                let _ = writeln!(out, "{t},{x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::parse_echo_train;
    use super::*;

    #[test]
    fn reads_complex_and_magnitude_with_metadata_and_units() {
        let text = "# instrument note\n# te_ms=4 scans=4\n# temp_c=24.5, freq_hz=20860000\nt_ms,re,im\n4,1.0,0.1\n8,0.9,-0.1\n";
        let train = parse_echo_train(text).unwrap();
        assert_eq!(train.times_s(), &[0.004, 0.008]);
        assert_eq!(train.acquisition().te_s, Some(0.004));
        assert_eq!(train.acquisition().scans, Some(4));
        assert_eq!(train.acquisition().temp_c, Some(24.5));
        assert_eq!(train.acquisition().freq_hz, Some(20_860_000.0));
        let train = parse_echo_train("T_US, Amplitude\n100, 5\n200, 4\n").unwrap();
        assert!(train.is_magnitude());
        assert_eq!(train.times_s(), &[100e-6, 200e-6]);
    }

    #[test]
    fn the_columns_declare_the_kind_and_amplitude_follows_its_rule() {
        use crate::SignalKind;
        let read = |text: &str| super::super::read_echo_trains(text.as_bytes(), None).unwrap();
        let real = read("t_ms,real\n1,5\n2,-0.1\n");
        assert_eq!(real[0].train.signal_kind(), SignalKind::Real);
        assert!(
            real[0].signal_reason.contains("`real`"),
            "{}",
            real[0].signal_reason
        );
        let magnitude = read("t_ms,magnitude\n1,5\n2,0.1\n");
        assert_eq!(magnitude[0].train.signal_kind(), SignalKind::Magnitude);
        // `amplitude`: magnitude while no value is negative, a real channel once one is.
        let positive = read("t_ms,amplitude\n1,5\n2,0.1\n");
        assert_eq!(positive[0].train.signal_kind(), SignalKind::Magnitude);
        assert!(positive[0].signal_reason.contains("no value is negative"));
        let negative = read("t_ms,amplitude\n1,5\n2,-0.1\n");
        assert_eq!(negative[0].train.signal_kind(), SignalKind::Real);
        assert!(
            negative[0].signal_reason.contains("line 3"),
            "{}",
            negative[0].signal_reason
        );
        let complex = read("t_ms,re,im\n1,5,0.1\n2,1,0\n");
        assert_eq!(complex[0].train.signal_kind(), SignalKind::Complex);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("t_ms,re,im\n1,1,0\n2,x,0\n", "line 3", "re `x`"),
            ("t_ms,re,im\n1,1,0\n2,1\n", "line 3", "expected 3 values"),
            ("t_ms,re,im\n1,1,0\n1,1,0\n", "line 3", "strictly increase"),
            ("t_ms,re,im\n1,1,0\n2,NaN,0\n", "line 3", "not a finite"),
            ("t_ms,magnitude\n1,1\n2,-1\n", "line 3", "negative"),
            ("# te_ms=-3\nt_ms,re,im\n1,1,0\n", "line 1", "te_ms"),
            ("t_ms,foo\n1,1\n", "line 1", "re,im"),
            ("# only comments\n", "line 1", "no header"),
            ("t_ms,re,im\n", "line 1", "empty"),
        ];
        for (text, line, what) in cases {
            let e = parse_echo_train(text).unwrap_err().to_string();
            assert!(e.contains(line) && e.contains(what), "{text:?} gave {e}");
        }
    }

    #[test]
    fn written_csv_reads_back_identically() {
        let mut sim = crate::CpmgSimulation::mono(1.0, 0.08, 0.0005, 200);
        sim.noise_sd = 0.01;
        sim.phase_rad = 0.3;
        for kind in [
            crate::SignalKind::Complex,
            crate::SignalKind::Real,
            crate::SignalKind::Magnitude,
        ] {
            sim.magnitude = kind == crate::SignalKind::Magnitude;
            let mut train = sim.simulate(3);
            if kind == crate::SignalKind::Real {
                train = train.as_kind(kind).unwrap();
            }
            let mut acq = train.acquisition().clone();
            acq.scans = Some(4);
            acq.temp_c = Some(25.25);
            acq.freq_hz = Some(20.86e6);
            train = train.with_acquisition(acq);
            let back = parse_echo_train(&write_csv(&train)).unwrap();
            assert_eq!(back.signal(), train.signal());
            assert_eq!(back.acquisition(), train.acquisition());
            for (a, b) in back.times_s().iter().zip(train.times_s()) {
                assert!((a - b).abs() <= 1e-15 * b.abs());
            }
        }
    }
}
