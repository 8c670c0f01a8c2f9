//! The hub's audit trail: append-only, each row chained to the one before by the appliance's
//! rule (`hub_protocol::audit_chain`), appended in the same transaction as the change it
//! records. Appenders take the table in SHARE ROW EXCLUSIVE mode, so reading the chain's head
//! and appending to it cannot interleave; readers are not held up. A trigger refuses UPDATE and
//! DELETE.
//!
//! Not for: the appliances' own trails (they stay on the appliances; the hub never changes
//! them), or application logging (`tracing`).

pub use hub_protocol::audit_chain::AuditEntry;
use hub_protocol::audit_chain::{ChainWalk, ChainedFields, GENESIS_HASH};
use sqlx::PgConnection;

use super::{Context, HubError, HubStore, now_text};

/// Rows read per query while verifying.
const VERIFY_PAGE: i64 = 5_000;

/// Who acted on the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubActor {
    /// Whoever runs a `ferrocount hub …` command on the hub's machine (holds its database URL).
    Console,
    /// The hub itself (start-up, enrolment over the network).
    Hub,
    /// An enrolled appliance, by the hub's id and its serial.
    Appliance {
        /// The hub's id for it.
        id: i64,
        /// Its serial number.
        serial: String,
    },
    /// One of the hub's people, signed in (or signing in).
    User {
        /// Their user id (also the row's `user_id`).
        id: i64,
        /// Their user name.
        username: String,
    },
}

impl HubActor {
    /// The text stored in `audit_log.actor`.
    pub fn label(&self) -> String {
        match self {
            Self::Console => "console".to_owned(),
            Self::Hub => "hub".to_owned(),
            Self::Appliance { id, serial } => format!("appliance:{id}:{serial}"),
            Self::User { username, .. } => format!("user:{username}"),
        }
    }

    /// The user id stored with the row: a person's, none for the console, the hub or an
    /// appliance.
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Self::User { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// A stored audit row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubAuditRecord {
    /// Position in the chain.
    pub id: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To which kind of record.
    pub entity: String,
    /// To which record.
    pub entity_id: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The detail's JSON text.
    pub detail_json: String,
}

/// The outcome of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubAuditVerification {
    /// Every row verifies.
    Intact {
        /// Rows checked.
        rows: u64,
        /// The last row's hash.
        head_hash: Option<String>,
    },
    /// The first row that does not, and why.
    Broken {
        /// Its id.
        row: i64,
        /// What is wrong.
        problem: String,
    },
}

/// Appends one entry inside the caller's transaction.
pub(crate) async fn append(
    conn: &mut PgConnection,
    actor: &HubActor,
    entry: &AuditEntry,
) -> Result<i64, HubError> {
    // A fixed statement without parameters or results: nothing for the query macros to check.
    sqlx::query("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *conn)
        .await
        .context("locking the audit chain's head")?;
    // Not the appliance's text for the same question: the offline cache names a query's data
    // by a hash of its text, and both crates' data share `.sqlx/`.
    let head =
        sqlx::query!("SELECT id, hash FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)")
            .fetch_optional(&mut *conn)
            .await
            .context("reading the audit chain's head")?;
    let (last_id, prev_hash) = match head {
        Some(row) => (row.id, row.hash),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let id = last_id + 1;
    let at = now_text();
    let actor_label = actor.label();
    let detail_json = entry.detail_json();
    let user_id = actor.user_id();
    let hash = entry
        .chained(id, &at, user_id, &actor_label, &detail_json, &prev_hash)
        .hash();
    sqlx::query!(
        "INSERT INTO audit_log
             (id, at, user_id, actor, action, entity, entity_id, reason, detail_json, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        id,
        at,
        user_id,
        actor_label,
        entry.action_text(),
        entry.entity_text(),
        entry.entity_id_text(),
        entry.reason_text(),
        detail_json,
        prev_hash,
        hash,
    )
    .execute(&mut *conn)
    .await
    .context("appending to the audit trail")?;
    Ok(id)
}

impl HubStore {
    /// Records an event in its own transaction.
    pub async fn record_event(
        &self,
        actor: &HubActor,
        entry: &AuditEntry,
    ) -> Result<i64, HubError> {
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        let id = append(&mut tx, actor, entry).await?;
        tx.commit().await.context("committing an audit entry")?;
        Ok(id)
    }

    /// The newest `limit` audit rows, newest first.
    pub async fn audit_entries(&self, limit: i64) -> Result<Vec<HubAuditRecord>, HubError> {
        let rows = sqlx::query!(
            "SELECT id, at, actor, action, entity, entity_id, reason, detail_json
             FROM audit_log ORDER BY id DESC LIMIT $1",
            limit.clamp(1, 1000),
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the audit trail")?;
        Ok(rows
            .into_iter()
            .map(|row| HubAuditRecord {
                id: row.id,
                at: row.at,
                actor: row.actor,
                action: row.action,
                entity: row.entity,
                entity_id: row.entity_id,
                reason: row.reason,
                detail_json: row.detail_json,
            })
            .collect())
    }

    /// Walks the whole chain and names the first row that does not verify.
    pub async fn verify_audit_chain(&self) -> Result<HubAuditVerification, HubError> {
        let mut walk = ChainWalk::new();
        loop {
            let after = walk.last_id();
            let page = sqlx::query!(
                "SELECT id, at, user_id, actor, action, entity, entity_id, reason, detail_json,
                        prev_hash, hash
                 FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
                after,
                VERIFY_PAGE,
            )
            .fetch_all(&self.pool)
            .await
            .context("reading the audit trail to verify it")?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                let fields = ChainedFields {
                    id: row.id,
                    at: &row.at,
                    user_id: row.user_id,
                    actor: &row.actor,
                    action: &row.action,
                    entity: &row.entity,
                    entity_id: row.entity_id.as_deref(),
                    reason: row.reason.as_deref(),
                    detail_json: &row.detail_json,
                    prev_hash: &row.prev_hash,
                };
                if let Err(problem) = walk.check(&fields, &row.hash) {
                    return Ok(HubAuditVerification::Broken {
                        row: row.id,
                        problem,
                    });
                }
            }
        }
        Ok(HubAuditVerification::Intact {
            rows: walk.rows(),
            head_hash: walk.head_hash().map(str::to_owned),
        })
    }
}
