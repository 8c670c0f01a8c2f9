//! The patient pages: lookup by MRN (`GET /patients?mrn=…`) and one patient's page
//! (`GET /patients/{id}`): the CTC trend with 95 % intervals and the indication's cut-off, the
//! runs in a table, and the CSV export (the API's trend, which the session cookie opens).
//!
//! Both are views of patient data: they ask for `ViewPatients` (as `GET /api/v1/patients…`
//! does) and go through `operations::patients`, which audits them.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use serde::Deserialize;

use appliance::store::PatientId;
use appliance::store::runs::RunState;
use operations::patients::{PatientRecord, PatientRun};

use super::runs::{count_view, path_id, readable};
use super::{PageError, PageResult, PageUser};
use crate::charts::{TrendChart, TrendChartPoint};
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{PatientPage, PatientRunRow, paths};

/// Runs listed on a patient's page (the trend chart shows every result).
const RUNS_LISTED: u32 = 200;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::PATIENT_SEARCH, get(lookup))
        .route("/patients/{id}", get(show))
}

/// `GET /patients` query.
#[derive(Debug, Default, Deserialize)]
struct LookupQuery {
    #[serde(default)]
    mrn: String,
}

/// `GET /patients?mrn=…`: straight to the patient with that MRN, or a page that says there is
/// none.
async fn lookup(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<LookupQuery>,
) -> PageResult {
    user.require(Permission::ViewPatients)?;
    let layout = user.layout(&state, "Find a patient", paths::PATIENT_SEARCH);
    let patient = state
        .ops
        .look_up_patient(&user.requester(), &query.mrn)
        .await
        .map_err(|e| PageError::from(e).within(layout))?;
    Ok(Redirect::to(&paths::patient(patient.id.0)).into_response())
}

/// `GET /patients/{id}`.
async fn show(State(state): State<AppState>, user: PageUser, Path(id): Path<String>) -> PageResult {
    user.require(Permission::ViewPatients)?;
    let id = path_id("patient", &id)?;
    let layout = user.layout(&state, "Patient", &paths::patient(id));
    let page = build(&state, &user, id)
        .await
        .map_err(|error| error.within(layout))?;
    Ok((StatusCode::OK, page).into_response())
}

async fn build(state: &AppState, user: &PageUser, id: i64) -> Result<PatientPage, PageError> {
    let zone = &state.ops.settings.site.time_zone;
    let PatientRecord {
        patient,
        trend,
        runs,
        cutoff,
    } = state
        .ops
        .view_patient(
            &user.requester(),
            PatientId(id),
            RUNS_LISTED,
            "patient page",
        )
        .await?;
    let rows = runs
        .iter()
        .map(
            |PatientRun {
                 run,
                 sample,
                 current,
                 reported,
             }| {
                let status = match (run.state, &run.failure_cause) {
                    (RunState::Released, _) => "Released".to_owned(),
                    (RunState::AwaitingRelease, _) => "Awaiting release".to_owned(),
                    (state, Some(cause)) if state.is_terminal() => {
                        format!("{}: {cause}", super::dashboard::state_words(state))
                    }
                    (state, _) => super::dashboard::state_words(state).to_owned(),
                };
                PatientRunRow {
                    run_id: run.id.0,
                    drawn_at: readable(zone, &sample.drawn_at),
                    blood_ml: sample.blood_ml,
                    reagent_lot: run.reagent_lot.clone().unwrap_or_else(|| "—".to_owned()),
                    count: current
                        .as_ref()
                        .map(|v| count_view(v, reported.as_ref().map(|r| r.status))),
                    status,
                }
            },
        )
        .collect();
    let (indication, cutoff) = match cutoff {
        Some((indication, cutoff)) => (Some(indication), cutoff),
        None => (None, None),
    };
    let points = trend
        .iter()
        .map(|point| TrendChartPoint {
            drawn_at_unix_s: point.drawn_at.datetime().unix_timestamp(),
            drawn_at: readable(zone, &point.drawn_at),
            per_7_5ml: point.per_7_5ml,
            per_7_5ml_ci95: point.per_7_5ml_ci95,
            category: point.category.as_str().to_owned(),
            run_id: point.run_id.0,
            corrected: point.corrected(),
        })
        .collect();
    Ok(PatientPage {
        layout: user.layout(
            state,
            &format!("Patient {}", patient.mrn.as_str()),
            &paths::patient(id),
        ),
        patient_id: id,
        mrn: patient.mrn.as_str().to_owned(),
        trend: TrendChart {
            patient_label: format!("MRN {}", patient.mrn.as_str()),
            points,
            cutoff_per_7_5ml: cutoff,
            indication: indication.clone().unwrap_or_default(),
        },
        indication,
        runs: rows,
        may_start_runs: user.may(Permission::OperateRuns),
    })
}
