//! Figures of whole simulated sample runs through the acquisition engine (instant virtual clock,
//! real SQLite file): wall time per run and database bytes per run (raw trains included), after
//! the simulated lot's one-off calibration.
//!
//! `cargo run --release -p appliance --example engine_run_figures [RUNS]`

use std::path::Path;
use std::time::Instant;

use appliance::engine::{Engine, EngineConfig, RunRequest, SimulatedInstrument, SimulatedTruth};
use appliance::sim_board::{SimBoardConfig, SimClock};
use appliance::store::Store;
use appliance::store::runs::RunState;
use nmr_core::assay::Indications;

async fn database_bytes(store: &Store, file: &Path) -> anyhow::Result<u64> {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await?;
    Ok(std::fs::metadata(file)?.len())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let runs: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20);
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path()).await?;
    let file = dir.path().join(appliance::store::db::DATABASE_FILE);
    let indications =
        Indications::from_toml("[indications.breast]\nunfavorable_at_or_above_per_7_5ml = 5.0\n")?;
    let instrument = SimulatedInstrument::simulated(SimBoardConfig::default(), SimClock::instant());
    let engine = Engine::start(
        store.clone(),
        Box::new(instrument),
        EngineConfig::new(indications),
    )
    .await?;

    let request = |i: u32| RunRequest {
        indication: Some("breast".into()),
        simulate: Some(SimulatedTruth::cells(f64::from(i % 10) * 5.0)),
        ..RunRequest::new(&format!("MRN-{i:05}"), &format!("ACC-{i:05}"), 7.5)
    };
    let started = Instant::now();
    let first = engine.start_run(request(0)).await?;
    anyhow::ensure!(engine.wait_for_run(first.id).await? == RunState::AwaitingRelease);
    let calibration_s = started.elapsed().as_secs_f64();

    let before = database_bytes(&store, &file).await?;
    let started = Instant::now();
    for i in 1..=runs {
        let ticket = engine.start_run(request(i)).await?;
        anyhow::ensure!(engine.wait_for_run(ticket.id).await? == RunState::AwaitingRelease);
    }
    let per_run_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
    let after = database_bytes(&store, &file).await?;
    engine.shutdown().await;
    println!("first run incl. the simulated dilution series (108 readings): {calibration_s:.2} s");
    println!("{runs} runs of 2 tubes x 3 readings x 1000 echoes: {per_run_ms:.1} ms per run");
    println!(
        "database: {} bytes per run ({} bytes over {runs} runs)",
        (after - before) / u64::from(runs),
        after - before
    );
    Ok(())
}
