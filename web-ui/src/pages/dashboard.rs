//! The dashboard (`GET /`), every role's home: instrument status, today's QC, runs in progress,
//! recent results and results awaiting release, each shown only as far as the role's
//! permissions reach (operators see runs and results, never links into patients' histories).

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;

use appliance::store::Timestamp;
use appliance::store::qc::QcStatus as StoredQcStatus;
use appliance::store::runs::{Run, RunState};

use super::runs::{count_view, readable, run_patient};
use super::{PageResult, PageUser};
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{
    DashboardPage, InstrumentStatus, QcStatus, QcToday, ResultRow, RunInProgress, paths,
};

/// Recent results shown.
const RECENT_RESULTS: u32 = 10;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new().route(paths::DASHBOARD, get(show))
}

/// `GET /`.
async fn show(State(state): State<AppState>, user: PageUser) -> PageResult {
    // Every role may read the instrument's status; the rest follows the role.
    user.require(Permission::ViewInstrument)?;
    let layout = user.layout(&state, "Dashboard", paths::DASHBOARD);
    let page = build(&state, &user)
        .await
        .map_err(|error| error.within(layout.clone()))?;
    Ok(DashboardPage { layout, ..page }.into_response())
}

async fn build(state: &AppState, user: &PageUser) -> Result<DashboardPage, super::PageError> {
    let qc_today = if user.may(Permission::ViewQc) {
        qc_today(state).await?
    } else {
        QcToday {
            status: QcStatus::NotRun,
            problems: Vec::new(),
            measured: 0,
        }
    };
    let mut runs_in_progress = Vec::new();
    let mut recent_results = Vec::new();
    let mut awaiting_release = Vec::new();
    if user.may(Permission::ViewRuns) {
        let status = state.engine.status();
        for run in state.store.runs_in_states(&RunState::IN_FLIGHT).await? {
            let (sample, patient) = run_patient(state, &run).await?;
            let step = match &status.current_run {
                Some(current) if current.run_id == run.id => current.step.clone(),
                _ => state_words(run.state).to_owned(),
            };
            runs_in_progress.push(RunInProgress {
                run_id: run.id.0,
                patient_mrn: patient.mrn.as_str().to_owned(),
                started_at: readable(run.started_at.as_ref().unwrap_or(&sample.created_at)),
                step,
            });
        }
        let patient_link = user.may(Permission::ViewPatients);
        for run in state.store.recent_runs(RECENT_RESULTS * 3).await? {
            if recent_results.len() as u32 >= RECENT_RESULTS {
                break;
            }
            if let Some(row) = result_row(state, &run, patient_link).await? {
                recent_results.push(row);
            }
        }
        if user.may(Permission::ReleaseResults) {
            for run in state
                .store
                .runs_in_states(&[RunState::AwaitingRelease])
                .await?
            {
                if let Some(row) = result_row(state, &run, patient_link).await? {
                    awaiting_release.push(row);
                }
            }
        }
    }
    Ok(DashboardPage {
        layout: user.layout(state, "Dashboard", paths::DASHBOARD),
        instrument: instrument(state),
        qc_today,
        runs_in_progress,
        recent_results,
        awaiting_release,
        may_release: user.may(Permission::ReleaseResults),
        may_start_runs: user.may(Permission::OperateRuns),
    })
}

/// The engine's snapshot of the instrument, as the dashboard shows it.
fn instrument(state: &AppState) -> InstrumentStatus {
    let status = state.engine.status();
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
    InstrumentStatus {
        board,
        board_ok: !status.stopped && (status.board.is_some() || state.engine.is_simulated()),
        f0_hz: status.f0_hz,
        magnet_temp_c: status.magnet_temp_c,
        last_tune: status
            .last_tune_at
            .as_deref()
            .and_then(|text| Timestamp::parse(text).ok())
            .map(|at| readable(&at)),
    }
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

/// A run with a result as a table row (`None` when it has none).
async fn result_row(
    state: &AppState,
    run: &Run,
    patient_link: bool,
) -> Result<Option<ResultRow>, super::PageError> {
    let Some(current) = state.store.current_result(run.id).await? else {
        return Ok(None);
    };
    let (sample, patient) = run_patient(state, run).await?;
    let held = current.report.value()["qc_hold"].as_bool() == Some(true);
    let status = match run.state {
        RunState::Released => "Released".to_owned(),
        RunState::AwaitingRelease if held => "Held (QC)".to_owned(),
        other => state_words(other).to_owned(),
    };
    Ok(Some(ResultRow {
        run_id: run.id.0,
        patient_id: patient.id.0,
        patient_mrn: patient.mrn.as_str().to_owned(),
        drawn_at: readable(&sample.drawn_at),
        count: count_view(&current),
        status,
        patient_link,
    }))
}

/// Today's QC (UTC day, as `GET /api/v1/qc` counts it): the worst verdict, what was not passed,
/// and how many control values were recorded.
pub(crate) async fn qc_today(state: &AppState) -> Result<QcToday, super::PageError> {
    let now = Timestamp::now();
    let today: String = now.to_rfc3339().chars().take(10).collect();
    let since = now.plus(-time::Duration::days(1));
    let mut worst: Option<StoredQcStatus> = None;
    let mut problems = Vec::new();
    let mut measured = 0u32;
    for material in state.store.qc_materials().await? {
        for lot in state.store.qc_lots(material.id).await? {
            for result in state
                .store
                .qc_results(lot.id, since)
                .await?
                .into_iter()
                .filter(|r| r.measured_at.to_rfc3339().starts_with(&today))
            {
                measured += 1;
                worst = Some(match (worst, result.status) {
                    (Some(StoredQcStatus::Reject), _) | (_, StoredQcStatus::Reject) => {
                        StoredQcStatus::Reject
                    }
                    (Some(StoredQcStatus::Warning), _) | (_, StoredQcStatus::Warning) => {
                        StoredQcStatus::Warning
                    }
                    _ => StoredQcStatus::Pass,
                });
                if result.status != StoredQcStatus::Pass {
                    let verdict = match result.status {
                        StoredQcStatus::Reject => "reject",
                        _ => "warning",
                    };
                    let rules = violation_words(result.violations.value());
                    problems.push(format!(
                        "{}, lot {}: {} {} ({verdict}{})",
                        material.name,
                        lot.lot,
                        result.value,
                        material.analyte,
                        if rules.is_empty() {
                            String::new()
                        } else {
                            format!(": {rules}")
                        }
                    ));
                }
            }
        }
    }
    Ok(QcToday {
        status: match worst {
            None => QcStatus::NotRun,
            Some(StoredQcStatus::Pass) => QcStatus::Passed,
            Some(StoredQcStatus::Warning) => QcStatus::Warning,
            Some(StoredQcStatus::Reject) => QcStatus::Failed,
        },
        problems,
        measured,
    })
}

/// The Westgard rules a QC value broke, in a few words ("1-3s, 2-2s").
fn violation_words(violations: &serde_json::Value) -> String {
    let name = |item: &serde_json::Value| -> Option<String> {
        match item {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Object(map) => ["rule", "name", "code"]
                .iter()
                .find_map(|key| map.get(*key))
                .map(|value| {
                    value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned)
                }),
            _ => None,
        }
    };
    match violations {
        serde_json::Value::Array(items) => {
            items.iter().filter_map(name).collect::<Vec<_>>().join(", ")
        }
        serde_json::Value::Object(map) => map
            .get("violations")
            .map(violation_words)
            .unwrap_or_default(),
        _ => String::new(),
    }
}
