//! The durable outbox: the messages a release sends to the hospital's systems, kept until each
//! destination acknowledged them.
//!
//! What it is for: the table and its state changes. A release (the store's
//! [`sign_result`](Store::sign_result) with meaning `release`) writes one message per configured
//! [`OutboxTarget`] in the release's own transaction; the sender (`operations::outbox`) takes the
//! next message a destination may receive ([`Store::next_outbox_message`]: oldest first, never
//! past an earlier undelivered message of the same patient), and records each attempt's outcome
//! with its audit entry in one transaction ([`Store::record_delivery`]); a parked message goes
//! back to pending only by a resend ([`Store::resend_outbox_message`], audited with its reason).
//!
//! What it is not for: deciding when to retry, what a destination's answer means, or what the
//! message says (the operations layer's and the message builders'). Rows are never deleted, and a
//! delivered message never changes (SQLite triggers refuse it).

use std::fmt;

use serde::Serialize;

use super::audit::append;
use super::error::{SqlxResultExt, found};
use super::patients::Mrn;
use super::samples::Accession;
use super::timestamp::stored;
use super::{
    Actor, AuditEntry, OutboxId, PatientId, ResultId, RunId, Store, StoreError, Timestamp, db,
};

/// The format of a destination's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageFormat {
    /// HL7 v2.5.1 ORU^R01 over MLLP.
    Hl7v2,
    /// An HL7 FHIR R4 transaction Bundle over REST.
    Fhir,
}

impl MessageFormat {
    /// The stored name (also the configuration's `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hl7v2 => "hl7v2",
            Self::Fhir => "fhir",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Hl7v2, Self::Fhir]
            .into_iter()
            .find(|f| f.as_str() == text)
    }
}

/// A destination a release writes messages for: its name (unique in the configuration) and
/// format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxTarget {
    /// The destination's name.
    pub name: String,
    /// What it receives.
    pub format: MessageFormat,
}

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// To be sent (again).
    Pending,
    /// Acknowledged by the destination: final.
    Delivered,
    /// Rejected by the destination, or never acknowledged within the retries: waits for a
    /// lab admin's resend.
    Parked,
}

impl OutboxState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Parked => "parked",
        }
    }

    /// The state a stored name (or a filter's word) names, if any.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Parked]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One outgoing message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxMessage {
    /// Row id.
    pub id: OutboxId,
    /// The destination's name.
    pub destination: String,
    /// Its format.
    pub format: MessageFormat,
    /// The released result version the message carries.
    pub result_id: ResultId,
    /// Its run.
    pub run_id: RunId,
    /// Its patient (messages of one patient are delivered in order).
    pub patient_id: PatientId,
    /// Where it stands.
    pub state: OutboxState,
    /// Delivery attempts so far (a resend does not reset them).
    pub attempts: u32,
    /// Attempts without an answer since the message was written or last resent (what the retry
    /// bound and the back-off count).
    pub unanswered: u32,
    /// Not sent before this instant (Unix milliseconds).
    pub next_attempt_ms: i64,
    /// What the last attempt came to.
    pub last_outcome: Option<String>,
    /// Why it is parked.
    pub parked_reason: Option<String>,
    /// When the release wrote it.
    pub created_at: Timestamp,
    /// When the destination acknowledged it.
    pub delivered_at: Option<Timestamp>,
}

impl OutboxMessage {
    /// The message's control id: `FC` and the row id in eight or more digits. The same on every
    /// attempt (a receiver de-duplicates by it), different for every message, at most 20
    /// characters (HL7 v2.5.1 MSH-10).
    pub fn control_id(&self) -> String {
        control_id(self.id)
    }

    /// When the next attempt is due: only a pending message has one.
    pub fn next_attempt_at(&self) -> Option<Timestamp> {
        if self.state != OutboxState::Pending {
            return None;
        }
        let nanos = i128::from(self.next_attempt_ms).checked_mul(1_000_000)?;
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(Timestamp::from_datetime)
    }
}

