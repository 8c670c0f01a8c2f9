//! Tecmag TNMR `.tnt` files (binary, little-endian): the magic `TNT1.xxx`, then tagged sections
//! (`tag[4]`, `u32` flag, `u32` length, content). `TMAG` (1,024 bytes) holds the acquisition: points
//! per acquire window (`acq_points`, offset 32), scans done (`actual_scans`, 56), the observe
//! frequency (`ob_freq[0]`, MHz, 84) and the measured temperature (`actual_temperature`, K, 448).
//! `DATA` holds the complex single-precision points. A CPMG acquires `acq_points` points per echo;
//! they are summed into one complex echo (the window sum consoles report). The echo time is the
//! pulse sequence's `Echo_Time` variable (the first value it is given in the sequence section,
//! e.g. `200u`): without it the file has no time axis and is refused. When the sequence names its
//! echo count (`Nechoes`), it must match the data. Echo k (1-based) is at k·TE.
//!
//! Layout after the file-format description "A1 - TNMR File Format" distributed with TNMR, as read
//! by the open readers (pytnt, nmrglue).

use super::{ImportedTrain, ParseError};
use crate::{Acquisition, EchoTrain};

const MAGIC: &[u8] = b"TNT1.";
const TMAG_LEN: usize = 1024;

/// The file starts with `TNT1.`.
pub(super) fn recognises(content: &[u8]) -> bool {
    content.starts_with(MAGIC)
}

/// A section's content and where it starts.
struct Section<'a> {
    start: usize,
    content: &'a [u8],
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    bytes
        .get(offset..offset + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn i32_at(bytes: &[u8], offset: usize) -> Option<i32> {
    u32_at(bytes, offset).map(|v| v as i32)
}

fn f64_at(bytes: &[u8], offset: usize) -> Option<f64> {
    bytes.get(offset..offset + 8).map(|b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        f64::from_le_bytes(a)
    })
}

fn binary(offset: usize, message: impl Into<String>) -> ParseError {
    ParseError::Binary {
        offset,
        message: message.into(),
    }
}

/// The section tagged `tag` among the leading sections (TMAG, DATA, …); the walk stops at the
/// first section whose header is not a tag and a plausible length.
fn section<'a>(content: &'a [u8], tag: &[u8; 4]) -> Result<Section<'a>, ParseError> {
    let mut at = 8;
    while let (Some(name), Some(length)) = (content.get(at..at + 4), u32_at(content, at + 8)) {
        if !name.iter().all(|b| b.is_ascii_alphanumeric()) {
            break;
        }
        let start = at + 12;
        let end = start.checked_add(length as usize);
        match end.filter(|e| *e <= content.len()) {
            Some(end) => {
                if name == tag {
                    return Ok(Section {
                        start,
                        content: &content[start..end],
                    });
                }
                at = end;
            }
            None if name == tag => {
                return Err(binary(
                    start,
                    format!(
                        "section {} says {length} bytes but the file ends at byte {}",
                        String::from_utf8_lossy(tag),
                        content.len()
                    ),
                ));
            }
            None => break,
        }
    }
    Err(binary(
        content.len(),
        format!("no {} section", String::from_utf8_lossy(tag)),
    ))
}

/// The first value given to the sequence variable `name`: the length-prefixed name, a zero word,
/// then the length-prefixed value text (e.g. `200u`).
fn sequence_value(content: &[u8], from: usize, name: &str) -> Option<String> {
    let mut pattern = (name.len() as u32).to_le_bytes().to_vec();
    pattern.extend_from_slice(name.as_bytes());
    pattern.extend_from_slice(&0u32.to_le_bytes());
    let tail = content.get(from..)?;
    let at = tail.windows(pattern.len()).position(|w| w == pattern)? + pattern.len();
    let length = u32_at(tail, at)? as usize;
    let value = tail.get(at + 4..at + 4 + length.min(64))?;
    Some(String::from_utf8_lossy(value).trim().to_owned())
}

