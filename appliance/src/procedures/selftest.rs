//! Self-test: bringing a board up, one verdict per step, the same on spidev, a board twin and the
//! in-process simulated board (`ferrocount board selftest`).
//!
//! The steps, in order ([`STEPS`]):
//!
//! 1. `identity`: halt and flush (take-over), the identity block, protocol and firmware versions
//!    (a firmware major this host does not drive fails the step, and the others are skipped).
//! 2. `registers`: every writable register written with a test value, read back raw, then set
//!    to its power-on default and read back again.
//! 3. `fid`: the receiver's noise, then one free induction decay: its first window must stand
//!    [`MIN_SNR`] times above the noise.
//! 4. `cpmg`: tune, then a short CPMG (200 echoes, TE 1 ms, NA 2) whose mono-exponential fit
//!    must succeed with an SNR of at least [`MIN_SNR`].
//! 5. `fifo`: a sequence that fills the FIFO to exactly its capacity (level = capacity, no
//!    overflow), a second one that overflows it (every echo reported lost, the first sequence's
//!    echoes intact), a drain in bursts to level 0, an empty read, a flush that clears the flag.
//! 6. `timing`: a known sequence (2 dummy + 8 scans, TR 50 ms = 500 ms) polled every 10 ms: the
//!    board must report done no earlier than its program says and within two polls and 2 % after,
//!    and its count of scans done must follow the program within one scan at every poll. Time is
//!    counted by the host's delays, as the driver counts it (on the simulated board, virtual time).
//! 7. `temperatures`: the magnet and coil sensors read twice 200 ms apart: the magnet within
//!    [`MAGNET_RANGE_C`], the coil [`COIL_ABOVE_MAGNET_C`] above it, neither moving more than
//!    [`MAX_CHANGE_C`].
//!
//! A failing step does not stop the later ones (their verdicts help to locate the fault), except
//! that nothing runs on a board that could not be identified or is refused. The board is left
//! halted, its FIFO flushed, its registers at their defaults.
//!
//! Not for: calibrating anything, or judging measurement quality beyond "the board works".

use std::ops::RangeInclusive;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use nmr_core::fit::{FitOptions, fit_mono};

use super::{
    CpmgSettings, NoiseSettings, RunSettings, TuneSettings, check_firmware, measure_cpmg,
    measure_noise, read_identity, run_sequence, take_over, tune,
};
use crate::frontend::registers::{self, RegisterSpec, SequencerState};
use crate::frontend::{CpmgTiming, Error, Frontend, LinkCounters, PhaseCycle, PulseProgram};

/// The steps, in the order they run.
pub const STEPS: [&str; 7] = [
    "identity",
    "registers",
    "fid",
    "cpmg",
    "fifo",
    "timing",
    "temperatures",
];

/// Least signal-to-noise ratio of the FID's first window and of the CPMG fit.
pub const MIN_SNR: f64 = 20.0;
/// Plausible magnet temperatures, °C (a disconnected sensor reads far outside).
pub const MAGNET_RANGE_C: RangeInclusive<f64> = 10.0..=45.0;
/// Coil temperature minus magnet temperature, °C (the coil runs a little warmer).
pub const COIL_ABOVE_MAGNET_C: RangeInclusive<f64> = -2.0..=10.0;
/// Largest change of either sensor between two readings 200 ms apart, °C.
pub const MAX_CHANGE_C: f64 = 0.1;

/// A step's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// The step ran and the board did what it should.
    Pass,
    /// The step ran and something was wrong (the detail says what).
    Fail,
    /// The step did not run (the detail says why).
    Skipped,
}

/// One step's verdict and what was measured or went wrong.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SelftestStep {
    /// The step's name ([`STEPS`]).
    pub step: &'static str,
    /// Its verdict.
    pub outcome: StepOutcome,
    /// What was measured, or what was wrong.
    pub detail: String,
}

/// The whole self-test.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SelftestReport {
    /// Every step passed.
    pub passed: bool,
    /// The steps, in order.
    pub steps: Vec<SelftestStep>,
    /// What crossed the link.
    pub link: LinkCounters,
}

type StepResult = Result<String, String>;

fn failed<E: std::fmt::Debug>(error: Error<E>) -> String {
    error.to_string()
}

