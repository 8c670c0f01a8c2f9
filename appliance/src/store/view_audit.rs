//! Group commit of the audit rows of views: many concurrent views share one write transaction
//! and one sync to disk, and no view is answered before its row is durable.
//!
//! Every view of patient data (a patient, a trend, a run, a lookup, a list) is audited. Written
//! one transaction each, every view paid a full `fsync` and queued for SQLite's one write lock,
//! which is what held a busy appliance's trend p99 at 177 ms (issue 16, defect 9). Here a view
//! puts its row in a queue and waits; one writer task at a time takes the write lock, then takes
//! *every* row queued by then (at most [`MAX_GROUP`]), appends them to the hash chain in order
//! inside that one transaction and commits. Views that arrive while it waits for the lock or
//! commits form the next group.
//!
//! The rule (also in ARCHITECTURE.md): **a view's answer is released only after the group commit
//! holding its audit row has completed** (`synchronous=FULL`: on disk), and **a failed group
//! fails every view in it** (each gets [`StoreError::ViewNotAudited`], so the front end shows
//! an error instead of the data). A group is one transaction, so its rows are all stored or none
//! is; the chain stays one unbroken sequence, as with single appends.
//!
//! The writer is a spawned task, so a view whose caller goes away (a closed connection drops the
//! handler's future) cannot abandon a group half-written: the group commits or rolls back
//! whole, and a reply nobody waits for is dropped.
//!
//! Not for: changes (a result, a user, a calibration), whose audit row belongs in the change's
//! own transaction ([`super::audit`]); nor events that must be in the trail before something
//! else happens in another transaction (a sign-in, a backup) — those use
//! [`Store::record_event`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::SqlitePool;
use tokio::sync::oneshot;

use super::audit::{Actor, AuditEntry, append_all};
use super::error::SqlxResultExt;
use super::{AuditId, Store, StoreError, db};

/// The most rows one group commit takes; more wait for the next group. Bounds the time the write
/// lock is held by one group (each row is one small insert).
pub const MAX_GROUP: usize = 512;

type Reply = oneshot::Sender<Result<AuditId, StoreError>>;

/// One view's row waiting for its group.
struct Waiting {
    actor: Actor,
    entry: AuditEntry,
    reply: Reply,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Waiting>,
    /// Whether a writer task is running (it goes on until the queue is empty).
    writing: bool,
}

/// The queue of view rows and its counters; one per database (shared by a [`Store`]'s clones).
#[derive(Default)]
pub(crate) struct ViewCommits {
    queue: Mutex<Queue>,
    group_commits: AtomicU64,
    rows_committed: AtomicU64,
    groups_failed: AtomicU64,
}

impl std::fmt::Debug for ViewCommits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewCommits")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Counters of the view audit's group commits since the store was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewAuditStats {
    /// Rows waiting for a group now.
    pub queued: usize,
    /// Groups committed.
    pub group_commits: u64,
    /// Rows those groups held.
    pub rows_committed: u64,
    /// Groups that failed (every view in them failed).
    pub groups_failed: u64,
}

impl ViewCommits {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; a poisoned queue is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> ViewAuditStats {
        ViewAuditStats {
            queued: self.queue().pending.len(),
            group_commits: self.group_commits.load(Ordering::Relaxed),
            rows_committed: self.rows_committed.load(Ordering::Relaxed),
            groups_failed: self.groups_failed.load(Ordering::Relaxed),
        }
    }
}

