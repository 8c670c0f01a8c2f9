//! Ingestion of the sync messages (`hub_protocol::message`), the rules in one place:
//!
//! - **one transaction per batch**: a batch is stored whole or not at all (a hub killed in the
//!   middle of one leaves nothing of it);
//! - **idempotent by message id**: a message the hub holds (same id, same appliance, same
//!   sequence, same content) is acknowledged again and stored once;
//! - **in order per appliance**: each appliance's sequence goes 1, 2, 3, … without gaps; a batch
//!   whose next new message does not follow the last one held is refused with the expected
//!   sequence named, and the sender resends from there. Batches of one appliance are taken one at
//!   a time (its row is locked for the transaction);
//! - **never changes what it holds**: an id or a sequence the hub holds, sent with other content,
//!   is refused and the refusal audited; tables of received records refuse UPDATE and DELETE.
//!
//! Not for: authentication (`super::fleet`) or reading the records back for pages (later).

use hub_protocol::audit_chain::sha256_hex;
use hub_protocol::message::{
    Batch, Body, IngestAccepted, IngestRefusal, MAX_BATCH_MESSAGES, Message, PROTOCOL_VERSION,
};
use serde_json::json;
use sqlx::PgConnection;

use super::audit::{AuditEntry, append};
use super::fleet::ApplianceIdentity;
use super::{Context, HubError, HubStore};

/// What became of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored (or held already): acknowledge.
    Accepted(IngestAccepted),
    /// Refused for its sequence or content: nothing of it stored; resend from the expected one.
    Refused(IngestRefusal),
    /// Not a batch the hub can take (another protocol version, too many messages, a number out
    /// of range): nothing stored; the text says why.
    Unreadable(String),
}

/// A refusal found while storing, before it is answered.
struct Refusal {
    words: String,
    message: Option<(String, u64)>,
}

impl HubStore {
    /// Ingests `batch` from `appliance` (see the module's rules).
    pub async fn ingest(
        &self,
        appliance: &ApplianceIdentity,
        batch: &Batch,
    ) -> Result<IngestOutcome, HubError> {
        if batch.protocol != PROTOCOL_VERSION {
            return Ok(IngestOutcome::Unreadable(format!(
                "this hub speaks sync protocol version {PROTOCOL_VERSION}, the batch is version {}",
                batch.protocol
            )));
        }
        if batch.messages.len() > MAX_BATCH_MESSAGES {
            return Ok(IngestOutcome::Unreadable(format!(
                "a batch holds at most {MAX_BATCH_MESSAGES} messages, this one {}",
                batch.messages.len()
            )));
        }
        let mut tx = self.pool.begin().await.context("beginning an ingestion")?;
        let live = sqlx::query_scalar!(
            "SELECT id FROM appliances WHERE id = $1 AND revoked_at IS NULL FOR UPDATE",
            appliance.id,
        )
        .fetch_optional(&mut *tx)
        .await
        .context("locking the appliance's sequence")?;
        if live.is_none() {
            return Ok(IngestOutcome::Unreadable(format!(
                "appliance {:?} is not enrolled (revoked?)",
                appliance.serial
            )));
        }
        let committed_last = last_sequence(&mut tx, appliance.id).await?;
        let mut last = committed_last;
        let (mut stored, mut repeated) = (0_u32, 0_u32);
        for message in &batch.messages {
            match ingest_one(&mut tx, appliance, message, last).await? {
                Ok(Some(sequence)) => {
                    stored += 1;
                    last = sequence;
                }
                Ok(None) => repeated += 1,
                Err(refusal) => {
                    tx.rollback()
                        .await
                        .context("rolling back a refused batch")?;
                    return self
                        .refuse(appliance, refusal, committed_last + 1)
                        .await
                        .map(IngestOutcome::Refused);
                }
            }
        }
        if stored > 0 {
            append(
                &mut tx,
                &appliance.actor(),
                &AuditEntry::new("ingest.batch", "appliance")
                    .id(appliance.id)
                    .detail(json!({ "stored": stored, "repeated": repeated,
                                    "first_sequence": committed_last + 1,
                                    "last_sequence": last })),
            )
            .await?;
        }
        tx.commit().await.context("committing an ingested batch")?;
        Ok(IngestOutcome::Accepted(IngestAccepted {
            stored,
            repeated,
            last_sequence: last,
        }))
    }

