//! The clinician's lists and trend in a real browser (issue 11 point 6), on the desktop and on the
//! tablet: the patient list with an empty search and a search by MRN prefix and birth date, a
//! wrong search said in words, the worklist of results awaiting release, a patient's trend on
//! its logarithmic axis with a preliminary result and a treatment marker added through the form.
//! Then the lab admin resends a parked outbox message (`outbox`).
//! Every step is a full-page screenshot in `target/browser-artifacts/clinician/`.

use anyhow::{Context, Result, ensure};
use serde_json::json;

use crate::browser::{Browser, DESKTOP, TABLET};
use crate::helpers::{self, As, PASSWORD, TestApp};

use appliance::store::RunId;
use appliance::store::users::Role;
use reqwest::Method;

/// A patient with two runs awaiting release (one drawn the same day as the other), and more
/// patients than one page of the list holds.
async fn seed(app: &TestApp) -> Result<i64> {
    let operator = app.token(Role::Operator).to_owned();
    let admin = app.token(Role::LabAdmin).to_owned();
    let mut patient = 0;
    for (n, (cells, drawn_at)) in [
        (3.0, "2026-11-02T08:30:00Z"),
        (40.0, "2026-11-16T08:30:00Z"),
        (8.0, "2026-11-16T15:10:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        let ticket: serde_json::Value = app
            .send(
                As::Bearer(&operator),
                Method::POST,
                "/api/v1/runs",
                Some(&json!({
                    "patient_mrn": "CLIN-0001", "birth_date": "1961-04-23",
                    "accession": format!("CLIN-0001-A{n}"), "blood_ml": 7.5,
                    "indication": "breast", "drawn_at": drawn_at,
                    "simulate": { "cells": cells },
                })),
            )
            .await
            .json()
            .await
            .context("a run ticket")?;
        let id = ticket["id"]
            .as_i64()
            .with_context(|| format!("a run id in {ticket}"))?;
        app.engine
            .wait_for_run(RunId(id))
            .await
            .context("the run ends")?;
        let run = app.store.run(RunId(id)).await?;
        patient = app.store.sample(run.sample_id).await?.patient_id.0;
    }
    for n in 2..=30 {
        app.send(
            As::Bearer(&admin),
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": format!("CLIN-{n:04}"), "birth_date": "1970-01-01" })),
        )
        .await;
    }
    Ok(patient)
}

async fn sign_in(browser: &mut Browser, username: &str) -> Result<()> {
    browser.goto("/sign-in").await?;
    browser.fill("#username", username).await?;
    browser.fill("#password", PASSWORD).await?;
    browser
        .click("form.stacked-form button[type=submit]")
        .await?;
    browser.wait_for(".user-box .user-name").await?;
    Ok(())
}

async fn flow(browser: &mut Browser, patient: i64) -> Result<()> {
    sign_in(browser, "claire").await?;
    for (viewport, name) in [(DESKTOP, "desktop"), (TABLET, "tablet")] {
        browser.use_viewport(viewport).await?;
        // The header's box, empty: the list, not an error.
        browser.goto("/").await?;
        browser
            .click("form.patient-search button[type=submit]")
            .await?;
        browser.wait_for("table.patient-list").await?;
        let text = browser.main_text().await?;
        ensure!(!text.contains("422"), "an empty search lists: {text}");
        ensure!(text.contains("CLIN-0001"), "the list shows the patients");
        ensure!(
            browser.find_all("a[rel=next]").await?.len() == 1,
            "31 patients: a next page"
        );
        browser.no_hidden_columns().await?;
        browser.step(&format!("patient-list-{name}")).await?;
        browser.click("a[rel=next]").await?;
        browser.wait_for("a[rel=first]").await?;
        browser.step(&format!("patient-list-page-2-{name}")).await?;
        // A search by MRN prefix and birth date.
        browser.goto("/patients").await?;
        browser.fill("#search-mrn-prefix", "clin-000").await?;
        browser
            .set_value("#search-birth-date", "1961-04-23")
            .await?;
        browser
            .click("form.search-form button[type=submit]")
            .await?;
        // The unsearched list's table is still there until the search's page replaces it.
        browser.wait_for_path("/patients?").await?;
        browser.wait_for("table.patient-list").await?;
        let rows = browser.find_all("table.patient-list tbody tr").await?;
        ensure!(
            rows.len() == 1,
            "one patient born 1961-04-23: {}",
            rows.len()
        );
        browser.step(&format!("patient-search-{name}")).await?;
        // A wrong one, in words.
        browser.goto("/patients?mrn_prefix=CLIN%25").await?;
        let text = browser.main_text().await?;
        ensure!(
            text.contains("MRN: the start of an MRN"),
            "the wrong field is named in words: {text}"
        );
        ensure!(!text.contains("HTTP 422"));
        ensure!(
            !text.contains("No patient matches"),
            "a refused search is not said to have found nobody: {text}"
        );
        browser
            .step(&format!("patient-search-wrong-{name}"))
            .await?;
        // The worklist.
        browser.goto("/worklist").await?;
        browser.wait_for("table.worklist").await?;
        let text = browser.main_text().await?;
        ensure!(text.contains("CLIN-0001-A0"), "the accession: {text}");
        browser.no_hidden_columns().await?;
        browser.step(&format!("worklist-{name}")).await?;
    }

    // The trend, on the desktop: preliminary results, same-day draws apart, a marker added.
    browser.use_viewport(DESKTOP).await?;
    browser.goto(&format!("/patients/{patient}")).await?;
    browser.wait_for("svg.chart-trend").await?;
    let preliminary = browser
        .find_all("svg.chart-trend .point-preliminary")
        .await?
        .len();
    ensure!(preliminary == 3, "three unreleased results: {preliminary}");
    browser.fill("#event-label", "Started docetaxel").await?;
    browser.set_value("#event-day", "2026-11-09").await?;
    browser.click("#event-form button[type=submit]").await?;
    browser.wait_for(".event-list").await?;
    let text = browser.main_text().await?;
    ensure!(
        text.contains("2026-11-09: Started docetaxel"),
        "the marker is listed: {text}"
    );
    let on_chart = browser
        .execute(
            "return document.querySelector('svg.chart-trend').textContent.includes('Started docetaxel');",
        )
        .await?;
    ensure!(on_chart == json!(true), "the marker is on the chart");
    browser.step("trend-with-marker-desktop").await?;
    // A marker with a wrong day keeps the form in view with the problem beside it.
    browser.fill("#event-label", "Surgery").await?;
    browser.set_value("#event-day", "1999-01-01").await?;
    browser.click("#event-form button[type=submit]").await?;
    browser.wait_for("#event-error").await?;
    browser.step("trend-marker-wrong-day-desktop").await?;
    browser.use_viewport(TABLET).await?;
    browser.goto(&format!("/patients/{patient}")).await?;
    browser.wait_for("svg.chart-trend").await?;
    browser.no_hidden_columns().await?;
    browser.step("trend-tablet").await?;

    // The lab manager's QC review and the account page, on the desktop.
    browser.use_viewport(DESKTOP).await?;
    browser.click(".user-box form.sign-out button").await?;
    browser.wait_for("body.signed-out #username").await?;
    sign_in(browser, "lars").await?;
    browser.goto("/qc?from=2026-01-01").await?;
    browser.wait_for("table.qc-statistics").await?;
    let text = browser.main_text().await?.to_lowercase();
    ensure!(
        text.contains("observed mean") && text.contains("negative control"),
        "each lot's statistics and level: {text}"
    );
    browser.step("qc-review-desktop").await?;
    browser.goto("/account").await?;
    browser.wait_for("#current_password").await?;
    browser.step("account-desktop").await?;
    // The outbox: a parked message resent with a reason.
    crate::outbox::resend_step(browser).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_searches_patients_works_the_worklist_and_marks_the_trend_in_chromium() {
    let app = helpers::spawn_app_with(|config| {
        config.destinations = vec![crate::outbox::quiet_destination()];
    })
    .await;
    let patient = seed(&app).await.expect("seeded");
    crate::outbox::seed_parked(&app)
        .await
        .expect("a parked outbox message");
    crate::in_chromium(
        "clinician",
        "the clinician's browser flow",
        &app,
        move |browser, _| Box::pin(flow(browser, patient)),
    )
    .await;
}
