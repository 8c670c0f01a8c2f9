//! The clinical report as PDF: `GET /api/v1/runs/{id}/report.pdf[?curves=true]`, made on the
//! server (`crate::report_pdf`), one page (A4 or Letter from `[site] paper_size`), the replicate
//! curves on a second page only when asked. Authenticated like every read of a run, audited as a
//! view of it (`run.result_view`, from `pdf`), never cached (`Cache-Control: no-store`).
//!
//! This module only translates: the run is viewed through the operations layer (which decides
//! who may open it, the status, the call and the printed count); the words and the layout are
//! `crate::report_pdf`'s.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use appliance::store::{RunId, Timestamp};
use operations::runs::RunDetail;

use crate::auth::Caller;
use crate::extract::{ApiQuery, PathId};
use crate::problem::ApiError;
use crate::report_pdf;
use crate::roles::Permission;
use crate::state::AppState;

/// `GET /api/v1/runs/{id}/report.pdf` query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `true`: add a second page with the replicate decay curves.
    #[serde(default)]
    pub curves: Option<bool>,
}

/// `GET /api/v1/runs/{id}/report.pdf`.
#[utoipa::path(
    get,
    path = "/runs/{id}/report.pdf",
    tag = "runs",
    security(("session_cookie" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Run id"), ReportQuery),
    responses(
        (status = 200, description = "The clinical report as PDF: one page, the curves on a second only with `curves=true` (a view of the result, audited; not cached)", content_type = "application/pdf", body = Vec<u8>),
        (status = 409, description = "The run has no result to report", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn report_pdf(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewRuns)?;
    let record = state
        .ops
        .view_run(&caller.requester(), RunId(id), RunDetail::Report, "pdf")
        .await?;
    let site = &state.ops.settings.site;
    let printed_at = site.time_zone.display(Timestamp::now());
    let text = report_pdf::ReportText::of(&record, site, &state.http.instrument_name, &printed_at)
        .ok_or_else(|| ApiError::Conflict(format!("run {id} has no result to report")))?;
    let curves = query
        .curves
        .unwrap_or(false)
        .then(|| report_pdf::curves_of(&record));
    let bytes = report_pdf::pdf(&text, site.paper_size, curves.as_deref())
        .map_err(|e| ApiError::Internal(format!("making the PDF of run {id}: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"run-{id}-report.pdf\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
