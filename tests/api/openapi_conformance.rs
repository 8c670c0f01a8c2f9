//! Every served JSON document agrees with the OpenAPI document, for every route.
//!
//! On a seeded appliance (a released and then corrected result, a cancelled run, QC with a
//! target, an imported calibration), each operation the served document describes is called with
//! valid input, and each answer is validated against the schema the document gives for its status
//! and content type by a real JSON Schema validator (the `jsonschema` crate, draft 2020-12, formats
//! checked, every `$ref` resolved from the served document itself). The document's objects are
//! closed (`additionalProperties: false`), so an undocumented field fails as surely as a missing or
//! mistyped one; the event stream is text as documented, and the data of each event of a live run
//! is validated against the `RunEvent` schema; and a few refusals are validated against the
//! problem schema. An operation the document describes but
//! this test does not call fails the test, so a new route is covered on purpose.

use std::collections::BTreeSet;

use appliance::store::example_report::example_calibration_toml;
use appliance::store::qc::{QcMaterialKind, TargetSource};
use appliance::store::users::Role;
use appliance::store::{Actor, RunId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::TryRecvError;

use crate::helpers::{As, PASSWORD, TestApp, spawn_app, spawn_app_with};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The schema the served document gives for an answer, as a validator: the schema itself, with
/// the document's components beside it so every `#/components/schemas/…` reference resolves.
fn validator(document: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    let object = root.as_object_mut().expect("a schema is an object");
    object.insert("components".into(), document["components"].clone());
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|error| panic!("the document's schema compiles: {error}\n{schema:#}"))
}

/// Every way `value` breaks `schema`, one line each.
fn violations(document: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let validator = validator(document, schema);
    validator
        .iter_errors(value)
        .map(|error| format!("at {}: {error}", error.instance_path()))
        .collect()
}

/// The schema of `method template`'s answer with `status` in `content_type`.
fn answer_schema<'a>(
    document: &'a Value,
    method: &Method,
    template: &str,
    status: StatusCode,
    content_type: &str,
) -> &'a Value {
    let schema = &document["paths"][template][method.as_str().to_lowercase()]["responses"]
        [status.as_str()]["content"][content_type]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {template} documents a {status} answer in {content_type}"
    );
    schema
}

/// The (METHOD, template) pairs the document describes.
fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

/// One call of the walk.
struct Call<'a> {
    who: As<'a>,
    method: Method,
    path: String,
    template: &'static str,
    body: Option<Value>,
    status: StatusCode,
}

fn call<'a>(
    who: As<'a>,
    method: Method,
    path: impl Into<String>,
    template: &'static str,
    body: Option<Value>,
    status: StatusCode,
) -> Call<'a> {
    Call {
        who,
        method,
        path: path.into(),
        template,
        body,
        status,
    }
}

/// Makes the call and validates its answer against the document; the answer.
async fn checked(app: &TestApp, document: &Value, call: &Call<'_>) -> Value {
    let response = app
        .send(
            call.who,
            call.method.clone(),
            &call.path,
            call.body.as_ref(),
        )
        .await;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("an answer");
    assert_eq!(status, call.status, "{} {}: {text}", call.method, call.path);
    if status == StatusCode::NO_CONTENT || status == StatusCode::ACCEPTED && text.is_empty() {
        let documented = &document["paths"][call.template][call.method.as_str().to_lowercase()]["responses"]
            [status.as_str()];
        assert!(
            documented.is_object() && documented.get("content").is_none(),
            "{} {} documents its empty {status}",
            call.method,
            call.template
        );
        return Value::Null;
    }
    let schema = answer_schema(document, &call.method, call.template, status, &content_type);
    if content_type.starts_with("text/") {
        // CSV, the health check's `ok`: text, documented as a string.
        let answer = Value::String(text);
        let wrong = violations(document, schema, &answer);
        assert!(
            wrong.is_empty(),
            "{} {} ({status}, {content_type}) differs from its description:\n{}",
            call.method,
            call.path,
            wrong.join("\n")
        );
        return answer;
    }
    let answer: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} {}: JSON ({e}): {text}", call.method, call.path));
    let wrong = violations(document, schema, &answer);
    assert!(
        wrong.is_empty(),
        "{} {} ({status}) differs from its description:\n{}\n{answer:#}",
        call.method,
        call.path,
        wrong.join("\n")
    );
    answer
}

/// Makes the call, notes that its operation was called, and validates its answer.
async fn walk(
    app: &TestApp,
    document: &Value,
    called: &mut BTreeSet<(String, String)>,
    call: Call<'_>,
) -> Value {
    called.insert((call.method.to_string(), call.template.to_owned()));
    checked(app, document, &call).await
}

