//! Lists of runs, a bounded page at a time, each row with its patient, its specimen and the
//! current version of its result: the dashboard's runs in flight, recent results and results
//! awaiting release, and a patient's runs. Every page is ONE SQL statement
//! ([`Store::run_list_page`]): the page's run ids are chosen by keyset on the run id (an indexed
//! range however many runs there are), and the same statement joins the sample, the patient,
//! the current result version and whether that version or an earlier one carries a release
//! signature — what a page needs to show a row, so no page reads anything per row.
//!
//! Not for: a run's full record (its versions, signatures, fit report: `Store::run`,
//! `Store::result_versions`), nor deciding who may see which row or what a result's status is
//! (the operations layer decides both from what is read here).

use super::error::SqlxResultExt;
use super::patients::{Patient, PatientRow, patient_from};
use super::results::{ReleaseMarks, ResultSummary, SummaryColumns, summary_from};
use super::runs::{Run, RunRow};
use super::samples::Accession;
use super::timestamp::stored;
use super::{PatientId, ResultId, RunId, SampleId, Store, StoreError, Timestamp};

/// Most rows one page may hold.
pub const MAX_RUN_PAGE: u32 = 1000;

/// Which runs a page lists, and where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunListPage {
    /// Runs queued, measuring or waiting for a tube, oldest first, after this run (none: from
    /// the first).
    InFlight {
        /// The last run of the page before.
        after: Option<RunId>,
    },
    /// Runs whose result awaits release, oldest first, after this run.
    AwaitingRelease {
        /// The last run of the page before.
        after: Option<RunId>,
    },
    /// Runs that have a result (whatever their state), newest first, before this run.
    WithResults {
        /// The last run of the page before.
        before: Option<RunId>,
    },
    /// One patient's runs (whatever their state), newest first, before this run.
    OfPatient {
        /// Whose.
        patient: PatientId,
        /// The last run of the page before.
        before: Option<RunId>,
    },
}

impl RunListPage {
    /// Whether the page runs newest first.
    fn newest_first(self) -> bool {
        matches!(self, Self::WithResults { .. } | Self::OfPatient { .. })
    }
}

/// A run's sample as a list shows it (without its tubes).
#[derive(Clone, Debug, PartialEq)]
pub struct ListedSample {
    /// Row id.
    pub id: SampleId,
    /// The specimen's accession number.
    pub accession: Accession,
    /// When the blood was drawn.
    pub drawn_at: Timestamp,
    /// Processed blood volume, mL.
    pub blood_ml: f64,
    /// Why it was drawn.
    pub indication: Option<String>,
    /// When it was recorded.
    pub created_at: Timestamp,
}

/// The current version of a run's result as a list shows it (its regulated values, without the
/// fit report).
#[derive(Clone, Debug, PartialEq)]
pub struct ListedResult {
    /// Row id.
    pub id: ResultId,
    /// Its version (above 1: a correction).
    pub version: u32,
    /// Its regulated values.
    pub summary: ResultSummary,
    /// Which of the run's versions carry a release signature.
    pub marks: ReleaseMarks,
}

/// One row of a list of runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ListedRun {
    /// The run.
    pub run: Run,
    /// Its sample.
    pub sample: ListedSample,
    /// Whose.
    pub patient: Patient,
    /// The current version of its result, if it has one.
    pub current: Option<ListedResult>,
}

struct ListedRow {
    id: i64,
    sample_id: i64,
    operator_id: Option<i64>,
    state: String,
    reagent_lot: Option<String>,
    calibration_id: Option<i64>,
    simulated: i64,
    failure_cause: Option<String>,
    queued_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    updated_at: String,
    patient_id: i64,
    mrn: String,
    birth_date: Option<String>,
    name: Option<String>,
    initials: Option<String>,
    patient_indication: Option<String>,
    patient_created_at: String,
    accession: String,
    drawn_at: String,
    blood_ml: f64,
    sample_indication: Option<String>,
    sample_created_at: String,
    result_id: Option<i64>,
    version: Option<i64>,
    per_7_5ml: Option<f64>,
    per_7_5ml_ci95_low: Option<f64>,
    per_7_5ml_ci95_high: Option<f64>,
    category: Option<String>,
    call: Option<String>,
    result_indication: Option<String>,
    cutoff_per_7_5ml: Option<f64>,
    interval_spans_cutoff: Option<bool>,
    qc_hold: Option<bool>,
    current_released: bool,
    earlier_released: bool,
}

