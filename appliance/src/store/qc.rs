//! Quality control records: materials, their lots, each lot's target (mean and SD), and results.
//!
//! The Westgard evaluation itself is `nmr_core`'s; this module stores its verdict (status and the
//! rules broken, as JSON decoded back into `WestgardViolation`s) beside the value, so that a Levey–Jennings chart and "today's QC" are
//! plain queries. A lot's current target is its newest; older targets stay for the record. QC
//! results are never updated or deleted.

use nmr_core::qc::WestgardViolation;
use serde::Serialize;

use super::audit::append;
use super::calibrations::ReagentLot;
use super::error::{SqlxResultExt, found};
use super::timestamp::stored;
use super::{
    Actor, AuditEntry, JsonReport, MeasurementId, QcLotId, QcMaterialId, QcResultId, QcTargetId,
    Store, StoreError, Timestamp, UserId, db,
};

/// What a QC material is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum QcMaterialKind {
    /// A reference phantom (doped water of known T2).
    Phantom,
    /// A control material (e.g. spiked cells at a known level).
    Control,
}

impl QcMaterialKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Phantom => "phantom",
            Self::Control => "control",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "phantom" => Some(Self::Phantom),
            "control" => Some(Self::Control),
            _ => None,
        }
    }
}

/// Where a target came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TargetSource {
    /// Established on this instrument from at least 20 values.
    Established,
    /// Fixed by the manufacturer.
    Manufacturer,
}

impl TargetSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Established => "established",
            Self::Manufacturer => "manufacturer",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "established" => Some(Self::Established),
            "manufacturer" => Some(Self::Manufacturer),
            _ => None,
        }
    }
}

/// The verdict on one QC value: `nmr_core`'s one QC verdict type, stored by its name.
pub use nmr_core::qc::QcVerdict;

/// A control material's level (negative, positive): `nmr_core`'s vocabulary, stored by its name.
pub use nmr_core::qc::ControlLevel;

/// A stored QC material.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QcMaterial {
    /// Row id.
    pub id: QcMaterialId,
    /// Its name.
    pub name: String,
    /// Phantom or control.
    pub kind: QcMaterialKind,
    /// A control's level; `None` for a phantom, and for a control stored before levels were
    /// (it counts for no level until a lab admin sets one).
    pub control_level: Option<ControlLevel>,
    /// What is measured, unit in the name (`t2_ms`, `cells`).
    pub analyte: String,
}

/// A stored QC lot.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QcLot {
    /// Row id.
    pub id: QcLotId,
    /// Its material.
    pub material_id: QcMaterialId,
    /// The manufacturer's lot number.
    pub lot: String,
    /// Expiry date, served as `YYYY-MM-DD`.
    #[serde(serialize_with = "serialize_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub expires_on: time::Date,
}

/// Serialises a date as `YYYY-MM-DD` (the ISO 8601 calendar date).
fn serialize_date<S: serde::Serializer>(date: &time::Date, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// A lot's target.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QcTarget {
    /// Row id.
    pub id: QcTargetId,
    /// The lot.
    pub lot_id: QcLotId,
    /// Target mean.
    pub mean: f64,
    /// Target SD.
    pub sd: f64,
    /// Where it came from.
    pub source: TargetSource,
    /// Values it was established from.
    pub n_values: Option<u32>,
    /// When it was set.
    pub created_at: Timestamp,
}

/// A QC value to record, with the verdict on it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewQcResult {
    /// The lot measured.
    pub lot_id: QcLotId,
    /// The value, in the material's analyte unit.
    pub value: f64,
    /// The verdict.
    pub status: QcVerdict,
    /// The Westgard rules broken.
    pub violations: Vec<WestgardViolation>,
    /// The measurement it came from, if stored.
    pub measurement_id: Option<MeasurementId>,
    /// The reagent lot the control was measured with (a patient run's QC gate asks for its
    /// own lot's); `None` for a phantom.
    pub reagent_lot: Option<ReagentLot>,
    /// When it was measured.
    pub measured_at: Timestamp,
    /// A comment.
    pub comment: Option<String>,
}

/// A stored QC result.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QcResult {
    /// Row id.
    pub id: QcResultId,
    /// The lot.
    pub lot_id: QcLotId,
    /// The target in force when it was recorded.
    pub target_id: Option<QcTargetId>,
    /// The value.
    pub value: f64,
    /// The verdict.
    pub status: QcVerdict,
    /// The rules broken.
    pub violations: Vec<WestgardViolation>,
    /// The measurement it came from.
    pub measurement_id: Option<MeasurementId>,
    /// The reagent lot it was measured with (`None`: a phantom, or recorded before lots were).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reagent_lot: Option<ReagentLot>,
    /// When it was measured.
    pub measured_at: Timestamp,
    /// Who recorded it.
    pub operator_id: Option<UserId>,
    /// A comment.
    pub comment: Option<String>,
}

fn parse_date(text: &str, row: i64) -> Result<time::Date, StoreError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format).map_err(|error| StoreError::Corrupt {
        what: "QC lot expiry",
        row,
        reason: error.to_string(),
    })
}

