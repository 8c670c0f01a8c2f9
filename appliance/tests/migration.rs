//! The forward migration that made the regulated values columns (`0002`): a database written by
//! the previous schema (only `0001` applied, its rows as the previous version wrote them — count
//! reports as JSON with `run_id`, measurement fits as `{"fit": …, "cpmg": …}`, Westgard
//! violations as JSON) opens, is backfilled, and every stored record reads back typed with
//! identical numbers; the release gate then reads the backfilled `qc_hold` column. The T2
//! distributions table (`0003`) is not backfilled: an old measurement reads back without one, and
//! gets it once, computed from its stored train, the first time its run is viewed. Patient
//! identity (`0004`): each old sample gets the accession `LEGACY-<id>`, each patient the
//! indication of their newest sample, and no birth date (none was recorded); an old control
//! material has no level and an old QC value no reagent lot. The identifiers a result was released
//! under (`0017`): each released version gets its patient's as they stand.

use std::collections::BTreeMap;
use std::path::Path;

use appliance::engine::{RunReport, t2_distribution};
use appliance::procedures::{CpmgReport, CpmgSettings};
use appliance::store::example_report::example_report;
use appliance::store::measurements::{FitOutcome, T2Distribution, encode_train};
use appliance::store::results::SignatureMeaning;
use appliance::store::runs::RunState;
use appliance::store::train_codec::CODEC_NAME;
use appliance::store::{Actor, QcLotId, RunId, Store, StoreError, Timestamp};
use nmr_core::CpmgSimulation;
use nmr_core::assay::{Call, CountCategory, CountReport};
use nmr_core::fit::{FitOptions, fit_mono};
use nmr_core::qc::westgard::{self, ControlResult, ControlTarget, QcVerdict};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Executor as _, SqlitePool};

const AT: &str = "2026-10-01T08:00:00Z";

/// A database file at the previous schema: only `0001` applied, recorded as sqlx records it.
async fn previous_schema(file: &Path) -> SqlitePool {
    let only_first = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/0001_initial_schema.sql"),
        only_first.path().join("0001_initial_schema.sql"),
    )
    .expect("copy the first migration");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(file)
                .create_if_missing(true)
                .foreign_keys(true),
        )
        .await
        .expect("open");
    sqlx::migrate::Migrator::new(only_first.path())
        .await
        .expect("the first migration")
        .run(&pool)
        .await
        .expect("applies");
    pool
}

async fn exec(pool: &SqlitePool, sql: &str, binds: &[&str]) -> i64 {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for bind in binds {
        query = query.bind(*bind);
    }
    query
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .last_insert_rowid()
}

/// A sample with its two tubes and a run in `state`; the run's id.
async fn old_run(pool: &SqlitePool, patient: i64, state: &str) -> i64 {
    let sample = exec(
        pool,
        "INSERT INTO samples (patient_id, drawn_at, blood_ml, indication, created_at)
         VALUES (?, ?, 7.5, 'breast', ?)",
        &[&patient.to_string(), AT, AT],
    )
    .await;
    for kind in ["control", "quad"] {
        exec(
            pool,
            "INSERT INTO sample_tubes (sample_id, kind, label) VALUES (?, ?, ?)",
            &[&sample.to_string(), kind, &format!("S{sample}-{kind}")],
        )
        .await;
    }
    exec(
        pool,
        "INSERT INTO runs (sample_id, state, reagent_lot, simulated, queued_at, updated_at)
         VALUES (?, ?, 'SIM-LOT-1', 1, ?, ?)",
        &[&sample.to_string(), state, AT, AT],
    )
    .await
}

