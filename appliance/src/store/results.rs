//! Results: versioned count reports, and their release by electronic signature.
//!
//! A run's first result is version 1. A correction never changes a stored version: it adds the
//! next version with a reason (SQLite refuses UPDATE and DELETE on `results`, and a version after
//! the first without a reason). The current result is the highest version; older ones stay
//! visible.
//!
//! Release is an electronic signature (21 CFR Part 11 §11.50): the signer's printed name, the
//! time, and the meaning of the signature, bound to one result version. Only clinicians and lab
//! administrators may sign a release. A correction of a released result sends the run back to
//! `awaiting_release`, since the new version is not signed.
//!
//! The whole count report (an `nmr_core::assay` type) is stored as JSON; the few numbers a trend
//! needs are stored as columns beside it, so that a patient's trend is one indexed query.

use std::fmt;

use nmr_core::assay::{Call, CallOutcome, CountCategory, CountEstimate};
use serde::{Deserialize, Serialize};

use super::audit::append;
use super::error::{SqlxResultExt, found};
use super::runs::{RunState, run_in, transition_in};
use super::timestamp::stored;
use super::users::User;
use super::{
    Actor, AuditEntry, JsonReport, PatientId, ResultId, RunId, SignatureId, Store, StoreError,
    Timestamp, UserId, db,
};

/// The reporting category of a count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultCategory {
    /// Below the limit of blank.
    NotDetected,
    /// Detected, below the limit of quantitation.
    BelowLoq,
    /// A quantitative value.
    Quantified,
}

impl ResultCategory {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotDetected => "not_detected",
            Self::BelowLoq => "below_loq",
            Self::Quantified => "quantified",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::NotDetected, Self::BelowLoq, Self::Quantified]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

/// The call against the indication's cut-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultCall {
    /// Below the cut-off.
    Favorable,
    /// At or above the cut-off.
    Unfavorable,
}

impl ResultCall {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Favorable => "favorable",
            Self::Unfavorable => "unfavorable",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Favorable, Self::Unfavorable]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

/// The numbers of a result that trends and lists need, checked before storing.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ResultSummary {
    /// CTC per 7.5 mL of blood.
    pub per_7_5ml: f64,
    /// Its 95 % interval, low and high.
    pub per_7_5ml_ci95: [f64; 2],
    /// Reporting category.
    pub category: ResultCategory,
    /// Call against the cut-off, when the indication has one.
    pub call: Option<ResultCall>,
}

impl ResultSummary {
    /// Checks that the numbers are finite and non-negative and that the interval is ordered.
    /// (Whether the value lies inside its interval is the assay's business, not storage's: a
    /// result is stored as the assay reported it.)
    pub fn new(
        per_7_5ml: f64,
        per_7_5ml_ci95: [f64; 2],
        category: ResultCategory,
        call: Option<ResultCall>,
    ) -> Result<Self, StoreError> {
        let [low, high] = per_7_5ml_ci95;
        let finite = [per_7_5ml, low, high]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0);
        if !finite || low > high {
            return Err(StoreError::Invalid {
                field: "result",
                reason: format!(
                    "{per_7_5ml} per 7.5 mL with interval [{low}, {high}] is not a non-negative \
                     value with an ordered interval"
                ),
            });
        }
        Ok(Self {
            per_7_5ml,
            per_7_5ml_ci95,
            category,
            call,
        })
    }

    /// The summary of an assay count and, when the indication has a cut-off, its call.
    pub fn from_estimate(
        estimate: &CountEstimate,
        call: Option<&CallOutcome>,
    ) -> Result<Self, StoreError> {
        let category = match estimate.category {
            CountCategory::NotDetected => ResultCategory::NotDetected,
            CountCategory::BelowLoq => ResultCategory::BelowLoq,
            CountCategory::Quantified => ResultCategory::Quantified,
        };
        let call = call.map(|outcome| match outcome.call {
            Call::Favorable => ResultCall::Favorable,
            Call::Unfavorable => ResultCall::Unfavorable,
        });
        Self::new(estimate.per_7_5ml, estimate.per_7_5ml_ci95, category, call)
    }
}

