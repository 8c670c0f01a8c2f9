//! The OpenAPI document (complete, served, and true to the answers), HTTPS with a configured
//! certificate, and response compression (never of event streams).

use std::collections::BTreeSet;
use std::io::Read;

use appliance::config::TlsConfig;
use appliance::store::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{As, PASSWORD, spawn_app, spawn_app_with};

/// Every operation the API serves, written down here independently of the document: a route
/// added to the router changes the document (routes are mounted with their documentation), so
/// this list must be updated with it, on purpose.
const EXPECTED_OPERATIONS: [(&str, &str); 33] = [
    ("GET", "/healthz"),
    ("GET", "/fhir/DiagnosticReport"),
    ("GET", "/fhir/DiagnosticReport/{id}"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/session"),
    ("GET", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/users/{username}/unlock"),
    ("GET", "/api/v1/patients"),
    ("POST", "/api/v1/patients"),
    ("GET", "/api/v1/patients/{id}"),
    ("GET", "/api/v1/patients/{id}/runs"),
    ("GET", "/api/v1/patients/{id}/trend"),
    ("POST", "/api/v1/patients/{id}/events"),
    ("GET", "/api/v1/worklist"),
    ("POST", "/api/v1/runs"),
    ("GET", "/api/v1/runs/{id}"),
    ("POST", "/api/v1/runs/{id}/confirm-tube"),
    ("POST", "/api/v1/runs/{id}/cancel"),
    ("GET", "/api/v1/runs/{id}/events"),
    ("GET", "/api/v1/runs/{id}/report.pdf"),
    ("POST", "/api/v1/runs/{id}/release"),
    ("POST", "/api/v1/runs/{id}/corrections"),
    ("GET", "/api/v1/instrument"),
    ("GET", "/api/v1/qc"),
    ("POST", "/api/v1/qc"),
    ("GET", "/api/v1/calibrations"),
    ("POST", "/api/v1/calibrations"),
    ("POST", "/api/v1/calibrations/{id}/approve"),
    ("POST", "/api/v1/calibrations/{id}/reject"),
    ("GET", "/api/v1/outbox"),
    ("POST", "/api/v1/outbox/{id}/resend"),
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn fetch_document(app: &crate::helpers::TestApp) -> Value {
    let response = app
        .send(As::Nobody, Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "served without credentials"
    );
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    response.json().await.expect("the document is JSON")
}

/// The (METHOD, path) pairs the document describes.
fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method.to_lowercase()).is_some() {
                operations.insert((method.to_owned(), path.clone()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_1_with_security_schemes_and_problem_answers() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    assert_eq!(document["info"]["title"], "Ferrocount API");
    assert!(document["info"]["version"].as_str().is_some());
    assert!(document["paths"].is_object());
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["session_cookie"]["type"], "apiKey");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "ferrocount_session");
    assert_eq!(schemes["csrf_header"]["type"], "apiKey");
    assert_eq!(schemes["csrf_header"]["in"], "header");
    assert_eq!(schemes["csrf_header"]["name"], "x-csrf-token");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let problem = &document["components"]["schemas"]["Problem"];
    for key in ["type", "title", "status", "detail"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .contains(&json!(key)),
            "problem requires {key}: {problem}"
        );
    }

    let public = [
        ("get", "/healthz"),
        ("get", "/api/v1/openapi.json"),
        ("post", "/api/v1/session"),
    ];
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !METHODS.contains(&method.to_uppercase().as_str()) {
                continue;
            }
            let security = operation["security"].as_array().expect("security stated");
            let requirements: Vec<Vec<&str>> = security
                .iter()
                .map(|r| r.as_object().unwrap().keys().map(String::as_str).collect())
                .collect();
            if public.contains(&(method.as_str(), path.as_str())) {
                assert_eq!(
                    requirements,
                    vec![Vec::<&str>::new()],
                    "{method} {path} is open"
                );
            } else {
                let cookie = if method == "get" {
                    vec!["session_cookie"]
                } else {
                    vec!["csrf_header", "session_cookie"]
                };
                assert_eq!(
                    requirements,
                    vec![cookie, vec!["bearer"]],
                    "{method} {path}: the session cookie (with the CSRF header when unsafe) or a bearer token"
                );
                assert!(operation["responses"].get("401").is_some());
                assert!(operation["responses"].get("403").is_some());
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {status} is a problem document"
                    );
                }
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(
                        operation["responses"].get(status).is_some(),
                        "{method} {path} documents {status}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_document_describes_exactly_the_routes_the_router_serves() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;
    let documented = documented_operations(&document);
    let expected: BTreeSet<(String, String)> = EXPECTED_OPERATIONS
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);

    // Each documented operation is served (answered by a handler, whatever it says to a caller
    // without credentials), and every other method on its path is refused as not allowed: no
    // method is served undocumented on a documented path.
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let concrete = path.replace("{id}", "999999");
        for method in METHODS {
            let response = app
                .send(
                    As::Nobody,
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &concrete,
                    None,
                )
                .await;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if documented.contains(&(method.to_owned(), path.clone())) {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert_ne!(
                    body["type"], "urn:ferrocount:problem:no-route",
                    "{method} {path} is served"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is not served, as the document says"
                );
            }
        }
    }

    // Paths are mounted only together with their documentation (`routes!`): a bare `.route(`
    // in the API's router would serve a path the document does not know.
    let source = include_str!("../../web-ui/src/api/mod.rs");
    assert!(
        !source.contains(".route("),
        "web-ui/src/api/mod.rs mounts a route without documentation"
    );
    assert_eq!(
        source.matches("routes!(").count(),
        documented
            .iter()
            .map(|(_, p)| p)
            .collect::<BTreeSet<_>>()
            .len(),
        "one documented mount per path"
    );
}

