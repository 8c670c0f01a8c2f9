//! The real binary: first start on an empty data directory makes an administrator whose
//! printed password signs in; SIGTERM stops it gracefully (exit 0, shutdown audited).

use appliance::store::Store;
use appliance::store::audit::AuditQuery;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::ServeProcess;

#[tokio::test]
async fn first_start_prints_an_admin_password_and_sigterm_shuts_down_cleanly() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::start(data_dir.path(), None).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let mut find = |label: &str| {
        server
            .printed_value(label)
            .unwrap_or_else(|| panic!("{label} printed: {:?}", server.printed()))
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

    server.terminate();
    let (status, log) = server.wait_with_log();
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
