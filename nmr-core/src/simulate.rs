//! The CPMG simulator: echo trains from the physics, for tests, the demo and the simulated board.
//!
//! Each echo at time `tₖ = k·TE` carries the transverse magnetisation left after relaxation,
//! `Σⱼ Aⱼ·exp(−tₖ/T2ⱼ) + C`, seen by a receiver with phase φ, plus independent complex Gaussian
//! noise of standard deviation σ in each channel. A magnitude receiver reports `|z|`, whose noise is
//! Rician. Everything random comes from one seeded generator, so a seed names a train exactly.
//!
//! With a refocusing angle β below 180° ([`Refocusing`]) each component's echoes follow the
//! extended phase graph instead ([`crate::epg`]): stimulated echoes, with the components' common
//! T1.
//!
//! Not here: diffusion in gradients, or T1 saturation between scans; the simulated board (in
//! `appliance`) adds the instrument around this model.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::echo_train::{Acquisition, EchoTrain};

/// One relaxation component: an amplitude (signal units at t = 0) and its T2.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// Signal at t = 0.
    pub amplitude: f64,
    /// Transverse relaxation time in seconds.
    pub t2_s: f64,
}

/// How the refocusing pulses turn the magnetisation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refocusing {
    /// Refocusing flip angle β in degrees (180 = perfect).
    pub angle_deg: f64,
    /// Longitudinal relaxation time of the sample, seconds (stimulated echoes are stored along z).
    pub t1_s: f64,
}

impl Default for Refocusing {
    fn default() -> Self {
        Self {
            angle_deg: 180.0,
            t1_s: 1.0,
        }
    }
}

impl Refocusing {
    /// Whether the pulses are perfect (β = 180°): the echoes are then pure exponentials.
    pub fn is_perfect(&self) -> bool {
        self.angle_deg == 180.0
    }
}

/// A CPMG acquisition to simulate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpmgSimulation {
    /// Relaxation components, summed.
    pub components: Vec<Component>,
    /// Constant baseline added to the real channel before the receiver phase.
    pub offset: f64,
    /// Noise standard deviation in each receiver channel.
    pub noise_sd: f64,
    /// Receiver phase in radians.
    pub phase_rad: f64,
    /// Echo spacing in seconds; echo k (1-based) is acquired at k·TE.
    pub te_s: f64,
    /// Number of echoes.
    pub echoes: usize,
    /// Report magnitudes instead of complex values.
    pub magnitude: bool,
    /// The refocusing pulses (default: perfect).
    #[serde(default)]
    pub refocusing: Refocusing,
}

impl CpmgSimulation {
    /// A noiseless mono-exponential train with receiver phase 0 and no offset.
    pub fn mono(amplitude: f64, t2_s: f64, te_s: f64, echoes: usize) -> Self {
        Self {
            components: vec![Component { amplitude, t2_s }],
            offset: 0.0,
            noise_sd: 0.0,
            phase_rad: 0.0,
            te_s,
            echoes,
            magnitude: false,
            refocusing: Refocusing::default(),
        }
    }

    /// The noiseless, phased signal at every echo: exponentials, or the extended phase graph's
    /// echoes when the refocusing is imperfect.
    pub fn ideal_echoes(&self) -> Vec<f64> {
        if self.refocusing.is_perfect() {
            return self.times_s().iter().map(|&t| self.ideal(t)).collect();
        }
        let beta = self.refocusing.angle_deg.to_radians();
        let r1 = 1.0 / self.refocusing.t1_s;
        let mut total = vec![self.offset; self.echoes];
        for c in &self.components {
            let echoes = crate::epg::cpmg_echoes(self.echoes, self.te_s, 1.0 / c.t2_s, r1, beta);
            for (t, e) in total.iter_mut().zip(echoes) {
                *t += c.amplitude * e;
            }
        }
        total
    }

