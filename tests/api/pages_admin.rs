//! The admin page's user management as a browser uses it: each user's last sign-in read from the
//! audit trail, changing a role (which holds from the user's next request) and enabling a
//! disabled user (who can then sign in again), with the refusals: bad input as 422 naming the
//! field with nothing stored, other roles and forged posts as 403, unknown users as 404.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};

use crate::helpers::{
    BrowserSession, Csrf, PASSWORD, TestApp, client, get_page, location, post_form, spawn_app,
};

/// The `name=value` of a `Set-Cookie` header for `name`, when it sets a value.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
}

/// The value of the first `attribute="…"` after `marker` in `html`.
fn attribute_after(html: &str, marker: &str, attribute: &str) -> Option<String> {
    let rest = &html[html.find(marker)?..];
    let value = &rest[rest.find(attribute)? + attribute.len()..];
    Some(value[..value.find('"')?].to_owned())
}

/// Signs in through the sign-in form as a browser does; `None` when the form refuses.
async fn sign_in(app: &TestApp, username: &str) -> Option<BrowserSession> {
    let (session, landed) = sign_in_with(app, username, PASSWORD).await?;
    assert_eq!(landed, "/", "{username}'s dashboard");
    Some(session)
}

/// Signs in with `password` through the sign-in form, following where the dashboard leads;
/// the session and the page it landed on, or `None` when the form refuses.
async fn sign_in_with(
    app: &TestApp,
    username: &str,
    password: &str,
) -> Option<(BrowserSession, String)> {
    let form = client()
        .get(app.url("/sign-in"))
        .send()
        .await
        .expect("sign-in page");
    let pre = set_cookie(&form, "ferrocount_sign_in").expect("pre-session cookie");
    let html = form.text().await.expect("page");
    let token = attribute_after(&html, "name=\"csrf_token\"", "value=\"").expect("form token");
    let answer = client()
        .post(app.url("/sign-in"))
        .header(COOKIE, &pre)
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .expect("sign-in");
    if answer.status() != StatusCode::SEE_OTHER {
        return None;
    }
    let cookie = set_cookie(&answer, "ferrocount_session")?;
    let mut landed = "/".to_owned();
    let home = loop {
        let page = client()
            .get(app.url(&landed))
            .header(COOKIE, &cookie)
            .send()
            .await
            .expect("a page");
        if page.status() != StatusCode::SEE_OTHER {
            break page;
        }
        let next = location(&page);
        assert_ne!(next, landed, "a redirect loop");
        landed = next;
    };
    let status = home.status();
    let home = home.text().await.expect("page");
    assert_eq!(status, StatusCode::OK, "{username} lands on {landed}");
    let csrf = attribute_after(&home, "<meta name=\"csrf-token\"", "content=\"")
        .expect("the page's CSRF token");
    Some((BrowserSession { cookie, csrf }, landed))
}

/// The users table's row for `username` on the admin page.
fn user_row<'a>(html: &'a str, username: &str) -> &'a str {
    let start = html
        .find(&format!("<tr><td>{username}</td>"))
        .unwrap_or_else(|| panic!("no row for {username}"));
    let row = &html[start..];
    &row[..row.find("</tr>").expect("row ends")]
}

async fn role_of(app: &TestApp, username: &str) -> String {
    sqlx::query_scalar("SELECT role FROM users WHERE username = ?")
        .bind(username)
        .fetch_one(app.store.pool())
        .await
        .expect("role")
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ?")
        .bind(action)
        .fetch_one(app.store.pool())
        .await
        .expect("audit count")
}

/// Asserts a refused form: 422, the page naming the field, and a notice that nothing changed.
async fn assert_refused(response: reqwest::Response, field: &str) {
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "refused on {field}"
    );
    let body = response.text().await.expect("body");
    assert!(body.contains("Nothing was changed."), "{body}");
    assert!(
        body.contains(&format!("{field}: ")),
        "the page names {field}: {body}"
    );
}

