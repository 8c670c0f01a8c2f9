//! `ferrocount board`: talk to the NMR front end from the command line, and serve a board twin.
//!
//! Runs on the simulated board in this process by default (options set the virtual tube, magnet
//! temperature, seed, firmware and injected faults), on a board twin in another process with
//! `--board twin:unix:PATH` (or `twin:tcp:HOST:PORT`), or on real hardware with
//! `--spi /dev/spidevX.Y` when built with the `hw-linux` feature. `info` identifies the board,
//! `tune` finds f0, `nutation` the 90° pulse, `cpmg` tunes, acquires an echo train, fits T2 and can
//! write the train as CSV, and `selftest` brings a board up step by step.
//!
//! `twin --listen ADDR` is the other end: the simulated board, with the same options, served on a
//! socket until the process is stopped.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow};
use appliance::config::BoardChoice;
use appliance::frontend::Frontend;
use appliance::procedures::StepOutcome;
use appliance::procedures::{self, CpmgSettings, NutationSettings, TuneSettings};
use appliance::sim_board::{
    ClockMode, FIRMWARE_VERSION, Faults, SimBoard, SimBoardConfig, SimClock, VirtualTube,
};
use appliance::twin::{TwinAddress, TwinConfig, TwinLinkOptions, TwinServer, twin_frontend};
use clap::{Args, Subcommand};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use nmr_core::fit::{FitOptions, fit_mono};

/// Options of `ferrocount board`.
#[derive(Debug, Args)]
pub struct BoardArgs {
    #[command(subcommand)]
    action: BoardAction,
    /// Print the report as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Which board: `simulated` (in this process) or `twin:unix:PATH` / `twin:tcp:HOST:PORT`
    /// (a `ferrocount board twin` in another process); a real board is `--spi DEVICE`.
    #[arg(long, global = true, value_name = "BOARD", default_value = "simulated")]
    board: BoardChoice,
    /// Real board: spidev device (needs a build with `--features hw-linux`).
    #[arg(long, global = true, value_name = "DEVICE", conflicts_with = "board")]
    spi: Option<String>,
    /// SPI clock for `--spi`, Hz.
    #[arg(long, global = true, default_value_t = 4_000_000)]
    spi_hz: u32,
    /// Simulated board: seed of all its randomness.
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
    /// Simulated board: T2 of the virtual tube, ms.
    #[arg(long, global = true, default_value_t = 100.0)]
    t2_ms: f64,
    /// Simulated board: run in scaled wall-clock time (1 = real time) instead of instantly.
    #[arg(long, global = true, value_name = "FACTOR")]
    speedup: Option<f64>,
    /// Simulated board: magnet temperature, °C.
    #[arg(long, global = true, default_value_t = 25.0)]
    magnet_temp_c: f64,
    /// Simulated board: probability of a flipped bit on the bus.
    #[arg(long, global = true, default_value_t = 0.0)]
    bit_flips: f64,
    /// Simulated board: probability that a response is lost.
    #[arg(long, global = true, default_value_t = 0.0)]
    drop_responses: f64,
    /// Simulated board: FIFO capacity in echoes (small values provoke an overflow).
    #[arg(long, global = true)]
    fifo_capacity: Option<u16>,
    /// Simulated board: stop answering after this many SPI transactions.
    #[arg(long, global = true)]
    dead_after: Option<u64>,
    /// Simulated board: reset in the middle of the n-th sequence.
    #[arg(long, global = true)]
    reset_during: Option<u32>,
    /// Simulated board: the firmware version it reports, MAJOR.MINOR.PATCH.
    #[arg(long, global = true, value_name = "VERSION", default_value_t = FirmwareFlag(FIRMWARE_VERSION))]
    firmware: FirmwareFlag,
    /// Simulated board: its serial number.
    #[arg(long, global = true, value_name = "N", default_value_t = SimBoardConfig::default().serial)]
    serial: u32,
}