impl ListedRow {
    fn decode(self) -> Result<ListedRun, StoreError> {
        let run_id = self.id;
        let corrupt = |what: &'static str, reason: String| StoreError::Corrupt {
            what,
            row: run_id,
            reason,
        };
        let current = match (
            self.result_id,
            self.version,
            self.per_7_5ml,
            self.per_7_5ml_ci95_low,
            self.per_7_5ml_ci95_high,
            self.category.as_deref(),
            self.qc_hold,
        ) {
            (None, ..) => None,
            (
                Some(id),
                Some(version),
                Some(per),
                Some(low),
                Some(high),
                Some(category),
                Some(hold),
            ) => Some(ListedResult {
                id: ResultId(id),
                version: u32::try_from(version)
                    .map_err(|_| corrupt("result version", version.to_string()))?,
                summary: summary_from(
                    id,
                    SummaryColumns {
                        per_7_5ml: per,
                        low,
                        high,
                        category,
                        call: self.call.as_deref(),
                        indication: self.result_indication.clone(),
                        cutoff_per_7_5ml: self.cutoff_per_7_5ml,
                        interval_spans_cutoff: self.interval_spans_cutoff,
                        qc_hold: hold,
                    },
                )?,
                marks: ReleaseMarks {
                    current: self.current_released,
                    earlier: self.earlier_released,
                },
            }),
            (Some(id), ..) => {
                return Err(StoreError::Corrupt {
                    what: "result",
                    row: id,
                    reason: "a required column is empty".into(),
                });
            }
        };
        let sample = ListedSample {
            id: SampleId(self.sample_id),
            accession: Accession::parse(&self.accession)
                .map_err(|e| corrupt("sample accession", e.to_string()))?,
            drawn_at: stored(&self.drawn_at, "sample draw time", self.sample_id)?,
            blood_ml: self.blood_ml,
            indication: self.sample_indication,
            created_at: stored(&self.sample_created_at, "sample time", self.sample_id)?,
        };
        let patient = patient_from(PatientRow {
            id: self.patient_id,
            mrn: self.mrn,
            birth_date: self.birth_date,
            name: self.name,
            initials: self.initials,
            indication: self.patient_indication,
            created_at: self.patient_created_at,
        })?;
        let run = RunRow {
            id: self.id,
            sample_id: self.sample_id,
            operator_id: self.operator_id,
            state: self.state,
            reagent_lot: self.reagent_lot,
            calibration_id: self.calibration_id,
            simulated: self.simulated,
            failure_cause: self.failure_cause,
            queued_at: self.queued_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            updated_at: self.updated_at,
        }
        .into_run()?;
        Ok(ListedRun {
            run,
            sample,
            patient,
            current,
        })
    }
}

