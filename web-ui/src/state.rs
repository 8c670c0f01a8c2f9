//! The state every handler shares: the operations layer (with the store and the password
//! throttle), the engine, and the web settings. Cheap to clone.

use std::sync::Arc;
use std::time::Duration;

use appliance::config::HttpConfig;
use appliance::engine::EngineHandle;
use appliance::store::Store;

use operations::Operations;

use crate::throttle::LoginThrottle;

/// Shared by all handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The acquisition engine.
    pub engine: EngineHandle,
    /// Web settings.
    pub http: Arc<HttpConfig>,
    /// Failed sign-in counts (the operations layer's, shared with signatures).
    pub throttle: Arc<LoginThrottle>,
    /// The operations layer: every clinical rule, once.
    pub ops: Operations,
}

impl AppState {
    /// State over these parts.
    pub fn new(store: Store, engine: EngineHandle, http: HttpConfig) -> Self {
        let throttle = LoginThrottle::new(
            Duration::from_secs(u64::from(http.login_throttle_minutes) * 60),
            http.max_failed_logins_per_user,
            http.max_failed_logins_per_address,
        );
        let ops = Operations::with_engine(store.clone(), engine.clone(), throttle);
        Self {
            store,
            engine,
            http: Arc::new(http),
            throttle: ops.throttle.clone(),
            ops,
        }
    }

    /// Inactivity after which a session ends.
    pub fn session_idle(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.http.session_idle_minutes.max(1)))
    }

    /// Whether the web face is served over TLS (cookies are then `Secure`).
    pub fn tls(&self) -> bool {
        self.http.tls.is_some()
    }
}