/// One server-sent event (a block of `event:` and `data:` lines): its name and data as JSON;
/// `None` for a comment such as a keep-alive.
fn event(block: &str) -> Option<(String, Value)> {
    let mut name = None;
    let mut data = String::new();
    for line in block.lines() {
        if let Some(rest) = line.strip_prefix("event:") {
            name = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("data:") {
            data.push_str(rest.trim_start());
        }
    }
    let data: Value = serde_json::from_str(&data).ok()?;
    Some((name?, data))
}

#[tokio::test]
async fn every_documented_operation_answers_as_its_schema_says() {
    // A destination, so that a release writes an outbox message to list and resend.
    let app = spawn_app_with(|config| {
        config.destinations = vec![crate::pages_outbox::quiet_destination("lis")];
    })
    .await;
    let document: Value = app
        .send(As::Nobody, Method::GET, "/api/v1/openapi.json", None)
        .await
        .json()
        .await
        .expect("the document is JSON");
    let admin_token = app.token(Role::LabAdmin).to_owned();
    let admin = As::Bearer(&admin_token);
    let mut called: BTreeSet<(String, String)> = BTreeSet::new();

    // A run, followed live from its start (the operator confirms each tube as it is asked for):
    // every event it sends fits the event schema. The stream is opened after the run starts, so
    // its first events (the pre-run checks, tuning) can come before it listens: every event the
    // engine emits for the run is also taken from the engine itself and validated as the stream
    // serialises it (`json_data` of the same `RunEvent`).
    let mut engine_events = app.engine.subscribe();
    let ticket = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            "/api/v1/runs",
            "/api/v1/runs",
            Some(
                json!({ "patient_mrn": "DOC-1", "accession": "DOC-1-A213", "blood_ml": 7.5, "indication": "breast",
                     "extra_tubes": ["cd45"], "drawn_at": "2026-11-20T08:30:00Z",
                     "manual_tube_confirmation": true,
                     "simulate": { "cells": 40, "control_t2_ms": 200 } }),
            ),
            StatusCode::ACCEPTED,
        ),
    )
    .await;
    let run = ticket["id"].as_i64().expect("a run id");
    let mut stream = app
        .send(
            admin,
            Method::GET,
            &format!("/api/v1/runs/{run}/events"),
            None,
        )
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    called.insert(("GET".into(), "/api/v1/runs/{id}/events".into()));
    // The PDF report: a binary body (no JSON schema to hold it to); a PDF once the run has a
    // result, its documented problem before.
    let report = app
        .send(
            admin,
            Method::GET,
            &format!("/api/v1/runs/{run}/report.pdf"),
            None,
        )
        .await;
    assert!(
        matches!(report.status(), StatusCode::OK | StatusCode::CONFLICT),
        "the PDF report answers as documented: {}",
        report.status()
    );
    called.insert(("GET".into(), "/api/v1/runs/{id}/report.pdf".into()));
    // The stream is text, its only documented media type (a body described as one JSON object
    // made every stream a schema violation); each event's data is a `RunEvent`, the component
    // the operation's description names.
    assert_eq!(
        stream.headers()["content-type"],
        "text/event-stream",
        "the stream's media type"
    );
    let media =
        &document["paths"]["/api/v1/runs/{id}/events"]["get"]["responses"]["200"]["content"];
    assert_eq!(
        media
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["text/event-stream".to_owned()]),
        "the event stream's only media type"
    );
    let body_schema = answer_schema(
        &document,
        &Method::GET,
        "/api/v1/runs/{id}/events",
        StatusCode::OK,
        "text/event-stream",
    )
    .clone();
    let event_schema = json!({ "$ref": "#/components/schemas/RunEvent" });
    let mut seen: Vec<(String, Value)> = Vec::new();
    let mut pending = String::new();
    let mut body = String::new();
    // The stream ends once the run settles (its result awaits release).
    while let Some(chunk) = stream.chunk().await.expect("the event stream reads") {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        body.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            let Some((name, data)) = event(&block) else {
                continue;
            };
            if name == "awaiting_tube" {
                walk(
                    &app,
                    &document,
                    &mut called,
                    call(
                        admin,
                        Method::POST,
                        format!("/api/v1/runs/{run}/confirm-tube"),
                        "/api/v1/runs/{id}/confirm-tube",
                        None,
                        StatusCode::ACCEPTED,
                    ),
                )
                .await;
            }
            seen.push((name, data));
        }
    }
    let wrong = violations(&document, &body_schema, &Value::String(body));
    assert!(wrong.is_empty(), "the stream's body: {}", wrong.join("\n"));
    let names: BTreeSet<&str> = seen.iter().map(|(name, _)| name.as_str()).collect();
    for wanted in [
        "state",
        "awaiting_tube",
        "tube_confirmed",
        "replicate",
        "result",
    ] {
        assert!(names.contains(wanted), "a {wanted} event among {names:?}");
    }
    let mut emitted: Vec<(String, Value)> = Vec::new();
    loop {
        let event = match engine_events.try_recv() {
            Ok(event) => event,
            Err(TryRecvError::Lagged(_)) => continue,
            Err(_) => break,
        };
        if event.run_id == Some(RunId(run)) {
            let data = serde_json::to_value(&event).expect("an event serialises");
            let name = data["event"].as_str().unwrap_or("").to_owned();
            emitted.push((name, data));
        }
    }
    let emitted_names: BTreeSet<&str> = emitted.iter().map(|(name, _)| name.as_str()).collect();
    for wanted in ["check", "tuned"] {
        assert!(
            emitted_names.contains(wanted),
            "a {wanted} event among {emitted_names:?}"
        );
    }
    seen.extend(emitted);
    for (name, data) in &seen {
        assert_eq!(
            data["event"],
            name.as_str(),
            "the SSE name is the event's tag"
        );
        let wrong = violations(&document, &event_schema, data);
        assert!(
            wrong.is_empty(),
            "{name} event:\n{}\n{data:#}",
            wrong.join("\n")
        );
    }
    app.engine
        .wait_for_run(RunId(run))
        .await
        .expect("the run ends");

    // Release it, then correct it: two versions, the current one corrected.
    walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            format!("/api/v1/runs/{run}/release"),
            "/api/v1/runs/{id}/release",
            Some(json!({ "password": PASSWORD, "printed_name": "lars Tester" })),
            StatusCode::OK,
        ),
    )
    .await;
    walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            format!("/api/v1/runs/{run}/corrections"),
            "/api/v1/runs/{id}/corrections",
            Some(
                json!({ "blood_ml": 5.0, "reason": "the tube held 5 mL", "password": PASSWORD,
                     "printed_name": "lars Tester" }),
            ),
            StatusCode::CREATED,
        ),
    )
    .await;
    let shown = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            format!("/api/v1/runs/{run}"),
            "/api/v1/runs/{id}",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    assert_eq!(shown["versions"].as_array().map(Vec::len), Some(2));
    assert_eq!(shown["result"]["corrected"], true);
    assert_eq!(shown["readings"].as_array().map(Vec::len), Some(9));
    assert!(shown["readings"][0]["t2_distribution"].is_object());
    // The released result as FHIR: the correction awaits its release, so the report served is
    // the version released, final.
    let served = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            format!("/fhir/DiagnosticReport/{run}"),
            "/fhir/DiagnosticReport/{id}",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    assert_eq!(served["status"], "final");
    let found = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            "/fhir/DiagnosticReport?patient=DOC-1",
            "/fhir/DiagnosticReport",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    assert_eq!(found["total"], 1);

    // A second run waits for its first tube: cancel it.
    let waiting = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            "/api/v1/runs",
            "/api/v1/runs",
            Some(
                json!({ "patient_mrn": "DOC-2", "accession": "DOC-2-A380", "blood_ml": 7.5,
                     "manual_tube_confirmation": true }),
            ),
            StatusCode::ACCEPTED,
        ),
    )
    .await;
    let second = waiting["id"].as_i64().expect("a run id");
    let cancelled = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            format!("/api/v1/runs/{second}/cancel"),
            "/api/v1/runs/{id}/cancel",
            Some(json!({ "reason": "the sample clotted" })),
            StatusCode::ACCEPTED,
        ),
    )
    .await;
    assert_eq!(cancelled["state"], "cancelled");

    // Patients and the trend.
    let registered = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            "/api/v1/patients",
            "/api/v1/patients",
            Some(json!({ "mrn": "DOC-3", "birth_date": "1970-01-01" })),
            StatusCode::CREATED,
        ),
    )
    .await;
    assert_eq!(registered["mrn"], "DOC-3");
    let listed = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            "/api/v1/patients?mrn_prefix=doc-1&limit=1",
            "/api/v1/patients",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    let patient = listed["patients"][0]["id"]
        .as_i64()
        .expect("DOC-1 is listed");
    walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            format!("/api/v1/patients/{patient}/events"),
            "/api/v1/patients/{id}/events",
            Some(json!({ "occurred_on": "2026-01-15", "label": "Started docetaxel" })),
            StatusCode::CREATED,
        ),
    )
    .await;
    let worklist = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            "/api/v1/worklist?limit=1",
            "/api/v1/worklist",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    assert!(worklist["awaiting"].is_array(), "{worklist}");
    let outbox = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            "/api/v1/outbox?limit=1&destination=lis",
            "/api/v1/outbox",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    let message =
        appliance::store::OutboxId(outbox["messages"][0]["id"].as_i64().expect("a message"));
    app.store
        .record_delivery(
            message,
            &appliance::store::outbox::DeliveryOutcome::Parked {
                reason: "AR: unknown patient".into(),
            },
        )
        .await
        .expect("parked");
    walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            format!("/api/v1/outbox/{}/resend", message.0),
            "/api/v1/outbox/{id}/resend",
            Some(json!({ "reason": "patient registered at the LIS" })),
            StatusCode::OK,
        ),
    )
    .await;
    walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            format!("/api/v1/patients/{patient}"),
            "/api/v1/patients/{id}",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    let runs = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            format!("/api/v1/patients/{patient}/runs?limit=1"),
            "/api/v1/patients/{id}/runs",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1), "{runs}");
    let trend = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            format!("/api/v1/patients/{patient}/trend"),
            "/api/v1/patients/{id}/trend",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    assert_eq!(
        trend[0]["corrected"], true,
        "the trend says it was corrected"
    );
    let csv = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            format!("/api/v1/patients/{patient}/trend?format=csv"),
            "/api/v1/patients/{id}/trend",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    assert!(
        csv.as_str().is_some_and(|t| t.contains(",2,true,")),
        "{csv}"
    );

    // QC: a control lot with a target, a value recorded through the API.
    let material = app
        .store
        .add_qc_material(
            &Actor::Appliance,
            "Control CTC low",
            QcMaterialKind::Control,
            Some(appliance::store::qc::ControlLevel::Negative),
            "cells",
        )
        .await
        .expect("a material");
    let lot = app
        .store
        .add_qc_lot(
            &Actor::Appliance,
            material.id,
            "CL-1",
            time::macros::date!(2099 - 06 - 30),
        )
        .await
        .expect("a lot");
    app.store
        .set_qc_target(
            &Actor::Appliance,
            lot.id,
            10.0,
            1.5,
            TargetSource::Manufacturer,
            None,
        )
        .await
        .expect("a target");
    walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            "/api/v1/qc",
            "/api/v1/qc",
            Some(json!({ "lot_id": lot.id.0, "value": 15.1, "comment": "a high one" })),
            StatusCode::CREATED,
        ),
    )
    .await;
    let qc = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            "/api/v1/qc",
            "/api/v1/qc",
            None,
            StatusCode::OK,
        ),
    )
    .await;
    assert_eq!(qc["materials"][0]["lots"][0]["expires_on"], "2099-06-30");

    // Calibrations, the instrument, tokens, the session, health and this document.
    let imported = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            "/api/v1/calibrations",
            "/api/v1/calibrations",
            Some(json!({ "content": example_calibration_toml(), "note": "series of 24 Nov" })),
            StatusCode::CREATED,
        ),
    )
    .await;
    assert_eq!(imported["state"], "pending");
    assert_eq!(imported["active"], false);
    let signature = json!({ "password": crate::helpers::PASSWORD, "printed_name": "lars Tester",
                            "reason": "new reagent lot in use" });
    let approve = format!("/api/v1/calibrations/{}/approve", imported["id"]);
    let approved = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            &approve,
            "/api/v1/calibrations/{id}/approve",
            Some(signature.clone()),
            StatusCode::OK,
        ),
    )
    .await;
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["decision_reason"], "new reagent lot in use");
    let second = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            "/api/v1/calibrations",
            "/api/v1/calibrations",
            Some(json!({ "content": example_calibration_toml() })),
            StatusCode::CREATED,
        ),
    )
    .await;
    let reject = format!("/api/v1/calibrations/{}/reject", second["id"]);
    let rejected = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            &reject,
            "/api/v1/calibrations/{id}/reject",
            Some(signature),
            StatusCode::OK,
        ),
    )
    .await;
    assert_eq!(rejected["state"], "rejected");
    for (path, template) in [
        ("/api/v1/calibrations", "/api/v1/calibrations"),
        ("/api/v1/instrument", "/api/v1/instrument"),
        ("/api/v1/session", "/api/v1/session"),
        ("/healthz", "/healthz"),
        ("/api/v1/openapi.json", "/api/v1/openapi.json"),
    ] {
        walk(
            &app,
            &document,
            &mut called,
            call(admin, Method::GET, path, template, None, StatusCode::OK),
        )
        .await;
    }
    walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            "/api/v1/tokens",
            "/api/v1/tokens",
            Some(json!({ "label": "dashboard" })),
            StatusCode::CREATED,
        ),
    )
    .await;
    walk(
        &app,
        &document,
        &mut called,
        call(
            As::Nobody,
            Method::POST,
            "/api/v1/session",
            "/api/v1/session",
            Some(json!({ "username": "claire", "password": PASSWORD })),
            StatusCode::CREATED,
        ),
    )
    .await;
    let unlocked = walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            "/api/v1/users/claire/unlock",
            "/api/v1/users/{username}/unlock",
            Some(json!({ "reason": "locked herself out at the bench" })),
            StatusCode::OK,
        ),
    )
    .await;
    assert_eq!(unlocked["username"], "claire");
    let session = app.sign_in("olga", PASSWORD).await;
    walk(
        &app,
        &document,
        &mut called,
        call(
            As::Browser(&session),
            Method::DELETE,
            "/api/v1/session",
            "/api/v1/session",
            None,
            StatusCode::NO_CONTENT,
        ),
    )
    .await;

    // Refusals are problem documents as described.
    walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::GET,
            "/api/v1/runs/999999",
            "/api/v1/runs/{id}",
            None,
            StatusCode::NOT_FOUND,
        ),
    )
    .await;
    walk(
        &app,
        &document,
        &mut called,
        call(
            admin,
            Method::POST,
            "/api/v1/runs",
            "/api/v1/runs",
            Some(json!({ "patient_mrn": "DOC-4", "accession": "DOC-4-A650", "blood_ml": 55.0 })),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    )
    .await;
    let clinician = app.token(Role::Clinician).to_owned();
    walk(
        &app,
        &document,
        &mut called,
        call(
            As::Bearer(&clinician),
            Method::POST,
            "/api/v1/calibrations",
            "/api/v1/calibrations",
            Some(json!({ "content": example_calibration_toml() })),
            StatusCode::FORBIDDEN,
        ),
    )
    .await;

    let documented = documented_operations(&document);
    let missed: Vec<_> = documented.difference(&called).collect();
    assert!(
        missed.is_empty(),
        "documented operations this test does not call: {missed:?}"
    );
    assert!(
        called.is_subset(&documented),
        "called but not documented: {:?}",
        called.difference(&documented).collect::<Vec<_>>()
    );
}