/// The control id of outbox row `id` ([`OutboxMessage::control_id`]).
pub fn control_id(id: OutboxId) -> String {
    format!("FC{:08}", id.0)
}

/// What one delivery attempt came to.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryOutcome {
    /// The destination acknowledged the message (`detail`: what it answered).
    Delivered {
        /// The acknowledgement, summarised.
        detail: String,
    },
    /// No acknowledgement (refused connection, time-out, dropped connection): try again at
    /// `next_attempt_ms`.
    Retry {
        /// What went wrong.
        detail: String,
        /// When to try again (Unix milliseconds).
        next_attempt_ms: i64,
    },
    /// The destination rejected the message, or the retries are spent: park it.
    Parked {
        /// Why.
        reason: String,
    },
}

/// The next message to write for a release, inside its transaction: one per target, for the
/// current version `result_id` of `run_id`. A target that already has this version (cannot
/// happen: a version is released once) is refused by the UNIQUE constraint.
pub(crate) async fn enqueue_release_in(
    conn: &mut sqlx::SqliteConnection,
    actor: &Actor,
    targets: &[OutboxTarget],
    run_id: RunId,
    result_id: i64,
    version: i64,
) -> Result<(), StoreError> {
    if targets.is_empty() {
        return Ok(());
    }
    let patient = sqlx::query_scalar!(
        "SELECT s.patient_id FROM runs r JOIN samples s ON s.id = r.sample_id WHERE r.id = ?",
        run_id.0
    )
    .fetch_optional(&mut *conn)
    .await
    .context("finding a released run's patient")?;
    let patient_id = found(patient, "run", run_id)?;
    let now = Timestamp::now();
    let now_text = now.to_rfc3339();
    let now_ms = unix_ms(now);
    for target in targets {
        let format = target.format.as_str();
        let id = sqlx::query_scalar!(
            "INSERT INTO outbox_messages (destination, format, result_id, run_id, patient_id,
                                          next_attempt_ms, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            target.name,
            format,
            result_id,
            run_id.0,
            patient_id,
            now_ms,
            now_text,
        )
        .fetch_one(&mut *conn)
        .await
        .unique(
            "writing an outbox message",
            "outbox message",
            &format!("{}/{result_id}", target.name),
        )?;
        append(
            conn,
            actor,
            AuditEntry::new("outbox.enqueue", "outbox_message")
                .id(id)
                .detail(serde_json::json!({
                    "destination": target.name, "format": format, "run_id": run_id,
                    "result_id": result_id, "version": version,
                    "control_id": control_id(OutboxId(id)),
                })),
        )
        .await?;
    }
    Ok(())
}

/// Which messages a page of the outbox lists: one destination's, one state's, or all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxFilter {
    /// Only this destination's messages.
    pub destination: Option<String>,
    /// Only messages in this state.
    pub state: Option<OutboxState>,
}

/// One message as a lab admin's outbox list shows it: the message, and what finds it at the LIS
/// (the patient's MRN, the specimen's accession number, the result version) and nothing more of
/// the patient.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    /// The message.
    pub message: OutboxMessage,
    /// The patient's MRN.
    pub mrn: Mrn,
    /// The specimen's accession number.
    pub accession: Accession,
    /// The result version the message carries (above 1: a correction).
    pub version: u32,
}

/// The columns of one listed row.
struct EntryRow {
    id: i64,
    destination: String,
    format: String,
    result_id: i64,
    run_id: i64,
    patient_id: i64,
    state: String,
    attempts: i64,
    unanswered: i64,
    next_attempt_ms: i64,
    last_outcome: Option<String>,
    parked_reason: Option<String>,
    created_at: String,
    delivered_at: Option<String>,
    mrn: String,
    accession: String,
    version: i64,
}

