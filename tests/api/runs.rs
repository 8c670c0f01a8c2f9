//! A whole simulated run through the API: start it, follow its events, read its result, check
//! the count against the simulated truth, release it by electronic signature. Plus manual tube
//! confirmation, cancellation, and simulation refused where it makes no sense. The flow also runs
//! with the board behind a board twin's socket, and — without simulation truth — on the
//! end-to-end tests' board (the twin, or a real board named by `FERROCOUNT_TEST_SPI`).

use appliance::store::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    As, PASSWORD, TestApp, assert_problem, spawn_app, spawn_app_on_test_board, spawn_app_on_twin,
};

/// Reads a server-sent event stream to its end; returns (event name, JSON data) pairs.
async fn read_events(response: reqwest::Response) -> Vec<(String, Value)> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut response = response;
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.expect("event stream") {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(value).ok();
                }
            }
            Some((name?, data?))
        })
        .collect()
}

#[tokio::test]
async fn a_simulated_run_streams_its_progress_counts_within_its_interval_of_truth_and_is_released()
{
    run_stream_count_and_release(spawn_app().await).await;
}

/// The same API flow with the board behind a board twin's socket (a separate process).
#[tokio::test(flavor = "multi_thread")]
async fn the_api_flow_runs_the_same_with_the_board_behind_the_twin_socket() {
    run_stream_count_and_release(spawn_app_on_twin().await).await;
}

/// Starts a run by `POST /api/v1/runs` with `body` (manual tube confirmation), follows its event
/// stream to its end while confirming each tube as the engine asks for it; returns the run's id,
/// its events and the number of tubes confirmed.
async fn run_confirming_tubes(
    app: &TestApp,
    operator: &str,
    body: &Value,
) -> (i64, Vec<(String, Value)>, usize) {
    // Subscribed before the run starts, so that no tube prompt can be missed.
    let mut receiver = app.engine.subscribe();
    let started = app
        .send(
            As::Bearer(operator),
            Method::POST,
            "/api/v1/runs",
            Some(body),
        )
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let ticket: Value = started.json().await.unwrap();
    assert_eq!(ticket["state"], "queued");
    let id = ticket["id"].as_i64().unwrap();

    // Follow the run while confirming each tube as it is asked for.
    let events_response = app
        .send(
            As::Bearer(operator),
            Method::GET,
            &format!("/api/v1/runs/{id}/events"),
            None,
        )
        .await;
    let confirmer = {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/runs/{id}/confirm-tube"));
        let token = operator.to_owned();
        tokio::spawn(async move {
            let mut confirmed = 0;
            while let Ok(event) = receiver.recv().await {
                if event.run_id != Some(appliance::store::RunId(id)) {
                    continue;
                }
                if let appliance::engine::EventKind::AwaitingTube { .. } = event.kind {
                    let response = client.post(&url).bearer_auth(&token).send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::ACCEPTED);
                    confirmed += 1;
                }
                if let appliance::engine::EventKind::State { state, .. } = event.kind
                    && !matches!(state.as_str(), "queued" | "running" | "awaiting_tube")
                {
                    break;
                }
            }
            confirmed
        })
    };
    let events = read_events(events_response).await;
    (id, events, confirmer.await.unwrap())
}

