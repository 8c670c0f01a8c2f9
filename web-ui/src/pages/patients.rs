//! The patient pages: lookup by MRN (`GET /patients?mrn=…`) and one patient's page
//! (`GET /patients/{id}`): the CTC trend with 95 % intervals and the indication's cut-off, the
//! runs in a table, and the CSV export (the API's trend, which the session cookie opens).
//!
//! Both are views of patient data: they ask for `ViewPatients` (as `GET /api/v1/patients…`
//! does) and go into the audit trail.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use serde::Deserialize;

use appliance::store::patients::Mrn;
use appliance::store::runs::RunState;
use appliance::store::{AuditEntry, PatientId};

use super::runs::{count_view, path_id, readable};
use super::{PageError, PageResult, PageUser};
use crate::charts::{TrendChart, TrendChartPoint};
use crate::problem::ApiError;
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
    let typed: String = query.mrn.trim().chars().take(64).collect();
    let not_found = |detail: String| {
        PageError::from(ApiError::NotFound {
            entity: "patient with MRN",
            key: detail,
        })
        .within(layout.clone())
    };
    if typed.is_empty() {
        return Err(PageError::from(ApiError::invalid(
            "mrn",
            "type a patient's MRN to look them up",
        ))
        .within(layout));
    }
    let Ok(mrn) = Mrn::parse(&typed) else {
        return Err(not_found(typed));
    };
    let found = state
        .store
        .patient_by_mrn(&mrn)
        .await
        .map_err(|e| PageError::from(e).within(layout.clone()))?;
    state
        .store
        .record_event(
            &user.user.actor(),
            match &found {
                Some(patient) => AuditEntry::new("patient.lookup", "patient").id(patient.id.0),
                None => AuditEntry::new("patient.lookup", "patient"),
            }
            .detail(serde_json::json!({ "mrn": mrn.as_str(), "found": found.is_some() })),
        )
        .await
        .map_err(|e| PageError::from(e).within(layout.clone()))?;
    match found {
        Some(patient) => Ok(Redirect::to(&paths::patient(patient.id.0)).into_response()),
        None => Err(not_found(mrn.as_str().to_owned())),
    }
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
    let patient = state.store.patient(PatientId(id)).await?;
    let trend = state.store.patient_trend(patient.id).await?;
    let runs = state.store.patient_runs(patient.id, RUNS_LISTED).await?;
    state
        .store
        .record_event(
            &user.user.actor(),
            AuditEntry::new("patient.view", "patient").id(id).detail(
                serde_json::json!({ "page": "patient", "points": trend.len(), "runs": runs.len() }),
            ),
        )
        .await?;
    let mut rows = Vec::with_capacity(runs.len());
    let mut indication = None;
    for run in &runs {
        let sample = state.store.sample(run.sample_id).await?;
        if indication.is_none() {
            indication = sample.indication.clone();
        }
        let current = state.store.current_result(run.id).await?;
        let status = match (run.state, &run.failure_cause) {
            (RunState::Released, _) => "Released".to_owned(),
            (RunState::AwaitingRelease, _) => "Awaiting release".to_owned(),
            (state, Some(cause)) if state.is_terminal() => {
                format!("{}: {cause}", super::dashboard::state_words(state))
            }
            (state, _) => super::dashboard::state_words(state).to_owned(),
        };
        rows.push(PatientRunRow {
            run_id: run.id.0,
            drawn_at: readable(&sample.drawn_at),
            blood_ml: sample.blood_ml,
            reagent_lot: run.reagent_lot.clone().unwrap_or_else(|| "—".to_owned()),
            count: current.as_ref().map(count_view),
            status,
        });
    }
    let cutoff = indication.as_deref().and_then(|name| {
        state
            .engine
            .config()
            .indications
            .cutoff(name)
            .ok()
            .map(|c| c.unfavorable_at_or_above_per_7_5ml)
    });
    let points = trend
        .iter()
        .map(|point| TrendChartPoint {
            drawn_at_unix_s: point.drawn_at.datetime().unix_timestamp(),
            drawn_at: readable(&point.drawn_at),
            per_7_5ml: point.per_7_5ml,
            per_7_5ml_ci95: point.per_7_5ml_ci95,
            category: point.category.as_str().to_owned(),
            run_id: point.run_id.0,
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
