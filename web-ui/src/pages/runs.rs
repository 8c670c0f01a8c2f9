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

use appliance::engine::DEFAULT_REPLICATES;
use appliance::site::SiteTimeZone;
use appliance::store::results::{ResultSummary, ResultVersion as StoredVersion};
use appliance::store::runs::RunState;
use appliance::store::samples::BloodVolume;
use appliance::store::{RunId, Timestamp};
use operations::OperationError;
use operations::reported::{PrintedCount, ResultStatus, reported_call, whole_cells};
use operations::runs::{CancelReason, RunDetail, RunOrderFields};

use super::{PageError, PageForm, PageResult, PageUser};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{CountView, LiveRunPage, NewRunForm, NewRunPage, Notice, ProgressStep, paths};

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

/// A stored time as pages show it, in the site's local time with its zone: "Tue 24 Nov 2026,
/// 09:30 CET" (one format on every page; `[site] time_zone`).
pub(crate) fn readable(zone: &SiteTimeZone, at: &Timestamp) -> String {
    zone.display(*at)
}

/// A stored result version as the pages show its count: printed and called as the operations
/// layer reports it (`operations::reported`), with the status of the current version (`None`
/// for an earlier version, which the current one supersedes).
pub(crate) fn count_view(version: &StoredVersion, status: Option<ResultStatus>) -> CountView {
    summary_view(&version.summary, version.version, status)
}

/// A result's regulated values (of version `version`) as the pages show them, printed and
/// called by the operations layer.
pub(crate) fn summary_view(
    summary: &ResultSummary,
    version: u32,
    status: Option<ResultStatus>,
) -> CountView {
    CountView {
        per_7_5ml: summary.per_7_5ml,
        per_7_5ml_ci95: summary.per_7_5ml_ci95,
        line: PrintedCount::of(summary).line(),
        category: summary.category.as_str().to_owned(),
        call: reported_call(summary)
            .map(|call| call.as_str().to_owned())
            .unwrap_or_default(),
        indication: summary
            .indication
            .clone()
            .unwrap_or_else(|| "no indication".to_owned()),
        cutoff: summary
            .cutoff_per_7_5ml
            .map(|c| format!("{} CTC/7.5 mL", whole_cells(c, None)))
            .unwrap_or_default(),
        interval_spans_cutoff: summary.interval_spans_cutoff == Some(true),
        version,
        status: status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        qc_hold: summary.qc_hold,
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
    birth_date: String,
    #[serde(default)]
    accession: String,
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
            birth_date: clip(&self.birth_date),
            accession: clip(&self.accession),
            drawn_at: clip(&self.drawn_at),
            blood_ml: clip(&self.blood_ml),
            indication: clip(&self.indication),
            reagent_lot: clip(&self.reagent_lot),
            simulate_cells: clip(&self.simulate_cells),
            confirm_tubes: self.confirm_tubes.is_some(),
        }
    }
}

async fn new_run_page(
    state: &AppState,
    user: &PageUser,
    form: NewRunForm,
    errors: Vec<String>,
) -> Result<NewRunPage, PageError> {
    let qc = super::dashboard::qc_today(state, user).await?;
    let qc_warning = (qc.status == crate::views::QcVerdict::Failed).then(|| {
        format!(
            "Today's QC failed ({}). A run may still be started; ask the lab before reporting.",
            qc.problems.join("; ")
        )
    });
    let context = state.ops.order_context().await?;
    Ok(NewRunPage {
        layout: user.layout(state, "New run", paths::NEW_RUN),
        form,
        indications: context.indications,
        reagent_lots: context.reagent_lots,
        errors,
        simulation: context.simulated,
        qc_warning,
        blood_ml_min: BloodVolume::MIN_ML,
        blood_ml_max: BloodVolume::MAX_ML,
        time_zone: state.ops.settings.site.time_zone.name().to_owned(),
        setup_open: super::dashboard::setup_open(state).await?,
    })
}

/// `GET /runs/new`.
async fn new_run_form(State(state): State<AppState>, user: PageUser) -> PageResult {
    user.require(Permission::OperateRuns)?;
    // The draw time is local time, pre-filled with the site's local clock.
    let drawn_at = state
        .ops
        .settings
        .site
        .time_zone
        .field_text(Timestamp::now());
    let context = state.ops.order_context().await?;
    let form = NewRunForm {
        drawn_at,
        blood_ml: "7.5".into(),
        reagent_lot: context.reagent_lots.first().cloned().unwrap_or_default(),
        ..NewRunForm::default()
    };
    Ok(new_run_page(&state, &user, form, Vec::new())
        .await?
        .into_response())
}

