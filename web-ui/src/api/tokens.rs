//! `POST /api/v1/tokens`: a new API token for the caller, shown once (only its hash is kept).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// Token request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for (1 to 100 characters).
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
    caller.require(Permission::CreateOwnTokens)?;
    let (secret, token) = state
        .ops
        .create_token(&caller.requester(), &request.label)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: token.id.0,
            label: token.label,
            token: secret,
            prefix: token.prefix,
        }),
    ))
}
