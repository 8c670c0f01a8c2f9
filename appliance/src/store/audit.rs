//! The audit trail: append-only, each row chained to the previous one by a SHA-256 hash.
//!
//! Every change that matters is recorded (who, what, when, why) in the same transaction as the
//! change itself, through [`append`]. Each row's `hash` is SHA-256 over a canonical encoding of
//! the row (id, time, user, actor, action, entity, entity id, reason, detail) followed by the
//! previous row's hash (64 zeros for the first row): the rule of
//! `hub_protocol::audit_chain`, which the hub's own trail follows too. Editing, inserting or deleting a row in the
//! middle therefore breaks the chain at that row or the next, and [`Store::verify_audit_chain`]
//! names the first broken row.
//!
//! SQLite triggers refuse UPDATE and DELETE on `audit_log`. Neither guards against someone who
//! rewrites the file and recomputes every later hash, or who deletes rows from the end: for
//! that, the head hash must be copied somewhere else (a printed report, a backup), and compared.
//!
//! Not for: application logging (that is `tracing`), or the instrument's own log
//! ([`super::instrument_log`]).

use serde::Serialize;
use sqlx::SqliteConnection;

use super::error::SqlxResultExt;
use super::timestamp::stored;
use super::{AuditId, JsonReport, Store, StoreError, Timestamp, UserId, db};
pub use hub_protocol::audit_chain::AuditEntry;
use hub_protocol::audit_chain::{ChainWalk, ChainedFields};

/// The `prev_hash` of the first row.
pub use hub_protocol::audit_chain::GENESIS_HASH;

/// Rows read per query while verifying.
const VERIFY_PAGE: i64 = 5_000;

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Actor {
    /// A signed-in user.
    User {
        /// The user's id.
        id: UserId,
        /// The user's name at the time.
        username: String,
    },
    /// The appliance itself (start-up recovery, a simulated calibration it made, a command run
    /// by whoever holds the machine's console).
    Appliance,
}

impl Actor {
    fn user_id(&self) -> Option<i64> {
        match self {
            Self::User { id, .. } => Some(id.0),
            Self::Appliance => None,
        }
    }

    /// Who, in words for a person reading a page or a message: the username, or "the appliance".
    pub fn in_words(&self) -> String {
        match self {
            Self::User { username, .. } => username.clone(),
            Self::Appliance => "the appliance".to_owned(),
        }
    }

    /// The text stored in `audit_log.actor`: `user:<id>:<username>` or `appliance`.
    pub fn label(&self) -> String {
        match self {
            Self::User { id, username } => format!("user:{id}:{username}"),
            Self::Appliance => "appliance".to_owned(),
        }
    }

    /// The user id for `*_by` columns (NULL for the appliance).
    pub(crate) fn user_column(&self) -> Option<i64> {
        self.user_id()
    }
}

/// A stored audit row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Position in the chain (1, 2, 3, ...).
    pub id: AuditId,
    /// When.
    pub at: Timestamp,
    /// The acting user, if a user acted.
    pub user_id: Option<UserId>,
    /// `user:<id>:<username>` or `appliance`.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// To which kind of record.
    pub entity: String,
    /// To which record.
    pub entity_id: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Details.
    pub detail: JsonReport,
    /// The previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// The outcome of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditVerification {
    /// Every row's hash is right and links to the row before.
    Intact {
        /// Rows checked.
        rows: u64,
        /// The last row's hash (the value to copy elsewhere), `None` when the trail is empty.
        head_hash: Option<String>,
    },
    /// The first row where the chain does not hold.
    Broken(ChainBreak),
}

/// Where and how the chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first row that does not verify.
    pub row: AuditId,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit row {}: {}", self.row, self.problem)
    }
}

/// Appends one entry inside the caller's write transaction (begun with [`db::begin_write`], so
/// that reading the chain's head and appending to it cannot interleave with another writer).
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    actor: &Actor,
    entry: AuditEntry,
) -> Result<AuditId, StoreError> {
    let ids = append_all(conn, &[(actor, &entry)]).await?;
    ids.into_iter().next().ok_or(StoreError::Conflict(
        "the audit trail appended no row".to_owned(),
    ))
}

