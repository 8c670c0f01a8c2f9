//! Faults across the process boundary: `ferrocount serve` and `ferrocount board twin` as two real
//! processes, talking over a Unix socket, killed and restarted with real signals.
//!
//! - the twin killed while a run measures: the run fails with a board cause, the service stays
//!   up and keeps the readings already taken;
//! - the twin restarted: the next run reconnects, identifies the new board and tunes before it
//!   measures;
//! - the appliance killed while the twin runs a sequence: on restart it halts the board and
//!   flushes its FIFO before anything else, and the run is `interrupted`;
//! - a slow link (latency per transaction): the run completes; a link slower than the configured
//!   time limit fails the run with a board cause;
//! - a board answering with another firmware major version: refused before any sequence.
//!
//! Every wait is bounded; nothing asserts on speed. These need the twin: with
//! `FERROCOUNT_TEST_SPI` set (a real board) they are skipped.

#[path = "support/test_board.rs"]
mod test_board;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use appliance::frontend::SequencerState;
use appliance::store::users::{NewPassword, NewUser, Role, Username};
use appliance::store::{Actor, Store};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use test_board::{HARDWARE_ENV, TwinProcess};

/// Longest wait for anything (a service to answer, a run to settle).
const WAIT: Duration = Duration::from_secs(120);

