//! The QC a run's result relied on, stored as it was judged (issue 11, point 1).
//!
//! Whenever the QC gate is judged for a run (at its start under the default policy, and at its
//! release), the control values it relied on are stored here: level, material, QC lot, time
//! measured and verdict, with when and for what it was judged. They are written in the same
//! transaction as the run's creation ([`Store::create_run_relying_on`]) or its release
//! ([`Store::sign_result_relying_on`]): a crash between the two cannot leave a started run or a
//! released result without the QC it relied on. A report names these rows; it never recomputes
//! them from today's QC. Rows are never changed or removed.
//!
//! Not here: the gate's rule (`operations::qc_gate`).

use nmr_core::qc::ControlLevel;
use nmr_core::qc::westgard::QcVerdict;
use serde::Serialize;

use super::error::SqlxResultExt;
use super::timestamp::stored;
use super::{QcResultId, RunId, Store, StoreError, Timestamp};

/// When the QC gate was judged for a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgedFor {
    /// Before the run started.
    Start,
    /// At the release of its result.
    Release,
}

impl JudgedFor {
    /// `start` or `release`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Release => "release",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "start" => Some(Self::Start),
            "release" => Some(Self::Release),
            _ => None,
        }
    }
}

/// One control value a run relied on, as judged then.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QcRelied {
    /// The stored control value.
    pub qc_result_id: QcResultId,
    /// Its control level.
    pub level: ControlLevel,
    /// The control material's name.
    pub material: String,
    /// The control material's lot.
    pub qc_lot: String,
    /// When it was measured.
    pub measured_at: Timestamp,
    /// Its verdict when it was relied on.
    pub verdict: QcVerdict,
}

/// The QC a run relied on at one judgement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QcBasis {
    /// Start or release.
    pub judged_for: JudgedFor,
    /// When it was judged.
    pub judged_at: Timestamp,
    /// The control values relied on, one per level.
    pub values: Vec<QcRelied>,
}

/// Records the control values `run_id` relied on, judged at `judged_at` for `judged_for`, inside
/// the caller's write transaction: the run's start ([`Store::create_run_relying_on`]) or its
/// release ([`Store::sign_result_relying_on`]), so a run or a release is never stored without
/// the QC it relied on, nor the QC without it.
pub(crate) async fn record_qc_basis_in(
    conn: &mut sqlx::SqliteConnection,
    run_id: RunId,
    judged_for: JudgedFor,
    judged_at: Timestamp,
    values: &[QcRelied],
) -> Result<(), StoreError> {
    let judged_at = judged_at.to_rfc3339();
    let purpose = judged_for.as_str();
    for value in values {
        let (level, verdict) = (value.level.as_str(), value.verdict.as_str());
        let measured_at = value.measured_at.to_rfc3339();
        sqlx::query!(
            "INSERT INTO run_qc_basis (run_id, judged_for, judged_at, qc_result_id,
                                       control_level, material, qc_lot, measured_at, verdict)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run_id.0,
            purpose,
            judged_at,
            value.qc_result_id.0,
            level,
            value.material,
            value.qc_lot,
            measured_at,
            verdict
        )
        .execute(&mut *conn)
        .await
        .context("recording the QC a run relied on")?;
    }
    Ok(())
}

impl Store {
    /// The QC judgements of a run, oldest first, each with the values it relied on.
    pub async fn qc_basis(&self, run_id: RunId) -> Result<Vec<QcBasis>, StoreError> {
        let rows = sqlx::query!(
            "SELECT id, judged_for, judged_at, qc_result_id, control_level, material, qc_lot,
                    measured_at, verdict
             FROM run_qc_basis WHERE run_id = ? ORDER BY judged_at, id",
            run_id.0
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the QC a run relied on")?;
        let mut judgements: Vec<QcBasis> = Vec::new();
        for r in rows {
            let corrupt = |what: &'static str, text: &str| StoreError::Corrupt {
                what,
                row: r.id,
                reason: text.to_owned(),
            };
            let judged_for = JudgedFor::parse(&r.judged_for)
                .ok_or_else(|| corrupt("QC basis purpose", &r.judged_for))?;
            let judged_at = stored(&r.judged_at, "QC basis time", r.id)?;
            let value = QcRelied {
                qc_result_id: QcResultId(r.qc_result_id),
                level: r
                    .control_level
                    .parse()
                    .map_err(|_| corrupt("QC basis level", &r.control_level))?,
                material: r.material,
                qc_lot: r.qc_lot,
                measured_at: stored(&r.measured_at, "QC basis value time", r.id)?,
                verdict: r
                    .verdict
                    .parse()
                    .map_err(|_| corrupt("QC basis verdict", &r.verdict))?,
            };
            match judgements.last_mut() {
                Some(last) if last.judged_for == judged_for && last.judged_at == judged_at => {
                    last.values.push(value);
                }
                _ => judgements.push(QcBasis {
                    judged_for,
                    judged_at,
                    values: vec![value],
                }),
            }
        }
        Ok(judgements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Actor;
    use crate::store::qc::{NewQcResult, QcMaterialKind};
    use crate::store::test_fixtures::running_run;
    use sqlx::SqlitePool;

    #[sqlx::test(migrations = "../migrations")]
    async fn the_qc_relied_on_is_kept_as_judged(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let actor = Actor::Appliance;
        let (_, _, run) = running_run(&store, "QC-BASIS-1").await;
        // Nothing judged: nothing relied on.
        assert!(store.qc_basis(run.id).await.unwrap().is_empty());
        let material = store
            .add_qc_material(
                &actor,
                "CTC control negative",
                QcMaterialKind::Control,
                Some(ControlLevel::Negative),
                "cells",
            )
            .await
            .unwrap();
        let expires = time::macros::date!(2099 - 01 - 01);
        let lot = store
            .add_qc_lot(&actor, material.id, "QN-1", expires)
            .await
            .unwrap();
        let measured_at = Timestamp::parse("2026-12-02T07:00:00Z").unwrap();
        let result = store
            .record_qc_result(
                &actor,
                &NewQcResult {
                    lot_id: lot.id,
                    value: 0.0,
                    status: QcVerdict::Pass,
                    violations: Vec::new(),
                    measurement_id: None,
                    reagent_lot: None,
                    measured_at,
                    comment: None,
                },
            )
            .await
            .unwrap();
        let value = QcRelied {
            qc_result_id: result.id,
            level: ControlLevel::Negative,
            material: material.name.clone(),
            qc_lot: lot.lot.clone(),
            measured_at,
            verdict: QcVerdict::Pass,
        };
        let mut conn = pool.acquire().await.unwrap();
        record_qc_basis_in(
            &mut conn,
            run.id,
            JudgedFor::Start,
            Timestamp::now(),
            std::slice::from_ref(&value),
        )
        .await
        .unwrap();
        drop(conn);
        let basis = store.qc_basis(run.id).await.unwrap();
        assert_eq!(basis.len(), 1);
        assert_eq!(basis[0].judged_for, JudgedFor::Start);
        assert_eq!(basis[0].values, [value]);
        // Kept as judged: the rows refuse change and removal.
        let update = sqlx::query("UPDATE run_qc_basis SET verdict = 'reject'")
            .execute(&pool)
            .await;
        assert!(update.is_err(), "{update:?}");
        let delete = sqlx::query("DELETE FROM run_qc_basis").execute(&pool).await;
        assert!(delete.is_err(), "{delete:?}");
    }
}
