//! Patients: the list (search by MRN prefix and date of birth, a page at a time), register, show
//! one, their runs (a page at a time, newest first), their trend (JSON or CSV) and its treatment or event markers, each through the operations
//! layer (`operations::patients`), which audits every view of patient data (who, what, when) and
//! every marker added.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use appliance::site::SiteTimeZone;
use appliance::store::patients::Patient;
use appliance::store::{PatientId, RunId};
use operations::patients::ReportedPoint;
use operations::reported::ResultStatus;

use appliance::store::patient_events::PatientEvent;
use operations::patients::{
    DEFAULT_LISTED, DEFAULT_PATIENT_RUNS_PAGE, EventMarker, PatientRegistration, PatientSearch,
};

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// A patient as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientView {
    /// Id.
    pub id: i64,
    /// Medical record number (the first identifier).
    pub mrn: String,
    /// Date of birth, `YYYY-MM-DD` (the second identifier; null for a patient registered before
    /// birth dates were recorded, until their next run records it).
    #[schema(format = Date)]
    pub birth_date: Option<String>,
    /// Name, where the site keeps names.
    pub name: Option<String>,
    /// Initials, where the site keeps initials.
    pub initials: Option<String>,
    /// The patient's indication (it sets the cut-off of their runs' calls).
    pub indication: Option<String>,
    /// First seen, RFC 3339.
    pub created_at: String,
}

impl From<Patient> for PatientView {
    fn from(patient: Patient) -> Self {
        Self {
            id: patient.id.0,
            mrn: patient.mrn.as_str().to_owned(),
            birth_date: patient.birth_date.map(|d| d.to_string()),
            name: patient.name.map(|n| n.as_str().to_owned()),
            initials: patient.initials.map(|n| n.as_str().to_owned()),
            indication: patient.indication.map(|i| i.as_str().to_owned()),
            created_at: patient.created_at.to_rfc3339(),
        }
    }
}

/// `GET /api/v1/patients` query: an empty search lists every patient, by MRN.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The start of an MRN (any case; empty or absent: any MRN).
    #[serde(default)]
    #[param(schema_with = super::input_schemas::mrn_prefix)]
    pub mrn_prefix: String,
    /// A date of birth, `YYYY-MM-DD` (empty or absent: any).
    #[serde(default)]
    #[param(schema_with = super::input_schemas::birth_date_search)]
    pub birth_date: String,
    /// The MRN the page starts after: the `next_after` of the page before (absent: the first
    /// page).
    #[param(schema_with = super::input_schemas::mrn)]
    pub after: Option<String>,
    /// At most this many on the page.
    #[param(schema_with = super::input_schemas::list_limit)]
    #[serde(default, deserialize_with = "crate::extract::optional_whole_u32_text")]
    pub limit: Option<u32>,
}

/// One page of the patient list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientListView {
    /// The patients, by MRN.
    pub patients: Vec<PatientView>,
    /// The MRN to pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
}

/// `GET /api/v1/patients`.
#[utoipa::path(
    get,
    path = "/patients",
    tag = "patients",
    security(("session_cookie" = []), ("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "One page of the patients the search finds, by MRN (audited)", body = PatientListView))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<PatientListView>, ApiError> {
    caller.require(Permission::ViewPatients)?;
    let page = state
        .ops
        .list_patients(
            &caller.requester(),
            &PatientSearch {
                mrn_prefix: query.mrn_prefix,
                birth_date: query.birth_date,
            },
            query.after.as_deref(),
            query.limit.unwrap_or(DEFAULT_LISTED),
        )
        .await?;
    Ok(Json(PatientListView {
        patients: page.patients.into_iter().map(PatientView::from).collect(),
        next_after: page.next_after.map(|mrn| mrn.as_str().to_owned()),
    }))
}

/// `POST /api/v1/patients` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPatient {
    /// Medical record number.
    #[schema(schema_with = super::input_schemas::mrn)]
    pub mrn: String,
    /// Date of birth, `YYYY-MM-DD` (required: the second identifier).
    #[schema(format = Date)]
    pub birth_date: String,
    /// Name (only where the site's `[site] patient_name = "name"`; refused otherwise).
    pub name: Option<String>,
    /// Initials (only where the site's `[site] patient_name = "initials"`; refused otherwise).
    pub initials: Option<String>,
    /// The patient's indication, one with a configured cut-off (absent: not yet known).
    pub indication: Option<String>,
}

