//! The lab admin's outbox in a real browser (issue 14 point 4): a released result whose message
//! the LIS rejected is listed as parked with the receiver's reason, and resent with a reason
//! through the row's form. A step of the clinician flow (its lab-manager part), screenshots
//! `outbox-parked-desktop` and `outbox-resent-desktop`.

use anyhow::{Context, Result, ensure};
use appliance::config::DestinationConfig;
use appliance::store::RunId;
use appliance::store::outbox::{DeliveryOutcome, OutboxFilter};
use appliance::store::users::Role;
use reqwest::Method;
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::{As, PASSWORD, TestApp};

/// An HL7 v2 destination nobody sends to (the test app runs no sender): messages wait in the
/// outbox until the test records an outcome.
pub fn quiet_destination() -> DestinationConfig {
    DestinationConfig::Hl7v2 {
        name: Some("lis".to_owned()),
        address: "127.0.0.1:9".to_owned(),
        receiving_application: String::new(),
        receiving_facility: String::new(),
        sending_facility: String::new(),
        mrn_authority: String::new(),
        timeout_ms: 1_000,
        tls: false,
        ca_file: None,
        server_name: None,
    }
}

/// A released result of another patient whose message the LIS refused: parked.
pub async fn seed_parked(app: &TestApp) -> Result<()> {
    let admin = app.token(Role::LabAdmin).to_owned();
    let ticket: serde_json::Value = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            "/api/v1/runs",
            Some(
                &json!({ "patient_mrn": "OUTBOX-0001", "birth_date": "1958-02-11",
                          "accession": "OUTBOX-0001-A1", "blood_ml": 7.5,
                          "simulate": { "cells": 9 } }),
            ),
        )
        .await
        .json()
        .await
        .context("a run ticket")?;
    let run = RunId(ticket["id"].as_i64().context("a run id")?);
    app.engine.wait_for_run(run).await.context("the run ends")?;
    let released = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            &format!("/api/v1/runs/{}/release", run.0),
            Some(&json!({ "password": PASSWORD, "printed_name": "lars Tester" })),
        )
        .await;
    ensure!(
        released.status().is_success(),
        "released: {}",
        released.status()
    );
    let message = app
        .store
        .outbox_page(&OutboxFilter::default(), None, 10)
        .await?
        .into_iter()
        .find(|entry| entry.message.run_id == run)
        .context("the release wrote its message")?;
    app.store
        .record_delivery(
            message.message.id,
            &DeliveryOutcome::Parked {
                reason: "the destination rejected the message: AR: unknown patient OUTBOX-0001"
                    .into(),
            },
        )
        .await?;
    Ok(())
}

/// The signed-in lab admin finds the parked message and resends it with a reason.
pub async fn resend_step(browser: &mut Browser) -> Result<()> {
    browser.goto("/").await?;
    browser.click("nav.main-nav a[href='/outbox']").await?;
    browser.wait_for("table.outbox").await?;
    let text = browser.main_text().await?;
    ensure!(
        text.contains("unknown patient OUTBOX-0001") && text.contains("OUTBOX-0001-A1"),
        "the parked message with its reason and accession: {text}"
    );
    ensure!(!text.contains("1958-02-11"), "no birth date on the outbox");
    browser.step("outbox-parked-desktop").await?;
    browser
        .fill(
            "tr[data-state=parked] input[name=reason]",
            "patient registered at the LIS",
        )
        .await?;
    browser
        .submit("tr[data-state=parked] form button[type=submit]")
        .await?;
    browser.wait_for(".notice-success").await?;
    let text = browser.main_text().await?;
    ensure!(
        text.contains("Message resent"),
        "the resend is confirmed: {text}"
    );
    ensure!(
        browser.find_all("tr[data-state=parked]").await?.is_empty(),
        "nothing is parked any more"
    );
    ensure!(
        browser.find_all("tr[data-state=pending]").await?.len() == 1,
        "the message is pending again"
    );
    browser.step("outbox-resent-desktop").await?;
    Ok(())
}
