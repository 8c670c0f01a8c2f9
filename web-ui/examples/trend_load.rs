//! Serves the web face over a database holding RUNS runs (default 100,000: 5,000 patients with
//! 20 results each), seeded through the store API, for measuring the trend endpoint and the
//! dashboard under a load generator on loopback, while the engine keeps simulated runs in flight
//! (at most IN_FLIGHT runs one after another, default 10,000; 0: none):
//!
//! ```text
//! cargo run --release -p web-ui --example trend_load -- /dev/shm/ferrocount-load [RUNS [IN_FLIGHT]]
//! # prints the URL of one patient's trend, a clinician's bearer token, the dashboard's URL and a
//! # clinician's session cookie, then serves until Ctrl-C (SIGINT), when it prints the runs done
//! # meanwhile and the view audit's group commits:
//! wrk -t2 -c16 -d20s --latency -H "Authorization: Bearer $TOKEN" "$URL"
//! wrk -t2 -c16 -d20s --latency -H "Cookie: $COOKIE" "$DASHBOARD"
//! ```
//!
//! A data directory that already holds a seeded database is reused as it is (seeding is bounded
//! by RUNS; each run is five store transactions, as the engine writes them).

use std::time::Instant;

use appliance::assembly::ApplianceBuilder;
use appliance::config::ApplianceConfig;
use appliance::engine::{RunRequest, SimulatedTruth};
use appliance::store::calibrations::{CalibrationDecision, ReagentLot};
use appliance::store::example_report::example_report;
use appliance::store::patients::{BirthDate, Mrn, NewPatient};
use appliance::store::runs::{NewRun, RunState};
use appliance::store::samples::{
    Accession, BloodVolume, Indication, NewSample, NewTube, TubeKind, TubeLabel,
};
use appliance::store::users::{NewPassword, NewUser, Role, Username};
use appliance::store::{Actor, Timestamp};
use nmr_core::assay::CountCategory;

