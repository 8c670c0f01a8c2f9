//! Runs: start one (202 with its id and state), read it (its state and, once computed, the
//! result with the keys of `ferrocount count --json`), confirm the tube it waits for, cancel
//! it, follow it live (server-sent events from the engine's broadcast), and release its result
//! by electronic signature (password re-entry, printed name, meaning).
//!
//! The engine does the work and the store keeps the record; this module only translates.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use appliance::engine::{EventKind, RunEvent, RunRequest, SimulatedTruth};
use appliance::store::results::{ResultVersion, SignatureMeaning};
use appliance::store::runs::{Run, RunState};
use appliance::store::{AuditEntry, RunId};
use operations::results::CorrectionOrder;
use operations::signature::SignatureInput;

use crate::auth::Caller;
use crate::extract::{ApiJson, PathId};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// `POST /api/v1/runs` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// Patient's MRN (registered when new).
    pub patient_mrn: String,
    /// Processed blood volume, mL.
    pub blood_ml: f64,
    /// Indication (a configured one gives a call against its cut-off).
    pub indication: Option<String>,
    /// Reagent lot (default on the simulated board: its simulated lot).
    pub reagent_lot: Option<String>,
    /// Blood draw time, RFC 3339 (default: now).
    #[schema(format = DateTime)]
    pub drawn_at: Option<String>,
    /// Extra tubes after control and quad (`cd45`, `igg`, `epcam`, `muc1`, `her2`, `egfr`).
    #[serde(default)]
    pub extra_tubes: Vec<String>,
    /// Replicates per tube (default 3).
    pub replicates: Option<u32>,
    /// Wait for `confirm-tube` even on the simulated board.
    #[serde(default)]
    pub manual_tube_confirmation: bool,
    /// Simulated board only: what the virtual tubes hold.
    pub simulate: Option<SimulateRequest>,
}

/// What the virtual tubes hold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// True number of tumour cells.
    pub cells: f64,
    /// Non-specific ΔR2 of the labelled tubes, 1/s.
    pub background_per_s: Option<f64>,
    /// The patient's control T2, ms.
    pub control_t2_ms: Option<f64>,
}

/// A queued run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunTicketView {
    /// Run id.
    pub id: i64,
    /// Its state (`queued`).
    #[schema(value_type = super::openapi::schemas::RunState)]
    pub state: RunState,
}

/// `POST /api/v1/runs`: 202 `{id, state}`.
#[utoipa::path(
    post,
    path = "/runs",
    tag = "runs",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    request_body = StartRun,
    responses(
        (status = 202, description = "Queued; follow it at `/api/v1/runs/{id}/events`", body = RunTicketView),
        (status = 409, description = "The engine has stopped", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<StartRun>,
) -> Result<(StatusCode, Json<RunTicketView>), ApiError> {
    caller.require(Permission::OperateRuns)?;
    let mut extra_tubes = Vec::with_capacity(body.extra_tubes.len());
    for name in &body.extra_tubes {
        extra_tubes.push(
            name.to_ascii_lowercase()
                .parse::<nmr_core::assay::TubeKind>()
                .map_err(|_| {
                    ApiError::invalid(
                        "extra_tubes",
                        format!("{name:?} is not one of cd45, igg, epcam, muc1, her2, egfr"),
                    )
                })?,
        );
    }
    let mut request = RunRequest::new(&body.patient_mrn, body.blood_ml);
    request.indication = body.indication;
    request.reagent_lot = body.reagent_lot;
    request.drawn_at = body.drawn_at;
    request.extra_tubes = extra_tubes;
    if let Some(replicates) = body.replicates {
        request.replicates = replicates;
    }
    request.manual_tube_confirmation = body.manual_tube_confirmation;
    request.simulate = body.simulate.map(|s| SimulatedTruth {
        cells: s.cells,
        background_per_s: s.background_per_s,
        control_t2_ms: s.control_t2_ms,
    });
    request.operator = caller.user.actor();
    let ticket = state.engine.start_run(request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RunTicketView {
            id: ticket.id.0,
            state: ticket.state,
        }),
    ))
}

/// The current version of a run's result: the count report's keys with the run, its state and
/// the version number (above 1: the result was corrected).
#[derive(Debug, Serialize)]
pub struct CurrentResult {
    /// The run.
    pub run_id: i64,
    /// The run's state.
    pub state: RunState,
    /// The version shown.
    pub version: u32,
    /// The count report.
    #[serde(flatten)]
    pub report: nmr_core::assay::CountReport,
}

/// A run with its result.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// Run id.
    pub id: i64,
    /// Where it stands.
    #[schema(value_type = super::openapi::schemas::RunState)]
    pub state: RunState,
    /// The stored run.
    #[schema(value_type = super::openapi::schemas::Run)]
    pub run: Run,
    /// The current result: the keys of `ferrocount count --json` (plus `run_id`, `state`,
    /// `version`),
    /// once computed.
    #[schema(value_type = Option<Object>)]
    pub result: Option<CurrentResult>,
    /// Every version of the result, with signatures.
    #[schema(value_type = Vec<super::openapi::schemas::ResultVersion>)]
    pub versions: Vec<ResultVersion>,
}

