//! The read-only FHIR view: `GET /fhir/DiagnosticReport?patient=MRN` and
//! `GET /fhir/DiagnosticReport/{id}` serve released results only (final, then corrected once a
//! correction is released), as `application/fhir+json`, never cached, audited as views, for
//! clinicians and lab admins.

use appliance::store::RunId;
use appliance::store::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{As, PASSWORD, TestApp, spawn_app};

/// A run of a new patient `mrn`, settled and awaiting release.
async fn settled_run(app: &TestApp, mrn: &str) -> i64 {
    let admin = app.token(Role::LabAdmin).to_owned();
    let ticket: Value = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            "/api/v1/runs",
            Some(&json!({ "patient_mrn": mrn, "birth_date": "1961-04-23",
                          "accession": format!("{mrn}-A"), "blood_ml": 7.5,
                          "indication": "breast", "simulate": { "cells": 40 } })),
        )
        .await
        .json()
        .await
        .expect("ticket");
    let id = ticket["id"].as_i64().expect("run id");
    app.engine.wait_for_run(RunId(id)).await.expect("run ends");
    id
}

async fn sign(app: &TestApp, path: String, body: Value) {
    let admin = app.token(Role::LabAdmin).to_owned();
    let response = app
        .send(As::Bearer(&admin), Method::POST, &path, Some(&body))
        .await;
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

async fn audit_count(app: &TestApp, action: &str, entity_id: i64) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ? AND entity_id = ?")
        .bind(action)
        .bind(entity_id.to_string())
        .fetch_one(app.store.pool())
        .await
        .expect("audit count")
}

/// GET `path` as `who`: status, the FHIR JSON (checked to be served as such, never cached).
async fn fhir(app: &TestApp, who: &str, path: &str) -> (StatusCode, Value) {
    let response = app.send(As::Bearer(who), Method::GET, path, None).await;
    let status = response.status();
    if status == StatusCode::OK {
        assert_eq!(
            response.headers()["content-type"],
            "application/fhir+json",
            "{path}"
        );
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn released_results_are_served_as_fhir_only_when_released_and_every_view_is_audited() {
    let app = spawn_app().await;
    let clinician = app.token(Role::Clinician).to_owned();
    let operator = app.token(Role::Operator).to_owned();
    let run = settled_run(&app, "FHIR-API-1").await;
    let patient = app
        .store
        .sample(app.store.run(RunId(run)).await.unwrap().sample_id)
        .await
        .unwrap()
        .patient_id
        .0;

    // Awaiting release: not served (a preliminary result never leaves as FHIR).
    let (status, _) = fhir(&app, &clinician, &format!("/fhir/DiagnosticReport/{run}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, bundle) = fhir(
        &app,
        &clinician,
        "/fhir/DiagnosticReport?patient=FHIR-API-1",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (bundle["type"].clone(), bundle["total"].clone()),
        (json!("searchset"), json!(0))
    );

    let signature = json!({ "password": PASSWORD, "printed_name": "lars Tester" });
    sign(
        &app,
        format!("/api/v1/runs/{run}/release"),
        signature.clone(),
    )
    .await;
    let views = audit_count(&app, "run.result_view", run).await;
    let (status, report) = fhir(&app, &clinician, &format!("/fhir/DiagnosticReport/{run}")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["resourceType"], "DiagnosticReport");
    assert_eq!(report["id"], run.to_string());
    assert_eq!(report["status"], "final");
    assert_eq!(report["subject"]["identifier"]["value"], "FHIR-API-1");
    assert_eq!(report["code"]["coding"][0]["code"], "67568-6");
    let stored = app.store.result_versions(RunId(run)).await.unwrap();
    let count = report["contained"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"]["coding"][1]["code"] == "FC-CTC75")
        .expect("the count");
    assert_eq!(
        count["valueQuantity"]["value"].as_f64(),
        Some(stored[0].report.per_7_5ml),
        "exactly as released"
    );
    assert_eq!(audit_count(&app, "run.result_view", run).await, views + 1);

    // A correction awaiting release: still the released version, final; released: corrected.
    sign(
        &app,
        format!("/api/v1/runs/{run}/corrections"),
        json!({ "blood_ml": 5.0, "reason": "the tube held 5 mL", "password": PASSWORD,
                "printed_name": "lars Tester" }),
    )
    .await;
    let (_, report) = fhir(&app, &clinician, &format!("/fhir/DiagnosticReport/{run}")).await;
    assert_eq!(report["status"], "final");
    sign(&app, format!("/api/v1/runs/{run}/release"), signature).await;
    let (_, report) = fhir(&app, &clinician, &format!("/fhir/DiagnosticReport/{run}")).await;
    assert_eq!(report["status"], "corrected");

    let before = audit_count(&app, "patient.view", patient).await;
    let (status, bundle) = fhir(
        &app,
        &clinician,
        "/fhir/DiagnosticReport?patient=fhir-api-1",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bundle["total"], 1);
    assert_eq!(bundle["entry"][0]["resource"]["status"], "corrected");
    assert_eq!(
        bundle["entry"][0]["fullUrl"],
        format!("/fhir/DiagnosticReport/{run}")
    );
    assert_eq!(audit_count(&app, "patient.view", patient).await, before + 1);

    // An MRN no patient has: an empty search set; one no patient could have: refused.
    let (status, bundle) = fhir(&app, &clinician, "/fhir/DiagnosticReport?patient=NOBODY-9").await;
    assert_eq!(
        (status, bundle["total"].clone()),
        (StatusCode::OK, json!(0))
    );
    let (status, _) = fhir(&app, &clinician, "/fhir/DiagnosticReport?patient=%20").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // An operator never opens a released report; nobody without credentials.
    let (status, _) = fhir(&app, &operator, &format!("/fhir/DiagnosticReport/{run}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let anonymous = app
        .send(
            As::Nobody,
            Method::GET,
            &format!("/fhir/DiagnosticReport/{run}"),
            None,
        )
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
