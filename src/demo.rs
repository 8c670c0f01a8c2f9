//! `ferrocount demo`: the appliance on its own demo database, so a newcomer sees a living
//! instrument at once.
//!
//! Everything patient-facing is REALLY measured: each draw is a sample run through the
//! acquisition engine on the simulated board (instant virtual clock), so the counts carry the
//! whole chain's noise, fits, QC and intervals. On the fresh database the engine first calibrates
//! the simulated lot by a simulated dilution series, as on any new appliance.
//!
//! # What it makes
//! - One user per role (`demo-operator`, `demo-clinician`, `demo-admin`) with random passwords,
//!   printed once.
//! - `--patients` patients (`DEMO-001`, …), indications cycling breast, prostate, colorectal, each
//!   drawn monthly over `--months` months (months + 1 draws, 7.5 mL processed, draw times
//!   back-dated and stored as the samples' draw times). The true count per 7.5 mL follows a
//!   curve per patient, and the cells in each tube are drawn Poisson around it:
//!   - odd-numbered patients respond to treatment: λ(t) = 2 + 80·exp(−t / 1.2 months);
//!   - even-numbered patients progress: λ(t) = 3·exp(t · ln(30) / span), rising 30-fold (3 → 90)
//!     over the demo's span.
//! - Results of every draw but each patient's latest released by the clinician (the latest wait
//!   for release, as a fresh result would).
//! - Daily QC of a spiked control material (analyte: cells per 7.5 mL) over the same span: 20
//!   values establish the target (Westgard: ≥ 20), then one value a day judged by the Westgard
//!   rules, with two deliberate violations (a 1-3s outlier, then a 2-2s pair) well before today
//!   so today's QC passes. These control values are drawn around the material's nominal level
//!   (50 ± 4 cells), not measured through the engine.
//!
//! It is not a test fixture: it refuses a data directory that already holds a database.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, ensure};
use appliance::assembly::{ApplianceBuilder, Simulation};
use appliance::config::ApplianceConfig;
use appliance::engine::{EngineHandle, EventKind, RunRequest, SIMULATED_LOT, SimulatedTruth};
use appliance::store::calibrations::{CalibrationDecision, ReagentLot};
use appliance::store::db::DATABASE_FILE;
use appliance::store::qc::{ControlLevel, NewQcResult, QcMaterialKind, QcVerdict, TargetSource};
use appliance::store::results::SignatureMeaning;
use appliance::store::runs::RunState;
use appliance::store::users::{NewPassword, NewUser, Role, User, Username};
use appliance::store::{Actor, Store, Timestamp};
use nmr_core::qc::westgard::{self, ControlTarget};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Normal, Poisson};
use time::Duration;

/// Days in a demo month.
const DAYS_PER_MONTH: i64 = 30;

/// Processed blood volume of every demo draw, mL.
const DEMO_BLOOD_ML: f64 = 7.5;

/// The demo's control material, its nominal level and day-to-day SD (cells per 7.5 mL).
const CONTROL_MATERIAL: &str = "Spiked CTC control (demo)";
const CONTROL_MEAN: f64 = 50.0;
const CONTROL_SD: f64 = 4.0;

/// Options of `ferrocount demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Demo data directory (must not hold a database yet). After seeding, the demo serves it like
    /// `ferrocount serve --data-dir DIR --listen ADDR` until stopped (unless `--seed-only`).
    #[arg(long, value_name = "DIR", default_value = "./ferrocount-demo")]
    data_dir: PathBuf,
    /// Number of demo patients.
    #[arg(long, default_value_t = 6)]
    patients: u32,
    /// Months of history (one draw a month per patient, plus today's).
    #[arg(long, default_value_t = 6)]
    months: u32,
    /// Seed of the demo's randomness (true counts, board noise, QC values).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Address the demo appliance listens on once seeded.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Seed the demo database and stop, without starting the appliance on it.
    #[arg(long)]
    seed_only: bool,
}

/// Which way a demo patient's disease goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Course {
    /// Counts fall with treatment.
    Response,
    /// Counts rise with progression.
    Progression,
}

impl Course {
    /// The course of demo patient `index` (0-based): responders and progressors alternate.
    pub fn of_patient(index: u32) -> Self {
        if index.is_multiple_of(2) {
            Course::Response
        } else {
            Course::Progression
        }
    }

    /// True CTCs per 7.5 mL `months_in` months into a history of `span_months` months.
    pub fn true_per_7_5ml(self, months_in: f64, span_months: f64) -> f64 {
        match self {
            Course::Response => 2.0 + 80.0 * (-months_in / 1.2).exp(),
            Course::Progression => 3.0 * (months_in * 30f64.ln() / span_months.max(1.0)).exp(),
        }
    }
}

