//! Crash safety of the real binary: `ferrocount run` on the simulated board is killed with
//! SIGKILL at seeded random moments, restarted, and after every restart the database must be
//! intact (`PRAGMA integrity_check` = ok), the audit chain must verify, the runs caught in flight
//! must be `interrupted` with an audit entry, and nothing a reader had seen committed may be lost.
//! A second test stops a run with SIGTERM and checks it is recorded with its cause and the board
//! halted.
//!
//! Kill moments come from the run's observed progress, not from a clock: each kill is armed at a
//! stage — start-up, the run's start, its checks, tuning, the n-th replicate, the result —, waits
//! (bounded) until the run's progress on stderr reaches it, then waits a seeded random offset of
//! at most [`KILL_OFFSET_MAX`] and kills. So the kills land in every part of a
//! run however loaded the machine is (load only stretches the run, it does not move the kills
//! out of it). Every child process has a time-out; nothing here asserts on speed.
//!
//! The kill test runs twice: on the simulated board inside the killed process, and with the board
//! behind a board twin's socket (`ferrocount board twin`, which lives on while the appliance is
//! killed and restarted).

#[path = "support/test_board.rs"]
mod test_board;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use appliance::store::db::{DATABASE_FILE, check_file_integrity};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row as _, SqlitePool};

/// Longest any single child process may take before the test gives up on it.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// Number of SIGKILLs.
const KILLS: usize = 14;

/// Seed of the kill moments.
const KILL_SEED: u64 = 0x5EED_C1A5;

/// Longest wait between reaching a kill's stage and the kill.
const KILL_OFFSET_MAX: Duration = Duration::from_millis(25);

/// Where in a run a kill is armed: a point of its observed progress.
#[derive(Clone, Copy, Debug)]
enum KillStage {
    /// Right after the process starts (opening the store, migrations, the engine's start).
    StartUp,
    /// The first progress line that starts with this text (`ferrocount run`'s stderr).
    Line(&'static str),
    /// The n-th replicate measured and recorded (1-based, over all tubes).
    Replicate(usize),
}

/// The stages the kills are armed at, in turn (kill `i` at stage `i mod 10`). A standard run
/// measures 2 tubes × 3 replicates. Ordered so that a short series (the twin's 6 kills) already
/// holds kills mid-measurement, mid-set-up, at start-up and at the result.
const KILL_STAGES: [KillStage; 10] = [
    KillStage::Replicate(2),
    KillStage::StartUp,
    KillStage::Line("tuning"),
    KillStage::Replicate(4),
    KillStage::Line("result computed"),
    KillStage::Line("run is running"),
    KillStage::Line("check "),
    KillStage::Replicate(1),
    KillStage::Line("tuned:"),
    KillStage::Replicate(6),
];

impl KillStage {
    /// Whether `line` is this stage's line, given the replicate lines seen so far (this one
    /// included).
    fn reached_by(self, line: &str, replicates_seen: usize) -> bool {
        match self {
            Self::StartUp => true,
            Self::Line(prefix) => line.starts_with(prefix),
            Self::Replicate(n) => line.contains(": replicate ") && replicates_seen == n,
        }
    }
}

/// Waits (bounded by [`CHILD_TIMEOUT`]) until the run's progress on stderr reaches `stage`;
/// returns the lines seen. Fails the test when the run ends or stalls before it.
fn wait_for_stage(lines: &mpsc::Receiver<String>, stage: KillStage) -> Vec<String> {
    let mut seen = Vec::new();
    if let KillStage::StartUp = stage {
        return seen;
    }
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let mut replicates_seen = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if line.contains(": replicate ") {
                    replicates_seen += 1;
                }
                let reached = stage.reached_by(&line, replicates_seen);
                seen.push(line);
                if reached {
                    return seen;
                }
            }
            Err(error) => panic!(
                "the run never reached {stage:?} ({error}); its progress:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// The child's stderr, line by line, on a channel (drained to the end, so the child never blocks
/// on a full pipe).
fn progress_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // The receiver may be gone (the kill is done); keep draining.
            let _ = sender.send(line);
        }
    });
    receiver
}

fn ferrocount_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocount"));
    // A fresh instrument without QC: its runs start and their results stay on QC hold.
    command.env("FERROCOUNT_QC__POLICY", "run_but_hold");
    command
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    command
}

