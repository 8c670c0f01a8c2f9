//! What the hub's tests share: a fresh database on the test PostgreSQL server, and messages.

#![allow(dead_code)]

use std::str::FromStr;

use hub::HubStore;
use hub::store::audit::HubActor;
use hub::store::fleet::{ApplianceIdentity, Enrolled};
use hub_protocol::message::{
    Batch, Body, Calibration, Heartbeat, Measurement, Message, MessageId, PROTOCOL_VERSION,
    PatientRef, QcResult, ReleasedResult, Signature, StoredTime,
};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// The variable naming the test server (scripts/test sets it).
pub const URL_VAR: &str = "HUB_TEST_DATABASE_URL";

/// The test server's URL; a test without one fails, saying how to get one.
pub fn server_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{URL_VAR} is not set: the hub's tests need a PostgreSQL server. Run them through \
             scripts/test (it starts a throw-away cluster), or start one with \
             `scripts/pg-test-cluster start DIR` and export the URL it prints as {URL_VAR}."
        ),
    }
}

/// A new, empty database on the test server (its URL).
pub async fn fresh_database() -> PgConnectOptions {
    let url = server_url();
    let mut admin = PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}: {e}"));
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("OS random source");
    let name = format!(
        "hub_test_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    // The name is made here from hex digits only.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("creating a test database");
    PgConnectOptions::from_str(&url)
        .expect("the test URL parses")
        .database(&name)
}

/// A migrated store on a new database.
pub async fn fresh_store() -> HubStore {
    HubStore::connect_with(fresh_database().await)
        .await
        .expect("connecting and migrating")
}

/// Issues a code and enrols an appliance with `serial`.
pub async fn enrolled(store: &HubStore, serial: &str) -> (Enrolled, ApplianceIdentity) {
    let code = store
        .issue_enrolment_code(
            &HubActor::Console,
            &format!("Ward {serial}"),
            time::Duration::hours(1),
        )
        .await
        .expect("issuing a code");
    let enrolled = store
        .enrol(&code.code, serial)
        .await
        .expect("store")
        .expect("enrolled");
    let identity = store
        .authenticate(&enrolled.credential)
        .await
        .expect("store")
        .expect("the new credential works");
    (enrolled, identity)
}

pub fn time(text: &str) -> StoredTime {
    StoredTime::parse(text).expect("valid time")
}

/// A message of each kind, in this order: result, measurement, QC, calibration, heartbeat.
pub fn one_of_each(serial: &str, first_sequence: u64) -> Vec<Message> {
    let bodies = vec![
        Body::ReleasedResult(ReleasedResult {
            run_id: 7,
            version: 1,
            patient: PatientRef {
                mrn: "MRN-0042".into(),
                birth_date: Some("1961-04-30".into()),
            },
            accession: Some("ACC-1".into()),
            drawn_at: time("2026-12-01T08:15:00.123456789Z"),
            per_7_5ml: 0.1 + 0.2,
            per_7_5ml_ci95_low: 1e-300,
            per_7_5ml_ci95_high: 12.345_678_901_234_567,
            category: "quantified".into(),
            call: Some("unfavorable".into()),
            report_json: r#"{"count": 0.30000000000000004}"#.into(),
            reason: None,
            created_at: time("2026-12-01T09:00:00Z"),
            signatures: vec![
                Signature {
                    printed_name: "Dr A. Lab".into(),
                    meaning: "review".into(),
                    signed_at: time("2026-12-01T09:01:00Z"),
                },
                Signature {
                    printed_name: "Dr B. Lab".into(),
                    meaning: "release".into(),
                    signed_at: time("2026-12-01T09:02:00+01:00"),
                },
            ],
        }),
        Body::Measurement(Measurement {
            measurement_id: 70,
            run_id: 7,
            tube_kind: "quad".into(),
            tube_label: "Q-7".into(),
            replicate: 1,
            measured_at: time("2026-12-01T08:40:00Z"),
            echo_count: 2000,
            train_codec: "test-codec".into(),
            train: (0..=255u8).chain([0, 0, 255]).collect(),
            acquisition_json: "{}".into(),
            fit_json: None,
            qc_flags_json: "[]".into(),
        }),
        Body::QcResult(QcResult {
            qc_result_id: 3,
            material: "CTC control".into(),
            lot: "L-1".into(),
            value: f64::from_bits(0x4059_0000_0000_0001),
            status: "pass".into(),
            violations_json: "[]".into(),
            measurement_id: Some(70),
            measured_at: time("2026-12-01T07:00:00Z"),
            comment: None,
        }),
        Body::Calibration(Calibration {
            calibration_id: 2,
            reagent_lot: "R-9".into(),
            te_us: 400,
            content_format: "toml".into(),
            content: "slope = 1.0\n".into(),
            created_at: time("2026-11-01T07:00:00Z"),
        }),
        Body::Heartbeat(Heartbeat {
            at: time("2026-12-01T10:00:00Z"),
            software_version: "0.1.0".into(),
            board_status: "simulated".into(),
            pending_messages: 0,
        }),
    ];
    bodies
        .into_iter()
        .zip(first_sequence..)
        .map(|(body, sequence)| Message {
            id: MessageId::parse(&format!("{serial}-{sequence}")).expect("id"),
            sequence,
            body,
        })
        .collect()
}

/// Heartbeats with sequences `sequences`.
pub fn heartbeats(serial: &str, sequences: impl IntoIterator<Item = u64>) -> Vec<Message> {
    sequences
        .into_iter()
        .map(|sequence| Message {
            id: MessageId::parse(&format!("{serial}-{sequence}")).expect("id"),
            sequence,
            body: Body::Heartbeat(Heartbeat {
                at: time("2026-12-01T10:00:00Z"),
                software_version: "0.1.0".into(),
                board_status: "ready".into(),
                pending_messages: sequence,
            }),
        })
        .collect()
}

pub fn batch(messages: Vec<Message>) -> Batch {
    Batch {
        protocol: PROTOCOL_VERSION,
        messages,
    }
}

/// Serves `router` over HTTPS on 127.0.0.1 with a new self-signed certificate: its URL and the
/// certificate (PEM).
pub fn serve_https(router: axum::Router) -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("certificate");
    let cert_pem = certified.cert.pem();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .expect("server config");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("address").port();
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(config));
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, tls)
            .expect("server")
            .serve(router.into_make_service())
            .await
            .expect("serving");
    });
    (format!("https://127.0.0.1:{port}"), cert_pem)
}
