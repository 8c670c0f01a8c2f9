//! Echo trains: what a CPMG acquisition hands to the fits.
//!
//! An [`EchoTrain`] holds echo times and either complex echo values (I and Q, as a receiver gives
//! them) or magnitudes only (as some instruments export), plus the [`Acquisition`] metadata when it
//! is known. Construction validates the train once, so every fit can trust its input: lengths agree,
//! there is at least one echo, every number is finite, and times strictly increase.
//!
//! Phasing ([`EchoTrain::phase`]) rotates complex data so that the signal lies in the real channel,
//! whose noise is Gaussian, and estimates the noise from what is left in the imaginary channel.
//!
//! Not here: fitting (see [`crate::fit`]), reading files (see [`crate::io`]).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::noise::{self, NoiseEstimate};

/// What is known about how a train was acquired. Every field is optional: files from other
/// instruments often say little.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Acquisition {
    /// Echo spacing TE in seconds.
    pub te_s: Option<f64>,
    /// Number of averaged scans (NA).
    pub scans: Option<u32>,
    /// Observation (Larmor) frequency in hertz.
    pub freq_hz: Option<f64>,
    /// Magnet or sample temperature in degrees Celsius.
    pub temp_c: Option<f64>,
}

/// The echo values of a train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// In-phase and quadrature components, one pair per echo.
    Complex {
        /// Real (in-phase) channel.
        re: Vec<f64>,
        /// Imaginary (quadrature) channel.
        im: Vec<f64>,
    },
    /// One channel already phased on the instrument: Gaussian noise, may go negative, may carry a
    /// baseline; there is no quadrature channel to phase with or to check the noise against.
    Real(Vec<f64>),
    /// Magnitudes only; their noise is Rician, not Gaussian.
    Magnitude(Vec<f64>),
}

/// What kind of values a train holds: the choice every fit's noise model follows.
///
/// A file says which it holds by its columns (`re,im`, `real`, `magnitude`); where a format's
/// column is ambiguous (`amplitude`), its importer documents how it decides, and the fit reports
/// the kind used and why. `ferrocount fit --signal` overrides.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// In-phase and quadrature channels: phased here, noise checked against the quadrature.
    Complex,
    /// A phased real channel: Gaussian noise, fitted as is.
    Real,
    /// Magnitudes: Rician noise, fitted through the Rician mean.
    Magnitude,
}

impl SignalKind {
    /// The kind's name as the command line and the JSON write it.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Complex => "complex",
            SignalKind::Real => "real",
            SignalKind::Magnitude => "magnitude",
        }
    }
}

impl std::fmt::Display for SignalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated CPMG echo train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EchoTrain {
    times_s: Vec<f64>,
    signal: Signal,
    acquisition: Acquisition,
}

/// Why a set of numbers is not an echo train. Indices are zero-based echo numbers.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum TrainError {
    /// No echoes at all.
    #[error("the echo train is empty")]
    Empty,
    /// Columns of different lengths.
    #[error("{times} echo times but {values} {what} values")]
    LengthMismatch {
        /// Number of times.
        times: usize,
        /// Number of values in the mismatching column.
        values: usize,
        /// Which column.
        what: &'static str,
    },
    /// A NaN or infinite value.
    #[error("echo {index}: {what} is not a finite number ({value})")]
    NotFinite {
        /// Echo index.
        index: usize,
        /// Which quantity.
        what: &'static str,
        /// The offending value.
        value: f64,
    },
    /// Times that do not strictly increase (unsorted or duplicated echoes).
    #[error(
        "echo {index}: time {time_s} s is not after the previous echo's {previous_s} s (times must strictly increase)"
    )]
    NotIncreasing {
        /// Echo index.
        index: usize,
        /// Its time.
        time_s: f64,
        /// The previous echo's time.
        previous_s: f64,
    },
    /// A negative magnitude, which no magnitude detector produces.
    #[error("echo {index}: magnitude {value} is negative")]
    NegativeMagnitude {
        /// Echo index.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A conversion the values cannot support (e.g. a real channel read as complex).
    #[error("{from} values cannot be read as {to}: {why}")]
    KindConversion {
        /// The train's kind.
        from: SignalKind,
        /// The kind asked for.
        to: SignalKind,
        /// Why not.
        why: &'static str,
    },
}

