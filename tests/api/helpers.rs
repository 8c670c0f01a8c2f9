//! `spawn_app()`: the whole web face on a temporary data directory, port 0, the simulated board
//! with an instant clock, and one user per role (plus their API tokens).

use std::net::SocketAddr;

use appliance::assembly::{ApplianceBuilder, Simulation};
use appliance::config::ApplianceConfig;
use appliance::engine::EngineHandle;
use appliance::store::users::{NewPassword, NewUser, Role, Username};
use appliance::store::{Actor, Store};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Password of every test user.
pub const PASSWORD: &str = "correct horse battery";

/// The three roles and their user names.
pub const ROLES: [(Role, &str); 3] = [
    (Role::Operator, "olga"),
    (Role::Clinician, "claire"),
    (Role::LabAdmin, "lars"),
];

/// A running application.
pub struct TestApp {
    pub address: SocketAddr,
    pub store: Store,
    pub engine: EngineHandle,
    pub client: reqwest::Client,
    /// Bearer tokens by role: operator, clinician, lab-admin.
    pub tokens: [String; 3],
    _data_dir: tempfile::TempDir,
    /// The end-to-end tests' board (a twin process, killed on drop, or a real board) and the
    /// directory of the twin's socket, when the application is not on the in-process board.
    _board: Option<(crate::test_board::TestBoard, tempfile::TempDir)>,
}

/// A signed-in browser session.
#[derive(Debug)]
pub struct BrowserSession {
    pub cookie: String,
    pub csrf: String,
}

