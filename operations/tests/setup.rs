//! Issue 11: the set-up checklist of a fresh instrument — users, QC materials, a lot with targets
//! for both control levels, an approved calibration — each step open until it is done, on a real
//! assembled appliance (simulated board, SQLite file).

use std::time::Duration;

// The users of the other operations tests; this file does not release runs.
#[allow(dead_code)]
mod common;

use appliance::assembly::{Appliance, ApplianceBuilder, Simulation};
use appliance::config::ApplianceConfig;
use appliance::store::Actor;
use appliance::store::Timestamp;
use appliance::store::calibrations::CalibrationDecision;
use appliance::store::qc::{ControlLevel, QcMaterialKind, TargetSource};
use appliance::store::users::{Role, Username};
use operations::setup::{SetupStep, checklist};
use operations::{LoginThrottle, Operations, Requester};

async fn fresh() -> (tempfile::TempDir, Appliance, Operations) {
    let dir = tempfile::tempdir().expect("temp dir");
    let appliance = ApplianceBuilder::new(ApplianceConfig {
        data_dir: dir.path().to_owned(),
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

fn date(year: i32) -> time::Date {
    time::Date::from_calendar_date(year, time::Month::June, 30).expect("date")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_set_up_step_stays_open_until_it_is_done() {
    let (_dir, appliance, ops) = fresh().await;
    let store = &appliance.store;
    let actor = Actor::Appliance;
    let open = || async { ops.setup_checklist().await.expect("checklist").open };

    // A fresh instrument: everything open, in the order it is done.
    assert_eq!(open().await, SetupStep::ALL.to_vec());

    // The first lab admin alone is not enough; a second person is; a disabled one is not.
    let lars = common::add_user(&appliance.store, "lars", Role::LabAdmin).await;
    assert!(open().await.contains(&SetupStep::Users));
    let olga = common::add_user(&appliance.store, "olga", Role::Operator).await;
    assert!(!open().await.contains(&SetupStep::Users));
    store
        .disable_user(&actor, &Username::parse("olga").expect("name"), "left")
        .await
        .expect("disabled");
    assert!(open().await.contains(&SetupStep::Users), "{olga:?}");
    common::add_user(&appliance.store, "claire", Role::Clinician).await;
    assert!(!open().await.contains(&SetupStep::Users));

    // Materials: a phantom and one level are not enough.
    store
        .add_qc_material(&actor, "Phantom", QcMaterialKind::Phantom, None, "t2_ms")
        .await
        .expect("phantom");
    let negative = store
        .add_qc_material(
            &actor,
            "Negative",
            QcMaterialKind::Control,
            Some(ControlLevel::Negative),
            "cells",
        )
        .await
        .expect("negative");
    assert!(open().await.contains(&SetupStep::QcMaterials));
    let positive = store
        .add_qc_material(
            &actor,
            "Positive",
            QcMaterialKind::Control,
            Some(ControlLevel::Positive),
            "cells",
        )
        .await
        .expect("positive");
    assert!(!open().await.contains(&SetupStep::QcMaterials));

    // Targets: a lot without a target, an expired lot with one, and one level only: still open.
    let negative_lot = store
        .add_qc_lot(&actor, negative.id, "N-1", date(2099))
        .await
        .expect("lot");
    let expired = store
        .add_qc_lot(&actor, positive.id, "P-0", date(2001))
        .await
        .expect("lot");
    store
        .set_qc_target(
            &actor,
            expired.id,
            50.0,
            5.0,
            TargetSource::Manufacturer,
            None,
        )
        .await
        .expect("target");
    let positive_lot = store
        .add_qc_lot(&actor, positive.id, "P-1", date(2099))
        .await
        .expect("lot");
    assert!(open().await.contains(&SetupStep::QcTargets));
    store
        .set_qc_target(
            &actor,
            negative_lot.id,
            0.5,
            0.5,
            TargetSource::Manufacturer,
            None,
        )
        .await
        .expect("target");
    assert!(open().await.contains(&SetupStep::QcTargets));
    store
        .set_qc_target(
            &actor,
            positive_lot.id,
            50.0,
            5.0,
            TargetSource::Manufacturer,
            None,
        )
        .await
        .expect("target");
    assert_eq!(open().await, vec![SetupStep::Calibration]);
    // The same lots long after they expired: the targets step opens again.
    let later = Timestamp::from_datetime(
        time::OffsetDateTime::now_utc()
            .replace_year(2100)
            .expect("year"),
    );
    assert!(
        checklist(store, later)
            .await
            .expect("checklist")
            .is_open(SetupStep::QcTargets)
    );

    // A pending calibration is not enough; an approved one is.
    let made = ops
        .make_simulated_calibration(&Requester::User(lars))
        .await
        .expect("made");
    assert_eq!(open().await, vec![SetupStep::Calibration]);
    store
        .decide_calibration(&actor, made.id, CalibrationDecision::Approve, "reviewed")
        .await
        .expect("approved");
    let done = ops.setup_checklist().await.expect("checklist");
    assert!(done.done(), "{done:?}");
}
