//! Every page rendered from the sample view models (busy, empty, hostile and long inputs):
//! what a user needs is on the page, user text is escaped, tags nest, and every POST form
//! carries the CSRF token.

use askama::Template;

use super::samples::{self, CSRF_TOKEN, HOSTILE_MRN, LONG_MRN};

fn render(page: &impl Template) -> String {
    match page.render() {
        Ok(html) => html,
        Err(error) => panic!("page did not render: {error}"),
    }
}

/// Every page the samples offer, by name.
fn all_pages() -> Vec<(&'static str, String)> {
    vec![
        ("sign_in", render(&samples::sign_in())),
        ("dashboard", render(&samples::dashboard())),
        ("dashboard_empty", render(&samples::dashboard_empty())),
        ("new_run", render(&samples::new_run())),
        ("live_run", render(&samples::live_run())),
        ("patient", render(&samples::patient())),
        ("patient_empty", render(&samples::patient_empty())),
        ("run", render(&samples::run())),
        ("run_releasable", render(&samples::run_releasable())),
        ("run_empty", render(&samples::run_empty())),
        ("qc", render(&samples::qc())),
        ("calibration", render(&samples::calibration())),
        ("admin", render(&samples::admin())),
        ("outbox", render(&samples::outbox())),
    ]
}

const VOID_ELEMENTS: [&str; 8] = ["meta", "link", "input", "br", "img", "hr", "source", "wbr"];

/// Checks that non-void tags nest properly (a template with a stray `</div>` or a missing
/// `{% endif %}` around a closing tag fails here). Returns the first problem.
fn check_nesting(html: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if rest.starts_with('!') {
            let end = rest.find('>').ok_or("unterminated <! ")?;
            rest = &rest[end + 1..];
            continue;
        }
        let end = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            return Err(format!("odd tag <{tag}>"));
        }
        if closing {
            match stack.pop() {
                Some(open) if open == name => {}
                Some(open) => return Err(format!("</{name}> closes <{open}>")),
                None => return Err(format!("</{name}> closes nothing")),
            }
        } else if !(tag.ends_with('/') || VOID_ELEMENTS.contains(&name.as_str())) {
            if name == "script" || name == "style" {
                let close = format!("</{name}>");
                let end = rest.find(&close).ok_or(format!("unterminated <{name}>"))?;
                rest = &rest[end + close.len()..];
                continue;
            }
            stack.push(name);
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

/// The `<form ...>...</form>` blocks of a page.
fn forms(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let end = rest[start..]
            .find("</form>")
            .map(|e| start + e + "</form>".len())
            .unwrap_or(rest.len());
        found.push(&rest[start..end]);
        rest = &rest[end..];
    }
    found
}

#[test]
fn every_page_is_well_nested_and_complete() {
    for (name, html) in all_pages() {
        assert!(html.starts_with("<!DOCTYPE html>"), "{name}");
        assert!(html.trim_end().ends_with("</html>"), "{name}");
        if let Err(problem) = check_nesting(&html) {
            panic!("{name}: {problem}");
        }
        assert!(
            html.contains("<title>") && html.contains(samples::INSTRUMENT),
            "{name} lacks its title"
        );
        assert!(
            html.contains("href=\"/static/ferrocount.css\""),
            "{name} lacks the stylesheet"
        );
        assert!(
            !html.to_ascii_lowercase().contains("nan"),
            "{name} shows NaN"
        );
        assert!(
            !html.contains("{{") && !html.contains("{%"),
            "{name} has unrendered template syntax"
        );
        // No inline script or handler: the pages work under script-src 'self'.
        assert!(
            !html.contains(" onclick=") && !html.contains("<script>"),
            "{name} has inline script"
        );
    }
}

#[test]
fn every_post_form_carries_the_csrf_token_and_get_forms_are_searches() {
    let field = format!("<input type=\"hidden\" name=\"csrf_token\" value=\"{CSRF_TOKEN}\">");
    let mut post_forms = 0;
    for (name, html) in all_pages() {
        for form in forms(&html) {
            if form.contains("method=\"post\"") {
                post_forms += 1;
                assert!(
                    form.contains(&field),
                    "{name}: a POST form lacks the CSRF field:\n{form}"
                );
            } else {
                // A GET form must not leak the token into URLs, and must only search.
                assert!(
                    form.contains("method=\"get\""),
                    "{name}: a form without an explicit method:\n{form}"
                );
                assert!(
                    form.contains("role=\"search\""),
                    "{name}: a GET form that is not a search:\n{form}"
                );
                assert!(
                    !form.contains("csrf_token"),
                    "{name}: a GET form carries the token into the URL"
                );
            }
        }
    }
    // sign-in, sign-out on each signed-in page, new run, cancel, release, QC, activate, admin (3 + revoke).
    assert!(post_forms >= 20, "only {post_forms} POST forms rendered");
}

