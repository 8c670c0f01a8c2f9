//! `GET /api/v1/qc`: the QC materials, their lots, current targets and the last 31 days of
//! results, with today's overall status (the worst of today's results, or `none`).
//! `POST /api/v1/qc` records a QC measurement, judged by the Westgard rules ([`record`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use appliance::store::qc::{QcLot, QcMaterial, QcResult, QcTarget, QcVerdict};
use appliance::store::{QcLotId, Timestamp};

use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// The QC overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct QcOverview {
    /// `pass`, `warning`, `reject`, or `none` when nothing was measured today (UTC).
    #[schema(value_type = String, pattern = "^(pass|warning|reject|none)$")]
    pub today: &'static str,
    /// Each material with its lots.
    pub materials: Vec<MaterialView>,
}

/// A material and its lots.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaterialView {
    /// The material.
    #[serde(flatten)]
    #[schema(value_type = super::openapi::schemas::QcMaterial)]
    pub material: QcMaterial,
    /// Its lots.
    pub lots: Vec<LotView>,
}

/// A lot, its target and recent results.
#[derive(Debug, Serialize, ToSchema)]
pub struct LotView {
    /// The lot.
    #[serde(flatten)]
    #[schema(value_type = super::openapi::schemas::QcLot)]
    pub lot: QcLot,
    /// Its current target (mean, SD).
    #[schema(value_type = Option<super::openapi::schemas::QcTarget>)]
    pub target: Option<QcTarget>,
    /// Results of the last 31 days, oldest first.
    #[schema(value_type = Vec<super::openapi::schemas::QcResult>)]
    pub results: Vec<QcResult>,
}

/// `GET /api/v1/qc`.
#[utoipa::path(
    get,
    path = "/qc",
    tag = "instrument",
    security(("session_cookie" = []), ("bearer" = [])),
    responses((status = 200, description = "QC materials, lots, targets and the last 31 days of results", body = QcOverview))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<QcOverview>, ApiError> {
    caller.require(Permission::ViewQc)?;
    let now = Timestamp::now();
    let since = now.plus(-time::Duration::days(31));
    let today = state.store.qc_today(now).await?;
    let mut materials = Vec::new();
    for material in state.store.qc_materials().await? {
        let mut lots = Vec::new();
        for lot in state.store.qc_lots(material.id).await? {
            let target = state.store.current_qc_target(lot.id).await?;
            let results = state.store.qc_results(lot.id, since).await?;
            lots.push(LotView {
                lot,
                target,
                results,
            });
        }
        materials.push(MaterialView { material, lots });
    }
    Ok(Json(QcOverview {
        today: today.worst().map_or("none", QcVerdict::as_str),
        materials,
    }))
}

/// `POST /api/v1/qc` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQcMeasurement {
    /// The control lot measured.
    pub lot_id: i64,
    /// The value, in the material's analyte unit.
    pub value: f64,
    /// A comment.
    pub comment: Option<String>,
}

/// `POST /api/v1/qc`: 201 with the stored result and its verdict.
#[utoipa::path(
    post,
    path = "/qc",
    tag = "instrument",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    request_body = NewQcMeasurement,
    responses(
        (status = 201, description = "Recorded, with its Westgard verdict (status and the rules the value broke)", body = super::openapi::schemas::QcResult),
        (status = 404, description = "No such QC lot", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewQcMeasurement>,
) -> Result<(StatusCode, Json<QcResult>), ApiError> {
    caller.require(Permission::RecordQc)?;
    let result = state
        .ops
        .record_qc(
            &caller.user,
            QcLotId(request.lot_id),
            request.value,
            request.comment.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(result)))
}
