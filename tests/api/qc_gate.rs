//! The QC gate (issue 11 point 1) through the API: a fresh instrument without QC refuses a
//! patient run and says in words what is missing, storing nothing; under "run, but hold" the run
//! starts and its result is not released until QC passes at both control levels.

use appliance::site::QcPolicy;
use appliance::store::RunId;
use appliance::store::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{As, PASSWORD, TestApp, assert_problem, record_passing_qc, spawn_fresh_app};

fn order(accession: &str) -> Value {
    json!({ "patient_mrn": "QC-1", "accession": accession, "blood_ml": 7.5,
            "indication": "breast", "simulate": { "cells": 20 } })
}

async fn release(app: &TestApp, id: i64) -> reqwest::Response {
    let clinician = app.token(Role::Clinician).to_owned();
    app.send(
        As::Bearer(&clinician),
        Method::POST,
        &format!("/api/v1/runs/{id}/release"),
        Some(
            &json!({ "password": PASSWORD, "printed_name": "Claire Tester", "meaning": "release" }),
        ),
    )
    .await
}

#[tokio::test]
async fn without_passing_qc_a_run_does_not_start_and_says_what_is_missing() {
    let app = spawn_fresh_app(|_| {}).await;
    crate::helpers::approve_simulated_calibration(&app).await;
    let operator = app.token(Role::Operator).to_owned();
    let refused = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/runs",
            Some(&order("QC-A1")),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let problem: Value = refused.json().await.expect("a problem document");
    let detail = problem["detail"].as_str().unwrap_or_default().to_owned();
    for words in ["no negative control", "no positive control", "SIM-LOT-1"] {
        assert!(detail.contains(words), "{words:?} in {detail}");
    }
    assert_eq!(app.count("samples").await, 0, "nothing stored");
    assert_eq!(app.count("runs").await, 0, "nothing stored");

    // The lab runs its controls: the run starts.
    record_passing_qc(&app.store).await;
    let started = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/runs",
            Some(&order("QC-A1")),
        )
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn run_but_hold_starts_the_run_and_holds_its_result_until_qc_passes() {
    let app = spawn_fresh_app(|config| config.qc.policy = QcPolicy::RunButHold).await;
    crate::helpers::approve_simulated_calibration(&app).await;
    let operator = app.token(Role::Operator).to_owned();
    let started = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/runs",
            Some(&order("QC-A2")),
        )
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let id = started.json::<Value>().await.expect("ticket")["id"]
        .as_i64()
        .expect("run id");
    app.engine.wait_for_run(RunId(id)).await.expect("ends");
    assert_problem(release(&app, id).await, StatusCode::CONFLICT, "QC hold").await;
    assert_eq!(app.count("result_signatures").await, 0);

    record_passing_qc(&app.store).await;
    let released = release(&app, id).await;
    assert_eq!(
        released.status(),
        StatusCode::OK,
        "{:?}",
        released.text().await
    );
}