/// The validator is strict: an undocumented field, a wrong type, a missing field and a malformed
/// time are each refused (so a test that passes above means agreement, not leniency).
#[tokio::test]
async fn the_validator_refuses_what_the_document_does_not_allow() {
    let app = spawn_app().await;
    let document: Value = app
        .send(As::Nobody, Method::GET, "/api/v1/openapi.json", None)
        .await
        .json()
        .await
        .expect("the document is JSON");
    let schema = json!({ "$ref": "#/components/schemas/Signature" });
    let good = json!({
        "id": 1, "result_id": 2, "user_id": 3, "printed_name": "Lars Tester",
        "meaning": "release", "signed_at": "2026-11-24T08:00:00Z"
    });
    assert!(violations(&document, &schema, &good).is_empty());
    let cases = [
        ("undocumented", json!(true)),
        ("result_id", json!("two")),
        ("meaning", json!("approve")),
        ("signed_at", json!("yesterday")),
    ];
    for (key, value) in cases {
        let mut bad = good.clone();
        bad[key] = value;
        assert!(
            !violations(&document, &schema, &bad).is_empty(),
            "{key} = {} is refused",
            bad[key]
        );
    }
    let mut missing = good.clone();
    missing
        .as_object_mut()
        .expect("an object")
        .remove("printed_name");
    assert!(!violations(&document, &schema, &missing).is_empty());
    // The count report is closed too, field by field.
    let report = json!({ "$ref": "#/components/schemas/CountReport" });
    let mut served = serde_json::to_value(appliance::store::example_report::example_report(
        4.0,
        [1.0, 9.0],
        nmr_core::assay::CountCategory::BelowLoq,
        Some(nmr_core::assay::Call::Favorable),
        false,
    ))
    .expect("a report serialises");
    assert!(
        violations(&document, &report, &served).is_empty(),
        "{:?}",
        violations(&document, &report, &served)
    );
    served["per_100ml"] = json!(53.3);
    assert!(!violations(&document, &report, &served).is_empty());
}

