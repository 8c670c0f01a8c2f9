//! Patients: two identifiers (the medical record number and the date of birth), a name or
//! initials only where the site's configuration asks for them, and the patient's indication.
//!
//! The appliance keeps the minimum a result needs (data minimisation): no address, and no name
//! unless the site asks (`[site] patient_name`). The MRN and the birth date are parsed once at the
//! edge ([`Mrn::parse`], [`BirthDate::parse`]) and are valid from then on. A patient stored before
//! birth dates were recorded has none (`None`) until their next run records it.

use std::fmt;

use serde::Serialize;

use super::audit::append;
use super::error::{SqlxResultExt, found};
use super::samples::Indication;
use super::timestamp::stored;
use super::{Actor, AuditEntry, PatientId, ResultId, Store, StoreError, Timestamp, db};

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
        let space = super::text_pattern::white_space();
        format!(
            r"^{space}*(?=[A-Za-z0-9./-]{{1,{max}}}{space}*$)[A-Za-z0-9./-]*[0-9][A-Za-z0-9./-]*{space}*$",
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

/// A date of birth, the second patient identifier: a calendar date (ISO 8601 `YYYY-MM-DD`, the
/// API's `birth_date`), not after today and not before [`BirthDate::EARLIEST_YEAR`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BirthDate(time::Date);

impl BirthDate {
    /// Birth years before this are typing errors.
    pub const EARLIEST_YEAR: i32 = 1900;

    /// Parses a typed birth date, `today` being the site's calendar date.
    pub fn parse(text: &str, today: time::Date) -> Result<Self, StoreError> {
        let shown: String = text.trim().chars().take(40).collect();
        let invalid = |reason: String| StoreError::Invalid {
            field: "birth date",
            reason,
        };
        let date = Self::parse_iso(text.trim()).map_err(|_| {
            invalid(format!(
                "{shown:?} is not a calendar date written YYYY-MM-DD (e.g. 1961-04-23)"
            ))
        })?;
        if date > today {
            return Err(invalid(format!("{shown} is after today ({today})")));
        }
        if date.year() < Self::EARLIEST_YEAR {
            return Err(invalid(format!(
                "{shown} is before the year {}",
                Self::EARLIEST_YEAR
            )));
        }
        Ok(Self(date))
    }

    /// A stored birth date (`YYYY-MM-DD`, written by [`BirthDate`]'s `Display`).
    pub(crate) fn stored(text: &str) -> Result<Self, time::error::Parse> {
        Self::parse_iso(text).map(Self)
    }

    fn parse_iso(text: &str) -> Result<time::Date, time::error::Parse> {
        time::Date::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
    }

    /// The date.
    pub fn date(self) -> time::Date {
        self.0
    }
}

impl fmt::Display for BirthDate {
    /// `YYYY-MM-DD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }
}

impl Serialize for BirthDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A patient's name or initials, kept only where the site's configuration asks for it: 1 to 100
/// characters, no control characters, surrounding whitespace dropped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses a name (`field` names it in errors: `name`, `initials`).
    pub fn parse(field: &'static str, text: &str) -> Result<Self, StoreError> {
        let name = text.trim();
        let invalid = |reason: &str| StoreError::Invalid {
            field,
            reason: reason.to_owned(),
        };
        if name.is_empty() {
            return Err(invalid("is empty"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(invalid("is longer than 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("holds a control character"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A patient to register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPatient {
    /// The first identifier.
    pub mrn: Mrn,
    /// The second identifier (`None` only for a record that predates it).
    pub birth_date: Option<BirthDate>,
    /// Name, only where the site asks for it.
    pub name: Option<PersonName>,
    /// Initials, only where the site asks for them.
    pub initials: Option<PersonName>,
    /// The patient's indication (sets the cut-off of their runs' calls).
    pub indication: Option<Indication>,
}

impl NewPatient {
    /// A patient known by their MRN and birth date only.
    pub fn new(mrn: Mrn, birth_date: BirthDate) -> Self {
        Self {
            mrn,
            birth_date: Some(birth_date),
            name: None,
            initials: None,
            indication: None,
        }
    }
}

/// A stored patient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Patient {
    /// Row id.
    pub id: PatientId,
    /// Medical record number.
    pub mrn: Mrn,
    /// Date of birth (`None`: registered before birth dates were recorded).
    pub birth_date: Option<BirthDate>,
    /// Name, where the site asks for it.
    pub name: Option<PersonName>,
    /// Initials, where the site asks for them.
    pub initials: Option<PersonName>,
    /// The patient's indication.
    pub indication: Option<Indication>,
    /// When the appliance first saw this patient.
    pub created_at: Timestamp,
}

impl Patient {
    /// Positive identification: a run for this patient gives their date of birth, and it must
    /// be theirs. A patient stored before birth dates were has none to compare (the run records
    /// the one it gives). The one check, for the API, the pages and the command line alike; a
    /// refusal happens before anything of the run is stored.
    pub fn confirm_birth_date(&self, given: Option<BirthDate>) -> Result<(), StoreError> {
        match (self.birth_date, given) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(StoreError::Invalid {
                field: "birth date",
                reason: format!(
                    "give the date of birth of the patient with MRN {} to confirm who this is",
                    self.mrn
                ),
            }),
            (Some(theirs), Some(given)) if theirs == given => Ok(()),
            (Some(_), Some(given)) => Err(StoreError::Invalid {
                field: "birth date",
                reason: format!(
                    "{given} is not the date of birth on record for MRN {}: check the \
                     patient's identity and the MRN (nothing was stored)",
                    self.mrn
                ),
            }),
        }
    }
}

/// The indication a run is counted for, decided by [`Patient::run_indication`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunIndication {
    /// The indication (sets the cut-off); `None` when neither the patient nor the order has one.
    pub indication: Option<Indication>,
    /// The reason of an explicit override, when the order's indication is not the patient's.
    pub override_reason: Option<String>,
}

impl Patient {
    /// The one rule for a run's indication: the patient's, unless the order names another with
    /// a reason (an explicit override, stored with the sample and audited with it). An order
    /// without an indication takes the patient's; a patient without one takes the order's.
    pub fn run_indication(
        &self,
        ordered: Option<&Indication>,
        override_reason: Option<&str>,
    ) -> Result<RunIndication, StoreError> {
        let reason = override_reason.map(str::trim).filter(|r| !r.is_empty());
        match (&self.indication, ordered) {
            (theirs, None) => Ok(RunIndication {
                indication: theirs.clone(),
                override_reason: None,
            }),
            (None, Some(ordered)) => Ok(RunIndication {
                indication: Some(ordered.clone()),
                override_reason: None,
            }),
            (Some(theirs), Some(ordered)) if theirs == ordered => Ok(RunIndication {
                indication: Some(ordered.clone()),
                override_reason: None,
            }),
            (Some(theirs), Some(ordered)) => match reason {
                Some(reason) if (3..=1000).contains(&reason.chars().count()) => Ok(RunIndication {
                    indication: Some(ordered.clone()),
                    override_reason: Some(reason.to_owned()),
                }),
                _ => Err(StoreError::Invalid {
                    field: "indication",
                    reason: format!(
                        "the patient with MRN {} is recorded as {}, not {}: run for {} or give \
                         the reason for this run's override (3 to 1000 characters)",
                        self.mrn,
                        theirs.as_str(),
                        ordered.as_str(),
                        theirs.as_str()
                    ),
                }),
            },
        }
    }
}

/// The patient's identifiers a released result version carries to the hospital's systems, as
/// they stood when the version was released (taken in the release's transaction,
/// `migrations/0017`): a later change to the patient's record does not reach the messages of an
/// earlier release; a correction's release takes them again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleasedIdentifiers {
    /// Whose.
    pub patient_id: PatientId,
    /// The MRN.
    pub mrn: Mrn,
    /// The date of birth (`None`: none was recorded at the release).
    pub birth_date: Option<BirthDate>,
    /// The name, where the site kept it.
    pub name: Option<PersonName>,
    /// The initials, where the site kept them.
    pub initials: Option<PersonName>,
}

/// A patients row as read.
pub(crate) struct PatientRow {
    pub(crate) id: i64,
    pub(crate) mrn: String,
    pub(crate) birth_date: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) initials: Option<String>,
    pub(crate) indication: Option<String>,
    pub(crate) created_at: String,
}

pub(crate) fn patient_from(row: PatientRow) -> Result<Patient, StoreError> {
    let id = row.id;
    let corrupt = |what: &'static str| {
        move |error: StoreError| StoreError::Corrupt {
            what,
            row: id,
            reason: error.to_string(),
        }
    };
    Ok(Patient {
        id: PatientId(id),
        mrn: Mrn::parse(&row.mrn).map_err(corrupt("patient MRN"))?,
        birth_date: row
            .birth_date
            .map(|text| {
                BirthDate::parse_iso(&text)
                    .map(BirthDate)
                    .map_err(|error| StoreError::Corrupt {
                        what: "patient birth date",
                        row: id,
                        reason: format!("{text:?}: {error}"),
                    })
            })
            .transpose()?,
        name: row
            .name
            .map(|n| PersonName::parse("name", &n))
            .transpose()
            .map_err(corrupt("patient name"))?,
        initials: row
            .initials
            .map(|n| PersonName::parse("initials", &n))
            .transpose()
            .map_err(corrupt("patient initials"))?,
        indication: row
            .indication
            .map(|i| Indication::parse(&i))
            .transpose()
            .map_err(corrupt("patient indication"))?,
        created_at: stored(&row.created_at, "patient creation time", id)?,
    })
}

