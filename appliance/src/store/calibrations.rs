//! Calibrations: per reagent lot and echo time, the content that turns ΔR2 into cells.
//!
//! The content is the calibration file itself (TOML or JSON, as `nmr_core::assay` writes it),
//! stored verbatim so that it can be read back, exported or shown as it was. At most one
//! calibration is active per lot and echo time (a partial unique index enforces it); activating
//! one deactivates the others, in one audited transaction. Calibrations are never deleted.

use std::fmt;

use serde::Serialize;

use super::audit::append;
use super::error::{SqlxResultExt, found};
use super::timestamp::stored;
use super::{Actor, AuditEntry, CalibrationId, Store, StoreError, Timestamp, UserId, db};

/// A reagent lot identifier: 1 to 64 printable ASCII characters without spaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ReagentLot(String);

impl ReagentLot {
    /// Parses a lot identifier.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let lot = text.trim();
        if !lot.is_empty() && lot.len() <= 64 && lot.chars().all(|c| c.is_ascii_graphic()) {
            Ok(Self(lot.to_owned()))
        } else {
            Err(StoreError::Invalid {
                field: "reagent lot",
                reason: format!("{text:?} must be 1 to 64 printable ASCII characters, no spaces"),
            })
        }
    }

    /// The lot.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReagentLot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The format of a calibration's content. TOML (what `ferrocount calibrate` writes and the
/// engine makes) is the one format calibrations are stored in; JSON content, which earlier
/// versions could store, is still read ([`CalibrationContent::document`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ContentFormat {
    /// TOML text: the canonical stored form.
    Toml,
    /// JSON text: read for old rows, never written.
    Json,
}

impl ContentFormat {
    fn as_str(self) -> &'static str {
        match self {
            Self::Toml => "toml",
            Self::Json => "json",
        }
    }
}

/// A calibration document as stored, verbatim.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CalibrationContent {
    /// Its format.
    pub format: ContentFormat,
    /// The text, verbatim.
    pub text: String,
}

impl CalibrationContent {
    /// TOML content (the canonical form); refused when it does not parse as TOML.
    pub fn toml(text: &str) -> Result<Self, StoreError> {
        toml::from_str::<toml::Table>(text).map_err(|error| StoreError::Invalid {
            field: "calibration content",
            reason: format!("not TOML: {error}"),
        })?;
        Ok(Self {
            format: ContentFormat::Toml,
            text: text.to_owned(),
        })
    }

    /// The calibration this content holds, its numbers checked: the one decoder of a stored
    /// calibration (TOML, or JSON for a row stored in the old format), for the engine, a
    /// correction's recount and the pages alike.
    pub fn document(&self) -> Result<nmr_core::assay::Calibration, String> {
        match self.format {
            ContentFormat::Toml => {
                nmr_core::assay::Calibration::from_toml(&self.text).map_err(|e| e.to_string())
            }
            ContentFormat::Json => {
                let parsed: nmr_core::assay::Calibration = serde_json::from_str(&self.text)
                    .map_err(|e| format!("not a calibration: {e}"))?;
                // Through the TOML reader, so a JSON row's numbers are checked as a TOML one's.
                let canonical = parsed.to_toml().map_err(|e| e.to_string())?;
                nmr_core::assay::Calibration::from_toml(&canonical).map_err(|e| e.to_string())
            }
        }
    }
}

/// What is needed to store a calibration.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCalibration {
    /// The reagent lot it is for.
    pub reagent_lot: ReagentLot,
    /// The echo time it is for, µs.
    pub te_us: u32,
    /// The calibration document.
    pub content: CalibrationContent,
    /// A note (e.g. "made by simulated dilution series").
    pub note: Option<String>,
}

/// A stored calibration.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Calibration {
    /// Row id.
    pub id: CalibrationId,
    /// Reagent lot.
    pub reagent_lot: String,
    /// Echo time, µs.
    pub te_us: u32,
    /// The document.
    pub content: CalibrationContent,
    /// A note.
    pub note: Option<String>,
    /// Whether it is the one used for its lot and echo time.
    pub active: bool,
    /// When it was stored.
    pub created_at: Timestamp,
    /// Who stored it (`None`: the appliance).
    pub created_by: Option<UserId>,
}

struct CalibrationRow {
    id: i64,
    reagent_lot: String,
    te_us: i64,
    content_format: String,
    content: String,
    note: Option<String>,
    active: i64,
    created_at: String,
    created_by: Option<i64>,
}

impl CalibrationRow {
    fn into_calibration(self) -> Result<Calibration, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            what: "calibration",
            row: self.id,
            reason,
        };
        let format = match self.content_format.as_str() {
            "toml" => ContentFormat::Toml,
            "json" => ContentFormat::Json,
            other => return Err(corrupt(format!("format {other:?}"))),
        };
        Ok(Calibration {
            id: CalibrationId(self.id),
            te_us: u32::try_from(self.te_us).map_err(|_| corrupt(format!("TE {}", self.te_us)))?,
            created_at: stored(&self.created_at, "calibration time", self.id)?,
            reagent_lot: self.reagent_lot,
            content: CalibrationContent {
                format,
                text: self.content,
            },
            note: self.note,
            active: self.active != 0,
            created_by: self.created_by.map(UserId),
        })
    }
}