/// A result version as the previous version stored it: the engine's `RunReport` JSON (with
/// `run_id`) and the summary columns of the time.
async fn old_result(
    pool: &SqlitePool,
    run: i64,
    version: i64,
    report: &CountReport,
    reason: Option<&str>,
) -> i64 {
    let json = serde_json::to_string(&RunReport {
        run_id: RunId(run),
        count: report.clone(),
    })
    .expect("JSON");
    let query = sqlx::query(
        "INSERT INTO results (run_id, version, per_7_5ml, per_7_5ml_ci95_low, per_7_5ml_ci95_high,
                              category, call, report_json, reason, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(run)
    .bind(version)
    .bind(report.per_7_5ml)
    .bind(report.per_7_5ml_ci95[0])
    .bind(report.per_7_5ml_ci95[1])
    .bind(report.category.as_str())
    .bind(report.call.map(Call::as_str))
    .bind(json)
    .bind(reason)
    .bind(AT);
    query
        .execute(pool)
        .await
        .expect("an old result")
        .last_insert_rowid()
}

#[tokio::test]
async fn a_database_of_the_previous_schema_is_backfilled_and_reads_back_typed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("ferrocount.db");
    let pool = previous_schema(&file).await;

    let clinician = exec(
        &pool,
        "INSERT INTO users (username, display_name, role, password_hash, created_at,
                            password_changed_at)
         VALUES ('claire', 'Dr Claire', 'clinician', 'x', ?, ?)",
        &[AT, AT],
    )
    .await;
    let patient = exec(
        &pool,
        "INSERT INTO patients (mrn, created_at) VALUES ('MIG-1', ?)",
        &[AT],
    )
    .await;

    // Released; held by QC and awaiting release; released then corrected (awaiting release).
    let released = old_run(&pool, patient, "released").await;
    let held = old_run(&pool, patient, "awaiting_release").await;
    let corrected = old_run(&pool, patient, "awaiting_release").await;
    let reports = [
        example_report(
            7.25,
            [3.1, 14.8],
            CountCategory::Quantified,
            Some(Call::Unfavorable),
            false,
        ),
        example_report(
            1.5,
            [0.2, 4.9],
            CountCategory::BelowLoq,
            Some(Call::Favorable),
            true,
        ),
        example_report(0.0, [0.0, 2.7], CountCategory::NotDetected, None, false),
        example_report(
            12.0,
            [6.5, 21.25],
            CountCategory::Quantified,
            Some(Call::Unfavorable),
            false,
        ),
    ];
    let first = old_result(&pool, released, 1, &reports[0], None).await;
    let unreleased = old_result(&pool, held, 1, &reports[1], None).await;
    let original = old_result(&pool, corrected, 1, &reports[2], None).await;
    old_result(
        &pool,
        corrected,
        2,
        &reports[3],
        Some("wrong blood volume entered"),
    )
    .await;
    for result in [first, original] {
        exec(
            &pool,
            "INSERT INTO result_signatures (result_id, user_id, printed_name, meaning, signed_at)
             VALUES (?, ?, 'Dr Claire', 'release', ?)",
            &[&result.to_string(), &clinician.to_string(), AT],
        )
        .await;
    }

    // A measurement with its fit as the engine stored it.
    let train = CpmgSimulation {
        noise_sd: 0.002,
        ..CpmgSimulation::mono(1.0, 0.15, 0.001, 400)
    }
    .simulate(11);
    let fit = fit_mono(&train, &FitOptions::default()).expect("a clean decay fits");
    let cpmg = CpmgReport {
        settings: CpmgSettings::default(),
        frequency_hz: 20.1e6,
        magnet_temp_before_c: 25.0,
        magnet_temp_after_c: 25.01,
        coil_temp_before_c: 26.0,
        coil_temp_after_c: 26.0,
        phase_rad: 0.3,
        noise_sd: 0.002,
    };
    let fit_json = serde_json::json!({
        "fit": { "mono": fit, "biexponential_preferred": false, "first_echo_amplitude": 0.99 },
        "cpmg": cpmg,
    });
    let tube: i64 = sqlx::query_scalar("SELECT id FROM sample_tubes WHERE kind = 'quad' LIMIT 1")
        .fetch_one(&pool)
        .await
        .expect("a tube");
    sqlx::query(
        "INSERT INTO measurements (run_id, tube_id, replicate, measured_at, echo_count,
                                   train_codec, train, acquisition_json, fit_json, qc_flags_json)
         VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, '[]')",
    )
    .bind(released)
    .bind(tube)
    .bind(AT)
    .bind(train.len() as i64)
    .bind(CODEC_NAME)
    .bind(encode_train(&train).expect("encodes"))
    .bind(serde_json::to_string(train.acquisition()).expect("JSON"))
    .bind(fit_json.to_string())
    .execute(&pool)
    .await
    .expect("an old measurement");

    // QC: a target and two values, the second a 1-3s rejection, as the QC API stored them.
    let material = exec(
        &pool,
        "INSERT INTO qc_materials (name, kind, analyte, created_at) VALUES ('Ctl', 'control', 'cells', ?)",
        &[AT],
    )
    .await;
    let lot = exec(
        &pool,
        "INSERT INTO qc_lots (material_id, lot, expires_on, created_at) VALUES (?, 'L1', '2027-12-31', ?)",
        &[&material.to_string(), AT],
    )
    .await;
    let target = ControlTarget {
        mean: 50.0,
        sd: 4.0,
        n: 20,
    };
    let target_id = exec(
        &pool,
        "INSERT INTO qc_targets (lot_id, mean, sd, source, n_values, created_at)
         VALUES (?, 50.0, 4.0, 'established', 20, ?)",
        &[&lot.to_string(), AT],
    )
    .await;
    let values = [51.5, 64.0];
    let history: Vec<ControlResult> = values
        .iter()
        .enumerate()
        .map(|(i, value)| ControlResult {
            run: i as u64,
            material: "Ctl".into(),
            value: *value,
        })
        .collect();
    let all = westgard::evaluate(&history, &BTreeMap::from([("Ctl".to_owned(), target)]))
        .expect("evaluates");
    let rejection: Vec<_> = all.into_iter().filter(|v| v.indices.contains(&1)).collect();
    assert!(!rejection.is_empty());
    for (value, status, violations) in [
        (values[0], "pass", "[]".to_owned()),
        (
            values[1],
            "reject",
            serde_json::to_string(&rejection).expect("JSON"),
        ),
    ] {
        sqlx::query(
            "INSERT INTO qc_results (lot_id, target_id, value, status, violations_json, measured_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(lot)
        .bind(target_id)
        .bind(value)
        .bind(status)
        .bind(violations)
        .bind(AT)
        .execute(&pool)
        .await
        .expect("an old QC result");
    }
    pool.close().await;

    // Opening applies 0002 (and backfills) and 0003.
    let store = Store::open_file(&file).await.expect("opens and migrates");
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(store.pool())
            .await
            .expect("migrations");
    // Every migration in `migrations/` (later ones, e.g. 0010's outbox, apply on top).
    let mut files: Vec<i64> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
            .expect("migrations directory")
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".sql")?.split('_').next()?.parse().ok()
            })
            .collect();
    files.sort_unstable();
    assert_eq!(applied[..4], [1, 2, 3, 4]);
    assert_eq!(applied, files);

    // 0004: accession numbers, the patient's indication; what was never recorded stays absent.
    let record = store
        .patient(appliance::store::PatientId(patient))
        .await
        .expect("the patient reads back typed");
    assert_eq!(record.birth_date, None);
    assert_eq!(
        record.indication.as_ref().map(|i| i.as_str()),
        Some("breast")
    );
    let run = store.run(RunId(released)).await.expect("run");
    let sample = store.sample(run.sample_id).await.expect("sample");
    assert_eq!(
        sample.accession.as_str(),
        format!("LEGACY-{}", run.sample_id.0)
    );
    assert_eq!(sample.indication_override_reason, None);
    let materials = store.qc_materials().await.expect("materials");
    assert!(materials.iter().all(|m| m.control_level.is_none()));
    // 0017: each version released before it carries the patient's identifiers as they stood at
    // the migration; a version never released carries none.
    for result in [first, original] {
        let identifiers = store
            .released_identifiers(appliance::store::ResultId(result))
            .await
            .expect("backfilled");
        assert_eq!(identifiers.mrn.as_str(), "MIG-1");
        assert_eq!(identifiers.birth_date, None);
        assert_eq!(identifiers.patient_id.0, patient);
    }
    assert!(matches!(
        store
            .released_identifiers(appliance::store::ResultId(unreleased))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let no_accession = store
        .pool()
        .execute(
            "INSERT INTO samples (patient_id, drawn_at, blood_ml, created_at)
             VALUES (1, '2026-10-01T08:00:00Z', 7.5, '2026-10-01T08:00:00Z')",
        )
        .await
        .expect_err("refused");
    assert!(
        no_accession.to_string().contains("accession"),
        "{no_accession}"
    );

    let check = |version: &appliance::store::results::ResultVersion, report: &CountReport| {
        assert_eq!(&version.report, report, "the whole report, typed");
        let summary = &version.summary;
        assert_eq!(summary.per_7_5ml.to_bits(), report.per_7_5ml.to_bits());
        assert_eq!(summary.per_7_5ml_ci95, report.per_7_5ml_ci95);
        assert_eq!(summary.category, report.category);
        assert_eq!(summary.call, report.call);
        assert_eq!(summary.indication, report.indication);
        assert_eq!(summary.cutoff_per_7_5ml, report.cutoff_per_7_5ml);
        assert_eq!(
            summary.interval_spans_cutoff,
            report.call_interval_spans_cutoff
        );
        assert_eq!(summary.qc_hold, report.qc_hold);
    };
    let versions = store.result_versions(RunId(released)).await.expect("reads");
    assert_eq!(versions.len(), 1);
    check(&versions[0], &reports[0]);
    assert_eq!(versions[0].signatures.len(), 1);
    check(
        &store
            .current_result(RunId(held))
            .await
            .expect("reads")
            .expect("a result"),
        &reports[1],
    );
    let versions = store
        .result_versions(RunId(corrected))
        .await
        .expect("reads");
    assert_eq!(versions.len(), 2);
    check(&versions[0], &reports[2]);
    check(&versions[1], &reports[3]);
    assert_eq!(
        versions[1].reason.as_deref(),
        Some("wrong blood volume entered")
    );
    let trend = store
        .patient_trend(appliance::store::PatientId(patient))
        .await
        .expect("trend");
    assert_eq!(trend.len(), 3);
    assert!(trend[0].released);
    assert_eq!((trend[2].version, trend[2].per_7_5ml), (2, 12.0));

    // The measurement's fit and flags read back typed, bit for bit.
    let measurements = store
        .run_measurements(RunId(released))
        .await
        .expect("reads");
    let stored = measurements[0].fit_report.as_ref().expect("a fit");
    match &stored.fit.outcome {
        FitOutcome::Mono(back) => assert_eq!(back, &fit),
        FitOutcome::Error(e) => panic!("fit error {e}"),
    }
    assert_eq!(stored.cpmg, cpmg);
    assert!(measurements[0].qc_flags.is_empty());
    // Stored before distributions were kept: none until its run is first viewed, when it is
    // computed from the stored train and stored once.
    assert_eq!(measurements[0].t2_distribution, None);
    let computed = t2_distribution(&measurements[0].train);
    assert!(
        matches!(computed, T2Distribution::Computed { .. }),
        "{computed:?}"
    );
    assert!(
        store
            .add_t2_distribution(&Actor::Appliance, measurements[0].id, &computed)
            .await
            .expect("stores")
    );
    let later = T2Distribution::Failed {
        reason: "a second computation".into(),
    };
    assert!(
        !store
            .add_t2_distribution(&Actor::Appliance, measurements[0].id, &later)
            .await
            .expect("kept as it was"),
        "a distribution is stored once"
    );
    let again = store
        .run_measurements(RunId(released))
        .await
        .expect("reads");
    assert_eq!(again[0].t2_distribution.as_ref(), Some(&computed));

    // QC results: the verdict and the Westgard violations, typed.
    let qc = store
        .qc_results(
            QcLotId(lot),
            Timestamp::parse("2000-01-01T00:00:00Z").expect("time"),
        )
        .await
        .expect("reads");
    assert_eq!(
        qc.iter().map(|r| r.status).collect::<Vec<_>>(),
        [QcVerdict::Pass, QcVerdict::Reject]
    );
    assert_eq!(qc[1].violations, rejection);
    assert!(qc.iter().all(|r| r.reagent_lot.is_none()), "never recorded");

    // The release gate reads the backfilled column: the held result is refused.
    let signer = store
        .user_by_name(&appliance::store::users::Username::parse("claire").expect("name"))
        .await
        .expect("user");
    let refused = store
        .sign_result(&signer, RunId(held), SignatureMeaning::Release)
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("QC flag")),
        "{refused:?}"
    );
    assert_eq!(
        store.run(RunId(held)).await.expect("run").state,
        RunState::AwaitingRelease
    );
    // And the backfill left results append-only.
    let update = store
        .pool()
        .execute("UPDATE results SET per_7_5ml = 0")
        .await
        .expect_err("refused");
    assert!(update.to_string().contains("UPDATE refused"), "{update}");
}
