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
            .map(|r| {
                Ok(QcMaterial {
                    id: QcMaterialId(r.id),
                    kind: QcMaterialKind::parse(&r.kind).ok_or_else(|| StoreError::Corrupt {
                        what: "QC material kind",
                        row: r.id,
                        reason: format!("{:?}", r.kind),
                    })?,
                    control_level: r
                        .control_level
                        .map(|level| level.parse::<ControlLevel>())
                        .transpose()
                        .map_err(|e| StoreError::Corrupt {
                            what: "QC control level",
                            row: r.id,
                            reason: e.to_string(),
                        })?,
                    name: r.name,
                    analyte: r.analyte,
                })
            })
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
    fn decode(r: Self) -> Result<QcResult, StoreError> {
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

/// Today's QC: every control value recorded on the UTC day of a given instant, with its material
/// and lot. The one reading of "today's QC" that the engine's pre-run check, the dashboard and
/// `GET /api/v1/qc` all use.
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
    /// Today's QC: the values measured on the UTC day of `now` (from its midnight to the next).
    pub async fn qc_today(&self, now: Timestamp) -> Result<QcToday, StoreError> {
        let midnight = Timestamp::from_datetime(now.datetime().replace_time(time::Time::MIDNIGHT));
        self.qc_between(midnight, midnight.plus(time::Duration::days(1)))
            .await
    }

    /// The control values measured from `midnight` up to (not including) `next_midnight`: a
    /// site's calendar day (`appliance::site::SiteTimeZone::day_of`).
    pub async fn qc_between(
        &self,
        midnight: Timestamp,
        next_midnight: Timestamp,
    ) -> Result<QcToday, StoreError> {
        let mut values = Vec::new();
        for material in self.qc_materials().await? {
            for lot in self.qc_lots(material.id).await? {
                for result in self
                    .qc_results_between(lot.id, midnight, next_midnight)
                    .await?
                {
                    values.push(QcTodayValue {
                        material: material.clone(),
                        lot: lot.clone(),
                        result,
                    });
                }
            }
        }
        Ok(QcToday { values })
    }
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
