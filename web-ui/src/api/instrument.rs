//! `GET /api/v1/instrument`: the board, f0, magnet temperature, last tune, the run being
//! measured and the queue, plus the last instrument-log entries.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use appliance::engine::EngineStatus;
use appliance::store::instrument_log::LogEntry;

use crate::auth::Caller;
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// Entries of the instrument log shown.
const LOG_ENTRIES: u32 = 20;

/// The instrument's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstrumentView {
    /// The appliance software's version.
    pub version: &'static str,
    /// Whether the board is the simulated one.
    pub simulated: bool,
    /// The engine's snapshot.
    pub status: EngineStatus,
    /// The latest instrument-log entries, newest first.
    pub log: Vec<LogEntry>,
}

/// `GET /api/v1/instrument`.
#[utoipa::path(
    get,
    path = "/instrument",
    tag = "instrument",
    security(("session_cookie" = []), ("bearer" = [])),
    responses((status = 200, description = "The instrument's status and latest log entries", body = InstrumentView))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<InstrumentView>, ApiError> {
    caller.require(Permission::ViewInstrument)?;
    Ok(Json(InstrumentView {
        version: env!("CARGO_PKG_VERSION"),
        simulated: state.engine.is_simulated(),
        status: state.ops.instrument_status(&caller.requester()).await?,
        log: state
            .ops
            .instrument_log(&caller.requester(), LOG_ENTRIES)
            .await?,
    }))
}