/// What the demo made.
#[derive(Debug, Default)]
pub struct DemoSummary {
    /// Patients, with their course and the runs' per-7.5 mL results in draw order.
    pub patients: Vec<(String, Course, Vec<f64>)>,
    /// Runs that ended with a result.
    pub runs_with_result: usize,
    /// Runs that ended otherwise, with their state and cause.
    pub runs_without_result: Vec<String>,
    /// Results released.
    pub released: usize,
    /// QC values recorded, and how many were warnings or rejections.
    pub qc_values: usize,
    /// QC values with a warning.
    pub qc_warnings: usize,
    /// QC values rejected.
    pub qc_rejections: usize,
    /// Demo users and their passwords.
    pub users: Vec<(String, Role, String)>,
}

/// Runs `ferrocount demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(seed_demo(&args))?;
    drop(runtime);
    print_summary(&args, &summary);
    if args.seed_only {
        return Ok(ExitCode::SUCCESS);
    }
    // The living instrument: the same service as `ferrocount serve`, on the demo database.
    crate::serve::run(crate::serve::ServeArgs::on(
        args.data_dir.clone(),
        args.listen,
    ))
}

/// The reason the demo's approval of its own calibration carries in the audit trail.
const DEMO_APPROVAL: &str = "approved in the demo's name by `ferrocount demo` (a demonstration database; no lab admin reviewed it)";

async fn seed_demo(args: &DemoArgs) -> anyhow::Result<DemoSummary> {
    ensure!(args.patients >= 1, "--patients must be at least 1");
    ensure!(args.months >= 1, "--months must be at least 1");
    let database = args.data_dir.join(DATABASE_FILE);
    ensure!(
        !database.exists(),
        "{} already holds a database: the demo seeds a fresh one (choose another --data-dir)",
        args.data_dir.display()
    );
    // The demo's own appliance: the built-in configuration on the demo directory, the simulated
    // board seeded by `--seed`.
    let appliance = ApplianceBuilder::new(ApplianceConfig {
        data_dir: args.data_dir.clone(),
        ..ApplianceConfig::default()
    })
    .simulation(Simulation {
        seed: Some(args.seed),
        ..Simulation::default()
    })
    .build()
    .await
    .context("assembling the demo appliance")?;
    let (store, engine) = (appliance.store.clone(), appliance.engine.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut summary = DemoSummary::default();

    let admin = add_user(&store, "demo-admin", Role::LabAdmin, &mut summary).await?;
    let clinician = add_user(&store, "demo-clinician", Role::Clinician, &mut summary).await?;
    let operator = add_user(&store, "demo-operator", Role::Operator, &mut summary).await?;

    let now = Timestamp::now();
    let span_days = i64::from(args.months) * DAYS_PER_MONTH;
    seed_qc(&store, &admin, now, span_days, &mut rng, &mut summary).await?;

    // The fresh database has no calibration for the simulated lot: the engine measures its
    // dilution series and stores the calibration pending, and the demo approves it in its own
    // name (audited as the appliance, with a reason saying so) — on a real instrument a lab
    // admin approves it on the Calibrations page.
    let mut events = engine.subscribe();
    let narrator = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            match event.kind {
                EventKind::Calibrating { message, .. } => eprintln!("{message}"),
                EventKind::CalibrationMade {
                    lot,
                    calibration_id,
                    ..
                } => eprintln!("calibration {calibration_id} of {lot} made"),
                _ => {}
            }
        }
    });
    let made = engine
        .calibrate_simulated_lot()
        .await
        .context("calibrating the simulated lot")?;
    store
        .decide_calibration(
            &Actor::Appliance,
            made.id,
            CalibrationDecision::Approve,
            DEMO_APPROVAL,
        )
        .await
        .context("approving the demo's calibration")?;
    eprintln!(
        "calibration {} of {} approved in the demo's name",
        made.id, made.reagent_lot
    );
    let seeded = seed_patients(
        args,
        &engine,
        &operator,
        &clinician,
        now,
        &mut rng,
        &mut summary,
    )
    .await;
    engine.shutdown().await;
    narrator.abort();
    seeded?;
    store.close().await;
    Ok(summary)
}

