//! Sign-in, cookies, CSRF, sign-out, tokens and throttling.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{As, PASSWORD, assert_problem, spawn_app};

#[tokio::test]
async fn healthz_needs_no_credentials_and_shows_no_patient_data() {
    let app = spawn_app().await;
    let response = app.send(As::Nobody, Method::GET, "/healthz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["database", "engine", "status", "version"]);
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session() {
    let app = spawn_app().await;
    let response = app
        .send(
            As::Nobody,
            Method::POST,
            "/api/v1/session",
            Some(&json!({ "username": "claire", "password": PASSWORD })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("ferrocount_session="));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["role"], "clinician");
    assert_eq!(body["idle_timeout_minutes"], 15);

    let session = app.sign_in("claire", PASSWORD).await;
    let me = app
        .send(As::Browser(&session), Method::GET, "/api/v1/session", None)
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["csrf_token"], session.csrf.as_str());

    let out = app
        .send(
            As::Browser(&session),
            Method::DELETE,
            "/api/v1/session",
            None,
        )
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = app
        .send(As::Browser(&session), Method::GET, "/api/v1/patients", None)
        .await;
    assert_problem(after, StatusCode::UNAUTHORIZED, "session has ended").await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_audited_without_saying_which_part_was_wrong() {
    let app = spawn_app().await;
    for (user, password) in [("claire", "wrong password!"), ("nobody", PASSWORD)] {
        let response = app
            .send(
                As::Nobody,
                Method::POST,
                "/api/v1/session",
                Some(&json!({ "username": user, "password": password })),
            )
            .await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "user name or password").await;
    }
    let refused: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'session.sign_in_refused'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(refused, 2);
}

#[tokio::test]
async fn repeated_failures_for_one_user_are_throttled_with_429_even_with_the_right_password() {
    let app = spawn_app().await;
    let attempt = |password: &'static str| {
        let app = &app;
        async move {
            app.send(
                As::Nobody,
                Method::POST,
                "/api/v1/session",
                Some(&json!({ "username": "lars", "password": password })),
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(
            attempt("not the password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let response = attempt(PASSWORD).await;
    assert!(response.headers().contains_key("retry-after"));
    let problem = assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "this user name").await;
    assert!(problem["retry_after_s"].as_u64().unwrap() > 0);
    // Another user from the same address is not yet refused (the address limit is 20).
    app.sign_in("claire", PASSWORD).await;
}

#[tokio::test]
async fn cookie_requests_that_change_things_need_the_csrf_token_and_bearer_requests_do_not() {
    let app = spawn_app().await;
    let session = app.sign_in("olga", PASSWORD).await;
    let before = app.count("patients").await;
    let body = json!({ "mrn": "MRN-100", "birth_date": "1970-01-01" });
    let refused = app
        .send(
            As::BrowserWithoutCsrf(&session),
            Method::POST,
            "/api/v1/patients",
            Some(&body),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "X-CSRF-Token").await;
    assert_eq!(app.count("patients").await, before, "nothing stored");
    let wrong = crate::helpers::BrowserSession {
        cookie: session.cookie.clone(),
        csrf: "0".repeat(64),
    };
    let refused = app
        .send(
            As::Browser(&wrong),
            Method::POST,
            "/api/v1/patients",
            Some(&body),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let accepted = app
        .send(
            As::Browser(&session),
            Method::POST,
            "/api/v1/patients",
            Some(&body),
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::CREATED);
    let token = app
        .token(appliance::store::users::Role::Operator)
        .to_owned();
    let by_bearer = app
        .send(
            As::Bearer(&token),
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": "MRN-101", "birth_date": "1970-01-01" })),
        )
        .await;
    assert_eq!(by_bearer.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_session_ends_after_the_configured_inactivity() {
    let app = crate::helpers::spawn_app_with(|config| config.http.session_idle_minutes = 1).await;
    let session = app.sign_in("claire", PASSWORD).await;
    // Age the session in the database instead of waiting: its expiry is what the store checks.
    sqlx::query("UPDATE sessions SET expires_at = '2000-01-01T00:00:00Z'")
        .execute(app.store.pool())
        .await
        .unwrap();
    let response = app
        .send(As::Browser(&session), Method::GET, "/api/v1/session", None)
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "idle too long").await;
}

#[tokio::test]
async fn a_token_is_shown_once_and_then_authenticates() {
    let app = spawn_app().await;
    let session = app.sign_in("claire", PASSWORD).await;
    let response = app
        .send(
            As::Browser(&session),
            Method::POST,
            "/api/v1/tokens",
            Some(&json!({ "label": "dashboard" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with(body["prefix"].as_str().unwrap()));
    let me = app
        .send(As::Bearer(&token), Method::GET, "/api/v1/session", None)
        .await;
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["username"], "claire");
    assert_eq!(me["csrf_token"], Value::Null);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE token_hash = ?")
        .bind(&token)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "the secret itself is never stored");
    let garbage = app
        .send(As::Bearer("fct_nonsense"), Method::GET, "/api/v1/qc", None)
        .await;
    assert_problem(garbage, StatusCode::UNAUTHORIZED, "unknown or revoked").await;
}
