//! Runs: start one (202 with its id and state), read it (its state and, once computed, the
//! result with the keys of `ferrocount count --json`), confirm the tube it waits for, cancel
//! it, follow it live (server-sent events from the engine's broadcast), and release its result
//! by electronic signature (password re-entry, printed name, meaning).
//!
//! The engine does the work and the store keeps the record; this module only translates.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use appliance::engine::{EventKind, RunEvent};
use appliance::store::measurements::{StoredFit, T2Distribution};
use appliance::store::results::{ResultVersion, SignatureMeaning};
use appliance::store::runs::{Run, RunState};
use appliance::store::samples::TubeKind;
use appliance::store::{MeasurementId, RunId, Timestamp};
use operations::OperationError;
use operations::reported::ResultStatus;
use operations::results::CorrectionOrder;
use operations::runs::{CancelReason, RunDetail, RunOrderFields};
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
    #[schema(schema_with = super::input_schemas::mrn)]
    pub patient_mrn: String,
    /// Patient's date of birth, `YYYY-MM-DD`: the second identifier, required for a patient
    /// whose birth date is on record (a mismatch is refused and nothing is stored).
    #[schema(format = Date)]
    pub birth_date: Option<String>,
    /// The specimen's accession number (unique; 1 to 32 printable characters, no spaces).
    #[schema(schema_with = super::input_schemas::accession)]
    pub accession: String,
    /// Processed blood volume, mL.
    pub blood_ml: f64,
    /// Indication (a configured one gives a call against its cut-off).
    pub indication: Option<String>,
    /// When `indication` is not the patient's: the reason for the override (audited).
    pub indication_override_reason: Option<String>,
    /// Reagent lot (default on the simulated board: its simulated lot).
    pub reagent_lot: Option<String>,
    /// Blood draw time, RFC 3339 (default: now).
    #[schema(format = DateTime)]
    pub drawn_at: Option<String>,
    /// Extra tubes after control and quad (`cd45`, `igg`, `epcam`, `muc1`, `her2`, `egfr`).
    #[serde(default)]
    pub extra_tubes: Vec<String>,
    /// Replicates per tube (default 3).
    #[serde(default, deserialize_with = "crate::extract::optional_whole_u32")]
    #[schema(schema_with = super::input_schemas::replicates)]
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
        (status = 202, description = "Queued; follow it at `/api/v1/runs/{id}/events`", body = RunTicketView,
            links(("GetRun" = (
                operation_ref = "#/paths/~1api~1v1~1runs~1{id}/get",
                parameters(("id" = "$response.body#/id")),
                description = "The run queued"
            )))),
        (status = 409, description = "The engine has stopped", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<StartRun>,
) -> Result<(StatusCode, Json<RunTicketView>), ApiError> {
    caller.require(Permission::OperateRuns)?;
    let text = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_default();
    let simulate = body.simulate.as_ref();
    let fields = RunOrderFields {
        patient_mrn: body.patient_mrn,
        birth_date: body.birth_date.unwrap_or_default(),
        accession: body.accession,
        blood_ml: body.blood_ml.to_string(),
        indication: body.indication.unwrap_or_default(),
        indication_override_reason: body.indication_override_reason.unwrap_or_default(),
        reagent_lot: body.reagent_lot.unwrap_or_default(),
        drawn_at: body.drawn_at.unwrap_or_default(),
        extra_tubes: body.extra_tubes,
        replicates: body.replicates.map(|n| n.to_string()).unwrap_or_default(),
        manual_tube_confirmation: body.manual_tube_confirmation,
        simulate_cells: text(simulate.map(|s| s.cells)),
        simulate_background_per_s: text(simulate.and_then(|s| s.background_per_s)),
        simulate_control_t2_ms: text(simulate.and_then(|s| s.control_t2_ms)),
    };
    let order = state
        .ops
        .parse_order(&fields)
        .await?
        .map_err(OperationError::from)?;
    let ticket = state.ops.start_run(&caller.requester(), &order).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RunTicketView {
            id: ticket.id.0,
            state: ticket.state,
        }),
    ))
}

/// The current version of a run's result: the count report's keys with the run, its state, the
/// version number and whether it corrects an earlier version (which is kept, in `versions`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentResult {
    /// The run.
    pub run_id: i64,
    /// The run's state.
    pub state: RunState,
    /// The version shown.
    pub version: u32,
    /// Whether this version corrects an earlier one (`version` above 1).
    pub corrected: bool,
    /// `PRELIMINARY` until released, then `FINAL`, or `CORRECTED` when it replaces an earlier
    /// released version.
    pub status: ResultStatus,
    /// The count report, with `call` as reported: `indeterminate` when the 95 % interval
    /// contains the cut-off (`versions` keep the stored point-estimate call beside
    /// `interval_spans_cutoff`).
    #[serde(flatten)]
    pub report: nmr_core::assay::CountReport,
}