async fn add_user(
    store: &Store,
    name: &str,
    role: Role,
    summary: &mut DemoSummary,
) -> anyhow::Result<User> {
    let password = random_password()?;
    let user = store
        .add_user(
            &Actor::Appliance,
            NewUser {
                username: Username::parse(name)?,
                display_name: format!("Demo {role}"),
                role,
                password: NewPassword::parse(&password)?,
            },
        )
        .await
        .with_context(|| format!("adding the demo user {name}"))?;
    summary.users.push((name.to_owned(), role, password));
    Ok(user)
}

/// 16 characters from an unambiguous alphabet, from the operating system's randomness.
fn random_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no operating-system randomness: {e}"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// The daily control history: 20 values to establish the target, then one a day to yesterday,
/// each judged by the Westgard rules over the history since the target.
async fn seed_qc(
    store: &Store,
    admin: &User,
    now: Timestamp,
    span_days: i64,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> anyhow::Result<()> {
    let actor = admin.actor();
    let material = store
        .add_qc_material(
            &actor,
            CONTROL_MATERIAL,
            QcMaterialKind::Control,
            Some(ControlLevel::Positive),
            "cells",
        )
        .await?;
    let expires_on = now.plus(Duration::days(365)).datetime().date();
    let lot = store
        .add_qc_lot(&actor, material.id, "CTRL-DEMO-1", expires_on)
        .await?;
    let noise = Normal::new(CONTROL_MEAN, CONTROL_SD).expect("a positive constant SD");

    // Baseline: 20 values, two a day, in the days before the daily history starts.
    let baseline_days = 10;
    let first_day = now.plus(Duration::days(-(span_days + baseline_days)));
    let mut baseline = Vec::new();
    for i in 0..westgard::MIN_TARGET_VALUES {
        let value = round1(noise.sample(rng));
        let measured_at = first_day.plus(Duration::hours(
            8 + 24 * (i as i64 / 2) + 4 * (i as i64 % 2),
        ));
        record_qc(
            store,
            &actor,
            lot.id,
            value,
            QcVerdict::Pass,
            &[],
            measured_at,
        )
        .await?;
        baseline.push(value);
        summary.qc_values += 1;
    }
    let target = ControlTarget::establish(&baseline)?;
    store
        .set_qc_target(
            &actor,
            lot.id,
            target.mean,
            target.sd,
            TargetSource::Established,
            Some(u32::try_from(target.n).unwrap_or(u32::MAX)),
        )
        .await?;
    // Daily values from the start of the history to yesterday; the deliberate violations sit a
    // third and a half of the way through. Each is judged as the QC page and API judge one
    // (`westgard::judge_latest` over the values since the target was set).
    let outlier_day = span_days / 3;
    let shift_days = [span_days / 2, span_days / 2 + 1];
    let mut history: Vec<f64> = Vec::new();
    for day in 0..span_days {
        let value = if day == outlier_day {
            round1(target.mean + 3.6 * target.sd)
        } else if shift_days.contains(&day) {
            round1(target.mean - 2.4 * target.sd)
        } else {
            round1(noise.sample(rng))
        };
        history.push(value);
        let (status, violations) = westgard::judge_latest(&history, target)?;
        match status {
            QcVerdict::Reject => summary.qc_rejections += 1,
            QcVerdict::Warning => summary.qc_warnings += 1,
            QcVerdict::Pass => {}
        }
        let measured_at = now.plus(Duration::days(day - span_days) + Duration::hours(-2));
        record_qc(
            store,
            &actor,
            lot.id,
            value,
            status,
            &violations,
            measured_at,
        )
        .await?;
        summary.qc_values += 1;
    }
    Ok(())
}

async fn record_qc(
    store: &Store,
    actor: &Actor,
    lot_id: appliance::store::QcLotId,
    value: f64,
    status: QcVerdict,
    violations: &[westgard::WestgardViolation],
    measured_at: Timestamp,
) -> anyhow::Result<()> {
    store
        .record_qc_result(
            actor,
            &NewQcResult {
                lot_id,
                value,
                status,
                violations: violations.to_vec(),
                measurement_id: None,
                reagent_lot: Some(ReagentLot::parse(SIMULATED_LOT)?),
                measured_at,
                comment: (status != QcVerdict::Pass)
                    .then(|| "demo: deliberate Westgard violation".to_owned()),
            },
        )
        .await
        .context("recording a demo QC value")?;
    Ok(())
}

/// A demo patient's date of birth: made up, fixed by their index (1940 to 1979).
fn demo_birth_date(index: u32) -> String {
    format!(
        "{}-{:02}-{:02}",
        1940 + index % 40,
        1 + index * 7 % 12,
        1 + index * 11 % 28
    )
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Every patient's monthly draws, oldest first across all patients, each a real engine run.
async fn seed_patients(
    args: &DemoArgs,
    engine: &EngineHandle,
    operator: &User,
    clinician: &User,
    now: Timestamp,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> anyhow::Result<()> {
    const INDICATIONS: [&str; 3] = ["breast", "prostate", "colorectal"];
    let store = engine.store().clone();
    let span = f64::from(args.months);
    for index in 0..args.patients {
        let mrn = format!("DEMO-{:03}", index + 1);
        let course = Course::of_patient(index);
        let indication = INDICATIONS[index as usize % INDICATIONS.len()];
        let mut per_7_5ml = Vec::new();
        for month in 0..=args.months {
            let months_in = f64::from(month);
            let expected = course.true_per_7_5ml(months_in, span) * DEMO_BLOOD_ML / 7.5;
            let cells = Poisson::new(expected)
                .map(|p| p.sample(rng))
                .context("a Poisson count of a positive mean")?;
            // Morning draws, a few hours apart between patients, `months - month` months ago.
            let days_ago = i64::from(args.months - month) * DAYS_PER_MONTH;
            let drawn_at = now.plus(
                Duration::days(-days_ago)
                    + Duration::hours(-3 - i64::from(index) - rng.random_range(0..3)),
            );
            let request = RunRequest {
                indication: Some(indication.to_owned()),
                drawn_at: Some(drawn_at.to_rfc3339()),
                simulate: Some(SimulatedTruth {
                    cells,
                    background_per_s: None,
                    control_t2_ms: None,
                }),
                birth_date: Some(demo_birth_date(index)),
                operator: operator.actor(),
                ..RunRequest::new(&mrn, &format!("{mrn}-M{month:02}"), DEMO_BLOOD_ML)
            };
            let ticket = engine.start_run(request).await?;
            let state = engine.wait_for_run(ticket.id).await?;
            match store.current_result(ticket.id).await? {
                Some(result) if state == RunState::AwaitingRelease => {
                    summary.runs_with_result += 1;
                    per_7_5ml.push(result.summary.per_7_5ml);
                    if month < args.months {
                        match store
                            .sign_result(clinician, ticket.id, SignatureMeaning::Release)
                            .await
                        {
                            Ok(_) => summary.released += 1,
                            // A result on QC hold may not be released: it stays awaiting release.
                            Err(e) => summary
                                .runs_without_result
                                .push(format!("{mrn} run {}: not released ({e})", ticket.id)),
                        }
                    }
                }
                _ => {
                    let run = store.run(ticket.id).await?;
                    summary.runs_without_result.push(format!(
                        "{mrn} run {} ended {}: {}",
                        ticket.id,
                        run.state,
                        run.failure_cause.unwrap_or_default()
                    ));
                }
            }
        }
        summary.patients.push((mrn, course, per_7_5ml));
    }
    Ok(())
}

fn print_summary(args: &DemoArgs, summary: &DemoSummary) {
    let dir = args.data_dir.display();
    println!("demo database seeded in {dir}");
    println!();
    println!("users (passwords shown once; change them with `ferrocount user passwd`):");
    for (name, role, password) in &summary.users {
        println!("  {name:<16} {:<10} {password}", role.as_str());
    }
    println!();
    println!("patients (CTCs per 7.5 mL, monthly draws, oldest first):");
    for (mrn, course, counts) in &summary.patients {
        let course = match course {
            Course::Response => "responding to treatment",
            Course::Progression => "progressing",
        };
        let counts: Vec<String> = counts.iter().map(|c| format!("{c:.1}")).collect();
        println!("  {mrn}  {course:<24} {}", counts.join(" → "));
    }
    println!();
    println!(
        "runs with a result: {}; released: {}",
        summary.runs_with_result, summary.released
    );
    for note in &summary.runs_without_result {
        println!("  {note}");
    }
    println!(
        "daily QC of {CONTROL_MATERIAL}: {} values ({} warnings, {} rejections)",
        summary.qc_values, summary.qc_warnings, summary.qc_rejections
    );
    println!();
    if !args.seed_only {
        println!(
            "serving it on http://{}/ (API under /api/v1; sign in with a demo user); Ctrl-C stops",
            args.listen
        );
    }
    println!("look at it:");
    println!("  ferrocount export --csv --data-dir {dir}");
    println!("  ferrocount audit verify --data-dir {dir}");
    println!("  ferrocount run --patient DEMO-001 --blood-ml 7.5 --sim-cells 4 --data-dir {dir}");
}
