//! `ferrocount run`: a headless sample run on the simulated board (the default), end to end:
//! the acquisition engine over the data directory's database, one run queued, progress on
//! standard error, the result on standard output (`--json`: the keys of `ferrocount count --json`
//! plus `run_id` and `state`).
//!
//! The appliance is assembled as `ferrocount serve` assembles it (configuration file, `FERROCOUNT_*`
//! environment, then `--data-dir` and `--board`). A run needs an approved calibration for its
//! lot; on a fresh data directory `--approve-simulated-calibration REASON` has the simulated lot
//! calibrated first by a simulated dilution series (the engine says so) and approved in the
//! console's name, audited with the reason. The `--sim-*` options
//! set what the virtual tubes hold and inject board faults; they are refused on a real board.
//!
//! SIGTERM or SIGINT while the run is in flight stops it gracefully: the board is halted and the
//! run recorded `interrupted` with its cause (exit status 1). A kill -9 leaves it to the next start
//! to mark the run `interrupted` (see `tests/crash_safety.rs`).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use appliance::assembly::{ApplianceBuilder, Simulation};
use appliance::config::{ApplianceConfig, BoardChoice};
use appliance::engine::{EventKind, RunEvent};
use appliance::sim_board::Faults;
use appliance::store::runs::RunState;
use nmr_core::assay::CountReport;
use operations::calibrations::DecisionReason;
use operations::runs::{OrderField, RunOrderFields};
use operations::{LoginThrottle, Operations, Requester};
use serde_json::json;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::data_dir::DataDirArg;

/// Options of `ferrocount run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// On the simulated board, when the simulated lot has no approved calibration: measure its
    /// dilution series and approve the calibration in the console's name with REASON (audited as
    /// the appliance). Without it such a run is refused; a lab admin approves on the
    /// Calibrations page instead.
    #[arg(long, value_name = "REASON")]
    approve_simulated_calibration: Option<String>,
    /// Patient's medical record number (created when new).
    #[arg(long, value_name = "MRN")]
    patient: String,
    /// Patient's date of birth, YYYY-MM-DD (the second identifier; required for a patient whose
    /// birth date is on record, and a mismatch is refused).
    #[arg(long, value_name = "DATE")]
    birth_date: Option<String>,
    /// The specimen's accession number (unique, as on its label).
    #[arg(long, value_name = "ACCESSION")]
    accession: String,
    /// Processed blood volume, mL (0.5 to 50).
    #[arg(long, value_name = "V", allow_negative_numbers = true)]
    blood_ml: String,
    /// Indication whose cut-off gives the call (breast, prostate, colorectal).
    #[arg(long, value_name = "I")]
    indication: Option<String>,
    /// Why the indication differs from the patient's (an explicit, audited override).
    #[arg(long, value_name = "REASON")]
    indication_override_reason: Option<String>,
    /// Reagent lot (default on the simulated board: the simulated lot SIM-LOT-1).
    #[arg(long, value_name = "LOT")]
    lot: Option<String>,
    /// Draw time, RFC 3339 (default: now).
    #[arg(long, value_name = "TIME")]
    drawn_at: Option<String>,
    /// Further tubes after control and quad: cd45, igg, epcam, muc1, her2, egfr (repeatable).
    #[arg(long = "tube", value_name = "KIND")]
    tubes: Vec<String>,
    /// Replicate readings per tube (2 to 10; default 3).
    #[arg(long, value_name = "N")]
    replicates: Option<String>,
    /// Simulation: true number of tumour cells in the processed sample.
    #[arg(long, value_name = "N")]
    sim_cells: Option<String>,
    /// Simulation: non-specific background ΔR2 of the labelled tubes, 1/s.
    #[arg(long, value_name = "PER_S", requires = "sim_cells")]
    sim_background: Option<String>,
    /// Simulation: the patient's control-tube T2, ms.
    #[arg(long, value_name = "MS", requires = "sim_cells")]
    sim_control_t2_ms: Option<String>,
    /// Simulated board: seed of its randomness (default: one past the last run's id).
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated board: stop answering after this many SPI transactions (a dead board).
    #[arg(long, value_name = "N")]
    sim_dead_after: Option<u64>,
    /// Simulated board: magnet temperature drift, °C per second.
    #[arg(long, value_name = "C_PER_S", default_value_t = 0.0)]
    sim_drift_c_per_s: f64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// The board: simulated or spi (default: the configuration's `board`, else simulated).
    #[arg(long, value_name = "BOARD")]
    board: Option<BoardChoice>,
    /// TOML configuration file (as for `ferrocount serve`); must exist when given.
    #[arg(long, value_name = "FILE", env = "FERROCOUNT_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(flatten)]
    data_dir: DataDirArg,
}

