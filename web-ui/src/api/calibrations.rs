//! `GET /api/v1/calibrations` lists them (newest first); `POST` imports one from its TOML
//! document (the file `ferrocount calibrate` writes, the one format calibrations are stored in),
//! optionally approving it at once: activating it for its lot and echo time, with a reason. The
//! lot and echo time are read from the document, so they cannot disagree with it. Both through
//! `operations::calibrations`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use appliance::store::calibrations::Calibration;
use operations::calibrations::{ActivationReason, CalibrationImport};

use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// `GET /api/v1/calibrations`.
#[utoipa::path(
    get,
    path = "/calibrations",
    tag = "instrument",
    security(("session_cookie" = []), ("bearer" = [])),
    responses((status = 200, description = "Every calibration, newest first", body = Vec<Calibration>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Calibration>>, ApiError> {
    caller.require(Permission::ViewCalibrations)?;
    Ok(Json(state.ops.calibrations(&caller.requester()).await?))
}

/// `POST /api/v1/calibrations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCalibrationRequest {
    /// The calibration TOML (as written by `ferrocount calibrate`).
    pub content: String,
    /// Approve it at once: make it the active calibration of its lot and echo time (needs a
    /// `reason`).
    #[serde(default)]
    pub activate: bool,
    /// Why it is activated (kept in the audit trail; required with `activate`).
    pub reason: Option<String>,
    /// A note (at most 500 characters).
    pub note: Option<String>,
}

/// `POST /api/v1/calibrations`: 201 with the stored calibration.
#[utoipa::path(
    post,
    path = "/calibrations",
    tag = "instrument",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    request_body = NewCalibrationRequest,
    responses(
        (status = 201, description = "Stored (and activated when asked)", body = Calibration),
        (status = 409, description = "It conflicts with a stored calibration", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewCalibrationRequest>,
) -> Result<(StatusCode, Json<Calibration>), ApiError> {
    caller.require(Permission::ManageCalibrations)?;
    let import = CalibrationImport::parse(&request.content, request.note.as_deref())?;
    let reason = if request.activate {
        Some(ActivationReason::parse(
            request.reason.as_deref().unwrap_or_default(),
        )?)
    } else {
        None
    };
    let stored = state
        .ops
        .import_calibration(&caller.requester(), &import, reason.as_ref())
        .await?;
    Ok((StatusCode::CREATED, Json(stored)))
}
