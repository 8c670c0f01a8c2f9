//! Reading back the few report numbers that may be non-finite by design.
//!
//! JSON has no infinity or NaN: a serialiser writes them as `null`. These fields document what
//! their non-finite value means (an infinite ΔR2 degrees of freedom when the fits' own SEs
//! dominate; an infinite SNR for a noiseless train; an undefined χ²), so reading `null` back as
//! that value is the faithful decoding, not a default: any other non-number is still an error.

use serde::{Deserialize, Deserializer};

/// `null` ↔ +∞ (degrees of freedom, SNR).
pub(crate) fn null_as_infinity<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// `null` ↔ NaN (an undefined ratio).
pub(crate) fn null_as_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Numbers {
        #[serde(deserialize_with = "super::null_as_infinity")]
        df: f64,
        #[serde(deserialize_with = "super::null_as_nan")]
        ratio: f64,
    }

    #[test]
    fn null_reads_as_the_documented_non_finite_value_and_numbers_as_themselves() {
        let n: Numbers = serde_json::from_str(r#"{"df": null, "ratio": null}"#).unwrap();
        assert!(n.df.is_infinite() && n.ratio.is_nan());
        let n: Numbers = serde_json::from_str(r#"{"df": 3.5, "ratio": 0.25}"#).unwrap();
        assert_eq!((n.df, n.ratio), (3.5, 0.25));
        assert!(serde_json::from_str::<Numbers>(r#"{"df": "x", "ratio": 1}"#).is_err());
    }
}
