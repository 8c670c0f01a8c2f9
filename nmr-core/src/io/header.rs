//! The acquisition metadata a file declares before its first echo, read from the start of the
//! file alone, so a caller can refuse a file whose echo time is wrong before reading it in full.
//!
//! - CSV: the `# key=value` comment lines before the column header.
//! - GeoSpec: the sections before `[Data]` (`Tau` in `[Parameters]`).
//! - minispec: no header; its echo time is only known from the echo times, so nothing is declared.
//! - Prospa and Spinsolve: the data file has no header (the echo time is in the parameter file
//!   beside it, which a caller reads whole, within its limit); Tecmag `.tnt` is binary. Nothing
//!   is declared from their first kilobytes.
//!
//! The same readers as the full parsers are used, so a header read here and the train parsed
//! later agree. Not here: the echoes.

use super::{ParseError, csv, geospec};
use crate::Acquisition;

/// What the start of a file declares before its first echo. `prefix` is the beginning of the
/// file (the whole file or its first kilobytes); a last line cut short is not read.
///
/// # Errors
/// A declared value that is not valid (the full parse would refuse it too), naming the line.
pub fn declared_acquisition(prefix: &str) -> Result<Acquisition, ParseError> {
    let mut acquisition = Acquisition::default();
    // Only whole lines: the prefix may end inside one.
    let whole = match prefix.rfind('\n') {
        Some(end) => &prefix[..end],
        None => return Ok(acquisition),
    };
    let first = whole.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(line) if line.starts_with('#') => {
            for (index, raw) in whole.lines().enumerate() {
                let trimmed = raw.trim();
                if trimmed.is_empty() {
                    continue;
                }
                let Some(comment) = trimmed.strip_prefix('#') else {
                    break; // the column header: the data follow
                };
                csv::read_metadata(comment, index + 1, &mut acquisition)?;
            }
        }
        Some(line) if line.starts_with('[') => {
            geospec::read_header(whole, &mut acquisition)?;
        }
        _ => {}
    }
    Ok(acquisition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::parse_echo_train;

    #[test]
    fn the_header_declares_what_the_full_parse_reads() {
        let csv = "# te_ms=0.5 scans=4\n# temp_c=37\nt_ms,re,im\n0.5,100,1\n1.0,90,1\n";
        let geospec = "[Parameters]\nTau=0.054\n[Data]\n0.108\t0\t-48037.0\t-11846.0\n0.216\t0\t-48075.5\t-9315.0\n";
        for text in [csv, geospec] {
            let declared = declared_acquisition(text).expect("a header");
            let parsed = parse_echo_train(text).expect("a train");
            assert_eq!(&declared, parsed.acquisition(), "{text}");
            assert!(declared.te_s.is_some());
        }
        // Cut inside the data, the header still reads; cut inside the header, only whole lines.
        assert_eq!(
            declared_acquisition(&csv[..csv.len() - 3])
                .expect("cut")
                .te_s,
            Some(0.0005)
        );
        assert_eq!(declared_acquisition("# te_ms=0.5").expect("cut").te_s, None);
        let minispec = "0\t0.2\t87.09\n1\t0.4\t-85.41\n";
        assert_eq!(
            declared_acquisition(minispec).expect("no header").te_s,
            None
        );
    }

    #[test]
    fn a_bad_declared_value_names_its_line() {
        let error = declared_acquisition("# a comment\n# te_ms=NaN\nt_ms,re,im\n").unwrap_err();
        assert!(error.to_string().starts_with("line 2"), "{error}");
        let error = declared_acquisition("[Parameters]\nTau=inf\n[Data]\n").unwrap_err();
        assert!(error.to_string().contains("Tau"), "{error}");
    }
}
