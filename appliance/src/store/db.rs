//! Opening the database: connection options, the pool, migrations, transactions, backups.
//!
//! The options are chosen for an instrument that may lose power at any moment: WAL journal,
//! `synchronous=FULL` (a commit is on disk before it returns), foreign keys enforced, a busy
//! timeout so that the web face and the acquisition engine wait for each other instead of failing,
//! a pool of a few readers (SQLite has one writer however many connections there are) and a
//! page cache per connection a little larger than SQLite's default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::error::{SqlxResultExt, StoreError};

/// The database file's name inside the data directory.
pub const DATABASE_FILE: &str = "ferrocount.db";

/// How long a connection waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool. SQLite has one writer however many connections there are (writers
/// queue on `BEGIN IMMEDIATE`), but in WAL mode readers do not wait for each other or for the
/// writer: with 4 connections, 16 concurrent trend requests queued for a connection and the
/// trend's p99 was 24–38 ms at 100,000 runs with runs in flight; with 8 it is 17.7–19.3 ms at
/// ~2,100 requests/s (issue 16; `web-ui/examples/trend_load.rs`).
pub const MAX_CONNECTIONS: u32 = 8;

/// The connection options every appliance connection uses.
pub fn connect_options(database_file: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(database_file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        // Each connection keeps up to CACHE_KIB of pages in its own cache (SQLite's default is
        // 2 MiB): a page read again is not copied out of the kernel's page cache again.
        .pragma("cache_size", format!("-{CACHE_KIB}"))
}

/// Page cache per connection, KiB (at most [`MAX_CONNECTIONS`] of them; filled only as pages are
/// read: the load test's process stayed at 35 MB resident). The dashboard's p50 at 100,000 runs
/// went from 72 to 42 ms with it.
pub const CACHE_KIB: u32 = 16 * 1024;

/// Opens (creating if needed) the database file and applies pending migrations.
pub async fn open_file(database_file: &Path) -> Result<SqlitePool, StoreError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        // sqlx pings an idle connection before lending it by default: one more round trip to
        // the connection's worker thread per query (and it pings again when the connection
        // comes back). A connection to a local SQLite file cannot go stale the way a network
        // connection can, so the first ping buys nothing (issue 16: work per request).
        .test_before_acquire(false)
        .connect_with(connect_options(database_file))
        .await
        .map_err(|source| StoreError::Open {
            path: database_file.to_path_buf(),
            source,
        })?;
    migrate(&pool).await?;
    Ok(pool)
}

/// The database file inside a data directory, creating the directory if needed.
pub fn database_file_in(data_dir: &Path) -> Result<PathBuf, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    Ok(data_dir.join(DATABASE_FILE))
}

/// Applies the migrations in the repository's `migrations/` folder (embedded at build time).
pub async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::migrate!("../migrations").run(pool).await?;
    Ok(())
}

/// Takes a shared advisory lock (`flock`) on the database file for as long as the returned file
/// is open. Every [`super::Store`] opened on a file holds one; a restore takes the exclusive lock
/// ([`lock_exclusive`]) before it replaces the file, so it cannot pull a database from under a
/// running appliance, and nobody can open one while it is being replaced. (SQLite's own locks are
/// POSIX record locks, which `flock` does not touch.)
pub fn lock_shared(database_file: &Path) -> Result<std::fs::File, StoreError> {
    let file = std::fs::File::open(database_file).map_err(|source| StoreError::DataDir {
        path: database_file.to_path_buf(),
        source,
    })?;
    if flock(&file, libc::LOCK_SH | libc::LOCK_NB) {
        Ok(file)
    } else {
        Err(StoreError::Locked {
            path: database_file.to_path_buf(),
        })
    }
}

/// Takes the exclusive advisory lock on the database file, or `None` when any process (the
/// appliance, a command) has it open.
pub fn lock_exclusive(database_file: &Path) -> std::io::Result<Option<std::fs::File>> {
    let file = std::fs::File::open(database_file)?;
    Ok(flock(&file, libc::LOCK_EX | libc::LOCK_NB).then_some(file))
}

