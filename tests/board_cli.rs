//! End-to-end: `ferrocount board ...` on the simulated board.

use std::process::Command;

fn ferrocount(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrocount"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn board_cpmg_prints_a_json_report_and_writes_the_train() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("train.csv");
    let csv_arg = csv.to_str().expect("utf-8 path");
    let output = ferrocount(&[
        "board", "cpmg", "--json", "--t2-ms", "60", "--echoes", "300", "--seed", "3", "--csv",
        csv_arg,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let t2_ms = report["fit"]["t2_ms"].as_f64().expect("fit.t2_ms");
    let se = report["fit"]["t2_ms_se"].as_f64().expect("fit.t2_ms_se");
    assert!((t2_ms - 60.0).abs() < 4.0 * se, "T2 {t2_ms} ± {se} ms");
    assert!(
        report["cpmg"]["frequency_hz"]
            .as_f64()
            .is_some_and(|f| (f - 20.8627e6).abs() < 5e3)
    );
    let text = std::fs::read_to_string(&csv).expect("CSV written");
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        301,
        "header + 300 echoes"
    );
}

#[test]
fn board_errors_are_reported_with_a_failing_exit_status() {
    let output = ferrocount(&["board", "cpmg", "--fifo-capacity", "100", "--echoes", "300"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("FIFO overflow: 200 echoes lost"));
    let output = ferrocount(&["board", "info", "--dead-after", "0"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no answer from the board"));
}
