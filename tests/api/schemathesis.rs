//! The outside probe in CI: schemathesis (installed by `scripts/install-schemathesis`, which
//! `scripts/test` runs) against the real binary on loopback with a lab admin's API token, every
//! check on, a fixed example budget and seed; what schemathesis cannot read from the OpenAPI
//! document (the token's scheme, narrow per-operation exceptions with reasons) is in
//! `tests/api/schemathesis.toml`. It must find no server error and no answer that
//! breaks the OpenAPI document; its case count and time are printed for the notes.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::ServeProcess;

/// Test cases per API operation and phase (the run's size; about a minute on two cores).
const MAX_EXAMPLES: &str = "12";
/// The generator's seed, so a failure is reproduced by running the same command.
const SEED: &str = "20261202";

/// The installed schemathesis: `SCHEMATHESIS_BIN`, or the venv `scripts/test` makes.
fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("SCHEMATHESIS_BIN") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/bin/schemathesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let tool = schemathesis();
    assert!(
        tool.is_file(),
        "{} is missing: run scripts/install-schemathesis (scripts/test does)",
        tool.display()
    );
    let data_dir = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::start(data_dir.path(), None).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let password = server
        .printed_value("password:")
        .expect("the first administrator's password is printed");

    // A lab admin's token, made as a browser makes one.
    let session = client
        .post(format!("{base}/api/v1/session"))
        .json(&json!({ "username": "admin", "password": password }))
        .send()
        .await
        .expect("sign-in");
    assert_eq!(session.status(), StatusCode::CREATED);
    let cookie = session
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let body: Value = session.json().await.expect("JSON");
    let csrf = body["csrf_token"]
        .as_str()
        .expect("a CSRF token")
        .to_owned();
    let made = client
        .post(format!("{base}/api/v1/tokens"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "label": "schemathesis" }))
        .send()
        .await
        .expect("token");
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.expect("JSON");
    let token = made["secret"]
        .as_str()
        .or_else(|| made["token"].as_str())
        .unwrap_or_else(|| panic!("a token secret in {made}"))
        .to_owned();

    let report = tempfile::tempdir().unwrap();
    let junit = report.path().join("junit.xml");
    let started = Instant::now();
    let run = tokio::task::spawn_blocking({
        let junit = junit.clone();
        let base = base.clone();
        move || {
            Command::new(&tool)
                .env("SCHEMATHESIS_TOKEN", &token)
                .arg("--config-file")
                .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/schemathesis.toml"))
                .args([
                    "run",
                    &format!("{base}/api/v1/openapi.json"),
                    "--checks",
                    "all",
                    "--max-examples",
                    MAX_EXAMPLES,
                    "--seed",
                    SEED,
                    "--workers",
                    "2",
                    "--request-timeout",
                    "20",
                    "--generation-database",
                    "none",
                    "--no-color",
                    "--report",
                    "junit",
                    "--report-junit-path",
                ])
                .arg(&junit)
                .output()
                .expect("schemathesis runs")
        }
    })
    .await
    .expect("joined");
    let elapsed = started.elapsed();
    server.kill();
    let (_, server_log) = server.wait_with_log();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let cases = std::fs::read_to_string(&junit)
        .ok()
        .and_then(|xml| {
            let at = xml.find("tests=\"")? + 7;
            xml[at..].split('"').next().map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into());
    println!(
        "schemathesis: {} s, {cases} test scenarios (junit), exit {:?}",
        elapsed.as_secs(),
        run.status.code()
    );
    let summary: String = stdout
        .lines()
        .filter(|l| {
            l.contains("passed")
                || l.contains("failed")
                || l.contains("cases")
                || l.contains("error")
        })
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
    let server_errors: Vec<&str> = server_log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("panicked"))
        .take(20)
        .collect();
    assert!(
        run.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}\nthe server's errors:\n{}",
        server_errors.join("\n")
    );
}
