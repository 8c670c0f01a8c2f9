//! The lab pages over loopback HTTP: QC (Levey–Jennings charts, recording a measurement and its
//! JSON twin), calibrations (list, detail, activation) and administration (users, API tokens,
//! audit search, instrument log, backup download). Each page renders real stored data for the
//! roles that may see it and is refused for the others; each form is checked for success, bad
//! input (422 naming the field, nothing stored) and a missing or wrong CSRF token.

use appliance::store::calibrations::{CalibrationContent, NewCalibration, ReagentLot};
use appliance::store::instrument_log::{LogKind, NewLogEntry};
use appliance::store::qc::{QcLot, QcMaterialKind, TargetSource};
use appliance::store::users::{Role, Username};
use appliance::store::{Actor, CalibrationId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    As, BrowserSession, Csrf, PASSWORD, ROLES, TestApp, assert_problem, client, get_page, location,
    post_form, spawn_app, spawn_fresh_app,
};

fn name_of(role: Role) -> &'static str {
    ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, name)| *name)
        .expect("role")
}

async fn browser(app: &TestApp, role: Role) -> BrowserSession {
    app.sign_in(name_of(role), PASSWORD).await
}

/// The page's `<meta name="csrf-token">` equals the session's token (forms can use either).
fn meta_csrf(body: &str) -> Option<String> {
    let start =
        body.find("name=\"csrf-token\" content=\"")? + "name=\"csrf-token\" content=\"".len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_owned())
}

/// Asserts a page refused as 403 for this role, naming the role.
async fn assert_forbidden_page(app: &TestApp, session: &BrowserSession, path: &str, role: Role) {
    let (status, body) = get_page(app, Some(session), path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "GET {path} as {role}");
    assert!(
        body.contains(role.as_str()),
        "the refusal names the role: {body}"
    );
}

/// Asserts that without a session the page sends the browser to sign in, coming back after.
async fn assert_sign_in_redirect(app: &TestApp, path: &str) {
    let response = client().get(app.url(path)).send().await.expect("GET");
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "GET {path} signed out"
    );
    let target = location(&response);
    assert!(target.starts_with("/sign-in"), "{path} → {target}");
}

/// A control material with one lot, target mean 100 and SD 2 (manufacturer's).
async fn control_lot(app: &TestApp) -> QcLot {
    let actor = Actor::Appliance;
    let material = app
        .store
        .add_qc_material(
            &actor,
            "Phantom T2 mid",
            QcMaterialKind::Phantom,
            None,
            "t2_ms",
        )
        .await
        .expect("material");
    let expires = time::Date::from_calendar_date(2099, time::Month::December, 31).expect("date");
    let lot = app
        .store
        .add_qc_lot(&actor, material.id, "PH-77", expires)
        .await
        .expect("lot");
    app.store
        .set_qc_target(&actor, lot.id, 100.0, 2.0, TargetSource::Manufacturer, None)
        .await
        .expect("target");
    lot
}

/// (status, rule names) of the newest QC result, read straight from the database.
async fn newest_qc(app: &TestApp) -> (String, String, Option<i64>) {
    sqlx::query_as(
        "SELECT status, violations_json, operator_id FROM qc_results ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(app.store.pool())
    .await
    .expect("a QC result")
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ?")
        .bind(action)
        .fetch_one(app.store.pool())
        .await
        .expect("count")
}

#[tokio::test]
async fn qc_page_shows_a_levey_jennings_chart_per_lot_with_violations_marked() {
    let app = spawn_app().await;
    let lot = control_lot(&app).await;
    let operator = browser(&app, Role::Operator).await;
    // z = 0.25, then z = +3.5: the second breaks 1-2s (warning) and 1-3s (reject).
    for value in ["100.5", "107"] {
        let response = post_form(
            &app,
            &operator,
            "/qc/measurements",
            &[("material_lot_id", &lot.id.0.to_string()), ("value", value)],
            Csrf::Right,
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    for (role, _) in ROLES {
        let session = browser(&app, role).await;
        let (status, body) = get_page(&app, Some(&session), "/qc").await;
        assert_eq!(status, StatusCode::OK, "GET /qc as {role}");
        assert!(body.contains("Phantom T2 mid"), "{role}: the material");
        assert!(body.contains("PH-77"), "{role}: the lot");
        assert!(body.contains("<svg"), "{role}: a chart");
        assert!(body.contains("1-3s"), "{role}: the violation is named");
        assert!(
            body.contains("status-fail\">Reject</span> <span class=\"muted\">1-2s, 1-3s"),
            "{role}: the phantom history shows the stored verdict"
        );
        assert_eq!(meta_csrf(&body).as_deref(), Some(session.csrf.as_str()));
        // The phantom history lists both checks; the form only for those who may record.
        assert!(
            body.contains("107.0 ms") && body.contains("100.5 ms"),
            "{role}"
        );
        assert_eq!(
            body.contains("action=\"/qc/measurements\""),
            role != Role::Clinician,
            "{role}: the form"
        );
    }
    assert_sign_in_redirect(&app, "/qc").await;
}

#[tokio::test]
async fn recording_qc_judges_the_value_by_westgard_and_audits_it() {
    let app = spawn_fresh_app(|_| {}).await;
    let lot = control_lot(&app).await;
    let lot_id = lot.id.0.to_string();
    let operator = browser(&app, Role::Operator).await;

    let response = post_form(
        &app,
        &operator,
        "/qc/measurements",
        &[
            ("material_lot_id", &lot_id),
            ("value", "101.0"),
            ("comment", "morning QC"),
        ],
        Csrf::Right,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let target = location(&response);
    assert!(target.starts_with("/qc?recorded="), "{target}");
    let (status, body) = get_page(&app, Some(&operator), &target).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("recorded: pass"), "the verdict is shown");
    let (status_text, violations, operator_id) = newest_qc(&app).await;
    assert_eq!(status_text, "pass");
    assert_eq!(violations, "[]");
    let olga = app
        .store
        .user_by_name(&Username::parse("olga").unwrap())
        .await
        .unwrap();
    assert_eq!(operator_id, Some(olga.id.0), "recorded as the operator");

    // 104.5 is z = +2.25 (1-2s, a warning); 104.6 next is the second beyond +2 SD (2-2s, reject).
    post_form(
        &app,
        &operator,
        "/qc/measurements",
        &[("material_lot_id", &lot_id), ("value", "104.5")],
        Csrf::Right,
    )
    .await;
    assert_eq!(newest_qc(&app).await.0, "warning");
    post_form(
        &app,
        &operator,
        "/qc/measurements",
        &[("material_lot_id", &lot_id), ("value", "104.6")],
        Csrf::Right,
    )
    .await;
    let (status_text, violations, _) = newest_qc(&app).await;
    assert_eq!(status_text, "reject");
    assert!(violations.contains("2-2s"), "{violations}");
    assert_eq!(app.count("qc_results").await, 3);
    assert_eq!(audit_count(&app, "qc.result.add").await, 3);
}

#[tokio::test]
async fn the_qc_form_refuses_bad_input_wrong_roles_and_forged_posts() {
    let app = spawn_fresh_app(|_| {}).await;
    let lot = control_lot(&app).await;
    let lot_id = lot.id.0.to_string();
    let operator = browser(&app, Role::Operator).await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("material_lot_id", &lot_id), ("value", "abc")], "value"),
        (&[("material_lot_id", &lot_id), ("value", "NaN")], "value"),
        (
            &[("material_lot_id", "999999"), ("value", "100")],
            "material_lot_id",
        ),
        (
            &[("material_lot_id", "x"), ("value", "100")],
            "material_lot_id",
        ),
    ];
    for (fields, field) in cases {
        let response = post_form(&app, &operator, "/qc/measurements", fields, Csrf::Right).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains(field), "names {field}: {fields:?}");
        assert!(body.contains("Record a QC measurement"), "the form again");
    }
    for csrf in [Csrf::Missing, Csrf::Wrong] {
        let response = post_form(
            &app,
            &operator,
            "/qc/measurements",
            &[("material_lot_id", &lot_id), ("value", "100")],
            csrf,
        )
        .await;
        assert!(response.status().is_client_error());
        assert!(response.text().await.unwrap().contains("csrf_token"));
    }
    let clinician = browser(&app, Role::Clinician).await;
    let response = post_form(
        &app,
        &clinician,
        "/qc/measurements",
        &[("material_lot_id", &lot_id), ("value", "100")],
        Csrf::Right,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("qc_results").await, 0, "nothing stored");
}

