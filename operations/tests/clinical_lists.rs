//! The clinician's lists and trend markers at the operations layer, over a real store: the
//! patient list pages by MRN with a bounded page and searches by MRN prefix and date of birth
//! (an empty search lists, a wrong one names its field), the worklist pages the results awaiting
//! release, and a treatment marker needs a clinician, a day and words, and is audited.

use std::time::Duration;

use appliance::engine::EngineConfig;
use appliance::store::audit::AuditQuery;
use appliance::store::example_report::example_report;
use appliance::store::instrument_log::{LogKind, NewLogEntry};
use appliance::store::patients::{BirthDate, Mrn, NewPatient};
use appliance::store::results::{CorrectionReason, SignatureMeaning};
use appliance::store::runs::{NewRun, RunState};
use appliance::store::samples::{
    Accession, BloodVolume, Indication, NewSample, NewTube, TubeKind, TubeLabel,
};
use appliance::store::users::{NewPassword, NewUser, Role, User, Username};
use appliance::store::{Actor, PatientId, RunId, Store, Timestamp};
use nmr_core::assay::{Call, CountCategory, Indications};
use operations::patients::{
    EventMarker, MAX_LISTED, MAX_PATIENT_RUNS_PAGE, MAX_TREND_SHOWN, PatientSearch,
};
use operations::reported::{Reported, ResultStatus};
use operations::runs::{AWAITING_PAGE_SIZE, IN_FLIGHT_PAGE_SIZE, WorklistCursors};
use operations::worklist::MAX_WORKLIST_PAGE;
use operations::{LoginThrottle, OperationError, Operations, Requester};

async fn ops() -> (tempfile::TempDir, Operations) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("store");
    let indications =
        Indications::from_toml("[indications.breast]\nunfavorable_at_or_above_per_7_5ml = 5.0\n")
            .expect("cut-offs");
    let ops = Operations::new(
        store,
        EngineConfig::new(indications),
        LoginThrottle::new(Duration::from_secs(900), 5),
    );
    (dir, ops)
}

async fn user(ops: &Operations, name: &str, role: Role) -> Requester {
    let user: User = ops
        .store
        .add_user(
            &Actor::Appliance,
            NewUser {
                username: Username::parse(name).expect("name"),
                display_name: format!("{name} Tester"),
                role,
                password: NewPassword::parse("correct horse battery").expect("password"),
            },
        )
        .await
        .expect("user");
    Requester::User(user)
}

fn born(text: &str) -> BirthDate {
    BirthDate::parse(text, time::macros::date!(2026 - 01 - 01)).expect("a birth date")
}

async fn patient(ops: &Operations, mrn: &str, birth: &str) -> PatientId {
    ops.store
        .add_patient(
            &Actor::Appliance,
            &NewPatient::new(Mrn::parse(mrn).expect("mrn"), born(birth)),
        )
        .await
        .expect("patient")
        .id
}