/// Why a result is corrected: required, 3 to 1000 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrectionReason(String);

impl CorrectionReason {
    /// Parses a reason.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let reason = text.trim();
        let chars = reason.chars().count();
        if !(3..=1000).contains(&chars) {
            return Err(StoreError::Invalid {
                field: "correction reason",
                reason: "a correction needs a reason of 3 to 1000 characters".into(),
            });
        }
        Ok(Self(reason.to_owned()))
    }

    /// The reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an electronic signature means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureMeaning {
    /// "I release this result for clinical use." Moves the run to `released`.
    Release,
    /// "I have reviewed this result." Changes no state.
    Review,
}

impl SignatureMeaning {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Review => "review",
        }
    }

    /// The sentence shown beside the signature.
    pub fn statement(self) -> &'static str {
        match self {
            Self::Release => "Released for clinical use",
            Self::Review => "Reviewed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Release, Self::Review]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

impl fmt::Display for SignatureMeaning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.statement())
    }
}

/// An electronic signature on one result version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Signature {
    /// Row id.
    pub id: SignatureId,
    /// The signed version.
    pub result_id: ResultId,
    /// The signer.
    pub user_id: UserId,
    /// The signer's printed name at the time.
    pub printed_name: String,
    /// What it means.
    pub meaning: SignatureMeaning,
    /// When.
    pub signed_at: Timestamp,
}

/// One stored version of a run's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResultVersion {
    /// Row id.
    pub id: ResultId,
    /// The run.
    pub run_id: RunId,
    /// 1, 2, ...
    pub version: u32,
    /// The numbers.
    pub summary: ResultSummary,
    /// The whole count report.
    pub report: JsonReport,
    /// Why this version replaced the previous one (`None` for version 1).
    pub reason: Option<String>,
    /// When it was stored.
    pub created_at: Timestamp,
    /// Who stored it (`None`: the appliance).
    pub created_by: Option<UserId>,
    /// Signatures on this version.
    pub signatures: Vec<Signature>,
}

/// One point of a patient's trend: the current version of each run's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendPoint {
    /// The run.
    pub run_id: RunId,
    /// When the blood was drawn.
    pub drawn_at: Timestamp,
    /// CTC per 7.5 mL.
    pub per_7_5ml: f64,
    /// 95 % interval.
    pub per_7_5ml_ci95: [f64; 2],
    /// Reporting category.
    pub category: ResultCategory,
    /// Call against the cut-off.
    pub call: Option<ResultCall>,
    /// The current version's number.
    pub version: u32,
    /// Whether the run is released.
    pub released: bool,
}

fn summary_from(
    row: i64,
    per_7_5ml: f64,
    low: f64,
    high: f64,
    category: &str,
    call: Option<&str>,
) -> Result<ResultSummary, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        what: "result",
        row,
        reason,
    };
    let category =
        ResultCategory::parse(category).ok_or_else(|| corrupt(format!("category {category:?}")))?;
    let call = call
        .map(|c| ResultCall::parse(c).ok_or_else(|| corrupt(format!("call {c:?}"))))
        .transpose()?;
    Ok(ResultSummary {
        per_7_5ml,
        per_7_5ml_ci95: [low, high],
        category,
        call,
    })
}

