//! The bedside-to-release flow of issue 6 in a real browser: the operator runs a simulated sample
//! on a tablet and follows it live, the clinician finds it on the patient's trend and releases it
//! with an electronic signature, the lab admin looks at the lab pages. Every step is a
//! screenshot; every page's weight is recorded.

use anyhow::{Context, Result, bail, ensure};

use crate::browser::{Browser, DESKTOP, TABLET};
use crate::helpers::{PASSWORD, TestApp};

/// The patient of the flow (new: the run creates them).
const MRN: &str = "BRW-0001";
/// Simulated CTCs in the labelled tube.
const SIMULATED_CELLS: &str = "40";
/// No run asks for more tubes than this; a loop past it means the live view is stuck.
const MAX_TUBE_PROMPTS: usize = 6;

/// What the live view needs to show before the flow goes on: a tube to confirm, the result, or
/// the failure.
const LIVE_VIEW_WAITS_FOR: &str = "#live-run [data-progress-list] button:not([disabled]), \
     #live-run [data-result-panel]:not([hidden]), #live-run [data-failure-panel]:not([hidden])";

pub async fn bedside_to_release(browser: &mut Browser, _app: &TestApp) -> Result<()> {
    // The operator at the bedside, on a tablet.
    browser.use_viewport(TABLET).await?;
    browser.goto("/").await?;
    ensure!(
        browser.path().await?.starts_with("/sign-in"),
        "an anonymous visit to / goes to the sign-in page, not {}",
        browser.path().await?
    );
    browser.step("sign-in").await?;
    sign_in(browser, "olga").await?;
    browser.step("dashboard-operator").await?;

    let run_id = start_run(browser).await?;
    follow_live_run(browser).await?;
    // Back on the dashboard, the run among the operator's results: every column on the tablet.
    browser.goto("/").await?;
    browser.wait_for("main#main h1").await?;
    browser.no_hidden_columns().await?;
    browser.step("dashboard-operator-after-run").await?;
    sign_out(browser).await?;
    browser.step("signed-out").await?;

    // The clinician at a desk: the patient's trend, the run, the release.
    browser.use_viewport(DESKTOP).await?;
    sign_in(browser, "claire").await?;
    browser.step("dashboard-clinician").await?;
    find_on_trend(browser, run_id).await?;
    release(browser, run_id).await?;
    sign_out(browser).await?;

    // The lab admin's pages, once each.
    sign_in(browser, "lars").await?;
    browser.step("dashboard-lab-admin").await?;
    lab_pages(browser).await?;
    sign_out(browser).await?;
    Ok(())
}

/// Signs in through the form and waits for the signed-in page.
async fn sign_in(browser: &mut Browser, username: &str) -> Result<()> {
    if !browser.path().await?.starts_with("/sign-in") {
        browser.goto("/sign-in").await?;
    }
    browser.fill("#username", username).await?;
    browser.fill("#password", PASSWORD).await?;
    browser
        .click("form.stacked-form button[type=submit]")
        .await?;
    browser
        .wait_for(".user-box .user-name")
        .await
        .with_context(|| format!("{username} is signed in"))?;
    let shown = browser.find(".user-box .user-name").await?.text().await?;
    ensure!(
        shown.contains(username),
        "the header names the user {username}, not {shown:?}"
    );
    Ok(())
}

/// Signs out with the header's button and waits for the sign-in page that says so.
async fn sign_out(browser: &mut Browser) -> Result<()> {
    browser.click(".user-box form.sign-out button").await?;
    browser
        .wait_for("body.signed-out #username")
        .await
        .context("the sign-in page after signing out")?;
    let text = browser.main_text().await?;
    ensure!(
        text.contains("You have signed out"),
        "the sign-in page says the user signed out: {text:?}"
    );
    // The session is gone: a page that needs it sends the browser back to sign in.
    browser.goto("/").await?;
    ensure!(
        browser.path().await?.starts_with("/sign-in"),
        "after signing out, / asks to sign in again"
    );
    Ok(())
}

