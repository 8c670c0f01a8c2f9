//! The runs pages: the bedside new-run form (`GET /runs/new`, `POST /runs`), the live view
//! (`GET /runs/{id}/live`, fed by the API's server-sent events through `static/live-run.js`),
//! the cancel form, the run's report (`GET /runs/{id}`) and its release by electronic signature
//! (`POST /runs/{id}/release`; both in [`report`]).
//!
//! Each asks for the permission its JSON twin asks for (`OperateRuns` to start, confirm and
//! cancel, `ViewRuns` to read, `ReleaseResults` to sign). A page that shows a run's result
//! records the view in the audit trail, as `GET /api/v1/runs/{id}` does.

mod report;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use appliance::engine::{DEFAULT_REPLICATES, RunRequest, SIMULATED_LOT, SimulatedTruth};
use appliance::store::patients::{Mrn, Patient};
use appliance::store::results::ResultVersion as StoredVersion;
use appliance::store::runs::{Run, RunState};
use appliance::store::samples::Sample;
use appliance::store::{AuditEntry as StoredAuditEntry, RunId, Timestamp};

use super::{PageError, PageForm, PageResult, PageUser};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{CountView, LiveRunPage, NewRunForm, NewRunPage, Notice, ProgressStep, paths};

/// Blood volumes the form accepts, mL (the form's own `min`/`max`).
const BLOOD_ML_RANGE: std::ops::RangeInclusive<f64> = 0.5..=20.0;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::NEW_RUN, get(new_run_form))
        .route(paths::RUNS, post(start_run))
        .route("/runs/{id}/live", get(live))
        .route("/runs/{id}/cancel", post(cancel))
        .merge(report::router())
}

// ---------------------------------------------------------------------------------------------
// Shared with the dashboard and the patient pages.

/// A stored time as pages show it: "Tue 24 Nov 2026, 08:30 UTC".
pub(crate) fn readable(at: &Timestamp) -> String {
    at.datetime()
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[weekday repr:short] [day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
        ))
        .unwrap_or_else(|_| at.to_rfc3339())
}

/// The run's sample and patient.
pub(crate) async fn run_patient(
    state: &AppState,
    run: &Run,
) -> Result<(Sample, Patient), PageError> {
    let sample = state.store.sample(run.sample_id).await?;
    let patient = state.store.patient(sample.patient_id).await?;
    Ok((sample, patient))
}

/// A stored result version as the pages show its count.
pub(crate) fn count_view(version: &StoredVersion) -> CountView {
    let report = &version.report;
    CountView {
        per_7_5ml: version.summary.per_7_5ml,
        per_7_5ml_ci95: version.summary.per_7_5ml_ci95,
        category: version.summary.category.as_str().to_owned(),
        call: version
            .summary
            .call
            .map(|call| call.as_str().to_owned())
            .unwrap_or_default(),
        indication: report
            .indication
            .clone()
            .unwrap_or_else(|| "no indication".to_owned()),
        interval_spans_cutoff: version.summary.interval_spans_cutoff == Some(true),
    }
}

/// A path id, or a "not found" page naming what was asked for.
pub(crate) fn path_id(entity: &'static str, text: &str) -> Result<i64, PageError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::NotFound {
                entity,
                key: text.chars().take(40).collect(),
            }
            .into()
        })
}

/// Whether the engine is done with a run in this state (the API's event stream then ends).
fn settled(state: RunState) -> bool {
    state.is_terminal() || matches!(state, RunState::AwaitingRelease | RunState::Released)
}

/// One replicate as the live view words it (`static/live-run.js` says the same):
/// "Quad tube, replicate 1 of 3: T2 = 79.4 ms (SNR 300)".
pub(crate) fn replicate_text(
    tube: &str,
    replicate: u32,
    of: u32,
    t2_ms: Option<f64>,
    snr: Option<f64>,
    fit_error: Option<&str>,
) -> String {
    let mut name = tube.to_owned();
    if let Some(first) = name.get(..1) {
        name = format!("{}{}", first.to_uppercase(), &name[1..]);
    }
    let head = format!("{name} tube, replicate {replicate} of {of}: ");
    match t2_ms.filter(|t| t.is_finite()) {
        Some(t2) => {
            let snr = snr
                .filter(|s| s.is_finite())
                .map(|s| format!(" (SNR {s:.0})"))
                .unwrap_or_default();
            format!("{head}T2 = {t2:.1} ms{snr}")
        }
        None => format!("{head}no fit ({})", fit_error.unwrap_or("unknown reason")),
    }
}