async fn insert_version(
    conn: &mut sqlx::SqliteConnection,
    actor: &Actor,
    run_id: RunId,
    version: i64,
    summary: &ResultSummary,
    report: &JsonReport,
    reason: Option<&str>,
) -> Result<ResultId, StoreError> {
    let now = Timestamp::now().to_rfc3339();
    let [low, high] = summary.per_7_5ml_ci95;
    let category = summary.category.as_str();
    let call = summary.call.map(ResultCall::as_str);
    let report_text = report.to_text();
    let by = actor.user_column();
    let id = sqlx::query_scalar!(
        "INSERT INTO results (run_id, version, per_7_5ml, per_7_5ml_ci95_low, per_7_5ml_ci95_high,
                              category, call, report_json, reason, created_at, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
        run_id.0,
        version,
        summary.per_7_5ml,
        low,
        high,
        category,
        call,
        report_text,
        reason,
        now,
        by,
    )
    .fetch_one(&mut *conn)
    .await
    .unique(
        "storing a result version",
        "result version",
        &format!("{run_id}/{version}"),
    )?;
    let mut entry = AuditEntry::new(
        if version == 1 {
            "result.add"
        } else {
            "result.correct"
        },
        "result",
    )
    .id(id)
    .detail(serde_json::json!({
        "run_id": run_id, "version": version, "per_7_5ml": summary.per_7_5ml,
        "per_7_5ml_ci95": summary.per_7_5ml_ci95, "category": category, "call": call,
    }));
    if let Some(reason) = reason {
        entry = entry.reason(reason);
    }
    append(conn, actor, entry).await?;
    Ok(ResultId(id))
}

impl Store {
    /// Stores a run's first result and moves the run from `running` to `awaiting_release`, in
    /// one transaction.
    pub async fn record_result(
        &self,
        actor: &Actor,
        run_id: RunId,
        summary: &ResultSummary,
        report: &JsonReport,
    ) -> Result<ResultVersion, StoreError> {
        let mut tx = db::begin_write(&self.pool).await?;
        let run = run_in(&mut tx, run_id).await?;
        if run.state != RunState::Running {
            return Err(StoreError::Conflict(format!(
                "run {run_id} is {}, not running: it cannot take a first result",
                run.state
            )));
        }
        let id = insert_version(&mut tx, actor, run_id, 1, summary, report, None).await?;
        transition_in(&mut tx, actor, run_id, RunState::AwaitingRelease, None).await?;
        tx.commit().await.context("committing a result")?;
        self.result_version(id).await
    }

    /// Adds a corrected version of a run's result. The reason is required; a released run goes
    /// back to `awaiting_release`.
    pub async fn correct_result(
        &self,
        actor: &Actor,
        run_id: RunId,
        summary: &ResultSummary,
        report: &JsonReport,
        reason: &CorrectionReason,
    ) -> Result<ResultVersion, StoreError> {
        let mut tx = db::begin_write(&self.pool).await?;
        let run = run_in(&mut tx, run_id).await?;
        let latest = sqlx::query_scalar!(
            r#"SELECT MAX(version) AS "latest: i64" FROM results WHERE run_id = ?"#,
            run_id.0
        )
        .fetch_one(&mut *tx)
        .await
        .context("finding a result's latest version")?;
        let Some(latest) = latest else {
            return Err(StoreError::Conflict(format!(
                "run {run_id} has no result to correct"
            )));
        };
        let id = insert_version(
            &mut tx,
            actor,
            run_id,
            latest + 1,
            summary,
            report,
            Some(reason.as_str()),
        )
        .await?;
        if run.state == RunState::Released {
            transition_in(
                &mut tx,
                actor,
                run_id,
                RunState::AwaitingRelease,
                Some("result corrected after release"),
            )
            .await?;
        }
        tx.commit().await.context("committing a corrected result")?;
        self.result_version(id).await
    }