#[tokio::test]
async fn qc_measurements_can_be_recorded_through_the_api() {
    let app = spawn_fresh_app(|_| {}).await;
    let lot = control_lot(&app).await;
    let operator = app.token(Role::Operator).to_owned();
    let response = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/qc",
            Some(&json!({ "lot_id": lot.id.0, "value": 93.5, "comment": "z = -3.25" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "reject");
    let rules: Vec<&str> = body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["rule"].as_str())
        .collect();
    assert_eq!(rules, ["1-2s", "1-3s"]);
    let clinician = app.token(Role::Clinician).to_owned();
    let refused = app
        .send(
            As::Bearer(&clinician),
            Method::POST,
            "/api/v1/qc",
            Some(&json!({ "lot_id": lot.id.0, "value": 100.0 })),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "clinician").await;
    let wrong_type = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/qc",
            Some(&json!({ "lot_id": lot.id.0, "value": "high" })),
        )
        .await;
    assert_problem(wrong_type, StatusCode::UNPROCESSABLE_ENTITY, "value").await;
    let unknown = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/qc",
            Some(&json!({ "lot_id": 424242, "value": 100.0 })),
        )
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "QC lot").await;
    assert_eq!(app.count("qc_results").await, 1, "only the good one stored");
}

/// A calibration of lot RL-LAB at TE 4 ms (its numbers are a plausible lot's, made up).
pub(crate) const CALIBRATION_TOML: &str = r#"
lot = "RL-LAB"
te_ms = 4.0
slope_per_s_per_cell = 0.004
slope_se = 0.00004
intercept_per_s = 0.05
intercept_se = 0.0012
slope_intercept_cov = -2e-8
fit_df = 28
lob_cells = 1.3
lod_cells = 2.5
loq_cells = 6.5
created = "2026-11-24T04:00:00Z"
levels_cells = [0.0, 5.0, 20.0, 100.0]

[linearity]
quadratic_coefficient = 1e-7
quadratic_coefficient_se = 2e-7
quadratic_p_value = 0.62
linear = true

[[linearity.levels]]
level_cells = 0.0
deviation_cells = 0.1
allowable_cells = 2.0

[[linearity.levels]]
level_cells = 5.0
deviation_cells = -0.2
allowable_cells = 2.0

[[linearity.levels]]
level_cells = 20.0
deviation_cells = 0.3
allowable_cells = 2.0

[[linearity.levels]]
level_cells = 100.0
deviation_cells = 0.5
allowable_cells = 10.0
"#;

/// Two calibrations of one lot; the first approved, the second pending.
async fn calibrations(app: &TestApp) -> (CalibrationId, CalibrationId) {
    let new = NewCalibration {
        reagent_lot: ReagentLot::parse("RL-LAB").unwrap(),
        te_us: 4000,
        content: CalibrationContent::toml(CALIBRATION_TOML).unwrap(),
        note: Some("dilution series of 24 Nov".into()),
    };
    let first = app
        .store
        .add_calibration(&Actor::Appliance, &new)
        .await
        .unwrap();
    app.store
        .decide_calibration(
            &Actor::Appliance,
            first.id,
            appliance::store::calibrations::CalibrationDecision::Approve,
            "tests",
        )
        .await
        .unwrap();
    let second = app
        .store
        .add_calibration(&Actor::Appliance, &new)
        .await
        .unwrap();
    (first.id, second.id)
}

