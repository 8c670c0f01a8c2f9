//! `GET /api/v1/qc`: the QC materials, their lots, current targets and the last 31 days of
//! results, with today's overall status (the worst of today's results, or `none`).

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use appliance::store::Timestamp;
use appliance::store::qc::{QcLot, QcMaterial, QcResult, QcStatus, QcTarget};

use crate::auth::Caller;
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// The QC overview.
#[derive(Debug, Serialize)]
pub struct QcOverview {
    /// `pass`, `warning`, `reject`, or `none` when nothing was measured today (UTC).
    pub today: &'static str,
    /// Each material with its lots.
    pub materials: Vec<MaterialView>,
}

/// A material and its lots.
#[derive(Debug, Serialize)]
pub struct MaterialView {
    /// The material.
    #[serde(flatten)]
    pub material: QcMaterial,
    /// Its lots.
    pub lots: Vec<LotView>,
}

/// A lot, its target and recent results.
#[derive(Debug, Serialize)]
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
