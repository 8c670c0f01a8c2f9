//! `ferrocount enrol`'s work (`operations::hub_link`) against the hub's router served over
//! HTTPS (rustls, an rcgen certificate the appliance trusts through `--ca-file`) on a real
//! PostgreSQL server: refusals in words (wrong CA, unreachable, bad code, serial taken), then an
//! enrolment whose credential is kept 0600 in the data directory, audited on the appliance
//! without the credential, and accepted by the hub.

mod support;

use std::path::Path;

use appliance::config::{HttpConfig, default_indications};
use appliance::engine::EngineConfig;
use appliance::store::AuditVerification;
use appliance::store::Store;
use appliance::store::audit::AuditQuery;
use hub::store::audit::HubActor;
use operations::hub_link::{EnrolError, HubLink};
use operations::{LoginThrottle, Operations, Requester};
use support::{fresh_store, serve_https};

fn operations(store: Store) -> Operations {
    Operations::new(
        store,
        EngineConfig::new(default_indications().expect("indications")),
        LoginThrottle::configured(&HttpConfig::default()),
    )
}

async fn enrol(
    ops: &Operations,
    dir: &Path,
    url: &str,
    code: &str,
    ca: &Path,
) -> Result<HubLink, EnrolError> {
    ops.enrol_with_hub(&Requester::Console, dir, url, code, "SN-E1", Some(ca))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appliance_enrols_over_https_and_refusals_are_in_words() {
    let hub = fresh_store().await;
    let (url, cert_pem) = serve_https(hub::http::router(hub.clone()));
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("hub-ca.pem");
    std::fs::write(&ca, &cert_pem).expect("ca");
    let (_, other_pem) = serve_https(axum::Router::new());
    let wrong_ca = dir.path().join("other-ca.pem");
    std::fs::write(&wrong_ca, &other_pem).expect("ca");
    let data = dir.path().join("data");
    let ops = operations(Store::open(&data).await.expect("store"));
    let code = hub
        .issue_enrolment_code(&HubActor::Console, "Ward E", time::Duration::hours(1))
        .await
        .expect("code");

    // Plain HTTP, a CA that did not sign the hub's certificate, nobody listening, a bad code.
    let refused = enrol(&ops, &data, &url.replace("https", "http"), &code.code, &ca).await;
    assert!(
        matches!(refused, Err(EnrolError::NotHttps(_))),
        "{refused:?}"
    );
    let refused = enrol(&ops, &data, &url, &code.code, &wrong_ca).await;
    assert!(
        matches!(refused, Err(EnrolError::Certificate(_))),
        "{refused:?}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let nobody = format!("https://{}", closed.local_addr().expect("address"));
    drop(closed);
    let refused = enrol(&ops, &data, &nobody, &code.code, &ca).await;
    assert!(
        matches!(refused, Err(EnrolError::Unreachable { .. })),
        "{refused:?}"
    );
    let refused = enrol(&ops, &data, &url, "WRONG-CODE", &ca).await;
    let Err(EnrolError::BadCode(words)) = refused else {
        panic!("{refused:?}");
    };
    assert!(words.contains("not known"), "{words}");
    assert_eq!(HubLink::load(&data).expect("read"), None);

    // The code: the credential is kept 0600 and the hub accepts it.
    let link = enrol(&ops, &data, &url, &code.code, &ca)
        .await
        .expect("enrolled");
    assert_eq!(HubLink::load(&data).expect("read"), Some(link.clone()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(HubLink::file(&data))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let known = hub.authenticate(&link.credential).await.expect("hub");
    assert!(known.is_ok(), "the hub does not know the credential");

    // Audited on the appliance, without the credential.
    let rows = ops
        .store
        .audit_entries(&AuditQuery {
            action: Some("hub.enrol".into()),
            ..AuditQuery::default()
        })
        .await
        .expect("audit");
    assert_eq!(rows.len(), 1);
    let detail = serde_json::to_string(&rows[0].detail).expect("json");
    assert!(detail.contains("SN-E1"), "{detail}");
    assert!(!detail.contains(&link.credential), "{detail}");
    let verification = ops.store.verify_audit_chain().await.expect("verify");
    assert!(
        matches!(verification, AuditVerification::Intact { .. }),
        "{verification:?}"
    );

    // The same serial again, and after revocation: refused in the hub's words.
    let again = hub
        .issue_enrolment_code(&HubActor::Console, "Ward E again", time::Duration::hours(1))
        .await
        .expect("code");
    let refused = enrol(&ops, &data, &url, &again.code, &ca).await;
    assert!(
        matches!(refused, Err(EnrolError::Refused(_))),
        "{refused:?}"
    );
}
