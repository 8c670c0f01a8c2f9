//! `GET /healthz`: is the appliance up? `ok` (200, plain text) when the database answers and the
//! engine runs, else a bare 503 problem. Nothing more: it needs no credentials, so it tells nobody
//! the version or the state of the parts (signed-in users read those at `GET /api/v1/instrument`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::problem::ApiError;
use crate::state::AppState;

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    security(()),
    responses(
        (status = 200, description = "The database answers and the engine runs", body = String, content_type = "text/plain", example = "ok"),
        (status = 503, description = "The database or the engine does not answer", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let database = state.ops.database_answers().await;
    let engine = !state.engine.status().stopped;
    if database && engine {
        Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok"))
    } else {
        Err(ApiError::Unavailable)
    }
}
