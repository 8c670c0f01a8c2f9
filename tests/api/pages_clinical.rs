//! The clinical pages over loopback HTTP, as a browser uses them (session cookie from the
//! sign-in form, CSRF tokens from the pages, no redirects followed): the dashboard, the new-run
//! form and its live view followed to a result, the run report and its release by form, the
//! patient pages and their audit, and HTML "not found" pages for browsers.

use appliance::store::RunId;
use appliance::store::users::Role;
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{As, PASSWORD, TestApp, get_page, spawn_app};

/// The live view's script, to check that it handles every event the server sends.
const LIVE_RUN_SCRIPT: &str = include_str!("../../web-ui/static/live-run.js");

/// A browser signed in through the sign-in form.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: String,
}

/// The value of `name="csrf_token" value="…"` or `<meta name="csrf-token" content="…">`.
fn csrf_of(html: &str) -> String {
    for (start, attribute) in [
        ("<meta name=\"csrf-token\"", "content=\""),
        ("name=\"csrf_token\"", "value=\""),
    ] {
        if let Some(at) = html.find(start) {
            let rest = &html[at..];
            if let Some(value_at) = rest.find(attribute) {
                let value = &rest[value_at + attribute.len()..];
                return value[..value.find('"').expect("closing quote")].to_owned();
            }
        }
    }
    panic!("no CSRF token in the page");
}

/// The `name=value` of a `Set-Cookie` header for `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
}