/// Runs every step on `frontend` and reports each; never stops early except after identity.
pub fn selftest<SPI, DR, RST, D>(frontend: &mut Frontend<SPI, DR, RST, D>) -> SelftestReport
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let mut steps = Vec::with_capacity(STEPS.len());
    let mut record = |step: &'static str, result: StepResult| {
        let (outcome, detail) = match result {
            Ok(detail) => (StepOutcome::Pass, detail),
            Err(detail) => (StepOutcome::Fail, detail),
        };
        steps.push(SelftestStep {
            step,
            outcome,
            detail,
        });
    };
    let identity = identity_step(frontend);
    let identified = identity.as_ref().ok().map(|(_, capacity)| *capacity);
    record("identity", identity.map(|(detail, _)| detail));
    if let Some(fifo_capacity) = identified {
        record("registers", registers_step(frontend));
        record("fid", fid_step(frontend));
        record("cpmg", cpmg_step(frontend));
        record("fifo", fifo_step(frontend, fifo_capacity));
        record("timing", timing_step(frontend));
        record("temperatures", temperatures_step(frontend));
        // Leave the board as the appliance expects to find it.
        let _ = take_over(frontend);
        let _ = restore_defaults(frontend);
    }
    for step in STEPS.iter().skip(steps.len()) {
        steps.push(SelftestStep {
            step,
            outcome: StepOutcome::Skipped,
            detail: "not run: the board was not identified or is refused".to_owned(),
        });
    }
    SelftestReport {
        passed: steps.iter().all(|s| s.outcome == StepOutcome::Pass),
        steps,
        link: frontend.counters(),
    }
}

/// Take-over, identity, versions. Returns the detail and the FIFO capacity.
fn identity_step<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
) -> Result<(String, u16), String>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    take_over(frontend).map_err(|e| format!("halting the board: {e}"))?;
    let report = read_identity(frontend).map_err(|e| e.to_string())?;
    let identity = &report.identity;
    let detail = format!(
        "serial {:#010x}{}, protocol {}.{}, firmware {}, FIFO {} echoes, {} program entries, capabilities {:#010x}",
        identity.serial,
        if report.simulated { " (simulated)" } else { "" },
        identity.protocol.0,
        identity.protocol.1,
        report.firmware,
        identity.fifo_capacity,
        identity.max_program_entries,
        identity.capabilities
    );
    check_firmware(identity).map_err(|e| format!("{detail}: {e}"))?;
    if identity.fifo_capacity == 0 {
        return Err(format!("{detail}: a FIFO of 0 echoes"));
    }
    Ok((detail, identity.fifo_capacity))
}

fn restore_defaults<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
) -> Result<(), Error<SPI::Error>>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let ticks_ns = |spec: RegisterSpec| u64::from(spec.default) * registers::TICK_NS;
    frontend.set_tx_amplitude(registers::TX_AMPLITUDE.default as u16)?;
    frontend.set_p90_ns(ticks_ns(registers::P90_TICKS))?;
    frontend.set_p180_ns(ticks_ns(registers::P180_TICKS))?;
    frontend.set_rx_gain_db(registers::RX_GAIN_DB.default as u8)?;
    frontend.set_acquisition_delay_ns(ticks_ns(registers::ACQ_DELAY_TICKS))?;
    frontend.set_scans(registers::SCANS.default as u16)?;
    frontend.set_repetition_time_us(registers::TR_US.default)?;
    frontend.set_dummy_scans(registers::DUMMY_SCANS.default as u8)?;
    frontend.set_phase_cycle(PhaseCycle::None)?;
    frontend.set_frequency_hz(registers::ftw_to_frequency(registers::RF_FTW.default))?;
    Ok(())
}

fn compare_registers<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
    expected: &[(RegisterSpec, u32)],
    what: &str,
) -> Result<(), String>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    for (spec, value) in expected {
        let read = frontend.read_register(*spec).map_err(failed)?;
        if read != *value {
            return Err(format!(
                "{} read back {read} after writing {value} ({what})",
                spec.name
            ));
        }
    }
    Ok(())
}

