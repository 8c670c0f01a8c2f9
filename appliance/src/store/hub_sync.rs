//! The hub's sync queue (issue 15): every record this appliance gives its hub, in one order,
//! each with its sequence number (1, 2, 3, … without gaps) — `migrations/0020`.
//!
//! What it is for: [`Store::queue_hub_sync`] appends, in one transaction, every calibration,
//! QC value, measurement (with its raw train) and release signature written since the last
//! call, in that order and by row id within a kind; [`Store::queue_hub_heartbeat`] appends a
//! heartbeat with its content. [`Store::hub_sync_batch`] builds the messages from a sequence on
//! (`hub_protocol::message`), each from its record as stored — records the queue names never
//! change (SQLite triggers refuse it), so a message built again for a resend is the same,
//! byte for byte, as the first; [`Store::ack_hub_sync`] records what the hub acknowledged.
//!
//! The cursor of each kind is the highest row id queued of it, so a crash between two calls
//! loses nothing and queues nothing twice: the queue and the records are in the same database.
//!
//! What it is not for: sending (the operations layer's hub sender), or deciding what the hub
//! may see beyond "every record of these kinds" (a released result carries the patient's MRN
//! and date of birth, its two identifiers, and nothing else of the patient).

use hub_protocol::message::{
    Body, Calibration, Heartbeat, Measurement, Message, MessageId, PatientRef, QcResult,
    ReleasedResult, Signature, StoredTime,
};

use super::error::SqlxResultExt;
use super::{Store, StoreError, Timestamp, db};

/// Most messages [`Store::hub_sync_batch`] builds at once (a measurement carries its train:
/// a batch stays a few megabytes).
pub const MAX_SYNC_BATCH: u32 = 100;

/// Where the queue stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubSyncState {
    /// The highest sequence queued (0: none).
    pub last_queued: u64,
    /// The highest sequence the hub acknowledged (0: none).
    pub last_acknowledged: u64,
}

impl HubSyncState {
    /// Messages queued and not acknowledged.
    pub fn pending(&self) -> u64 {
        self.last_queued.saturating_sub(self.last_acknowledged)
    }
}

/// A message id for `sequence` of the appliance `serial`: the serial (characters a message id
/// may not hold become `-`), a colon and the sequence.
pub fn message_id(serial: &str, sequence: u64) -> Result<MessageId, StoreError> {
    let serial: String = serial
        .chars()
        .take(60)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    MessageId::parse(&format!("{serial}:{sequence}")).map_err(|e| StoreError::Invalid {
        field: "serial",
        reason: e.to_string(),
    })
}

fn time(text: &str, what: &'static str, row: i64) -> Result<StoredTime, StoreError> {
    StoredTime::parse(text).map_err(|e| StoreError::Corrupt {
        what,
        row,
        reason: e.to_string(),
    })
}

fn unsigned(value: i64, what: &'static str, row: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        row,
        reason: format!("{value} is negative"),
    })
}

impl Store {
    /// Queues every calibration, QC value, measurement and release signature not queued yet,
    /// in that order (by row id within a kind), in one transaction; how many were queued.
    pub async fn queue_hub_sync(&self) -> Result<u64, StoreError> {
        let now = Timestamp::now().to_rfc3339();
        let mut tx = db::begin_write(&self.pool).await?;
        let mut queued = 0_u64;
        for kind in ["calibration", "qc_result", "measurement", "released_result"] {
            let base: i64 = sqlx::query_scalar!(
                r#"SELECT COALESCE(MAX(sequence), 0) AS "n!: i64" FROM hub_sync"#
            )
            .fetch_one(&mut *tx)
            .await
            .context("reading the hub sync queue")?;
            let done = sqlx::query!(
                r#"INSERT INTO hub_sync (sequence, kind, record_id, queued_at)
                   SELECT ?1 + ROW_NUMBER() OVER (ORDER BY id), ?2, id, ?3 FROM (
                       SELECT id FROM calibrations WHERE ?2 = 'calibration'
                       UNION ALL SELECT id FROM qc_results WHERE ?2 = 'qc_result'
                       UNION ALL SELECT id FROM measurements WHERE ?2 = 'measurement'
                       UNION ALL SELECT id FROM result_signatures
                           WHERE ?2 = 'released_result' AND meaning = 'release')
                   WHERE id > (SELECT COALESCE(MAX(record_id), 0) FROM hub_sync WHERE kind = ?2)
                   ORDER BY id"#,
                base,
                kind,
                now
            )
            .execute(&mut *tx)
            .await
            .context("queueing records for the hub")?;
            queued += done.rows_affected();
        }
        tx.commit().await.context("committing the hub sync queue")?;
        Ok(queued)
    }