/// `--firmware MAJOR.MINOR.PATCH`.
#[derive(Clone, Copy, Debug)]
struct FirmwareFlag((u8, u8, u8));

impl FromStr for FirmwareFlag {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<Result<u8, _>> = text.split('.').map(str::parse::<u8>).collect();
        match parts.as_slice() {
            [Ok(major), Ok(minor), Ok(patch)] => Ok(Self((*major, *minor, *patch))),
            _ => Err(format!(
                "{text:?}: expected MAJOR.MINOR.PATCH, each 0 to 255"
            )),
        }
    }
}

impl std::fmt::Display for FirmwareFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (major, minor, patch) = self.0;
        write!(f, "{major}.{minor}.{patch}")
    }
}

#[derive(Debug, Subcommand)]
enum BoardAction {
    /// Identify the board: versions, serial, temperatures.
    Info,
    /// Find the Larmor frequency f0.
    Tune,
    /// Find the 90° pulse length (tunes first).
    Nutation,
    /// Tune, acquire a CPMG echo train and fit T2.
    Cpmg {
        /// Echo spacing, µs.
        #[arg(long, default_value_t = 1000.0)]
        te_us: f64,
        /// Echoes.
        #[arg(long, default_value_t = 1000)]
        echoes: u32,
        /// Averaged scans (a multiple of 2).
        #[arg(long, default_value_t = 4)]
        scans: u16,
        /// Repetition time, ms.
        #[arg(long, default_value_t = 3000)]
        tr_ms: u32,
        /// Write the phased echo train to this CSV file.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
    },
    /// Bring-up: identity, registers, FID, CPMG, FIFO, timing and temperatures, pass/fail each
    /// (exit status 1 when a step fails).
    Selftest,
    /// Serve the simulated board (with the options above) on a socket, as a separate process:
    /// `--listen unix:PATH` or `tcp:HOST:PORT`. Runs until stopped.
    Twin {
        /// Where to listen.
        #[arg(long, value_name = "ADDR")]
        listen: TwinAddress,
        /// A slow link: added before every SPI transaction is answered, µs.
        #[arg(long, value_name = "US", default_value_t = 0)]
        latency_us: u64,
    },
}

/// Runs `ferrocount board ...`.
pub fn run(args: BoardArgs) -> anyhow::Result<ExitCode> {
    if let BoardAction::Twin { listen, latency_us } = &args.action {
        return serve_twin(listen, *latency_us, &args);
    }
    if let Some(device) = &args.spi {
        return run_hardware(device, &args);
    }
    match &args.board {
        BoardChoice::Simulated => {}
        BoardChoice::Twin(Some(address)) => {
            let (frontend, _simulation) = twin_frontend(address, TwinLinkOptions::default());
            return run_on(frontend, &args);
        }
        BoardChoice::Twin(None) => {
            return Err(anyhow!(
                "--board twin needs the twin's address: --board twin:unix:PATH or twin:tcp:HOST:PORT"
            ));
        }
        BoardChoice::Spi => return Err(anyhow!("--board spi: give the device with --spi DEVICE")),
    }
    let config = sim_config(&args)?;
    let clock = match args.speedup {
        None => SimClock::instant(),
        Some(speedup) => SimClock::new(ClockMode::Scaled { speedup }),
    };
    let frontend = Frontend::new(SimBoard::new(config, clock.clone()), clock.delay());
    run_on(frontend, &args)
}

