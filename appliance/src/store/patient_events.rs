//! Treatment and event markers on a patient's trend ("started docetaxel", "surgery"): a day, a
//! short label, who recorded it and when. Records: never changed or deleted (triggers,
//! `migrations/0007`); each addition is audited `patient.event_add` in the same transaction.
//!
//! Not for: deciding who may add one or what a valid label or day is (the operations layer parses
//! them: [`EventLabel::parse`] holds the text rule, the day's range is the operation's).

use serde::Serialize;

use super::audit::append;
use super::error::{SqlxResultExt, found};
use super::timestamp::stored;
use super::{Actor, AuditEntry, PatientId, Store, StoreError, Timestamp, UserId, db};

/// What a marker says: 1 to [`EventLabel::MAX_CHARS`] characters once surrounding white space is
/// dropped (pages escape it; the API states the rule with
/// `operations::text_rule::trimmed_chars_pattern`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EventLabel(String);

impl EventLabel {
    /// Longest label, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a typed label.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let text = text.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(StoreError::Invalid {
                field: "label",
                reason: format!(
                    "say what happened in 1 to {} characters (e.g. \"started docetaxel\")",
                    Self::MAX_CHARS
                ),
            });
        }
        Ok(Self(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored marker.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatientEvent {
    /// Row id.
    pub id: i64,
    /// Whose trend.
    pub patient_id: PatientId,
    /// The day it happened.
    pub occurred_on: time::Date,
    /// What happened.
    pub label: EventLabel,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Who recorded it (`None`: the appliance).
    pub recorded_by: Option<UserId>,
    /// Their printed name at the time of reading (`None`: the appliance).
    pub recorded_by_name: Option<String>,
}

/// Markers one patient's trend shows at most (the oldest beyond are left out, and said so by the
/// caller comparing the count).
pub const MAX_EVENTS: u32 = 500;

fn day_text(day: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

impl Store {
    /// Adds a marker to a patient's trend, audited `patient.event_add` (who, the day, the label).
    pub async fn add_patient_event(
        &self,
        actor: &Actor,
        patient_id: PatientId,
        occurred_on: time::Date,
        label: &EventLabel,
    ) -> Result<PatientEvent, StoreError> {
        let now = Timestamp::now();
        let now_text = now.to_rfc3339();
        let day = day_text(occurred_on);
        let by = actor.user_column();
        let text = label.as_str();
        let mut tx = db::begin_write(&self.pool).await?;
        let patient = sqlx::query_scalar!("SELECT id FROM patients WHERE id = ?", patient_id.0)
            .fetch_optional(&mut *tx)
            .await
            .context("finding the patient of an event marker")?;
        found(patient, "patient", patient_id)?;
        let id = sqlx::query_scalar!(
            "INSERT INTO patient_events (patient_id, occurred_on, label, recorded_at, recorded_by)
             VALUES (?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            patient_id.0,
            day,
            text,
            now_text,
            by
        )
        .fetch_one(&mut *tx)
        .await
        .context("adding an event marker")?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("patient.event_add", "patient")
                .id(patient_id)
                .detail(serde_json::json!({ "event": id, "occurred_on": day, "label": text })),
        )
        .await?;
        tx.commit().await.context("committing an event marker")?;
        let name = match by {
            Some(user) => sqlx::query_scalar!("SELECT display_name FROM users WHERE id = ?", user)
                .fetch_optional(&self.pool)
                .await
                .context("reading a marker's author")?,
            None => None,
        };
        Ok(PatientEvent {
            id,
            patient_id,
            occurred_on,
            label: label.clone(),
            recorded_at: now,
            recorded_by: by.map(UserId),
            recorded_by_name: name,
        })
    }

    /// A patient's markers by day (then as recorded), at most [`MAX_EVENTS`] (the newest).
    pub async fn patient_events(
        &self,
        patient_id: PatientId,
    ) -> Result<Vec<PatientEvent>, StoreError> {
        let limit = i64::from(MAX_EVENTS);
        let rows = sqlx::query!(
            r#"SELECT e.id AS "id!", e.occurred_on, e.label, e.recorded_at, e.recorded_by,
                      u.display_name AS "recorded_by_name?"
               FROM patient_events e LEFT JOIN users u ON u.id = e.recorded_by
               WHERE e.patient_id = ?
               ORDER BY e.occurred_on DESC, e.id DESC LIMIT ?"#,
            patient_id.0,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("reading a patient's event markers")?;
        let mut events = rows
            .into_iter()
            .map(|row| {
                let corrupt = |what: &'static str, reason: String| StoreError::Corrupt {
                    what,
                    row: row.id,
                    reason,
                };
                Ok(PatientEvent {
                    id: row.id,
                    patient_id,
                    occurred_on: time::Date::parse(
                        &row.occurred_on,
                        time::macros::format_description!("[year]-[month]-[day]"),
                    )
                    .map_err(|e| corrupt("event marker day", e.to_string()))?,
                    label: EventLabel::parse(&row.label)
                        .map_err(|e| corrupt("event marker label", e.to_string()))?,
                    recorded_at: stored(&row.recorded_at, "event marker time", row.id)?,
                    recorded_by: row.recorded_by.map(UserId),
                    recorded_by_name: row.recorded_by_name,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        events.reverse();
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::patients::{BirthDate, Mrn, NewPatient};
    use crate::store::test_fixtures::count;
    use sqlx::SqlitePool;

    #[sqlx::test(migrations = "../migrations")]
    async fn a_marker_is_recorded_audited_and_never_changed(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let patient = store
            .add_patient(
                &Actor::Appliance,
                &NewPatient::new(
                    Mrn::parse("EV-1").unwrap(),
                    BirthDate::parse("1960-01-01", time::macros::date!(2026 - 12 - 02)).unwrap(),
                ),
            )
            .await
            .unwrap();
        let audited = count(&pool, "audit_log").await;
        let label = EventLabel::parse("  started docetaxel ").unwrap();
        let added = store
            .add_patient_event(
                &Actor::Appliance,
                patient.id,
                time::macros::date!(2026 - 11 - 20),
                &label,
            )
            .await
            .unwrap();
        assert_eq!(added.label.as_str(), "started docetaxel");
        assert_eq!(count(&pool, "audit_log").await, audited + 1);
        assert_eq!(store.patient_events(patient.id).await.unwrap(), vec![added]);
        for statement in [
            "UPDATE patient_events SET label = 'x'",
            "DELETE FROM patient_events",
        ] {
            assert!(
                sqlx::query(statement).execute(&pool).await.is_err(),
                "{statement}"
            );
        }
        let nobody = store
            .add_patient_event(
                &Actor::Appliance,
                PatientId(999),
                time::macros::date!(2026 - 11 - 20),
                &label,
            )
            .await;
        assert!(
            matches!(nobody, Err(StoreError::NotFound { .. })),
            "{nobody:?}"
        );
        for bad in ["", "   ", &"x".repeat(201)] {
            assert!(EventLabel::parse(bad).is_err(), "{bad:?}");
        }
    }
}
