//! The noise of an echo train, estimated independently of any decay model.
//!
//! Every honest number a fit reports (standard errors, χ², SNR, the misfit test) stands on the noise
//! SD σ per echo. It must neither collapse (an imaginary channel exported as rounding residue, a
//! quantised channel) nor be inflated (a baseline or a leaked signal in the quadrature channel), so
//! it is measured where neither a baseline nor a slowly varying decay can reach:
//!
//! - **The fitted channel's second differences** `(yᵢ₋₁ − 2yᵢ + yᵢ₊₁)/√6` cancel any constant and any
//!   straight line, and a decay sampled many times per T2 leaves only its (tiny) curvature. Their
//!   scale is taken robustly: 1.4826 × the median absolute value, which ignores the few early
//!   echoes where the curvature of a fast decay still shows. Should more than half of them be
//!   exactly zero (quantised or padded data), the RMS is taken instead, so the estimate cannot
//!   collapse while the channel moves at all.
//! - **The quadrature channel** (complex data, after phasing) is the cross-check: it holds no
//!   signal, so its second differences give σ again from independent numbers. When the two agree
//!   within their sampling error (the log of a MAD-based σ from `n` second differences has variance
//!   ≈ 2/n, measured by simulation) they are pooled; when they disagree the fitted channel's own
//!   estimate is kept and the report says so.
//! - **Magnitude data** take σ from the second differences of the echoes well above the noise
//!   (where magnitude noise is Gaussian with SD σ); when too few echoes carry such signal, from the
//!   noise-only tail, whose magnitudes are Rayleigh with `E[y²] = 2σ²`.
//!
//! Correlated noise (echo-to-echo correlation, as from scan-to-scan amplitude jitter) is detected
//! afterwards from a fit's residuals ([`NoiseEstimate::with_correlation`]): for noise with lag-one
//! correlation ρ the first differences have lag-one correlation −(1 − ρ)/2, whatever slowly varying
//! misfit the residuals also hold, so ρ̂ = 1 + 2·r₁(Δresidual). A significant ρ̂ corrects σ
//! (differences see only `(1 − ρ)(3 − ρ)/3` of the variance) and is reported.
//!
//! Not here: what a fit does with σ (see [`crate::fit`]).

use serde::{Deserialize, Serialize};

/// Variance of ln σ̂ times the number of second differences, for the MAD-based σ̂ of white Gaussian
/// noise (2.0 by simulation: 2,000 seeded draws each at n = 100, 1,000 and 5,000 gave 2.02, 1.99,
/// 2.04).
pub const LOG_SD_VARIANCE_FACTOR: f64 = 2.0;

/// Fewest second differences a noise estimate is made from.
const MIN_DIFFERENCES: usize = 3;

/// Fewest echoes well above the noise from which magnitude noise is measured; with fewer, the
/// Rayleigh tail is used.
const MIN_STRONG_MAGNITUDES: usize = 16;

/// How σ was obtained.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseMethod {
    /// Robust scale of the fitted channel's second differences.
    SecondDifferences,
    /// The fitted channel's and the quadrature channel's second differences, pooled (they agreed).
    SecondDifferencesWithQuadrature,
    /// RMS of the second differences: more than half were exactly zero (quantised data).
    RmsSecondDifferences,
    /// Second differences of the magnitudes well above the noise.
    MagnitudeStrongEchoes,
    /// The noise-only tail of a magnitude train (Rayleigh).
    MagnitudeTail,
    /// Fitted as the σ of the Rician model (magnitude data whose decay reaches the floor).
    RicianFit,
    /// Too few echoes to measure any noise.
    Unmeasurable,
}

impl NoiseMethod {
    /// The method's name as the JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            NoiseMethod::SecondDifferences => "second_differences",
            NoiseMethod::SecondDifferencesWithQuadrature => "second_differences_with_quadrature",
            NoiseMethod::RmsSecondDifferences => "rms_second_differences",
            NoiseMethod::MagnitudeStrongEchoes => "magnitude_strong_echoes",
            NoiseMethod::MagnitudeTail => "magnitude_tail",
            NoiseMethod::RicianFit => "rician_fit",
            NoiseMethod::Unmeasurable => "unmeasurable",
        }
    }
}

/// The noise of a train, and how it was found.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseEstimate {
    /// Noise SD per echo of the fitted channel (for magnitude data: per receiver channel).
    pub sd: f64,
    /// How `sd` was obtained.
    pub method: NoiseMethod,
    /// σ from the fitted channel's second differences alone (before pooling or correction).
    pub differences_sd: f64,
    /// σ from the quadrature channel's second differences (complex data).
    pub quadrature_sd: Option<f64>,
    /// Whether the quadrature channel's σ agreed with the fitted channel's (complex data).
    pub quadrature_agrees: Option<bool>,
    /// Lag-one correlation of the noise from one echo to the next (set by a fit, from its
    /// residuals' differences).
    pub lag1_correlation: Option<f64>,
    /// Whether that correlation is significant and large enough to matter (|ρ| > 0.1 and four
    /// standard errors from zero); σ is then corrected for it and standard errors widened.
    pub correlated: bool,
    /// Variance of ln σ̂ (its sampling uncertainty), used by the misfit test.
    pub log_sd_variance: f64,
}

