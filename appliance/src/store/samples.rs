//! Samples: one blood draw of a patient, its specimen accession number, processed volume,
//! indication and tubes.
//!
//! Each sample is split into tubes: the control tube (the patient's blood without targeted
//! particles), the quad-targeted tube, and optional further tubes, each with its own label
//! (barcode). Runs measure the tubes of one sample.

use serde::Serialize;

use super::audit::append;
use super::error::{SqlxResultExt, found};
use super::timestamp::stored;
use super::{Actor, AuditEntry, PatientId, SampleId, Store, StoreError, Timestamp, TubeId, db};

/// A processed blood volume in mL, from [`BloodVolume::MIN_ML`] to [`BloodVolume::MAX_ML`]:
/// the one limit on the volume, for a run ordered from the API, the new-run page or the command
/// line (they all parse it here, through `operations::runs::RunOrder`) and for a correction.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct BloodVolume(f64);

impl BloodVolume {
    /// Smallest accepted volume: the start of `nmr_core::assay::plausibility::BLOOD_ML`, the one
    /// range the count is also checked against (below it the Poisson sampling of the draw
    /// dominates any count).
    pub const MIN_ML: f64 = *nmr_core::assay::plausibility::BLOOD_ML.start();
    /// Largest accepted volume (several CellSave tubes): the end of the same range.
    pub const MAX_ML: f64 = *nmr_core::assay::plausibility::BLOOD_ML.end();

    /// Parses a volume in mL, checked by `nmr_core::assay::check_blood_ml`.
    pub fn from_ml(blood_ml: f64) -> Result<Self, StoreError> {
        nmr_core::assay::check_blood_ml(blood_ml)
            .map(|()| Self(blood_ml))
            .map_err(|error| StoreError::Invalid {
                field: "blood volume",
                reason: error.reason,
            })
    }

    /// The volume in mL.
    pub fn ml(self) -> f64 {
        self.0
    }
}

/// A short lowercase word: 1 to 32 ASCII lowercase letters, digits, `_` or `-`.
fn parse_word(field: &'static str, text: &str) -> Result<String, StoreError> {
    let word = text.trim().to_ascii_lowercase();
    let ok = !word.is_empty()
        && word.len() <= 32
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    if ok {
        Ok(word)
    } else {
        Err(StoreError::Invalid {
            field,
            reason: format!(
                "{text:?} must be 1 to 32 letters, digits, '_' or '-' (e.g. \"breast\")"
            ),
        })
    }
}

/// The clinical indication (`breast`, `prostate`, `colorectal`, ...); cut-offs per indication
/// live in configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Indication(String);

impl Indication {
    /// Parses an indication.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        parse_word("indication", text).map(Self)
    }

    /// The indication.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a tube holds: the assay's one tube vocabulary, stored and served by its short name
/// (`control`, `quad`, `cd45`, `igg`, `epcam`, `muc1`, `her2`, `egfr`).
pub use nmr_core::assay::TubeKind;

/// Parses a stored or typed tube name.
pub fn parse_tube_kind(text: &str) -> Result<TubeKind, StoreError> {
    text.trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|e: nmr_core::vocabulary::UnknownName| StoreError::Invalid {
            field: "tube kind",
            reason: e.to_string(),
        })
}

