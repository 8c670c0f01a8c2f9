//! Corrective actions against a rejected QC result at the operations layer (issue 11 point 8):
//! who may record one (those who record QC), only against a rejected control value, what the
//! text must say; recorded with who and when, audited, and shown with the lot's review.

use std::time::Duration;

use appliance::engine::EngineConfig;
use appliance::store::qc::{ControlLevel, QcMaterialKind, QcVerdict, TargetSource};
use appliance::store::users::{NewPassword, NewUser, Role, Username};
use appliance::store::{Actor, QcResultId, Store};
use nmr_core::assay::Indications;
use operations::qc::CorrectiveActionText;
use operations::qc_statistics::QcRange;
use operations::{LoginThrottle, OperationError, Operations, Requester};

#[tokio::test]
async fn a_corrective_action_is_recorded_only_against_a_rejected_qc_by_those_who_record_qc() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store");
    let ops = Operations::new(
        store.clone(),
        EngineConfig::new(
            Indications::from_toml(
                "[indications.breast]\nunfavorable_at_or_above_per_7_5ml = 5.0\n",
            )
            .expect("cut-offs"),
        ),
        LoginThrottle::new(Duration::from_secs(900), 5),
    );
    let add = |name: &'static str, role: Role| {
        let store = store.clone();
        async move {
            Requester::User(
                store
                    .add_user(
                        &Actor::Appliance,
                        NewUser {
                            username: Username::parse(name).expect("name"),
                            display_name: format!("{name} Tester"),
                            role,
                            password: NewPassword::parse("correct horse battery")
                                .expect("password"),
                        },
                    )
                    .await
                    .expect("user"),
            )
        }
    };
    let olga = add("olga", Role::Operator).await;
    let claire = add("claire", Role::Clinician).await;
    let lars = add("lars", Role::LabAdmin).await;
    let material = store
        .add_qc_material(
            &Actor::Appliance,
            "CTC control positive",
            QcMaterialKind::Control,
            Some(ControlLevel::Positive),
            "cells",
        )
        .await
        .expect("material");
    let lot = store
        .add_qc_lot(
            &Actor::Appliance,
            material.id,
            "QP-7",
            time::macros::date!(2099 - 12 - 31),
        )
        .await
        .expect("lot");
    store
        .set_qc_target(
            &Actor::Appliance,
            lot.id,
            50.0,
            5.0,
            TargetSource::Manufacturer,
            None,
        )
        .await
        .expect("target");
    let passed = ops
        .record_qc(&olga, lot.id, 51.0, None, None)
        .await
        .expect("a value");
    assert_eq!(passed.status, QcVerdict::Pass);
    let rejected = ops
        .record_qc(&olga, lot.id, 80.0, None, Some("vial looked cloudy"))
        .await
        .expect("a value");
    assert_eq!(rejected.status, QcVerdict::Reject, "6 SD above: 1-3s");
    let action = CorrectiveActionText::parse("  opened a new control vial; rerun passed  ")
        .expect("an action");
    assert_eq!(action.as_str(), "opened a new control vial; rerun passed");

    // The text: 3 to 1000 characters, trimmed.
    for bad in ["", "  ", "ok", &"x".repeat(1001)] {
        let refused = CorrectiveActionText::parse(bad);
        assert!(
            matches!(
                refused,
                Err(OperationError::Invalid {
                    field: "action",
                    ..
                })
            ),
            "{bad:?}: {refused:?}"
        );
    }
    // Who: a clinician records no QC.
    let forbidden = ops
        .record_corrective_action(&claire, rejected.id, &action)
        .await;
    assert!(
        matches!(forbidden, Err(OperationError::Forbidden { .. })),
        "{forbidden:?}"
    );
    // What against: only a rejected value; an unknown one is not found.
    let not_rejected = ops
        .record_corrective_action(&olga, passed.id, &action)
        .await;
    assert!(
        matches!(&not_rejected, Err(OperationError::Conflict(text)) if text.contains("not rejected")),
        "{not_rejected:?}"
    );
    let unknown = ops
        .record_corrective_action(&olga, QcResultId(9999), &action)
        .await;
    assert!(
        matches!(unknown, Err(OperationError::NotFound { .. })),
        "{unknown:?}"
    );

    // Recorded with who and when, by an operator and by a lab admin; audited each time.
    let first = ops
        .record_corrective_action(&olga, rejected.id, &action)
        .await
        .expect("recorded");
    let second = ops
        .record_corrective_action(
            &lars,
            rejected.id,
            &CorrectiveActionText::parse("reviewed: vial lot quarantined").expect("text"),
        )
        .await
        .expect("recorded");
    assert_eq!(first.recorded_by_name.as_deref(), Some("olga Tester"));
    assert_eq!(second.recorded_by_name.as_deref(), Some("lars Tester"));
    assert!(first.recorded_at <= second.recorded_at);
    let today = appliance::store::Timestamp::now().datetime().date();
    let review = ops
        .qc_review(&lars, QcRange::parse("", "", today).expect("range"))
        .await
        .expect("review");
    let lot_record = &review.materials[0].lots[0];
    assert_eq!(lot_record.corrective_actions, [first, second]);
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'qc.corrective_action'")
            .fetch_one(store.pool())
            .await
            .expect("count");
    assert_eq!(audited, 2, "only what was recorded is audited");
}