/// A train after phasing: the real channel to fit, and what phasing learned.
#[derive(Clone, Debug, PartialEq)]
pub struct Phased {
    /// The signal channel: the rotated real part (complex data), the real channel, or the
    /// magnitudes.
    pub real: Vec<f64>,
    /// The rotation applied, in radians (0 for real and magnitude data).
    pub angle_rad: f64,
    /// Noise SD per echo in signal units: `noise.sd`.
    pub noise_sd: f64,
    /// How the noise was measured (see [`crate::noise`]).
    pub noise: NoiseEstimate,
}

impl EchoTrain {
    /// A complex train from echo times (seconds) and the real and imaginary channels.
    pub fn complex(times_s: Vec<f64>, re: Vec<f64>, im: Vec<f64>) -> Result<Self, TrainError> {
        check_times(&times_s)?;
        check_column(&times_s, &re, "real")?;
        check_column(&times_s, &im, "imaginary")?;
        Ok(Self {
            times_s,
            signal: Signal::Complex { re, im },
            acquisition: Acquisition::default(),
        })
    }

    /// A train of one phased real channel from echo times (seconds) and values (any sign).
    pub fn real(times_s: Vec<f64>, values: Vec<f64>) -> Result<Self, TrainError> {
        check_times(&times_s)?;
        check_column(&times_s, &values, "real")?;
        Ok(Self {
            times_s,
            signal: Signal::Real(values),
            acquisition: Acquisition::default(),
        })
    }

