//! The instrument log: what the appliance itself did and saw (tune, nutation, temperatures,
//! errors, notable events), with the procedure's full report as JSON and the numbers a dashboard
//! shows (f0, 90° pulse, temperature) as columns.
//!
//! Not the audit trail: entries here are observations by the instrument, not changes by a user,
//! so they are not hash-chained. Not application logging either (that is `tracing`).

use serde::Serialize;

use super::error::SqlxResultExt;
use super::timestamp::stored;
use super::{JsonReport, LogEntryId, RunId, Store, StoreError, Timestamp};

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// A tune (f0 search).
    Tune,
    /// A nutation (90° pulse search).
    Nutation,
    /// A temperature reading.
    Temperature,
    /// A fault.
    Error,
    /// Anything else worth keeping (start-up, shutdown, board identity).
    Event,
}

impl LogKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tune => "tune",
            Self::Nutation => "nutation",
            Self::Temperature => "temperature",
            Self::Error => "error",
            Self::Event => "event",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Tune,
            Self::Nutation,
            Self::Temperature,
            Self::Error,
            Self::Event,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// An entry to write.
#[derive(Clone, Debug, PartialEq)]
pub struct NewLogEntry {
    /// What it records.
    pub kind: LogKind,
    /// The run it happened in, if any.
    pub run_id: Option<RunId>,
    /// A sentence a technician understands.
    pub message: String,
    /// Larmor frequency found, Hz.
    pub freq_hz: Option<f64>,
    /// 90° pulse length found, µs.
    pub pulse_us: Option<f64>,
    /// Magnet temperature, °C.
    pub temp_c: Option<f64>,
    /// The procedure's whole report.
    pub detail: JsonReport,
}

impl NewLogEntry {
    /// An entry with only a message.
    pub fn message(kind: LogKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            run_id: None,
            message: message.into(),
            freq_hz: None,
            pulse_us: None,
            temp_c: None,
            detail: JsonReport::empty_object(),
        }
    }
}

/// A stored entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEntry {
    /// Row id.
    pub id: LogEntryId,
    /// When.
    pub logged_at: Timestamp,
    /// What.
    pub kind: LogKind,
    /// In which run.
    pub run_id: Option<RunId>,
    /// The sentence.
    pub message: String,
    /// f0, Hz.
    pub freq_hz: Option<f64>,
    /// 90° pulse, µs.
    pub pulse_us: Option<f64>,
    /// Temperature, °C.
    pub temp_c: Option<f64>,
    /// The whole report.
    pub detail: JsonReport,
}

impl Store {
    /// Writes an entry.
    pub async fn log_instrument(&self, entry: &NewLogEntry) -> Result<LogEntryId, StoreError> {
        let finite = [entry.freq_hz, entry.pulse_us, entry.temp_c]
            .iter()
            .flatten()
            .all(|v| v.is_finite());
        if !finite {
            return Err(StoreError::Invalid {
                field: "instrument log entry",
                reason: "frequency, pulse and temperature must be finite".into(),
            });
        }
        let now = Timestamp::now().to_rfc3339();
        let kind = entry.kind.as_str();
        let run = entry.run_id.map(|r| r.0);
        let detail = entry.detail.to_text();
        let id = sqlx::query_scalar!(
            "INSERT INTO instrument_log (logged_at, kind, run_id, message, freq_hz, pulse_us,
                                         temp_c, detail_json)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            now,
            kind,
            run,
            entry.message,
            entry.freq_hz,
            entry.pulse_us,
            entry.temp_c,
            detail,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|source| match &source {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                entity: "run",
                key: format!("{run:?}"),
            },
            _ => StoreError::Database {
                context: "writing the instrument log",
                source,
            },
        })?;
        Ok(LogEntryId(id))
    }

    /// The newest entries, optionally of one kind, newest first.
    pub async fn instrument_log(
        &self,
        kind: Option<LogKind>,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let kind = kind.map(LogKind::as_str);
        let limit = i64::from(limit.clamp(1, 1000));
        let rows = sqlx::query!(
            "SELECT id, logged_at, kind, run_id, message, freq_hz, pulse_us, temp_c, detail_json
             FROM instrument_log WHERE (?1 IS NULL OR kind = ?1) ORDER BY id DESC LIMIT ?2",
            kind,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the instrument log")?;
        rows.into_iter()
            .map(|r| {
                Ok(LogEntry {
                    id: LogEntryId(r.id),
                    logged_at: stored(&r.logged_at, "log time", r.id)?,
                    kind: LogKind::parse(&r.kind).ok_or_else(|| StoreError::Corrupt {
                        what: "log kind",
                        row: r.id,
                        reason: format!("{:?}", r.kind),
                    })?,
                    run_id: r.run_id.map(RunId),
                    message: r.message,
                    freq_hz: r.freq_hz,
                    pulse_us: r.pulse_us,
                    temp_c: r.temp_c,
                    detail: JsonReport::stored(&r.detail_json, "log detail", r.id)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::SqlitePool;

    #[sqlx::test(migrations = "../migrations")]
    async fn entries_are_kept_and_filtered(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let tune = NewLogEntry {
            freq_hz: Some(21_302_117.0),
            temp_c: Some(30.1),
            detail: JsonReport::from_value(serde_json::json!({ "steps": 14 })),
            ..NewLogEntry::message(LogKind::Tune, "tuned to 21.302117 MHz")
        };
        store.log_instrument(&tune).await.unwrap();
        store
            .log_instrument(&NewLogEntry::message(
                LogKind::Error,
                "board did not answer",
            ))
            .await
            .unwrap();
        let all = store.instrument_log(None, 10).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].kind, LogKind::Error);
        let tunes = store.instrument_log(Some(LogKind::Tune), 10).await.unwrap();
        assert_eq!(tunes.len(), 1);
        assert_eq!(tunes[0].freq_hz, Some(21_302_117.0));
        assert_eq!(tunes[0].detail, tune.detail);
        let orphan = NewLogEntry {
            run_id: Some(RunId(12)),
            ..NewLogEntry::message(LogKind::Event, "x")
        };
        let orphan = store.log_instrument(&orphan).await;
        assert!(
            matches!(orphan, Err(StoreError::NotFound { entity: "run", .. })),
            "{orphan:?}"
        );
        let infinite = NewLogEntry {
            temp_c: Some(f64::INFINITY),
            ..NewLogEntry::message(LogKind::Temperature, "x")
        };
        assert!(store.log_instrument(&infinite).await.is_err());
    }
}