fn nonblank(field: &'static str, text: &str) -> Result<String, StoreError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 100 {
        return Err(StoreError::Invalid {
            field,
            reason: "must be 1 to 100 characters".into(),
        });
    }
    Ok(text.to_owned())
}

impl Store {
    /// Adds a QC material; names are unique; a control has its level, a phantom none.
    pub async fn add_qc_material(
        &self,
        actor: &Actor,
        name: &str,
        kind: QcMaterialKind,
        control_level: Option<ControlLevel>,
        analyte: &str,
    ) -> Result<QcMaterial, StoreError> {
        let name = nonblank("QC material name", name)?;
        let analyte = nonblank("QC analyte", analyte)?;
        match (kind, control_level) {
            (QcMaterialKind::Control, None) => {
                return Err(StoreError::Invalid {
                    field: "control level",
                    reason: "a control material is negative or positive".into(),
                });
            }
            (QcMaterialKind::Phantom, Some(level)) => {
                return Err(StoreError::Invalid {
                    field: "control level",
                    reason: format!("a phantom has no control level (got {level})"),
                });
            }
            _ => {}
        }
        let now = Timestamp::now().to_rfc3339();
        let kind_text = kind.as_str();
        let level_text = control_level.map(ControlLevel::as_str);
        let by = actor.user_column();
        let mut tx = db::begin_write(&self.pool).await?;
        let id = sqlx::query_scalar!(
            "INSERT INTO qc_materials (name, kind, control_level, analyte, created_at, created_by)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            name,
            kind_text,
            level_text,
            analyte,
            now,
            by
        )
        .fetch_one(&mut *tx)
        .await
        .unique("adding a QC material", "QC material", &name)?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("qc.material.add", "qc_material")
                .id(id)
                .detail(serde_json::json!({
                    "name": name, "kind": kind_text, "control_level": level_text,
                    "analyte": analyte,
                })),
        )
        .await?;
        tx.commit().await.context("committing a QC material")?;
        Ok(QcMaterial {
            id: QcMaterialId(id),
            name,
            kind,
            control_level,
            analyte,
        })
    }

    /// All QC materials, by name.
    pub async fn qc_materials(&self) -> Result<Vec<QcMaterial>, StoreError> {
        let rows = sqlx::query!(
            "SELECT id, name, kind, control_level, analyte FROM qc_materials ORDER BY name"
        )
        .fetch_all(&self.pool)
        .await
        .context("listing QC materials")?;
        rows.into_iter()
            .map(|r| material_from(r.id, r.name, &r.kind, r.control_level.as_deref(), r.analyte))
            .collect()
    }

    /// Adds a lot of a material; a lot number is unique per material.
    pub async fn add_qc_lot(
        &self,
        actor: &Actor,
        material_id: QcMaterialId,
        lot: &str,
        expires_on: time::Date,
    ) -> Result<QcLot, StoreError> {
        let lot = nonblank("QC lot", lot)?;
        let expires_text = format!(
            "{:04}-{:02}-{:02}",
            expires_on.year(),
            u8::from(expires_on.month()),
            expires_on.day()
        );
        let now = Timestamp::now().to_rfc3339();
        let by = actor.user_column();
        let mut tx = db::begin_write(&self.pool).await?;
        let material =
            sqlx::query_scalar!("SELECT id FROM qc_materials WHERE id = ?", material_id.0)
                .fetch_optional(&mut *tx)
                .await
                .context("checking a QC material")?;
        found(material, "QC material", material_id)?;
        let id = sqlx::query_scalar!(
            "INSERT INTO qc_lots (material_id, lot, expires_on, created_at, created_by)
             VALUES (?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            material_id.0,
            lot,
            expires_text,
            now,
            by
        )
        .fetch_one(&mut *tx)
        .await
        .unique("adding a QC lot", "QC lot", &lot)?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("qc.lot.add", "qc_lot")
                .id(id)
                .detail(serde_json::json!({
                    "material_id": material_id, "lot": lot, "expires_on": expires_text,
                })),
        )
        .await?;
        tx.commit().await.context("committing a QC lot")?;
        Ok(QcLot {
            id: QcLotId(id),
            material_id,
            lot,
            expires_on,
        })
    }

    /// The lots of a material, newest first.
    pub async fn qc_lots(&self, material_id: QcMaterialId) -> Result<Vec<QcLot>, StoreError> {
        let rows = sqlx::query!(
            "SELECT id, material_id, lot, expires_on FROM qc_lots WHERE material_id = ?
             ORDER BY id DESC",
            material_id.0
        )
        .fetch_all(&self.pool)
        .await
        .context("listing QC lots")?;
        rows.into_iter()
            .map(|r| {
                Ok(QcLot {
                    id: QcLotId(r.id),
                    material_id: QcMaterialId(r.material_id),
                    expires_on: parse_date(&r.expires_on, r.id)?,
                    lot: r.lot,
                })
            })
            .collect()
    }

    /// Sets a lot's target (it supersedes earlier targets of the lot).
    pub async fn set_qc_target(
        &self,
        actor: &Actor,
        lot_id: QcLotId,
        mean: f64,
        sd: f64,
        source: TargetSource,
        n_values: Option<u32>,
    ) -> Result<QcTarget, StoreError> {
        if !(mean.is_finite() && sd.is_finite() && sd > 0.0) {
            return Err(StoreError::Invalid {
                field: "QC target",
                reason: format!("mean {mean} and SD {sd} must be finite with SD above 0"),
            });
        }
        if source == TargetSource::Established && n_values.is_none_or(|n| n < 20) {
            return Err(StoreError::Invalid {
                field: "QC target",
                reason: "an established target needs at least 20 values".into(),
            });
        }
        let now = Timestamp::now();
        let now_text = now.to_rfc3339();
        let source_text = source.as_str();
        let n = n_values.map(i64::from);
        let by = actor.user_column();
        let mut tx = db::begin_write(&self.pool).await?;
        let lot = sqlx::query_scalar!("SELECT id FROM qc_lots WHERE id = ?", lot_id.0)
            .fetch_optional(&mut *tx)
            .await
            .context("checking a QC lot")?;
        found(lot, "QC lot", lot_id)?;
        let id = sqlx::query_scalar!(
            "INSERT INTO qc_targets (lot_id, mean, sd, source, n_values, created_at, created_by)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            lot_id.0,
            mean,
            sd,
            source_text,
            n,
            now_text,
            by
        )
        .fetch_one(&mut *tx)
        .await
        .context("setting a QC target")?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("qc.target.set", "qc_lot")
                .id(lot_id)
                .detail(serde_json::json!({
                    "target_id": id, "mean": mean, "sd": sd, "source": source_text, "n_values": n,
                })),
        )
        .await?;
        tx.commit().await.context("committing a QC target")?;
        Ok(QcTarget {
            id: QcTargetId(id),
            lot_id,
            mean,
            sd,
            source,
            n_values,
            created_at: now,
        })
    }

    /// A lot's current (newest) target.
    pub async fn current_qc_target(&self, lot_id: QcLotId) -> Result<Option<QcTarget>, StoreError> {
        let row = sqlx::query!(
            "SELECT id, lot_id, mean, sd, source, n_values, created_at FROM qc_targets
             WHERE lot_id = ? ORDER BY id DESC LIMIT 1",
            lot_id.0
        )
        .fetch_optional(&self.pool)
        .await
        .context("reading a QC target")?;
        row.map(|r| {
            Ok(QcTarget {
                id: QcTargetId(r.id),
                lot_id: QcLotId(r.lot_id),
                mean: r.mean,
                sd: r.sd,
                source: TargetSource::parse(&r.source).ok_or_else(|| StoreError::Corrupt {
                    what: "QC target source",
                    row: r.id,
                    reason: format!("{:?}", r.source),
                })?,
                n_values: r.n_values.and_then(|n| u32::try_from(n).ok()),
                created_at: stored(&r.created_at, "QC target time", r.id)?,
            })
        })
        .transpose()
    }

    /// Records a QC value against the lot's current target.
    pub async fn record_qc_result(
        &self,
        actor: &Actor,
        new: &NewQcResult,
    ) -> Result<QcResult, StoreError> {
        if !new.value.is_finite() {
            return Err(StoreError::Invalid {
                field: "QC value",
                reason: format!("{} is not a finite number", new.value),
            });
        }
        let measured_at = new.measured_at.to_rfc3339();
        let status = new.status.as_str();
        let violations = JsonReport::of(&new.violations)?.to_text();
        let measurement = new.measurement_id.map(|m| m.0);
        let reagent_lot = new.reagent_lot.as_ref().map(ReagentLot::as_str);
        let by = actor.user_column();
        let mut tx = db::begin_write(&self.pool).await?;
        let lot = sqlx::query_scalar!("SELECT id FROM qc_lots WHERE id = ?", new.lot_id.0)
            .fetch_optional(&mut *tx)
            .await
            .context("checking a QC lot")?;
        found(lot, "QC lot", new.lot_id)?;
        let target = sqlx::query_scalar!(
            "SELECT id FROM qc_targets WHERE lot_id = ? ORDER BY id DESC LIMIT 1",
            new.lot_id.0
        )
        .fetch_optional(&mut *tx)
        .await
        .context("finding the QC target")?;
        let id = sqlx::query_scalar!(
            "INSERT INTO qc_results (lot_id, target_id, value, status, violations_json,
                                     measurement_id, reagent_lot, measured_at, operator_id, comment)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            new.lot_id.0,
            target,
            new.value,
            status,
            violations,
            measurement,
            reagent_lot,
            measured_at,
            by,
            new.comment,
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|source| match &source {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                entity: "measurement",
                key: format!("{measurement:?}"),
            },
            _ => StoreError::Database {
                context: "recording a QC result",
                source,
            },
        })?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("qc.result.add", "qc_result")
                .id(id)
                .detail(serde_json::json!({
                    "lot_id": new.lot_id, "value": new.value, "status": status,
                    "violations": new.violations, "reagent_lot": reagent_lot,
                })),
        )
        .await?;
        tx.commit().await.context("committing a QC result")?;
        Ok(QcResult {
            id: QcResultId(id),
            lot_id: new.lot_id,
            target_id: target.map(QcTargetId),
            value: new.value,
            status: new.status,
            violations: new.violations.clone(),
            measurement_id: new.measurement_id,
            reagent_lot: new.reagent_lot.clone(),
            measured_at: new.measured_at,
            operator_id: by.map(UserId),
            comment: new.comment.clone(),
        })
    }

    /// A lot's QC results measured at or after `since`, oldest first (a Levey–Jennings chart).
    pub async fn qc_results(
        &self,
        lot_id: QcLotId,
        since: Timestamp,
    ) -> Result<Vec<QcResult>, StoreError> {
        let since = since.to_rfc3339();
        sqlx::query_as!(
            QcResultRow,
            "SELECT id, lot_id, target_id, value, status, violations_json, measurement_id,
                    reagent_lot, measured_at, operator_id, comment
             FROM qc_results WHERE lot_id = ? AND measured_at >= ? ORDER BY measured_at, id",
            lot_id.0,
            since
        )
        .fetch_all(&self.pool)
        .await
        .context("reading QC results")?
        .into_iter()
        .map(QcResultRow::decode)
        .collect()
    }

    /// A lot's QC results measured from `from` up to (not including) `until`, oldest first:
    /// the bounds in the statement, so (but for a second either side) nothing outside them is
    /// read. The stored text compares as its instant only to the second (`…00Z` sorts after
    /// `…00.5Z`), so the statement widens the range by a second each way and the exact bounds
    /// are applied to the few rows read.
    pub async fn qc_results_between(
        &self,
        lot_id: QcLotId,
        from: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<QcResult>, StoreError> {
        let second = time::Duration::seconds(1);
        let (wide_from, wide_until) = (
            from.plus(-second).to_rfc3339(),
            until.plus(second).to_rfc3339(),
        );
        sqlx::query_as!(
            QcResultRow,
            "SELECT id, lot_id, target_id, value, status, violations_json, measurement_id,
                    reagent_lot, measured_at, operator_id, comment
             FROM qc_results WHERE lot_id = ? AND measured_at >= ? AND measured_at < ?
             ORDER BY measured_at, id",
            lot_id.0,
            wide_from,
            wide_until
        )
        .fetch_all(&self.pool)
        .await
        .context("reading a day's QC results")?
        .into_iter()
        .map(QcResultRow::decode)
        .filter(|decoded| {
            decoded
                .as_ref()
                .map_or(true, |r| from <= r.measured_at && r.measured_at < until)
        })
        .collect()
    }

    /// One page of every lot's QC results, newest recorded first, before the result `before`
    /// (none: from the newest), at most `limit` (1 to [`MAX_QC_RESULTS_PAGE`]): ONE statement,
    /// a range of the primary key.
    pub async fn qc_results_page(
        &self,
        before: Option<QcResultId>,
        limit: u32,
    ) -> Result<Vec<QcResult>, StoreError> {
        let before = before.map_or(i64::MAX, |id| id.0);
        let limit = i64::from(limit.clamp(1, MAX_QC_RESULTS_PAGE));
        sqlx::query_as!(
            QcResultRow,
            "SELECT id, lot_id, target_id, value, status, violations_json, measurement_id,
                    reagent_lot, measured_at, operator_id, comment
             FROM qc_results WHERE id < ? ORDER BY id DESC LIMIT ?",
            before,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("reading a page of QC results")?
        .into_iter()
        .map(QcResultRow::decode)
        .collect()
    }
}

/// Most QC results one page of [`Store::qc_results_page`] holds.
pub const MAX_QC_RESULTS_PAGE: u32 = 500;

/// A [`QcResultRow`] from a query's record that selected the `qc_results` columns under their
/// own names (with other columns beside them).
macro_rules! qc_result_row {
    ($r:expr) => {
        QcResultRow {
            id: $r.id,
            lot_id: $r.lot_id,
            target_id: $r.target_id,
            value: $r.value,
            status: $r.status,
            violations_json: $r.violations_json,
            measurement_id: $r.measurement_id,
            reagent_lot: $r.reagent_lot,
            measured_at: $r.measured_at,
            operator_id: $r.operator_id,
            comment: $r.comment,
        }
    };
}

/// A `qc_results` row as stored.
struct QcResultRow {
    id: i64,
    lot_id: i64,
    target_id: Option<i64>,
    value: f64,
    status: String,
    violations_json: String,
    measurement_id: Option<i64>,
    reagent_lot: Option<String>,
    measured_at: String,
    operator_id: Option<i64>,
    comment: Option<String>,
}

impl QcResultRow {
    fn decode(self) -> Result<QcResult, StoreError> {
        let r = self;
        Ok(QcResult {
            id: QcResultId(r.id),
            lot_id: QcLotId(r.lot_id),
            target_id: r.target_id.map(QcTargetId),
            value: r.value,
            status: r
                .status
                .parse()
                .map_err(|e: nmr_core::vocabulary::UnknownName| StoreError::Corrupt {
                    what: "QC status",
                    row: r.id,
                    reason: e.to_string(),
                })?,
            violations: serde_json::from_str(&r.violations_json).map_err(|e| {
                StoreError::Corrupt {
                    what: "QC violations",
                    row: r.id,
                    reason: format!("not a list of Westgard violations: {e}"),
                }
            })?,
            measurement_id: r.measurement_id.map(MeasurementId),
            reagent_lot: r
                .reagent_lot
                .map(|lot| ReagentLot::parse(&lot))
                .transpose()
                .map_err(|e| StoreError::Corrupt {
                    what: "QC reagent lot",
                    row: r.id,
                    reason: e.to_string(),
                })?,
            measured_at: stored(&r.measured_at, "QC time", r.id)?,
            operator_id: r.operator_id.map(UserId),
            comment: r.comment,
        })
    }
}

/// A day's QC: every control value recorded on one of the site's calendar days, with its
/// material and lot ([`Store::qc_between`]). The one reading of "today's QC" that the QC gate,
/// the engine's pre-run check, the dashboard and `GET /api/v1/qc` all use.
#[derive(Clone, Debug, PartialEq)]
pub struct QcToday {
    /// Today's values, by material, lot and time.
    pub values: Vec<QcTodayValue>,
}

/// One control value recorded today.
#[derive(Clone, Debug, PartialEq)]
pub struct QcTodayValue {
    /// The material.
    pub material: QcMaterial,
    /// The lot.
    pub lot: QcLot,
    /// The value and its verdict.
    pub result: QcResult,
}

impl QcToday {
    /// The worst verdict of today's values; `None` when nothing was measured today.
    pub fn worst(&self) -> Option<QcVerdict> {
        self.values.iter().map(|v| v.result.status).max()
    }
}

impl Store {
    /// The control values measured from `midnight` up to (not including) `next_midnight` (a
    /// site's calendar day: `appliance::site::SiteTimeZone::day_of`), by material name, lot
    /// (newest first) and time: ONE statement, each lot's values read from its
    /// `(lot_id, measured_at)` index. The stored text compares as its instant only to the
    /// second, so the statement widens the day by a second each way and the exact bounds are
    /// applied to the rows read.
    pub async fn qc_between(
        &self,
        midnight: Timestamp,
        next_midnight: Timestamp,
    ) -> Result<QcToday, StoreError> {
        let second = time::Duration::seconds(1);
        let (wide_from, wide_until) = (
            midnight.plus(-second).to_rfc3339(),
            next_midnight.plus(second).to_rfc3339(),
        );
        let rows = sqlx::query!(
            r#"SELECT m.id AS "material_id!", m.name, m.kind, m.control_level, m.analyte,
                      l.lot, l.expires_on,
                      q.id AS "id!", q.lot_id, q.target_id, q.value, q.status, q.violations_json,
                      q.measurement_id, q.reagent_lot, q.measured_at, q.operator_id, q.comment
               FROM qc_materials m
               JOIN qc_lots l ON l.material_id = m.id
               JOIN qc_results q ON q.lot_id = l.id AND q.measured_at >= ?1
                                AND q.measured_at < ?2
               ORDER BY m.name, m.id, l.id DESC, q.measured_at, q.id"#,
            wide_from,
            wide_until
        )
        .fetch_all(&self.pool)
        .await
        .context("reading a day's QC")?;
        let mut values = Vec::with_capacity(rows.len());
        for r in rows {
            let material = material_from(
                r.material_id,
                r.name,
                &r.kind,
                r.control_level.as_deref(),
                r.analyte,
            )?;
            let lot = QcLot {
                id: QcLotId(r.lot_id),
                material_id: material.id,
                expires_on: parse_date(&r.expires_on, r.lot_id)?,
                lot: r.lot,
            };
            let result = qc_result_row!(r).decode()?;
            if midnight <= result.measured_at && result.measured_at < next_midnight {
                values.push(QcTodayValue {
                    material,
                    lot,
                    result,
                });
            }
        }
        Ok(QcToday { values })
    }

    /// Every QC material (by name) with its lots (newest first), each with its current target:
    /// ONE statement however many materials and lots there are.
    pub async fn qc_catalogue(&self) -> Result<Vec<QcMaterialEntry>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT m.id AS "material_id!", m.name, m.kind, m.control_level, m.analyte,
                      l.id AS "lot_id?", l.lot AS "lot?", l.expires_on AS "expires_on?",
                      t.id AS "target_id?", t.mean AS "mean?", t.sd AS "sd?",
                      t.source AS "source?", t.n_values AS "n_values?",
                      t.created_at AS "target_created_at?"
               FROM qc_materials m
               LEFT JOIN qc_lots l ON l.material_id = m.id
               LEFT JOIN qc_targets t
                 ON t.id = (SELECT MAX(x.id) FROM qc_targets x WHERE x.lot_id = l.id)
               ORDER BY m.name, m.id, l.id DESC"#
        )
        .fetch_all(&self.pool)
        .await
        .context("listing QC materials and lots")?;
        let mut catalogue: Vec<QcMaterialEntry> = Vec::new();
        for r in rows {
            if catalogue
                .last()
                .is_none_or(|m| m.material.id.0 != r.material_id)
            {
                catalogue.push(QcMaterialEntry {
                    material: material_from(
                        r.material_id,
                        r.name,
                        &r.kind,
                        r.control_level.as_deref(),
                        r.analyte,
                    )?,
                    lots: Vec::new(),
                });
            }
            let (Some(lot_id), Some(lot), Some(expires_on)) = (r.lot_id, r.lot, r.expires_on)
            else {
                continue;
            };
            let target = match (r.target_id, r.mean, r.sd, r.source, r.target_created_at) {
                (Some(id), Some(mean), Some(sd), Some(source), Some(created_at)) => {
                    Some(QcTarget {
                        id: QcTargetId(id),
                        lot_id: QcLotId(lot_id),
                        mean,
                        sd,
                        source: TargetSource::parse(&source).ok_or_else(|| {
                            StoreError::Corrupt {
                                what: "QC target source",
                                row: id,
                                reason: format!("{source:?}"),
                            }
                        })?,
                        n_values: r.n_values.and_then(|n| u32::try_from(n).ok()),
                        created_at: stored(&created_at, "QC target time", id)?,
                    })
                }
                _ => None,
            };
            if let Some(entry) = catalogue.last_mut() {
                entry.lots.push(QcLotEntry {
                    lot: QcLot {
                        id: QcLotId(lot_id),
                        material_id: entry.material.id,
                        expires_on: parse_date(&expires_on, lot_id)?,
                        lot,
                    },
                    target,
                });
            }
        }
        Ok(catalogue)
    }

    /// The QC values measured from `from` up to (not including) `until`, at most `per_lot` of
    /// each lot (its latest), oldest first within a lot, with the printed name of who recorded
    /// each: ONE statement, each lot's values read from its `(lot_id, measured_at)` index and
    /// cut at `per_lot` + 1 in the statement, so a range of years reads a bounded number of rows.
    /// A lot with more values in the range than `per_lot` is named in
    /// [`QcRangeValues::more`]. (The range is widened by a second each way for the text
    /// comparison and cut exactly afterwards; a few rows of slack keep that from hiding a lot's
    /// `per_lot + 1`-th value.)
    pub async fn qc_values_between(
        &self,
        from: Timestamp,
        until: Timestamp,
        per_lot: u32,
    ) -> Result<QcRangeValues, StoreError> {
        const SLACK: i64 = 8;
        let per_lot = per_lot.max(1);
        let read = i64::from(per_lot) + 1 + SLACK;
        let second = time::Duration::seconds(1);
        let (wide_from, wide_until) = (
            from.plus(-second).to_rfc3339(),
            until.plus(second).to_rfc3339(),
        );
        let rows = sqlx::query!(
            r#"SELECT q.id AS "id!", q.lot_id, q.target_id, q.value, q.status, q.violations_json,
                      q.measurement_id, q.reagent_lot, q.measured_at, q.operator_id, q.comment,
                      u.display_name AS "operator_name?"
               FROM qc_lots l
               JOIN qc_results q ON q.id IN (
                   SELECT r.id FROM qc_results r
                   WHERE r.lot_id = l.id AND r.measured_at >= ?1 AND r.measured_at < ?2
                   ORDER BY r.measured_at DESC, r.id DESC LIMIT ?3)
               LEFT JOIN users u ON u.id = q.operator_id
               ORDER BY q.lot_id, q.measured_at, q.id"#,
            wide_from,
            wide_until,
            read
        )
        .fetch_all(&self.pool)
        .await
        .context("reading a range of QC values")?;
        let mut by_lot: std::collections::BTreeMap<QcLotId, Vec<QcResult>> =
            std::collections::BTreeMap::new();
        let mut operators = std::collections::BTreeMap::new();
        for r in rows {
            if let (Some(id), Some(name)) = (r.operator_id, r.operator_name) {
                operators.insert(UserId(id), name);
            }
            let result = qc_result_row!(r).decode()?;
            if from <= result.measured_at && result.measured_at < until {
                by_lot.entry(result.lot_id).or_default().push(result);
            }
        }
        let mut more = std::collections::BTreeSet::new();
        for (lot, results) in &mut by_lot {
            let keep = per_lot as usize;
            if results.len() > keep {
                more.insert(*lot);
                results.drain(..results.len() - keep);
            }
        }
        Ok(QcRangeValues {
            by_lot,
            operators,
            more,
        })
    }
}