fn registers_step<SPI, DR, RST, D>(frontend: &mut Frontend<SPI, DR, RST, D>) -> StepResult
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let test_frequency_hz = 20_500_000.0;
    frontend.set_tx_amplitude(0x1234).map_err(failed)?;
    frontend.set_p90_ns(12_340).map_err(failed)?;
    frontend.set_p180_ns(24_680).map_err(failed)?;
    frontend.set_rx_gain_db(37).map_err(failed)?;
    frontend.set_acquisition_delay_ns(12_000).map_err(failed)?;
    frontend.set_scans(6).map_err(failed)?;
    frontend.set_repetition_time_us(123_000).map_err(failed)?;
    frontend.set_dummy_scans(3).map_err(failed)?;
    frontend.set_phase_cycle(PhaseCycle::Four).map_err(failed)?;
    let programmed_hz = frontend
        .set_frequency_hz(test_frequency_hz)
        .map_err(failed)?;
    let ftw = registers::frequency_to_ftw(programmed_hz)
        .ok_or_else(|| format!("{programmed_hz} Hz has no tuning word"))?;
    let written = [
        (registers::RF_FTW, ftw),
        (registers::TX_AMPLITUDE, 0x1234),
        (registers::P90_TICKS, 1_234),
        (registers::P180_TICKS, 2_468),
        (registers::RX_GAIN_DB, 37),
        (registers::ACQ_DELAY_TICKS, 1_200),
        (registers::SCANS, 6),
        (registers::TR_US, 123_000),
        (registers::DUMMY_SCANS, 3),
        (registers::PHASE_CYCLE, 4),
    ];
    compare_registers(frontend, &written, "test values")?;
    restore_defaults(frontend).map_err(failed)?;
    let defaults: Vec<(RegisterSpec, u32)> = written
        .iter()
        .map(|(spec, _)| (*spec, spec.default))
        .collect();
    compare_registers(frontend, &defaults, "power-on defaults")?;
    Ok(format!(
        "{} registers written, read back and restored (RF {programmed_hz:.3} Hz programmed for {test_frequency_hz} Hz)",
        written.len()
    ))
}

fn fid_step<SPI, DR, RST, D>(frontend: &mut Frontend<SPI, DR, RST, D>) -> StepResult
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let noise = measure_noise(
        frontend,
        &NoiseSettings {
            windows: 64,
            ..NoiseSettings::default()
        },
    )
    .map_err(|e| format!("noise: {e}"))?;
    let (window_ns, gap_ns) = (20_000, 100_000);
    let program = PulseProgram::fid_two_windows(10_000, window_ns, gap_ns)
        .map_err(|e| format!("pulse program: {e}"))?;
    let scans = 2;
    let echoes = run_sequence(
        frontend,
        &program,
        RunSettings {
            scans,
            dummy_scans: 0,
            tr_us: 100_000,
            phase_cycle: PhaseCycle::Two,
        },
        None,
    )
    .map_err(|e| format!("FID: {e}"))?;
    let [first, second] = echoes.as_slice() else {
        return Err(format!("FID: {} windows read, expected 2", echoes.len()));
    };
    let magnitude = |i: i32, q: i32| f64::from(i).hypot(f64::from(q));
    let amplitude = magnitude(first.i, first.q);
    // Averaging NA scans divides the per-scan noise by √NA.
    let noise_sd = noise.noise_sd / f64::from(scans).sqrt();
    let snr = amplitude / noise_sd.max(f64::MIN_POSITIVE);
    let phase_step = (f64::from(second.q).atan2(f64::from(second.i))
        - f64::from(first.q).atan2(f64::from(first.i)))
    .rem_euclid(std::f64::consts::TAU);
    let phase_step = if phase_step > std::f64::consts::PI {
        phase_step - std::f64::consts::TAU
    } else {
        phase_step
    };
    let offset_hz = phase_step / (std::f64::consts::TAU * (window_ns + gap_ns) as f64 * 1e-9);
    let detail = format!(
        "noise SD {:.1} counts (offset {:+.1}, {:+.1}); FID first window {amplitude:.0} counts, SNR {snr:.0}, second window {:.0} counts, off resonance ≈ {offset_hz:+.0} Hz",
        noise.noise_sd,
        noise.mean_i,
        noise.mean_q,
        magnitude(second.i, second.q)
    );
    if snr < MIN_SNR {
        return Err(format!(
            "{detail}: SNR below {MIN_SNR} (no sample in the coil, transmitter or receiver fault?)"
        ));
    }
    Ok(detail)
}