    /// The last sequence held for the appliance (0 for none).
    pub async fn last_sequence(&self, appliance_id: i64) -> Result<u64, HubError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .context("acquiring a connection")?;
        last_sequence(&mut conn, appliance_id).await
    }

    /// Audits a refusal in a transaction of its own (the batch's was rolled back).
    async fn refuse(
        &self,
        appliance: &ApplianceIdentity,
        refusal: Refusal,
        expected_sequence: u64,
    ) -> Result<IngestRefusal, HubError> {
        let mut entry = AuditEntry::new("ingest.refuse", "appliance")
            .id(appliance.id)
            .reason(refusal.words.clone());
        if let Some((message_id, sequence)) = &refusal.message {
            entry = entry.detail(json!({ "message_id": message_id, "sequence": sequence,
                                          "expected_sequence": expected_sequence }));
        }
        self.record_event(&appliance.actor(), &entry).await?;
        Ok(IngestRefusal {
            error: refusal.words,
            expected_sequence,
        })
    }
}

async fn last_sequence(conn: &mut PgConnection, appliance_id: i64) -> Result<u64, HubError> {
    let last = sqlx::query_scalar!(
        r#"SELECT coalesce(max(sequence), 0) AS "last!" FROM ingested_messages
           WHERE appliance_id = $1"#,
        appliance_id,
    )
    .fetch_one(&mut *conn)
    .await
    .context("reading the appliance's last sequence")?;
    u64::try_from(last).map_err(|_| HubError::Corrupt {
        what: "sequence",
        detail: last.to_string(),
    })
}

/// A number from the wire as a column value.
fn column(value: u64, what: &str) -> Result<i64, String> {
    i64::try_from(value).map_err(|_| format!("{what} {value} is out of range"))
}

/// Stores one message after `last`: `Ok(Some(sequence))` stored, `Ok(None)` held already,
/// `Err` refused.
async fn ingest_one(
    conn: &mut PgConnection,
    appliance: &ApplianceIdentity,
    message: &Message,
    last: u64,
) -> Result<Result<Option<u64>, Refusal>, HubError> {
    let id = message.id.as_str();
    let refusal = |words: String| {
        Ok(Err(Refusal {
            words,
            message: Some((id.to_owned(), message.sequence)),
        }))
    };
    let content_sha256 = sha256_hex(&message.body.canonical_bytes());
    let held = sqlx::query!(
        "SELECT appliance_id, sequence, content_sha256 FROM ingested_messages
         WHERE message_id = $1",
        id,
    )
    .fetch_optional(&mut *conn)
    .await
    .context("looking for a message already held")?;
    if let Some(held) = held {
        let same = held.appliance_id == appliance.id
            && u64::try_from(held.sequence) == Ok(message.sequence)
            && held.content_sha256 == content_sha256;
        if same {
            return Ok(Ok(None));
        }
        return refusal(format!(
            "message {id} (sequence {}) is already held with other content, sequence or \
             appliance; the hub never changes what it holds",
            message.sequence
        ));
    }
    if message.sequence <= last {
        return refusal(format!(
            "sequence {} is already held under another message id than {id}",
            message.sequence
        ));
    }
    if message.sequence != last + 1 {
        return refusal(format!(
            "message {id} has sequence {}, but the next one expected is {}: messages are missing",
            message.sequence,
            last + 1
        ));
    }
    let sequence = match column(message.sequence, "sequence") {
        Ok(sequence) => sequence,
        Err(words) => return refusal(words),
    };
    let kind = message.body.kind().as_str();
    let row_id = sqlx::query_scalar!(
        "INSERT INTO ingested_messages
             (appliance_id, sequence, message_id, kind, content_sha256, received_at)
         VALUES ($1, $2, $3, $4, $5, now()) RETURNING id",
        appliance.id,
        sequence,
        id,
        kind,
        content_sha256,
    )
    .fetch_one(&mut *conn)
    .await
    .context("storing a message")?;
    if let Err(words) = store_body(conn, appliance.id, row_id, &message.body).await? {
        return refusal(words);
    }
    Ok(Ok(Some(message.sequence)))
}

