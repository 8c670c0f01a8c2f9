//! The clinical report (issue 11, points 4, 5 and 7) through the API: the run's `status`
//! (PRELIMINARY until released, then FINAL), the QC it relied on kept with the run, and the PDF at
//! `GET /api/v1/runs/{id}/report.pdf` — one page whose extracted text (`pdftotext`, Debian's
//! `poppler-utils`, installed by `scripts/test` when missing) holds every field the issue lists,
//! a second page of curves only when asked, audited as a view and never cached.

use std::process::Command;

use appliance::site::{PaperSize, SiteTimeZone};
use appliance::store::RunId;
use appliance::store::users::Role;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{As, PASSWORD, TestApp, spawn_app_with};

/// Text and page count of a PDF, through poppler's `pdftotext` and `pdfinfo`.
fn extract(pdf: &[u8]) -> (String, u32) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf).expect("PDF written");
    let text = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs (Debian's poppler-utils; scripts/test installs it)");
    assert!(text.status.success(), "pdftotext: {text:?}");
    let info = Command::new("pdfinfo")
        .arg(&path)
        .output()
        .expect("pdfinfo runs");
    assert!(info.status.success(), "pdfinfo: {info:?}");
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo names the page count: {info}"));
    (String::from_utf8_lossy(&text.stdout).into_owned(), pages)
}

async fn pdf(app: &TestApp, role: Role, path: &str) -> reqwest::Response {
    let token = app.token(role).to_owned();
    app.send(As::Bearer(&token), Method::GET, path, None).await
}

async fn report_text(app: &TestApp, id: i64) -> (String, u32) {
    let response = pdf(
        app,
        Role::Clinician,
        &format!("/api/v1/runs/{id}/report.pdf"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE].to_str().ok(),
        Some("application/pdf")
    );
    assert_eq!(
        response.headers()[CACHE_CONTROL].to_str().ok(),
        Some("no-store")
    );
    let bytes = response.bytes().await.expect("PDF bytes");
    assert!(bytes.starts_with(b"%PDF-"), "a PDF");
    extract(&bytes)
}

#[tokio::test]
async fn the_pdf_report_holds_every_field_on_one_page_and_follows_the_release() {
    let app = spawn_app_with(|config| {
        config.site.time_zone = "Europe/Berlin".parse::<SiteTimeZone>().expect("a zone");
        config.site.lab_name = "Klinikum Nord CTC Lab".into();
        config.site.lab_address = "Hauptstraße 1\n10115 Berlin".into();
        config.site.instrument_serial = "FC-0042".into();
        config.site.paper_size = PaperSize::A4;
    })
    .await;
    let operator = app.token(Role::Operator).to_owned();
    // 09:30 local time in Berlin in December (+01:00) is 08:30 UTC.
    let ticket: Value = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/runs",
            Some(&json!({ "patient_mrn": "PDF-1", "birth_date": "1961-04-23",
                          "accession": "26-CTC-000777", "blood_ml": 7.5,
                          "indication": "breast", "drawn_at": "2026-12-01T09:30",
                          "simulate": { "cells": 40 } })),
        )
        .await
        .json()
        .await
        .expect("ticket");
    let id = ticket["id"].as_i64().expect("run id");
    app.engine
        .wait_for_run(RunId(id))
        .await
        .expect("run settles");

    // The API says the result is preliminary, and the QC it started on is kept with the run.
    let clinician = app.token(Role::Clinician).to_owned();
    let run: Value = app
        .send(
            As::Bearer(&clinician),
            Method::GET,
            &format!("/api/v1/runs/{id}"),
            None,
        )
        .await
        .json()
        .await
        .expect("run");
    assert_eq!(run["result"]["status"], "PRELIMINARY", "{run}");
    assert_eq!(app.count("run_qc_basis").await, 2, "both levels, at start");

    let (text, pages) = report_text(&app, id).await;
    assert_eq!(pages, 1, "a normal result is one page:\n{text}");
    for field in [
        "Klinikum Nord CTC Lab",
        "Hauptstraße 1",
        "FC-0042",
        "PDF-1",
        "1961-04-23",
        "26-CTC-000777",
        "Tue 1 Dec 2026, 09:30 CET",
        "CTC/7.5 mL (95 % CI",
        "Category",
        "breast; cut-off 5 CTC/7.5 mL",
        "PRELIMINARY",
        "Negative control (tests, SIM-LOT-1)",
        "Positive control (tests, SIM-LOT-1)",
        "judged at the run's start",
        "reagent lot SIM-LOT-1",
        "Not signed",
        "Page 1 of 1",
    ] {
        assert!(text.contains(field), "{field:?} in the report:\n{text}");
    }

    // Released: FINAL, with the signature's printed name, time and meaning.
    let released = app
        .send(
            As::Bearer(&clinician),
            Method::POST,
            &format!("/api/v1/runs/{id}/release"),
            Some(&json!({ "password": PASSWORD, "printed_name": "claire Tester", "meaning": "release" })),
        )
        .await;
    assert_eq!(released.status(), StatusCode::OK);
    let (text, pages) = report_text(&app, id).await;
    assert_eq!(pages, 1);
    for field in [
        "FINAL",
        "Signed by",
        "claire Tester",
        "Released for clinical use",
        "judged at release",
    ] {
        assert!(
            text.contains(field),
            "{field:?} in the released report:\n{text}"
        );
    }
    assert!(!text.contains("PRELIMINARY"), "{text}");

    // The curves come on a second page only when asked.
    let response = pdf(
        &app,
        Role::Clinician,
        &format!("/api/v1/runs/{id}/report.pdf?curves=true"),
    )
    .await;
    let (text, pages) = extract(&response.bytes().await.expect("bytes"));
    assert_eq!(pages, 2);
    assert!(text.contains("Page 2 of 2") && text.contains("quad tube, replicate 1"));
    // Each curve names its stored fit, which is drawn over the echoes.
    assert!(text.contains("replicate 1 — T2 "), "{text}");

    // Each report is a view of the result, audited.
    let views: i64 = sqlx::query_scalar(
        r#"SELECT COUNT(*) FROM audit_log
           WHERE action = 'run.result_view' AND detail_json LIKE '%"from":"pdf"%'"#,
    )
    .fetch_one(app.store.pool())
    .await
    .expect("count");
    assert_eq!(views, 3);

    // A released report is not the operator's to open.
    let refused = pdf(
        &app,
        Role::Operator,
        &format!("/api/v1/runs/{id}/report.pdf"),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}
