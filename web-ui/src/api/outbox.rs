//! The outbox of messages to the hospital's systems, for lab admins (`ManageOutbox`): a page at a
//! time (`GET /api/v1/outbox`) and the resend of a parked message with a reason
//! (`POST /api/v1/outbox/{id}/resend`), both through `operations::outbox`, which asks for the
//! permission, audits the view and the resend, and refuses a resend that is not of a parked
//! message. The same operations as the outbox page.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use appliance::store::OutboxId;
use appliance::store::outbox::{OutboxEntry, OutboxFilter, OutboxState};
use operations::outbox::DEFAULT_OUTBOX_PAGE;

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStateView {
    /// To be sent (again).
    Pending,
    /// Acknowledged by the destination: final.
    Delivered,
    /// Refused by the destination or never acknowledged within the retries: waits for a resend.
    Parked,
}

impl From<OutboxStateView> for OutboxState {
    fn from(state: OutboxStateView) -> Self {
        match state {
            OutboxStateView::Pending => Self::Pending,
            OutboxStateView::Delivered => Self::Delivered,
            OutboxStateView::Parked => Self::Parked,
        }
    }
}

impl From<OutboxState> for OutboxStateView {
    fn from(state: OutboxState) -> Self {
        match state {
            OutboxState::Pending => Self::Pending,
            OutboxState::Delivered => Self::Delivered,
            OutboxState::Parked => Self::Parked,
        }
    }
}

/// `GET /api/v1/outbox` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// Only this destination's messages (its name in the configuration).
    pub destination: Option<String>,
    /// Only messages in this state.
    pub state: Option<OutboxStateView>,
    /// The message the page starts below: the `next_before` of the page before (absent: the
    /// newest).
    #[param(schema_with = super::input_schemas::path_id)]
    pub before: Option<String>,
    /// At most this many on the page.
    #[param(schema_with = super::input_schemas::outbox_limit)]
    pub limit: Option<u32>,
}

/// One outgoing message.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxMessageView {
    /// The message's id.
    pub id: i64,
    /// Its control id (MSH-10 for HL7 v2), the same on every attempt.
    pub control_id: String,
    /// The destination's name.
    pub destination: String,
    /// `hl7v2` or `fhir`.
    pub format: String,
    /// Where it stands.
    pub state: OutboxStateView,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the next attempt is due, RFC 3339 (pending messages only).
    pub next_attempt_at: Option<String>,
    /// What the last attempt came to (for a delivered message: the acknowledgement).
    pub last_outcome: Option<String>,
    /// Why it is parked (the destination's answer, or the retries spent).
    pub parked_reason: Option<String>,
    /// When the release wrote it, RFC 3339.
    pub created_at: String,
    /// When the destination acknowledged it, RFC 3339.
    pub delivered_at: Option<String>,
    /// The run whose result it carries.
    pub run_id: i64,
    /// The result version it carries (above 1: a correction).
    pub result_version: u32,
    /// The patient's MRN.
    pub mrn: String,
    /// The specimen's accession number.
    pub accession: String,
}

impl From<OutboxEntry> for OutboxMessageView {
    fn from(entry: OutboxEntry) -> Self {
        let message = entry.message;
        let next_attempt_at = message.next_attempt_at().map(|t| t.to_rfc3339());
        Self {
            id: message.id.0,
            control_id: message.control_id(),
            destination: message.destination,
            format: message.format.as_str().to_owned(),
            state: message.state.into(),
            attempts: message.attempts,
            next_attempt_at,
            last_outcome: message.last_outcome,
            parked_reason: message.parked_reason,
            created_at: message.created_at.to_rfc3339(),
            delivered_at: message.delivered_at.map(|t| t.to_rfc3339()),
            run_id: message.run_id.0,
            result_version: entry.version,
            mrn: entry.mrn.as_str().to_owned(),
            accession: entry.accession.as_str().to_owned(),
        }
    }
}

/// One page of the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxPageView {
    /// The messages, newest first.
    pub messages: Vec<OutboxMessageView>,
    /// The id to pass as `before` for the next (older) page; null on the last page.
    pub next_before: Option<i64>,
}

/// `GET /api/v1/outbox`.
#[utoipa::path(
    get,
    path = "/outbox",
    tag = "outbox",
    security(("session_cookie" = []), ("bearer" = [])),
    params(OutboxQuery),
    responses((status = 200, description = "One page of the outbox, newest first (audited)", body = OutboxPageView))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<OutboxQuery>,
) -> Result<Json<OutboxPageView>, ApiError> {
    caller.require(Permission::ManageOutbox)?;
    let before = query
        .before
        .as_deref()
        .map(|text| PathId::parse(text).map(|PathId(id)| OutboxId(id)))
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                "before",
                "the message a page starts below is a message id (a positive whole number, \
                 written plainly)",
            )
        })?;
    let filter = OutboxFilter {
        destination: query.destination,
        state: query.state.map(OutboxState::from),
    };
    let page = state
        .ops
        .outbox(
            &caller.requester(),
            &filter,
            before,
            query.limit.unwrap_or(DEFAULT_OUTBOX_PAGE),
        )
        .await?;
    Ok(Json(OutboxPageView {
        messages: page
            .entries
            .into_iter()
            .map(OutboxMessageView::from)
            .collect(),
        next_before: page.next_before.map(|id| id.0),
    }))
}

/// `POST /api/v1/outbox/{id}/resend` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendMessage {
    /// What was fixed (kept in the audit trail).
    #[schema(schema_with = super::input_schemas::resend_reason)]
    pub reason: String,
}

/// `POST /api/v1/outbox/{id}/resend`: the message, pending again with its control id.
#[utoipa::path(
    post,
    path = "/outbox/{id}/resend",
    tag = "outbox",
    security(("session_cookie" = [], "csrf_header" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Outbox message id")),
    request_body = ResendMessage,
    responses(
        (status = 200, description = "Pending again, due at once, with the same control id (audited with the reason)", body = OutboxMessageView),
        (status = 409, description = "Only a parked message can be resent", body = super::openapi::ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<ResendMessage>,
) -> Result<Json<OutboxMessageView>, ApiError> {
    caller.require(Permission::ManageOutbox)?;
    let entry = state
        .ops
        .resend_message(&caller.requester(), OutboxId(id), &body.reason)
        .await?;
    Ok(Json(entry.into()))
}
