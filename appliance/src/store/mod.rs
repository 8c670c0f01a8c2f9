//! Storage: everything the appliance keeps, in one SQLite file, behind typed async functions.
//!
//! What it is for: users and their sessions and tokens; patients (a medical record number and no
//! more); samples and their tubes; runs and their states; measurements with the raw echo train
//! (compressed, lossless), acquisition metadata, fit report and QC flags; versioned results and
//! their electronic signatures; calibrations; QC materials, lots, targets and results; the
//! instrument log; and the hash-chained, append-only audit trail.
//!
//! What it is not for: deciding anything. It does not fit, count, judge QC or drive the board; it
//! stores what `nmr-core` and the procedures report (as JSON text where their types live
//! elsewhere) and hands it back. The web face sees the domain types here, never `sqlx` rows.
//!
//! Rules it keeps:
//! - every change that matters writes an audit entry (who, what, when, why) in the same
//!   transaction ([`audit`]); every view of patient data writes one before it is answered, in a
//!   group commit shared with concurrent views ([`view_audit`]);
//! - raw measurements, result versions, signatures, QC results and the audit trail are never
//!   updated or deleted (SQLite triggers refuse it); a correction is a new result version with a
//!   reason;
//! - all times are RFC 3339 UTC text ([`Timestamp`]);
//! - queries are checked at compile time against the migrations (`.sqlx/` holds the offline
//!   cache).
//!
//! Each table group has its own module, each adding methods to [`Store`].

pub mod audit;
pub mod calibrations;
pub mod db;
pub(crate) mod digest;
mod error;
pub mod example_report;
pub mod export;
pub mod hub_sync;
mod ids;
pub mod instrument_log;
mod json_report;
pub mod measurements;
pub mod outbox;
pub mod patient_events;
pub mod patients;
pub mod qc;
pub mod qc_basis;
pub mod qc_corrective;
pub mod results;
pub mod run_events;
pub mod run_list;
pub mod runs;
pub mod samples;
#[cfg(test)]
pub(crate) mod test_fixtures;
pub mod text_pattern;
mod timestamp;
pub mod train_codec;
pub mod users;
pub mod view_audit;
pub mod worklist;

use std::path::Path;

use sqlx::SqlitePool;

pub use audit::{Actor, AuditEntry, AuditVerification, ChainBreak};
pub use digest::random_hex;
pub use error::StoreError;
pub use ids::*;
pub use json_report::JsonReport;
pub use timestamp::Timestamp;

/// The appliance's database: a small pool over one SQLite file.
///
/// Cheap to clone (the pool is reference-counted); every method is one transaction.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// The shared advisory lock on the database file ([`db::lock_shared`]) while any clone lives.
    _lock: Option<std::sync::Arc<std::fs::File>>,
    /// Where a release sends its messages ([`Store::with_outbox`]): none unless configured.
    outbox: std::sync::Arc<[outbox::OutboxTarget]>,
    /// The group commit of views' audit rows ([`view_audit`]), one queue for all clones.
    views: std::sync::Arc<view_audit::ViewCommits>,
}

impl Store {
    /// Opens `DATA_DIR/ferrocount.db`, creating the directory and the file when missing, and
    /// applies pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let file = db::database_file_in(data_dir)?;
        Self::open_file(&file).await
    }

    /// Opens a database file directly, applying pending migrations, and holds the shared lock on
    /// it (a restore in progress refuses the open).
    pub async fn open_file(database_file: &Path) -> Result<Self, StoreError> {
        // Locked before the first connection when the file exists, so not even the migrations
        // touch a file a restore is replacing; a new file is locked once SQLite has created it.
        let early = if database_file.exists() {
            Some(db::lock_shared(database_file)?)
        } else {
            None
        };
        let pool = db::open_file(database_file).await?;
        let lock = match early.map_or_else(|| db::lock_shared(database_file), Ok) {
            Ok(lock) => lock,
            Err(error) => {
                pool.close().await;
                return Err(error);
            }
        };
        Ok(Self {
            pool,
            _lock: Some(std::sync::Arc::new(lock)),
            outbox: std::sync::Arc::new([]),
            views: std::sync::Arc::default(),
        })
    }

    /// Wraps a pool that is already migrated (tests get one from `#[sqlx::test]`).
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            pool,
            _lock: None,
            outbox: std::sync::Arc::new([]),
            views: std::sync::Arc::default(),
        }
    }

    /// This store with every release writing one outbox message per target, in the release's
    /// own transaction (issue 14's durable outbox). Set once at the wiring point, before the
    /// store is shared.
    #[must_use]
    pub fn with_outbox(mut self, targets: Vec<outbox::OutboxTarget>) -> Self {
        self.outbox = targets.into();
        self
    }

    /// The outbox targets a release writes messages for.
    pub fn outbox_targets(&self) -> &[outbox::OutboxTarget] {
        &self.outbox
    }

    /// The underlying pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// `PRAGMA integrity_check`: `["ok"]` when the file is sound.
    pub async fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        db::integrity_check(&self.pool).await
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
