//! End-to-end tests of the storage commands, running the real `ferrocount` binary against a
//! database file in a temporary data directory.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use appliance::store::{Actor, AuditEntry, Store};

const BIN: &str = env!("CARGO_BIN_EXE_ferrocount");

fn ferrocount(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("FERROCOUNT_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ferrocount binary starts");
    let written = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes());
    // A command that reads no input (or fails before reading it) may be gone already.
    if let Err(error) = written {
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing to ferrocount's stdin: {error}"
        );
    }
    child
        .wait_with_output()
        .expect("ferrocount runs to the end")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn data_dir_args(dir: &Path) -> [String; 2] {
    ["--data-dir".into(), dir.display().to_string()]
}

fn run(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let data = data_dir_args(dir);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(data.iter().map(String::as_str));
    ferrocount(&all, stdin)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn users_are_added_and_the_trail_verifies_until_it_is_tampered_with() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");

    let added = run(
        &data,
        &["user", "add", "Alice", "--role", "clinician"],
        "a long password\n",
    );
    assert!(added.status.success(), "{}", text(&added));
    assert!(
        text(&added).contains("added user alice (clinician)"),
        "{}",
        text(&added)
    );

    let short = run(
        &data,
        &["user", "add", "bob", "--role", "operator"],
        "short\n",
    );
    assert!(!short.status.success(), "{}", text(&short));
    assert!(text(&short).contains("password"), "{}", text(&short));
    let bad_role = run(
        &data,
        &["user", "add", "bob", "--role", "admin"],
        "a long password\n",
    );
    assert!(!bad_role.status.success());
    let twice = run(
        &data,
        &["user", "add", "alice", "--role", "operator"],
        "a long password\n",
    );
    assert!(!twice.status.success());
    assert!(text(&twice).contains("already exists"), "{}", text(&twice));

    let passwd = run(
        &data,
        &["user", "passwd", "alice"],
        "another long password\n",
    );
    assert!(passwd.status.success(), "{}", text(&passwd));
    let disable = run(&data, &["user", "disable", "alice", "--reason", "left"], "");
    assert!(disable.status.success(), "{}", text(&disable));
    let no_reason = run(&data, &["user", "disable", "alice"], "");
    assert!(!no_reason.status.success(), "a reason is required");
    assert!(
        text(&no_reason).contains("--reason"),
        "{}",
        text(&no_reason)
    );
    let nobody = run(&data, &["user", "disable", "carol", "--reason", "left"], "");
    assert!(!nobody.status.success());
    assert!(text(&nobody).contains("not found"), "{}", text(&nobody));

    let verified = run(&data, &["audit", "verify"], "");
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("intact: 3 rows"),
        "{}",
        text(&verified)
    );

    // The store really holds what the commands said.
    runtime().block_on(async {
        let store = Store::open(&data).await.expect("the data directory opens");
        let users = store.users().await.expect("users are listed");
        assert_eq!(users.len(), 1);
        assert!(users[0].disabled);
        assert_eq!(
            store
                .authenticate("alice", "another long password")
                .await
                .expect("authentication runs"),
            None,
            "a disabled user cannot sign in"
        );
        // Tamper with the file directly: drop the guard and edit the first row.
        sqlx::query("DROP TRIGGER audit_log_no_update")
            .execute(store.pool())
            .await
            .expect("the trigger can be dropped by someone with the file");
        sqlx::query("UPDATE audit_log SET detail_json = '{\"role\":\"lab-admin\"}' WHERE id = 1")
            .execute(store.pool())
            .await
            .expect("the row can be edited once the trigger is gone");
        store.close().await;
    });
    let broken = run(&data, &["audit", "verify"], "");
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert!(
        text(&broken).contains("BROKEN at audit row 1"),
        "{}",
        text(&broken)
    );
}

#[test]
fn audit_verify_and_backup_refuse_a_missing_database() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let empty = dir.path().join("nothing-here");
    let (_, recipient) = appliance::backup::new_key_pair(&appliance::store::Timestamp::now());
    for args in [
        &["audit", "verify"][..],
        &[
            "backup",
            "/tmp/never-written.db.age",
            "--recipient",
            &recipient,
        ][..],
    ] {
        let output = run(&empty, args, "");
        assert!(!output.status.success(), "{}", text(&output));
        assert!(text(&output).contains("no database"), "{}", text(&output));
    }
    assert!(!empty.exists(), "a check must not create a data directory");
}

#[test]
fn a_backup_taken_while_another_process_writes_is_consistent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let added = run(
        &data,
        &["user", "add", "olga", "--role", "operator"],
        "a long password\n",
    );
    assert!(added.status.success(), "{}", text(&added));

    let rt = runtime();
    let store = rt
        .block_on(Store::open(&data))
        .expect("the data directory opens");
    // A writer appends audit entries (each a chained, committed transaction) while `backup`
    // copies the database from another process.
    let writer_store = store.clone();
    let writer = std::thread::spawn(move || {
        runtime().block_on(async move {
            for i in 0..400 {
                writer_store
                    .record_event(
                        &Actor::Appliance,
                        AuditEntry::new("test.write", "thing").id(i),
                    )
                    .await
                    .expect("a concurrent write commits");
            }
        })
    });
    let key_file = dir.path().join("lab.key");
    let made = ferrocount(&["backup-key", &key_file.display().to_string()], "");
    assert!(made.status.success(), "{}", text(&made));
    let recipient = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let copies: Vec<_> = (0..3)
        .map(|i| {
            let target = dir.path().join(format!("copy{i}.db.age"));
            let backup = run(
                &data,
                &[
                    "backup",
                    &target.display().to_string(),
                    "--recipient",
                    &recipient,
                ],
                "",
            );
            assert!(backup.status.success(), "{}", text(&backup));
            assert!(text(&backup).contains("integrity ok"), "{}", text(&backup));
            target
        })
        .collect();
    writer.join().expect("the writer finishes");

    let again = run(
        &data,
        &[
            "backup",
            &copies[0].display().to_string(),
            "--recipient",
            &recipient,
        ],
        "",
    );
    assert!(
        !again.status.success(),
        "an existing backup is never overwritten"
    );

    for (i, backup) in copies.iter().enumerate() {
        let copy_dir = dir.path().join(format!("restored{i}"));
        let restored = run(
            &copy_dir,
            &[
                "restore",
                &backup.display().to_string(),
                "--identity",
                &key_file.display().to_string(),
            ],
            "",
        );
        assert!(restored.status.success(), "{}", text(&restored));
        let verified = run(&copy_dir, &["audit", "verify"], "");
        assert!(verified.status.success(), "{}", text(&verified));
    }
    rt.block_on(store.close());
}

#[test]
fn enrol_refuses_a_hub_that_is_not_https_and_stores_no_credential() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = run(
        dir.path(),
        &[
            "enrol",
            "--hub",
            "http://hub.example:8443",
            "--code",
            "ABCD-EFGH",
            "--serial",
            "FC-0001",
        ],
        "",
    );
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("is not an https:// URL"),
        "{}",
        text(&output)
    );
    assert!(!dir.path().join("hub-credential.json").exists());
}
