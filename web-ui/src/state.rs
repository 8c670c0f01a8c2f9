//! The state every handler shares: the store, the engine, the web settings and the sign-in
//! throttle. Cheap to clone.

use std::sync::Arc;
use std::time::Duration;

use appliance::config::{BackupConfig, HttpConfig};
use appliance::engine::EngineHandle;
use appliance::store::Store;

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
    /// Failed sign-in counts.
    pub throttle: Arc<LoginThrottle>,
    /// Who the backup download is encrypted for.
    pub backup: Arc<BackupConfig>,
}

impl AppState {
    /// State over these parts.
    pub fn new(store: Store, engine: EngineHandle, http: HttpConfig) -> Self {
        let throttle = LoginThrottle::new(
            Duration::from_secs(u64::from(http.login_throttle_minutes) * 60),
            http.max_failed_logins_per_user,
            http.max_failed_logins_per_address,
        );
        Self {
            store,
            engine,
            http: Arc::new(http),
            throttle: Arc::new(throttle),
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