/// The simulated board the options describe (in this process or behind `board twin`).
fn sim_config(args: &BoardArgs) -> anyhow::Result<SimBoardConfig> {
    if let Some(speedup) = args.speedup
        && !(speedup.is_finite() && speedup > 0.0)
    {
        return Err(anyhow!(
            "--speedup must be a positive factor, got {speedup}"
        ));
    }
    if !(args.t2_ms.is_finite() && args.t2_ms > 0.0) {
        return Err(anyhow!(
            "--t2-ms must be a positive number of milliseconds, got {}",
            args.t2_ms
        ));
    }
    let mut config = SimBoardConfig {
        seed: args.seed,
        tube: VirtualTube::mono(args.t2_ms * 1e-3),
        faults: Faults {
            bit_flip_probability: args.bit_flips,
            drop_response_probability: args.drop_responses,
            dead_after_transactions: args.dead_after,
            reset_during_start: args.reset_during,
            fifo_capacity: args.fifo_capacity,
        },
        ..SimBoardConfig::default()
    };
    config.magnet.temp_c = args.magnet_temp_c;
    config.firmware = args.firmware.0;
    config.serial = args.serial;
    Ok(config)
}

/// `ferrocount board twin`: binds, says where on standard output, serves until killed.
fn serve_twin(listen: &TwinAddress, latency_us: u64, args: &BoardArgs) -> anyhow::Result<ExitCode> {
    let board = sim_config(args)?;
    let description = format!(
        "serial {:#010x}, firmware {}, {}{}",
        board.serial,
        args.firmware,
        match args.speedup {
            None => "instant virtual time".to_owned(),
            Some(speedup) => format!("virtual time ×{speedup}"),
        },
        if latency_us > 0 {
            format!(", {latency_us} µs per transaction")
        } else {
            String::new()
        }
    );
    let server = TwinServer::bind(
        listen,
        TwinConfig {
            board,
            speedup: args.speedup,
            latency: Duration::from_micros(latency_us),
        },
    )
    .with_context(|| format!("board twin: binding {listen}"))?;
    let bound = server
        .local_address()
        .with_context(|| format!("board twin: the address bound for {listen}"))?;
    {
        // The line a supervisor or a test waits for.
        let mut out = std::io::stdout().lock();
        writeln!(out, "board twin listening on {bound} ({description})")?;
        out.flush()?;
    }
    server
        .serve()
        .with_context(|| format!("board twin on {bound}"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "hw-linux")]
fn run_hardware(device: &str, args: &BoardArgs) -> anyhow::Result<ExitCode> {
    let spi = appliance::linux::open_spidev(device, args.spi_hz)?;
    run_on(Frontend::new(spi, appliance::linux::Delay), args)
}

#[cfg(not(feature = "hw-linux"))]
fn run_hardware(device: &str, _args: &BoardArgs) -> anyhow::Result<ExitCode> {
    Err(anyhow!(
        "--spi {device}: this ferrocount was built without hardware support; rebuild with `--features hw-linux`"
    ))
}

fn print<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    } else {
        writeln!(out, "{}", text())?;
    }
    Ok(())
}