/// The API flow with nothing a real board could not show, so that it runs on one too
/// (`FERROCOUNT_TEST_SPI`, docs/raspberry-pi.md): no simulation truth (on the twin the tubes hold
/// no cells), every tube confirmed by hand, the lot's calibration stored beforehand (a real board
/// has no simulated lot to calibrate). What is asserted is what any board shows: the run's states,
/// its echo trains stored with their fits, and a preliminary result from them.
#[tokio::test(flavor = "multi_thread")]
async fn the_api_flow_on_the_test_board_confirms_tubes_by_hand_and_stores_trains_and_a_result() {
    use appliance::store::Actor;
    use appliance::store::calibrations::{CalibrationContent, NewCalibration, ReagentLot};

    let app = spawn_app_on_test_board().await;
    crate::helpers::record_passing_qc_for(&app.store, "RL-LAB").await;
    // The engine's echo time with the default settings (as `EngineConfig::te_us` rounds it).
    let te_us = appliance::procedures::CpmgSettings::default().te_us.round() as u32;
    // A lot's calibration made at that echo time (the numbers are made up: no count is asserted).
    let calibration = crate::pages_lab::CALIBRATION_TOML.replace(
        "te_ms = 4.0",
        &format!("te_ms = {}", f64::from(te_us) / 1000.0),
    );
    assert_ne!(calibration, crate::pages_lab::CALIBRATION_TOML);
    let stored = app
        .store
        .add_calibration(
            &Actor::Appliance,
            &NewCalibration {
                reagent_lot: ReagentLot::parse("RL-LAB").unwrap(),
                te_us,
                content: CalibrationContent::toml(&calibration).unwrap(),
                note: Some("end-to-end test on the test board".into()),
            },
        )
        .await
        .unwrap();
    app.store
        .decide_calibration(
            &Actor::Appliance,
            stored.id,
            appliance::store::calibrations::CalibrationDecision::Approve,
            "tests",
        )
        .await
        .unwrap();
    let operator = app.token(Role::Operator).to_owned();
    let (id, events, confirmed) = run_confirming_tubes(
        &app,
        &operator,
        &json!({ "patient_mrn": "HIL-1", "accession": "HIL-1-A148", "blood_ml": 7.5, "indication": "breast",
                  "reagent_lot": "RL-LAB", "manual_tube_confirmation": true }),
    )
    .await;
    assert_eq!(confirmed, 2, "control and quad tubes were asked for");
    let states: Vec<&str> = events
        .iter()
        .filter(|(name, _)| name == "state")
        .filter_map(|(_, data)| data["state"].as_str())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "awaiting_tube").count(),
        2,
        "{states:?}"
    );
    let failures: Vec<&Value> = events
        .iter()
        .filter(|(name, _)| name == "failed")
        .map(|(_, data)| data)
        .collect();
    assert_eq!(
        states.last(),
        Some(&"awaiting_release"),
        "{states:?}, {failures:?}"
    );
    let replicates = events
        .iter()
        .filter(|(name, _)| name == "replicate")
        .count();
    assert_eq!(replicates, 6, "2 tubes × 3 replicates");

    // Every replicate's echo train is stored whole with its fit.
    let measurements = app
        .store
        .run_measurements(appliance::store::RunId(id))
        .await
        .unwrap();
    assert_eq!(measurements.len(), 6);
    let echoes = appliance::procedures::CpmgSettings::default().echoes as usize;
    for measurement in &measurements {
        assert_eq!(measurement.train.len(), echoes, "{measurement:?}");
        assert!(measurement.fit_report.is_some(), "{measurement:?}");
    }

    // A result, preliminary until released, computed with the stored calibration.
    let run: Value = app
        .send(
            As::Bearer(&operator),
            Method::GET,
            &format!("/api/v1/runs/{id}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["state"], "awaiting_release");
    let result = &run["result"];
    assert_eq!(result["calibration_lot"], "RL-LAB", "{result}");
    let cells = result["cells"].as_f64().expect("cells");
    let [low, high] = [
        result["cells_ci95"][0].as_f64().expect("low"),
        result["cells_ci95"][1].as_f64().expect("high"),
    ];
    assert!(low <= cells && cells <= high, "{result}");
}

async fn run_stream_count_and_release(app: TestApp) {
    let operator = app.token(Role::Operator).to_owned();
    let true_cells = 60.0;
    let (id, events, confirmed) = run_confirming_tubes(
        &app,
        &operator,
        &json!({ "patient_mrn": "RUN-1", "accession": "RUN-1-A221", "blood_ml": 7.5, "indication": "breast",
                  "manual_tube_confirmation": true,
                  "simulate": { "cells": true_cells } }),
    )
    .await;
    assert_eq!(confirmed, 2, "control and quad tubes were asked for");
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "state",
        "awaiting_tube",
        "tube_confirmed",
        "replicate",
        "result",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "state");
    assert_eq!(data["state"], "awaiting_release");
    assert!(events.iter().all(|(_, d)| d["run_id"] == id));

    // The result has the keys of `ferrocount count --json`, and its interval holds the truth.
    let run: Value = app
        .send(
            As::Bearer(&operator),
            Method::GET,
            &format!("/api/v1/runs/{id}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["state"], "awaiting_release");
    let result = &run["result"];
    for key in [
        "cells",
        "cells_ci95",
        "per_7_5ml",
        "per_7_5ml_ci95",
        "category",
        "call",
        "delta_r2_per_s",
        "qc_flags",
        "lod_cells",
        "calibration_lot",
        "run_id",
        "state",
    ] {
        assert!(result.get(key).is_some(), "{key} in result");
    }
    let [low, high] = [
        result["cells_ci95"][0].as_f64().unwrap(),
        result["cells_ci95"][1].as_f64().unwrap(),
    ];
    assert!(
        low <= true_cells && true_cells <= high,
        "{true_cells} cells within [{low}, {high}]"
    );

    // An operator cannot release; a clinician must re-enter the password and type their name.
    let refused = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            &format!("/api/v1/runs/{id}/release"),
            Some(&json!({ "password": PASSWORD, "printed_name": "olga Tester" })),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "operator").await;
    let clinician = app.sign_in("claire", PASSWORD).await;
    let release = |password: &'static str, name: &'static str| {
        let app = &app;
        let clinician = &clinician;
        async move {
            app.send(
                As::Browser(clinician),
                Method::POST,
                &format!("/api/v1/runs/{id}/release"),
                Some(&json!({ "password": password, "printed_name": name, "meaning": "release" })),
            )
            .await
        }
    };
    assert_problem(
        release("wrong password", "claire Tester").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "password",
    )
    .await;
    assert_problem(
        release(PASSWORD, "Someone Else").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "printed_name",
    )
    .await;
    assert_eq!(app.count("result_signatures").await, 0);
    let signed = release(PASSWORD, "Claire Tester").await;
    assert_eq!(signed.status(), StatusCode::OK);
    let signature: Value = signed.json().await.unwrap();
    assert_eq!(signature["state"], "released");
    assert_eq!(signature["printed_name"], "claire Tester");
    assert_eq!(signature["statement"], "Released for clinical use");
    let twice = release(PASSWORD, "claire Tester").await;
    assert_problem(twice, StatusCode::CONFLICT, "not awaiting release").await;
    // Released, the run is the clinicians' (an operator opens only unreleased runs).
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
        .unwrap();
    assert_eq!(run["state"], "released");
    assert_eq!(run["result"]["status"], "FINAL");
    assert_eq!(run["versions"][0]["signatures"][0]["meaning"], "release");
}

#[tokio::test]
async fn a_run_waiting_for_its_tube_can_be_cancelled_and_says_so() {
    let app = spawn_app().await;
    let operator = app.token(Role::Operator).to_owned();
    let ticket: Value = app
        .send(As::Bearer(&operator), Method::POST, "/api/v1/runs",
              Some(&json!({ "patient_mrn": "RUN-2", "accession": "RUN-2-A347", "blood_ml": 7.5, "manual_tube_confirmation": true })))
        .await
        .json()
        .await
        .unwrap();
    let id = ticket["id"].as_i64().unwrap();
    let cancelled = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            &format!("/api/v1/runs/{id}/cancel"),
            Some(&json!({ "reason": "patient withdrew" })),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
    let state = app
        .engine
        .wait_for_run(appliance::store::RunId(id))
        .await
        .unwrap();
    assert_eq!(state.as_str(), "cancelled");
    let run: Value = app
        .send(
            As::Bearer(&operator),
            Method::GET,
            &format!("/api/v1/runs/{id}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["state"], "cancelled");
    assert!(
        run["run"]["failure_cause"]
            .as_str()
            .unwrap()
            .contains("patient withdrew")
    );
    assert_eq!(run["result"], Value::Null);
    let confirm = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            &format!("/api/v1/runs/{id}/confirm-tube"),
            None,
        )
        .await;
    assert_problem(confirm, StatusCode::CONFLICT, &format!("run {id}")).await;
}

/// A correction through the API and through the run page's form: the same operation, a new
/// version each, the original kept, the current version shown as corrected.
#[tokio::test]
async fn a_result_is_corrected_through_the_api_and_the_run_page() {
    let app = spawn_app().await;
    let request = appliance::engine::RunRequest {
        indication: Some("breast".to_owned()),
        simulate: Some(appliance::engine::SimulatedTruth {
            cells: 10.0,
            background_per_s: None,
            control_t2_ms: None,
        }),
        ..appliance::engine::RunRequest::new("COR-1", "COR-1-A1", 7.5)
    };
    let ticket = app.engine.start_run(request).await.expect("queued");
    app.engine.wait_for_run(ticket.id).await.expect("ends");
    let id = ticket.id.0;
    let path = format!("/api/v1/runs/{id}/corrections");
    let clinician = app.token(Role::Clinician).to_owned();
    let body = |blood_ml: f64| {
        json!({ "blood_ml": blood_ml, "reason": "processed volume entered wrongly",
                "password": PASSWORD, "printed_name": "claire Tester" })
    };
    let operator = app.token(Role::Operator).to_owned();
    let refused = app
        .send(As::Bearer(&operator), Method::POST, &path, Some(&body(5.0)))
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "operator").await;
    let no_reason = json!({ "blood_ml": 5.0, "reason": "", "password": PASSWORD,
                            "printed_name": "claire Tester" });
    let refused = app
        .send(
            As::Bearer(&clinician),
            Method::POST,
            &path,
            Some(&no_reason),
        )
        .await;
    assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, "reason").await;

    let corrected = app
        .send(
            As::Bearer(&clinician),
            Method::POST,
            &path,
            Some(&body(5.0)),
        )
        .await;
    assert_eq!(corrected.status(), StatusCode::CREATED);
    let corrected: Value = corrected.json().await.unwrap();
    assert_eq!(corrected["version"], 2);
    assert_eq!(corrected["state"], "awaiting_release");
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
        .unwrap();
    assert_eq!(run["result"]["version"], 2);
    assert_eq!(run["result"]["blood_ml"], 5.0);
    let versions = run["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    // Each version carries its call as reported: indeterminate when its interval contains the
    // cut-off, else the stored point-estimate call; the current one's is the result's call.
    for version in versions {
        let spans = version["summary"]["interval_spans_cutoff"] == true;
        let expected = if spans {
            Value::from("indeterminate")
        } else {
            version["report"]["call"].clone()
        };
        assert_eq!(version["reported_call"], expected, "{version}");
    }
    assert_eq!(versions[1]["reported_call"], run["result"]["call"]);
    assert_eq!(
        versions[0]["report"]["blood_ml"], 7.5,
        "the original is kept"
    );

    // The run page offers the form to a clinician and takes it through the same operation.
    let session = app.sign_in("claire", PASSWORD).await;
    let (status, page) =
        crate::helpers::get_page(&app, Some(&session), &format!("/runs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Correct this result"), "the correction form");
    let posted = crate::helpers::post_form(
        &app,
        &session,
        &format!("/runs/{id}/corrections"),
        &[
            ("blood_ml", "6.0"),
            ("indication", "breast"),
            ("reason", "volume re-measured: 6.0 mL"),
            ("printed_name", "claire Tester"),
            ("password", PASSWORD),
        ],
        crate::helpers::Csrf::Right,
    )
    .await;
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    assert!(crate::helpers::location(&posted).ends_with("?notice=corrected"));
    let versions = app
        .store
        .result_versions(ticket.id)
        .await
        .expect("versions");
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2].report.blood_ml, 6.0);
    assert_eq!(versions[0].report.blood_ml, 7.5);

    // Every view says the result shown was corrected: the run page, the patient page's run list
    // and trend chart, the trend as JSON.
    let (_, page) = crate::helpers::get_page(&app, Some(&session), &format!("/runs/{id}")).await;
    assert!(
        page.contains("Corrected (version 3)"),
        "the run page's badge"
    );
    let run = app.store.run(ticket.id).await.expect("run");
    let patient = app
        .store
        .sample(run.sample_id)
        .await
        .expect("sample")
        .patient_id;
    let (status, page) =
        crate::helpers::get_page(&app, Some(&session), &format!("/patients/{}", patient.0)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Corrected (version 3)"),
        "the patient page's run list"
    );
    assert!(page.contains("point-corrected"), "the trend chart's ring");
    let trend: Value = app
        .send(
            As::Bearer(&clinician),
            Method::GET,
            &format!("/api/v1/patients/{}/trend", patient.0),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(trend[0]["version"], 3);
    assert_eq!(trend[0]["corrected"], true);
}

