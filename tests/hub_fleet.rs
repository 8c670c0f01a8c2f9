//! Three appliances and one hub as real processes (issue 15): `ferrocount demo` seeds three
//! appliances' data directories, `ferrocount hub` serves over HTTPS on a real PostgreSQL
//! server (`HUB_TEST_DATABASE_URL`, started by scripts/test), each appliance enrols with
//! `ferrocount enrol` and syncs from `ferrocount serve`. On the way:
//!
//! - **the hub killed mid-ingest** (kill -9 while the first appliances' batches arrive) and
//!   started again on the same address: the appliances retry and carry on;
//! - **an appliance offline and back**: the third is started while the hub is down (it cannot
//!   reach it) and catches up when the hub is back;
//! - **the same messages delivered twice**: the first appliance is stopped and its record of
//!   the hub's last acknowledgements is lost (as in a crash between the hub's commit and the
//!   appliance's); started again, it resends them and the hub acknowledges them without
//!   storing them again;
//! - **a revoked appliance refused**: the third is revoked with `ferrocount hub revoke`; started
//!   again, its sender is refused, says so and stops; nothing more of it is stored.
//!
//! Afterwards every message each appliance queued is on the hub exactly once with the same
//! content (the revoked one's: up to its revocation), every released result and raw train is
//! bit-identical to the appliance's own rows (read with SQL of this test, not the sync code),
//! and `ferrocount audit verify` and `ferrocount hub audit verify` pass.
//!
//! Every wait is bounded; nothing asserts on speed.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use appliance::store::Store;
use hub_protocol::audit_chain::sha256_hex;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Row};

/// Longest wait for anything (a process to start or stop, the fleet to catch up).
const WAIT: Duration = Duration::from_secs(120);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);

fn ferrocount() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocount"));
    command.env("RUST_BACKTRACE", "0");
    command
}

/// Runs a command that ends by itself and returns its output, failing the test with its
/// words when it does not succeed.
fn succeeds(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{name} {}", child.id());
}

/// Waits (bounded) for `child` to exit.
fn wait_exit(child: &mut Child, what: &str) {
    let deadline = Instant::now() + WAIT;
    while child.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "{what} did not exit in time");
        std::thread::sleep(POLL);
    }
}

/// A free TCP port on 127.0.0.1 (the hub is started twice on the same one).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The test server's URL (scripts/test sets it).
fn server_url() -> String {
    match std::env::var("HUB_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "HUB_TEST_DATABASE_URL is not set: this test needs a PostgreSQL server. Run it \
             through scripts/test, or start one with `scripts/pg-test-cluster start DIR` and \
             export the URL it prints."
        ),
    }
}

/// A new, empty database on the test server: its URL.
async fn fresh_database_url() -> String {
    let url = server_url();
    let mut admin = PgConnection::connect(&url)
        .await
        .expect("connecting to the test server");
    let name = format!(
        "hub_fleet_{}_{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000
    );
    // The name is made here from digits only.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("creating the test database");
    admin.close().await.expect("closing");
    let (server, _) = url.rsplit_once('/').expect("the URL names a database");
    format!("{server}/{name}")
}

/// The hub process, on a fixed address so that it can be killed and started again there.
struct HubProcess {
    child: Child,
    database_url: String,
    config: PathBuf,
    port: u16,
    log: PathBuf,
}

