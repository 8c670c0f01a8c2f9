//! Enrolment and ingestion against a real PostgreSQL server (`HUB_TEST_DATABASE_URL`, started
//! by scripts/test): each test on a database of its own.

mod support;

use hub::store::audit::{HubActor, HubAuditVerification};
use hub::store::fleet::{CredentialRefusal, EnrolRefusal};
use hub::store::ingest::IngestOutcome;
use hub_protocol::message::{Body, IngestAccepted, MessageId};
use support::{batch, enrolled, fresh_store, heartbeats, one_of_each};

fn accepted(outcome: IngestOutcome) -> IngestAccepted {
    match outcome {
        IngestOutcome::Accepted(accepted) => accepted,
        other => panic!("expected the batch accepted, got {other:?}"),
    }
}

async fn count(store: &hub::HubStore, table: &str) -> i64 {
    // `table` is one of the tests' own literals.
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .expect("counting")
}

async fn audit_actions(store: &hub::HubStore) -> Vec<String> {
    let mut actions: Vec<String> = store
        .audit_entries(1000)
        .await
        .expect("audit")
        .into_iter()
        .map(|row| row.action)
        .collect();
    actions.reverse();
    actions
}

async fn assert_chain_intact(store: &hub::HubStore) {
    match store.verify_audit_chain().await.expect("verifying") {
        HubAuditVerification::Intact { rows, .. } => assert!(rows > 0),
        broken => panic!("the hub's audit chain is broken: {broken:?}"),
    }
}

