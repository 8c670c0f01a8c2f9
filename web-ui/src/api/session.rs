//! `POST /api/v1/session` signs in (sets the session cookie), `GET` says who is signed in and
//! repeats the CSRF token, `DELETE` signs out; `POST /api/v1/users/{username}/unlock` lets a lab
//! admin lift the sign-in throttle on a user name.
//!
//! Sign-ins are throttled per user name and client address together ([`crate::throttle`]); each
//! attempt, successful or not, is audited with the client address.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use operations::users::ChangeReason;

use crate::auth::{Caller, Credential, cleared_cookie, csrf_token, session_cookie};
use crate::extract::{ApiJson, PathUsername};
use crate::problem::ApiError;
use crate::state::AppState;

/// Sign-in request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Who is signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// User name.
    pub username: String,
    /// Printed name.
    pub display_name: String,
    /// Role.
    pub role: String,
    /// Send this in `X-CSRF-Token` with every unsafe request that uses the cookie (absent for
    /// bearer callers).
    pub csrf_token: Option<String>,
    /// The session ends after this many idle minutes.
    pub idle_timeout_minutes: u32,
}

/// `POST /api/v1/session`.
#[utoipa::path(
    post,
    path = "/session",
    tag = "session",
    security(()),
    request_body = SignIn,
    responses(
        (status = 201, description = "Signed in; the session cookie is set", body = SessionView,
            headers(("set-cookie" = String, description = "`ferrocount_session=<secret>; HttpOnly; SameSite=Strict; Path=/` (and `Secure` under TLS)"))),
        (status = 401, description = "The user name or password is wrong", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins for the user name from this address", body = super::openapi::ProblemDocument, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds until the next attempt is accepted"))),
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(request): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let (user, secret) = state
        .ops
        .sign_in(
            &request.username,
            &request.password,
            client.ip(),
            state.session_idle(),
        )
        .await?;
    let view = SessionView {
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        role: user.role.to_string(),
        csrf_token: Some(csrf_token(&secret)),
        idle_timeout_minutes: state.http.session_idle_minutes,
    };
    let cookie = HeaderValue::from_str(&session_cookie(&secret, state.tls()))
        .map_err(|e| ApiError::Internal(format!("session cookie: {e}")))?;
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        Json(view),
    )
        .into_response())
}

/// `GET /api/v1/session`.
#[utoipa::path(
    get,
    path = "/session",
    tag = "session",
    security(("session_cookie" = []), ("bearer" = [])),
    responses((status = 200, description = "Who is signed in, and the session's CSRF token", body = SessionView))
)]
pub async fn current(State(state): State<AppState>, caller: Caller) -> Json<SessionView> {
    Json(SessionView {
        username: caller.user.username.clone(),
        display_name: caller.user.display_name.clone(),
        role: caller.user.role.to_string(),
        csrf_token: match &caller.credential {
            Credential::Session(secret) => Some(csrf_token(secret)),
            Credential::Bearer => None,
        },
        idle_timeout_minutes: state.http.session_idle_minutes,
    })
}

/// `DELETE /api/v1/session`: closes the session and clears the cookie.
#[utoipa::path(
    delete,
    path = "/session",
    tag = "session",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 409, description = "A bearer token has no session to close", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn sign_out(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let Credential::Session(secret) = &caller.credential else {
        return Err(ApiError::Conflict(
            "a bearer token has no session to close; revoke the token instead".into(),
        ));
    };
    state.ops.sign_out(&caller.user, secret).await?;
    let cookie = HeaderValue::from_str(&cleared_cookie(state.tls()))
        .map_err(|e| ApiError::Internal(format!("session cookie: {e}")))?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `POST /api/v1/users/{username}/unlock` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    /// Why the lock is lifted (kept in the audit trail).
    #[schema(schema_with = super::input_schemas::change_reason)]
    pub reason: String,
}

/// One address the throttle had counted failures from.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnlockedAddress {
    /// The client address.
    pub address: String,
    /// Failed sign-ins counted from it in the current window.
    pub failures: u32,
    /// Whether sign-ins from it were being refused.
    pub locked: bool,
}

/// What an unlock forgot.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unlocked {
    /// The user name.
    pub username: String,
    /// The addresses whose failures were forgotten (empty: nothing was counted).
    pub addresses: Vec<UnlockedAddress>,
}

/// `POST /api/v1/users/{username}/unlock`: a lab admin lifts the sign-in throttle on a user name
/// from every address, with a reason (audited).
#[utoipa::path(
    post,
    path = "/users/{username}/unlock",
    tag = "session",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("username" = String, Path, description = "The user name (its rule: `Username::parse`)")),
    request_body = UnlockRequest,
    responses(
        (status = 200, description = "The failures that were forgotten", body = Unlocked),
        (status = 404, description = "No user has that name", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    PathUsername(username): PathUsername,
    ApiJson(request): ApiJson<UnlockRequest>,
) -> Result<Json<Unlocked>, ApiError> {
    let reason = ChangeReason::parse(&request.reason)?;
    let forgotten = state
        .ops
        .unlock_sign_in(&caller.requester(), username.as_str(), &reason)
        .await?;
    Ok(Json(Unlocked {
        username: username.as_str().to_owned(),
        addresses: forgotten
            .into_iter()
            .map(|lockout| UnlockedAddress {
                address: lockout.address.to_string(),
                failures: lockout.failures,
                locked: lockout.locked,
            })
            .collect(),
    }))
}
