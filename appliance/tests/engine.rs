//! The acquisition engine on the simulated board (instant virtual clock) and a real SQLite file:
//! the run's states, tube confirmation, cancel, failures with their causes, crash recovery,
//! shutdown, and the refusal of simulation truth on hardware.

use std::time::Duration;

use appliance::engine::Instrument;
use appliance::engine::{
    Engine, EngineConfig, EngineError, EngineHandle, EventKind, RunEvent, RunRequest, RunTicket,
    SIMULATED_LOT, SimulatedInstrument, SimulatedTruth,
};
use appliance::frontend::Frontend;
use appliance::sim_board::{Faults, SimBoard, SimBoardConfig, SimClock};
use appliance::store::audit::AuditQuery;
use appliance::store::patients::{Mrn, NewPatient};
use appliance::store::qc::{ControlLevel, NewQcResult, QcMaterialKind, QcVerdict};
use appliance::store::runs::{NewRun, RunState};
use appliance::store::samples::{Accession, BloodVolume, NewSample, NewTube, TubeKind, TubeLabel};
use appliance::store::{Actor, RunId, Store, Timestamp};
use nmr_core::assay::Indications;
use tempfile::TempDir;
use tokio::sync::broadcast;

fn config() -> EngineConfig {
    let indications =
        Indications::from_toml("[indications.breast]\nunfavorable_at_or_above_per_7_5ml = 5.0\n")
            .expect("a valid cut-off table");
    EngineConfig::new(indications)
}

async fn start(board: SimBoardConfig) -> (TempDir, Store, EngineHandle) {
    start_configured(board, config()).await
}

async fn start_configured(
    board: SimBoardConfig,
    config: EngineConfig,
) -> (TempDir, Store, EngineHandle) {
    let (dir, store, engine) = start_uncalibrated(board, config).await;
    approve_simulated_calibration(&store, &engine).await;
    (dir, store, engine)
}

/// A fresh engine whose lots have no calibration at all.
async fn start_uncalibrated(
    board: SimBoardConfig,
    config: EngineConfig,
) -> (TempDir, Store, EngineHandle) {
    let dir = TempDir::new().expect("a temporary directory");
    let store = Store::open(dir.path()).await.expect("a fresh database");
    let instrument = SimulatedInstrument::simulated(board, SimClock::instant());
    let engine = Engine::start(store.clone(), Box::new(instrument), config)
        .await
        .expect("the engine starts");
    (dir, store, engine)
}

/// The simulated lot calibrated by its dilution series and approved (in the appliance's name):
/// the state a lab admin leaves before patient runs.
async fn approve_simulated_calibration(store: &Store, engine: &EngineHandle) {
    use appliance::store::calibrations::CalibrationDecision;
    let made = engine
        .calibrate_simulated_lot()
        .await
        .expect("the simulated lot calibrates");
    store
        .decide_calibration(
            &Actor::Appliance,
            made.id,
            CalibrationDecision::Approve,
            "tests",
        )
        .await
        .expect("approved");
}

/// A fresh accession number for each run a test starts.
fn next_accession(mrn: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{mrn}-A{n}")
}

/// Starts `request`, requires the run to end failed, and gives its ticket and failure cause.
async fn failed_run(
    store: &Store,
    engine: &EngineHandle,
    request: RunRequest,
) -> (RunTicket, String) {
    let ticket = engine.start_run(request).await.expect("queued");
    assert_eq!(
        engine.wait_for_run(ticket.id).await.expect("state"),
        RunState::Failed
    );
    let cause = store
        .run(ticket.id)
        .await
        .expect("run")
        .failure_cause
        .expect("a failure cause");
    (ticket, cause)
}

fn request(mrn: &str, cells: f64) -> RunRequest {
    RunRequest {
        indication: Some("breast".into()),
        simulate: Some(SimulatedTruth::cells(cells)),
        ..RunRequest::new(mrn, &next_accession(mrn), 7.5)
    }
}

/// Events of `run` until the engine is done with it.
async fn events_of(events: &mut broadcast::Receiver<RunEvent>, run: RunId) -> Vec<RunEvent> {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(120), events.recv())
            .await
            .expect("the run ends within two minutes")
            .expect("no events lost");
        if event.run_id != Some(run) {
            continue;
        }
        let done = matches!(
            &event.kind,
            EventKind::State { state, .. } if matches!(
                state,
                RunState::AwaitingRelease | RunState::Failed | RunState::Cancelled | RunState::Interrupted
            )
        );
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn states(events: &[RunEvent]) -> Vec<RunState> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::State { state, .. } => Some(*state),
            _ => None,
        })
        .collect()
}

