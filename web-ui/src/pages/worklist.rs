//! The worklist page (`GET /worklist[?after=<run id>]`): the results awaiting release, oldest
//! first, a bounded page at a time with links to the next and first pages, for those who may
//! release (`ReleaseResults`, as `GET /api/v1/worklist`). Each row links to the run's report,
//! where the release is signed.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;

use appliance::store::RunId;
use appliance::store::worklist::AwaitingRelease;
use operations::worklist::DEFAULT_WORKLIST_PAGE;

use appliance::site::SiteTimeZone;
use appliance::store::runs::RunState;
use operations::reported::ResultStatus;

use super::runs::{readable, summary_view};
use super::{PageResult, PageUser};
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{WorklistPage, WorklistRow, paths};

/// The routes of this page.
pub fn router() -> Router<AppState> {
    Router::new().route(paths::WORKLIST, get(show))
}

/// `GET /worklist` query: where the page starts (absent or unreadable: the first page).
#[derive(Debug, Default, Deserialize)]
struct WorklistQuery {
    #[serde(default)]
    after: Option<String>,
}

fn row(zone: &SiteTimeZone, awaiting: AwaitingRelease) -> WorklistRow {
    let summary = &awaiting.summary;
    WorklistRow {
        run_id: awaiting.run_id.0,
        patient_id: awaiting.patient_id.0,
        mrn: awaiting.mrn.as_str().to_owned(),
        birth_date: awaiting
            .birth_date
            .map_or_else(|| "not recorded".to_owned(), |d| d.to_string()),
        accession: awaiting.accession.as_str().to_owned(),
        drawn_at: readable(zone, &awaiting.drawn_at),
        finished_at: awaiting
            .finished_at
            .as_ref()
            .map_or_else(|| "—".to_owned(), |at| readable(zone, at)),
        count: summary_view(
            summary,
            awaiting.version,
            ResultStatus::of_unreleased_run(RunState::AwaitingRelease),
        ),
        qc_hold: summary.qc_hold,
    }
}

/// `GET /worklist[?after=<run id>]`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<WorklistQuery>,
) -> PageResult {
    user.require(Permission::ReleaseResults)?;
    let layout = user.layout(&state, "Worklist", paths::WORKLIST);
    let after = query
        .after
        .as_deref()
        .and_then(|text| text.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .map(RunId);
    let page = state
        .ops
        .awaiting_release(&user.requester(), after, DEFAULT_WORKLIST_PAGE)
        .await
        .map_err(|e| super::PageError::from(e).within(layout.clone()))?;
    Ok(WorklistPage {
        layout,
        rows: page
            .awaiting
            .into_iter()
            .map(|awaiting| row(&state.ops.settings.site.time_zone, awaiting))
            .collect(),
        next_href: page
            .next_after
            .map(|id| format!("{}?after={}", paths::WORKLIST, id.0)),
        first_href: after.map(|_| paths::WORKLIST.to_owned()),
    }
    .into_response())
}