fn cpmg_step<SPI, DR, RST, D>(frontend: &mut Frontend<SPI, DR, RST, D>) -> StepResult
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let tuned = tune(frontend, &TuneSettings::default()).map_err(|e| format!("tune: {e}"))?;
    let settings = CpmgSettings {
        echoes: 200,
        te_us: 1000.0,
        scans: 2,
        dummy_scans: 0,
        tr_ms: 1000,
        guard: None,
        ..CpmgSettings::default()
    };
    let measurement = measure_cpmg(frontend, &settings).map_err(|e| format!("CPMG: {e}"))?;
    let prefix = format!(
        "tuned to {:.1} Hz ({:+.1} Hz from the model); {} echoes, TE {} µs, NA {}",
        tuned.f0_hz,
        tuned.correction_hz,
        measurement.train.len(),
        settings.te_us,
        settings.scans
    );
    let fit = fit_mono(&measurement.train, &FitOptions::default())
        .map_err(|e| format!("{prefix}: the T2 fit failed: {e}"))?;
    let detail = format!(
        "{prefix}: T2 {:.1} ± {:.1} ms, SNR {:.0}",
        fit.t2_ms, fit.t2_ms_se, fit.snr
    );
    if fit.snr.is_nan() || fit.snr < MIN_SNR {
        return Err(format!("{detail}: SNR below {MIN_SNR}"));
    }
    Ok(detail)
}

fn fifo_step<SPI, DR, RST, D>(frontend: &mut Frontend<SPI, DR, RST, D>, capacity: u16) -> StepResult
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let te_ns = 200_000;
    let timing = CpmgTiming {
        te_ns,
        echoes: u32::from(capacity),
        p90_ns: 10_000,
        p180_ns: 20_000,
        window_ns: 20_000,
    };
    let program = PulseProgram::cpmg(&timing).map_err(|e| format!("pulse program: {e}"))?;
    let tr_us = u32::try_from((u64::from(capacity) + 1) * te_ns / 1_000 + 10_000)
        .map_err(|_| "FIFO too large for one repetition time".to_owned())?;
    frontend.set_scans(1).map_err(failed)?;
    frontend.set_dummy_scans(0).map_err(failed)?;
    frontend.set_phase_cycle(PhaseCycle::None).map_err(failed)?;
    frontend.set_repetition_time_us(tr_us).map_err(failed)?;
    frontend.load_program(&program).map_err(failed)?;
    frontend.flush_fifo().map_err(failed)?;

    // Fill: exactly the capacity, no overflow.
    frontend.start().map_err(failed)?;
    let full = frontend
        .wait_for_sequence(u64::from(tr_us), |_| Ok(()))
        .map_err(|e| format!("filling the FIFO: {e}"))?;
    if full.fifo_level != capacity || full.fifo_overflow {
        return Err(format!(
            "after {capacity} echoes the FIFO holds {} (overflow flag {})",
            full.fifo_level, full.fifo_overflow
        ));
    }
    // Overflow: a second sequence into the full FIFO loses every echo and says so.
    frontend.start().map_err(failed)?;
    match frontend.wait_for_sequence(u64::from(tr_us), |_| Ok(())) {
        Err(Error::FifoOverflow { echoes_lost }) if echoes_lost == capacity => {}
        Err(Error::FifoOverflow { echoes_lost }) => {
            return Err(format!(
                "overflow reported {echoes_lost} echoes lost, {capacity} were"
            ));
        }
        Err(error) => return Err(format!("overflowing the FIFO: {error}")),
        Ok(_) => return Err("a sequence into a full FIFO reported no overflow".to_owned()),
    }
    // Drain: the first sequence's echoes, intact in number, then nothing.
    let echoes = frontend
        .read_echoes(usize::from(capacity))
        .map_err(|e| format!("draining the FIFO: {e}"))?;
    let drained = frontend.status().map_err(failed)?;
    if drained.fifo_level != 0 {
        return Err(format!(
            "{} echoes left after draining {}",
            drained.fifo_level,
            echoes.len()
        ));
    }
    let mut extra = Vec::new();
    let more = frontend.read_fifo_burst(1, &mut extra).map_err(failed)?;
    if more != 0 {
        return Err(format!("an empty FIFO gave {more} echo(es)"));
    }
    frontend.flush_fifo().map_err(failed)?;
    let flushed = frontend.status().map_err(failed)?;
    if flushed.fifo_overflow || flushed.echoes_lost != 0 {
        return Err("flushing did not clear the overflow flag".to_owned());
    }
    Ok(format!(
        "filled to {capacity} echoes without overflow, {capacity} lost and reported on overflow, drained {} in bursts of {}, flag cleared by flush",
        echoes.len(),
        frontend.link_timing().fifo_burst_echoes
    ))
}