/// `flock(2)` without blocking; whether the lock was taken.
fn flock(file: &std::fs::File, operation: libc::c_int) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: `file` is open for the duration of the call; flock only reads the descriptor.
    unsafe { libc::flock(file.as_raw_fd(), operation) == 0 }
}

/// Starts a write transaction that takes the write lock at once (`BEGIN IMMEDIATE`).
///
/// A deferred transaction that reads and then writes can fail with `SQLITE_BUSY_SNAPSHOT` when
/// another connection wrote in between, which the busy timeout does not retry; taking the lock up
/// front makes writers queue instead, and it keeps the audit chain's read-last-then-append atomic.
pub(crate) async fn begin_write(
    pool: &SqlitePool,
) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .context("starting a write transaction")
}

/// Writes a consistent copy of the database to `target` with `VACUUM INTO`, which reads one
/// snapshot, so writers may go on meanwhile. Refuses to overwrite an existing file.
pub async fn backup_into(pool: &SqlitePool, target: &Path) -> Result<(), StoreError> {
    if target.exists() {
        return Err(StoreError::Backup {
            path: target.to_path_buf(),
            reason: "the file exists already".into(),
        });
    }
    let Some(target_text) = target.to_str() else {
        return Err(StoreError::Backup {
            path: target.to_path_buf(),
            reason: "the path is not valid UTF-8".into(),
        });
    };
    sqlx::query("VACUUM INTO ?")
        .bind(target_text)
        .execute(pool)
        .await
        .map_err(|source| StoreError::Backup {
            path: target.to_path_buf(),
            reason: source.to_string(),
        })?;
    Ok(())
}

/// Opens a database file read-only (no migration, no journal change) and runs
/// `PRAGMA integrity_check` on it: for checking a backup without touching it.
pub async fn check_file_integrity(database_file: &Path) -> Result<Vec<String>, StoreError> {
    if !database_file.is_file() {
        return Err(StoreError::Open {
            path: database_file.to_path_buf(),
            source: sqlx::Error::Configuration("no such file".into()),
        });
    }
    let options = SqliteConnectOptions::new()
        .filename(database_file)
        .read_only(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Open {
            path: database_file.to_path_buf(),
            source,
        })?;
    let answer = integrity_check(&pool).await;
    pool.close().await;
    answer
}

/// Runs `PRAGMA integrity_check`; an intact database answers exactly `["ok"]`.
pub async fn integrity_check(pool: &SqlitePool) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar::<_, String>("PRAGMA integrity_check")
        .fetch_all(pool)
        .await
        .context("checking database integrity")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Actor, AuditEntry, Store};

    #[tokio::test]
    async fn an_appliance_database_is_durable_and_backs_up_consistently() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).await.unwrap();
        let pool = store.pool();
        assert!(
            !pool.options().get_test_before_acquire(),
            "no ping before each query: a local file does not go stale"
        );
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, 2, "synchronous=FULL");
        assert_eq!(foreign_keys, 1);
        for i in 0..3 {
            store
                .record_event(
                    &Actor::Appliance,
                    AuditEntry::new("test.event", "thing").id(i),
                )
                .await
                .unwrap();
        }
        let target = dir.path().join("copy.db");
        backup_into(store.pool(), &target).await.unwrap();
        let again = backup_into(store.pool(), &target).await;
        assert!(matches!(again, Err(StoreError::Backup { .. })), "{again:?}");
        store.close().await;

        let copy = Store::open_file(&target).await.unwrap();
        assert_eq!(copy.integrity_check().await.unwrap(), ["ok"]);
        // The copy holds the three events.
        assert!(matches!(
            copy.verify_audit_chain().await.unwrap(),
            crate::store::AuditVerification::Intact { rows: 3, .. }
        ));
        // Reopening applies no migration twice.
        let reopened = Store::open(&dir.path().join("data")).await.unwrap();
        assert!(matches!(
            reopened.verify_audit_chain().await.unwrap(),
            crate::store::AuditVerification::Intact { rows: 3, .. }
        ));
    }
}
