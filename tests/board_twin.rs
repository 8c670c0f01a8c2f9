//! End-to-end: `ferrocount board …` on a board twin in its own process (`ferrocount board twin`),
//! or on a real board when `FERROCOUNT_TEST_SPI` names one: the self-test, the same CPMG as in
//! process, a board with another firmware major refused, a slow link, a twin killed, and every
//! board command on a board whose replay cache holds the sequence number it starts with.

#[path = "support/test_board.rs"]
mod test_board;

use std::process::{Command, Output};

use appliance::frontend::protocol::{self, MAX_PAYLOAD_LEN, Request, Response};
use appliance::frontend::registers::{IDENTITY_LEN, STATUS_LEN};
use appliance::twin::{TwinLinkOptions, TwinSpi};
use embedded_hal::spi::SpiDevice as _;
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

/// What a board shows by itself, with no simulation truth to compare to: so this runs on a real
/// board too (with the reference tube in the coil, see docs/raspberry-pi.md).
#[test]
fn board_info_tune_and_a_cpmg_run_on_the_test_board_and_keep_their_echo_train() {
    let dir = tempfile::tempdir().expect("temp dir");
    let board = TestBoard::start(dir.path(), &[]);
    let info = json(&ferrocount(
        &["board", "info", "--json"],
        &board.board_args(),
    ));
    assert_eq!(info["firmware_supported"], true, "{info}");
    let tune = json(&ferrocount(
        &["board", "tune", "--json"],
        &board.board_args(),
    ));
    let f0_hz = tune["f0_hz"].as_f64().expect("f0_hz");
    assert!(f0_hz.is_finite() && f0_hz > 0.0, "{tune}");
    let csv = dir.path().join("train.csv");
    let csv_arg = csv.to_str().expect("a UTF-8 temp path");
    let cpmg = json(&ferrocount(
        &[
            "board", "cpmg", "--json", "--echoes", "300", "--csv", csv_arg,
        ],
        &board.board_args(),
    ));
    assert_eq!(cpmg["cpmg"]["settings"]["echoes"], 300, "{cpmg}");
    let t2_ms = cpmg["fit"]["t2_ms"].as_f64().expect("t2_ms");
    assert!(t2_ms.is_finite() && t2_ms > 0.0, "{cpmg}");
    let train =
        nmr_core::io::parse_echo_train(&std::fs::read_to_string(&csv).expect("the train file"))
            .expect("the train file reads back");
    assert_eq!(train.len(), 300);
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

/// One request with sequence number 1, sent as raw frames by a "previous host" (no driver, so
/// no first contact), and the board's answer to it.
fn previous_host_request(twin: &TwinProcess, command: protocol::Command) -> Response {
    let mut spi = TwinSpi::new(twin.address(), TwinLinkOptions::default());
    spi.write(&Request::new(1, command, Vec::new()).encode())
        .expect("request sent");
    let mut buffer = vec![0u8; Response::frame_len(MAX_PAYLOAD_LEN)];
    for _ in 0..100 {
        spi.read(&mut buffer).expect("answer read");
        if let Ok(response) = Response::decode(&buffer)
            && response.seq == 1
        {
            return response;
        }
    }
    panic!("no answer to {} numbered 1", command.name());
}

#[test]
fn every_board_command_works_when_the_previous_host_left_its_first_sequence_number_in_the_replay_cache()
 {
    let dir = tempfile::tempdir().expect("temp dir");
    let twin = TwinProcess::spawn(&dir.path().join("twin.sock"), &[]);
    let board = ["--board".to_owned(), twin.board_flag()];
    for command in [
        &["board", "info"][..],
        &["board", "tune"],
        &["board", "nutation"],
        &["board", "cpmg", "--echoes", "200"],
        &["board", "selftest"],
    ] {
        // The previous host's last request: a STATUS numbered 1, the number every new host
        // starts with.
        let status = previous_host_request(&twin, protocol::Command::Status);
        assert_eq!(status.payload.len(), STATUS_LEN);
        // The collision is in place: an IDENTIFY numbered 1 gets the cached status block.
        let replayed = previous_host_request(&twin, protocol::Command::Identify);
        assert_eq!(
            (replayed.payload.len(), replayed.payload == status.payload),
            (STATUS_LEN, true),
            "answered from the replay cache, not {IDENTITY_LEN} bytes of identity"
        );
        let output = ferrocount(command, &board);
        assert!(
            output.status.success(),
            "{command:?} after the collision:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let bus_log = twin.truth().bus_log;
        assert_eq!(
            bus_log.first().map(String::as_str),
            Some("status"),
            "{command:?} starts with its first contact: {bus_log:?}"
        );
    }
}
