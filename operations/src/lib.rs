//! Ferrocount's operations layer: the boundary every front end uses.
//!
//! One function per thing the appliance does for a person, taking who asks (a [`Requester`]: a
//! signed-in [`User`](appliance::store::users::User) in their role, or the appliance's console)
//! and typed input parsed once, returning typed outcomes or one [`OperationError`] whose variants
//! the front ends map to 403, 404, 409, 422, an error page or an exit code. Every clinical rule is
//! enforced here, in exactly one function (`ARCHITECTURE.md` has the table: rule → function →
//! test); the pages, the JSON API and the command line only parse their input and translate the
//! outcome.
//!
//! - [`permission`]: who may do what (the one table; `docs/roles.md` shows it); [`requester`]:
//!   who asks.
//! - [`patients`]: the patient list (search, paged), find or register a patient; view one, and
//!   their trend and its markers (each view audited).
//! - [`worklist`]: the results awaiting release, a page at a time.
//! - [`runs`]: start a run from a [`RunOrder`](runs::RunOrder) parsed once, confirm a tube,
//!   cancel, view a run (audited; the T2 distributions it shows were computed when measured).
//! - [`results`]: release a result, correct a released one (a new version with a reason).
//! - [`reported`]: what a result says when shown or printed: its status (PRELIMINARY, FINAL,
//!   CORRECTED), its honest call (`indeterminate` when the interval contains the cut-off) and its
//!   count as whole cells that never round across the cut-off.
//! - [`signature`]: an electronic signature's checks (password re-entry, throttle, printed name).
//! - [`qc`]: record a control value, judged by the Westgard rules; today's QC; the QC overview
//!   and the lab manager's review over a date range ([`qc_statistics`]: the range, each lot's
//!   observed mean, SD and CV).
//! - [`calibrations`]: import a calibration (one canonical format, checked for plausibility),
//!   activate one with a reason.
//! - [`users`]: add users, change roles, disable and enable them, passwords, API tokens (made for
//!   their holder, working for the token life, ended by a password change).
//! - [`outbox`]: deliver the durable outbox of messages to the hospital's systems (the retry rule,
//!   one sender per destination), a lab admin's view of it and resend of a parked message.
//! - [`hl7v2`]: an HL7 v2 destination: the ORU^R01 of a released result, sent over MLLP.
//! - [`fhir`]: a FHIR R4 destination (a transaction Bundle posted over HTTPS with a bearer
//!   token) and the read-only `/fhir` DiagnosticReports; [`released`]: what every message about a
//!   released result says, gathered once; [`hub_link`]: enrolment with the hub;
//!   [`https_client`]: the one HTTPS client both use towards other machines.
//! - [`account`]: a person's own account (changing their own password).
//! - [`audit`]: search the audit trail.
//! - [`setup`]: the set-up checklist of a fresh instrument (users, QC materials, QC targets, an
//!   approved calibration): which steps are still open.
//! - [`sessions`]: sign in (throttled, audited) and out, a lab admin's unlock of a throttled
//!   user name; [`throttle`]: failed password counts per user name and address together.
//!
//! Not here: HTTP, HTML, argument parsing (the front ends'), SQL (the store's), the science
//! (`nmr-core`'s), the board (the engine's).

pub mod account;
pub mod audit;
pub mod calibrations;
pub mod error;
pub mod fhir;
pub mod hl7v2;
pub mod https_client;
pub mod hub_link;
pub mod hub_sync;
pub mod outbox;
pub mod patients;
pub mod permission;
pub mod qc;
pub mod qc_gate;
pub mod qc_statistics;
pub mod released;
pub mod reported;
pub mod requester;
pub mod results;
pub mod runs;
pub mod sessions;
pub mod setup;
pub mod signature;
pub mod text_rule;
pub mod throttle;
pub mod users;
pub mod worklist;

use std::sync::Arc;

use appliance::engine::{EngineConfig, EngineError, EngineHandle};
use appliance::store::Store;

pub use error::OperationError;
pub use permission::{Permission, allows};
pub use requester::Requester;
pub use throttle::LoginThrottle;

/// The operations over one appliance: its store, its acquisition engine (when it runs one), the
/// measurement settings its engine counts with (indication cut-offs, QC limits: a recount uses
/// the same), and the password throttle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Operations {
    /// The database.
    pub store: Store,
    /// The engine's settings (from the one wiring point).
    pub settings: Arc<EngineConfig>,
    /// Failed password counts (sign-in and signatures share them).
    pub throttle: Arc<LoginThrottle>,
    /// The acquisition engine, for the operations that measure (none for a command that only
    /// reads or corrects stored records).
    engine: Option<EngineHandle>,
    /// How long an API token works after it is made ([`Operations::with_token_life_days`]).
    token_life: time::Duration,
}

impl Operations {
    /// Operations over a store, without an engine: the operations that start, confirm or cancel
    /// runs refuse (`Engine(Stopped)`).
    pub fn new(store: Store, settings: EngineConfig, throttle: LoginThrottle) -> Self {
        Self {
            store,
            settings: Arc::new(settings),
            throttle: Arc::new(throttle),
            engine: None,
            token_life: default_token_life(),
        }
    }

    /// Operations over a running appliance: its store, its engine and the engine's settings.
    pub fn with_engine(store: Store, engine: EngineHandle, throttle: LoginThrottle) -> Self {
        Self {
            settings: Arc::new(engine.config().clone()),
            store,
            throttle: Arc::new(throttle),
            engine: Some(engine),
            token_life: default_token_life(),
        }
    }

    /// The same operations with API tokens working `days` after they are made (at least 1).
    pub fn with_token_life_days(mut self, days: u32) -> Self {
        self.token_life = time::Duration::days(i64::from(days.max(1)));
        self
    }

    /// The engine, or the refusal of an operation that needs one.
    fn engine(&self) -> Result<&EngineHandle, OperationError> {
        self.engine
            .as_ref()
            .ok_or(OperationError::Engine(EngineError::Stopped))
    }

    /// Whether the appliance measures on its simulated board (a command without an engine: no).
    pub fn is_simulated(&self) -> bool {
        self.engine.as_ref().is_some_and(EngineHandle::is_simulated)
    }
}

/// The token life unless the configuration says otherwise.
fn default_token_life() -> time::Duration {
    time::Duration::days(i64::from(users::DEFAULT_TOKEN_LIFE_DAYS))
}