impl EntryRow {
    fn entry(self) -> Result<OutboxEntry, StoreError> {
        let id = self.id;
        let corrupt = |what: &'static str, reason: String| StoreError::Corrupt {
            what,
            row: id,
            reason,
        };
        let mrn = Mrn::parse(&self.mrn).map_err(|e| corrupt("patient MRN", e.to_string()))?;
        let accession = Accession::parse(&self.accession)
            .map_err(|e| corrupt("sample accession", e.to_string()))?;
        let version = u32::try_from(self.version)
            .map_err(|_| corrupt("result version", self.version.to_string()))?;
        let message = Row {
            id: self.id,
            destination: self.destination,
            format: self.format,
            result_id: self.result_id,
            run_id: self.run_id,
            patient_id: self.patient_id,
            state: self.state,
            attempts: self.attempts,
            unanswered: self.unanswered,
            next_attempt_ms: self.next_attempt_ms,
            last_outcome: self.last_outcome,
            parked_reason: self.parked_reason,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
        }
        .message()?;
        Ok(OutboxEntry {
            message,
            mrn,
            accession,
            version,
        })
    }
}

/// Unix milliseconds of an instant.
pub fn unix_ms(at: Timestamp) -> i64 {
    i64::try_from(at.datetime().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The columns of one `outbox_messages` row, as read.
struct Row {
    id: i64,
    destination: String,
    format: String,
    result_id: i64,
    run_id: i64,
    patient_id: i64,
    state: String,
    attempts: i64,
    unanswered: i64,
    next_attempt_ms: i64,
    last_outcome: Option<String>,
    parked_reason: Option<String>,
    created_at: String,
    delivered_at: Option<String>,
}

impl Row {
    fn message(self) -> Result<OutboxMessage, StoreError> {
        let corrupt = |what: &'static str, value: &str| StoreError::Corrupt {
            what,
            row: self.id,
            reason: format!("{value:?}"),
        };
        Ok(OutboxMessage {
            id: OutboxId(self.id),
            format: MessageFormat::parse(&self.format)
                .ok_or_else(|| corrupt("outbox format", &self.format))?,
            state: OutboxState::parse(&self.state)
                .ok_or_else(|| corrupt("outbox state", &self.state))?,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| corrupt("outbox attempts", &self.attempts.to_string()))?,
            unanswered: u32::try_from(self.unanswered)
                .map_err(|_| corrupt("outbox attempts", &self.unanswered.to_string()))?,
            destination: self.destination,
            result_id: ResultId(self.result_id),
            run_id: RunId(self.run_id),
            patient_id: PatientId(self.patient_id),
            next_attempt_ms: self.next_attempt_ms,
            last_outcome: self.last_outcome,
            parked_reason: self.parked_reason,
            created_at: stored(&self.created_at, "outbox message time", self.id)?,
            delivered_at: self
                .delivered_at
                .map(|t| stored(&t, "outbox delivery time", self.id))
                .transpose()?,
        })
    }
}

impl Store {
    /// The next message `destination` may receive at `now_ms`: the oldest pending one that is
    /// due and has no earlier undelivered (pending or parked) message of the same patient before
    /// it, so one patient's messages arrive in the order they were released (a correction never
    /// overtakes its first release) while other patients' go on.
    pub async fn next_outbox_message(
        &self,
        destination: &str,
        now_ms: i64,
    ) -> Result<Option<OutboxMessage>, StoreError> {
        let row = sqlx::query_as!(
            Row,
            "SELECT m.id, m.destination, m.format, m.result_id, m.run_id, m.patient_id, m.state,
                    m.attempts, m.unanswered, m.next_attempt_ms, m.last_outcome, m.parked_reason, m.created_at,
                    m.delivered_at
             FROM outbox_messages m
             WHERE m.destination = ? AND m.state = 'pending' AND m.next_attempt_ms <= ?
               AND NOT EXISTS (
                   SELECT 1 FROM outbox_messages e
                   WHERE e.destination = m.destination AND e.patient_id = m.patient_id
                     AND e.id < m.id AND e.state <> 'delivered')
             ORDER BY m.id LIMIT 1",
            destination,
            now_ms,
        )
        .fetch_optional(&self.pool)
        .await
        .context("finding the next outbox message")?;
        row.map(Row::message).transpose()
    }

