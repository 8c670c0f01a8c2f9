//! Issue 11: a calibration is pending until a lab admin approves it, and only an approved one
//! lets a patient run start. On a real assembled appliance (simulated board, SQLite file),
//! through the operations every face calls.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use appliance::assembly::{Appliance, ApplianceBuilder, Simulation};
use appliance::config::ApplianceConfig;
use appliance::store::calibrations::{CalibrationDecision, CalibrationState};
use appliance::store::users::{NewPassword, NewUser, Role, User, Username};
use appliance::store::{Actor, CalibrationId};
use operations::calibrations::{CalibrationImport, DecisionReason};
use operations::runs::RunOrderFields;
use operations::signature::SignatureInput;
use operations::{LoginThrottle, OperationError, Operations, Requester};

const PASSWORD: &str = "correct horse battery";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn fresh() -> (tempfile::TempDir, Appliance, Operations) {
    let dir = tempfile::tempdir().expect("temp dir");
    // The QC gate is not what these tests are about: "run, but hold".
    let appliance = ApplianceBuilder::new(ApplianceConfig {
        data_dir: dir.path().to_owned(),
        qc: appliance::config::QcConfig {
            policy: appliance::config::QcPolicy::RunButHold,
        },
        ..ApplianceConfig::default()
    })
    .simulation(Simulation {
        seed: Some(5),
        ..Simulation::default()
    })
    .build()
    .await
    .expect("assembles");
    let ops = Operations::with_engine(
        appliance.store.clone(),
        appliance.engine.clone(),
        LoginThrottle::new(Duration::from_secs(900), 5),
    );
    (dir, appliance, ops)
}

async fn user(appliance: &Appliance, name: &str, role: Role) -> Requester {
    let user: User = appliance
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
        .expect("user");
    Requester::User(user)
}

fn signed(who: &Requester, password: &str) -> SignatureInput {
    SignatureInput {
        password: password.to_owned(),
        printed_name: who.user().expect("a user").display_name.clone(),
    }
}

async fn start(ops: &Operations, who: &Requester, accession: &str) -> Result<i64, OperationError> {
    let fields = RunOrderFields {
        patient_mrn: "CAL-1".into(),
        birth_date: "1960-05-04".into(),
        accession: accession.into(),
        blood_ml: "7.5".into(),
        indication: "breast".into(),
        ..RunOrderFields::default()
    };
    let order = ops
        .parse_order(&fields)
        .await
        .expect("context")
        .expect("a good order");
    ops.start_run(who, &order).await.map(|ticket| ticket.id.0)
}

