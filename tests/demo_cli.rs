//! End-to-end: `ferrocount demo` at a small size seeds the designed numbers of users, patients,
//! runs, releases and QC values, spreads draw times over the months, and its trends go the
//! designed way (the first patient responds, the second progresses). It refuses to seed over an
//! existing database.

use std::path::Path;
use std::process::{Command, Output};

use appliance::store::db::DATABASE_FILE;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

fn ferrocount(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrocount"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the binary runs")
}

async fn scalar(database: &Path, sql: &'static str) -> i64 {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(database)
                .read_only(true),
        )
        .await
        .expect("opening the demo database");
    let value = sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pool.close().await;
    value
}

async fn per_7_5ml_by_draw(database: &Path, mrn: &str) -> Vec<(String, f64)> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(database)
                .read_only(true),
        )
        .await
        .expect("opening the demo database");
    let rows = sqlx::query_as::<_, (String, f64)>(
        "SELECT s.drawn_at, r.per_7_5ml FROM results r
           JOIN runs ru ON ru.id = r.run_id
           JOIN samples s ON s.id = ru.sample_id
           JOIN patients p ON p.id = s.patient_id
          WHERE p.mrn = ? ORDER BY s.drawn_at",
    )
    .bind(mrn)
    .fetch_all(&pool)
    .await
    .expect("reading a trend");
    pool.close().await;
    rows
}

#[test]
fn a_small_demo_seeds_the_designed_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("demo");
    let data_arg = data.to_str().expect("a UTF-8 temp path");
    let output = ferrocount(&[
        "demo",
        "--seed-only",
        "--data-dir",
        data_arg,
        "--patients",
        "2",
        "--months",
        "3",
        "--seed",
        "7",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("dilution series"),
        "the demo says it calibrated the simulated lot:\n{stderr}"
    );
    for user in ["demo-admin", "demo-clinician", "demo-operator"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(user))
            .unwrap_or_else(|| panic!("{user} printed:\n{stdout}"));
        let password = line.split_whitespace().last().expect("a password");
        assert!(password.len() >= 16, "{line}");
    }

    let database = data.join(DATABASE_FILE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let count = |sql: &'static str| rt.block_on(scalar(&database, sql));
    assert_eq!(count("SELECT COUNT(*) FROM users"), 3);
    assert_eq!(
        count("SELECT COUNT(DISTINCT role) FROM users"),
        3,
        "one user per role"
    );
    assert_eq!(count("SELECT COUNT(*) FROM patients"), 2);
    // Months + 1 draws per patient, each a run with a result; all but the latest released.
    assert_eq!(count("SELECT COUNT(*) FROM runs"), 8);
    assert_eq!(count("SELECT COUNT(*) FROM results"), 8);
    assert_eq!(
        count("SELECT COUNT(*) FROM runs WHERE state = 'released'"),
        6
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM runs WHERE state = 'awaiting_release'"),
        2
    );
    assert!(count("SELECT COUNT(*) FROM measurements") >= 8 * 6);
    assert_eq!(count("SELECT COUNT(*) FROM calibrations"), 1);
    // Approved in the demo's name, and audited as such.
    assert_eq!(
        count("SELECT COUNT(*) FROM calibrations WHERE state = 'approved' AND decided_by IS NULL"),
        1
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'calibration.approve' \
             AND actor = 'appliance' AND reason LIKE '%in the demo''s name%'"
        ),
        1
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT indication) FROM samples"),
        2,
        "breast and prostate"
    );
    // Draws spread over the three months, back-dated: the oldest about 90 days ago.
    let span_days = count(
        "SELECT CAST(julianday(MAX(drawn_at)) - julianday(MIN(drawn_at)) AS INTEGER) FROM samples",
    );
    assert!(
        (88..=91).contains(&span_days),
        "draws span {span_days} days"
    );
    // QC: 20 values establish the target, then one a day over 90 days; the deliberate 1-3s and
    // 2-2s violations are rejected.
    assert_eq!(count("SELECT COUNT(*) FROM qc_results"), 20 + 90);
    assert_eq!(
        count("SELECT n_values FROM qc_targets WHERE source = 'established'"),
        20
    );
    assert!(count("SELECT COUNT(*) FROM qc_results WHERE status = 'reject'") >= 2);
    assert!(
        count(
            "SELECT COUNT(*) FROM qc_results WHERE violations_json LIKE '%1-3s%' AND status = 'reject'"
        ) >= 1
    );
    assert!(
        count(
            "SELECT COUNT(*) FROM qc_results WHERE violations_json LIKE '%2-2s%' AND status = 'reject'"
        ) >= 1
    );

    // The designed directions: DEMO-001 responds (true 82 → 2.2 per 7.5 mL over three
    // months), DEMO-002 progresses (3 → 90).
    let responder = rt.block_on(per_7_5ml_by_draw(&database, "DEMO-001"));
    let progressor = rt.block_on(per_7_5ml_by_draw(&database, "DEMO-002"));
    assert_eq!(responder.len(), 4);
    assert_eq!(progressor.len(), 4);
    assert!(
        responder[0].1 > 40.0 && responder[3].1 < responder[0].1 / 3.0,
        "responder {responder:?}"
    );
    assert!(
        progressor[3].1 > 40.0 && progressor[3].1 > 3.0 * progressor[0].1,
        "progressor {progressor:?}"
    );

    let audit = ferrocount(&["audit", "verify", "--data-dir", data_arg]);
    assert!(audit.status.success(), "{audit:?}");

    // A second demo into the same directory is refused, and changes nothing.
    let again = ferrocount(&[
        "demo",
        "--seed-only",
        "--data-dir",
        data_arg,
        "--patients",
        "1",
    ]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds a database"),
        "{again:?}"
    );
    assert_eq!(count("SELECT COUNT(*) FROM runs"), 8);
}