    /// When `destination`'s next pending message is due (Unix milliseconds), if it has any.
    pub async fn next_outbox_due(&self, destination: &str) -> Result<Option<i64>, StoreError> {
        let due = sqlx::query_scalar!(
            r#"SELECT MIN(next_attempt_ms) AS "due: i64" FROM outbox_messages
               WHERE destination = ? AND state = 'pending'"#,
            destination
        )
        .fetch_one(&self.pool)
        .await
        .context("finding when the outbox is next due")?;
        Ok(due)
    }

    /// One message.
    pub async fn outbox_message(&self, id: OutboxId) -> Result<OutboxMessage, StoreError> {
        let row = sqlx::query_as!(
            Row,
            "SELECT id, destination, format, result_id, run_id, patient_id, state, attempts,
                    unanswered, next_attempt_ms, last_outcome, parked_reason, created_at, delivered_at
             FROM outbox_messages WHERE id = ?",
            id.0
        )
        .fetch_optional(&self.pool)
        .await
        .context("reading an outbox message")?;
        found(row, "outbox message", id)?.message()
    }

    /// Every message, newest first, at most `limit`, optionally in one state.
    pub async fn outbox_messages(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let state = state.map(OutboxState::as_str);
        let rows = sqlx::query_as!(
            Row,
            "SELECT id, destination, format, result_id, run_id, patient_id, state, attempts,
                    unanswered, next_attempt_ms, last_outcome, parked_reason, created_at, delivered_at
             FROM outbox_messages WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2",
            state,
            limit,
        )
        .fetch_all(&self.pool)
        .await
        .context("listing the outbox")?;
        rows.into_iter().map(Row::message).collect()
    }

    /// One page of the outbox for a lab admin, newest first: at most `limit` (1 to 1000)
    /// messages the filter selects whose id is below `before` (none: the newest), each with the
    /// patient's MRN, the specimen's accession number and the result version. One query a page
    /// (keyset on the row id), however long the outbox.
    pub async fn outbox_page(
        &self,
        filter: &OutboxFilter,
        before: Option<OutboxId>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = i64::from(limit.clamp(1, 1000));
        let before = before.map_or(i64::MAX, |id| id.0);
        let destination = filter.destination.as_deref();
        let state = filter.state.map(OutboxState::as_str);
        sqlx::query_as!(
            EntryRow,
            r#"SELECT m.id, m.destination, m.format, m.result_id, m.run_id, m.patient_id, m.state,
                      m.attempts, m.unanswered, m.next_attempt_ms, m.last_outcome,
                      m.parked_reason, m.created_at, m.delivered_at,
                      p.mrn, s.accession AS "accession!", r.version
               FROM outbox_messages m
               JOIN results r ON r.id = m.result_id
               JOIN runs ru ON ru.id = m.run_id
               JOIN samples s ON s.id = ru.sample_id
               JOIN patients p ON p.id = m.patient_id
               WHERE m.id < ?1 AND (?2 IS NULL OR m.destination = ?2)
                 AND (?3 IS NULL OR m.state = ?3)
               ORDER BY m.id DESC LIMIT ?4"#,
            before,
            destination,
            state,
            limit,
        )
        .fetch_all(&self.pool)
        .await
        .context("listing a page of the outbox")?
        .into_iter()
        .map(EntryRow::entry)
        .collect()
    }

    /// One message as the outbox list shows it.
    pub async fn outbox_entry(&self, id: OutboxId) -> Result<OutboxEntry, StoreError> {
        let next = OutboxId(id.0.saturating_add(1));
        let entry = self
            .outbox_page(&OutboxFilter::default(), Some(next), 1)
            .await?
            .into_iter()
            .find(|entry| entry.message.id == id);
        found(entry, "outbox message", id)
    }

