//! Patients: a medical record number and nothing more.
//!
//! The appliance keeps the minimum a result needs (data minimisation): no name, birth date or
//! address. The MRN is parsed once at the edge ([`Mrn::parse`]) and is valid from then on.

use std::fmt;

use serde::Serialize;

use super::audit::append;
use super::error::{SqlxResultExt, found};
use super::timestamp::stored;
use super::{Actor, AuditEntry, PatientId, Store, StoreError, Timestamp, db};

/// A medical record number: 1 to 32 characters of ASCII letters, digits, `-`, `.` and `/`, with
/// at least one digit; surrounding whitespace is dropped and letters are uppercased (record
/// systems treat MRNs case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Mrn(String);

impl Mrn {
    /// Longest accepted MRN, in characters.
    pub const MAX_CHARS: usize = 32;

    /// [`Mrn::parse`]'s rule as an ECMA-262 regular expression, the form in which JSON Schema
    /// (the API's OpenAPI document) states it: optional surrounding white space, then 1 to
    /// [`Mrn::MAX_CHARS`] letters (either case), digits, `-`, `.` and `/`, at least one a digit.
    /// The API's conformance test sends values at and beyond each end of the rule and checks
    /// that this pattern and `parse` agree on every one.
    pub fn pattern() -> String {
        format!(
            r"^\s*(?=[A-Za-z0-9./-]{{1,{max}}}\s*$)[A-Za-z0-9./-]*[0-9][A-Za-z0-9./-]*\s*$",
            max = Self::MAX_CHARS
        )
    }

    /// Parses an MRN.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let mrn = text.trim().to_ascii_uppercase();
        let invalid = |reason: &str| StoreError::Invalid {
            field: "MRN",
            reason: format!("{text:?}: {reason}"),
        };
        if mrn.is_empty() {
            return Err(invalid("is empty"));
        }
        if mrn.len() > Self::MAX_CHARS {
            return Err(invalid("is longer than 32 characters"));
        }
        if let Some(bad) = mrn
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/')))
        {
            return Err(invalid(&format!(
                "holds {bad:?}; only letters, digits, '-', '.' and '/' are allowed"
            )));
        }
        if !mrn.chars().any(|c| c.is_ascii_digit()) {
            return Err(invalid("has no digit"));
        }
        Ok(Self(mrn))
    }

    /// The MRN.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Mrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored patient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Patient {
    /// Row id.
    pub id: PatientId,
    /// Medical record number.
    pub mrn: Mrn,
    /// When the appliance first saw this patient.
    pub created_at: Timestamp,
}

fn patient_from(id: i64, mrn: String, created_at: &str) -> Result<Patient, StoreError> {
    Ok(Patient {
        id: PatientId(id),
        mrn: Mrn::parse(&mrn).map_err(|error| StoreError::Corrupt {
            what: "patient MRN",
            row: id,
            reason: error.to_string(),
        })?,
        created_at: stored(created_at, "patient creation time", id)?,
    })
}