/// The patient with this id, read on `conn` (so that a reader needing more than the patient
/// borrows one connection for all of it).
pub(crate) async fn patient_in(
    conn: &mut sqlx::SqliteConnection,
    id: PatientId,
) -> Result<Patient, StoreError> {
    let row = sqlx::query_as!(
        PatientRow,
        "SELECT id, mrn, birth_date, name, initials, indication, created_at
             FROM patients WHERE id = ?",
        id.0
    )
    .fetch_optional(&mut *conn)
    .await
    .context("looking up a patient")?;
    patient_from(found(row, "patient", id)?)
}

impl Store {
    /// Adds a patient; an MRN that exists already is refused.
    pub async fn add_patient(
        &self,
        actor: &Actor,
        new: &NewPatient,
    ) -> Result<Patient, StoreError> {
        let now = Timestamp::now();
        let now_text = now.to_rfc3339();
        let by = actor.user_column();
        let mrn_text = new.mrn.as_str();
        let birth_date = new.birth_date.map(|d| d.to_string());
        let name = new.name.as_ref().map(PersonName::as_str);
        let initials = new.initials.as_ref().map(PersonName::as_str);
        let indication = new.indication.as_ref().map(Indication::as_str);
        let mut tx = db::begin_write(&self.pool).await?;
        let id = sqlx::query_scalar!(
            "INSERT INTO patients (mrn, birth_date, name, initials, indication, created_at, created_by)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            mrn_text,
            birth_date,
            name,
            initials,
            indication,
            now_text,
            by
        )
        .fetch_one(&mut *tx)
        .await
        .unique("adding a patient", "patient with MRN", mrn_text)?;
        // The name and initials stay out of the audit trail (minimum necessary): it says that
        // they were given, not what they are.
        append(
            &mut tx,
            actor,
            AuditEntry::new("patient.add", "patient")
                .id(id)
                .detail(serde_json::json!({
                    "mrn": mrn_text, "birth_date": birth_date, "indication": indication,
                    "name_given": name.is_some(), "initials_given": initials.is_some(),
                })),
        )
        .await?;
        tx.commit().await.context("committing a new patient")?;
        Ok(Patient {
            id: PatientId(id),
            mrn: new.mrn.clone(),
            birth_date: new.birth_date,
            name: new.name.clone(),
            initials: new.initials.clone(),
            indication: new.indication.clone(),
            created_at: now,
        })
    }

