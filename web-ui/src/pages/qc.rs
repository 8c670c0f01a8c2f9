//! The QC page: a Levey–Jennings chart per control material and lot (the last 31 days against
//! the lot's current target, each point marked with the Westgard rules it broke when it was
//! recorded), the phantom history, and the form that records a QC measurement.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

use appliance::store::qc::{QcMaterialKind, QcResult, QcStatus};
use appliance::store::users::User;
use appliance::store::{QcLotId, Timestamp, UserId};
use nmr_core::qc::Severity;
use nmr_core::qc::westgard::WestgardViolation;

use super::{PageForm, PageResult, PageUser};
use crate::api::qc::record;
use crate::charts::{LeveyJenningsChart, LjPoint, LjViolation};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{Notice, PhantomRow, QcMaterialOption, QcPage, paths};

/// Days of history the charts show.
const CHART_DAYS: i64 = 31;
/// Phantom checks listed.
const PHANTOM_ROWS: usize = 30;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::QC, get(show))
        .route(paths::QC_MEASUREMENTS, post(submit))
}

/// "2026-11-24 08:05 UTC": the pages' way of writing a stored instant.
pub(crate) fn when(at: &Timestamp) -> String {
    let t = at.datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// "11-24 08:05", short enough for a chart's x axis.
fn tick_label(at: &Timestamp) -> String {
    let t = at.datetime();
    format!(
        "{:02}-{:02} {:02}:{:02}",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

fn lj_violations(result: &QcResult) -> Vec<LjViolation> {
    // A stored verdict that does not decode (written by another version) still shows its status.
    match result.violations.decode::<Vec<WestgardViolation>>() {
        Ok(violations) => violations
            .into_iter()
            .map(|v| LjViolation {
                rule: v.rule.name().to_owned(),
                rejects: v.severity == Severity::Hold,
            })
            .collect(),
        Err(_) => match result.status {
            QcStatus::Pass => Vec::new(),
            QcStatus::Warning => vec![LjViolation {
                rule: "warning".into(),
                rejects: false,
            }],
            QcStatus::Reject => vec![LjViolation {
                rule: "reject".into(),
                rejects: true,
            }],
        },
    }
}

fn unit_of(analyte: &str) -> String {
    match analyte {
        "t2_ms" => "ms".into(),
        "cells" => "cells".into(),
        other => other.rsplit('_').next().unwrap_or(other).to_owned(),
    }
}

/// The notice after recording `result`: its verdict and the rules it broke.
fn recorded_notice(result: &QcResult, unit: &str) -> Notice {
    let (level, verdict) = match result.status {
        QcStatus::Pass => ("success", "pass"),
        QcStatus::Warning => ("warning", "warning"),
        QcStatus::Reject => (
            "error",
            "reject — patient results covered by this QC are held",
        ),
    };
    let rules: Vec<String> = lj_violations(result).into_iter().map(|v| v.rule).collect();
    let mut text = format!("QC value {} {unit} recorded: {verdict}", result.value);
    if !rules.is_empty() {
        text.push_str(&format!(" (Westgard {})", rules.join(", ")));
    }
    if result.target_id.is_none() {
        text.push_str(". This lot has no target yet, so no Westgard rule was applied");
    }
    text.push('.');
    Notice {
        level: level.into(),
        text,
    }
}

/// Builds the QC page from the store; `recorded` is a result just recorded, to confirm.
async fn page(
    state: &AppState,
    user: &PageUser,
    form_error: Option<String>,
    recorded: Option<i64>,
) -> PageResult<QcPage> {
    let mut notice = None;
    let store = &state.store;
    let since = Timestamp::now().plus(-time::Duration::days(CHART_DAYS));
    let names: std::collections::BTreeMap<UserId, String> = store
        .users()
        .await?
        .into_iter()
        .map(|u: User| (u.id, u.display_name))
        .collect();
    let mut charts = Vec::new();
    let mut phantom_history = Vec::new();
    let mut materials = Vec::new();
    for material in store.qc_materials().await? {
        let unit = unit_of(&material.analyte);
        for lot in store.qc_lots(material.id).await? {
            let target = store.current_qc_target(lot.id).await?;
            let results = store.qc_results(lot.id, since).await?;
            if let Some(result) = results.iter().find(|r| Some(r.id.0) == recorded) {
                notice = Some(recorded_notice(result, &unit));
            }
            materials.push(QcMaterialOption {
                id: lot.id.0,
                label: format!(
                    "{} · lot {} ({unit}){}",
                    material.name,
                    lot.lot,
                    if target.is_none() {
                        " — no target yet"
                    } else {
                        ""
                    }
                ),
            });
            if material.kind == QcMaterialKind::Phantom {
                for result in &results {
                    phantom_history.push((
                        result.measured_at,
                        PhantomRow {
                            measured_at: when(&result.measured_at),
                            phantom: format!("{} · lot {}", material.name, lot.lot),
                            t2_ms: result.value,
                            expected_t2_ms: target.as_ref().map_or(f64::NAN, |t| t.mean),
                            // The 1-2s warning limit, as a percentage of the certified value.
                            tolerance_percent: target
                                .as_ref()
                                .map_or(f64::NAN, |t| 2.0 * t.sd / t.mean.abs() * 100.0),
                            temp_c: None,
                            operator: result
                                .operator_id
                                .and_then(|id| names.get(&id).cloned())
                                .unwrap_or_else(|| "instrument".into()),
                            verdict: result.target_id.map(|_| {
                                match result.status {
                                    QcStatus::Pass => "pass",
                                    QcStatus::Warning => "warning",
                                    QcStatus::Reject => "reject",
                                }
                                .to_owned()
                            }),
                            rules: lj_violations(result)
                                .into_iter()
                                .map(|v| v.rule)
                                .collect::<Vec<_>>()
                                .join(", "),
                        },
                    ));
                }
            }
            charts.push(LeveyJenningsChart {
                material: material.name.clone(),
                lot: lot.lot.clone(),
                unit: unit.clone(),
                mean: target.as_ref().map_or(f64::NAN, |t| t.mean),
                sd: target.as_ref().map_or(f64::NAN, |t| t.sd),
                points: results
                    .iter()
                    .map(|r| LjPoint {
                        measured_at: tick_label(&r.measured_at),
                        value: r.value,
                        violations: lj_violations(r),
                    })
                    .collect(),
            });
        }
    }
    phantom_history.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let phantom_history = phantom_history
        .into_iter()
        .take(PHANTOM_ROWS)
        .map(|(_, row)| row)
        .collect();
    let can_record = user.may(Permission::RecordQc);
    if !can_record {
        materials.clear();
    }
    let mut layout = user.layout(state, "Quality control", paths::QC);
    layout.notice = notice;
    Ok(QcPage {
        layout,
        charts,
        phantom_history,
        materials,
        form_error,
        can_record,
    })
}

/// Query of the QC page.
#[derive(Debug, Default, Deserialize)]
pub struct QcQuery {
    /// A result just recorded (its verdict is shown).
    #[serde(default)]
    recorded: Option<i64>,
}

/// `GET /qc`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<QcQuery>,
) -> PageResult {
    user.require(Permission::ViewQc)?;
    Ok(page(&state, &user, None, query.recorded)
        .await?
        .into_response())
}

/// The QC-measurement form (numbers as text, so that a wrong one is named, not a 400).
#[derive(Debug, Deserialize)]
pub struct QcMeasurementForm {
    #[serde(default)]
    material_lot_id: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    comment: Option<String>,
}

/// The form's lot and value, or the field that is wrong and why.
fn parse_measurement(form: &QcMeasurementForm) -> Result<(QcLotId, f64), (String, String)> {
    let lot_id = form.material_lot_id.trim().parse::<i64>().map_err(|_| {
        (
            "material_lot_id".to_owned(),
            "choose a control material and lot".to_owned(),
        )
    })?;
    // A decimal comma is what a tablet's German or French keyboard gives.
    let value = form
        .value
        .trim()
        .replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            (
                "value".to_owned(),
                format!("{:?} is not a number", form.value),
            )
        })?;
    Ok((QcLotId(lot_id), value))
}

/// `POST /qc/measurements`: records the value, then back to the QC page with the verdict.
async fn submit(State(state): State<AppState>, form: PageForm<QcMeasurementForm>) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::RecordQc)?;
    let outcome = match parse_measurement(&form) {
        Ok((lot_id, value)) => {
            match record(&state, &user.user, lot_id, value, form.comment.as_deref()).await {
                Ok(result) => Ok(result),
                // The user's input was refused: the form again, naming the field.
                Err(ApiError::Invalid { field, reason }) => Err((field, reason)),
                Err(ApiError::NotFound { .. }) => Err((
                    "material_lot_id".to_owned(),
                    "no such control material and lot".to_owned(),
                )),
                // Anything else is not the user's doing: an error page.
                Err(other) => return Err(other.into()),
            }
        }
        Err(refusal) => Err(refusal),
    };
    match outcome {
        Ok(result) => {
            Ok(Redirect::to(&format!("{}?recorded={}", paths::QC, result.id.0)).into_response())
        }
        Err((field, reason)) => {
            let mut page = page(&state, &user, Some(format!("{field}: {reason}")), None).await?;
            page.layout.notice = Some(Notice {
                level: "error".into(),
                text: format!("Nothing was recorded: {field} — {reason}"),
            });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}