/// `POST /api/v1/patients`: 201 with the patient; 409 when the MRN exists.
#[utoipa::path(
    post,
    path = "/patients",
    tag = "patients",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    request_body = NewPatient,
    responses(
        (status = 201, description = "Registered", body = PatientView,
            links(
                ("GetPatient" = (
                    operation_ref = "#/paths/~1api~1v1~1patients~1{id}/get",
                    parameters(("id" = "$response.body#/id")),
                    description = "The patient registered"
                )),
                ("GetPatientRuns" = (
                    operation_ref = "#/paths/~1api~1v1~1patients~1{id}~1runs/get",
                    parameters(("id" = "$response.body#/id")),
                    description = "The patient's runs"
                )),
                ("GetPatientTrend" = (
                    operation_ref = "#/paths/~1api~1v1~1patients~1{id}~1trend/get",
                    parameters(("id" = "$response.body#/id")),
                    description = "The patient's trend"
                ))
            )),
        (status = 409, description = "A patient has this MRN", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewPatient>,
) -> Result<(StatusCode, Json<PatientView>), ApiError> {
    caller.require(Permission::RegisterPatients)?;
    let patient = state
        .ops
        .register_patient(
            &caller.requester(),
            &PatientRegistration {
                mrn: request.mrn,
                birth_date: request.birth_date,
                name: request.name,
                initials: request.initials,
                indication: request.indication.unwrap_or_default(),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(patient.into())))
}

/// `GET /api/v1/patients/{id}`.
#[utoipa::path(
    get,
    path = "/patients/{id}",
    tag = "patients",
    security(("session_cookie" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Patient id")),
    responses((status = 200, description = "The patient (audited)", body = PatientView))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<PatientView>, ApiError> {
    caller.require(Permission::ViewPatients)?;
    let record = state
        .ops
        // The patient only: neither runs nor trend nor markers are read.
        .view_patient(&caller.requester(), PatientId(id), 0, None, 0, "api")
        .await?;
    Ok(Json(record.patient.into()))
}

/// `GET /api/v1/patients/{id}/runs` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// The run the page starts before: the `next_before` of the page before (absent: the
    /// newest run).
    #[param(schema_with = super::input_schemas::path_id)]
    pub before: Option<String>,
    /// At most this many on the page.
    #[param(schema_with = super::input_schemas::patient_runs_limit)]
    #[serde(default, deserialize_with = "crate::extract::optional_whole_u32_text")]
    pub limit: Option<u32>,
}

/// The current version of a listed run's result, as reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedResultView {
    /// The version shown (the current one).
    pub version: u32,
    /// Whether it corrects an earlier version (`version` above 1).
    pub corrected: bool,
    /// `PRELIMINARY` until released, then `FINAL`, or `CORRECTED`.
    pub status: ResultStatus,
    /// Its regulated values, with `call` as reported: `indeterminate` when the 95 % interval
    /// contains the cut-off.
    #[serde(flatten)]
    pub summary: appliance::store::results::ResultSummary,
}

/// One of a patient's runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientRunView {
    /// The stored run (state, times, reagent lot, failure cause).
    pub run: appliance::store::runs::Run,
    /// The specimen's accession number.
    pub accession: String,
    /// Blood draw time, RFC 3339 with the site's offset.
    pub drawn_at: String,
    /// The current version of its result (null: none yet).
    pub result: Option<ListedResultView>,
}

/// One page of a patient's runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientRunsView {
    /// The runs, newest first.
    pub runs: Vec<PatientRunView>,
    /// The run id to pass as `before` for the next (older) page; null on the last page.
    pub next_before: Option<i64>,
}

/// `GET /api/v1/patients/{id}/runs`.
#[utoipa::path(
    get,
    path = "/patients/{id}/runs",
    tag = "patients",
    security(("session_cookie" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Patient id"), RunsQuery),
    responses((status = 200, description = "One page of the patient's runs, newest first, each with the current version of its result as reported (audited)", body = PatientRunsView))
)]
pub async fn runs(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<Json<PatientRunsView>, ApiError> {
    caller.require(Permission::ViewPatients)?;
    let before = query
        .before
        .as_deref()
        .map(|text| PathId::parse(text).map(|PathId(id)| RunId(id)))
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                "before",
                "the run a page starts before is a run id (a positive whole number, written plainly)",
            )
        })?;
    let page = state
        .ops
        .patient_runs(
            &caller.requester(),
            PatientId(id),
            before,
            query.limit.unwrap_or(DEFAULT_PATIENT_RUNS_PAGE),
        )
        .await?;
    let zone = &state.ops.settings.site.time_zone;
    let runs = page
        .runs
        .into_iter()
        .map(|row| PatientRunView {
            accession: row.sample.accession.as_str().to_owned(),
            drawn_at: zone.rfc3339(row.sample.drawn_at),
            result: row
                .current
                .zip(row.reported)
                .map(|(current, reported)| ListedResultView {
                    version: current.version,
                    corrected: current.version > 1,
                    status: reported.status,
                    summary: appliance::store::results::ResultSummary {
                        call: reported.call,
                        ..current.summary
                    },
                }),
            run: row.run,
        })
        .collect();
    Ok(Json(PatientRunsView {
        runs,
        next_before: page.next_before.map(|id| id.0),
    }))
}

/// `GET /api/v1/patients/{id}/trend` query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrendQuery {
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<TrendFormat>,
}

/// Trend answer format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrendFormat {
    /// A JSON array.
    Json,
    /// CSV with a header row.
    Csv,
}

