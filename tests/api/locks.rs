//! Walks EVERY route without credentials and with each role, and checks each answer against
//! this copy of the table in docs/roles.md (written independently of `web_ui::roles`).

use appliance::store::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{As, spawn_app};

/// Who may call a route.
#[derive(Clone, Copy, Debug)]
enum Allowed {
    /// No credentials needed.
    Public,
    /// Any signed-in role.
    AnyRole,
    /// Only these roles.
    Roles(&'static [Role]),
}

use Allowed::*;
use Role::{Clinician, LabAdmin, Operator};

struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    allowed: Allowed,
}

fn route(method: Method, path: &'static str, body: Option<Value>, allowed: Allowed) -> Route {
    Route {
        method,
        path,
        body,
        allowed,
    }
}

/// The table of docs/roles.md. `{p}` is a patient id, `{r}` a run a lab admin started, `{o}` a
/// run the operator started (both settled, awaiting release): an operator opens only the
/// unreleased runs they are working on.
fn table() -> Vec<Route> {
    let calibration = json!({ "content": "lot = \"X\"" });
    vec![
        route(Method::GET, "/healthz", None, Public),
        route(Method::GET, "/api/v1/openapi.json", None, Public),
        route(Method::GET, "/api/v1/session", None, AnyRole),
        route(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({ "label": "t" })),
            AnyRole,
        ),
        route(
            Method::GET,
            "/api/v1/patients",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(
            Method::POST,
            "/api/v1/patients",
            Some(json!({ "mrn": "LOCK-1", "birth_date": "1970-01-01" })),
            Roles(&[Operator, Clinician, LabAdmin]),
        ),
        route(
            Method::GET,
            "/api/v1/patients/{p}",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(
            Method::GET,
            "/api/v1/patients/{p}/runs",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(
            Method::GET,
            "/api/v1/patients/{p}/trend",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(
            Method::GET,
            "/api/v1/patients/{p}/trend?format=csv",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(
            Method::POST,
            "/api/v1/patients/{p}/events",
            Some(json!({ "occurred_on": "2026-01-15", "label": "lock test" })),
            Roles(&[Clinician, LabAdmin]),
        ),
        route(
            Method::GET,
            "/api/v1/worklist",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(
            Method::POST,
            "/api/v1/runs",
            Some(json!({ "patient_mrn": "LOCK-2", "accession": "LOCK-2-A86", "blood_ml": 7.5 })),
            Roles(&[Operator, LabAdmin]),
        ),
        route(
            Method::GET,
            "/api/v1/runs/{r}",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(Method::GET, "/api/v1/runs/{o}", None, AnyRole),
        route(
            Method::GET,
            "/api/v1/runs/{r}/report.pdf",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(Method::GET, "/api/v1/runs/{o}/report.pdf", None, AnyRole),
        route(
            Method::POST,
            "/api/v1/runs/{r}/confirm-tube",
            None,
            Roles(&[Operator, LabAdmin]),
        ),
        route(
            Method::POST,
            "/api/v1/runs/{r}/cancel",
            Some(json!({ "reason": "lock test" })),
            Roles(&[Operator, LabAdmin]),
        ),
        route(
            Method::GET,
            "/api/v1/runs/{r}/events",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(Method::GET, "/api/v1/runs/{o}/events", None, AnyRole),
        route(
            Method::POST,
            "/api/v1/runs/{r}/release",
            Some(json!({ "password": "x", "printed_name": "x" })),
            Roles(&[Clinician, LabAdmin]),
        ),
        route(
            Method::POST,
            "/api/v1/runs/{r}/corrections",
            Some(
                json!({ "blood_ml": 5.0, "reason": "lock test", "password": "x", "printed_name": "x" }),
            ),
            Roles(&[Clinician, LabAdmin]),
        ),
        route(
            Method::GET,
            "/fhir/DiagnosticReport?patient=LOCK-0",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(
            Method::GET,
            "/fhir/DiagnosticReport/{r}",
            None,
            Roles(&[Clinician, LabAdmin]),
        ),
        route(Method::GET, "/api/v1/instrument", None, AnyRole),
        route(Method::GET, "/api/v1/qc", None, AnyRole),
        route(Method::GET, "/api/v1/calibrations", None, AnyRole),
        route(
            Method::POST,
            "/api/v1/calibrations",
            Some(calibration),
            Roles(&[LabAdmin]),
        ),
        route(
            Method::POST,
            "/api/v1/calibrations/999999/approve",
            Some(json!({ "password": "x", "printed_name": "x", "reason": "locks test" })),
            Roles(&[LabAdmin]),
        ),
        route(
            Method::POST,
            "/api/v1/calibrations/999999/reject",
            Some(json!({ "password": "x", "printed_name": "x", "reason": "locks test" })),
            Roles(&[LabAdmin]),
        ),
        route(
            Method::POST,
            "/api/v1/qc",
            Some(json!({ "lot_id": 999_999, "value": 1.0 })),
            Roles(&[Operator, LabAdmin]),
        ),
        route(
            Method::POST,
            "/api/v1/users/olga/unlock",
            Some(json!({ "reason": "locks test" })),
            Roles(&[LabAdmin]),
        ),
        route(Method::GET, "/api/v1/outbox", None, Roles(&[LabAdmin])),
        route(
            Method::POST,
            "/api/v1/outbox/999999/resend",
            Some(json!({ "reason": "locks test" })),
            Roles(&[LabAdmin]),
        ),
        // Last: it ends the caller's session (bearer callers get 409, which is still "allowed").
        route(Method::DELETE, "/api/v1/session", None, AnyRole),
    ]
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_roles_table_says() {
    let app = spawn_app().await;
    let admin = app.token(LabAdmin).to_owned();
    let patient: Value = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": "LOCK-0", "birth_date": "1970-01-01" })),
        )
        .await
        .json()
        .await
        .unwrap();
    let patient_id = patient["id"].as_i64().unwrap();
    // A run that has settled, so that events end and cancel/confirm answer without waiting.
    let ticket: Value = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            "/api/v1/runs",
            Some(&json!({ "patient_mrn": "LOCK-0", "birth_date": "1970-01-01", "accession": "LOCK-0-A159", "blood_ml": 7.5, "simulate": { "cells": 0 } })),
        )
        .await
        .json()
        .await
        .unwrap();
    let run_id = appliance::store::RunId(ticket["id"].as_i64().unwrap());
    app.engine.wait_for_run(run_id).await.unwrap();
    // The operator's own run.
    let operator = app.token(Operator).to_owned();
    let own: Value = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/runs",
            Some(&json!({ "patient_mrn": "LOCK-0", "birth_date": "1970-01-01", "accession": "LOCK-0-OWN", "blood_ml": 7.5, "simulate": { "cells": 0 } })),
        )
        .await
        .json()
        .await
        .unwrap();
    let own_id = appliance::store::RunId(own["id"].as_i64().unwrap());
    app.engine.wait_for_run(own_id).await.unwrap();

    let mut checked = 0;
    for route in table() {
        let path = route
            .path
            .replace("{p}", &patient_id.to_string())
            .replace("{r}", &run_id.0.to_string())
            .replace("{o}", &own_id.0.to_string());
        let nobody = app
            .send(As::Nobody, route.method.clone(), &path, route.body.as_ref())
            .await;
        match route.allowed {
            Public => assert!(
                nobody.status().is_success(),
                "{} {path} public",
                route.method
            ),
            _ => assert_eq!(
                nobody.status(),
                StatusCode::UNAUTHORIZED,
                "{} {path} without credentials",
                route.method
            ),
        }
        for (role, _) in crate::helpers::ROLES {
            let token = app.token(role).to_owned();
            let response = app
                .send(
                    As::Bearer(&token),
                    route.method.clone(),
                    &path,
                    route.body.as_ref(),
                )
                .await;
            let status = response.status();
            let allowed = match route.allowed {
                Public | AnyRole => true,
                Roles(roles) => roles.contains(&role),
            };
            if allowed {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{} {path} as {role}: allowed, got {status}",
                    route.method
                );
                assert_ne!(
                    status,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "{} {path} as {role}",
                    route.method
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {path} as {role}: refused",
                    route.method
                );
                let problem: Value = response.json().await.unwrap();
                assert!(
                    problem["detail"].as_str().unwrap().contains(role.as_str()),
                    "the refusal names the role: {problem}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, table().len() * 3);
}

#[tokio::test]
async fn the_locks_table_covers_every_route_of_the_router() {
    // Every path mounted in web_ui::api::router (one documented `routes!(..)` per path).
    let source = include_str!("../../web-ui/src/api/mod.rs");
    let mounted = source.matches("routes!(").count();
    let templates: std::collections::BTreeSet<&str> = table()
        .iter()
        .map(|r| r.path.split('?').next().unwrap())
        // The operator's own run is the same route as another's.
        .filter(|path| !path.contains("{o}"))
        .collect();
    assert_eq!(
        templates.len(),
        mounted,
        "each mounted path appears in the table: {templates:?}"
    );
}