fn timing_step<SPI, DR, RST, D>(frontend: &mut Frontend<SPI, DR, RST, D>) -> StepResult
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    const TR_US: u64 = 50_000;
    const DUMMIES: u64 = 2;
    const SCANS: u64 = 8;
    const POLL_US: u64 = 10_000;
    let expected_us = (DUMMIES + SCANS) * TR_US;
    let program =
        PulseProgram::noise(16, 20_000, 80_000).map_err(|e| format!("pulse program: {e}"))?;
    frontend.set_scans(SCANS as u16).map_err(failed)?;
    frontend.set_dummy_scans(DUMMIES as u8).map_err(failed)?;
    frontend.set_phase_cycle(PhaseCycle::None).map_err(failed)?;
    frontend
        .set_repetition_time_us(TR_US as u32)
        .map_err(failed)?;
    frontend.load_program(&program).map_err(failed)?;
    frontend.flush_fifo().map_err(failed)?;
    frontend.start().map_err(failed)?;
    let mut elapsed_us = 0u64;
    let mut worst_scan_error = 0i64;
    let done_at_us = loop {
        frontend.delay_us(POLL_US as u32);
        elapsed_us += POLL_US;
        let status = frontend.status().map_err(failed)?;
        if status.reset_seen {
            return Err("the board reset during the sequence".to_owned());
        }
        let programmed_scans = (elapsed_us / TR_US).saturating_sub(DUMMIES).min(SCANS) as i64;
        let scan_error = i64::from(status.scans_done) - programmed_scans;
        if scan_error.abs() > worst_scan_error.abs() {
            worst_scan_error = scan_error;
        }
        match status.state {
            SequencerState::Done => break elapsed_us,
            SequencerState::Running => {}
            other => return Err(format!("sequencer {other:?} during a known sequence")),
        }
        if elapsed_us > 2 * expected_us {
            return Err(format!(
                "still running after {elapsed_us} µs; its program lasts {expected_us} µs"
            ));
        }
    };
    // Drop the sequence's echoes.
    frontend.flush_fifo().map_err(failed)?;
    let early_limit_us = expected_us - expected_us / 50;
    let late_limit_us = expected_us + 2 * POLL_US + expected_us / 50;
    let detail = format!(
        "{DUMMIES} dummy + {SCANS} scans × TR {} ms: program {} ms, done seen at {} ms (polled every {} ms); scans done within {} of the program at every poll",
        TR_US / 1_000,
        expected_us / 1_000,
        done_at_us / 1_000,
        POLL_US / 1_000,
        worst_scan_error.abs()
    );
    if done_at_us < early_limit_us {
        return Err(format!(
            "{detail}: the board finished early (sequencer clock fast?)"
        ));
    }
    if done_at_us > late_limit_us {
        return Err(format!(
            "{detail}: the board finished late (sequencer clock slow?)"
        ));
    }
    if worst_scan_error.abs() > 1 {
        return Err(format!(
            "{detail}: scan count off by {worst_scan_error} (scans not paced by TR?)"
        ));
    }
    Ok(detail)
}

fn temperatures_step<SPI, DR, RST, D>(frontend: &mut Frontend<SPI, DR, RST, D>) -> StepResult
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let magnet_first_c = frontend.magnet_temp_c().map_err(failed)?;
    let coil_first_c = frontend.coil_temp_c().map_err(failed)?;
    frontend.delay_us(200_000);
    let magnet_c = frontend.magnet_temp_c().map_err(failed)?;
    let coil_c = frontend.coil_temp_c().map_err(failed)?;
    let detail = format!(
        "magnet {magnet_first_c:.3} → {magnet_c:.3} °C, coil {coil_first_c:.3} → {coil_c:.3} °C over 200 ms"
    );
    if !MAGNET_RANGE_C.contains(&magnet_c) {
        return Err(format!(
            "{detail}: magnet outside {:?} °C (sensor disconnected or magnet heater fault?)",
            MAGNET_RANGE_C
        ));
    }
    if !COIL_ABOVE_MAGNET_C.contains(&(coil_c - magnet_c)) {
        return Err(format!(
            "{detail}: coil {:+.3} °C from the magnet, outside {:?} °C",
            coil_c - magnet_c,
            COIL_ABOVE_MAGNET_C
        ));
    }
    let change_c = (magnet_c - magnet_first_c)
        .abs()
        .max((coil_c - coil_first_c).abs());
    if change_c.is_nan() || change_c > MAX_CHANGE_C {
        return Err(format!(
            "{detail}: a sensor moved {change_c:.3} °C, more than {MAX_CHANGE_C} °C (noisy sensor or loose contact?)"
        ));
    }
    Ok(detail)
}