/// One server-sent event as sent: its id (stored events have one), name and JSON data.
fn sse_blocks(text: &str) -> Vec<(Option<i64>, String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let (mut id, mut name, mut data) = (None, None, None);
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("id: ") {
                    id = value.parse().ok();
                } else if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(value).ok();
                }
            }
            Some((id, name?, data?))
        })
        .collect()
}

/// Starts a run through the API; returns its id.
async fn start_run(app: &TestApp, token: &str, order: &Value) -> i64 {
    let ticket: Value = app
        .send(As::Bearer(token), Method::POST, "/api/v1/runs", Some(order))
        .await
        .json()
        .await
        .unwrap();
    ticket["id"].as_i64().expect("a run id")
}

/// The run's event stream, as a reconnecting browser asks for it when `last_event_id` is given.
fn events_request(
    app: &TestApp,
    token: &str,
    id: i64,
    last_event_id: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = app
        .client
        .get(app.url(&format!("/api/v1/runs/{id}/events")))
        .bearer_auth(token);
    match last_event_id {
        Some(last) => request.header("last-event-id", last),
        None => request,
    }
}

async fn stream_text(app: &TestApp, token: &str, id: i64, last_event_id: Option<&str>) -> String {
    let mut response = events_request(app, token, id, last_event_id)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.expect("event stream") {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

/// Issue 11 point 9: a live view opened late shows the run's whole history (the stream replays
/// the stored events, numbered), and a reconnection resumes after the last number it received.
#[tokio::test]
async fn a_stream_opened_late_replays_the_run_and_resumes_after_the_last_event_id() {
    let app = spawn_app().await;
    let operator = app.token(Role::Operator).to_owned();
    let id = start_run(
        &app,
        &operator,
        &json!({ "patient_mrn": "LATE-1", "accession": "LATE-1-A1", "blood_ml": 7.5 }),
    )
    .await;
    let state = app
        .engine
        .wait_for_run(appliance::store::RunId(id))
        .await
        .unwrap();
    assert_eq!(state.as_str(), "awaiting_release");
    // The engine's journal stores events just after publishing the state change that ends the
    // wait: let it catch up (bounded) so the history holds the run's last events.
    for _ in 0..200 {
        let stored = app
            .store
            .run_events_after(appliance::store::RunId(id), 0)
            .await
            .unwrap();
        if stored.iter().any(|event| event.event == "result") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }

    // Opened after the run settled: its history, every stored event numbered in order, then the
    // current state (unnumbered), and the stream ends.
    let events = sse_blocks(&stream_text(&app, &operator, id, None).await);
    let names: Vec<&str> = events.iter().map(|(_, name, _)| name.as_str()).collect();
    for expected in [
        "check",
        "tuning",
        "tuned",
        "tube_confirmed",
        "replicate",
        "result",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} replayed in {names:?}"
        );
    }
    let (last_id, last_name, last_data) = events.last().unwrap();
    assert_eq!(
        (last_id, last_name.as_str()),
        (&None, "state"),
        "the current state comes last"
    );
    assert_eq!(last_data["state"], "awaiting_release");
    let ids: Vec<i64> = events.iter().filter_map(|(id, _, _)| *id).collect();
    assert_eq!(
        ids.len(),
        events.len() - 1,
        "every replayed event is numbered"
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    assert!(events.iter().all(|(_, _, data)| data["run_id"] == id));

    // A reconnection (the browser sends the last id it saw) gets only what came after it.
    let middle = ids[ids.len() / 2];
    let resumed = sse_blocks(&stream_text(&app, &operator, id, Some(&middle.to_string())).await);
    let resumed_ids: Vec<i64> = resumed.iter().filter_map(|(id, _, _)| *id).collect();
    assert_eq!(
        resumed_ids,
        ids.iter()
            .copied()
            .filter(|i| *i > middle)
            .collect::<Vec<_>>()
    );

    // A Last-Event-ID the stream never sent is refused, naming the header.
    let refused = events_request(&app, &operator, id, Some("soon"))
        .send()
        .await
        .expect("request sent");
    assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, "Last-Event-ID").await;
}