/// Fills the new-run form and starts the run; returns its id (from the live view's address).
async fn start_run(browser: &mut Browser) -> Result<i64> {
    browser.goto("/runs/new").await?;
    browser.step("new-run").await?;
    browser.fill("#patient_mrn", MRN).await?;
    browser.fill("#accession", &format!("{MRN}-A1")).await?;
    let drawn_at = browser.find("#drawn_at").await?.prop("value").await?;
    if drawn_at.is_none_or(|value| value.is_empty()) {
        browser.set_value("#drawn_at", "2026-11-24T08:30").await?;
    }
    browser.fill("#blood_ml", "7.5").await?;
    let indications = browser.find_all("input[name=indication]").await?;
    ensure!(!indications.is_empty(), "the form offers indications");
    match browser
        .find_all("input[name=indication][value=breast]")
        .await?
        .first()
    {
        Some(breast) => breast.click().await?,
        None => indications[0].click().await?,
    }
    let lots = browser.find_all("#reagent_lot option").await?;
    ensure!(
        !lots.is_empty(),
        "the form offers a reagent lot with an active calibration"
    );
    browser.fill("#simulate_cells", SIMULATED_CELLS).await?;
    // The simulated board inserts tubes by itself unless asked to wait for the operator, as the
    // real instrument does: the flow confirms each tube by hand.
    let by_hand = browser.find("input[name=confirm_tubes]").await?;
    if !by_hand.is_selected().await? {
        by_hand.click().await?;
    }
    browser.shot("new-run-filled").await?;
    browser
        .click("form.big-form button[type=submit]")
        .await
        .context("starting the run")?;
    browser
        .wait_for("#live-run")
        .await
        .context("the live view after starting the run")?;
    let path = browser.path().await?;
    let run_id = path
        .strip_prefix("/runs/")
        .and_then(|rest| rest.strip_suffix("/live"))
        .and_then(|id| id.parse::<i64>().ok())
        .with_context(|| format!("the live view's address names the run: {path}"))?;
    browser.step("live-run-started").await?;
    Ok(run_id)
}

/// Follows the live view: confirms each tube it asks for, until the result (or a failure) shows.
async fn follow_live_run(browser: &mut Browser) -> Result<()> {
    let mut confirmed = 0;
    for prompt in 0..=MAX_TUBE_PROMPTS {
        browser
            .wait_for(LIVE_VIEW_WAITS_FOR)
            .await
            .context("the live view asks for a tube or shows the result")?;
        if let Some(failure) = browser
            .find_all("#live-run [data-failure-panel]:not([hidden])")
            .await?
            .first()
        {
            bail!("the run failed in the live view: {}", failure.text().await?);
        }
        if !browser
            .find_all("#live-run [data-result-panel]:not([hidden])")
            .await?
            .is_empty()
        {
            break;
        }
        if prompt == MAX_TUBE_PROMPTS {
            bail!("the live view asked for more than {MAX_TUBE_PROMPTS} tubes");
        }
        let button = browser
            .find("#live-run [data-progress-list] button:not([disabled])")
            .await?;
        let label = button.text().await?;
        ensure!(
            label.contains("confirm"),
            "the live view's button confirms a tube: {label:?}"
        );
        browser
            .shot(&format!("live-run-insert-tube-{}", prompt + 1))
            .await?;
        button.click().await.context("confirming the tube")?;
        confirmed += 1;
    }
    ensure!(
        confirmed >= 1,
        "the live view never asked for a tube to confirm"
    );
    let panel = browser
        .find("#live-run [data-result-panel]")
        .await?
        .text()
        .await?;
    ensure!(
        panel.contains("QC") && panel.contains("Preliminary"),
        "the live view shows completion, the QC state and that the result is preliminary: \
         {panel:?}"
    );
    ensure!(
        !panel.contains("7.5 mL") && !panel.contains("avourable"),
        "the bedside live view shows neither the count nor the call: {panel:?}"
    );
    browser.step("live-run-result").await?;
    Ok(())
}

