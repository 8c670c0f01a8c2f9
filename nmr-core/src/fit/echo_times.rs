//! Echo times and the decays `exp(−r·t)` sampled on them.
//!
//! Every fit here evaluates exponentials on the same echo times many times over. On uniformly
//! spaced echoes (the normal case: t_i = t_0 + i·Δt) a decay is a geometric sequence, so one `exp`
//! per decay and one multiply per echo replace an `exp` per echo; the relative error of the
//! recurrence grows like i·ε (about 3e-12 after 25,000 echoes). Irregular times take the direct path.
//!
//! Private numeric helper: no fitting logic lives here.

/// `Some((t_0, Δt))` when every `|t_i − (t_0 + i·Δt)| ≤ relative_tolerance · t_i`, with
/// Δt = (t_last − t_0)/(m − 1); `None` for fewer than two echoes or non-positive times.
pub(crate) fn uniform_spacing(times_s: &[f64], relative_tolerance: f64) -> Option<(f64, f64)> {
    let m = times_s.len();
    if m < 2 {
        return None;
    }
    let t0 = times_s[0];
    let dt = (times_s[m - 1] - t0) / (m - 1) as f64;
    if !(dt > 0.0 && t0 > 0.0) {
        return None;
    }
    times_s
        .iter()
        .enumerate()
        .all(|(i, &t)| (t - (t0 + i as f64 * dt)).abs() <= relative_tolerance * t)
        .then_some((t0, dt))
}

/// Echo times with their spacing detected once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EchoTimes<'a> {
    times_s: &'a [f64],
    uniform: Option<(f64, f64)>,
}

impl<'a> EchoTimes<'a> {
    /// Tolerance for treating times as uniform in the exponential fits: the model error it allows
    /// is below 4e-10 of the amplitude (see `spectrum` for the bound).
    const FIT_RELATIVE_TOLERANCE: f64 = 1e-9;

    /// Wraps `times_s`, detecting uniform spacing.
    pub(crate) fn new(times_s: &'a [f64]) -> Self {
        Self {
            times_s,
            uniform: uniform_spacing(times_s, Self::FIT_RELATIVE_TOLERANCE),
        }
    }

    /// The times.
    pub(crate) fn times_s(&self) -> &'a [f64] {
        self.times_s
    }

    /// Fills `out[i] = exp(−rate·t_i)`.
    pub(crate) fn decay_into(&self, rate_per_s: f64, out: &mut [f64]) {
        match self.uniform {
            Some((t0, dt)) => {
                let q = (-rate_per_s * dt).exp();
                let mut e = (-rate_per_s * t0).exp();
                for v in out.iter_mut() {
                    *v = e;
                    e *= q;
                }
            }
            None => {
                for (v, t) in out.iter_mut().zip(self.times_s) {
                    *v = (-rate_per_s * t).exp();
                }
            }
        }
    }

    /// `exp(−rate·t_i)` for every echo.
    pub(crate) fn decay(&self, rate_per_s: f64) -> Vec<f64> {
        let mut out = vec![0.0; self.times_s.len()];
        self.decay_into(rate_per_s, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recurrence_matches_direct_exponentials() {
        let times: Vec<f64> = (1..=25_000).map(|i| i as f64 * 0.108e-3).collect();
        let uniform = EchoTimes::new(&times);
        assert!(uniform.uniform.is_some());
        for rate in [0.1, 10.0, 300.0, 9000.0] {
            let fast = uniform.decay(rate);
            for (t, v) in times.iter().zip(&fast) {
                let want = (-rate * t).exp();
                assert!(
                    (v - want).abs() <= 1e-11 * want + 1e-300,
                    "rate {rate} t {t}: {v} vs {want}"
                );
            }
        }
        let mut irregular = times[..100].to_vec();
        irregular[50] += 1e-7;
        let direct = EchoTimes::new(&irregular);
        assert!(direct.uniform.is_none());
        assert_eq!(direct.decay(5.0)[50], (-5.0 * irregular[50]).exp());
    }
}
