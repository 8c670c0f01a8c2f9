//! Result export: every stored result version with the run, sample and patient it belongs to,
//! one row each, for `ferrocount export --csv` and the lab's own archive.
//!
//! One row per result *version* (not only the current one): a correction never hides what was
//! reported before. `current` marks the highest version of each run; `released_at` is the time of
//! the release signature on that version, if any.

use serde::Serialize;

use super::error::SqlxResultExt;
use super::{ResultId, RunId, Store, StoreError};

/// One result version, flattened.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportRow {
    /// The result version's row id.
    pub result_id: ResultId,
    /// The run.
    pub run_id: RunId,
    /// The version number (1, 2, ...).
    pub version: u32,
    /// Whether this is the run's current (highest) version.
    pub current: bool,
    /// Patient's medical record number.
    pub patient_mrn: String,
    /// When the blood was drawn, RFC 3339.
    pub drawn_at: String,
    /// Processed blood volume, mL.
    pub blood_ml: f64,
    /// Indication.
    pub indication: Option<String>,
    /// Reagent lot.
    pub reagent_lot: Option<String>,
    /// The run's state now.
    pub run_state: String,
    /// Whether the board was simulated.
    pub simulated: bool,
    /// CTC per 7.5 mL.
    pub per_7_5ml: f64,
    /// 95 % interval, low.
    pub per_7_5ml_ci95_low: f64,
    /// 95 % interval, high.
    pub per_7_5ml_ci95_high: f64,
    /// Reporting category.
    pub category: String,
    /// Call against the cut-off.
    pub call: Option<String>,
    /// Why this version replaced the previous one.
    pub reason: Option<String>,
    /// When the version was stored, RFC 3339.
    pub created_at: String,
    /// When the version was signed for release, RFC 3339.
    pub released_at: Option<String>,
}

impl Store {
    /// Every result version, by run then version.
    pub async fn export_rows(&self) -> Result<Vec<ExportRow>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT r.id AS "result_id!", r.run_id AS "run_id!", r.version AS "version!",
                      r.version = (SELECT MAX(version) FROM results WHERE run_id = r.run_id)
                          AS "current!: bool",
                      p.mrn, s.drawn_at, s.blood_ml, s.indication, ru.reagent_lot,
                      ru.state, ru.simulated AS "simulated!: bool",
                      r.per_7_5ml, r.per_7_5ml_ci95_low, r.per_7_5ml_ci95_high, r.category,
                      r.call, r.reason, r.created_at,
                      (SELECT MIN(signed_at) FROM result_signatures
                        WHERE result_id = r.id AND meaning = 'release') AS "released_at?: String"
               FROM results r
               JOIN runs ru ON ru.id = r.run_id
               JOIN samples s ON s.id = ru.sample_id
               JOIN patients p ON p.id = s.patient_id
               ORDER BY r.run_id, r.version"#
        )
        .fetch_all(&self.pool)
        .await
        .context("reading results for export")?;
        rows.into_iter()
            .map(|r| {
                Ok(ExportRow {
                    result_id: ResultId(r.result_id),
                    run_id: RunId(r.run_id),
                    version: u32::try_from(r.version).map_err(|_| StoreError::Corrupt {
                        what: "result version",
                        row: r.result_id,
                        reason: r.version.to_string(),
                    })?,
                    current: r.current,
                    patient_mrn: r.mrn,
                    drawn_at: r.drawn_at,
                    blood_ml: r.blood_ml,
                    indication: r.indication,
                    reagent_lot: r.reagent_lot,
                    run_state: r.state,
                    simulated: r.simulated,
                    per_7_5ml: r.per_7_5ml,
                    per_7_5ml_ci95_low: r.per_7_5ml_ci95_low,
                    per_7_5ml_ci95_high: r.per_7_5ml_ci95_high,
                    category: r.category,
                    call: r.call,
                    reason: r.reason,
                    created_at: r.created_at,
                    released_at: r.released_at,
                })
            })
            .collect()
    }
}