    /// A magnitude-only train from echo times (seconds) and non-negative magnitudes.
    pub fn magnitude(times_s: Vec<f64>, magnitude: Vec<f64>) -> Result<Self, TrainError> {
        check_times(&times_s)?;
        check_column(&times_s, &magnitude, "magnitude")?;
        if let Some((index, &value)) = magnitude.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(TrainError::NegativeMagnitude { index, value });
        }
        Ok(Self {
            times_s,
            signal: Signal::Magnitude(magnitude),
            acquisition: Acquisition::default(),
        })
    }

    /// The same train with its acquisition metadata set.
    pub fn with_acquisition(mut self, acquisition: Acquisition) -> Self {
        self.acquisition = acquisition;
        self
    }

    /// Acquisition metadata.
    pub fn acquisition(&self) -> &Acquisition {
        &self.acquisition
    }

    /// Echo times in seconds, strictly increasing.
    pub fn times_s(&self) -> &[f64] {
        &self.times_s
    }

    /// The echo values.
    pub fn signal(&self) -> &Signal {
        &self.signal
    }

    /// Number of echoes (at least one).
    pub fn len(&self) -> usize {
        self.times_s.len()
    }

    /// Always false: a train has at least one echo. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.times_s.is_empty()
    }

    /// Whether only magnitudes are known.
    pub fn is_magnitude(&self) -> bool {
        matches!(self.signal, Signal::Magnitude(_))
    }

    /// The kind of values the train holds.
    pub fn signal_kind(&self) -> SignalKind {
        match self.signal {
            Signal::Complex { .. } => SignalKind::Complex,
            Signal::Real(_) => SignalKind::Real,
            Signal::Magnitude(_) => SignalKind::Magnitude,
        }
    }

    /// The same echoes read as another kind, for a user who knows better than the file:
    /// complex → real keeps the phased real channel (the quadrature is dropped), complex →
    /// magnitude takes |z|, real ↔ magnitude reads the same numbers with the other noise model
    /// (a negative value cannot be a magnitude). Nothing can become complex.
    ///
    /// # Errors
    /// [`TrainError::KindConversion`] for → complex, [`TrainError::NegativeMagnitude`] for a
    /// negative value read as a magnitude.
    pub fn as_kind(&self, kind: SignalKind) -> Result<EchoTrain, TrainError> {
        let from = self.signal_kind();
        let signal = match (&self.signal, kind) {
            (_, k) if k == from => self.signal.clone(),
            (_, SignalKind::Complex) => {
                return Err(TrainError::KindConversion {
                    from,
                    to: kind,
                    why: "there is no quadrature channel",
                });
            }
            (Signal::Complex { .. }, SignalKind::Real) => Signal::Real(self.phase().real),
            (Signal::Complex { re, im }, SignalKind::Magnitude) => {
                Signal::Magnitude(re.iter().zip(im).map(|(x, y)| x.hypot(*y)).collect())
            }
            (Signal::Real(v), SignalKind::Magnitude) => {
                if let Some((index, &value)) = v.iter().enumerate().find(|(_, v)| **v < 0.0) {
                    return Err(TrainError::NegativeMagnitude { index, value });
                }
                Signal::Magnitude(v.clone())
            }
            (Signal::Magnitude(v), SignalKind::Real) => Signal::Real(v.clone()),
            // Every (kind, kind) pair is handled above; same-kind pairs were cloned.
            (signal, _) => signal.clone(),
        };
        Ok(EchoTrain {
            times_s: self.times_s.clone(),
            signal,
            acquisition: self.acquisition.clone(),
        })
    }

    /// The echo spacing: the acquisition's TE when known, otherwise the median spacing of the
    /// echo times (the first echo's time when there is a single echo).
    pub fn echo_spacing_s(&self) -> f64 {
        if let Some(te) = self
            .acquisition
            .te_s
            .filter(|te| *te > 0.0 && te.is_finite())
        {
            return te;
        }
        if self.times_s.len() < 2 {
            return self.times_s[0].abs();
        }
        let mut gaps: Vec<f64> = self.times_s.windows(2).map(|w| w[1] - w[0]).collect();
        let mid = gaps.len() / 2;
        let (_, median, _) = gaps.select_nth_unstable_by(mid, f64::total_cmp);
        *median
    }

    /// Rotates complex data into the real channel and estimates the noise.
    ///
    /// The angle maximises the energy of the real channel, `½·arg Σ zᵢ²`, and the sign is chosen
    /// so the signal is positive; this depends on no particular echo and is invariant to the
    /// receiver phase. The noise comes from [`crate::noise`]: the fitted channel's second
    /// differences, cross-checked against the quadrature channel. A complex train whose
    /// quadrature channel is identically zero (an instrument export of phased data) is a real
    /// channel and is treated as one. Real and magnitude data pass through unrotated.
    pub fn phase(&self) -> Phased {
        let (real, angle_rad, noise) = match &self.signal {
            Signal::Magnitude(m) => (m.clone(), 0.0, noise::magnitude_noise(m)),
            Signal::Real(v) => (v.clone(), 0.0, noise::real_noise(v)),
            Signal::Complex { re, im } if im.iter().all(|v| *v == 0.0) => {
                (re.clone(), 0.0, noise::real_noise(re))
            }
            Signal::Complex { re, im } => {
                let angle = phase_angle(re, im);
                let (real, imag) = rotate(re, im, -angle);
                let noise = noise::complex_noise(&real, &imag);
                (real, angle, noise)
            }
        };
        Phased {
            real,
            angle_rad,
            noise_sd: noise.sd,
            noise,
        }
    }

    /// The same train rotated so that the signal lies in the real channel (complex data), or
    /// unchanged (magnitude data).
    pub fn phased(&self) -> EchoTrain {
        match &self.signal {
            Signal::Magnitude(_) | Signal::Real(_) => self.clone(),
            Signal::Complex { re, im } => {
                let (re, im) = rotate(re, im, -phase_angle(re, im));
                EchoTrain {
                    times_s: self.times_s.clone(),
                    signal: Signal::Complex { re, im },
                    acquisition: self.acquisition.clone(),
                }
            }
        }
    }
}