#[test]
fn user_supplied_text_is_escaped() {
    for (name, html) in all_pages() {
        assert!(
            !html.contains(HOSTILE_MRN),
            "{name} shows the MRN unescaped"
        );
        assert!(
            !html.contains("<b>bold</b>"),
            "{name} renders a user's markup"
        );
    }
    let patient = render(&samples::patient());
    // askama escapes as &#60;…, the chart as &lt;…: both are inert text.
    assert!(patient.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(patient.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn navigation_follows_the_role_and_shows_who_is_signed_in() {
    let clinician = render(&samples::dashboard());
    assert!(clinician.contains("Dr Adaeze Okafor-Villanueva de la Cruz"));
    assert!(clinician.contains(">Clinician<"));
    assert!(!clinician.contains("href=\"/admin\""));
    assert!(!clinician.contains("href=\"/calibrations\""));
    assert!(clinician.contains("href=\"/\" aria-current=\"page\""));
    assert!(clinician.contains("action=\"/sign-out\""));
    assert!(
        clinician.contains("id=\"inactivity-notice\"")
            && clinician.contains("data-timeout-s=\"900\"")
    );

    let admin = render(&samples::admin());
    assert!(admin.contains("href=\"/admin\" aria-current=\"page\""));
    assert!(admin.contains("href=\"/calibrations\""));

    let sign_in = render(&samples::sign_in());
    assert!(
        !sign_in.contains("main-nav"),
        "navigation before signing in"
    );
    assert!(!sign_in.contains("inactivity-notice"));
    assert!(!sign_in.contains("/static/page.js"));
}

#[test]
fn sign_in_asks_for_credentials_and_says_why_the_session_ended() {
    let html = render(&samples::sign_in());
    assert!(html.contains("action=\"/sign-in\""));
    assert!(html.contains("name=\"username\"") && html.contains("value=\"tnurse\""));
    assert!(html.contains("type=\"password\""));
    assert!(html.contains("Username or password not recognised."));
    assert!(html.contains("signed out because nothing happened for 15 minutes"));
}

#[test]
fn dashboard_shows_instrument_qc_runs_and_results() {
    let html = render(&samples::dashboard());
    for needle in [
        "Front-end FE-2 rev B on SPI 0.0",
        "21.472 350 MHz",
        "32.01 °C",
        "today 07:42",
        "qc-verdict status-fail\">Failed",
        "Phantom T2 high, lot PH-24: 1-3s (reject)",
        "Waiting for tube 2 of 3 (quad)",
        "href=\"/runs/118/live\"",
        // Whole cells per 7.5 mL, the interval beside; unreleased results marked.
        "12 CTC/7.5 mL (95 % CI 8–18)",
        "Unfavourable",
        "Not detected (at most 3 CTC/7.5 mL, 95 %)",
        "status-preliminary\">Preliminary",
        "Detected, below LoQ",
        LONG_MRN,
        "href=\"/patients/12\"",
    ] {
        assert!(html.contains(needle), "dashboard lacks {needle:?}");
    }
    // The result waiting for release is in that section, not only among recent results.
    let awaiting = &html[html.find("awaiting-heading").expect("section")
        ..html.find("recent-heading").expect("section")];
    assert!(awaiting.contains("Run 115"));
}

#[test]
fn empty_dashboard_says_there_is_nothing_yet() {
    let html = render(&samples::dashboard_empty());
    for needle in [
        "not answering",
        "not tuned yet",
        "unknown",
        "never",
        "Not run today",
        "0 control measurements today",
        "No runs in progress",
        "href=\"/runs/new\"",
        "Nothing is waiting for release.",
        "No results yet.",
    ] {
        assert!(html.contains(needle), "empty dashboard lacks {needle:?}");
    }
    assert!(!html.contains("<table"));

    // A reader who may neither release nor start runs is offered neither.
    let mut clinician_only_reads = samples::dashboard_empty();
    clinician_only_reads.may_release = false;
    clinician_only_reads.may_start_runs = false;
    let html = render(&clinician_only_reads);
    assert!(!html.contains("awaiting-heading"));
    assert!(!html.contains("Start a new run"));
}

#[test]
fn result_rows_link_the_patient_only_when_the_reader_may_browse_patients() {
    let mut page = samples::dashboard();
    assert!(render(&page).contains("href=\"/patients/7\""));
    for row in page
        .recent_results
        .iter_mut()
        .chain(page.awaiting_release.iter_mut())
    {
        row.patient_link = false;
    }
    let html = render(&page);
    assert!(!html.contains("href=\"/patients/"));
    assert!(html.contains("A-198 552"), "the MRN is still shown");
}

#[test]
fn new_run_has_big_fields_for_every_sample_detail() {
    let html = render(&samples::new_run());
    for field in [
        "patient_mrn",
        "drawn_at",
        "blood_ml",
        "indication",
        "reagent_lot",
        "simulate_cells",
    ] {
        assert!(
            html.contains(&format!("name=\"{field}\"")),
            "new run lacks {field}"
        );
    }
    assert!(html.contains("type=\"datetime-local\" value=\"2026-11-24T09:05\""));
    assert!(
        html.contains("min=\"0.5\" max=\"50\""),
        "the volume field's limits are the one range"
    );
    assert!(html.contains("value=\"breast\" checked"));
    assert!(!html.contains("value=\"prostate\" checked"));
    assert!(html.contains("<option value=\"RL-2611\" selected>"));
    assert!(html.contains("Today&#39;s QC failed") || html.contains("Today's QC failed"));
    assert!(html.contains("class=\"page bedside\""));

    let mut no_lots = samples::new_run();
    no_lots.reagent_lots.clear();
    no_lots.simulation = false;
    no_lots.errors = vec!["Blood volume: 55 mL is not within 0.5 to 50 mL.".into()];
    let html = render(&no_lots);
    assert!(html.contains("No reagent lot has an approved calibration"));
    assert!(html.contains("Start run</button>") && html.contains(" disabled>Start run"));
    assert!(html.contains("Blood volume: 55 mL is not within 0.5 to 50 mL."));
    assert!(!html.contains("simulate_cells"));
}

#[test]
fn live_run_wires_the_event_stream_and_shows_steps_so_far() {
    let html = render(&samples::live_run());
    assert!(html.contains("data-events-href=\"/api/v1/runs/118/events\""));
    assert!(html.contains("data-confirm-href=\"/api/v1/runs/118/confirm-tube\""));
    assert!(html.contains("<script src=\"/static/live-run.js\" defer></script>"));
    assert!(html.contains("<meta name=\"csrf-token\" content=\"sample-csrf-token-3f9a\">"));
    assert!(html.contains("Insert tube 1 of 3: baseline"));
    // The tube still waiting keeps its confirm button across a reload; confirmed ones do not.
    assert_eq!(html.matches("data-confirm-tube=").count(), 1);
    assert!(html.contains("data-confirm-tube=\"2\">Tube 2 inserted — confirm</button>"));
    assert!(html.contains("T2 = 84.2 ± 0.6 ms"));
    assert!(html.contains("action=\"/runs/118/cancel\""));

    assert!(html.contains("name=\"reason\""), "cancelling asks why");
    assert!(html.contains("data-result-panel hidden"));

    let mut finished = samples::live_run();
    finished.finished = true;
    let html = render(&finished);
    assert!(html.contains("data-finished=\"true\""));
    assert!(!html.contains("Cancel run"));

    // A finished run shows its completion and QC state at once (no dead spinner), never the
    // count or the call (preliminary until a clinician releases it), or why it stopped.
    finished.result = samples::run().result;
    let html = render(&finished);
    assert!(!html.contains("data-result-panel hidden"));
    assert!(html.contains("Measurement complete") && html.contains("QC: no hold"));
    assert!(html.contains("Preliminary"));
    assert!(
        !html.contains("CTC/7.5 mL (95 % CI"),
        "no count at the bedside"
    );
    assert!(!html.contains("avourable") && !html.contains("Indeterminate"));
    assert!(html.contains("data-failure-panel hidden"));
    finished.result = None;
    finished.failure = Some("Failed: board: not answering".into());
    let html = render(&finished);
    assert!(html.contains("The run stopped: Failed: board: not answering"));
}

#[test]
fn patient_page_shows_trend_runs_and_export() {
    let html = render(&samples::patient());
    assert!(html.contains("class=\"chart chart-trend\""));
    assert_eq!(html.matches("class=\"point point-").count(), 5);
    assert!(html.contains("Cut-off (breast): 5 CTC/7.5 mL"));
    assert!(html.contains("href=\"/api/v1/patients/9/trend?format=csv\""));
    assert!(
        html.contains("The chart shows the latest 200 results"),
        "a bounded chart says so and points at the full export"
    );
    assert_eq!(
        html.matches("<tr>").count(),
        1 + 6,
        "header + one row per run"
    );
    assert!(html.contains("Failed: tube 2 underfilled") && html.contains("No result"));
    assert!(html.contains("18 CTC/7.5 mL (95 % CI 13–25)"));
    assert!(
        !html.contains("href=\"/runs/new\""),
        "no New run link for a reader who may not start runs"
    );

    let empty = render(&samples::patient_empty());
    assert!(
        empty.contains("href=\"/runs/new\""),
        "New run offered to one who may"
    );
    assert!(empty.contains("No data yet"));
    assert!(empty.contains("No runs for this patient yet."));
    assert!(empty.contains("No indication recorded"));
    assert!(!empty.contains("trend-bounded"));
    assert!(!empty.contains("trend?format=csv"), "nothing to export yet");
    assert!(!empty.contains("<figcaption>"), "no key for an empty chart");
    assert!(empty.contains(LONG_MRN));
}

#[test]
fn run_page_shows_everything_a_reviewer_needs_and_the_release_form() {
    let html = render(&samples::run());
    for needle in [
        "2 CTC/7.5 mL (95 % CI 1–5)",
        "Detected, below LoQ",
        // The interval contains the cut-off: indeterminate, never favourable.
        "call-indeterminate\">Indeterminate",
        "cut-off 5 CTC/7.5 mL",
        "contains the cut-off of 5 CTC/7.5 mL",
        "data-result-status=\"PRELIMINARY\"",
        "QC relied on",
        "Negative control: CTC control negative, lot QN-2611",
        "Change from the previous released result",
        "href=\"/api/v1/runs/115/report.pdf\"",
        "Held: a QC flag must be resolved",
        "flag severity-hold",
        "flag severity-warn",
        "temperature_drift",
        "href=\"/calibrations/4\"",
        "LoB 1.2 · LoD 3.4 · LoQ 8.0 cells",
        "Tube 2: quad (targeted particles)",
        "class=\"excluded\"",
        "excluded: low fill (air bubble?)",
        "84.0 ± 0.6 ms",
        "not released",
        "run.started",
        "result.computed",
        "data-print hidden>Print report</button>",
    ] {
        assert!(html.contains(needle), "run page lacks {needle:?}");
    }
    assert_eq!(
        html.matches("class=\"chart chart-decay\"").count(),
        6,
        "one decay per replicate"
    );
    assert_eq!(
        html.matches("class=\"chart chart-t2-distribution\"")
            .count(),
        2
    );
    // The replicate charts are collapsed below the result (the release form stays near the
    // top); printing opens them (static/page.js).
    assert_eq!(
        html.matches("<details class=\"charts-details\">").count(),
        2
    );
    assert!(html.find("release-heading") < html.find("tubes-heading"));
}

#[test]
fn a_held_result_offers_no_release_form() {
    let held = render(&samples::run());
    assert!(held.contains("Release is blocked while a hold flag is open"));
    assert!(!held.contains("action=\"/runs/115/release"));

    let html = render(&samples::run_releasable());
    assert!(!html.contains("Release is blocked"));
    // The form posts back to itself at its own heading: an error keeps it in view.
    assert!(html.contains("action=\"/runs/115/release#release-heading\""));
    assert!(html.contains("name=\"meaning\""));
    assert!(html.contains("<option value=\"release\">Released for clinical use</option>"));
    assert!(html.contains("name=\"password\" type=\"password\""));
    assert!(html.contains("value=\"Dr Adaeze Okafor-Villanueva de la Cruz\""));
}

#[test]
fn run_page_without_data_says_so_and_offers_no_release() {
    let html = render(&samples::run_empty());
    for needle in [
        "No result computed.",
        "No valid QC is recorded for this run",
        "this is not valid QC",
        "No calibration recorded.",
        "No tubes measured yet.",
        "No result versions.",
        "No audit entries.",
        "Failed: board not answering",
    ] {
        assert!(html.contains(needle), "empty run page lacks {needle:?}");
    }
    assert!(!html.contains("/release#"));
}

#[test]
fn qc_page_charts_each_lot_marks_violations_and_records_measurements() {
    let html = render(&samples::qc());
    assert_eq!(
        html.matches("class=\"chart chart-levey-jennings").count(),
        2
    );
    assert!(
        html.contains("chart-levey-jennings chart-empty"),
        "the lot without measurements says so"
    );
    assert!(html.contains("REJECT: violates 1-3s"));
    assert!(html.contains("action=\"/qc/measurements\""));
    assert!(html.contains("name=\"material_lot_id\"") && html.contains("name=\"value\""));
    assert!(html.contains("+4.1 %") && html.contains("status-fail\">Fail"));
    assert!(html.contains("+1.5 %") && html.contains("status-ok\">Pass"));

    // A stored Westgard verdict decides the badge, even within tolerance (e.g. 4-1s).
    let mut judged = samples::qc();
    judged.phantom_history[1].verdict = Some("reject".into());
    judged.phantom_history[1].rules = "4-1s".into();
    let html = render(&judged);
    assert!(
        html.contains("+1.5 %")
            && html.contains("status-fail\">Reject</span> <span class=\"muted\">4-1s")
    );

    let mut viewer = samples::qc();
    viewer.can_record = false;
    let html = render(&viewer);
    assert!(
        !html.contains("/qc/measurements"),
        "no form for those who may not record"
    );
    assert!(html.contains("chart-levey-jennings"), "the charts stay");
}

#[test]
fn calibration_page_plots_the_lot_and_offers_signed_approval_import_and_paging() {
    let html = render(&samples::calibration());
    assert!(html.contains("class=\"chart chart-calibration\""));
    assert_eq!(html.matches("class=\"point\"").count(), 21);
    assert!(html.contains("action=\"/calibrations/4/approve\""));
    assert!(html.contains("formaction=\"/calibrations/4/reject\""));
    assert!(html.contains("Approve calibration 4"));
    assert!(html.contains("Pending approval"), "the state is shown");
    assert!(html.contains("Approved (in use)"));
    assert!(html.contains("0.00400 ± 0.00008 (1/s) per cell"));
    assert!(html.contains("<dt>LoQ</dt><dd>8.0 cells</dd>"));
    assert!(html.contains("href=\"/calibrations/3\""));
    for field in [
        "name=\"reason\"",
        "name=\"password\"",
        "name=\"printed_name\"",
    ] {
        assert!(html.contains(field), "approval is signed: {field}");
    }
    assert!(
        html.contains("href=\"/calibrations?before=3\""),
        "the next page"
    );
    assert!(html.contains("action=\"/calibrations\"") && html.contains("name=\"content\""));
    assert!(
        html.contains("data-fills=\"import_content\""),
        "a file can be read in"
    );
    assert!(html.contains("action=\"/calibrations/simulated\""));

    let mut refused = samples::calibration();
    refused.form_error = Some("password: the password does not match".into());
    let html = render(&refused);
    assert!(html.contains("password: the password does not match"));
    assert!(
        html.contains(" autofocus>"),
        "the password field is focused again"
    );

    let mut decided = samples::calibration();
    if let Some(selected) = decided.selected.as_mut() {
        selected.state = "approved".into();
        selected.can_decide = false;
        selected.decision_text = Some("Approved 2026-12-02 10:00 UTC by user 3: verified".into());
    }
    decided.can_import = false;
    decided.can_make_simulated = false;
    let html = render(&decided);
    assert!(!html.contains("/approve"), "no form once decided");
    assert!(html.contains("by user 3: verified"));
    assert!(
        !html.contains("name=\"content\""),
        "no import for those who may not"
    );

    let mut empty = samples::calibration();
    empty.lots.clear();
    empty.selected = None;
    empty.next_href = None;
    let html = render(&empty);
    assert!(html.contains("No calibrations yet."));
    assert!(!html.contains("/approve"));
}

#[test]
fn admin_page_manages_users_tokens_audit_log_and_backup() {
    let html = render(&samples::admin());
    for needle in [
        "action=\"/admin/users\"",
        "<option value=\"lab_admin\">Lab admin</option>",
        "fc_tok_5JX2Q9M3V7K1W8P4",
        "action=\"/admin/tokens/2/revoke\"",
        "action=\"/admin/tokens\"",
        "action=\"/admin/audit\"",
        "name=\"action\" type=\"text\" value=\"result.released\"",
        "1 entry found on this page, newest first",
        "Download every entry found (CSV)",
        "v1, meaning: Reviewed and released",
        "QC: Phantom T2 high lot PH-24 violates 1-3s",
        "href=\"/admin/backup\"",
        "Locum &#60;b&#62;bold&#60;/b&#62;",
        "/disable\"",
        "name=\"reason\"",
    ] {
        assert!(html.contains(needle), "admin page lacks {needle:?}");
    }

    let mut before_search = samples::admin();
    before_search.audit_results = None;
    before_search.new_token_secret = None;
    let html = render(&before_search);
    assert!(html.contains("Search to see entries."));
    assert!(!html.contains("will not be shown again"));
}

#[test]
fn the_outbox_shows_where_each_message_stands_and_offers_resend_only_when_parked() {
    let html = render(&samples::outbox());
    for needle in [
        "FC00000043",
        "Next attempt Tue 24 Nov 2026, 09:31 CET",
        "could not connect to lis.example:2575: refused",
        "the destination rejected the message: AR: unknown patient",
        "version 2 (correction)",
        "Delivered Tue 24 Nov 2026, 09:30 CET: acknowledged <q>AA</q>",
        "accession ACC-41",
        "href=\"/outbox?before=41\" rel=\"next\"",
        "href=\"/outbox?destination=lis\"",
        "href=\"/outbox\" aria-current=\"page\">Outbox</a>",
    ] {
        assert!(html.contains(needle), "outbox page lacks {needle:?}");
    }
    let resend_forms: Vec<&str> = forms(&html)
        .into_iter()
        .filter(|form| form.contains("/resend"))
        .collect();
    assert_eq!(
        resend_forms.len(),
        1,
        "a resend form for the parked message only"
    );
    assert!(resend_forms[0].contains("action=\"/outbox/42/resend\""));
    assert!(resend_forms[0].contains("name=\"reason\"") && resend_forms[0].contains("required"));

    let mut empty = samples::outbox();
    empty.rows.clear();
    empty.next_href = None;
    let html = render(&empty);
    assert!(html.contains("No messages.") && !html.contains("rel=\"next\""));
}

/// The value of `name="…"` inside one opening tag.
fn tag_attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

#[test]
fn every_chart_on_a_page_has_its_own_accessible_name_and_ids_never_repeat() {
    // The run page carries six decay and two T2 charts, the QC page two Levey–Jennings charts
    // (one drawn, one empty), the patient page a trend: each a page with several charts or a
    // chart among other labelled parts.
    for (name, html) in all_pages() {
        let mut ids = std::collections::HashSet::new();
        for piece in html.split(" id=\"").skip(1) {
            let id = piece.split('"').next().unwrap_or("");
            assert!(ids.insert(id.to_string()), "{name}: id {id:?} repeats");
        }
        let mut names = std::collections::HashSet::new();
        for piece in html.split("<svg").skip(1) {
            let tag = piece.split('>').next().unwrap_or("");
            if tag_attribute(tag, "role") != Some("img") {
                continue;
            }
            let label = tag_attribute(tag, "aria-label").unwrap_or("").trim();
            assert!(!label.is_empty(), "{name}: a chart without a name: {tag}");
            assert!(
                tag_attribute(tag, "aria-labelledby").is_none(),
                "{name}: a chart named by ids"
            );
            assert!(
                names.insert(label.to_string()),
                "{name}: two charts named {label:?}"
            );
        }
        if ["run", "qc", "patient"].contains(&name) {
            assert!(!names.is_empty(), "{name}: the sample page has charts");
        }
    }
}

#[test]
fn the_nesting_check_catches_broken_markup() {
    assert!(check_nesting("<div><p>x</p></div>").is_ok());
    assert!(check_nesting("<div><p>x</div></p>").is_err());
    assert!(check_nesting("<div>").is_err());
    assert!(check_nesting("<input name=\"a\"><br><svg><rect/></svg>").is_ok());
}