impl Store {
    /// One page of runs: at most `limit` (1 to [`MAX_RUN_PAGE`]) of those `page` names, each
    /// with its sample, patient and current result, in the page's order. ONE statement: the
    /// four selections are branches of one compound (a branch whose kind is not asked for is
    /// false before it reads a row), each a keyset range on an index (`runs_state_id`,
    /// the primary key, `samples_patient`).
    pub async fn run_list_page(
        &self,
        page: RunListPage,
        limit: u32,
    ) -> Result<Vec<ListedRun>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_RUN_PAGE));
        let (kind, after, before, patient) = match page {
            RunListPage::InFlight { after } => ("in_flight", after, None, None),
            RunListPage::AwaitingRelease { after } => ("awaiting_release", after, None, None),
            RunListPage::WithResults { before } => ("with_results", None, before, None),
            RunListPage::OfPatient { patient, before } => ("patient", None, before, Some(patient)),
        };
        let after = after.map_or(0, |id| id.0);
        let before = before.map_or(i64::MAX, |id| id.0);
        let patient = patient.map_or(0, |id| id.0);
        let mut rows = sqlx::query_as!(
            ListedRow,
            r#"WITH page(id) AS (
                   SELECT id FROM (SELECT id FROM runs
                       WHERE ?1 = 'in_flight'
                         AND state IN ('queued', 'running', 'awaiting_tube') AND id > ?2
                       ORDER BY id LIMIT ?4)
                   UNION ALL
                   SELECT id FROM (SELECT id FROM runs
                       WHERE ?1 = 'awaiting_release' AND state = 'awaiting_release' AND id > ?2
                       ORDER BY id LIMIT ?4)
                   UNION ALL
                   SELECT id FROM (SELECT ru.id AS id FROM runs ru
                       WHERE ?1 = 'with_results' AND ru.id < ?3
                         AND EXISTS (SELECT 1 FROM results x WHERE x.run_id = ru.id)
                       ORDER BY ru.id DESC LIMIT ?4)
                   UNION ALL
                   SELECT id FROM (SELECT ru.id AS id FROM samples s
                       JOIN runs ru ON ru.sample_id = s.id
                       WHERE ?1 = 'patient' AND s.patient_id = ?5 AND ru.id < ?3
                       ORDER BY ru.id DESC LIMIT ?4)
               )
               SELECT ru.id AS "id!", ru.sample_id AS "sample_id!",
                      ru.operator_id AS "operator_id?", ru.state AS "state!",
                      ru.reagent_lot AS "reagent_lot?", ru.calibration_id AS "calibration_id?",
                      ru.simulated AS "simulated!", ru.failure_cause AS "failure_cause?",
                      ru.queued_at AS "queued_at!", ru.started_at AS "started_at?",
                      ru.finished_at AS "finished_at?", ru.updated_at AS "updated_at!",
                      p.id AS "patient_id!", p.mrn AS "mrn!", p.birth_date AS "birth_date?",
                      p.name AS "name?", p.initials AS "initials?",
                      p.indication AS "patient_indication?",
                      p.created_at AS "patient_created_at!",
                      s.accession AS "accession!", s.drawn_at AS "drawn_at!",
                      s.blood_ml AS "blood_ml!", s.indication AS "sample_indication?",
                      s.created_at AS "sample_created_at!",
                      r.id AS "result_id?", r.version AS "version?",
                      r.per_7_5ml AS "per_7_5ml?", r.per_7_5ml_ci95_low AS "per_7_5ml_ci95_low?",
                      r.per_7_5ml_ci95_high AS "per_7_5ml_ci95_high?",
                      r.category AS "category?", r.call AS "call?",
                      r.indication AS "result_indication?",
                      r.cutoff_per_7_5ml AS "cutoff_per_7_5ml?",
                      r.interval_spans_cutoff AS "interval_spans_cutoff?: bool",
                      r.qc_hold AS "qc_hold?: bool",
                      EXISTS (SELECT 1 FROM result_signatures g
                              WHERE g.result_id = r.id AND g.meaning = 'release')
                          AS "current_released!: bool",
                      EXISTS (SELECT 1 FROM results e
                              JOIN result_signatures g ON g.result_id = e.id
                              WHERE e.run_id = ru.id AND e.version < r.version
                                AND g.meaning = 'release')
                          AS "earlier_released!: bool"
               FROM page
               JOIN runs ru ON ru.id = page.id
               JOIN samples s ON s.id = ru.sample_id
               JOIN patients p ON p.id = s.patient_id
               LEFT JOIN results r ON r.run_id = ru.id
                 AND r.version = (SELECT MAX(version) FROM results WHERE run_id = ru.id)"#,
            kind,
            after,
            before,
            limit,
            patient,
        )
        .fetch_all(&self.pool)
        .await
        .context("listing a page of runs")?;
        if page.newest_first() {
            rows.sort_by_key(|row| std::cmp::Reverse(row.id));
        } else {
            rows.sort_by_key(|row| row.id);
        }
        rows.into_iter().map(ListedRow::decode).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Actor;
    use crate::store::example_report::example_report;
    use crate::store::results::SignatureMeaning;
    use crate::store::results::{CorrectionReason, ResultVersion};
    use crate::store::runs::RunState;
    use crate::store::test_fixtures::{running_run, user};
    use crate::store::users::Role;
    use nmr_core::assay::{Call, CountCategory};
    use sqlx::SqlitePool;

    fn report(per_7_5ml: f64) -> nmr_core::assay::CountReport {
        example_report(
            per_7_5ml,
            [per_7_5ml * 0.5, per_7_5ml * 2.0 + 1.0],
            CountCategory::Quantified,
            Some(Call::Unfavorable),
            false,
        )
    }

    /// Every page of `first` walked with pages of `size`: the rows in order, and the size of
    /// each page.
    async fn walk(store: &Store, first: RunListPage, size: u32) -> (Vec<ListedRun>, Vec<usize>) {
        let (mut rows, mut sizes, mut page) = (Vec::new(), Vec::new(), first);
        loop {
            let got = store.run_list_page(page, size).await.unwrap();
            assert!(got.len() <= size as usize, "a page holds at most its size");
            sizes.push(got.len());
            let Some(last) = got.last().map(|row| row.run.id) else {
                break;
            };
            rows.extend(got);
            page = match page {
                RunListPage::InFlight { .. } => RunListPage::InFlight { after: Some(last) },
                RunListPage::AwaitingRelease { .. } => {
                    RunListPage::AwaitingRelease { after: Some(last) }
                }
                RunListPage::WithResults { .. } => RunListPage::WithResults { before: Some(last) },
                RunListPage::OfPatient { patient, .. } => RunListPage::OfPatient {
                    patient,
                    before: Some(last),
                },
            };
        }
        (rows, sizes)
    }

    fn ids(rows: &[ListedRun]) -> Vec<RunId> {
        rows.iter().map(|row| row.run.id).collect()
    }

    fn marks_of(versions: &[ResultVersion]) -> ReleaseMarks {
        let released = |v: &ResultVersion| {
            v.signatures
                .iter()
                .any(|s| s.meaning == SignatureMeaning::Release)
        };
        let (current, earlier) = versions.split_last().unwrap();
        ReleaseMarks {
            current: released(current),
            earlier: earlier.iter().any(released),
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn every_list_pages_by_keyset_and_each_row_is_the_full_records_own(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let clinician = user(&store, "dr-list", Role::Clinician).await;
        // Patient PL-1: 9 runs; patient PL-2: 4 runs (interleaved, so a patient's pages skip
        // the other's runs).
        let mut runs = Vec::new();
        for n in 0..13 {
            let mrn = if n % 3 == 2 { "PL-2" } else { "PL-1" };
            let (operator, sample, run) = running_run(&store, mrn).await;
            runs.push((operator, sample, run.id));
        }
        let run = |n: usize| runs[n].2;
        // Results for runs 0..9; 0, 1, 3 released; 1 then corrected (awaiting release again
        // with an earlier released version); 9.. stay in flight, 12 waits for a tube.
        for (n, (operator, _, id)) in runs.iter().enumerate().take(9) {
            store
                .record_result(&operator.actor(), *id, &report(3.0 + n as f64))
                .await
                .unwrap();
        }
        for n in [0, 1, 3] {
            store
                .sign_result(&clinician, run(n), SignatureMeaning::Release)
                .await
                .unwrap();
        }
        store
            .correct_result(
                &clinician.actor(),
                run(1),
                &report(40.0),
                &CorrectionReason::parse("transcription checked against the raw train").unwrap(),
            )
            .await
            .unwrap();
        store
            .set_run_state(&Actor::Appliance, run(12), RunState::AwaitingTube, None)
            .await
            .unwrap();

        let (in_flight, sizes) = walk(&store, RunListPage::InFlight { after: None }, 2).await;
        assert_eq!(ids(&in_flight), [run(9), run(10), run(11), run(12)]);
        assert_eq!(sizes, [2, 2, 0]);
        let (awaiting, _) = walk(&store, RunListPage::AwaitingRelease { after: None }, 2).await;
        assert_eq!(
            ids(&awaiting),
            [run(1), run(2), run(4), run(5), run(6), run(7), run(8)],
            "oldest first, each once; the released ones are not waiting"
        );
        let (with_results, sizes) =
            walk(&store, RunListPage::WithResults { before: None }, 4).await;
        assert_eq!(
            ids(&with_results),
            (0..9).rev().map(run).collect::<Vec<_>>()
        );
        assert_eq!(sizes, [4, 4, 1, 0]);
        let pl1 = runs[0].1.patient_id;
        let (of_patient, _) = walk(
            &store,
            RunListPage::OfPatient {
                patient: pl1,
                before: None,
            },
            2,
        )
        .await;
        let expected: Vec<RunId> = (0..13).rev().filter(|n| n % 3 != 2).map(run).collect();
        assert_eq!(
            ids(&of_patient),
            expected,
            "newest first, only PL-1's, each once"
        );

        // Each row says what the full records say.
        for row in in_flight.iter().chain(&with_results).chain(&of_patient) {
            let id = row.run.id;
            assert_eq!(row.run, store.run(id).await.unwrap());
            let sample = store.sample(row.run.sample_id).await.unwrap();
            assert_eq!(
                (
                    row.sample.id,
                    &row.sample.accession,
                    row.sample.drawn_at,
                    row.sample.blood_ml
                ),
                (
                    sample.id,
                    &sample.accession,
                    sample.drawn_at,
                    sample.blood_ml
                )
            );
            assert_eq!(row.sample.indication, sample.indication);
            assert_eq!(row.patient, store.patient(sample.patient_id).await.unwrap());
            let versions = store.result_versions(id).await.unwrap();
            match (&row.current, versions.last()) {
                (None, None) => {}
                (Some(listed), Some(current)) => {
                    assert_eq!(listed.id, current.id);
                    assert_eq!(listed.version, current.version);
                    assert_eq!(listed.summary, current.summary);
                    assert_eq!(listed.marks, marks_of(&versions), "run {id}");
                }
                other => panic!("run {id}: {other:?}"),
            }
        }
        let marks = |n: usize| {
            with_results
                .iter()
                .find(|row| row.run.id == run(n))
                .and_then(|row| row.current.as_ref())
                .map(|c| c.marks)
                .unwrap()
        };
        assert_eq!(
            marks(0),
            ReleaseMarks {
                current: true,
                earlier: false
            }
        );
        assert_eq!(
            marks(1),
            ReleaseMarks {
                current: false,
                earlier: true
            },
            "the correction is not released; the version before it was"
        );
        assert_eq!(marks(2), ReleaseMarks::default());
    }
}