/// Known one-off notices, by the key a redirect carries (never text from the query).
#[derive(Debug, Default, Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    notice: Option<String>,
}

fn notice(key: Option<&str>) -> Option<Notice> {
    let (level, text) = match key? {
        "released" => (
            "success",
            "Result released: your signature is recorded below.",
        ),
        "reviewed" => (
            "success",
            "Review recorded: your signature is recorded below.",
        ),
        "corrected" => (
            "success",
            "Result corrected: the new version awaits release; the original is kept below.",
        ),
        "started" => ("success", "Run started."),
        "cancelled" => ("info", "The run was cancelled."),
        _ => return None,
    };
    Some(Notice {
        level: level.into(),
        text: text.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// New run.

/// The new-run form as posted: every field as text, checked here so a wrong one is named.
#[derive(Debug, Default, Deserialize)]
struct NewRunFields {
    #[serde(default)]
    patient_mrn: String,
    #[serde(default)]
    drawn_at: String,
    #[serde(default)]
    blood_ml: String,
    #[serde(default)]
    indication: String,
    #[serde(default)]
    reagent_lot: String,
    #[serde(default)]
    simulate_cells: String,
    #[serde(default)]
    confirm_tubes: Option<String>,
}

impl NewRunFields {
    fn form(&self) -> NewRunForm {
        let clip = |text: &str| text.chars().take(100).collect::<String>();
        NewRunForm {
            patient_mrn: clip(&self.patient_mrn),
            drawn_at: clip(&self.drawn_at),
            blood_ml: clip(&self.blood_ml),
            indication: clip(&self.indication),
            reagent_lot: clip(&self.reagent_lot),
            simulate_cells: clip(&self.simulate_cells),
            confirm_tubes: self.confirm_tubes.is_some(),
        }
    }
}

/// Reagent lots a run may use: those with an active calibration (and, on the simulated board,
/// its simulated lot, which the engine calibrates itself on first use).
async fn reagent_lots(state: &AppState) -> Result<Vec<String>, PageError> {
    let mut lots: Vec<String> = Vec::new();
    if state.engine.is_simulated() {
        lots.push(SIMULATED_LOT.to_owned());
    }
    for calibration in state.store.calibrations().await? {
        if calibration.active && !lots.contains(&calibration.reagent_lot) {
            lots.push(calibration.reagent_lot);
        }
    }
    Ok(lots)
}

async fn new_run_page(
    state: &AppState,
    user: &PageUser,
    form: NewRunForm,
    errors: Vec<String>,
) -> Result<NewRunPage, PageError> {
    let qc = super::dashboard::qc_today(state).await?;
    let qc_warning = (qc.status == crate::views::QcVerdict::Failed).then(|| {
        format!(
            "Today's QC failed ({}). A run may still be started; ask the lab before reporting.",
            qc.problems.join("; ")
        )
    });
    Ok(NewRunPage {
        layout: user.layout(state, "New run", paths::NEW_RUN),
        form,
        indications: state
            .engine
            .config()
            .indications
            .indications
            .keys()
            .cloned()
            .collect(),
        reagent_lots: reagent_lots(state).await?,
        errors,
        simulation: state.engine.is_simulated(),
        qc_warning,
    })
}

/// `GET /runs/new`.
async fn new_run_form(State(state): State<AppState>, user: PageUser) -> PageResult {
    user.require(Permission::OperateRuns)?;
    let now = Timestamp::now().datetime().to_offset(time::UtcOffset::UTC);
    let drawn_at = now
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .unwrap_or_default();
    let lots = reagent_lots(&state).await?;
    let form = NewRunForm {
        drawn_at,
        blood_ml: "7.5".into(),
        reagent_lot: lots.first().cloned().unwrap_or_default(),
        ..NewRunForm::default()
    };
    Ok(new_run_page(&state, &user, form, Vec::new())
        .await?
        .into_response())
}

/// Parses the `datetime-local` value (`YYYY-MM-DDTHH:MM[:SS]`, UTC) into RFC 3339.
fn parse_draw_time(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    let with_seconds = if text.len() == 16 {
        format!("{text}:00")
    } else {
        text.to_owned()
    };
    let at = Timestamp::parse(&format!("{with_seconds}Z"))
        .map_err(|_| format!("{text:?} is not a date and time (YYYY-MM-DDTHH:MM)"))?;
    if at.datetime() > Timestamp::now().datetime() + time::Duration::minutes(5) {
        return Err("is in the future".into());
    }
    Ok(at)
}

/// Checks the form; every wrong field is named, one line each.
fn check_new_run(
    fields: &NewRunFields,
    indications: &[String],
    lots: &[String],
    simulation: bool,
) -> Result<RunRequest, Vec<String>> {
    let mut errors = Vec::new();
    let mrn = Mrn::parse(&fields.patient_mrn)
        .map_err(|e| errors.push(format!("Patient MRN: {e}.")))
        .ok();
    let drawn_at = parse_draw_time(&fields.drawn_at)
        .map_err(|e| errors.push(format!("Draw time: {e}.")))
        .ok();
    let blood_ml = match fields.blood_ml.trim().parse::<f64>() {
        Ok(ml) if ml.is_finite() && BLOOD_ML_RANGE.contains(&ml) => Some(ml),
        _ => {
            errors.push("Blood volume must be between 0.5 and 20 mL.".into());
            None
        }
    };
    let indication = fields.indication.trim();
    if !indications.iter().any(|known| known == indication) {
        errors.push(format!(
            "Indication: choose one of {}.",
            indications.join(", ")
        ));
    }
    let lot = fields.reagent_lot.trim();
    if !lots.iter().any(|known| known == lot) {
        errors.push(if lots.is_empty() {
            "Reagent lot: no lot has an active calibration.".to_owned()
        } else {
            format!("Reagent lot: choose one of {}.", lots.join(", "))
        });
    }
    let cells = fields.simulate_cells.trim();
    let simulate = if !simulation || cells.is_empty() {
        None
    } else {
        match cells.parse::<f64>() {
            Ok(n) if n.is_finite() && (0.0..=1.0e6).contains(&n) => Some(n),
            _ => {
                errors.push("Simulated cells: a number from 0 to 1 000 000.".into());
                None
            }
        }
    };
    let (Some(mrn), Some(drawn_at), Some(blood_ml), true) =
        (mrn, drawn_at, blood_ml, errors.is_empty())
    else {
        return Err(errors);
    };
    let mut request = RunRequest::new(mrn.as_str(), blood_ml);
    request.indication = Some(indication.to_owned());
    request.reagent_lot = Some(lot.to_owned());
    request.drawn_at = Some(drawn_at.to_rfc3339());
    request.manual_tube_confirmation = simulation && fields.confirm_tubes.is_some();
    request.simulate = simulate.map(SimulatedTruth::cells);
    Ok(request)
}

/// `POST /runs`: starts the run (the patient is registered when new) and goes to its live view.
async fn start_run(
    State(state): State<AppState>,
    PageForm { user, form: fields }: PageForm<NewRunFields>,
) -> PageResult {
    user.require(Permission::OperateRuns)?;
    let indications: Vec<String> = state
        .engine
        .config()
        .indications
        .indications
        .keys()
        .cloned()
        .collect();
    let lots = reagent_lots(&state).await?;
    let refuse = |errors: Vec<String>| {
        let state = state.clone();
        let user = user.clone();
        let form = fields.form();
        async move {
            let page = new_run_page(&state, &user, form, errors).await?;
            Ok::<Response, PageError>((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    };
    let mut request = match check_new_run(&fields, &indications, &lots, state.engine.is_simulated())
    {
        Ok(request) => request,
        Err(errors) => return refuse(errors).await,
    };
    request.operator = user.user.actor();
    match state.engine.start_run(request).await {
        Ok(ticket) => Ok(Redirect::to(&paths::run_live(ticket.id.0)).into_response()),
        Err(error) => match ApiError::from(error) {
            ApiError::Invalid { field, reason } => {
                refuse(vec![format!("{field}: {reason}.")]).await
            }
            other => Err(other.into()),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Live view and cancel.

/// `GET /runs/{id}/live`.
async fn live(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    user.require(Permission::ViewRuns)?;
    let mut page = live_page(&state, &user, &id).await?;
    page.layout.notice = notice(query.notice.as_deref());
    Ok(page.into_response())
}

async fn live_page(state: &AppState, user: &PageUser, id: &str) -> Result<LiveRunPage, PageError> {
    let id = path_id("run", id)?;
    let layout = user.layout(state, &format!("Run {id}"), &paths::run_live(id));
    build_live_page(state, user, id)
        .await
        .map_err(|error| error.within(layout))
}

async fn build_live_page(
    state: &AppState,
    user: &PageUser,
    id: i64,
) -> Result<LiveRunPage, PageError> {
    let run = state.store.run(RunId(id)).await?;
    let (sample, patient) = run_patient(state, &run).await?;
    let measurements = state.store.run_measurements(run.id).await?;
    let finished = settled(run.state);

    let tube_count = sample.tubes.len();
    // Replicates per tube are not stored: a finished run shows how many it made, a running one
    // at least the default the form always asks for.
    let most = measurements.iter().map(|m| m.replicate).max().unwrap_or(0);
    let of = if finished {
        most
    } else {
        most.max(DEFAULT_REPLICATES)
    };
    let mut steps = Vec::new();
    let mut tubes_seen: Vec<_> = Vec::new();
    for measurement in &measurements {
        let position = sample
            .tubes
            .iter()
            .position(|t| t.id == measurement.tube_id);
        let kind = position
            .map(|p| sample.tubes[p].kind.as_str().to_owned())
            .unwrap_or_else(|| "unknown".into());
        if !tubes_seen.contains(&measurement.tube_id) {
            tubes_seen.push(measurement.tube_id);
            steps.push(ProgressStep {
                kind: "step".into(),
                text: format!(
                    "Tube {} of {tube_count} ({kind}) in place.",
                    position.map_or(0, |p| p + 1)
                ),
                awaiting_tube: None,
            });
        }
        let fit = report::FitSummary::of(measurement);
        steps.push(ProgressStep {
            kind: if fit.t2_ms.is_some() {
                "fit"
            } else {
                "replicate"
            }
            .into(),
            text: replicate_text(
                &kind,
                measurement.replicate,
                of,
                fit.t2_ms,
                fit.snr,
                fit.error.as_deref(),
            ),
            awaiting_tube: None,
        });
    }
    if run.state == RunState::AwaitingTube {
        let next = tubes_seen.len() + 1;
        let kind = sample
            .tubes
            .get(tubes_seen.len())
            .map(|t| t.kind.as_str().to_owned())
            .unwrap_or_default();
        steps.push(ProgressStep {
            kind: "insert_tube".into(),
            text: format!("Insert tube {next} of {tube_count}: {kind}"),
            awaiting_tube: Some(u32::try_from(next).unwrap_or(u32::MAX)),
        });
    }
    let result = if finished {
        state.store.current_result(run.id).await?
    } else {
        None
    };
    if result.is_some() {
        state
            .store
            .record_event(
                &user.user.actor(),
                StoredAuditEntry::new("run.result_view", "run")
                    .id(id)
                    .detail(serde_json::json!({ "page": "live" })),
            )
            .await?;
    }
    let failure = run.state.is_terminal().then(|| {
        format!(
            "{}{}",
            super::dashboard::state_words(run.state).to_lowercase(),
            run.failure_cause
                .as_deref()
                .map(|c| format!(" — {c}"))
                .unwrap_or_default()
        )
    });
    Ok(LiveRunPage {
        layout: user.layout(state, &format!("Run {id}"), &paths::run_live(id)),
        run_id: id,
        patient_mrn: patient.mrn.as_str().to_owned(),
        sample_summary: format!(
            "{} · reagent lot {} · {:.1} mL drawn {}",
            sample.indication.as_deref().unwrap_or("no indication"),
            run.reagent_lot.as_deref().unwrap_or("—"),
            sample.blood_ml,
            readable(&sample.drawn_at)
        ),
        steps,
        finished,
        result: result.as_ref().map(count_view),
        failure,
        cancel_error: None,
    })
}

/// The cancel form.
#[derive(Debug, Deserialize)]
struct CancelFields {
    #[serde(default)]
    reason: String,
}

/// `POST /runs/{id}/cancel`.
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm { user, form }: PageForm<CancelFields>,
) -> PageResult {
    user.require(Permission::OperateRuns)?;
    let run_id = path_id("run", &id)?;
    let run = state.store.run(RunId(run_id)).await?;
    let reason = form.reason.trim();
    let refusal = if reason.chars().count() < 3 || reason.chars().count() > 1000 {
        Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Reason for cancelling: 3 to 1000 characters.".to_owned(),
        ))
    } else {
        match state
            .engine
            .cancel(run.id, &user.user.actor(), reason)
            .await
        {
            Ok(_) => None,
            Err(error) => {
                let error = ApiError::from(error);
                Some((error.status(), error.public_detail()))
            }
        }
    };
    match refusal {
        None => Ok(
            Redirect::to(&format!("{}?notice=cancelled", paths::run_live(run_id))).into_response(),
        ),
        Some((status, message)) => {
            let mut page = live_page(&state, &user, &id).await?;
            page.cancel_error = Some(message);
            Ok((status, page).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(mrn: &str, drawn_at: &str, blood: &str, indication: &str, lot: &str) -> NewRunFields {
        NewRunFields {
            patient_mrn: mrn.into(),
            drawn_at: drawn_at.into(),
            blood_ml: blood.into(),
            indication: indication.into(),
            reagent_lot: lot.into(),
            ..NewRunFields::default()
        }
    }

    #[test]
    fn a_good_form_becomes_a_run_request_in_utc() {
        let request = check_new_run(
            &fields("A-1", "2026-01-02T03:04", "7.5", "breast", "L1"),
            &["breast".into()],
            &["L1".into()],
            false,
        )
        .expect("valid");
        assert_eq!(request.drawn_at.as_deref(), Some("2026-01-02T03:04:00Z"));
        assert_eq!(request.blood_ml, 7.5);
        assert!(request.simulate.is_none() && !request.manual_tube_confirmation);
    }

    #[test]
    fn every_wrong_field_is_named() {
        let errors = check_new_run(
            &fields("", "yesterday", "0.1", "liver", "L9"),
            &["breast".into()],
            &["L1".into()],
            false,
        )
        .expect_err("invalid");
        let text = errors.join("\n");
        for field in [
            "Patient MRN",
            "Draw time",
            "Blood volume",
            "Indication",
            "Reagent lot",
        ] {
            assert!(text.contains(field), "{field} not named in {text}");
        }
        let future = check_new_run(
            &fields("A-1", "2999-01-01T00:00", "7.5", "breast", "L1"),
            &["breast".into()],
            &["L1".into()],
            false,
        )
        .expect_err("future");
        assert!(future[0].contains("future"), "{future:?}");
    }

    #[test]
    fn replicate_lines_read_like_the_live_script() {
        assert_eq!(
            replicate_text("quad", 1, 3, Some(79.44), Some(300.2), None),
            "Quad tube, replicate 1 of 3: T2 = 79.4 ms (SNR 300)"
        );
        assert_eq!(
            replicate_text("control", 2, 3, None, None, Some("no signal")),
            "Control tube, replicate 2 of 3: no fit (no signal)"
        );
    }
}