/// Who sends a request.
#[derive(Clone, Copy, Debug)]
pub enum As<'a> {
    Nobody,
    Bearer(&'a str),
    Browser(&'a BrowserSession),
    BrowserWithoutCsrf(&'a BrowserSession),
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The application with its board behind a board twin's socket: `ferrocount board twin` in its
/// own process (seed 1, as the in-process board).
pub async fn spawn_app_on_twin() -> TestApp {
    let socket_dir = tempfile::tempdir().expect("temporary directory");
    let twin = crate::test_board::TwinProcess::spawn(
        &socket_dir.path().join("twin.sock"),
        &["--seed", "1"],
    );
    spawn_app_on(crate::test_board::TestBoard::Twin(twin), socket_dir).await
}

/// The application on the end-to-end tests' board (`test_board::TestBoard`): a board twin in its
/// own process, or the real board `FERROCOUNT_TEST_SPI` names (spidev only: with no data-ready
/// line the driver polls the board's status).
pub async fn spawn_app_on_test_board() -> TestApp {
    let socket_dir = tempfile::tempdir().expect("temporary directory");
    let board = crate::test_board::TestBoard::start(socket_dir.path(), &["--seed", "1"]);
    spawn_app_on(board, socket_dir).await
}

async fn spawn_app_on(
    board: crate::test_board::TestBoard,
    socket_dir: tempfile::TempDir,
) -> TestApp {
    use crate::test_board::TestBoard;
    let choice = match &board {
        TestBoard::Twin(twin) => appliance::config::BoardChoice::Twin(Some(twin.address())),
        TestBoard::Hardware(_) => appliance::config::BoardChoice::Spi,
    };
    let device = match &board {
        TestBoard::Twin(_) => None,
        TestBoard::Hardware(device) => Some(std::path::PathBuf::from(device)),
    };
    let mut app = spawn_app_with(|config| {
        config.board = choice;
        config.spi.device = device;
    })
    .await;
    app._board = Some((board, socket_dir));
    app
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut ApplianceConfig)) -> TestApp {
    let app = spawn_fresh_app(adjust).await;
    record_passing_qc(&app.store).await;
    approve_simulated_calibration(&app).await;
    app
}

/// The lab admin approved the simulated lot's calibration: made by the engine's simulated
/// dilution series (once per test binary and echo time; later apps store the same document),
/// then approved in the appliance's name, so that patient runs may start. (Tests of the
/// approval itself start from [`spawn_fresh_app`].)
pub async fn approve_simulated_calibration(app: &TestApp) -> i64 {
    use appliance::store::calibrations::{
        CalibrationContent, CalibrationDecision, NewCalibration, ReagentLot,
    };
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static MADE: OnceLock<Mutex<HashMap<u32, String>>> = OnceLock::new();
    let te_us = app.engine.config().te_us();
    let known = MADE
        .get_or_init(Default::default)
        .lock()
        .expect("cache")
        .get(&te_us)
        .cloned();
    let stored = match known {
        Some(text) => app
            .store
            .add_calibration(
                &Actor::Appliance,
                &NewCalibration {
                    reagent_lot: ReagentLot::parse("SIM-LOT-1").expect("lot"),
                    te_us,
                    content: CalibrationContent::toml(&text).expect("TOML"),
                    note: Some("the simulated lot's dilution series (tests)".into()),
                },
            )
            .await
            .expect("calibration stored"),
        None => {
            let made = app
                .engine
                .calibrate_simulated_lot()
                .await
                .expect("the simulated lot calibrates");
            MADE.get_or_init(Default::default)
                .lock()
                .expect("cache")
                .insert(te_us, made.content.text.clone());
            made
        }
    };
    app.store
        .decide_calibration(
            &Actor::Appliance,
            stored.id,
            CalibrationDecision::Approve,
            "tests: the simulated lot's calibration",
        )
        .await
        .expect("approved");
    stored.id.0
}

/// A fresh instrument: no QC material, no QC value (the QC gate refuses patient runs), no
/// calibration (the run start refuses patient runs).
pub async fn spawn_fresh_app(adjust: impl FnOnce(&mut ApplianceConfig)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut config = ApplianceConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: data_dir.path().to_owned(),
        ..ApplianceConfig::default()
    };
    adjust(&mut config);
    // The one wiring point, as `ferrocount serve` uses it; the simulated board's seed fixed.
    let appliance = ApplianceBuilder::new(config.clone())
        .simulation(Simulation {
            seed: Some(1),
            ..Simulation::default()
        })
        .build()
        .await
        .expect("appliance assembles");
    let (store, engine) = (appliance.store.clone(), appliance.engine.clone());
    let application = web_ui::Application::build(&config, store.clone(), engine.clone())
        .await
        .expect("application binds");
    let address = application.local_addr();
    tokio::spawn(application.run_until(std::future::pending()));
    let mut tokens = Vec::new();
    for (role, name) in ROLES {
        let user = store
            .add_user(
                &Actor::Appliance,
                NewUser {
                    username: Username::parse(name).expect("name"),
                    display_name: format!("{name} Tester"),
                    role,
                    password: NewPassword::parse(PASSWORD).expect("password"),
                },
            )
            .await
            .expect("user added");
        let (secret, _) = store
            .create_api_token(&Actor::Appliance, user.id, "tests")
            .await
            .expect("token");
        tokens.push(secret);
    }
    TestApp {
        address,
        store,
        engine,
        client: reqwest::Client::new(),
        tokens: tokens.try_into().expect("three tokens"),
        _data_dir: data_dir,
        _board: None,
    }
}

/// The lab ran its controls this morning: a passing negative and positive control today for the
/// simulated reagent lot, so that the QC gate lets patient runs start and be released. (Tests of
/// the gate itself start from [`spawn_fresh_app`].)
pub async fn record_passing_qc(store: &Store) {
    record_passing_qc_for(store, "SIM-LOT-1").await;
}

/// A negative and a positive control material with a lot and its target each (the set-up
/// checklist's QC steps), and a passing value of each today for `reagent_lot`.
pub async fn record_passing_qc_for(store: &Store, reagent_lot: &str) {
    use appliance::store::calibrations::ReagentLot;
    use appliance::store::qc::{ControlLevel, NewQcResult, QcMaterialKind, QcVerdict};
    let actor = Actor::Appliance;
    let expires = time::Date::from_calendar_date(2099, time::Month::December, 31).expect("date");
    for (name, level, value) in [
        ("Negative control", ControlLevel::Negative, 0.0),
        ("Positive control", ControlLevel::Positive, 50.0),
    ] {
        let name = format!("{name} (tests, {reagent_lot})");
        let material = store
            .add_qc_material(&actor, &name, QcMaterialKind::Control, Some(level), "cells")
            .await
            .expect("control material");
        let lot = store
            .add_qc_lot(
                &actor,
                material.id,
                &format!("QC-{level}-{reagent_lot}"),
                expires,
            )
            .await
            .expect("control lot");
        store
            .set_qc_target(
                &actor,
                lot.id,
                value,
                if value > 0.0 { 5.0 } else { 0.5 },
                appliance::store::qc::TargetSource::Manufacturer,
                None,
            )
            .await
            .expect("control target");
        store
            .record_qc_result(
                &actor,
                &NewQcResult {
                    lot_id: lot.id,
                    value,
                    status: QcVerdict::Pass,
                    violations: Vec::new(),
                    measurement_id: None,
                    reagent_lot: Some(ReagentLot::parse(reagent_lot).expect("lot")),
                    measured_at: appliance::store::Timestamp::now(),
                    comment: None,
                },
            )
            .await
            .expect("control value");
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub fn token(&self, role: Role) -> &str {
        let index = ROLES.iter().position(|(r, _)| *r == role).expect("role");
        &self.tokens[index]
    }

    /// Sends a request; the body is JSON when given.
    pub async fn send(
        &self,
        who: As<'_>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        request = match who {
            As::Nobody => request,
            As::Bearer(token) => request.bearer_auth(token),
            As::Browser(session) => request
                .header("cookie", &session.cookie)
                .header("x-csrf-token", &session.csrf),
            As::BrowserWithoutCsrf(session) => request.header("cookie", &session.cookie),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    /// Sends raw bytes with a content type.
    pub async fn send_raw(
        &self,
        token: &str,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Signs in through the API.
    pub async fn sign_in(&self, username: &str, password: &str) -> BrowserSession {
        let response = self
            .send(
                As::Nobody,
                Method::POST,
                "/api/v1/session",
                Some(&serde_json::json!({ "username": username, "password": password })),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "sign-in of {username}"
        );
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let body: Value = response.json().await.expect("JSON");
        BrowserSession {
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf token").to_owned(),
        }
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }
}

/// Asserts a problem+json answer with this status whose detail (or field) mentions `names`.
pub async fn assert_problem(response: reqwest::Response, status: StatusCode, names: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = response.json().await.expect("problem JSON");
    assert_eq!(problem["status"], status.as_u16());
    assert!(problem["type"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
    let detail = problem["detail"].as_str().unwrap_or("").to_owned();
    let field = problem["field"].as_str().unwrap_or("").to_owned();
    assert!(
        detail.contains(names) || field.contains(names),
        "problem should name {names:?}: {problem}"
    );
    problem
}

// ---- Pages as a browser uses them ------------------------------------------------------------

/// A client that shows redirects instead of following them (pages answer with 303s).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `Location` of a redirect, or "".
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// GETs a page with the session cookie (or none); status and body.
pub async fn get_page(
    app: &TestApp,
    session: Option<&BrowserSession>,
    path: &str,
) -> (StatusCode, String) {
    let mut request = client().get(app.url(path));
    if let Some(session) = session {
        request = request.header("cookie", &session.cookie);
    }
    let response = request.send().await.expect("GET");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

/// How a form post carries its CSRF token.
#[derive(Clone, Copy, Debug)]
pub enum Csrf {
    Right,
    Missing,
    Wrong,
}

/// POSTs a form as the browser would (the session's token in `csrf_token`).
pub async fn post_form(
    app: &TestApp,
    session: &BrowserSession,
    path: &str,
    fields: &[(&str, &str)],
    csrf: Csrf,
) -> reqwest::Response {
    let mut form: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match csrf {
        Csrf::Right => form.push(("csrf_token".into(), session.csrf.clone())),
        Csrf::Wrong => form.push(("csrf_token".into(), "0".repeat(session.csrf.len()))),
        Csrf::Missing => {}
    }
    client()
        .post(app.url(path))
        .header("cookie", &session.cookie)
        .form(&form)
        .send()
        .await
        .expect("POST")
}

/// A free loopback port for a `ferrocount serve` process a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits, at most 60 s, until the `ferrocount serve` at `base` answers `/healthz` with 200.
pub async fn wait_until_healthy(client: &reqwest::Client, base: &str) {
    let mut healthy = false;
    for _ in 0..600 {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await
            && response.status() == StatusCode::OK
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(healthy, "serve answered /healthz");
}

/// The real binary as a service: `ferrocount serve` in its own process on a free loopback port,
/// its console (stdout) read line by line and its log (stderr) collected. The one way the tests
/// start it (first start, SIGTERM, schemathesis, a kill mid-send). Killed (SIGKILL) when dropped,
/// however the test ends.
pub struct ServeProcess {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    console: std::sync::mpsc::Receiver<String>,
    printed: Vec<String>,
    log: Option<std::thread::JoinHandle<String>>,
}

impl ServeProcess {
    /// Starts `ferrocount serve` on `data_dir` (with `config` as its configuration file when
    /// given) and waits until it answers `/healthz`.
    pub async fn start(data_dir: &std::path::Path, config: Option<&std::path::Path>) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let base = format!("http://127.0.0.1:{}", free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocount"));
        command
            .args(["serve", "--listen", &base["http://".len()..], "--data-dir"])
            .arg(data_dir);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ferrocount serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, console) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let log = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
                .join("\n")
        });
        let server = Self {
            child,
            base,
            console,
            printed: Vec::new(),
            log: Some(log),
        };
        wait_until_healthy(&reqwest::Client::new(), &server.base).await;
        server
    }

    /// Every line it printed on its console so far.
    pub fn printed(&mut self) -> &[String] {
        self.printed.extend(self.console.try_iter());
        &self.printed
    }

    /// The value of the console line `label value` (e.g. `password:`), when printed.
    pub fn printed_value(&mut self, label: &str) -> Option<String> {
        self.printed()
            .iter()
            .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
    }

    /// Sends it SIGTERM (a graceful stop).
    pub fn terminate(&self) {
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(kill.success(), "SIGTERM sent");
    }

    /// SIGKILL, as a power cut or the kernel's OOM killer stops it: nothing of it runs after.
    pub fn kill(&mut self) -> std::process::ExitStatus {
        self.child.kill().expect("SIGKILL sent");
        self.child.wait().expect("reaped")
    }

    /// Waits for it to exit; its exit status and everything it logged.
    pub fn wait_with_log(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("serve exits");
        let log = self
            .log
            .take()
            .and_then(|log| log.join().ok())
            .unwrap_or_default();
        (status, log)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