async fn activate_in(
    conn: &mut sqlx::SqliteConnection,
    actor: &Actor,
    id: CalibrationId,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    let target = sqlx::query!(
        "SELECT reagent_lot, te_us FROM calibrations WHERE id = ?",
        id.0
    )
    .fetch_optional(&mut *conn)
    .await
    .context("looking up a calibration")?;
    let target = found(target, "calibration", id)?;
    let replaced = sqlx::query_scalar!(
        "UPDATE calibrations SET active = 0
         WHERE reagent_lot = ? AND te_us = ? AND active = 1 AND id <> ? RETURNING id AS \"id!\"",
        target.reagent_lot,
        target.te_us,
        id.0
    )
    .fetch_all(&mut *conn)
    .await
    .context("deactivating the previous calibration")?;
    sqlx::query!("UPDATE calibrations SET active = 1 WHERE id = ?", id.0)
        .execute(&mut *conn)
        .await
        .context("activating a calibration")?;
    let mut entry = AuditEntry::new("calibration.activate", "calibration")
        .id(id)
        .detail(serde_json::json!({
            "reagent_lot": target.reagent_lot, "te_us": target.te_us,
            "deactivated": replaced,
        }));
    if let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) {
        entry = entry.reason(reason);
    }
    append(conn, actor, entry).await?;
    Ok(())
}

