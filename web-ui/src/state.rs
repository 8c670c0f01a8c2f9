//! The state every handler shares: the operations layer (with the store and the password
//! throttle), the engine, and the web settings. Cheap to clone.

use std::sync::Arc;

use appliance::config::{BackupConfig, HttpConfig};
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
    /// Who the backup download is encrypted for.
    pub backup: Arc<BackupConfig>,
}

impl AppState {
    /// State over these parts.
    pub fn new(store: Store, engine: EngineHandle, http: HttpConfig) -> Self {
        let throttle = LoginThrottle::configured(&http);
        let ops = Operations::with_engine(store.clone(), engine.clone(), throttle)
            .with_token_life_days(http.token_life_days);
        Self {
            store,
            engine,
            http: Arc::new(http),
            throttle: ops.throttle.clone(),
            ops,
            backup: Arc::new(BackupConfig::default()),
        }
    }

    /// The same state with the backup settings (the lab's public keys) of the configuration.
    pub fn with_backup(mut self, backup: BackupConfig) -> Self {
        self.backup = Arc::new(backup);
        self
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
