//! `GET /api/v1/calibrations` lists them (newest first); `POST` stores one from its TOML
//! document (the file `ferrocount calibrate` writes), optionally activating it for its lot and
//! echo time. The lot and echo time are read from the document, so they cannot disagree with it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use appliance::store::calibrations::{Calibration, CalibrationContent, NewCalibration, ReagentLot};

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
    responses((status = 200, description = "Every calibration, newest first", body = Vec<super::openapi::schemas::Calibration>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Calibration>>, ApiError> {
    caller.require(Permission::ViewCalibrations)?;
    Ok(Json(state.store.calibrations().await?))
}

/// `POST /api/v1/calibrations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCalibrationRequest {
    /// The calibration TOML (as written by `ferrocount calibrate`).
    pub content: String,
    /// Make it the active calibration of its lot and echo time.
    #[serde(default)]
    pub activate: bool,
    /// A note.
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
        (status = 201, description = "Stored (and activated when asked)", body = super::openapi::schemas::Calibration),
        (status = 409, description = "It conflicts with a stored calibration", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewCalibrationRequest>,
) -> Result<(StatusCode, Json<Calibration>), ApiError> {
    caller.require(Permission::ManageCalibrations)?;
    let parsed = nmr_core::assay::Calibration::from_toml(&request.content)
        .map_err(|error| ApiError::invalid("content", error.to_string()))?;
    let te_us = parsed.te_ms * 1000.0;
    if !(te_us.is_finite() && te_us >= 1.0 && te_us <= f64::from(u32::MAX)) {
        return Err(ApiError::invalid(
            "content",
            format!("te_ms = {} is not a usable echo time", parsed.te_ms),
        ));
    }
    let new = NewCalibration {
        reagent_lot: ReagentLot::parse(&parsed.lot)?,
        te_us: te_us.round() as u32,
        content: CalibrationContent::toml(&request.content)?,
        note: request.note.filter(|n| !n.trim().is_empty()),
    };
    let stored = state
        .store
        .add_calibration(&caller.user.actor(), &new, request.activate)
        .await?;
    Ok((StatusCode::CREATED, Json(stored)))
}