#[tokio::test]
async fn the_users_table_shows_each_users_last_sign_in_or_never() {
    let app = spawn_app().await;
    let _claire = sign_in(&app, "claire").await.expect("claire signs in");
    let lars = sign_in(&app, "lars").await.expect("lars signs in");
    let (status, html) = get_page(&app, Some(&lars), "/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("see audit trail"));
    assert!(
        user_row(&html, "olga").contains("<td>never</td>"),
        "olga never signed in"
    );
    for name in ["claire", "lars"] {
        let row = user_row(&html, name);
        assert!(!row.contains("<td>never</td>"), "{name} signed in: {row}");
    }
    // One sign-in entry per sign-in, each naming the user by id: the table shows the newest.
    let lars_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'lars'")
        .fetch_one(app.store.pool())
        .await
        .expect("lars");
    let last = app.store.last_sign_ins().await.expect("last sign-ins");
    assert!(last.contains_key(&appliance::store::UserId(lars_id)));
    assert_eq!(last.len(), 2, "claire and lars: {last:?}");
}

#[tokio::test]
async fn a_lab_admin_lifts_a_sign_in_lock_from_the_page_with_a_reason() {
    let app = spawn_app().await;
    let lars = sign_in(&app, "lars").await.expect("lars signs in");
    for _ in 0..5 {
        let refused = app
            .send(
                crate::helpers::As::Nobody,
                reqwest::Method::POST,
                "/api/v1/session",
                Some(&serde_json::json!({ "username": "claire", "password": "not the password" })),
            )
            .await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(
        sign_in(&app, "claire").await.is_none(),
        "claire is locked out"
    );
    let (_, page) = get_page(&app, Some(&lars), "/admin").await;
    assert!(user_row(&page, "claire").contains("action=\"/admin/users/claire/unlock\""));
    let before = audit_count(&app, "session.unlock").await;
    let without_reason = post_form(
        &app,
        &lars,
        "/admin/users/claire/unlock",
        &[("reason", " ")],
        Csrf::Right,
    )
    .await;
    assert_refused(without_reason, "reason").await;
    assert!(sign_in(&app, "claire").await.is_none(), "still locked");
    let lifted = post_form(
        &app,
        &lars,
        "/admin/users/claire/unlock",
        &[("reason", "called the ward: she mistyped")],
        Csrf::Right,
    )
    .await;
    assert_eq!(lifted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&lifted), "/admin?done=user-unlocked");
    let (_, page) = get_page(&app, Some(&lars), "/admin?done=user-unlocked").await;
    assert!(page.contains("Sign-in lock lifted"), "{page}");
    assert_eq!(audit_count(&app, "session.unlock").await, before + 1);
    assert!(
        sign_in(&app, "claire").await.is_some(),
        "claire signs in again"
    );
}

#[tokio::test]
async fn a_user_changes_their_own_password_on_the_account_page() {
    let app = spawn_app().await;
    let olga = sign_in(&app, "olga").await.expect("olga signs in");
    let (status, page) = get_page(&app, Some(&olga), "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Change your password"));
    assert!(page.contains("href=\"/account\""), "the header links to it");
    assert!(
        page.contains("class=\"main-nav\""),
        "an ordinary visit keeps the navigation"
    );
    let mismatch = post_form(
        &app,
        &olga,
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new secret"),
            ("new_password_again", "a brand new secreT"),
        ],
        Csrf::Right,
    )
    .await;
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = mismatch.text().await.expect("page");
    assert!(body.contains("Not changed: New password again: the two new passwords differ"));
    assert!(
        !body.contains("a brand new secret"),
        "no password is sent back"
    );
    let changed = post_form(
        &app,
        &olga,
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new secret"),
            ("new_password_again", "a brand new secret"),
        ],
        Csrf::Right,
    )
    .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&changed), "/sign-in?reason=password-changed");
    let (status, _) = get_page(&app, Some(&olga), "/account").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the old session ended");
    assert!(
        sign_in(&app, "olga").await.is_none(),
        "the old password is gone"
    );
    assert_eq!(audit_count(&app, "user.password").await, 1);
}

