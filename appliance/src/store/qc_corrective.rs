//! Corrective actions recorded against a rejected QC result (issue 11 point 8): what was done
//! about a control value the Westgard rules rejected, who recorded it and when
//! (`migrations/0013`).
//!
//! Only a rejected value takes one: [`Store::add_corrective_action`] reads the result's stored
//! verdict in the same transaction as the insert and its audit entry (`qc.corrective_action`).
//! Rows are never changed or removed. Not here: the text's rule and who may record one
//! (`Operations::record_corrective_action`).

use serde::Serialize;

use super::audit::append;
use super::error::{SqlxResultExt, found};
use super::qc::QcVerdict;
use super::timestamp::stored;
use super::{Actor, AuditEntry, QcResultId, Store, StoreError, Timestamp, UserId, db};

/// A corrective action recorded against a rejected QC result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CorrectiveAction {
    /// Row id.
    pub id: i64,
    /// The rejected QC result it answers.
    pub qc_result_id: QcResultId,
    /// What was done, in words.
    pub action: String,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Who recorded it (`None`: the appliance).
    pub recorded_by: Option<UserId>,
    /// Their printed name.
    pub recorded_by_name: Option<String>,
}

impl Store {
    /// Records `action` against the QC result `qc_result_id`, which must have been rejected
    /// (a pass or a warning is refused as a conflict naming its verdict); audited.
    pub async fn add_corrective_action(
        &self,
        actor: &Actor,
        qc_result_id: QcResultId,
        action: &str,
    ) -> Result<CorrectiveAction, StoreError> {
        let now = Timestamp::now();
        let now_text = now.to_rfc3339();
        let by = actor.user_column();
        let mut tx = db::begin_write(&self.pool).await?;
        let status =
            sqlx::query_scalar!("SELECT status FROM qc_results WHERE id = ?", qc_result_id.0)
                .fetch_optional(&mut *tx)
                .await
                .context("reading a QC result's verdict")?;
        let status = found(status, "QC result", qc_result_id.0)?;
        let verdict: QcVerdict = status.parse().map_err(|_| StoreError::Corrupt {
            what: "QC status",
            row: qc_result_id.0,
            reason: status.clone(),
        })?;
        if verdict != QcVerdict::Reject {
            return Err(StoreError::Conflict(format!(
                "QC result {} was not rejected (its verdict is {verdict}): corrective actions \
                 are recorded against a rejected QC result",
                qc_result_id.0
            )));
        }
        let id = sqlx::query_scalar!(
            "INSERT INTO qc_corrective_actions (qc_result_id, action, recorded_at, recorded_by)
             VALUES (?, ?, ?, ?) RETURNING id AS \"id!\"",
            qc_result_id.0,
            action,
            now_text,
            by
        )
        .fetch_one(&mut *tx)
        .await
        .context("recording a corrective action")?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("qc.corrective_action", "qc_result")
                .id(qc_result_id.0)
                .detail(serde_json::json!({ "corrective_action": id, "action": action })),
        )
        .await?;
        tx.commit()
            .await
            .context("committing a corrective action")?;
        let name = match by {
            Some(user) => sqlx::query_scalar!("SELECT display_name FROM users WHERE id = ?", user)
                .fetch_optional(&self.pool)
                .await
                .context("reading a corrective action's author")?,
            None => None,
        };
        Ok(CorrectiveAction {
            id,
            qc_result_id,
            action: action.to_owned(),
            recorded_at: now,
            recorded_by: by.map(UserId),
            recorded_by_name: name,
        })
    }

    /// The corrective actions recorded against the QC results `results`, oldest first: ONE
    /// statement (the ids travel as one JSON array), each result's actions read from its index.
    pub async fn corrective_actions_of(
        &self,
        results: &[QcResultId],
    ) -> Result<Vec<CorrectiveAction>, StoreError> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let ids = format!(
            "[{}]",
            results
                .iter()
                .map(|id| id.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let rows = sqlx::query!(
            r#"SELECT a.id AS "id!", a.qc_result_id, a.action, a.recorded_at, a.recorded_by,
                      u.display_name AS "recorded_by_name?"
               FROM qc_corrective_actions a
               LEFT JOIN users u ON u.id = a.recorded_by
               WHERE a.qc_result_id IN (SELECT value FROM json_each(?1))
               ORDER BY a.id"#,
            ids
        )
        .fetch_all(&self.pool)
        .await
        .context("reading QC results' corrective actions")?;
        rows.into_iter()
            .map(|r| {
                Ok(CorrectiveAction {
                    id: r.id,
                    qc_result_id: QcResultId(r.qc_result_id),
                    action: r.action,
                    recorded_at: stored(&r.recorded_at, "corrective action time", r.id)?,
                    recorded_by: r.recorded_by.map(UserId),
                    recorded_by_name: r.recorded_by_name,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::qc::{ControlLevel, NewQcResult, QcMaterialKind};
    use crate::store::test_fixtures::user;
    use crate::store::users::Role;
    use sqlx::SqlitePool;

    #[sqlx::test(migrations = "../migrations")]
    async fn a_corrective_action_answers_a_rejected_qc_result_and_is_kept(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let olga = user(&store, "olga", Role::Operator).await;
        let actor = olga.actor();
        let material = store
            .add_qc_material(
                &actor,
                "CTC control positive",
                QcMaterialKind::Control,
                Some(ControlLevel::Positive),
                "cells",
            )
            .await
            .unwrap();
        let expires = time::macros::date!(2099 - 01 - 01);
        let lot = store
            .add_qc_lot(&actor, material.id, "QP-1", expires)
            .await
            .unwrap();
        let record = |status| {
            let store = store.clone();
            let actor = actor.clone();
            async move {
                store
                    .record_qc_result(
                        &actor,
                        &NewQcResult {
                            lot_id: lot.id,
                            value: 50.0,
                            status,
                            violations: Vec::new(),
                            measurement_id: None,
                            reagent_lot: None,
                            measured_at: Timestamp::now(),
                            comment: None,
                        },
                    )
                    .await
                    .unwrap()
            }
        };
        let passed = record(QcVerdict::Pass).await;
        let warned = record(QcVerdict::Warning).await;
        let rejected = record(QcVerdict::Reject).await;
        for not_rejected in [passed.id, warned.id] {
            let refused = store
                .add_corrective_action(&actor, not_rejected, "recalibrated")
                .await;
            assert!(
                matches!(refused, Err(StoreError::Conflict(_))),
                "{refused:?}"
            );
        }
        let unknown = store
            .add_corrective_action(&actor, QcResultId(999), "recalibrated")
            .await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound { .. })),
            "{unknown:?}"
        );
        let all = [passed.id, warned.id, rejected.id];
        assert!(store.corrective_actions_of(&all).await.unwrap().is_empty());

        let action = store
            .add_corrective_action(&actor, rejected.id, "new control vial, rerun: pass")
            .await
            .unwrap();
        assert_eq!(action.recorded_by, Some(olga.id));
        assert_eq!(action.recorded_by_name.as_deref(), Some("olga (printed)"));
        assert_eq!(
            store.corrective_actions_of(&all).await.unwrap(),
            std::slice::from_ref(&action)
        );
        assert!(
            store
                .corrective_actions_of(&[passed.id])
                .await
                .unwrap()
                .is_empty(),
            "only the results asked for"
        );
        let audited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'qc.corrective_action'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(audited, 1);
        // Kept as recorded.
        let update = sqlx::query("UPDATE qc_corrective_actions SET action = 'x'")
            .execute(&pool)
            .await;
        assert!(update.is_err(), "{update:?}");
        let delete = sqlx::query("DELETE FROM qc_corrective_actions")
            .execute(&pool)
            .await;
        assert!(delete.is_err(), "{delete:?}");
    }
}