async fn audited(ops: &Operations, action: &str) -> usize {
    ops.store
        .audit_entries(&AuditQuery {
            action: Some(action.to_owned()),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .expect("audit")
        .iter()
        .filter(|row| row.action == action)
        .count()
}

fn search(mrn_prefix: &str, birth_date: &str) -> PatientSearch {
    PatientSearch {
        mrn_prefix: mrn_prefix.to_owned(),
        birth_date: birth_date.to_owned(),
    }
}

#[tokio::test]
async fn the_patient_list_pages_by_mrn_and_searches_by_prefix_and_birth_date() {
    let (_dir, ops) = ops().await;
    let claire = user(&ops, "claire", Role::Clinician).await;
    let olga = user(&ops, "olga", Role::Operator).await;
    for (mrn, birth) in [
        ("DEMO-003", "1950-01-01"),
        ("DEMO-001", "1961-04-23"),
        ("OTHER-1", "1961-04-23"),
        ("DEMO-002", "1972-12-31"),
        ("DEMO-010", "1961-04-23"),
        ("DEMO-005", "1980-06-15"),
        ("DEMO-004", "1990-02-02"),
    ] {
        patient(&ops, mrn, birth).await;
    }

    // An empty search lists every patient, by MRN, a bounded page at a time, each once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = ops
            .list_patients(&claire, &search("", ""), after.as_deref(), 3)
            .await
            .expect("a page");
        assert!(page.patients.len() <= 3);
        seen.extend(page.patients.iter().map(|p| p.mrn.as_str().to_owned()));
        pages += 1;
        match page.next_after {
            Some(mrn) => after = Some(mrn.as_str().to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        [
            "DEMO-001", "DEMO-002", "DEMO-003", "DEMO-004", "DEMO-005", "DEMO-010", "OTHER-1"
        ]
    );
    assert_eq!(audited(&ops, "patient.list").await, 3, "each page audited");

    // "DEMO-00" (which found nothing as an exact MRN) lists the MRNs that start so; any case.
    let page = ops
        .list_patients(&claire, &search(" demo-00 ", ""), None, 25)
        .await
        .expect("a page");
    assert_eq!(page.patients.len(), 5);
    assert!(page.next_after.is_none());

    // The second identifier narrows it.
    let page = ops
        .list_patients(&claire, &search("", "1961-04-23"), None, 25)
        .await
        .expect("a page");
    let mrns: Vec<&str> = page.patients.iter().map(|p| p.mrn.as_str()).collect();
    assert_eq!(mrns, ["DEMO-001", "DEMO-010", "OTHER-1"]);
    let page = ops
        .list_patients(&claire, &search("demo", "1961-04-23"), None, 1)
        .await
        .expect("a page");
    assert_eq!(page.patients[0].mrn.as_str(), "DEMO-001");
    assert_eq!(page.next_after.as_ref().map(Mrn::as_str), Some("DEMO-001"));

    // A date nobody can have been born on finds nobody; it is not an error.
    for nobody in ["2999-01-01", "1899-12-31"] {
        let page = ops
            .list_patients(&claire, &search("", nobody), None, 25)
            .await
            .expect("an empty page");
        assert!(page.patients.is_empty(), "{nobody}");
    }

    // What is wrong is named.
    for (wrong, field) in [
        (search("DEMO%", ""), "mrn_prefix"),
        (search(&"A".repeat(33), ""), "mrn_prefix"),
        (search("", "1961-02-30"), "birth_date"),
        (search("", "23.04.1961"), "birth_date"),
    ] {
        let refused = ops.list_patients(&claire, &wrong, None, 25).await;
        assert!(
            matches!(refused, Err(OperationError::Invalid { field: f, .. }) if f == field),
            "{wrong:?}: {refused:?}"
        );
    }
    for limit in [0, MAX_LISTED + 1] {
        let refused = ops
            .list_patients(&claire, &search("", ""), None, limit)
            .await;
        assert!(
            matches!(refused, Err(OperationError::Invalid { field: "limit", .. })),
            "{limit}"
        );
    }
    let refused = ops
        .list_patients(&claire, &search("", ""), Some("not an mrn!"), 25)
        .await;
    assert!(matches!(
        refused,
        Err(OperationError::Invalid { field: "after", .. })
    ));

    // Operators do not browse patients.
    let refused = ops.list_patients(&olga, &search("", ""), None, 25).await;
    assert!(matches!(refused, Err(OperationError::Forbidden { .. })));
}

#[test]
fn a_birth_date_search_is_blank_or_a_calendar_date() {
    // (The API's conformance test checks that the stated pattern agrees with this.)
    let today = time::macros::date!(2026 - 12 - 02);
    for (text, calendar) in [
        ("", true),
        (" 1961-04-23 ", true),
        ("2000-02-29", true),
        ("2024-02-29", true),
        ("1900-02-29", false),
        ("2023-02-29", false),
        ("1961-02-30", false),
        ("1961-04-31", false),
        ("1961-13-01", false),
        ("1961-4-23", false),
        ("23.04.1961", false),
    ] {
        let parsed = search("", text).parse(today).is_ok();
        assert_eq!(parsed, calendar, "{text:?} parsed");
    }
}

#[tokio::test]
async fn a_marker_needs_a_clinician_a_day_and_words_and_is_audited() {
    let (_dir, ops) = ops().await;
    let claire = user(&ops, "claire", Role::Clinician).await;
    let olga = user(&ops, "olga", Role::Operator).await;
    let id = patient(&ops, "MARK-1", "1961-04-23").await;
    let marker = |day: &str, label: &str| EventMarker {
        occurred_on: day.to_owned(),
        label: label.to_owned(),
    };

    let added = ops
        .add_patient_event(&claire, id, &marker("2026-11-20", " Started docetaxel "))
        .await
        .expect("added");
    assert_eq!(added.label.as_str(), "Started docetaxel");
    assert_eq!(added.recorded_by_name.as_deref(), Some("claire Tester"));
    assert_eq!(audited(&ops, "patient.event_add").await, 1);
    let record = ops
        .view_patient(&claire, id, 0, None, MAX_TREND_SHOWN, "test")
        .await
        .expect("viewed");
    assert_eq!(record.events, vec![added]);
    let bare = ops
        .view_patient(&claire, id, 0, None, 0, "test")
        .await
        .expect("viewed");
    assert!(bare.events.is_empty(), "no trend asked: no markers read");

    for (wrong, field) in [
        (marker("", "surgery"), "occurred_on"),
        (marker("2026-02-30", "surgery"), "occurred_on"),
        (marker("1999-12-31", "surgery"), "occurred_on"),
        (marker("2099-01-01", "surgery"), "occurred_on"),
        (marker("2026-11-20", "  "), "label"),
        (marker("2026-11-20", &"x".repeat(201)), "label"),
    ] {
        let refused = ops.add_patient_event(&claire, id, &wrong).await;
        assert!(
            matches!(refused, Err(OperationError::Invalid { field: f, .. }) if f == field),
            "{wrong:?}: {refused:?}"
        );
    }
    let refused = ops
        .add_patient_event(&olga, id, &marker("2026-11-20", "surgery"))
        .await;
    assert!(matches!(refused, Err(OperationError::Forbidden { .. })));
    let refused = ops
        .add_patient_event(&claire, PatientId(999), &marker("2026-11-20", "surgery"))
        .await;
    assert!(matches!(refused, Err(OperationError::NotFound { .. })));
    assert_eq!(
        audited(&ops, "patient.event_add").await,
        1,
        "nothing refused is recorded"
    );
}

/// A run of a new patient that reached a result (awaiting release), `cells` per 7.5 mL.
async fn awaiting(ops: &Operations, n: u32, cells: f64) -> RunId {
    let store = &ops.store;
    let mrn = format!("WL-{n:03}");
    let id = patient(ops, &mrn, "1961-04-23").await;
    let sample = store
        .add_sample(
            &Actor::Appliance,
            &NewSample {
                patient_id: id,
                accession: Accession::parse(&format!("{mrn}-A")).expect("accession"),
                drawn_at: Timestamp::parse("2026-11-20T08:30:00Z").expect("time"),
                blood: BloodVolume::from_ml(7.5).expect("volume"),
                indication: Some(Indication::parse("breast").expect("indication")),
                indication_override_reason: None,
                tubes: vec![
                    NewTube {
                        kind: TubeKind::Control,
                        label: TubeLabel::parse(&format!("{mrn}-C")).expect("label"),
                    },
                    NewTube {
                        kind: TubeKind::Quad,
                        label: TubeLabel::parse(&format!("{mrn}-Q")).expect("label"),
                    },
                ],
            },
        )
        .await
        .expect("sample");
    let run = store
        .create_run(
            &Actor::Appliance,
            &NewRun {
                sample_id: sample.id,
                operator_id: None,
                reagent_lot: Some("LOT-A1".into()),
                simulated: true,
            },
        )
        .await
        .expect("run");
    store
        .set_run_state(&Actor::Appliance, run.id, RunState::Running, None)
        .await
        .expect("running");
    store
        .record_result(
            &Actor::Appliance,
            run.id,
            &example_report(
                cells,
                [cells * 0.5, cells * 2.0 + 1.0],
                CountCategory::Quantified,
                Some(Call::Unfavorable),
                n == 2,
            ),
        )
        .await
        .expect("result");
    run.id
}

#[tokio::test]
async fn the_worklist_pages_the_results_awaiting_release_oldest_first() {
    let (_dir, ops) = ops().await;
    let claire = user(&ops, "claire", Role::Clinician).await;
    let olga = user(&ops, "olga", Role::Operator).await;
    let mut runs = Vec::new();
    for n in 1..=5 {
        runs.push(awaiting(&ops, n, 10.0 + f64::from(n)).await);
    }
    // One that is released is no longer waiting.
    ops.store
        .set_run_state(
            &Actor::Appliance,
            runs[3],
            RunState::Cancelled,
            Some("test"),
        )
        .await
        .expect("cancelled");

    let first = ops
        .awaiting_release(&claire, None, 2)
        .await
        .expect("a page");
    assert_eq!(
        first.awaiting.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        runs[..2]
    );
    assert_eq!(first.awaiting[0].mrn.as_str(), "WL-001");
    assert_eq!(first.awaiting[0].accession.as_str(), "WL-001-A");
    assert_eq!(first.awaiting[0].birth_date, Some(born("1961-04-23")));
    assert!((first.awaiting[0].summary.per_7_5ml - 11.0).abs() < 1e-9);
    assert!(first.awaiting[1].summary.qc_hold, "the hold is shown");
    assert_eq!(first.next_after, Some(runs[1]));
    let second = ops
        .awaiting_release(&claire, first.next_after, 2)
        .await
        .expect("a page");
    assert_eq!(
        second.awaiting.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        [runs[2], runs[4]],
        "the cancelled run is not waiting"
    );
    assert_eq!(second.next_after, None);
    assert_eq!(audited(&ops, "run.worklist_view").await, 2);

    for limit in [0, MAX_WORKLIST_PAGE + 1] {
        assert!(matches!(
            ops.awaiting_release(&claire, None, limit).await,
            Err(OperationError::Invalid { field: "limit", .. })
        ));
    }
    assert!(matches!(
        ops.awaiting_release(&olga, None, 25).await,
        Err(OperationError::Forbidden { .. })
    ));
}

/// A run of patient `mrn` (registered when new) moved to `running`; with `cells`, its result is
/// recorded too (awaiting release).
async fn patients_run(ops: &Operations, mrn: &str, n: u32, cells: Option<f64>) -> RunId {
    patients_run_drawn(ops, mrn, n, cells, "2026-11-20T08:30:00Z").await
}

/// [`patients_run`] of blood drawn at `drawn` (RFC 3339).
async fn patients_run_drawn(
    ops: &Operations,
    mrn: &str,
    n: u32,
    cells: Option<f64>,
    drawn: &str,
) -> RunId {
    let store = &ops.store;
    let patient = store
        .patient_by_mrn_or_add(
            &Actor::Appliance,
            &NewPatient::new(Mrn::parse(mrn).expect("mrn"), born("1961-04-23")),
        )
        .await
        .expect("patient");
    let sample = store
        .add_sample(
            &Actor::Appliance,
            &NewSample {
                patient_id: patient.id,
                accession: Accession::parse(&format!("{mrn}-A{n}")).expect("accession"),
                drawn_at: Timestamp::parse(drawn).expect("time"),
                blood: BloodVolume::from_ml(7.5).expect("volume"),
                indication: Some(Indication::parse("breast").expect("indication")),
                indication_override_reason: None,
                tubes: vec![
                    NewTube {
                        kind: TubeKind::Control,
                        label: TubeLabel::parse(&format!("{mrn}-C{n}")).expect("label"),
                    },
                    NewTube {
                        kind: TubeKind::Quad,
                        label: TubeLabel::parse(&format!("{mrn}-Q{n}")).expect("label"),
                    },
                ],
            },
        )
        .await
        .expect("sample");
    let run = store
        .create_run(
            &Actor::Appliance,
            &NewRun {
                sample_id: sample.id,
                operator_id: None,
                reagent_lot: Some("LOT-A1".into()),
                simulated: true,
            },
        )
        .await
        .expect("run");
    store
        .set_run_state(&Actor::Appliance, run.id, RunState::Running, None)
        .await
        .expect("running");
    if let Some(cells) = cells {
        store
            .record_result(
                &Actor::Appliance,
                run.id,
                &example_report(
                    cells,
                    [cells * 0.5, cells * 2.0 + 1.0],
                    CountCategory::Quantified,
                    Some(Call::Unfavorable),
                    false,
                ),
            )
            .await
            .expect("result");
    }
    run.id
}

#[tokio::test]
async fn the_dashboards_lists_are_bounded_pages_whose_cursors_reach_every_run_once() {
    let (_dir, ops) = ops().await;
    let claire = user(&ops, "claire", Role::Clinician).await;
    let olga = user(&ops, "olga", Role::Operator).await;
    let over = IN_FLIGHT_PAGE_SIZE + 2;
    let mut in_flight = Vec::new();
    let mut waiting = Vec::new();
    for n in 0..over {
        in_flight.push(patients_run(&ops, "DB-1", n, None).await);
        waiting.push(patients_run(&ops, "DB-2", n, Some(7.0)).await);
    }
    let (mut seen_flight, mut seen_waiting) = (Vec::new(), Vec::new());
    let mut cursors = WorklistCursors::default();
    let mut pages = 0;
    loop {
        let list = ops.worklist(&claire, 10, cursors).await.expect("worklist");
        assert!(list.in_flight.len() <= IN_FLIGHT_PAGE_SIZE as usize);
        assert!(list.awaiting_release.len() <= AWAITING_PAGE_SIZE as usize);
        assert_eq!(list.recent_results.len(), 10, "the newest results, bounded");
        assert!(
            list.recent_results
                .windows(2)
                .all(|w| w[0].run.id > w[1].run.id),
            "newest first"
        );
        seen_flight.extend(list.in_flight.iter().map(|r| r.run.id));
        seen_waiting.extend(list.awaiting_release.iter().map(|r| r.run.id));
        for row in list.awaiting_release.iter().chain(&list.recent_results) {
            let reported = row.reported.as_ref().expect("a result, reported");
            assert_eq!(reported.status, ResultStatus::Preliminary);
            assert_eq!(row.patient.mrn.as_str(), "DB-2");
        }
        pages += 1;
        if list.in_flight_next.is_none() && list.awaiting_next.is_none() {
            break;
        }
        cursors = WorklistCursors {
            in_flight_after: list.in_flight_next,
            awaiting_after: list.awaiting_next,
        };
    }
    assert_eq!(pages, 2);
    assert_eq!(seen_flight, in_flight, "oldest first, every run once");
    assert_eq!(seen_waiting, waiting, "oldest first, every result once");
    // An operator sees the runs in flight, no page of results awaiting release.
    let theirs = ops
        .worklist(&olga, 10, WorklistCursors::default())
        .await
        .expect("worklist");
    assert_eq!(theirs.in_flight.len(), IN_FLIGHT_PAGE_SIZE as usize);
    assert!(theirs.awaiting_release.is_empty() && theirs.awaiting_next.is_none());
}

#[tokio::test]
async fn recent_results_are_ordered_by_draw_time_and_the_last_tune_outlives_a_restart() {
    let (_dir, ops) = ops().await;
    let claire = user(&ops, "claire", Role::Clinician).await;
    // Measured in this order; drawn in another (yesterday's sample measured last).
    let morning = patients_run_drawn(&ops, "DT-1", 0, Some(3.0), "2026-11-20T08:30:00Z").await;
    let noon = patients_run_drawn(&ops, "DT-2", 0, Some(3.0), "2026-11-20T12:00:00Z").await;
    let yesterday = patients_run_drawn(&ops, "DT-3", 0, Some(3.0), "2026-11-19T16:45:00Z").await;
    let also_noon = patients_run_drawn(&ops, "DT-4", 0, Some(3.0), "2026-11-20T12:00:00Z").await;
    let list = ops
        .worklist(&claire, 10, WorklistCursors::default())
        .await
        .expect("worklist");
    let order: Vec<RunId> = list.recent_results.iter().map(|r| r.run.id).collect();
    assert_eq!(
        order,
        vec![also_noon, noon, morning, yesterday],
        "latest draw first; the same draw time: the later run first"
    );

    // No tune yet: nothing to show. The engine writes each tune to the instrument log; these
    // operations have no engine (as after a restart, before the first tune): the last tune is
    // the log's.
    let status = ops.instrument_status(&claire).await.expect("status");
    assert_eq!((status.last_tune_at, status.f0_hz), (None, None));
    for (f0, text) in [(20.1e6, "first"), (20.3e6, "second")] {
        ops.store
            .log_instrument(&NewLogEntry {
                freq_hz: Some(f0),
                temp_c: Some(36.9),
                ..NewLogEntry::message(LogKind::Tune, format!("{text} tune"))
            })
            .await
            .expect("logged");
    }
    ops.store
        .log_instrument(&NewLogEntry::message(LogKind::Temperature, "a reading"))
        .await
        .expect("logged");
    let newest = ops
        .store
        .instrument_log(Some(LogKind::Tune), 1)
        .await
        .expect("log");
    let status = ops.instrument_status(&claire).await.expect("status");
    assert_eq!(status.f0_hz, Some(20.3e6), "the newest tune's frequency");
    assert_eq!(
        status.last_tune_at,
        Some(newest[0].logged_at.to_rfc3339()),
        "the newest tune's time"
    );
}

#[tokio::test]
async fn a_patients_runs_are_pages_and_the_trend_reports_each_result_as_its_versions_say() {
    let (_dir, ops) = ops().await;
    let claire = user(&ops, "claire", Role::Clinician).await;
    let mut runs = Vec::new();
    for n in 0..30 {
        runs.push(patients_run(&ops, "PR-1", n, (n % 5 != 4).then_some(3.0 + f64::from(n))).await);
    }
    // Another patient's runs are never on this patient's pages.
    patients_run(&ops, "PR-2", 0, Some(3.0)).await;
    // Released, and released then corrected (awaiting release again).
    let signer = match &claire {
        Requester::User(user) => user.clone(),
        Requester::Console => unreachable!("claire is a user"),
    };
    for &n in &[0usize, 1, 2] {
        ops.store
            .sign_result(&signer, runs[n], SignatureMeaning::Release)
            .await
            .expect("released");
    }
    ops.store
        .correct_result(
            &signer.actor(),
            runs[1],
            &example_report(
                9.0,
                [4.0, 19.0],
                CountCategory::Quantified,
                Some(Call::Unfavorable),
                false,
            ),
            &CorrectionReason::parse("volume re-read from the tube label").expect("reason"),
        )
        .await
        .expect("corrected");
    ops.store
        .sign_result(&signer, runs[1], SignatureMeaning::Release)
        .await
        .expect("correction released");
    ops.store
        .correct_result(
            &signer.actor(),
            runs[2],
            &example_report(
                9.0,
                [4.0, 19.0],
                CountCategory::Quantified,
                Some(Call::Unfavorable),
                false,
            ),
            &CorrectionReason::parse("volume re-read from the tube label").expect("reason"),
        )
        .await
        .expect("corrected, not yet released");
    let patient = ops
        .store
        .patient_by_mrn(&Mrn::parse("PR-1").expect("mrn"))
        .await
        .expect("read")
        .expect("patient");

    let (mut seen, mut sizes, mut before) = (Vec::new(), Vec::new(), None);
    loop {
        let record = ops
            .view_patient(&claire, patient.id, 25, before, 0, "test")
            .await
            .expect("a page");
        sizes.push(record.runs.len());
        seen.extend(record.runs.iter().map(|r| r.run.id));
        for row in &record.runs {
            let versions = ops
                .store
                .result_versions(row.run.id)
                .await
                .expect("versions");
            assert_eq!(row.reported, Reported::of(row.run.state, &versions));
        }
        match record.runs_next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [25, 5]);
    assert_eq!(
        seen,
        runs.iter().rev().copied().collect::<Vec<_>>(),
        "newest first, once"
    );
    assert!(matches!(
        ops.view_patient(
            &claire,
            patient.id,
            MAX_PATIENT_RUNS_PAGE + 1,
            None,
            0,
            "test"
        )
        .await,
        Err(OperationError::Invalid { field: "limit", .. })
    ));
    assert!(matches!(
        ops.view_patient(&claire, patient.id, 0, None, MAX_TREND_SHOWN + 1, "test")
            .await,
        Err(OperationError::Invalid {
            field: "trend_shown",
            ..
        })
    ));

    // The trend reports each result as the rule does from all its versions.
    let (_, trend) = ops
        .view_trend(&claire, patient.id, "json")
        .await
        .expect("trend");
    assert_eq!(trend.len(), 24);
    // The patient page's trend is bounded: the latest points only, saying older ones exist.
    let all: Vec<_> = trend.iter().map(|p| p.point.run_id).collect();
    let latest = ops
        .view_patient(&claire, patient.id, 0, None, 10, "test")
        .await
        .expect("the latest ten");
    assert_eq!(
        latest.trend.iter().map(|p| p.run_id).collect::<Vec<_>>(),
        all[14..],
        "the latest ten by draw time, oldest of them first"
    );
    assert!(latest.trend_older);
    let whole = ops
        .view_patient(&claire, patient.id, 0, None, 24, "test")
        .await
        .expect("all of it");
    assert_eq!(whole.trend.len(), 24);
    assert!(!whole.trend_older, "exactly the bound: nothing older");
    let none = ops
        .view_patient(&claire, patient.id, 0, None, 0, "test")
        .await
        .expect("no trend");
    assert!(none.trend.is_empty() && !none.trend_older);
    let mut statuses = Vec::new();
    for point in &trend {
        let run = ops.store.run(point.point.run_id).await.expect("run");
        let versions = ops.store.result_versions(run.id).await.expect("versions");
        assert_eq!(
            Some(&point.reported),
            Reported::of(run.state, &versions).as_ref()
        );
        statuses.push((point.point.run_id, point.reported.status));
    }
    let status = |n: usize| statuses.iter().find(|(id, _)| *id == runs[n]).map(|s| s.1);
    assert_eq!(status(0), Some(ResultStatus::Final));
    assert_eq!(status(1), Some(ResultStatus::Corrected));
    assert_eq!(status(2), Some(ResultStatus::Preliminary));
    assert_eq!(status(3), Some(ResultStatus::Preliminary));
}
