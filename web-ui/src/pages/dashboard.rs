//! The dashboard (`GET /`), every role's home: instrument status, today's QC, runs in progress,
//! recent results and results awaiting release, each shown only as far as the role's
//! permissions reach (operators see runs and results, never links into patients' histories).

use axum::Router;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;

use appliance::store::RunId;
use appliance::store::Timestamp;
use appliance::store::qc::QcVerdict as StoredQcStatus;
use appliance::store::runs::RunState;
use operations::runs::{RunSummary, WorklistCursors};
use operations::setup::SetupStep;

use super::runs::{readable, summary_view};
use super::{PageResult, PageUser};
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{
    DashboardPage, InstrumentStatus, QcToday, QcVerdict, ResultRow, RunInProgress, SetupStepView,
    paths,
};
use appliance::site::SiteTimeZone;

/// Recent results shown.
const RECENT_RESULTS: u32 = 10;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new().route(paths::DASHBOARD, get(show))
}

/// Query of the dashboard: `awaiting_after` and `in_flight_after`, where the page of results
/// awaiting release and of runs in flight start (the last run id of the page before; absent or
/// unreadable: the first page).
#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    awaiting_after: Option<String>,
    #[serde(default)]
    in_flight_after: Option<String>,
}

/// A run id as a cursor (absent or unreadable: none, the first page).
fn cursor(text: Option<&str>) -> Option<RunId> {
    text.and_then(|text| text.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .map(RunId)
}

/// `GET /[?awaiting_after=<run id>][&in_flight_after=<run id>]`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<DashboardQuery>,
) -> PageResult {
    // Every role may read the instrument's status; the rest follows the role.
    user.require(Permission::ViewInstrument)?;
    let layout = user.layout(&state, "Dashboard", paths::DASHBOARD);
    let cursors = WorklistCursors {
        in_flight_after: cursor(query.in_flight_after.as_deref()),
        awaiting_after: cursor(query.awaiting_after.as_deref()),
    };
    let page = build(&state, &user, cursors)
        .await
        .map_err(|error| error.within(layout.clone()))?;
    Ok(DashboardPage { layout, ..page }.into_response())
}

async fn build(
    state: &AppState,
    user: &PageUser,
    cursors: WorklistCursors,
) -> Result<DashboardPage, super::PageError> {
    let qc_today = if user.may(Permission::ViewQc) {
        qc_today(state, user).await?
    } else {
        QcToday {
            status: QcVerdict::NotRun,
            problems: Vec::new(),
            measured: 0,
        }
    };
    let mut runs_in_progress = Vec::new();
    let mut recent_results = Vec::new();
    let mut awaiting_release = Vec::new();
    let mut awaiting_next_href = None;
    let mut in_flight_next_href = None;
    if user.may(Permission::ViewRuns) {
        let zone = &state.ops.settings.site.time_zone;
        let status = state.engine.status();
        let worklist = state
            .ops
            .worklist(&user.requester(), RECENT_RESULTS, cursors)
            .await?;
        for RunSummary {
            run,
            sample,
            patient,
            ..
        } in &worklist.in_flight
        {
            let step = match &status.current_run {
                Some(current) if current.run_id == run.id => current.step.clone(),
                _ => state_words(run.state).to_owned(),
            };
            runs_in_progress.push(RunInProgress {
                run_id: run.id.0,
                patient_mrn: patient.mrn.as_str().to_owned(),
                started_at: readable(zone, run.started_at.as_ref().unwrap_or(&sample.created_at)),
                step,
            });
        }
        let patient_link = user.may(Permission::ViewPatients);
        recent_results = worklist
            .recent_results
            .iter()
            .filter_map(|summary| result_row(zone, summary, patient_link))
            .collect();
        awaiting_release = worklist
            .awaiting_release
            .iter()
            .filter_map(|summary| result_row(zone, summary, patient_link))
            .collect();
        in_flight_next_href = worklist.in_flight_next.map(|after| {
            format!(
                "{}?in_flight_after={}#progress-heading",
                paths::DASHBOARD,
                after.0
            )
        });
        awaiting_next_href = worklist.awaiting_next.map(|after| {
            format!(
                "{}?awaiting_after={}#awaiting-heading",
                paths::DASHBOARD,
                after.0
            )
        });
    }
    Ok(DashboardPage {
        layout: user.layout(state, "Dashboard", paths::DASHBOARD),
        instrument: instrument(state, user).await?,
        qc_today,
        runs_in_progress,
        recent_results,
        awaiting_release,
        awaiting_next_href,
        awaiting_first_href: cursors
            .awaiting_after
            .map(|_| format!("{}#awaiting-heading", paths::DASHBOARD)),
        in_flight_next_href,
        in_flight_first_href: cursors
            .in_flight_after
            .map(|_| format!("{}#progress-heading", paths::DASHBOARD)),
        may_release: user.may(Permission::ReleaseResults),
        may_start_runs: user.may(Permission::OperateRuns),
        setup_open: setup_open(state).await?,
    })
}