fn run_on<SPI, DR, RST, D>(
    mut frontend: Frontend<SPI, DR, RST, D>,
    args: &BoardArgs,
) -> anyhow::Result<ExitCode>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let failed = |what: &'static str| {
        move |e: procedures::ProcedureError<SPI::Error>| anyhow!("{what}: {e}")
    };
    if let BoardAction::Selftest = &args.action {
        let report = procedures::selftest(&mut frontend);
        print(args.json, &report, || {
            let mut text = String::new();
            for step in &report.steps {
                let verdict = match step.outcome {
                    StepOutcome::Pass => "PASS",
                    StepOutcome::Fail => "FAIL",
                    StepOutcome::Skipped => "SKIP",
                };
                text.push_str(&format!("{verdict} {:<12} {}\n", step.step, step.detail));
            }
            let passed = report
                .steps
                .iter()
                .filter(|s| s.outcome == StepOutcome::Pass)
                .count();
            text.push_str(&format!(
                "self-test {}: {passed} of {} steps passed ({} SPI transactions)",
                if report.passed { "passed" } else { "FAILED" },
                report.steps.len(),
                report.link.transactions
            ));
            text
        })?;
        return Ok(if report.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if let BoardAction::Info = &args.action {
        // Shown even when this host will not drive the board: that is what diagnosis needs.
        let identity = procedures::read_identity(&mut frontend).map_err(failed("identify"))?;
        print(args.json, &identity, || {
            format!(
                "board serial {:#010x}{}\nprotocol {}.{}, firmware {}{}\nmagnet {:.3} °C, coil {:.3} °C\nRF {:.3} Hz",
                identity.identity.serial,
                if identity.simulated {
                    " (simulated)"
                } else {
                    ""
                },
                identity.identity.protocol.0,
                identity.identity.protocol.1,
                identity.firmware,
                match procedures::check_firmware(&identity.identity) {
                    Ok(()) => String::new(),
                    Err(refused) => format!(" — {refused}"),
                },
                identity.magnet_temp_c,
                identity.coil_temp_c,
                identity.frequency_hz
            )
        })?;
        return Ok(if identity.firmware_supported {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    procedures::identify(&mut frontend).map_err(failed("identify"))?;
    match &args.action {
        BoardAction::Info | BoardAction::Selftest | BoardAction::Twin { .. } => {}
        BoardAction::Tune => {
            let tune = procedures::tune(&mut frontend, &TuneSettings::default())
                .map_err(failed("tune"))?;
            print(args.json, &tune, || {
                format!(
                    "magnet {:.3} °C → predicted f0 {:.1} Hz\nfound f0 {:.1} Hz (correction {:+.1} Hz) in {} rounds",
                    tune.magnet_temp_c,
                    tune.predicted_hz,
                    tune.f0_hz,
                    tune.correction_hz,
                    tune.steps.len()
                )
            })?;
        }
        BoardAction::Nutation => {
            procedures::tune(&mut frontend, &TuneSettings::default()).map_err(failed("tune"))?;
            let nutation = procedures::find_p90(&mut frontend, &NutationSettings::default())
                .map_err(failed("nutation"))?;
            print(args.json, &nutation, || {
                format!(
                    "p180 {:.1} ns, p90 {:.1} ns (programmed {} ns / {} ns) at amplitude {:#06x}",
                    nutation.p180_ns,
                    nutation.p90_ns,
                    nutation.p90_ns_programmable,
                    nutation.p180_ns_programmable,
                    nutation.tx_amplitude
                )
            })?;
        }
        BoardAction::Cpmg {
            te_us,
            echoes,
            scans,
            tr_ms,
            csv,
        } => {
            let tune = procedures::tune(&mut frontend, &TuneSettings::default())
                .map_err(failed("tune"))?;
            let settings = CpmgSettings {
                te_us: *te_us,
                echoes: *echoes,
                scans: *scans,
                tr_ms: *tr_ms,
                ..CpmgSettings::default()
            };
            let measurement =
                procedures::measure_cpmg(&mut frontend, &settings).map_err(failed("cpmg"))?;
            let fit = fit_mono(&measurement.train, &FitOptions::default())
                .map_err(|e| anyhow!("T2 fit: {e}"))?;
            if let Some(path) = csv {
                std::fs::write(path, nmr_core::io::write_csv(&measurement.train))
                    .with_context(|| format!("writing the echo train to {}", path.display()))?;
            }
            let report = serde_json::json!({ "tune": tune, "cpmg": measurement.report, "fit": fit, "link": frontend.counters() });
            print(args.json, &report, || {
                format!(
                    "f0 {:.1} Hz, magnet {:.3} → {:.3} °C, {} echoes × TE {} µs, NA {}\nT2 = {:.2} ± {:.2} ms, amplitude {:.0} counts, SNR {:.0}, χ²red {:.2}{}",
                    measurement.report.frequency_hz,
                    measurement.report.magnet_temp_before_c,
                    measurement.report.magnet_temp_after_c,
                    measurement.train.len(),
                    te_us,
                    scans,
                    fit.t2_ms,
                    fit.t2_ms_se,
                    fit.amplitude,
                    fit.snr,
                    fit.chi2_red,
                    csv.as_ref()
                        .map(|p| format!("\ntrain written to {}", p.display()))
                        .unwrap_or_default()
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