/// A TNMR time value: a number with an optional unit suffix `n`, `u`, `m` or `s`, in seconds.
fn seconds(value: &str) -> Option<f64> {
    // Divided by the unit (a correctly rounded division by a power of ten): `200u` is 2e-4 s exactly.
    let (number, per_second) = match value.chars().last()? {
        'n' => (&value[..value.len() - 1], 1e9),
        'u' => (&value[..value.len() - 1], 1e6),
        'm' => (&value[..value.len() - 1], 1e3),
        's' => (&value[..value.len() - 1], 1.0),
        _ => (value, 1.0),
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|v| v / per_second)
        .filter(|v| v.is_finite() && *v > 0.0)
}

pub(super) fn parse(content: &[u8]) -> Result<ImportedTrain, ParseError> {
    let tmag = section(content, b"TMAG")?;
    if tmag.content.len() < TMAG_LEN {
        return Err(binary(
            tmag.start,
            format!(
                "TMAG section is {} bytes, expected {TMAG_LEN}",
                tmag.content.len()
            ),
        ));
    }
    let header = tmag.content;
    let field = |offset: usize| binary(tmag.start + offset, "TMAG field out of range");
    let acq_points = i32_at(header, 32).ok_or_else(|| field(32))?;
    let scans = i32_at(header, 56).ok_or_else(|| field(56))?;
    let freq_mhz = f64_at(header, 84).ok_or_else(|| field(84))?;
    let temperature_k = f64_at(header, 448).ok_or_else(|| field(448))?;
    if acq_points < 1 {
        return Err(binary(
            tmag.start + 32,
            format!("acq_points is {acq_points}: no points per echo"),
        ));
    }
    let data = section(content, b"DATA")?;
    if !data.content.len().is_multiple_of(8) {
        return Err(binary(
            data.start,
            format!(
                "DATA holds {} bytes, not a whole number of complex single-precision points",
                data.content.len()
            ),
        ));
    }
    let points = data.content.len() / 8;
    let per_echo = acq_points as usize;
    if points == 0 || !points.is_multiple_of(per_echo) {
        return Err(binary(
            data.start,
            format!("{points} points are not a whole number of echoes of {per_echo} points"),
        ));
    }
    let echoes = points / per_echo;
    let sequence_start = data.start + data.content.len();
    let te_text = sequence_value(content, sequence_start, "Echo_Time").ok_or_else(|| {
        ParseError::Parameters {
            message: "the Tecmag file's pulse sequence has no Echo_Time variable: no echo times"
                .into(),
        }
    })?;
    let te_s = seconds(&te_text).ok_or_else(|| ParseError::Parameters {
        message: format!("the sequence's Echo_Time `{te_text}` is not a time"),
    })?;
    if let Some(stated) = sequence_value(content, sequence_start, "Nechoes")
        && let Ok(stated) = stated.parse::<usize>()
        && stated != echoes
    {
        return Err(ParseError::Parameters {
            message: format!(
                "the sequence says Nechoes = {stated} but the data hold {echoes} echoes of {per_echo} points"
            ),
        });
    }
    let mut re = Vec::with_capacity(echoes);
    let mut im = Vec::with_capacity(echoes);
    for (k, echo) in data.content.chunks_exact(8 * per_echo).enumerate() {
        let (mut sum_re, mut sum_im) = (0.0, 0.0);
        for point in echo.chunks_exact(8) {
            let r = f32::from_le_bytes([point[0], point[1], point[2], point[3]]);
            let i = f32::from_le_bytes([point[4], point[5], point[6], point[7]]);
            sum_re += f64::from(r);
            sum_im += f64::from(i);
        }
        if !(sum_re.is_finite() && sum_im.is_finite()) {
            return Err(binary(
                data.start + k * 8 * per_echo,
                format!("echo {k} holds a value that is not a finite number"),
            ));
        }
        re.push(sum_re);
        im.push(sum_im);
    }
    let times_s = (1..=echoes).map(|k| k as f64 * te_s).collect();
    let acquisition = Acquisition {
        te_s: Some(te_s),
        scans: u32::try_from(scans).ok().filter(|s| *s > 0),
        freq_hz: (freq_mhz.is_finite() && freq_mhz > 0.0).then_some(freq_mhz * 1e6),
        temp_c: (temperature_k.is_finite() && temperature_k > 0.0)
            .then_some(temperature_k - 273.15),
    };
    let train = EchoTrain::complex(times_s, re, im)
        .map_err(|source| binary(data.start, source.to_string()))?
        .with_acquisition(acquisition);
    Ok(ImportedTrain::new(
        train,
        format!("a Tecmag file holds the receiver's complex points ({per_echo} per echo, summed)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::read_echo_trains;
    use super::*;

    /// A minimal TNT file: TMAG, DATA, then a sequence section naming Echo_Time and Nechoes.
    fn file(points_per_echo: i32, echoes: &[(f32, f32)], sequence: &[(&str, &str)]) -> Vec<u8> {
        let mut bytes = b"TNT1.008".to_vec();
        let mut tmag = vec![0u8; TMAG_LEN];
        tmag[32..36].copy_from_slice(&points_per_echo.to_le_bytes());
        tmag[56..60].copy_from_slice(&128i32.to_le_bytes());
        tmag[84..92].copy_from_slice(&21.375f64.to_le_bytes());
        tmag[448..456].copy_from_slice(&293.15f64.to_le_bytes());
        bytes.extend_from_slice(b"TMAG");
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&(TMAG_LEN as u32).to_le_bytes());
        bytes.extend_from_slice(&tmag);
        let mut data = Vec::new();
        for &(r, i) in echoes {
            for _ in 0..points_per_echo {
                data.extend_from_slice(&r.to_le_bytes());
                data.extend_from_slice(&i.to_le_bytes());
            }
        }
        bytes.extend_from_slice(b"DATA");
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&data);
        bytes.extend_from_slice(b"PSEQ\x01\x00\x00\x001.18 BIN");
        for (name, value) in sequence {
            bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(&0u32.to_le_bytes());
            bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
            bytes.extend_from_slice(value.as_bytes());
        }
        bytes
    }

    #[test]
    fn sums_the_points_of_each_echo_and_takes_the_echo_time_from_the_sequence() {
        let bytes = file(
            4,
            &[(1.0, 0.5), (0.5, 0.25)],
            &[("Nechoes", "2"), ("Echo_Time", "200u")],
        );
        let trains = read_echo_trains(&bytes, None).unwrap();
        let train = &trains[0].train;
        assert_eq!(train.times_s(), &[2e-4, 4e-4]);
        let crate::Signal::Complex { re, im } = train.signal() else {
            panic!("complex expected")
        };
        assert_eq!((re[0], im[1]), (4.0, 1.0));
        let acquisition = train.acquisition();
        assert_eq!(acquisition.scans, Some(128));
        assert!((acquisition.temp_c.unwrap() - 20.0).abs() < 1e-9);
        assert!((acquisition.freq_hz.unwrap() - 21.375e6).abs() < 1e-3);
    }

    #[test]
    fn damaged_or_incomplete_files_are_refused_naming_why() {
        let good = file(4, &[(1.0, 0.5)], &[("Echo_Time", "1m")]);
        assert!(read_echo_trains(&good, None).is_ok());
        let e = read_echo_trains(&good[..good.len() - 60], None).unwrap_err();
        assert!(
            e.to_string().contains("DATA") || e.to_string().contains("Echo_Time"),
            "{e}"
        );
        let e = read_echo_trains(&file(4, &[(1.0, 0.5)], &[]), None).unwrap_err();
        assert!(e.to_string().contains("Echo_Time"), "{e}");
        let e =
            read_echo_trains(&file(4, &[(1.0, 0.5)], &[("Echo_Time", "soon")]), None).unwrap_err();
        assert!(e.to_string().contains("not a time"), "{e}");
        let e = read_echo_trains(
            &file(4, &[(1.0, 0.5)], &[("Nechoes", "9"), ("Echo_Time", "1m")]),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("Nechoes = 9"), "{e}");
        let e = read_echo_trains(&good[..500], None).unwrap_err();
        assert!(e.to_string().contains("TMAG"), "{e}");
        let e = read_echo_trains(&file(0, &[], &[("Echo_Time", "1m")]), None).unwrap_err();
        assert!(e.to_string().contains("acq_points"), "{e}");
    }
}
