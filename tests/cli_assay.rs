//! End-to-end tests of `ferrocount calibrate` and `ferrocount count`: the built binary run on
//! echo-train files written by the CPMG simulator into a temporary directory.
//!
//! Truth for the simulated tubes: ΔR2 = b + s·N with b = 0.05/s and s = 0.004 (1/s)/cell;
//! TE 4 ms, 500 echoes, first-echo SNR 300; control T2 between 250 and 450 ms.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nmr_core::Acquisition;
use nmr_core::assay::Calibration;
use nmr_core::assay::quantile::t95;
use nmr_core::io::write_csv;
use nmr_core::simulate::{Component, CpmgSimulation};
use serde_json::Value;

const INTERCEPT_PER_S: f64 = 0.05;
const SLOPE_PER_S_PER_CELL: f64 = 0.004;

fn ferrocount(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrocount"))
        .args(args)
        .output()
        .expect("the ferrocount binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes one simulated reading with true `r2_per_s` to `path` (CSV with `# te_ms=`).
fn write_reading(path: &Path, r2_per_s: f64, amplitude: f64, te_s: f64, seed: u64) {
    let mut simulation = CpmgSimulation::mono(amplitude, 1.0 / r2_per_s, te_s, 500);
    simulation.noise_sd = 1.0 / 300.0;
    simulation.phase_rad = 0.3;
    let train = simulation.simulate(seed).with_acquisition(Acquisition {
        te_s: Some(te_s),
        temp_c: Some(25.0),
        ..Acquisition::default()
    });
    std::fs::write(path, write_csv(&train)).expect("write train");
}

/// Writes three control and three quad readings of a sample holding `cells` cells; returns the
/// control and quad file paths.
fn write_sample(
    dir: &Path,
    name: &str,
    cells: f64,
    control_t2_s: f64,
    seed: u64,
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let r2_control = 1.0 / control_t2_s;
    let r2_quad = r2_control + INTERCEPT_PER_S + SLOPE_PER_S_PER_CELL * cells;
    let mut control = Vec::new();
    let mut quad = Vec::new();
    for replicate in 0..3u64 {
        let c = dir.join(format!("{name}_control_{replicate}.csv"));
        let q = dir.join(format!("{name}_quad_{replicate}.csv"));
        write_reading(&c, r2_control, 1.0, 0.004, seed * 100 + replicate);
        write_reading(&q, r2_quad, 1.0, 0.004, seed * 100 + 50 + replicate);
        control.push(c);
        quad.push(q);
    }
    (control, quad)
}

/// `count` arguments naming the run's files and calibration.
fn count_args<'a>(control: &'a [PathBuf], quad: &'a [PathBuf], cal: &'a Path) -> Vec<&'a str> {
    let mut args = vec!["count", "--control"];
    args.extend(control.iter().map(|p| p.to_str().expect("utf-8 temp path")));
    args.push("--labeled");
    args.extend(quad.iter().map(|p| p.to_str().expect("utf-8 temp path")));
    args.extend(["--calibration", cal.to_str().expect("utf-8 temp path")]);
    args
}

const HAND_CALIBRATION: &str = r#"
lot = "LOT-A"
te_ms = 4.0
slope_per_s_per_cell = 0.004
slope_se = 0.00004
intercept_per_s = 0.05
intercept_se = 0.0012
slope_intercept_cov = -2e-8
fit_df = 28
lob_cells = 1.0
lod_cells = 2.2
loq_cells = 5.0
created = "2026-11-24T04:00:00Z"
"#;

fn count_json(extra: &[&str], control: &[PathBuf], quad: &[PathBuf], cal: &Path) -> Value {
    let mut args = count_args(control, quad, cal);
    args.push("--json");
    args.extend(extra);
    let output = ferrocount(&args);
    assert!(output.status.success(), "count failed: {}", stderr(&output));
    serde_json::from_str(&stdout(&output)).expect("count --json prints JSON")
}

fn hand_calibration(dir: &Path) -> PathBuf {
    let cal = dir.join("cal.toml");
    std::fs::write(&cal, HAND_CALIBRATION).expect("write calibration");
    cal
}

