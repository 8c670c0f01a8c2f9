//! Encrypted backups taken while runs are measured, and their restore, with the real binary:
//! every backup restores into a sound database whose audit chain verifies; a restore replaces a
//! live database only when nothing has it open, keeps the one it replaced, and refuses a wrong
//! key, a changed file or a cut one without touching anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use appliance::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_ferrocount");

fn ferrocount(data_dir: &Path, args: &[&str]) -> Output {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.extend([std::ffi::OsStr::new("--data-dir"), data_dir.as_os_str()]);
    command(&all)
}

/// A new key pair: the identity written to `file`, the public key returned.
fn backup_key(file: &Path) -> String {
    let made = command(&[std::ffi::OsStr::new("backup-key"), file.as_os_str()]);
    assert!(made.status.success(), "{}", text(&made));
    String::from_utf8_lossy(&made.stdout).trim().to_owned()
}

fn command(args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("FERROCOUNT_DATA_DIR")
        .env_remove("FERROCOUNT_CONFIG")
        // A fresh data directory has no QC yet: its runs start and are held, as the site may choose.
        .env("FERROCOUNT_QC__POLICY", "run_but_hold")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let started = Instant::now();
    while child.try_wait().expect("waiting").is_none() {
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("ferrocount {args:?} did not end within 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("its output")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run_sample(data: &Path, mrn: &str, seed: u64) -> Output {
    ferrocount(
        data,
        &[
            "run",
            "--approve-simulated-calibration",
            "tests: the simulated lot",
            "--patient",
            mrn,
            "--accession",
            &format!("{mrn}-A{seed}"),
            "--blood-ml",
            "7.5",
            "--sim-cells",
            "12",
            "--seed",
            &seed.to_string(),
        ],
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Rows of `table` in the database of `data_dir`, read through a store.
fn rows(data_dir: &Path, table: &str) -> i64 {
    runtime().block_on(async {
        let store = Store::open(data_dir).await.expect("the database opens");
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(store.pool())
            .await
            .expect("counted");
        store.close().await;
        count
    })
}

fn restore(data_dir: &Path, backup: &Path, key: &[&str]) -> Output {
    let mut args = vec!["restore", backup.to_str().expect("utf-8 path")];
    args.extend(key);
    ferrocount(data_dir, &args)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("a directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn backups_taken_during_runs_restore_whole_and_restore_refuses_what_does_not_verify() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let key_file = dir.path().join("lab.key");
    let recipient = backup_key(&key_file);
    assert!(recipient.starts_with("age1"), "{recipient}");
    let identity = ["--identity", key_file.to_str().expect("utf-8")];

    // The first run calibrates the simulated lot; then runs go on in another process while
    // backups are taken.
    let first = run_sample(&data, "BK-0", 1);
    assert!(first.status.success(), "{}", text(&first));
    let runner_data = data.clone();
    let runner = std::thread::spawn(move || {
        (1..=4u64)
            .map(|i| run_sample(&runner_data, &format!("BK-{i}"), 10 + i))
            .collect::<Vec<_>>()
    });
    let mut backups: Vec<PathBuf> = Vec::new();
    let mut taken = 0;
    while !runner.is_finished() || taken == 0 {
        let target = dir.path().join(format!("during-{taken}.db.age"));
        let backup = ferrocount(
            &data,
            &[
                "backup",
                target.to_str().expect("utf-8"),
                "--recipient",
                &recipient,
            ],
        );
        assert!(backup.status.success(), "{}", text(&backup));
        backups.push(target);
        taken += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    for output in runner.join().expect("the runs end") {
        assert!(output.status.success(), "{}", text(&output));
    }
    let after = dir.path().join("after.db.age");
    let backup = ferrocount(
        &data,
        &[
            "backup",
            after.to_str().expect("utf-8"),
            "--recipient",
            &recipient,
        ],
    );
    assert!(backup.status.success(), "{}", text(&backup));

    // Each backup restores into a fresh directory: sound, its audit chain intact.
    let mut restored_runs = Vec::new();
    for (i, backup) in backups.iter().chain([&after]).enumerate() {
        let bytes = std::fs::read(backup).expect("the backup");
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
        assert!(
            !bytes.windows(15).any(|w| w == b"SQLite format 3"),
            "encrypted"
        );
        let fresh = dir.path().join(format!("fresh-{i}"));
        let restored = restore(&fresh, backup, &identity);
        assert!(restored.status.success(), "{}", text(&restored));
        assert!(
            text(&restored).contains("audit trail intact"),
            "{}",
            text(&restored)
        );
        let verified = ferrocount(&fresh, &["audit", "verify"]);
        assert!(verified.status.success(), "{}", text(&verified));
        restored_runs.push(rows(&fresh, "runs"));
    }
    let live_runs = rows(&data, "runs");
    assert_eq!(live_runs, 5);
    assert_eq!(
        restored_runs.last(),
        Some(&live_runs),
        "the last backup holds every run"
    );
    assert!(
        restored_runs.iter().all(|&n| (1..=live_runs).contains(&n)),
        "{restored_runs:?}"
    );

    // Nothing is replaced while the database is open elsewhere.
    let live_file = data.join("ferrocount.db");
    let before = std::fs::read(&live_file).expect("the live database");
    let holder = runtime();
    let store = holder.block_on(Store::open(&data)).expect("held open");
    let refused = restore(&data, &backups[0], &identity);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("open in another process"),
        "{}",
        text(&refused)
    );
    holder.block_on(store.close());
    drop(store);
    assert_eq!(std::fs::read(&live_file).expect("unchanged"), before);

    // A wrong key, a changed byte, a cut file: refused, nothing replaced, nothing left behind.
    let other_key = dir.path().join("other.key");
    backup_key(&other_key);
    let changed = dir.path().join("changed.db.age");
    let mut bytes = std::fs::read(&after).expect("the backup");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&changed, &bytes).expect("written");
    let cut = dir.path().join("cut.db.age");
    let whole = std::fs::read(&after).expect("the backup");
    std::fs::write(&cut, &whole[..whole.len() - 1000]).expect("written");
    let listing = files_in(&data);
    for (backup, key, why) in [
        (
            &after,
            ["--identity", other_key.to_str().expect("utf-8")],
            "no matching keys",
        ),
        (&changed, identity, "cannot decrypt"),
        (&cut, identity, "cannot decrypt"),
    ] {
        let output = restore(&data, backup, &key);
        assert!(!output.status.success(), "{}", text(&output));
        assert!(
            text(&output).to_lowercase().contains(why),
            "{why}: {}",
            text(&output)
        );
        assert_eq!(std::fs::read(&live_file).expect("unchanged"), before);
        assert_eq!(files_in(&data), listing, "nothing left behind");
    }

    // With nothing running, the first backup replaces the live database, which is kept aside.
    let restored = restore(&data, &backups[0], &identity);
    assert!(restored.status.success(), "{}", text(&restored));
    assert_eq!(rows(&data, "runs"), restored_runs[0]);
    let kept: Vec<String> = files_in(&data)
        .into_iter()
        .filter(|name| {
            name.starts_with("ferrocount.db.before-restore-")
                && !name.ends_with("-wal")
                && !name.ends_with("-shm")
        })
        .collect();
    assert_eq!(kept.len(), 1, "{:?}", files_in(&data));
    let aside = data.join(&kept[0]);
    let aside_runs = runtime().block_on(async {
        let store = Store::open_file(&aside)
            .await
            .expect("the kept database opens");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs")
            .fetch_one(store.pool())
            .await
            .expect("counted");
        store.close().await;
        n
    });
    assert_eq!(aside_runs, live_runs, "the replaced database is kept whole");
    let verified = ferrocount(&data, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert_eq!(
        runtime().block_on(async {
            let store = Store::open(&data).await.expect("opens");
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'database.restore'",
            )
            .fetch_one(store.pool())
            .await
            .expect("counted");
            store.close().await;
            n
        }),
        1,
        "the restore is in the restored database's audit trail"
    );

    // A passphrase instead of a key.
    let passphrase = dir.path().join("passphrase.txt");
    std::fs::write(&passphrase, "correct horse battery staple\n").expect("written");
    let with_passphrase = dir.path().join("passphrase.db.age");
    let pass = ["--passphrase-file", passphrase.to_str().expect("utf-8")];
    let backup = ferrocount(
        &data,
        &[
            "backup",
            with_passphrase.to_str().expect("utf-8"),
            pass[0],
            pass[1],
        ],
    );
    assert!(backup.status.success(), "{}", text(&backup));
    let fresh = dir.path().join("fresh-passphrase");
    let restored = restore(&fresh, &with_passphrase, &pass);
    assert!(restored.status.success(), "{}", text(&restored));
    let by_key = restore(&dir.path().join("fresh-wrong"), &with_passphrase, &identity);
    assert!(text(&by_key).contains("passphrase"), "{}", text(&by_key));
}