/// Waits until the run awaits tube `index`.
async fn until_awaiting(events: &mut broadcast::Receiver<RunEvent>, run: RunId, index: usize) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(120), events.recv())
            .await
            .expect("the run reaches the tube within two minutes")
            .expect("no events lost");
        if event.run_id == Some(run)
            && matches!(event.kind, EventKind::AwaitingTube { index: i, .. } if i == index)
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_run_goes_through_its_states_to_a_result_awaiting_release() {
    let (_dir, store, engine) = start(SimBoardConfig::default()).await;
    let mut events = engine.subscribe();
    let ticket = engine
        .start_run(request("MRN-1", 30.0))
        .await
        .expect("queued");
    assert_eq!(ticket.state, RunState::Queued);
    let seen = events_of(&mut events, ticket.id).await;
    use RunState::*;
    assert_eq!(
        states(&seen),
        [
            Queued,
            Running,
            AwaitingTube,
            Running,
            AwaitingTube,
            Running,
            AwaitingRelease
        ]
    );
    assert!(
        !seen.iter().any(|e| matches!(
            &e.kind,
            EventKind::CalibrationMade { .. } | EventKind::Calibrating { .. }
        )),
        "a patient run never makes a calibration"
    );
    let awaiting: Vec<&str> = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AwaitingTube { message, .. } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        awaiting,
        [
            "insert tube 1 of 2: control tube",
            "insert tube 2 of 2: quad-marker tube"
        ]
    );
    let replicates = seen
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Replicate { .. }))
        .count();
    assert_eq!(replicates, 6);

    // Every reading is in the store with its raw train; the result is the event's result.
    let measurements = store
        .run_measurements(ticket.id)
        .await
        .expect("measurements");
    assert_eq!(measurements.len(), 6);
    assert!(
        measurements
            .iter()
            .all(|m| m.train.len() == 1000 && m.fit_report.is_some())
    );
    let result = store
        .current_result(ticket.id)
        .await
        .expect("result query")
        .expect("a result");
    let cells = result.report.cells;
    let [low, high] = result.report.cells_ci95;
    assert!(
        low <= 30.0 && 30.0 <= high,
        "30 cells outside [{low}, {high}] (estimate {cells})"
    );
    assert_eq!(result.report.call, Some(nmr_core::assay::Call::Unfavorable));
    assert_eq!(
        engine.wait_for_run(ticket.id).await.expect("state"),
        AwaitingRelease
    );
    let run = store.run(ticket.id).await.expect("run");
    assert!(run.calibration_id.is_some());

    // A second run uses the same calibration and makes none.
    let second = engine
        .start_run(request("MRN-2", 0.0))
        .await
        .expect("queued");
    events_of(&mut events, second.id).await;
    assert_eq!(
        store.run(second.id).await.expect("run").calibration_id,
        run.calibration_id
    );
    assert_eq!(
        store
            .calibration_page(None, 10)
            .await
            .expect("calibrations")
            .calibrations
            .len(),
        1
    );
    let result = store
        .current_result(second.id)
        .await
        .expect("query")
        .expect("result");
    assert_eq!(result.report.cells_ci95[0], 0.0);
    // A result awaiting release may still be cancelled (e.g. the wrong patient's tubes).
    assert_eq!(
        engine
            .cancel(second.id, &Actor::Appliance, "tubes of another patient")
            .await
            .expect("cancelled"),
        RunState::Cancelled
    );
    assert_eq!(
        engine.wait_for_run(second.id).await.expect("state"),
        RunState::Cancelled
    );
    assert_eq!(
        store.run(second.id).await.expect("run").state,
        RunState::Cancelled
    );
    engine.shutdown().await;
    assert!(engine.status().stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_confirmation_waits_for_the_operator_and_runs_queue_behind_each_other() {
    let (_dir, store, engine) = start(SimBoardConfig::default()).await;
    let mut events = engine.subscribe();
    let manual = RunRequest {
        manual_tube_confirmation: true,
        ..request("MRN-3", 10.0)
    };
    let first = engine.start_run(manual).await.expect("queued");
    let second = engine
        .start_run(request("MRN-4", 5.0))
        .await
        .expect("queued");
    assert!(matches!(
        engine.confirm_tube(second.id),
        Err(EngineError::NotAwaitingTube(_))
    ));
    until_awaiting(&mut events, first.id, 1).await;
    assert_eq!(
        store.run(first.id).await.expect("run").state,
        RunState::AwaitingTube
    );
    assert_eq!(
        store.run(second.id).await.expect("run").state,
        RunState::Queued
    );
    let status = engine.status();
    assert_eq!(status.queued, vec![second.id]);
    assert_eq!(status.current_run.map(|r| r.run_id), Some(first.id));

    engine.confirm_tube(first.id).expect("tube 1 confirmed");
    until_awaiting(&mut events, first.id, 2).await;
    engine.confirm_tube(first.id).expect("tube 2 confirmed");
    assert_eq!(
        engine.wait_for_run(first.id).await.expect("state"),
        RunState::AwaitingRelease
    );
    assert_eq!(
        engine.wait_for_run(second.id).await.expect("state"),
        RunState::AwaitingRelease
    );
    assert!(matches!(
        engine.confirm_tube(first.id),
        Err(EngineError::NotActive(_))
    ));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_run_keeps_the_measured_replicates_and_cancel_in_the_queue_is_immediate() {
    let (_dir, store, engine) = start(SimBoardConfig::default()).await;
    let mut events = engine.subscribe();
    let manual = RunRequest {
        manual_tube_confirmation: true,
        ..request("MRN-5", 10.0)
    };
    let first = engine.start_run(manual).await.expect("queued");
    let queued = engine
        .start_run(request("MRN-6", 5.0))
        .await
        .expect("queued");
    until_awaiting(&mut events, first.id, 1).await;
    engine
        .confirm_tube(first.id)
        .expect("control tube confirmed");
    until_awaiting(&mut events, first.id, 2).await;

    // The second run is still queued: cancelling it is immediate and it never measures.
    let operator = Actor::Appliance;
    assert_eq!(
        engine
            .cancel(queued.id, &operator, "wrong patient")
            .await
            .expect("cancel"),
        RunState::Cancelled
    );
    assert_eq!(
        store.run(queued.id).await.expect("run").state,
        RunState::Cancelled
    );

    engine
        .cancel(first.id, &operator, "tube dropped")
        .await
        .expect("cancel");
    assert_eq!(
        engine.wait_for_run(first.id).await.expect("state"),
        RunState::Cancelled
    );
    let run = store.run(first.id).await.expect("run");
    assert_eq!(run.state, RunState::Cancelled);
    assert!(
        run.failure_cause
            .as_deref()
            .is_some_and(|c| c.contains("tube dropped"))
    );
    let kept = store
        .run_measurements(first.id)
        .await
        .expect("measurements");
    assert_eq!(kept.len(), 3, "the control tube's three readings are kept");
    assert!(
        store
            .current_result(first.id)
            .await
            .expect("query")
            .is_none()
    );
    assert!(
        store
            .run_measurements(queued.id)
            .await
            .expect("query")
            .is_empty()
    );
    assert!(matches!(
        engine.cancel(first.id, &operator, "again").await,
        Err(EngineError::NotCancellable { .. })
    ));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_board_fails_the_run_with_a_board_cause_and_keeps_what_was_measured() {
    // Enough transactions for the checks, the tune, the dilution series and a few readings.
    let (_dir, store, engine) = start(SimBoardConfig::default()).await;
    let calibrate = engine
        .start_run(request("MRN-7", 0.0))
        .await
        .expect("queued");
    engine.wait_for_run(calibrate.id).await.expect("calibrated");
    engine.shutdown().await;
    store.close().await;
    let dir = _dir;
    let store = Store::open(dir.path()).await.expect("reopened");
    let board = SimBoardConfig {
        faults: Faults {
            dead_after_transactions: Some(900),
            ..Faults::default()
        },
        ..SimBoardConfig::default()
    };
    let engine = Engine::start(
        store.clone(),
        Box::new(SimulatedInstrument::simulated(board, SimClock::instant())),
        config(),
    )
    .await
    .expect("engine");
    let mut events = engine.subscribe();
    let ticket = engine
        .start_run(request("MRN-8", 10.0))
        .await
        .expect("queued");
    let seen = events_of(&mut events, ticket.id).await;
    let failure = seen
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Failed { failure } => Some(failure.clone()),
            _ => None,
        })
        .expect("a failure event");
    assert_eq!(failure.kind.as_str(), "board");
    let run = store.run(ticket.id).await.expect("run");
    assert_eq!(run.state, RunState::Failed);
    assert!(
        run.failure_cause
            .as_deref()
            .is_some_and(|c| c.starts_with("board: ")),
        "{:?}",
        run.failure_cause
    );
    let measured = seen
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Replicate { .. }))
        .count();
    assert!(
        measured >= 1,
        "the board died after some readings were taken"
    );
    assert_eq!(
        store
            .run_measurements(ticket.id)
            .await
            .expect("query")
            .len(),
        measured,
        "every reading measured before the board died is kept"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifting_magnet_fails_the_run_with_a_temperature_cause() {
    let mut board = SimBoardConfig::default();
    board.magnet.drift_c_per_s = 0.01;
    // The temperature check comes before the calibration: none is needed to fail on it (and the
    // drifting magnet would fail a dilution series too).
    let (_dir, store, engine) = start_uncalibrated(board, config()).await;
    let (_, cause) = failed_run(&store, &engine, request("MRN-9", 10.0)).await;
    assert!(cause.starts_with("temperature: "), "{cause}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_qc_today_is_shown_and_left_to_the_qc_gate() {
    let (_dir, store, engine) = start(SimBoardConfig::default()).await;
    let actor = Actor::Appliance;
    let material = store
        .add_qc_material(
            &actor,
            "CTC control low",
            QcMaterialKind::Control,
            Some(ControlLevel::Negative),
            "cells",
        )
        .await
        .expect("material");
    let expiry = time::Date::from_calendar_date(2099, time::Month::January, 1).expect("a date");
    let lot = store
        .add_qc_lot(&actor, material.id, "QC-1", expiry)
        .await
        .expect("lot");
    store
        .record_qc_result(
            &actor,
            &NewQcResult {
                lot_id: lot.id,
                value: 40.0,
                status: QcVerdict::Reject,
                violations: Vec::new(),
                measurement_id: None,
                reagent_lot: None,
                measured_at: Timestamp::now(),
                comment: None,
            },
        )
        .await
        .expect("QC result");
    // The engine measures and says so in the run's checks; whether the run may start and its
    // result be released is the operations layer's QC gate (operations::qc_gate).
    let mut events = engine.subscribe();
    let ticket = engine
        .start_run(request("MRN-10", 10.0))
        .await
        .expect("queued");
    let seen = events_of(&mut events, ticket.id).await;
    assert_eq!(
        engine.wait_for_run(ticket.id).await.expect("state"),
        RunState::AwaitingRelease
    );
    let shown = format!("{seen:?}");
    assert!(
        shown.contains("rejected on CTC control low lot QC-1") && shown.contains("QC hold"),
        "{shown}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_left_in_flight_are_interrupted_at_start_with_an_audit_entry() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = Store::open(dir.path()).await.expect("database");
    let actor = Actor::Appliance;
    let patient = store
        .add_patient(
            &actor,
            &NewPatient {
                mrn: Mrn::parse("MRN-11").expect("an MRN"),
                birth_date: None,
                name: None,
                initials: None,
                indication: None,
            },
        )
        .await
        .expect("patient");
    let sample = store
        .add_sample(
            &actor,
            &NewSample {
                patient_id: patient.id,
                accession: Accession::parse("ACC-11").expect("an accession"),
                drawn_at: Timestamp::now(),
                blood: BloodVolume::from_ml(7.5).expect("a volume"),
                indication: None,
                indication_override_reason: None,
                tubes: vec![
                    NewTube {
                        kind: TubeKind::Control,
                        label: TubeLabel::parse("C").expect("label"),
                    },
                    NewTube {
                        kind: TubeKind::Quad,
                        label: TubeLabel::parse("Q").expect("label"),
                    },
                ],
            },
        )
        .await
        .expect("sample");
    let run = store
        .create_run(
            &actor,
            &NewRun {
                sample_id: sample.id,
                operator_id: None,
                reagent_lot: Some(SIMULATED_LOT.into()),
                simulated: true,
            },
        )
        .await
        .expect("run");
    store
        .set_run_state(&actor, run.id, RunState::Running, None)
        .await
        .expect("running");

    let instrument = SimulatedInstrument::simulated(SimBoardConfig::default(), SimClock::instant());
    let engine = Engine::start(store.clone(), Box::new(instrument), config())
        .await
        .expect("engine");
    let after = store.run(run.id).await.expect("run");
    assert_eq!(after.state, RunState::Interrupted);
    let audit = store
        .audit_entries(&AuditQuery {
            entity: Some("run".into()),
            entity_id: Some(run.id.to_string()),
            ..AuditQuery::default()
        })
        .await
        .expect("audit");
    assert!(
        audit
            .iter()
            .any(|a| a.reason.as_deref().is_some_and(|r| r.contains("in flight"))),
        "{audit:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_interrupts_the_run_it_holds_and_refuses_new_ones() {
    let (_dir, store, engine) = start(SimBoardConfig::default()).await;
    let mut events = engine.subscribe();
    let manual = RunRequest {
        manual_tube_confirmation: true,
        ..request("MRN-12", 10.0)
    };
    let ticket = engine.start_run(manual).await.expect("queued");
    until_awaiting(&mut events, ticket.id, 1).await;
    engine.shutdown().await;
    let run = store.run(ticket.id).await.expect("run");
    assert_eq!(run.state, RunState::Interrupted);
    assert!(
        run.failure_cause
            .as_deref()
            .is_some_and(|c| c.contains("shut down"))
    );
    assert!(engine.status().stopped);
    assert!(matches!(
        engine.start_run(request("MRN-13", 1.0)).await,
        Err(EngineError::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulation_truth_is_refused_on_hardware_and_bad_requests_name_their_field() {
    let dir = TempDir::new().expect("a temporary directory");
    let store = Store::open(dir.path()).await.expect("database");
    // The driver on a board declared as hardware: no tube slot.
    let clock = SimClock::instant();
    let frontend = Frontend::new(
        SimBoard::new(SimBoardConfig::default(), clock.clone()),
        clock.delay(),
    );
    let engine = Engine::start(
        store.clone(),
        Box::new(Instrument::hardware(frontend)),
        config(),
    )
    .await
    .expect("engine");
    assert!(!engine.is_simulated());
    let refused = engine.start_run(request("MRN-14", 3.0)).await;
    assert!(
        matches!(refused, Err(EngineError::SimulationOnHardware)),
        "{refused:?}"
    );
    let no_lot = engine
        .start_run(RunRequest::new("MRN-14", "ACC-14", 7.5))
        .await;
    assert!(
        matches!(
            &no_lot,
            Err(EngineError::Invalid {
                field: "reagent lot",
                ..
            })
        ),
        "{no_lot:?}"
    );
    let bad_indication = engine
        .start_run(RunRequest {
            indication: Some("lung".into()),
            reagent_lot: Some("LOT-9".into()),
            ..RunRequest::new("MRN-14", "ACC-14", 7.5)
        })
        .await;
    assert!(
        matches!(
            &bad_indication,
            Err(EngineError::Invalid {
                field: "indication",
                ..
            })
        ),
        "{bad_indication:?}"
    );
    let one_replicate = engine
        .start_run(RunRequest {
            replicates: 1,
            reagent_lot: Some("LOT-9".into()),
            ..RunRequest::new("MRN-14", "ACC-14", 7.5)
        })
        .await;
    assert!(matches!(
        &one_replicate,
        Err(EngineError::Invalid {
            field: "replicates",
            ..
        })
    ));
    let bad_volume = engine
        .start_run(RunRequest {
            reagent_lot: Some("LOT-9".into()),
            ..RunRequest::new("MRN-14", "ACC-14", -2.0)
        })
        .await;
    assert!(bad_volume.is_err());
    // Nothing was stored for the refused requests.
    assert!(store.recent_runs(10).await.expect("runs").is_empty());

    // The board answers that it is the simulator: the identity check refuses to measure on it
    // as hardware.
    let (_, cause) = failed_run(
        &store,
        &engine,
        RunRequest {
            reagent_lot: Some("LOT-9".into()),
            ..RunRequest::new("MRN-14", "ACC-14", 7.5)
        },
    )
    .await;
    assert!(
        cause.starts_with("board: ") && cause.contains("simulated"),
        "{cause}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lot_without_calibration_fails_with_a_calibration_cause() {
    let (_dir, store, engine) = start(SimBoardConfig::default()).await;
    let (_, cause) = failed_run(
        &store,
        &engine,
        RunRequest {
            reagent_lot: Some("LOT-9".into()),
            ..request("MRN-15", 3.0)
        },
    )
    .await;
    assert!(
        cause.starts_with("calibration: ") && cause.contains("LOT-9"),
        "{cause}"
    );
    assert_eq!(
        store
            .calibration_page(None, 10)
            .await
            .expect("calibrations")
            .calibrations
            .len(),
        1,
        "only the simulated lot's"
    );
    engine.shutdown().await;
}

/// Only an approved calibration counts a patient: the simulated lot's calibration, made
/// pending, fails the run as if there were none; once approved it counts; once superseded by a
/// later approval the run uses the new one; a rejected one is never used. The engine makes no
/// calibration inside a run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_approved_calibration_counts_a_patient() {
    use appliance::store::calibrations::{CalibrationDecision, CalibrationState};
    let (_dir, store, engine) = start_uncalibrated(SimBoardConfig::default(), config()).await;
    let (_, cause) = failed_run(&store, &engine, request("MRN-30", 5.0)).await;
    assert!(
        cause.starts_with("calibration: ") && cause.contains("no approved calibration"),
        "{cause}"
    );
    assert!(
        store
            .calibration_page(None, 10)
            .await
            .expect("calibrations")
            .calibrations
            .is_empty(),
        "a run makes no calibration"
    );
    let made = engine.calibrate_simulated_lot().await.expect("made");
    assert_eq!(made.state, CalibrationState::Pending);
    assert_eq!(made.created_by, None, "made by the appliance");
    let (_, cause) = failed_run(&store, &engine, request("MRN-31", 5.0)).await;
    assert!(
        cause.contains("no approved calibration"),
        "pending: {cause}"
    );
    store
        .decide_calibration(
            &Actor::Appliance,
            made.id,
            CalibrationDecision::Approve,
            "ok",
        )
        .await
        .expect("approved");
    let counted = engine
        .start_run(request("MRN-32", 5.0))
        .await
        .expect("queued");
    assert_eq!(
        engine.wait_for_run(counted.id).await.expect("state"),
        RunState::AwaitingRelease
    );
    assert_eq!(
        store.run(counted.id).await.expect("run").calibration_id,
        Some(made.id)
    );
    // A second series, rejected: never used. A third, approved: supersedes the first.
    let rejected = engine.calibrate_simulated_lot().await.expect("made");
    store
        .decide_calibration(
            &Actor::Appliance,
            rejected.id,
            CalibrationDecision::Reject,
            "no",
        )
        .await
        .expect("rejected");
    let newer = engine.calibrate_simulated_lot().await.expect("made");
    store
        .decide_calibration(
            &Actor::Appliance,
            newer.id,
            CalibrationDecision::Approve,
            "new",
        )
        .await
        .expect("approved");
    assert_eq!(
        store.calibration(made.id).await.expect("first").state,
        CalibrationState::Superseded
    );
    let later = engine
        .start_run(request("MRN-33", 5.0))
        .await
        .expect("queued");
    engine.wait_for_run(later.id).await.expect("state");
    assert_eq!(
        store.run(later.id).await.expect("run").calibration_id,
        Some(newer.id),
        "neither the superseded nor the rejected one"
    );
    engine.shutdown().await;
}

/// A calibration with a slope of 1e−300 (as an older database or a hand-made file can hold:
/// the store keeps the text as given) fails the run with a calibration cause naming the field;
/// no result awaits release. The outside probe's run reported 3.96e299 cells per 7.5 mL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degenerate_stored_calibration_fails_the_run_instead_of_giving_a_result() {
    use appliance::store::calibrations::{CalibrationContent, NewCalibration, ReagentLot};
    let (_dir, store, engine) = start(SimBoardConfig::default()).await;
    let text = r#"lot = "LOT-D"
te_ms = 1.0
slope_per_s_per_cell = 1e-300
slope_se = 1e-302
intercept_per_s = 0.02
intercept_se = 0.002
slope_intercept_cov = 0.0
lob_cells = 0.5
lod_cells = 1.0
loq_cells = 2.0
created = "2026-11-24T04:00:00Z"
"#;
    let degenerate = store
        .add_calibration(
            &Actor::Appliance,
            &NewCalibration {
                reagent_lot: ReagentLot::parse("LOT-D").expect("lot"),
                te_us: config().te_us(),
                content: CalibrationContent::toml(text).expect("TOML"),
                note: None,
            },
        )
        .await
        .expect("stored as given");
    store
        .decide_calibration(
            &Actor::Appliance,
            degenerate.id,
            appliance::store::calibrations::CalibrationDecision::Approve,
            "as an older database holds it",
        )
        .await
        .expect("approved in the store");
    let (ticket, cause) = failed_run(
        &store,
        &engine,
        RunRequest {
            reagent_lot: Some("LOT-D".into()),
            ..request("MRN-16", 20.0)
        },
    )
    .await;
    assert!(
        cause.starts_with("calibration: ") && cause.contains("slope_per_s_per_cell"),
        "{cause}"
    );
    assert!(
        store
            .current_result(ticket.id)
            .await
            .expect("results")
            .is_none()
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_tubes_are_measured_after_control_and_quad_and_reported_apart() {
    use nmr_core::assay::{Marker, TubeKind as AssayTube};
    let (_dir, store, engine) = start(SimBoardConfig::default()).await;
    let mut events = engine.subscribe();
    let ticket = engine
        .start_run(RunRequest {
            extra_tubes: vec![AssayTube::Cd45Control, AssayTube::Single(Marker::Her2)],
            ..request("MRN-16", 40.0)
        })
        .await
        .expect("queued");
    let seen = events_of(&mut events, ticket.id).await;
    let prompts: Vec<String> = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AwaitingTube { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        prompts,
        [
            "insert tube 1 of 4: control tube",
            "insert tube 2 of 4: quad-marker tube",
            "insert tube 3 of 4: CD45 control tube",
            "insert tube 4 of 4: HER-2 tube",
        ]
    );
    assert_eq!(
        store
            .run_measurements(ticket.id)
            .await
            .expect("query")
            .len(),
        12
    );
    let result = store
        .current_result(ticket.id)
        .await
        .expect("query")
        .expect("a result");
    let report = &result.report;
    assert_eq!(report.marker_profile.len(), 1);
    assert_eq!(report.nonspecific_controls.len(), 1);
    // HER-2 carries a quarter of the quad signal in simulation; CD45 only the background.
    let her2 = report.marker_profile[0].delta_r2_per_s;
    let quad = report.delta_r2_per_s;
    let cd45 = report.nonspecific_controls[0].delta_r2_per_s;
    assert!(
        cd45 < her2 && her2 < quad,
        "CD45 {cd45}, HER-2 {her2}, quad {quad}"
    );
    engine.shutdown().await;
}

/// A coil at 5/6 of its nominal B1 refocuses by 150°: the readings carry stimulated echoes, the
/// β fit finds β and is used, and the count's interval still holds the
/// simulated truth.
///
/// The CPMG is 300 echoes instead of the default 1,000 (the same TE, so the same calibration;
/// the window is still two to three T2 of the tubes): every reading's β fit and the simulated
/// board's phase graph cost about the square of the echo count, and this test is about the rule
/// and the count, not the train's length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coil_refocusing_by_150_degrees_still_counts_within_its_interval() {
    let mut board = SimBoardConfig::default();
    board.coil.b1_relative = 150.0 / 180.0;
    let mut config = config();
    config.cpmg.echoes = 300;
    let (_dir, store, engine) = start_configured(board, config).await;
    let mut events = engine.subscribe();
    let ticket = engine
        .start_run(request("MRN-B1", 30.0))
        .await
        .expect("queued");
    let seen = events_of(&mut events, ticket.id).await;
    assert_eq!(states(&seen).last(), Some(&RunState::AwaitingRelease));
    let measurements = store
        .run_measurements(ticket.id)
        .await
        .expect("measurements");
    assert_eq!(measurements.len(), 6);
    for m in &measurements {
        let fit = &m.fit_report.as_ref().expect("fitted").fit;
        assert_eq!(
            fit.t2_model,
            nmr_core::fit::T2Model::StimulatedEchoes,
            "{}",
            fit.t2_model_reason
        );
        let beta = fit
            .stimulated_echoes
            .as_ref()
            .expect("β fitted")
            .refocusing_angle_deg;
        assert!((beta - 150.0).abs() < 3.0, "β {beta}");
    }
    let result = store
        .current_result(ticket.id)
        .await
        .expect("result query")
        .expect("a result");
    let cells = result.report.cells;
    let [low, high] = result.report.cells_ci95;
    assert!(
        low <= 30.0 && 30.0 <= high,
        "30 cells outside [{low}, {high}] (estimate {cells})"
    );
}
