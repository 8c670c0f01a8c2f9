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

use nmr_core::assay::{Call, CountCategory, CountReport};
use serde::{Deserialize, Serialize};

use super::audit::append;
use super::error::{SqlxResultExt, found};
use super::qc_basis::{JudgedFor, QcRelied, record_qc_basis_in};
use super::runs::{RunState, run_in, transition_in};
use super::timestamp::stored;
use super::users::User;
use super::{
    Actor, AuditEntry, JsonReport, PatientId, ResultId, RunId, SignatureId, Store, StoreError,
    Timestamp, UserId, db,
};

/// The regulated values of a result, kept as columns beside the whole report so that the release
/// gate, trends and lists read typed columns and never the report's JSON: the count per 7.5 mL
/// and its interval, the reporting category, the call, the indication and its cut-off, whether the
/// interval spans the cut-off, and whether a QC flag holds the result. Taken from the report
/// itself ([`ResultSummary::of`]), so the two cannot disagree.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultSummary {
    /// CTC per 7.5 mL of blood.
    pub per_7_5ml: f64,
    /// Its 95 % interval, low and high.
    pub per_7_5ml_ci95: [f64; 2],
    /// Reporting category.
    pub category: CountCategory,
    /// Call against the cut-off, when the indication has one.
    pub call: Option<Call>,
    /// The indication the call was made for.
    pub indication: Option<String>,
    /// Its cut-off, per 7.5 mL.
    pub cutoff_per_7_5ml: Option<f64>,
    /// Whether the 95 % interval spans the cut-off (the call could go either way).
    pub interval_spans_cutoff: Option<bool>,
    /// Whether a QC flag holds the result (it may not be released).
    pub qc_hold: bool,
}

impl ResultSummary {
    /// The regulated values of `report`, checked: the numbers finite and non-negative, the
    /// interval ordered. (Whether the value lies inside its interval is the assay's business,
    /// not storage's: a result is stored as the assay reported it.)
    pub fn of(report: &CountReport) -> Result<Self, StoreError> {
        let per_7_5ml = report.per_7_5ml;
        let [low, high] = report.per_7_5ml_ci95;
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
            per_7_5ml_ci95: report.per_7_5ml_ci95,
            category: report.category,
            call: report.call,
            indication: report.indication.clone(),
            cutoff_per_7_5ml: report.cutoff_per_7_5ml,
            interval_spans_cutoff: report.call_interval_spans_cutoff,
            qc_hold: report.qc_hold,
        })
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultVersion {
    /// Row id.
    pub id: ResultId,
    /// The run.
    pub run_id: RunId,
    /// 1, 2, ...
    pub version: u32,
    /// The regulated values (stored as columns).
    pub summary: ResultSummary,
    /// The whole count report, decoded.
    pub report: CountReport,
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
    pub category: CountCategory,
    /// Call against the cut-off.
    pub call: Option<Call>,
    /// The current version's number (above 1: the result was corrected).
    pub version: u32,
    /// Whether the run is released.
    pub released: bool,
    /// The run's state.
    #[serde(skip)]
    pub run_state: RunState,
    /// The current version's regulated values (those above among them).
    #[serde(skip)]
    pub summary: ResultSummary,
    /// Which of the run's versions carry a release signature.
    #[serde(skip)]
    pub marks: ReleaseMarks,
}

/// Which versions of a run's result carry a release signature: what the status of the current
/// version (final, corrected or preliminary) is decided from, read with the result where a list
/// or the trend shows many results without loading every version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReleaseMarks {
    /// The current version carries one.
    pub current: bool,
    /// An earlier version carries one.
    pub earlier: bool,
}

impl TrendPoint {
    /// Whether the version shown corrects an earlier one (which is kept).
    pub fn corrected(&self) -> bool {
        self.version > 1
    }
}