impl Browser {
    async fn sign_in(app: &TestApp, username: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let base = app.url("");
        let form = client
            .get(format!("{base}/sign-in"))
            .send()
            .await
            .expect("sign-in page");
        let pre = set_cookie(&form, "ferrocount_sign_in").expect("pre-session cookie");
        let token = csrf_of(&form.text().await.expect("page"));
        let signed_in = client
            .post(format!("{base}/sign-in"))
            .header(COOKIE, &pre)
            .form(&[
                ("username", username),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .expect("sign-in");
        assert_eq!(
            signed_in.status(),
            StatusCode::SEE_OTHER,
            "{username} signs in"
        );
        let cookie = set_cookie(&signed_in, "ferrocount_session").expect("session cookie");
        Self {
            client,
            base,
            cookie,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(ACCEPT, "text/html")
            .send()
            .await
            .expect("GET")
    }

    /// GETs a page that must answer 200 and returns its HTML.
    async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.expect("HTML")
    }

    async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// A JSON API call with the page's CSRF token in `x-csrf-token`, as the live script sends.
    async fn post_api(&self, path: &str, csrf: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header("x-csrf-token", csrf)
            .send()
            .await
            .expect("POST")
    }
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A finished simulated run of `cells` for a new patient `mrn`, started through the API.
async fn finished_run(app: &TestApp, mrn: &str, cells: f64) -> (i64, i64) {
    let operator = app.token(Role::Operator).to_owned();
    let ticket: Value = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/runs",
            Some(
                &json!({ "patient_mrn": mrn, "accession": format!("{mrn}-A"), "blood_ml": 7.5, "indication": "breast",
                          "simulate": { "cells": cells } }),
            ),
        )
        .await
        .json()
        .await
        .expect("ticket");
    let id = ticket["id"].as_i64().expect("run id");
    let state = app.engine.wait_for_run(RunId(id)).await.expect("run ends");
    assert_eq!(state.as_str(), "awaiting_release");
    let run = app.store.run(RunId(id)).await.expect("run");
    let sample = app.store.sample(run.sample_id).await.expect("sample");
    (id, sample.patient_id.0)
}

#[tokio::test]
async fn the_patient_list_searches_pages_and_never_says_http_422() {
    let app = spawn_app().await;
    let (_, patient) = finished_run(&app, "LIST-001", 12.0).await;
    let claire = Browser::sign_in(&app, "claire").await;

    // An empty search lists (the header's empty box too); nothing typed is an error.
    for path in [
        "/patients",
        "/patients?mrn=",
        "/patients?mrn_prefix=&birth_date=",
    ] {
        let page = claire.page(path).await;
        assert!(page.contains("LIST-001"), "{path}");
        assert!(!page.contains("422"), "{path}");
    }
    // A prefix lists; an exact MRN from the header opens the patient.
    let page = claire.page("/patients?mrn_prefix=list-0").await;
    assert!(page.contains(&format!("href=\"/patients/{patient}\"")));
    let found = claire.get("/patients?mrn=list-001").await;
    assert_eq!(location(&found), format!("/patients/{patient}"));
    // A wrong search is said in words beside the form, which keeps what was typed.
    let wrong = claire.get("/patients?birth_date=1961-02-30").await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = wrong.text().await.expect("HTML");
    assert!(wrong.contains("Date of birth: "), "{wrong}");
    assert!(wrong.contains("is not a calendar date"));
    assert!(wrong.contains("value=\"1961-02-30\""));
    assert!(!wrong.contains("HTTP 422"));
    // More patients than a page: a next link, and the next page has the rest.
    let admin = app.token(Role::LabAdmin).to_owned();
    for n in 2..=30 {
        let registered = app
            .send(
                As::Bearer(&admin),
                Method::POST,
                "/api/v1/patients",
                Some(&json!({ "mrn": format!("LIST-{n:03}"), "birth_date": "1970-01-01" })),
            )
            .await;
        assert_eq!(registered.status(), StatusCode::CREATED);
    }
    let first = claire.page("/patients?mrn_prefix=LIST").await;
    assert!(first.contains("LIST-025") && !first.contains("LIST-026"));
    // (askama writes the link's `&` as `&#38;`.)
    assert!(
        first.contains("href=\"/patients?mrn_prefix=LIST&#38;after=LIST-025\""),
        "a next-page link"
    );
    let second = claire
        .page("/patients?mrn_prefix=LIST&after=LIST-025")
        .await;
    assert!(second.contains("LIST-026") && second.contains("LIST-030"));
    assert!(!second.contains(">LIST-025<"));
    assert!(second.contains("rel=\"first\""));
    // By birth date.
    let born = claire.page("/patients?birth_date=1970-01-01").await;
    assert!(born.contains("LIST-002") && !born.contains(">LIST-001<"));
}

#[tokio::test]
async fn the_worklist_shows_results_awaiting_release_with_both_identifiers() {
    let app = spawn_app().await;
    let (run, patient) = finished_run(&app, "WORK-1", 20.0).await;
    let claire = Browser::sign_in(&app, "claire").await;
    let page = claire.page("/worklist").await;
    assert!(page.contains(&format!("href=\"/runs/{run}\"")));
    assert!(page.contains(&format!("href=\"/patients/{patient}\"")));
    assert!(page.contains("WORK-1-A"), "the accession");
    assert!(page.contains("born "), "the second identifier");
    assert!(page.contains("Result (preliminary)"));
    let olga = Browser::sign_in(&app, "olga").await;
    assert_eq!(olga.get("/worklist").await.status(), StatusCode::FORBIDDEN);
    let api: Value = claire
        .get("/api/v1/worklist")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(api["awaiting"][0]["run_id"], run);
    assert_eq!(api["awaiting"][0]["accession"], "WORK-1-A");
}

#[tokio::test]
async fn a_clinician_marks_a_treatment_on_the_trend_and_it_is_audited() {
    let app = spawn_app().await;
    let (_, patient) = finished_run(&app, "MARK-2", 20.0).await;
    let claire = Browser::sign_in(&app, "claire").await;
    let page = claire.page(&format!("/patients/{patient}")).await;
    let csrf = csrf_of(&page);
    assert!(page.contains("Mark on the trend"));
    let path = format!("/patients/{patient}/events");
    let wrong = claire
        .post_form(
            &path,
            &[
                ("csrf_token", &csrf),
                ("occurred_on", "2026-02-30"),
                ("label", "surgery"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = wrong.text().await.expect("HTML");
    assert!(
        wrong.contains("Not added: Day: "),
        "in words beside the form"
    );
    assert!(
        wrong.contains("value=\"surgery\""),
        "what was typed is kept"
    );
    let added = claire
        .post_form(
            &path,
            &[
                ("csrf_token", &csrf),
                ("occurred_on", "2026-01-10"),
                ("label", "Started docetaxel"),
            ],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert!(location(&added).starts_with(&format!("/patients/{patient}")));
    let page = claire.page(&format!("/patients/{patient}")).await;
    assert!(page.contains("<strong>2026-01-10</strong>: Started docetaxel"));
    assert!(page.contains("recorded by claire Tester"));
    assert!(page.contains("chart-trend"), "on the chart");
    assert_eq!(audit_count(&app, "patient.event_add", patient).await, 1);
    // An operator sees no patient pages and adds no markers.
    let olga = Browser::sign_in(&app, "olga").await;
    let olga_csrf = csrf_of(&olga.page("/").await);
    let refused = olga
        .post_form(
            &path,
            &[
                ("csrf_token", &olga_csrf),
                ("occurred_on", "2026-01-10"),
                ("label", "x"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(audit_count(&app, "patient.event_add", patient).await, 1);
}

async fn audit_count(app: &TestApp, action: &str, entity_id: i64) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ? AND entity_id = ?")
        .bind(action)
        .bind(entity_id.to_string())
        .fetch_one(app.store.pool())
        .await
        .expect("audit count")
}

/// The new-run form's fields for `mrn`, with a token.
fn run_form<'a>(mrn: &'a str, csrf: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", csrf),
        ("patient_mrn", mrn),
        ("accession", mrn),
        ("drawn_at", "2026-01-15T08:30"),
        ("blood_ml", "7.5"),
        ("indication", "breast"),
        ("reagent_lot", "SIM-LOT-1"),
        ("simulate_cells", "40"),
    ]
}

#[tokio::test]
async fn each_page_renders_real_data_for_the_roles_allowed_and_refuses_the_others() {
    let app = crate::helpers::spawn_fresh_app(|config| {
        config.qc.policy = appliance::site::QcPolicy::RunButHold;
    })
    .await;
    crate::helpers::approve_simulated_calibration(&app).await;
    let (run, patient) = finished_run(&app, "PG-1", 30.0).await;
    let olga = Browser::sign_in(&app, "olga").await;
    let claire = Browser::sign_in(&app, "claire").await;
    let lars = Browser::sign_in(&app, "lars").await;

    let pages = [
        ("/".to_owned(), [true, true, true]),
        ("/runs/new".to_owned(), [true, false, true]),
        (format!("/runs/{run}"), [true, true, true]),
        (format!("/runs/{run}/live"), [true, true, true]),
        (format!("/patients/{patient}"), [false, true, true]),
        ("/patients?mrn=PG-1".to_owned(), [false, true, true]),
    ];
    for (path, allowed) in &pages {
        // Without a session: to the sign-in page, coming back here afterwards.
        let anonymous = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(app.url(path))
            .send()
            .await
            .expect("GET");
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&anonymous).starts_with("/sign-in"), "{path}");
        for (browser, allowed) in [&olga, &claire, &lars].into_iter().zip(allowed) {
            let response = browser.get(path).await;
            if *allowed {
                assert!(
                    matches!(response.status(), StatusCode::OK | StatusCode::SEE_OTHER),
                    "{path}: {}",
                    response.status()
                );
            } else {
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
                assert!(content_type(&response).starts_with("text/html"), "{path}");
                assert!(response.text().await.expect("HTML").contains("may not"));
            }
        }
    }

    // The dashboard with real data, by role.
    let clinician_home = claire.page("/").await;
    assert!(
        clinician_home.contains("Simulated board"),
        "{clinician_home}"
    );
    assert!(
        clinician_home.contains("MHz"),
        "the last tune's f0 is shown"
    );
    assert!(clinician_home.contains("Not run today"));
    let awaiting = &clinician_home[clinician_home.find("Awaiting release").expect("section")..];
    assert!(awaiting.contains(&format!("href=\"/runs/{run}\"")));
    assert!(clinician_home.contains(&format!("href=\"/patients/{patient}\"")));
    let operator_home = olga.page("/").await;
    assert!(
        operator_home.contains(&format!("href=\"/runs/{run}\"")),
        "recent results"
    );
    assert!(
        !operator_home.contains("href=\"/patients/"),
        "operators get no links into patient histories"
    );
    assert!(
        !operator_home.contains("awaiting-heading"),
        "not theirs to release"
    );
    assert!(
        !clinician_home.contains("Start a new run"),
        "clinicians do not run samples"
    );

    // The report with real data.
    let report = claire.page(&format!("/runs/{run}")).await;
    for expected in [
        "PG-1",
        "CTC/7.5 mL (95 % CI",
        "Tube 1: control",
        "Tube 2: quad",
        "class=\"chart chart-decay\"",
        "T2 distribution",
        "Calibration used",
        "SIM-LOT-1",
        "v1",
        "Sign and release",
        "run.create",
    ] {
        assert!(report.contains(expected), "report lacks {expected}");
    }
    assert!(report.contains("LoB "), "the calibration's limits");
    assert!(!report.contains("no fit"), "every replicate's fit is read");
    assert!(
        report.contains(" ms</td>") && report.contains(" 1/s</td>"),
        "T2 and R2"
    );
    assert!(report.contains("mean R2 "), "tube statistics");
    let operator_report = olga.page(&format!("/runs/{run}")).await;
    assert!(
        !operator_report.contains("Sign and release"),
        "operators cannot release"
    );

    // The patient page with its trend.
    let patient_page = claire.page(&format!("/patients/{patient}")).await;
    assert!(patient_page.contains("class=\"chart chart-trend\""));
    assert!(patient_page.contains("Cut-off (breast): 5 CTC/7.5 mL"));
    assert!(patient_page.contains(&format!("href=\"/runs/{run}\"")));
    assert!(patient_page.contains(&format!("/api/v1/patients/{patient}/trend?format=csv")));
    assert!(patient_page.contains("Awaiting release"));
}

/// Reads server-sent events as they come, calling `on_event` for each; returns every name seen.
async fn follow_events(
    mut response: reqwest::Response,
    mut on_event: impl AsyncFnMut(&str, &Value),
) -> Vec<String> {
    assert_eq!(response.status(), StatusCode::OK);
    let mut buffer = String::new();
    let mut names = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("event stream") {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = None;
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(value).unwrap_or(Value::Null);
                }
            }
            if let Some(name) = name {
                on_event(&name, &data).await;
                names.push(name);
            }
        }
    }
    names
}

#[tokio::test]
async fn the_new_run_form_starts_a_run_that_the_live_page_follows_to_its_result() {
    let app = spawn_app().await;
    let olga = Browser::sign_in(&app, "olga").await;
    let form = olga.page("/runs/new").await;
    assert!(form.contains("SIM-LOT-1") && form.contains("value=\"breast\""));
    assert!(form.contains("name=\"simulate_cells\""), "simulation field");
    let csrf = csrf_of(&form);
    let mut fields = run_form("LIVE-1", &csrf);
    fields.push(("confirm_tubes", "true"));
    let started = olga.post_form("/runs", &fields).await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let live_path = location(&started);
    let id: i64 = live_path
        .strip_prefix("/runs/")
        .and_then(|rest| rest.strip_suffix("/live"))
        .and_then(|id| id.parse().ok())
        .expect("redirect to the live view");
    let patient = app
        .store
        .patient_by_mrn(&appliance::store::patients::Mrn::parse("LIVE-1").expect("MRN"))
        .await
        .expect("lookup")
        .expect("the new MRN created the patient");

    let live = olga.page(&live_path).await;
    assert!(live.contains(&format!("data-events-href=\"/api/v1/runs/{id}/events\"")));
    assert!(live.contains("src=\"/static/live-run.js\""));
    assert!(
        !live.contains("data-finished"),
        "a running run opens the stream"
    );
    let page_csrf = csrf_of(&live);

    // Follow the stream as the script does, confirming each tube it asks for with the page's token.
    let events = olga.get(&format!("/api/v1/runs/{id}/events")).await;
    let mut confirmed = 0;
    let mut result = Value::Null;
    let names = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        follow_events(events, async |name: &str, data: &Value| {
            if name == "awaiting_tube" {
                let answer = olga
                    .post_api(&format!("/api/v1/runs/{id}/confirm-tube"), &page_csrf)
                    .await;
                assert_eq!(answer.status(), StatusCode::ACCEPTED);
                confirmed += 1;
            }
            if name == "result" {
                result = data["result"].clone();
            }
        }),
    )
    .await
    .expect("the run ends");
    assert_eq!(
        confirmed, 2,
        "control and quad tubes confirmed by hand: {names:?}"
    );
    assert!(names.contains(&"result".to_owned()), "{names:?}");
    for name in &names {
        assert!(
            LIVE_RUN_SCRIPT.contains(&format!("on(\"{name}\"")),
            "live-run.js does not handle the event {name:?}"
        );
    }
    // The payload keys the script reads are there (the bedside shows completion and QC state,
    // never the count or the call).
    assert!(
        !result["qc_hold"].is_null(),
        "result.qc_hold missing: {result}"
    );
    assert!(LIVE_RUN_SCRIPT.contains("result.qc_hold"));

