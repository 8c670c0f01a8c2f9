//! Calibrations: per reagent lot and echo time, the content that turns ΔR2 into cells.
//!
//! The content is the calibration file itself (TOML or JSON, as `nmr_core::assay` writes it),
//! stored verbatim so that it can be read back, exported or shown as it was. A calibration is
//! stored pending ([`CalibrationState`], `migrations/0018`); a lab admin approves or rejects it
//! (`operations::calibrations` holds the rule and the signature). At most one calibration is
//! approved (active) per lot and echo time (a partial unique index enforces it); approving one
//! supersedes the one it replaces, in one audited transaction. Calibrations are never deleted.

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

/// Where a calibration stands: pending until a lab admin decides; approved (the one in use for
/// its lot and echo time), superseded by a later approval, or rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CalibrationState {
    /// Stored, awaiting a lab admin's approval; quantifies nothing.
    Pending,
    /// Approved by a lab admin: the calibration of its lot and echo time.
    Approved,
    /// Was approved; a later approval replaced it. Kept for the runs it counted.
    Superseded,
    /// A lab admin refused it.
    Rejected,
}

impl CalibrationState {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Superseded => "superseded",
            Self::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Approved,
            Self::Superseded,
            Self::Rejected,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

impl fmt::Display for CalibrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lab admin's decision on a pending calibration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalibrationDecision {
    /// Approve it: it becomes the calibration of its lot and echo time.
    Approve,
    /// Reject it.
    Reject,
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
    /// Whether it is the one used for its lot and echo time (its state is `approved`).
    pub active: bool,
    /// Pending, approved, superseded or rejected.
    pub state: CalibrationState,
    /// When it was stored.
    pub created_at: Timestamp,
    /// Who stored it (`None`: the appliance).
    pub created_by: Option<UserId>,
    /// When a lab admin approved or rejected it.
    pub decided_at: Option<Timestamp>,
    /// Who approved or rejected it (`None` with a decision: the appliance's console or the demo).
    pub decided_by: Option<UserId>,
    /// Why it was approved or rejected.
    pub decision_reason: Option<String>,
}

/// One page of calibrations, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationPage {
    /// At most the page size, newest first.
    pub calibrations: Vec<Calibration>,
    /// The id the next page starts below, when there is one.
    pub next_before: Option<CalibrationId>,
}

struct CalibrationRow {
    id: i64,
    reagent_lot: String,
    te_us: i64,
    content_format: String,
    content: String,
    note: Option<String>,
    active: i64,
    state: String,
    created_at: String,
    created_by: Option<i64>,
    decided_at: Option<String>,
    decided_by: Option<i64>,
    decision_reason: Option<String>,
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
        let state = CalibrationState::parse(&self.state)
            .ok_or_else(|| corrupt(format!("state {:?}", self.state)))?;
        let decided_at = match &self.decided_at {
            Some(text) => Some(stored(text, "calibration decision time", self.id)?),
            None => None,
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
            state,
            created_by: self.created_by.map(UserId),
            decided_at,
            decided_by: self.decided_by.map(UserId),
            decision_reason: self.decision_reason,
        })
    }
}

/// Approves or rejects the pending calibration `id` (see the module): approving it supersedes the
/// approved one of its lot and echo time. Audited (`calibration.approve`, `calibration.reject`)
/// with the reason.
async fn decide_in(
    conn: &mut sqlx::SqliteConnection,
    actor: &Actor,
    id: CalibrationId,
    decision: CalibrationDecision,
    reason: &str,
) -> Result<(), StoreError> {
    let target = sqlx::query!(
        "SELECT reagent_lot, te_us, state FROM calibrations WHERE id = ?",
        id.0
    )
    .fetch_optional(&mut *conn)
    .await
    .context("looking up a calibration")?;
    let target = found(target, "calibration", id)?;
    if target.state != CalibrationState::Pending.as_str() {
        return Err(StoreError::Conflict(format!(
            "calibration {id} is {}: only a pending calibration is approved or rejected",
            target.state
        )));
    }
    let now = Timestamp::now().to_rfc3339();
    let by = actor.user_column();
    let (action, superseded) = match decision {
        CalibrationDecision::Approve => {
            let superseded = sqlx::query_scalar!(
                "UPDATE calibrations SET active = 0, state = 'superseded'
                 WHERE reagent_lot = ? AND te_us = ? AND state = 'approved' AND id <> ?
                 RETURNING id AS \"id!\"",
                target.reagent_lot,
                target.te_us,
                id.0
            )
            .fetch_all(&mut *conn)
            .await
            .context("superseding the approved calibration")?;
            sqlx::query!(
                "UPDATE calibrations SET active = 1, state = 'approved', decided_at = ?,
                        decided_by = ?, decision_reason = ?
                 WHERE id = ?",
                now,
                by,
                reason,
                id.0
            )
            .execute(&mut *conn)
            .await
            .context("approving a calibration")?;
            ("calibration.approve", superseded)
        }
        CalibrationDecision::Reject => {
            sqlx::query!(
                "UPDATE calibrations SET state = 'rejected', decided_at = ?, decided_by = ?,
                        decision_reason = ?
                 WHERE id = ?",
                now,
                by,
                reason,
                id.0
            )
            .execute(&mut *conn)
            .await
            .context("rejecting a calibration")?;
            ("calibration.reject", Vec::new())
        }
    };
    append(
        conn,
        actor,
        AuditEntry::new(action, "calibration")
            .id(id)
            .reason(reason)
            .detail(serde_json::json!({
                "reagent_lot": target.reagent_lot, "te_us": target.te_us,
                "superseded": superseded,
            })),
    )
    .await?;
    Ok(())
}

