//! The stored form of a raw echo train: a compact little-endian binary encoding, compressed.
//!
//! Layout (version 1):
//!
//! ```text
//! offset  size  field
//! 0       4     magic "FCET" (Ferrocount echo train)
//! 4       1     version = 1
//! 5       1     signal kind: 1 = complex (re, im), 2 = magnitude, 3 = phased real channel
//! 6       4     echo count n, u32 little-endian, 1 ..= 1_000_000
//! 10      ...   raw DEFLATE of the columns: times_s, then re and im (or magnitude),
//!               each n f64 little-endian, byte-shuffled
//! ```
//!
//! Byte shuffling stores byte 0 of every value of a column, then byte 1 of every value, and so
//! on. The high bytes (sign, exponent, leading mantissa) of neighbouring samples are alike, so
//! they compress well, while the values themselves are kept bit for bit: the encoding is
//! lossless, and every reported number can be recomputed from the stored train.
//!
//! Acquisition metadata is not part of this blob: it is stored beside it as JSON.
//!
//! Not for: exchange with other software (that is `nmr_core::io`'s CSV and vendor formats).

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

/// Name of this codec as stored in `measurements.train_codec`.
pub const CODEC_NAME: &str = "fcet1-shuffle-deflate";

const MAGIC: &[u8; 4] = b"FCET";
const VERSION: u8 = 1;
const KIND_COMPLEX: u8 = 1;
const KIND_MAGNITUDE: u8 = 2;
const KIND_REAL: u8 = 3;
const HEADER_LEN: usize = 10;

/// Longest train the codec accepts (bounds what a damaged blob can make us allocate).
pub const MAX_ECHOES: usize = 1_000_000;

/// What cannot be encoded or decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The columns do not have one value per echo.
    #[error("columns of unequal length: {times} times, {values} values")]
    UnequalColumns {
        /// Number of times.
        times: usize,
        /// Number of values in the mismatched column.
        values: usize,
    },
    /// No echoes, or more than [`MAX_ECHOES`].
    #[error("{0} echoes is outside 1..=1000000")]
    EchoCount(usize),
    /// The blob does not start with the header.
    #[error("not an encoded echo train: {0}")]
    BadHeader(String),
    /// The compressed body is damaged or of the wrong size.
    #[error("damaged echo-train body: {0}")]
    BadBody(String),
}

/// The signal columns of a train to encode.
#[derive(Clone, Copy, Debug)]
pub enum SignalColumns<'a> {
    /// Quadrature channels.
    Complex {
        /// Real channel.
        re: &'a [f64],
        /// Imaginary channel.
        im: &'a [f64],
    },
    /// Magnitude only.
    Magnitude(&'a [f64]),
    /// One phased real channel.
    Real(&'a [f64]),
}

/// A decoded train's columns.
#[derive(Clone, Debug, PartialEq)]
pub enum DecodedSignal {
    /// Quadrature channels.
    Complex {
        /// Real channel.
        re: Vec<f64>,
        /// Imaginary channel.
        im: Vec<f64>,
    },
    /// Magnitude only.
    Magnitude(Vec<f64>),
    /// One phased real channel.
    Real(Vec<f64>),
}

/// A decoded train.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedTrain {
    /// Echo times, s.
    pub times_s: Vec<f64>,
    /// Signal.
    pub signal: DecodedSignal,
}

fn shuffle_into(out: &mut Vec<u8>, column: &[f64]) {
    for plane in 0..8 {
        out.extend(column.iter().map(|value| value.to_le_bytes()[plane]));
    }
}

fn unshuffle(bytes: &[u8], n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let mut value = [0u8; 8];
            for (plane, byte) in value.iter_mut().enumerate() {
                *byte = bytes[plane * n + i];
            }
            f64::from_le_bytes(value)
        })
        .collect()
}