impl NewRunFields {
    /// The form as a run order (the one parser reads it).
    fn order(&self, simulation: bool) -> RunOrderFields {
        RunOrderFields {
            patient_mrn: self.patient_mrn.clone(),
            birth_date: self.birth_date.clone(),
            accession: self.accession.clone(),
            blood_ml: self.blood_ml.clone(),
            indication: self.indication.clone(),
            reagent_lot: self.reagent_lot.clone(),
            drawn_at: self.drawn_at.clone(),
            manual_tube_confirmation: simulation && self.confirm_tubes.is_some(),
            simulate_cells: if simulation {
                self.simulate_cells.clone()
            } else {
                String::new()
            },
            ..RunOrderFields::default()
        }
    }
}

/// `POST /runs`: starts the run (the patient is registered when new) and goes to its live view.
async fn start_run(
    State(state): State<AppState>,
    PageForm { user, form: fields }: PageForm<NewRunFields>,
) -> PageResult {
    user.require(Permission::OperateRuns)?;
    let refuse = |errors: Vec<String>| {
        let state = state.clone();
        let user = user.clone();
        let form = fields.form();
        async move {
            let page = new_run_page(&state, &user, form, errors).await?;
            Ok::<Response, PageError>((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    };
    let order = match state
        .ops
        .parse_order(&fields.order(state.engine.is_simulated()))
        .await?
    {
        Ok(order) => order,
        Err(problems) => return refuse(problems.lines()).await,
    };
    match state.ops.start_run(&user.requester(), &order).await {
        Ok(ticket) => Ok(Redirect::to(&paths::run_live(ticket.id.0)).into_response()),
        Err(OperationError::Invalid { field, reason }) => {
            refuse(vec![format!("{field}: {reason}.")]).await
        }
        Err(other) => Err(other.into()),
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
    let record = state
        .ops
        .view_run(
            &user.requester(),
            RunId(id),
            RunDetail::Readings,
            "live page",
        )
        .await?;
    let (run, sample, patient, measurements) = (
        &record.run,
        &record.sample,
        &record.patient,
        &record.measurements,
    );
    let finished = settled(run.state);
    let zone = &state.ops.settings.site.time_zone;

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
    for measurement in measurements {
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
    // The result shows once the engine is done with the run.
    let result = record.current().filter(|_| finished);
    let failure = run
        .state
        .is_terminal()
        .then(|| super::dashboard::outcome_words(run.state, run.failure_cause.as_deref()));
    Ok(LiveRunPage {
        layout: user.layout(state, &format!("Run {id}"), &paths::run_live(id)),
        run_id: id,
        patient_mrn: patient.mrn.as_str().to_owned(),
        sample_summary: format!(
            "{} · reagent lot {} · {:.1} mL drawn {}",
            sample.indication.as_deref().unwrap_or("no indication"),
            run.reagent_lot.as_deref().unwrap_or("—"),
            sample.blood_ml,
            readable(zone, &sample.drawn_at)
        ),
        steps,
        finished,
        result: result.map(|v| count_view(v, record.reported().map(|r| r.status))),
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
    let cancelled = match CancelReason::parse(&form.reason) {
        Ok(reason) => {
            state
                .ops
                .cancel_run(&user.requester(), RunId(run_id), &reason)
                .await
        }
        Err(error) => Err(error),
    };
    let refusal = match cancelled {
        Ok(_) => None,
        Err(OperationError::Invalid {
            field: "reason",
            reason,
        }) => Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Reason for cancelling: {reason}."),
        )),
        Err(error) => {
            let error = ApiError::from(error);
            Some((error.status(), error.public_detail()))
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

    #[test]
    fn the_form_becomes_a_run_order_with_simulation_only_on_the_simulated_board() {
        let fields = NewRunFields {
            patient_mrn: "A-1".into(),
            birth_date: "1961-04-23".into(),
            accession: "ACC-1".into(),
            drawn_at: "2026-01-02T03:04".into(),
            blood_ml: "7.5".into(),
            indication: "breast".into(),
            reagent_lot: "L1".into(),
            simulate_cells: "12".into(),
            confirm_tubes: Some("true".into()),
        };
        let hardware = fields.order(false);
        assert_eq!(hardware.blood_ml, "7.5");
        assert_eq!(hardware.drawn_at, "2026-01-02T03:04");
        assert!(hardware.simulate_cells.is_empty() && !hardware.manual_tube_confirmation);
        let simulated = fields.order(true);
        assert_eq!(simulated.simulate_cells, "12");
        assert!(simulated.manual_tube_confirmation);
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