impl NoiseEstimate {
    fn new(sd: f64, method: NoiseMethod, differences: usize) -> Self {
        Self {
            sd,
            method,
            differences_sd: sd,
            quadrature_sd: None,
            quadrature_agrees: None,
            lag1_correlation: None,
            correlated: false,
            log_sd_variance: LOG_SD_VARIANCE_FACTOR / differences.max(1) as f64,
        }
    }

    /// An estimate without a measurement (too few echoes).
    pub fn unmeasurable() -> Self {
        Self {
            log_sd_variance: f64::INFINITY,
            ..Self::new(0.0, NoiseMethod::Unmeasurable, 1)
        }
    }

    /// Adds the echo-to-echo correlation found in a fit's `residuals` (fitted minus model, in echo
    /// order) and, when it is significant, corrects σ for it. Magnitude and fitted-σ estimates are
    /// not corrected (their σ is not a difference-based one), only annotated.
    pub fn with_correlation(mut self, residuals: &[f64]) -> Self {
        let Some(rho) = lag1_noise_correlation(residuals) else {
            return self;
        };
        let n = residuals.len() as f64;
        // se(r₁) of an MA(1) with r₁ = −½ is √(½/n) (Bartlett), so se(ρ̂) ≈ √(2/n).
        let se = (2.0 / n).sqrt();
        self.lag1_correlation = Some(rho);
        self.correlated = rho.abs() > 0.1 && rho.abs() > 4.0 * se;
        let difference_based = matches!(
            self.method,
            NoiseMethod::SecondDifferences
                | NoiseMethod::SecondDifferencesWithQuadrature
                | NoiseMethod::RmsSecondDifferences
        );
        if self.correlated && difference_based {
            let seen = ((1.0 - rho) * (3.0 - rho) / 3.0).max(1e-3);
            self.sd = self.differences_sd / seen.sqrt();
            self.method = NoiseMethod::SecondDifferences;
            self.quadrature_agrees = self.quadrature_sd.map(|_| false);
        }
        self
    }
}

/// Noise of a phased complex train: the real (fitted) channel's second differences, cross-checked
/// against and pooled with the quadrature channel's when they agree.
pub fn complex_noise(real: &[f64], quadrature: &[f64]) -> NoiseEstimate {
    // One buffer serves both channels' differences: this runs on every fit of the appliance.
    let mut scratch = Vec::with_capacity(real.len());
    let Some((re_sd, re_n, re_method)) = second_difference_sd(real, &mut scratch) else {
        return NoiseEstimate::unmeasurable();
    };
    let mut estimate = NoiseEstimate::new(re_sd, re_method, re_n);
    if let Some((im_sd, im_n, _)) = second_difference_sd(quadrature, &mut scratch) {
        estimate.quadrature_sd = Some(im_sd);
        let spread =
            (LOG_SD_VARIANCE_FACTOR / re_n as f64 + LOG_SD_VARIANCE_FACTOR / im_n as f64).sqrt();
        let agrees = re_sd > 0.0 && im_sd > 0.0 && (im_sd / re_sd).ln().abs() <= 4.0 * spread;
        estimate.quadrature_agrees = Some(agrees);
        if agrees && re_method == NoiseMethod::SecondDifferences {
            estimate.sd = ((re_sd * re_sd + im_sd * im_sd) / 2.0).sqrt();
            estimate.method = NoiseMethod::SecondDifferencesWithQuadrature;
            estimate.log_sd_variance = LOG_SD_VARIANCE_FACTOR / (re_n + im_n) as f64;
        }
    }
    estimate
}

/// Noise of a phased real channel with no quadrature partner: its second differences.
pub fn real_noise(real: &[f64]) -> NoiseEstimate {
    match second_difference_sd(real, &mut Vec::with_capacity(real.len())) {
        Some((sd, n, method)) => NoiseEstimate::new(sd, method, n),
        None => NoiseEstimate::unmeasurable(),
    }
}

