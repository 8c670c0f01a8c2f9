//! A fresh instrument set up in a real browser (issue 11 point 8): the lab admin follows the
//! dashboard's set-up checklist at the desk — the QC set-up opens where the checklist's link
//! points, two control materials with a lot and a target each, a calibration imported on the
//! calibrations page and approved with a signature — until the checklist is gone; then the
//! operator, on the tablet, finds the new-run form instead of the open steps. Every step is a
//! full-page screenshot in `target/browser-artifacts/set-up/`.

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::browser::{Browser, DESKTOP, TABLET};
use crate::helpers::{PASSWORD, TestApp};
use crate::lab_manager::{sign_in, sign_out};

/// The checklist's open steps as the dashboard lists them (empty: no checklist).
async fn open_steps(browser: &Browser) -> Result<Vec<String>> {
    let steps = browser
        .execute(
            "const list = document.getElementById('setup-checklist'); \
             return list ? [...list.querySelectorAll('li')].map(li => li.textContent.trim()) : [];",
        )
        .await?;
    Ok(steps
        .as_array()
        .context("a list of steps")?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect())
}

/// Chooses the option of the select `css` whose text contains `text`.
async fn choose(browser: &Browser, css: &str, text: &str) -> Result<()> {
    let value = browser
        .execute(&format!(
            "const o = [...document.querySelectorAll({css:?} + ' option')]\
             .find(o => o.textContent.includes({text:?})); return o ? o.value : null;"
        ))
        .await?;
    let value = value
        .as_str()
        .with_context(|| format!("no option of {css} says {text:?}"))?
        .to_owned();
    browser.set_value(css, &value).await
}

/// Submits the QC set-up form whose action is `action` and waits for the page to come back
/// with its notice.
async fn submit_setup(browser: &Browser, action: &str, expect: &str) -> Result<()> {
    browser
        .submit(&format!("form[action='{action}'] button[type=submit]"))
        .await?;
    browser.wait_for(".notice-success").await?;
    let notice = browser.find(".notice-success").await?.text().await?;
    ensure!(notice.contains(expect), "after {action}: {notice:?}");
    Ok(())
}

pub async fn set_up_flow(browser: &mut Browser, _app: &TestApp) -> Result<()> {
    browser.use_viewport(DESKTOP).await?;
    sign_in(browser, "lars", PASSWORD).await?;
    browser.wait_for("#setup-checklist").await?;
    let steps = open_steps(browser).await?;
    ensure!(
        steps.iter().any(|s| s.contains("control material"))
            && steps.iter().any(|s| s.contains("calibration")),
        "a fresh instrument's checklist: {steps:?}"
    );
    browser.step("dashboard-checklist-desktop").await?;

    // The checklist's QC link opens the set-up section, whatever its state.
    browser
        .click("#setup-checklist a[href='/qc#setup-heading']")
        .await?;
    browser.wait_for_path("/qc").await?;
    let open = browser
        .execute("return document.getElementById('setup-heading').closest('details').open;")
        .await?;
    ensure!(open == Value::Bool(true), "the set-up section is open");
    browser.step("qc-setup-open-desktop").await?;

    // Two controls, a lot and a target each.
    for (name, level, lot, mean) in [
        ("CTC control negative", "negative", "QN-2026-12", "0.4"),
        ("CTC control positive", "positive", "QP-2026-12", "48"),
    ] {
        browser.fill("#material_name", name).await?;
        browser.set_value("#material_kind", "control").await?;
        browser.set_value("#material_control_level", level).await?;
        browser.set_value("#material_analyte", "cells").await?;
        submit_setup(browser, "/qc/materials", name).await?;

        choose(browser, "#lot_material", name).await?;
        browser.fill("#lot_number", lot).await?;
        browser.set_value("#lot_expires", "2099-12-31").await?;
        submit_setup(browser, "/qc/lots", lot).await?;

        choose(browser, "#target_lot", lot).await?;
        browser.fill("#target_mean", mean).await?;
        browser.fill("#target_sd", "1.5").await?;
        browser.set_value("#target_source", "manufacturer").await?;
        submit_setup(browser, "/qc/targets", lot).await?;
    }
    browser.step("qc-set-up-desktop").await?;

    // Only the calibration is left.
    browser.goto("/").await?;
    let steps = open_steps(browser).await?;
    ensure!(
        steps.len() == 1 && steps[0].contains("calibration"),
        "after the QC set-up: {steps:?}"
    );
    browser.step("dashboard-calibration-left-desktop").await?;

    // The calibration imported on its page (stored pending), then approved with a signature.
    browser
        .click("#setup-checklist a[href='/calibrations']")
        .await?;
    browser.wait_for_path("/calibrations").await?;
    browser
        .fill(
            "#import_content",
            &appliance::store::example_report::example_calibration_toml(),
        )
        .await?;
    browser
        .fill("#import_note", "dilution series of the new lot")
        .await?;
    browser.step("calibration-import-desktop").await?;
    browser.submit("#import-form button[type=submit]").await?;
    browser.wait_for("#decision-form").await?;
    let text = browser.main_text().await?;
    ensure!(
        text.contains("RL-EXAMPLE") && text.to_lowercase().contains("pending"),
        "the imported calibration waits for approval: {text}"
    );
    browser.step("calibration-pending-desktop").await?;
    browser
        .fill(
            "#decision_reason",
            "dilution series reviewed, limits acceptable",
        )
        .await?;
    browser
        .fill("#decision_printed_name", "lars Tester")
        .await?;
    browser.fill("#decision_password", PASSWORD).await?;
    browser
        .submit("#decision-form button.button-primary")
        .await?;
    browser.wait_for(".notice-success").await?;
    let text = browser.main_text().await?;
    ensure!(
        text.contains("Approved") && text.contains("lars Tester"),
        "the approval is shown with who decided: {text}"
    );
    browser.step("calibration-approved-desktop").await?;

    // Set up: the checklist is gone.
    browser.goto("/").await?;
    browser.wait_for("main#main h1").await?;
    let steps = open_steps(browser).await?;
    ensure!(steps.is_empty(), "set up, yet the checklist says {steps:?}");
    browser.step("dashboard-set-up-desktop").await?;
    sign_out(browser).await?;

    // The operator on the tablet: the new-run form, no open steps.
    browser.use_viewport(TABLET).await?;
    sign_in(browser, "olga", PASSWORD).await?;
    browser.goto("/runs/new").await?;
    browser.wait_for("#patient_mrn").await?;
    let text = browser.main_text().await?;
    ensure!(!text.contains("not set up yet"), "{text}");
    browser.no_hidden_columns().await?;
    browser.step("new-run-ready-tablet").await?;
    Ok(())
}