    /// Signs the current version of a run's result. A release needs a clinician or lab
    /// administrator, a run awaiting release and a result no QC flag holds (`qc_hold` in its
    /// report), and moves the run to `released`.
    pub async fn sign_result(
        &self,
        signer: &User,
        run_id: RunId,
        meaning: SignatureMeaning,
    ) -> Result<Signature, StoreError> {
        if signer.disabled {
            return Err(StoreError::NotPermitted(format!(
                "user {} is disabled",
                signer.username
            )));
        }
        if meaning == SignatureMeaning::Release && !signer.role.may_release_results() {
            return Err(StoreError::NotPermitted(format!(
                "a {} may not release results",
                signer.role
            )));
        }
        let actor = signer.actor();
        let now = Timestamp::now();
        let now_text = now.to_rfc3339();
        let meaning_text = meaning.as_str();
        let mut tx = db::begin_write(&self.pool).await?;
        let run = run_in(&mut tx, run_id).await?;
        if meaning == SignatureMeaning::Release && run.state != RunState::AwaitingRelease {
            return Err(StoreError::Conflict(format!(
                "run {run_id} is {}, not awaiting release",
                run.state
            )));
        }
        let current = sqlx::query!(
            "SELECT id, version, json_extract(report_json, '$.qc_hold') AS \"qc_hold: bool\"
             FROM results WHERE run_id = ? ORDER BY version DESC LIMIT 1",
            run_id.0
        )
        .fetch_optional(&mut *tx)
        .await
        .context("finding the result to sign")?;
        let current = found(current, "result of run", run_id)?;
        if meaning == SignatureMeaning::Release && current.qc_hold == Some(true) {
            return Err(StoreError::Conflict(format!(
                "a QC flag holds the result of run {run_id}: it cannot be released until the flag is resolved"
            )));
        }
        let id = sqlx::query_scalar!(
            "INSERT INTO result_signatures (result_id, user_id, printed_name, meaning, signed_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            current.id,
            signer.id.0,
            signer.display_name,
            meaning_text,
            now_text,
        )
        .fetch_one(&mut *tx)
        .await
        .context("storing a signature")?;
        append(
            &mut tx,
            &actor,
            AuditEntry::new("result.sign", "result")
                .id(current.id)
                .detail(serde_json::json!({
                    "run_id": run_id, "version": current.version, "meaning": meaning_text,
                    "statement": meaning.statement(), "printed_name": signer.display_name,
                })),
        )
        .await?;
        if meaning == SignatureMeaning::Release {
            transition_in(&mut tx, &actor, run_id, RunState::Released, None).await?;
        }
        tx.commit().await.context("committing a signature")?;
        Ok(Signature {
            id: SignatureId(id),
            result_id: ResultId(current.id),
            user_id: signer.id,
            printed_name: signer.display_name.clone(),
            meaning,
            signed_at: now,
        })
    }

    async fn signatures_of(&self, result_id: ResultId) -> Result<Vec<Signature>, StoreError> {
        let rows = sqlx::query!(
            "SELECT id, result_id, user_id, printed_name, meaning, signed_at
             FROM result_signatures WHERE result_id = ? ORDER BY id",
            result_id.0
        )
        .fetch_all(&self.pool)
        .await
        .context("reading signatures")?;
        rows.into_iter()
            .map(|r| {
                Ok(Signature {
                    id: SignatureId(r.id),
                    result_id: ResultId(r.result_id),
                    user_id: UserId(r.user_id),
                    printed_name: r.printed_name,
                    meaning: SignatureMeaning::parse(&r.meaning).ok_or_else(|| {
                        StoreError::Corrupt {
                            what: "signature meaning",
                            row: r.id,
                            reason: format!("{:?}", r.meaning),
                        }
                    })?,
                    signed_at: stored(&r.signed_at, "signature time", r.id)?,
                })
            })
            .collect()
    }

    /// One result version with its signatures.
    pub async fn result_version(&self, id: ResultId) -> Result<ResultVersion, StoreError> {
        let row = sqlx::query!(
            "SELECT id, run_id, version, per_7_5ml, per_7_5ml_ci95_low, per_7_5ml_ci95_high,
                    category, call, report_json, reason, created_at, created_by
             FROM results WHERE id = ?",
            id.0
        )
        .fetch_optional(&self.pool)
        .await
        .context("reading a result")?;
        let r = found(row, "result", id)?;
        Ok(ResultVersion {
            id: ResultId(r.id),
            run_id: RunId(r.run_id),
            version: u32::try_from(r.version).map_err(|_| StoreError::Corrupt {
                what: "result version",
                row: r.id,
                reason: format!("{}", r.version),
            })?,
            summary: summary_from(
                r.id,
                r.per_7_5ml,
                r.per_7_5ml_ci95_low,
                r.per_7_5ml_ci95_high,
                &r.category,
                r.call.as_deref(),
            )?,
            report: JsonReport::stored(&r.report_json, "result report", r.id)?,
            reason: r.reason,
            created_at: stored(&r.created_at, "result time", r.id)?,
            created_by: r.created_by.map(UserId),
            signatures: self.signatures_of(ResultId(r.id)).await?,
        })
    }