/// Noise of magnitude data, in units of the underlying complex Gaussian noise σ per channel.
///
/// Where the signal is well above the noise, magnitude noise is Gaussian with SD σ; the estimate
/// uses the second differences there (echoes above ten times a first, crude estimate). When fewer
/// than 16 echoes carry such signal, the train's last quarter is taken as noise only, whose
/// magnitudes are Rayleigh with `E[y²] = 2σ²` (a baseline there would inflate it: such a train
/// cannot separate a baseline from the noise).
pub fn magnitude_noise(magnitude: &[f64]) -> NoiseEstimate {
    let n = magnitude.len();
    let mut scratch = Vec::with_capacity(n);
    let Some((crude, _, _)) = second_difference_sd(magnitude, &mut scratch) else {
        return NoiseEstimate::unmeasurable();
    };
    scratch.clear();
    scratch.extend(
        magnitude
            .windows(3)
            .filter(|w| w[1] > 10.0 * crude)
            .map(second_difference_bits),
    );
    if scratch.len() >= MIN_STRONG_MAGNITUDES {
        let count = scratch.len();
        let sd = SECOND_DIFFERENCE_SCALE * median_of_bits(&mut scratch);
        if sd > 0.0 {
            return NoiseEstimate::new(sd, NoiseMethod::MagnitudeStrongEchoes, count);
        }
    }
    let tail = &magnitude[n - (n / 4).max(1)..];
    let sd = (tail.iter().map(|y| y * y).sum::<f64>() / (2.0 * tail.len() as f64)).sqrt();
    // A mean of m squared Rayleigh values: var(ln σ̂) = 1/(4m)·var(y²)/σ⁴·… ≈ 1/m.
    NoiseEstimate {
        log_sd_variance: 1.0 / tail.len() as f64,
        ..NoiseEstimate::new(sd, NoiseMethod::MagnitudeTail, tail.len())
    }
}

/// 1.4826 (the SD of Gaussian values over their median absolute value) over √6 (the SD of a
/// second difference `yᵢ₋₁ − 2yᵢ + yᵢ₊₁` of white noise over σ).
const SECOND_DIFFERENCE_SCALE: f64 = 1.482_602_218_505_602 / 2.449_489_742_783_178;

/// |yᵢ₋₁ − 2yᵢ + yᵢ₊₁| of a window of three, as the bits of a non-negative float: their integer
/// order is the numbers' order, and integers select faster than floats.
fn second_difference_bits(w: &[f64]) -> u64 {
    (w[0] - 2.0 * w[1] + w[2]).abs().to_bits()
}

/// The median (upper of the two middle values) of non-negative floats held as their bits,
/// reordering `bits` by a selection, not a sort.
fn median_of_bits(bits: &mut [u64]) -> f64 {
    if bits.is_empty() {
        return 0.0;
    }
    let mid = bits.len() / 2;
    let (_, median, _) = bits.select_nth_unstable(mid);
    f64::from_bits(*median)
}

/// σ from the robust scale of `(yᵢ₋₁ − 2yᵢ + yᵢ₊₁)/√6`, with the number of differences and the
/// method; the RMS when the median is zero; `None` below three differences. `scratch` is the
/// buffer the differences are selected in (reused, so a fit allocates it once).
fn second_difference_sd(
    values: &[f64],
    scratch: &mut Vec<u64>,
) -> Option<(f64, usize, NoiseMethod)> {
    if values.len() < MIN_DIFFERENCES + 2 {
        return None;
    }
    scratch.clear();
    // Three shifted slices rather than windows: an iterator of known length, which the compiler
    // turns into one vector loop (this runs twice on every fit of a complex train).
    scratch.extend(
        values
            .iter()
            .zip(&values[1..])
            .zip(&values[2..])
            .map(|((&a, &b), &c)| second_difference_bits(&[a, b, c])),
    );
    let count = scratch.len();
    let robust = SECOND_DIFFERENCE_SCALE * median_of_bits(scratch);
    if robust > 0.0 {
        return Some((robust, count, NoiseMethod::SecondDifferences));
    }
    let sum_squares: f64 = values
        .windows(3)
        .map(|w| {
            let d = w[0] - 2.0 * w[1] + w[2];
            d * d
        })
        .sum();
    let rms = (sum_squares / (6.0 * count as f64)).sqrt();
    Some((rms, count, NoiseMethod::RmsSecondDifferences))
}

/// ρ̂ = 1 + 2·r₁(Δr): the noise's lag-one correlation from residuals `r`, immune to slowly varying
/// misfit. `None` below ten residuals or when the differences do not vary.
pub fn lag1_noise_correlation(residuals: &[f64]) -> Option<f64> {
    if residuals.len() < 10 {
        return None;
    }
    // One pass over the differences dᵢ = rᵢ₊₁ − rᵢ, whose mean telescopes.
    let m = residuals.len() - 1;
    let mean = (residuals[m] - residuals[0]) / m as f64;
    let mut previous = residuals[1] - residuals[0] - mean;
    let (mut s00, mut s01) = (previous * previous, 0.0);
    for w in residuals[1..].windows(2) {
        let d = w[1] - w[0] - mean;
        s00 += d * d;
        s01 += previous * d;
        previous = d;
    }
    if !(s00 > 0.0) {
        return None;
    }
    Some((1.0 + 2.0 * s01 / s00).clamp(-0.99, 0.99))
}