/// One point of the trend as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendRow {
    /// The run.
    pub run_id: i64,
    /// Blood draw time, RFC 3339 with the site's offset (`2026-12-02T09:12:00+01:00`).
    pub drawn_at: String,
    /// CTC per 7.5 mL.
    pub per_7_5ml: f64,
    /// 95 % interval.
    pub per_7_5ml_ci95: [f64; 2],
    /// `not_detected`, `below_loq` or `quantified`.
    pub category: String,
    /// `favorable`, `unfavorable`, `indeterminate` (the 95 % interval contains the cut-off) or
    /// null.
    pub call: Option<String>,
    /// `PRELIMINARY` until released, `FINAL`, or `CORRECTED`.
    pub status: ResultStatus,
    /// Result version shown (the current one).
    pub version: u32,
    /// Whether the version shown corrects an earlier one (the earlier versions are kept; the
    /// run's versions are at `GET /api/v1/runs/{run_id}`).
    pub corrected: bool,
    /// Whether released.
    pub released: bool,
}

impl TrendRow {
    /// A point as the API shows it, its draw time with the offset of the site's `zone`.
    pub fn of(ReportedPoint { point, reported }: ReportedPoint, zone: &SiteTimeZone) -> Self {
        Self {
            run_id: point.run_id.0,
            drawn_at: zone.rfc3339(point.drawn_at),
            per_7_5ml: point.per_7_5ml,
            per_7_5ml_ci95: point.per_7_5ml_ci95,
            category: point.category.as_str().to_owned(),
            call: reported.call.map(|c| c.as_str().to_owned()),
            status: reported.status,
            version: point.version,
            corrected: point.corrected(),
            released: point.released,
        }
    }
}

/// `GET /api/v1/patients/{id}/trend[?format=csv]`.
#[utoipa::path(
    get,
    path = "/patients/{id}/trend",
    tag = "patients",
    security(("session_cookie" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Patient id"), TrendQuery),
    responses((
        status = 200,
        description = "One row per run with a result, by draw time (audited); CSV with a header row when `format=csv`",
        content((Vec<TrendRow> = "application/json"), (String = "text/csv"))
    ))
)]
pub async fn trend(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<TrendQuery>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewPatients)?;
    let format = query.format.unwrap_or(TrendFormat::Json);
    let (patient, points) = state
        .ops
        .view_trend(
            &caller.requester(),
            PatientId(id),
            match format {
                TrendFormat::Json => "json",
                TrendFormat::Csv => "csv",
            },
        )
        .await?;
    let zone = &state.ops.settings.site.time_zone;
    let rows: Vec<TrendRow> = points
        .into_iter()
        .map(|point| TrendRow::of(point, zone))
        .collect();
    Ok(match format {
        TrendFormat::Json => Json(rows).into_response(),
        TrendFormat::Csv => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"trend-{}.csv\"",
                        patient.mrn.as_str()
                    ),
                ),
            ],
            trend_csv(&rows),
        )
            .into_response(),
    })
}

/// `POST /api/v1/patients/{id}/events` body: a treatment or event marker for the trend.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// The day it happened (or is planned), `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub occurred_on: String,
    /// What happened ("started docetaxel", "surgery").
    #[schema(schema_with = super::input_schemas::event_label)]
    pub label: String,
}

/// A marker on a patient's trend.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Id.
    pub id: i64,
    /// The day, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub occurred_on: String,
    /// What happened.
    pub label: String,
    /// When it was recorded, RFC 3339.
    pub recorded_at: String,
    /// Who recorded it (printed name; null: the appliance).
    pub recorded_by: Option<String>,
}

impl From<PatientEvent> for EventView {
    fn from(event: PatientEvent) -> Self {
        Self {
            id: event.id,
            occurred_on: format!(
                "{:04}-{:02}-{:02}",
                event.occurred_on.year(),
                u8::from(event.occurred_on.month()),
                event.occurred_on.day()
            ),
            label: event.label.as_str().to_owned(),
            recorded_at: event.recorded_at.to_rfc3339(),
            recorded_by: event.recorded_by_name,
        }
    }
}

/// `POST /api/v1/patients/{id}/events`: 201 with the marker (audited `patient.event_add`).
#[utoipa::path(
    post,
    path = "/patients/{id}/events",
    tag = "patients",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Patient id")),
    request_body = NewEvent,
    responses((status = 201, description = "Added to the patient's trend (audited)", body = EventView))
)]
pub async fn add_event(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<NewEvent>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    caller.require(Permission::AnnotatePatients)?;
    let event = state
        .ops
        .add_patient_event(
            &caller.requester(),
            PatientId(id),
            &EventMarker {
                occurred_on: body.occurred_on,
                label: body.label,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(event.into())))
}

/// The trend as CSV (RFC 4180; no field needs quoting: ids, times, numbers and fixed words).
pub fn trend_csv(rows: &[TrendRow]) -> String {
    let mut csv = String::from(
        "run_id,drawn_at,per_7_5ml,per_7_5ml_ci95_low,per_7_5ml_ci95_high,category,call,status,version,corrected,released\n",
    );
    for row in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            row.run_id,
            row.drawn_at,
            row.per_7_5ml,
            row.per_7_5ml_ci95[0],
            row.per_7_5ml_ci95[1],
            row.category,
            row.call.as_deref().unwrap_or(""),
            row.status,
            row.version,
            row.corrected,
            row.released
        ));
    }
    csv
}