/// The phase of the signal: the angle that maximises the real channel's energy, with the sign
/// that makes the signal positive.
fn phase_angle(re: &[f64], im: &[f64]) -> f64 {
    // Σ z² = Σ (re² − im²) + 2i Σ re·im; its argument is twice the signal phase.
    let (mut c, mut s) = (0.0, 0.0);
    for (&x, &y) in re.iter().zip(im) {
        c += x * x - y * y;
        s += 2.0 * x * y;
    }
    let mut angle = 0.5 * s.atan2(c);
    // Resolve the π ambiguity with the early echoes, where the signal is largest.
    let early = re.len().clamp(1, 16).min(re.len());
    let (cos, sin) = (angle.cos(), angle.sin());
    let projected: f64 = re[..early]
        .iter()
        .zip(&im[..early])
        .map(|(x, y)| x * cos + y * sin)
        .sum();
    if projected < 0.0 {
        angle += std::f64::consts::PI;
    }
    // Keep the angle in (−π, π].
    if angle > std::f64::consts::PI {
        angle -= 2.0 * std::f64::consts::PI;
    }
    angle
}

/// Rotates (re, im) by `angle` radians.
fn rotate(re: &[f64], im: &[f64], angle: f64) -> (Vec<f64>, Vec<f64>) {
    let (sin, cos) = angle.sin_cos();
    re.iter()
        .zip(im)
        .map(|(&x, &y)| (x * cos - y * sin, x * sin + y * cos))
        .unzip()
}

/// Noise of magnitude data, in units of the underlying complex Gaussian noise σ per channel (see
/// [`noise::magnitude_noise`]).
pub fn magnitude_noise_sd(magnitude: &[f64]) -> f64 {
    noise::magnitude_noise(magnitude).sd
}

fn check_times(times_s: &[f64]) -> Result<(), TrainError> {
    if times_s.is_empty() {
        return Err(TrainError::Empty);
    }
    for (index, &t) in times_s.iter().enumerate() {
        if !t.is_finite() {
            return Err(TrainError::NotFinite {
                index,
                what: "time",
                value: t,
            });
        }
        if index > 0 && t <= times_s[index - 1] {
            return Err(TrainError::NotIncreasing {
                index,
                time_s: t,
                previous_s: times_s[index - 1],
            });
        }
    }
    Ok(())
}

