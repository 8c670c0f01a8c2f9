//! End-to-end: `ferrocount run` and `ferrocount export` on the simulated board and a fresh data
//! directory — a simulated calibration, 20 simulated patient runs with known truth checked
//! against their intervals, failures that name their cause, and the export.

#[path = "support/test_board.rs"]
mod test_board;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary on a fresh instrument without QC: "run, but hold" lets its runs start (their
/// results stay on QC hold; the gate itself is tested in `tests/api/qc_gate.rs`).
fn ferrocount(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrocount"))
        .env("FERROCOUNT_QC__POLICY", "run_but_hold")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("the binary runs")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON on stdout ({e}); stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The keys of `ferrocount count --json`.
const COUNT_KEYS: [&str; 28] = [
    "delta_r2_per_s",
    "delta_r2_per_s_se",
    "delta_r2_df",
    "cells",
    "cells_se",
    "cells_ci95",
    "blood_ml",
    "per_ml",
    "per_ml_ci95",
    "per_7_5ml",
    "per_7_5ml_ci95",
    "category",
    "call",
    "indication",
    "cutoff_per_7_5ml",
    "call_interval_spans_cutoff",
    "qc_flags",
    "qc_hold",
    "lob_cells",
    "lod_cells",
    "loq_cells",
    "calibration_lot",
    "te_ms",
    "control",
    "labeled",
    "marker_profile",
    "nonspecific_controls",
    "run_id",
];

/// True cells of the 20 patient runs: zero, around the detection limits, and up the range.
const TRUE_CELLS: [f64; 20] = [
    0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
    70.0, 85.0, 100.0,
];

#[test]
fn a_fresh_appliance_calibrates_itself_and_twenty_runs_agree_with_truth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();

    // The first run on a fresh data directory makes the simulated lot's calibration.
    let first = ferrocount(
        data,
        &[
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--patient",
            "CAL-0",
            "--accession",
            "CAL-0-A77",
            "--blood-ml",
            "7.5",
            "--sim-cells",
            "0",
            "--json",
        ],
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(stderr.contains("simulated dilution series"), "{stderr}");
    assert!(stderr.contains("calibration 1 of SIM-LOT-1"), "{stderr}");

    let mut covered = 0;
    let mut misses = Vec::new();
    for (i, cells) in TRUE_CELLS.iter().enumerate() {
        let mrn = format!("PT-{i:03}");
        let cells_arg = cells.to_string();
        // Patients differ in their blood: control T2 from 200 to 295 ms.
        let t2_arg = (200 + 5 * i).to_string();
        let output = ferrocount(
            data,
            &[
                "run",
                "--approve-simulated-calibration",
                "tests: the simulated lot",
                "--patient",
                &mrn,
                "--accession",
                &format!("{mrn}-A"),
                "--blood-ml",
                "7.5",
                "--indication",
                "breast",
                "--sim-cells",
                &cells_arg,
                "--sim-control-t2-ms",
                &t2_arg,
                "--json",
            ],
        );
        assert!(
            output.status.success(),
            "{mrn}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result = json(&output);
        for key in COUNT_KEYS.iter().chain(&["state"]) {
            assert!(result.get(key).is_some(), "{mrn}: no `{key}` in {result}");
        }
        assert_eq!(result["state"], "awaiting_release", "{mrn}");
        assert_eq!(result["calibration_lot"], "SIM-LOT-1");
        let low = result["cells_ci95"][0].as_f64().expect("low");
        let high = result["cells_ci95"][1].as_f64().expect("high");
        assert!(low <= high);
        if low <= *cells && *cells <= high {
            covered += 1;
        } else {
            misses.push(format!(
                "{mrn}: truth {cells}, estimate {} in [{low:.2}, {high:.2}]",
                result["cells"]
            ));
        }
        // Zero cells in a quantified category would be a false positive far beyond noise.
        if *cells == 0.0 {
            assert_ne!(result["category"], "quantified", "{mrn}: {result}");
        }
        if *cells >= 50.0 {
            assert_eq!(result["category"], "quantified", "{mrn}: {result}");
            assert_eq!(result["call"], "unfavorable", "{mrn}");
        }
    }
    // A calibrated 95 % interval misses more than 3 of 20 with probability 1.6 % (binomial);
    // the seeds are fixed, so this either holds or shows a real miscalibration.
    assert!(
        covered >= 17,
        "{covered}/20 intervals hold the truth: {misses:#?}"
    );

    // The export has one row per result version: the calibration run and the 20 patients.
    let export = ferrocount(data, &["export", "--csv"]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = String::from_utf8(export.stdout).expect("UTF-8 CSV");
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    assert!(header.starts_with("result_id,run_id,version,current,patient_mrn,"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 21);
    assert!(
        rows.iter()
            .all(|row| row.contains(",1,true,") && row.contains("awaiting_release"))
    );
    assert!(rows.iter().any(|row| row.contains("PT-019")));
}

/// The same headless runs with the board behind a board twin's socket: the simulated lot
/// calibrated through it, and eight patients whose intervals hold their truth (sent to the twin's
/// coil over its side channel).
#[test]
fn headless_runs_through_the_twin_socket_agree_with_truth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut board = test_board::TestBoard::start(dir.path(), &[]);
    let Some(twin) = board.twin("headless runs through the twin") else {
        return;
    };
    let board_flag = twin.board_flag();
    let data = dir.path().join("data");
    let run = |mrn: &str, cells: f64| {
        let cells = cells.to_string();
        let output = ferrocount(
            &data,
            &[
                "run",
                "--approve-simulated-calibration",
                "tests: the simulated lot",
                "--patient",
                mrn,
                "--accession",
                &format!("{mrn}-A"),
                "--blood-ml",
                "7.5",
                "--indication",
                "breast",
                "--sim-cells",
                &cells,
                "--board",
                &board_flag,
                "--json",
            ],
        );
        assert!(
            output.status.success(),
            "{mrn}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        json(&output)
    };
    run("TWIN-0000", 0.0);
    let truths = [0.0, 3.0, 10.0, 20.0, 40.0, 60.0, 85.0, 100.0];
    let mut covered = 0;
    for (i, cells) in truths.iter().enumerate() {
        let result = run(&format!("TWIN-{}", i + 1), *cells);
        assert_eq!(result["state"], "awaiting_release");
        let low = result["cells_ci95"][0].as_f64().expect("low");
        let high = result["cells_ci95"][1].as_f64().expect("high");
        if low <= *cells && *cells <= high {
            covered += 1;
        }
    }
    // Each 95 % interval misses with probability 5 %: more than 2 misses of 8 has 0.6 %.
    assert!(covered >= 6, "{covered}/8 intervals hold the truth");
    let truth = twin.truth();
    assert!(truth.sequences_started > 0 && truth.bus_connections >= 9);
}

#[test]
fn failures_name_their_cause_and_keep_the_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();

    // Calibrate (the simulated lot approved in the console's name).
    let calibrate = ferrocount(
        data,
        &[
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--patient",
            "F-2",
            "--accession",
            "F-2-A261",
            "--blood-ml",
            "7.5",
            "--sim-cells",
            "0",
        ],
    );
    assert!(
        calibrate.status.success(),
        "{}",
        String::from_utf8_lossy(&calibrate.stderr)
    );
    // A drifting magnet: the stable-temperature check fails before anything is measured.
    let drift = ferrocount(
        data,
        &[
            "run",
            "--patient",
            "F-1",
            "--accession",
            "F-1-A239",
            "--blood-ml",
            "7.5",
            "--sim-cells",
            "5",
            "--sim-drift-c-per-s",
            "0.01",
            "--json",
        ],
    );
    assert!(!drift.status.success());
    let answer = json(&drift);
    assert_eq!(answer["state"], "failed");
    let cause = answer["failure_cause"].as_str().expect("a cause");
    assert!(cause.starts_with("temperature: "), "{cause}");

    // Then a board that dies part-way through the run.
    let dead = ferrocount(
        data,
        &[
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--patient",
            "F-3",
            "--accession",
            "F-3-A278",
            "--blood-ml",
            "7.5",
            "--sim-cells",
            "5",
            "--sim-dead-after",
            "900",
            "--json",
        ],
    );
    assert!(!dead.status.success());
    let answer = json(&dead);
    assert_eq!(answer["state"], "failed");
    let cause = answer["failure_cause"].as_str().expect("a cause");
    assert!(cause.starts_with("board: "), "{cause}");

    // Bad input is refused before anything is stored, naming the field.
    let refused = ferrocount(
        data,
        &[
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--patient",
            "F-4",
            "--accession",
            "F-4-A",
            "--blood-ml",
            "-3",
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("blood"), "{stderr}");
    let export = ferrocount(data, &["export", "--csv"]);
    let text = String::from_utf8(export.stdout).expect("UTF-8 CSV");
    assert_eq!(text.lines().count(), 2, "header + the one result: {text}");
}

/// The one wiring point as the commands use it: the board and the indication table come from the
/// configuration (and `--board`), and a build without hardware support refuses the real board
/// naming the build to use, before anything is stored.
#[test]
fn the_board_and_the_indications_come_from_configuration() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    for command in [
        vec![
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--patient",
            "B-1",
            "--accession",
            "B-1-A315",
            "--blood-ml",
            "7.5",
            "--board",
            "spi",
        ],
        vec!["serve", "--listen", "127.0.0.1:0", "--board", "spi"],
    ] {
        let refused = ferrocount(&data, &command);
        assert!(!refused.status.success(), "{command:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        if cfg!(feature = "hw-linux") {
            assert!(stderr.contains("[spi] device"), "{command:?}: {stderr}");
        } else {
            assert!(
                stderr.contains("board = \"spi\"") && stderr.contains("--features hw-linux"),
                "{command:?}: {stderr}"
            );
        }
    }
    let unknown = ferrocount(
        &data,
        &[
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--patient",
            "B-1",
            "--accession",
            "B-1-A340",
            "--blood-ml",
            "7.5",
            "--board",
            "fpga",
        ],
    );
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("simulated, spi"), "{stderr}");

    // A configured table whose breast cut-off is 0.5 per 7.5 mL gives the call against it.
    let table = dir.path().join("cutoffs.toml");
    std::fs::write(
        &table,
        "[indications.breast]\nunfavorable_at_or_above_per_7_5ml = 0.5\n",
    )
    .expect("write the table");
    let config = dir.path().join("ferrocount.toml");
    std::fs::write(
        &config,
        format!("indications_file = {:?}\n", table.display().to_string()),
    )
    .expect("write the configuration");
    let output = ferrocount(
        &data,
        &[
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--config",
            config.to_str().expect("UTF-8 path"),
            "--patient",
            "B-2",
            "--accession",
            "B-2-A371",
            "--blood-ml",
            "7.5",
            "--indication",
            "breast",
            "--sim-cells",
            "20",
            "--json",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer = json(&output);
    assert_eq!(answer["cutoff_per_7_5ml"], 0.5);
    assert_eq!(answer["indication"], "breast");
}

/// `ferrocount result correct`: the console's way to the one correction operation — signed by a
/// user who may release (password on standard input), a new version with the reason, the
/// original kept (the export has both rows), a wrong password refused with exit status 1.
#[test]
fn a_result_is_corrected_from_the_command_line() {
    use std::io::Write as _;
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();
    let first = ferrocount(
        data,
        &[
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--patient",
            "C-1",
            "--accession",
            "C-1-A406",
            "--blood-ml",
            "7.5",
            "--sim-cells",
            "12",
            "--json",
        ],
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let run_id = json(&first)["run_id"].as_i64().expect("run id").to_string();
    let with_stdin = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocount"))
            .env("FERROCOUNT_QC__POLICY", "run_but_hold")
            .args(args)
            .arg("--data-dir")
            .arg(data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("output")
    };
    let added = with_stdin(
        &[
            "user",
            "add",
            "claire",
            "--role",
            "clinician",
            "--display-name",
            "Dr Claire",
        ],
        "a long enough password\n",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let correct = |password: &str| {
        with_stdin(
            &[
                "result",
                "correct",
                "--run",
                &run_id,
                "--blood-ml",
                "5.0",
                "--reason",
                "processed volume was 5.0 mL",
                "--user",
                "claire",
            ],
            password,
        )
    };
    let refused = correct("not the password\n");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("password"), "{stderr}");
    let corrected = correct("a long enough password\n");
    assert!(
        corrected.status.success(),
        "{}",
        String::from_utf8_lossy(&corrected.stderr)
    );
    let stdout = String::from_utf8_lossy(&corrected.stdout);
    assert!(stdout.contains("version 2"), "{stdout}");
    let export = ferrocount(data, &["export", "--csv"]);
    let text = String::from_utf8(export.stdout).expect("UTF-8 CSV");
    assert_eq!(
        text.lines().count(),
        3,
        "header + the original + the correction: {text}"
    );
}
