//! The result rules at the operations layer, on a real assembled appliance (simulated board,
//! SQLite file): who may correct and release, what a correction needs, that it recounts from the
//! stored readings exactly as the first count was made, keeps the original, and must be released
//! again.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use appliance::assembly::{Appliance, ApplianceBuilder, Simulation};
use appliance::config::ApplianceConfig;
use appliance::engine::{RunRequest, SimulatedTruth};
use appliance::store::results::SignatureMeaning;
use appliance::store::runs::RunState;
use appliance::store::users::{NewPassword, NewUser, Role, User, Username};
use appliance::store::{Actor, RunId};
use operations::results::CorrectionOrder;
use operations::signature::SignatureInput;
use operations::{LoginThrottle, OperationError, Operations};

const PASSWORD: &str = "correct horse battery";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn user(appliance: &Appliance, name: &str, role: Role) -> User {
    appliance
        .store
        .add_user(
            &Actor::Appliance,
            NewUser {
                username: Username::parse(name).expect("name"),
                display_name: format!("{name} Tester"),
                role,
                password: NewPassword::parse(PASSWORD).expect("password"),
            },
        )
        .await
        .expect("user")
}

fn signed_by(user: &User) -> SignatureInput {
    SignatureInput {
        password: PASSWORD.to_owned(),
        printed_name: user.display_name.clone(),
    }
}

/// An appliance with a run that ended awaiting release (7.5 mL, breast, 20 simulated cells).
async fn appliance_with_a_result() -> (tempfile::TempDir, Appliance, Operations, RunId) {
    let dir = tempfile::tempdir().expect("temp dir");
    let appliance = ApplianceBuilder::new(ApplianceConfig {
        data_dir: dir.path().to_owned(),
        ..ApplianceConfig::default()
    })
    .simulation(Simulation {
        seed: Some(3),
        ..Simulation::default()
    })
    .build()
    .await
    .expect("assembles");
    let request = RunRequest {
        indication: Some("breast".to_owned()),
        simulate: Some(SimulatedTruth {
            cells: 20.0,
            background_per_s: None,
            control_t2_ms: None,
        }),
        ..RunRequest::new("OPS-1", "OPS-1-A1", 7.5)
    };
    record_passing_controls_today(&appliance).await;
    let made = appliance
        .engine
        .calibrate_simulated_lot()
        .await
        .expect("the simulated lot calibrates");
    appliance
        .store
        .decide_calibration(
            &Actor::Appliance,
            made.id,
            appliance::store::calibrations::CalibrationDecision::Approve,
            "tests",
        )
        .await
        .expect("approved");
    let ticket = appliance.engine.start_run(request).await.expect("queued");
    let state = appliance
        .engine
        .wait_for_run(ticket.id)
        .await
        .expect("ends");
    assert_eq!(state, RunState::AwaitingRelease);
    let ops = Operations::new(
        appliance.store.clone(),
        appliance.engine.config().clone(),
        LoginThrottle::new(Duration::from_secs(900), 5),
    );
    (dir, appliance, ops, ticket.id)
}

/// The lab's controls this morning: a passing negative and positive control for the simulated
/// reagent lot, without which the QC gate holds every release.
async fn record_passing_controls_today(appliance: &Appliance) {
    use appliance::store::calibrations::ReagentLot;
    use appliance::store::qc::{ControlLevel, NewQcResult, QcMaterialKind, QcVerdict};
    let expires = time::Date::from_calendar_date(2099, time::Month::December, 31).expect("date");
    for (level, value) in [
        (ControlLevel::Negative, 0.0),
        (ControlLevel::Positive, 50.0),
    ] {
        let store = &appliance.store;
        let material = store
            .add_qc_material(
                &Actor::Appliance,
                &format!("{level} control"),
                QcMaterialKind::Control,
                Some(level),
                "cells",
            )
            .await
            .expect("control material");
        let lot = store
            .add_qc_lot(
                &Actor::Appliance,
                material.id,
                &format!("QC-{level}"),
                expires,
            )
            .await
            .expect("control lot");
        let result = NewQcResult {
            lot_id: lot.id,
            value,
            status: QcVerdict::Pass,
            violations: Vec::new(),
            measurement_id: None,
            reagent_lot: Some(ReagentLot::parse("SIM-LOT-1").expect("lot")),
            measured_at: appliance::store::Timestamp::now(),
            comment: None,
        };
        store
            .record_qc_result(&Actor::Appliance, &result)
            .await
            .expect("control value");
    }
}

