//! CPMG: acquire an averaged, phased echo train with the metadata needed to trust it later.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use nmr_core::{Acquisition, EchoTrain};

use super::{ProcedureError, RunSettings, TemperatureGuard, run_sequence};
use crate::frontend::{CpmgTiming, Error, Frontend, PhaseCycle, PulseProgram};

/// CPMG parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpmgSettings {
    /// Echo spacing, µs (a multiple of 0.02 µs, i.e. whole ticks per half).
    pub te_us: f64,
    /// Echoes per scan.
    pub echoes: u32,
    /// Averaged scans (NA, a multiple of the phase cycle).
    pub scans: u16,
    /// Dummy scans before averaging.
    pub dummy_scans: u8,
    /// Repetition time, ms.
    pub tr_ms: u32,
    /// Receiver gain, dB.
    pub rx_gain_db: u8,
    /// 90° pulse, ns.
    pub p90_ns: u64,
    /// 180° pulse, ns.
    pub p180_ns: u64,
    /// Acquire window per echo, ns.
    pub window_ns: u64,
    /// Phase cycle.
    pub phase_cycle: PhaseCycle,
    /// Temperature guard (None: no guard).
    pub guard: Option<TemperatureGuard>,
}

impl Default for CpmgSettings {
    fn default() -> Self {
        Self {
            te_us: 1000.0,
            echoes: 1000,
            scans: 4,
            dummy_scans: 1,
            tr_ms: 3000,
            rx_gain_db: 40,
            p90_ns: 10_000,
            p180_ns: 20_000,
            window_ns: 20_000,
            phase_cycle: PhaseCycle::Two,
            guard: Some(TemperatureGuard::default()),
        }
    }
}

/// What the CPMG run was, for the record.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpmgReport {
    /// The settings used.
    pub settings: CpmgSettings,
    /// RF frequency (f0) during the run.
    pub frequency_hz: f64,
    /// Magnet temperature before the run.
    pub magnet_temp_before_c: f64,
    /// Magnet temperature after the run.
    pub magnet_temp_after_c: f64,
    /// Coil temperature before the run.
    pub coil_temp_before_c: f64,
    /// Coil temperature after the run.
    pub coil_temp_after_c: f64,
    /// Phase rotation applied to put the signal in the real channel, rad.
    pub phase_rad: f64,
    /// Noise SD estimated from the imaginary channel after phasing, counts.
    pub noise_sd: f64,
}

/// The train and its report.
#[derive(Clone, Debug, PartialEq)]
pub struct CpmgMeasurement {
    /// Averaged, phased echo train (counts) with acquisition metadata.
    pub train: EchoTrain,
    /// The record.
    pub report: CpmgReport,
}

/// Runs a CPMG at the board's current frequency and returns the phased train.
pub fn measure_cpmg<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
    settings: &CpmgSettings,
) -> Result<CpmgMeasurement, ProcedureError<SPI::Error>>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    // TE is given in µs as a decimal; accept it when it is a whole number of nanoseconds up to the
    // binary representation error of the decimal (1e-6 ns), refuse it otherwise.
    let te_ns_f = settings.te_us * 1000.0;
    if !(te_ns_f.is_finite() && te_ns_f > 0.0 && (te_ns_f - te_ns_f.round()).abs() < 1e-6) {
        return Err(Error::InvalidArgument {
            name: "te_us",
            value: settings.te_us.to_string(),
            allowed: "a whole number of nanoseconds".to_owned(),
        }
        .into());
    }
    let te_ns = te_ns_f.round() as u64;
    let timing = CpmgTiming {
        te_ns,
        echoes: settings.echoes,
        p90_ns: settings.p90_ns,
        p180_ns: settings.p180_ns,
        window_ns: settings.window_ns,
    };
    let program = PulseProgram::cpmg(&timing).map_err(Error::from)?;
    let tr_us = settings
        .tr_ms
        .checked_mul(1000)
        .ok_or_else(|| Error::InvalidArgument {
            name: "tr_ms",
            value: settings.tr_ms.to_string(),
            allowed: "1 ..= 60000".to_owned(),
        })?;
    let train_us = (u64::from(settings.echoes) + 1) * te_ns / 1000;
    if train_us >= u64::from(tr_us) {
        return Err(Error::InvalidArgument {
            name: "tr_ms",
            value: settings.tr_ms.to_string(),
            allowed: format!("longer than the echo train ((echoes + 1) × TE = {train_us} µs)"),
        }
        .into());
    }
    frontend.set_rx_gain_db(settings.rx_gain_db)?;
    let frequency_hz = frontend.frequency_hz()?;
    let magnet_temp_before_c = frontend.magnet_temp_c()?;
    let coil_temp_before_c = frontend.coil_temp_c()?;
    let run = RunSettings {
        scans: settings.scans,
        dummy_scans: settings.dummy_scans,
        tr_us,
        phase_cycle: settings.phase_cycle,
    };
    let echoes = run_sequence(frontend, &program, run, settings.guard.as_ref())?;
    let magnet_temp_after_c = frontend.magnet_temp_c()?;
    let coil_temp_after_c = frontend.coil_temp_c()?;

    let te_s = te_ns as f64 * 1e-9;
    let times_s: Vec<f64> = (1..=echoes.len()).map(|k| k as f64 * te_s).collect();
    let re = echoes.iter().map(|e| f64::from(e.i)).collect();
    let im = echoes.iter().map(|e| f64::from(e.q)).collect();
    let raw = EchoTrain::complex(times_s, re, im)
        .map_err(|e| ProcedureError::NoResult {
            procedure: "cpmg",
            reason: format!("echo train rejected: {e}"),
        })?
        .with_acquisition(Acquisition {
            te_s: Some(te_s),
            scans: Some(u32::from(settings.scans)),
            freq_hz: Some(frequency_hz),
            temp_c: Some((magnet_temp_before_c + magnet_temp_after_c) / 2.0),
        });
    let phased = raw.phase();
    let train = raw.phased();
    Ok(CpmgMeasurement {
        train,
        report: CpmgReport {
            settings: settings.clone(),
            frequency_hz,
            magnet_temp_before_c,
            magnet_temp_after_c,
            coil_temp_before_c,
            coil_temp_after_c,
            phase_rad: phased.angle_rad,
            noise_sd: phased.noise_sd,
        },
    })
}