/// The regulated columns of one `results` row, as read.
pub(crate) struct SummaryColumns<'a> {
    pub(crate) per_7_5ml: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) category: &'a str,
    pub(crate) call: Option<&'a str>,
    pub(crate) indication: Option<String>,
    pub(crate) cutoff_per_7_5ml: Option<f64>,
    pub(crate) interval_spans_cutoff: Option<bool>,
    pub(crate) qc_hold: bool,
}

/// Decodes the regulated columns of the `results` row `row` (the one decoder of them).
pub(crate) fn summary_from(
    row: i64,
    columns: SummaryColumns<'_>,
) -> Result<ResultSummary, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        what: "result",
        row,
        reason,
    };
    let category: CountCategory = columns
        .category
        .parse()
        .map_err(|e: nmr_core::vocabulary::UnknownName| corrupt(e.to_string()))?;
    let call = columns
        .call
        .map(|c| c.parse::<Call>().map_err(|e| corrupt(e.to_string())))
        .transpose()?;
    Ok(ResultSummary {
        per_7_5ml: columns.per_7_5ml,
        per_7_5ml_ci95: [columns.low, columns.high],
        category,
        call,
        indication: columns.indication,
        cutoff_per_7_5ml: columns.cutoff_per_7_5ml,
        interval_spans_cutoff: columns.interval_spans_cutoff,
        qc_hold: columns.qc_hold,
    })
}

/// Decodes a stored count report; one that does not decode is a named error, never a default.
fn report_from(text: &str, row: i64) -> Result<CountReport, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        what: "result report",
        row,
        reason: format!("not a count report: {error}"),
    })
}

