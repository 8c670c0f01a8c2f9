//! Does an echo train prefer two exponentials to one? The model comparison behind the
//! `biexponential_preferred` QC flag.
//!
//! The comparison itself is the bi-exponential fit's ([`crate::fit::fit_bi`]): both models fitted
//! by variable projection to the same echoes, the extra-sum-of-squares F test, and the
//! identifiability checks (positive amplitudes, rates at least 1.5× apart, both within the window).
//! The QC flag asks more than the fit's own verdict, because a false flag costs a re-measurement:
//! the F test must pass a stricter level (default 10⁻⁴: the second rate is unidentified under a
//! mono-exponential truth, so the test is anti-conservative there), and the minor component must
//! hold at least 5 % of the signal. A clot, settling cells or free particle clusters give exactly
//! such a second population.
//!
//! Not a T2 fitter: the reported T2 comes from [`crate::fit::fit_mono`].

use serde::{Deserialize, Serialize};

use crate::EchoTrain;
use crate::fit::{BiFit, FitOptions, Model, fit_bi};

/// Settings of the comparison. `Default` gives the documented defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BiexponentialOptions {
    /// Significance level of the F test (default 1e-4).
    pub alpha: f64,
    /// Smallest share of the total amplitude the minor component must hold (default 0.05).
    pub min_minor_fraction: f64,
    /// Leave out the first echo, as the T2 fit does (default true).
    pub drop_first_echo: bool,
}

impl Default for BiexponentialOptions {
    fn default() -> Self {
        BiexponentialOptions {
            alpha: 1.0e-4,
            min_minor_fraction: 0.05,
            drop_first_echo: true,
        }
    }
}

/// The outcome of the comparison: the bi-exponential fit and the QC verdict on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BiexponentialCheck {
    /// The two-component fit with its model comparison.
    pub fit: BiFit,
    /// True when the data prefer two components by the criteria above.
    pub preferred: bool,
}

/// Compares mono- and bi-exponential fits of `train`. `None` when the bi-exponential fit cannot be
/// made (too few echoes, no signal: the mono fit's own errors say why).
pub fn compare_mono_bi(
    train: &EchoTrain,
    options: &BiexponentialOptions,
) -> Option<BiexponentialCheck> {
    let fit_options = FitOptions {
        drop_first_echo: options.drop_first_echo,
        ..FitOptions::default()
    };
    let fit = fit_bi(train, &fit_options).ok()?;
    let minor = fit.fraction_fast.min(1.0 - fit.fraction_fast);
    let preferred = fit.comparison.preferred == Model::Bi
        && fit.comparison.p_value < options.alpha
        && minor >= options.min_minor_fraction;
    Some(BiexponentialCheck { fit, preferred })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{Component, CpmgSimulation};

    #[test]
    fn mono_exponential_trains_are_not_flagged() {
        let options = BiexponentialOptions::default();
        let mut flagged = 0;
        for seed in 0..40 {
            let mut simulation = CpmgSimulation::mono(1.0, 0.30, 0.004, 500);
            simulation.noise_sd = 1.0 / 300.0;
            let check = compare_mono_bi(&simulation.simulate(seed), &options).expect("comparable");
            assert!(check.fit.comparison.rss_bi <= check.fit.comparison.rss_mono * (1.0 + 1e-12));
            if check.preferred {
                flagged += 1;
            }
        }
        // At α = 1e-4 plus the amplitude and rate criteria, a false flag in 40 trains is rare.
        assert!(flagged <= 1, "{flagged} of 40 mono trains flagged");
    }

    #[test]
    fn a_second_population_is_found_and_flagged() {
        let mut simulation = CpmgSimulation::mono(1.0, 0.30, 0.004, 500);
        simulation.components = vec![
            Component {
                amplitude: 0.75,
                t2_s: 0.35,
            },
            Component {
                amplitude: 0.25,
                t2_s: 0.06,
            },
        ];
        simulation.noise_sd = 1.0 / 300.0;
        let check = compare_mono_bi(&simulation.simulate(3), &BiexponentialOptions::default())
            .expect("comparable");
        assert!(check.preferred, "{check:?}");
        assert!((check.fit.t2_fast_ms - 60.0).abs() < 10.0, "{check:?}");
        assert!((check.fit.t2_slow_ms - 350.0).abs() < 20.0, "{check:?}");
        assert!((check.fit.fraction_fast - 0.25).abs() < 0.05, "{check:?}");
    }

    #[test]
    fn a_minor_component_below_the_threshold_is_not_flagged() {
        let mut simulation = CpmgSimulation::mono(1.0, 0.30, 0.004, 500);
        simulation.components = vec![
            Component {
                amplitude: 0.97,
                t2_s: 0.35,
            },
            Component {
                amplitude: 0.03,
                t2_s: 0.03,
            },
        ];
        simulation.noise_sd = 1.0 / 3000.0;
        let check = compare_mono_bi(&simulation.simulate(4), &BiexponentialOptions::default())
            .expect("comparable");
        // The fit sees two components; the QC rule does not flag a 3 % population.
        assert_eq!(check.fit.comparison.preferred, Model::Bi, "{check:?}");
        assert!(!check.preferred);
    }

    #[test]
    fn too_short_a_train_gives_none() {
        let simulation = CpmgSimulation::mono(1.0, 0.30, 0.004, 6);
        assert!(
            compare_mono_bi(&simulation.simulate(1), &BiexponentialOptions::default()).is_none()
        );
    }
}