/// A QC lot with its current target ([`Store::qc_catalogue`]).
#[derive(Clone, Debug, PartialEq)]
pub struct QcLotEntry {
    /// The lot.
    pub lot: QcLot,
    /// Its current (newest) target, if one is set.
    pub target: Option<QcTarget>,
}

/// A QC material with its lots ([`Store::qc_catalogue`]).
#[derive(Clone, Debug, PartialEq)]
pub struct QcMaterialEntry {
    /// The material.
    pub material: QcMaterial,
    /// Its lots, newest first.
    pub lots: Vec<QcLotEntry>,
}

/// A range's QC values ([`Store::qc_values_between`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QcRangeValues {
    /// Each lot's values in the range (its latest, at most the asked number), oldest first.
    pub by_lot: std::collections::BTreeMap<QcLotId, Vec<QcResult>>,
    /// The printed names of the users who recorded them.
    pub operators: std::collections::BTreeMap<UserId, String>,
    /// The lots with more values in the range than were read.
    pub more: std::collections::BTreeSet<QcLotId>,
}

/// A material from its stored columns.
fn material_from(
    id: i64,
    name: String,
    kind: &str,
    control_level: Option<&str>,
    analyte: String,
) -> Result<QcMaterial, StoreError> {
    Ok(QcMaterial {
        id: QcMaterialId(id),
        kind: QcMaterialKind::parse(kind).ok_or_else(|| StoreError::Corrupt {
            what: "QC material kind",
            row: id,
            reason: format!("{kind:?}"),
        })?,
        control_level: control_level
            .map(|level| level.parse::<ControlLevel>())
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                what: "QC control level",
                row: id,
                reason: e.to_string(),
            })?,
        name,
        analyte,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::SqlitePool;

    fn date(text: &str) -> time::Date {
        time::Date::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap()
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn the_catalogue_and_a_range_of_values_are_single_bounded_reads(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let actor = Actor::Appliance;
        let olga =
            crate::store::test_fixtures::user(&store, "olga", crate::store::users::Role::Operator)
                .await;
        let mut levels = Vec::new();
        for (name, level) in [
            ("Positive", ControlLevel::Positive),
            ("Negative", ControlLevel::Negative),
        ] {
            levels.push(
                store
                    .add_qc_material(&actor, name, QcMaterialKind::Control, Some(level), "cells")
                    .await
                    .unwrap(),
            );
        }
        let (positive, negative) = (levels[0].clone(), levels[1].clone());
        let empty = store
            .add_qc_material(&actor, "Phantom", QcMaterialKind::Phantom, None, "t2_ms")
            .await
            .unwrap();
        let old = store
            .add_qc_lot(&actor, positive.id, "P-1", date("2027-01-31"))
            .await
            .unwrap();
        let new = store
            .add_qc_lot(&actor, positive.id, "P-2", date("2027-06-30"))
            .await
            .unwrap();
        let neg = store
            .add_qc_lot(&actor, negative.id, "N-1", date("2027-06-30"))
            .await
            .unwrap();
        store
            .set_qc_target(&actor, new.id, 9.0, 1.0, TargetSource::Manufacturer, None)
            .await
            .unwrap();
        let current = store
            .set_qc_target(&actor, new.id, 10.0, 1.0, TargetSource::Manufacturer, None)
            .await
            .unwrap();

        // Materials by name, lots newest first, each with its newest target.
        let catalogue = store.qc_catalogue().await.unwrap();
        let names: Vec<&str> = catalogue.iter().map(|m| m.material.name.as_str()).collect();
        assert_eq!(names, ["Negative", "Phantom", "Positive"]);
        assert_eq!(catalogue[1].material, empty);
        assert!(catalogue[1].lots.is_empty(), "a material without lots");
        let lots: Vec<(&str, Option<f64>)> = catalogue[2]
            .lots
            .iter()
            .map(|l| (l.lot.lot.as_str(), l.target.as_ref().map(|t| t.mean)))
            .collect();
        assert_eq!(lots, [("P-2", Some(10.0)), ("P-1", None)]);
        assert_eq!(catalogue[2].lots[0].target, Some(current));

        // Twelve values of one lot, three of another, one outside the range.
        let at = |day: u32| Timestamp::parse(&format!("2026-11-{day:02}T08:00:00Z")).unwrap();
        let value = |lot: QcLotId, v: f64, day: u32| NewQcResult {
            lot_id: lot,
            value: v,
            status: QcVerdict::Pass,
            violations: Vec::new(),
            measurement_id: None,
            reagent_lot: None,
            measured_at: at(day),
            comment: None,
        };
        for day in 1..=12 {
            store
                .record_qc_result(&olga.actor(), &value(new.id, f64::from(day), day))
                .await
                .unwrap();
        }
        for day in 1..=3 {
            store
                .record_qc_result(&actor, &value(neg.id, 0.0, day))
                .await
                .unwrap();
        }
        store
            .record_qc_result(&actor, &value(old.id, 5.0, 20))
            .await
            .unwrap();
        let range = store.qc_values_between(at(1), at(13), 10).await.unwrap();
        let values = |lot: QcLotId| -> Vec<f64> {
            range
                .by_lot
                .get(&lot)
                .map_or_else(Vec::new, |r| r.iter().map(|r| r.value).collect())
        };
        assert_eq!(
            values(new.id),
            (3..=12).map(f64::from).collect::<Vec<_>>(),
            "the latest ten, oldest first"
        );
        assert_eq!(values(neg.id).len(), 3);
        assert!(values(old.id).is_empty(), "outside the range");
        assert_eq!(range.more.iter().copied().collect::<Vec<_>>(), [new.id]);
        assert_eq!(
            range.operators.get(&olga.id).map(String::as_str),
            Some(olga.display_name.as_str()),
            "who recorded them, named"
        );
        assert_eq!(range.operators.len(), 1, "the appliance is nobody");
        let exact = store.qc_values_between(at(1), at(13), 12).await.unwrap();
        assert!(exact.more.is_empty(), "twelve of twelve: nothing more");
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn qc_values_are_recorded_against_the_current_target(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let actor = Actor::Appliance;
        let material = store
            .add_qc_material(
                &actor,
                "T2 phantom 100 ms",
                QcMaterialKind::Phantom,
                None,
                "t2_ms",
            )
            .await
            .unwrap();
        let duplicate = store
            .add_qc_material(
                &actor,
                "T2 phantom 100 ms",
                QcMaterialKind::Phantom,
                None,
                "t2_ms",
            )
            .await;
        assert!(
            matches!(duplicate, Err(StoreError::Duplicate { .. })),
            "{duplicate:?}"
        );
        let lot = store
            .add_qc_lot(&actor, material.id, "PH-2026-07", date("2027-07-31"))
            .await
            .unwrap();
        assert_eq!(store.qc_lots(material.id).await.unwrap(), vec![lot.clone()]);
        let few = store
            .set_qc_target(
                &actor,
                lot.id,
                100.0,
                2.0,
                TargetSource::Established,
                Some(12),
            )
            .await;
        assert!(matches!(few, Err(StoreError::Invalid { .. })), "{few:?}");
        let bad_sd = store
            .set_qc_target(&actor, lot.id, 100.0, 0.0, TargetSource::Manufacturer, None)
            .await;
        assert!(matches!(bad_sd, Err(StoreError::Invalid { .. })));
        store
            .set_qc_target(&actor, lot.id, 101.0, 2.5, TargetSource::Manufacturer, None)
            .await
            .unwrap();
        let target = store
            .set_qc_target(
                &actor,
                lot.id,
                100.0,
                2.0,
                TargetSource::Established,
                Some(20),
            )
            .await
            .unwrap();
        assert_eq!(
            store.current_qc_target(lot.id).await.unwrap(),
            Some(target.clone())
        );
        let new = |value, status, at: &str| NewQcResult {
            lot_id: lot.id,
            value,
            status,
            violations: Vec::new(),
            measurement_id: None,
            reagent_lot: None,
            measured_at: Timestamp::parse(at).unwrap(),
            comment: None,
        };
        store
            .record_qc_result(&actor, &new(100.5, QcVerdict::Pass, "2026-11-20T07:00:00Z"))
            .await
            .unwrap();
        let warning = store
            .record_qc_result(
                &actor,
                &new(104.5, QcVerdict::Warning, "2026-11-21T07:00:00Z"),
            )
            .await
            .unwrap();
        assert_eq!(warning.target_id, Some(target.id));
        let since = store
            .qc_results(lot.id, Timestamp::parse("2026-11-21T00:00:00Z").unwrap())
            .await
            .unwrap();
        assert_eq!(since, vec![warning.clone()]);
        // A day's values: exactly those from its midnight (to the microsecond) to the next,
        // the day's bounds in the statement.
        let mut edge = Vec::new();
        for at in [
            "2026-11-22T23:59:59.5Z",
            "2026-11-23T00:00:00.25Z",
            "2026-11-23T23:59:59.999999Z",
            "2026-11-24T00:00:00Z",
            "2026-11-24T00:00:00.5Z",
        ] {
            edge.push(
                store
                    .record_qc_result(&actor, &new(100.0, QcVerdict::Pass, at))
                    .await
                    .unwrap(),
            );
        }
        let day = store
            .qc_between(
                Timestamp::parse("2026-11-23T00:00:00Z").unwrap(),
                Timestamp::parse("2026-11-24T00:00:00Z").unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            day.values.into_iter().map(|v| v.result).collect::<Vec<_>>(),
            edge[1..3]
        );
        let nan = store
            .record_qc_result(
                &actor,
                &new(f64::NAN, QcVerdict::Pass, "2026-11-22T07:00:00Z"),
            )
            .await;
        assert!(matches!(nan, Err(StoreError::Invalid { .. })));
        let mut unknown = new(100.0, QcVerdict::Pass, "2026-11-22T07:00:00Z");
        unknown.lot_id = QcLotId(77);
        let unknown = store.record_qc_result(&actor, &unknown).await;
        assert!(matches!(unknown, Err(StoreError::NotFound { .. })));
        let mut no_measurement = new(100.0, QcVerdict::Pass, "2026-11-22T07:00:00Z");
        no_measurement.measurement_id = Some(MeasurementId(5));
        let no_measurement = store.record_qc_result(&actor, &no_measurement).await;
        assert!(
            matches!(no_measurement, Err(StoreError::NotFound { .. })),
            "{no_measurement:?}"
        );
        let edit = sqlx::query("UPDATE qc_results SET value = 100")
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(edit.to_string().contains("UPDATE refused"));
        assert_eq!(store.qc_materials().await.unwrap(), vec![material]);
    }
}
