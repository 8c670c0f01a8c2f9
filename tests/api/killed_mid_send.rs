//! The appliance killed mid-send, as a real killed process: `ferrocount serve` with an HL7 v2
//! destination at a third-party MLLP receiver (python-hl7's asyncio server, validating with
//! hl7apy: `operations/tests/interop/receiver.py`) that holds every acknowledgement for a while,
//! shorter than the destination's `timeout_ms`. Results of two patients are released through the
//! API (one corrected and released again); while the receiver holds a message's acknowledgement
//! the process gets SIGKILL; it is started again on the same data directory.
//!
//! Afterwards every released version was accepted (acknowledged) by the receiver — none lost —
//! each in effect once (a message arrives again only with its control id and the same text), one
//! patient's in release order (a message is sent only after the one before it was
//! acknowledged), the correction as `C` after its `F`, every message hl7apy-valid, and
//! `ferrocount audit verify` finds the audit trail intact. The message in flight at the kill was
//! left pending and sent again after the restart: a sender that marked a message delivered before
//! its acknowledgement would lose it here.
//!
//! Needs Python with hl7apy and hl7 (`INTEROP_TEST_PYTHON`, else `target/interop-venv`);
//! `scripts/test` installs them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use appliance::assembly::ApplianceBuilder;
use appliance::config::ApplianceConfig;
use appliance::store::calibrations::CalibrationDecision;
use appliance::store::outbox::OutboxState;
use appliance::store::users::{NewPassword, NewUser, Role, Username};
use appliance::store::{Actor, PatientId, RunId, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, ServeProcess, record_passing_qc};

/// How long the receiver holds each acknowledgement (the destination waits up to 20 s).
const HOLD_S: f64 = 2.5;

fn python() -> PathBuf {
    std::env::var_os("INTEROP_TEST_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python"),
        PathBuf::from,
    )
}