fn on_hardware(test: &str) -> bool {
    let set = std::env::var(HARDWARE_ENV).is_ok_and(|v| !v.is_empty());
    if set {
        eprintln!("{test}: skipped with {HARDWARE_ENV} set (needs the twin)");
    }
    set
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An operator and their API token in a fresh data directory.
async fn operator_token(data_dir: &Path) -> String {
    let store = Store::open(data_dir).await.expect("store");
    let user = store
        .add_user(
            &Actor::Appliance,
            NewUser {
                username: Username::parse("olga").expect("name"),
                display_name: "Olga Operator".into(),
                role: Role::Operator,
                password: NewPassword::parse("correct horse battery").expect("password"),
            },
        )
        .await
        .expect("user");
    let (token, _) = store
        .create_api_token(&Actor::Appliance, user.id, "twin faults")
        .await
        .expect("token");
    store.close().await;
    token
}

/// A `ferrocount serve` process on the twin.
struct Service {
    child: Child,
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Service {
    async fn start(data_dir: &Path, twin: &TwinProcess, token: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_ferrocount"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--board"])
            .arg(twin.board_flag())
            .arg("--data-dir")
            .arg(data_dir)
            .env("FERROCOUNT_QC__POLICY", "run_but_hold")
            .envs(env.iter().copied())
            .env("RUST_BACKTRACE", "0")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let service = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            token: token.to_owned(),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + WAIT;
        while !service.healthy().await {
            assert!(Instant::now() < deadline, "serve answered /healthz in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        service
    }

    async fn healthy(&self) -> bool {
        self.client
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    async fn start_run(&self, mrn: &str, cells: f64) -> i64 {
        let response = self
            .client
            .post(format!("{}/api/v1/runs", self.base))
            .bearer_auth(&self.token)
            .json(&json!({ "patient_mrn": mrn, "accession": format!("{mrn}-A"), "blood_ml": 7.5, "simulate": { "cells": cells } }))
            .send()
            .await
            .expect("POST /runs");
        assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
        let ticket: Value = response.json().await.expect("ticket");
        ticket["id"].as_i64().expect("run id")
    }

    async fn run(&self, id: i64) -> Value {
        self.client
            .get(format!("{}/api/v1/runs/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET /runs/{id}")
            .json()
            .await
            .expect("run JSON")
    }

    /// Waits (bounded) until the run has settled; returns its view.
    async fn settled(&self, id: i64) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let run = self.run(id).await;
            let state = run["state"].as_str().unwrap_or_default().to_owned();
            if !["queued", "running", "awaiting_tube"].contains(&state.as_str()) {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} settled in time: {run}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits (bounded) for a clean exit.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                self.kill();
                panic!("serve did not stop on SIGTERM in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Counts rows of the data directory's database (read-only, beside the running service).
async fn count(data_dir: &Path, sql: &str) -> i64 {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(data_dir.join(appliance::store::db::DATABASE_FILE))
                .read_only(true),
        )
        .await
        .expect("database opens read-only");
    let n = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n
}

/// Waits (bounded) until `condition` holds on the twin's truth.
fn until_twin(
    twin: &TwinProcess,
    what: &str,
    condition: impl Fn(&appliance::twin::TwinTruth) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    while !condition(&twin.truth()) {
        assert!(
            Instant::now() < deadline,
            "the twin reached '{what}' in time"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A fresh data directory whose simulated lot is calibrated (its dilution series measured
/// through the twin and approved in the console's name, as `ferrocount run
/// --approve-simulated-calibration` does), with one complete run.
async fn calibrated(data_dir: &Path, twin: &TwinProcess) -> (Service, i64) {
    let token = operator_token(data_dir).await;
    let approved = Command::new(env!("CARGO_BIN_EXE_ferrocount"))
        .args([
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--patient",
            "CAL-00",
            "--accession",
            "CAL-00-A",
            "--blood-ml",
            "7.5",
            "--sim-cells",
            "0",
            "--board",
        ])
        .arg(twin.board_flag())
        .arg("--data-dir")
        .arg(data_dir)
        .env("FERROCOUNT_QC__POLICY", "run_but_hold")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("ferrocount run");
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let service = Service::start(data_dir, twin, &token, &[]).await;
    let first = service.start_run("CAL-0", 0.0).await;
    let run = service.settled(first).await;
    assert_eq!(run["state"], "awaiting_release", "{run}");
    (service, first)
}

/// Calibrates the simulated lot through a fast twin on `socket`, then stops the service and the
/// twin, so a test can go on with a twin of its own on the same socket. Returns the token.
async fn calibrated_and_stopped(data: &Path, socket: &Path) -> String {
    let mut fast = TwinProcess::spawn(socket, &[]);
    let (mut service, _) = calibrated(data, &fast).await;
    service.stop();
    fast.kill();
    service.token.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_twin_killed_mid_run_fails_it_with_a_board_cause_keeping_its_readings() {
    if on_hardware("twin killed") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut twin = TwinProcess::spawn(&dir.path().join("twin.sock"), &[]);
    let (service, _) = calibrated(&data, &twin).await;

    let id = service.start_run("KILL-1", 20.0).await;
    // Kill it once the run has a reading and a sequence is running on the board.
    let deadline = Instant::now() + WAIT;
    while count(
        &data,
        &format!("SELECT COUNT(*) FROM measurements WHERE run_id = {id}"),
    )
    .await
        == 0
    {
        assert!(Instant::now() < deadline, "a first reading in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    until_twin(&twin, "a running sequence", |t| {
        t.sequencer == SequencerState::Running
    });
    twin.kill();

    let run = service.settled(id).await;
    assert_eq!(run["state"], "failed", "{run}");
    let cause = run["run"]["failure_cause"].as_str().expect("a cause");
    assert!(cause.starts_with("board: "), "{cause}");
    assert!(
        cause.contains("board twin at unix:"),
        "the cause names the link: {cause}"
    );
    let kept = count(
        &data,
        &format!("SELECT COUNT(*) FROM measurements WHERE run_id = {id}"),
    )
    .await;
    assert!(kept >= 1, "the readings taken before the kill are kept");
    // The service stays up and takes the next request (which fails too: no board).
    assert!(service.healthy().await);
    let next = service.start_run("KILL-2", 5.0).await;
    let run = service.settled(next).await;
    assert_eq!(run["state"], "failed");
    assert!(
        run["run"]["failure_cause"]
            .as_str()
            .is_some_and(|c| c.contains("cannot connect")),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_twin_is_identified_and_tuned_before_the_next_run() {
    if on_hardware("twin restarted") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let socket = dir.path().join("twin.sock");
    let mut twin = TwinProcess::spawn(&socket, &[]);
    let (service, _) = calibrated(&data, &twin).await;
    twin.kill();
    // Another board (serial 0x5111_0002) on the same socket.
    let new_twin = TwinProcess::spawn(&socket, &["--serial", "1360068610", "--seed", "5"]);

    let id = service.start_run("RESTART-1", 20.0).await;
    let run = service.settled(id).await;
    assert_eq!(run["state"], "awaiting_release", "{run}");
    // The new board was identified (its serial logged for this run's check) and tuned first.
    let log = new_twin.truth().bus_log;
    assert_eq!(log.first().map(String::as_str), Some("identify"), "{log:?}");
    let first_start = log
        .iter()
        .position(|c| c == "start")
        .expect("sequences ran");
    let identify = log
        .iter()
        .position(|c| c == "identify")
        .expect("identified");
    assert!(identify < first_start);
    let tunes = count(
        &data,
        &format!("SELECT COUNT(*) FROM instrument_log WHERE kind = 'tune' AND run_id = {id}"),
    )
    .await;
    assert_eq!(tunes, 1, "tuned once before the run's readings");
    let tuned_before_readings = count(
        &data,
        &format!(
            "SELECT COUNT(*) FROM instrument_log l WHERE l.kind = 'tune' AND l.run_id = {id}
             AND l.logged_at <= (SELECT MIN(measured_at) FROM measurements WHERE run_id = {id})"
        ),
    )
    .await;
    assert_eq!(tuned_before_readings, 1);
    assert!(new_twin.truth().sequences_started > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_appliance_killed_mid_sequence_halts_and_flushes_the_board_first_on_restart() {
    if on_hardware("appliance killed") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let socket = dir.path().join("twin.sock");
    let token = calibrated_and_stopped(&data, &socket).await;
    // 2 ms per transaction: a sequence stays running long enough (in wall time) to be caught.
    let twin = TwinProcess::spawn(&socket, &["--latency-us", "2000"]);
    let mut service = Service::start(&data, &twin, &token, &[]).await;

    let id = service.start_run("CRASH-1", 20.0).await;
    until_twin(&twin, "a running sequence", |t| {
        t.sequencer == SequencerState::Running
    });
    service.kill();
    // Nobody moves the twin's (instant, virtual) time now: what the dead appliance left stays.
    let left = twin.truth();
    assert!(
        left.sequencer == SequencerState::Running || left.fifo_level > 0,
        "killed mid-sequence: {:?} with {} echoes waiting",
        left.sequencer,
        left.fifo_level
    );
    let connections = left.bus_connections;

    let service = Service::start(&data, &twin, &token, &[]).await;
    until_twin(&twin, "the new appliance's connection", |t| {
        t.bus_connections > connections && t.bus_log.len() >= 3
    });
    let truth = twin.truth();
    assert_eq!(
        truth.bus_log[..3],
        ["status", "halt", "flush FIFO"],
        "the driver's first contact, then halt and flush before anything else: {:?}",
        truth.bus_log
    );
    assert_eq!(truth.sequencer, SequencerState::Idle);
    assert_eq!(truth.fifo_level, 0);
    assert_eq!(service.run(id).await["state"], "interrupted");
    assert!(service.healthy().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_link_completes_and_one_slower_than_its_limit_fails_with_a_board_cause() {
    if on_hardware("slow link") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let socket = dir.path().join("twin.sock");
    let token = calibrated_and_stopped(&data, &socket).await;

    // 1 ms per transaction: slower, same answers.
    let slow = TwinProcess::spawn(&socket, &["--latency-us", "1000"]);
    let mut service = Service::start(&data, &slow, &token, &[]).await;
    let id = service.start_run("SLOW-1", 30.0).await;
    let run = service.settled(id).await;
    assert_eq!(run["state"], "awaiting_release", "{run}");
    let cells = run["result"]["cells_ci95"].as_array().expect("interval");
    let (low, high) = (cells[0].as_f64().unwrap(), cells[1].as_f64().unwrap());
    assert!(low <= 30.0 && 30.0 <= high, "30 cells in [{low}, {high}]");
    service.stop();
    drop(slow);

    // 300 ms per transaction against a 100 ms limit: the run fails, naming the link.
    let sluggish = TwinProcess::spawn(&socket, &["--latency-us", "300000"]);
    let service = Service::start(
        &data,
        &sluggish,
        &token,
        &[("FERROCOUNT_TWIN__LINK_TIMEOUT_MS", "100")],
    )
    .await;
    let id = service.start_run("SLOW-2", 30.0).await;
    let run = service.settled(id).await;
    assert_eq!(run["state"], "failed", "{run}");
    let cause = run["run"]["failure_cause"].as_str().expect("a cause");
    assert!(
        cause.starts_with("board: ") && cause.contains("no answer within"),
        "{cause}"
    );
    assert!(service.healthy().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_board_with_another_firmware_major_is_refused_before_any_sequence() {
    if on_hardware("firmware") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let twin = TwinProcess::spawn(&dir.path().join("twin.sock"), &["--firmware", "1.0.0"]);
    let token = operator_token(&data).await;
    // An approved calibration for the simulated lot, so the start is not what refuses the run.
    {
        use appliance::store::calibrations::{
            CalibrationContent, CalibrationDecision, NewCalibration, ReagentLot,
        };
        let text = appliance::store::example_report::example_calibration_toml()
            .replace("lot = \"RL-EXAMPLE\"", "lot = \"SIM-LOT-1\"")
            .replace("te_ms = 4.0", "te_ms = 1.0");
        let store = Store::open(&data).await.expect("store");
        let stored = store
            .add_calibration(
                &Actor::Appliance,
                &NewCalibration {
                    reagent_lot: ReagentLot::parse("SIM-LOT-1").expect("lot"),
                    te_us: 1000,
                    content: CalibrationContent::toml(&text).expect("TOML"),
                    note: None,
                },
            )
            .await
            .expect("stored");
        store
            .decide_calibration(
                &Actor::Appliance,
                stored.id,
                CalibrationDecision::Approve,
                "tests",
            )
            .await
            .expect("approved");
        store.close().await;
    }
    let service = Service::start(&data, &twin, &token, &[]).await;
    let id = service.start_run("FW-1", 10.0).await;
    let run = service.settled(id).await;
    assert_eq!(run["state"], "failed", "{run}");
    let cause = run["run"]["failure_cause"].as_str().expect("a cause");
    assert!(
        cause.starts_with("board: ") && cause.contains("firmware 1.0.0 is not supported"),
        "{cause}"
    );
    assert_eq!(twin.truth().sequences_started, 0, "nothing was measured");
}
