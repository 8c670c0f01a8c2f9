//! The clinician's worklist: the results awaiting release, a page at a time, each row with what
//! a clinician decides from (patient identifiers, specimen, draw time, the current result's
//! regulated values, a QC hold), read in ONE joined query a page.
//!
//! Not for: deciding who may release (the operations layer's permission) or whether a result may
//! be released (`Store::sign_result` and the QC gate); the list only shows what waits.

use super::error::SqlxResultExt;
use super::patients::{BirthDate, Mrn};
use super::results::{ResultSummary, SummaryColumns, summary_from};
use super::runs::RunState;
use super::samples::Accession;
use super::timestamp::{stored, stored_opt};
use super::{PatientId, RunId, Store, StoreError, Timestamp};

/// One result awaiting release, as the worklist shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct AwaitingRelease {
    /// The run.
    pub run_id: RunId,
    /// The patient.
    pub patient_id: PatientId,
    /// Their MRN.
    pub mrn: Mrn,
    /// Their date of birth, when recorded.
    pub birth_date: Option<BirthDate>,
    /// The specimen's accession number.
    pub accession: Accession,
    /// When the blood was drawn.
    pub drawn_at: Timestamp,
    /// When the run reached its result.
    pub finished_at: Option<Timestamp>,
    /// The reagent lot.
    pub reagent_lot: Option<String>,
    /// The current version's number (above 1: corrected).
    pub version: u32,
    /// The current version's regulated values.
    pub summary: ResultSummary,
}

struct AwaitingRow {
    run_id: i64,
    patient_id: i64,
    mrn: String,
    birth_date: Option<String>,
    accession: String,
    drawn_at: String,
    finished_at: Option<String>,
    reagent_lot: Option<String>,
    result_id: i64,
    version: i64,
    per_7_5ml: f64,
    per_7_5ml_ci95_low: f64,
    per_7_5ml_ci95_high: f64,
    category: String,
    call: Option<String>,
    indication: Option<String>,
    cutoff_per_7_5ml: Option<f64>,
    interval_spans_cutoff: Option<bool>,
    qc_hold: bool,
}

impl AwaitingRow {
    fn decode(self) -> Result<AwaitingRelease, StoreError> {
        let corrupt = |what: &'static str, reason: String| StoreError::Corrupt {
            what,
            row: self.run_id,
            reason,
        };
        let summary = summary_from(
            self.result_id,
            SummaryColumns {
                per_7_5ml: self.per_7_5ml,
                low: self.per_7_5ml_ci95_low,
                high: self.per_7_5ml_ci95_high,
                category: &self.category,
                call: self.call.as_deref(),
                indication: self.indication.clone(),
                cutoff_per_7_5ml: self.cutoff_per_7_5ml,
                interval_spans_cutoff: self.interval_spans_cutoff,
                qc_hold: self.qc_hold,
            },
        )?;
        Ok(AwaitingRelease {
            run_id: RunId(self.run_id),
            patient_id: PatientId(self.patient_id),
            mrn: Mrn::parse(&self.mrn).map_err(|e| corrupt("patient MRN", e.to_string()))?,
            birth_date: self
                .birth_date
                .as_deref()
                .map(BirthDate::stored)
                .transpose()
                .map_err(|e| corrupt("patient birth date", e.to_string()))?,
            accession: Accession::parse(&self.accession)
                .map_err(|e| corrupt("sample accession", e.to_string()))?,
            drawn_at: stored(&self.drawn_at, "sample draw time", self.run_id)?,
            finished_at: stored_opt(self.finished_at.as_deref(), "run end", self.run_id)?,
            reagent_lot: self.reagent_lot,
            version: u32::try_from(self.version)
                .map_err(|_| corrupt("result version", self.version.to_string()))?,
            summary,
        })
    }
}

impl Store {
    /// One page of the results awaiting release, oldest run first: at most `limit` (1 to 1000)
    /// runs whose id is above `after` (none: the first page), each with its patient, specimen
    /// and current result version. One query a page (keyset on the run id over the
    /// `runs_state_id` index), however many results wait.
    pub async fn awaiting_release_page(
        &self,
        after: Option<RunId>,
        limit: u32,
    ) -> Result<Vec<AwaitingRelease>, StoreError> {
        let limit = i64::from(limit.clamp(1, 1000));
        let after = after.map_or(0, |id| id.0);
        let state = RunState::AwaitingRelease.as_str();
        sqlx::query_as!(
            AwaitingRow,
            r#"SELECT ru.id AS "run_id!", p.id AS "patient_id!", p.mrn, p.birth_date,
                      s.accession AS "accession!", s.drawn_at, ru.finished_at, ru.reagent_lot,
                      r.id AS "result_id!", r.version, r.per_7_5ml, r.per_7_5ml_ci95_low,
                      r.per_7_5ml_ci95_high, r.category, r.call, r.indication,
                      r.cutoff_per_7_5ml,
                      r.interval_spans_cutoff AS "interval_spans_cutoff: bool",
                      r.qc_hold AS "qc_hold: bool"
               FROM runs ru
               JOIN samples s ON s.id = ru.sample_id
               JOIN patients p ON p.id = s.patient_id
               JOIN results r ON r.run_id = ru.id
                 AND r.version = (SELECT MAX(version) FROM results WHERE run_id = ru.id)
               WHERE ru.state = ? AND ru.id > ?
               ORDER BY ru.id LIMIT ?"#,
            state,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("listing a page of results awaiting release")?
        .into_iter()
        .map(AwaitingRow::decode)
        .collect()
    }
}
