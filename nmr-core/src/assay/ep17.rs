//! Detection capability after CLSI EP17-A2: limit of blank (LoB) and limit of detection (LoD).
//!
//! Parametric: LoB = mean_B + c_p·SD_B and LoD = LoB + c_p·SD_L, with
//! c_p = z₀.₉₅ / (1 − 1/(4(N − K))), N the number of results and K the number of distinct samples
//! that gave them. z₀.₉₅ is the exact normal quantile 1.644854 (the "1.645" of the standard); with
//! it c_p = 1.6522 for N = 60, K = 4, the standard's worked value. SD_L is pooled over the
//! low-level samples with (nᵢ − 1) weights on the variances.
//!
//! Non-parametric LoB: the blank results sorted, and the value at rank r = 0.5 + 0.95·N
//! (1-based), interpolated between the order statistics ⌊r⌋ and ⌈r⌉.
//!
//! The functions work in whatever unit they are given (cells, in the calibration). LoQ is not
//! here: it depends on an imprecision goal and lives with the calibration.

use serde::{Deserialize, Serialize};

use super::error::AssayError;
use super::quantile::normal_quantile;

/// The one-sided 95 % normal quantile, 1.6448536…
pub fn z95() -> f64 {
    normal_quantile(0.95)
}

/// EP17-A2's multiplier c_p = z₀.₉₅ / (1 − 1/(4(N − K))) for N results from K samples.
/// `None` when N ≤ K (no degrees of freedom for an SD).
pub fn cp_multiplier(results: usize, samples: usize) -> Option<f64> {
    if results <= samples {
        return None;
    }
    let dof = (results - samples) as f64;
    Some(z95() / (1.0 - 1.0 / (4.0 * dof)))
}

/// Pooled SD over groups of replicate results, √(Σ(nᵢ − 1)sᵢ² / Σ(nᵢ − 1)), with its degrees of
/// freedom Σ(nᵢ − 1). Groups with fewer than two results add nothing. `None` without any degree
/// of freedom.
pub fn pooled_sd(groups: &[Vec<f64>]) -> Option<(f64, usize)> {
    let mut sum_squares = 0.0;
    let mut dof = 0usize;
    for group in groups.iter().filter(|g| g.len() >= 2) {
        let mean = group.iter().sum::<f64>() / group.len() as f64;
        sum_squares += group.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
        dof += group.len() - 1;
    }
    (dof > 0).then(|| ((sum_squares / dof as f64).sqrt(), dof))
}

/// A parametric limit of blank and the statistics behind it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParametricLob {
    /// Mean of the blank results.
    pub mean: f64,
    /// SD of the blank results (pooled within blank samples).
    pub sd: f64,
    /// The c_p multiplier used.
    pub cp: f64,
    /// LoB = mean + c_p·SD.
    pub lob: f64,
}

/// Parametric LoB from blank results grouped by blank sample (K = number of groups).
pub fn lob_parametric(blank_samples: &[Vec<f64>]) -> Result<ParametricLob, AssayError> {
    let results: usize = blank_samples.iter().map(Vec::len).sum();
    let samples = blank_samples.iter().filter(|g| !g.is_empty()).count();
    check_finite("blank result", blank_samples)?;
    let cp = cp_multiplier(results, samples).ok_or_else(|| {
        AssayError::Series(format!(
            "{results} blank result(s) from {samples} blank sample(s): an SD needs more results than samples"
        ))
    })?;
    let (sd, _) = pooled_sd(blank_samples).ok_or_else(|| {
        AssayError::Series("the blank samples have no replicates to give an SD".to_string())
    })?;
    let mean = blank_samples.iter().flatten().sum::<f64>() / results as f64;
    Ok(ParametricLob {
        mean,
        sd,
        cp,
        lob: mean + cp * sd,
    })
}

/// Non-parametric LoB: the blank result at rank 0.5 + 0.95·N, interpolated. With fewer than ten
/// results the rank passes N and the largest blank result is returned. `None` without results or
/// with a non-finite one.
pub fn lob_nonparametric(blank_results: &[f64]) -> Option<f64> {
    if blank_results.is_empty() || blank_results.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut sorted = blank_results.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let rank = (0.5 + 0.95 * n as f64).clamp(1.0, n as f64);
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    let fraction = rank - rank.floor();
    Some(sorted[lower - 1] + fraction * (sorted[upper - 1] - sorted[lower - 1]))
}

/// A parametric limit of detection and the statistics behind it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParametricLod {
    /// Pooled SD of the low-level samples.
    pub sd_low: f64,
    /// The c_p multiplier used (N low-level results, K low-level samples).
    pub cp: f64,
    /// LoD = LoB + c_p·SD_L.
    pub lod: f64,
}

