//! Walks EVERY page route without a session and with each role's browser session, and checks each
//! answer against this copy of the page tables in docs/roles.md (written independently of
//! `web_ui::roles`): without a session a page redirects to the sign-in page; a role that may not
//! gets a 403 page; an allowed role never gets 403, a redirect to sign-in, or a 500.

use appliance::store::users::Role;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{As, BrowserSession, PASSWORD, ROLES, TestApp, client, location, spawn_app};

/// Who may use a page.
#[derive(Clone, Copy, Debug)]
enum Allowed {
    /// No session needed.
    Public,
    /// Any signed-in role.
    AnyRole,
    /// Only these roles.
    Roles(&'static [Role]),
}

use Allowed::*;
use Role::{Clinician, LabAdmin, Operator};

struct Page {
    method: Method,
    path: &'static str,
    form: &'static [(&'static str, &'static str)],
    allowed: Allowed,
}

fn get(path: &'static str, allowed: Allowed) -> Page {
    Page {
        method: Method::GET,
        path,
        form: &[],
        allowed,
    }
}

fn post(
    path: &'static str,
    form: &'static [(&'static str, &'static str)],
    allowed: Allowed,
) -> Page {
    Page {
        method: Method::POST,
        path,
        form,
        allowed,
    }
}

/// The page tables of docs/roles.md. `{p}` is a patient id, `{r}` a run a lab admin started and
/// `{o}` one the operator started (an operator opens only the unreleased runs they are working
/// on), `{c}` a calibration
/// id, `{t}` an API token id. Forms are deliberately incomplete where completing them would change
/// what later rows need (an allowed role then gets 404 or 422, never 403).
fn table() -> Vec<Page> {
    const RUN_AND_CLINIC: &[Role] = &[Operator, LabAdmin];
    const VIEWERS: &[Role] = &[Clinician, LabAdmin];
    const ADMIN: &[Role] = &[LabAdmin];
    const BENCH: &[Role] = &[Operator, LabAdmin];
    vec![
        get("/sign-in", Public),
        get("/static/ferrocount.css", Public),
        get("/", AnyRole),
        get("/runs/new", Roles(RUN_AND_CLINIC)),
        post("/runs", &[("patient_mrn", "")], Roles(RUN_AND_CLINIC)),
        get("/runs/{r}/live", Roles(VIEWERS)),
        get("/runs/{o}/live", AnyRole),
        post("/runs/{o}/cancel", &[("reason", "")], Roles(RUN_AND_CLINIC)),
        get("/runs/{r}", Roles(VIEWERS)),
        get("/runs/{o}", AnyRole),
        post(
            "/runs/{r}/release",
            &[("meaning", "nonsense")],
            Roles(VIEWERS),
        ),
        post("/runs/{r}/corrections", &[("reason", "")], Roles(VIEWERS)),
        get("/patients?mrn=LOCK-7", Roles(VIEWERS)),
        get("/patients/{p}", Roles(VIEWERS)),
        post("/patients/{p}/events", &[("label", "")], Roles(VIEWERS)),
        get("/worklist", Roles(VIEWERS)),
        get("/qc", AnyRole),
        post("/qc/measurements", &[("value", "")], Roles(BENCH)),
        post("/qc/materials", &[("name", "")], Roles(ADMIN)),
        post("/qc/lots", &[("lot", "")], Roles(ADMIN)),
        post("/qc/targets", &[("sd", "")], Roles(ADMIN)),
        post(
            "/qc/results/999/corrective-actions",
            &[("action", "")],
            Roles(BENCH),
        ),
        get("/calibrations", AnyRole),
        get("/calibrations/{c}", AnyRole),
        post("/calibrations", &[("content", "")], Roles(ADMIN)),
        post("/calibrations/simulated", &[], Roles(ADMIN)),
        post(
            "/calibrations/{c}/approve",
            &[("reason", ""), ("printed_name", ""), ("password", "")],
            Roles(ADMIN),
        ),
        post(
            "/calibrations/{c}/reject",
            &[("reason", ""), ("printed_name", ""), ("password", "")],
            Roles(ADMIN),
        ),
        get("/admin", Roles(ADMIN)),
        get("/admin/audit?action=run", Roles(ADMIN)),
        get("/admin/audit.csv?action=run", Roles(ADMIN)),
        get("/admin/backup", Roles(ADMIN)),
        get("/outbox", Roles(ADMIN)),
        post(
            "/outbox/999999/resend",
            &[("reason", "locks test")],
            Roles(ADMIN),
        ),
        post("/admin/users", &[("username", "")], Roles(ADMIN)),
        post(
            "/admin/users/nobody-here/disable",
            &[("reason", "left")],
            Roles(ADMIN),
        ),
        post(
            "/admin/users/nobody-here/role",
            &[("role", "operator"), ("reason", "moved")],
            Roles(ADMIN),
        ),
        post(
            "/admin/users/nobody-here/enable",
            &[("reason", "back")],
            Roles(ADMIN),
        ),
        post(
            "/admin/users/nobody-here/unlock",
            &[("reason", "locked out")],
            Roles(ADMIN),
        ),
        post(
            "/admin/users/nobody-here/password-reset",
            &[
                ("temporary_password", "temporary pass 42"),
                ("reason", "forgot"),
            ],
            Roles(ADMIN),
        ),
        post("/admin/tokens", &[("label", "")], AnyRole),
        post("/admin/tokens/{t}/revoke", &[], AnyRole),
        post("/sign-out", &[], AnyRole),
        get("/account", AnyRole),
        post(
            "/account/password",
            &[("current_password", "not it")],
            AnyRole,
        ),
    ]
}

async fn request(
    app: &TestApp,
    client: &reqwest::Client,
    page: &Page,
    path: &str,
    session: Option<&BrowserSession>,
) -> reqwest::Response {
    let mut request = client.request(page.method.clone(), app.url(path));
    let mut form: Vec<(&str, &str)> = page.form.to_vec();
    if let Some(session) = session {
        request = request.header(COOKIE, &session.cookie);
        form.push(("csrf_token", &session.csrf));
    }
    if page.method == Method::POST {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        request = request
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
    }
    request.send().await.expect("request sent")
}

#[tokio::test]
async fn every_page_answers_each_role_as_the_roles_tables_say() {
    let app = spawn_app().await;
    let client = client();
    let admin = app.token(LabAdmin).to_owned();
    let patient: Value = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": "LOCK-7", "birth_date": "1970-01-01" })),
        )
        .await
        .json()
        .await
        .expect("patient");
    let patient_id = patient["id"].as_i64().expect("patient id");
    let ticket: Value = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            "/api/v1/runs",
            Some(&json!({ "patient_mrn": "LOCK-7", "birth_date": "1970-01-01", "accession": "LOCK-7-A166", "blood_ml": 7.5, "simulate": { "cells": 3 } })),
        )
        .await
        .json()
        .await
        .expect("ticket");
    let run_id = appliance::store::RunId(ticket["id"].as_i64().expect("run id"));
    app.engine.wait_for_run(run_id).await.expect("run settles");
    let operator = app.token(Operator).to_owned();
    let own: Value = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/runs",
            Some(&json!({ "patient_mrn": "LOCK-7", "birth_date": "1970-01-01", "accession": "LOCK-7-OWN", "blood_ml": 7.5, "simulate": { "cells": 3 } })),
        )
        .await
        .json()
        .await
        .expect("ticket");
    let own_id = appliance::store::RunId(own["id"].as_i64().expect("run id"));
    app.engine.wait_for_run(own_id).await.expect("run settles");
    let calibrations: Value = app
        .send(
            As::Bearer(&admin),
            Method::GET,
            "/api/v1/calibrations",
            None,
        )
        .await
        .json()
        .await
        .expect("calibrations");
    let calibration_id = calibrations["calibrations"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("the run made one: {calibrations}"));

    let mut checked = 0;
    for page in table() {
        let path = page
            .path
            .replace("{p}", &patient_id.to_string())
            .replace("{r}", &run_id.0.to_string())
            .replace("{o}", &own_id.0.to_string())
            .replace("{c}", &calibration_id.to_string())
            // No such token: an allowed role gets 404, a refused one 403.
            .replace("{t}", "999999");
        let nobody = request(&app, &client, &page, &path, None).await;
        match page.allowed {
            Public => assert!(
                nobody.status().is_success(),
                "{} {path} is public: {}",
                page.method,
                nobody.status()
            ),
            _ => {
                assert_eq!(
                    nobody.status(),
                    StatusCode::SEE_OTHER,
                    "{} {path} without a session",
                    page.method
                );
                assert!(
                    location(&nobody).starts_with("/sign-in"),
                    "{} {path} sends to sign-in, not {}",
                    page.method,
                    location(&nobody)
                );
            }
        }
        for (role, username) in ROLES {
            // A fresh session per request: sign-out and token revocation must not leak.
            let session = app.sign_in(username, PASSWORD).await;
            let response = request(&app, &client, &page, &path, Some(&session)).await;
            let status = response.status();
            let allowed = match page.allowed {
                Public | AnyRole => true,
                Roles(roles) => roles.contains(&role),
            };
            if allowed {
                assert!(
                    status != StatusCode::FORBIDDEN
                        && status != StatusCode::UNAUTHORIZED
                        && !status.is_server_error(),
                    "{} {path} as {role}: allowed, got {status}",
                    page.method
                );
                assert!(
                    !location(&response).starts_with("/sign-in") || page.path == "/sign-out",
                    "{} {path} as {role}: allowed, sent to sign in",
                    page.method
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {path} as {role}: refused",
                    page.method
                );
                let html = response.text().await.expect("page");
                assert!(
                    html.contains(&format!("a {role} may not")),
                    "the refusal page names the role"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, table().len() * 3);
}

#[test]
fn the_page_table_covers_every_page_route() {
    // Every `.route(` of the page modules, one row per route (sign-in's GET and POST share one:
    // its POST is the public form target, tested in the session tests).
    let sources = [
        include_str!("../../web-ui/src/pages/session.rs"),
        include_str!("../../web-ui/src/pages/account.rs"),
        include_str!("../../web-ui/src/pages/static_files.rs"),
        include_str!("../../web-ui/src/pages/dashboard.rs"),
        include_str!("../../web-ui/src/pages/runs.rs"),
        include_str!("../../web-ui/src/pages/runs/report.rs"),
        include_str!("../../web-ui/src/pages/patients.rs"),
        include_str!("../../web-ui/src/pages/worklist.rs"),
        include_str!("../../web-ui/src/pages/qc.rs"),
        include_str!("../../web-ui/src/pages/calibrations.rs"),
        include_str!("../../web-ui/src/pages/admin.rs"),
        include_str!("../../web-ui/src/pages/outbox.rs"),
    ];
    let mounted: usize = sources.iter().map(|s| s.matches(".route(").count()).sum();
    let rows: std::collections::BTreeSet<String> = table()
        .iter()
        // The operator's own run is the same route as another's (cancel is only tried on it).
        .filter(|p| !p.path.contains("{o}") || p.path.ends_with("/cancel"))
        .map(|p| format!("{} {}", p.method, p.path.split('?').next().unwrap_or("")))
        .collect();
    assert_eq!(
        rows.len(),
        mounted,
        "each mounted page route has a row: {rows:?}"
    );
}