/// Every `$ref` of the document names a schema it holds (the trend's `format` named one it did
/// not).
fn dangling_references(node: &Value, components: &Value, found: &mut Vec<String>) {
    match node {
        Value::Object(object) => {
            if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
                let name = reference.strip_prefix("#/components/schemas/");
                if name.is_none_or(|name| components.get(name).is_none()) {
                    found.push(reference.to_owned());
                }
            }
            for value in object.values() {
                dangling_references(value, components, found);
            }
        }
        Value::Array(items) => {
            for item in items {
                dangling_references(item, components, found);
            }
        }
        _ => {}
    }
}

/// The schema a documented JSON body gives its property `name`.
fn body_property<'a>(document: &'a Value, template: &str, name: &str) -> &'a Value {
    let mut schema = &document["paths"][template]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    if let Some(component) = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        schema = &document["components"]["schemas"][component];
    }
    let property = &schema["properties"][name];
    assert!(property.is_object(), "POST {template} documents `{name}`");
    property
}

/// The schema a documented operation gives its parameter `name`.
fn parameter<'a>(document: &'a Value, method: &str, template: &str, name: &str) -> &'a Value {
    let schema = document["paths"][template][method]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .map(|p| &p["schema"]);
    schema.unwrap_or_else(|| panic!("{method} {template} documents `{name}`"))
}

/// One probe whose document verdict and server verdict differ, in words.
fn disagreement(what: &str, value: &Value, declared: bool, enforced: bool) -> Option<String> {
    (declared != enforced).then(|| {
        let said = |accepts: bool| if accepts { "accepts" } else { "refuses" };
        format!(
            "{what} = {value}: the document {}, the server {}",
            said(declared),
            said(enforced)
        )
    })
}