impl Store {
    /// Stores a calibration, pending: it quantifies nothing until a lab admin approves it
    /// ([`Store::decide_calibration`]).
    pub async fn add_calibration(
        &self,
        actor: &Actor,
        new: &NewCalibration,
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
        tx.commit().await.context("committing a calibration")?;
        self.calibration(CalibrationId(id)).await
    }

    /// Approves or rejects a pending calibration, with the reason (audited); approving it
    /// supersedes the approved one of its lot and echo time in the same transaction. Who may
    /// decide, and the signature, are `operations::calibrations`'.
    pub async fn decide_calibration(
        &self,
        actor: &Actor,
        id: CalibrationId,
        decision: CalibrationDecision,
        reason: &str,
    ) -> Result<Calibration, StoreError> {
        let mut tx = db::begin_write(&self.pool).await?;
        decide_in(&mut tx, actor, id, decision, reason).await?;
        tx.commit()
            .await
            .context("committing a calibration's approval")?;
        self.calibration(id).await
    }

    /// A calibration.
    pub async fn calibration(&self, id: CalibrationId) -> Result<Calibration, StoreError> {
        let row = sqlx::query_as!(
            CalibrationRow,
            "SELECT id, reagent_lot, te_us, content_format, content, note, active, state, created_at,
                    created_by, decided_at, decided_by, decision_reason
             FROM calibrations WHERE id = ?",
            id.0
        )
        .fetch_optional(&self.pool)
        .await
        .context("reading a calibration")?;
        found(row, "calibration", id)?.into_calibration()
    }

    /// The approved (active) calibration for a lot and echo time, if any.
    pub async fn active_calibration(
        &self,
        lot: &ReagentLot,
        te_us: u32,
    ) -> Result<Option<Calibration>, StoreError> {
        let lot = lot.as_str();
        let te_us = i64::from(te_us);
        let row = sqlx::query_as!(
            CalibrationRow,
            "SELECT id, reagent_lot, te_us, content_format, content, note, active, state, created_at,
                    created_by, decided_at, decided_by, decision_reason
             FROM calibrations WHERE reagent_lot = ? AND te_us = ? AND active = 1",
            lot,
            te_us
        )
        .fetch_optional(&self.pool)
        .await
        .context("finding the active calibration")?;
        row.map(CalibrationRow::into_calibration).transpose()
    }

    /// Calibrations newest first, `size` of them (1 to 100) below `before` (the keyset: one
    /// statement a page, reading one more row to say whether another page follows).
    pub async fn calibration_page(
        &self,
        before: Option<CalibrationId>,
        size: u32,
    ) -> Result<CalibrationPage, StoreError> {
        let size = size.clamp(1, 100);
        let before = before.map_or(i64::MAX, |id| id.0);
        let limit = i64::from(size) + 1;
        let mut rows = sqlx::query_as!(
            CalibrationRow,
            "SELECT id, reagent_lot, te_us, content_format, content, note, active, state, created_at,
                    created_by, decided_at, decided_by, decision_reason
             FROM calibrations WHERE id < ? ORDER BY id DESC LIMIT ?",
            before,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("listing calibrations")?
        .into_iter()
        .map(CalibrationRow::into_calibration)
        .collect::<Result<Vec<_>, _>>()?;
        let next_before = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last().map(|c| c.id)
        } else {
            None
        };
        Ok(CalibrationPage {
            calibrations: rows,
            next_before,
        })
    }

    /// The reagent lots with an approved calibration (at any echo time), sorted.
    pub async fn approved_calibration_lots(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar!(
            "SELECT DISTINCT reagent_lot FROM calibrations WHERE state = 'approved'
             ORDER BY reagent_lot"
        )
        .fetch_all(&self.pool)
        .await
        .context("listing the approved calibrations' lots")
    }