/// Lag-one autocorrelation of the residuals themselves (about their mean).
pub(crate) fn lag1_autocorrelation(residuals: &[f64]) -> f64 {
    let n = residuals.len();
    if n < 3 {
        return 0.0;
    }
    let mean = residuals.iter().sum::<f64>() / n as f64;
    let mut previous = residuals[0] - mean;
    let (mut s00, mut s01) = (previous * previous, 0.0);
    for r in &residuals[1..] {
        let d = r - mean;
        s00 += d * d;
        s01 += previous * d;
        previous = d;
    }
    if s00 > 0.0 { s01 / s00 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    fn noise(n: usize, sd: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0, sd).expect("finite sd");
        (0..n).map(|_| normal.sample(&mut rng)).collect()
    }

    #[test]
    fn a_baseline_and_a_decay_do_not_move_the_estimate() {
        let white = noise(3000, 0.2, 1);
        let with_baseline: Vec<f64> = white
            .iter()
            .enumerate()
            .map(|(i, v)| 50.0 * (-(i as f64) / 400.0).exp() + 7.0 + v)
            .collect();
        let plain = real_noise(&white).sd;
        let shifted = real_noise(&with_baseline).sd;
        assert!((plain / 0.2 - 1.0).abs() < 0.06, "{plain}");
        assert!((shifted / plain - 1.0).abs() < 0.01, "{shifted} vs {plain}");
    }

    #[test]
    fn a_residue_quadrature_channel_cannot_collapse_the_estimate() {
        // Phased on the instrument: the imaginary channel is rounding residue, 1e-6.
        let real: Vec<f64> = noise(2000, 7e-4, 2)
            .iter()
            .enumerate()
            .map(|(i, v)| (-(i as f64) / 300.0).exp() + v)
            .collect();
        let residue = noise(2000, 1e-6, 3);
        let estimate = complex_noise(&real, &residue);
        assert!((estimate.sd / 7e-4 - 1.0).abs() < 0.08, "{estimate:?}");
        assert_eq!(estimate.quadrature_agrees, Some(false));
        assert_eq!(estimate.method, NoiseMethod::SecondDifferences);
        // A quadrature channel with a large baseline agrees (differences ignore it) and is pooled.
        let offset: Vec<f64> = noise(2000, 7e-4, 4).iter().map(|v| v + 0.05).collect();
        let estimate = complex_noise(&real, &offset);
        assert_eq!(
            estimate.method,
            NoiseMethod::SecondDifferencesWithQuadrature
        );
        assert!((estimate.sd / 7e-4 - 1.0).abs() < 0.06, "{estimate:?}");
    }

    #[test]
    fn quantised_data_fall_back_to_the_rms() {
        // Integer counts with noise well below one count: most second differences are zero.
        let values: Vec<f64> = noise(1000, 0.2, 5).iter().map(|v| v.round()).collect();
        let estimate = real_noise(&values);
        assert_eq!(estimate.method, NoiseMethod::RmsSecondDifferences);
        assert!(estimate.sd > 0.0);
    }

    #[test]
    fn correlated_noise_is_found_and_sigma_corrected() {
        // AR(1) noise, ρ = 0.8, marginal SD 1.
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let normal = Normal::new(0.0, 1.0).expect("finite");
        let rho: f64 = 0.8;
        let mut x = 0.0;
        let series: Vec<f64> = (0..4000)
            .map(|_| {
                x = rho * x + (1.0 - rho * rho).sqrt() * normal.sample(&mut rng);
                x
            })
            .collect();
        let raw = real_noise(&series);
        assert!(raw.sd < 0.6, "differences see only part of it: {}", raw.sd);
        let corrected = raw.with_correlation(&series);
        assert!(corrected.correlated);
        let found = corrected.lag1_correlation.expect("measured");
        // se(ρ̂) ≈ 0.03 at ρ = 0.8 and n = 4,000 (500 seeded simulations); allow four.
        assert!((found - 0.8).abs() < 0.12, "{found}");
        // The correction is steep at high ρ: a 0.07 error in ρ̂ moves σ by 15 %.
        assert!((corrected.sd - 1.0).abs() < 0.25, "{}", corrected.sd);
        // White noise is not called correlated.
        let white = noise(4000, 1.0, 7);
        let estimate = real_noise(&white).with_correlation(&white);
        assert!(!estimate.correlated, "{estimate:?}");
    }

    #[test]
    fn too_few_echoes_are_unmeasurable() {
        assert_eq!(real_noise(&[1.0, 2.0]).method, NoiseMethod::Unmeasurable);
    }
}
