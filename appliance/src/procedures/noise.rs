//! Noise: the receiver's noise level and DC offset, measured with the transmitter silent.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use super::{ProcedureError, RunSettings, run_sequence};
use crate::frontend::{Frontend, PhaseCycle, PulseProgram};

/// How to measure noise.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NoiseSettings {
    /// Acquire windows (samples).
    pub windows: u16,
    /// Window length, ns (the noise level depends on it: ∝ 1/√window).
    pub window_ns: u64,
    /// Gap between windows, ns.
    pub gap_ns: u64,
    /// Receiver gain, dB.
    pub rx_gain_db: u8,
}

impl Default for NoiseSettings {
    fn default() -> Self {
        Self {
            windows: 512,
            window_ns: 20_000,
            gap_ns: 80_000,
            rx_gain_db: 40,
        }
    }
}

/// The noise measurement.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NoiseReport {
    /// Samples used.
    pub samples: usize,
    /// Window length, ns.
    pub window_ns: u64,
    /// Receiver gain, dB.
    pub rx_gain_db: u8,
    /// Standard deviation of I, counts.
    pub noise_sd_i: f64,
    /// Standard deviation of Q, counts.
    pub noise_sd_q: f64,
    /// Pooled per-channel standard deviation, counts.
    pub noise_sd: f64,
    /// Mean of I (DC offset), counts.
    pub mean_i: f64,
    /// Mean of Q (DC offset), counts.
    pub mean_q: f64,
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Acquires `windows` samples with no RF in one scan and reports their spread.
pub fn measure_noise<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
    settings: &NoiseSettings,
) -> Result<NoiseReport, ProcedureError<SPI::Error>>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    if settings.windows < 2 {
        return Err(ProcedureError::NoResult {
            procedure: "noise",
            reason: "at least 2 windows are needed".to_owned(),
        });
    }
    frontend.set_rx_gain_db(settings.rx_gain_db)?;
    let program = PulseProgram::noise(settings.windows, settings.window_ns, settings.gap_ns)
        .map_err(crate::frontend::Error::from)?;
    let scan_us = u64::from(settings.windows) * (settings.window_ns + settings.gap_ns) / 1_000;
    let tr_us = u32::try_from(scan_us + 1_000).unwrap_or(u32::MAX);
    let run = RunSettings {
        scans: 1,
        dummy_scans: 0,
        tr_us,
        phase_cycle: PhaseCycle::None,
    };
    let echoes = run_sequence(frontend, &program, run, None)?;
    let i: Vec<f64> = echoes.iter().map(|e| f64::from(e.i)).collect();
    let q: Vec<f64> = echoes.iter().map(|e| f64::from(e.q)).collect();
    let (mean_i, noise_sd_i) = mean_sd(&i);
    let (mean_q, noise_sd_q) = mean_sd(&q);
    Ok(NoiseReport {
        samples: echoes.len(),
        window_ns: settings.window_ns,
        rx_gain_db: settings.rx_gain_db,
        noise_sd_i,
        noise_sd_q,
        noise_sd: ((noise_sd_i.powi(2) + noise_sd_q.powi(2)) / 2.0).sqrt(),
        mean_i,
        mean_q,
    })
}
