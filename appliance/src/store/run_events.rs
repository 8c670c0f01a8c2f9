//! A run's published events, kept in order so the live view can replay them: opened late, or
//! reconnecting with `Last-Event-ID`, it shows the run's whole history (checks, tuning, each tube
//! prompt, each replicate), not only what happens from then on. Never changed or deleted
//! (triggers, `migrations/0016`).
//!
//! Not for: clinical records (runs, measurements and results are those; an event lost in a crash
//! loses a progress line, never data) or reading events' contents: the engine writes each event's
//! name and its JSON as published, and the live view's stream sends them back unread.

use super::error::SqlxResultExt;
use super::{RunId, Store, StoreError, Timestamp};

/// Events one replay sends at most (a run publishes a few dozen; a calibrating run a few
/// hundred).
pub const MAX_REPLAY: u32 = 5_000;

/// One stored event: its number in the log (the stream's event id), its name and its JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRunEvent {
    /// Row id: increases with every event of every run.
    pub id: i64,
    /// The event's name (`state`, `tuned`, `awaiting_tube`, …).
    pub event: String,
    /// The event as published, JSON.
    pub data: String,
}

impl Store {
    /// Appends a run's event as published; returns its number.
    pub async fn append_run_event(
        &self,
        run_id: RunId,
        at: &Timestamp,
        event: &str,
        data: &str,
    ) -> Result<i64, StoreError> {
        let at = at.to_rfc3339();
        sqlx::query_scalar!(
            "INSERT INTO run_events (run_id, at, event, data) VALUES (?, ?, ?, ?)
             RETURNING id AS \"id!\"",
            run_id.0,
            at,
            event,
            data
        )
        .fetch_one(&self.pool)
        .await
        .context("recording a run event")
    }

    /// A run's events after number `after` (0: from the start), oldest first, at most
    /// [`MAX_REPLAY`].
    pub async fn run_events_after(
        &self,
        run_id: RunId,
        after: i64,
    ) -> Result<Vec<StoredRunEvent>, StoreError> {
        let limit = i64::from(MAX_REPLAY);
        let rows = sqlx::query_as!(
            StoredRunEvent,
            "SELECT id AS \"id!\", event, data FROM run_events
             WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
            run_id.0,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("reading a run's events")?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_fixtures::running_run;

    #[sqlx::test(migrations = "../migrations")]
    async fn events_come_back_in_order_after_a_number_and_are_never_changed(
        pool: sqlx::SqlitePool,
    ) {
        let store = Store::from_pool(pool);
        let run = running_run(&store, "EVENTS-1").await.2.id;
        let other = running_run(&store, "EVENTS-2").await.2.id;
        let now = Timestamp::now();
        let first = store
            .append_run_event(run, &now, "tuning", r#"{"event":"tuning"}"#)
            .await
            .expect("append");
        store
            .append_run_event(other, &now, "tuning", "{}")
            .await
            .expect("append");
        let second = store
            .append_run_event(run, &now, "tuned", r#"{"event":"tuned"}"#)
            .await
            .expect("append");
        assert!(second > first);
        let all = store.run_events_after(run, 0).await.expect("read");
        assert_eq!(
            all.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
            ["tuning", "tuned"],
            "only this run's, oldest first"
        );
        assert_eq!(all[1].data, r#"{"event":"tuned"}"#);
        let later = store.run_events_after(run, first).await.expect("read");
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].id, second);

        for statement in [
            "UPDATE run_events SET data = '{}'",
            "DELETE FROM run_events",
        ] {
            let refused = sqlx::query(statement).execute(store.pool()).await;
            assert!(refused.is_err(), "{statement} must be refused");
        }
        assert_eq!(store.run_events_after(run, 0).await.expect("read").len(), 2);
    }
}