/// Runs `ferrocount run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut signals = TerminationSignals::listen().context("listening for SIGTERM and SIGINT")?;
    let mut config = ApplianceConfig::load(args.config.as_deref())?;
    config.data_dir = args.data_dir.data_dir.clone();
    if let Some(board) = &args.board {
        config.board = board.clone();
    }
    let appliance = ApplianceBuilder::new(config)
        .simulation(Simulation {
            seed: args.seed,
            faults: Faults {
                dead_after_transactions: args.sim_dead_after,
                ..Faults::default()
            },
            magnet_drift_c_per_s: args.sim_drift_c_per_s,
        })
        .build()
        .await
        .context("assembling the appliance")?;
    let (store, engine) = (appliance.store.clone(), appliance.engine.clone());
    let ops = Operations::with_engine(
        store.clone(),
        engine.clone(),
        LoginThrottle::configured(&appliance.config.http),
    );
    let mut events = engine.subscribe();
    if let Some(reason) = &args.approve_simulated_calibration {
        let approved = match DecisionReason::parse(reason) {
            Ok(reason) => {
                ops.approve_simulated_calibration_as_console(&Requester::Console, &reason)
                    .await
            }
            Err(error) => Err(error),
        };
        match approved {
            Ok(calibration) => eprintln!(
                "calibration {} of {} is approved (state {})",
                calibration.id, calibration.reagent_lot, calibration.state
            ),
            Err(error) => {
                engine.shutdown().await;
                return Err(anyhow!("--approve-simulated-calibration: {error}"));
            }
        }
    }
    let fields = RunOrderFields {
        patient_mrn: args.patient.clone(),
        birth_date: args.birth_date.clone().unwrap_or_default(),
        accession: args.accession.clone(),
        blood_ml: args.blood_ml.clone(),
        indication: args.indication.clone().unwrap_or_default(),
        indication_override_reason: args.indication_override_reason.clone().unwrap_or_default(),
        reagent_lot: args.lot.clone().unwrap_or_default(),
        drawn_at: args.drawn_at.clone().unwrap_or_default(),
        extra_tubes: args.tubes.clone(),
        replicates: args.replicates.clone().unwrap_or_default(),
        manual_tube_confirmation: false,
        simulate_cells: args.sim_cells.clone().unwrap_or_default(),
        simulate_background_per_s: args.sim_background.clone().unwrap_or_default(),
        simulate_control_t2_ms: args.sim_control_t2_ms.clone().unwrap_or_default(),
    };
    let started = match ops.parse_order(&fields).await {
        Ok(Ok(order)) => ops.start_run(&Requester::Console, &order).await,
        Ok(Err(problems)) => {
            engine.shutdown().await;
            let flag = |field: OrderField| match field {
                OrderField::PatientMrn => "--patient",
                OrderField::BirthDate => "--birth-date",
                OrderField::Accession => "--accession",
                OrderField::BloodMl => "--blood-ml",
                OrderField::Indication => "--indication",
                OrderField::ReagentLot => "--lot",
                OrderField::DrawnAt => "--drawn-at",
                OrderField::ExtraTubes => "--tube",
                OrderField::Replicates => "--replicates",
                OrderField::Simulate => "--sim-cells",
            };
            let lines: Vec<String> = problems
                .0
                .iter()
                .map(|p| format!("{}: {}", flag(p.field), p.reason))
                .collect();
            return Err(anyhow!("the run was not started:\n{}", lines.join("\n")));
        }
        Err(error) => Err(error),
    };
    let ticket = match started {
        Ok(ticket) => ticket,
        Err(error) => {
            engine.shutdown().await;
            return Err(error.into());
        }
    };
    let printer = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if (event.run_id == Some(ticket.id) || event.run_id.is_none())
                && let Some(line) = describe(&event)
            {
                eprintln!("{line}");
            }
            if let (Some(id), EventKind::State { state, .. }) = (event.run_id, &event.kind)
                && id == ticket.id
                && *state != RunState::Queued
                && *state != RunState::Running
                && *state != RunState::AwaitingTube
            {
                break;
            }
        }
    });
    // SIGTERM (systemd, `kill`) or Ctrl-C while the run is in flight: shut the engine down
    // gracefully, which halts the board and records the run `interrupted` with its cause.
    let state = tokio::select! {
        state = engine.wait_for_run(ticket.id) => state?,
        signal = signals.received() => {
            eprintln!("{signal} received: stopping the run and halting the board");
            engine.shutdown().await;
            engine.wait_for_run(ticket.id).await?
        }
    };
    let _ = printer.await;
    engine.shutdown().await;

    let run = store.run(ticket.id).await?;
    let result = store.current_result(ticket.id).await?;
    store.close().await;
    match result {
        Some(result) => {
            if args.json {
                let answer = RunResultJson {
                    run_id: ticket.id.0,
                    state: run.state,
                    report: &result.report,
                };
                writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::to_string_pretty(&answer)?
                )?;
            } else {
                print_text(ticket.id.0, run.state, &result.report)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let cause = run.failure_cause.clone().unwrap_or_default();
            if args.json {
                let answer = json!({ "run_id": ticket.id, "state": state, "failure_cause": cause });
                writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::to_string_pretty(&answer)?
                )?;
            }
            eprintln!("run {} ended {}: {cause}", ticket.id, run.state);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// SIGTERM and SIGINT, listened for from the start of the command so that one arriving at any
/// moment is kept until the run is there to stop.
struct TerminationSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl TerminationSignals {
    fn listen() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for either signal and names the one that came.
    async fn received(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// One line of progress for a person watching the terminal.
fn describe(event: &RunEvent) -> Option<String> {
    Some(match &event.kind {
        EventKind::State { state, cause } => match cause {
            Some(cause) => format!("run is {state}: {cause}"),
            None => format!("run is {state}"),
        },
        EventKind::Check {
            check,
            passed,
            message,
        } => format!(
            "check {check}: {} — {message}",
            if *passed { "ok" } else { "FAILED" }
        ),
        EventKind::Tuning => "tuning".into(),
        EventKind::Tuned {
            f0_hz,
            magnet_temp_c,
        } => format!("tuned: f0 {f0_hz:.1} Hz at {magnet_temp_c:.3} °C"),
        EventKind::Calibrating { message, .. } => message.clone(),
        EventKind::CalibrationMade {
            lot,
            slope_per_s_per_cell,
            intercept_per_s,
            calibration_id,
            ..
        } => format!(
            "calibration {calibration_id} of {lot}: ΔR2 = {intercept_per_s:.4} + {slope_per_s_per_cell:.5}·N 1/s"
        ),
        EventKind::AwaitingTube { message, .. } => message.clone(),
        EventKind::TubeConfirmed { .. } => return None,
        EventKind::Replicate {
            tube,
            replicate,
            of,
            t2_ms,
            fit_error,
            ..
        } => match (t2_ms, fit_error) {
            (Some(t2), _) => format!("{tube}: replicate {replicate} of {of}, T2 {t2:.2} ms"),
            (None, error) => format!(
                "{tube}: replicate {replicate} of {of}, fit failed: {}",
                error.clone().unwrap_or_default()
            ),
        },
        EventKind::Result { .. } => "result computed".into(),
        EventKind::Failed { failure } => format!("FAILED ({}): {}", failure.kind, failure.message),
        EventKind::Notice { message } => message.clone(),
    })
}

/// `--json`: the keys of `ferrocount count --json` plus the run and its state.
#[derive(serde::Serialize)]
struct RunResultJson<'a> {
    run_id: i64,
    state: RunState,
    #[serde(flatten)]
    report: &'a CountReport,
}

fn print_text(run_id: i64, state: RunState, report: &CountReport) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let [cells_low, cells_high] = report.cells_ci95;
    let [low, high] = report.per_7_5ml_ci95;
    writeln!(
        out,
        "run {run_id} ({state}): {:.1} cells in the sample (95 % CI {cells_low:.1}–{cells_high:.1}); {:.1} per 7.5 mL ({low:.1}–{high:.1}); {}",
        report.cells,
        report.per_7_5ml,
        report.category.as_str().replace('_', " ")
    )?;
    if let (Some(call), Some(indication)) = (report.call, &report.indication) {
        writeln!(out, "{indication}: {call}")?;
    }
    if report.qc_hold {
        writeln!(out, "QC: result on HOLD, do not release")?;
    }
    Ok(())
}
