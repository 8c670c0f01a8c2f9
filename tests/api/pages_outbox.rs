//! The outbox page and its JSON twin as a lab admin uses them: released results' messages listed
//! per destination and state — pending with its attempts and next try, delivered with the
//! acknowledgement, parked with the receiver's reason — with MRN and accession number and no
//! other patient data; a parked message resent with a reason (audited), a resend without one
//! refused with nothing changed; the API paged by `before`; other roles refused.

use appliance::config::DestinationConfig;
use appliance::store::outbox::{DeliveryOutcome, OutboxFilter, OutboxState};
use appliance::store::{OutboxId, RunId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    As, Csrf, PASSWORD, TestApp, assert_problem, get_page, location, post_form, spawn_app_with,
};

/// An HL7 v2 destination nothing delivers to in these tests (no sender runs in the test app):
/// its messages stay pending until a test records an outcome.
pub fn quiet_destination(name: &str) -> DestinationConfig {
    DestinationConfig::Hl7v2 {
        name: Some(name.to_owned()),
        address: "127.0.0.1:9".to_owned(),
        receiving_application: String::new(),
        receiving_facility: String::new(),
        sending_facility: String::new(),
        mrn_authority: String::new(),
        timeout_ms: 1_000,
        tls: false,
        ca_file: None,
        server_name: None,
    }
}

/// A simulated run for `mrn`, released by the lab admin through the API: its outbox message id.
async fn released(app: &TestApp, mrn: &str) -> OutboxId {
    let admin = app
        .token(appliance::store::users::Role::LabAdmin)
        .to_owned();
    let ticket: Value = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            "/api/v1/runs",
            Some(&json!({ "patient_mrn": mrn, "birth_date": "1961-04-23",
                          "accession": format!("{mrn}-ACC"), "blood_ml": 7.5,
                          "simulate": { "cells": 12 } })),
        )
        .await
        .json()
        .await
        .expect("ticket");
    let run = RunId(ticket["id"].as_i64().expect("run id"));
    app.engine.wait_for_run(run).await.expect("the run settles");
    let answer = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            &format!("/api/v1/runs/{}/release", run.0),
            Some(&json!({ "password": PASSWORD, "printed_name": "lars Tester" })),
        )
        .await;
    assert_eq!(
        answer.status(),
        StatusCode::OK,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let page = app
        .store
        .outbox_page(&OutboxFilter::default(), None, 10)
        .await
        .expect("outbox");
    page.iter()
        .find(|entry| entry.message.run_id == run)
        .map(|entry| entry.message.id)
        .expect("the release wrote its message")
}

/// The table row of message `id` on the outbox page.
fn row(html: &str, id: OutboxId) -> &str {
    let start = html
        .find(&format!("<tr id=\"message-{}\"", id.0))
        .unwrap_or_else(|| panic!("no row for message {id}:\n{html}"));
    let row = &html[start..];
    &row[..row.find("</tr>").expect("row ends")]
}