/// A stored version of a run's result, with its call as reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    /// The stored version: its regulated values, the whole count report (with the stored
    /// point-estimate call), its reason and signatures.
    #[serde(flatten)]
    pub version: ResultVersion,
    /// The version's call as reported (`operations::reported::reported_call`):
    /// `indeterminate` when its 95 % interval contains the cut-off; `null` without a cut-off.
    pub reported_call: Option<nmr_core::assay::Call>,
}

/// One replicate reading of the run: its tube, its fit (or why there is none), the QC flags it
/// raised and the T2 distribution computed when it was measured. (The raw train stays on the
/// appliance.)
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadingView {
    /// The stored measurement.
    pub measurement_id: MeasurementId,
    /// Its tube.
    pub tube: TubeKind,
    /// Replicate number, from 1.
    pub replicate: u32,
    /// When it was measured.
    pub measured_at: Timestamp,
    /// Echoes in its train.
    pub echoes: usize,
    /// The fit of its train (`null`: not fitted).
    pub fit: Option<StoredFit>,
    /// QC flags raised on it.
    pub qc_flags: Vec<nmr_core::qc::QcFlag>,
    /// Its T2 distribution (`null`: stored before distributions were kept, not yet viewed).
    pub t2_distribution: Option<T2Distribution>,
}

/// A run with its result.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// Run id.
    pub id: i64,
    /// Where it stands.
    pub state: RunState,
    /// The stored run.
    pub run: Run,
    /// The current result: the keys of `ferrocount count --json` (plus `run_id`, `state`,
    /// `version`, `corrected`), once computed.
    pub result: Option<CurrentResult>,
    /// Every version of the result, oldest first, with their signatures: a correction is a new
    /// version with its reason, the original kept. Each carries `reported_call`, its call as
    /// reported (`indeterminate` when its interval contains the cut-off), beside the stored
    /// point-estimate call in its report.
    pub versions: Vec<VersionView>,
    /// The replicate readings, in the order they were measured.
    pub readings: Vec<ReadingView>,
}

/// `GET /api/v1/runs/{id}`.
#[utoipa::path(
    get,
    path = "/runs/{id}",
    tag = "runs",
    security(("session_cookie" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, description = "The run, its current result and every result version (a view of a result is audited)", body = RunView))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<RunView>, ApiError> {
    caller.require(Permission::ViewRuns)?;
    let record = state
        .ops
        .view_run(&caller.requester(), RunId(id), RunDetail::Readings, "api")
        .await?;
    let reported = record.reported();
    let result = record
        .current()
        .zip(reported)
        .map(|(current, reported)| CurrentResult {
            run_id: record.run.id.0,
            state: record.run.state,
            version: current.version,
            corrected: current.version > 1,
            status: reported.status,
            report: nmr_core::assay::CountReport {
                call: reported.call,
                ..current.report.clone()
            },
        });
    let mut readings = Vec::with_capacity(record.measurements.len());
    for m in record.measurements {
        let tube = record
            .sample
            .tubes
            .iter()
            .find(|t| t.id == m.tube_id)
            .ok_or_else(|| {
                ApiError::Internal(format!(
                    "measurement {} names tube {}, which is not of run {id}'s sample",
                    m.id, m.tube_id
                ))
            })?;
        readings.push(ReadingView {
            measurement_id: m.id,
            tube: tube.kind,
            replicate: m.replicate,
            measured_at: m.measured_at,
            echoes: m.train.len(),
            fit: m.fit_report.map(|f| f.fit),
            qc_flags: m.qc_flags,
            t2_distribution: m.t2_distribution,
        });
    }
    Ok(Json(RunView {
        id,
        state: record.run.state,
        run: record.run,
        result,
        versions: record
            .versions
            .into_iter()
            .map(|version| VersionView {
                reported_call: operations::reported::reported_call(&version.summary),
                version,
            })
            .collect(),
        readings,
    }))
}

