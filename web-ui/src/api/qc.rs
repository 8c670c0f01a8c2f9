//! `GET /api/v1/qc`: the QC materials, their lots, current targets and the last 31 days of
//! results, with today's overall status (the worst of today's results, or `none`).
//! `POST /api/v1/qc` records a QC measurement, judged by the Westgard rules ([`record`]).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use appliance::store::qc::{NewQcResult, QcLot, QcMaterial, QcResult, QcStatus, QcTarget};
use appliance::store::users::User;
use appliance::store::{JsonReport, QcLotId, Timestamp};
use nmr_core::qc::Severity;
use nmr_core::qc::westgard::{self, ControlResult, ControlTarget, WestgardViolation};

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
    let today = now.to_rfc3339().chars().take(10).collect::<String>();
    let mut worst: Option<QcStatus> = None;
    let mut materials = Vec::new();
    for material in state.store.qc_materials().await? {
        let mut lots = Vec::new();
        for lot in state.store.qc_lots(material.id).await? {
            let target = state.store.current_qc_target(lot.id).await?;
            let results = state.store.qc_results(lot.id, since).await?;
            for result in results
                .iter()
                .filter(|r| r.measured_at.to_rfc3339().starts_with(&today))
            {
                worst = Some(match (worst, result.status) {
                    (Some(QcStatus::Reject), _) | (_, QcStatus::Reject) => QcStatus::Reject,
                    (Some(QcStatus::Warning), _) | (_, QcStatus::Warning) => QcStatus::Warning,
                    _ => QcStatus::Pass,
                });
            }
            lots.push(LotView {
                lot,
                target,
                results,
            });
        }
        materials.push(MaterialView { material, lots });
    }
    Ok(Json(QcOverview {
        today: match worst {
            None => "none",
            Some(QcStatus::Pass) => "pass",
            Some(QcStatus::Warning) => "warning",
            Some(QcStatus::Reject) => "reject",
        },
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
    let result = record(
        &state,
        &caller.user,
        QcLotId(request.lot_id),
        request.value,
        request.comment.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(result)))
}

/// The earliest instant, to read a lot's whole history.
fn beginning() -> Timestamp {
    Timestamp::now().plus(-time::Duration::days(365 * 100))
}

/// Records `value` for a lot measured now, judged by every Westgard rule over the lot's results
/// since its current target was set (the new value last); the verdict is the worst rule the new
/// value breaks. Without a target there are no limits yet: the value is stored as `pass` with
/// no violations, towards establishing one. Each lot is judged on its own (one control per
/// run), so the across-material R-4s and 2-2s cases do not arise here.
pub async fn record(
    state: &AppState,
    user: &User,
    lot_id: QcLotId,
    value: f64,
    comment: Option<&str>,
) -> Result<QcResult, ApiError> {
    if !value.is_finite() {
        return Err(ApiError::invalid("value", "must be a finite number"));
    }
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > 500) {
        return Err(ApiError::invalid(
            "comment",
            "must be at most 500 characters",
        ));
    }
    let (status, violations) = match state.store.current_qc_target(lot_id).await? {
        None => (QcStatus::Pass, Vec::new()),
        Some(target) => {
            let history = state.store.qc_results(lot_id, beginning()).await?;
            judge(&history, &target, value)?
        }
    };
    let new = NewQcResult {
        lot_id,
        value,
        status,
        violations: JsonReport::of(&violations)?,
        measurement_id: None,
        measured_at: Timestamp::now(),
        comment: comment.map(str::to_owned),
    };
    Ok(state.store.record_qc_result(&user.actor(), &new).await?)
}

/// The verdict on `value` after `history` (oldest first) against `target`: only results recorded
/// against this target count, and only the violations the new value takes part in.
pub fn judge(
    history: &[QcResult],
    target: &QcTarget,
    value: f64,
) -> Result<(QcStatus, Vec<WestgardViolation>), ApiError> {
    const MATERIAL: &str = "lot";
    let results: Vec<ControlResult> = history
        .iter()
        .filter(|r| r.target_id == Some(target.id))
        .map(|r| r.value)
        .chain([value])
        .enumerate()
        .map(|(i, value)| ControlResult {
            run: i as u64,
            material: MATERIAL.to_owned(),
            value,
        })
        .collect();
    let last = results.len() - 1;
    let targets = BTreeMap::from([(
        MATERIAL.to_owned(),
        ControlTarget {
            mean: target.mean,
            sd: target.sd,
            n: target.n_values.map_or(0, |n| n as usize),
        },
    )]);
    let violations: Vec<WestgardViolation> = westgard::evaluate(&results, &targets)
        .map_err(|error| ApiError::invalid("value", error.to_string()))?
        .into_iter()
        .filter(|v| v.indices.contains(&last))
        .collect();
    let status = if violations.iter().any(|v| v.severity == Severity::Hold) {
        QcStatus::Reject
    } else if violations.is_empty() {
        QcStatus::Pass
    } else {
        QcStatus::Warning
    };
    Ok((status, violations))
}
