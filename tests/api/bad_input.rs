//! Bad input on every endpoint with a body: wrong types, missing fields, unknown fields,
//! refused values, malformed JSON, a wrong content type, oversized bodies. Each gets a 4xx
//! problem+json that names the problem, never a 500, and nothing is stored.

use appliance::store::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{As, assert_problem, spawn_app};

const TABLES: [&str; 6] = [
    "patients",
    "samples",
    "runs",
    "api_tokens",
    "calibrations",
    "result_signatures",
];

async fn counts(app: &crate::helpers::TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push(app.count(table).await);
    }
    counts
}

#[tokio::test]
async fn bad_bodies_get_a_named_4xx_problem_and_store_nothing() {
    let app = spawn_app().await;
    let admin = app.token(Role::LabAdmin).to_owned();
    let before = counts(&app).await;
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "/api/v1/patients",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "mrn",
        ),
        (
            "/api/v1/patients",
            json!({ "mrn": 42 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            "/api/v1/patients",
            json!({ "mrn": "M-1", "nickname": "Jane" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            "/api/v1/patients",
            json!({ "mrn": "M-1" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "birth_date",
        ),
        (
            "/api/v1/patients",
            json!({ "mrn": "M-1", "birth_date": "1961-02-30" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "birth date",
        ),
        (
            "/api/v1/patients",
            json!({ "mrn": "no digits", "birth_date": "1970-01-01" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "mrn",
        ),
        (
            "/api/v1/patients",
            json!([1, 2]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            "/api/v1/runs",
            json!({ "blood_ml": 7.5 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "patient_mrn",
        ),
        (
            "/api/v1/runs",
            json!({ "patient_mrn": "M-3", "blood_ml": 7.5 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "accession",
        ),
        (
            "/api/v1/runs",
            json!({ "patient_mrn": "M-2", "accession": "M-2-A72", "blood_ml": "lots" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            "/api/v1/runs",
            json!({ "patient_mrn": "M-2", "accession": "M-2-A78", "blood_ml": -1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "blood",
        ),
        (
            "/api/v1/runs",
            json!({ "patient_mrn": "M-2", "accession": "M-2-A84", "blood_ml": 7.5, "colour": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "colour",
        ),
        (
            "/api/v1/runs",
            json!({ "patient_mrn": "M-2", "accession": "M-2-A90", "blood_ml": 7.5, "simulate": { "cells": -5 } }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cells",
        ),
        (
            "/api/v1/runs",
            json!({ "patient_mrn": "M-2", "accession": "M-2-A96", "blood_ml": 7.5, "simulate": { "cels": 5 } }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cels",
        ),
        (
            "/api/v1/runs",
            json!({ "patient_mrn": "M-2", "accession": "M-2-A102", "blood_ml": 7.5, "extra_tubes": ["plasma"] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "extra_tubes",
        ),
        (
            "/api/v1/runs",
            json!({ "patient_mrn": "M-2", "accession": "M-2-A108", "blood_ml": 7.5, "drawn_at": "yesterday" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "draw",
        ),
        (
            "/api/v1/runs",
            json!({ "patient_mrn": "", "accession": "X-A114", "blood_ml": 7.5 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "MRN",
        ),
        (
            "/api/v1/tokens",
            json!({ "label": "" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "label",
        ),
        (
            "/api/v1/tokens",
            json!({ "label": true }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            "/api/v1/calibrations",
            json!({ "content": "not = [toml" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "content",
        ),
        (
            "/api/v1/calibrations",
            json!({ "content": "lot = \"L1\"" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "content",
        ),
        (
            "/api/v1/calibrations",
            json!({ "note": "no content" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "content",
        ),
        (
            "/api/v1/runs/1/cancel",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason",
        ),
        (
            "/api/v1/runs/1/release",
            json!({ "password": "x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "printed_name",
        ),
        (
            "/api/v1/runs/999/release",
            json!({ "password": "x", "printed_name": "y" }),
            StatusCode::NOT_FOUND,
            "run 999",
        ),
        (
            "/api/v1/runs/999/release",
            json!({ "password": "x", "printed_name": "y", "meaning": "approve" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "meaning",
        ),
        (
            "/api/v1/runs/999/cancel",
            json!({ "reason": "mistake" }),
            StatusCode::NOT_FOUND,
            "run 999",
        ),
        (
            "/api/v1/runs/999/confirm-tube",
            json!(null),
            StatusCode::NOT_FOUND,
            "run 999",
        ),
    ];
    for (path, body, status, names) in cases {
        let response = app
            .send(As::Bearer(&admin), Method::POST, path, Some(&body))
            .await;
        assert_ne!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path} {body}"
        );
        assert_problem(response, status, names).await;
    }
    let malformed = app
        .send_raw(
            &admin,
            Method::POST,
            "/api/v1/patients",
            "application/json",
            b"{\"mrn\": ".to_vec(),
        )
        .await;
    assert_problem(malformed, StatusCode::BAD_REQUEST, "EOF").await;
    let not_json = app
        .send_raw(
            &admin,
            Method::POST,
            "/api/v1/patients",
            "text/plain",
            b"mrn=M-3".to_vec(),
        )
        .await;
    assert_problem(
        not_json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "application/json",
    )
    .await;
    let huge = format!("{{\"mrn\": \"M-4\", \"pad\": \"{}\"}}", "x".repeat(200_000));
    let oversized = app
        .send_raw(
            &admin,
            Method::POST,
            "/api/v1/patients",
            "application/json",
            huge.into_bytes(),
        )
        .await;
    assert_problem(oversized, StatusCode::PAYLOAD_TOO_LARGE, "65536 bytes").await;
    assert_eq!(counts(&app).await, before, "nothing stored ({TABLES:?})");
}

/// The outside probe's degenerate calibrations, volumes and draw times: each is refused with
/// the field named, nothing is stored, and the same calibration with sane numbers is accepted.
#[tokio::test]
async fn degenerate_calibrations_volumes_and_draw_times_are_refused_by_name() {
    let app = spawn_app().await;
    let admin = app.token(Role::LabAdmin).to_owned();
    let valid = r#"lot = "LOT-P"
te_ms = 1.0
slope_per_s_per_cell = 0.004
slope_se = 0.0001
intercept_per_s = 0.02
intercept_se = 0.002
slope_intercept_cov = -1e-8
lob_cells = 0.5
lod_cells = 1.0
loq_cells = 2.0
created = "2026-11-24T04:00:00Z"
"#;
    let before = counts(&app).await;
    for (from, to, field) in [
        (
            "slope_per_s_per_cell = 0.004",
            "slope_per_s_per_cell = 1e-300",
            "slope_per_s_per_cell",
        ),
        ("slope_se = 0.0001", "slope_se = 1e308", "slope_se"),
        (
            "intercept_per_s = 0.02",
            "intercept_per_s = 1e308",
            "intercept_per_s",
        ),
        ("lob_cells = 0.5", "lob_cells = -5", "lob_cells"),
        ("2026-11-24T04:00:00Z", "9999-99-99T00:00:00Z", "created"),
        (
            "slope_intercept_cov = -1e-8",
            "slope_intercept_cov = 1",
            "slope_intercept_cov",
        ),
    ] {
        let content = valid.replace(from, to);
        assert_ne!(content, valid, "{from}");
        let response = app
            .send(
                As::Bearer(&admin),
                Method::POST,
                "/api/v1/calibrations",
                Some(&json!({ "content": content })),
            )
            .await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, field).await;
    }
    for (body, names) in [
        (
            json!({ "patient_mrn": "M-9", "accession": "M-9-A", "blood_ml": 1e-300 }),
            "blood",
        ),
        (
            json!({ "patient_mrn": "M-9", "accession": "M-9-A", "blood_ml": 0.1 }),
            "blood",
        ),
        (
            json!({ "patient_mrn": "M-9", "accession": "M-9-A", "blood_ml": 7.5, "drawn_at": "1970-01-01T00:00:00Z" }),
            "draw",
        ),
        (
            json!({ "patient_mrn": "M-9", "accession": "M-9-A", "blood_ml": 7.5, "drawn_at": "2100-01-01T00:00:00Z" }),
            "draw",
        ),
    ] {
        let response = app
            .send(
                As::Bearer(&admin),
                Method::POST,
                "/api/v1/runs",
                Some(&body),
            )
            .await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, names).await;
    }
    assert_eq!(counts(&app).await, before, "nothing stored ({TABLES:?})");
    let accepted = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            "/api/v1/calibrations",
            Some(&json!({ "content": valid })),
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::CREATED);
}