impl HubProcess {
    fn start(database_url: &str, config: &Path, port: u16, log: &Path) -> Self {
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("hub log");
        let mut child = ferrocount()
            .args(["hub", "--database-url", database_url, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the hub starts");
        // It says where it listens once it does.
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = lines_rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("the hub said nothing; its log: {}", read(log)));
        assert!(
            line.starts_with(&format!("hub listening on https://127.0.0.1:{port}")),
            "{line}"
        );
        Self {
            child,
            database_url: database_url.to_owned(),
            config: config.to_owned(),
            port,
            log: log.to_owned(),
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn kill_9(&mut self) {
        signal(&self.child, "KILL");
        wait_exit(&mut self.child, "the hub after kill -9");
    }

    fn restart(&mut self) {
        *self = Self::start(&self.database_url, &self.config, self.port, &self.log);
    }

    fn stop(&mut self) {
        signal(&self.child, "TERM");
        wait_exit(&mut self.child, "the hub after SIGTERM");
    }

    /// `ferrocount hub SUBCOMMAND …` on this hub's database.
    fn console(&self, args: &[&str]) -> String {
        let output = succeeds(
            ferrocount()
                .arg("hub")
                .args(args)
                .args(["--database-url", &self.database_url]),
            &format!("ferrocount hub {}", args.join(" ")),
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One appliance: its data directory, serial and (while it runs) its `serve` process.
struct Appliance {
    data_dir: PathBuf,
    serial: String,
    log: PathBuf,
    serve: Option<Child>,
}

impl Appliance {
    fn database(&self) -> PathBuf {
        self.data_dir.join(appliance::store::db::DATABASE_FILE)
    }

    fn start(&mut self) {
        assert!(self.serve.is_none(), "{} runs already", self.serial);
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("appliance log");
        let child = ferrocount()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&self.data_dir)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("serve starts");
        self.serve = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.serve.take() {
            signal(&child, "TERM");
            wait_exit(
                &mut child,
                &format!("{}'s serve after SIGTERM", self.serial),
            );
        }
    }

    /// `(last queued, last acknowledged)` of its hub sync queue (0 before the first).
    async fn sync_state(&self) -> (i64, i64) {
        let pool = read_only(&self.database()).await;
        let row = sqlx::query(
            "SELECT COALESCE(MAX(sequence), 0), \
                    COALESCE(MAX(CASE WHEN acked_at IS NOT NULL THEN sequence END), 0) \
               FROM hub_sync",
        )
        .fetch_one(&pool)
        .await
        .expect("the sync queue");
        pool.close().await;
        (row.get(0), row.get(1))
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(mut child) = self.serve.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
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
        .expect("opening an appliance's database")
}

/// The hub's last sequence of each appliance, by serial (0 before the first).
async fn hub_sequences(hub: &PgPool, serial: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(MAX(m.sequence), 0) FROM appliances a \
           LEFT JOIN ingested_messages m ON m.appliance_id = a.id WHERE a.serial = $1",
    )
    .bind(serial)
    .fetch_one(hub)
    .await
    .expect("the hub's sequences")
}

/// Waits (bounded) until the hub holds everything `appliance` queued and it knows so.
async fn wait_synced(hub: &PgPool, appliance: &Appliance) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (queued, acked) = appliance.sync_state().await;
        let held = hub_sequences(hub, &appliance.serial).await;
        if queued > 0 && acked == queued && held >= queued {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} not synced in time: queued {queued}, acknowledged {acked}, the hub holds \
             {held}; its log:\n{}",
            appliance.serial,
            read(&appliance.log)
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The content the hub holds of `serial`'s messages: `(sequence, message id, content hash)`.
async fn held(hub: &PgPool, serial: &str) -> Vec<(i64, String, String)> {
    sqlx::query_as::<_, (i64, String, String)>(
        "SELECT m.sequence, m.message_id, m.content_sha256 FROM ingested_messages m \
           JOIN appliances a ON a.id = m.appliance_id WHERE a.serial = $1 ORDER BY m.sequence",
    )
    .bind(serial)
    .fetch_all(hub)
    .await
    .expect("the hub's messages")
}

/// The same of every message the appliance queued, rebuilt from its records.
async fn queued(appliance: &Appliance) -> Vec<(i64, String, String)> {
    let store = Store::open(&appliance.data_dir)
        .await
        .expect("opening the appliance's store");
    let mut messages = Vec::new();
    loop {
        let from = messages.len() as u64 + 1;
        let batch = store
            .hub_sync_batch(
                &appliance.serial,
                from,
                appliance::store::hub_sync::MAX_SYNC_BATCH,
            )
            .await
            .expect("a batch");
        if batch.is_empty() {
            break;
        }
        messages.extend(batch.into_iter().map(|message| {
            (
                i64::try_from(message.sequence).expect("a sequence"),
                message.id.as_str().to_owned(),
                sha256_hex(&message.body.canonical_bytes()),
            )
        }));
    }
    store.close().await;
    messages
}

/// A released result as both sides store it: the numbers as bits, the release signature.
type ResultRow = (
    i64,
    i64,
    u64,
    u64,
    u64,
    String,
    Option<String>,
    String,
    String,
);

async fn released_on_appliance(appliance: &Appliance) -> Vec<ResultRow> {
    let pool = read_only(&appliance.database()).await;
    let rows = sqlx::query(
        "SELECT r.run_id, r.version, r.per_7_5ml, r.per_7_5ml_ci95_low, r.per_7_5ml_ci95_high, \
                r.category, r.call, s.printed_name, s.signed_at \
           FROM results r JOIN result_signatures s ON s.result_id = r.id \
          WHERE s.meaning = 'release' ORDER BY r.run_id, r.version",
    )
    .fetch_all(&pool)
    .await
    .expect("the appliance's released results");
    pool.close().await;
    rows.iter()
        .map(|row| {
            (
                row.get(0),
                row.get(1),
                row.get::<f64, _>(2).to_bits(),
                row.get::<f64, _>(3).to_bits(),
                row.get::<f64, _>(4).to_bits(),
                row.get(5),
                row.get(6),
                row.get(7),
                row.get(8),
            )
        })
        .collect()
}

async fn released_on_hub(hub: &PgPool, serial: &str) -> Vec<ResultRow> {
    let rows = sqlx::query(
        "SELECT r.run_id, r.version::BIGINT, r.per_7_5ml, r.per_7_5ml_ci95_low, \
                r.per_7_5ml_ci95_high, r.category, r.call, s.printed_name, s.signed_at \
           FROM released_results r \
           JOIN appliances a ON a.id = r.appliance_id \
           JOIN result_signatures s ON s.message_id = r.message_id \
          WHERE a.serial = $1 AND s.meaning = 'release' ORDER BY r.run_id, r.version",
    )
    .bind(serial)
    .fetch_all(hub)
    .await
    .expect("the hub's released results");
    rows.iter()
        .map(|row| {
            (
                row.get(0),
                row.get(1),
                row.get::<f64, _>(2).to_bits(),
                row.get::<f64, _>(3).to_bits(),
                row.get::<f64, _>(4).to_bits(),
                row.get(5),
                row.get(6),
                row.get(7),
                row.get(8),
            )
        })
        .collect()
}

/// Every raw train: `(measurement id, codec, compressed bytes)`.
async fn trains_on_appliance(appliance: &Appliance) -> Vec<(i64, String, Vec<u8>)> {
    let pool = read_only(&appliance.database()).await;
    let rows = sqlx::query_as::<_, (i64, String, Vec<u8>)>(
        "SELECT id, train_codec, train FROM measurements ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("the appliance's trains");
    pool.close().await;
    rows
}

async fn trains_on_hub(hub: &PgPool, serial: &str) -> Vec<(i64, String, Vec<u8>)> {
    sqlx::query_as::<_, (i64, String, Vec<u8>)>(
        "SELECT m.measurement_id, m.train_codec, m.train FROM measurements m \
           JOIN appliances a ON a.id = m.appliance_id WHERE a.serial = $1 \
          ORDER BY m.measurement_id",
    )
    .bind(serial)
    .fetch_all(hub)
    .await
    .expect("the hub's trains")
}

/// Loses the appliance's record of the hub's acknowledgement of its last `count` messages
/// (its `serve` is stopped), as a crash between the hub's commit and its own would.
async fn lose_acknowledgements(appliance: &Appliance, count: i64) {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(appliance.database()))
        .await
        .expect("opening the appliance's database");
    sqlx::query(
        "UPDATE hub_sync SET acked_at = NULL \
          WHERE sequence > (SELECT MAX(sequence) FROM hub_sync) - ?",
    )
    .bind(count)
    .execute(&pool)
    .await
    .expect("forgetting acknowledgements");
    pool.close().await;
}

/// How many messages the appliance's sender says the hub acknowledged again (its log's
/// `repeated=N`), in the log's lines after the first `skip` bytes.
fn repeated_in_log(log: &str, skip: usize) -> u64 {
    log[skip..]
        .lines()
        .filter(|line| line.contains("hub sync: sent"))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix("repeated="))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_appliances_sync_to_one_hub_through_a_hub_crash_an_outage_a_duplicate_and_a_revocation()
 {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = fresh_database_url().await;

    // The hub's certificate, and its configuration.
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("certificate");
    let cert = dir.path().join("hub-cert.pem");
    let key = dir.path().join("hub-key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("writing the certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("writing the key");
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .expect("writing the configuration");

    // Three appliances, each with its own months of history (run by the simulated board).
    let mut appliances: Vec<Appliance> = (1..=3)
        .map(|k| Appliance {
            data_dir: dir.path().join(format!("appliance-{k}")),
            serial: format!("FC-TEST-{k:04}"),
            log: dir.path().join(format!("appliance-{k}.log")),
            serve: None,
        })
        .collect();
    let seeding: Vec<Child> = appliances
        .iter()
        .enumerate()
        .map(|(k, appliance)| {
            ferrocount()
                .args(["demo", "--seed-only", "--patients", "3", "--months", "3"])
                .args(["--seed", &(k + 11).to_string(), "--data-dir"])
                .arg(&appliance.data_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("demo starts")
        })
        .collect();
    for child in seeding {
        let output = child.wait_with_output().expect("demo runs");
        assert!(
            output.status.success(),
            "demo: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // The hub, and each appliance enrolled with a one-time code.
    let mut hub = HubProcess::start(
        &database_url,
        &config,
        free_port(),
        &dir.path().join("hub.log"),
    );
    for appliance in &appliances {
        let issued = hub.console(&["enrolment-code", "--name", &appliance.serial]);
        let code = issued
            .split_whitespace()
            .find(|word| word.len() == 19 && word.matches('-').count() == 3)
            .unwrap_or_else(|| panic!("no code in {issued:?}"))
            .to_owned();
        succeeds(
            ferrocount()
                .args(["enrol", "--hub", &hub.url(), "--code", &code])
                .args(["--serial", &appliance.serial, "--ca-file"])
                .arg(&cert)
                .arg("--data-dir")
                .arg(&appliance.data_dir),
            "ferrocount enrol",
        );
    }
    // The hub's own people are added on its console, the password from standard input.
    let mut add = ferrocount()
        .args(["hub", "user", "add", "lena", "--role", "lab-manager"])
        .args([
            "--display-name",
            "Lena Lab",
            "--database-url",
            &database_url,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hub user add starts");
    std::io::Write::write_all(
        &mut add.stdin.take().expect("piped stdin"),
        b"a long lab password\n",
    )
    .expect("writing the password");
    let added = add.wait_with_output().expect("hub user add runs");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let users = hub.console(&["user", "list"]);
    assert_eq!(users, "lena\tLab manager\tLena Lab\n");

    let pool = PgPool::connect_with(PgConnectOptions::from_str(&database_url).expect("URL"))
        .await
        .expect("reading the hub's database");

    // Two appliances start sending; the hub is killed as soon as their first batch is in.
    appliances[0].start();
    appliances[1].start();
    let deadline = Instant::now() + WAIT;
    loop {
        let held = hub_sequences(&pool, &appliances[0].serial).await
            + hub_sequences(&pool, &appliances[1].serial).await;
        if held > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing reached the hub in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hub.kill_9();
    let mut unfinished = 0;
    for appliance in &appliances[..2] {
        let (queued, _) = appliance.sync_state().await;
        if hub_sequences(&pool, &appliance.serial).await < queued {
            unfinished += 1;
        }
    }
    assert!(
        unfinished > 0,
        "the hub was killed after both appliances had sent everything: not mid-ingest"
    );

    // While the hub is down the third appliance starts: it cannot reach the hub.
    appliances[2].start();
    let deadline = Instant::now() + WAIT;
    while !read(&appliances[2].log).contains("hub sync: will retry") {
        assert!(
            Instant::now() < deadline,
            "the third appliance never tried the hub:\n{}",
            read(&appliances[2].log)
        );
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(hub_sequences(&pool, &appliances[2].serial).await, 0);

    // The hub comes back on the same address; everyone catches up.
    hub.restart();
    for appliance in &appliances {
        wait_synced(&pool, appliance).await;
    }

    // The first appliance loses its record of the hub's last 60 acknowledgements; started
    // again, it sends those messages again and the hub stores none of them twice.
    appliances[0].stop();
    let before = held(&pool, &appliances[0].serial).await;
    let log_before = read(&appliances[0].log).len();
    lose_acknowledgements(&appliances[0], 60).await;
    appliances[0].start();
    wait_synced(&pool, &appliances[0]).await;
    appliances[0].stop();
    let after = held(&pool, &appliances[0].serial).await;
    assert_eq!(
        after[..before.len()],
        before[..],
        "what the hub held is unchanged"
    );
    // A restart queues one heartbeat; nothing else is new.
    assert!(
        after.len() - before.len() <= 2,
        "{} new",
        after.len() - before.len()
    );
    // The hub acknowledged the resent messages it held (it answers with the last it holds,
    // so the sender stops resending after the first batch).
    let log = read(&appliances[0].log);
    let repeated = repeated_in_log(&log, log_before);
    assert!(
        (1..=60).contains(&repeated),
        "the hub acknowledged {repeated} resent messages:\n{log}"
    );

    // The third appliance is revoked; started again, it is refused and stops sending.
    let revoked_at = held(&pool, &appliances[2].serial).await;
    hub.console(&[
        "revoke",
        "--serial",
        &appliances[2].serial,
        "--reason",
        "replaced after a drop test",
    ]);
    appliances[2].stop();
    appliances[2].start();
    let deadline = Instant::now() + WAIT;
    while !read(&appliances[2].log).contains("hub sync stopped") {
        assert!(
            Instant::now() < deadline,
            "the revoked appliance's sender did not stop:\n{}",
            read(&appliances[2].log)
        );
        tokio::time::sleep(POLL).await;
    }
    let log = read(&appliances[2].log);
    assert!(
        log.contains("was revoked on the hub") && log.contains("replaced after a drop test"),
        "the appliance says it was revoked and why:\n{log}"
    );
    appliances[2].stop();
    assert_eq!(
        held(&pool, &appliances[2].serial).await,
        revoked_at,
        "nothing of a revoked appliance is stored"
    );

    for appliance in &mut appliances {
        appliance.stop();
    }
    hub.stop();

    // Every message exactly once with the appliance's content; the revoked one's up to its
    // revocation, the rest (its heartbeat after the restart) left on the appliance.
    for appliance in &appliances {
        let queued = queued(appliance).await;
        let held = held(&pool, &appliance.serial).await;
        assert!(!held.is_empty());
        assert_eq!(
            queued[..held.len()],
            held[..],
            "{}: the hub holds exactly what it queued",
            appliance.serial
        );
        let left = queued.len() - held.len();
        if appliance.serial == appliances[2].serial {
            assert!(left >= 1, "the revoked appliance's heartbeat stays unsent");
        } else {
            assert_eq!(left, 0, "{}: everything sent", appliance.serial);
        }

        // Released results and raw trains, bit for bit, against the appliance's own rows.
        let released = released_on_appliance(appliance).await;
        assert!(
            released.len() >= 3,
            "{}: the demo released results",
            appliance.serial
        );
        assert_eq!(
            released_on_hub(&pool, &appliance.serial).await,
            released,
            "{}",
            appliance.serial
        );
        let trains = trains_on_appliance(appliance).await;
        assert!(!trains.is_empty());
        assert!(
            trains_on_hub(&pool, &appliance.serial).await == trains,
            "{}: raw trains bit-identical",
            appliance.serial
        );

        let verified = succeeds(
            ferrocount()
                .args(["audit", "verify", "--data-dir"])
                .arg(&appliance.data_dir),
            "ferrocount audit verify",
        );
        assert!(String::from_utf8_lossy(&verified.stdout).contains("audit trail intact"));
    }
    let verified = hub.console(&["audit", "verify"]);
    assert!(verified.contains("hub audit trail intact"), "{verified}");
    pool.close().await;
}
