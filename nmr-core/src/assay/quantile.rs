//! Quantiles of the reference distributions the assay's intervals use (Student t, normal, χ²).
//!
//! Thin, checked wrappers over `statrs`: they never panic, whatever the degrees of freedom, and they
//! fall back to the normal quantile when the degrees of freedom are effectively infinite (statrs'
//! incomplete-beta inversion is not meant for that). Not a general statistics library.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

/// Degrees of freedom above which the Student t quantile is taken as the normal one
/// (the two differ by less than 1e-5 at 0.975 there).
const NORMAL_DF: f64 = 1.0e6;

/// Quantile `p` (0 < p < 1) of the standard normal distribution.
pub fn normal_quantile(p: f64) -> f64 {
    let standard = Normal::new(0.0, 1.0).expect("the standard normal has valid parameters");
    standard.inverse_cdf(p.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON))
}

/// Quantile `p` of Student's t with `df` degrees of freedom (non-integer allowed, e.g. a
/// Welch–Satterthwaite df). `df` that is not finite or above 10⁶ gives the normal quantile;
/// `df` below 0.5 is raised to 0.5 (a heavy but finite tail), so the result is always finite.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let p = p.clamp(1.0e-12, 1.0 - 1.0e-12);
    if !df.is_finite() || df > NORMAL_DF {
        return normal_quantile(p);
    }
    let df = df.max(0.5);
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(p),
        Err(_) => normal_quantile(p),
    }
}

/// Two-sided 95 % critical value of Student's t with `df` degrees of freedom (1.96 for df → ∞).
pub fn t95(df: f64) -> f64 {
    t_quantile(0.975, df)
}

/// Quantile `p` of the χ² distribution with `df` > 0 degrees of freedom (non-integer allowed).
/// Returns 0 for `df` ≤ 0 (the degenerate distribution at zero, which is what the Garwood lower
/// bound for a zero count needs).
pub fn chi_squared_quantile(p: f64, df: f64) -> f64 {
    if df <= 0.0 || !df.is_finite() {
        return 0.0;
    }
    let p = p.clamp(0.0, 1.0 - 1.0e-15);
    match ChiSquared::new(df) {
        Ok(chi2) => chi2.inverse_cdf(p),
        Err(_) => 0.0,
    }
}

/// Upper-tail probability P(T > |t|)·2 of Student's t with `df` degrees of freedom: the two-sided
/// p-value of a t statistic.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return 0.0;
    }
    let tail = if !df.is_finite() || df > NORMAL_DF {
        let standard = Normal::new(0.0, 1.0).expect("the standard normal has valid parameters");
        standard.sf(t.abs())
    } else {
        match StudentsT::new(0.0, 1.0, df.max(0.5)) {
            Ok(dist) => dist.sf(t.abs()),
            Err(_) => return f64::NAN,
        }
    };
    (2.0 * tail).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from standard tables (Abramowitz & Stegun 26.7, 26.4).
    #[test]
    fn t_quantiles_match_tables() {
        assert!((t95(2.0) - 4.302_653).abs() < 1e-4);
        assert!((t95(4.0) - 2.776_445).abs() < 1e-4);
        assert!((t95(30.0) - 2.042_272).abs() < 1e-4);
        assert!((t95(f64::INFINITY) - 1.959_964).abs() < 1e-5);
        assert!((t95(1.0e9) - 1.959_964).abs() < 1e-5);
        assert!(t95(0.0).is_finite());
    }

    #[test]
    fn chi_squared_quantiles_match_tables() {
        assert!((chi_squared_quantile(0.975, 2.0) - 7.377_759).abs() < 1e-4);
        assert!((chi_squared_quantile(0.025, 10.0) - 3.246_973).abs() < 1e-4);
        assert_eq!(chi_squared_quantile(0.025, 0.0), 0.0);
    }

    #[test]
    fn two_sided_p_is_consistent_with_the_quantile() {
        let p = t_two_sided_p(t95(7.0), 7.0);
        assert!((p - 0.05).abs() < 1e-6, "p = {p}");
    }
}
