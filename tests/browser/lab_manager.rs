//! The lab manager's tools in a real browser (issue 11 point 8): a corrective action recorded
//! beside a rejected QC value on the QC review (desktop), and a password reset on the admin page
//! whose user, signing in on the tablet with the temporary password, is held on the account page
//! until they have chosen their own. Every step is a full-page screenshot in
//! `target/browser-artifacts/lab-manager/`.

use anyhow::{Result, ensure};

use crate::browser::{Browser, DESKTOP, TABLET};
use crate::helpers::{PASSWORD, TestApp};

use appliance::store::Actor;
use appliance::store::Timestamp;
use appliance::store::qc::{ControlLevel, NewQcResult, QcMaterialKind, QcVerdict, TargetSource};

const TEMPORARY: &str = "temporary pass 42";
const OWN: &str = "olga's own password";

/// A positive control lot with a target and a rejected value this morning; its id.
async fn rejected_qc(app: &TestApp) -> Result<i64> {
    let actor = Actor::Appliance;
    let material = app
        .store
        .add_qc_material(
            &actor,
            "CTC control",
            QcMaterialKind::Control,
            Some(ControlLevel::Positive),
            "cells",
        )
        .await?;
    let expires = time::Date::from_calendar_date(2099, time::Month::December, 31)?;
    let lot = app
        .store
        .add_qc_lot(&actor, material.id, "QP-2026-12", expires)
        .await?;
    app.store
        .set_qc_target(&actor, lot.id, 50.0, 5.0, TargetSource::Manufacturer, None)
        .await?;
    for (value, status) in [(51.0, QcVerdict::Pass), (72.0, QcVerdict::Reject)] {
        app.store
            .record_qc_result(
                &actor,
                &NewQcResult {
                    lot_id: lot.id,
                    value,
                    status,
                    violations: Vec::new(),
                    measurement_id: None,
                    reagent_lot: None,
                    measured_at: Timestamp::now(),
                    comment: None,
                },
            )
            .await?;
    }
    let id: i64 = sqlx::query_scalar("SELECT id FROM qc_results WHERE status = 'reject'")
        .fetch_one(app.store.pool())
        .await?;
    Ok(id)
}

/// Signs in through the form and waits for the signed-in page (shared with `setup`).
pub(crate) async fn sign_in(browser: &mut Browser, username: &str, password: &str) -> Result<()> {
    browser.goto("/sign-in").await?;
    browser.fill("#username", username).await?;
    browser.fill("#password", password).await?;
    browser
        .click("form.stacked-form button[type=submit]")
        .await?;
    browser.wait_for(".user-box .user-name").await?;
    Ok(())
}

/// Signs out and waits for the sign-in page (shared with `setup`).
pub(crate) async fn sign_out(browser: &mut Browser) -> Result<()> {
    browser.click(".user-box form.sign-out button").await?;
    browser.wait_for("body.signed-out #username").await?;
    Ok(())
}

/// Opens the `<details>` around `css` (a form inside a closed disclosure).
async fn open_details_around(browser: &Browser, css: &str) -> Result<()> {
    browser
        .execute(&format!(
            "document.querySelector({css:?}).closest('details').open = true; return null;"
        ))
        .await?;
    Ok(())
}

pub async fn lab_manager_flow(browser: &mut Browser, app: &TestApp) -> Result<()> {
    let rejected = rejected_qc(app).await?;

    // The lab manager records what was done about the rejected control, beside it.
    browser.use_viewport(DESKTOP).await?;
    sign_in(browser, "lars", PASSWORD).await?;
    browser.goto("/qc").await?;
    let field = format!("#corrective-action-{rejected}");
    open_details_around(browser, &field).await?;
    browser.step("qc-review-rejected-value-desktop").await?;
    browser
        .fill(&field, "New control vial opened; rerun at 09:10 passed")
        .await?;
    browser
        .submit(&format!(
            "form[action='/qc/results/{rejected}/corrective-actions'] button[type=submit]"
        ))
        .await?;
    browser.wait_for_path("/qc?").await?;
    browser.wait_for(".notice-success").await?;
    let text = browser.main_text().await?;
    ensure!(
        text.contains("Corrective action recorded")
            && text.contains("New control vial opened; rerun at 09:10 passed"),
        "the action is listed beside the value: {text}"
    );
    browser
        .step("qc-corrective-action-recorded-desktop")
        .await?;

    // The lab manager sets a temporary password for Olga.
    browser.goto("/admin").await?;
    open_details_around(browser, "#temporary_password_olga").await?;
    browser.fill("#temporary_password_olga", TEMPORARY).await?;
    browser
        .fill(
            "#reset_reason_olga",
            "forgot it after her leave; identity checked in person",
        )
        .await?;
    browser.step("admin-password-reset-form-desktop").await?;
    browser
        .click("form[action='/admin/users/olga/password-reset'] button[type=submit]")
        .await?;
    browser.wait_for_path("/admin?done=password-reset").await?;
    let text = browser.main_text().await?;
    ensure!(
        text.contains("Temporary password set")
            && text.contains("temporary password: to be changed at next sign-in"),
        "the reset is confirmed and shown on Olga's row: {text}"
    );
    browser.step("admin-password-reset-done-desktop").await?;
    sign_out(browser).await?;

    // Olga, on the tablet: the temporary password leads to the account page and only there.
    browser.use_viewport(TABLET).await?;
    sign_in(browser, "olga", TEMPORARY).await?;
    browser.wait_for_path("/account").await?;
    browser.wait_for("#password-reset-notice").await?;
    browser.step("account-change-required-tablet").await?;
    browser.goto("/qc").await?;
    ensure!(
        browser.path().await? == "/account",
        "another page leads back to the account page, not {}",
        browser.path().await?
    );
    browser.fill("#current_password", TEMPORARY).await?;
    browser.fill("#new_password", OWN).await?;
    browser.fill("#new_password_again", OWN).await?;
    browser
        .click("form[action='/account/password'] button[type=submit]")
        .await?;
    browser.wait_for("body.signed-out #username").await?;
    let text = browser.main_text().await?;
    ensure!(
        text.contains("Your password is changed"),
        "the sign-in page says why: {text}"
    );
    browser.step("signed-out-after-change-tablet").await?;
    sign_in(browser, "olga", OWN).await?;
    browser.wait_for_path("/").await?;
    ensure!(
        browser.path().await? == "/",
        "her own password opens the dashboard, not {}",
        browser.path().await?
    );
    browser.step("dashboard-own-password-tablet").await?;
    Ok(())
}
