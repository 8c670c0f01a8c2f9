//! The read-only FHIR R4 view of released results: `GET /fhir/DiagnosticReport?patient=<MRN>` (a
//! `searchset` Bundle) and `GET /fhir/DiagnosticReport/{id}` (the report of run `id`, its
//! Observations, Specimen and Devices contained), as `application/fhir+json`, never cached.
//!
//! Authenticated like the rest of the API (session or bearer token), for those who may view
//! patients' results (clinicians, lab admins: an operator never opens a released report), and
//! audited as a view through the operations layer (`operations::fhir`), which also decides what
//! is served: only released versions, final or corrected. Errors are problem documents like every
//! other route's. Not here: the resources' content (`appliance::interop::fhir`).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use appliance::interop::fhir::{FHIR_JSON, Resource, searchset};
use appliance::store::RunId;

use crate::auth::Caller;
use crate::extract::{ApiQuery, PathId};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// `GET /fhir/DiagnosticReport` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The patient's medical record number.
    pub patient: String,
}

/// Declared by hand: utoipa's derive leaves a `schema_with` parameter optional, and the server
/// requires `patient` (schemathesis sent the search without it, which the document allowed).
impl IntoParams for SearchQuery {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        vec![
            ParameterBuilder::new()
                .name("patient")
                .parameter_in(ParameterIn::Query)
                .required(utoipa::openapi::Required::True)
                .description(Some("The patient's medical record number."))
                .schema(Some(super::input_schemas::mrn()))
                .build(),
        ]
    }
}

/// A FHIR JSON answer, not cached.
fn fhir_json(value: &impl Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::Internal(format!("writing FHIR JSON: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

/// `GET /fhir/DiagnosticReport?patient=<MRN>`.
#[utoipa::path(
    get,
    path = "/fhir/DiagnosticReport",
    tag = "fhir",
    security(("session_cookie" = []), ("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "A FHIR R4 `searchset` Bundle of the patient's released reports (one per run, newest first; empty for an MRN no patient has). A view of patient data, audited; not cached", content_type = "application/fhir+json", body = serde_json::Value),
    )
)]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewPatients)?;
    let reports = state
        .ops
        .fhir_reports_of_patient(&caller.requester(), &query.patient)
        .await?;
    let self_url = format!(
        "/fhir/DiagnosticReport?patient={}",
        query.patient.trim().to_uppercase()
    );
    fhir_json(&searchset(reports, "/fhir", self_url))
}

/// `GET /fhir/DiagnosticReport/{id}`.
#[utoipa::path(
    get,
    path = "/fhir/DiagnosticReport/{id}",
    tag = "fhir",
    security(("session_cookie" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The FHIR R4 DiagnosticReport of the run's latest released result (final or corrected), its Observations, Specimen and Devices contained; a run without a released result is not found. A view of patient data, audited; not cached", content_type = "application/fhir+json", body = serde_json::Value),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewPatients)?;
    let report = state
        .ops
        .fhir_report(&caller.requester(), RunId(id))
        .await?;
    fhir_json(&Resource::DiagnosticReport(report))
}
