//! How long listing one patient's trend takes with many runs stored.
//!
//! Seeds RUNS runs (default 100,000) through the store API (sample with two tubes, run, running,
//! result), spread over RUNS / 20 patients (20 draws each), then reopens the database as the
//! appliance does (WAL, synchronous=FULL) and times `Store::patient_trend` for one patient: the
//! first (cold) call and the median of 201 warm calls. Measurements are not stored: the trend
//! query does not read them (they only make the file larger; see `storage_footprint`).
//!
//! Seeding uses a single connection with `synchronous=OFF`, which is only a seeding shortcut on a
//! scratch file: every row still goes through the store's API, its checks and its audit chain.
//!
//! `cargo run --release -p appliance --example trend_query_figures [RUNS]`

use std::time::{Duration, Instant};

use appliance::store::db::{DATABASE_FILE, connect_options, migrate};
use appliance::store::example_report::example_report;
use appliance::store::patients::{BirthDate, Mrn, NewPatient};
use appliance::store::runs::{NewRun, RunState};
use appliance::store::samples::{
    Accession, BloodVolume, Indication, NewSample, NewTube, TubeKind, TubeLabel,
};
use appliance::store::{Actor, Store, Timestamp};
use nmr_core::assay::CountCategory;
use sqlx::sqlite::{SqlitePoolOptions, SqliteSynchronous};

/// Draws per patient.
const DRAWS_PER_PATIENT: usize = 20;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let patients = runs.div_ceil(DRAWS_PER_PATIENT);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join(DATABASE_FILE);

    let seeding_pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(connect_options(&file).synchronous(SqliteSynchronous::Off))
        .await?;
    migrate(&seeding_pool).await?;
    let store = Store::from_pool(seeding_pool);
    let actor = Actor::Appliance;
    let start = Timestamp::now().plus(time::Duration::days(-3650));
    let report = example_report(5.0, [1.6, 11.7], CountCategory::Quantified, None, false);
    let seeding = Instant::now();
    let mut patient_ids = Vec::with_capacity(patients);
    for p in 0..patients {
        let patient = store
            .patient_by_mrn_or_add(
                &actor,
                &NewPatient::new(
                    Mrn::parse(&format!("TQ-{p:06}"))?,
                    BirthDate::parse("1961-04-23", start.datetime().date())?,
                ),
            )
            .await?;
        patient_ids.push(patient.id);
    }
    for i in 0..runs {
        let patient_id = patient_ids[i % patients];
        let draw = i / patients;
        let sample = store
            .add_sample(
                &actor,
                &NewSample {
                    patient_id,
                    accession: Accession::parse(&format!("TQ{i:07}"))?,
                    indication_override_reason: None,
                    drawn_at: start.plus(time::Duration::days(30 * draw as i64)),
                    blood: BloodVolume::from_ml(7.5)?,
                    indication: Some(Indication::parse("breast")?),
                    tubes: vec![
                        NewTube {
                            kind: TubeKind::Control,
                            label: TubeLabel::parse(&format!("TQ{i:07}C"))?,
                        },
                        NewTube {
                            kind: TubeKind::Quad,
                            label: TubeLabel::parse(&format!("TQ{i:07}Q"))?,
                        },
                    ],
                },
            )
            .await?;
        let run = store
            .create_run(
                &actor,
                &NewRun {
                    sample_id: sample.id,
                    operator_id: None,
                    reagent_lot: Some("LOT-A1".into()),
                    simulated: true,
                },
            )
            .await?;
        store
            .set_run_state(&actor, run.id, RunState::Running, None)
            .await?;
        store.record_result(&actor, run.id, &report).await?;
        if (i + 1) % 10_000 == 0 {
            eprintln!("seeded {} runs in {:.0?}", i + 1, seeding.elapsed());
        }
    }
    let seeded_in = seeding.elapsed();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await?;
    store.close().await;

    // As the appliance opens it.
    let store = Store::open(dir.path()).await?;
    let patient_id = patient_ids[patients / 2];
    let cold = Instant::now();
    let trend = store.patient_trend(patient_id).await?;
    let cold = cold.elapsed();
    anyhow::ensure!(
        trend.len() == DRAWS_PER_PATIENT.min(runs),
        "expected {DRAWS_PER_PATIENT} trend points, got {}",
        trend.len()
    );
    let mut warm: Vec<Duration> = Vec::with_capacity(201);
    for _ in 0..201 {
        let clock = Instant::now();
        let trend = store.patient_trend(patient_id).await?;
        warm.push(clock.elapsed());
        std::hint::black_box(trend);
    }
    warm.sort();
    let bytes = std::fs::metadata(&file)?.len();
    store.close().await;

    println!(
        "runs stored: {runs} ({patients} patients x {DRAWS_PER_PATIENT} draws), each with a result"
    );
    println!(
        "seeded through the store API in {seeded_in:.1?} ({:.0} runs/s)",
        runs as f64 / seeded_in.as_secs_f64()
    );
    println!(
        "database: {bytes} bytes ({:.0} bytes per run without measurements)",
        bytes as f64 / runs as f64
    );
    println!(
        "patient_trend of one patient ({} points): first call {cold:.2?}",
        trend.len()
    );
    println!(
        "patient_trend, 201 warm calls: median {:.2?}, max {:.2?}",
        warm[100], warm[200]
    );
    Ok(())
}