#[test]
fn a_correction_order_needs_a_changed_input_and_a_reason() {
    /// (blood mL, indication, reason, the field a refusal names)
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
        Option<&'static str>,
    );
    let cases: [Case; 10] = [
        (Some("5.0"), None, "volume was 5 mL", None),
        (Some("0.5"), None, "the smallest volume", None),
        (None, Some("prostate"), "wrong indication entered", None),
        (None, None, "nothing changed", Some("correction")),
        (Some(" "), Some("  "), "blank inputs", Some("correction")),
        (Some("5.0"), None, " ", Some("correction reason")),
        (Some("-1"), None, "negative volume", Some("blood_ml")),
        (Some("0.49"), None, "below the one range", Some("blood_ml")),
        (Some("50.5"), None, "above the one range", Some("blood_ml")),
        (Some("five"), None, "not a number", Some("blood_ml")),
    ];
    for (blood_ml, indication, reason, refused) in cases {
        let parsed = CorrectionOrder::parse(blood_ml, indication, reason);
        match (parsed, refused) {
            (Ok(_), None) => {}
            (Err(OperationError::Invalid { field, .. }), Some(expected)) => {
                assert_eq!(field, expected, "{blood_ml:?} {indication:?} {reason:?}");
            }
            (other, _) => panic!("{blood_ml:?} {indication:?} {reason:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_correction_recounts_keeps_the_original_and_must_be_released_again() {
    let (_dir, appliance, ops, run) = appliance_with_a_result().await;
    let operator = user(&appliance, "olga", Role::Operator).await;
    let clinician = user(&appliance, "claire", Role::Clinician).await;
    let order = CorrectionOrder::parse(Some("5.0"), None, "processed volume was 5.0 mL").unwrap();

    // Who and how: (signer, password, printed name, expected refusal).
    let wrong_password = SignatureInput {
        password: "not it at all".into(),
        printed_name: clinician.display_name.clone(),
    };
    let wrong_name = SignatureInput {
        password: PASSWORD.into(),
        printed_name: "Somebody Else".into(),
    };
    for (signer, signature, refused) in [
        (&operator, signed_by(&operator), "Forbidden"),
        (&clinician, wrong_password, "password"),
        (&clinician, wrong_name, "printed_name"),
    ] {
        let error = ops
            .correct_result(signer, CLIENT, run, &order, &signature)
            .await
            .expect_err("refused");
        let named = match &error {
            OperationError::Forbidden { .. } => "Forbidden",
            OperationError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(named, refused, "{error}");
    }
    assert_eq!(appliance.store.result_versions(run).await.unwrap().len(), 1);

    // Release, then correct the released result.
    ops.release_result(
        &clinician,
        CLIENT,
        run,
        &signed_by(&clinician),
        SignatureMeaning::Release,
    )
    .await
    .expect("released");
    let original = appliance.store.current_result(run).await.unwrap().unwrap();
    let corrected = ops
        .correct_result(&clinician, CLIENT, run, &order, &signed_by(&clinician))
        .await
        .expect("corrected");
    assert_eq!(corrected.version, 2);
    assert_eq!(
        corrected.reason.as_deref(),
        Some("processed volume was 5.0 mL")
    );
    // The same readings give the same cells; per 7.5 mL scales with the volume (7.5 / 5.0).
    assert_eq!(
        corrected.report.cells.to_bits(),
        original.report.cells.to_bits()
    );
    assert_eq!(
        corrected.report.delta_r2_per_s.to_bits(),
        original.report.delta_r2_per_s.to_bits()
    );
    assert_eq!(corrected.report.blood_ml, 5.0);
    let expected = original.report.cells * 7.5 / 5.0;
    assert!((corrected.report.per_7_5ml - expected).abs() < 1e-9 * expected.max(1.0));
    let versions = appliance.store.result_versions(run).await.unwrap();
    assert_eq!(
        versions[0], original,
        "the original version is kept as it was"
    );
    assert_eq!(
        appliance.store.run(run).await.unwrap().state,
        RunState::AwaitingRelease
    );

    // It is released again by a new signature.
    ops.release_result(
        &clinician,
        CLIENT,
        run,
        &signed_by(&clinician),
        SignatureMeaning::Release,
    )
    .await
    .expect("released again");
    assert_eq!(
        appliance.store.run(run).await.unwrap().state,
        RunState::Released
    );
    let current = appliance.store.current_result(run).await.unwrap().unwrap();
    assert_eq!((current.version, current.signatures.len()), (2, 1));

    // A correction that changes nothing is refused (the run page's form carries every current
    // value: only what differs is a correction).
    let volume = current.report.blood_ml.to_string();
    let unchanged = CorrectionOrder::parse(Some(&volume), None, "the same again").unwrap();
    let error = ops
        .correct_result(&clinician, CLIENT, run, &unchanged, &signed_by(&clinician))
        .await
        .expect_err("nothing differs");
    assert!(
        matches!(
            &error,
            OperationError::Invalid {
                field: "correction",
                ..
            }
        ),
        "{error:?}"
    );

    // A correction to an indication without a cut-off is refused naming it.
    let unknown = CorrectionOrder::parse(None, Some("melanoma"), "wrong indication").unwrap();
    let error = ops
        .correct_result(&clinician, CLIENT, run, &unknown, &signed_by(&clinician))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            &error,
            OperationError::Invalid {
                field: "indication",
                ..
            }
        ),
        "{error}"
    );
    appliance.shutdown().await;
}

/// The defect: the QC a result relied on was written in its own transaction after the release
/// (and after the run's creation), so a crash between the two left a released result, or a
/// queued run, without its stated QC basis. Now both go in one transaction: a failure injected
/// in the QC basis write (a trigger refusing the insert) leaves neither the release nor the run.
#[tokio::test]
async fn the_qc_basis_is_stored_in_the_same_transaction_as_the_release_and_the_start() {
    use appliance::store::qc_basis::JudgedFor;
    use operations::Requester;
    use operations::runs::RunOrderFields;

    let (_dir, appliance, _, run) = appliance_with_a_result().await;
    let ops = Operations::with_engine(
        appliance.store.clone(),
        appliance.engine.clone(),
        LoginThrottle::new(Duration::from_secs(900), 5),
    );
    let clinician = user(&appliance, "carla", Role::Clinician).await;
    let operator = user(&appliance, "oscar", Role::Operator).await;
    let pool = appliance.store.pool();
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .expect("count")
    };
    // Each start is a new specimen (a start refused after its sample was stored has used the
    // accession number: the sample and the run are still two transactions).
    let order = |accession: &'static str| {
        let fields = RunOrderFields {
            patient_mrn: "OPS-2".into(),
            birth_date: "1960-05-04".into(),
            accession: accession.into(),
            blood_ml: "7.5".into(),
            indication: "breast".into(),
            ..RunOrderFields::default()
        };
        let ops = &ops;
        async move {
            ops.parse_order(&fields)
                .await
                .expect("context")
                .expect("a good order")
        }
    };
    let signature = signed_by(&clinician);
    let release = || {
        ops.release_result(
            &clinician,
            CLIENT,
            run,
            &signature,
            SignatureMeaning::Release,
        )
    };
    let operator = Requester::from(&operator);
    let (refused_order, started_order) = (order("OPS-2-A1").await, order("OPS-2-A2").await);

    // The second write fails.
    sqlx::query(
        "CREATE TRIGGER injected_failure BEFORE INSERT ON run_qc_basis
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(pool)
    .await
    .expect("trigger");
    let runs_before = count("SELECT COUNT(*) FROM runs").await;
    release()
        .await
        .expect_err("the QC basis could not be stored");
    assert_eq!(
        appliance.store.run(run).await.unwrap().state,
        RunState::AwaitingRelease,
        "no release without its QC basis"
    );
    let current = appliance.store.current_result(run).await.unwrap().unwrap();
    assert!(current.signatures.is_empty(), "{:?}", current.signatures);
    ops.start_run(&operator, &refused_order)
        .await
        .expect_err("the QC basis could not be stored");
    assert_eq!(
        count("SELECT COUNT(*) FROM runs").await,
        runs_before,
        "no run without its QC basis"
    );
    assert_eq!(count("SELECT COUNT(*) FROM run_qc_basis").await, 0);

    // Both writes succeed: the release and the run each carry the QC they relied on.
    sqlx::query("DROP TRIGGER injected_failure")
        .execute(pool)
        .await
        .expect("drop trigger");
    release().await.expect("released");
    assert_eq!(
        appliance.store.run(run).await.unwrap().state,
        RunState::Released
    );
    let basis = appliance.store.qc_basis(run).await.unwrap();
    assert_eq!(basis.len(), 1, "{basis:?}");
    assert_eq!(
        (basis[0].judged_for, basis[0].values.len()),
        (JudgedFor::Release, 2)
    );
    let ticket = ops
        .start_run(&operator, &started_order)
        .await
        .expect("started");
    let basis = appliance.store.qc_basis(ticket.id).await.unwrap();
    assert_eq!(basis.len(), 1, "{basis:?}");
    assert_eq!(
        (basis[0].judged_for, basis[0].values.len()),
        (JudgedFor::Start, 2)
    );
    appliance
        .engine
        .wait_for_run(ticket.id)
        .await
        .expect("ends");
    appliance.shutdown().await;
}