/// Issue 11 point 9: a view opened while the run waits for a tube names the tube it waits for
/// (the request was published before the view listened; the stored history replays it).
#[tokio::test]
async fn a_view_opened_while_a_tube_is_awaited_names_the_tube() {
    let app = spawn_app().await;
    let operator = app.token(Role::Operator).to_owned();
    let id = start_run(
        &app,
        &operator,
        &json!({ "patient_mrn": "LATE-2", "accession": "LATE-2-A1", "blood_ml": 7.5,
                          "manual_tube_confirmation": true }),
    )
    .await;
    // Wait (bounded) until the engine asks for the first tube.
    let mut waiting = false;
    for _ in 0..200 {
        let run: Value = app
            .send(
                As::Bearer(&operator),
                Method::GET,
                &format!("/api/v1/runs/{id}"),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        if run["state"] == "awaiting_tube" {
            waiting = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(waiting, "the run asks for its first tube");
    let mut response = events_request(&app, &operator, id, None)
        .send()
        .await
        .expect("request sent");
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let named = loop {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("the request for the tube arrives in time")
            .expect("event stream")
            .expect("the stream stays open while the run waits");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some((_, _, data)) = sse_blocks(&text)
            .into_iter()
            .find(|(_, name, _)| name == "awaiting_tube")
        {
            break data;
        }
    };
    assert_eq!(named["tube"], "control");
    assert_eq!(named["index"], 1);
    drop(response);
    let cancelled = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            &format!("/api/v1/runs/{id}/cancel"),
            Some(&json!({ "reason": "test over" })),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
}