    /// Queues a heartbeat (its content fixed now); its sequence.
    pub async fn queue_hub_heartbeat(&self, heartbeat: &Heartbeat) -> Result<u64, StoreError> {
        let body = serde_json::to_string(heartbeat).map_err(|e| StoreError::Invalid {
            field: "heartbeat",
            reason: e.to_string(),
        })?;
        let now = Timestamp::now().to_rfc3339();
        let mut tx = db::begin_write(&self.pool).await?;
        let sequence: i64 = sqlx::query_scalar!(
            r#"INSERT INTO hub_sync (sequence, kind, body_json, queued_at)
               VALUES ((SELECT COALESCE(MAX(sequence), 0) + 1 FROM hub_sync), 'heartbeat', ?, ?)
               RETURNING sequence AS "sequence!: i64""#,
            body,
            now
        )
        .fetch_one(&mut *tx)
        .await
        .context("queueing a heartbeat")?;
        tx.commit().await.context("committing a heartbeat")?;
        unsigned(sequence, "hub sync sequence", sequence)
    }

    /// The highest sequence queued and the highest the hub acknowledged.
    pub async fn hub_sync_state(&self) -> Result<HubSyncState, StoreError> {
        let row = sqlx::query!(
            r#"SELECT COALESCE(MAX(sequence), 0) AS "queued!: i64",
                      COALESCE(MAX(CASE WHEN acked_at IS NOT NULL THEN sequence END), 0)
                          AS "acked!: i64"
               FROM hub_sync"#
        )
        .fetch_one(&self.pool)
        .await
        .context("reading the hub sync queue")?;
        Ok(HubSyncState {
            last_queued: unsigned(row.queued, "hub sync sequence", row.queued)?,
            last_acknowledged: unsigned(row.acked, "hub sync sequence", row.acked)?,
        })
    }

    /// Records that the hub holds every message up to `through` (its `last_sequence`).
    pub async fn ack_hub_sync(&self, through: u64) -> Result<(), StoreError> {
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        let now = Timestamp::now().to_rfc3339();
        sqlx::query!(
            "UPDATE hub_sync SET acked_at = ? WHERE sequence <= ? AND acked_at IS NULL",
            now,
            through
        )
        .execute(&self.pool)
        .await
        .context("recording the hub's acknowledgement")?;
        Ok(())
    }

    /// The messages from sequence `from` on, at most `limit` (1 to [`MAX_SYNC_BATCH`]), each
    /// built from its record as stored, with ids made from `serial`.
    pub async fn hub_sync_batch(
        &self,
        serial: &str,
        from: u64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let limit = i64::from(limit.clamp(1, MAX_SYNC_BATCH));
        let rows = sqlx::query!(
            r#"SELECT sequence AS "sequence!: i64", kind, record_id, body_json FROM hub_sync
               WHERE sequence >= ? ORDER BY sequence LIMIT ?"#,
            from,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the hub sync queue")?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in rows {
            let sequence = unsigned(row.sequence, "hub sync sequence", row.sequence)?;
            let record = row.record_id.unwrap_or(0);
            let body = match row.kind.as_str() {
                "calibration" => Body::Calibration(self.sync_calibration(record).await?),
                "qc_result" => Body::QcResult(self.sync_qc_result(record).await?),
                "measurement" => Body::Measurement(self.sync_measurement(record).await?),
                "released_result" => Body::ReleasedResult(self.sync_release(record).await?),
                "heartbeat" => Body::Heartbeat(
                    serde_json::from_str(row.body_json.as_deref().unwrap_or("")).map_err(|e| {
                        StoreError::Corrupt {
                            what: "queued heartbeat",
                            row: row.sequence,
                            reason: e.to_string(),
                        }
                    })?,
                ),
                other => {
                    return Err(StoreError::Corrupt {
                        what: "hub sync kind",
                        row: row.sequence,
                        reason: format!("{other:?}"),
                    });
                }
            };
            messages.push(Message {
                id: message_id(serial, sequence)?,
                sequence,
                body,
            });
        }
        Ok(messages)
    }

    async fn sync_calibration(&self, id: i64) -> Result<Calibration, StoreError> {
        let r = sqlx::query!(
            "SELECT id, reagent_lot, te_us, content_format, content, created_at
             FROM calibrations WHERE id = ?",
            id
        )
        .fetch_one(&self.pool)
        .await
        .context("reading a calibration for the hub")?;
        Ok(Calibration {
            calibration_id: unsigned(r.id, "calibration id", r.id)?,
            reagent_lot: r.reagent_lot,
            te_us: u32::try_from(r.te_us).map_err(|_| StoreError::Corrupt {
                what: "calibration echo time",
                row: r.id,
                reason: r.te_us.to_string(),
            })?,
            content_format: r.content_format,
            content: r.content,
            created_at: time(&r.created_at, "calibration time", r.id)?,
        })
    }