#[test]
fn calibrate_then_count_recovers_known_cells() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trains = dir.path().join("trains");
    std::fs::create_dir(&trains).expect("mkdir");
    let mut series = String::from("# lot=LOT-A\nsample,cells,tube,file\n");
    let mut levels = vec![0.0; 6];
    for level in [2.0, 5.0, 10.0, 25.0, 50.0, 100.0] {
        levels.extend([level; 3]);
    }
    for (index, &cells) in levels.iter().enumerate() {
        let name = format!("s{index:02}");
        let control_t2_s = 0.25 + 0.2 * ((index * 37) % 100) as f64 / 100.0;
        write_sample(&trains, &name, cells, control_t2_s, index as u64 + 1);
        for tube in ["control", "quad"] {
            for replicate in 0..3 {
                // Relative paths, resolved against the series file's folder.
                series.push_str(&format!(
                    "{name},{cells},{tube},trains/{name}_{tube}_{replicate}.csv\n"
                ));
            }
        }
    }
    let series_path = dir.path().join("series.csv");
    std::fs::write(&series_path, series).expect("write series");
    let cal_path = dir.path().join("cal.toml");
    let output = ferrocount(&[
        "calibrate",
        "--series",
        series_path.to_str().expect("utf-8"),
        "--out",
        cal_path.to_str().expect("utf-8"),
        "--te-ms",
        "4",
    ]);
    assert!(
        output.status.success(),
        "calibrate failed: {}",
        stderr(&output)
    );
    let text = std::fs::read_to_string(&cal_path).expect("calibration written");
    let table: toml::Table = text.parse().expect("the calibration is TOML");
    for key in [
        "lot",
        "te_ms",
        "slope_per_s_per_cell",
        "slope_se",
        "intercept_per_s",
        "intercept_se",
        "slope_intercept_cov",
        "lob_cells",
        "lod_cells",
        "loq_cells",
        "created",
    ] {
        assert!(table.contains_key(key), "no {key}:\n{text}");
    }
    let calibration = Calibration::from_toml(&text).expect("the written calibration reads back");
    assert_eq!(calibration.lot, "LOT-A");
    assert!((calibration.te_ms - 4.0).abs() < 1e-9);
    let half = t95(calibration.df()) * calibration.slope_se;
    assert!(
        (calibration.slope_per_s_per_cell - SLOPE_PER_S_PER_CELL).abs() <= half,
        "slope {} ± {half} misses the truth",
        calibration.slope_per_s_per_cell
    );

    // A patient sample with 30 cells in 7.5 mL: unfavourable for breast (≥ 5 per 7.5 mL).
    let (control, quad) = write_sample(dir.path(), "patient", 30.0, 0.33, 9_001);
    let report = count_json(
        &["--blood-ml", "7.5", "--indication", "breast"],
        &control,
        &quad,
        &cal_path,
    );
    for key in [
        "delta_r2_per_s",
        "delta_r2_per_s_se",
        "cells",
        "cells_ci95",
        "per_ml",
        "per_ml_ci95",
        "per_7_5ml",
        "per_7_5ml_ci95",
        "category",
        "call",
        "qc_flags",
    ] {
        assert!(report.get(key).is_some(), "JSON lacks {key}: {report}");
    }
    let ci = &report["cells_ci95"];
    let (low, high) = (ci[0].as_f64().expect("low"), ci[1].as_f64().expect("high"));
    assert!(
        low <= 30.0 && 30.0 <= high,
        "30 cells outside [{low}, {high}]"
    );
    assert_eq!(report["category"], "quantified");
    assert_eq!(report["call"], "unfavorable");
    assert_eq!(report["qc_flags"], Value::Array(Vec::new()), "{report}");
    let per_ml = report["per_ml"].as_f64().expect("per_ml");
    assert!((per_ml * 7.5 - report["per_7_5ml"].as_f64().expect("per 7.5")).abs() < 1e-9);

    // A sample without cells is not detected and favourable.
    let (control, quad) = write_sample(dir.path(), "blank", 0.0, 0.41, 9_002);
    let report = count_json(
        &["--blood-ml", "7.5", "--indication", "breast"],
        &control,
        &quad,
        &cal_path,
    );
    assert_eq!(report["category"], "not_detected", "{report}");
    assert_eq!(report["call"], "favorable");
}

