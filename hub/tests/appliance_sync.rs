//! The appliance's hub sender (`operations::hub_sync`) against the hub's router served over
//! HTTPS on a real PostgreSQL server: an enrolled appliance's calibration, QC value, measurements
//! with their raw trains, released result and heartbeat reach the hub exactly once and
//! bit-identical; a lost acknowledgement is sent again and stored once; a gap the appliance
//! believes acknowledged is refused by the hub and resent from where the hub stands; a revoked
//! appliance is refused and its sender stops; both audit trails verify.

mod support;

use appliance::config::{HttpConfig, default_indications};
use appliance::engine::EngineConfig;
use appliance::store::calibrations::{CalibrationContent, NewCalibration, ReagentLot};
use appliance::store::example_report::{example_calibration_toml, example_report};
use appliance::store::measurements::NewMeasurement;
use appliance::store::patients::{BirthDate, Mrn, NewPatient};
use appliance::store::qc::{ControlLevel, NewQcResult, QcMaterialKind, QcVerdict};
use appliance::store::results::SignatureMeaning;
use appliance::store::runs::{NewRun, RunState};
use appliance::store::samples::{
    Accession, BloodVolume, Indication, NewSample, NewTube, TubeKind, TubeLabel,
};
use appliance::store::users::{NewPassword, NewUser, Role, Username};
use appliance::store::{Actor, AuditVerification, Store, Timestamp};
use hub::store::audit::{HubActor, HubAuditVerification};
use hub_protocol::audit_chain::sha256_hex;
use nmr_core::assay::{Call, CountCategory};
use operations::hub_link::HubLink;
use operations::hub_sync::SyncError;
use operations::{LoginThrottle, Operations, Requester};
use support::{fresh_store, serve_https};

fn operations(store: Store) -> Operations {
    Operations::new(
        store,
        EngineConfig::new(default_indications().expect("indications")),
        LoginThrottle::configured(&HttpConfig::default()),
    )
}

/// A QC value of a positive control, `value` cells.
async fn qc_value(store: &Store, lot: appliance::store::QcLotId, value: f64) {
    store
        .record_qc_result(
            &Actor::Appliance,
            &NewQcResult {
                lot_id: lot,
                value,
                status: QcVerdict::Pass,
                violations: Vec::new(),
                measurement_id: None,
                reagent_lot: None,
                measured_at: Timestamp::now(),
                comment: Some("morning controls".into()),
            },
        )
        .await
        .expect("QC value");
}