/// The document's constraints on the constrained inputs are the server's, neither looser nor
/// tighter: for each input, values at, inside and just beyond both ends of the rule (chosen here
/// from the rule as the operations layer states it, not read from the document) are sent to the
/// server and validated against the declared schema, and the two verdicts must agree value by
/// value. The outside probe found `replicates` documented from 0 (enforced 2 to 10), MRN and
/// token label lengths unstated, ids that the schema allowed as `1898.0` and the server refused,
/// and the trend's `format` naming a schema the document did not hold.
#[tokio::test]
async fn declared_input_constraints_are_the_enforced_ones() {
    let app = spawn_app().await;
    let document: Value = app
        .send(As::Nobody, Method::GET, "/api/v1/openapi.json", None)
        .await
        .json()
        .await
        .expect("the document is JSON");
    let mut dangling = Vec::new();
    dangling_references(&document, &document["components"]["schemas"], &mut dangling);
    let admin_token = app.token(Role::LabAdmin).to_owned();
    let admin = As::Bearer(&admin_token);
    // A schema that does not compile (a reference to nothing) accepts nothing; the dangling
    // reference is reported above.
    let accepts = |schema: &Value, value: &Value| {
        let mut root = schema.clone();
        if let Some(object) = root.as_object_mut() {
            object.insert("components".into(), document["components"].clone());
        }
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .is_ok_and(|validator| validator.is_valid(value))
    };
    let mut wrong: Vec<String> = dangling
        .iter()
        .map(|reference| format!("{reference} names no schema of the document"))
        .collect();

    // Replicates per tube, 2 to 10; a whole number written as `3.0` is an integer to JSON Schema
    // and to the server. The order's simulated sample is refused on purpose (it is the last field
    // an order is checked for), so a refusal naming it means the replicates passed and no run
    // starts.
    let schema = body_property(&document, "/api/v1/runs", "replicates").clone();
    for value in [
        json!(-1),
        json!(0),
        json!(1),
        json!(2),
        json!(2.0),
        json!(2.5),
        json!(3),
        json!(10),
        json!(10.0),
        json!(11),
        json!(4_294_967_298_u64),
        json!("3"),
        Value::Null,
    ] {
        let body = json!({ "patient_mrn": "PROBE-1", "accession": "PROBE-A1", "blood_ml": 7.5, "replicates": value,
                           "simulate": { "cells": -1.0 } });
        let answer = app
            .send(admin, Method::POST, "/api/v1/runs", Some(&body))
            .await;
        let status = answer.status();
        let problem: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY,
            "replicates = {value}: {status} {problem}"
        );
        let enforced = problem["field"] == "simulate";
        wrong.extend(disagreement(
            "replicates",
            &value,
            accepts(&schema, &value),
            enforced,
        ));
    }

    // Accession numbers: 1 to 32 printable ASCII characters without spaces, surrounding white
    // space dropped; never blank. Probed like the replicates (the simulated sample refused last).
    let schema = body_property(&document, "/api/v1/runs", "accession").clone();
    for text in [
        String::new(),
        " ".into(),
        "\t\n".into(),
        "\u{feff}".into(),
        "A".into(),
        " ACC-1 ".into(),
        "ACC 1".into(),
        "ACC\u{e9}1".into(),
        "A".repeat(32),
        "A".repeat(33),
        format!("\u{3000}{}\u{85}", "B".repeat(32)),
    ] {
        let value = json!(text);
        let body = json!({ "patient_mrn": "PROBE-1", "accession": value, "blood_ml": 7.5,
                           "simulate": { "cells": -1.0 } });
        let answer = app
            .send(admin, Method::POST, "/api/v1/runs", Some(&body))
            .await;
        let status = answer.status();
        let problem: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY,
            "accession = {value}: {status} {problem}"
        );
        wrong.extend(disagreement(
            "accession",
            &value,
            accepts(&schema, &value),
            problem["field"] == "simulate",
        ));
    }

    // MRNs: 1 to 32 of letters, digits, `-`, `.`, `/` with a digit, surrounding white space
    // dropped; a run order's `patient_mrn` is the same rule, so the same declaration.
    let schema = body_property(&document, "/api/v1/patients", "mrn").clone();
    if body_property(&document, "/api/v1/runs", "patient_mrn") != &schema {
        wrong.push("a run order's `patient_mrn` is declared unlike a patient's `mrn`".into());
    }
    let longest = format!("{}7", "M".repeat(31));
    for (n, text) in [
        String::new(),
        " ".into(),
        "ABC".into(),
        "1".into(),
        "a1".into(),
        "AB-1.2/3".into(),
        "AB 12".into(),
        "AB_12".into(),
        "M\u{e9}12".into(),
        " \tN12 ".into(),
        longest.clone(),
        format!("{longest}7"),
        format!("  {longest}\n"),
    ]
    .into_iter()
    .enumerate()
    {
        // A duplicate (409) was accepted by the rule before the store found it taken.
        let value = Value::String(text);
        let answer = app
            .send(
                admin,
                Method::POST,
                "/api/v1/patients",
                Some(&json!({ "mrn": value, "birth_date": "1970-01-01" })),
            )
            .await;
        let status = answer.status();
        assert!(
            [
                StatusCode::CREATED,
                StatusCode::CONFLICT,
                StatusCode::UNPROCESSABLE_ENTITY
            ]
            .contains(&status),
            "mrn #{n} {value}: {status}"
        );
        let enforced = status != StatusCode::UNPROCESSABLE_ENTITY;
        wrong.extend(disagreement(
            "mrn",
            &value,
            accepts(&schema, &value),
            enforced,
        ));
    }

    // Token labels: 1 to 100 characters once surrounding white space is dropped.
    let schema = body_property(&document, "/api/v1/tokens", "label").clone();
    for text in [
        String::new(),
        " ".into(),
        "\t\n".into(),
        "a".into(),
        " a ".into(),
        "two\nlines".into(),
        "x".repeat(100),
        "x".repeat(101),
        format!("  {}\t", "x".repeat(100)),
        format!(" {} ", "é".repeat(100)),
        "é".repeat(101),
        // U+FEFF is not white space to `str::trim` (ECMA-262's `\s` says it is); U+0085 is
        // (ECMA-262's `\s` says it is not).
        "\u{feff}".into(),
        "\u{feff}\u{feff}".into(),
        "\u{85}".into(),
        "\u{85}a\u{85}".into(),
        "\u{3000}a\u{2028}".into(),
    ] {
        let value = Value::String(text);
        let answer = app
            .send(
                admin,
                Method::POST,
                "/api/v1/tokens",
                Some(&json!({ "label": value })),
            )
            .await;
        let status = answer.status();
        assert!(
            [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
            "label {value}: {status}"
        );
        let enforced = status == StatusCode::CREATED;
        wrong.extend(disagreement(
            "label",
            &value,
            accepts(&schema, &value),
            enforced,
        ));
    }

    // Ids in the path: one declaration for every `{id}`, probed on a run (an unknown id is 404,
    // a refused one 422).
    let schema = parameter(&document, "get", "/api/v1/runs/{id}", "id").clone();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some()
                && path.contains("{id}")
                && parameter(&document, method, path, "id") != &schema
            {
                wrong.push(format!(
                    "{method} {path}: its id is declared unlike a run's"
                ));
            }
        }
    }
    for text in [
        "1",
        "7",
        "0",
        "-1",
        "+1",
        "01",
        "1898.0",
        "1e3",
        "0x10",
        "999999999999999999",
        "1000000000000000000",
        "9223372036854775808",
        "one",
    ] {
        let value = Value::String(text.to_owned());
        let status = app
            .send(admin, Method::GET, &format!("/api/v1/runs/{text}"), None)
            .await
            .status();
        assert!(
            [
                StatusCode::OK,
                StatusCode::NOT_FOUND,
                StatusCode::UNPROCESSABLE_ENTITY
            ]
            .contains(&status),
            "id {text}: {status}"
        );
        let enforced = status != StatusCode::UNPROCESSABLE_ENTITY;
        wrong.extend(disagreement(
            "id",
            &value,
            accepts(&schema, &value),
            enforced,
        ));
    }

    // Reasons, counted once surrounding white space is dropped: a cancel's 3 to 1000 characters
    // (probed on an unknown run: the reason is read first, so 404 means it passed), an unlock's
    // 1 to 500 (on an unknown user name, likewise).
    let cancel = body_property(&document, "/api/v1/runs/{id}/cancel", "reason").clone();
    let unlock = body_property(&document, "/api/v1/users/{username}/unlock", "reason").clone();
    for (what, schema, path, min, max) in [
        (
            "cancel reason",
            &cancel,
            "/api/v1/runs/999999/cancel",
            3,
            1000,
        ),
        (
            "unlock reason",
            &unlock,
            "/api/v1/users/nobody7/unlock",
            1,
            500,
        ),
    ] {
        for text in [
            String::new(),
            " ".repeat(min + 2),
            "x".repeat(min - 1),
            "x".repeat(min),
            format!("  {}\t", "x".repeat(min)),
            "x".repeat(max),
            format!(" {} ", "é".repeat(max)),
            "x".repeat(max + 1),
            format!("a{}b", " ".repeat(max - 2)),
            format!("a{}b", "\n".repeat(max - 1)),
        ] {
            let value = Value::String(text);
            let status = app
                .send(admin, Method::POST, path, Some(&json!({ "reason": value })))
                .await
                .status();
            assert!(
                [StatusCode::NOT_FOUND, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
                "{what} {value}: {status}"
            );
            let enforced = status == StatusCode::NOT_FOUND;
            wrong.extend(disagreement(
                what,
                &value,
                accepts(schema, &value),
                enforced,
            ));
        }
    }

    // The patient list's `limit`, 1 to 100.
    let schema = parameter(&document, "get", "/api/v1/patients", "limit").clone();
    for n in [0_i64, 1, 2, 99, 100, 101, 1000, 5000, -1] {
        let status = app
            .send(
                admin,
                Method::GET,
                &format!("/api/v1/patients?limit={n}"),
                None,
            )
            .await
            .status();
        let value = json!(n);
        wrong.extend(disagreement(
            "limit",
            &value,
            accepts(&schema, &value),
            status == StatusCode::OK,
        ));
    }

    // The same `limit` written as a floating-point number, as a client holding the document's
    // `integer` in a float writes it (`5.0` is an integer to JSON Schema).
    for (text, value) in [
        ("5.0", json!(5.0)),
        ("1000.0", json!(1000.0)),
        ("1001.0", json!(1001.0)),
        ("0.0", json!(0.0)),
        ("2.5", json!(2.5)),
    ] {
        let status = app
            .send(
                admin,
                Method::GET,
                &format!("/api/v1/patients?limit={text}"),
                None,
            )
            .await
            .status();
        wrong.extend(disagreement(
            "limit",
            &value,
            accepts(&schema, &value),
            status == StatusCode::OK,
        ));
    }

    // A QC value's `lot_id`: a whole number, `15.0` included (probed on an unknown lot: 404 means
    // the id was read).
    let schema = body_property(&document, "/api/v1/qc", "lot_id").clone();
    for value in [
        json!(999_999),
        json!(999_999.0),
        json!(15.0),
        json!(15.5),
        json!(-3),
        json!(0),
        json!(0.0),
        json!(999_999_999_999_999_999_i64),
        json!(1_000_000_000_000_000_000_i64),
        json!(1e30),
        json!("15"),
    ] {
        let status = app
            .send(
                admin,
                Method::POST,
                "/api/v1/qc",
                Some(&json!({ "lot_id": value, "value": 1.0 })),
            )
            .await
            .status();
        assert!(
            [StatusCode::NOT_FOUND, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
            "lot_id {value}: {status}"
        );
        wrong.extend(disagreement(
            "lot_id",
            &value,
            accepts(&schema, &value),
            status == StatusCode::NOT_FOUND,
        ));
    }

    // A user name in the unlock path (probed on unknown names: 404 means the name was read).
    let schema = parameter(
        &document,
        "post",
        "/api/v1/users/{username}/unlock",
        "username",
    )
    .clone();
    for (encoded, text) in [
        ("nobody7".to_owned(), "nobody7".to_owned()),
        ("Nobody7".to_owned(), "Nobody7".to_owned()),
        ("n".to_owned(), "n".to_owned()),
        ("7nobody".to_owned(), "7nobody".to_owned()),
        ("no.bo_dy-7".to_owned(), "no.bo_dy-7".to_owned()),
        ("n%C3%A9".to_owned(), "n\u{e9}".to_owned()),
        ("no%20body".to_owned(), "no body".to_owned()),
        ("%20nobody%09".to_owned(), " nobody\t".to_owned()),
        ("%EF%BB%BFnobody".to_owned(), "\u{feff}nobody".to_owned()),
        ("%C2%85nobody".to_owned(), "\u{85}nobody".to_owned()),
        ("_nobody".to_owned(), "_nobody".to_owned()),
        ("x".repeat(64), "x".repeat(64)),
        ("x".repeat(65), "x".repeat(65)),
    ] {
        let status = app
            .send(
                admin,
                Method::POST,
                &format!("/api/v1/users/{encoded}/unlock"),
                Some(&json!({ "reason": "probe" })),
            )
            .await
            .status();
        assert!(
            [StatusCode::NOT_FOUND, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
            "username {text:?}: {status}"
        );
        let value = Value::String(text);
        wrong.extend(disagreement(
            "username",
            &value,
            accepts(&schema, &value),
            status == StatusCode::NOT_FOUND,
        ));
    }

    // The patient list's search: an MRN prefix of MRN characters (empty: any), a birth date that
    // is blank or a calendar date (a date nobody has finds nobody), `after` an MRN.
    for (name, texts) in [
        (
            "mrn_prefix",
            &[
                "",
                "D",
                "demo-0",
                " DEMO-00 ",
                "A.B/C-1",
                "DEMO%",
                "DE MO",
                "DEMO_1",
                "ÄBC",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ][..],
        ),
        (
            "birth_date",
            &[
                "",
                "1961-04-23",
                " 1961-04-23 ",
                "2000-02-29",
                "2024-02-29",
                "1900-02-29",
                "2023-02-29",
                "1961-02-30",
                "1961-04-31",
                "1961-13-01",
                "1961-4-23",
                "23.04.1961",
                "2999-01-01",
                "1899-12-31",
                "0000-01-01",
            ][..],
        ),
        ("after", &["DEMO-001", "demo-1", "ABC", "", "x y", "1"][..]),
    ] {
        let schema = parameter(&document, "get", "/api/v1/patients", name).clone();
        for text in texts {
            let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
            let status = app
                .send(
                    admin,
                    Method::GET,
                    &format!("/api/v1/patients?{name}={encoded}"),
                    None,
                )
                .await
                .status();
            let value = Value::String((*text).to_owned());
            wrong.extend(disagreement(
                name,
                &value,
                accepts(&schema, &value),
                status == StatusCode::OK,
            ));
        }
    }

    // The worklist's `limit`, 1 to 100, and `after`, a run id.
    let schema = parameter(&document, "get", "/api/v1/worklist", "limit").clone();
    for n in [0_i64, 1, 100, 101, -1] {
        let status = app
            .send(
                admin,
                Method::GET,
                &format!("/api/v1/worklist?limit={n}"),
                None,
            )
            .await
            .status();
        let value = json!(n);
        wrong.extend(disagreement(
            "worklist limit",
            &value,
            accepts(&schema, &value),
            status == StatusCode::OK,
        ));
    }
    let schema = parameter(&document, "get", "/api/v1/worklist", "after").clone();
    for text in ["1", "42", "0", "-1", "01", "1.0", "abc"] {
        let status = app
            .send(
                admin,
                Method::GET,
                &format!("/api/v1/worklist?after={text}"),
                None,
            )
            .await
            .status();
        let value = Value::String(text.to_owned());
        wrong.extend(disagreement(
            "worklist after",
            &value,
            accepts(&schema, &value),
            status == StatusCode::OK,
        ));
    }

    // A patient's runs: `limit`, 1 to 100, and `before`, a run id.
    let patient: Value = app
        .send(
            admin,
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": "PROBE-7", "birth_date": "1960-01-01" })),
        )
        .await
        .json()
        .await
        .expect("a registered patient");
    assert!(patient["id"].is_i64(), "{patient}");
    let runs_of = format!("/api/v1/patients/{}/runs", patient["id"]);
    let schema = parameter(&document, "get", "/api/v1/patients/{id}/runs", "limit").clone();
    for n in [0_i64, 1, 100, 101, -1] {
        let status = app
            .send(admin, Method::GET, &format!("{runs_of}?limit={n}"), None)
            .await
            .status();
        let value = json!(n);
        wrong.extend(disagreement(
            "patient runs limit",
            &value,
            accepts(&schema, &value),
            status == StatusCode::OK,
        ));
    }
    let schema = parameter(&document, "get", "/api/v1/patients/{id}/runs", "before").clone();
    for text in ["1", "42", "0", "-1", "01", "1.0", "abc"] {
        let status = app
            .send(
                admin,
                Method::GET,
                &format!("{runs_of}?before={text}"),
                None,
            )
            .await
            .status();
        let value = Value::String(text.to_owned());
        wrong.extend(disagreement(
            "patient runs before",
            &value,
            accepts(&schema, &value),
            status == StatusCode::OK,
        ));
    }

    // The QC results' `limit`, 1 to 500, and `before`, a QC result id.
    let schema = parameter(&document, "get", "/api/v1/qc", "limit").clone();
    for n in [0_i64, 1, 500, 501, -1] {
        let status = app
            .send(admin, Method::GET, &format!("/api/v1/qc?limit={n}"), None)
            .await
            .status();
        let value = json!(n);
        wrong.extend(disagreement(
            "qc limit",
            &value,
            accepts(&schema, &value),
            status == StatusCode::OK,
        ));
    }
    let schema = parameter(&document, "get", "/api/v1/qc", "before").clone();
    for text in ["1", "42", "0", "-1", "01", "1.0", "abc"] {
        let status = app
            .send(
                admin,
                Method::GET,
                &format!("/api/v1/qc?before={text}"),
                None,
            )
            .await
            .status();
        let value = Value::String(text.to_owned());
        wrong.extend(disagreement(
            "qc before",
            &value,
            accepts(&schema, &value),
            status == StatusCode::OK,
        ));
    }

    // The outbox's `limit`, 1 to 100, `before`, a message id, and `state`, one of three words.
    let schema = parameter(&document, "get", "/api/v1/outbox", "limit").clone();
    for n in [0_i64, 1, 100, 101, -1] {
        let status = app
            .send(
                admin,
                Method::GET,
                &format!("/api/v1/outbox?limit={n}"),
                None,
            )
            .await
            .status();
        let value = json!(n);
        wrong.extend(disagreement(
            "outbox limit",
            &value,
            accepts(&schema, &value),
            status == StatusCode::OK,
        ));
    }
    for (name, texts) in [
        ("before", &["1", "42", "0", "-1", "01", "1.0", "abc"][..]),
        (
            "state",
            &["pending", "delivered", "parked", "Parked", "sent", ""][..],
        ),
    ] {
        let schema = parameter(&document, "get", "/api/v1/outbox", name).clone();
        for text in texts {
            let status = app
                .send(
                    admin,
                    Method::GET,
                    &format!("/api/v1/outbox?{name}={text}"),
                    None,
                )
                .await
                .status();
            let value = Value::String((*text).to_owned());
            wrong.extend(disagreement(
                &format!("outbox {name}"),
                &value,
                accepts(&schema, &value),
                status == StatusCode::OK,
            ));
        }
    }
    // A resend's reason, 3 to 1000 characters once trimmed: checked before the message is looked
    // up, so a message nobody has answers 404 to a good reason and 422 to a bad one.
    let schema = body_property(&document, "/api/v1/outbox/{id}/resend", "reason").clone();
    for text in [
        String::new(),
        "ab".to_owned(),
        " ab ".to_owned(),
        "abc".to_owned(),
        "  fixed  ".to_owned(),
        "x".repeat(1000),
        "x".repeat(1001),
    ] {
        let status = app
            .send(
                admin,
                Method::POST,
                "/api/v1/outbox/999999/resend",
                Some(&json!({ "reason": text })),
            )
            .await
            .status();
        let value = Value::String(text);
        wrong.extend(disagreement(
            "resend reason",
            &value,
            accepts(&schema, &value),
            status != StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }

    // A trend marker's label: 1 to 200 characters once trimmed, one line.
    let schema = body_property(&document, "/api/v1/patients/{id}/events", "label").clone();
    let marked: Value = app
        .send(
            admin,
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": "MARK-1", "birth_date": "1970-01-01" })),
        )
        .await
        .json()
        .await
        .expect("a patient");
    let marked = marked["id"].as_i64().expect("an id");
    for text in [
        "surgery",
        "x",
        " x ",
        &"x".repeat(200),
        &format!("  {}  ", "x".repeat(200)),
        &"x".repeat(201),
        "",
        "   ",
    ] {
        let status = app
            .send(
                admin,
                Method::POST,
                &format!("/api/v1/patients/{marked}/events"),
                Some(&json!({ "occurred_on": "2026-01-15", "label": text })),
            )
            .await
            .status();
        let value = Value::String(text.to_owned());
        wrong.extend(disagreement(
            "event label",
            &value,
            accepts(&schema, &value),
            status == StatusCode::CREATED,
        ));
    }

    // The trend's format: `json` or `csv`.
    let patient: Value = app
        .send(
            admin,
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": "TREND-1", "birth_date": "1970-01-01" })),
        )
        .await
        .json()
        .await
        .expect("a patient");
    let patient = patient["id"].as_i64().expect("an id");
    let schema = parameter(&document, "get", "/api/v1/patients/{id}/trend", "format").clone();
    for text in ["json", "csv", "CSV", "xml", ""] {
        let value = Value::String(text.to_owned());
        let status = app
            .send(
                admin,
                Method::GET,
                &format!("/api/v1/patients/{patient}/trend?format={text}"),
                None,
            )
            .await
            .status();
        wrong.extend(disagreement(
            "format",
            &value,
            accepts(&schema, &value),
            status == StatusCode::OK,
        ));
    }
    assert!(
        wrong.is_empty(),
        "the document and the server disagree:\n{}",
        wrong.join("\n")
    );
}

/// Every `pattern` in the document, with where it is.
fn patterns(node: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match node {
        Value::Object(object) => {
            for (key, value) in object {
                let here = format!("{at}/{key}");
                match (key.as_str(), value) {
                    ("pattern", Value::String(pattern)) => found.push((here, pattern.clone())),
                    _ => patterns(value, &here, found),
                }
            }
        }
        Value::Array(items) => {
            for (n, item) in items.iter().enumerate() {
                patterns(item, &format!("{at}/{n}"), found);
            }
        }
        _ => {}
    }
}

/// The document's patterns mean the same to every client's regular-expression engine: no
/// `\s`, `\S`, `\d`, `\w` or `\b` shorthand, whose sets differ between ECMA-262 (JSON Schema's
/// dialect, whose `\s` holds U+FEFF), Python's `re` (which schemathesis uses: its `\s` holds
/// U+001C to U+001F) and Rust's `str::trim` (neither), except the idiom `[\s\S]` (any
/// character, alike in all). The outside probe found a token label made only of U+FEFF accepted
/// by one side and refused by the other; the white space the parsers drop is now stated as
/// `appliance::store::text_pattern`'s explicit class.
#[tokio::test]
async fn declared_patterns_mean_the_same_in_every_regex_dialect() {
    let app = spawn_app().await;
    let document: Value = app
        .send(As::Nobody, Method::GET, "/api/v1/openapi.json", None)
        .await
        .json()
        .await
        .expect("the document is JSON");
    let mut found = Vec::new();
    patterns(&document, "", &mut found);
    assert!(
        found.len() >= 6,
        "the constrained inputs have patterns: {found:?}"
    );
    let ambiguous: Vec<String> = found
        .iter()
        .filter(|(_, pattern)| {
            let plain = pattern.replace(r"[\s\S]", "");
            [r"\s", r"\S", r"\d", r"\D", r"\w", r"\W", r"\b"]
                .iter()
                .any(|shorthand| plain.contains(shorthand))
        })
        .map(|(at, pattern)| format!("{at}: {pattern}"))
        .collect();
    assert!(
        ambiguous.is_empty(),
        "patterns whose meaning depends on the engine:\n{}",
        ambiguous.join("\n")
    );
}