#[tokio::test]
async fn every_kind_is_stored_exactly_as_sent() {
    let store = fresh_store().await;
    let (_, appliance) = enrolled(&store, "SN-1").await;
    let messages = one_of_each("SN-1", 1);
    let outcome = store.ingest(&appliance, &batch(messages.clone())).await;
    assert_eq!(
        accepted(outcome.expect("store")),
        IngestAccepted {
            stored: 5,
            repeated: 0,
            last_sequence: 5
        }
    );
    let Body::ReleasedResult(sent) = &messages[0].body else {
        unreachable!()
    };
    let row = sqlx::query_as::<_, (f64, f64, f64, String, String, String)>(
        "SELECT per_7_5ml, per_7_5ml_ci95_low, per_7_5ml_ci95_high, report_json, drawn_at,
                patient_mrn FROM released_results",
    )
    .fetch_one(store.pool())
    .await
    .expect("the result");
    assert_eq!(row.0.to_bits(), sent.per_7_5ml.to_bits());
    assert_eq!(row.1.to_bits(), sent.per_7_5ml_ci95_low.to_bits());
    assert_eq!(row.2.to_bits(), sent.per_7_5ml_ci95_high.to_bits());
    assert_eq!(row.3, sent.report_json);
    assert_eq!(row.4, sent.drawn_at.as_str());
    assert_eq!(row.5, sent.patient.mrn);
    let signatures = sqlx::query_as::<_, (i32, String, String, String)>(
        "SELECT position, printed_name, meaning, signed_at FROM result_signatures ORDER BY position",
    )
    .fetch_all(store.pool())
    .await
    .expect("signatures");
    let expected: Vec<_> = (1..)
        .zip(&sent.signatures)
        .map(|(n, s)| {
            (
                n,
                s.printed_name.clone(),
                s.meaning.clone(),
                s.signed_at.as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(signatures, expected);
    let Body::Measurement(measurement) = &messages[1].body else {
        unreachable!()
    };
    let train: Vec<u8> = sqlx::query_scalar("SELECT train FROM measurements")
        .fetch_one(store.pool())
        .await
        .expect("the train");
    assert_eq!(train, measurement.train);
    let Body::QcResult(qc) = &messages[2].body else {
        unreachable!()
    };
    let value: f64 = sqlx::query_scalar("SELECT value FROM qc_results")
        .fetch_one(store.pool())
        .await
        .expect("the QC value");
    assert_eq!(value.to_bits(), qc.value.to_bits());
    for table in ["calibrations", "heartbeats"] {
        assert_eq!(count(&store, table).await, 1, "{table}");
    }
    assert_eq!(
        audit_actions(&store).await,
        ["enrolment.issue", "appliance.enrol", "ingest.batch"]
    );
    assert_chain_intact(&store).await;
}

#[tokio::test]
async fn the_same_message_twice_is_acknowledged_and_stored_once() {
    let store = fresh_store().await;
    let (_, appliance) = enrolled(&store, "SN-2").await;
    let messages = one_of_each("SN-2", 1);
    accepted(
        store
            .ingest(&appliance, &batch(messages.clone()))
            .await
            .expect("store"),
    );
    let again = accepted(
        store
            .ingest(&appliance, &batch(messages))
            .await
            .expect("store"),
    );
    assert_eq!(
        again,
        IngestAccepted {
            stored: 0,
            repeated: 5,
            last_sequence: 5
        }
    );
    // A batch that overlaps: two held, one new.
    let overlap = accepted(
        store
            .ingest(&appliance, &batch(heartbeats("SN-2", [6, 7, 8])))
            .await
            .expect("store"),
    );
    assert_eq!(overlap.stored, 3);
    let overlap = accepted(
        store
            .ingest(&appliance, &batch(heartbeats("SN-2", [7, 8, 9])))
            .await
            .expect("store"),
    );
    assert_eq!(
        (overlap.stored, overlap.repeated, overlap.last_sequence),
        (1, 2, 9)
    );
    assert_eq!(count(&store, "ingested_messages").await, 9);
    assert_eq!(count(&store, "heartbeats").await, 5);
}

#[tokio::test]
async fn a_gap_is_refused_with_the_expected_sequence_and_nothing_of_the_batch_is_stored() {
    let store = fresh_store().await;
    let (_, appliance) = enrolled(&store, "SN-3").await;
    accepted(
        store
            .ingest(&appliance, &batch(heartbeats("SN-3", [1, 2])))
            .await
            .expect("store"),
    );
    // 3 follows, 5 does not: the whole batch is refused, 3 included.
    let outcome = store
        .ingest(&appliance, &batch(heartbeats("SN-3", [3, 5])))
        .await
        .expect("store");
    let IngestOutcome::Refused(refusal) = outcome else {
        panic!("a gap must be refused, got {outcome:?}")
    };
    assert_eq!(refusal.expected_sequence, 3);
    assert!(
        refusal.error.contains("next one expected is 4"),
        "{}",
        refusal.error
    );
    assert_eq!(store.last_sequence(appliance.id).await.expect("store"), 2);
    assert_eq!(count(&store, "heartbeats").await, 2);
    assert_eq!(
        audit_actions(&store).await.last().map(String::as_str),
        Some("ingest.refuse")
    );
    // The sender resends from the expected one and catches up.
    let caught_up = accepted(
        store
            .ingest(&appliance, &batch(heartbeats("SN-3", 3..=5)))
            .await
            .expect("store"),
    );
    assert_eq!(caught_up.last_sequence, 5);
    assert_chain_intact(&store).await;
}

#[tokio::test]
async fn a_held_id_or_sequence_with_other_content_is_refused_and_audited() {
    let store = fresh_store().await;
    let (_, appliance) = enrolled(&store, "SN-4").await;
    let messages = heartbeats("SN-4", [1, 2]);
    accepted(
        store
            .ingest(&appliance, &batch(messages.clone()))
            .await
            .expect("store"),
    );

    let mut changed = messages[1].clone();
    let Body::Heartbeat(beat) = &mut changed.body else {
        unreachable!()
    };
    beat.board_status = "changed".into();
    let outcome = store
        .ingest(&appliance, &batch(vec![changed]))
        .await
        .expect("store");
    let IngestOutcome::Refused(refusal) = outcome else {
        panic!("other content under a held id must be refused, got {outcome:?}")
    };
    assert!(refusal.error.contains("never changes"), "{}", refusal.error);
    assert_eq!(refusal.expected_sequence, 3);

    let mut other_id = messages[1].clone();
    other_id.id = MessageId::parse("SN-4-other").expect("id");
    let outcome = store
        .ingest(&appliance, &batch(vec![other_id]))
        .await
        .expect("store");
    assert!(
        matches!(&outcome, IngestOutcome::Refused(r) if r.error.contains("already held under another message id")),
        "{outcome:?}"
    );
    let status: String =
        sqlx::query_scalar("SELECT board_status FROM heartbeats WHERE pending_messages = 2")
            .fetch_one(store.pool())
            .await
            .expect("the stored heartbeat");
    assert_eq!(status, "ready");
    let refusals = audit_actions(&store)
        .await
        .into_iter()
        .filter(|action| action == "ingest.refuse")
        .count();
    assert_eq!(refusals, 2);

    // Another appliance cannot take over an id either.
    let (_, other) = enrolled(&store, "SN-5").await;
    let mut stolen = heartbeats("SN-4", [1]);
    stolen[0].sequence = 1;
    let outcome = store.ingest(&other, &batch(stolen)).await.expect("store");
    assert!(matches!(outcome, IngestOutcome::Refused(_)), "{outcome:?}");
    assert_chain_intact(&store).await;
}

#[tokio::test]
async fn a_record_the_hub_holds_cannot_be_changed_or_deleted() {
    let store = fresh_store().await;
    let (_, appliance) = enrolled(&store, "SN-6").await;
    accepted(
        store
            .ingest(&appliance, &batch(one_of_each("SN-6", 1)))
            .await
            .expect("store"),
    );
    for statement in [
        "UPDATE measurements SET train = '\\x00'",
        "DELETE FROM released_results",
        "UPDATE qc_results SET value = 0",
        "DELETE FROM ingested_messages",
        "UPDATE audit_log SET reason = 'x'",
    ] {
        let refused = sqlx::raw_sql(statement)
            .execute(store.pool())
            .await
            .expect_err(statement);
        assert!(
            refused.to_string().contains("append-only"),
            "{statement}: {refused}"
        );
    }
}

#[tokio::test]
async fn an_enrolment_code_works_once_and_only_before_it_expires() {
    let store = fresh_store().await;
    let code = store
        .issue_enrolment_code(&HubActor::Console, "Ward 1", time::Duration::hours(1))
        .await
        .expect("issuing");
    assert_eq!(
        store
            .enrol("AAAA-BBBB-CCCC-DDDD", "SN-7")
            .await
            .expect("store"),
        Err(EnrolRefusal::UnknownCode)
    );
    // Typed in lower case without dashes, it is the same code.
    let typed = code.code.replace('-', "").to_lowercase();
    let enrolled = store
        .enrol(&typed, "SN-7")
        .await
        .expect("store")
        .expect("enrolled");
    assert_eq!(enrolled.name, "Ward 1");
    assert!(enrolled.credential.starts_with("fch_"));
    assert_eq!(
        store.enrol(&code.code, "SN-8").await.expect("store"),
        Err(EnrolRefusal::CodeUsed)
    );
    let second = store
        .issue_enrolment_code(&HubActor::Console, "Ward 2", time::Duration::hours(1))
        .await
        .expect("issuing");
    assert_eq!(
        store.enrol(&second.code, "SN-7").await.expect("store"),
        Err(EnrolRefusal::SerialEnrolled("SN-7".into()))
    );
    let expired = store
        .issue_enrolment_code(&HubActor::Console, "Ward 3", time::Duration::seconds(1))
        .await
        .expect("issuing");
    sqlx::raw_sql("SELECT pg_sleep(1.1)")
        .execute(store.pool())
        .await
        .expect("waiting");
    assert_eq!(
        store.enrol(&expired.code, "SN-9").await.expect("store"),
        Err(EnrolRefusal::CodeExpired)
    );
    // Only the hashes are stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT code_hash FROM enrolment_codes")
        .fetch_all(store.pool())
        .await
        .expect("codes");
    assert!(
        stored
            .iter()
            .all(|hash| !hash.contains(&typed.to_uppercase()))
    );
    let credentials: Vec<String> = sqlx::query_scalar("SELECT credential_hash FROM appliances")
        .fetch_all(store.pool())
        .await
        .expect("credentials");
    assert!(credentials.iter().all(|hash| hash != &enrolled.credential));
    assert_chain_intact(&store).await;
}

#[tokio::test]
async fn a_revoked_appliance_is_refused_with_the_reason_and_its_records_stay() {
    let store = fresh_store().await;
    let (enrolment, appliance) = enrolled(&store, "SN-10").await;
    accepted(
        store
            .ingest(&appliance, &batch(heartbeats("SN-10", [1])))
            .await
            .expect("store"),
    );
    store
        .revoke(&HubActor::Console, "SN-10", "stolen from ward 3")
        .await
        .expect("revoking");
    match store
        .authenticate(&enrolment.credential)
        .await
        .expect("store")
    {
        Err(CredentialRefusal::Revoked { serial, reason, .. }) => {
            assert_eq!(
                (serial.as_str(), reason.as_str()),
                ("SN-10", "stolen from ward 3")
            );
        }
        other => panic!("a revoked credential must be refused, got {other:?}"),
    }
    // A batch in flight when the appliance was revoked is not taken either.
    let outcome = store
        .ingest(&appliance, &batch(heartbeats("SN-10", [2])))
        .await
        .expect("store");
    assert!(
        matches!(outcome, IngestOutcome::Unreadable(_)),
        "{outcome:?}"
    );
    assert_eq!(count(&store, "heartbeats").await, 1);
    assert!(
        store
            .revoke(&HubActor::Console, "SN-10", "again")
            .await
            .is_err()
    );
    assert_eq!(
        store.authenticate("fch_unknown").await.expect("store"),
        Err(CredentialRefusal::Unknown)
    );
    // The serial may enrol again, with a new code and a new credential.
    let (again, _) = enrolled(&store, "SN-10").await;
    assert_ne!(again.credential, enrolment.credential);
    assert!(
        audit_actions(&store)
            .await
            .contains(&"appliance.revoke".to_owned())
    );
    assert_chain_intact(&store).await;
}

#[tokio::test]
async fn concurrent_batches_of_one_appliance_keep_one_unbroken_sequence() {
    let store = fresh_store().await;
    let (_, appliance) = enrolled(&store, "SN-11").await;
    // The same three batches sent twice at once (a sender retrying while the first attempt is
    // still in flight): every message is stored once, in order, whatever the interleaving.
    let batches: Vec<_> = [1..=10, 11..=20, 21..=30]
        .into_iter()
        .map(|range| batch(heartbeats("SN-11", range)))
        .collect();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (store, appliance, batches) = (store.clone(), appliance.clone(), batches.clone());
        tasks.push(tokio::spawn(async move {
            for batch in &batches {
                store.ingest(&appliance, batch).await.expect("store");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(count(&store, "heartbeats").await, 30);
    assert_eq!(store.last_sequence(appliance.id).await.expect("store"), 30);
    assert_chain_intact(&store).await;
}
