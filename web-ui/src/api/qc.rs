//! `GET /api/v1/qc`: the QC materials, their lots, current targets and the last 31 days of
//! results, with today's overall status (the worst of today's results, or `none`).
//! `POST /api/v1/qc` records a QC measurement, judged by the Westgard rules ([`record`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use appliance::store::QcLotId;
use appliance::store::qc::{QcLot, QcMaterial, QcResult, QcTarget, QcVerdict};

use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// Days of results the overview lists.
const RESULT_DAYS: i64 = 31;

/// The QC overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct QcOverview {
    /// The worst verdict of today's control values (UTC day), or `none` when nothing was
    /// measured today.
    pub today: TodaysQc,
    /// Each material with its lots.
    pub materials: Vec<MaterialView>,
}

/// Today's QC in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TodaysQc {
    /// Every control value today passed.
    Pass,
    /// The worst of today's values broke a warning rule.
    Warning,
    /// A value today broke a rejection rule: patient results are held.
    Reject,
    /// No control value was recorded today.
    None,
}

impl TodaysQc {
    fn of(worst: Option<QcVerdict>) -> Self {
        match worst {
            Some(QcVerdict::Pass) => Self::Pass,
            Some(QcVerdict::Warning) => Self::Warning,
            Some(QcVerdict::Reject) => Self::Reject,
            None => Self::None,
        }
    }
}

/// A material and its lots.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaterialView {
    /// The material.
    #[serde(flatten)]
    pub material: QcMaterial,
    /// Its lots.
    pub lots: Vec<LotView>,
}

/// A lot, its target and recent results.
#[derive(Debug, Serialize, ToSchema)]
pub struct LotView {
    /// The lot.
    #[serde(flatten)]
    pub lot: QcLot,
    /// Its current target (mean, SD).
    pub target: Option<QcTarget>,
    /// Results of the last 31 days, oldest first.
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
    let overview = state
        .ops
        .qc_overview(&caller.requester(), RESULT_DAYS)
        .await?;
    Ok(Json(QcOverview {
        today: TodaysQc::of(overview.today.worst()),
        materials: overview
            .materials
            .into_iter()
            .map(|record| MaterialView {
                material: record.material,
                lots: record
                    .lots
                    .into_iter()
                    .map(|lot| LotView {
                        lot: lot.lot,
                        target: lot.target,
                        results: lot.results,
                    })
                    .collect(),
            })
            .collect(),
    }))
}

/// `POST /api/v1/qc` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQcMeasurement {
    /// The control lot measured (`15.0` is read as 15).
    #[serde(deserialize_with = "crate::extract::body_id")]
    #[schema(schema_with = super::input_schemas::body_id)]
    pub lot_id: i64,
    /// The value, in the material's analyte unit.
    pub value: f64,
    /// The reagent lot a control was measured with (the QC gate counts a control value for its
    /// own reagent lot only); absent for a phantom.
    pub reagent_lot: Option<String>,
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
        (status = 201, description = "Recorded, with its Westgard verdict (status and the rules the value broke)", body = QcResult),
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
            &caller.requester(),
            QcLotId(request.lot_id),
            request.value,
            request.reagent_lot.as_deref(),
            request.comment.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(result)))
}