/// Waits for a child, killing it and failing the test when it outlives [`CHILD_TIMEOUT`].
fn wait_bounded(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + CHILD_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("polling a child process") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {CHILD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the binary to completion (bounded) and returns its output.
fn ferrocount(data_dir: &Path, args: &[&str]) -> Output {
    let mut child = ferrocount_command(data_dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Output is small; the pipes cannot fill up before the child ends.
    wait_bounded(&mut child, &format!("ferrocount {}", args.join(" ")));
    child.wait_with_output().expect("collecting the output")
}

fn run_args(mrn: &str, cells: &str, seed: &str, board: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "--approve-simulated-calibration",
        "tests: the simulated lot",
        "--patient",
        mrn,
        "--accession",
        &format!("{mrn}-A"),
        "--blood-ml",
        "7.5",
        "--sim-cells",
        cells,
        "--seed",
        seed,
        "--json",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    args.extend_from_slice(board);
    args
}

fn complete_run(data_dir: &Path, mrn: &str, seed: u64, board: &[String]) -> Output {
    let args = run_args(mrn, "20", &seed.to_string(), board);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = ferrocount(data_dir, &args);
    assert!(
        output.status.success(),
        "run {mrn} after a restart failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// What a reader sees committed: measurement and result ids, each result's measurement count.
#[derive(Debug, Default)]
struct Committed {
    measurements: BTreeSet<i64>,
    results: BTreeSet<i64>,
    results_without_measurements: Vec<i64>,
}

async fn read_only(database: &Path) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(database)
                .read_only(true),
        )
        .await
        .expect("opening the database read-only")
}

async fn committed(database: &Path) -> Committed {
    let pool = read_only(database).await;
    let ids = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_all(&pool)
                .await
                .expect("a read")
                .into_iter()
                .collect::<BTreeSet<i64>>()
        }
    };
    let answer = Committed {
        measurements: ids("SELECT id FROM measurements").await,
        results: ids("SELECT id FROM results").await,
        results_without_measurements: ids("SELECT r.id FROM results r
             WHERE NOT EXISTS (SELECT 1 FROM measurements m WHERE m.run_id = r.run_id)")
        .await
        .into_iter()
        .collect(),
    };
    pool.close().await;
    answer
}

async fn runs_in_flight(database: &Path) -> Vec<i64> {
    let pool = read_only(database).await;
    let ids = sqlx::query_scalar::<_, i64>(
        "SELECT id FROM runs WHERE state IN ('queued', 'running', 'awaiting_tube') ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("reading runs");
    pool.close().await;
    ids
}

/// A run's state and failure cause, and whether the audit trail records its move to that state.
async fn run_record(database: &Path, run_id: i64) -> (String, Option<String>, bool) {
    let pool = read_only(database).await;
    let row = sqlx::query("SELECT state, failure_cause FROM runs WHERE id = ?")
        .bind(run_id)
        .fetch_one(&pool)
        .await
        .expect("the run exists");
    let state: String = row.get("state");
    let cause: Option<String> = row.get("failure_cause");
    // The audit detail is read as the record it is (a state change `{"from", "to", ...}`).
    #[derive(serde::Deserialize)]
    struct StateChange {
        to: String,
    }
    let details: Vec<String> = sqlx::query_scalar(
        "SELECT detail_json FROM audit_log WHERE action = 'run.state' AND entity = 'run'
           AND entity_id = ?",
    )
    .bind(run_id.to_string())
    .fetch_all(&pool)
    .await
    .expect("reading the audit trail");
    let audited = details
        .iter()
        .filter_map(|detail| serde_json::from_str::<StateChange>(detail).ok())
        .filter(|change| change.to == state)
        .count();
    pool.close().await;
    (state, cause, audited == 1)
}

async fn measurements_of(database: &Path, run_id: i64) -> i64 {
    let pool = read_only(database).await;
    let n = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM measurements WHERE run_id = ?")
        .bind(run_id)
        .fetch_one(&pool)
        .await
        .expect("counting measurements");
    pool.close().await;
    n
}

fn assert_intact(database: &Path, when: &str) {
    let answer = runtime()
        .block_on(check_file_integrity(database))
        .expect("integrity check runs");
    assert_eq!(answer, vec!["ok".to_owned()], "integrity_check {when}");
}

fn assert_audit_verifies(data_dir: &Path, when: &str) {
    let output = ferrocount(data_dir, &["audit", "verify"]);
    assert!(
        output.status.success(),
        "audit verify {when}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn assert_nothing_lost(before: &Committed, after: &Committed, when: &str) {
    let lost: Vec<_> = before
        .measurements
        .difference(&after.measurements)
        .collect();
    assert!(lost.is_empty(), "measurements lost {when}: {lost:?}");
    let lost: Vec<_> = before.results.difference(&after.results).collect();
    assert!(lost.is_empty(), "results lost {when}: {lost:?}");
    assert!(
        after.results_without_measurements.is_empty(),
        "results without measurements {when}: {:?}",
        after.results_without_measurements
    );
}

#[test]
fn kill_9_at_random_moments_loses_nothing_committed_and_leaves_no_run_in_flight() {
    let dir = tempfile::tempdir().expect("temp dir");
    kill_9_at_random_moments(dir.path(), &[], KILLS);
}

/// The same with the board behind a twin's socket; fewer kills (the twin's path is slower).
#[test]
fn kill_9_with_the_board_behind_the_twin_socket_loses_nothing_committed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut board = test_board::TestBoard::start(dir.path(), &[]);
    // The killed runs hold simulation truth (their virtual tubes): the twin only.
    let Some(twin) = board.twin("kill -9 behind the twin") else {
        return;
    };
    let data = dir.path().join("data");
    kill_9_at_random_moments(
        &data,
        &["--board".to_owned(), twin.board_flag()],
        TWIN_KILLS,
    );
}

/// Number of SIGKILLs with the board behind the twin.
const TWIN_KILLS: usize = 6;

fn kill_9_at_random_moments(data: &Path, board: &[String], kills: usize) {
    let database = data.join(DATABASE_FILE);
    let rt = runtime();

    // A fresh appliance calibrates its simulated lot (approved in the console's name) first.
    complete_run(data, "CRASH-0", 1, board);

    let mut rng = ChaCha8Rng::seed_from_u64(KILL_SEED);
    let mut kills_in_flight = 0;
    let mut kills_with_measurements_in_flight = 0;
    for kill in 0..kills {
        let mrn = format!("KILL-{kill}");
        let args = run_args(
            &mrn,
            &format!("{}", 5 * kill),
            &format!("{}", 100 + kill),
            board,
        );
        let stage = KILL_STAGES[kill % KILL_STAGES.len()];
        let offset = KILL_OFFSET_MAX.mul_f64(rng.random_range(0.0..1.0));
        let mut child =
            ferrocount_command(data, &args.iter().map(String::as_str).collect::<Vec<_>>())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the binary starts");
        let lines = progress_lines(&mut child);
        wait_for_stage(&lines, stage);
        std::thread::sleep(offset);
        let delay = format!("{offset:?} after {stage:?}");
        // What a reader sees committed just before the kill is a lower bound of what was.
        let before = rt.block_on(committed(&database));
        child.kill().expect("SIGKILL");
        let status = wait_bounded(&mut child, "the killed run");
        let when = format!("after kill {kill} at {delay}");

        // Straight after the crash, before anything reopens it for writing.
        assert_intact(&database, &when);
        let after_kill = rt.block_on(committed(&database));
        assert_nothing_lost(&before, &after_kill, &when);
        let in_flight = rt.block_on(runs_in_flight(&database));
        eprintln!("kill {kill} at {delay}: runs in flight {in_flight:?}");
        if !in_flight.is_empty() {
            kills_in_flight += 1;
            let measured: i64 = in_flight
                .iter()
                .map(|&run_id| rt.block_on(measurements_of(&database, run_id)))
                .sum();
            if measured > 0 {
                kills_with_measurements_in_flight += 1;
            }
        }

        // Restart: the next run's engine start marks what was in flight `interrupted`.
        complete_run(data, &format!("AFTER-{kill}"), 1000 + kill as u64, board);
        let when = format!("after restart {kill} (killed at {delay}, exit {status:?})");
        assert_intact(&database, &when);
        assert_audit_verifies(data, &when);
        let after_restart = rt.block_on(committed(&database));
        assert_nothing_lost(&after_kill, &after_restart, &when);
        for run_id in in_flight {
            let (state, cause, audited) = rt.block_on(run_record(&database, run_id));
            assert_eq!(state, "interrupted", "run {run_id} {when}");
            assert!(
                cause.is_some_and(|c| !c.is_empty()),
                "run {run_id} {when}: no cause recorded"
            );
            assert!(
                audited,
                "run {run_id} {when}: no audit entry for interrupted"
            );
        }
        assert!(
            rt.block_on(runs_in_flight(&database)).is_empty(),
            "runs still in flight {when}"
        );
    }
    eprintln!(
        "{kills_in_flight} of {kills} kills caught a run in flight, {kills_with_measurements_in_flight} after a measurement"
    );
    // Most stages lie between the run's start and its result; a kill a few milliseconds after
    // one of them finds the run in flight (load only stretches the run, which makes that more
    // likely, not less).
    assert!(
        kills_in_flight >= kills / 3,
        "only {kills_in_flight} of {kills} kills caught a run in flight"
    );
    assert!(
        kills_with_measurements_in_flight >= 1,
        "no kill caught a run after its first committed measurement"
    );
}

#[test]
fn sigterm_during_a_run_records_it_interrupted_and_halts_the_board() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();
    let database = data.join(DATABASE_FILE);
    let rt = runtime();
    complete_run(data, "TERM-0", 1, &[]);

    // A long run (every optional tube, ten replicates); SIGTERM once the control tube is being
    // measured.
    let mut child = ferrocount_command(
        data,
        &[
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--patient",
            "TERM-1",
            "--accession",
            "TERM-1-A474",
            "--blood-ml",
            "7.5",
            "--sim-cells",
            "30",
            "--replicates",
            "10",
            "--tube",
            "cd45",
            "--tube",
            "igg",
            "--tube",
            "epcam",
            "--tube",
            "muc1",
            "--tube",
            "her2",
            "--tube",
            "egfr",
            "--json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let pid = child.id().to_string();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut signalled = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !signalled && line.starts_with("control: replicate 1 ") {
                let sent = Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .expect("kill(1) runs");
                assert!(sent.success(), "kill -TERM {pid}");
                signalled = true;
            }
            lines.push(line);
        }
        (signalled, lines)
    });
    let status = wait_bounded(&mut child, "the run stopped by SIGTERM");
    let (signalled, lines) = reader.join().expect("stderr reader");
    let stdout = child
        .stdout
        .take()
        .map(|mut out| {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut text);
            text
        })
        .unwrap_or_default();
    assert!(
        signalled,
        "the run never measured; stderr:\n{}",
        lines.join("\n")
    );
    assert!(
        !status.success(),
        "a run stopped by SIGTERM reports failure; stdout:\n{stdout}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("SIGTERM received")),
        "stderr:\n{}",
        lines.join("\n")
    );
    let answer: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    let run_id = answer["run_id"].as_i64().expect("run_id");
    assert_eq!(answer["state"], "interrupted", "{answer}");

    let (state, cause, audited) = rt.block_on(run_record(&database, run_id));
    assert_eq!(state, "interrupted");
    let cause = cause.expect("a cause is recorded");
    assert!(cause.contains("shut down"), "cause: {cause}");
    assert!(audited, "no audit entry for the interrupted run");
    let halted: i64 = rt.block_on(async {
        let pool = read_only(&database).await;
        let n = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM instrument_log WHERE message LIKE '%board halted%'
               AND id > (SELECT MAX(id) FROM instrument_log WHERE message LIKE '%engine started%')",
        )
        .fetch_one(&pool)
        .await
        .expect("reading the instrument log");
        pool.close().await;
        n
    });
    assert_eq!(
        halted, 1,
        "the shutdown after SIGTERM logs the board halted"
    );
    // What was measured before the signal is kept.
    let measured = rt.block_on(measurements_of(&database, run_id));
    assert!(measured >= 1, "the readings before SIGTERM are kept");
    assert_intact(&database, "after SIGTERM");
    assert_audit_verifies(data, "after SIGTERM");
}