async fn audit_count(appliance: &Appliance, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ?")
        .bind(action)
        .fetch_one(appliance.store.pool())
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_run_needs_an_approved_calibration_which_a_lab_admin_signs() {
    let (_dir, appliance, ops) = fresh().await;
    let admin = user(&appliance, "lars", Role::LabAdmin).await;
    let operator = user(&appliance, "olga", Role::Operator).await;

    // A fresh instrument: refused in words, naming what is missing and who fixes it.
    let refused = start(&ops, &operator, "CAL-A1").await;
    let Err(OperationError::Conflict(words)) = refused else {
        panic!("a run without a calibration started: {refused:?}");
    };
    assert!(
        words.contains("no approved calibration")
            && words.contains("SIM-LOT-1")
            && words.contains("lab admin")
            && words.contains("Calibrations page"),
        "{words}"
    );
    for sql in [
        "SELECT COUNT(*) FROM runs",
        "SELECT COUNT(*) FROM samples",
        "SELECT COUNT(*) FROM patients",
    ] {
        assert_eq!(
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(appliance.store.pool())
                .await
                .expect("count"),
            0,
            "nothing stored for a refused start ({sql})"
        );
    }

    // The simulated lot's series: pending, and still refused, naming the pending calibration.
    assert!(matches!(
        ops.make_simulated_calibration(&operator).await,
        Err(OperationError::Forbidden { .. })
    ));
    let made = ops.make_simulated_calibration(&admin).await.expect("made");
    assert_eq!(made.state, CalibrationState::Pending);
    let Err(OperationError::Conflict(words)) = start(&ops, &operator, "CAL-A2").await else {
        panic!("a pending calibration let a run start");
    };
    assert!(
        words.contains(&format!(
            "calibration {} of reagent lot SIM-LOT-1",
            made.id.0
        )) && words.contains("awaits approval"),
        "{words}"
    );

    // Only a lab admin decides, and signs: a wrong password is refused and audited.
    let reason = DecisionReason::parse("series reviewed; limits acceptable").expect("reason");
    let decide = |who: &Requester, password: &str, decision| {
        let signature = signed(who, password);
        let ops = &ops;
        let reason = &reason;
        let who = who.clone();
        async move {
            ops.decide_calibration(&who, CLIENT, made.id, decision, reason, &signature)
                .await
        }
    };
    assert!(matches!(
        decide(&operator, PASSWORD, CalibrationDecision::Approve).await,
        Err(OperationError::Forbidden { .. })
    ));
    assert!(matches!(
        decide(&admin, "wrong password", CalibrationDecision::Approve).await,
        Err(OperationError::Invalid {
            field: "password",
            ..
        })
    ));
    assert_eq!(audit_count(&appliance, "calibration.sign_refused").await, 1);
    assert!(DecisionReason::parse("  ").is_err(), "a reason is required");
    let approved = decide(&admin, PASSWORD, CalibrationDecision::Approve)
        .await
        .expect("approved");
    assert_eq!(approved.state, CalibrationState::Approved);
    assert_eq!(approved.decided_by, admin.user().map(|u| u.id));
    assert_eq!(
        approved.decision_reason.as_deref(),
        Some("series reviewed; limits acceptable")
    );
    let (actor, why): (String, Option<String>) =
        sqlx::query_as("SELECT actor, reason FROM audit_log WHERE action = 'calibration.approve'")
            .fetch_one(appliance.store.pool())
            .await
            .expect("the approval is audited");
    assert!(actor.ends_with(":lars"), "{actor}");
    assert_eq!(why.as_deref(), Some("series reviewed; limits acceptable"));

    // Now the run starts and is counted with it.
    let run = start(&ops, &operator, "CAL-A3").await.expect("started");
    appliance
        .engine
        .wait_for_run(appliance::store::RunId(run))
        .await
        .expect("ends");
    assert_eq!(
        appliance
            .store
            .run(appliance::store::RunId(run))
            .await
            .expect("run")
            .calibration_id,
        Some(made.id)
    );
    // Decided once: approving again is refused.
    assert!(matches!(
        decide(&admin, PASSWORD, CalibrationDecision::Reject).await,
        Err(OperationError::Conflict(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_or_superseded_calibration_is_not_used() {
    let (_dir, appliance, ops) = fresh().await;
    let admin = user(&appliance, "lars", Role::LabAdmin).await;
    let operator = user(&appliance, "olga", Role::Operator).await;
    let signature = signed(&admin, PASSWORD);
    let reason = DecisionReason::parse("checked").expect("reason");
    let made = ops.make_simulated_calibration(&admin).await.expect("made");
    let document = made.content.text.clone();
    ops.decide_calibration(
        &admin,
        CLIENT,
        made.id,
        CalibrationDecision::Reject,
        &reason,
        &signature,
    )
    .await
    .expect("rejected");
    assert!(
        start(&ops, &operator, "CAL-B1").await.is_err(),
        "a rejected calibration does not count a patient"
    );
    // The same document imported twice (as from `ferrocount calibrate`): both pending; the
    // first approved, then the second approved supersedes it.
    let import = CalibrationImport::parse(&document, Some("from the file")).expect("reads");
    let first = ops
        .import_calibration(&admin, &import)
        .await
        .expect("first");
    let second = ops
        .import_calibration(&admin, &import)
        .await
        .expect("second");
    assert_eq!(first.state, CalibrationState::Pending);
    assert!(matches!(
        ops.import_calibration(&operator, &import).await,
        Err(OperationError::Forbidden { .. })
    ));
    for id in [first.id, second.id] {
        ops.decide_calibration(
            &admin,
            CLIENT,
            id,
            CalibrationDecision::Approve,
            &reason,
            &signature,
        )
        .await
        .expect("approved");
    }
    assert_eq!(
        ops.calibration(&admin, first.id)
            .await
            .expect("first")
            .state,
        CalibrationState::Superseded
    );
    let run = start(&ops, &operator, "CAL-B2").await.expect("started");
    appliance
        .engine
        .wait_for_run(appliance::store::RunId(run))
        .await
        .expect("ends");
    let used = appliance
        .store
        .run(appliance::store::RunId(run))
        .await
        .expect("run")
        .calibration_id;
    assert_eq!(
        used,
        Some(second.id),
        "neither the rejected nor the superseded one"
    );
    assert_ne!(used, Some(CalibrationId(made.id.0)));
    assert_eq!(audit_count(&appliance, "calibration.reject").await, 1);
    assert_eq!(audit_count(&appliance, "calibration.approve").await, 2);
}