impl Store {
    /// Adds a patient; an MRN that exists already is refused.
    pub async fn add_patient(&self, actor: &Actor, mrn: &Mrn) -> Result<Patient, StoreError> {
        let now = Timestamp::now();
        let now_text = now.to_rfc3339();
        let by = actor.user_column();
        let mrn_text = mrn.as_str();
        let mut tx = db::begin_write(&self.pool).await?;
        let id = sqlx::query_scalar!(
            "INSERT INTO patients (mrn, created_at, created_by) VALUES (?, ?, ?) RETURNING id AS \"id!\"",
            mrn_text,
            now_text,
            by
        )
        .fetch_one(&mut *tx)
        .await
        .unique("adding a patient", "patient with MRN", mrn_text)?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("patient.add", "patient")
                .id(id)
                .detail(serde_json::json!({ "mrn": mrn_text })),
        )
        .await?;
        tx.commit().await.context("committing a new patient")?;
        Ok(Patient {
            id: PatientId(id),
            mrn: mrn.clone(),
            created_at: now,
        })
    }

    /// The patient with this MRN, if any.
    pub async fn patient_by_mrn(&self, mrn: &Mrn) -> Result<Option<Patient>, StoreError> {
        let mrn_text = mrn.as_str();
        let row = sqlx::query!(
            "SELECT id, mrn, created_at FROM patients WHERE mrn = ?",
            mrn_text
        )
        .fetch_optional(&self.pool)
        .await
        .context("looking up a patient by MRN")?;
        row.map(|r| patient_from(r.id, r.mrn, &r.created_at))
            .transpose()
    }

    /// The patient with this MRN, added first when new (a bedside run for a new patient).
    pub async fn patient_by_mrn_or_add(
        &self,
        actor: &Actor,
        mrn: &Mrn,
    ) -> Result<Patient, StoreError> {
        if let Some(patient) = self.patient_by_mrn(mrn).await? {
            return Ok(patient);
        }
        match self.add_patient(actor, mrn).await {
            // Another request added it in between.
            Err(StoreError::Duplicate { .. }) => {
                found(self.patient_by_mrn(mrn).await?, "patient with MRN", mrn)
            }
            other => other,
        }
    }

    /// The patient with this id.
    pub async fn patient(&self, id: PatientId) -> Result<Patient, StoreError> {
        let row = sqlx::query!(
            "SELECT id, mrn, created_at FROM patients WHERE id = ?",
            id.0
        )
        .fetch_optional(&self.pool)
        .await
        .context("looking up a patient")?;
        let row = found(row, "patient", id)?;
        patient_from(row.id, row.mrn, &row.created_at)
    }

    /// Patients whose MRN starts with `prefix` (already parsed or raw), at most `limit`, by MRN.
    pub async fn patients_with_mrn_prefix(
        &self,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<Patient>, StoreError> {
        let pattern = format!(
            "{}%",
            prefix
                .trim()
                .to_ascii_uppercase()
                .replace(['%', '_', '\\'], "")
        );
        let limit = i64::from(limit.clamp(1, 1000));
        let rows = sqlx::query!(
            "SELECT id, mrn, created_at FROM patients WHERE mrn LIKE ? ORDER BY mrn LIMIT ?",
            pattern,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("searching patients")?;
        rows.into_iter()
            .map(|r| patient_from(r.id, r.mrn, &r.created_at))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_fixtures::count;
    use sqlx::SqlitePool;

    #[sqlx::test(migrations = "../migrations")]
    async fn an_mrn_is_registered_once(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let mrn = Mrn::parse("ab-1001").unwrap();
        let patient = store.add_patient(&Actor::Appliance, &mrn).await.unwrap();
        let again = store
            .add_patient(&Actor::Appliance, &Mrn::parse("AB-1001").unwrap())
            .await;
        assert!(
            matches!(again, Err(StoreError::Duplicate { ref key, .. }) if key == "AB-1001"),
            "{again:?}"
        );
        assert_eq!(count(&pool, "patients").await, 1);
        assert_eq!(
            store.patient_by_mrn(&mrn).await.unwrap(),
            Some(patient.clone())
        );
        assert_eq!(store.patient(patient.id).await.unwrap(), patient);
        let same = store
            .patient_by_mrn_or_add(&Actor::Appliance, &mrn)
            .await
            .unwrap();
        assert_eq!(same.id, patient.id);
        assert_eq!(
            store.patients_with_mrn_prefix("ab-", 10).await.unwrap(),
            vec![patient]
        );
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn unknown_patients_are_not_found(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let missing = store.patient(PatientId(42)).await;
        assert!(matches!(
            missing,
            Err(StoreError::NotFound {
                entity: "patient",
                ..
            })
        ));
        let mrn = Mrn::parse("9999").unwrap();
        assert_eq!(store.patient_by_mrn(&mrn).await.unwrap(), None);
    }

    #[test]
    fn mrns_are_trimmed_and_uppercased() {
        let mrn = Mrn::parse("  ab-1234/5 ").expect("a valid MRN");
        assert_eq!(mrn.as_str(), "AB-1234/5");
    }

    #[test]
    fn bad_mrns_are_refused() {
        for bad in [
            "",
            "   ",
            "ABC",
            "12 34",
            "12\n34",
            "1234é",
            "12;DROP",
            &"9".repeat(33),
        ] {
            assert!(Mrn::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Mrn::parse(&"9".repeat(32)).is_ok());
    }
}