/// Encodes a train's columns.
pub fn encode(times_s: &[f64], signal: SignalColumns<'_>) -> Result<Vec<u8>, CodecError> {
    let n = times_s.len();
    if n == 0 || n > MAX_ECHOES {
        return Err(CodecError::EchoCount(n));
    }
    let (kind, columns): (u8, Vec<&[f64]>) = match signal {
        SignalColumns::Complex { re, im } => (KIND_COMPLEX, vec![re, im]),
        SignalColumns::Magnitude(magnitude) => (KIND_MAGNITUDE, vec![magnitude]),
        SignalColumns::Real(real) => (KIND_REAL, vec![real]),
    };
    if let Some(bad) = columns.iter().find(|c| c.len() != n) {
        return Err(CodecError::UnequalColumns {
            times: n,
            values: bad.len(),
        });
    }
    let mut body = Vec::with_capacity(8 * n * (1 + columns.len()));
    shuffle_into(&mut body, times_s);
    for column in columns {
        shuffle_into(&mut body, column);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind);
    // n ≤ MAX_ECHOES < u32::MAX, checked above.
    out.extend_from_slice(&(n as u32).to_le_bytes());
    let mut encoder = DeflateEncoder::new(out, Compression::best());
    // Writing to a Vec cannot fail.
    encoder
        .write_all(&body)
        .expect("DEFLATE into a Vec<u8> has no I/O to fail");
    Ok(encoder
        .finish()
        .expect("DEFLATE into a Vec<u8> has no I/O to fail"))
}