    /// Records the birth date of a patient stored before birth dates were (the first run that
    /// gives it); a patient who has one keeps it — a different date is a mismatch, for the caller
    /// to refuse, never an overwrite.
    pub async fn record_birth_date(
        &self,
        actor: &Actor,
        id: PatientId,
        birth_date: BirthDate,
    ) -> Result<Patient, StoreError> {
        let text = birth_date.to_string();
        let mut tx = db::begin_write(&self.pool).await?;
        let changed = sqlx::query!(
            "UPDATE patients SET birth_date = ? WHERE id = ? AND birth_date IS NULL",
            text,
            id.0
        )
        .execute(&mut *tx)
        .await
        .context("recording a patient's birth date")?
        .rows_affected();
        if changed == 1 {
            append(
                &mut tx,
                actor,
                AuditEntry::new("patient.birth_date_record", "patient")
                    .id(id.0)
                    .detail(serde_json::json!({ "birth_date": text })),
            )
            .await?;
        }
        tx.commit()
            .await
            .context("committing a patient's birth date")?;
        self.patient(id).await
    }

    /// Changes a patient's indication (which sets their runs' cut-off), audited
    /// `patient.indication_change` with the previous one and the reason.
    pub async fn change_patient_indication(
        &self,
        actor: &Actor,
        id: PatientId,
        indication: Option<&Indication>,
        reason: &str,
    ) -> Result<Patient, StoreError> {
        let reason = reason.trim();
        if reason.chars().count() < 3 || reason.chars().count() > 1000 {
            return Err(StoreError::Invalid {
                field: "reason",
                reason: "an indication change needs a reason of 3 to 1000 characters".into(),
            });
        }
        let new_text = indication.map(Indication::as_str);
        let mut tx = db::begin_write(&self.pool).await?;
        let previous = sqlx::query_scalar!("SELECT indication FROM patients WHERE id = ?", id.0)
            .fetch_optional(&mut *tx)
            .await
            .context("reading a patient's indication")?;
        let previous = found(previous, "patient", id)?;
        sqlx::query!(
            "UPDATE patients SET indication = ? WHERE id = ?",
            new_text,
            id.0
        )
        .execute(&mut *tx)
        .await
        .context("changing a patient's indication")?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("patient.indication_change", "patient")
                .id(id.0)
                .reason(reason)
                .detail(serde_json::json!({ "from": previous, "to": new_text })),
        )
        .await?;
        tx.commit()
            .await
            .context("committing a patient's indication")?;
        self.patient(id).await
    }

    /// The patient with this MRN, if any.
    pub async fn patient_by_mrn(&self, mrn: &Mrn) -> Result<Option<Patient>, StoreError> {
        let mrn_text = mrn.as_str();
        let row = sqlx::query_as!(
            PatientRow,
            "SELECT id, mrn, birth_date, name, initials, indication, created_at
             FROM patients WHERE mrn = ?",
            mrn_text
        )
        .fetch_optional(&self.pool)
        .await
        .context("looking up a patient by MRN")?;
        row.map(patient_from).transpose()
    }

    /// The patient with this MRN, added first when new (a bedside run for a new patient).
    pub async fn patient_by_mrn_or_add(
        &self,
        actor: &Actor,
        new: &NewPatient,
    ) -> Result<Patient, StoreError> {
        if let Some(patient) = self.patient_by_mrn(&new.mrn).await? {
            return Ok(patient);
        }
        match self.add_patient(actor, new).await {
            // Another request added it in between.
            Err(StoreError::Duplicate { .. }) => found(
                self.patient_by_mrn(&new.mrn).await?,
                "patient with MRN",
                &new.mrn,
            ),
            other => other,
        }
    }

    /// The patient's identifiers the released result version `result_id` was released under
    /// (not found for a version never released).
    pub async fn released_identifiers(
        &self,
        result_id: ResultId,
    ) -> Result<ReleasedIdentifiers, StoreError> {
        let row = sqlx::query_as!(
            PatientRow,
            "SELECT patient_id AS id, mrn, birth_date, name, initials,
                    NULL AS \"indication?: String\", taken_at AS created_at
             FROM released_identifiers WHERE result_id = ?",
            result_id.0
        )
        .fetch_optional(&self.pool)
        .await
        .context("reading the identifiers a result was released under")?;
        // Read and checked as a patients row is (the same columns, the same rules).
        let patient = patient_from(found(
            row,
            "identifiers released under, of result",
            result_id,
        )?)?;
        Ok(ReleasedIdentifiers {
            patient_id: patient.id,
            mrn: patient.mrn,
            birth_date: patient.birth_date,
            name: patient.name,
            initials: patient.initials,
        })
    }

    /// The patient with this id.
    pub async fn patient(&self, id: PatientId) -> Result<Patient, StoreError> {
        let mut conn = self.pool.acquire().await.context("looking up a patient")?;
        patient_in(&mut conn, id).await
    }

    /// One page of the patient list, by MRN: the patients whose MRN starts with `search`'s
    /// prefix (and whose birth date is `search`'s, when it has one), after the MRN `after` (the
    /// last of the page before; none: the first page), at most `limit` (1 to 1000). Keyset
    /// paging: one indexed query a page however many patients there are, and a patient added
    /// between pages is neither shown twice nor shifts the pages.
    pub async fn patients_page(
        &self,
        search: &PatientFilter,
        after: Option<&Mrn>,
        limit: u32,
    ) -> Result<Vec<Patient>, StoreError> {
        let limit = i64::from(limit.clamp(1, 1000));
        // Every MRN character sorts below U+007F, so [prefix, prefix + U+007F) holds exactly the
        // MRNs that start with the prefix: a range on the MRN index, not a LIKE scan.
        let low = search.mrn_prefix.clone();
        let high = format!("{low}\u{7f}");
        let after = after.map_or("", Mrn::as_str);
        let rows = match search.birth_date {
            None => {
                sqlx::query_as!(
                    PatientRow,
                    "SELECT id, mrn, birth_date, name, initials, indication, created_at
                 FROM patients WHERE mrn >= ? AND mrn < ? AND mrn > ? ORDER BY mrn LIMIT ?",
                    low,
                    high,
                    after,
                    limit
                )
                .fetch_all(&self.pool)
                .await
            }
            Some(birth_date) => {
                let birth_date = birth_date.to_string();
                sqlx::query_as!(
                    PatientRow,
                    "SELECT id, mrn, birth_date, name, initials, indication, created_at
                     FROM patients
                     WHERE birth_date = ? AND mrn >= ? AND mrn < ? AND mrn > ?
                     ORDER BY mrn LIMIT ?",
                    birth_date,
                    low,
                    high,
                    after,
                    limit
                )
                .fetch_all(&self.pool)
                .await
            }
        }
        .context("listing a page of patients")?;
        rows.into_iter().map(patient_from).collect()
    }
}

