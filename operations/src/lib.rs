//! Ferrocount's operations layer: the boundary every front end uses.
//!
//! One function per thing the appliance does for a person, taking the typed person who asks (a
//! [`User`](appliance::store::users::User): who, and in which role) and typed input parsed once,
//! returning typed outcomes or one [`OperationError`] whose variants the front ends map to 403,
//! 404, 409, 422, an error page or an exit code. Every clinical rule is enforced here, in exactly
//! one function (`ARCHITECTURE.md` has the table: rule → function → test); the pages, the JSON API
//! and the command line only parse their input and translate the outcome.
//!
//! - [`permission`]: who may do what (the one table; `docs/roles.md` shows it).
//! - [`signature`]: an electronic signature's checks (password re-entry, throttle, printed name).
//! - [`results`]: release a result, correct a released one (a new version with a reason).
//! - [`qc`]: record a control value, judged by the Westgard rules.
//! - [`sessions`]: sign in (throttled, audited) and out.
//! - [`throttle`]: failed password counts per user and address (sign-in and signatures).
//!
//! Not here: HTTP, HTML, argument parsing (the front ends'), SQL (the store's), the science
//! (`nmr-core`'s), the board (the engine's).

pub mod error;
pub mod permission;
pub mod qc;
pub mod results;
pub mod sessions;
pub mod signature;
pub mod throttle;

use std::sync::Arc;

use appliance::engine::EngineConfig;
use appliance::store::Store;

pub use error::OperationError;
pub use permission::{Permission, allows};
pub use throttle::LoginThrottle;

/// The operations over one appliance: its store, the measurement settings its engine counts with
/// (indication cut-offs, QC limits: a recount uses the same), and the password throttle. Cheap to
/// clone. (The operations that drive the engine take its handle as it joins this layer.)
#[derive(Clone, Debug)]
pub struct Operations {
    /// The database.
    pub store: Store,
    /// The engine's settings (from the one wiring point).
    pub settings: Arc<EngineConfig>,
    /// Failed password counts (sign-in and signatures share them).
    pub throttle: Arc<LoginThrottle>,
}

impl Operations {
    /// Operations over these parts.
    pub fn new(store: Store, settings: EngineConfig, throttle: LoginThrottle) -> Self {
        Self {
            store,
            settings: Arc::new(settings),
            throttle: Arc::new(throttle),
        }
    }
}