#[tokio::test]
async fn a_role_change_holds_from_the_users_next_request_and_is_audited() {
    let app = spawn_app().await;
    let olga = sign_in(&app, "olga").await.expect("olga signs in");
    let lars = sign_in(&app, "lars").await.expect("lars signs in");
    assert_eq!(
        get_page(&app, Some(&olga), "/runs/new").await.0,
        StatusCode::OK
    );
    assert_eq!(
        get_page(&app, Some(&olga), "/patients?mrn=ADM-1").await.0,
        StatusCode::FORBIDDEN,
        "an operator looks up no patients"
    );

    let changed = post_form(
        &app,
        &lars,
        "/admin/users/olga/role",
        &[("role", "clinician"), ("reason", "moved to the clinic")],
        Csrf::Right,
    )
    .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let target = location(&changed);
    assert_eq!(target, "/admin?done=role-changed");
    let (_, page) = get_page(&app, Some(&lars), &target).await;
    assert!(page.contains("Role changed"), "{page}");
    assert!(user_row(&page, "olga").contains("role-clinician"));

    // Olga's open session: the clinician's doors open, the operator's close.
    assert_eq!(
        get_page(&app, Some(&olga), "/runs/new").await.0,
        StatusCode::FORBIDDEN
    );
    assert_ne!(
        get_page(&app, Some(&olga), "/patients?mrn=ADM-1").await.0,
        StatusCode::FORBIDDEN
    );
    let reason: Option<String> =
        sqlx::query_scalar("SELECT reason FROM audit_log WHERE action = 'user.role'")
            .fetch_one(app.store.pool())
            .await
            .expect("audited");
    assert_eq!(reason.as_deref(), Some("moved to the clinic"));
}

#[tokio::test]
async fn role_changes_refuse_bad_input_oneself_other_roles_and_forged_posts() {
    let app = spawn_app().await;
    let lars = sign_in(&app, "lars").await.expect("lars signs in");
    let claire = sign_in(&app, "claire").await.expect("claire signs in");
    let path = "/admin/users/olga/role";
    for (fields, field) in [
        (vec![("role", "superuser"), ("reason", "why not")], "role"),
        (vec![("reason", "no role given")], "role"),
        (vec![("role", "clinician"), ("reason", "   ")], "reason"),
        (vec![("role", "clinician")], "reason"),
        (vec![("role", "operator"), ("reason", "the same")], "role"),
    ] {
        assert_refused(
            post_form(&app, &lars, path, &fields, Csrf::Right).await,
            field,
        )
        .await;
    }
    let own = post_form(
        &app,
        &lars,
        "/admin/users/lars/role",
        &[("role", "operator"), ("reason", "stepping down")],
        Csrf::Right,
    )
    .await;
    assert_refused(own, "username").await;
    let good = [("role", "clinician"), ("reason", "moved")];
    let by_clinician = post_form(&app, &claire, path, &good, Csrf::Right).await;
    assert_eq!(by_clinician.status(), StatusCode::FORBIDDEN);
    for csrf in [Csrf::Missing, Csrf::Wrong] {
        let forged = post_form(&app, &lars, path, &good, csrf).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{csrf:?}");
    }
    for unknown in [
        "/admin/users/nobody/role",
        "/admin/users/NOT%20A%20NAME/role",
    ] {
        let missing = post_form(&app, &lars, unknown, &good, Csrf::Right).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{unknown}");
    }
    assert_eq!(role_of(&app, "olga").await, "operator");
    assert_eq!(role_of(&app, "lars").await, "lab-admin");
    assert_eq!(audit_count(&app, "user.role").await, 0, "nothing stored");
}

#[tokio::test]
async fn an_enabled_user_signs_in_again_and_bad_enables_are_refused() {
    let app = spawn_app().await;
    let lars = sign_in(&app, "lars").await.expect("lars signs in");
    let olga = sign_in(&app, "olga").await.expect("olga signs in");
    let active = post_form(
        &app,
        &lars,
        "/admin/users/olga/enable",
        &[("reason", "back")],
        Csrf::Right,
    )
    .await;
    assert_refused(active, "username").await;

    let disabled = post_form(
        &app,
        &lars,
        "/admin/users/olga/disable",
        &[("reason", "on leave")],
        Csrf::Right,
    )
    .await;
    assert_eq!(disabled.status(), StatusCode::SEE_OTHER);
    assert!(sign_in(&app, "olga").await.is_none(), "disabled: no way in");
    let (_, page) = get_page(&app, Some(&lars), "/admin").await;
    assert!(user_row(&page, "olga").contains("action=\"/admin/users/olga/enable\""));
    assert!(!user_row(&page, "olga").contains("/role\""));

    let path = "/admin/users/olga/enable";
    let blank = post_form(&app, &lars, path, &[("reason", " ")], Csrf::Right).await;
    assert_refused(blank, "reason").await;
    let claire = sign_in(&app, "claire").await.expect("claire signs in");
    let by_clinician = post_form(&app, &claire, path, &[("reason", "back")], Csrf::Right).await;
    assert_eq!(by_clinician.status(), StatusCode::FORBIDDEN);
    for csrf in [Csrf::Missing, Csrf::Wrong] {
        let forged = post_form(&app, &lars, path, &[("reason", "back")], csrf).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{csrf:?}");
    }
    assert!(sign_in(&app, "olga").await.is_none(), "still disabled");
    assert_eq!(audit_count(&app, "user.enable").await, 0, "nothing stored");

    let enabled = post_form(
        &app,
        &lars,
        path,
        &[("reason", "back from leave")],
        Csrf::Right,
    )
    .await;
    assert_eq!(enabled.status(), StatusCode::SEE_OTHER);
    let target = location(&enabled);
    assert_eq!(target, "/admin?done=user-enabled");
    let (_, page) = get_page(&app, Some(&lars), &target).await;
    assert!(page.contains("User enabled"), "{page}");
    assert!(user_row(&page, "olga").contains("<td>active</td>"));
    assert!(sign_in(&app, "olga").await.is_some(), "olga signs in again");
    // Her session from before the disabling stays closed.
    let (status, _) = get_page(&app, Some(&olga), "/").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "back to the sign-in page");
    assert_eq!(audit_count(&app, "user.enable").await, 1);
}