    // Opened again, the live page shows the result at once and opens no stream.
    let finished = olga.page(&live_path).await;
    assert!(finished.contains("data-finished=\"true\""));
    // Completion and QC state at the bedside, never the count or the call.
    assert!(finished.contains("Measurement complete"), "{finished}");
    assert!(!finished.contains("CTC/7.5 mL (95 % CI"), "{finished}");
    assert!(!finished.contains("data-result-panel hidden"));
    assert!(!finished.contains("Cancel run"));
    assert!(finished.contains(&format!("href=\"/runs/{id}\"")));
    let progress = &finished[finished.find("data-progress-list").expect("list")..];
    assert!(
        progress.contains("Control tube, replicate 1 of 3: T2 ="),
        "{progress}"
    );
    let run = app.store.run(RunId(id)).await.expect("run");
    let sample = app.store.sample(run.sample_id).await.expect("sample");
    assert_eq!(sample.patient_id, patient.id);
    assert_eq!(sample.drawn_at.to_rfc3339(), "2026-01-15T08:30:00Z");
    assert_eq!(sample.indication.as_deref(), Some("breast"));
}

#[tokio::test]
async fn bad_new_run_input_is_named_with_422_and_stores_nothing() {
    let app = spawn_app().await;
    let olga = Browser::sign_in(&app, "olga").await;
    let csrf = csrf_of(&olga.page("/runs/new").await);
    let before = (
        app.count("runs").await,
        app.count("patients").await,
        app.count("samples").await,
    );
    let cases: [(&str, &str, &str); 6] = [
        ("blood_ml", "lots", "Blood volume"),
        ("blood_ml", "55", "Blood volume"),
        ("patient_mrn", "", "Patient MRN"),
        ("drawn_at", "tomorrow", "Draw time"),
        ("indication", "liver", "Indication"),
        ("reagent_lot", "NO-SUCH-LOT", "Reagent lot"),
    ];
    for (field, value, named) in cases {
        let mut fields = run_form("BAD-1", &csrf);
        for entry in &mut fields {
            if entry.0 == field {
                entry.1 = value;
            }
        }
        let response = olga.post_form("/runs", &fields).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}"
        );
        assert!(content_type(&response).starts_with("text/html"));
        let html = response.text().await.expect("HTML");
        assert!(
            html.contains(named),
            "{field}={value} is not named:\n{html}"
        );
        assert!(
            html.contains("<form method=\"post\" action=\"/runs\""),
            "the form again"
        );
    }
    // A field missing altogether is named too, not a 500.
    let response = olga
        .post_form("/runs", &[("csrf_token", &csrf), ("patient_mrn", "BAD-2")])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (
            app.count("runs").await,
            app.count("patients").await,
            app.count("samples").await
        ),
        before,
        "nothing stored"
    );
}