/// Serialises a tube kind as its short name (the API's and export's form).
fn serialize_tube_kind<S: serde::Serializer>(kind: &TubeKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// A tube's own label (barcode): 1 to 64 printable ASCII characters without spaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TubeLabel(String);

impl TubeLabel {
    /// Parses a tube label.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let label = text.trim();
        if !label.is_empty() && label.len() <= 64 && label.chars().all(|c| c.is_ascii_graphic()) {
            Ok(Self(label.to_owned()))
        } else {
            Err(StoreError::Invalid {
                field: "tube label",
                reason: format!("{text:?} must be 1 to 64 printable ASCII characters, no spaces"),
            })
        }
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A specimen's accession number (the API's `accession`): what the lab's specimen label says,
/// typed or scanned (a barcode scanner types it like a keyboard and ends with Enter). 1 to 32
/// printable ASCII characters without spaces; surrounding whitespace dropped; unique across the
/// appliance's samples. Samples stored before accession numbers have `LEGACY-<sample id>`
/// (`migrations/0004`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Accession(String);

impl Accession {
    /// Longest accepted accession number, in characters.
    pub const MAX_CHARS: usize = 32;

    /// The rule of [`Accession::parse`] as an ECMA-262 pattern (the OpenAPI document's): 1 to
    /// [`Accession::MAX_CHARS`] printable ASCII characters without spaces, surrounding white
    /// space allowed (it is dropped). Blank is refused.
    pub fn pattern() -> String {
        let space = super::text_pattern::white_space();
        format!(
            r"^{space}*[\u0021-\u007E]{{1,{max}}}{space}*$",
            max = Self::MAX_CHARS
        )
    }

    /// Parses an accession number.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let accession = text.trim();
        let shown: String = accession.chars().take(40).collect();
        let invalid = |reason: String| StoreError::Invalid {
            field: "accession",
            reason,
        };
        if accession.is_empty() {
            return Err(invalid(
                "is empty; type or scan the number on the specimen's label".into(),
            ));
        }
        if accession.len() > Self::MAX_CHARS {
            return Err(invalid(format!("{shown:?} is longer than 32 characters")));
        }
        if let Some(bad) = accession.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(invalid(format!(
                "{shown:?} holds {bad:?}; only printable characters without spaces"
            )));
        }
        Ok(Self(accession.to_owned()))
    }

    /// The accession number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Accession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tube of a new sample.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTube {
    /// What it holds.
    pub kind: TubeKind,
    /// Its label.
    pub label: TubeLabel,
}

/// What is needed to record a sample.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSample {
    /// Whose blood.
    pub patient_id: PatientId,
    /// The specimen's accession number.
    pub accession: Accession,
    /// When it was drawn.
    pub drawn_at: Timestamp,
    /// The processed blood volume.
    pub blood: BloodVolume,
    /// Why it was drawn.
    pub indication: Option<Indication>,
    /// When `indication` is not the patient's: the reason given for that explicit override.
    pub indication_override_reason: Option<String>,
    /// Its tubes: one `control` and at least one other.
    pub tubes: Vec<NewTube>,
}

/// A stored tube.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tube {
    /// Row id.
    pub id: TubeId,
    /// What it holds.
    #[serde(serialize_with = "serialize_tube_kind")]
    pub kind: TubeKind,
    /// Its label.
    pub label: TubeLabel,
}

/// A stored sample with its tubes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Row id.
    pub id: SampleId,
    /// Whose blood.
    pub patient_id: PatientId,
    /// The specimen's accession number.
    pub accession: Accession,
    /// When it was drawn.
    pub drawn_at: Timestamp,
    /// Processed blood volume, mL.
    pub blood_ml: f64,
    /// Why it was drawn.
    pub indication: Option<String>,
    /// When the indication is not the patient's: the reason given for the override.
    pub indication_override_reason: Option<String>,
    /// Its tubes, control first.
    pub tubes: Vec<Tube>,
    /// When it was recorded.
    pub created_at: Timestamp,
}

impl Sample {
    /// The tube of this kind.
    pub fn tube(&self, kind: TubeKind) -> Option<&Tube> {
        self.tubes.iter().find(|tube| tube.kind == kind)
    }
}