/// Finds the patient by MRN from the header, and the run on their trend and in their runs table.
async fn find_on_trend(browser: &mut Browser, run_id: i64) -> Result<()> {
    browser.fill("#patient-search-mrn", MRN).await?;
    browser
        .click("form.patient-search button[type=submit]")
        .await?;
    browser
        .wait_for("main figure.chart-figure svg")
        .await
        .with_context(|| format!("the MRN search leads to patient {MRN}'s trend"))?;
    let path = browser.path().await?;
    ensure!(
        path.starts_with("/patients/"),
        "the MRN search leads to the patient's page, not {path}"
    );
    let heading = browser.find("main h1").await?.text().await?;
    ensure!(
        heading.contains(MRN),
        "the patient page is {MRN}'s: {heading:?}"
    );
    let run_link = format!("main table a[href='/runs/{run_id}']");
    browser
        .find(&run_link)
        .await
        .with_context(|| format!("patient {MRN}'s runs table lists run {run_id}"))?;
    browser.step("patient").await?;
    browser.click(&run_link).await?;
    browser.wait_for_path(&format!("/runs/{run_id}")).await?;
    browser
        .wait_for("section.release form")
        .await
        .with_context(|| format!("run {run_id}'s page offers the release"))?;
    browser.step("run").await?;
    Ok(())
}

/// Releases the result with the electronic signature and sees it released.
async fn release(browser: &mut Browser, run_id: i64) -> Result<()> {
    let printed_name = browser.find("#printed_name").await?.prop("value").await?;
    if printed_name.is_none_or(|name| name.trim().is_empty()) {
        browser.fill("#printed_name", "Claire Tester").await?;
    }
    browser.fill("#release_password", PASSWORD).await?;
    browser.shot("run-release-signing").await?;
    browser
        .click("section.release form button[type=submit]")
        .await?;
    // The newest version's signature cell names the signer (in bold) and what they signed for.
    let signature = browser
        .wait_for_xpath("//section[.//h2[@id='versions-heading']]//td[strong]")
        .await
        .with_context(|| format!("run {run_id} shows its release signature"))?
        .text()
        .await?;
    ensure!(
        signature.contains("claire") && signature.to_lowercase().contains("release"),
        "the signature names the clinician and the release: {signature:?}"
    );
    let notice = browser.find("main .notice").await?.text().await?;
    ensure!(
        notice.to_lowercase().contains("released"),
        "the page says the result was released: {notice:?}"
    );
    ensure!(
        browser.find_all("section.release form").await?.is_empty(),
        "a released result offers no second release"
    );
    browser.step("run-released").await?;
    browser.print_pdf("run-report-print").await?;
    Ok(())
}

/// The page as it is on the tablet too: every table column shown, nothing wider than the
/// screen; then back at the desk.
async fn on_the_tablet_too(browser: &mut Browser, name: &str) -> Result<()> {
    browser.use_viewport(TABLET).await?;
    browser
        .no_hidden_columns()
        .await
        .with_context(|| format!("{name} on the tablet"))?;
    browser.step(&format!("{name}-tablet")).await?;
    browser.use_viewport(DESKTOP).await
}

/// QC, calibration (the list and the first lot) and admin, as the lab admin, at the desk and
/// on the tablet.
async fn lab_pages(browser: &mut Browser) -> Result<()> {
    browser.goto("/qc").await?;
    browser.step("qc").await?;
    on_the_tablet_too(browser, "qc").await?;
    browser.goto("/calibrations").await?;
    browser.step("calibrations").await?;
    on_the_tablet_too(browser, "calibrations").await?;
    if let Some(lot) = browser
        .find_all("main a[href^='/calibrations/']")
        .await?
        .first()
    {
        lot.click().await?;
        browser.wait_for_path("/calibrations/").await?;
        browser.wait_for("main#main h1").await?;
        browser.step("calibration").await?;
    }
    browser.goto("/admin").await?;
    browser.step("admin").await?;
    on_the_tablet_too(browser, "admin").await?;
    Ok(())
}
