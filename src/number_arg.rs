//! Numbers on the command line: finite only. `NaN`, `inf` and numbers that overflow to infinity
//! are refused by clap with the option named, before any work starts.

/// A finite number above zero.
pub fn positive(text: &str) -> Result<f64, String> {
    let value = finite(text)?;
    if value > 0.0 {
        Ok(value)
    } else {
        Err(format!("{value} is not above zero"))
    }
}

/// A percentage above 0 and at most 100.
pub fn percent(text: &str) -> Result<f64, String> {
    let value = positive(text)?;
    if value <= 100.0 {
        Ok(value)
    } else {
        Err(format!("{value} % is more than 100 %"))
    }
}

/// A finite number.
pub fn finite(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(value) => Err(format!("{value} is not a finite number")),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finite_numbers_pass() {
        for text in ["NaN", "nan", "inf", "-inf", "infinity", "1e999", "x", ""] {
            assert!(finite(text).is_err(), "{text}");
        }
        assert_eq!(finite("-2.5"), Ok(-2.5));
        assert!(positive("0").is_err());
        assert!(positive("-1").is_err());
        assert_eq!(positive("4.9e-324"), Ok(4.9e-324));
        assert!(percent("100.5").is_err());
        assert_eq!(percent("20"), Ok(20.0));
    }
}
