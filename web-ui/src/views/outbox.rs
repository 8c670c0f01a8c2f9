//! The outbox page for lab admins: the messages to the hospital's systems, per destination and
//! state, newest first, a bounded page at a time, with a resend form on each parked message.

use askama::Template;
use askama_web::WebTemplate;

use super::layout::Layout;
use super::paths;

/// A link that narrows the list (a destination, a state), marked when it is the current one.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxFilterLink {
    /// What it says.
    pub label: String,
    /// Where it goes.
    pub href: String,
    /// Whether the list is narrowed to it now.
    pub current: bool,
}

/// One message.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// Message id.
    pub id: i64,
    /// Its control id (the same on every attempt).
    pub control_id: String,
    /// The destination's name.
    pub destination: String,
    /// `pending`, `delivered` or `parked`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When it was written (the release), readable.
    pub created_at: String,
    /// Pending: when the next attempt is due, readable.
    pub next_attempt: Option<String>,
    /// Delivered: when, readable.
    pub delivered_at: Option<String>,
    /// What the last attempt came to (delivered: the acknowledgement).
    pub last_outcome: Option<String>,
    /// Parked: why (the receiver's answer, or the retries spent).
    pub parked_reason: Option<String>,
    /// The patient's MRN.
    pub mrn: String,
    /// The specimen's accession number.
    pub accession: String,
    /// The run whose result it carries.
    pub run_id: i64,
    /// The result version (above 1: a correction).
    pub version: u32,
}

impl OutboxRow {
    /// The run's report.
    pub fn run_href(&self) -> String {
        paths::run(self.run_id)
    }

    /// The resend form's target (parked messages only).
    pub fn resend_href(&self) -> Option<String> {
        (self.state == "parked").then(|| paths::outbox_resend(self.id))
    }

    /// What the version is, in words.
    pub fn version_words(&self) -> String {
        if self.version > 1 {
            format!("version {} (correction)", self.version)
        } else {
            "version 1".to_owned()
        }
    }
}

/// The outbox (`GET /outbox`).
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "outbox.html")]
pub struct OutboxPage {
    /// Frame.
    pub layout: Layout,
    /// Every destination (and "all"), to narrow the list.
    pub destinations: Vec<OutboxFilterLink>,
    /// Every state (and "all"), to narrow the list.
    pub states: Vec<OutboxFilterLink>,
    /// The messages of this page, newest first.
    pub rows: Vec<OutboxRow>,
    /// A refused resend, in words (the page is shown again with it).
    pub form_error: Option<String>,
    /// The next (older) page, when there is one.
    pub next_href: Option<String>,
    /// The first page, when this is not it.
    pub first_href: Option<String>,
}