impl Store {
    /// Stores a calibration, and makes it the active one for its lot and echo time when
    /// `activate` is set.
    pub async fn add_calibration(
        &self,
        actor: &Actor,
        new: &NewCalibration,
        activate: bool,
    ) -> Result<Calibration, StoreError> {
        if new.te_us == 0 {
            return Err(StoreError::Invalid {
                field: "echo time",
                reason: "must be above 0 µs".into(),
            });
        }
        let now = Timestamp::now().to_rfc3339();
        let lot = new.reagent_lot.as_str();
        let te_us = i64::from(new.te_us);
        let format = new.content.format.as_str();
        let by = actor.user_column();
        let mut tx = db::begin_write(&self.pool).await?;
        let id = sqlx::query_scalar!(
            "INSERT INTO calibrations (reagent_lot, te_us, content_format, content, note,
                                       created_at, created_by)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            lot,
            te_us,
            format,
            new.content.text,
            new.note,
            now,
            by,
        )
        .fetch_one(&mut *tx)
        .await
        .context("storing a calibration")?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("calibration.add", "calibration")
                .id(id)
                .detail(serde_json::json!({
                    "reagent_lot": lot, "te_us": te_us, "format": format, "note": new.note,
                    "content_sha256": super::digest::sha256_hex(new.content.text.as_bytes()),
                })),
        )
        .await?;
        if activate {
            activate_in(&mut tx, actor, CalibrationId(id), None).await?;
        }
        tx.commit().await.context("committing a calibration")?;
        self.calibration(CalibrationId(id)).await
    }

    /// Makes a calibration the active one for its lot and echo time; `reason` (why it is
    /// activated now) goes into the audit row.
    pub async fn activate_calibration(
        &self,
        actor: &Actor,
        id: CalibrationId,
        reason: Option<&str>,
    ) -> Result<Calibration, StoreError> {
        let mut tx = db::begin_write(&self.pool).await?;
        activate_in(&mut tx, actor, id, reason).await?;
        tx.commit()
            .await
            .context("committing a calibration's activation")?;
        self.calibration(id).await
    }

    /// A calibration.
    pub async fn calibration(&self, id: CalibrationId) -> Result<Calibration, StoreError> {
        let row = sqlx::query_as!(
            CalibrationRow,
            "SELECT id, reagent_lot, te_us, content_format, content, note, active, created_at,
                    created_by
             FROM calibrations WHERE id = ?",
            id.0
        )
        .fetch_optional(&self.pool)
        .await
        .context("reading a calibration")?;
        found(row, "calibration", id)?.into_calibration()
    }

    /// The active calibration for a lot and echo time, if any.
    pub async fn active_calibration(
        &self,
        lot: &ReagentLot,
        te_us: u32,
    ) -> Result<Option<Calibration>, StoreError> {
        let lot = lot.as_str();
        let te_us = i64::from(te_us);
        let row = sqlx::query_as!(
            CalibrationRow,
            "SELECT id, reagent_lot, te_us, content_format, content, note, active, created_at,
                    created_by
             FROM calibrations WHERE reagent_lot = ? AND te_us = ? AND active = 1",
            lot,
            te_us
        )
        .fetch_optional(&self.pool)
        .await
        .context("finding the active calibration")?;
        row.map(CalibrationRow::into_calibration).transpose()
    }

    /// All calibrations, newest first.
    pub async fn calibrations(&self) -> Result<Vec<Calibration>, StoreError> {
        sqlx::query_as!(
            CalibrationRow,
            "SELECT id, reagent_lot, te_us, content_format, content, note, active, created_at,
                    created_by
             FROM calibrations ORDER BY id DESC"
        )
        .fetch_all(&self.pool)
        .await
        .context("listing calibrations")?
        .into_iter()
        .map(CalibrationRow::into_calibration)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_fixtures::count;
    use sqlx::SqlitePool;

    fn new(lot: &str, slope: f64) -> NewCalibration {
        NewCalibration {
            reagent_lot: ReagentLot::parse(lot).unwrap(),
            te_us: 4000,
            content: CalibrationContent::toml(&format!("slope_per_s_per_cell = {slope}\n"))
                .unwrap(),
            note: Some("dilution series".into()),
        }
    }

    #[test]
    fn content_must_parse() {
        assert!(CalibrationContent::toml("slope = [").is_err());
        assert!(ReagentLot::parse("LOT 1").is_err());
    }

    /// A calibration as `ferrocount calibrate` writes it.
    fn full_document() -> nmr_core::assay::Calibration {
        nmr_core::assay::Calibration::from_toml(
            &crate::store::example_report::example_calibration_toml(),
        )
        .expect("the example calibration reads")
    }

    #[test]
    fn stored_documents_decode_in_either_format_and_are_checked() {
        let calibration = full_document();
        let toml = CalibrationContent::toml(&calibration.to_toml().unwrap()).unwrap();
        assert_eq!(toml.document().unwrap(), calibration);
        let json = CalibrationContent {
            format: ContentFormat::Json,
            text: serde_json::to_string(&calibration).unwrap(),
        };
        assert_eq!(
            json.document().unwrap(),
            calibration,
            "an old JSON row reads"
        );
        let mut broken = calibration.clone();
        broken.slope_per_s_per_cell = f64::NAN;
        let bad_json = CalibrationContent {
            format: ContentFormat::Json,
            text: serde_json::to_string(&broken)
                .unwrap()
                .replace("null", "-1"),
        };
        assert!(bad_json.document().is_err(), "its numbers are checked too");
        assert!(
            CalibrationContent::toml("slope_per_s_per_cell = 0.01")
                .unwrap()
                .document()
                .is_err(),
            "a partial document is not a calibration"
        );
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn one_calibration_is_active_per_lot_and_echo_time(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let lot = ReagentLot::parse("LOT-A1").unwrap();
        assert_eq!(store.active_calibration(&lot, 4000).await.unwrap(), None);
        let first = store
            .add_calibration(&Actor::Appliance, &new("LOT-A1", 0.01), true)
            .await
            .unwrap();
        assert!(first.active);
        assert_eq!(first.content.text, "slope_per_s_per_cell = 0.01\n");
        let second = store
            .add_calibration(&Actor::Appliance, &new("LOT-A1", 0.02), false)
            .await
            .unwrap();
        assert!(!second.active);
        let other_lot = store
            .add_calibration(&Actor::Appliance, &new("LOT-B2", 0.03), true)
            .await
            .unwrap();
        store
            .activate_calibration(&Actor::Appliance, second.id, Some("new lot in use"))
            .await
            .unwrap();
        assert_eq!(
            store
                .active_calibration(&lot, 4000)
                .await
                .unwrap()
                .map(|c| c.id),
            Some(second.id)
        );
        assert!(!store.calibration(first.id).await.unwrap().active);
        assert!(store.calibration(other_lot.id).await.unwrap().active);
        assert_eq!(store.active_calibration(&lot, 2000).await.unwrap(), None);
        // The index itself refuses a second active row.
        let twice = sqlx::query("UPDATE calibrations SET active = 1 WHERE id = ?")
            .bind(first.id.0)
            .execute(&pool)
            .await;
        assert!(twice.is_err());
        assert_eq!(store.calibrations().await.unwrap().len(), 3);
        let activations: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'calibration.activate'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(activations, 3);
        let reasons: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT reason FROM audit_log WHERE action = 'calibration.activate' ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(reasons, [None, None, Some("new lot in use".to_owned())]);
        assert_eq!(count(&pool, "calibrations").await, 3);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn unknown_calibrations_are_not_found(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let missing = store
            .activate_calibration(&Actor::Appliance, CalibrationId(3), None)
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
        let mut zero_te = new("LOT-A1", 0.01);
        zero_te.te_us = 0;
        let refused = store
            .add_calibration(&Actor::Appliance, &zero_te, true)
            .await;
        assert!(matches!(refused, Err(StoreError::Invalid { .. })));
    }
}
