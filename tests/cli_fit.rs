//! End-to-end tests of `ferrocount simulate` and `ferrocount fit`: the real binary, real files,
//! real pipes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Runs the binary with `args`, feeding `stdin` when given.
fn ferrocount(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocount"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ferrocount binary starts");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin was piped");
        pipe.write_all(bytes).expect("the child reads its input");
    }
    child
        .wait_with_output()
        .expect("the ferrocount binary runs")
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("output is UTF-8")
}

/// Each stdout line as JSON (failing on any line that is not valid JSON).
fn json_lines(output: &Output) -> Vec<Value> {
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn number(line: &Value, key: &str) -> f64 {
    line[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {line}"))
}

fn simulated_csv(args: &str) -> Vec<u8> {
    let args: Vec<&str> = std::iter::once("simulate")
        .chain(args.split_whitespace())
        .collect();
    let output = ferrocount(&args, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    output.stdout
}

#[test]
fn simulate_then_fit_recovers_t2_within_its_standard_error() {
    let csv = simulated_csv("--t2-ms 80 --echoes 1000 --te-ms 0.5 --snr 100 --seed 7");
    let output = ferrocount(&["fit", "--json", "-"], Some(&csv));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    let fit = &lines[0];
    assert_eq!(fit["file"], "-");
    assert_eq!(fit["model"], "mono");
    assert_eq!(fit["converged"], true);
    assert_eq!(fit["echoes_used"], 999);
    let (t2, se) = (number(fit, "t2_ms"), number(fit, "t2_ms_se"));
    assert!((t2 - 80.0).abs() <= se, "T2 = {t2} ± {se} ms, truth 80 ms");
    assert!(se > 0.0 && se < 0.01 * 80.0, "SE(T2) = {se} ms");
    let r2 = number(fit, "r2_per_s");
    assert!((r2 * t2 - 1e3).abs() < 1e-9, "R2 = {r2}/s is not 1/T2");
    let (a, a_se) = (number(fit, "amplitude"), number(fit, "amplitude_se"));
    assert!((a - 1.0).abs() <= 3.0 * a_se, "A = {a} ± {a_se}");
    // SNR is amplitude over noise SD, as `simulate` defines it.
    let snr = number(fit, "snr");
    assert!((snr / 100.0 - 1.0).abs() < 0.1, "SNR {snr}");
    for key in ["t2_ms_se", "r2_per_s_se", "offset", "chi2_red"] {
        number(fit, key);
    }
}

#[test]
fn table_output_names_each_file_with_aligned_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("magnitude_bi.csv");
    std::fs::write(
        &path,
        simulated_csv("--t2-ms 80 --bi 10:0.3 --magnitude --phase-deg 40 --seed 3"),
    )
    .unwrap();
    let output = ferrocount(&["fit", path.to_str().unwrap()], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for column in [
        "file",
        "T2 (ms)",
        "R2 (1/s)",
        "χ²red",
        "SNR",
        "echoes",
        "misfit",
        "converged",
    ] {
        assert!(
            lines[0].contains(column),
            "header lacks {column}: {}",
            lines[0]
        );
    }
    assert!(lines[1].starts_with(path.to_str().unwrap()), "{}", lines[1]);
    // The file column is as wide as the name; every other column starts at the same place in
    // the header and the row.
    let start = path.to_str().unwrap().chars().count() + 2;
    let at = |line: &str, what: &str| line.find(what).map(|b| line[..b].chars().count());
    assert_eq!(at(lines[0], "T2 (ms)"), Some(start));
    let cell: String = lines[1].chars().skip(start).take(5).collect();
    assert!(
        cell.starts_with(|c: char| c.is_ascii_digit()),
        "{}",
        lines[1]
    );
    assert_eq!(at(lines[0], "converged"), at(lines[1], "yes"));
    // Two components fitted with one: the misfit is flagged, with its widening, in its column.
    assert_eq!(at(lines[0], "misfit"), at(lines[1], "YES"), "{stdout}");
}

/// A simulated CSV whose 1-based `line` has its `re` value replaced by `value`.
fn with_bad_value(csv: &[u8], line: usize, value: &str) -> String {
    let mut lines: Vec<String> = text(csv).lines().map(str::to_owned).collect();
    let fields: Vec<&str> = lines[line - 1].split(',').collect();
    assert_eq!(fields.len(), 3, "line {line} is an echo row");
    lines[line - 1] = format!("{},{value},{}", fields[0], fields[2]);
    lines.join("\n") + "\n"
}

#[test]
fn a_directory_reports_every_file_and_the_bad_ones_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = simulated_csv("--t2-ms 40 --echoes 600 --te-ms 0.5 --snr 200 --seed 11");
    // Line 1 is `# te_ms=0.5`, line 2 the header, so echo k (0-based) sits on line k + 3.
    assert!(text(&csv).starts_with("# te_ms=0.5\nt_ms,re,im\n"));
    std::fs::write(dir.path().join("b_good.csv"), &csv).unwrap();
    std::fs::write(
        dir.path().join("a_corrupt.csv"),
        with_bad_value(&csv, 10, "1.2.3"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c_nan.txt"),
        with_bad_value(&csv, 57, "NaN"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.md"), "not a train").unwrap();

    let dir_arg = dir.path().to_str().unwrap();
    let output = ferrocount(&["fit", "--json", dir_arg], None);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 3, "{}", text(&output.stdout));
    let name = |file: &str| dir.path().join(file).display().to_string();

    assert_eq!(lines[0]["file"], name("a_corrupt.csv"));
    let error = lines[0]["error"].as_str().expect("an error line");
    assert!(
        error.contains("line 10") && error.contains("1.2.3"),
        "{error}"
    );
    assert!(lines[0].get("t2_ms").is_none());

    assert_eq!(lines[1]["file"], name("b_good.csv"));
    assert!(lines[1].get("error").is_none(), "{}", lines[1]);
    assert!((number(&lines[1], "t2_ms") - 40.0).abs() < 4.0 * number(&lines[1], "t2_ms_se"));

    assert_eq!(lines[2]["file"], name("c_nan.txt"));
    let error = lines[2]["error"].as_str().expect("an error line");
    assert!(
        error.contains("line 57") && error.contains("echo 54") && error.contains("NaN"),
        "{error}"
    );

    // The table says the same, and so does the exit status.
    let output = ferrocount(&["fit", dir_arg], None);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert_eq!(stdout.matches("error: line").count(), 2, "{stdout}");
    assert!(
        text(&output.stderr).contains("2 of 3"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn inputs_keep_their_order_across_files_stdin_and_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "fit".to_owned(),
        "--json".into(),
        "--jobs".into(),
        "3".into(),
    ];
    let mut expected = Vec::new();
    for (k, t2_ms) in [30, 60, 90, 120, 45, 75].into_iter().enumerate() {
        let path = dir.path().join(format!("t2_{t2_ms}.csv"));
        std::fs::write(&path, simulated_csv(&format!("--t2-ms {t2_ms} --seed {k}"))).unwrap();
        args.push(path.display().to_string());
        expected.push(Some(f64::from(t2_ms)));
        if k == 2 {
            args.push("-".into());
            expected.push(Some(20.0));
            args.push(dir.path().join("missing.csv").display().to_string());
            expected.push(None);
        }
    }
    let stdin = simulated_csv("--t2-ms 20 --seed 99");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = ferrocount(&args, Some(&stdin));
    assert_eq!(output.status.code(), Some(1));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), expected.len());
    for ((line, want), arg) in lines.iter().zip(&expected).zip(&args[4..]) {
        assert_eq!(line["file"], *arg);
        match want {
            Some(t2) => {
                let got = number(line, "t2_ms");
                assert!((got - t2).abs() < 5.0 * number(line, "t2_ms_se"), "{line}");
            }
            None => assert!(
                line["error"].as_str().unwrap().contains("cannot read"),
                "{line}"
            ),
        }
    }
}

#[test]
fn real_instrument_exports_fit_without_error() {
    let external: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/external");
    let files = ["geospec_CPMG_bunter.txt", "minispec_cpmg.dps"].map(|f| external.join(f));
    for file in &files {
        assert!(
            file.is_file(),
            "the real-data fixture {} is missing: the tests expect the shared data folder beside \
             the workspace (see ../shared/data/external/README.md)",
            file.display()
        );
    }
    let args: Vec<&str> = ["fit", "--json"]
        .into_iter()
        .chain(files.iter().map(|f| f.to_str().unwrap()))
        .collect();
    let output = ferrocount(&args, None);
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 2);
    // The GeoSpec train has 23,148 echoes 0.108 ms apart, the minispec one 10,000.
    for (line, echoes) in lines.iter().zip([23_147, 9_999]) {
        assert!(line.get("error").is_none(), "{line}");
        assert_eq!(line["converged"], true, "{line}");
        assert_eq!(line["echoes_used"], echoes, "{line}");
        let (t2, se) = (number(line, "t2_ms"), number(line, "t2_ms_se"));
        assert!(t2 > 0.0 && se > 0.0 && se < 0.05 * t2, "{line}");
    }
}

#[test]
fn bad_arguments_are_refused_before_any_work() {
    for (args, complaint) in [
        (
            &["simulate", "--t2-ms", "80", "--snr", "0"][..],
            "greater than zero",
        ),
        (
            &["simulate", "--t2-ms", "80", "--bi", "10:1.5"],
            "strictly between 0 and 1",
        ),
        (
            &["simulate", "--t2-ms", "8", "--bi", "10:0.5"],
            "shorter than --t2-ms",
        ),
        (&["fit", "--model", "triple", "x.csv"], "triple"),
        (&["fit"], "PATH"),
    ] {
        let output = ferrocount(args, None);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(output.stdout.is_empty(), "{args:?} wrote output");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(complaint), "{args:?}: {stderr}");
    }
}

#[test]
fn bi_model_recovers_two_components_and_prefers_them() {
    let csv = simulated_csv("--t2-ms 150 --bi 20:0.4 --snr 500 --echoes 2000 --seed 5");
    let output = ferrocount(&["fit", "--model", "bi", "--json", "-"], Some(&csv));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let lines = json_lines(&output);
    let fit = &lines[0];
    assert_eq!(fit["model"], "bi");
    assert_eq!(fit["preferred"], "bi", "{fit}");
    assert_eq!(fit["converged"], true, "{fit}");
    for (key, truth) in [
        ("t2_fast_ms", 20.0),
        ("t2_slow_ms", 150.0),
        ("fraction_fast", 0.4),
    ] {
        let got = number(fit, key);
        assert!(
            (got / truth - 1.0).abs() < 0.05,
            "{key} = {got}, truth {truth}"
        );
    }

    // Mono data: the comparison keeps one component.
    let csv = simulated_csv("--t2-ms 80 --snr 200 --echoes 1000 --seed 6");
    let output = ferrocount(&["fit", "--model", "bi", "--json", "-"], Some(&csv));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(json_lines(&output)[0]["preferred"], "mono");
}

#[test]
fn spectrum_of_the_geospec_sandstone_matches_the_vendor_log_mean() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/external/geospec_CPMG_bunter.txt");
    assert!(
        file.is_file(),
        "the real-data fixture {} is missing (see ../shared/data/external/README.md)",
        file.display()
    );
    let output = ferrocount(
        &[
            "fit",
            "--model",
            "spectrum",
            "--json",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let lines = json_lines(&output);
    let spectrum = &lines[0];
    assert_eq!(spectrum["model"], "spectrum");
    assert_eq!(spectrum["converged"], true);
    // The vendor's own analysis in the file's header: T2 Log Mean = 12.777 ms.
    let logmean = number(spectrum, "t2_logmean_ms");
    assert!((logmean / 12.777 - 1.0).abs() < 0.05, "T2LM {logmean} ms");
    let bins = spectrum["t2_bins_ms"].as_array().expect("the bin T2s");
    let amplitudes = spectrum["amplitudes"].as_array().expect("the distribution");
    assert!(bins.len() >= 2 && bins.len() == amplitudes.len());
    assert!(
        amplitudes
            .iter()
            .all(|a| a.as_f64().is_some_and(|a| a >= 0.0))
    );

    // The table names the log-mean too.
    let output = ferrocount(
        &["fit", "--model", "spectrum", file.to_str().unwrap()],
        None,
    );
    assert!(output.status.success());
    assert!(text(&output.stdout).contains("T2 logmean"));
}
