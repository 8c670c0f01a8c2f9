//! Exact (Garwood) confidence intervals for a Poisson count.
//!
//! For an observed count k the two-sided 95 % interval of the mean is
//! [χ²(0.025; 2k)/2, χ²(0.975; 2k + 2)/2], with lower bound 0 for k = 0 (Garwood 1936). The
//! formula is used with a non-integer k as well: it is continuous and monotone in k, which lets
//! the count estimate widen a measured interval of cells by the sampling of the blood draw.

use super::quantile::chi_squared_quantile;

/// Garwood 95 % interval [low, high] of the Poisson mean for a count `k` ≥ 0 (negative counts are
/// taken as 0).
pub fn garwood_ci95(k: f64) -> [f64; 2] {
    [garwood_lower95(k), garwood_upper95(k)]
}

/// Lower end of the Garwood 95 % interval: χ²(0.025; 2k)/2, 0 for k = 0.
pub fn garwood_lower95(k: f64) -> f64 {
    let k = k.max(0.0);
    chi_squared_quantile(0.025, 2.0 * k) / 2.0
}

/// Upper end of the Garwood 95 % interval: χ²(0.975; 2k + 2)/2.
pub fn garwood_upper95(k: f64) -> f64 {
    let k = k.max(0.0);
    chi_squared_quantile(0.975, 2.0 * k + 2.0) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of lab-conventions.md §3 (computed there with scipy), per 7.5 mL.
    #[test]
    fn matches_the_lab_conventions_table() {
        let table: [(f64, f64, f64); 6] = [
            (0.0, 0.0, 3.69),
            (1.0, 0.03, 5.57),
            (3.0, 0.62, 8.77),
            (5.0, 1.62, 11.67),
            (10.0, 4.80, 18.39),
            (20.0, 12.2, 30.9),
        ];
        for (k, low, high) in table {
            let [l, h] = garwood_ci95(k);
            // The table rounds to 2 decimals (3 significant figures at 20).
            let tolerance = if k >= 20.0 { 0.05 } else { 0.005 };
            assert!((l - low).abs() <= tolerance, "k = {k}: low {l} vs {low}");
            assert!((h - high).abs() <= tolerance, "k = {k}: high {h} vs {high}");
        }
        // Per mL for 5 per 7.5 mL: [0.22, 1.56].
        let [l, h] = garwood_ci95(5.0);
        assert!((l / 7.5 - 0.22).abs() < 0.005 && (h / 7.5 - 1.56).abs() < 0.005);
    }

    #[test]
    fn is_monotone_in_k() {
        let mut previous = garwood_ci95(0.0);
        for step in 1..200 {
            let current = garwood_ci95(f64::from(step) * 0.1);
            assert!(current[0] >= previous[0] && current[1] > previous[1]);
            previous = current;
        }
    }
}