// The answers themselves are checked against the document by a real JSON Schema validator, for
// every documented operation: `openapi_conformance.rs`.

// ----- compression -----

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a gzip body");
    text
}

#[tokio::test]
async fn json_is_gzipped_when_accepted_and_event_streams_never_are() {
    let app = spawn_app().await;
    let admin = app.token(Role::LabAdmin).to_owned();

    let plain = app
        .client
        .get(app.url("/api/v1/instrument"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let zipped = app
        .client
        .get(app.url("/api/v1/instrument"))
        .bearer_auth(&admin)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.status(), StatusCode::OK);
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert!(
        zipped.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let text = gunzip(&zipped.bytes().await.unwrap());
    let instrument: Value = serde_json::from_str(&text).expect("JSON after gunzip");
    assert!(instrument["status"].is_object());

    // The OpenAPI document and a page's stylesheet too.
    let document = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(document.headers()["content-encoding"], "gzip");

    // A settled run: its event stream answers the state and ends.
    let ticket: Value = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            "/api/v1/runs",
            Some(&json!({ "patient_mrn": "GZ-1", "accession": "GZ-1-A285", "blood_ml": 7.5, "simulate": { "cells": 0 } })),
        )
        .await
        .json()
        .await
        .unwrap();
    let run_id = ticket["id"].as_i64().unwrap();
    app.engine
        .wait_for_run(appliance::store::RunId(run_id))
        .await
        .unwrap();
    let events = app
        .client
        .get(app.url(&format!("/api/v1/runs/{run_id}/events")))
        .bearer_auth(&admin)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    assert!(
        events.headers().get("content-encoding").is_none(),
        "event streams are not compressed"
    );
    let text = events.text().await.unwrap();
    assert!(text.contains("event: state"), "plain SSE text: {text}");
}

// ----- TLS -----

struct Certificate {
    dir: tempfile::TempDir,
    cert_pem: String,
}

impl Certificate {
    /// A self-signed certificate for localhost and 127.0.0.1, written as PEM files.
    fn self_signed() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("certificate");
        let dir = tempfile::tempdir().unwrap();
        let cert_pem = certified.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
        std::fs::write(
            dir.path().join("key.pem"),
            certified.signing_key.serialize_pem(),
        )
        .unwrap();
        Self { dir, cert_pem }
    }

    fn config(&self) -> TlsConfig {
        TlsConfig {
            cert_file: self.dir.path().join("cert.pem"),
            key_file: self.dir.path().join("key.pem"),
        }
    }
}

#[tokio::test]
async fn https_with_a_configured_certificate_sets_secure_cookies_and_refuses_plain_http() {
    let certificate = Certificate::self_signed();
    let tls = certificate.config();
    let app = spawn_app_with(move |config| config.http.tls = Some(tls)).await;
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(certificate.cert_pem.as_bytes()).unwrap(),
        )
        .resolve("localhost", app.address)
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", app.address.port());

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let signed_in = client
        .post(format!("{base}/api/v1/session"))
        .json(&json!({ "username": "olga", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::CREATED);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("ferrocount_session="), "{cookie}");
    assert!(attributes.contains(&"Secure"), "Secure under TLS: {cookie}");
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");

    // The sign-in page's login-CSRF cookie too.
    let page = client.get(format!("{base}/sign-in")).send().await.unwrap();
    for value in page.headers().get_all("set-cookie") {
        let value = value.to_str().unwrap();
        assert!(
            value.split(';').any(|a| a.trim() == "Secure"),
            "Secure under TLS: {value}"
        );
    }

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = app
        .client
        .get(format!("http://{}/healthz", app.address))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP is not served: {plain:?}");
}

#[tokio::test]
async fn plain_http_cookies_are_not_marked_secure() {
    let app = spawn_app().await;
    let session = app.sign_in("olga", PASSWORD).await;
    assert!(session.cookie.starts_with("ferrocount_session="));
    let response = app
        .send(
            As::Nobody,
            Method::POST,
            "/api/v1/session",
            Some(&json!({ "username": "olga", "password": PASSWORD })),
        )
        .await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!cookie.split(';').any(|a| a.trim() == "Secure"), "{cookie}");
}

#[test]
fn a_missing_or_invalid_certificate_or_key_is_refused_naming_the_file() {
    let certificate = Certificate::self_signed();
    assert!(web_ui::server_tls_config(&certificate.config()).is_ok());

    let missing = TlsConfig {
        cert_file: certificate.dir.path().join("absent.pem"),
        ..certificate.config()
    };
    let error = web_ui::server_tls_config(&missing).unwrap_err().to_string();
    assert!(
        error.contains("absent.pem") && error.contains("certificate"),
        "{error}"
    );

    let bad_key = certificate.dir.path().join("bad-key.pem");
    std::fs::write(&bad_key, "this is not a key\n").unwrap();
    let error = web_ui::server_tls_config(&TlsConfig {
        key_file: bad_key,
        ..certificate.config()
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("bad-key.pem") && error.contains("private key"),
        "{error}"
    );

    let not_a_certificate = certificate.dir.path().join("not-cert.pem");
    std::fs::write(&not_a_certificate, "hello\n").unwrap();
    let error = web_ui::server_tls_config(&TlsConfig {
        cert_file: not_a_certificate,
        ..certificate.config()
    })
    .unwrap_err()
    .to_string();
    assert!(error.contains("not-cert.pem"), "{error}");

    // A valid key that does not go with the certificate.
    let other = Certificate::self_signed();
    let error = web_ui::server_tls_config(&TlsConfig {
        key_file: other.config().key_file,
        ..certificate.config()
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("key.pem") && error.contains("does not go with"),
        "{error}"
    );
}