    /// The noiseless, phased signal at time `t_s` with perfect refocusing.
    pub fn ideal(&self, t_s: f64) -> f64 {
        self.components
            .iter()
            .map(|c| c.amplitude * (-t_s / c.t2_s).exp())
            .sum::<f64>()
            + self.offset
    }

    /// Echo times TE, 2·TE, …, echoes·TE in seconds.
    pub fn times_s(&self) -> Vec<f64> {
        (1..=self.echoes).map(|k| k as f64 * self.te_s).collect()
    }

    /// A train from a seed (ChaCha8): the same seed always gives the same train.
    ///
    /// # Panics
    /// When the simulation itself is malformed: no echoes, or a non-finite or non-positive TE.
    pub fn simulate(&self, seed: u64) -> EchoTrain {
        self.simulate_with(&mut ChaCha8Rng::seed_from_u64(seed))
    }

    /// A train drawing its noise from `rng`.
    ///
    /// # Panics
    /// When the simulation itself is malformed: no echoes, or a non-finite or non-positive TE.
    pub fn simulate_with<R: Rng + ?Sized>(&self, rng: &mut R) -> EchoTrain {
        let times_s = self.times_s();
        let (sin, cos) = self.phase_rad.sin_cos();
        let mut re = Vec::with_capacity(times_s.len());
        let mut im = Vec::with_capacity(times_s.len());
        for s in self.ideal_echoes() {
            let n_re: f64 = StandardNormal.sample(rng);
            let n_im: f64 = StandardNormal.sample(rng);
            re.push(s * cos + self.noise_sd * n_re);
            im.push(s * sin + self.noise_sd * n_im);
        }
        let acquisition = Acquisition {
            te_s: Some(self.te_s),
            ..Acquisition::default()
        };
        let train = if self.magnitude {
            let magnitude = re.iter().zip(&im).map(|(x, y)| x.hypot(*y)).collect();
            EchoTrain::magnitude(times_s, magnitude)
        } else {
            EchoTrain::complex(times_s, re, im)
        };
        train
            .expect("a simulation with echoes and a positive TE gives increasing, finite times")
            .with_acquisition(acquisition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo_train::Signal;

    #[test]
    fn noiseless_train_follows_the_decay_through_the_receiver_phase() {
        let sim = CpmgSimulation {
            components: vec![
                Component {
                    amplitude: 2.0,
                    t2_s: 0.01,
                },
                Component {
                    amplitude: 1.0,
                    t2_s: 0.1,
                },
            ],
            offset: 0.05,
            noise_sd: 0.0,
            phase_rad: 0.6,
            te_s: 0.002,
            echoes: 50,
            magnitude: false,
            refocusing: Refocusing::default(),
        };
        let train = sim.simulate(1);
        let Signal::Complex { re, im } = train.signal() else {
            panic!("expected complex data")
        };
        for (k, (&x, &y)) in re.iter().zip(im).enumerate() {
            let t = (k + 1) as f64 * 0.002;
            let s = 2.0 * (-t / 0.01).exp() + (-t / 0.1).exp() + 0.05;
            assert!((x.hypot(y) - s).abs() < 1e-12);
            assert!((y.atan2(x) - 0.6).abs() < 1e-9);
        }
        assert_eq!(train.acquisition().te_s, Some(0.002));
    }

    #[test]
    fn seeds_name_trains_and_noise_has_the_stated_sd() {
        let mut sim = CpmgSimulation::mono(0.0, 0.08, 0.001, 20_000);
        sim.noise_sd = 0.3;
        assert_eq!(sim.simulate(9), sim.simulate(9));
        assert_ne!(sim.simulate(9), sim.simulate(10));
        let Signal::Complex { re, im } = sim.simulate(9).signal().clone() else {
            panic!("expected complex data")
        };
        for channel in [re, im] {
            let n = channel.len() as f64;
            let mean = channel.iter().sum::<f64>() / n;
            let sd = (channel.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            assert!(mean.abs() < 0.3 * 4.0 / n.sqrt());
            assert!((sd / 0.3 - 1.0).abs() < 0.03, "{sd}");
        }
    }
}
