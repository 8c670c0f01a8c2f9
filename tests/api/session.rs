//! Sign-in, cookies, CSRF, sign-out, tokens and throttling.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use appliance::store::users::Role;

use crate::helpers::{As, PASSWORD, assert_problem, spawn_app};

#[tokio::test]
async fn healthz_answers_only_ok_with_or_without_credentials() {
    let app = spawn_app().await;
    let token = app
        .token(appliance::store::users::Role::LabAdmin)
        .to_owned();
    for who in [As::Nobody, As::Bearer(&token)] {
        let response = app.send(who, Method::GET, "/healthz", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(response.text().await.unwrap(), "ok");
    }
    // The document says the same: plain text.
    let document: Value = app
        .send(As::Nobody, Method::GET, "/api/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let ok = &document["paths"]["/healthz"]["get"]["responses"]["200"]["content"];
    assert!(ok.get("text/plain").is_some(), "{ok}");
    // The version lives with the instrument's status, for signed-in users.
    let response = app
        .send(As::Bearer(&token), Method::GET, "/api/v1/instrument", None)
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

/// The bearer scheme is case-insensitive (RFC 9110 §11.1); a token is still needed.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let token = app
        .token(appliance::store::users::Role::Clinician)
        .to_owned();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let response = crate::helpers::client()
            .get(app.url("/api/v1/patients"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
    for header in ["Basic abc", "Bearer", "bearer  ", &format!("Token {token}")] {
        let response = crate::helpers::client()
            .get(app.url("/api/v1/patients"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
}

/// `/sign-in?next=…` sends a signed-in browser on only to a plain local path; anything a browser
/// could read as another site (a tab it strips, `//host`, `/\\host`, a scheme) or that would
/// break the header (a newline) goes to the dashboard.
#[tokio::test]
async fn sign_in_returns_only_to_plain_local_paths() {
    let app = spawn_app().await;
    let session = app.sign_in("claire", PASSWORD).await;
    let client = crate::helpers::client();
    for (next, expected) in [
        ("/patients/12", "/patients/12"),
        ("/%09/example.com", "/"),
        ("/%0a/example.com", "/"),
        ("/%0d%0aSet-Cookie:%20x=1", "/"),
        ("//example.com", "/"),
        ("/%5Cexample.com", "/"),
        ("https://example.com", "/"),
        ("/%20/example.com", "/"),
    ] {
        let response = client
            .get(format!("{}?next={next}", app.url("/sign-in")))
            .header("cookie", &session.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(crate::helpers::location(&response), expected, "{next}");
    }
}

/// Every page and API answer carrying patient data says `Cache-Control: no-store` (a layer, so
/// no handler can forget it); the static files stay cacheable with their ETag.
#[tokio::test]
async fn answers_with_patient_data_are_never_stored() {
    let app = spawn_app().await;
    let token = app
        .token(appliance::store::users::Role::Clinician)
        .to_owned();
    let created = app
        .send(
            As::Bearer(&token),
            Method::POST,
            "/api/v1/patients",
            Some(&json!({ "mrn": "NS-1", "birth_date": "1970-01-01" })),
        )
        .await;
    let patient: Value = created.json().await.unwrap();
    let id = patient["id"].as_i64().expect("an id");
    let session = app.sign_in("claire", PASSWORD).await;
    let client = crate::helpers::client();
    for path in [
        "/".to_owned(),
        "/patients?mrn=NS-1".to_owned(),
        format!("/patients/{id}"),
        "/api/v1/patients".to_owned(),
        format!("/api/v1/patients/{id}"),
        format!("/api/v1/patients/{id}/trend"),
        "/api/v1/no-such-route".to_owned(),
    ] {
        let response = client
            .get(app.url(&path))
            .header("cookie", &session.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{path}: {}",
            response.status()
        );
    }
    let style = client
        .get(app.url("/static/ferrocount.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(style.headers()["cache-control"], "no-cache");
    assert!(style.headers().contains_key("etag"));
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
    // Another user from the same address is not refused: throttling is per user name and
    // address together, so one account's failures lock nobody else out of this address.
    app.sign_in("claire", PASSWORD).await;
}

/// A lab admin lifts a throttle with a reason (audited); nobody else may. Without the unlock
/// the user waited out the window (15 minutes).
#[tokio::test]
async fn a_lab_admin_unlocks_a_throttled_user_name_with_a_reason() {
    let app = spawn_app().await;
    let sign_in = |password: &'static str| {
        let app = &app;
        async move {
            app.send(
                As::Nobody,
                Method::POST,
                "/api/v1/session",
                Some(&json!({ "username": "claire", "password": password })),
            )
            .await
            .status()
        }
    };
    for _ in 0..5 {
        assert_eq!(sign_in("not the password").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(sign_in(PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    let unlock = |token: String, user: &'static str, body: Value| {
        let app = &app;
        async move {
            app.send(
                As::Bearer(&token),
                Method::POST,
                &format!("/api/v1/users/{user}/unlock"),
                Some(&body),
            )
            .await
        }
    };
    let admin = app.token(Role::LabAdmin).to_owned();
    let clinician = app.token(Role::Clinician).to_owned();
    let reason = json!({ "reason": "called the ward: she mistyped" });
    assert_problem(
        unlock(clinician, "claire", reason.clone()).await,
        StatusCode::FORBIDDEN,
        "clinician",
    )
    .await;
    assert_problem(
        unlock(admin.clone(), "claire", json!({ "reason": "  " })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason",
    )
    .await;
    assert_problem(
        unlock(admin.clone(), "nobody", reason.clone()).await,
        StatusCode::NOT_FOUND,
        "nobody",
    )
    .await;
    assert_eq!(sign_in(PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    let response = unlock(admin.clone(), "claire", reason.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let unlocked: Value = response.json().await.unwrap();
    assert_eq!(
        unlocked,
        json!({ "username": "claire",
                "addresses": [{ "address": "127.0.0.1", "failures": 5, "locked": true }] })
    );
    assert_eq!(sign_in(PASSWORD).await, StatusCode::CREATED);
    let audited: (String, String) =
        sqlx::query_as("SELECT reason, detail_json FROM audit_log WHERE action = 'session.unlock'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(audited.0, "called the ward: she mistyped");
    assert!(audited.1.contains("127.0.0.1"), "{}", audited.1);
}

/// Tokens work for the token life (default 90 days, stated in the answer) and die with a
/// password change. Before issue 16 they never expired and outlived the password.
#[tokio::test]
async fn tokens_expire_after_their_life_and_die_with_a_password_change() {
    let app = spawn_app().await;
    let olga = app.token(Role::Operator).to_owned();
    let before = time::OffsetDateTime::now_utc();
    let created: Value = app
        .send(
            As::Bearer(&olga),
            Method::POST,
            "/api/v1/tokens",
            Some(&json!({ "label": "nightly export" })),
        )
        .await
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let expires = time::OffsetDateTime::parse(
        created["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let life = expires - before;
    assert!(
        life >= time::Duration::days(90) - time::Duration::minutes(1)
            && life <= time::Duration::days(90) + time::Duration::minutes(1),
        "{life}"
    );
    let session = |token: String| {
        let app = &app;
        async move {
            app.send(As::Bearer(&token), Method::GET, "/api/v1/session", None)
                .await
                .status()
        }
    };
    assert_eq!(session(token.clone()).await, StatusCode::OK);
    // The token's age is what counts: made 89 days ago it works, 91 days ago it does not.
    let age = |days: i64| {
        let app = &app;
        let made = time::OffsetDateTime::now_utc() - time::Duration::days(days);
        let text = made
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        async move {
            sqlx::query("UPDATE api_tokens SET created_at = ? WHERE label = 'nightly export'")
                .bind(text)
                .execute(app.store.pool())
                .await
                .unwrap();
        }
    };
    age(89).await;
    assert_eq!(session(token.clone()).await, StatusCode::OK);
    age(91).await;
    let expired = app
        .send(As::Bearer(&token), Method::GET, "/api/v1/session", None)
        .await;
    assert_problem(expired, StatusCode::UNAUTHORIZED, "expired").await;

    // A password change ends every token of the user at once.
    let claire = app.token(Role::Clinician).to_owned();
    assert_eq!(session(claire.clone()).await, StatusCode::OK);
    // Through the operation the command line uses (`ferrocount user password`).
    let ops = operations::Operations::with_engine(
        app.store.clone(),
        app.engine.clone(),
        operations::LoginThrottle::new(std::time::Duration::from_secs(60), 5),
    );
    ops.set_password(
        &operations::Requester::Console,
        "claire",
        appliance::store::users::NewPassword::parse("a new long password").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(session(claire).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        session(olga).await,
        StatusCode::OK,
        "other users' tokens live on"
    );
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
