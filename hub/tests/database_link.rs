//! The hub's link to its database: TLS with the server's certificate verified whenever the server
//! is another machine (`hub::store::protected_database_link`), against a real PostgreSQL server
//! with TLS switched on (a throw-away cluster of `scripts/pg-test-cluster` with an rcgen
//! certificate).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use hub::{HubError, HubStore};
use sqlx::postgres::PgConnectOptions;

/// The repository's root (the hub crate's parent).
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the hub crate sits in the workspace")
        .to_path_buf()
}

/// A throw-away cluster with TLS on, stopped and deleted when dropped.
struct TlsCluster {
    dir: tempfile::TempDir,
    url: String,
}

impl TlsCluster {
    fn start(certificate_pem: &str, key_pem: &str) -> Self {
        let files = tempfile::tempdir().expect("a temporary directory");
        let cert = files.path().join("server.crt");
        let key = files.path().join("server.key");
        std::fs::write(&cert, certificate_pem).expect("writing the certificate");
        std::fs::write(&key, key_pem).expect("writing the key");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let output = Command::new(repository().join("scripts/pg-test-cluster"))
            .arg("start")
            .arg(dir.path())
            .env("PG_TEST_TLS_CERT", &cert)
            .env("PG_TEST_TLS_KEY", &key)
            .output()
            .expect("running scripts/pg-test-cluster");
        assert!(
            output.status.success(),
            "the TLS cluster did not start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let url = String::from_utf8(output.stdout)
            .expect("a UTF-8 URL")
            .trim()
            .to_owned();
        Self { dir, url }
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = Command::new(repository().join("scripts/pg-test-cluster"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

fn self_signed() -> rcgen::CertifiedKey<rcgen::KeyPair> {
    rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("an rcgen certificate")
}

#[tokio::test]
async fn the_hub_reaches_its_database_over_verified_tls_and_refuses_a_certificate_it_does_not_trust()
 {
    let server = self_signed();
    let cluster = TlsCluster::start(&server.cert.pem(), &server.signing_key.serialize_pem());
    let trust = tempfile::tempdir().expect("a temporary directory");
    let right_ca = trust.path().join("right.pem");
    let wrong_ca = trust.path().join("wrong.pem");
    std::fs::write(&right_ca, server.cert.pem()).expect("writing the CA");
    std::fs::write(&wrong_ca, self_signed().cert.pem()).expect("writing the other CA");

    let verified = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        cluster.url,
        right_ca.display()
    );
    let store = HubStore::connect(&verified)
        .await
        .expect("the hub connects over verified TLS");
    let (ssl,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .expect("asking the server about the connection");
    assert!(ssl, "the server says the hub's connection is not TLS");
    store.close().await;

    let untrusted = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        cluster.url,
        wrong_ca.display()
    );
    let refused = HubStore::connect(&untrusted)
        .await
        .expect_err("a server whose certificate another CA signed is refused");
    assert!(
        matches!(refused, HubError::Database { .. }),
        "refused for another reason: {refused}"
    );
    let words = refused.to_string().to_lowercase();
    assert!(
        words.contains("certificate") || words.contains("issuer"),
        "{words}"
    );
}

#[test]
fn a_database_on_another_machine_needs_a_verified_tls_link() {
    let options = |url: &str| PgConnectOptions::from_str(url).expect("a valid URL");
    for allowed in [
        "postgres://hub:pw@127.0.0.1:5432/hub",
        "postgres://hub:pw@localhost/hub",
        "postgres://hub:pw@[::1]:5432/hub",
        "postgres://hub:pw@db.hospital.example/hub?sslmode=verify-full",
        "postgres://hub:pw@10.1.2.3/hub?sslmode=verify-ca&sslrootcert=/etc/hub/ca.pem",
    ] {
        hub::store::protected_database_link(&options(allowed))
            .unwrap_or_else(|e| panic!("{allowed} refused: {e}"));
    }
    for refused in [
        "postgres://hub:pw@db.hospital.example/hub",
        "postgres://hub:pw@db.hospital.example/hub?sslmode=require",
        "postgres://hub:pw@10.1.2.3/hub?sslmode=prefer",
        "postgres://hub:pw@127.0.0.2.example/hub?sslmode=disable",
    ] {
        let error = hub::store::protected_database_link(&options(refused))
            .expect_err("a plain or unverified link to another machine");
        let words = error.to_string();
        assert!(words.contains("sslmode=verify-full"), "{refused}: {words}");
        assert!(matches!(error, HubError::UnprotectedDatabaseLink { .. }));
    }
}

#[tokio::test]
async fn the_hub_does_not_connect_to_another_machine_without_tls() {
    // Refused before any connection is tried (the host does not exist).
    let error = HubStore::connect("postgres://hub:pw@db.hospital.invalid/hub")
        .await
        .expect_err("no plain link to another machine");
    assert!(
        matches!(error, HubError::UnprotectedDatabaseLink { ref host } if host == "db.hospital.invalid"),
        "{error}"
    );
}
