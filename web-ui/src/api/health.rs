//! `GET /healthz`: is the appliance up? No authentication, no patient data.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::ApiError;
use crate::state::AppState;

/// The health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answers and the engine runs, else `degraded`.
    pub status: &'static str,
    /// Whether the database answered.
    pub database: bool,
    /// Whether the acquisition engine is running.
    pub engine: bool,
    /// The binary's version.
    pub version: &'static str,
}

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    security(()),
    responses((status = 200, description = "Whether the database and the engine answer", body = Health))
)]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let database = sqlx_ping(&state).await;
    let engine = !state.engine.status().stopped;
    Ok(Json(Health {
        status: if database && engine { "ok" } else { "degraded" },
        database,
        engine,
        version: env!("CARGO_PKG_VERSION"),
    }))
}

async fn sqlx_ping(state: &AppState) -> bool {
    state.ops.database_answers().await
}
