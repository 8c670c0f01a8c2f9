//! The real binary: first start on an empty data directory makes an administrator whose
//! printed password signs in; SIGTERM stops it gracefully (exit 0, shutdown audited).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use appliance::store::Store;
use appliance::store::audit::AuditQuery;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{free_port, wait_until_healthy};

#[tokio::test]
async fn first_start_prints_an_admin_password_and_sigterm_shuts_down_cleanly() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocount"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferrocount serve starts");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&client, &base).await;

    let printed: Vec<String> = lines_rx.try_iter().collect();
    let find = |label: &str| {
        printed
            .iter()
            .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("{label} printed: {printed:?}"))
    };
    let (username, password) = (find("user name:"), find("password:"));
    assert_eq!(username, "admin");
    assert!(password.len() >= 20, "a long random password");
    let sign_in = client
        .post(format!("{base}/api/v1/session"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::CREATED);
    let body: serde_json::Value = sign_in.json().await.unwrap();
    assert_eq!(body["role"], "lab-admin");

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}\n{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(
        !log.contains(&password),
        "the password never reaches the log"
    );

    let store = Store::open(data_dir.path()).await.unwrap();
    let appliance_events = store
        .audit_entries(&AuditQuery {
            entity: Some("appliance".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = appliance_events.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"appliance.shutdown"), "{actions:?}");
    assert!(actions.contains(&"appliance.start"), "{actions:?}");
    assert_eq!(store.integrity_check().await.unwrap(), ["ok"]);
    // A second start makes no second administrator.
    assert_eq!(store.user_count().await.unwrap(), 1);
}
