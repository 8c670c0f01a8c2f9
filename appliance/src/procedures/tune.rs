//! Tune: find the Larmor frequency f0.
//!
//! Start from the frequency predicted by the magnet temperature, then measure the frequency offset
//! from the phase ramp of the FID: two short windows `gap` apart see phases differing by
//! 2π·Δf·gap, so Δf = Δφ / (2π·gap), unambiguous for |Δf| < 1/(2·gap). Three rounds with gaps of
//! 20 µs, 200 µs and 1 ms take the capture range from ±25 kHz (about ±1.2 K of temperature error)
//! down to a few hertz of noise.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use super::{ProcedureError, RunSettings, run_sequence};
use crate::frontend::{Frontend, PhaseCycle, PulseProgram};

/// The magnet's nominal frequency–temperature relation used to predict f0.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrequencyModel {
    /// Larmor frequency at `reference_temp_c`.
    pub f0_at_reference_hz: f64,
    /// Reference temperature.
    pub reference_temp_c: f64,
    /// Relative change per kelvin (−0.001 for NdFeB, −0.10 %/K).
    pub coefficient_per_k: f64,
}

impl Default for FrequencyModel {
    fn default() -> Self {
        Self {
            f0_at_reference_hz: 42.577e6 * 0.49,
            reference_temp_c: 25.0,
            coefficient_per_k: -0.001,
        }
    }
}

impl FrequencyModel {
    /// Predicted f0 at a magnet temperature.
    pub fn predict_hz(&self, temp_c: f64) -> f64 {
        self.f0_at_reference_hz * (1.0 + self.coefficient_per_k * (temp_c - self.reference_temp_c))
    }
}

/// How to tune.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TuneSettings {
    /// Frequency–temperature model for the starting value.
    pub model: FrequencyModel,
    /// Window gaps of the successive rounds, µs (each must be a multiple of 10 ns).
    pub gaps_us: Vec<u32>,
    /// Acquire window length, ns.
    pub window_ns: u64,
    /// Delay from pulse end to the first window (≥ the receiver dead time), ns.
    pub delay_ns: u64,
    /// Scans per round (a multiple of 2: two-step phase cycle).
    pub scans: u16,
    /// Repetition time, µs.
    pub tr_us: u32,
}

impl Default for TuneSettings {
    fn default() -> Self {
        Self {
            model: FrequencyModel::default(),
            gaps_us: vec![20, 200, 1000],
            window_ns: 2_000,
            delay_ns: 10_000,
            scans: 4,
            tr_us: 500_000,
        }
    }
}

/// One round of the search.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct TuneStep {
    /// Frequency programmed for this round.
    pub frequency_hz: f64,
    /// Gap between the two windows, µs.
    pub gap_us: u32,
    /// Measured offset f0 − frequency.
    pub offset_hz: f64,
    /// FID amplitude in the first window, counts.
    pub amplitude: f64,
}

/// The tuning result.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TuneReport {
    /// Magnet temperature at the start.
    pub magnet_temp_c: f64,
    /// f0 predicted from that temperature.
    pub predicted_hz: f64,
    /// f0 found (and left programmed on the board).
    pub f0_hz: f64,
    /// Found − predicted.
    pub correction_hz: f64,
    /// The rounds.
    pub steps: Vec<TuneStep>,
}

/// Finds f0 and leaves the board tuned to it.
pub fn tune<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
    settings: &TuneSettings,
) -> Result<TuneReport, ProcedureError<SPI::Error>>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let magnet_temp_c = frontend.magnet_temp_c()?;
    let predicted_hz = settings.model.predict_hz(magnet_temp_c);
    let mut frequency_hz = frontend.set_frequency_hz(predicted_hz)?;
    let run = RunSettings {
        scans: settings.scans,
        dummy_scans: 1,
        tr_us: settings.tr_us,
        phase_cycle: PhaseCycle::Two,
    };
    let mut steps = Vec::new();
    for &gap_us in &settings.gaps_us {
        let program = PulseProgram::fid_two_windows(
            settings.delay_ns,
            settings.window_ns,
            u64::from(gap_us) * 1_000,
        )
        .map_err(crate::frontend::Error::from)?;
        let echoes = run_sequence(frontend, &program, run, None)?;
        let [first, second] = echoes.as_slice() else {
            return Err(ProcedureError::NoResult {
                procedure: "tune",
                reason: format!("expected 2 FID samples, got {}", echoes.len()),
            });
        };
        let (i1, q1) = (f64::from(first.i), f64::from(first.q));
        let (i2, q2) = (f64::from(second.i), f64::from(second.q));
        let amplitude = i1.hypot(q1);
        // Phase of second × conj(first).
        let dphi = (q2 * i1 - i2 * q1).atan2(i2 * i1 + q2 * q1);
        let separation_s = (u64::from(gap_us) * 1_000 + settings.window_ns) as f64 * 1e-9;
        let offset_hz = dphi / (2.0 * std::f64::consts::PI * separation_s);
        steps.push(TuneStep {
            frequency_hz,
            gap_us,
            offset_hz,
            amplitude,
        });
        frequency_hz = frontend.set_frequency_hz(frequency_hz + offset_hz)?;
    }
    if steps.iter().all(|s| s.amplitude == 0.0) {
        return Err(ProcedureError::NoResult {
            procedure: "tune",
            reason: "no FID signal".to_owned(),
        });
    }
    Ok(TuneReport {
        magnet_temp_c,
        predicted_hz,
        f0_hz: frequency_hz,
        correction_hz: frequency_hz - predicted_hz,
        steps,
    })
}