/// Appends entries in order inside the caller's write transaction, reading the chain's head
/// once: each row links to the one before it. The ids, in the same order.
pub(crate) async fn append_all(
    conn: &mut SqliteConnection,
    entries: &[(&Actor, &AuditEntry)],
) -> Result<Vec<AuditId>, StoreError> {
    let head = sqlx::query!("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .context("reading the audit chain's head")?;
    let (mut id, mut prev_hash) = match head {
        Some(row) => (row.id, row.hash),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let mut ids = Vec::with_capacity(entries.len());
    for (actor, entry) in entries {
        id += 1;
        let at = Timestamp::now().to_rfc3339();
        let actor_label = actor.label();
        let user_id = actor.user_id();
        let detail_json = entry.detail_json();
        let hash = entry
            .chained(id, &at, user_id, &actor_label, &detail_json, &prev_hash)
            .hash();
        sqlx::query!(
            "INSERT INTO audit_log
             (id, at, user_id, actor, action, entity, entity_id, reason, detail_json, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        ids.push(AuditId(id));
        prev_hash = hash;
    }
    Ok(ids)
}

/// Filters for reading the trail, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only this kind of record (`run`, `user`, ...).
    pub entity: Option<String>,
    /// Only this record.
    pub entity_id: Option<String>,
    /// Only rows older than this one (for paging).
    pub before: Option<AuditId>,
    /// At most this many rows (capped at 1000; 0 means 100).
    pub limit: u32,
    /// Only what this user did (by user name; `appliance` for the instrument's own rows).
    pub username: Option<String>,
    /// Only this action, or the family it heads (`qc` matches `qc.result.add`).
    pub action: Option<String>,
    /// Only rows on or after this day (UTC).
    pub from: Option<time::Date>,
    /// Only rows on or before this day (UTC).
    pub to: Option<time::Date>,
    /// Only rows whose record id, reason or detail contains this text (case-insensitive).
    pub text: Option<String>,
}

/// `YYYY-MM-DD`, the leading part of a stored RFC 3339 UTC time.
fn day_text(day: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

impl Store {
    /// Records an event that changes nothing else (a sign-in, a backup) in its own transaction.
    /// Views of patient data go through [`Store::record_view`] instead, which shares one commit
    /// among concurrent views.
    pub async fn record_event(
        &self,
        actor: &Actor,
        entry: AuditEntry,
    ) -> Result<AuditId, StoreError> {
        let mut tx = db::begin_write(&self.pool).await?;
        let id = append(&mut tx, actor, entry).await?;
        tx.commit().await.context("committing an audit entry")?;
        Ok(id)
    }

    /// Reads audit rows, newest first.
    pub async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::from(match query.limit {
            0 => 100,
            n => n.min(1000),
        });
        let before = query.before.map(|id| id.0);
        let username = query
            .username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        let action = query
            .action
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        let from = query.from.map(day_text);
        let to = query.to.map(day_text);
        let text = query
            .text
            .as_deref()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty());
        // Times are stored as RFC 3339 UTC text, so the first ten characters are the UTC day.
        let rows = sqlx::query!(
            r#"SELECT id, at, user_id, actor, action, entity, entity_id, reason, detail_json,
                      prev_hash, hash
               FROM audit_log
               WHERE (?1 IS NULL OR entity = ?1)
                 AND (?2 IS NULL OR entity_id = ?2)
                 AND (?3 IS NULL OR id < ?3)
                 AND (?5 IS NULL
                      OR (?5 = 'appliance' AND actor = 'appliance')
                      OR user_id IN (SELECT id FROM users WHERE username = ?5))
                 AND (?6 IS NULL OR action = ?6 OR substr(action, 1, length(?6) + 1) = ?6 || '.')
                 AND (?7 IS NULL OR substr(at, 1, 10) >= ?7)
                 AND (?8 IS NULL OR substr(at, 1, 10) <= ?8)
                 AND (?9 IS NULL
                      OR instr(lower(coalesce(entity_id, '') || ' ' || coalesce(reason, '') || ' '
                                     || detail_json), ?9) > 0)
               ORDER BY id DESC
               LIMIT ?4"#,
            query.entity,
            query.entity_id,
            before,
            limit,
            username,
            action,
            from,
            to,
            text,
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the audit trail")?;
        rows.into_iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: AuditId(row.id),
                    at: stored(&row.at, "audit time", row.id)?,
                    user_id: row.user_id.map(UserId),
                    actor: row.actor,
                    action: row.action,
                    entity: row.entity,
                    entity_id: row.entity_id,
                    reason: row.reason,
                    detail: JsonReport::stored(&row.detail_json, "audit detail", row.id)?,
                    prev_hash: row.prev_hash,
                    hash: row.hash,
                })
            })
            .collect()
    }

    /// Walks the whole chain from the first row and names the first row that does not verify.
    pub async fn verify_audit_chain(&self) -> Result<AuditVerification, StoreError> {
        let mut walk = ChainWalk::new();
        loop {
            let after = walk.last_id();
            let page = sqlx::query!(
                "SELECT id, at, user_id, actor, action, entity, entity_id, reason, detail_json,
                        prev_hash, hash
                 FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
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
                    return Ok(AuditVerification::Broken(ChainBreak {
                        row: AuditId(row.id),
                        problem,
                    }));
                }
            }
        }
        Ok(AuditVerification::Intact {
            rows: walk.rows(),
            head_hash: walk.head_hash().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};
    use sqlx::SqlitePool;

    use super::*;

    fn event(n: u32) -> AuditEntry {
        AuditEntry::new("test.event", "thing")
            .id(n)
            .reason(format!("reason {n}"))
            .detail(serde_json::json!({ "n": n }))
    }

    async fn store_with_events(pool: SqlitePool, n: u32) -> Store {
        let store = Store::from_pool(pool);
        let actor = Actor::User {
            id: UserId(7),
            username: "alice".into(),
        };
        for i in 1..=n {
            store.record_event(&actor, event(i)).await.unwrap();
        }
        store
    }

    /// The documented encoding, written again here from the module docs, independently of
    /// `ChainedFields`.
    fn documented_hash(fields: &[Option<&str>]) -> String {
        let mut bytes = b"ferrocount-audit-v1".to_vec();
        for field in fields {
            match field {
                None => bytes.push(0),
                Some(text) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
                    bytes.extend_from_slice(text.as_bytes());
                }
            }
        }
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn rows_are_chained_by_the_documented_hash(pool: SqlitePool) {
        let store = store_with_events(pool, 3).await;
        let rows = store.audit_entries(&AuditQuery::default()).await.unwrap();
        assert_eq!(rows.len(), 3);
        let mut prev = GENESIS_HASH.to_owned();
        for row in rows.iter().rev() {
            let at = row.at.to_rfc3339();
            let id = row.id.to_string();
            let expected = documented_hash(&[
                Some(&id),
                Some(&at),
                Some("7"),
                Some("user:7:alice"),
                Some("test.event"),
                Some("thing"),
                row.entity_id.as_deref(),
                row.reason.as_deref(),
                Some(&row.detail.value().to_string()),
                Some(&prev),
            ]);
            assert_eq!(row.prev_hash, prev);
            assert_eq!(row.hash, expected, "row {}", row.id);
            prev.clone_from(&row.hash);
        }
        assert_eq!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerification::Intact {
                rows: 3,
                head_hash: Some(prev)
            }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_keep_one_unbroken_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..25 {
                        store
                            .record_event(&Actor::Appliance, event(w * 100 + i))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        assert!(matches!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerification::Intact { rows: 200, .. }
        ));
        store.close().await;
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn an_empty_trail_is_intact(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        assert_eq!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerification::Intact {
                rows: 0,
                head_hash: None
            }
        );
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn triggers_refuse_update_and_delete(pool: SqlitePool) {
        let store = store_with_events(pool.clone(), 2).await;
        let update = sqlx::query("UPDATE audit_log SET reason = 'nothing happened' WHERE id = 1")
            .execute(&pool)
            .await;
        let delete = sqlx::query("DELETE FROM audit_log WHERE id = 2")
            .execute(&pool)
            .await;
        for outcome in [update, delete] {
            let message = outcome.unwrap_err().to_string();
            assert!(message.contains("append-only"), "{message}");
        }
        assert!(matches!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerification::Intact { rows: 2, .. }
        ));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn an_altered_row_is_named(pool: SqlitePool) {
        let store = store_with_events(pool.clone(), 5).await;
        sqlx::query("DROP TRIGGER audit_log_no_update")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_log SET reason = 'nothing happened' WHERE id = 3")
            .execute(&pool)
            .await
            .unwrap();
        match store.verify_audit_chain().await.unwrap() {
            AuditVerification::Broken(ChainBreak { row, problem }) => {
                assert_eq!(row, AuditId(3));
                assert!(problem.contains("altered"), "{problem}");
            }
            intact => panic!("tampering went unnoticed: {intact:?}"),
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_row_rewritten_with_a_fresh_hash_breaks_the_next_link(pool: SqlitePool) {
        let store = store_with_events(pool.clone(), 4).await;
        sqlx::query("DROP TRIGGER audit_log_no_update")
            .execute(&pool)
            .await
            .unwrap();
        // The forger changes row 2 and gives it a self-consistent hash, but row 3 still points
        // at the old one.
        let row = store
            .audit_entries(&AuditQuery {
                entity_id: Some("2".into()),
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .remove(0);
        let at = row.at.to_rfc3339();
        let forged_hash = documented_hash(&[
            Some("2"),
            Some(&at),
            Some("7"),
            Some("user:7:alice"),
            Some("test.event"),
            Some("thing"),
            Some("2"),
            Some("forged"),
            Some(&row.detail.value().to_string()),
            Some(&row.prev_hash),
        ]);
        sqlx::query("UPDATE audit_log SET reason = 'forged', hash = ? WHERE id = 2")
            .bind(&forged_hash)
            .execute(&pool)
            .await
            .unwrap();
        match store.verify_audit_chain().await.unwrap() {
            AuditVerification::Broken(ChainBreak { row, problem }) => {
                assert_eq!(row, AuditId(3));
                assert!(problem.contains("previous row"), "{problem}");
            }
            intact => panic!("forgery went unnoticed: {intact:?}"),
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_deleted_row_is_noticed_at_the_next(pool: SqlitePool) {
        let store = store_with_events(pool.clone(), 4).await;
        sqlx::query("DROP TRIGGER audit_log_no_delete")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM audit_log WHERE id = 2")
            .execute(&pool)
            .await
            .unwrap();
        match store.verify_audit_chain().await.unwrap() {
            AuditVerification::Broken(ChainBreak { row, .. }) => assert_eq!(row, AuditId(3)),
            intact => panic!("deletion went unnoticed: {intact:?}"),
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn entries_can_be_filtered_and_paged(pool: SqlitePool) {
        let store = store_with_events(pool, 5).await;
        let page = store
            .audit_entries(&AuditQuery {
                entity: Some("thing".into()),
                before: Some(AuditId(4)),
                limit: 2,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let ids: Vec<_> = page.iter().map(|r| r.id.0).collect();
        assert_eq!(ids, [3, 2]);
        let none = store
            .audit_entries(&AuditQuery {
                entity: Some("user".into()),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert!(none.is_empty());
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn entries_are_found_by_user_action_day_and_text(pool: SqlitePool) {
        use crate::store::test_fixtures::user;
        use crate::store::users::Role;
        let store = Store::from_pool(pool);
        let alice = user(&store, "alice", Role::LabAdmin).await;
        let bob = user(&store, "bob", Role::Operator).await;
        store
            .record_event(
                &alice.actor(),
                AuditEntry::new("qc.result.add", "qc_result").id(1),
            )
            .await
            .unwrap();
        store
            .record_event(
                &bob.actor(),
                AuditEntry::new("qcx.other", "thing").reason("Lot Changed on Monday"),
            )
            .await
            .unwrap();
        store
            .record_event(&Actor::Appliance, AuditEntry::new("qc", "thing"))
            .await
            .unwrap();
        let find = |query: AuditQuery| {
            let store = store.clone();
            async move {
                store
                    .audit_entries(&query)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.action)
                    .filter(|a| a.starts_with("qc"))
                    .collect::<Vec<_>>()
            }
        };
        let by_bob = find(AuditQuery {
            username: Some("bob".into()),
            ..AuditQuery::default()
        })
        .await;
        assert_eq!(by_bob, ["qcx.other"]);
        let by_appliance = find(AuditQuery {
            username: Some("appliance".into()),
            ..AuditQuery::default()
        })
        .await;
        assert_eq!(by_appliance, ["qc"]);
        // An action matches itself and the actions it heads, not another word's prefix.
        let qc_family = find(AuditQuery {
            action: Some("qc".into()),
            ..AuditQuery::default()
        })
        .await;
        assert_eq!(qc_family, ["qc", "qc.result.add"]);
        let text = find(AuditQuery {
            text: Some("changed ON".into()),
            ..AuditQuery::default()
        })
        .await;
        assert_eq!(text, ["qcx.other"]);
        let today = Timestamp::now().datetime().date();
        let today_only = find(AuditQuery {
            from: Some(today),
            to: Some(today),
            ..AuditQuery::default()
        })
        .await;
        assert_eq!(today_only.len(), 3);
        let tomorrow = today.next_day().unwrap();
        let from_tomorrow = find(AuditQuery {
            from: Some(tomorrow),
            ..AuditQuery::default()
        })
        .await;
        assert!(from_tomorrow.is_empty());
        let yesterday = today.previous_day().unwrap();
        let until_yesterday = find(AuditQuery {
            to: Some(yesterday),
            ..AuditQuery::default()
        })
        .await;
        assert!(until_yesterday.is_empty());
    }
}
