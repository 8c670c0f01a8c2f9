//! Magritek parameter files (`acqu.par`, `<name>.par`): one `key = value` per line, strings in
//! double quotes.

use super::ParseError;
use crate::Acquisition;

/// The `key = value` pairs of a parameter file, in file order.
pub(super) struct Parameters<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Parameters<'a> {
    pub(super) fn parse(text: &'a str) -> Self {
        let pairs = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        Self { pairs }
    }

    /// The raw value of `key` (case-sensitive, as Prospa writes it).
    pub(super) fn text(&self, key: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// A numeric value; an error names the key when it is there but not a number.
    pub(super) fn number(&self, key: &str) -> Result<Option<f64>, ParseError> {
        match self.text(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| ParseError::Parameters {
                    message: format!("parameter file: `{key} = {v}` is not a number"),
                }),
        }
    }

    /// A numeric value that must be there.
    pub(super) fn required(&self, key: &str, why: &str) -> Result<f64, ParseError> {
        self.number(key)?.ok_or_else(|| ParseError::Parameters {
            message: format!("parameter file has no `{key}`, needed for {why}"),
        })
    }

    /// The acquisition metadata Magritek files share: `echoTime` (µs), `nrScans`, and the
    /// frequency (`b1Freq` or `b1Freq1H`, MHz).
    pub(super) fn acquisition(&self) -> Result<Acquisition, ParseError> {
        let te_us = self.number("echoTime")?;
        let scans = self.number("nrScans")?;
        let freq_mhz = match self.number("b1Freq")? {
            Some(f) => Some(f),
            None => self.number("b1Freq1H")?,
        };
        Ok(Acquisition {
            te_s: te_us.filter(|v| *v > 0.0).map(|v| v / 1e6),
            scans: scans
                .filter(|v| *v >= 1.0 && *v <= f64::from(u32::MAX))
                .map(|v| v as u32),
            freq_hz: freq_mhz.filter(|v| *v > 0.0).map(|v| v * 1e6),
            temp_c: None,
        })
    }
}
