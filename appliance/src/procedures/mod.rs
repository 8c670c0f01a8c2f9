//! Measurement procedures on the front end: take-over, identify, tune, nutation, noise, CPMG, the
//! bring-up self-test, and the temperature guard that aborts a measurement when the magnet
//! drifts.
//!
//! Each procedure takes a connected [`Frontend`] and settings, drives the board through the
//! driver's public API only (so it runs the same on hardware and on the simulated board), and
//! returns a serde-serialisable report meant to be stored with the measurement.
//!
//! Not here: fitting T2 or counting cells (nmr-core), storing reports (storage).

mod cpmg;
mod identify;
mod noise;
mod nutation;
mod selftest;
mod take_over;
mod temperature_guard;
mod tune;

pub use cpmg::{CpmgMeasurement, CpmgReport, CpmgSettings, measure_cpmg};
pub use identify::{
    FirmwareMismatch, IdentifyReport, SUPPORTED_FIRMWARE_MAJOR, check_firmware, identify,
    read_identity,
};
pub use noise::{NoiseReport, NoiseSettings, measure_noise};
pub use nutation::{NutationPoint, NutationReport, NutationSettings, find_p90};
pub use selftest::{
    COIL_ABOVE_MAGNET_C, MAGNET_RANGE_C, MAX_CHANGE_C, MIN_SNR, STEPS, SelftestReport,
    SelftestStep, StepOutcome, selftest,
};
pub use take_over::take_over;
pub use temperature_guard::TemperatureGuard;
pub use tune::{FrequencyModel, TuneReport, TuneSettings, TuneStep, tune};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use crate::frontend::{EchoSample, Error, Frontend, PhaseCycle, PulseProgram};

/// Why a procedure failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcedureError<E> {
    /// The front end failed (bus, protocol, board, overflow, reset...).
    #[error(transparent)]
    Frontend(#[from] Error<E>),
    /// The board runs a firmware major version this host does not support.
    #[error(transparent)]
    Firmware(#[from] FirmwareMismatch),
    /// The magnet drifted past the guard's limit; the sequence was halted.
    #[error(
        "magnet temperature drifted from {start_c:.3} °C to {now_c:.3} °C, beyond the ±{limit_c} °C limit: measurement aborted"
    )]
    TemperatureDrift {
        /// Temperature when the measurement started.
        start_c: f64,
        /// Temperature that tripped the guard.
        now_c: f64,
        /// The limit.
        limit_c: f64,
    },
    /// The measured data do not allow a trustworthy answer.
    #[error("{procedure}: {reason}")]
    NoResult {
        /// Which procedure.
        procedure: &'static str,
        /// Why.
        reason: String,
    },
}

/// Register settings shared by one acquisition run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunSettings {
    pub scans: u16,
    pub dummy_scans: u8,
    pub tr_us: u32,
    pub phase_cycle: PhaseCycle,
}

/// Writes the run registers, loads `program`, flushes stale echoes, starts, waits (with the optional
/// guard), and reads `echoes` averaged echoes.
pub(crate) fn run_sequence<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
    program: &PulseProgram,
    run: RunSettings,
    guard: Option<&TemperatureGuard>,
) -> Result<Vec<EchoSample>, ProcedureError<SPI::Error>>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    frontend.set_scans(run.scans)?;
    frontend.set_dummy_scans(run.dummy_scans)?;
    frontend.set_repetition_time_us(run.tr_us)?;
    frontend.set_phase_cycle(run.phase_cycle)?;
    frontend.load_program(program)?;
    frontend.flush_fifo()?;
    let start_temp_c = match guard {
        Some(_) => Some(frontend.magnet_temp_c()?),
        None => None,
    };
    frontend.start()?;
    let expected_us = (u64::from(run.scans) + u64::from(run.dummy_scans)) * u64::from(run.tr_us);
    let mut tripped: Option<(f64, f64)> = None;
    let waited = frontend.wait_for_sequence(expected_us, |fe| {
        if let (Some(guard), Some(start_c)) = (guard, start_temp_c) {
            let now_c = fe.magnet_temp_c()?;
            if !guard.within_limit(start_c, now_c) {
                tripped = Some((start_c, now_c));
                return Err(Error::Aborted {
                    reason: "temperature guard".to_owned(),
                });
            }
        }
        Ok(())
    });
    if let Some((start_c, now_c)) = tripped {
        frontend.halt()?;
        frontend.flush_fifo()?;
        let limit_c = guard.map(|g| g.max_drift_c).unwrap_or_default();
        return Err(ProcedureError::TemperatureDrift {
            start_c,
            now_c,
            limit_c,
        });
    }
    waited?;
    let count = program.acquisitions_per_scan() as usize;
    Ok(frontend.read_echoes(count)?)
}
