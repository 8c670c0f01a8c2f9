//! The hub's own people against a real PostgreSQL server (`HUB_TEST_DATABASE_URL`, started by
//! scripts/test): adding users, signing in and out, sessions that end, disabled users, and the
//! audit trail naming who did it.

mod support;

use hub::HubError;
use hub::store::audit::{HubActor, HubAuditVerification};
use hub::store::people::{HubRole, NewHubUser, SignInRefusal};
use support::fresh_store;

const PASSWORD: &str = "correct horse battery";

fn new_user(name: &str, role: HubRole) -> NewHubUser {
    NewHubUser {
        username: name.into(),
        display_name: String::new(),
        role,
        password: credentials::NewPassword::parse(PASSWORD).expect("policy"),
    }
}

/// `(actor, action, user_id)` of the hub's audit rows, oldest first.
async fn trail(store: &hub::HubStore) -> Vec<(String, String, Option<i64>)> {
    sqlx::query_as::<_, (String, String, Option<i64>)>(
        "SELECT actor, action, user_id FROM audit_log ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .expect("audit")
}

#[tokio::test]
async fn people_sign_in_with_their_password_and_their_sessions_end_when_they_sign_out() {
    let store = fresh_store().await;
    let lena = store
        .add_user(&HubActor::Console, &new_user(" Lena ", HubRole::LabManager))
        .await
        .expect("added");
    assert_eq!(
        (lena.username.as_str(), lena.display_name.as_str()),
        ("lena", "lena")
    );
    let again = store
        .add_user(&HubActor::Console, &new_user("lena", HubRole::Clinician))
        .await;
    assert!(
        matches!(&again, Err(HubError::Invalid(words)) if words.contains("already")),
        "{again:?}"
    );

    // A wrong password and an unknown name get the same answer; both are in the trail.
    for (name, password) in [("lena", "correct horse batterz"), ("nobody", PASSWORD)] {
        let refused = store
            .sign_in(name, password, "192.0.2.7")
            .await
            .expect("answered");
        assert_eq!(refused, Err(SignInRefusal::Refused));
    }
    let session = store
        .sign_in("LENA", PASSWORD, "192.0.2.7")
        .await
        .expect("answered")
        .expect("signed in");
    assert_eq!(session.user, lena);
    assert_eq!(session.secret.len(), 64);
    assert_eq!(
        store
            .session_user(&session.secret)
            .await
            .expect("looked up"),
        Some(lena.clone())
    );
    assert_eq!(
        store
            .session_user("not a session")
            .await
            .expect("looked up"),
        None
    );
    // Only the secret's hash is kept.
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE secret_hash = $1")
        .bind(&session.secret)
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(kept, 0);

    store.sign_out(&session.secret).await.expect("signed out");
    assert_eq!(
        store
            .session_user(&session.secret)
            .await
            .expect("looked up"),
        None
    );
    store
        .sign_out(&session.secret)
        .await
        .expect("twice is harmless");

    let actions = trail(&store).await;
    assert_eq!(
        actions,
        vec![
            ("console".into(), "user.add".into(), None),
            ("hub".into(), "sign_in.refused".into(), None),
            ("hub".into(), "sign_in.refused".into(), None),
            ("user:lena".into(), "session.start".into(), Some(lena.id)),
            ("user:lena".into(), "session.end".into(), Some(lena.id)),
        ]
    );
    assert!(matches!(
        store.verify_audit_chain().await.expect("verify"),
        HubAuditVerification::Intact { rows: 5, .. }
    ));
}

#[tokio::test]
async fn a_disabled_user_is_signed_out_everywhere_and_cannot_sign_in() {
    let store = fresh_store().await;
    let admin = store
        .add_user(&HubActor::Console, &new_user("ada", HubRole::LabAdmin))
        .await
        .expect("added");
    store
        .add_user(&HubActor::Console, &new_user("carl", HubRole::Clinician))
        .await
        .expect("added");
    let session = store
        .sign_in("carl", PASSWORD, "198.51.100.4")
        .await
        .expect("answered")
        .expect("signed in");

    let own = store.disable_user(&admin.actor(), "ada", "leaving").await;
    assert!(matches!(own, Err(HubError::Invalid(_))), "{own:?}");
    let no_reason = store.disable_user(&admin.actor(), "carl", "  ").await;
    assert!(
        matches!(no_reason, Err(HubError::Invalid(_))),
        "{no_reason:?}"
    );

    let carl = store
        .disable_user(&admin.actor(), "carl", "left the hospital")
        .await
        .expect("disabled");
    assert!(carl.disabled);
    assert_eq!(
        store
            .session_user(&session.secret)
            .await
            .expect("looked up"),
        None
    );
    assert_eq!(
        store
            .sign_in("carl", PASSWORD, "198.51.100.4")
            .await
            .expect("answered"),
        Err(SignInRefusal::Refused)
    );
    let listed: Vec<(String, HubRole, bool)> = store
        .users()
        .await
        .expect("users")
        .into_iter()
        .map(|user| (user.username, user.role, user.disabled))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("ada".into(), HubRole::LabAdmin, false),
            ("carl".into(), HubRole::Clinician, true),
        ]
    );
    let disabled_by: (String, Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT actor, user_id, reason FROM audit_log WHERE action = 'user.disable'",
    )
    .fetch_one(store.pool())
    .await
    .expect("audit");
    assert_eq!(
        disabled_by,
        (
            "user:ada".into(),
            Some(admin.id),
            Some("left the hospital".into())
        )
    );
}
