//! The Cramér–Rao lower bound of the mono-exponential model: the smallest spread any unbiased
//! estimator of (A, T2, C) can reach on given echo times and Gaussian noise.
//!
//! The statistical tests compare the fit's spread against it; it also tells how many echoes or
//! averages a target precision needs.
//!
//! ## Reference
//! Kay SM. Fundamentals of Statistical Signal Processing: Estimation Theory, ch. 3 (1993).

use serde::{Deserialize, Serialize};

use crate::linalg::invert3;

/// Lower bounds on the standard deviations of the estimates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonoCrlb {
    /// Bound on SD(A).
    pub amplitude_sd: f64,
    /// Bound on SD(T2), seconds.
    pub t2_s_sd: f64,
    /// Bound on SD(C).
    pub offset_sd: f64,
}

/// The bound for `A·exp(−t/T2) + C` sampled at `times_s` with Gaussian noise `noise_sd` per echo.
///
/// The Fisher information is `JᵀJ/σ²` with `J = [e, A·t·e/T2², 1]`, `e = exp(−t/T2)`. Returns
/// `None` when the information is singular (too few distinct times, T2 or σ not positive).
pub fn mono_crlb(
    times_s: &[f64],
    amplitude: f64,
    t2_s: f64,
    offset: f64,
    noise_sd: f64,
) -> Option<MonoCrlb> {
    let _ = offset; // The offset enters the model linearly: the information does not depend on it.
    if !(t2_s > 0.0 && noise_sd > 0.0) || times_s.len() < 3 {
        return None;
    }
    let mut info = [[0.0; 3]; 3];
    for &t in times_s {
        let e = (-t / t2_s).exp();
        let g = [e, amplitude * t * e / (t2_s * t2_s), 1.0];
        for p in 0..3 {
            for q in 0..3 {
                info[p][q] += g[p] * g[q];
            }
        }
    }
    let inverse = invert3(&info)?;
    let sd = |k: usize| noise_sd * inverse[k][k].max(0.0).sqrt();
    Some(MonoCrlb {
        amplitude_sd: sd(0),
        t2_s_sd: sd(1),
        offset_sd: sd(2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_without_offset_matches_the_closed_form_of_a_two_parameter_model() {
        // With many echoes far into the decay, the offset is pinned by the tail and the T2 bound
        // approaches the two-parameter one, computed here independently.
        let times: Vec<f64> = (1..=4000).map(|k| k as f64 * 0.0005).collect();
        let (a, t2, sigma) = (1.0, 0.08, 0.01);
        let (mut s00, mut s01, mut s11) = (0.0, 0.0, 0.0);
        for &t in &times {
            let e = (-t / t2).exp();
            let g1 = a * t * e / (t2 * t2);
            s00 += e * e;
            s01 += e * g1;
            s11 += g1 * g1;
        }
        let two_param = sigma * (s00 / (s00 * s11 - s01 * s01)).sqrt();
        let bound = mono_crlb(&times, a, t2, 0.0, sigma).unwrap();
        assert!(bound.t2_s_sd >= two_param * (1.0 - 1e-12));
        assert!(
            bound.t2_s_sd < two_param * 1.05,
            "{} vs {}",
            bound.t2_s_sd,
            two_param
        );
        // The bound scales with the noise.
        let doubled = mono_crlb(&times, a, t2, 0.0, 2.0 * sigma).unwrap();
        assert!((doubled.t2_s_sd / bound.t2_s_sd - 2.0).abs() < 1e-9);
    }

    #[test]
    fn degenerate_inputs_have_no_bound() {
        assert!(mono_crlb(&[0.001, 0.002], 1.0, 0.1, 0.0, 0.01).is_none());
        assert!(mono_crlb(&[0.001, 0.002, 0.003], 1.0, 0.0, 0.0, 0.01).is_none());
        assert!(mono_crlb(&[0.001, 0.002, 0.003], 1.0, 0.1, 0.0, 0.0).is_none());
    }
}
