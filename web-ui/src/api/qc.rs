//! `GET /api/v1/qc`: the QC materials, their lots, current targets and the last 31 days of
//! results, with today's overall status (the worst of today's results, or `none`).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use appliance::store::Timestamp;
use appliance::store::qc::{QcLot, QcMaterial, QcResult, QcStatus, QcTarget};

use crate::auth::Caller;
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
