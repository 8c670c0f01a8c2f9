//! End-to-end: `ferrocount board …` on a board twin in its own process (`ferrocount board twin`),
//! or on a real board when `FERROCOUNT_TEST_SPI` names one: the self-test, the same CPMG as in
//! process, a board with another firmware major refused, a slow link, and a twin killed.

#[path = "support/test_board.rs"]
mod test_board;

use std::process::{Command, Output};

use test_board::{TestBoard, TwinProcess};

fn ferrocount(args: &[&str], board: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrocount"))
        .args(args)
        .args(board)
        .env("RUST_BACKTRACE", "0")
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

#[test]
fn the_self_test_passes_every_step_and_says_so_on_one_line_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let board = TestBoard::start(dir.path(), &[]);
    let output = ferrocount(&["board", "selftest"], &board.board_args());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    for step in appliance::procedures::STEPS {
        assert!(
            text.lines()
                .any(|l| l.starts_with("PASS ") && l.split_whitespace().nth(1) == Some(step)),
            "a PASS line for {step}:\n{text}"
        );
    }
    let report = json(&ferrocount(
        &["board", "selftest", "--json"],
        &board.board_args(),
    ));
    assert_eq!(report["passed"], true);
    assert_eq!(
        report["steps"].as_array().map(Vec::len),
        Some(appliance::procedures::STEPS.len())
    );
}

#[test]
fn a_cpmg_through_the_twin_process_equals_the_in_process_one_even_over_a_slow_link() {
    let dir = tempfile::tempdir().expect("temp dir");
    let in_process = json(&ferrocount(
        &["board", "cpmg", "--json", "--seed", "9"],
        &[],
    ));
    for latency_us in ["0", "300"] {
        let twin = TwinProcess::spawn(
            &dir.path().join(format!("twin-{latency_us}.sock")),
            &["--seed", "9", "--latency-us", latency_us],
        );
        let through_twin = json(&ferrocount(
            &["board", "cpmg", "--json"],
            &["--board".into(), twin.board_flag()],
        ));
        assert_eq!(
            through_twin, in_process,
            "the same echoes, fit and link counts through a twin with {latency_us} µs per transaction"
        );
        let truth = twin.truth();
        assert_eq!(
            Some(truth.transactions),
            in_process["link"]["transactions"].as_u64()
        );
    }
}

#[test]
fn a_board_with_another_firmware_major_is_shown_but_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let twin = TwinProcess::spawn(&dir.path().join("twin.sock"), &["--firmware", "1.2.0"]);
    let board = ["--board".to_owned(), twin.board_flag()];
    let info = ferrocount(&["board", "info"], &board);
    assert!(!info.status.success());
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        text.contains("firmware 1.2.0") && text.contains("not supported"),
        "{text}"
    );
    let cpmg = ferrocount(&["board", "cpmg"], &board);
    assert!(!cpmg.status.success());
    let error = String::from_utf8_lossy(&cpmg.stderr);
    assert!(error.contains("firmware 1.2.0 is not supported"), "{error}");
    // Refused before anything was programmed: no sequence ever started.
    assert_eq!(twin.truth().sequences_started, 0);
    let selftest = json(&ferrocount(&["board", "selftest", "--json"], &board));
    assert_eq!(selftest["passed"], false);
    assert_eq!(selftest["steps"][0]["outcome"], "fail");
    assert_eq!(selftest["steps"][1]["outcome"], "skipped");
}

#[test]
fn a_killed_twin_is_a_board_error_naming_the_link() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut twin = TwinProcess::spawn(&dir.path().join("twin.sock"), &[]);
    let board = ["--board".to_owned(), twin.board_flag()];
    assert!(ferrocount(&["board", "info"], &board).status.success());
    twin.kill();
    let output = ferrocount(&["board", "cpmg"], &board);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("board twin at unix:") && error.contains("cannot connect"),
        "{error}"
    );
}