/// Results per patient.
const RUNS_PER_PATIENT: usize = 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: trend_load DIR [RUNS]")?);
    let runs: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let in_flight: u32 = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10_000);
    let config = ApplianceConfig {
        data_dir: dir.clone(),
        listen: "127.0.0.1:0".parse()?,
        ..ApplianceConfig::default()
    };
    let appliance = ApplianceBuilder::new(config.clone()).build().await?;
    let (store, engine) = (appliance.store.clone(), appliance.engine.clone());
    // The runs in flight count with the simulated lot's calibration, which a lab admin approves
    // (here the load test, once per data directory).
    let lot = ReagentLot::parse("SIM-LOT-1")?;
    if store
        .active_calibration(&lot, engine.config().te_us())
        .await?
        .is_none()
    {
        let made = engine.calibrate_simulated_lot().await?;
        store
            .decide_calibration(
                &Actor::Appliance,
                made.id,
                CalibrationDecision::Approve,
                "load test: the simulated lot's calibration",
            )
            .await?;
    }
    let name = Username::parse("loadtest")?;
    let clinician = match store.user_by_name(&name).await {
        Ok(user) => user,
        Err(_) => {
            store
                .add_user(
                    &Actor::Appliance,
                    NewUser {
                        username: name,
                        display_name: "Load Test".into(),
                        role: Role::Clinician,
                        password: NewPassword::parse("load test password")?,
                    },
                )
                .await?
        }
    };
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results")
        .fetch_one(store.pool())
        .await?;
    let actor = Actor::Appliance;
    let clock = Instant::now();
    let start = Timestamp::now().plus(-time::Duration::days(3650));
    for i in usize::try_from(stored)?..runs {
        let patient = store
            .patient_by_mrn_or_add(
                &actor,
                &NewPatient::new(
                    Mrn::parse(&format!("LOAD-{:05}", i / RUNS_PER_PATIENT))?,
                    BirthDate::parse("1961-04-23", Timestamp::now().datetime().date())?,
                ),
            )
            .await?;
        let sample = store
            .add_sample(
                &actor,
                &NewSample {
                    patient_id: patient.id,
                    accession: Accession::parse(&format!("LD{i:07}"))?,
                    indication_override_reason: None,
                    drawn_at: start.plus(time::Duration::days((i % RUNS_PER_PATIENT) as i64 * 30)),
                    blood: BloodVolume::from_ml(7.5)?,
                    indication: Some(Indication::parse("breast")?),
                    tubes: vec![
                        NewTube {
                            kind: TubeKind::Control,
                            label: TubeLabel::parse(&format!("LD{i:07}C"))?,
                        },
                        NewTube {
                            kind: TubeKind::Quad,
                            label: TubeLabel::parse(&format!("LD{i:07}Q"))?,
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
                    reagent_lot: Some("LOAD-LOT".into()),
                    simulated: true,
                },
            )
            .await?;
        store
            .set_run_state(&actor, run.id, RunState::Running, None)
            .await?;
        let per_7_5ml = (i % 37) as f64;
        let report = example_report(
            per_7_5ml,
            [per_7_5ml * 0.6, per_7_5ml * 1.5 + 1.0],
            CountCategory::Quantified,
            None,
            false,
        );
        store.record_result(&actor, run.id, &report).await?;
        if (i + 1) % 10_000 == 0 {
            eprintln!(
                "seeded {} runs ({:.0} s)",
                i + 1,
                clock.elapsed().as_secs_f64()
            );
        }
    }
    let patient = store
        .patient_by_mrn(&Mrn::parse("LOAD-00042")?)
        .await?
        .ok_or("patient LOAD-00042 missing")?;
    let (token, _) = store
        .create_api_token(&actor, clinician.id, "load test")
        .await?;
    let (session, _) = store
        .create_session(&clinician, time::Duration::hours(8))
        .await?;
    let application = web_ui::Application::build(&config, store.clone(), engine.clone()).await?;
    println!(
        "URL=http://{}/api/v1/patients/{}/trend",
        application.local_addr(),
        patient.id.0
    );
    println!("TOKEN={token}");
    println!("DASHBOARD=http://{}/", application.local_addr());
    println!("COOKIE=ferrocount_session={session}");
    // Runs in flight: the engine measures simulated samples one after another (instant virtual
    // clock, so as fast as the fits allow), writing measurements and results meanwhile.
    let flying = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut done = 0_u32;
            for i in 0..in_flight {
                let request = RunRequest {
                    indication: Some("breast".into()),
                    simulate: Some(SimulatedTruth::cells(f64::from(i % 10) * 5.0)),
                    ..RunRequest::new(
                        &format!("FLIGHT-{:04}", i % 1000),
                        &format!("FL{}-{i:06}", std::process::id()),
                        7.5,
                    )
                };
                let Ok(ticket) = engine.start_run(request).await else {
                    break;
                };
                if engine.wait_for_run(ticket.id).await.is_err() {
                    break;
                }
                done += 1;
            }
            done
        })
    };
    let served = Instant::now();
    application
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    flying.abort();
    let finished: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM runs WHERE state IN ('awaiting_release', 'failed') AND started_at >= ?",
    )
    .bind(
        Timestamp::now()
            .plus(-time::Duration::seconds_f64(served.elapsed().as_secs_f64() + 1.0))
            .to_rfc3339(),
    )
    .fetch_one(store.pool())
    .await
    .unwrap_or(-1);
    let stats = store.view_audit_stats();
    eprintln!(
        "served {:.0} s; runs finished meanwhile: {finished}; view audit: {} rows in {} group \
         commits ({} failed)",
        served.elapsed().as_secs_f64(),
        stats.rows_committed,
        stats.group_commits,
        stats.groups_failed
    );
    engine.shutdown().await;
    store.close().await;
    Ok(())
}