    /// Every version of a run's result, oldest first (empty when there is none yet).
    pub async fn result_versions(&self, run_id: RunId) -> Result<Vec<ResultVersion>, StoreError> {
        let ids = sqlx::query_scalar!(
            "SELECT id FROM results WHERE run_id = ? ORDER BY version",
            run_id.0
        )
        .fetch_all(&self.pool)
        .await
        .context("listing result versions")?;
        let mut versions = Vec::with_capacity(ids.len());
        for id in ids {
            versions.push(self.result_version(ResultId(id)).await?);
        }
        Ok(versions)
    }

    /// The current (highest) version of a run's result, if any.
    pub async fn current_result(&self, run_id: RunId) -> Result<Option<ResultVersion>, StoreError> {
        let id = sqlx::query_scalar!(
            "SELECT id FROM results WHERE run_id = ? ORDER BY version DESC LIMIT 1",
            run_id.0
        )
        .fetch_optional(&self.pool)
        .await
        .context("finding a run's current result")?;
        match id {
            Some(id) => Ok(Some(self.result_version(ResultId(id)).await?)),
            None => Ok(None),
        }
    }

    /// A patient's trend: the current result of each of their runs, by draw time.
    pub async fn patient_trend(
        &self,
        patient_id: PatientId,
    ) -> Result<Vec<TrendPoint>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT r.id AS "result_id!", ru.id AS "run_id!", s.drawn_at, r.version,
                      r.per_7_5ml, r.per_7_5ml_ci95_low, r.per_7_5ml_ci95_high, r.category,
                      r.call, ru.state
               FROM samples s
               JOIN runs ru ON ru.sample_id = s.id
               JOIN results r ON r.run_id = ru.id
               WHERE s.patient_id = ?
                 AND r.version = (SELECT MAX(version) FROM results WHERE run_id = ru.id)
               ORDER BY s.drawn_at, ru.id"#,
            patient_id.0
        )
        .fetch_all(&self.pool)
        .await
        .context("reading a patient's trend")?;
        rows.into_iter()
            .map(|r| {
                let summary = summary_from(
                    r.result_id,
                    r.per_7_5ml,
                    r.per_7_5ml_ci95_low,
                    r.per_7_5ml_ci95_high,
                    &r.category,
                    r.call.as_deref(),
                )?;
                Ok(TrendPoint {
                    run_id: RunId(r.run_id),
                    drawn_at: stored(&r.drawn_at, "sample draw time", r.run_id)?,
                    per_7_5ml: summary.per_7_5ml,
                    per_7_5ml_ci95: summary.per_7_5ml_ci95,
                    category: summary.category,
                    call: summary.call,
                    version: u32::try_from(r.version).map_err(|_| StoreError::Corrupt {
                        what: "result version",
                        row: r.result_id,
                        reason: format!("{}", r.version),
                    })?,
                    released: r.state == RunState::Released.as_str(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_fixtures::{count, running_run, user};
    use crate::store::users::Role;
    use sqlx::SqlitePool;

    fn summary(per_7_5ml: f64) -> ResultSummary {
        ResultSummary::new(
            per_7_5ml,
            [per_7_5ml * 0.5, per_7_5ml * 2.0 + 1.0],
            ResultCategory::Quantified,
            Some(ResultCall::Unfavorable),
        )
        .unwrap()
    }

    fn report(per_7_5ml: f64) -> JsonReport {
        JsonReport::from_value(serde_json::json!({ "per_7_5ml": per_7_5ml, "cells": 3.1 }))
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_result_is_corrected_by_a_new_version_never_in_place(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let (operator, sample, run) = running_run(&store, "RES-1").await;
        let actor = operator.actor();
        let first = store
            .record_result(&actor, run.id, &summary(6.0), &report(6.0))
            .await
            .unwrap();
        assert_eq!(first.version, 1);
        assert_eq!(first.reason, None);
        assert_eq!(
            store.run(run.id).await.unwrap().state,
            RunState::AwaitingRelease
        );
        let twice = store
            .record_result(&actor, run.id, &summary(6.0), &report(6.0))
            .await;
        assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");

        let reason = CorrectionReason::parse("blood volume was 5.0 mL, not 7.5 mL").unwrap();
        let second = store
            .correct_result(&actor, run.id, &summary(9.0), &report(9.0), &reason)
            .await
            .unwrap();
        assert_eq!(second.version, 2);
        assert_eq!(second.reason.as_deref(), Some(reason.as_str()));
        let versions = store.result_versions(run.id).await.unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0], first, "version 1 is untouched");
        assert_eq!(store.current_result(run.id).await.unwrap(), Some(second));

        // The database itself refuses an in-place change and a reasonless version.
        let update = sqlx::query("UPDATE results SET per_7_5ml = 1.0")
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(update.to_string().contains("UPDATE refused"), "{update}");
        let reasonless = sqlx::query(
            "INSERT INTO results (run_id, version, per_7_5ml, per_7_5ml_ci95_low,
                                  per_7_5ml_ci95_high, category, report_json, created_at)
             VALUES (?, 3, 1, 0, 2, 'quantified', '{}', '2026-11-24T00:00:00Z')",
        )
        .bind(run.id.0)
        .execute(&pool)
        .await
        .unwrap_err();
        assert!(reasonless.to_string().contains("CHECK"), "{reasonless}");
        assert_eq!(count(&pool, "results").await, 2);

        let trend = store.patient_trend(sample.patient_id).await.unwrap();
        assert_eq!(trend.len(), 1);
        assert_eq!(trend[0].per_7_5ml, 9.0);
        assert_eq!(trend[0].version, 2);
        assert!(!trend[0].released);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn corrections_need_a_result(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let (operator, _, run) = running_run(&store, "RES-2").await;
        let reason = CorrectionReason::parse("typo").unwrap();
        let none = store
            .correct_result(
                &operator.actor(),
                run.id,
                &summary(1.0),
                &report(1.0),
                &reason,
            )
            .await;
        assert!(matches!(none, Err(StoreError::Conflict(_))), "{none:?}");
        let no_run = store
            .correct_result(
                &operator.actor(),
                RunId(404),
                &summary(1.0),
                &report(1.0),
                &reason,
            )
            .await;
        assert!(matches!(
            no_run,
            Err(StoreError::NotFound { entity: "run", .. })
        ));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn release_is_a_signature_by_an_entitled_user(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let (operator, sample, run) = running_run(&store, "RES-3").await;
        let clinician = user(&store, "dr-who", Role::Clinician).await;
        let early = store
            .sign_result(&clinician, run.id, SignatureMeaning::Release)
            .await;
        assert!(matches!(early, Err(StoreError::Conflict(_))), "{early:?}");
        store
            .record_result(&operator.actor(), run.id, &summary(4.0), &report(4.0))
            .await
            .unwrap();
        let by_operator = store
            .sign_result(&operator, run.id, SignatureMeaning::Release)
            .await;
        assert!(
            matches!(by_operator, Err(StoreError::NotPermitted(_))),
            "{by_operator:?}"
        );
        let review = store
            .sign_result(&operator, run.id, SignatureMeaning::Review)
            .await
            .unwrap();
        assert_eq!(review.meaning, SignatureMeaning::Review);
        let signature = store
            .sign_result(&clinician, run.id, SignatureMeaning::Release)
            .await
            .unwrap();
        assert_eq!(signature.printed_name, "dr-who (printed)");
        assert_eq!(store.run(run.id).await.unwrap().state, RunState::Released);
        let current = store.current_result(run.id).await.unwrap().unwrap();
        assert_eq!(current.signatures, vec![review, signature.clone()]);
        assert!(store.patient_trend(sample.patient_id).await.unwrap()[0].released);

        // A correction after release needs a new signature.
        let reason = CorrectionReason::parse("wrong calibration lot").unwrap();
        let corrected = store
            .correct_result(
                &clinician.actor(),
                run.id,
                &summary(5.0),
                &report(5.0),
                &reason,
            )
            .await
            .unwrap();
        assert!(corrected.signatures.is_empty());
        assert_eq!(
            store.run(run.id).await.unwrap().state,
            RunState::AwaitingRelease
        );
        let delete = sqlx::query("DELETE FROM result_signatures")
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(delete.to_string().contains("DELETE refused"), "{delete}");
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_result_on_qc_hold_is_not_released_until_corrected(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let (operator, _sample, run) = running_run(&store, "RES-4").await;
        let clinician = user(&store, "dr-hold", Role::Clinician).await;
        let held = JsonReport::from_value(serde_json::json!({ "per_7_5ml": 4.0, "qc_hold": true }));
        store
            .record_result(&operator.actor(), run.id, &summary(4.0), &held)
            .await
            .unwrap();
        let refused = store
            .sign_result(&clinician, run.id, SignatureMeaning::Release)
            .await;
        assert!(
            matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("QC flag")),
            "{refused:?}"
        );
        assert_eq!(
            store.run(run.id).await.unwrap().state,
            RunState::AwaitingRelease
        );
        // A review signature is still possible, and so is release of a corrected version.
        store
            .sign_result(&clinician, run.id, SignatureMeaning::Review)
            .await
            .unwrap();
        let reason = CorrectionReason::parse("repeat measurement after clot removed").unwrap();
        store
            .correct_result(
                &clinician.actor(),
                run.id,
                &summary(4.0),
                &report(4.0),
                &reason,
            )
            .await
            .unwrap();
        store
            .sign_result(&clinician, run.id, SignatureMeaning::Release)
            .await
            .unwrap();
        assert_eq!(store.run(run.id).await.unwrap().state, RunState::Released);
    }

    fn estimate() -> CountEstimate {
        CountEstimate {
            delta_r2_per_s: 1.67,
            delta_r2_per_s_se: 0.21,
            cells: 5.0,
            cells_uncut: 5.0,
            cells_se: 0.9,
            cells_df: 3.8,
            cells_ci95: [2.5, 7.5],
            blood_ml: 7.5,
            per_ml: 0.667,
            per_ml_ci95: [0.21, 1.56],
            per_7_5ml: 5.0,
            per_7_5ml_ci95: [1.6, 11.7],
            category: CountCategory::BelowLoq,
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn an_assay_estimate_is_stored_whole(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let (operator, _, run) = running_run(&store, "RES-4").await;
        let outcome = CallOutcome {
            indication: "breast".into(),
            cutoff_per_7_5ml: 5.0,
            call: Call::Unfavorable,
            interval_spans_cutoff: true,
        };
        let summary = ResultSummary::from_estimate(&estimate(), Some(&outcome)).unwrap();
        assert_eq!(summary.category, ResultCategory::BelowLoq);
        assert_eq!(summary.call, Some(ResultCall::Unfavorable));
        assert_eq!(summary.per_7_5ml_ci95, [1.6, 11.7]);
        let stored = store
            .record_result(
                &operator.actor(),
                run.id,
                &summary,
                &JsonReport::of(&estimate()).unwrap(),
            )
            .await
            .unwrap();
        let back: CountEstimate = stored.report.decode().unwrap();
        assert_eq!(back, estimate());
    }

    #[test]
    fn summaries_must_be_finite_with_an_ordered_interval() {
        let q = ResultCategory::Quantified;
        assert!(ResultSummary::new(5.0, [1.6, 11.7], q, None).is_ok());
        assert!(ResultSummary::new(5.0, [11.7, 1.6], q, None).is_err());
        assert!(ResultSummary::new(-1.0, [0.0, 1.0], q, None).is_err());
        assert!(ResultSummary::new(f64::NAN, [0.0, 1.0], q, None).is_err());
    }

    #[test]
    fn blank_reasons_are_refused() {
        assert!(CorrectionReason::parse("").is_err());
        assert!(CorrectionReason::parse("   \n ").is_err());
        assert!(CorrectionReason::parse("wrong blood volume entered").is_ok());
    }
}