fn check_column(times_s: &[f64], values: &[f64], what: &'static str) -> Result<(), TrainError> {
    if values.len() != times_s.len() {
        return Err(TrainError::LengthMismatch {
            times: times_s.len(),
            values: values.len(),
            what,
        });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(TrainError::NotFinite { index, what, value });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(n: usize) -> Vec<f64> {
        (1..=n).map(|i| i as f64 * 1e-3).collect()
    }

    #[test]
    fn rejects_bad_trains_naming_the_echo() {
        assert_eq!(
            EchoTrain::complex(vec![], vec![], vec![]),
            Err(TrainError::Empty)
        );
        let e = EchoTrain::complex(vec![0.001, 0.002], vec![1.0], vec![0.0, 0.0]).unwrap_err();
        assert!(matches!(
            e,
            TrainError::LengthMismatch {
                times: 2,
                values: 1,
                ..
            }
        ));
        let e = EchoTrain::complex(times(3), vec![1.0, f64::NAN, 1.0], vec![0.0; 3]).unwrap_err();
        assert!(matches!(
            e,
            TrainError::NotFinite {
                index: 1,
                what: "real",
                ..
            }
        ));
        let e = EchoTrain::magnitude(vec![0.001, 0.003, 0.002], vec![1.0; 3]).unwrap_err();
        assert!(matches!(e, TrainError::NotIncreasing { index: 2, .. }));
        let e = EchoTrain::magnitude(vec![0.001, 0.001], vec![1.0; 2]).unwrap_err();
        assert!(e.to_string().contains("echo 1"), "{e}");
        let e = EchoTrain::magnitude(times(2), vec![1.0, -0.5]).unwrap_err();
        assert!(matches!(e, TrainError::NegativeMagnitude { index: 1, .. }));
        let e = EchoTrain::magnitude(vec![0.001, f64::INFINITY], vec![1.0; 2]).unwrap_err();
        assert!(matches!(e, TrainError::NotFinite { what: "time", .. }));
    }

    #[test]
    fn phasing_recovers_a_known_rotation() {
        let n = 200;
        let decay: Vec<f64> = (0..n).map(|i| (-(i as f64) / 50.0).exp()).collect();
        for true_angle in [-3.0, -1.2, 0.3, 0.7, 2.5] {
            let (sin, cos) = f64::sin_cos(true_angle);
            let re = decay.iter().map(|d| d * cos).collect();
            let im = decay.iter().map(|d| d * sin).collect();
            let train = EchoTrain::complex(times(n), re, im).unwrap();
            let phased = train.phase();
            let diff = (phased.angle_rad - true_angle).rem_euclid(2.0 * std::f64::consts::PI);
            assert!(
                diff < 1e-9 || (2.0 * std::f64::consts::PI - diff) < 1e-9,
                "{true_angle}"
            );
            for (got, want) in phased.real.iter().zip(&decay) {
                assert!((got - want).abs() < 1e-12);
            }
            // Noiseless: only the decay's curvature (T2 = 50 echoes) reaches the second differences.
            assert!(phased.noise_sd < 1e-4, "{}", phased.noise_sd);
        }
    }

    #[test]
    fn magnitude_noise_from_strong_signal_and_from_the_tail() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let noise = Normal::new(0.0, 0.5).unwrap();
        // Strong, slowly decaying signal: magnitude noise ≈ σ.
        let strong: Vec<f64> = (0..2000)
            .map(|i| {
                let s = 100.0 * (-(i as f64) / 5000.0).exp();
                f64::hypot(s + noise.sample(&mut rng), noise.sample(&mut rng))
            })
            .collect();
        let est = magnitude_noise_sd(&strong);
        assert!((est / 0.5 - 1.0).abs() < 0.08, "{est}");
        // Pure noise: Rayleigh magnitudes, estimate from E[y²] = 2σ².
        let floor: Vec<f64> = (0..2000)
            .map(|_| f64::hypot(noise.sample(&mut rng), noise.sample(&mut rng)))
            .collect();
        let est = magnitude_noise_sd(&floor);
        assert!((est / 0.5 - 1.0).abs() < 0.08, "{est}");
    }

    #[test]
    fn real_only_data_take_their_noise_from_the_real_channel() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let noise = Normal::new(0.0, 0.2).unwrap();
        let re: Vec<f64> = (0..3000)
            .map(|i| 50.0 * (-(i as f64) / 400.0).exp() + noise.sample(&mut rng))
            .collect();
        let phased = EchoTrain::complex(times(3000), re.clone(), vec![0.0; 3000])
            .unwrap()
            .phase();
        assert_eq!(phased.angle_rad, 0.0);
        assert_eq!(phased.real, re);
        assert!(
            (phased.noise_sd / 0.2 - 1.0).abs() < 0.06,
            "{}",
            phased.noise_sd
        );
    }

    #[test]
    fn echo_spacing_prefers_metadata_then_median_gap() {
        let train = EchoTrain::magnitude(vec![0.002, 0.004, 0.006, 0.0081], vec![1.0; 4]).unwrap();
        assert!((train.echo_spacing_s() - 0.002).abs() < 1e-12);
        let train = train.with_acquisition(Acquisition {
            te_s: Some(0.0025),
            ..Acquisition::default()
        });
        assert_eq!(train.echo_spacing_s(), 0.0025);
    }
}
