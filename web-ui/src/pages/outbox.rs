//! The outbox page for lab admins (`GET /outbox[?destination=&state=&before=<id>]`): the messages
//! to the hospital's systems, newest first, a bounded page at a time, narrowed to a destination
//! and a state — pending (attempts, next try, last outcome), delivered (when, the
//! acknowledgement), parked (the receiver's reason) — and the resend of a parked message with a
//! reason (`POST /outbox/{id}/resend`). Both ask for `ManageOutbox` and call the operations of
//! their JSON twins (`operations::outbox`: the view and the resend are audited there).
//!
//! It shows what finds a message at the LIS (MRN, accession number, run, result version) and no
//! other patient data.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

use appliance::site::SiteTimeZone;
use appliance::store::OutboxId;
use appliance::store::outbox::{OutboxEntry, OutboxFilter, OutboxState};
use operations::OperationError;
use operations::outbox::DEFAULT_OUTBOX_PAGE;

use super::runs::readable;
use super::{PageError, PageForm, PageResult, PageUser};
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{Notice, OutboxFilterLink, OutboxPage, OutboxRow, paths};

/// The routes of this page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::OUTBOX, get(show))
        .route("/outbox/{id}/resend", post(resend))
}

/// `GET /outbox` query: the filter and where the page starts (absent, empty or unreadable: all,
/// the newest).
#[derive(Debug, Default, Deserialize)]
struct OutboxQuery {
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

impl OutboxQuery {
    fn filter(&self) -> OutboxFilter {
        OutboxFilter {
            destination: self
                .destination
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            state: self.state.as_deref().and_then(OutboxState::parse),
        }
    }

    fn before(&self) -> Option<OutboxId> {
        self.before
            .as_deref()
            .and_then(|text| text.parse::<i64>().ok())
            .filter(|id| *id > 0)
            .map(OutboxId)
    }
}

/// The page's address for a filter (and a page start).
fn href(filter: &OutboxFilter, before: Option<OutboxId>) -> String {
    let mut query = Vec::new();
    if let Some(destination) = &filter.destination {
        query.push(format!("destination={}", encode(destination)));
    }
    if let Some(state) = filter.state {
        query.push(format!("state={}", state.as_str()));
    }
    if let Some(before) = before {
        query.push(format!("before={}", before.0));
    }
    if query.is_empty() {
        paths::OUTBOX.to_owned()
    } else {
        format!("{}?{}", paths::OUTBOX, query.join("&"))
    }
}

/// A destination name as a query value (names are configuration text: anything but the
/// unreserved characters is percent-encoded).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn row(zone: &SiteTimeZone, entry: OutboxEntry) -> OutboxRow {
    let message = entry.message;
    OutboxRow {
        id: message.id.0,
        control_id: message.control_id(),
        destination: message.destination.clone(),
        state: message.state.as_str().to_owned(),
        attempts: message.attempts,
        created_at: readable(zone, &message.created_at),
        next_attempt: message.next_attempt_at().map(|at| readable(zone, &at)),
        delivered_at: message.delivered_at.as_ref().map(|at| readable(zone, at)),
        last_outcome: message.last_outcome,
        parked_reason: message.parked_reason,
        mrn: entry.mrn.as_str().to_owned(),
        accession: entry.accession.as_str().to_owned(),
        run_id: message.run_id.0,
        version: entry.version,
    }
}

/// The page for `query`, with `form_error` when a resend was refused.
async fn page(
    state: &AppState,
    user: &PageUser,
    query: &OutboxQuery,
    form_error: Option<String>,
) -> PageResult<OutboxPage> {
    let layout = user.layout(state, "Outbox", paths::OUTBOX);
    let filter = query.filter();
    let before = query.before();
    let listed = state
        .ops
        .outbox(&user.requester(), &filter, before, DEFAULT_OUTBOX_PAGE)
        .await
        .map_err(|e| PageError::from(e).within(layout.clone()))?;
    let mut names: Vec<String> = state
        .store
        .outbox_targets()
        .iter()
        .map(|target| target.name.clone())
        .collect();
    // A destination no longer configured still has its messages.
    if let Some(chosen) = &filter.destination
        && !names.contains(chosen)
    {
        names.push(chosen.clone());
    }
    let destinations = std::iter::once(None)
        .chain(names.into_iter().map(Some))
        .map(|name| OutboxFilterLink {
            label: name.clone().unwrap_or_else(|| "all".to_owned()),
            href: href(
                &OutboxFilter {
                    destination: name.clone(),
                    ..filter.clone()
                },
                None,
            ),
            current: filter.destination == name,
        })
        .collect();
    let states = [
        None,
        Some(OutboxState::Pending),
        Some(OutboxState::Parked),
        Some(OutboxState::Delivered),
    ]
    .into_iter()
    .map(|choice| OutboxFilterLink {
        label: choice.map_or("all", OutboxState::as_str).to_owned(),
        href: href(
            &OutboxFilter {
                state: choice,
                ..filter.clone()
            },
            None,
        ),
        current: filter.state == choice,
    })
    .collect();
    let zone = &state.ops.settings.site.time_zone;
    Ok(OutboxPage {
        layout,
        destinations,
        states,
        rows: listed
            .entries
            .into_iter()
            .map(|entry| row(zone, entry))
            .collect(),
        form_error,
        next_href: listed.next_before.map(|id| href(&filter, Some(id))),
        first_href: before.map(|_| href(&filter, None)),
    })
}

/// `GET /outbox`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<OutboxQuery>,
) -> PageResult {
    user.require(Permission::ManageOutbox)?;
    let mut page = page(&state, &user, &query, None).await?;
    if query.done.as_deref() == Some("resent") {
        page.layout.notice = Some(Notice {
            level: "success".into(),
            text: "Message resent: it is pending again, due now, with the same control id \
                   (audited with your reason)."
                .into(),
        });
    }
    Ok(page.into_response())
}

/// The resend form.
#[derive(Debug, Deserialize)]
struct ResendForm {
    #[serde(default)]
    reason: String,
}

/// `POST /outbox/{id}/resend`: a parked message pending again, with a reason.
async fn resend(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: PageForm<ResendForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageOutbox)?;
    let layout = user.layout(&state, "Outbox", paths::OUTBOX);
    let id = id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(OutboxId)
        .ok_or_else(|| {
            PageError::from(OperationError::invalid(
                "id",
                "an outbox message id is a positive whole number",
            ))
            .within(layout.clone())
        })?;
    match state
        .ops
        .resend_message(&user.requester(), id, &form.reason)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("{}?done=resent", paths::OUTBOX)).into_response()),
        Err(OperationError::Invalid { field, reason }) => {
            let text = format!("Nothing was resent. {field}: {reason}");
            let mut page = page(&state, &user, &OutboxQuery::default(), Some(text)).await?;
            page.layout.notice = Some(Notice {
                level: "error".into(),
                text: "Nothing was resent: say what was fixed.".into(),
            });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(other) => Err(PageError::from(other).within(layout)),
    }
}