#[tokio::test]
async fn form_posts_without_or_with_a_wrong_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let (run, _) = finished_run(&app, "CSRF-1", 10.0).await;
    let olga = Browser::sign_in(&app, "olga").await;
    let claire = Browser::sign_in(&app, "claire").await;
    let runs = app.count("runs").await;
    let mut fields = run_form("CSRF-2", "");
    fields.retain(|(name, _)| *name != "csrf_token");
    let without = olga.post_form("/runs", &fields).await;
    fields.push(("csrf_token", "0123456789abcdef"));
    let wrong = olga.post_form("/runs", &fields).await;
    // Another user's token is as wrong as a made-up one.
    let other_token = csrf_of(&claire.page("/").await);
    let others = run_form("CSRF-2", &other_token);
    let foreign = olga.post_form("/runs", &others).await;
    for response in [without, wrong, foreign] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "refused");
        assert!(location(&response).is_empty(), "no redirect");
    }
    assert_eq!(app.count("runs").await, runs, "no run started");

    let signatures = app.count("result_signatures").await;
    let release = claire
        .post_form(
            &format!("/runs/{run}/release"),
            &[
                ("csrf_token", "wrong"),
                ("printed_name", "claire Tester"),
                ("meaning", "release"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(release.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("result_signatures").await,
        signatures,
        "nothing signed"
    );
    let cancel = olga
        .post_form(&format!("/runs/{run}/cancel"), &[("reason", "no token")])
        .await;
    assert!(cancel.status().is_client_error());
    let state = app.store.run(RunId(run)).await.expect("run").state;
    assert_eq!(state.as_str(), "awaiting_release");
}

#[tokio::test]
async fn release_by_form_records_the_signature_and_shows_it() {
    let app = spawn_app().await;
    let (run, _) = finished_run(&app, "REL-1", 25.0).await;
    let claire = Browser::sign_in(&app, "claire").await;
    let page = claire.page(&format!("/runs/{run}")).await;
    assert!(page.contains(&format!("action=\"/runs/{run}/release#release-heading\"")));
    assert!(
        page.contains("value=\"claire Tester\""),
        "printed name pre-filled"
    );
    let csrf = csrf_of(&page);
    let path = format!("/runs/{run}/release");

    let wrong_password = claire
        .post_form(
            &path,
            &[
                ("csrf_token", &csrf),
                ("printed_name", "claire Tester"),
                ("meaning", "release"),
                ("password", "not my password"),
            ],
        )
        .await;
    assert_eq!(wrong_password.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong_password
            .text()
            .await
            .expect("HTML")
            .contains("password")
    );
    let wrong_name = claire
        .post_form(
            &path,
            &[
                ("csrf_token", &csrf),
                ("printed_name", "Somebody Else"),
                ("meaning", "release"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong_name.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong_name
            .text()
            .await
            .expect("HTML")
            .contains("printed_name")
    );
    assert_eq!(
        app.count("result_signatures").await,
        0,
        "nothing signed yet"
    );

    // An operator may not sign at all.
    let olga = Browser::sign_in(&app, "olga").await;
    let operator_csrf = csrf_of(&olga.page("/").await);
    let refused = olga
        .post_form(
            &path,
            &[
                ("csrf_token", &operator_csrf),
                ("printed_name", "olga Tester"),
                ("meaning", "release"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let signed = claire
        .post_form(
            &path,
            &[
                ("csrf_token", &csrf),
                ("printed_name", "claire tester"),
                ("meaning", "release"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed), format!("/runs/{run}?notice=released"));
    assert_eq!(app.count("result_signatures").await, 1);
    let state = app.store.run(RunId(run)).await.expect("run").state;
    assert_eq!(state.as_str(), "released");
    let shown = claire.page(&location(&signed)).await;
    assert!(shown.contains("Result released"), "the notice");
    assert!(shown.contains("<strong>claire Tester</strong>, Released for clinical use"));
    assert!(shown.contains("result.sign"), "in the run's audit trail");
    assert!(!shown.contains("Sign and release"), "released once");
}

#[tokio::test]
async fn patient_views_are_audited_and_lookups_find_or_say_so() {
    let app = spawn_app().await;
    let (run, patient) = finished_run(&app, "AUD-1", 12.0).await;
    let claire = Browser::sign_in(&app, "claire").await;

    assert_eq!(audit_count(&app, "patient.view", patient).await, 0);
    claire.page(&format!("/patients/{patient}")).await;
    assert_eq!(audit_count(&app, "patient.view", patient).await, 1);

    let found = claire.get("/patients?mrn=aud-1").await;
    assert_eq!(found.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&found), format!("/patients/{patient}"));
    assert_eq!(audit_count(&app, "patient.lookup", patient).await, 1);
    // An MRN nobody has lists the patients whose MRN starts so (none here), in words.
    let missing = claire.get("/patients?mrn=NOBODY-9").await;
    assert_eq!(missing.status(), StatusCode::OK);
    assert!(content_type(&missing).starts_with("text/html"));
    let missing = missing.text().await.expect("HTML");
    assert!(missing.contains("value=\"NOBODY-9\""), "the search is kept");
    assert!(missing.contains("No patient matches this search."));

    let before = audit_count(&app, "run.result_view", run).await;
    claire.page(&format!("/runs/{run}")).await;
    assert_eq!(audit_count(&app, "run.result_view", run).await, before + 1);
    // The JSON API's view of the same run goes through the same operation: audited once more,
    // not twice.
    let shown = claire.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert_eq!(audit_count(&app, "run.result_view", run).await, before + 2);

    // The CSV export opens with the page's session cookie, and is audited as the API audits it.
    let csv = claire
        .get(&format!("/api/v1/patients/{patient}/trend?format=csv"))
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(content_type(&csv).starts_with("text/csv"));
    let text = csv.text().await.expect("CSV");
    assert!(text.starts_with("run_id,drawn_at,per_7_5ml"));
    assert!(text.contains(&format!("\n{run},")));
    assert_eq!(audit_count(&app, "patient.trend_view", patient).await, 1);
}

#[tokio::test]
async fn a_run_is_cancelled_from_its_live_page_with_a_reason() {
    let app = spawn_app().await;
    let olga = Browser::sign_in(&app, "olga").await;
    let csrf = csrf_of(&olga.page("/runs/new").await);
    let mut fields = run_form("CAN-1", &csrf);
    fields.push(("confirm_tubes", "true"));
    let started = olga.post_form("/runs", &fields).await;
    let live_path = location(&started);
    let id: i64 = live_path
        .trim_start_matches("/runs/")
        .trim_end_matches("/live")
        .parse()
        .expect("run id");
    let cancel_path = format!("/runs/{id}/cancel");
    let no_reason = olga
        .post_form(&cancel_path, &[("csrf_token", &csrf), ("reason", " ")])
        .await;
    assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_reason
            .text()
            .await
            .expect("HTML")
            .contains("Reason for cancelling")
    );
    let cancelled = olga
        .post_form(
            &cancel_path,
            &[("csrf_token", &csrf), ("reason", "tube dropped")],
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    let state = app.engine.wait_for_run(RunId(id)).await.expect("run ends");
    assert_eq!(state.as_str(), "cancelled");
    let page = olga.page(&live_path).await;
    assert!(page.contains("data-finished=\"true\""));
    // Cancelled, by whom and why, in words (not the audit trail's `user:<id>:<name>` label).
    assert!(
        page.contains("The run stopped: Cancelled by olga: tube dropped"),
        "who cancelled, in words"
    );
    assert!(!page.contains("user:"), "no machine label on the page");
    let report = olga.page(&format!("/runs/{id}")).await;
    assert!(report.contains("Cancelled by olga: tube dropped"));

    // A clinician may not cancel.
    let claire = Browser::sign_in(&app, "claire").await;
    let claire_csrf = csrf_of(&claire.page("/").await);
    let refused = claire
        .post_form(
            &cancel_path,
            &[("csrf_token", &claire_csrf), ("reason", "not mine")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_pages_are_html_for_browsers_and_problems_for_the_api() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let browser = client
        .get(app.url("/no-such-page"))
        .header(
            ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .expect("GET");
    assert_eq!(browser.status(), StatusCode::NOT_FOUND);
    assert!(content_type(&browser).starts_with("text/html"));
    assert!(
        browser
            .text()
            .await
            .expect("HTML")
            .contains("/no-such-page")
    );

    for (path, accept) in [
        ("/no-such-page", "application/json"),
        ("/no-such-page", "*/*"),
        ("/api/v1/no-such-thing", "text/html"),
    ] {
        let response = client
            .get(app.url(path))
            .header(ACCEPT, accept)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            content_type(&response),
            "application/problem+json",
            "{path} {accept}"
        );
    }
    // A run that does not exist, asked for by a signed-in browser, is an HTML page too.
    let lars = Browser::sign_in(&app, "lars").await;
    for path in ["/runs/999999", "/runs/abc", "/patients/999999"] {
        let response = lars.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(content_type(&response).starts_with("text/html"), "{path}");
    }
}

/// A run of patient `mrn` (registered when new) seeded through the store in `running`, with a
/// result recorded (awaiting release) when `with_result`. (Seeded through the store: runs
/// measured by the engine would take minutes; the pages read only what the store holds.)
pub(crate) async fn seed_run(
    app: &TestApp,
    mrn: &str,
    accession: &str,
    with_result: bool,
) -> RunId {
    use appliance::store::Actor;
    use appliance::store::Timestamp;
    use appliance::store::example_report::example_report;
    use appliance::store::patients::Mrn;
    use appliance::store::runs::{NewRun, RunState};
    use appliance::store::samples::{BloodVolume, NewSample, NewTube, TubeKind, TubeLabel};
    use nmr_core::assay::{Call, CountCategory};

    let actor = Actor::Appliance;
    let patient = app
        .store
        .patient_by_mrn_or_add(
            &actor,
            &appliance::store::patients::NewPatient {
                mrn: Mrn::parse(mrn).expect("an MRN"),
                birth_date: None,
                name: None,
                initials: None,
                indication: None,
            },
        )
        .await
        .expect("a patient");
    let tube = |kind, suffix: &str| NewTube {
        kind,
        label: TubeLabel::parse(&format!("{accession}-{suffix}")).expect("a label"),
    };
    let sample = app
        .store
        .add_sample(
            &actor,
            &NewSample {
                patient_id: patient.id,
                accession: appliance::store::samples::Accession::parse(accession)
                    .expect("an accession"),
                drawn_at: Timestamp::parse("2026-11-20T08:30:00Z").expect("a time"),
                blood: BloodVolume::from_ml(7.5).expect("a volume"),
                indication: None,
                indication_override_reason: None,
                tubes: vec![tube(TubeKind::Control, "C"), tube(TubeKind::Quad, "Q")],
            },
        )
        .await
        .expect("a sample");
    let run = app
        .store
        .create_run(
            &actor,
            &NewRun {
                sample_id: sample.id,
                operator_id: None,
                reagent_lot: Some("LOT-P1".into()),
                simulated: true,
            },
        )
        .await
        .expect("a run");
    app.store
        .set_run_state(&actor, run.id, RunState::Running, None)
        .await
        .expect("running");
    if with_result {
        app.store
            .record_result(
                &actor,
                run.id,
                &example_report(
                    4.0,
                    [1.0, 9.0],
                    CountCategory::Quantified,
                    Some(Call::Favorable),
                    false,
                ),
            )
            .await
            .expect("a result awaiting release");
    }
    run.id
}

/// Follows the `rel="next"` links of the part of the page after `id="{section}"` (to its
/// `</section>`, or the page's end) from `start`: which of `seeded` each page shows (each at most
/// `page_size`, a page after the first linking back with `rel="first"`), in order, and how many
/// pages there were.
pub(crate) async fn walk_pages(
    app: &TestApp,
    session: &crate::helpers::BrowserSession,
    start: &str,
    section: &str,
    seeded: &[String],
    page_size: usize,
) -> (Vec<String>, usize) {
    let mut path = start.to_owned();
    let mut shown: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let (status, html) = get_page(app, Some(session), &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        pages += 1;
        let part = html
            .split(&format!("id=\"{section}\""))
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .unwrap_or_else(|| panic!("{path}: no {section}"));
        let mut on_page: Vec<(usize, String)> = seeded
            .iter()
            .filter_map(|item| part.find(item.as_str()).map(|at| (at, item.clone())))
            .collect();
        on_page.sort();
        assert!(
            !on_page.is_empty() && on_page.len() <= page_size,
            "{path}: {} rows on one page (at most {page_size})",
            on_page.len()
        );
        if pages > 1 {
            assert!(
                part.contains("rel=\"first\""),
                "{path}: a link back to the first page"
            );
        }
        shown.extend(on_page.into_iter().map(|(_, item)| item));
        let next = part
            .split("rel=\"next\"")
            .next()
            .filter(|_| part.contains("rel=\"next\""))
            .and_then(|before| before.rsplit("href=\"").next())
            .and_then(|href| href.split('"').next())
            .map(|href| href.replace("&amp;", "&"));
        match next {
            Some(href) => path = href,
            None => break,
        }
        assert!(pages <= seeded.len(), "the links end");
    }
    (shown, pages)
}

/// The outside probe's growing dashboard: with many results awaiting release, the dashboard shows
/// one bounded page of them, oldest first, with a link to the next page, and the pages together
/// show each waiting result exactly once.
#[tokio::test]
async fn results_awaiting_release_are_paged_with_a_bounded_page_and_links() {
    use operations::runs::AWAITING_PAGE_SIZE;

    let app = spawn_app().await;
    let page_size = AWAITING_PAGE_SIZE as usize;
    let waiting = 2 * page_size + 10;
    let mut seeded = Vec::new();
    for n in 0..waiting {
        let mrn = format!("PAGE-{n:03}");
        seed_run(&app, &mrn, &mrn, true).await;
        seeded.push(mrn);
    }
    let clinician = app.sign_in("claire", PASSWORD).await;
    let (shown, pages) = walk_pages(
        &app,
        &clinician,
        "/",
        "awaiting-heading",
        &seeded,
        page_size,
    )
    .await;
    assert_eq!(pages, waiting.div_ceil(page_size), "pages of {page_size}");
    assert_eq!(shown, seeded, "each waiting result once, oldest first");
}

/// However many runs are queued or measuring, the dashboard lists one bounded page of them,
/// oldest first, and its links reach each exactly once.
#[tokio::test]
async fn runs_in_progress_are_paged_with_a_bounded_page_and_links() {
    use operations::runs::IN_FLIGHT_PAGE_SIZE;

    let app = spawn_app().await;
    let page_size = IN_FLIGHT_PAGE_SIZE as usize;
    let mut seeded = Vec::new();
    for n in 0..page_size + 7 {
        let mrn = format!("FLY-{n:03}");
        seed_run(&app, &mrn, &mrn, false).await;
        seeded.push(format!("MRN {mrn}"));
    }
    let operator = app.sign_in("olga", PASSWORD).await;
    let (shown, pages) =
        walk_pages(&app, &operator, "/", "progress-heading", &seeded, page_size).await;
    assert_eq!(pages, 2, "pages of {page_size}");
    assert_eq!(shown, seeded, "each run in flight once, oldest first");
}

/// A patient with many runs: their page lists one bounded page of runs, newest first, with a
/// link to the older ones, and the pages together show each run exactly once.
#[tokio::test]
async fn a_patients_runs_are_paged_with_a_bounded_page_and_links() {
    let app = spawn_app().await;
    let mut runs = Vec::new();
    for n in 0..37 {
        runs.push(seed_run(&app, "MANY-RUNS-1", &format!("MANY-{n:02}"), n % 4 != 3).await);
    }
    let patient = app
        .store
        .patient_by_mrn(&appliance::store::patients::Mrn::parse("MANY-RUNS-1").expect("MRN"))
        .await
        .expect("read")
        .expect("the patient");
    // Newest first, as the page lists them.
    let seeded: Vec<String> = runs
        .iter()
        .rev()
        .map(|run| format!("href=\"/runs/{run}\""))
        .collect();
    let clinician = app.sign_in("claire", PASSWORD).await;
    let (shown, pages) = walk_pages(
        &app,
        &clinician,
        &format!("/patients/{}", patient.id),
        "runs-heading",
        &seeded,
        25,
    )
    .await;
    assert_eq!(pages, 2, "pages of 25");
    assert_eq!(shown, seeded, "each run once, newest first");
}