impl Store {
    /// Records a sample and its tubes. Needs exactly one `control` tube and at least one other;
    /// kinds and labels must be distinct; the patient must exist.
    pub async fn add_sample(&self, actor: &Actor, new: &NewSample) -> Result<Sample, StoreError> {
        let controls = new
            .tubes
            .iter()
            .filter(|t| t.kind == TubeKind::Control)
            .count();
        if controls != 1 || new.tubes.len() < 2 {
            return Err(StoreError::Invalid {
                field: "tubes",
                reason: format!(
                    "a sample needs one control tube and at least one labelled tube \
                     (got {controls} control of {} tubes)",
                    new.tubes.len()
                ),
            });
        }
        let now = Timestamp::now().to_rfc3339();
        let drawn_at = new.drawn_at.to_rfc3339();
        let blood_ml = new.blood.ml();
        let indication = new.indication.as_ref().map(|i| i.as_str());
        let accession = new.accession.as_str();
        let override_reason = new
            .indication_override_reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let by = actor.user_column();
        let mut tx = db::begin_write(&self.pool).await?;
        let patient = sqlx::query_scalar!("SELECT id FROM patients WHERE id = ?", new.patient_id.0)
            .fetch_optional(&mut *tx)
            .await
            .context("checking a sample's patient")?;
        found(patient, "patient", new.patient_id)?;
        let sample_id = sqlx::query_scalar!(
            "INSERT INTO samples (patient_id, accession, drawn_at, blood_ml, indication,
                                  indication_override_reason, created_at, created_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            new.patient_id.0,
            accession,
            drawn_at,
            blood_ml,
            indication,
            override_reason,
            now,
            by,
        )
        .fetch_one(&mut *tx)
        .await
        .unique("adding a sample", "sample with accession", accession)?;
        for tube in &new.tubes {
            let (kind, label) = (tube.kind.as_str(), tube.label.as_str());
            sqlx::query!(
                "INSERT INTO sample_tubes (sample_id, kind, label) VALUES (?, ?, ?)",
                sample_id,
                kind,
                label
            )
            .execute(&mut *tx)
            .await
            .unique(
                "adding a tube",
                "tube kind or label",
                &format!("{kind}/{label}"),
            )?;
        }
        let tubes: Vec<_> = new
            .tubes
            .iter()
            .map(|t| serde_json::json!({ "kind": t.kind.as_str(), "label": t.label.as_str() }))
            .collect();
        append(
            &mut tx,
            actor,
            AuditEntry::new("sample.add", "sample")
                .id(sample_id)
                .detail(serde_json::json!({
                    "patient_id": new.patient_id, "accession": accession, "drawn_at": drawn_at,
                    "blood_ml": blood_ml, "indication": indication,
                    "indication_override_reason": override_reason, "tubes": tubes,
                })),
        )
        .await?;
        tx.commit().await.context("committing a new sample")?;
        self.sample(SampleId(sample_id)).await
    }

