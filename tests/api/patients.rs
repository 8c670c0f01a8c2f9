//! Patients: register, duplicate, show, unknown ids, trend as JSON and CSV, and the audit of
//! every view.

use appliance::store::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{As, assert_problem, spawn_app};

#[tokio::test]
async fn a_patient_is_registered_once_shown_and_every_view_is_audited() {
    let app = spawn_app().await;
    let operator = app.token(Role::Operator).to_owned();
    let clinician = app.token(Role::Clinician).to_owned();
    let created = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": " mrn-42 ", "birth_date": "1961-04-23" })),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let patient: Value = created.json().await.unwrap();
    assert_eq!(patient["mrn"], "MRN-42");
    let again = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": "MRN-42", "birth_date": "1961-04-23" })),
        )
        .await;
    assert_problem(again, StatusCode::CONFLICT, "MRN-42").await;
    assert_eq!(app.count("patients").await, 1);

    let views_before: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'patient.%view'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let id = patient["id"].as_i64().unwrap();
    let shown = app
        .send(
            As::Bearer(&clinician),
            Method::GET,
            &format!("/api/v1/patients/{id}"),
            None,
        )
        .await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert_eq!(shown.json::<Value>().await.unwrap()["mrn"], "MRN-42");
    let list = app
        .send(
            As::Bearer(&clinician),
            Method::GET,
            "/api/v1/patients?mrn_prefix=mrn",
            None,
        )
        .await;
    let list = list.json::<Value>().await.unwrap();
    assert_eq!(list["patients"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["next_after"], Value::Null);
    let trend = app
        .send(
            As::Bearer(&clinician),
            Method::GET,
            &format!("/api/v1/patients/{id}/trend"),
            None,
        )
        .await;
    assert_eq!(trend.json::<Value>().await.unwrap(), json!([]));
    let audited: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT action, actor FROM audit_log WHERE action LIKE 'patient.%view' ORDER BY id",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert_eq!(audited.len() as i64 - views_before, 2, "{audited:?}");
    assert!(
        audited
            .iter()
            .all(|(_, actor)| actor.as_deref().unwrap_or("").contains("claire"))
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_named() {
    let app = spawn_app().await;
    let clinician = app.token(Role::Clinician).to_owned();
    for (path, status, names) in [
        ("/api/v1/patients/999", StatusCode::NOT_FOUND, "patient 999"),
        (
            "/api/v1/patients/999/trend",
            StatusCode::NOT_FOUND,
            "patient 999",
        ),
        (
            "/api/v1/patients/abc",
            StatusCode::UNPROCESSABLE_ENTITY,
            "id",
        ),
        (
            "/api/v1/patients/-3",
            StatusCode::UNPROCESSABLE_ENTITY,
            "id",
        ),
        ("/api/v1/runs/999", StatusCode::NOT_FOUND, "run 999"),
        ("/api/v1/runs/999/events", StatusCode::NOT_FOUND, "run 999"),
        (
            "/api/v1/patients?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit",
        ),
        (
            "/api/v1/patients?limit=lots",
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit",
        ),
        (
            "/api/v1/patients?colour=red",
            StatusCode::UNPROCESSABLE_ENTITY,
            "colour",
        ),
        (
            "/api/v1/patients/1/trend?format=xml",
            StatusCode::UNPROCESSABLE_ENTITY,
            "format",
        ),
        (
            "/api/v1/nothing-here",
            StatusCode::NOT_FOUND,
            "/api/v1/nothing-here",
        ),
    ] {
        let response = app
            .send(As::Bearer(&clinician), Method::GET, path, None)
            .await;
        assert_problem(response, status, names).await;
    }
    let wrong_method = app
        .send(As::Bearer(&clinician), Method::PUT, "/api/v1/qc", None)
        .await;
    assert_problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method").await;
}

#[tokio::test]
async fn the_trend_lists_each_runs_current_result_as_json_and_csv() {
    let app = spawn_app().await;
    let operator = app.token(Role::Operator).to_owned();
    let clinician = app.token(Role::Clinician).to_owned();
    let mut runs = Vec::new();
    for (cells, drawn_at) in [
        (40.0, "2026-01-05T09:00:00Z"),
        (0.0, "2026-02-05T09:00:00Z"),
    ] {
        let ticket: Value = app
            .send(
                As::Bearer(&operator),
                Method::POST,
                "/api/v1/runs",
                Some(
                    &json!({ "patient_mrn": "T-1", "accession": format!("T-1-{drawn_at}"), "blood_ml": 7.5, "drawn_at": drawn_at,
                              "indication": "breast", "simulate": { "cells": cells } }),
                ),
            )
            .await
            .json()
            .await
            .unwrap();
        let id = appliance::store::RunId(ticket["id"].as_i64().unwrap());
        app.engine.wait_for_run(id).await.unwrap();
        runs.push(id.0);
    }
    let patient = app
        .store
        .patient_by_mrn(&appliance::store::patients::Mrn::parse("T-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let trend: Value = app
        .send(
            As::Bearer(&clinician),
            Method::GET,
            &format!("/api/v1/patients/{}/trend", patient.id.0),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let points = trend.as_array().unwrap();
    assert_eq!(points.len(), 2);
    for (point, run) in points.iter().zip(&runs) {
        assert_eq!(point["run_id"], *run);
        for key in [
            "drawn_at",
            "per_7_5ml",
            "per_7_5ml_ci95",
            "category",
            "call",
            "run_id",
        ] {
            assert!(point.get(key).is_some(), "{key} in {point}");
        }
    }
    // With the site's offset (UTC here).
    assert_eq!(points[0]["drawn_at"], "2026-01-05T09:00:00+00:00");
    let csv = app
        .send(
            As::Bearer(&clinician),
            Method::GET,
            &format!("/api/v1/patients/{}/trend?format=csv", patient.id.0),
            None,
        )
        .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("run_id,drawn_at,per_7_5ml,"));
    assert!(lines[1].starts_with(&format!("{},2026-01-05T09:00:00+00:00,", runs[0])));
    assert!(lines[0].contains(",call,status,"), "{}", lines[0]);
}

#[tokio::test]
async fn a_run_names_the_patient_by_two_identifiers_and_a_mismatch_stores_nothing() {
    let app = spawn_app().await;
    let operator = app.token(Role::Operator).to_owned();
    let registered = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": "PPI-1", "birth_date": "1961-04-23", "indication": "prostate" })),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let patient: Value = registered.json().await.unwrap();
    assert_eq!(patient["birth_date"], "1961-04-23");
    assert_eq!(patient["indication"], "prostate");
    assert_eq!(patient["name"], Value::Null, "minimum necessary by default");
    let named = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": "PPI-2", "birth_date": "1961-04-23", "name": "Jane Roe" })),
        )
        .await;
    assert_problem(named, StatusCode::UNPROCESSABLE_ENTITY, "name").await;

    let (samples, runs) = (app.count("samples").await, app.count("runs").await);
    let order =
        |birth_date: Option<&str>, accession: &str, indication: &str, reason: Option<&str>| {
            json!({ "patient_mrn": "PPI-1", "birth_date": birth_date, "accession": accession,
                "blood_ml": 7.5, "indication": indication,
                "indication_override_reason": reason, "simulate": { "cells": 0 } })
        };
    for (body, field) in [
        (
            order(Some("1961-04-24"), "PPI-A1", "prostate", None),
            "birth date",
        ),
        (order(None, "PPI-A1", "prostate", None), "birth date"),
        (
            order(Some("1961-04-23"), "PPI-A1", "breast", None),
            "indication",
        ),
    ] {
        let refused = app
            .send(
                As::Bearer(&operator),
                Method::POST,
                "/api/v1/runs",
                Some(&body),
            )
            .await;
        assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, field).await;
    }
    assert_eq!(app.count("samples").await, samples, "nothing stored");
    assert_eq!(app.count("runs").await, runs, "nothing stored");

    // The right identifiers, then an override for another indication with its reason.
    for (accession, indication, reason) in [
        ("PPI-A1", "prostate", None),
        (
            "PPI-A2",
            "breast",
            Some("second primary; oncologist's order"),
        ),
    ] {
        let started = app
            .send(
                As::Bearer(&operator),
                Method::POST,
                "/api/v1/runs",
                Some(&order(Some("1961-04-23"), accession, indication, reason)),
            )
            .await;
        assert_eq!(started.status(), StatusCode::ACCEPTED, "{accession}");
        let ticket: Value = started.json().await.unwrap();
        let run = app
            .store
            .run(appliance::store::RunId(ticket["id"].as_i64().unwrap()))
            .await
            .unwrap();
        let sample = app.store.sample(run.sample_id).await.unwrap();
        assert_eq!(sample.accession.as_str(), accession);
        assert_eq!(sample.indication.as_deref(), Some(indication));
        assert_eq!(sample.indication_override_reason.as_deref(), reason);
        app.engine.wait_for_run(run.id).await.unwrap();
    }
    let reused = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/runs",
            Some(&order(Some("1961-04-23"), "PPI-A1", "prostate", None)),
        )
        .await;
    assert_problem(reused, StatusCode::CONFLICT, "PPI-A1").await;
}

#[tokio::test]
async fn a_patients_runs_are_listed_a_bounded_page_at_a_time_newest_first() {
    let app = spawn_app().await;
    let clinician = app.token(Role::Clinician).to_owned();
    let mut seeded = Vec::new();
    for i in 0..23 {
        let run =
            crate::pages_clinical::seed_run(&app, "PR-1", &format!("PR1-{i:02}"), i % 3 != 0).await;
        seeded.push(run.0);
    }
    // Another patient's run is not among them.
    let other = crate::pages_clinical::seed_run(&app, "PR-2", "PR2-00", true).await;
    let patient = app
        .store
        .patient_by_mrn(&appliance::store::patients::Mrn::parse("PR-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let base = format!("/api/v1/patients/{}/runs", patient.id.0);

    // Pages of 10: 10 + 10 + 3, each continuing where the one before stopped.
    let (mut listed, mut sizes) = (Vec::new(), Vec::new());
    let mut path = format!("{base}?limit=10");
    loop {
        let response = app
            .send(As::Bearer(&clinician), Method::GET, &path, None)
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let page: Value = response.json().await.unwrap();
        let runs = page["runs"].as_array().unwrap();
        sizes.push(runs.len());
        for run in runs {
            listed.push(run["run"]["id"].as_i64().unwrap());
            assert_eq!(run["accession"].as_str().unwrap().get(..4), Some("PR1-"));
            if let Some(result) = run["result"].as_object() {
                assert_eq!(result["status"], "PRELIMINARY", "{run}");
                assert_eq!(result["version"], 1);
                assert!(result.contains_key("per_7_5ml") && result.contains_key("call"));
            }
        }
        match page["next_before"].as_i64() {
            Some(next) => path = format!("{base}?limit=10&before={next}"),
            None => break,
        }
    }
    assert_eq!(sizes, [10, 10, 3]);
    let mut newest_first = seeded.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first, "every run once, newest first, no gap");
    assert!(!listed.contains(&other.0));

    // The default page is 25; the bound is 1 to 100, named when refused.
    let all: Value = app
        .send(As::Bearer(&clinician), Method::GET, &base, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["runs"].as_array().unwrap().len(), 23);
    assert!(all["next_before"].is_null());
    for limit in ["101", "0"] {
        let refused = app
            .send(
                As::Bearer(&clinician),
                Method::GET,
                &format!("{base}?limit={limit}"),
                None,
            )
            .await;
        let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, "limit").await;
        assert!(
            problem["detail"].as_str().unwrap().contains("1 to 100"),
            "{problem}"
        );
    }
    let bad_cursor = app
        .send(
            As::Bearer(&clinician),
            Method::GET,
            &format!("{base}?before=x"),
            None,
        )
        .await;
    assert_problem(bad_cursor, StatusCode::UNPROCESSABLE_ENTITY, "before").await;
    let unknown = app
        .send(
            As::Bearer(&clinician),
            Method::GET,
            "/api/v1/patients/999999/runs",
            None,
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // Each page viewed is audited.
    let views: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'patient.runs_view'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(views, 4);
}