async fn insert_version(
    conn: &mut sqlx::SqliteConnection,
    actor: &Actor,
    run_id: RunId,
    version: i64,
    report: &CountReport,
    reason: Option<&str>,
) -> Result<ResultId, StoreError> {
    let summary = ResultSummary::of(report)?;
    let now = Timestamp::now().to_rfc3339();
    let [low, high] = summary.per_7_5ml_ci95;
    let category = summary.category.as_str();
    let call = summary.call.map(Call::as_str);
    let report_text = JsonReport::of(report)?.to_text();
    let by = actor.user_column();
    let id = sqlx::query_scalar!(
        "INSERT INTO results (run_id, version, per_7_5ml, per_7_5ml_ci95_low, per_7_5ml_ci95_high,
                              category, call, indication, cutoff_per_7_5ml,
                              interval_spans_cutoff, qc_hold, report_json, reason, created_at,
                              created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
        run_id.0,
        version,
        summary.per_7_5ml,
        low,
        high,
        category,
        call,
        summary.indication,
        summary.cutoff_per_7_5ml,
        summary.interval_spans_cutoff,
        summary.qc_hold,
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
        "qc_hold": summary.qc_hold,
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
        report: &CountReport,
    ) -> Result<ResultVersion, StoreError> {
        let mut tx = db::begin_write(&self.pool).await?;
        let run = run_in(&mut tx, run_id).await?;
        if run.state != RunState::Running {
            return Err(StoreError::Conflict(format!(
                "run {run_id} is {}, not running: it cannot take a first result",
                run.state
            )));
        }
        let id = insert_version(&mut tx, actor, run_id, 1, report, None).await?;
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
        report: &CountReport,
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
    /// administrator, a run awaiting release and a result no QC flag holds (the result's
    /// `qc_hold` column), and moves the run to `released`; in the same transaction it writes the
    /// release's outgoing messages and keeps the patient's identifiers as released
    /// ([`Store::released_identifiers`]).
    pub async fn sign_result(
        &self,
        signer: &User,
        run_id: RunId,
        meaning: SignatureMeaning,
    ) -> Result<Signature, StoreError> {
        self.sign_result_relying_on(signer, run_id, meaning, &[])
            .await
    }

    /// Signs as [`Store::sign_result`] does and, for a release, stores the QC the release
    /// relied on (the QC gate judged for it) in the same transaction: the release, its outgoing
    /// messages and its stated QC basis commit together or not at all. A review stores no
    /// QC basis.
    pub async fn sign_result_relying_on(
        &self,
        signer: &User,
        run_id: RunId,
        meaning: SignatureMeaning,
        qc_basis: &[QcRelied],
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
            "SELECT id, version, qc_hold AS \"qc_hold: bool\"
             FROM results WHERE run_id = ? ORDER BY version DESC LIMIT 1",
            run_id.0
        )
        .fetch_optional(&mut *tx)
        .await
        .context("finding the result to sign")?;
        let current = found(current, "result of run", run_id)?;
        if meaning == SignatureMeaning::Release && current.qc_hold {
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
            record_qc_basis_in(&mut tx, run_id, JudgedFor::Release, now, qc_basis).await?;
            // The patient's identifiers as released: every message about this version says
            // these, however late it is sent (`migrations/0017`).
            let taken = sqlx::query!(
                "INSERT INTO released_identifiers
                     (result_id, patient_id, mrn, birth_date, name, initials, taken_at)
                 SELECT ?, p.id, p.mrn, p.birth_date, p.name, p.initials, ?
                 FROM runs JOIN samples s ON s.id = runs.sample_id
                 JOIN patients p ON p.id = s.patient_id
                 WHERE runs.id = ?",
                current.id,
                now_text,
                run_id.0,
            )
            .execute(&mut *tx)
            .await
            .context("keeping the patient's identifiers as released")?;
            if taken.rows_affected() != 1 {
                return Err(StoreError::Conflict(format!(
                    "run {run_id} has no patient to release its result for"
                )));
            }
            // The durable outbox: the release and its outgoing messages commit together.
            super::outbox::enqueue_release_in(
                &mut tx,
                &actor,
                &self.outbox,
                run_id,
                current.id,
                current.version,
            )
            .await?;
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
            r#"SELECT id, run_id, version, per_7_5ml, per_7_5ml_ci95_low, per_7_5ml_ci95_high,
                    category, call, indication, cutoff_per_7_5ml,
                    interval_spans_cutoff AS "interval_spans_cutoff: bool",
                    qc_hold AS "qc_hold: bool", report_json, reason, created_at, created_by
             FROM results WHERE id = ?"#,
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
                SummaryColumns {
                    per_7_5ml: r.per_7_5ml,
                    low: r.per_7_5ml_ci95_low,
                    high: r.per_7_5ml_ci95_high,
                    category: &r.category,
                    call: r.call.as_deref(),
                    indication: r.indication,
                    cutoff_per_7_5ml: r.cutoff_per_7_5ml,
                    interval_spans_cutoff: r.interval_spans_cutoff,
                    qc_hold: r.qc_hold,
                },
            )?,
            report: report_from(&r.report_json, r.id)?,
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
        let mut conn = self
            .pool
            .acquire()
            .await
            .context("reading a patient's trend")?;
        trend_in(&mut conn, patient_id, None).await
    }

    /// A patient and their trend, read on one connection borrowed once (a trend request's
    /// reads): not found when no patient has the id.
    pub async fn patient_with_trend(
        &self,
        patient_id: PatientId,
    ) -> Result<(super::patients::Patient, Vec<TrendPoint>), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .context("reading a patient's trend")?;
        let patient = super::patients::patient_in(&mut conn, patient_id).await?;
        let trend = trend_in(&mut conn, patient_id, None).await?;
        Ok((patient, trend))
    }

    /// A patient and the last `latest` points of their trend (by draw time, oldest of them
    /// first), read on one connection in one query for the trend, and whether older points
    /// exist: not found when no patient has the id.
    pub async fn patient_with_latest_trend(
        &self,
        patient_id: PatientId,
        latest: u32,
    ) -> Result<(super::patients::Patient, Vec<TrendPoint>, bool), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .context("reading a patient's trend")?;
        let patient = super::patients::patient_in(&mut conn, patient_id).await?;
        // One more than asked tells whether older points exist.
        let mut trend = trend_in(&mut conn, patient_id, Some(latest.saturating_add(1))).await?;
        let older = trend.len() > usize::try_from(latest).unwrap_or(usize::MAX);
        if older {
            trend.remove(0);
        }
        Ok((patient, trend, older))
    }
}

