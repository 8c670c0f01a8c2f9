//! The hub's HTTP face for appliances (JSON, the types of `hub_protocol::message`):
//!
//! - `POST /hub/v1/enrol` ([`EnrolRequest`] → [`EnrolResponse`]): a one-time code for a
//!   credential, shown once. An unknown, used or expired code is 401, a serial already enrolled
//!   409, an unacceptable serial 422, each with the reason in words ([`HubError`]).
//! - `POST /hub/v1/ingest` (`Authorization: Bearer <credential>`, a [`Batch`]): 200
//!   [`IngestAccepted`]; 409 [`IngestRefusal`] naming the sequence to resend from; 401 for a
//!   missing, unknown or revoked credential, in words, checked before the body is read; 413 for
//!   a body over [`MAX_BODY_BYTES`]; 422 for a body that is not a batch of this protocol.
//!
//! Translation only: every rule is in [`crate::store`]. A database failure is 500 with a
//! generic text (the detail goes to the log).
//!
//! Not for: people (the hub's pages come later) or TLS (the binary serves this router over
//! HTTPS when configured, as `ferrocount serve` does).

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hub_protocol::message::{
    Batch, EnrolRequest, EnrolResponse, HubError as HubErrorBody, IngestAccepted, IngestRefusal,
};

use crate::store::fleet::{CredentialRefusal, EnrolRefusal};
use crate::store::ingest::IngestOutcome;
use crate::{HubError, HubStore};

/// The largest request body: a full batch of measurements with their compressed trains.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The router over `store`.
pub fn router(store: HubStore) -> Router {
    Router::new()
        .route("/hub/v1/enrol", post(enrol))
        .route("/hub/v1/ingest", post(ingest))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(store)
}

fn error(status: StatusCode, words: impl Into<String>) -> Response {
    (
        status,
        Json(HubErrorBody {
            error: words.into(),
        }),
    )
        .into_response()
}

fn unauthorized(words: impl Into<String>) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, words);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn internal(failure: &HubError) -> Response {
    tracing::error!(error = %failure, "hub request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the hub could not complete the request (its log says why); nothing was changed, \
         try again",
    )
}

async fn enrol(
    State(store): State<HubStore>,
    body: Result<Json<EnrolRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return error(StatusCode::UNPROCESSABLE_ENTITY, rejection.body_text()),
    };
    match store.enrol(&request.code, &request.serial).await {
        Ok(Ok(enrolled)) => (
            StatusCode::OK,
            Json(EnrolResponse {
                appliance_id: enrolled.appliance_id,
                name: enrolled.name,
                credential: enrolled.credential,
            }),
        )
            .into_response(),
        Ok(Err(refusal)) => {
            let status = match refusal {
                EnrolRefusal::UnknownCode | EnrolRefusal::CodeUsed | EnrolRefusal::CodeExpired => {
                    return unauthorized(refusal.to_string());
                }
                EnrolRefusal::SerialEnrolled(_) => StatusCode::CONFLICT,
                EnrolRefusal::InvalidSerial(_) => StatusCode::UNPROCESSABLE_ENTITY,
            };
            error(status, refusal.to_string())
        }
        Err(failure) => internal(&failure),
    }
}

/// The bearer credential of a request, or why there is none.
fn bearer(headers: &HeaderMap) -> Result<&str, &'static str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("no credential: send Authorization: Bearer <the credential from enrolment>")?;
    let text = value
        .to_str()
        .map_err(|_| "the Authorization header is not text")?;
    text.strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|credential| !credential.is_empty())
        .ok_or("the Authorization header is not \"Bearer <credential>\"")
}

/// The credential is checked before the body is read: a request without a valid one is answered
/// 401 without the hub reading (up to [`MAX_BODY_BYTES`] of) what it carries.
async fn ingest(
    State(store): State<HubStore>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let credential = match bearer(&headers) {
        Ok(credential) => credential,
        Err(words) => return unauthorized(words),
    };
    let appliance = match store.authenticate(credential).await {
        Ok(Ok(appliance)) => appliance,
        Ok(Err(refusal @ (CredentialRefusal::Unknown | CredentialRefusal::Revoked { .. }))) => {
            return unauthorized(refusal.to_string());
        }
        Err(failure) => return internal(&failure),
    };
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the batch could not be read whole (at most {MAX_BODY_BYTES} bytes); \
                     send fewer messages per batch"
                ),
            );
        }
    };
    let batch: Batch = match serde_json::from_slice(&bytes) {
        Ok(batch) => batch,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the body is not a batch of this protocol: {e}"),
            );
        }
    };
    match store.ingest(&appliance, &batch).await {
        Ok(IngestOutcome::Accepted(accepted)) => {
            (StatusCode::OK, Json::<IngestAccepted>(accepted)).into_response()
        }
        Ok(IngestOutcome::Refused(refusal)) => {
            (StatusCode::CONFLICT, Json::<IngestRefusal>(refusal)).into_response()
        }
        Ok(IngestOutcome::Unreadable(words)) => error(StatusCode::UNPROCESSABLE_ENTITY, words),
        Err(failure) => internal(&failure),
    }
}