    /// A sample with its tubes.
    pub async fn sample(&self, id: SampleId) -> Result<Sample, StoreError> {
        let row = sqlx::query!(
            "SELECT id, patient_id, accession, drawn_at, blood_ml, indication,
                    indication_override_reason, created_at
             FROM samples WHERE id = ?",
            id.0
        )
        .fetch_optional(&self.pool)
        .await
        .context("looking up a sample")?;
        let row = found(row, "sample", id)?;
        let tube_rows = sqlx::query!(
            "SELECT id, kind, label FROM sample_tubes WHERE sample_id = ?
             ORDER BY kind <> 'control', id",
            id.0
        )
        .fetch_all(&self.pool)
        .await
        .context("reading a sample's tubes")?;
        let tubes = tube_rows
            .into_iter()
            .map(|t| {
                let corrupt = |error: StoreError| StoreError::Corrupt {
                    what: "tube",
                    row: t.id,
                    reason: error.to_string(),
                };
                Ok(Tube {
                    id: TubeId(t.id),
                    kind: parse_tube_kind(&t.kind).map_err(corrupt)?,
                    label: TubeLabel::parse(&t.label).map_err(corrupt)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Sample {
            id: SampleId(row.id),
            patient_id: PatientId(row.patient_id),
            accession: row
                .accession
                .as_deref()
                .ok_or_else(|| StoreError::Invalid {
                    field: "accession",
                    reason: "missing".into(),
                })
                .and_then(Accession::parse)
                .map_err(|error| StoreError::Corrupt {
                    what: "sample accession",
                    row: row.id,
                    reason: error.to_string(),
                })?,
            drawn_at: stored(&row.drawn_at, "sample draw time", row.id)?,
            blood_ml: row.blood_ml,
            indication: row.indication,
            indication_override_reason: row.indication_override_reason,
            tubes,
            created_at: stored(&row.created_at, "sample creation time", row.id)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::patients::{BirthDate, Mrn, NewPatient};
    use crate::store::test_fixtures::{count, sample};
    use sqlx::SqlitePool;

    fn tube(kind: &str, label: &str) -> NewTube {
        NewTube {
            kind: parse_tube_kind(kind).unwrap(),
            label: TubeLabel::parse(label).unwrap(),
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_sample_keeps_its_tubes(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let stored = sample(&store, &Actor::Appliance, "MRN-1").await;
        assert_eq!(stored.blood_ml, 7.5);
        assert_eq!(stored.indication.as_deref(), Some("breast"));
        assert_eq!(stored.drawn_at.to_rfc3339(), "2026-11-20T08:30:00Z");
        assert_eq!(stored.tubes.len(), 2);
        assert_eq!(stored.tubes[0].kind, TubeKind::Control);
        assert_eq!(
            stored.tube(TubeKind::Quad).unwrap().label.as_str(),
            "MRN-1-Q"
        );
        assert_eq!(store.sample(stored.id).await.unwrap(), stored);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn an_accession_number_is_used_once(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let first = sample(&store, &Actor::Appliance, "MRN-3").await;
        let again = store
            .add_sample(
                &Actor::Appliance,
                &NewSample {
                    patient_id: first.patient_id,
                    accession: first.accession.clone(),
                    drawn_at: Timestamp::now(),
                    blood: BloodVolume::from_ml(7.5).unwrap(),
                    indication: None,
                    indication_override_reason: None,
                    tubes: vec![tube("control", "C9"), tube("quad", "Q9")],
                },
            )
            .await;
        assert!(
            matches!(again, Err(StoreError::Duplicate { ref key, .. }) if key == first.accession.as_str()),
            "{again:?}"
        );
        assert_eq!(count(&pool, "samples").await, 1);
        let rewrite = sqlx::query("UPDATE samples SET accession = 'OTHER'")
            .execute(&pool)
            .await;
        assert!(rewrite.is_err(), "an accession number is never changed");
    }

    #[test]
    fn accession_numbers_are_what_a_scanner_types() {
        assert_eq!(
            Accession::parse(" 26-CTC-000123\n").unwrap().as_str(),
            "26-CTC-000123"
        );
        for bad in ["", "  ", "26 CTC", "26-ÇTC", &"9".repeat(33)] {
            assert!(
                matches!(
                    Accession::parse(bad),
                    Err(StoreError::Invalid {
                        field: "accession",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn bad_samples_are_refused_whole(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let born = BirthDate::parse("1970-01-01", time::macros::date!(2026 - 01 - 01)).unwrap();
        let patient = store
            .add_patient(
                &Actor::Appliance,
                &NewPatient::new(Mrn::parse("MRN-2").unwrap(), born),
            )
            .await
            .unwrap();
        let new = |patient_id, tubes| NewSample {
            patient_id,
            accession: Accession::parse("ACC-2").unwrap(),
            drawn_at: Timestamp::now(),
            blood: BloodVolume::from_ml(7.5).unwrap(),
            indication: None,
            indication_override_reason: None,
            tubes,
        };
        let no_control = store
            .add_sample(
                &Actor::Appliance,
                &new(patient.id, vec![tube("quad", "Q1")]),
            )
            .await;
        assert!(matches!(
            no_control,
            Err(StoreError::Invalid { field: "tubes", .. })
        ));
        let same_label = store
            .add_sample(
                &Actor::Appliance,
                &new(patient.id, vec![tube("control", "T1"), tube("quad", "T1")]),
            )
            .await;
        assert!(
            matches!(same_label, Err(StoreError::Duplicate { .. })),
            "{same_label:?}"
        );
        let nobody = store
            .add_sample(
                &Actor::Appliance,
                &new(
                    PatientId(77),
                    vec![tube("control", "T1"), tube("quad", "T2")],
                ),
            )
            .await;
        assert!(matches!(
            nobody,
            Err(StoreError::NotFound {
                entity: "patient",
                ..
            })
        ));
        assert_eq!(count(&pool, "samples").await, 0);
        assert_eq!(count(&pool, "sample_tubes").await, 0);
        let missing = store.sample(SampleId(5)).await;
        assert!(matches!(
            missing,
            Err(StoreError::NotFound {
                entity: "sample",
                ..
            })
        ));
    }

    #[test]
    fn blood_volumes_outside_the_range_are_refused() {
        for bad in [0.0, 0.49, -1.0, f64::NAN, f64::INFINITY, 50.01] {
            assert!(
                BloodVolume::from_ml(bad).is_err(),
                "{bad} should be refused"
            );
        }
        for good in [0.5, 7.5, 50.0] {
            assert_eq!(
                BloodVolume::from_ml(good).map(BloodVolume::ml).ok(),
                Some(good)
            );
        }
    }

    #[test]
    fn words_are_lowercased_and_checked() {
        assert_eq!(
            Indication::parse(" Breast ").ok().map(|i| i.0),
            Some("breast".into())
        );
        assert!(Indication::parse("breast cancer").is_err());
        assert!(parse_tube_kind("").is_err());
        assert_eq!(parse_tube_kind(" CD45 ").unwrap(), TubeKind::Cd45Control);
        assert!(TubeLabel::parse("CS 123").is_err());
        assert!(TubeLabel::parse("CS-000123").is_ok());
    }
}