    async fn sync_qc_result(&self, id: i64) -> Result<QcResult, StoreError> {
        let r = sqlx::query!(
            r#"SELECT q.id, q.value, q.status, q.violations_json, q.measurement_id,
                      q.measured_at, q.comment, m.name AS "material!", l.lot AS "lot!"
               FROM qc_results q
               JOIN qc_lots l ON l.id = q.lot_id
               JOIN qc_materials m ON m.id = l.material_id
               WHERE q.id = ?"#,
            id
        )
        .fetch_one(&self.pool)
        .await
        .context("reading a QC value for the hub")?;
        Ok(QcResult {
            qc_result_id: unsigned(r.id, "QC result id", r.id)?,
            material: r.material,
            lot: r.lot,
            value: r.value,
            status: r.status,
            violations_json: r.violations_json,
            measurement_id: r
                .measurement_id
                .map(|m| unsigned(m, "measurement id", r.id))
                .transpose()?,
            measured_at: time(&r.measured_at, "QC time", r.id)?,
            comment: r.comment,
        })
    }

    async fn sync_measurement(&self, id: i64) -> Result<Measurement, StoreError> {
        let r = sqlx::query!(
            r#"SELECT m.id, m.run_id, m.replicate, m.measured_at, m.echo_count, m.train_codec,
                      m.train, m.acquisition_json, m.fit_json, m.qc_flags_json,
                      t.kind AS "tube_kind!", t.label AS "tube_label!"
               FROM measurements m JOIN sample_tubes t ON t.id = m.tube_id
               WHERE m.id = ?"#,
            id
        )
        .fetch_one(&self.pool)
        .await
        .context("reading a measurement for the hub")?;
        let small = |value: i64, what: &'static str| {
            u32::try_from(value).map_err(|_| StoreError::Corrupt {
                what,
                row: r.id,
                reason: value.to_string(),
            })
        };
        Ok(Measurement {
            measurement_id: unsigned(r.id, "measurement id", r.id)?,
            run_id: unsigned(r.run_id, "run id", r.id)?,
            tube_kind: r.tube_kind,
            tube_label: r.tube_label,
            replicate: small(r.replicate, "replicate")?,
            measured_at: time(&r.measured_at, "measurement time", r.id)?,
            echo_count: small(r.echo_count, "echo count")?,
            train_codec: r.train_codec,
            train: r.train,
            acquisition_json: r.acquisition_json,
            fit_json: r.fit_json,
            qc_flags_json: r.qc_flags_json,
        })
    }

    /// The result version a release signature signed, with the signatures it had then (this
    /// one and those before it): the same message however many signatures follow.
    async fn sync_release(&self, signature_id: i64) -> Result<ReleasedResult, StoreError> {
        let r = sqlx::query!(
            r#"SELECT r.id AS "result_id!", r.run_id, r.version, p.mrn, p.birth_date,
                      s.accession, s.drawn_at, r.per_7_5ml, r.per_7_5ml_ci95_low,
                      r.per_7_5ml_ci95_high, r.category, r.call, r.report_json, r.reason,
                      r.created_at
               FROM result_signatures g
               JOIN results r ON r.id = g.result_id
               JOIN runs ru ON ru.id = r.run_id
               JOIN samples s ON s.id = ru.sample_id
               JOIN patients p ON p.id = s.patient_id
               WHERE g.id = ?"#,
            signature_id
        )
        .fetch_one(&self.pool)
        .await
        .context("reading a released result for the hub")?;
        let signatures = sqlx::query!(
            "SELECT id, printed_name, meaning, signed_at FROM result_signatures
             WHERE result_id = ? AND id <= ? ORDER BY id",
            r.result_id,
            signature_id
        )
        .fetch_all(&self.pool)
        .await
        .context("reading a result's signatures for the hub")?
        .into_iter()
        .map(|g| {
            Ok(Signature {
                printed_name: g.printed_name,
                meaning: g.meaning,
                signed_at: time(&g.signed_at, "signature time", g.id)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(ReleasedResult {
            run_id: unsigned(r.run_id, "run id", r.result_id)?,
            version: u32::try_from(r.version).map_err(|_| StoreError::Corrupt {
                what: "result version",
                row: r.result_id,
                reason: r.version.to_string(),
            })?,
            patient: PatientRef {
                mrn: r.mrn,
                birth_date: r.birth_date,
            },
            accession: r.accession,
            drawn_at: time(&r.drawn_at, "draw time", r.result_id)?,
            per_7_5ml: r.per_7_5ml,
            per_7_5ml_ci95_low: r.per_7_5ml_ci95_low,
            per_7_5ml_ci95_high: r.per_7_5ml_ci95_high,
            category: r.category,
            call: r.call,
            report_json: r.report_json,
            reason: r.reason,
            created_at: time(&r.created_at, "result time", r.result_id)?,
            signatures,
        })
    }
}
