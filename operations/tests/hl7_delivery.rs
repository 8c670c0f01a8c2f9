//! Delivery of released results as HL7 v2.5.1 ORU^R01 over MLLP to a third-party receiver
//! (python-hl7's asyncio MLLP server, `tests/interop/receiver.py`), which validates every message
//! with hl7apy (strict, v2.5.1) as it arrives.
//!
//! The receiver is down at first, then answers a message slowly while the sender is stopped
//! mid-send (its task aborted, as a killed appliance stops), answers AE, then AR, drops the
//! connection without answering, and is too slow once for the sender's time-out. Afterwards every
//! released version arrived, each accepted once in effect (a repeat only with the same control id
//! and the same text), one patient's in order with the correction as `C` after its `F`, and every
//! message was valid.
//!
//! Every unit sent is checked with the NLM's `@lhncbc/ucum-lhc` (`tests/interop/ucum.js`).
//!
//! And the patient's identifiers a message carries are those the result was released under,
//! whatever the patient's record says when it is sent.
//!
//! Needs Python with hl7apy and hl7 (`INTEROP_TEST_PYTHON`, else `target/interop-venv`) and
//! node with ucum-lhc (`INTEROP_TEST_NODE_MODULES`, else `target/interop-node/node_modules`);
//! `scripts/test` installs both.

mod common;

use common::{add_user, released_run};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use appliance::config::default_indications;
use appliance::engine::EngineConfig;
use appliance::interop::destination::DestinationConfig;
use appliance::interop::mllp::Link;
use appliance::store::example_report::example_report;
use appliance::store::outbox::{MessageFormat, OutboxState, OutboxTarget};
use appliance::store::patients::{BirthDate, Mrn, NewPatient};
use appliance::store::results::{CorrectionReason, SignatureMeaning};
use appliance::store::users::Role;
use appliance::store::{Actor, RunId, Store};
use nmr_core::assay::{Call, CountCategory};
use operations::hl7v2::{Hl7Courier, Hl7Destination};
use operations::outbox::RetryPolicy;
use operations::{LoginThrottle, Operations, Requester};

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("INTEROP_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop-venv/bin/python")
}

/// Whether ucum-lhc finds every unit valid, and what it said.
fn ucum_valid(units: &[&str]) -> (bool, String) {
    let modules = std::env::var_os("INTEROP_TEST_NODE_MODULES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop-node/node_modules"),
        PathBuf::from,
    );
    let output = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/ucum.js"))
        .args(units)
        .env("NODE_PATH", &modules)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (scripts/test installs ucum-lhc): {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("\"status\""),
        "ucum-lhc did not run (NODE_PATH {}): {said}",
        modules.display()
    );
    (output.status.success(), said)
}

/// The receiver process, killed when dropped.
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_receiver(dir: &Path, script: &str, slow_s: f64) -> (Receiver, u16) {
    start_receiver_with(dir, script, slow_s, None).await
}

/// The receiver, over TLS with `tls`'s certificate and key files when given.
async fn start_receiver_with(
    dir: &Path,
    script: &str,
    slow_s: f64,
    tls: Option<(&Path, &Path)>,
) -> (Receiver, u16) {
    let port_file = dir.join("port");
    let python = python();
    let mut command = Command::new(&python);
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/receiver.py"))
        .arg(&port_file)
        .arg(dir.join("received.jsonl"))
        .arg(script)
        .arg(slow_s.to_string());
    if let Some((cert, key)) = tls {
        command.arg(cert).arg(key);
    }
    let child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start {} (run scripts/test, which installs hl7apy and hl7): {e}",
            python.display()
        )
    });
    let receiver = Receiver(child);
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            return (receiver, text.trim().parse().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the MLLP receiver did not start within 10 s");
}

