//! Changing one's own password at the operations layer: the current password re-entered (a
//! mismatch refused, counted and audited), the new one twice, valid and new; the change ends the
//! account's sessions and tokens and the new password signs in. The administration page's lists
//! of users and tokens come a bounded page at a time.

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

/// A lab admin's password reset (issue 11 point 8): only a lab admin, with a reason and a valid
/// temporary password, never on their own account; the user's account is then refused for
/// anything but changing it (`refuse_until_password_changed`), and their own change lifts that.
#[tokio::test]
async fn a_reset_password_must_be_changed_before_the_account_is_used_again() {
    use operations::account::refuse_until_password_changed;
    use operations::users::ChangeReason;

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
    let add = |name: &'static str, role: Role| {
        let store = store.clone();
        async move {
            store
                .add_user(
                    &Actor::Appliance,
                    NewUser {
                        username: Username::parse(name).expect("name"),
                        display_name: format!("{name} Tester"),
                        role,
                        password: NewPassword::parse(PASSWORD).expect("password"),
                    },
                )
                .await
                .expect("user")
        }
    };
    let olga = add("olga", Role::Operator).await;
    let lars = add("lars", Role::LabAdmin).await;
    let claire = add("claire", Role::Clinician).await;
    refuse_until_password_changed(&olga).expect("a usable account");
    let reason = ChangeReason::parse("forgot it after her leave").expect("reason");
    let admin = Requester::User(lars.clone());
    const TEMPORARY: &str = "temporary pass 42";

    // Who and what is refused: another role, oneself, a password too short.
    let refused = ops
        .reset_password(&Requester::User(claire), "olga", TEMPORARY, &reason)
        .await;
    assert!(
        matches!(refused, Err(OperationError::Forbidden { .. })),
        "{refused:?}"
    );
    let own = ops.reset_password(&admin, "lars", TEMPORARY, &reason).await;
    assert!(
        matches!(own, Err(OperationError::Forbidden { .. })),
        "{own:?}"
    );
    let short = ops.reset_password(&admin, "olga", "short", &reason).await;
    assert!(
        matches!(
            short,
            Err(OperationError::Invalid {
                field: "temporary_password",
                ..
            })
        ),
        "{short:?}"
    );
    let unknown = ops
        .reset_password(&admin, "nobody", TEMPORARY, &reason)
        .await;
    assert!(
        matches!(unknown, Err(OperationError::NotFound { .. })),
        "{unknown:?}"
    );
    assert!(
        store
            .authenticate("olga", PASSWORD)
            .await
            .expect("asks")
            .is_some(),
        "nothing refused changed the password"
    );

    // The reset: the temporary password signs in, to an account refused for anything else.
    ops.reset_password(&admin, "olga", TEMPORARY, &reason)
        .await
        .expect("reset");
    let reset = store
        .authenticate("olga", TEMPORARY)
        .await
        .expect("asks")
        .expect("the temporary password signs in");
    let refusal = refuse_until_password_changed(&reset).expect_err("must change first");
    assert!(refusal.to_string().contains("/account"), "{refusal}");

    // Her own change (the temporary password as the current one) lifts it.
    ops.change_own_password(
        &Requester::User(reset),
        CLIENT,
        &PasswordChange {
            current: TEMPORARY.into(),
            new: "olga's own password".into(),
            repeated: "olga's own password".into(),
        },
    )
    .await
    .expect("changed");
    let own = store
        .authenticate("olga", "olga's own password")
        .await
        .expect("asks")
        .expect("signs in");
    refuse_until_password_changed(&own).expect("usable again");
}

#[tokio::test]
async fn users_and_tokens_are_listed_a_bounded_page_at_a_time() {
    use operations::users::{AccountCursors, MAX_ACCOUNTS_PAGE};

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
    let add = |name: &str, role| {
        let store = store.clone();
        let name = name.to_owned();
        async move {
            store
                .add_user(
                    &Actor::Appliance,
                    NewUser {
                        username: Username::parse(&name).expect("name"),
                        display_name: format!("{name} Tester"),
                        role,
                        password: NewPassword::parse(PASSWORD).expect("password"),
                    },
                )
                .await
                .expect("user")
        }
    };
    let admin = add("admin", Role::LabAdmin).await;
    let mut users = vec![admin.clone()];
    for i in 0..11 {
        users.push(add(&format!("u{i:02}"), Role::Operator).await);
    }
    // A sign-in as `Operations::sign_in` records it; the lists read the newest one.
    store
        .record_event(
            &users[4].actor(),
            appliance::store::AuditEntry::new("session.sign_in", "user").id(users[4].id),
        )
        .await
        .expect("a sign-in");
    let mut tokens = Vec::new();
    for (i, owner) in users.iter().enumerate().take(8) {
        let (_, token) = store
            .create_api_token(&Actor::Appliance, owner.id, &format!("t{i}"))
            .await
            .expect("token");
        tokens.push(token);
    }
    let (_, olgas) = store
        .create_api_token(&Actor::Appliance, users[1].id, "second")
        .await
        .expect("token");
    tokens.push(olgas);
    store
        .revoke_api_token(&Actor::Appliance, tokens[2].id)
        .await
        .expect("revoked");

    // Users by name, 5 a page: 5 + 5 + 2, each page after the one before.
    let manager = Requester::User(admin.clone());
    let (mut names, mut sizes, mut cursors) = (Vec::new(), Vec::new(), AccountCursors::default());
    loop {
        let page = ops.accounts(&manager, &cursors, 5).await.expect("a page");
        sizes.push(page.users.len());
        for record in &page.users {
            names.push(record.user.username.clone());
            assert_eq!(
                record.last_sign_in.is_some(),
                record.user.id == users[4].id,
                "{}",
                record.user.username
            );
        }
        match page.users_next {
            Some(next) => cursors.users_after = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [5, 5, 2]);
    let mut expected: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
    expected.sort();
    assert_eq!(names, expected, "every user once, by name");

    // Live tokens newest first, 3 a page: the revoked one left out.
    let (mut listed, mut sizes, mut cursors) = (Vec::new(), Vec::new(), AccountCursors::default());
    loop {
        let page = ops.accounts(&manager, &cursors, 3).await.expect("a page");
        sizes.push(page.tokens.len());
        listed.extend(page.tokens.iter().map(|(owner, token)| {
            assert_eq!(owner.id, token.user_id);
            token.id
        }));
        match page.tokens_next {
            Some(next) => cursors.tokens_before = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 2]);
    let expected: Vec<_> = tokens
        .iter()
        .rev()
        .filter(|t| t.id != tokens[2].id)
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, expected, "every live token once, newest first");

    // Someone who is not a user manager sees their own tokens only, and no users.
    let own = ops
        .accounts(
            &Requester::User(users[1].clone()),
            &AccountCursors::default(),
            MAX_ACCOUNTS_PAGE,
        )
        .await
        .expect("own tokens");
    assert!(own.users.is_empty());
    assert_eq!(
        own.tokens.iter().map(|(_, t)| t.id).collect::<Vec<_>>(),
        [tokens[8].id, tokens[1].id]
    );

    // A page beyond the bound is refused, naming it.
    for limit in [0, MAX_ACCOUNTS_PAGE + 1] {
        match ops
            .accounts(&manager, &AccountCursors::default(), limit)
            .await
        {
            Err(OperationError::Invalid { field, reason }) => {
                assert_eq!(field, "limit");
                assert!(reason.contains("1 to 500"), "{reason}");
            }
            other => panic!("limit {limit}: {other:?}"),
        }
    }
}