    /// Records one delivery attempt of a pending message and its outcome, with its audit entry
    /// (`outbox.delivered`, `outbox.retry`, `outbox.parked`), in one transaction. A message that
    /// is no longer pending (delivered or parked meanwhile) is a conflict.
    pub async fn record_delivery(
        &self,
        id: OutboxId,
        outcome: &DeliveryOutcome,
    ) -> Result<OutboxMessage, StoreError> {
        let mut tx = db::begin_write(&self.pool).await?;
        let current = sqlx::query!(
            "SELECT state, attempts, destination FROM outbox_messages WHERE id = ?",
            id.0
        )
        .fetch_optional(&mut *tx)
        .await
        .context("reading an outbox message")?;
        let current = found(current, "outbox message", id)?;
        if current.state != OutboxState::Pending.as_str() {
            return Err(StoreError::Conflict(format!(
                "outbox message {id} is {}, not pending",
                current.state
            )));
        }
        let attempts = current.attempts + 1;
        let now = Timestamp::now().to_rfc3339();
        let (action, state, detail, parked, delivered, next) = match outcome {
            DeliveryOutcome::Delivered { detail } => (
                "outbox.delivered",
                OutboxState::Delivered,
                detail.as_str(),
                None,
                Some(now.as_str()),
                None,
            ),
            DeliveryOutcome::Retry {
                detail,
                next_attempt_ms,
            } => (
                "outbox.retry",
                OutboxState::Pending,
                detail.as_str(),
                None,
                None,
                Some(*next_attempt_ms),
            ),
            DeliveryOutcome::Parked { reason } => (
                "outbox.parked",
                OutboxState::Parked,
                reason.as_str(),
                Some(reason.as_str()),
                None,
                None,
            ),
        };
        let state_text = state.as_str();
        sqlx::query!(
            "UPDATE outbox_messages
             SET state = ?, attempts = ?, last_outcome = ?, parked_reason = ?, delivered_at = ?,
                 next_attempt_ms = COALESCE(?, next_attempt_ms),
                 unanswered = unanswered + (? IS NOT NULL)
             WHERE id = ?",
            state_text,
            attempts,
            detail,
            parked,
            delivered,
            next,
            next,
            id.0,
        )
        .execute(&mut *tx)
        .await
        .context("recording a delivery attempt")?;
        let mut entry =
            AuditEntry::new(action, "outbox_message")
                .id(id)
                .detail(serde_json::json!({
                    "destination": current.destination, "attempt": attempts,
                    "control_id": control_id(id), "outcome": detail, "next_attempt_ms": next,
                }));
        if let Some(reason) = parked {
            entry = entry.reason(reason);
        }
        append(&mut tx, &Actor::Appliance, entry).await?;
        tx.commit().await.context("committing a delivery attempt")?;
        self.outbox_message(id).await
    }

