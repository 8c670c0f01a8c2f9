//! `POST /api/v1/tokens`: a new API token for the caller, shown once (only its hash is kept),
//! working until `expires_at` (the token life: `http.token_life_days`, default 90) or until the
//! caller's password changes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::problem::ApiError;
use crate::state::AppState;

/// Token request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for.
    #[schema(schema_with = super::input_schemas::token_label)]
    pub label: String,
}

/// The new token.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Token id.
    pub id: i64,
    /// The label.
    pub label: String,
    /// The secret: send it as `Authorization: Bearer <token>`. Shown this once.
    pub token: String,
    /// Its first characters, to recognise it later.
    pub prefix: String,
    /// When it stops working (RFC 3339); a password change ends it sooner.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// `POST /api/v1/tokens`.
#[utoipa::path(
    post,
    path = "/tokens",
    tag = "session",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    request_body = NewToken,
    responses((status = 201, description = "The new token, shown this once", body = CreatedToken))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let issued = state
        .ops
        .create_token(&caller.requester(), &request.label)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: issued.token.id.0,
            label: issued.token.label,
            token: issued.secret,
            prefix: issued.token.prefix,
            expires_at: issued.expires_at.to_rfc3339(),
        }),
    ))
}
