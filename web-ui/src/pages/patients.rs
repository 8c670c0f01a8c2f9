//! The patient pages: the patient list with its search (`GET /patients?mrn_prefix=&birth_date=`,
//! a page at a time; the header's box sends `?mrn=`, which opens the patient with exactly that
//! MRN and otherwise lists those whose MRN starts so), one patient's page (`GET /patients/{id}`):
//! the CTC trend with 95 % intervals, the indication's cut-off and the treatment or event
//! markers, the runs in a table, the CSV export (the API's trend, which the session cookie
//! opens), and the marker form (`POST /patients/{id}/events`).
//!
//! They ask for `ViewPatients` (as `GET /api/v1/patients…` does; a marker `AnnotatePatients`, as
//! `POST /api/v1/patients/{id}/events`) and go through `operations::patients`, which audits
//! them. An empty search lists every patient; a wrong one is said in words beside the form.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

use appliance::site::PatientNamePolicy;
use appliance::store::runs::RunState;
use appliance::store::{PatientId, RunId};
use operations::OperationError;
use operations::patients::{
    DEFAULT_LISTED, EventMarker, MAX_TREND_SHOWN, PatientRecord, PatientRun, PatientSearch,
};

use super::runs::{path_id, readable, summary_view};
use super::{PageError, PageForm, PageResult, PageUser};
use crate::charts::{TrendChart, TrendChartPoint, TrendEvent};
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{
    PatientEventRow, PatientListPage, PatientListRow, PatientPage, PatientRunRow, paths,
};

/// Runs listed per page of a patient's page (the trend chart shows every result).
const RUNS_LISTED: u32 = 25;

/// `GET /patients/{id}` query: `runs_before`, where the page of runs starts (the last run id
/// of the page before; absent or unreadable: the newest runs).
#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    #[serde(default)]
    runs_before: Option<String>,
}

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::PATIENT_SEARCH, get(list))
        .route("/patients/{id}", get(show))
        .route("/patients/{id}/events", post(add_event))
}

/// `GET /patients` query (every field optional: nothing typed lists every patient).
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    /// The header's box: an exact MRN opens the patient, otherwise the start of one.
    #[serde(default)]
    mrn: String,
    #[serde(default)]
    mrn_prefix: String,
    #[serde(default)]
    birth_date: String,
    /// The MRN the page starts after.
    #[serde(default)]
    after: String,
}

/// `key=value&…` of the non-blank pairs, each value percent-encoded except the characters that
/// never need it (an MRN and a date are made of those; anything else typed is encoded).
fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(key, value)| {
            let encoded: String = value
                .trim()
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        char::from(b).to_string()
                    }
                    other => format!("%{other:02X}"),
                })
                .collect();
            format!("{key}={encoded}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET /patients[?mrn_prefix=&birth_date=&after=]`, or `?mrn=` from the header.
async fn list(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<ListQuery>,
) -> PageResult {
    user.require(Permission::ViewPatients)?;
    let layout = user.layout(&state, "Patients", paths::PATIENT_SEARCH);
    let mut mrn_prefix = query.mrn_prefix;
    let typed = query.mrn.trim();
    if !typed.is_empty() {
        // The header's box: the patient with exactly this MRN, else the list it starts.
        match state.ops.look_up_patient(&user.requester(), typed).await {
            Ok(patient) => return Ok(Redirect::to(&paths::patient(patient.id.0)).into_response()),
            Err(OperationError::NotFound { .. }) => mrn_prefix = typed.to_owned(),
            Err(other) => return Err(PageError::from(other).within(layout)),
        }
    }
    let search = PatientSearch {
        mrn_prefix,
        birth_date: query.birth_date,
    };
    let after = Some(query.after.trim()).filter(|a| !a.is_empty());
    let listed = state
        .ops
        .list_patients(&user.requester(), &search, after, DEFAULT_LISTED)
        .await;
    let (rows, next_after, search_error) = match listed {
        Ok(page) => (page.patients, page.next_after, None),
        Err(OperationError::Invalid { field, reason }) => {
            let words = match field {
                "mrn_prefix" => "MRN",
                "birth_date" => "Date of birth",
                "after" => "Page",
                other => other,
            };
            (Vec::new(), None, Some(format!("{words}: {reason}.")))
        }
        Err(other) => return Err(PageError::from(other).within(layout)),
    };
    let names = state.ops.settings.site.patient_name;
    let rows = rows
        .into_iter()
        .map(|patient| PatientListRow {
            patient_id: patient.id.0,
            mrn: patient.mrn.as_str().to_owned(),
            birth_date: patient
                .birth_date
                .map_or_else(|| "not recorded".to_owned(), |d| d.to_string()),
            name: match names {
                PatientNamePolicy::Name => patient.name.map(|n| n.as_str().to_owned()),
                PatientNamePolicy::Initials => patient.initials.map(|n| n.as_str().to_owned()),
                PatientNamePolicy::None => None,
            }
            .unwrap_or_default(),
            indication: patient
                .indication
                .map_or_else(|| "—".to_owned(), |i| i.as_str().to_owned()),
        })
        .collect();
    let searched = [
        ("mrn_prefix", search.mrn_prefix.as_str()),
        ("birth_date", search.birth_date.as_str()),
    ];
    let page_href = |after: Option<&str>| {
        let mut pairs = searched.to_vec();
        if let Some(after) = after {
            pairs.push(("after", after));
        }
        let query = query_string(&pairs);
        if query.is_empty() {
            paths::PATIENT_SEARCH.to_owned()
        } else {
            format!("{}?{query}", paths::PATIENT_SEARCH)
        }
    };
    let status = if search_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        PatientListPage {
            layout,
            mrn_prefix: search.mrn_prefix.clone(),
            birth_date: search.birth_date.clone(),
            search_error,
            rows,
            shows_names: names != PatientNamePolicy::None,
            next_href: next_after.map(|mrn| page_href(Some(mrn.as_str()))),
            first_href: after.map(|_| page_href(None)),
        },
    )
        .into_response())
}

