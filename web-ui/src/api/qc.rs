//! `GET /api/v1/qc`: today's overall status (the worst of today's results, or `none`), the QC
//! materials with their lots and current targets, and the results of every lot a bounded page at
//! a time, newest first (`?before=&limit=`, one statement a page).
//! `POST /api/v1/qc` records a QC measurement, judged by the Westgard rules ([`add`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use appliance::store::qc::{QcLot, QcMaterial, QcResult, QcTarget, QcVerdict};
use appliance::store::{QcLotId, QcResultId};
use operations::qc::DEFAULT_QC_RESULTS_PAGE;

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// `GET /api/v1/qc` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QcQuery {
    /// The QC result the page starts before: the `next_before` of the page before (absent: the
    /// newest).
    #[param(schema_with = super::input_schemas::path_id)]
    pub before: Option<String>,
    /// At most this many results on the page.
    #[param(schema_with = super::input_schemas::qc_results_limit)]
    #[serde(default, deserialize_with = "crate::extract::optional_whole_u32_text")]
    pub limit: Option<u32>,
}

/// The QC overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct QcOverview {
    /// The worst verdict of today's control values (UTC day), or `none` when nothing was
    /// measured today.
    pub today: TodaysQc,
    /// Each material with its lots.
    pub materials: Vec<MaterialView>,
    /// One page of every lot's results, newest recorded first (each names its `lot_id`).
    pub results: Vec<QcResult>,
    /// The result id to pass as `before` for the next (older) page; null on the last page.
    pub next_before: Option<i64>,
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

/// A lot and its target.
#[derive(Debug, Serialize, ToSchema)]
pub struct LotView {
    /// The lot.
    #[serde(flatten)]
    pub lot: QcLot,
    /// Its current target (mean, SD).
    pub target: Option<QcTarget>,
}

/// `GET /api/v1/qc`.
#[utoipa::path(
    get,
    path = "/qc",
    tag = "instrument",
    security(("session_cookie" = []), ("bearer" = [])),
    params(QcQuery),
    responses((status = 200, description = "Today's QC, the QC materials, lots and targets, and one page of results, newest first", body = QcOverview))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<QcQuery>,
) -> Result<Json<QcOverview>, ApiError> {
    caller.require(Permission::ViewQc)?;
    let before = query
        .before
        .as_deref()
        .map(|text| PathId::parse(text).map(|PathId(id)| QcResultId(id)))
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                "before",
                "the result a page starts before is a QC result id (a positive whole number, written plainly)",
            )
        })?;
    let page = state
        .ops
        .qc_results_page(
            &caller.requester(),
            before,
            query.limit.unwrap_or(DEFAULT_QC_RESULTS_PAGE),
        )
        .await?;
    let overview = state.ops.qc_setup(&caller.requester()).await?;
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
                    })
                    .collect(),
            })
            .collect(),
        results: page.results,
        next_before: page.next_before.map(|id| id.0),
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