/// `GET /api/v1/runs/{id}`.
#[utoipa::path(
    get,
    path = "/runs/{id}",
    tag = "runs",
    security(("session_cookie" = []), ("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "Run id")),
    responses((status = 200, description = "The run, its current result and every result version (a view of a result is audited)", body = RunView))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<RunView>, ApiError> {
    caller.require(Permission::ViewRuns)?;
    let run = state.store.run(RunId(id)).await?;
    let versions = state.store.result_versions(run.id).await?;
    let result = versions.last().map(|current| CurrentResult {
        run_id: run.id.0,
        state: run.state,
        version: current.version,
        report: current.report.clone(),
    });
    if result.is_some() {
        state
            .store
            .record_event(
                &caller.user.actor(),
                AuditEntry::new("run.result_view", "run").id(id),
            )
            .await?;
    }
    Ok(Json(RunView {
        id,
        state: run.state,
        run,
        result,
        versions,
    }))
}

/// `POST /api/v1/runs/{id}/confirm-tube`: 202 once the engine has the confirmation.
#[utoipa::path(
    post,
    path = "/runs/{id}/confirm-tube",
    tag = "runs",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "Run id")),
    responses(
        (status = 202, description = "The engine has the confirmation"),
        (status = 409, description = "The run is not waiting for a tube", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn confirm_tube(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::OperateRuns)?;
    let run = state.store.run(RunId(id)).await?;
    state.engine.confirm_tube(run.id)?;
    state
        .store
        .record_event(
            &caller.user.actor(),
            AuditEntry::new("run.tube_confirmed", "run").id(id),
        )
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/v1/runs/{id}/cancel` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRun {
    /// Why (kept in the audit trail), 3 to 1000 characters.
    #[schema(min_length = 3, max_length = 1000)]
    pub reason: String,
}

/// `POST /api/v1/runs/{id}/cancel`: 202 with the state the run is (or will be) in.
#[utoipa::path(
    post,
    path = "/runs/{id}/cancel",
    tag = "runs",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "Run id")),
    request_body = CancelRun,
    responses(
        (status = 202, description = "Cancelled, or will be at the next safe point", body = RunTicketView),
        (status = 409, description = "The run can no longer be cancelled", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<CancelRun>,
) -> Result<(StatusCode, Json<RunTicketView>), ApiError> {
    caller.require(Permission::OperateRuns)?;
    let reason = body.reason.trim();
    if reason.len() < 3 || reason.chars().count() > 1000 {
        return Err(ApiError::invalid("reason", "must be 3 to 1000 characters"));
    }
    let run = state.store.run(RunId(id)).await?;
    let next = state
        .engine
        .cancel(run.id, &caller.user.actor(), reason)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RunTicketView { id, state: next }),
    ))
}

/// Whether the engine is done with a run in this state (the event stream then ends).
fn settled(state: RunState) -> bool {
    state.is_terminal() || state == RunState::AwaitingRelease
}

/// `GET /api/v1/runs/{id}/events`: the run's current state, then its events as they happen,
/// until the engine is done with it. Each SSE event is named after the event's `event` tag and
/// carries the event as JSON.
#[utoipa::path(
    get,
    path = "/runs/{id}/events",
    tag = "runs",
    security(("session_cookie" = []), ("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "Run id")),
    responses((
        status = 200,
        description = "Server-sent events: the run's state, then its events until the engine is done with it. Each event is named after its `event` key; its data is the event as JSON.",
        body = super::openapi::schemas::RunEvent,
        content_type = "text/event-stream"
    ))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Permission::ViewRuns)?;
    // Subscribe before reading the state, so nothing falls between the two.
    let receiver = state.engine.subscribe();
    let run = state.store.run(RunId(id)).await?;
    let first = RunEvent {
        run_id: Some(run.id),
        at: run.updated_at.to_rfc3339(),
        kind: EventKind::State {
            state: run.state,
            cause: run.failure_cause.clone(),
        },
    };
    let finished = settled(run.state);
    // After the first event, the run's own events until one settles it; the stream then ends.
    let live = stream::unfold(
        (receiver, finished),
        move |(mut receiver, finished)| async move {
            if finished {
                return None;
            }
            loop {
                match receiver.recv().await {
                    Ok(event) if event.run_id == Some(RunId(id)) => {
                        let done =
                            matches!(event.kind, EventKind::State { state, .. } if settled(state));
                        return Some((event, (receiver, done)));
                    }
                    // Another run's event; or a lagging subscriber, which misses events, never data
                    // (the run can be re-read).
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    let stream = stream::once(async move { first })
        .chain(live)
        .map(|event| Ok(sse_event(&event)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn sse_event(event: &RunEvent) -> Event {
    let name = serde_json::to_value(event)
        .ok()
        .and_then(|v| v["event"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "message".to_owned());
    Event::default()
        .event(name)
        .json_data(event)
        .unwrap_or_else(|_| Event::default().event("error").data("unserialisable event"))
}

/// `POST /api/v1/runs/{id}/release` body: the electronic signature.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The signer's password, entered again.
    pub password: String,
    /// The signer's printed name, typed (must match the name on their account).
    pub printed_name: String,
    /// `release` (default) or `review`.
    pub meaning: Option<SignatureMeaningName>,
}

/// What the signature means.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignatureMeaningName {
    /// Released for clinical use.
    Release,
    /// Reviewed.
    Review,
}

/// The signature made.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureView {
    /// Run id.
    pub run_id: i64,
    /// The run's state after signing.
    #[schema(value_type = super::openapi::schemas::RunState)]
    pub state: RunState,
    /// Signed result version.
    pub result_id: i64,
    /// Printed name.
    pub printed_name: String,
    /// `release` or `review`.
    #[schema(value_type = super::openapi::schemas::SignatureMeaning)]
    pub meaning: SignatureMeaning,
    /// The statement signed.
    pub statement: &'static str,
    /// When, RFC 3339.
    pub signed_at: String,
}

/// `POST /api/v1/runs/{id}/release`.
#[utoipa::path(
    post,
    path = "/runs/{id}/release",
    tag = "runs",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "Run id")),
    request_body = ReleaseRequest,
    responses(
        (status = 200, description = "Signed: the electronic signature made", body = SignatureView),
        (status = 409, description = "The run has no result awaiting this signature", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed password re-entries", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn release(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<ReleaseRequest>,
) -> Result<(StatusCode, Json<SignatureView>), ApiError> {
    caller.require(Permission::ReleaseResults)?;
    let meaning = match body.meaning.unwrap_or(SignatureMeaningName::Release) {
        SignatureMeaningName::Release => SignatureMeaning::Release,
        SignatureMeaningName::Review => SignatureMeaning::Review,
    };
    let signature = state
        .ops
        .release_result(
            &caller.user,
            client.ip(),
            RunId(id),
            &SignatureInput {
                password: body.password,
                printed_name: body.printed_name,
            },
            meaning,
        )
        .await?;
    let run = state.store.run(RunId(id)).await?;
    let after = state.store.run(run.id).await?;
    Ok((
        StatusCode::OK,
        Json(SignatureView {
            run_id: id,
            state: after.state,
            result_id: signature.result_id.0,
            printed_name: signature.printed_name,
            meaning: signature.meaning,
            statement: signature.meaning.statement(),
            signed_at: signature.signed_at.to_rfc3339(),
        }),
    ))
}

/// `POST /api/v1/runs/{id}/corrections` body: the corrected inputs, why, and the signer's
/// signature (password re-entered, printed name).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionRequest {
    /// The corrected processed blood volume, mL (when it was entered wrongly).
    pub blood_ml: Option<f64>,
    /// The corrected indication (when it was entered wrongly).
    pub indication: Option<String>,
    /// Why the result is corrected (3 to 1000 characters).
    pub reason: String,
    /// The signer's password, re-entered.
    pub password: String,
    /// The signer's name as on their account.
    pub printed_name: String,
}

/// The corrected version.
#[derive(Debug, Serialize, ToSchema)]
pub struct CorrectionView {
    /// The run.
    pub run_id: i64,
    /// The run's state after the correction (`awaiting_release`: it must be released again).
    #[schema(value_type = super::openapi::schemas::RunState)]
    pub state: RunState,
    /// The new version's number.
    pub version: u32,
    /// Why it was corrected.
    pub reason: String,
    /// CTC per 7.5 mL in the corrected version.
    pub per_7_5ml: f64,
}

/// `POST /api/v1/runs/{id}/corrections`: corrects the run's result by a new version with a
/// reason (recounted from its stored readings with the corrected inputs), signed by a person who
/// may release; the original version stays.
#[utoipa::path(
    post,
    path = "/runs/{id}/corrections",
    tag = "runs",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "Run id")),
    request_body = CorrectionRequest,
    responses(
        (status = 201, description = "Corrected: the new version, awaiting release", body = CorrectionView),
        (status = 409, description = "The run has no result that may be corrected", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "A field is wrong (named)", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed password re-entries", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn correct(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<CorrectionRequest>,
) -> Result<(StatusCode, Json<CorrectionView>), ApiError> {
    caller.require(Permission::ReleaseResults)?;
    let order = CorrectionOrder::parse(body.blood_ml, body.indication.as_deref(), &body.reason)?;
    let version = state
        .ops
        .correct_result(
            &caller.user,
            client.ip(),
            RunId(id),
            &order,
            &SignatureInput {
                password: body.password,
                printed_name: body.printed_name,
            },
        )
        .await?;
    let run = state.store.run(RunId(id)).await?;
    Ok((
        StatusCode::CREATED,
        Json(CorrectionView {
            run_id: id,
            state: run.state,
            version: version.version,
            reason: version.reason.unwrap_or_default(),
            per_7_5ml: version.summary.per_7_5ml,
        }),
    ))
}
