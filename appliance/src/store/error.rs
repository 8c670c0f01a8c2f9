//! The one error type of the store, and the mapping from `sqlx` errors to it.
//!
//! Every variant says what was being done and what was wrong, so that a message in a log or on a
//! screen can be acted on without reading the code.

use std::path::PathBuf;

/// What went wrong in a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open the database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        source: sqlx::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Applying the schema migrations failed.
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed for a reason other than the ones below.
    #[error("database error while {context}: {source}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The underlying error.
        source: sqlx::Error,
    },
    /// A referenced row does not exist.
    #[error("{entity} {key} not found")]
    NotFound {
        /// The kind of row, e.g. "user".
        entity: &'static str,
        /// The id or name that was looked up.
        key: String,
    },
    /// A row with the same unique key exists already.
    #[error("{entity} {key} already exists")]
    Duplicate {
        /// The kind of row, e.g. "patient".
        entity: &'static str,
        /// The key that collided.
        key: String,
    },
    /// An input value was refused before anything was written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field that was wrong.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The operation is not allowed in the current state of the record.
    #[error("{0}")]
    Conflict(String),
    /// The acting user may not do this.
    #[error("not permitted: {0}")]
    NotPermitted(String),
    /// A stored value could not be read back (a damaged or hand-edited database).
    #[error("stored {what} in row {row} is unreadable: {reason}")]
    Corrupt {
        /// The column or record.
        what: &'static str,
        /// The row id.
        row: i64,
        /// What was wrong.
        reason: String,
    },
    /// Password hashing or verification failed for a reason other than a wrong password.
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(String),
    /// Another process holds the database in a way that forbids opening it now (a restore is
    /// replacing it).
    #[error("the database {path} is being replaced by a restore; try again when it has finished")]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// A view's audit row could not be made durable (its group commit failed), so the view must
    /// not be answered.
    #[error("the view was not recorded in the audit trail, so it is not shown: {0}")]
    ViewNotAudited(String),
    /// A backup target exists already or cannot be written.
    #[error("backup to {path} refused: {reason}")]
    Backup {
        /// The target file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Adds context to `sqlx` errors, recognising constraint violations.
pub(crate) trait SqlxResultExt<T> {
    /// Maps any error to [`StoreError::Database`] naming `context`.
    fn context(self, context: &'static str) -> Result<T, StoreError>;
    /// Like [`context`](Self::context), but a UNIQUE violation becomes [`StoreError::Duplicate`].
    fn unique(
        self,
        context: &'static str,
        entity: &'static str,
        key: &str,
    ) -> Result<T, StoreError>;
}

impl<T> SqlxResultExt<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { context, source })
    }

    fn unique(
        self,
        context: &'static str,
        entity: &'static str,
        key: &str,
    ) -> Result<T, StoreError> {
        self.map_err(|source| match &source {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate {
                entity,
                key: key.to_owned(),
            },
            _ => StoreError::Database { context, source },
        })
    }
}

/// Turns a missing row into [`StoreError::NotFound`].
pub(crate) fn found<T>(
    row: Option<T>,
    entity: &'static str,
    key: impl ToString,
) -> Result<T, StoreError> {
    row.ok_or_else(|| StoreError::NotFound {
        entity,
        key: key.to_string(),
    })
}
