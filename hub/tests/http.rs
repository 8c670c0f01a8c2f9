//! The hub's HTTP face (`hub::http::router`) in process, against a real PostgreSQL server:
//! enrol, ingest, a repeat, a gap, a revoked and an unknown credential.

mod support;

use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode, header};
use hub::store::audit::HubActor;
use hub_protocol::message::{EnrolResponse, HubError, IngestAccepted, IngestRefusal};
use serde::de::DeserializeOwned;
use support::{batch, fresh_store, heartbeats, one_of_each};
use tower::ServiceExt;

async fn post(
    router: &axum::Router,
    path: &str,
    credential: Option<&str>,
    body: String,
) -> (StatusCode, Vec<u8>, Option<String>) {
    let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(credential) = credential {
        request = request.header(header::AUTHORIZATION, format!("Bearer {credential}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(HttpBody::from(body)).expect("request"))
        .await
        .expect("the router answers");
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().expect("text").to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, bytes.to_vec(), challenge)
}

fn json<T: DeserializeOwned>(bytes: &[u8]) -> T {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

#[tokio::test]
async fn an_appliance_enrols_ingests_and_is_refused_once_revoked() {
    let store = fresh_store().await;
    let router = hub::http::router(store.clone());
    let code = store
        .issue_enrolment_code(&HubActor::Console, "Ward 5", time::Duration::hours(1))
        .await
        .expect("issuing");
    let enrol = |code: &str| serde_json::json!({ "code": code, "serial": "SN-H1" }).to_string();

    let (status, body, challenge) = post(&router, "/hub/v1/enrol", None, enrol("WRONG")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(json::<HubError>(&body).error.contains("not known"));
    assert_eq!(challenge.as_deref(), Some("Bearer"));

    let (status, body, _) = post(&router, "/hub/v1/enrol", None, enrol(&code.code)).await;
    assert_eq!(status, StatusCode::OK);
    let enrolled: EnrolResponse = json(&body);
    assert_eq!(enrolled.name, "Ward 5");
    let (status, body, _) = post(&router, "/hub/v1/enrol", None, enrol(&code.code)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(json::<HubError>(&body).error.contains("already used"));

    let credential = Some(enrolled.credential.as_str());
    let first = serde_json::to_string(&batch(one_of_each("SN-H1", 1))).expect("json");
    let (status, body, _) = post(&router, "/hub/v1/ingest", credential, first.clone()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json::<IngestAccepted>(&body),
        IngestAccepted {
            stored: 5,
            repeated: 0,
            last_sequence: 5
        }
    );
    // The same batch again (the acknowledgement was lost): acknowledged, stored once.
    let (status, body, _) = post(&router, "/hub/v1/ingest", credential, first).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json::<IngestAccepted>(&body).repeated, 5);
    // A gap: 409 naming where to resume.
    let gap = serde_json::to_string(&batch(heartbeats("SN-H1", [7]))).expect("json");
    let (status, body, _) = post(&router, "/hub/v1/ingest", credential, gap).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(json::<IngestRefusal>(&body).expected_sequence, 6);
    // Not a batch: 422 in words.
    let (status, body, _) = post(
        &router,
        "/hub/v1/ingest",
        credential,
        r#"{"protocol":1}"#.into(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json::<HubError>(&body).error.contains("messages"));
    let other_version = r#"{"protocol":99,"messages":[]}"#.to_owned();
    let (status, body, _) = post(&router, "/hub/v1/ingest", credential, other_version).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(json::<HubError>(&body).error.contains("version 99"));

    // No credential, an unknown one, a revoked one: 401, each in words.
    let next = serde_json::to_string(&batch(heartbeats("SN-H1", [6]))).expect("json");
    let (status, body, _) = post(&router, "/hub/v1/ingest", None, next.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(json::<HubError>(&body).error.contains("no credential"));
    let (status, body, _) = post(&router, "/hub/v1/ingest", Some("fch_0000"), next.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(json::<HubError>(&body).error.contains("not known"));
    store
        .revoke(&HubActor::Console, "SN-H1", "sent for repair")
        .await
        .expect("revoking");
    let (status, body, challenge) = post(&router, "/hub/v1/ingest", credential, next).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let words = json::<HubError>(&body).error;
    assert!(
        words.contains("revoked") && words.contains("sent for repair"),
        "{words}"
    );
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(
        store
            .last_sequence(enrolled.appliance_id)
            .await
            .expect("store"),
        5
    );
}

/// A request without a valid credential is refused before its body is read: a sender without
/// a credential cannot make the hub read up to 64 MiB.
#[tokio::test]
async fn the_credential_is_checked_before_the_body_is_read() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let store = fresh_store().await;
    let router = hub::http::router(store);
    for credential in [None, Some("Bearer fch_0000")] {
        let read = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&read);
        let body = futures_util::stream::once(async move {
            flag.store(true, Ordering::SeqCst);
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"protocol\":1}"))
        });
        let mut request =
            Request::post("/hub/v1/ingest").header(header::CONTENT_TYPE, "application/json");
        if let Some(credential) = credential {
            request = request.header(header::AUTHORIZATION, credential);
        }
        let response = router
            .clone()
            .oneshot(request.body(HttpBody::from_stream(body)).expect("request"))
            .await
            .expect("the router answers");
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{credential:?}"
        );
        assert!(
            !read.load(Ordering::SeqCst),
            "the body was read before the credential ({credential:?}) was refused"
        );
    }
}