#[test]
fn count_prints_a_readable_report_without_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = hand_calibration(dir.path());
    let (control, quad) = write_sample(dir.path(), "p", 12.0, 0.3, 5);
    let mut args = count_args(&control, &quad, &cal);
    args.extend(["--blood-ml", "2", "--indication", "colorectal"]);
    let output = ferrocount(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("cells in sample"), "{text}");
    assert!(text.contains("colorectal: unfavorable"), "{text}");
    assert!(text.contains("QC: no flags"), "{text}");
}

#[test]
fn count_refuses_another_echo_time_or_lot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = hand_calibration(dir.path());
    let mut control = Vec::new();
    let mut quad = Vec::new();
    for replicate in 0..3u64 {
        let c = dir.path().join(format!("c{replicate}.csv"));
        let q = dir.path().join(format!("q{replicate}.csv"));
        write_reading(&c, 3.0, 1.0, 0.002, replicate);
        write_reading(&q, 3.1, 1.0, 0.002, 10 + replicate);
        control.push(c);
        quad.push(q);
    }
    let mut args = count_args(&control, &quad, &cal);
    args.extend(["--blood-ml", "7.5"]);
    let output = ferrocount(&args);
    assert!(!output.status.success());
    // Refused from the files' headers, before any is read in full or fitted.
    assert!(
        stderr(&output).contains("declares an echo time of 2 ms")
            && stderr(&output).contains("the calibration's echo time is 4 ms"),
        "{}",
        stderr(&output)
    );

    let (control, quad) = write_sample(dir.path(), "p", 3.0, 0.3, 6);
    let mut args = count_args(&control, &quad, &cal);
    args.extend(["--blood-ml", "7.5", "--lot", "LOT-B"]);
    let output = ferrocount(&args);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("reagent lot `LOT-A`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn count_flags_a_short_fill_and_holds_the_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = hand_calibration(dir.path());
    let (control, quad) = write_sample(dir.path(), "p", 10.0, 0.3, 8);
    // Replace the second quad reading with a 60 % fill (an air bubble in the coil).
    let r2_quad = 1.0 / 0.3 + INTERCEPT_PER_S + SLOPE_PER_S_PER_CELL * 10.0;
    write_reading(&quad[1], r2_quad, 0.6, 0.004, 77);
    let report = count_json(&["--blood-ml", "7.5"], &control, &quad, &cal);
    let flags = report["qc_flags"].as_array().expect("flags array");
    assert!(
        flags
            .iter()
            .any(|f| f["code"] == "low_fill" && f["severity"] == "hold"),
        "{report}"
    );
    assert_eq!(report["qc_hold"], true);
    assert_eq!(report["call"], Value::Null);
}

#[test]
fn cutoffs_come_from_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = hand_calibration(dir.path());
    let (control, quad) = write_sample(dir.path(), "p", 20.0, 0.3, 9);
    let indications = dir.path().join("indications.toml");
    std::fs::write(
        &indications,
        "[indications.breast]\nunfavorable_at_or_above_per_7_5ml = 100.0\n",
    )
    .expect("write indications");
    let report = count_json(
        &[
            "--blood-ml",
            "7.5",
            "--indication",
            "breast",
            "--indications",
            indications.to_str().expect("utf-8"),
        ],
        &control,
        &quad,
        &cal,
    );
    assert_eq!(report["call"], "favorable", "{report}");
    assert_eq!(report["cutoff_per_7_5ml"], 100.0);

    let mut args = count_args(&control, &quad, &cal);
    args.extend(["--blood-ml", "7.5", "--indication", "lung"]);
    let output = ferrocount(&args);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("breast, colorectal, prostate"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn count_warns_when_a_reading_decays_with_two_components() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = hand_calibration(dir.path());
    let (control, quad) = write_sample(dir.path(), "p", 10.0, 0.3, 10);
    // The third control reading holds a clot: a quarter of the signal relaxes at T2 = 60 ms.
    let mut simulation = CpmgSimulation::mono(1.0, 0.3, 0.004, 500);
    simulation.components = vec![
        Component {
            amplitude: 0.75,
            t2_s: 0.3,
        },
        Component {
            amplitude: 0.25,
            t2_s: 0.06,
        },
    ];
    simulation.noise_sd = 1.0 / 300.0;
    let train = simulation.simulate(31).with_acquisition(Acquisition {
        te_s: Some(0.004),
        temp_c: Some(25.0),
        ..Acquisition::default()
    });
    std::fs::write(&control[2], write_csv(&train)).expect("write train");
    let report = count_json(&["--blood-ml", "7.5"], &control, &quad, &cal);
    let flags = report["qc_flags"].as_array().expect("flags array");
    assert!(
        flags.iter().any(|f| f["code"] == "biexponential_preferred"
            && f["severity"] == "warn"
            && f["subject"]
                .as_str()
                .is_some_and(|s| s.contains("control tube reading 3"))),
        "{report}"
    );
}