#[tokio::test]
async fn calibration_pages_show_lots_the_fit_limits_and_linearity() {
    let app = spawn_app().await;
    let (active, inactive) = calibrations(&app).await;
    for (role, _) in ROLES {
        let session = browser(&app, role).await;
        let (status, list) = get_page(&app, Some(&session), "/calibrations").await;
        assert_eq!(status, StatusCode::OK, "{role}");
        assert!(
            list.contains(&format!("/calibrations/{}", inactive.0)),
            "{role}: lots linked"
        );
        assert!(
            list.contains("Approved (in use)") && list.contains("Pending approval"),
            "{role}: which is in use, which waits"
        );
        let (status, detail) = get_page(
            &app,
            Some(&session),
            &format!("/calibrations/{}", inactive.0),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{role}");
        for text in [
            "RL-LAB",
            "1.3 cells",
            "2.5 cells",
            "6.5 cells",
            "EP06 linearity: linear",
            "per-sample readings are not stored",
            "<svg",
        ] {
            assert!(detail.contains(text), "{role}: {text}");
        }
        assert!(
            detail.contains("0.00400 ± 0.00004"),
            "{role}: the slope with its SE"
        );
        assert_eq!(
            detail.contains(&format!("/calibrations/{}/approve", inactive.0)),
            role == Role::LabAdmin,
            "{role}: the approval form"
        );
        assert_eq!(
            list.contains("name=\"content\""),
            role == Role::LabAdmin,
            "{role}: the import form"
        );
    }
    let admin = browser(&app, Role::LabAdmin).await;
    let (status, active_page) =
        get_page(&app, Some(&admin), &format!("/calibrations/{}", active.0)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!active_page.contains(&format!("/calibrations/{}/approve", active.0)));
    assert_eq!(
        get_page(&app, Some(&admin), "/calibrations/9999").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_page(&app, Some(&admin), "/calibrations/abc").await.0,
        StatusCode::NOT_FOUND
    );
    assert_sign_in_redirect(&app, "/calibrations").await;
}

#[tokio::test]
async fn approving_a_calibration_needs_a_lab_admin_their_signature_a_reason_and_the_csrf_token() {
    let app = spawn_app().await;
    let (first, second) = calibrations(&app).await;
    let path = format!("/calibrations/{}/approve", second.0);
    let state_of = |id: CalibrationId| {
        let store = app.store.clone();
        async move { store.calibration(id).await.unwrap().state.as_str() }
    };
    let signed = |reason: &'static str, password: &'static str| {
        [
            ("reason", reason),
            ("printed_name", "lars Tester"),
            ("password", password),
        ]
    };
    let operator = browser(&app, Role::Operator).await;
    let refused = post_form(&app, &operator, &path, &signed("x", PASSWORD), Csrf::Right).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let admin = browser(&app, Role::LabAdmin).await;
    let blank = post_form(&app, &admin, &path, &signed("  ", PASSWORD), Csrf::Right).await;
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(blank.text().await.unwrap().contains("reason"));
    let wrong = post_form(&app, &admin, &path, &signed("ok", "not it"), Csrf::Right).await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = wrong.text().await.unwrap();
    assert!(
        page.contains("Not approved") && page.contains("password") && page.contains(" autofocus>"),
        "the error beside the form, the password field focused"
    );
    assert_eq!(audit_count(&app, "calibration.sign_refused").await, 1);
    for csrf in [Csrf::Missing, Csrf::Wrong] {
        let forged = post_form(&app, &admin, &path, &signed("forged", PASSWORD), csrf).await;
        assert!(forged.status().is_client_error());
    }
    assert_eq!(state_of(second).await, "pending", "nothing changed");

    let done = post_form(
        &app,
        &admin,
        &path,
        &signed("new lot verified", PASSWORD),
        Csrf::Right,
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let (status, page) = get_page(&app, Some(&admin), &location(&done)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("is approved"), "{page}");
    assert!(page.contains("new lot verified"), "who, when and why shown");
    assert!(
        page.contains("by lars Tester: new lot verified") && !page.contains("by user "),
        "the decider by their printed name: {page}"
    );
    assert_eq!(state_of(second).await, "approved");
    assert_eq!(state_of(first).await, "superseded");
    let reason: Option<String> = sqlx::query_scalar(
        "SELECT reason FROM audit_log WHERE action = 'calibration.approve' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(reason.as_deref(), Some("new lot verified"));
    // Decided once: the superseded one is not approved again.
    let again = post_form(
        &app,
        &admin,
        &format!("/calibrations/{}/approve", first.0),
        &signed("back", PASSWORD),
        Csrf::Right,
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_lab_admin_imports_a_calibration_on_the_page_as_the_api_checks_it() {
    let app = spawn_app().await;
    let admin = browser(&app, Role::LabAdmin).await;
    let bad = post_form(
        &app,
        &admin,
        "/calibrations",
        &[("content", "lot = \"X\""), ("note", "typo")],
        Csrf::Right,
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = bad.text().await.unwrap();
    assert!(page.contains("Not imported"), "{page}");
    assert!(
        page.contains("lot = &quot;X&quot;") || page.contains("lot = &#34;X&#34;"),
        "kept"
    );
    let done = post_form(
        &app,
        &admin,
        "/calibrations",
        &[("content", CALIBRATION_TOML), ("note", "from the file")],
        Csrf::Right,
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let (status, page) = get_page(&app, Some(&admin), &location(&done)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("is stored, pending"), "{page}");
    let newest = app.store.calibration_page(None, 1).await.unwrap();
    let stored = &newest.calibrations[0];
    assert_eq!(stored.reagent_lot, "RL-LAB");
    assert_eq!(stored.state.as_str(), "pending");
    assert_eq!(stored.note.as_deref(), Some("from the file"));
    let operator = browser(&app, Role::Operator).await;
    let refused = post_form(
        &app,
        &operator,
        "/calibrations",
        &[("content", CALIBRATION_TOML)],
        Csrf::Right,
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_admin_page_shows_users_tokens_and_the_instrument_log_to_lab_admins_only() {
    let app = spawn_app().await;
    app.store
        .log_instrument(&NewLogEntry::message(
            LogKind::Event,
            "magnet stable at 32.00 °C",
        ))
        .await
        .unwrap();
    let admin = browser(&app, Role::LabAdmin).await;
    let (status, body) = get_page(&app, Some(&admin), "/admin").await;
    assert_eq!(status, StatusCode::OK);
    for text in [
        "olga",
        "claire",
        "lars",
        "magnet stable at 32.00 °C",
        "tests (fct_",
        "/admin/backup",
    ] {
        assert!(body.contains(text), "{text}");
    }
    // Lars has signed in (this session); Olga has not yet.
    let row = |name: &str| {
        let start = body
            .find(&format!("<tr><td>{name}</td>"))
            .expect("a user row");
        let end = body[start..].find("</tr>").expect("the row's end") + start;
        body[start..end].to_owned()
    };
    assert!(row("olga").contains("<td>never</td>"), "{}", row("olga"));
    assert!(row("lars").contains(" UTC</td>"), "{}", row("lars"));
    for role in [Role::Operator, Role::Clinician] {
        let session = browser(&app, role).await;
        for path in ["/admin", "/admin/audit", "/admin/backup"] {
            assert_forbidden_page(&app, &session, path, role).await;
        }
    }
    assert_sign_in_redirect(&app, "/admin").await;
}

#[tokio::test]
async fn lab_admins_add_and_disable_users_with_every_field_checked() {
    let app = spawn_app().await;
    let admin = browser(&app, Role::LabAdmin).await;
    let good = [
        ("username", "nina"),
        ("display_name", "Nina Nurse"),
        ("role", "operator"),
        ("password", "a long enough password"),
    ];
    let with = |field: &str, value: &'static str| {
        let mut fields = good.to_vec();
        for pair in &mut fields {
            if pair.0 == field {
                pair.1 = value;
            }
        }
        fields
    };
    let users_before = app.count("users").await;
    for (field, value) in [
        ("username", "9lives"),
        ("username", ""),
        ("role", "superuser"),
        ("password", "short"),
        ("username", "olga"),
    ] {
        let response = post_form(
            &app,
            &admin,
            "/admin/users",
            &with(field, value),
            Csrf::Right,
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}"
        );
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains(&format!("{field}:")),
            "names {field}"
        );
    }
    for csrf in [Csrf::Missing, Csrf::Wrong] {
        let forged = post_form(&app, &admin, "/admin/users", &good, csrf).await;
        assert!(forged.status().is_client_error());
    }
    let operator = browser(&app, Role::Operator).await;
    let refused = post_form(&app, &operator, "/admin/users", &good, Csrf::Right).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("users").await, users_before, "nothing stored");

    let added = post_form(&app, &admin, "/admin/users", &good, Csrf::Right).await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let (_, page) = get_page(&app, Some(&admin), &location(&added)).await;
    assert!(page.contains("User added.") && page.contains("Nina Nurse"));
    let nina = app
        .store
        .user_by_name(&Username::parse("nina").unwrap())
        .await
        .unwrap();
    assert_eq!(nina.role, Role::Operator);
    let nina_session = app.sign_in("nina", "a long enough password").await;
    assert_eq!(
        get_page(&app, Some(&nina_session), "/qc").await.0,
        StatusCode::OK
    );

    let own = post_form(
        &app,
        &admin,
        "/admin/users/lars/disable",
        &[("reason", "test")],
        Csrf::Right,
    )
    .await;
    assert_eq!(own.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let no_reason = post_form(
        &app,
        &admin,
        "/admin/users/nina/disable",
        &[("reason", "")],
        Csrf::Right,
    )
    .await;
    assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let disabled = post_form(
        &app,
        &admin,
        "/admin/users/nina/disable",
        &[("reason", "left the ward")],
        Csrf::Right,
    )
    .await;
    assert_eq!(disabled.status(), StatusCode::SEE_OTHER);
    assert!(
        app.store
            .user_by_name(&Username::parse("nina").unwrap())
            .await
            .unwrap()
            .disabled
    );
    // Her session ended with the account.
    assert_eq!(
        get_page(&app, Some(&nina_session), "/qc").await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(audit_count(&app, "user.add").await, users_before + 1);
    assert_eq!(audit_count(&app, "user.disable").await, 1);
}

#[tokio::test]
async fn an_api_token_is_shown_once_works_and_can_be_revoked() {
    let app = spawn_app().await;
    let admin = browser(&app, Role::LabAdmin).await;
    let blank = post_form(
        &app,
        &admin,
        "/admin/tokens",
        &[("label", " ")],
        Csrf::Right,
    )
    .await;
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(blank.text().await.unwrap().contains("label:"));
    let forged = post_form(
        &app,
        &admin,
        "/admin/tokens",
        &[("label", "x")],
        Csrf::Missing,
    )
    .await;
    assert!(forged.status().is_client_error());
    let tokens_before = app.count("api_tokens").await;

    let made = post_form(
        &app,
        &admin,
        "/admin/tokens",
        &[("label", "lab dashboard")],
        Csrf::Right,
    )
    .await;
    assert_eq!(made.status(), StatusCode::CREATED);
    assert_eq!(made.headers()["cache-control"], "no-store");
    let body = made.text().await.unwrap();
    let marker = "<code class=\"token-secret\">";
    let start = body.find(marker).expect("the secret") + marker.len();
    let end = body[start..].find('<').expect("the end of the secret") + start;
    let secret = body[start..end].to_owned();
    assert!(secret.starts_with("fct_"), "{secret}");
    assert_eq!(app.count("api_tokens").await, tokens_before + 1);
    let works = app
        .send(As::Bearer(&secret), Method::GET, "/api/v1/qc", None)
        .await;
    assert_eq!(works.status(), StatusCode::OK);
    let (_, later) = get_page(&app, Some(&admin), "/admin").await;
    assert!(
        later.contains("lab dashboard") && !later.contains(&secret),
        "shown once"
    );

    let id: i64 = sqlx::query_scalar("SELECT id FROM api_tokens WHERE label = 'lab dashboard'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let path = format!("/admin/tokens/{id}/revoke");
    let operator = browser(&app, Role::Operator).await;
    // Someone else's token does not exist for an operator (a 403 would confirm it does).
    let not_theirs = post_form(&app, &operator, &path, &[], Csrf::Right).await;
    assert_eq!(not_theirs.status(), StatusCode::NOT_FOUND);
    let revoked = post_form(&app, &admin, &path, &[], Csrf::Right).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let refused = app
        .send(As::Bearer(&secret), Method::GET, "/api/v1/qc", None)
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(audit_count(&app, "api_token.revoke").await, 1);
}

#[tokio::test]
async fn the_audit_search_filters_by_user_action_dates_and_text() {
    let app = spawn_fresh_app(|_| {}).await;
    let lot = control_lot(&app).await;
    let operator = browser(&app, Role::Operator).await;
    post_form(
        &app,
        &operator,
        "/qc/measurements",
        &[
            ("material_lot_id", &lot.id.0.to_string()),
            ("value", "99.1"),
            ("comment", "zebra"),
        ],
        Csrf::Right,
    )
    .await;
    let admin = browser(&app, Role::LabAdmin).await;
    // Rows of the audit table only (the page has other tables).
    let rows = |body: &str| {
        body.find("<table class=\"audit\">").map_or(0, |start| {
            let table = &body[start..];
            let end = table.find("</table>").unwrap_or(table.len());
            table[..end].matches("<tr><td>").count()
        })
    };
    let today = time::OffsetDateTime::now_utc().date();
    let day = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());

    let (status, by_olga) = get_page(&app, Some(&admin), "/admin/audit?user=olga&action=qc").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&by_olga), 1, "olga recorded one QC value");
    assert!(by_olga.contains("qc.result.add") && by_olga.contains("1 entry found"));
    let (_, by_lars) = get_page(&app, Some(&admin), "/admin/audit?user=lars&action=qc").await;
    assert_eq!(rows(&by_lars), 0);
    let (_, appliance_qc) =
        get_page(&app, Some(&admin), "/admin/audit?user=appliance&action=qc").await;
    assert_eq!(
        rows(&appliance_qc),
        3,
        "material, lot and target were the appliance's"
    );
    let (_, text) = get_page(&app, Some(&admin), "/admin/audit?text=99.1").await;
    assert_eq!(rows(&text), 1);
    let (_, today_rows) = get_page(
        &app,
        Some(&admin),
        &format!("/admin/audit?action=qc&from={0}&to={0}", day(today)),
    )
    .await;
    assert_eq!(rows(&today_rows), 4);
    let tomorrow = today.next_day().unwrap();
    let (_, later) = get_page(
        &app,
        Some(&admin),
        &format!("/admin/audit?from={}", day(tomorrow)),
    )
    .await;
    assert_eq!(rows(&later), 0);
    assert!(later.contains("0 entries found"));
    let (status, bad) = get_page(&app, Some(&admin), "/admin/audit?from=24.11.2026").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.contains("from:"));
    let (status, reversed) = get_page(
        &app,
        Some(&admin),
        &format!("/admin/audit?from={}&to={}", day(tomorrow), day(today)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reversed.contains("to:"));
}

/// The backup download is encrypted for the configured recipient, streams whole with and
/// without `Accept-Encoding: gzip` (the gzip one used to end early with a panic in the stream),
/// restores into a sound database holding what was stored, and leaves no file behind.
#[tokio::test]
async fn the_backup_download_is_encrypted_whole_with_and_without_gzip_and_restores() {
    use std::io::Read;
    let (identity, recipient) =
        appliance::backup::new_key_pair(&appliance::store::Timestamp::now());
    let app = spawn_fresh_app(|config| {
        config.backup.recipients = vec![recipient.clone()];
    })
    .await;
    control_lot(&app).await;
    let admin = browser(&app, Role::LabAdmin).await;
    let dir = tempfile::tempdir().unwrap();
    for gzip in [false, true] {
        let mut request = client()
            .get(app.url("/admin/backup"))
            .header("cookie", &admin.cookie);
        if gzip {
            request = request.header("accept-encoding", "gzip");
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned()),
            gzip.then(|| "gzip".to_owned()),
        );
        let disposition = response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        let name = disposition
            .strip_prefix("attachment; filename=\"")
            .and_then(|rest| rest.strip_suffix('"'))
            .expect("an attachment with a file name")
            .to_owned();
        let stamp = name
            .strip_prefix("ferrocount-")
            .and_then(|n| n.strip_suffix(".db.age"))
            .unwrap();
        assert!(
            stamp.len() == 15
                && stamp.as_bytes()[8] == b'-'
                && stamp.replace('-', "").bytes().all(|b| b.is_ascii_digit()),
            "{name}"
        );
        let sent = response.bytes().await.expect("the whole body arrives");
        let bytes = if gzip {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&sent[..])
                .read_to_end(&mut plain)
                .expect("a complete gzip stream");
            plain
        } else {
            sent.to_vec()
        };
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "an age file");
        assert!(
            !bytes.windows(16).any(|w| w == b"SQLite format 3\0"),
            "no plain database inside"
        );
        let file = dir.path().join(&name);
        std::fs::write(&file, &bytes).unwrap();
        let restored_dir = dir.path().join(if gzip { "gzip" } else { "plain" });
        let key = appliance::backup::RestoreKey::identity_file(
            appliance::backup::secrecy::ExposeSecret::expose_secret(&identity),
        )
        .unwrap();
        let restored = appliance::backup::restore(&restored_dir, &file, key, &Actor::Appliance)
            .await
            .expect("the download restores");
        assert!(restored.audit_rows > 0 && restored.previous.is_none());
        let copy = appliance::store::Store::open(&restored_dir).await.unwrap();
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(copy.pool())
            .await
            .unwrap();
        assert_eq!(users, 3);
        let lots: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM qc_lots")
            .fetch_one(copy.pool())
            .await
            .unwrap();
        assert_eq!(lots, 1);
        copy.close().await;
    }
    assert_eq!(audit_count(&app, "database.backup").await, 2);
    let data_dir = app
        .store
        .pool()
        .connect_options()
        .get_filename()
        .parent()
        .unwrap()
        .to_owned();
    let leftovers: Vec<_> = std::fs::read_dir(&data_dir)
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().contains("snapshot"))
        .collect();
    assert!(leftovers.is_empty(), "temporary file left: {leftovers:?}");
}

/// Without a configured key there is no backup (never a plain copy of every patient's data).
#[tokio::test]
async fn without_a_configured_key_the_backup_is_refused() {
    let app = spawn_app().await;
    let admin = browser(&app, Role::LabAdmin).await;
    let response = client()
        .get(app.url("/admin/backup"))
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = response.text().await.unwrap();
    assert!(body.contains("[backup] recipients"), "{body}");
    assert_eq!(audit_count(&app, "database.backup").await, 0);
}

/// A form's fields, owned.
type Fields = Vec<(&'static str, String)>;

/// The set-up forms' defaults (every field filled as a lab admin would).
fn material_fields(name: &str) -> Fields {
    vec![
        ("name", name.to_owned()),
        ("kind", "phantom".into()),
        ("analyte", "t2_ms".into()),
    ]
}

/// POSTs owned fields (the set-up tests build them in loops).
async fn post_fields(
    app: &TestApp,
    session: &BrowserSession,
    path: &str,
    fields: &[(&'static str, String)],
    csrf: Csrf,
) -> reqwest::Response {
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_form(app, session, path, &borrowed, csrf).await
}

/// Materials, lots, targets and audit entries stored (a refused form changes none).
async fn qc_counts(app: &TestApp) -> (i64, i64, i64, i64) {
    (
        app.count("qc_materials").await,
        app.count("qc_lots").await,
        app.count("qc_targets").await,
        app.count("audit_log").await,
    )
}

/// The id after `?{key}=` in a redirect.
fn redirected_id(target: &str, key: &str) -> i64 {
    let prefix = format!("/qc?{key}=");
    assert!(target.starts_with(&prefix), "{target}");
    target[prefix.len()..].parse().expect("an id")
}

#[tokio::test]
async fn on_a_fresh_instrument_a_lab_admin_defines_material_lot_and_target_then_runs_qc() {
    let app = spawn_fresh_app(|_| {}).await;
    let admin = browser(&app, Role::LabAdmin).await;
    let (status, body) = get_page(&app, Some(&admin), "/qc").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("No control materials defined yet"));
    assert!(
        body.contains("<details open>"),
        "set-up open when nothing exists"
    );
    assert!(body.contains("action=\"/qc/materials\""));

    // 1. The material.
    let response = post_fields(
        &app,
        &admin,
        "/qc/materials",
        &material_fields("Phantom T2 mid"),
        Csrf::Right,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let target = location(&response);
    let material_id = redirected_id(&target, "material");
    let (_, body) = get_page(&app, Some(&admin), &target).await;
    assert!(body.contains("Control material Phantom T2 mid defined"));
    assert!(
        body.contains("action=\"/qc/lots\""),
        "now a lot can be added"
    );

    // 2. A lot of it.
    let material = material_id.to_string();
    let response = post_form(
        &app,
        &admin,
        "/qc/lots",
        &[
            ("material_id", &material),
            ("lot", " PH-88 "),
            ("expires_on", "2099-06-30"),
        ],
        Csrf::Right,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let target = location(&response);
    let lot_id = redirected_id(&target, "lot").to_string();
    let (_, body) = get_page(&app, Some(&admin), &target).await;
    assert!(body.contains("Lot PH-88 of Phantom T2 mid added"));
    assert!(body.contains("expires 2099-06-30 — no target yet"));

    // 3. Its target, established from the 20 baseline values of CLSI C24.
    let response = post_form(
        &app,
        &admin,
        "/qc/targets",
        &[
            ("lot_id", &lot_id),
            ("mean", "100"),
            ("sd", "2,0"),
            ("source", "established"),
            ("n_values", "20"),
        ],
        Csrf::Right,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let target = location(&response);
    assert_eq!(target, format!("/qc?target={lot_id}"));
    let (_, body) = get_page(&app, Some(&admin), &target).await;
    assert!(body.contains("Target for Phantom T2 mid · lot PH-88 set: mean 100 ms, SD 2 ms"));
    // A phantom is not a control: the set-up checklist still asks for a negative and a positive
    // control, so the set-up section stays open (the checklist links to it).
    assert!(
        body.contains("<details open>"),
        "open while the checklist asks for controls"
    );

    // Stored as given, by the lab admin, and audited.
    let (mean, sd, source, n_values): (f64, f64, String, Option<i64>) =
        sqlx::query_as("SELECT mean, sd, source, n_values FROM qc_targets")
            .fetch_one(app.store.pool())
            .await
            .expect("a target");
    assert_eq!(
        (mean, sd, source.as_str(), n_values),
        (100.0, 2.0, "established", Some(20))
    );
    for action in ["qc.material.add", "qc.lot.add", "qc.target.set"] {
        let actors: Vec<String> =
            sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = ?")
                .bind(action)
                .fetch_all(app.store.pool())
                .await
                .expect("audit");
        assert_eq!(actors.len(), 1, "{action} audited once");
        assert!(
            actors[0].contains("lars"),
            "{action} by the lab admin: {actors:?}"
        );
    }

    // The bench can now run QC: a value beyond 3 SD is judged and charted.
    let operator = browser(&app, Role::Operator).await;
    let response = post_form(
        &app,
        &operator,
        "/qc/measurements",
        &[("material_lot_id", &lot_id), ("value", "107")],
        Csrf::Right,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, body) = get_page(&app, Some(&operator), &location(&response)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("recorded: reject"),
        "judged against the new target"
    );
    assert!(body.contains("chart-levey-jennings") && body.contains("1-3s"));
    assert!(
        !body.contains("Set up control materials"),
        "operators record QC but do not define it"
    );
}

#[tokio::test]
async fn the_qc_set_up_forms_refuse_bad_input_naming_the_field_and_store_nothing() {
    let app = spawn_app().await;
    let lot = control_lot(&app).await;
    let lot_id = lot.id.0.to_string();
    let material = lot.material_id.0.to_string();
    let admin = browser(&app, Role::LabAdmin).await;
    let before = qc_counts(&app).await;
    let owned = |fields: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    };
    let cases: Vec<(&str, Fields, &str)> = vec![
        ("/qc/materials", material_fields("  "), "name"),
        ("/qc/materials", material_fields(&"x".repeat(101)), "name"),
        ("/qc/materials", material_fields("Phantom T2 mid"), "name"),
        (
            "/qc/materials",
            owned(&[("name", "New"), ("kind", "blood"), ("analyte", "t2_ms")]),
            "kind",
        ),
        (
            "/qc/materials",
            owned(&[
                ("name", "New"),
                ("kind", "control"),
                ("control_level", "positive"),
                ("analyte", "ph"),
            ]),
            "analyte",
        ),
        (
            "/qc/materials",
            owned(&[("name", "New"), ("kind", "control"), ("analyte", "cells")]),
            "control_level",
        ),
        (
            "/qc/materials",
            owned(&[
                ("name", "New"),
                ("kind", "control"),
                ("control_level", "low"),
                ("analyte", "cells"),
            ]),
            "control_level",
        ),
        (
            "/qc/lots",
            owned(&[
                ("material_id", &material),
                ("lot", ""),
                ("expires_on", "2099-01-01"),
            ]),
            "lot",
        ),
        (
            "/qc/lots",
            owned(&[
                ("material_id", &material),
                ("lot", "PH-77"),
                ("expires_on", "2099-01-01"),
            ]),
            "lot",
        ),
        (
            "/qc/lots",
            owned(&[
                ("material_id", "999999"),
                ("lot", "L1"),
                ("expires_on", "2099-01-01"),
            ]),
            "material_id",
        ),
        (
            "/qc/lots",
            owned(&[
                ("material_id", "x"),
                ("lot", "L1"),
                ("expires_on", "2099-01-01"),
            ]),
            "material_id",
        ),
        (
            "/qc/lots",
            owned(&[
                ("material_id", &material),
                ("lot", "L1"),
                ("expires_on", "31.12.2099"),
            ]),
            "expires_on",
        ),
        (
            "/qc/lots",
            owned(&[
                ("material_id", &material),
                ("lot", "L1"),
                ("expires_on", "2001-01-01"),
            ]),
            "expires_on",
        ),
        (
            "/qc/targets",
            owned(&[
                ("lot_id", &lot_id),
                ("mean", "100"),
                ("sd", "0"),
                ("source", "manufacturer"),
            ]),
            "sd",
        ),
        (
            "/qc/targets",
            owned(&[
                ("lot_id", &lot_id),
                ("mean", "100"),
                ("sd", "-1"),
                ("source", "manufacturer"),
            ]),
            "sd",
        ),
        (
            "/qc/targets",
            owned(&[
                ("lot_id", &lot_id),
                ("mean", "abc"),
                ("sd", "2"),
                ("source", "manufacturer"),
            ]),
            "mean",
        ),
        (
            "/qc/targets",
            owned(&[
                ("lot_id", &lot_id),
                ("mean", "100"),
                ("sd", "inf"),
                ("source", "manufacturer"),
            ]),
            "sd",
        ),
        (
            "/qc/targets",
            owned(&[
                ("lot_id", "999999"),
                ("mean", "100"),
                ("sd", "2"),
                ("source", "manufacturer"),
            ]),
            "lot_id",
        ),
        (
            "/qc/targets",
            owned(&[
                ("lot_id", &lot_id),
                ("mean", "100"),
                ("sd", "2"),
                ("source", "guess"),
            ]),
            "source",
        ),
        (
            "/qc/targets",
            owned(&[
                ("lot_id", &lot_id),
                ("mean", "100"),
                ("sd", "2"),
                ("source", "established"),
                ("n_values", "12"),
            ]),
            "n_values",
        ),
        (
            "/qc/targets",
            owned(&[
                ("lot_id", &lot_id),
                ("mean", "100"),
                ("sd", "2"),
                ("source", "manufacturer"),
                ("n_values", "-3"),
            ]),
            "n_values",
        ),
    ];
    for (path, fields, field) in &cases {
        let response = post_fields(&app, &admin, path, fields, Csrf::Right).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {fields:?}"
        );
        let body = response.text().await.expect("body");
        assert!(
            body.contains(&format!("Nothing was saved: {field} — ")),
            "{path} names {field}: {fields:?}"
        );
        assert!(
            body.contains("<details open>"),
            "the set-up shown open again"
        );
        assert_eq!(
            qc_counts(&app).await,
            before,
            "nothing stored: {path} {fields:?}"
        );
    }
}

#[tokio::test]
async fn only_lab_admins_with_the_page_s_token_may_define_qc() {
    let app = spawn_app().await;
    let lot = control_lot(&app).await;
    let lot_id = lot.id.0.to_string();
    let forms: [(&str, Vec<(&'static str, String)>); 3] = [
        ("/qc/materials", material_fields("Control low")),
        (
            "/qc/lots",
            vec![
                ("material_id", lot.material_id.0.to_string()),
                ("lot", "L2".into()),
                ("expires_on", "2099-01-01".into()),
            ],
        ),
        (
            "/qc/targets",
            vec![
                ("lot_id", lot_id.clone()),
                ("mean", "101".into()),
                ("sd", "3".into()),
                ("source", "manufacturer".into()),
            ],
        ),
    ];
    let before = qc_counts(&app).await;
    for role in [Role::Operator, Role::Clinician] {
        let session = browser(&app, role).await;
        let (_, body) = get_page(&app, Some(&session), "/qc").await;
        assert!(
            !body.contains("Set up control materials"),
            "{role}: no set-up"
        );
        for (path, fields) in &forms {
            let response = post_fields(&app, &session, path, fields, Csrf::Right).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} as {role}");
            assert!(
                response.text().await.expect("body").contains(role.as_str()),
                "the refusal names the role"
            );
        }
    }
    let admin = browser(&app, Role::LabAdmin).await;
    for csrf in [Csrf::Missing, Csrf::Wrong] {
        for (path, fields) in &forms {
            let response = post_fields(&app, &admin, path, fields, csrf).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
            assert!(response.text().await.expect("body").contains("csrf_token"));
        }
    }
    for (path, _) in &forms {
        assert_sign_in_redirect_on_post(&app, path).await;
    }
    // (Sign-ins are audited; the QC tables are what must not change.)
    let (materials, lots, targets, _) = qc_counts(&app).await;
    assert_eq!(
        (materials, lots, targets),
        (before.0, before.1, before.2),
        "nothing stored"
    );
    // The same forms, as the lab admin, go through.
    for (path, fields) in &forms {
        let response = post_fields(&app, &admin, path, fields, Csrf::Right).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
    }
}

/// A set-up post without a session stores nothing (it is sent to sign in or refused).
async fn assert_sign_in_redirect_on_post(app: &TestApp, path: &str) {
    let response = client()
        .post(app.url(path))
        .form(&[("name", "x")])
        .send()
        .await
        .expect("POST");
    assert!(
        response.status() == StatusCode::SEE_OTHER || response.status().is_client_error(),
        "POST {path} signed out: {}",
        response.status()
    );
}

/// The id of the newest QC result.
async fn newest_qc_id(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT id FROM qc_results ORDER BY id DESC LIMIT 1")
        .fetch_one(app.store.pool())
        .await
        .expect("a QC result")
}

#[tokio::test]
async fn a_corrective_action_is_recorded_beside_a_rejected_qc_value_on_the_review() {
    let app = spawn_fresh_app(|_| {}).await;
    let lot = control_lot(&app).await;
    let lot_id = lot.id.0.to_string();
    let operator = browser(&app, Role::Operator).await;
    let record = |value: &'static str| {
        let (app, operator, lot_id) = (&app, &operator, &lot_id);
        async move {
            post_form(
                app,
                operator,
                "/qc/measurements",
                &[("material_lot_id", lot_id), ("value", value)],
                Csrf::Right,
            )
            .await;
            newest_qc_id(app).await
        }
    };
    let passed = record("100.5").await;
    // 107 is z = +3.5: 1-3s, rejected.
    let rejected = record("107").await;
    assert_eq!(newest_qc(&app).await.0, "reject");
    let form = format!("/qc/results/{rejected}/corrective-actions");

    // The form is beside the rejected value only, for those who record QC.
    let (_, page) = get_page(&app, Some(&operator), "/qc").await;
    assert!(page.contains(&format!("action=\"{form}\"")), "{page}");
    assert!(!page.contains(&format!("/qc/results/{passed}/corrective-actions")));
    assert!(page.contains("none recorded"));
    let clinician = browser(&app, Role::Clinician).await;
    let (_, page) = get_page(&app, Some(&clinician), "/qc").await;
    assert!(
        !page.contains("corrective-actions\""),
        "no form for a clinician"
    );
    let refused = post_form(
        &app,
        &clinician,
        &form,
        &[("action", "new vial, rerun passed")],
        Csrf::Right,
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Refusals: no words (422, the error beside the form), a value that passed (409), nothing
    // stored; a forged post changes nothing.
    let blank = post_form(&app, &operator, &form, &[("action", " ")], Csrf::Right).await;
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = blank.text().await.expect("page");
    assert!(
        body.contains(&format!("id=\"corrective-error-{rejected}\"")),
        "the error is beside the form: {body}"
    );
    let on_a_pass = post_form(
        &app,
        &operator,
        &format!("/qc/results/{passed}/corrective-actions"),
        &[("action", "nothing to correct")],
        Csrf::Right,
    )
    .await;
    assert_eq!(on_a_pass.status(), StatusCode::CONFLICT);
    let forged = post_form(&app, &operator, &form, &[("action", "forged")], Csrf::Wrong).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("qc_corrective_actions").await, 0);
    assert_eq!(audit_count(&app, "qc.corrective_action").await, 0);

    // Recorded: back to the review at the value, the action listed with who and when.
    let done = post_form(
        &app,
        &operator,
        &form,
        &[
            ("action", "opened a new control vial; rerun passed"),
            ("from", "2026-01-01"),
            ("to", "not a date"),
        ],
        Csrf::Right,
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let target = location(&done);
    assert_eq!(
        target,
        format!("/qc?corrected={rejected}#qc-result-{rejected}"),
        "an unreadable range is left out"
    );
    let (status, page) = get_page(&app, Some(&operator), &target).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Corrective action recorded"), "{page}");
    assert!(
        page.contains("olga Tester: opened a new control vial; rerun passed")
            || page.contains(": opened a new control vial; rerun passed"),
        "{page}"
    );
    assert_eq!(app.count("qc_corrective_actions").await, 1);
    assert_eq!(audit_count(&app, "qc.corrective_action").await, 1);
}

#[tokio::test]
async fn qc_results_are_listed_a_bounded_page_at_a_time_newest_first() {
    let app = spawn_fresh_app(|_| {}).await;
    let lot = control_lot(&app).await;
    let operator = app.token(Role::Operator).to_owned();
    let mut recorded = Vec::new();
    for i in 0..23 {
        let body: Value = app
            .send(
                As::Bearer(&operator),
                Method::POST,
                "/api/v1/qc",
                Some(&json!({ "lot_id": lot.id.0, "value": 100.0 + f64::from(i % 3) * 0.5 })),
            )
            .await
            .json()
            .await
            .unwrap();
        recorded.push(body["id"].as_i64().unwrap());
    }
    // Pages of 10: 10 + 10 + 3, each continuing where the one before stopped; the lots and
    // targets on every page.
    let (mut listed, mut sizes) = (Vec::new(), Vec::new());
    let mut path = "/api/v1/qc?limit=10".to_owned();
    loop {
        let response = app
            .send(As::Bearer(&operator), Method::GET, &path, None)
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let page: Value = response.json().await.unwrap();
        assert_eq!(page["materials"][0]["lots"][0]["id"], lot.id.0, "{page}");
        assert_eq!(page["materials"][0]["lots"][0]["target"]["mean"], 100.0);
        let results = page["results"].as_array().unwrap();
        sizes.push(results.len());
        for result in results {
            assert_eq!(result["lot_id"], lot.id.0);
            listed.push(result["id"].as_i64().unwrap());
        }
        match page["next_before"].as_i64() {
            Some(next) => path = format!("/api/v1/qc?limit=10&before={next}"),
            None => break,
        }
    }
    assert_eq!(sizes, [10, 10, 3]);
    recorded.reverse();
    assert_eq!(listed, recorded, "every result once, newest first, no gap");
    // The default page is 100; the bound is 1 to 500, named when refused.
    let all: Value = app
        .send(As::Bearer(&operator), Method::GET, "/api/v1/qc", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["results"].as_array().unwrap().len(), 23);
    assert!(all["next_before"].is_null());
    for limit in ["501", "0"] {
        let refused = app
            .send(
                As::Bearer(&operator),
                Method::GET,
                &format!("/api/v1/qc?limit={limit}"),
                None,
            )
            .await;
        let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, "limit").await;
        assert!(
            problem["detail"].as_str().unwrap().contains("1 to 500"),
            "{problem}"
        );
    }
    let bad_cursor = app
        .send(
            As::Bearer(&operator),
            Method::GET,
            "/api/v1/qc?before=-3",
            None,
        )
        .await;
    assert_problem(bad_cursor, StatusCode::UNPROCESSABLE_ENTITY, "before").await;
}

#[tokio::test]
async fn calibrations_are_paged_in_the_api_and_on_the_page() {
    let app = spawn_app().await;
    // The simulated lot's (from the helper) and two more: three in all.
    calibrations(&app).await;
    let admin = app.token(Role::LabAdmin).to_owned();
    let page = |query: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let response = app
                .send(
                    As::Bearer(&admin),
                    Method::GET,
                    &format!("/api/v1/calibrations{query}"),
                    None,
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            response.json::<Value>().await.unwrap()
        }
    };
    let first = page("?limit=2").await;
    let ids: Vec<i64> = first["calibrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2], "newest first");
    assert_eq!(first["next_before"], 2);
    let last = page("?limit=2&before=2").await;
    assert_eq!(last["calibrations"].as_array().unwrap().len(), 1);
    assert_eq!(last["next_before"], Value::Null);
    let all = page("").await;
    assert_eq!(all["calibrations"].as_array().unwrap().len(), 3);
    for bad in ["?limit=0", "?limit=101", "?before=-1", "?before=x"] {
        let response = app
            .send(
                As::Bearer(&admin),
                Method::GET,
                &format!("/api/v1/calibrations{bad}"),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let session = browser(&app, Role::LabAdmin).await;
    let (status, html) = get_page(&app, Some(&session), "/calibrations").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Pending approval"));
    let (status, older) = get_page(&app, Some(&session), "/calibrations?before=2").await;
    assert_eq!(status, StatusCode::OK);
    assert!(older.contains("href=\"/calibrations/1\""));
    assert!(
        !older.contains("href=\"/calibrations/3\""),
        "only older ones"
    );
}

/// A patient run on a lot without an approved calibration does not start: refused in words
/// naming what is missing and who fixes it (as the QC refusal does), nothing stored.
#[tokio::test]
async fn a_run_without_an_approved_calibration_is_refused_in_words() {
    let app = spawn_fresh_app(|_| {}).await;
    crate::helpers::record_passing_qc(&app.store).await;
    let operator = app.token(Role::Operator).to_owned();
    let body = json!({ "patient_mrn": "NOCAL-1", "birth_date": "1970-01-01", "accession": "NOCAL-1-A",
                       "blood_ml": 7.5, "indication": "breast" });
    let refused = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/runs",
            Some(&body),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let problem: Value = refused.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("no approved calibration")
            && detail.contains("SIM-LOT-1")
            && detail.contains("lab admin"),
        "{problem}"
    );
    crate::helpers::approve_simulated_calibration(&app).await;
    let started = app
        .send(
            As::Bearer(&operator),
            Method::POST,
            "/api/v1/runs",
            Some(&body),
        )
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_instrument_shows_its_set_up_checklist_until_it_is_done() {
    // Three users, no QC material, no calibration.
    let app = spawn_fresh_app(|_| {}).await;
    let admin = browser(&app, Role::LabAdmin).await;
    let operator = browser(&app, Role::Operator).await;
    let (status, dashboard) = get_page(&app, Some(&admin), "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(dashboard.contains("id=\"setup-checklist\""), "{dashboard}");
    assert!(
        dashboard.contains("Add a negative and a positive control material")
            && dashboard.contains("href=\"/qc#setup-heading\"")
            && dashboard.contains("Import a calibration and have a lab admin approve it")
            && dashboard.contains("href=\"/calibrations\""),
        "{dashboard}"
    );
    assert!(
        !dashboard.contains("besides the first lab admin"),
        "three users are enough: {dashboard}"
    );
    // The new-run page names the open steps instead of the form.
    let (status, new_run) = get_page(&app, Some(&operator), "/runs/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        new_run.contains("This instrument is not set up yet")
            && new_run.contains("Import a calibration and have a lab admin approve it"),
        "{new_run}"
    );
    assert!(!new_run.contains("name=\"patient_mrn\""), "{new_run}");

    // Controls with targets: only the calibration is left.
    crate::helpers::record_passing_qc(&app.store).await;
    let (_, dashboard) = get_page(&app, Some(&admin), "/").await;
    assert!(
        !dashboard.contains("Add a negative and a positive control material")
            && dashboard.contains("Import a calibration and have a lab admin approve it"),
        "{dashboard}"
    );

    // An approved calibration: set up; the checklist is gone and the form is back.
    crate::helpers::approve_simulated_calibration(&app).await;
    let (_, dashboard) = get_page(&app, Some(&admin), "/").await;
    assert!(!dashboard.contains("id=\"setup-checklist\""), "{dashboard}");
    let (_, new_run) = get_page(&app, Some(&operator), "/runs/new").await;
    assert!(
        new_run.contains("name=\"patient_mrn\"") && !new_run.contains("not set up yet"),
        "{new_run}"
    );
}