fn received(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("received.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn report(per_7_5ml: f64) -> nmr_core::assay::CountReport {
    example_report(
        per_7_5ml,
        [per_7_5ml * 0.5, per_7_5ml * 2.0 + 1.0],
        CountCategory::Quantified,
        Some(Call::Unfavorable),
        false,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_results_arrive_once_in_order_through_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data"))
        .await
        .unwrap()
        .with_outbox(vec![OutboxTarget {
            name: "lis".into(),
            format: MessageFormat::Hl7v2,
        }]);
    let clinician = add_user(&store, "dr-lis", Role::Clinician).await;
    let admin = Requester::User(add_user(&store, "ada", Role::LabAdmin).await);
    // Patient A: a release (F), then a correction released (C); patients B and C: one each.
    let a = released_run(&store, &clinician, "LIS-1", &report(4.28)).await;
    store
        .correct_result(
            &clinician.actor(),
            a,
            &report(5.0),
            &CorrectionReason::parse("blood volume entered wrongly").unwrap(),
        )
        .await
        .unwrap();
    store
        .sign_result(&clinician, a, SignatureMeaning::Release)
        .await
        .unwrap();
    let b = released_run(&store, &clinician, "LIS-2", &report(12.5)).await;
    let c = released_run(&store, &clinician, "LIS-3", &report(0.1 + 0.2)).await;
    let mut settings = EngineConfig::new(default_indications().unwrap());
    settings.site.lab_name = "Example Lab & Co".into();
    settings.site.instrument_serial = "FC-TEST-1".into();
    let ops = Operations::new(
        store.clone(),
        settings,
        LoginThrottle::new(Duration::from_secs(60), 5),
    );
    let policy = RetryPolicy {
        first_delay: Duration::ZERO,
        ..RetryPolicy::default()
    };
    // The receiver is down: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let destination = Hl7Destination {
        name: "lis".into(),
        address: dead,
        link: Link::Plain,
        receiving_application: "LIS".into(),
        receiving_facility: "HOSP".into(),
        sending_facility: "ONC|LAB".into(),
        mrn_authority: "HOSP".into(),
        timeout: Duration::from_secs(1),
    };
    let mut courier = Hl7Courier {
        destination: destination.clone(),
    };
    for _ in 0..2 {
        let retried = ops
            .deliver_next(&mut courier, &policy)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(retried.state, OutboxState::Pending, "{retried:?}");
    }

    let (_receiver, port) = start_receiver(dir.path(), "slow,AE,AR,drop,slow", 2.0).await;
    courier.destination.address = format!("127.0.0.1:{port}");
    // Stopped mid-send: the receiver has the message and has not answered yet.
    let sending = {
        let ops = ops.clone();
        let mut courier = courier.clone();
        tokio::spawn(async move { ops.deliver_next(&mut courier, &policy).await })
    };
    for _ in 0..200 {
        if !received(dir.path()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sending.abort();
    assert!(sending.await.unwrap_err().is_cancelled());
    assert_eq!(received(dir.path()).len(), 1);

    // The sender again, until every message is delivered; a parked one is resent, as a lab admin
    // would after the cause was fixed.
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(
            rounds < 40,
            "not all delivered after 40 rounds: {:#?}",
            store.outbox_messages(None, 100).await.unwrap()
        );
        match ops.deliver_next(&mut courier, &policy).await.unwrap() {
            Some(message) if message.state == OutboxState::Parked => {
                ops.resend_message(&admin, message.id, "fixed at the LIS")
                    .await
                    .unwrap();
            }
            Some(_) => {}
            None => {
                let open = store
                    .outbox_messages(None, 100)
                    .await
                    .unwrap()
                    .iter()
                    .any(|m| m.state != OutboxState::Delivered);
                if !open {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    let outbox = store.outbox_messages(None, 100).await.unwrap();
    assert_eq!(outbox.len(), 4);
    let control_of: BTreeMap<String, (RunId, u32)> = outbox
        .iter()
        .map(|m| (m.control_id(), (m.run_id, m.attempts)))
        .collect();
    let log = received(dir.path());
    for line in &log {
        assert!(
            line["invalid"].is_null(),
            "hl7apy found: {}",
            line["invalid"]
        );
    }
    let answers: BTreeSet<&str> = log.iter().filter_map(|l| l["answer"].as_str()).collect();
    assert_eq!(
        answers,
        BTreeSet::from(["AA", "AE", "AR", "drop", "slow"]),
        "every failure was met"
    );
    // Repeats only with the same control id, and then with the same text.
    let mut text_of: BTreeMap<&str, &str> = BTreeMap::new();
    for line in &log {
        let id = line["control_id"].as_str().unwrap();
        let raw = line["raw"].as_str().unwrap();
        assert!(control_of.contains_key(id), "unknown control id {id}");
        assert_eq!(*text_of.entry(id).or_insert(raw), raw, "{id} changed");
    }
    // Each arrived and was accepted (AA, or the slow answer of an aborted send).
    let accepted: BTreeSet<&str> = log
        .iter()
        .filter(|l| matches!(l["answer"].as_str(), Some("AA" | "slow")))
        .map(|l| l["control_id"].as_str().unwrap())
        .collect();
    assert_eq!(accepted.len(), 4, "{log:#?}");
    // Patient A's correction, all C, arrived only after its F was accepted.
    let runs = |run: RunId| -> Vec<&String> {
        let mut ids: Vec<&String> = control_of
            .iter()
            .filter(|(_, (r, _))| *r == run)
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        ids
    };
    let [first, correction] = runs(a)[..] else {
        panic!("patient A has two messages")
    };
    let position = |id: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        log.iter()
            .position(|l| l["control_id"] == id && pred(l))
            .unwrap()
    };
    let first_accepted = position(first, &|l| l["answer"] == "AA");
    let correction_arrived = position(correction, &|_| true);
    assert!(first_accepted < correction_arrived, "{log:#?}");
    for line in &log {
        let statuses: Vec<&str> = line["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        let expected = if line["control_id"] == correction.as_str() {
            "C"
        } else {
            "F"
        };
        assert!(statuses.iter().all(|s| *s == expected), "{statuses:?}");
    }
    // The value went out as released, never re-rounded.
    let text = text_of[runs(c)[0].as_str()];
    assert!(text.contains("|NM|67568-6^") && text.contains("|0.30000000000000004|"));
    assert!(text_of[first.as_str()].contains("|4.28|/(7500.uL)^/(7500.uL)^UCUM|"));
    assert!(text.contains("|ONC\\F\\LAB|"), "{text}");
    assert!(text.contains("|Example Lab \\T\\ Co"), "{text}");
    assert_eq!(runs(b).len(), 1);

    // Every unit sent is valid UCUM by the NLM's ucum-lhc; the validator refuses a wrong one.
    let units: BTreeSet<String> = log
        .iter()
        .flat_map(|l| {
            let raw = l["raw"].as_str().unwrap().to_owned();
            raw.split('\r')
                .filter(|s| s.starts_with("OBX|"))
                .filter_map(|s| {
                    s.split('|')
                        .nth(6)
                        .map(|u| u.split('^').next().unwrap_or("").to_owned())
                })
                .filter(|u| !u.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        units,
        BTreeSet::from(["/(7500.uL)".to_owned(), "/mL".to_owned(), "s-1".to_owned()])
    );
    let (valid, said) = ucum_valid(&units.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(valid, "{said}");
    let (valid, said) = ucum_valid(&["/[7.5mL]"]);
    assert!(!valid && said.contains("invalid"), "{said}");
    store.close().await;
}

/// A certificate authority made for one test: its certificate as PEM, and an issuer to sign with.
fn test_ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate = params.self_signed(&key).unwrap();
    (certificate.pem(), rcgen::Issuer::new(params, key))
}

/// MLLP over TLS to python-hl7's receiver behind Python's ssl with a certificate our test CA
/// signed for `localhost`: with another CA configured nothing is delivered (the attempt is retried
/// and its outcome names the TLS failure, and the receiver saw no message); with the right CA
/// the message is delivered, hl7apy-valid, once. A CA file that is missing or holds no
/// certificate is refused when the configuration is read, naming `ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_only_a_receiver_the_configured_ca_signed_gets_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, ca) = test_ca("Ferrocount test LIS CA");
    let (other_ca_pem, _) = test_ca("Someone else's CA");
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_file = file("lis-ca.pem", &ca_pem);
    let other_ca_file = file("other-ca.pem", &other_ca_pem);
    let cert_file = file("lis.pem", &server.pem());
    let key_file = file("lis.key", &server_key.serialize_pem());
    let (_receiver, port) =
        start_receiver_with(dir.path(), "", 0.0, Some((&cert_file, &key_file))).await;

    let configured = |ca_file: Option<PathBuf>| DestinationConfig::Hl7v2 {
        name: Some("lis".into()),
        address: format!("localhost:{port}"),
        receiving_application: "LIS".into(),
        receiving_facility: "HOSP".into(),
        sending_facility: "ONCLAB".into(),
        mrn_authority: "HOSP".into(),
        timeout_ms: 5_000,
        tls: true,
        ca_file,
        server_name: None,
    };
    for (ca_file, says) in [
        (None, "ca_file is missing"),
        (Some(dir.path().join("no-such-ca.pem")), "cannot be read"),
        (
            Some(file("empty.pem", "not a certificate\n")),
            "holds no certificate",
        ),
    ] {
        let error = appliance::interop::destination::check(&[configured(ca_file)]).unwrap_err();
        assert!(error.contains("ca_file") && error.contains(says), "{error}");
    }

    let store = Store::open(&dir.path().join("data"))
        .await
        .unwrap()
        .with_outbox(vec![OutboxTarget {
            name: "lis".into(),
            format: MessageFormat::Hl7v2,
        }]);
    let clinician = add_user(&store, "dr-tls", Role::Clinician).await;
    released_run(&store, &clinician, "TLS-1", &report(7.0)).await;
    let ops = Operations::new(
        store.clone(),
        EngineConfig::new(default_indications().unwrap()),
        LoginThrottle::new(Duration::from_secs(60), 5),
    );
    let policy = RetryPolicy {
        first_delay: Duration::ZERO,
        ..RetryPolicy::default()
    };
    let courier = |ca_file: PathBuf| Hl7Courier {
        destination: Hl7Destination::configured(&[configured(Some(ca_file))])
            .unwrap()
            .remove(0),
    };

    let refused = ops
        .deliver_next(&mut courier(other_ca_file), &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refused.state, OutboxState::Pending, "retried, not parked");
    let outcome = refused.last_outcome.unwrap_or_default();
    assert!(
        outcome.contains("TLS handshake") && outcome.contains("certificate"),
        "{outcome}"
    );
    assert!(
        received(dir.path()).is_empty(),
        "nothing reached the receiver"
    );

    let delivered = ops
        .deliver_next(&mut courier(ca_file), &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivered.state, OutboxState::Delivered, "{delivered:?}");
    let log = received(dir.path());
    assert_eq!(log.len(), 1, "{log:#?}");
    assert!(
        log[0]["invalid"].is_null(),
        "hl7apy found: {}",
        log[0]["invalid"]
    );
    assert_eq!(log[0]["control_id"], delivered.control_id());
    store.close().await;
}

/// The patient's identifiers a message carries are the ones the result was released under: a
/// change to the patient's record after the release (here written straight into the database,
/// as a demographic edit or a repair would) does not reach the ORU's PID or the FHIR subject of a
/// message sent later; a correction released after the change carries the record as it stands
/// at that release.
#[tokio::test]
async fn messages_carry_the_patients_identifiers_as_released() {
    use appliance::store::patients::PersonName;
    use operations::fhir::FhirDestination;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data"))
        .await
        .unwrap()
        .with_outbox(vec![
            OutboxTarget {
                name: "lis".into(),
                format: MessageFormat::Hl7v2,
            },
            OutboxTarget {
                name: "ehr".into(),
                format: MessageFormat::Fhir,
            },
        ]);
    let clinician = add_user(&store, "dr-ids", Role::Clinician).await;
    let mut registered = NewPatient::new(
        Mrn::parse("IDS-1").unwrap(),
        BirthDate::parse("1961-04-23", time::macros::date!(2026 - 01 - 01)).unwrap(),
    );
    registered.name = Some(PersonName::parse("name", "Doe").unwrap());
    store
        .patient_by_mrn_or_add(&Actor::Appliance, &registered)
        .await
        .unwrap();
    let run = released_run(&store, &clinician, "IDS-1", &report(7.0)).await;
    // The record changes after the release, before anything was sent.
    sqlx::query("UPDATE patients SET name = 'Roe', birth_date = '1970-01-01' WHERE mrn = 'IDS-1'")
        .execute(store.pool())
        .await
        .unwrap();
    let ops = Operations::new(
        store.clone(),
        EngineConfig::new(default_indications().unwrap()),
        LoginThrottle::new(Duration::from_secs(60), 5),
    );
    let lis = Hl7Destination {
        name: "lis".into(),
        address: "127.0.0.1:9".into(),
        link: Link::Plain,
        receiving_application: "LIS".into(),
        receiving_facility: "HOSP".into(),
        sending_facility: "ONCLAB".into(),
        mrn_authority: "HOSP".into(),
        timeout: Duration::from_secs(1),
    };
    let ehr = FhirDestination {
        name: "ehr".into(),
        base_url: "https://ehr.invalid/r4".into(),
        token_file: dir.path().join("token"),
        ca_file: None,
        mrn_system: "urn:oid:1.2.3".into(),
        timeout: Duration::from_secs(1),
    };
    // What each message of a version says about the patient: the ORU's PID, the FHIR subject.
    let said = |version: u32| {
        let (ops, store, lis, ehr) = (ops.clone(), store.clone(), lis.clone(), ehr.clone());
        async move {
            let messages = store.outbox_messages(None, 100).await.unwrap();
            let mut pid = None;
            let mut subject = None;
            for message in &messages {
                if store
                    .result_version(message.result_id)
                    .await
                    .unwrap()
                    .version
                    != version
                {
                    continue;
                }
                match message.format {
                    MessageFormat::Hl7v2 => {
                        let oru = ops.oru_r01_of(message, &lis).await.unwrap();
                        pid = oru
                            .split('\r')
                            .find(|s| s.starts_with("PID|"))
                            .map(str::to_owned);
                    }
                    MessageFormat::Fhir => {
                        let bundle = ops.fhir_bundle_of(message, &ehr).await.unwrap();
                        let bundle = serde_json::to_value(&bundle).unwrap();
                        subject = bundle["entry"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|e| e["resource"]["resourceType"] == "DiagnosticReport")
                            .and_then(|e| e["resource"]["subject"]["reference"].as_str())
                            .map(str::to_owned);
                    }
                }
            }
            (pid.expect("an ORU"), subject.expect("a Bundle"))
        }
    };
    let (pid, subject) = said(1).await;
    assert_eq!(pid, "PID|1||IDS-1^^^HOSP^MR||Doe||19610423");
    assert_eq!(
        subject,
        "Patient?identifier=urn:oid:1.2.3|IDS-1&birthdate=1961-04-23"
    );
    // The served view says the same.
    let viewer = Requester::User(add_user(&store, "dr-view", Role::Clinician).await);
    let served = serde_json::to_value(ops.fhir_report(&viewer, run).await.unwrap()).unwrap();
    assert_eq!(served["subject"]["identifier"]["value"], "IDS-1");

    // A correction released now takes the record as it stands at its release.
    store
        .correct_result(
            &clinician.actor(),
            run,
            &report(8.0),
            &CorrectionReason::parse("blood volume entered wrongly").unwrap(),
        )
        .await
        .unwrap();
    store
        .sign_result(&clinician, run, SignatureMeaning::Release)
        .await
        .unwrap();
    let (pid, subject) = said(2).await;
    assert_eq!(pid, "PID|1||IDS-1^^^HOSP^MR||Roe||19700101");
    assert!(subject.ends_with("&birthdate=1970-01-01"), "{subject}");
    // The first release's identifiers are kept as they were.
    assert_eq!(said(1).await.0, "PID|1||IDS-1^^^HOSP^MR||Doe||19610423");
    let changed = sqlx::query("UPDATE released_identifiers SET name = 'Poe'")
        .execute(store.pool())
        .await;
    assert!(changed.is_err(), "the identifiers released under are fixed");
    store.close().await;
}