/// The open steps of the instrument's set-up (`operations::setup` decides), each with the page
/// where it is done.
pub(crate) async fn setup_open(state: &AppState) -> Result<Vec<SetupStepView>, super::PageError> {
    let checklist = state.ops.setup_checklist().await?;
    Ok(checklist
        .open
        .iter()
        .map(|step| {
            let (href, page) = match step {
                SetupStep::Users => (format!("{}#users-heading", paths::ADMIN), "Users"),
                SetupStep::QcMaterials | SetupStep::QcTargets => {
                    (format!("{}#setup-heading", paths::QC), "QC set-up")
                }
                SetupStep::Calibration => (paths::CALIBRATIONS.to_owned(), "Calibrations"),
            };
            SetupStepView {
                text: step.words().to_owned(),
                href,
                page: page.to_owned(),
            }
        })
        .collect())
}

/// The instrument's status (`Operations::instrument_status`: the engine's snapshot, the last
/// tune from the instrument log), as the dashboard shows it.
async fn instrument(
    state: &AppState,
    user: &PageUser,
) -> Result<InstrumentStatus, super::PageError> {
    let status = state.ops.instrument_status(&user.requester()).await?;
    let board = match &status.board {
        Some(board) if board.simulated => {
            format!(
                "Simulated board (serial {}, firmware {})",
                board.serial, board.firmware
            )
        }
        Some(board) => format!(
            "Front-end board (serial {}, firmware {})",
            board.serial, board.firmware
        ),
        None if state.engine.is_simulated() => "Simulated board".to_owned(),
        None => "Front-end board (not identified yet)".to_owned(),
    };
    Ok(InstrumentStatus {
        board,
        board_ok: !status.stopped && (status.board.is_some() || state.engine.is_simulated()),
        f0_hz: status.f0_hz,
        magnet_temp_c: status.magnet_temp_c,
        last_tune: status
            .last_tune_at
            .as_deref()
            .and_then(|text| Timestamp::parse(text).ok())
            .map(|at| readable(&state.ops.settings.site.time_zone, &at)),
    })
}

/// A run's state in words, for a run the engine is not measuring right now.
pub(crate) fn state_words(state: RunState) -> &'static str {
    match state {
        RunState::Queued => "Queued, waiting for the instrument",
        RunState::Running => "Measuring",
        RunState::AwaitingTube => "Waiting for the next tube",
        RunState::AwaitingRelease => "Awaiting release",
        RunState::Released => "Released",
        RunState::Failed => "Failed",
        RunState::Cancelled => "Cancelled",
        RunState::Interrupted => "Interrupted",
    }
}

/// A run's state with why it ended, for pages: "Failed: the board stopped answering", "Cancelled
/// by ann: tube dropped" (a cancel's cause already says "cancelled by …", so it is not repeated).
pub(crate) fn outcome_words(state: RunState, cause: Option<&str>) -> String {
    match cause {
        Some(cause) if state.is_terminal() => {
            let trimmed = cause.trim();
            match trimmed.strip_prefix("cancelled ") {
                Some(rest) if state == RunState::Cancelled => format!("Cancelled {rest}"),
                _ => format!("{}: {trimmed}", state_words(state)),
            }
        }
        _ => state_words(state).to_owned(),
    }
}

/// A run with a result as a table row (`None` when it has none).
fn result_row(zone: &SiteTimeZone, summary: &RunSummary, patient_link: bool) -> Option<ResultRow> {
    let RunSummary {
        run,
        sample,
        patient,
        current,
        reported,
    } = summary;
    let current = current.as_ref()?;
    let held = current.summary.qc_hold;
    let status = match run.state {
        RunState::Released => "Released".to_owned(),
        RunState::AwaitingRelease if held => "Held (QC)".to_owned(),
        other => state_words(other).to_owned(),
    };
    Some(ResultRow {
        run_id: run.id.0,
        patient_id: patient.id.0,
        patient_mrn: patient.mrn.as_str().to_owned(),
        drawn_at: readable(zone, &sample.drawn_at),
        count: summary_view(
            &current.summary,
            current.version,
            reported.as_ref().map(|r| r.status),
        ),
        status,
        patient_link,
    })
}

/// Today's QC (UTC day, as `GET /api/v1/qc` counts it): the worst verdict, what was not passed,
/// and how many control values were recorded.
pub(crate) async fn qc_today(
    state: &AppState,
    user: &PageUser,
) -> Result<QcToday, super::PageError> {
    let today = state.ops.qc_today(&user.requester()).await?;
    let mut problems = Vec::new();
    for value in &today.values {
        let result = &value.result;
        if result.status != StoredQcStatus::Pass {
            let rules = violation_words(&result.violations);
            problems.push(format!(
                "{}, lot {}: {} {} ({}{})",
                value.material.name,
                value.lot.lot,
                result.value,
                value.material.analyte,
                result.status.as_str(),
                if rules.is_empty() {
                    String::new()
                } else {
                    format!(": {rules}")
                }
            ));
        }
    }
    let measured = u32::try_from(today.values.len()).unwrap_or(u32::MAX);
    Ok(QcToday {
        status: match today.worst() {
            None => QcVerdict::NotRun,
            Some(StoredQcStatus::Pass) => QcVerdict::Passed,
            Some(StoredQcStatus::Warning) => QcVerdict::Warning,
            Some(StoredQcStatus::Reject) => QcVerdict::Failed,
        },
        problems,
        measured,
    })
}

/// The Westgard rules a QC value broke, in a few words ("1-3s, 2-2s").
fn violation_words(violations: &[nmr_core::qc::WestgardViolation]) -> String {
    violations
        .iter()
        .map(|violation| violation.rule.name())
        .collect::<Vec<_>>()
        .join(", ")
}