/// `POST /api/v1/runs/{id}/confirm-tube`: 202 once the engine has the confirmation.
#[utoipa::path(
    post,
    path = "/runs/{id}/confirm-tube",
    tag = "runs",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Run id")),
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
    state
        .ops
        .confirm_tube(&caller.requester(), RunId(id))
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/v1/runs/{id}/cancel` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRun {
    /// Why (kept in the audit trail).
    #[schema(schema_with = super::input_schemas::cancel_reason)]
    pub reason: String,
}

/// `POST /api/v1/runs/{id}/cancel`: 202 with the state the run is (or will be) in.
#[utoipa::path(
    post,
    path = "/runs/{id}/cancel",
    tag = "runs",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Run id")),
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
    let reason = CancelReason::parse(&body.reason)?;
    let next = state
        .ops
        .cancel_run(&caller.requester(), RunId(id), &reason)
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

/// `GET /api/v1/runs/{id}/events`: the run's stored history (every event the engine published
/// about it so far, so a view opened late or reconnecting misses nothing), its current state, then
/// its events as they happen, until the engine is done with it. Each SSE event is named after the
/// event's `event` tag, carries the event as JSON and, when stored, its number as the event id; a
/// reconnecting client's `Last-Event-ID` replays only what came after it.
#[utoipa::path(
    get,
    path = "/runs/{id}/events",
    tag = "runs",
    security(("session_cookie" = []), ("bearer" = [])),
    params(
        ("id" = String, Path, description = "Run id"),
        ("Last-Event-ID" = Option<i64>, Header, nullable = false, minimum = 0, description = "The id of the last event received: the history is replayed from after it (browsers send it when they reconnect)")
    ),
    responses((
        status = 200,
        description = "Server-sent events (text, not one JSON document): the run's stored history, its current state, then its events until the engine is done with it. Each event is named after its `event` key; its `data:` line is one `RunEvent` (see the components) as JSON; a stored event's `id:` line is its number.",
        body = String,
        content_type = "text/event-stream"
    ))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Permission::ViewRuns)?;
    let after = match headers.get("last-event-id") {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .filter(|number| *number >= 0)
            .ok_or_else(|| {
                ApiError::invalid(
                    "Last-Event-ID",
                    "must be the number of an event this stream sent (a whole number, 0 or more)",
                )
            })?,
    };
    // Subscribe before reading the history and the state: an event stored after the read
    // arrives live; one both read and received (stored first, published after) is sent once.
    let receiver = state.engine.subscribe();
    let requester = caller.requester();
    let run = state.ops.run(&requester, RunId(id)).await?;
    let history = state.ops.run_history(&requester, run.id, after).await?;
    let replayed_up_to = history.last().map_or(after, |event| event.id);
    let current = RunEvent {
        run_id: Some(run.id),
        at: run.updated_at.to_rfc3339(),
        seq: None,
        kind: EventKind::State {
            state: run.state,
            cause: run.failure_cause.clone(),
        },
    };
    let finished = settled(run.state);
    // After the current state, the run's own events not yet replayed, until one settles it; the
    // stream then ends.
    let live = stream::unfold(
        (receiver, finished),
        move |(mut receiver, finished)| async move {
            if finished {
                return None;
            }
            loop {
                match receiver.recv().await {
                    Ok(event) if event.run_id == Some(RunId(id)) => {
                        if event.seq.is_some_and(|seq| seq <= replayed_up_to) {
                            continue;
                        }
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
    let replay = stream::iter(history.into_iter().map(|stored| {
        Ok(Event::default()
            .id(stored.id.to_string())
            .event(stored.event)
            .data(stored.data))
    }));
    let stream = replay.chain(
        stream::once(async move { current })
            .chain(live)
            .map(|event| Ok(sse_event(&event))),
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn sse_event(event: &RunEvent) -> Event {
    let named = Event::default().event(event.kind.name());
    let named = match event.seq {
        Some(seq) => named.id(seq.to_string()),
        None => named,
    };
    named
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
    pub state: RunState,
    /// Signed result version.
    pub result_id: i64,
    /// Printed name.
    pub printed_name: String,
    /// `release` or `review`.
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
    params(("id" = String, Path, description = "Run id")),
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
    let after = state.ops.run(&caller.requester(), RunId(id)).await?.state;
    Ok((
        StatusCode::OK,
        Json(SignatureView {
            run_id: id,
            state: after,
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
    params(("id" = String, Path, description = "Run id")),
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
    let blood_ml = body.blood_ml.map(|ml| ml.to_string());
    let order = CorrectionOrder::parse(
        blood_ml.as_deref(),
        body.indication.as_deref(),
        &body.reason,
    )?;
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
    let after = state.ops.run(&caller.requester(), RunId(id)).await?.state;
    Ok((
        StatusCode::CREATED,
        Json(CorrectionView {
            run_id: id,
            state: after,
            version: version.version,
            reason: version.reason.unwrap_or_default(),
            per_7_5ml: version.summary.per_7_5ml,
        }),
    ))
}