#[test]
fn marker_tubes_give_a_profile_and_leave_the_count_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = hand_calibration(dir.path());
    let (control, quad) = write_sample(dir.path(), "p", 20.0, 0.3, 12);
    let base = count_json(&["--blood-ml", "7.5"], &control, &quad, &cal);
    // HER-2 alone labels the cells half as strongly as the cocktail: ΔR2 = 0.05 + 0.002·20 = 0.09.
    let r2_her2 = 1.0 / 0.3 + 0.09;
    let mut extra: Vec<String> = Vec::new();
    for replicate in 0..3u64 {
        let path = dir.path().join(format!("her2_{replicate}.csv"));
        write_reading(&path, r2_her2, 1.0, 0.004, 500 + replicate);
        extra.push("--marker".to_string());
        extra.push(format!("her2={}", path.display()));
    }
    let extra_refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut args = vec!["--blood-ml", "7.5"];
    args.extend(extra_refs);
    let report = count_json(&args, &control, &quad, &cal);
    let profile = report["marker_profile"].as_array().expect("profile");
    assert_eq!(profile.len(), 1, "{report}");
    assert_eq!(profile[0]["tube"]["single"], "her2");
    let delta = profile[0]["delta_r2_per_s"].as_f64().expect("delta");
    let ci = &profile[0]["delta_r2_ci95"];
    assert!(
        ci[0].as_f64().expect("low") <= 0.09 && 0.09 <= ci[1].as_f64().expect("high"),
        "HER-2 ΔR2 {delta} with CI {ci} misses 0.09"
    );
    assert_eq!(
        report["cells"], base["cells"],
        "the marker tube changed the count"
    );

    let mut args = count_args(&control, &quad, &cal);
    args.extend(["--blood-ml", "7.5", "--marker", "cd44=x.csv"]);
    let output = ferrocount(&args);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unknown marker"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unreadable_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = hand_calibration(dir.path());
    let (control, _) = write_sample(dir.path(), "p", 0.0, 0.3, 13);
    let missing = vec![dir.path().join("missing.csv"); 2];
    let mut args = count_args(&control, &missing, &cal);
    args.extend(["--blood-ml", "7.5"]);
    let output = ferrocount(&args);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("missing.csv"),
        "{}",
        stderr(&output)
    );

    let garbage = dir.path().join("garbage.csv");
    std::fs::write(&garbage, "this is not an echo train\n").expect("write");
    let garbage_files = vec![garbage.clone(), garbage];
    let mut args = count_args(&control, &garbage_files, &cal);
    args.extend(["--blood-ml", "7.5"]);
    let output = ferrocount(&args);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("garbage.csv is not a readable echo train"),
        "{}",
        stderr(&output)
    );

    let mut args = count_args(&control, &control, &cal);
    args.extend(["--blood-ml", "0"]);
    let output = ferrocount(&args);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--blood-ml"),
        "{}",
        stderr(&output)
    );

    let series = dir.path().join("series.csv");
    // A series whose design is sound (the design is checked before any file is opened).
    let mut rows = String::from("# lot=A\nsample,cells,tube,file\n");
    for (level, cells) in [0, 5, 10, 20, 50].iter().enumerate() {
        for sample in 0..2 {
            for tube in ["control", "quad"] {
                for _ in 0..2 {
                    rows.push_str(&format!("S{level}{sample},{cells},{tube},nowhere.csv\n"));
                }
            }
        }
    }
    std::fs::write(&series, rows).expect("write series");
    let out = dir.path().join("cal_out.toml");
    let output = ferrocount(&[
        "calibrate",
        "--series",
        series.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("nowhere.csv"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists(), "a failed calibration must not write a file");
}