/// Parametric LoD from a LoB and low-level results grouped by sample.
pub fn lod_parametric(lob: f64, low_samples: &[Vec<f64>]) -> Result<ParametricLod, AssayError> {
    check_finite("low-level result", low_samples)?;
    let results: usize = low_samples.iter().map(Vec::len).sum();
    let samples = low_samples.iter().filter(|g| !g.is_empty()).count();
    let cp = cp_multiplier(results, samples).ok_or_else(|| {
        AssayError::Series(format!(
            "{results} low-level result(s) from {samples} sample(s): an SD needs more results than samples"
        ))
    })?;
    let (sd_low, _) = pooled_sd(low_samples).ok_or_else(|| {
        AssayError::Series("the low-level samples have no replicates to give an SD".to_string())
    })?;
    Ok(ParametricLod {
        sd_low,
        cp,
        lod: lob + cp * sd_low,
    })
}

fn check_finite(what: &str, groups: &[Vec<f64>]) -> Result<(), AssayError> {
    for value in groups.iter().flatten() {
        AssayError::check(what, *value, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_matches_the_worked_value() {
        // EP17-A2 worked value: N = 60 results, K = 4 samples → c_p = 1.6522.
        let cp = cp_multiplier(60, 4).expect("defined");
        assert!((cp - 1.6522).abs() < 5e-5, "c_p = {cp}");
        // By hand: 1.6448536 / (1 − 1/(4·56)) = 1.6448536 · 224/223.
        assert!((cp - 1.644_853_6 * 224.0 / 223.0).abs() < 1e-6);
        assert_eq!(cp_multiplier(4, 4), None);
    }

    #[test]
    fn pooled_sd_weights_variances_not_sds() {
        // Group 1: 1, 2, 3 (SS = 2, df 2); group 2: 10, 14 (SS = 8, df 1). Pooled: √(10/3).
        let (sd, dof) = pooled_sd(&[vec![1.0, 2.0, 3.0], vec![10.0, 14.0]]).expect("pooled");
        assert_eq!(dof, 3);
        assert!((sd - (10.0_f64 / 3.0).sqrt()).abs() < 1e-12);
        // Weighting the SDs instead (the defect the notes warn of) would give (2·1 + 1·2.83)/3.
        assert!((sd - (2.0 + 8f64.sqrt()) / 3.0).abs() > 0.1);
    }

    #[test]
    fn parametric_lob_and_lod_by_hand() {
        // Blanks: one sample, 0,1,2,3,4 → mean 2, SD √2.5, N = 5, K = 1.
        let blanks = vec![vec![0.0, 1.0, 2.0, 3.0, 4.0]];
        let lob = lob_parametric(&blanks).expect("lob");
        let cp = 1.644_853_6 / (1.0 - 1.0 / 16.0);
        assert!((lob.cp - cp).abs() < 1e-6);
        assert!((lob.lob - (2.0 + cp * 2.5_f64.sqrt())).abs() < 1e-6);
        // Low-level: two samples, SS 2 + 2 over df 2 + 2 → SD 1; N = 6, K = 2.
        let low = vec![vec![5.0, 6.0, 7.0], vec![8.0, 9.0, 10.0]];
        let lod = lod_parametric(lob.lob, &low).expect("lod");
        let cp_low = 1.644_853_6 / (1.0 - 1.0 / 16.0);
        assert!((lod.sd_low - 1.0).abs() < 1e-12);
        assert!((lod.lod - (lob.lob + cp_low)).abs() < 1e-6);
    }

    #[test]
    fn nonparametric_lob_interpolates_at_rank() {
        // 60 results 1..=60: rank 57.5 lies between 57 and 58.
        let blanks: Vec<f64> = (1..=60).map(f64::from).rev().collect();
        assert!((lob_nonparametric(&blanks).expect("lob") - 57.5).abs() < 1e-12);
        // 20 results: rank 19.5.
        let twenty: Vec<f64> = (1..=20).map(|i| f64::from(i) * 2.0).collect();
        assert!((lob_nonparametric(&twenty).expect("lob") - 39.0).abs() < 1e-12);
        // 5 results: rank 5.25 is clamped to the maximum.
        assert_eq!(lob_nonparametric(&[3.0, 1.0, 2.0, 5.0, 4.0]), Some(5.0));
        assert_eq!(lob_nonparametric(&[]), None);
    }

    #[test]
    fn too_few_blanks_is_an_error() {
        assert!(lob_parametric(&[vec![1.0]]).is_err());
        assert!(lod_parametric(0.0, &[vec![1.0], vec![2.0]]).is_err());
    }
}
