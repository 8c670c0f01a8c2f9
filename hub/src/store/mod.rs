//! The hub's PostgreSQL store: every database access of the hub goes through [`HubStore`].
//!
//! - [`audit`]: the hub's audit trail, hash-chained by the appliance's rule;
//! - [`fleet`]: enrolment codes, appliances, their credentials and revocation;
//! - [`ingest`]: the sync messages, stored once each, in order, as sent;
//! - [`people`]: the hub's own users, their roles and browser sessions.
//!
//! Times the hub makes are `TIMESTAMPTZ`; times an appliance sent are kept as the RFC 3339 text
//! it sent (bit for bit). Queries are checked at compile time against `hub/migrations/` (the
//! macros read `HUB_DATABASE_URL`, `hub/sqlx.toml`; offline from `.sqlx/`).

pub mod audit;
pub mod fleet;
pub mod ingest;
pub mod people;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// What went wrong in the hub's store.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The database refused or failed.
    #[error("{context}: {source}")]
    Database {
        /// What the hub was doing.
        context: &'static str,
        /// The database's error.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("migrating the hub's database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A password could not be hashed.
    #[error("password hash: {0}")]
    PasswordHash(String),
    /// The operating system's random source failed.
    #[error("no random bytes from the operating system: {0}")]
    Random(String),
    /// An input a person or an appliance gave is not acceptable; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// The database URL names another machine without a verified TLS link.
    #[error(
        "the hub's database at {host} is another machine: the link must be TLS with the server's \
         certificate checked; add sslmode=verify-full (and sslrootcert=FILE for the hospital's CA) \
         to the database URL"
    )]
    UnprotectedDatabaseLink {
        /// The server's host as the URL names it.
        host: String,
    },
    /// A stored value does not decode.
    #[error("stored {what} does not decode: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why.
        detail: String,
    },
}

/// The rule for the hub's link to its database: patient data leaves this machine only over TLS
/// with the server's certificate verified. A server on this machine (a Unix socket, `localhost`,
/// a loopback address) may be reached without TLS; any other needs `sslmode=verify-full` or
/// `verify-ca` (`require` encrypts but would talk to whoever answers, so it is refused too).
pub fn protected_database_link(options: &PgConnectOptions) -> Result<(), HubError> {
    use sqlx::postgres::PgSslMode;
    if options.get_socket().is_some() {
        return Ok(());
    }
    let host = options.get_host();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let on_this_machine = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || bare.starts_with('/');
    let verified = matches!(
        options.get_ssl_mode(),
        PgSslMode::VerifyFull | PgSslMode::VerifyCa
    );
    if on_this_machine || verified {
        Ok(())
    } else {
        Err(HubError::UnprotectedDatabaseLink {
            host: host.to_owned(),
        })
    }
}

/// Attaches what the hub was doing to a database error.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, HubError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, HubError> {
        self.map_err(|source| HubError::Database { context, source })
    }
}

/// The hub's database.
#[derive(Clone, Debug)]
pub struct HubStore {
    pool: PgPool,
}

impl HubStore {
    /// Connects to `database_url` (`postgres://…`) and applies the hub's migrations. A server on
    /// another machine must be reached over TLS with its certificate verified
    /// ([`protected_database_link`]).
    pub async fn connect(database_url: &str) -> Result<Self, HubError> {
        let options: PgConnectOptions = database_url
            .parse()
            .context("reading the hub's database URL")?;
        protected_database_link(&options)?;
        Self::connect_with(options).await
    }

    /// Connects with `options` and applies the hub's migrations.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, HubError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await
            .context("connecting to the hub's database")?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations of `hub/migrations/` not applied yet.
    pub async fn migrate(&self) -> Result<(), HubError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// The connection pool (for tests that look at the tables themselves).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `N` random bytes from the operating system, as lowercase hex.
pub(crate) fn random_hex<const N: usize>() -> Result<String, HubError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|error| HubError::Random(error.to_string()))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The current time as RFC 3339 text, UTC.
pub(crate) fn now_text() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}