#[tokio::test]
async fn a_lab_admin_sees_each_message_where_it_stands_and_resends_a_parked_one() {
    let app = spawn_app_with(|config| config.destinations = vec![quiet_destination("lis")]).await;
    let delivered = released(&app, "OUT-1").await;
    let parked = released(&app, "OUT-2").await;
    let pending = released(&app, "OUT-3").await;
    app.store
        .record_delivery(
            delivered,
            &DeliveryOutcome::Delivered {
                detail: "AA: stored as LIS-881".into(),
            },
        )
        .await
        .expect("delivered");
    app.store
        .record_delivery(
            parked,
            &DeliveryOutcome::Parked {
                reason: "the destination rejected the message: AR: unknown patient".into(),
            },
        )
        .await
        .expect("parked");
    let next_try = appliance::store::outbox::unix_ms(appliance::store::Timestamp::now()) + 60_000;
    app.store
        .record_delivery(
            pending,
            &DeliveryOutcome::Retry {
                detail: "could not connect to 127.0.0.1:9: refused".into(),
                next_attempt_ms: next_try,
            },
        )
        .await
        .expect("retried");

    let admin = app.sign_in("lars", PASSWORD).await;
    let (status, html) = get_page(&app, Some(&admin), "/outbox").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("href=\"/outbox\" aria-current=\"page\""),
        "in the navigation"
    );
    let delivered_row = row(&html, delivered);
    assert!(delivered_row.contains("OUT-1") && delivered_row.contains("OUT-1-ACC"));
    assert!(delivered_row.contains("delivered") && delivered_row.contains("AA: stored as LIS-881"));
    assert!(
        !delivered_row.contains("Resend"),
        "a delivered message is final"
    );
    let parked_row = row(&html, parked);
    assert!(parked_row.contains("unknown patient"), "{parked_row}");
    assert!(parked_row.contains(&format!("action=\"/outbox/{}/resend\"", parked.0)));
    let pending_row = row(&html, pending);
    assert!(pending_row.contains("Next attempt") && pending_row.contains("refused"));
    assert!(
        !pending_row.contains("Resend"),
        "a pending message is being sent"
    );
    assert!(
        !html.contains("1961-04-23"),
        "no patient data beyond the MRN and accession"
    );
    // Newest first.
    assert!(
        html.find(&format!("message-{}", pending.0))
            < html.find(&format!("message-{}", delivered.0))
    );
    let (_, only_parked) =
        get_page(&app, Some(&admin), "/outbox?state=parked&destination=lis").await;
    assert!(only_parked.contains(&format!("message-{}", parked.0)));
    assert!(!only_parked.contains(&format!("message-{}", pending.0)));
    let (_, elsewhere) = get_page(&app, Some(&admin), "/outbox?destination=other").await;
    assert!(elsewhere.contains("No messages."));

    // A resend needs a reason; a forged post changes nothing; then it is pending again.
    let path = format!("/outbox/{}/resend", parked.0);
    let refused = post_form(&app, &admin, &path, &[("reason", " ")], Csrf::Right).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("page")
            .contains("Nothing was resent")
    );
    let forged = post_form(
        &app,
        &admin,
        &path,
        &[("reason", "fixed at the LIS")],
        Csrf::Wrong,
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.store
            .outbox_message(parked)
            .await
            .expect("message")
            .state,
        OutboxState::Parked
    );
    let resent = post_form(
        &app,
        &admin,
        &path,
        &[("reason", "patient registered at the LIS")],
        Csrf::Right,
    )
    .await;
    assert_eq!(resent.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resent), "/outbox?done=resent");
    let message = app.store.outbox_message(parked).await.expect("message");
    assert_eq!(message.state, OutboxState::Pending);
    let reason: String = sqlx::query_scalar(
        "SELECT reason FROM audit_log WHERE action = 'outbox.resend' AND entity_id = ?",
    )
    .bind(parked.0.to_string())
    .fetch_one(app.store.pool())
    .await
    .expect("the resend is audited");
    assert_eq!(reason, "patient registered at the LIS");
    let views: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'outbox.view'")
            .fetch_one(app.store.pool())
            .await
            .expect("views");
    assert!(views >= 4, "every page shown is audited ({views})");

    // The pages of other roles.
    for name in ["claire", "olga"] {
        let session = app.sign_in(name, PASSWORD).await;
        let (status, _) = get_page(&app, Some(&session), "/outbox").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}");
    }
}

#[tokio::test]
async fn the_api_pages_the_outbox_by_before_and_resends_only_a_parked_message() {
    let app = spawn_app_with(|config| config.destinations = vec![quiet_destination("lis")]).await;
    let first = released(&app, "API-1").await;
    let second = released(&app, "API-2").await;
    let admin = app
        .token(appliance::store::users::Role::LabAdmin)
        .to_owned();
    let page: Value = app
        .send(
            As::Bearer(&admin),
            Method::GET,
            "/api/v1/outbox?limit=1",
            None,
        )
        .await
        .json()
        .await
        .expect("page");
    assert_eq!(page["messages"][0]["id"], second.0, "newest first");
    assert_eq!(page["messages"][0]["mrn"], "API-2");
    assert_eq!(page["messages"][0]["accession"], "API-2-ACC");
    assert_eq!(page["messages"][0]["state"], "pending");
    assert_eq!(page["next_before"], second.0);
    let older: Value = app
        .send(
            As::Bearer(&admin),
            Method::GET,
            &format!("/api/v1/outbox?limit=1&before={}", second.0),
            None,
        )
        .await
        .json()
        .await
        .expect("page");
    assert_eq!(older["messages"][0]["id"], first.0);
    assert_eq!(older["next_before"], Value::Null, "the last page");

    let resend = |id: OutboxId| format!("/api/v1/outbox/{}/resend", id.0);
    let pending = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            &resend(first),
            Some(&json!({ "reason": "try again" })),
        )
        .await;
    assert_problem(pending, StatusCode::CONFLICT, "").await;
    app.store
        .record_delivery(
            first,
            &DeliveryOutcome::Parked {
                reason: "AE: bad PID".into(),
            },
        )
        .await
        .expect("parked");
    let short = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            &resend(first),
            Some(&json!({ "reason": "ok" })),
        )
        .await;
    assert_problem(short, StatusCode::UNPROCESSABLE_ENTITY, "reason").await;
    let answer = app
        .send(
            As::Bearer(&admin),
            Method::POST,
            &resend(first),
            Some(&json!({ "reason": "PID fixed at the LIS" })),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let resent: Value = answer.json().await.expect("message");
    assert_eq!(resent["state"], "pending");
    assert_eq!(resent["control_id"], format!("FC{:08}", first.0));

    let clinician = app
        .token(appliance::store::users::Role::Clinician)
        .to_owned();
    let refused = app
        .send(As::Bearer(&clinician), Method::GET, "/api/v1/outbox", None)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}