    /// Makes a parked message pending again, due at once, with the same control id: a lab
    /// admin's resend after the cause was fixed, audited with `reason`. Only a parked message can
    /// be resent (a delivered one is final, a pending one is being sent).
    pub async fn resend_outbox_message(
        &self,
        actor: &Actor,
        id: OutboxId,
        reason: &str,
    ) -> Result<OutboxMessage, StoreError> {
        let mut tx = db::begin_write(&self.pool).await?;
        let current = sqlx::query!(
            "SELECT state, parked_reason, destination FROM outbox_messages WHERE id = ?",
            id.0
        )
        .fetch_optional(&mut *tx)
        .await
        .context("reading an outbox message")?;
        let current = found(current, "outbox message", id)?;
        if current.state != OutboxState::Parked.as_str() {
            return Err(StoreError::Conflict(format!(
                "outbox message {id} is {}: only a parked message can be resent",
                current.state
            )));
        }
        let now_ms = unix_ms(Timestamp::now());
        sqlx::query!(
            "UPDATE outbox_messages SET state = 'pending', parked_reason = NULL, unanswered = 0,
                    next_attempt_ms = ? WHERE id = ?",
            now_ms,
            id.0,
        )
        .execute(&mut *tx)
        .await
        .context("resending an outbox message")?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("outbox.resend", "outbox_message")
                .id(id)
                .reason(reason)
                .detail(serde_json::json!({
                    "destination": current.destination, "control_id": control_id(id),
                    "was_parked_for": current.parked_reason,
                })),
        )
        .await?;
        tx.commit().await.context("committing a resend")?;
        self.outbox_message(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::example_report::example_report;
    use crate::store::results::{CorrectionReason, SignatureMeaning};
    use crate::store::test_fixtures::{count, running_run, user};
    use crate::store::users::Role;
    use nmr_core::assay::{Call, CountCategory, CountReport};
    use sqlx::SqlitePool;

    fn report(per_7_5ml: f64) -> CountReport {
        example_report(
            per_7_5ml,
            [per_7_5ml * 0.5, per_7_5ml * 2.0 + 1.0],
            CountCategory::Quantified,
            Some(Call::Unfavorable),
            false,
        )
    }

    fn targets() -> Vec<OutboxTarget> {
        vec![
            OutboxTarget {
                name: "lis".into(),
                format: MessageFormat::Hl7v2,
            },
            OutboxTarget {
                name: "ehr".into(),
                format: MessageFormat::Fhir,
            },
        ]
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_release_writes_its_messages_and_nothing_else_does(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone()).with_outbox(targets());
        let (operator, _, run) = running_run(&store, "OUT-1").await;
        let clinician = user(&store, "dr-out", Role::Clinician).await;
        store
            .record_result(&operator.actor(), run.id, &report(6.0))
            .await
            .unwrap();
        store
            .sign_result(&operator, run.id, SignatureMeaning::Review)
            .await
            .unwrap();
        assert_eq!(count(&pool, "outbox_messages").await, 0, "not released");

        let signature = store
            .sign_result(&clinician, run.id, SignatureMeaning::Release)
            .await
            .unwrap();
        let all = store.outbox_messages(None, 10).await.unwrap();
        assert_eq!(all.len(), 2);
        for message in &all {
            assert_eq!(message.result_id, signature.result_id);
            assert_eq!(message.state, OutboxState::Pending);
            assert_eq!(message.attempts, 0);
        }
        assert_ne!(all[0].control_id(), all[1].control_id());

        // A correction alone sends nothing: its version is not released until signed.
        let reason = CorrectionReason::parse("blood volume was 5 mL").unwrap();
        store
            .correct_result(&clinician.actor(), run.id, &report(9.0), &reason)
            .await
            .unwrap();
        assert_eq!(count(&pool, "outbox_messages").await, 2);
        store
            .sign_result(&clinician, run.id, SignatureMeaning::Release)
            .await
            .unwrap();
        assert_eq!(count(&pool, "outbox_messages").await, 4);
        let enqueued: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'outbox.enqueue'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(enqueued, 4);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_release_whose_messages_cannot_be_written_is_not_released(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone()).with_outbox(targets());
        let (operator, _, run) = running_run(&store, "OUT-2").await;
        let clinician = user(&store, "dr-atomic", Role::Clinician).await;
        store
            .record_result(&operator.actor(), run.id, &report(2.0))
            .await
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER no_outbox BEFORE INSERT ON outbox_messages
             BEGIN SELECT RAISE(ABORT, 'outbox full'); END",
        )
        .execute(&pool)
        .await
        .unwrap();
        let refused = store
            .sign_result(&clinician, run.id, SignatureMeaning::Release)
            .await;
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!(
            store.run(run.id).await.unwrap().state,
            crate::store::runs::RunState::AwaitingRelease,
            "the release and its messages are one transaction"
        );
        assert_eq!(count(&pool, "result_signatures").await, 0);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn one_patients_messages_go_in_order_and_others_are_not_held(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone()).with_outbox(vec![OutboxTarget {
            name: "lis".into(),
            format: MessageFormat::Hl7v2,
        }]);
        let clinician = user(&store, "dr-order", Role::Clinician).await;
        let (operator, _, first) = running_run(&store, "OUT-3").await;
        store
            .record_result(&operator.actor(), first.id, &report(1.0))
            .await
            .unwrap();
        store
            .sign_result(&clinician, first.id, SignatureMeaning::Release)
            .await
            .unwrap();
        let reason = CorrectionReason::parse("wrong volume").unwrap();
        store
            .correct_result(&clinician.actor(), first.id, &report(3.0), &reason)
            .await
            .unwrap();
        store
            .sign_result(&clinician, first.id, SignatureMeaning::Release)
            .await
            .unwrap();
        let (_, _, other) = running_run(&store, "OUT-4").await;
        store
            .record_result(&operator.actor(), other.id, &report(5.0))
            .await
            .unwrap();
        store
            .sign_result(&clinician, other.id, SignatureMeaning::Release)
            .await
            .unwrap();

        let far = i64::MAX;
        let head = store
            .next_outbox_message("lis", far)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(head.run_id, first.id);
        // The first message is retried later: its correction waits, the other patient does not.
        let later = unix_ms(Timestamp::now()) + 60_000;
        store
            .record_delivery(
                head.id,
                &DeliveryOutcome::Retry {
                    detail: "connection refused".into(),
                    next_attempt_ms: later,
                },
            )
            .await
            .unwrap();
        let now = unix_ms(Timestamp::now());
        let next = store
            .next_outbox_message("lis", now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.run_id, other.id);
        // Parked, the first message still holds its patient's correction back.
        store
            .record_delivery(
                next.id,
                &DeliveryOutcome::Delivered {
                    detail: "AA".into(),
                },
            )
            .await
            .unwrap();
        let parked = store
            .record_delivery(
                head.id,
                &DeliveryOutcome::Parked {
                    reason: "AR: unknown patient".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(parked.state, OutboxState::Parked);
        assert_eq!(parked.attempts, 2);
        assert_eq!(parked.unanswered, 1);
        assert_eq!(store.next_outbox_message("lis", far).await.unwrap(), None);

        let admin = user(&store, "ada", Role::LabAdmin).await;
        let resent = store
            .resend_outbox_message(&admin.actor(), head.id, "patient registered in the LIS")
            .await
            .unwrap();
        assert_eq!(resent.state, OutboxState::Pending);
        assert_eq!(resent.control_id(), head.control_id());
        assert_eq!((resent.attempts, resent.unanswered), (2, 0));
        let again = store
            .resend_outbox_message(&admin.actor(), head.id, "twice")
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        let next = store
            .next_outbox_message("lis", far)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.id, head.id, "the first release before its correction");
        store
            .record_delivery(
                head.id,
                &DeliveryOutcome::Delivered {
                    detail: "AA".into(),
                },
            )
            .await
            .unwrap();
        let correction = store
            .next_outbox_message("lis", far)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(correction.run_id, first.id);
        assert!(correction.result_id > head.result_id);

        // Delivered is final, and nothing is ever deleted.
        let twice = store
            .record_delivery(
                head.id,
                &DeliveryOutcome::Parked {
                    reason: "late".into(),
                },
            )
            .await;
        assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
        let update = sqlx::query("UPDATE outbox_messages SET state = 'pending' WHERE id = ?")
            .bind(head.id.0)
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(update.to_string().contains("final"), "{update}");
        let delete = sqlx::query("DELETE FROM outbox_messages")
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(delete.to_string().contains("DELETE refused"), "{delete}");
        let audited: Vec<String> = sqlx::query_scalar(
            "SELECT action FROM audit_log WHERE entity = 'outbox_message' AND entity_id = ?
             ORDER BY id",
        )
        .bind(head.id.0.to_string())
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            audited,
            [
                "outbox.enqueue",
                "outbox.retry",
                "outbox.parked",
                "outbox.resend",
                "outbox.delivered"
            ]
        );
    }
}