/// A patient's trend read on `conn` ([`Store::patient_trend`]): by draw time, all of it or
/// only its `latest` points.
async fn trend_in(
    conn: &mut sqlx::SqliteConnection,
    patient_id: PatientId,
    latest: Option<u32>,
) -> Result<Vec<TrendPoint>, StoreError> {
    // Newest first so LIMIT keeps the latest (-1: no limit in SQLite), reversed below.
    let limit = latest.map_or(-1, i64::from);
    let mut rows = sqlx::query!(
        r#"SELECT r.id AS "result_id!", ru.id AS "run_id!", s.drawn_at, r.version,
                      r.per_7_5ml, r.per_7_5ml_ci95_low, r.per_7_5ml_ci95_high, r.category,
                      r.call, r.indication, r.cutoff_per_7_5ml,
                      r.interval_spans_cutoff AS "interval_spans_cutoff: bool",
                      r.qc_hold AS "qc_hold: bool", ru.state,
                      EXISTS (SELECT 1 FROM result_signatures g
                              WHERE g.result_id = r.id AND g.meaning = 'release')
                          AS "current_released!: bool",
                      EXISTS (SELECT 1 FROM results e
                              JOIN result_signatures g ON g.result_id = e.id
                              WHERE e.run_id = ru.id AND e.version < r.version
                                AND g.meaning = 'release')
                          AS "earlier_released!: bool"
               FROM samples s
               JOIN runs ru ON ru.sample_id = s.id
               JOIN results r ON r.run_id = ru.id
               WHERE s.patient_id = ?
                 AND r.version = (SELECT MAX(version) FROM results WHERE run_id = ru.id)
               ORDER BY s.drawn_at DESC, ru.id DESC LIMIT ?"#,
        patient_id.0,
        limit
    )
    .fetch_all(&mut *conn)
    .await
    .context("reading a patient's trend")?;
    rows.reverse();
    rows.into_iter()
        .map(|r| {
            let summary = summary_from(
                r.result_id,
                SummaryColumns {
                    per_7_5ml: r.per_7_5ml,
                    low: r.per_7_5ml_ci95_low,
                    high: r.per_7_5ml_ci95_high,
                    category: &r.category,
                    call: r.call.as_deref(),
                    indication: r.indication,
                    cutoff_per_7_5ml: r.cutoff_per_7_5ml,
                    interval_spans_cutoff: r.interval_spans_cutoff,
                    qc_hold: r.qc_hold,
                },
            )?;
            let run_state = r
                .state
                .parse::<RunState>()
                .map_err(|_| StoreError::Corrupt {
                    what: "run state",
                    row: r.run_id,
                    reason: format!("{:?}", r.state),
                })?;
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
                released: run_state == RunState::Released,
                run_state,
                summary,
                marks: ReleaseMarks {
                    current: r.current_released,
                    earlier: r.earlier_released,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::example_report::example_report;
    use crate::store::test_fixtures::{count, running_run, user};
    use crate::store::users::Role;
    use sqlx::SqlitePool;

    fn report(per_7_5ml: f64) -> CountReport {
        example_report(
            per_7_5ml,
            [per_7_5ml * 0.5, per_7_5ml * 2.0 + 1.0],
            CountCategory::Quantified,
            Some(Call::Unfavorable),
            false,
        )
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_result_is_corrected_by_a_new_version_never_in_place(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let (operator, sample, run) = running_run(&store, "RES-1").await;
        let actor = operator.actor();
        let first = store
            .record_result(&actor, run.id, &report(6.0))
            .await
            .unwrap();
        assert_eq!(first.version, 1);
        assert_eq!(first.reason, None);
        assert_eq!(
            store.run(run.id).await.unwrap().state,
            RunState::AwaitingRelease
        );
        let twice = store.record_result(&actor, run.id, &report(6.0)).await;
        assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");

        let reason = CorrectionReason::parse("blood volume was 5.0 mL, not 7.5 mL").unwrap();
        let second = store
            .correct_result(&actor, run.id, &report(9.0), &reason)
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
            .correct_result(&operator.actor(), run.id, &report(1.0), &reason)
            .await;
        assert!(matches!(none, Err(StoreError::Conflict(_))), "{none:?}");
        let no_run = store
            .correct_result(&operator.actor(), RunId(404), &report(1.0), &reason)
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
            .record_result(&operator.actor(), run.id, &report(4.0))
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
            .correct_result(&clinician.actor(), run.id, &report(5.0), &reason)
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
        let held = CountReport {
            qc_hold: true,
            ..report(4.0)
        };
        store
            .record_result(&operator.actor(), run.id, &held)
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
            .correct_result(&clinician.actor(), run.id, &report(4.0), &reason)
            .await
            .unwrap();
        store
            .sign_result(&clinician, run.id, SignatureMeaning::Release)
            .await
            .unwrap();
        assert_eq!(store.run(run.id).await.unwrap().state, RunState::Released);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_count_report_is_stored_whole_and_its_regulated_values_as_columns(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let (operator, _, run) = running_run(&store, "RES-5").await;
        let held = CountReport {
            qc_hold: true,
            ..example_report(
                5.0,
                [1.6, 11.7],
                CountCategory::BelowLoq,
                Some(Call::Unfavorable),
                true,
            )
        };
        let stored = store
            .record_result(&operator.actor(), run.id, &held)
            .await
            .unwrap();
        assert_eq!(stored.report, held);
        assert_eq!(stored.summary.category, CountCategory::BelowLoq);
        assert_eq!(stored.summary.call, Some(Call::Unfavorable));
        assert_eq!(stored.summary.indication.as_deref(), Some("breast"));
        assert_eq!(stored.summary.interval_spans_cutoff, Some(true));
        assert!(stored.summary.qc_hold);
        let columns: (String, Option<String>, Option<String>, i64, Option<i64>) = sqlx::query_as(
            "SELECT category, call, indication, qc_hold, interval_spans_cutoff FROM results",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            columns,
            (
                "below_loq".to_owned(),
                Some("unfavorable".to_owned()),
                Some("breast".to_owned()),
                1,
                Some(1)
            )
        );
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_stored_report_that_does_not_decode_is_a_named_error(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let (_, _, run) = running_run(&store, "RES-6").await;
        sqlx::query(
            "INSERT INTO results (run_id, version, per_7_5ml, per_7_5ml_ci95_low,
                                  per_7_5ml_ci95_high, category, qc_hold, report_json, created_at)
             VALUES (?, 1, 1, 0, 2, 'quantified', 0, '{\"per_7_5ml\": 1}', '2026-11-24T00:00:00Z')",
        )
        .bind(run.id.0)
        .execute(&pool)
        .await
        .unwrap();
        let error = store.current_result(run.id).await.unwrap_err();
        assert!(
            matches!(
                &error,
                StoreError::Corrupt {
                    what: "result report",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn summaries_must_be_finite_with_an_ordered_interval() {
        let q = CountCategory::Quantified;
        let of =
            |per_7_5ml, ci95| ResultSummary::of(&example_report(per_7_5ml, ci95, q, None, false));
        assert!(of(5.0, [1.6, 11.7]).is_ok());
        assert!(of(5.0, [11.7, 1.6]).is_err());
        assert!(of(-1.0, [0.0, 1.0]).is_err());
        assert!(of(f64::NAN, [0.0, 1.0]).is_err());
    }

    #[test]
    fn blank_reasons_are_refused() {
        assert!(CorrectionReason::parse("").is_err());
        assert!(CorrectionReason::parse("   \n ").is_err());
        assert!(CorrectionReason::parse("wrong blood volume entered").is_ok());
    }
}
