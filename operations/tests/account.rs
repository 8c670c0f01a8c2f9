//! Changing one's own password at the operations layer: the current password re-entered (a
//! mismatch refused, counted and audited), the new one twice, valid and new; the change ends the
//! account's sessions and tokens and the new password signs in.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use appliance::engine::EngineConfig;
use appliance::store::users::{NewPassword, NewUser, Role, Username};
use appliance::store::{Actor, Store};
use nmr_core::assay::Indications;
use operations::account::PasswordChange;
use operations::{LoginThrottle, OperationError, Operations, Requester};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn a_person_changes_their_own_password_with_the_current_one_typed_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store");
    let ops = Operations::new(
        store.clone(),
        EngineConfig::new(
            Indications::from_toml(
                "[indications.breast]\nunfavorable_at_or_above_per_7_5ml = 5.0\n",
            )
            .expect("cut-offs"),
        ),
        LoginThrottle::new(Duration::from_secs(900), 5),
    );
    let olga = store
        .add_user(
            &Actor::Appliance,
            NewUser {
                username: Username::parse("olga").expect("name"),
                display_name: "Olga Tester".into(),
                role: Role::Operator,
                password: NewPassword::parse(PASSWORD).expect("password"),
            },
        )
        .await
        .expect("user");
    let (token, _) = store
        .create_api_token(&Actor::Appliance, olga.id, "script")
        .await
        .expect("token");
    let who = Requester::User(olga.clone());
    let change = |current: &str, new: &str, repeated: &str| PasswordChange {
        current: current.into(),
        new: new.into(),
        repeated: repeated.into(),
    };
    for (wrong, field) in [
        (
            change("not it at all", "a new one here", "a new one here"),
            "current_password",
        ),
        (
            change(PASSWORD, "a new one here", "a new one herE"),
            "new_password_again",
        ),
        (change(PASSWORD, PASSWORD, PASSWORD), "new_password"),
        (change(PASSWORD, "short", "short"), "new_password"),
    ] {
        let refused = ops.change_own_password(&who, CLIENT, &wrong).await;
        assert!(
            matches!(refused, Err(OperationError::Invalid { field: f, .. }) if f == field),
            "{field}: {refused:?}"
        );
    }
    assert!(
        store
            .authenticate("olga", PASSWORD)
            .await
            .expect("asks")
            .is_some(),
        "nothing refused changed the password"
    );
    assert_eq!(
        ops.throttle
            .lockouts("olga", std::time::Instant::now())
            .len(),
        1,
        "the wrong current password counts towards the sign-in throttle"
    );
    ops.change_own_password(
        &who,
        CLIENT,
        &change(PASSWORD, "a new one here", "a new one here"),
    )
    .await
    .expect("changed");
    assert!(
        store
            .authenticate("olga", PASSWORD)
            .await
            .expect("asks")
            .is_none()
    );
    assert!(
        store
            .authenticate("olga", "a new one here")
            .await
            .expect("asks")
            .is_some()
    );
    assert!(
        ops.token_user(&token).await.expect("asks").is_none(),
        "the old API token ended with the old password"
    );
    assert!(matches!(
        ops.change_own_password(&Requester::Console, CLIENT, &change(PASSWORD, "x", "x"))
            .await,
        Err(OperationError::Forbidden { .. })
    ));
}
