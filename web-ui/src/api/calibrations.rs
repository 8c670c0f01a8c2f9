//! `GET /api/v1/calibrations` lists them a page at a time (newest first, keyset `before`, one
//! statement a page); `POST` imports one from its TOML document (the file `ferrocount calibrate`
//! writes, the one format calibrations are stored in), stored PENDING; `POST
//! /api/v1/calibrations/{id}/approve` and `…/reject` are a lab admin's signed decision (password
//! re-entered, printed name, reason). The lot and echo time are read from the document, so they
//! cannot disagree with it. All through `operations::calibrations`, as the calibrations page.

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use appliance::store::CalibrationId;
use appliance::store::calibrations::{Calibration, CalibrationDecision};
use operations::calibrations::{CalibrationImport, DecisionReason};
use operations::signature::SignatureInput;

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// `GET /api/v1/calibrations` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CalibrationQuery {
    /// The calibration the page starts below: the `next_before` of the page before (absent:
    /// the newest).
    #[param(schema_with = super::input_schemas::path_id)]
    pub before: Option<String>,
    /// At most this many on the page.
    #[param(schema_with = super::input_schemas::calibration_limit)]
    pub limit: Option<u32>,
}

/// One page of calibrations.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalibrationPageView {
    /// The calibrations, newest first.
    pub calibrations: Vec<Calibration>,
    /// The id to pass as `before` for the next (older) page; null on the last page.
    pub next_before: Option<i64>,
}

/// `GET /api/v1/calibrations`.
#[utoipa::path(
    get,
    path = "/calibrations",
    tag = "instrument",
    security(("session_cookie" = []), ("bearer" = [])),
    params(CalibrationQuery),
    responses((status = 200, description = "One page of calibrations, newest first", body = CalibrationPageView))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CalibrationQuery>,
) -> Result<Json<CalibrationPageView>, ApiError> {
    caller.require(Permission::ViewCalibrations)?;
    let before = query
        .before
        .as_deref()
        .map(|text| PathId::parse(text).map(|PathId(id)| CalibrationId(id)))
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                "before",
                "the calibration a page starts below is a calibration id (a positive whole \
                 number, written plainly)",
            )
        })?;
    let page = state
        .ops
        .calibration_page(&caller.requester(), before, query.limit)
        .await?;
    Ok(Json(CalibrationPageView {
        calibrations: page.calibrations,
        next_before: page.next_before.map(|id| id.0),
    }))
}

/// `POST /api/v1/calibrations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCalibrationRequest {
    /// The calibration TOML (as written by `ferrocount calibrate`).
    pub content: String,
    /// A note (at most 500 characters).
    pub note: Option<String>,
}

/// `POST /api/v1/calibrations`: 201 with the stored calibration, pending until a lab admin
/// approves it.
#[utoipa::path(
    post,
    path = "/calibrations",
    tag = "instrument",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    request_body = NewCalibrationRequest,
    responses(
        (status = 201, description = "Stored, pending approval", body = Calibration),
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
    let stored = state
        .ops
        .import_calibration(&caller.requester(), &import)
        .await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// `POST /api/v1/calibrations/{id}/approve` and `…/reject` body: the signature and the reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalibrationDecisionRequest {
    /// The lab admin's password, entered again.
    pub password: String,
    /// The lab admin's printed name, typed (must match the name on their account).
    pub printed_name: String,
    /// Why (kept with the calibration and in the audit trail; 1 to 500 characters).
    pub reason: String,
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    client: std::net::IpAddr,
    id: i64,
    decision: CalibrationDecision,
    body: CalibrationDecisionRequest,
) -> Result<Json<Calibration>, ApiError> {
    caller.require(Permission::ManageCalibrations)?;
    let reason = DecisionReason::parse(&body.reason)?;
    let decided = state
        .ops
        .decide_calibration(
            &caller.requester(),
            client,
            CalibrationId(id),
            decision,
            &reason,
            &SignatureInput {
                password: body.password,
                printed_name: body.printed_name,
            },
        )
        .await?;
    Ok(Json(decided))
}

/// `POST /api/v1/calibrations/{id}/approve`.
#[utoipa::path(
    post,
    path = "/calibrations/{id}/approve",
    tag = "instrument",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Calibration id")),
    request_body = CalibrationDecisionRequest,
    responses(
        (status = 200, description = "Approved: the calibration of its lot and echo time (the one it replaces superseded; audited)", body = Calibration),
        (status = 409, description = "Only a pending calibration is approved", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed password re-entries", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn approve(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<CalibrationDecisionRequest>,
) -> Result<Json<Calibration>, ApiError> {
    decide(
        &state,
        &caller,
        client.ip(),
        id,
        CalibrationDecision::Approve,
        body,
    )
    .await
}

/// `POST /api/v1/calibrations/{id}/reject`.
#[utoipa::path(
    post,
    path = "/calibrations/{id}/reject",
    tag = "instrument",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Calibration id")),
    request_body = CalibrationDecisionRequest,
    responses(
        (status = 200, description = "Rejected (audited); it never counts a run", body = Calibration),
        (status = 409, description = "Only a pending calibration is rejected", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed password re-entries", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn reject(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<CalibrationDecisionRequest>,
) -> Result<Json<Calibration>, ApiError> {
    decide(
        &state,
        &caller,
        client.ip(),
        id,
        CalibrationDecision::Reject,
        body,
    )
    .await
}