/// A run of `mrn` with two measured tubes and a result a clinician released.
async fn released_run(store: &Store, mrn: &str) {
    let actor = Actor::Appliance;
    let claire = store
        .add_user(
            &actor,
            NewUser {
                username: Username::parse("claire").expect("name"),
                display_name: "Claire Tester".into(),
                role: Role::Clinician,
                password: NewPassword::parse("correct horse battery").expect("password"),
            },
        )
        .await
        .expect("clinician");
    let patient = store
        .patient_by_mrn_or_add(
            &actor,
            &NewPatient::new(
                Mrn::parse(mrn).expect("mrn"),
                BirthDate::parse("1961-04-23", time::macros::date!(2026 - 01 - 01))
                    .expect("birth date"),
            ),
        )
        .await
        .expect("patient");
    let sample = store
        .add_sample(
            &actor,
            &NewSample {
                patient_id: patient.id,
                accession: Accession::parse(&format!("{mrn}-A")).expect("accession"),
                drawn_at: Timestamp::parse("2026-11-20T08:30:00.125Z").expect("time"),
                blood: BloodVolume::from_ml(7.5).expect("volume"),
                indication: Some(Indication::parse("breast").expect("indication")),
                indication_override_reason: None,
                tubes: vec![
                    NewTube {
                        kind: TubeKind::Control,
                        label: TubeLabel::parse(&format!("{mrn}-C")).expect("label"),
                    },
                    NewTube {
                        kind: TubeKind::Quad,
                        label: TubeLabel::parse(&format!("{mrn}-Q")).expect("label"),
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
                reagent_lot: Some("SIM-LOT-1".into()),
                simulated: true,
            },
        )
        .await
        .expect("run");
    store
        .set_run_state(&actor, run.id, RunState::Running, None)
        .await
        .expect("running");
    for (tube, t2_s) in sample.tubes.iter().zip([0.2, 0.15]) {
        // A real-valued decay with an irregular tail: its compressed bytes are what must
        // arrive unchanged.
        let times: Vec<f64> = (1..=400).map(|k| f64::from(k) * 0.004).collect();
        let values: Vec<f64> = times
            .iter()
            .enumerate()
            .map(|(k, t)| (-t / t2_s).exp() + 1e-3 * ((k * 7919) % 13) as f64 / 13.0)
            .collect();
        let train = nmr_core::EchoTrain::real(times, values).expect("train");
        store
            .add_measurement(
                &actor,
                &NewMeasurement {
                    run_id: run.id,
                    tube_id: tube.id,
                    replicate: 1,
                    measured_at: Timestamp::now(),
                    train: &train,
                    fit_report: None,
                    qc_flags: Vec::new(),
                    t2_distribution: None,
                },
            )
            .await
            .expect("measurement");
    }
    store
        .record_result(
            &actor,
            run.id,
            &example_report(
                12.5,
                [7.25, 19.0],
                CountCategory::Quantified,
                Some(Call::Unfavorable),
                false,
            ),
        )
        .await
        .expect("result");
    store
        .sign_result(&claire, run.id, SignatureMeaning::Release)
        .await
        .expect("released");
}

/// Every message the appliance queued, as `(message id, sha256 of its content)`.
async fn queued(store: &Store, serial: &str) -> Vec<(String, String)> {
    store
        .hub_sync_batch(serial, 1, 100)
        .await
        .expect("batch")
        .iter()
        .map(|m| {
            (
                m.id.as_str().to_owned(),
                sha256_hex(&m.body.canonical_bytes()),
            )
        })
        .collect()
}

/// Every message the hub holds, as `(message id, sha256 of its content)`, by sequence.
async fn held(hub: &hub::HubStore) -> Vec<(String, String)> {
    sqlx::query_as::<_, (String, String)>(
        "SELECT message_id, content_sha256 FROM ingested_messages ORDER BY sequence",
    )
    .fetch_all(hub.pool())
    .await
    .expect("hub messages")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_appliance_sends_its_records_once_and_bit_identical() {
    let hub = fresh_store().await;
    let (url, cert_pem) = serve_https(hub::http::router(hub.clone()));
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("hub-ca.pem");
    std::fs::write(&ca, &cert_pem).expect("ca");
    let data = dir.path().join("data");
    let ops = operations(Store::open(&data).await.expect("store"));
    let store = &ops.store;
    let code = hub
        .issue_enrolment_code(&HubActor::Console, "Ward S", time::Duration::hours(1))
        .await
        .expect("code");
    let link: HubLink = ops
        .enrol_with_hub(
            &Requester::Console,
            &data,
            &url,
            &code.code,
            "SN-S1",
            Some(&ca),
        )
        .await
        .expect("enrolled");
    let client = HubLink::client(link.ca_file.as_deref()).expect("client");

    // Records of every kind, then a round.
    store
        .add_calibration(
            &Actor::Appliance,
            &NewCalibration {
                reagent_lot: ReagentLot::parse("RL-EXAMPLE").expect("lot"),
                te_us: 4000,
                content: CalibrationContent::toml(&example_calibration_toml()).expect("TOML"),
                note: None,
            },
        )
        .await
        .expect("calibration");
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
            "QP-1",
            time::macros::date!(2099 - 12 - 31),
        )
        .await
        .expect("lot");
    qc_value(store, lot.id, 48.25).await;
    released_run(store, "SYNC-0001").await;
    ops.queue_hub_heartbeat().await.expect("heartbeat");
    let round = ops.sync_with_hub(&link, &client).await.expect("a round");
    // Heartbeat, calibration, QC value, two measurements, the release.
    assert_eq!(
        (round.queued, round.stored, round.repeated),
        (5, 6, 0),
        "{round:?}"
    );
    assert_eq!(round.last_sequence, 6);
    let sent = queued(store, &link.serial).await;
    assert_eq!(
        held(&hub).await,
        sent,
        "every message once, content identical"
    );
    let appliance_trains: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT train FROM measurements ORDER BY id")
            .fetch_all(store.pool())
            .await
            .expect("trains");
    let hub_trains: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT train FROM measurements ORDER BY measurement_id")
            .fetch_all(hub.pool())
            .await
            .expect("trains");
    assert_eq!(hub_trains, appliance_trains, "raw trains bit for bit");
    let (per, low, high, signer): (f64, f64, f64, String) = sqlx::query_as(
        "SELECT r.per_7_5ml, r.per_7_5ml_ci95_low, r.per_7_5ml_ci95_high, g.printed_name
         FROM released_results r JOIN result_signatures g ON g.message_id = r.message_id",
    )
    .fetch_one(hub.pool())
    .await
    .expect("released result");
    assert_eq!(
        (per.to_bits(), low.to_bits(), high.to_bits()),
        (12.5_f64.to_bits(), 7.25_f64.to_bits(), 19.0_f64.to_bits())
    );
    assert_eq!(signer, "Claire Tester");

    // Nothing new: a round sends nothing.
    let idle = ops.sync_with_hub(&link, &client).await.expect("a round");
    assert_eq!((idle.queued, idle.batches), (0, 0), "{idle:?}");

    // The acknowledgement lost (the appliance crashed before recording it): everything is sent
    // again, and the hub stores nothing twice.
    sqlx::query("UPDATE hub_sync SET acked_at = NULL")
        .execute(store.pool())
        .await
        .expect("forget the acknowledgement");
    let again = ops.sync_with_hub(&link, &client).await.expect("a round");
    assert_eq!((again.stored, again.repeated), (0, 6), "{again:?}");
    assert_eq!(held(&hub).await, sent);

    // A gap: the appliance believes the hub holds a message it never received. The hub names
    // the sequence it expects and the sender resends from there.
    qc_value(store, lot.id, 47.5).await;
    qc_value(store, lot.id, 49.0).await;
    assert_eq!(store.queue_hub_sync().await.expect("queued"), 2);
    sqlx::query("UPDATE hub_sync SET acked_at = queued_at WHERE sequence = 7")
        .execute(store.pool())
        .await
        .expect("a wrong acknowledgement");
    let mended = ops.sync_with_hub(&link, &client).await.expect("a round");
    assert_eq!((mended.rewinds, mended.stored), (1, 2), "{mended:?}");
    assert_eq!(held(&hub).await, queued(store, &link.serial).await);

    // Revoked on the hub: refused, and the sender stops for good.
    hub.revoke(&HubActor::Console, "SN-S1", "instrument retired")
        .await
        .expect("revoked");
    qc_value(store, lot.id, 50.5).await;
    let refused = ops.sync_with_hub(&link, &client).await;
    let Err(error) = refused else {
        panic!("a revoked appliance was heard: {refused:?}");
    };
    assert!(
        matches!(error, SyncError::CredentialRefused(_)) && error.is_final(),
        "{error:?}"
    );
    assert_eq!(
        held(&hub).await.len(),
        8,
        "nothing of a revoked appliance is stored"
    );

    // Both trails verify.
    let appliance_audit = store.verify_audit_chain().await.expect("verify");
    assert!(
        matches!(appliance_audit, AuditVerification::Intact { .. }),
        "{appliance_audit:?}"
    );
    let hub_audit = hub.verify_audit_chain().await.expect("verify");
    assert!(
        matches!(hub_audit, HubAuditVerification::Intact { .. }),
        "{hub_audit:?}"
    );
}
