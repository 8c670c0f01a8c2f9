//! Browser tests: the web face in headless Debian Chromium, driven over WebDriver (fantoccini and
//! chromedriver; `scripts/test` installs both). The app runs in process on the simulated board
//! with an instant clock, as in the API tests.
//!
//! Artefacts (full-page screenshots per step, a PDF of the printed report, the page weights and
//! chromedriver's log) go to `target/browser-artifacts/<flow>/`; each test prints its directory.
//! Flows: `flow` (the bedside run to its release), `report` (issue 11's report: preliminary,
//! indeterminate, the PDF link, a wrong password at release) and `lab_manager` (a corrective
//! action against a rejected QC, a password reset changed at the next sign-in) and `setup` (a
//! fresh instrument set up by following the dashboard's checklist).

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/test_board.rs"]
mod test_board;

mod browser;
mod chromedriver;
mod clinician;
mod flow;
mod lab_manager;
mod outbox;
mod report;
mod setup;

use std::path::PathBuf;

use browser::Browser;
use chromedriver::Chromedriver;

/// `target/browser-artifacts/<flow>`, next to the build that runs this test (test binaries live
/// in `target/<profile>/deps/`), emptied of an earlier run's files (each flow its own directory:
/// the flows run in parallel).
fn artefact_dir(flow: &str) -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_owned()))
        .filter(|dir| dir.file_name().is_some_and(|name| name == "target"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("browser-artifacts").join(flow);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("an earlier run's artefacts can be removed");
    }
    std::fs::create_dir_all(&dir).expect("the artefact directory can be created");
    dir
}

/// A flow's future, borrowing the browser and the app.
pub(crate) type FlowFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + 'a>>;

/// Drives `flow` in a headless Chromium session against `app`, with its artefacts in
/// `target/browser-artifacts/<name>`: on a failure a screenshot of the page as it was, then
/// the session closed, the engine stopped, and the test failed naming `what` failed.
pub(crate) async fn in_chromium(
    name: &str,
    what: &str,
    app: &helpers::TestApp,
    flow: impl for<'a> FnOnce(&'a mut Browser, &'a helpers::TestApp) -> FlowFuture<'a>,
) {
    let artefacts = artefact_dir(name);
    let driver = Chromedriver::start(&artefacts.join("chromedriver.log"))
        .await
        .unwrap_or_else(|message| panic!("{message}"));
    let mut browser = Browser::open(&driver.url(), format!("http://{}", app.address), &artefacts)
        .await
        .expect("a headless Chromium session");
    let outcome = flow(&mut browser, app).await;
    if outcome.is_err() {
        // The page as it was when the flow went wrong, before anything else happens.
        match browser.shot("FAILED").await {
            Ok(file) => eprintln!("screenshot of the failure: {}", file.display()),
            Err(error) => eprintln!("no screenshot of the failure: {error:#}"),
        }
    }
    let weights = browser.weights_report();
    std::fs::write(artefacts.join("page-weights.txt"), &weights).expect("page weights written");
    println!("{weights}");
    println!("browser artefacts: {}", artefacts.display());
    let closed = browser.close().await;
    drop(driver);
    app.engine.shutdown().await;
    if let Err(error) = outcome {
        panic!("{what} failed: {error:#}");
    }
    closed.expect("the WebDriver session closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_sample_goes_from_the_bedside_to_a_released_result_in_chromium() {
    let app = helpers::spawn_app().await;
    in_chromium("bedside", "the browser flow", &app, |browser, app| {
        Box::pin(flow::bedside_to_release(browser, app))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_flow_is_honest_preliminary_and_keeps_the_release_form_in_view_in_chromium() {
    let app = helpers::spawn_app_with(|config| {
        config.site.time_zone = "Europe/Berlin".parse().expect("a zone");
    })
    .await;
    in_chromium("report", "the report flow", &app, |browser, app| {
        Box::pin(report::report_flow(browser, app))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lab_manager_records_a_corrective_action_and_resets_a_password_in_chromium() {
    let app = helpers::spawn_app().await;
    in_chromium(
        "lab-manager",
        "the lab manager's flow",
        &app,
        |browser, app| Box::pin(lab_manager::lab_manager_flow(browser, app)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_instrument_is_set_up_by_following_its_checklist_in_chromium() {
    let app = helpers::spawn_fresh_app(|_| {}).await;
    in_chromium("set-up", "the set-up flow", &app, |browser, app| {
        Box::pin(setup::set_up_flow(browser, app))
    })
    .await;
}