/// What the patient list is narrowed to: an MRN prefix (as stored: uppercase, MRN characters
/// only; empty: every MRN) and, optionally, a date of birth. Built by the operations layer's
/// search parser, which states the rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatientFilter {
    /// The MRN prefix, uppercase.
    pub mrn_prefix: String,
    /// The date of birth, when searched for.
    pub birth_date: Option<BirthDate>,
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
        let born = birth("1961-04-23");
        let patient = store
            .add_patient(&Actor::Appliance, &NewPatient::new(mrn.clone(), born))
            .await
            .unwrap();
        assert_eq!(patient.birth_date, Some(born));
        let again = store
            .add_patient(
                &Actor::Appliance,
                &NewPatient::new(Mrn::parse("AB-1001").unwrap(), born),
            )
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
            .patient_by_mrn_or_add(&Actor::Appliance, &NewPatient::new(mrn.clone(), born))
            .await
            .unwrap();
        assert_eq!(same.id, patient.id);
        let prefix = |mrn_prefix: &str| PatientFilter {
            mrn_prefix: mrn_prefix.to_owned(),
            birth_date: None,
        };
        assert_eq!(
            store.patients_page(&prefix("AB-"), None, 10).await.unwrap(),
            vec![patient.clone()]
        );
        assert!(
            store
                .patients_page(&prefix("AB-1001"), Some(&mrn), 10)
                .await
                .unwrap()
                .is_empty(),
            "nothing after the last"
        );
        assert!(
            store
                .patients_page(&prefix("AC"), None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    fn birth(text: &str) -> BirthDate {
        BirthDate::parse(text, time::macros::date!(2026 - 12 - 02)).unwrap()
    }

    #[test]
    fn birth_dates_are_calendar_dates_in_the_past() {
        let today = time::macros::date!(2026 - 12 - 02);
        assert_eq!(birth(" 1961-04-23 ").to_string(), "1961-04-23");
        assert_eq!(
            serde_json::to_value(birth("2000-02-29")).unwrap(),
            serde_json::json!("2000-02-29")
        );
        for bad in [
            "",
            "23.04.1961",
            "1961-4-23",
            "1961-02-30",
            "2026-12-03",
            "1899-12-31",
        ] {
            let refused = BirthDate::parse(bad, today);
            assert!(
                matches!(
                    refused,
                    Err(StoreError::Invalid {
                        field: "birth date",
                        ..
                    })
                ),
                "{bad:?}: {refused:?}"
            );
        }
        assert!(BirthDate::parse("2026-12-02", today).is_ok());
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_birth_date_is_recorded_once_and_an_indication_change_is_audited(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let legacy = NewPatient {
            birth_date: None,
            ..NewPatient::new(Mrn::parse("OLD-1").unwrap(), birth("1950-01-01"))
        };
        let patient = store.add_patient(&Actor::Appliance, &legacy).await.unwrap();
        assert_eq!(patient.birth_date, None);
        let recorded = store
            .record_birth_date(&Actor::Appliance, patient.id, birth("1950-01-02"))
            .await
            .unwrap();
        assert_eq!(recorded.birth_date, Some(birth("1950-01-02")));
        let kept = store
            .record_birth_date(&Actor::Appliance, patient.id, birth("1970-07-07"))
            .await
            .unwrap();
        assert_eq!(
            kept.birth_date,
            Some(birth("1950-01-02")),
            "never overwritten"
        );

        let prostate = Indication::parse("prostate").unwrap();
        let refused = store
            .change_patient_indication(&Actor::Appliance, patient.id, Some(&prostate), " ")
            .await;
        assert!(matches!(
            refused,
            Err(StoreError::Invalid {
                field: "reason",
                ..
            })
        ));
        let changed = store
            .change_patient_indication(
                &Actor::Appliance,
                patient.id,
                Some(&prostate),
                "referral letter says prostate",
            )
            .await
            .unwrap();
        assert_eq!(changed.indication, Some(prostate));
        let (reason, detail): (String, String) = sqlx::query_as(
            "SELECT reason, detail_json FROM audit_log WHERE action = 'patient.indication_change'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(detail["from"], serde_json::Value::Null);
        assert_eq!(detail["to"], "prostate");
        assert_eq!(reason, "referral letter says prostate");
    }

    fn patient(birth_date: Option<BirthDate>, indication: Option<&str>) -> Patient {
        Patient {
            id: PatientId(1),
            mrn: Mrn::parse("ID-1").unwrap(),
            birth_date,
            name: None,
            initials: None,
            indication: indication.map(|i| Indication::parse(i).unwrap()),
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn a_known_patient_is_confirmed_by_their_birth_date_and_a_mismatch_refused() {
        let born = birth("1961-04-23");
        let known = patient(Some(born), None);
        assert!(known.confirm_birth_date(Some(born)).is_ok());
        for given in [None, Some(birth("1961-04-24")), Some(birth("1916-04-23"))] {
            let refused = known.confirm_birth_date(given);
            assert!(
                matches!(
                    refused,
                    Err(StoreError::Invalid {
                        field: "birth date",
                        ..
                    })
                ),
                "{given:?}: {refused:?}"
            );
        }
        // A record from before birth dates: nothing to compare (the run records it).
        assert!(patient(None, None).confirm_birth_date(Some(born)).is_ok());
    }

    #[test]
    fn a_run_is_for_the_patients_indication_unless_overridden_with_a_reason() {
        let breast = Indication::parse("breast").unwrap();
        let prostate = Indication::parse("prostate").unwrap();
        let theirs = patient(None, Some("prostate"));
        let same = theirs.run_indication(None, None).unwrap();
        assert_eq!(same.indication, Some(prostate.clone()));
        assert_eq!(same.override_reason, None);
        assert_eq!(
            theirs
                .run_indication(Some(&prostate), None)
                .unwrap()
                .indication,
            Some(prostate.clone())
        );
        for reason in [None, Some(""), Some("  x ")] {
            let refused = theirs.run_indication(Some(&breast), reason);
            assert!(
                matches!(refused, Err(StoreError::Invalid { field: "indication", ref reason })
                    if reason.contains("prostate") && reason.contains("breast")),
                "{refused:?}"
            );
        }
        let overridden = theirs
            .run_indication(Some(&breast), Some(" second primary, oncologist's order "))
            .unwrap();
        assert_eq!(overridden.indication, Some(breast.clone()));
        assert_eq!(
            overridden.override_reason.as_deref(),
            Some("second primary, oncologist's order")
        );
        let new = patient(None, None)
            .run_indication(Some(&breast), None)
            .unwrap();
        assert_eq!(new.indication, Some(breast));
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