/// Stores what a message carries in its table, exactly as sent.
async fn store_body(
    conn: &mut PgConnection,
    appliance_id: i64,
    row_id: i64,
    body: &Body,
) -> Result<Result<(), String>, HubError> {
    macro_rules! col {
        ($value:expr, $what:literal) => {
            match column(u64::from($value), $what) {
                Ok(value) => value,
                Err(words) => return Ok(Err(words)),
            }
        };
    }
    macro_rules! col32 {
        ($value:expr, $what:literal) => {
            match i32::try_from($value) {
                Ok(value) => value,
                Err(_) => return Ok(Err(format!("{} {} is out of range", $what, $value))),
            }
        };
    }
    match body {
        Body::ReleasedResult(result) => {
            let run_id = col!(result.run_id, "run id");
            let version = col32!(result.version, "version");
            let stored = sqlx::query!(
                "INSERT INTO released_results
                     (message_id, appliance_id, run_id, version, patient_mrn, patient_birth_date,
                      accession, drawn_at, per_7_5ml, per_7_5ml_ci95_low, per_7_5ml_ci95_high,
                      category, call, report_json, reason, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                 ON CONFLICT (appliance_id, run_id, version) DO NOTHING",
                row_id,
                appliance_id,
                run_id,
                version,
                result.patient.mrn,
                result.patient.birth_date,
                result.accession,
                result.drawn_at.as_str(),
                result.per_7_5ml,
                result.per_7_5ml_ci95_low,
                result.per_7_5ml_ci95_high,
                result.category,
                result.call,
                result.report_json,
                result.reason,
                result.created_at.as_str(),
            )
            .execute(&mut *conn)
            .await
            .context("storing a released result")?;
            if stored.rows_affected() == 0 {
                return Ok(Err(format!(
                    "version {} of run {} is already held from another message",
                    result.version, result.run_id
                )));
            }
            for (position, signature) in (1_i32..).zip(&result.signatures) {
                sqlx::query!(
                    "INSERT INTO result_signatures
                         (message_id, position, printed_name, meaning, signed_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    row_id,
                    position,
                    signature.printed_name,
                    signature.meaning,
                    signature.signed_at.as_str(),
                )
                .execute(&mut *conn)
                .await
                .context("storing a signature")?;
            }
        }
        Body::Measurement(measurement) => {
            let measurement_id = col!(measurement.measurement_id, "measurement id");
            let run_id = col!(measurement.run_id, "run id");
            let replicate = col32!(measurement.replicate, "replicate");
            let echo_count = col32!(measurement.echo_count, "echo count");
            let stored = sqlx::query!(
                "INSERT INTO measurements
                     (message_id, appliance_id, measurement_id, run_id, tube_kind, tube_label,
                      replicate, measured_at, echo_count, train_codec, train, acquisition_json,
                      fit_json, qc_flags_json)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (appliance_id, measurement_id) DO NOTHING",
                row_id,
                appliance_id,
                measurement_id,
                run_id,
                measurement.tube_kind,
                measurement.tube_label,
                replicate,
                measurement.measured_at.as_str(),
                echo_count,
                measurement.train_codec,
                measurement.train,
                measurement.acquisition_json,
                measurement.fit_json,
                measurement.qc_flags_json,
            )
            .execute(&mut *conn)
            .await
            .context("storing a measurement")?;
            if stored.rows_affected() == 0 {
                return Ok(Err(format!(
                    "measurement {} is already held from another message",
                    measurement.measurement_id
                )));
            }
        }
        Body::QcResult(qc) => {
            let qc_result_id = col!(qc.qc_result_id, "QC result id");
            let measurement_id = match qc.measurement_id.map(|id| column(id, "measurement id")) {
                Some(Err(words)) => return Ok(Err(words)),
                Some(Ok(id)) => Some(id),
                None => None,
            };
            let stored = sqlx::query!(
                "INSERT INTO qc_results
                     (message_id, appliance_id, qc_result_id, material, lot, value, status,
                      violations_json, measurement_id, measured_at, comment)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (appliance_id, qc_result_id) DO NOTHING",
                row_id,
                appliance_id,
                qc_result_id,
                qc.material,
                qc.lot,
                qc.value,
                qc.status,
                qc.violations_json,
                measurement_id,
                qc.measured_at.as_str(),
                qc.comment,
            )
            .execute(&mut *conn)
            .await
            .context("storing a QC result")?;
            if stored.rows_affected() == 0 {
                return Ok(Err(format!(
                    "QC result {} is already held from another message",
                    qc.qc_result_id
                )));
            }
        }
        Body::Calibration(calibration) => {
            let calibration_id = col!(calibration.calibration_id, "calibration id");
            let te_us = col32!(calibration.te_us, "echo time");
            let stored = sqlx::query!(
                "INSERT INTO calibrations
                     (message_id, appliance_id, calibration_id, reagent_lot, te_us,
                      content_format, content, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (appliance_id, calibration_id) DO NOTHING",
                row_id,
                appliance_id,
                calibration_id,
                calibration.reagent_lot,
                te_us,
                calibration.content_format,
                calibration.content,
                calibration.created_at.as_str(),
            )
            .execute(&mut *conn)
            .await
            .context("storing a calibration")?;
            if stored.rows_affected() == 0 {
                return Ok(Err(format!(
                    "calibration {} is already held from another message",
                    calibration.calibration_id
                )));
            }
        }
        Body::Heartbeat(heartbeat) => {
            let pending = col!(heartbeat.pending_messages, "pending messages");
            sqlx::query!(
                "INSERT INTO heartbeats
                     (message_id, appliance_id, at, software_version, board_status, pending_messages)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                row_id,
                appliance_id,
                heartbeat.at.as_str(),
                heartbeat.software_version,
                heartbeat.board_status,
                pending,
            )
            .execute(&mut *conn)
            .await
            .context("storing a heartbeat")?;
        }
    }
    Ok(Ok(()))
}