#[tokio::test]
async fn lab_admins_cannot_disable_themselves_through_the_page() {
    let app = spawn_app().await;
    let lars = sign_in(&app, "lars").await.expect("lars signs in");
    let own = post_form(
        &app,
        &lars,
        "/admin/users/lars/disable",
        &[("reason", "bye")],
        Csrf::Right,
    )
    .await;
    assert_refused(own, "username").await;
    assert_eq!(audit_count(&app, "user.disable").await, 0);
}

#[tokio::test]
async fn the_audit_search_labels_say_the_date_format_and_zone() {
    let app = spawn_app().await;
    let lars = sign_in(&app, "lars").await.expect("lars signs in");
    let (_, html) = get_page(&app, Some(&lars), "/admin").await;
    assert_eq!(html.matches("(YYYY-MM-DD, UTC)").count(), 2, "from and to");
}

/// The audit search reaches every entry it selects, a page at a time through its "older" links
/// (the outside probe's search stopped silently at 500 of 1,037), and exports every one of them
/// as CSV: authenticated, audited, not cached, fields quoted and formulas neutralised.
#[tokio::test]
async fn the_audit_search_pages_through_every_entry_and_exports_them_as_csv() {
    use appliance::store::{Actor, AuditEntry};
    const ENTRIES: usize = 1_037;
    let app = spawn_app().await;
    // Written concurrently, so the views' group commit stores them in a few transactions.
    let writers: Vec<_> = (0..ENTRIES)
        .map(|n| {
            let store = app.store.clone();
            let reason = if n == 7 {
                "=HYPERLINK(\"x\"), a comma".to_owned()
            } else {
                format!("probe {n}")
            };
            tokio::spawn(async move {
                store
                    .record_view(
                        &Actor::Appliance,
                        AuditEntry::new("probe.event", "thing").id(n).reason(reason),
                    )
                    .await
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("joined").expect("recorded");
    }
    let lars = sign_in(&app, "lars").await.expect("lars signs in");

    let mut seen = std::collections::BTreeSet::new();
    let mut next = Some("/admin/audit?action=probe.event".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        assert!(pages <= 20, "the pages never end");
        let (status, html) = get_page(&app, Some(&lars), &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let on_page: Vec<&str> = html
            .split("<td>thing ")
            .skip(1)
            .filter_map(|rest| rest.split('<').next())
            .collect();
        assert!(
            (1..=100).contains(&on_page.len()),
            "{path}: {} entries on a page",
            on_page.len()
        );
        for id in on_page {
            assert!(seen.insert(id.to_owned()), "entry {id} shown twice");
        }
        next = html.find("rel=\"next\"").map(|at| {
            let before = &html[..at];
            let href = &before[before.rfind("href=\"").expect("a link") + 6..];
            href[..href.find('"').expect("link ends")]
                .replace("&#38;", "&")
                .replace("&amp;", "&")
        });
    }
    assert_eq!(seen.len(), ENTRIES, "every entry reached, in {pages} pages");

    let anonymous = client()
        .get(app.url("/admin/audit.csv?action=probe.event"))
        .send()
        .await
        .expect("GET");
    assert_ne!(
        anonymous.status(),
        StatusCode::OK,
        "no export without a session"
    );
    assert_eq!(audit_count(&app, "audit.export").await, 0);
    let export = client()
        .get(app.url("/admin/audit.csv?action=probe.event"))
        .header(COOKIE, &lars.cookie)
        .send()
        .await
        .expect("GET");
    assert_eq!(export.status(), StatusCode::OK);
    let header = |name: &str| {
        export
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header("cache-control"), "no-store");
    assert!(header("content-type").starts_with("text/csv"));
    assert!(header("content-disposition").starts_with("attachment"));
    let csv = export.text().await.expect("CSV");
    let records: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(records.len(), 1 + ENTRIES, "a header and every entry");
    assert!(records[0].starts_with("id,at,actor,"));
    assert!(
        csv.contains(",\"'=HYPERLINK(\"\"x\"\"), a comma\","),
        "quoted, quotes doubled, the formula neutralised"
    );
    assert_eq!(audit_count(&app, "audit.export").await, 1);
}

/// The status of `GET /api/v1/session` for `who`.
async fn api_session(app: &TestApp, who: crate::helpers::As<'_>) -> StatusCode {
    app.send(who, reqwest::Method::GET, "/api/v1/session", None)
        .await
        .status()
}

#[tokio::test]
async fn a_lab_admin_resets_a_password_and_the_user_changes_it_before_anything_else() {
    use crate::helpers::As;
    use reqwest::Method;

    let app = spawn_app().await;
    let lars = sign_in(&app, "lars").await.expect("lars signs in");
    let olga = sign_in(&app, "olga").await.expect("olga signs in");
    let olga_token = app
        .token(appliance::store::users::Role::Operator)
        .to_owned();
    assert_eq!(
        api_session(&app, As::Bearer(&olga_token)).await,
        StatusCode::OK
    );

    // The form is on every other user's row, not on one's own.
    let (_, page) = get_page(&app, Some(&lars), "/admin").await;
    assert!(user_row(&page, "olga").contains("action=\"/admin/users/olga/password-reset\""));
    assert!(!user_row(&page, "lars").contains("password-reset"));
    let reset = "/admin/users/olga/password-reset";
    let without_reason = post_form(
        &app,
        &lars,
        reset,
        &[("temporary_password", "temporary pass 42"), ("reason", " ")],
        Csrf::Right,
    )
    .await;
    assert_refused(without_reason, "reason").await;
    let short = post_form(
        &app,
        &lars,
        reset,
        &[("temporary_password", "short"), ("reason", "forgot it")],
        Csrf::Right,
    )
    .await;
    assert_refused(short, "temporary_password").await;
    let own = post_form(
        &app,
        &lars,
        "/admin/users/lars/password-reset",
        &[
            ("temporary_password", "temporary pass 42"),
            ("reason", "mine"),
        ],
        Csrf::Right,
    )
    .await;
    assert_eq!(
        own.status(),
        StatusCode::FORBIDDEN,
        "one's own: the account page"
    );
    let by_clinician = sign_in(&app, "claire").await.expect("claire signs in");
    let forbidden = post_form(
        &app,
        &by_clinician,
        reset,
        &[
            ("temporary_password", "temporary pass 42"),
            ("reason", "forgot it"),
        ],
        Csrf::Right,
    )
    .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(audit_count(&app, "user.password_reset").await, 0);
    assert_eq!(
        get_page(&app, Some(&olga), "/").await.0,
        StatusCode::OK,
        "nothing changed"
    );

    let done = post_form(
        &app,
        &lars,
        reset,
        &[
            ("temporary_password", "temporary pass 42"),
            ("reason", "forgot it after her leave"),
        ],
        Csrf::Right,
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/admin?done=password-reset");
    let (_, page) = get_page(&app, Some(&lars), "/admin?done=password-reset").await;
    assert!(page.contains("Temporary password set"), "{page}");
    assert!(user_row(&page, "olga").contains("to be changed at next sign-in"));
    // Audited with who, when and why.
    let (by, reason, at): (Option<i64>, Option<String>, String) = sqlx::query_as(
        "SELECT user_id, reason, at FROM audit_log WHERE action = 'user.password_reset'",
    )
    .fetch_one(app.store.pool())
    .await
    .expect("the reset's audit entry");
    let lars_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'lars'")
        .fetch_one(app.store.pool())
        .await
        .expect("lars");
    assert_eq!(
        (by, reason.as_deref()),
        (Some(lars_id), Some("forgot it after her leave"))
    );
    assert!(!at.is_empty());

    // Her open session and her token ended; the old password no longer signs in.
    assert_eq!(
        get_page(&app, Some(&olga), "/account").await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        api_session(&app, As::Bearer(&olga_token)).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(sign_in_with(&app, "olga", PASSWORD).await.is_none());

    // The temporary password signs in to the account page, and only there.
    let (olga, landed) = sign_in_with(&app, "olga", "temporary pass 42")
        .await
        .expect("the temporary password signs in");
    assert_eq!(landed, "/account");
    let (_, page) = get_page(&app, Some(&olga), "/account").await;
    assert!(
        page.contains("A lab admin set a temporary password for you"),
        "{page}"
    );
    assert!(
        !page.contains("class=\"main-nav\"") && !page.contains("href=\"/qc\""),
        "no navigation to pages that only send her back: {page}"
    );
    for elsewhere in ["/", "/qc", "/runs/new", "/sign-in"] {
        let answer = client()
            .get(app.url(elsewhere))
            .header(COOKIE, &olga.cookie)
            .send()
            .await
            .expect("page");
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{elsewhere}");
        assert_eq!(location(&answer), "/account", "{elsewhere}");
    }
    let token = post_form(
        &app,
        &olga,
        "/admin/tokens",
        &[("label", "sneaky")],
        Csrf::Right,
    )
    .await;
    assert_eq!(location(&token), "/account", "no token before the change");
    // The JSON API refuses her session in words.
    let api = app
        .send(As::Browser(&olga), Method::GET, "/api/v1/session", None)
        .await;
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
    let problem: serde_json::Value = api.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("temporary password") && d.contains("/account")),
        "{problem}"
    );
    let made = app
        .send(
            As::Browser(&olga),
            Method::POST,
            "/api/v1/tokens",
            Some(&serde_json::json!({ "label": "sneaky" })),
        )
        .await;
    assert_eq!(made.status(), StatusCode::FORBIDDEN);

    // Her own change, with the temporary password as the current one, opens everything again.
    let changed = post_form(
        &app,
        &olga,
        "/account/password",
        &[
            ("current_password", "temporary pass 42"),
            ("new_password", "olga's own password"),
            ("new_password_again", "olga's own password"),
        ],
        Csrf::Right,
    )
    .await;
    assert_eq!(location(&changed), "/sign-in?reason=password-changed");
    let (olga, landed) = sign_in_with(&app, "olga", "olga's own password")
        .await
        .expect("her own password signs in");
    assert_eq!(landed, "/");
    assert_eq!(api_session(&app, As::Browser(&olga)).await, StatusCode::OK);
    let (_, page) = get_page(&app, Some(&lars), "/admin").await;
    assert!(!user_row(&page, "olga").contains("to be changed at next sign-in"));
}

#[tokio::test]
async fn the_users_and_tokens_on_the_admin_page_are_bounded_pages_with_links() {
    use appliance::store::Actor;
    use appliance::store::users::{NewPassword, NewUser, Role, Username};

    let app = spawn_app().await;
    let lars = sign_in(&app, "lars").await.expect("lars signs in");
    let mut names = Vec::new();
    for i in 0..60 {
        let name = format!("pgu{i:02}");
        app.store
            .add_user(
                &Actor::Appliance,
                NewUser {
                    username: Username::parse(&name).expect("a name"),
                    display_name: format!("Paged User {i}"),
                    role: Role::Operator,
                    password: NewPassword::parse(PASSWORD).expect("a password"),
                },
            )
            .await
            .expect("a user");
        names.push(name);
    }
    let lars_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'lars'")
        .fetch_one(app.store.pool())
        .await
        .expect("lars");
    let mut labels = Vec::new();
    for i in 0..60 {
        let label = format!("pgt{i:02}");
        app.store
            .create_api_token(&Actor::Appliance, appliance::store::UserId(lars_id), &label)
            .await
            .expect("a token");
        labels.push(label);
    }
    // 50 a page: the users by name over two pages, every one once.
    let (shown, pages) =
        crate::pages_clinical::walk_pages(&app, &lars, "/admin", "users-heading", &names, 50).await;
    assert_eq!(shown, names);
    assert_eq!(pages, 2);
    // The tokens newest first over two pages, every one once.
    labels.reverse();
    let (shown, pages) =
        crate::pages_clinical::walk_pages(&app, &lars, "/admin", "tokens-heading", &labels, 50)
            .await;
    assert_eq!(shown, labels);
    assert_eq!(pages, 2);
}