/// Writes groups until the queue is empty, then ends (the next view starts another writer).
async fn write_groups(pool: SqlitePool, commits: Arc<ViewCommits>) {
    loop {
        {
            let mut queue = commits.queue();
            if queue.pending.is_empty() {
                queue.writing = false;
                return;
            }
        }
        // The write lock first: views that arrive while it is awaited join this group.
        let tx = db::begin_write(&pool).await;
        let group: Vec<Waiting> = {
            let mut queue = commits.queue();
            let take = queue.pending.len().min(MAX_GROUP);
            queue.pending.drain(..take).collect()
        };
        let outcome = match tx {
            Ok(mut tx) => {
                let rows: Vec<(&Actor, &AuditEntry)> =
                    group.iter().map(|w| (&w.actor, &w.entry)).collect();
                match append_all(&mut tx, &rows).await {
                    Ok(ids) => tx
                        .commit()
                        .await
                        .context("committing a group of view audit rows")
                        .map(|()| ids),
                    // Dropping the transaction rolls the whole group back.
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(ids) => {
                commits.group_commits.fetch_add(1, Ordering::Relaxed);
                commits
                    .rows_committed
                    .fetch_add(ids.len() as u64, Ordering::Relaxed);
                for (waiting, id) in group.into_iter().zip(ids) {
                    // A view whose caller has gone needs no answer.
                    let _ = waiting.reply.send(Ok(id));
                }
            }
            Err(error) => {
                commits.groups_failed.fetch_add(1, Ordering::Relaxed);
                let reason = error.to_string();
                for waiting in group {
                    let _ = waiting
                        .reply
                        .send(Err(StoreError::ViewNotAudited(reason.clone())));
                }
            }
        }
    }
}

impl Store {
    /// Records the audit row of a view (patient data shown to someone) in the next group commit
    /// and returns once that commit has completed: the caller may show the data only after this
    /// returns `Ok`. A failed group is [`StoreError::ViewNotAudited`] for every view in it.
    pub async fn record_view(
        &self,
        actor: &Actor,
        entry: AuditEntry,
    ) -> Result<AuditId, StoreError> {
        let (reply, answer) = oneshot::channel();
        let start_writer = {
            let mut queue = self.views.queue();
            queue.pending.push(Waiting {
                actor: actor.clone(),
                entry,
                reply,
            });
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            tokio::spawn(write_groups(self.pool.clone(), Arc::clone(&self.views)));
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::ViewNotAudited(
                "the audit writer stopped before committing the group".into(),
            ))
        })
    }

    /// The view audit's group-commit counters (for figures and tests).
    pub fn view_audit_stats(&self) -> ViewAuditStats {
        self.views.stats()
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, SqliteConnection};

    use super::*;
    use crate::store::audit::AuditQuery;
    use crate::store::{AuditVerification, UserId};

    const VIEWS: u32 = 24;

    fn viewer() -> Actor {
        Actor::User {
            id: UserId(3),
            username: "clinician".into(),
        }
    }

    /// A second connection that holds the write lock until it commits, so the views queue
    /// behind it deterministically.
    async fn hold_write_lock(dir: &std::path::Path) -> SqliteConnection {
        let file = dir.join(db::DATABASE_FILE);
        let mut blocker = SqliteConnection::connect_with(&db::connect_options(&file))
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut blocker)
            .await
            .unwrap();
        blocker
    }

    fn start_views(
        store: &Store,
        action: impl Fn(u32) -> &'static str,
    ) -> Vec<tokio::task::JoinHandle<Result<AuditId, StoreError>>> {
        (0..VIEWS)
            .map(|n| {
                let store = store.clone();
                let entry = AuditEntry::new(action(n), "patient").id(n);
                tokio::spawn(async move { store.record_view(&viewer(), entry).await })
            })
            .collect()
    }

    /// Waits (bounded in count, not asserted on time) until every view is queued.
    async fn until_queued(store: &Store, n: usize) {
        for _ in 0..2_000 {
            if store.view_audit_stats().queued == n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!(
            "the views never queued together for one group: {:?}",
            store.view_audit_stats()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_views_share_one_commit_and_every_row_is_chained() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let mut blocker = hold_write_lock(dir.path()).await;
        let views = start_views(&store, |_| "patient.view");
        until_queued(&store, VIEWS as usize).await;
        // Nothing is answered while the rows cannot be written.
        assert!(views.iter().all(|v| !v.is_finished()));
        sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
        let mut ids = Vec::new();
        for view in views {
            ids.push(view.await.unwrap().unwrap().0);
        }
        ids.sort_unstable();
        assert_eq!(ids, (1..=i64::from(VIEWS)).collect::<Vec<_>>());
        let stats = store.view_audit_stats();
        assert_eq!(stats.group_commits, 1, "{stats:?}");
        assert_eq!(stats.rows_committed, u64::from(VIEWS));
        let rows = store.audit_entries(&AuditQuery::default()).await.unwrap();
        assert_eq!(rows.len(), VIEWS as usize);
        assert!(matches!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerification::Intact { rows, .. } if rows == u64::from(VIEWS)
        ));
        // Single appends (changes, events) go on chaining after the group.
        store
            .record_event(&Actor::Appliance, AuditEntry::new("test.event", "thing"))
            .await
            .unwrap();
        assert!(matches!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerification::Intact { rows, .. } if rows == u64::from(VIEWS) + 1
        ));
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_group_commit_fails_every_view_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let mut blocker = hold_write_lock(dir.path()).await;
        // One row of the group cannot be stored, so the group's transaction fails.
        sqlx::query(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON audit_log WHEN NEW.action = 'test.refused'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .execute(&mut blocker)
        .await
        .unwrap();
        let views = start_views(&store, |n| {
            if n == VIEWS / 2 {
                "test.refused"
            } else {
                "patient.view"
            }
        });
        until_queued(&store, VIEWS as usize).await;
        sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
        for view in views {
            match view.await.unwrap() {
                Err(StoreError::ViewNotAudited(reason)) => {
                    assert!(reason.contains("injected failure"), "{reason}");
                }
                answered => panic!("a view was answered without a durable audit row: {answered:?}"),
            }
        }
        let stats = store.view_audit_stats();
        assert_eq!((stats.groups_failed, stats.group_commits), (1, 0));
        assert!(matches!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerification::Intact { rows: 0, .. }
        ));
        // The queue recovers: the next view is recorded and answered.
        let id = store
            .record_view(&viewer(), AuditEntry::new("patient.view", "patient").id(1))
            .await
            .unwrap();
        assert_eq!(id, AuditId(1));
        store.close().await;
    }
}