    /// The newest pending calibration of a lot and echo time, if any (what a refusal names).
    pub async fn pending_calibration(
        &self,
        lot: &ReagentLot,
        te_us: u32,
    ) -> Result<Option<CalibrationId>, StoreError> {
        let lot = lot.as_str();
        let te_us = i64::from(te_us);
        let id = sqlx::query_scalar!(
            "SELECT id AS \"id!\" FROM calibrations
             WHERE reagent_lot = ? AND te_us = ? AND state = 'pending' ORDER BY id DESC LIMIT 1",
            lot,
            te_us
        )
        .fetch_optional(&self.pool)
        .await
        .context("finding a pending calibration")?;
        Ok(id.map(CalibrationId))
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
    async fn a_calibration_is_pending_until_approved_and_one_is_approved_per_lot_and_te(
        pool: SqlitePool,
    ) {
        use CalibrationDecision::{Approve, Reject};
        let store = Store::from_pool(pool.clone());
        let lot = ReagentLot::parse("LOT-A1").unwrap();
        let first = store
            .add_calibration(&Actor::Appliance, &new("LOT-A1", 0.01))
            .await
            .unwrap();
        assert_eq!(first.state, CalibrationState::Pending);
        assert!(!first.active);
        assert_eq!(first.content.text, "slope_per_s_per_cell = 0.01\n");
        assert_eq!(
            store.active_calibration(&lot, 4000).await.unwrap(),
            None,
            "a pending calibration is not the lot's"
        );
        assert_eq!(
            store.pending_calibration(&lot, 4000).await.unwrap(),
            Some(first.id)
        );
        let approved = store
            .decide_calibration(&Actor::Appliance, first.id, Approve, "series checked")
            .await
            .unwrap();
        assert_eq!(approved.state, CalibrationState::Approved);
        assert!(approved.active);
        assert_eq!(approved.decision_reason.as_deref(), Some("series checked"));
        assert!(approved.decided_at.is_some());
        let second = store
            .add_calibration(&Actor::Appliance, &new("LOT-A1", 0.02))
            .await
            .unwrap();
        let third = store
            .add_calibration(&Actor::Appliance, &new("LOT-A1", 0.03))
            .await
            .unwrap();
        let other_lot = store
            .add_calibration(&Actor::Appliance, &new("LOT-B2", 0.03))
            .await
            .unwrap();
        store
            .decide_calibration(&Actor::Appliance, other_lot.id, Approve, "lot B")
            .await
            .unwrap();
        store
            .decide_calibration(&Actor::Appliance, second.id, Approve, "new lot in use")
            .await
            .unwrap();
        let rejected = store
            .decide_calibration(&Actor::Appliance, third.id, Reject, "LoD too high")
            .await
            .unwrap();
        assert_eq!(rejected.state, CalibrationState::Rejected);
        assert_eq!(
            store
                .active_calibration(&lot, 4000)
                .await
                .unwrap()
                .map(|c| c.id),
            Some(second.id)
        );
        let first = store.calibration(first.id).await.unwrap();
        assert_eq!(first.state, CalibrationState::Superseded);
        assert!(!first.active);
        assert!(store.calibration(other_lot.id).await.unwrap().active);
        assert_eq!(store.active_calibration(&lot, 2000).await.unwrap(), None);
        // Only a pending calibration is decided: a superseded or rejected one stays so.
        for id in [first.id, third.id, second.id] {
            let again = store
                .decide_calibration(&Actor::Appliance, id, Approve, "again")
                .await;
            assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        }
        // The index itself refuses a second active row.
        let twice = sqlx::query("UPDATE calibrations SET active = 1 WHERE id = ?")
            .bind(first.id.0)
            .execute(&pool)
            .await;
        assert!(twice.is_err());
        let reasons: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT action, reason FROM audit_log
             WHERE action IN ('calibration.approve', 'calibration.reject') ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let approve = |r: &str| ("calibration.approve".to_owned(), Some(r.to_owned()));
        assert_eq!(
            reasons,
            [
                approve("series checked"),
                approve("lot B"),
                approve("new lot in use"),
                (
                    "calibration.reject".to_owned(),
                    Some("LoD too high".to_owned())
                ),
            ]
        );
        assert_eq!(
            store.approved_calibration_lots().await.unwrap(),
            ["LOT-A1", "LOT-B2"]
        );
        assert_eq!(count(&pool, "calibrations").await, 4);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn calibrations_are_paged_newest_first(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        for i in 0..5 {
            store
                .add_calibration(&Actor::Appliance, &new("LOT-A1", 0.01 + f64::from(i)))
                .await
                .unwrap();
        }
        let first = store.calibration_page(None, 2).await.unwrap();
        let ids = |p: &CalibrationPage| p.calibrations.iter().map(|c| c.id.0).collect::<Vec<_>>();
        assert_eq!(ids(&first), [5, 4]);
        assert_eq!(first.next_before, Some(CalibrationId(4)));
        let second = store.calibration_page(first.next_before, 2).await.unwrap();
        assert_eq!(ids(&second), [3, 2]);
        let last = store.calibration_page(second.next_before, 2).await.unwrap();
        assert_eq!(ids(&last), [1]);
        assert_eq!(last.next_before, None);
        assert_eq!(
            store
                .calibration_page(None, 0)
                .await
                .unwrap()
                .calibrations
                .len(),
            1
        );
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn unknown_calibrations_are_not_found(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let missing = store
            .decide_calibration(
                &Actor::Appliance,
                CalibrationId(3),
                CalibrationDecision::Approve,
                "no such",
            )
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
        let mut zero_te = new("LOT-A1", 0.01);
        zero_te.te_us = 0;
        let refused = store.add_calibration(&Actor::Appliance, &zero_te).await;
        assert!(matches!(refused, Err(StoreError::Invalid { .. })));
    }
}
