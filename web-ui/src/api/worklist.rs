//! The worklist: the results awaiting release, a page at a time (`GET /api/v1/worklist`),
//! through `operations::worklist`, which asks for the right to release and audits the view.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use appliance::store::RunId;
use appliance::store::results::ResultSummary;
use appliance::store::worklist::AwaitingRelease;
use operations::worklist::DEFAULT_WORKLIST_PAGE;

use crate::auth::Caller;
use crate::extract::{ApiQuery, PathId};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// `GET /api/v1/worklist` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WorklistQuery {
    /// The run the page starts after: the `next_after` of the page before (absent: the first
    /// page).
    #[param(schema_with = super::input_schemas::path_id)]
    pub after: Option<String>,
    /// At most this many on the page.
    #[param(schema_with = super::input_schemas::worklist_limit)]
    pub limit: Option<u32>,
}

/// A result awaiting release.
#[derive(Debug, Serialize, ToSchema)]
pub struct AwaitingView {
    /// The run.
    pub run_id: i64,
    /// The patient.
    pub patient_id: i64,
    /// Their MRN.
    pub mrn: String,
    /// Their date of birth, `YYYY-MM-DD` (null: not recorded).
    #[schema(format = Date)]
    pub birth_date: Option<String>,
    /// The specimen's accession number.
    pub accession: String,
    /// Blood draw time, RFC 3339.
    pub drawn_at: String,
    /// When the run reached its result, RFC 3339.
    pub finished_at: Option<String>,
    /// The reagent lot.
    pub reagent_lot: Option<String>,
    /// The current version of the result.
    pub version: u32,
    /// Its regulated values.
    pub result: ResultSummary,
}

impl From<AwaitingRelease> for AwaitingView {
    fn from(row: AwaitingRelease) -> Self {
        Self {
            run_id: row.run_id.0,
            patient_id: row.patient_id.0,
            mrn: row.mrn.as_str().to_owned(),
            birth_date: row.birth_date.map(|d| d.to_string()),
            accession: row.accession.as_str().to_owned(),
            drawn_at: row.drawn_at.to_rfc3339(),
            finished_at: row.finished_at.map(|t| t.to_rfc3339()),
            reagent_lot: row.reagent_lot,
            version: row.version,
            result: row.summary,
        }
    }
}

/// One page of the worklist.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorklistView {
    /// The results awaiting release, oldest run first.
    pub awaiting: Vec<AwaitingView>,
    /// The run id to pass as `after` for the next page; null on the last page.
    pub next_after: Option<i64>,
}

/// `GET /api/v1/worklist`.
#[utoipa::path(
    get,
    path = "/worklist",
    tag = "runs",
    security(("session_cookie" = []), ("bearer" = [])),
    params(WorklistQuery),
    responses((status = 200, description = "One page of the results awaiting release, oldest first (audited)", body = WorklistView))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<WorklistQuery>,
) -> Result<Json<WorklistView>, ApiError> {
    caller.require(Permission::ReleaseResults)?;
    let after = query
        .after
        .as_deref()
        .map(|text| PathId::parse(text).map(|PathId(id)| RunId(id)))
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                "after",
                "the run a page starts after is a run id (a positive whole number, written plainly)",
            )
        })?;
    let page = state
        .ops
        .awaiting_release(
            &caller.requester(),
            after,
            query.limit.unwrap_or(DEFAULT_WORKLIST_PAGE),
        )
        .await?;
    Ok(Json(WorklistView {
        awaiting: page.awaiting.into_iter().map(AwaitingView::from).collect(),
        next_after: page.next_after.map(|id| id.0),
    }))
}