/// Decodes a blob made by [`encode`].
pub fn decode(blob: &[u8]) -> Result<DecodedTrain, CodecError> {
    if blob.len() < HEADER_LEN {
        return Err(CodecError::BadHeader(format!("only {} bytes", blob.len())));
    }
    if &blob[0..4] != MAGIC {
        return Err(CodecError::BadHeader("wrong magic".into()));
    }
    if blob[4] != VERSION {
        return Err(CodecError::BadHeader(format!(
            "unknown version {}",
            blob[4]
        )));
    }
    let kind = blob[5];
    let columns = match kind {
        KIND_COMPLEX => 3,
        KIND_MAGNITUDE | KIND_REAL => 2,
        other => {
            return Err(CodecError::BadHeader(format!(
                "unknown signal kind {other}"
            )));
        }
    };
    let n = u32::from_le_bytes([blob[6], blob[7], blob[8], blob[9]]) as usize;
    if n == 0 || n > MAX_ECHOES {
        return Err(CodecError::EchoCount(n));
    }
    let expected = 8 * n * columns;
    let mut body = Vec::with_capacity(expected);
    // Read one byte more than expected, so that an over-long body is noticed without inflating
    // all of it.
    DeflateDecoder::new(&blob[HEADER_LEN..])
        .take(expected as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|error| CodecError::BadBody(error.to_string()))?;
    if body.len() != expected {
        return Err(CodecError::BadBody(format!(
            "{} bytes where {n} echoes need {expected}",
            body.len()
        )));
    }
    let column = |index: usize| unshuffle(&body[index * 8 * n..(index + 1) * 8 * n], n);
    let times_s = column(0);
    let signal = match kind {
        KIND_COMPLEX => DecodedSignal::Complex {
            re: column(1),
            im: column(2),
        },
        KIND_REAL => DecodedSignal::Real(column(1)),
        _ => DecodedSignal::Magnitude(column(1)),
    };
    Ok(DecodedTrain { times_s, signal })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    proptest! {
        // Any f64 bit pattern (NaN payloads, infinities, -0.0, subnormals) comes back bit for bit.
        #[test]
        fn complex_columns_round_trip_bit_for_bit(
            columns in (1usize..300).prop_flat_map(|n| (
                prop::collection::vec(any::<u64>(), n),
                prop::collection::vec(any::<u64>(), n),
                prop::collection::vec(any::<u64>(), n),
            ))
        ) {
            let (t, re, im) = columns;
            let f = |v: &[u64]| v.iter().map(|b| f64::from_bits(*b)).collect::<Vec<_>>();
            let (t, re, im) = (f(&t), f(&re), f(&im));
            let blob = encode(&t, SignalColumns::Complex { re: &re, im: &im }).unwrap();
            let decoded = decode(&blob).unwrap();
            prop_assert_eq!(bits(&decoded.times_s), bits(&t));
            match decoded.signal {
                DecodedSignal::Complex { re: re2, im: im2 } => {
                    prop_assert_eq!(bits(&re2), bits(&re));
                    prop_assert_eq!(bits(&im2), bits(&im));
                }
                DecodedSignal::Magnitude(_) | DecodedSignal::Real(_) => {
                    prop_assert!(false, "kind changed")
                }
            }
        }

        #[test]
        fn magnitude_columns_round_trip(
            values in prop::collection::vec(-1e6f64..1e6, 1..500)
        ) {
            let t: Vec<f64> = (1..=values.len()).map(|i| i as f64 * 0.004).collect();
            let blob = encode(&t, SignalColumns::Magnitude(&values)).unwrap();
            let decoded = decode(&blob).unwrap();
            prop_assert_eq!(&decoded.times_s, &t);
            prop_assert_eq!(decoded.signal, DecodedSignal::Magnitude(values.clone()));
            let blob = encode(&t, SignalColumns::Real(&values)).unwrap();
            prop_assert_eq!(decode(&blob).unwrap().signal, DecodedSignal::Real(values));
        }

        // A damaged blob is an error, never a panic.
        #[test]
        fn damaged_blobs_are_errors(flip in 0usize..2000, byte in any::<u8>()) {
            let t: Vec<f64> = (1..=100).map(|i| f64::from(i) * 0.004).collect();
            let m: Vec<f64> = t.iter().map(|t| (-t / 0.1).exp()).collect();
            let mut blob = encode(&t, SignalColumns::Magnitude(&m)).unwrap();
            let at = flip % blob.len();
            blob[at] ^= byte | 1;
            let _ = decode(&blob);
            blob.truncate(at);
            prop_assert!(decode(&blob).is_err());
        }
    }

    #[test]
    fn unequal_and_empty_columns_are_refused() {
        assert_eq!(
            encode(&[1.0, 2.0], SignalColumns::Magnitude(&[1.0])),
            Err(CodecError::UnequalColumns {
                times: 2,
                values: 1
            })
        );
        assert_eq!(
            encode(&[], SignalColumns::Magnitude(&[])),
            Err(CodecError::EchoCount(0))
        );
    }

    #[test]
    fn header_is_checked() {
        assert!(matches!(decode(b"FCET"), Err(CodecError::BadHeader(_))));
        assert!(matches!(
            decode(b"XXXX\x01\x02\x01\x00\x00\x00"),
            Err(CodecError::BadHeader(_))
        ));
        assert!(matches!(
            decode(b"FCET\x02\x02\x01\x00\x00\x00"),
            Err(CodecError::BadHeader(_))
        ));
        assert!(matches!(
            decode(b"FCET\x01\x02\x00\x00\x00\x00"),
            Err(CodecError::EchoCount(0))
        ));
    }

    #[test]
    fn a_regular_time_axis_compresses_well() {
        // The header's layout is the documented one.
        let t: Vec<f64> = (1..=500).map(|i| f64::from(i) * 0.004).collect();
        let zeros = vec![0.0; 500];
        let blob = encode(&t, SignalColumns::Magnitude(&zeros)).unwrap();
        assert_eq!(&blob[..6], b"FCET\x01\x02");
        assert_eq!(
            u32::from_le_bytes([blob[6], blob[7], blob[8], blob[9]]),
            500
        );
        assert!(blob.len() < 8 * 500, "{} bytes for 8000 raw", blob.len());
    }
}