/// The receiver process, killed when dropped.
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the receiver in `dir`, holding every acknowledgement `HOLD_S`; its port.
async fn start_receiver(dir: &Path) -> (Receiver, u16) {
    let port_file = dir.join("port");
    let python = python();
    let script = vec!["slow"; 20].join(",");
    let child = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("operations/tests/interop/receiver.py"))
        .arg(&port_file)
        .arg(dir.join("received.jsonl"))
        .arg(script)
        .arg(HOLD_S.to_string())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} (run scripts/test, which installs hl7apy and hl7): {e}",
                python.display()
            )
        });
    let receiver = Receiver(child);
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            return (receiver, text.trim().parse().expect("a port"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the MLLP receiver did not start within 10 s");
}

/// The JSON lines of one of the receiver's logs (`received.jsonl` or `received.jsonl.acks`).
fn lines(dir: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// Control ids the receiver acknowledged, with when.
fn acknowledged(dir: &Path) -> Vec<(String, f64)> {
    lines(dir, "received.jsonl.acks")
        .iter()
        .filter(|l| l["code"] == "AA")
        .map(|l| {
            (
                l["control_id"].as_str().expect("control id").to_owned(),
                l["at"].as_f64().expect("at"),
            )
        })
        .collect()
}

/// The service's API as one user with a token.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn send(&self, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        let request = match body {
            Some(body) => self.client.post(url).json(body),
            None => self.client.get(url),
        };
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Adds a user of `role` before the service starts; their token.
async fn user_with_token(store: &Store, name: &str, role: Role) -> String {
    let user = store
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
        .expect("user added");
    store
        .create_api_token(&Actor::Appliance, user.id, "kill test")
        .await
        .expect("token")
        .0
}

/// Starts a simulated run for `mrn` through the API and waits until its result awaits release.
async fn finished_run(operator: &Api, mrn: &str, accession: &str, cells: f64) -> i64 {
    let (status, ticket) = operator
        .send(
            "/api/v1/runs",
            Some(&json!({ "patient_mrn": mrn, "birth_date": "1961-04-23", "accession": accession,
                          "blood_ml": 7.5, "indication": "breast", "simulate": { "cells": cells } })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{ticket}");
    let id = ticket["id"].as_i64().expect("run id");
    for _ in 0..600 {
        let (_, run) = operator.send(&format!("/api/v1/runs/{id}"), None).await;
        match run["state"].as_str() {
            Some("awaiting_release") => return id,
            Some("queued" | "running" | "awaiting_tube") => {}
            other => panic!("run {id} ended {other:?}: {run}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {id} did not finish within 60 s");
}

async fn release(clinician: &Api, id: i64) {
    let (status, signed) = clinician
        .send(
            &format!("/api/v1/runs/{id}/release"),
            Some(
                &json!({ "password": PASSWORD, "printed_name": "claire Tester",
                          "meaning": "release" }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert_eq!(signed["state"], "released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_appliance_loses_no_result_and_sends_each_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (_receiver, port) = start_receiver(dir.path()).await;
    let config = dir.path().join("ferrocount.toml");
    std::fs::write(
        &config,
        format!(
            "[[destinations]]\nkind = \"hl7v2\"\nname = \"lis\"\naddress = \"127.0.0.1:{port}\"\n\
             receiving_application = \"LIS\"\nreceiving_facility = \"HOSP\"\n\
             sending_facility = \"ONCLAB\"\nmrn_authority = \"HOSP\"\ntimeout_ms = 20000\n"
        ),
    )
    .unwrap();

    // Users and this morning's passing QC, before the first start (as the other tests set it up).
    let store = Store::open(&data_dir).await.unwrap();
    let operator_token = user_with_token(&store, "olga", Role::Operator).await;
    let clinician_token = user_with_token(&store, "claire", Role::Clinician).await;
    let admin_token = user_with_token(&store, "lars", Role::LabAdmin).await;
    record_passing_qc(&store).await;
    store.close().await;
    // The simulated lot's calibration, measured by the engine and approved by a lab admin (a
    // patient run needs an approved calibration), on the same data directory.
    let appliance = ApplianceBuilder::new(ApplianceConfig {
        data_dir: data_dir.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ApplianceConfig::default()
    })
    .build()
    .await
    .unwrap();
    let calibration = appliance.engine.calibrate_simulated_lot().await.unwrap();
    appliance
        .store
        .decide_calibration(
            &Actor::Appliance,
            calibration.id,
            CalibrationDecision::Approve,
            "kill test: the simulated lot's calibration",
        )
        .await
        .unwrap();
    appliance.shutdown().await;

    let mut server = ServeProcess::start(&data_dir, Some(&config)).await;
    let api = |token: &str| Api {
        client: reqwest::Client::new(),
        base: server.base.clone(),
        token: token.to_owned(),
    };
    let (operator, clinician) = (api(&operator_token), api(&clinician_token));
    // Patient 1: runs A and C, A corrected; patient 2: runs B and D.
    let a = finished_run(&operator, "KILL-1", "KILL-1-A", 12.0).await;
    let b = finished_run(&operator, "KILL-2", "KILL-2-B", 30.0).await;
    let c = finished_run(&operator, "KILL-1", "KILL-1-C", 4.0).await;
    let d = finished_run(&operator, "KILL-2", "KILL-2-D", 60.0).await;
    release(&clinician, a).await;
    release(&clinician, b).await;
    release(&clinician, c).await;
    let (status, corrected) = clinician
        .send(
            &format!("/api/v1/runs/{a}/corrections"),
            Some(
                &json!({ "blood_ml": 5.0, "reason": "processed volume entered wrongly",
                          "password": PASSWORD, "printed_name": "claire Tester" }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{corrected}");
    release(&clinician, a).await;
    release(&clinician, d).await;

    // SIGKILL while the receiver holds a message's acknowledgement: the next message to arrive
    // after the releases (there is one: D's was written by the last release), and not the first
    // (so that one was delivered before the kill).
    let before = lines(dir.path(), "received.jsonl").len().max(1);
    let mut in_flight = None;
    for _ in 0..1500 {
        let received = lines(dir.path(), "received.jsonl");
        if received.len() > before {
            server.kill();
            in_flight = received[before]["control_id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let in_flight = in_flight.expect("a message arrived within 30 s of the releases");
    assert!(
        !acknowledged(dir.path())
            .iter()
            .any(|(id, _)| *id == in_flight),
        "{in_flight} was killed before its acknowledgement"
    );
    let store = Store::open(&data_dir).await.unwrap();
    let outbox = store.outbox_messages(None, 100).await.unwrap();
    let delivered_before_kill: Vec<String> = outbox
        .iter()
        .filter(|m| m.state == OutboxState::Delivered)
        .map(|m| m.control_id())
        .collect();
    assert!(!delivered_before_kill.is_empty(), "{outbox:#?}");
    let killed = outbox
        .iter()
        .find(|m| m.control_id() == in_flight)
        .expect("the message in flight is in the outbox");
    assert_eq!(
        killed.state,
        OutboxState::Pending,
        "not delivered before the acknowledgement: {killed:?}"
    );
    store.close().await;

    // Started again on the same data directory: the sender carries on until all are delivered
    // (the outbox as a lab admin sees it).
    let server = ServeProcess::start(&data_dir, Some(&config)).await;
    let admin = Api {
        client: reqwest::Client::new(),
        base: server.base.clone(),
        token: admin_token,
    };
    let mut all_delivered = false;
    for _ in 0..1200 {
        let (status, page) = admin.send("/api/v1/outbox?state=delivered", None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if page["messages"].as_array().map_or(0, Vec::len) == 5 {
            all_delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.terminate();
    let (status, log) = server.wait_with_log();
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}\n{log}");
    let received = lines(dir.path(), "received.jsonl");
    assert!(all_delivered, "not all delivered: {received:#?}");

    let store = Store::open(&data_dir).await.unwrap();
    let outbox = store.outbox_messages(None, 100).await.unwrap();
    assert_eq!(outbox.len(), 5, "one message per release: {outbox:#?}");
    assert!(
        outbox.iter().all(|m| m.state == OutboxState::Delivered),
        "{outbox:#?}"
    );
    // Each message: its run, its patient, its version (F for the first release, C for A's second).
    let mut messages: Vec<(String, RunId, PatientId, u32)> = Vec::new();
    for m in &outbox {
        let version = store.result_version(m.result_id).await.unwrap().version;
        messages.push((m.control_id(), m.run_id, m.patient_id, version));
    }
    messages.sort();
    let control_ids: BTreeSet<&str> = messages.iter().map(|m| m.0.as_str()).collect();

    // Every message valid, of a released result, and a repeat only with its control id and text.
    let mut text_of: BTreeMap<&str, &str> = BTreeMap::new();
    for line in &received {
        assert!(
            line["invalid"].is_null(),
            "hl7apy found: {}",
            line["invalid"]
        );
        let id = line["control_id"].as_str().unwrap();
        assert!(control_ids.contains(id), "unknown control id {id}");
        let raw = line["raw"].as_str().unwrap();
        assert_eq!(*text_of.entry(id).or_insert(raw), raw, "{id} changed");
    }
    // The message in flight at the kill was sent again after the restart; the others, delivered
    // before the kill or sent after the restart, once.
    let arrivals = |id: &str| received.iter().filter(|l| l["control_id"] == id).count();
    for id in &control_ids {
        let expected = if *id == in_flight { 2 } else { 1 };
        assert_eq!(arrivals(id), expected, "{id}: {received:#?}");
    }
    // None lost: every message acknowledged.
    let acks = acknowledged(dir.path());
    let first_ack: BTreeMap<&str, f64> =
        acks.iter().fold(BTreeMap::new(), |mut first, (id, at)| {
            first.entry(id.as_str()).or_insert(*at);
            first
        });
    assert_eq!(
        first_ack.keys().copied().collect::<BTreeSet<_>>(),
        control_ids,
        "every released result was accepted"
    );
    println!(
        "killed with {in_flight} in flight, {delivered_before_kill:?} delivered before: {} \
         arrivals and {} acknowledgements of {} messages",
        received.len(),
        acks.len(),
        messages.len()
    );
    // In release order per patient: a message arrives only after the one before it was accepted.
    let first_arrival = |id: &str| {
        received
            .iter()
            .find(|l| l["control_id"] == id)
            .and_then(|l| l["at"].as_f64())
            .unwrap()
    };
    for patient in messages.iter().map(|m| m.2).collect::<BTreeSet<_>>() {
        let theirs: Vec<&(String, RunId, PatientId, u32)> =
            messages.iter().filter(|m| m.2 == patient).collect();
        for pair in theirs.windows(2) {
            assert!(
                first_ack[pair[0].0.as_str()] <= first_arrival(&pair[1].0),
                "{} arrived before {} was accepted: {received:#?}",
                pair[1].0,
                pair[0].0
            );
        }
    }
    // Release order: A (F), B, C, A's correction (C), D.
    let runs: Vec<(i64, u32)> = messages.iter().map(|m| (m.1.0, m.3)).collect();
    assert_eq!(runs, [(a, 1), (b, 1), (c, 1), (a, 2), (d, 1)]);
    for (id, _, _, version) in &messages {
        let statuses: BTreeSet<&str> = received
            .iter()
            .filter(|l| l["control_id"] == id.as_str())
            .flat_map(|l| l["statuses"].as_array().unwrap())
            .map(|s| s.as_str().unwrap())
            .collect();
        let expected = if *version == 1 { "F" } else { "C" };
        assert_eq!(statuses, BTreeSet::from([expected]), "{id}");
    }
    let delivered_audited = store
        .audit_entries(&appliance::store::audit::AuditQuery {
            action: Some("outbox.delivered".into()),
            limit: 100,
            ..appliance::store::audit::AuditQuery::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!(delivered_audited, 5, "each delivery audited once");
    store.close().await;

    let verify = Command::new(env!("CARGO_BIN_EXE_ferrocount"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&data_dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("ferrocount audit verify runs");
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && said.contains("intact"),
        "{said}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