/// `GET /patients/{id}`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> PageResult {
    user.require(Permission::ViewPatients)?;
    let id = path_id("patient", &id)?;
    let layout = user.layout(&state, "Patient", &paths::patient(id));
    let runs_before = query
        .runs_before
        .as_deref()
        .and_then(|text| text.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .map(RunId);
    let page = build(&state, &user, id, runs_before, None)
        .await
        .map_err(|error| error.within(layout))?;
    Ok((StatusCode::OK, page).into_response())
}

/// The marker form's fields.
#[derive(Debug, Default, Deserialize)]
struct EventForm {
    #[serde(default)]
    occurred_on: String,
    #[serde(default)]
    label: String,
}

/// `POST /patients/{id}/events`: adds a marker, then back to the patient's trend; a wrong field
/// shows the page again with the form, what was typed and the problem beside it.
async fn add_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: PageForm<EventForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::AnnotatePatients)?;
    let id = path_id("patient", &id)?;
    let layout = user.layout(&state, "Patient", &paths::patient(id));
    let marker = EventMarker {
        occurred_on: form.occurred_on,
        label: form.label,
    };
    match state
        .ops
        .add_patient_event(&user.requester(), PatientId(id), &marker)
        .await
    {
        Ok(_) => {
            Ok(Redirect::to(&format!("{}#events-heading", paths::patient(id))).into_response())
        }
        Err(OperationError::Invalid { field, reason }) => {
            let problem = format!(
                "{}: {reason}",
                if field == "occurred_on" {
                    "Day"
                } else {
                    "What happened"
                }
            );
            let page = build(
                &state,
                &user,
                id,
                None,
                Some((marker.occurred_on, marker.label, problem)),
            )
            .await
            .map_err(|error| error.within(layout))?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(other) => Err(PageError::from(other).within(layout)),
    }
}

async fn build(
    state: &AppState,
    user: &PageUser,
    id: i64,
    runs_before: Option<RunId>,
    event_form: Option<(String, String, String)>,
) -> Result<PatientPage, PageError> {
    let zone = &state.ops.settings.site.time_zone;
    let PatientRecord {
        patient,
        trend,
        trend_older,
        runs,
        runs_next,
        cutoff,
        events,
    } = state
        .ops
        .view_patient(
            &user.requester(),
            PatientId(id),
            RUNS_LISTED,
            runs_before,
            MAX_TREND_SHOWN,
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
                 ..
             }| {
                let status = match (run.state, &run.failure_cause) {
                    (RunState::Released, _) => "Released".to_owned(),
                    (RunState::AwaitingRelease, _) => "Awaiting release".to_owned(),
                    (state, cause) => super::dashboard::outcome_words(state, cause.as_deref()),
                };
                PatientRunRow {
                    run_id: run.id.0,
                    drawn_at: readable(zone, &sample.drawn_at),
                    blood_ml: sample.blood_ml,
                    reagent_lot: run.reagent_lot.clone().unwrap_or_else(|| "—".to_owned()),
                    count: current.as_ref().map(|v| {
                        summary_view(&v.summary, v.version, reported.as_ref().map(|r| r.status))
                    }),
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
            released: point.released,
        })
        .collect();
    let day_text = |day: time::Date| {
        format!(
            "{:04}-{:02}-{:02}",
            day.year(),
            u8::from(day.month()),
            day.day()
        )
    };
    let markers = events
        .iter()
        .map(|event| TrendEvent {
            day_unix_s: event.occurred_on.midnight().assume_utc().unix_timestamp(),
            day: day_text(event.occurred_on),
            label: event.label.as_str().to_owned(),
        })
        .collect();
    let event_rows = events
        .iter()
        .map(|event| PatientEventRow {
            occurred_on: day_text(event.occurred_on),
            label: event.label.as_str().to_owned(),
            recorded: format!(
                "{}, {}",
                event.recorded_by_name.as_deref().unwrap_or("the appliance"),
                readable(zone, &event.recorded_at)
            ),
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
            events: markers,
        },
        trend_older: trend_older.then_some(MAX_TREND_SHOWN),
        indication,
        runs: rows,
        runs_next_href: runs_next.map(|before| {
            format!(
                "{}?runs_before={}#runs-heading",
                paths::patient(id),
                before.0
            )
        }),
        runs_first_href: runs_before.map(|_| format!("{}#runs-heading", paths::patient(id))),
        may_start_runs: user.may(Permission::OperateRuns),
        events: event_rows,
        may_annotate: user.may(Permission::AnnotatePatients),
        event_form,
    })
}
