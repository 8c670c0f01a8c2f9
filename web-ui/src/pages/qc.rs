//! The QC page: a Levey–Jennings chart per control material and lot (every value of a chosen
//! date range, the last month unless `?from=&to=` say otherwise, against the lot's current
//! target, each point marked with the Westgard rules it broke when it was recorded), under each
//! the observed mean, SD and CV (`operations::qc_statistics`) and the rejections, warnings and
//! comments (with the corrective actions recorded against each rejected value, and for those who
//! record QC the form that records one), the phantom history, the form that records a QC measurement, and for lab admins
//! the forms that define control materials and lots and set a lot's target (without which a
//! fresh instrument has nothing to run QC on).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

use appliance::store::qc::{QcMaterialKind, QcResult, QcVerdict};
use appliance::store::{QcLotId, QcResultId, Timestamp};
use nmr_core::qc::Severity;
use operations::OperationError;
use operations::qc::{
    CorrectiveActionText, MAX_REVIEW_VALUES, QcLotOrder, QcLotRecord, QcMaterialOrder,
    QcMaterialRecord, QcTargetOrder, number,
};
use operations::qc_statistics::{MAX_RANGE_DAYS, QcRange};

use super::runs::readable;
use super::{PageForm, PageResult, PageUser};
use crate::charts::{LeveyJenningsChart, LjPoint, LjViolation};
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{
    Notice, PhantomRow, QcChoice, QcLotReview, QcMaterialOption, QcNote, QcPage, QcSetup, paths,
};
use operations::setup::SetupStep;

/// A value as the review prints it: at most three decimals, no trailing zeros.
fn figure(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Phantom checks listed.
const PHANTOM_ROWS: usize = 30;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::QC, get(show))
        .route(paths::QC_MEASUREMENTS, post(submit))
        .route(paths::QC_MATERIALS, post(add_material))
        .route(paths::QC_LOTS, post(add_lot))
        .route(paths::QC_TARGETS, post(set_target))
        .route(
            "/qc/results/{id}/corrective-actions",
            post(record_corrective_action),
        )
}

fn lj_violations(result: &QcResult) -> Vec<LjViolation> {
    result
        .violations
        .iter()
        .map(|v| LjViolation {
            rule: v.rule.name().to_owned(),
            rejects: v.severity == Severity::Hold,
        })
        .collect()
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
        QcVerdict::Pass => ("success", "pass"),
        QcVerdict::Warning => ("warning", "warning"),
        QcVerdict::Reject => (
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

/// What the page confirms after a redirect (ids only: the words come from the store), and the
/// date range its charts cover as typed (blank: the last month).
#[derive(Clone, Debug, Default)]
struct Confirm {
    /// The range's first day, as typed.
    from: String,
    /// The range's last day, as typed.
    to: String,
    /// A QC result just recorded.
    recorded: Option<i64>,
    /// A control material just defined.
    material: Option<i64>,
    /// A lot just added.
    lot: Option<i64>,
    /// A lot whose target was just set.
    target: Option<i64>,
    /// A QC result a corrective action was just recorded against.
    corrected: Option<i64>,
}

fn success(text: String) -> Option<Notice> {
    Some(Notice {
        level: "success".into(),
        text,
    })
}

fn kind_label(kind: QcMaterialKind) -> &'static str {
    match kind {
        QcMaterialKind::Phantom => "phantom",
        QcMaterialKind::Control => "control",
    }
}

/// "2027-03-31".
fn date_text(date: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Builds the QC page from the store; `confirm` names what was just done, to confirm it;
/// `setup_error` is a refused set-up form's field and reason.
async fn page(
    state: &AppState,
    user: &PageUser,
    form_error: Option<String>,
    setup_error: Option<String>,
    confirm: Confirm,
) -> PageResult<QcPage> {
    let zone = &state.ops.settings.site.time_zone;
    let recorded = confirm.recorded;
    let mut notice = None;
    let mut setup_materials = Vec::new();
    let mut setup_lots = Vec::new();
    let today = zone
        .date_of(Timestamp::now())
        .map_err(|e| OperationError::invalid("time", e.to_string()))?;
    let (range, range_error) = match QcRange::parse(&confirm.from, &confirm.to, today) {
        Ok(range) => (range, None),
        Err(OperationError::Invalid { field, reason }) => (
            QcRange::parse("", "", today)?,
            Some(format!(
                "{}: {reason}. The last month is shown instead.",
                if field == "to" { "To" } else { "From" }
            )),
        ),
        Err(other) => return Err(other.into()),
    };
    let overview = state.ops.qc_review(&user.requester(), range).await?;
    let can_record = user.may(Permission::RecordQc);
    let mut reviews = Vec::new();
    let names = &overview.operators;
    let mut charts = Vec::new();
    let mut phantom_history = Vec::new();
    let mut materials = Vec::new();
    for QcMaterialRecord { material, lots } in overview.materials {
        let unit = unit_of(&material.analyte);
        if confirm.material == Some(material.id.0) {
            notice = success(format!(
                "Control material {} defined. Add a lot of it next.",
                material.name
            ));
        }
        setup_materials.push(QcChoice {
            id: material.id.0,
            label: format!(
                "{} ({}, {} in {unit})",
                material.name,
                kind_label(material.kind),
                material.analyte
            ),
        });
        for QcLotRecord {
            lot,
            target,
            results,
            statistics,
            corrective_actions,
            more_in_range,
        } in lots
        {
            if confirm.lot == Some(lot.id.0) {
                notice = success(format!(
                    "Lot {} of {} added. Set its target next: until then no Westgard rule judges its values.",
                    lot.lot, material.name
                ));
            }
            if let Some(target) = target.as_ref().filter(|_| confirm.target == Some(lot.id.0)) {
                notice = success(format!(
                    "Target for {} · lot {} set: mean {} {unit}, SD {} {unit}. New QC values of this lot are judged against it.",
                    material.name, lot.lot, target.mean, target.sd
                ));
            }
            setup_lots.push(QcChoice {
                id: lot.id.0,
                label: format!(
                    "{} · lot {}, expires {} — {}",
                    material.name,
                    lot.lot,
                    date_text(lot.expires_on),
                    target.as_ref().map_or_else(
                        || "no target yet".to_owned(),
                        |t| format!("target {} ± {} {unit}", t.mean, t.sd)
                    )
                ),
            });
            if let Some(result) = results.iter().find(|r| Some(r.id.0) == recorded) {
                notice = Some(recorded_notice(result, &unit));
            }
            if let Some(result) = results.iter().find(|r| Some(r.id.0) == confirm.corrected) {
                notice = success(format!(
                    "Corrective action recorded against the rejected {} value of {} (lot {}, \
                     measured {}).",
                    material.name,
                    figure(result.value),
                    lot.lot,
                    readable(zone, &result.measured_at)
                ));
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
                            measured_at: readable(zone, &result.measured_at),
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
                                    QcVerdict::Pass => "pass",
                                    QcVerdict::Warning => "warning",
                                    QcVerdict::Reject => "reject",
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
            let level = match material.control_level {
                Some(level) => format!(" ({level} control)"),
                None if material.kind == QcMaterialKind::Phantom => " (phantom)".to_owned(),
                None => " (control, no level set)".to_owned(),
            };
            let amount = |value: Option<f64>| {
                value.map_or_else(|| "—".to_owned(), |v| format!("{} {unit}", figure(v)))
            };
            reviews.push(QcLotReview {
                more: more_in_range.then(|| {
                    format!(
                        "The range holds more than {MAX_REVIEW_VALUES} values of this lot: the \
                         latest {MAX_REVIEW_VALUES} are charted and counted; choose a shorter \
                         range for the earlier ones."
                    )
                }),
                title: format!("{}{level} · lot {}", material.name, lot.lot),
                values: statistics.values,
                rejected: statistics.rejected,
                warned: statistics.warned,
                mean: amount(statistics.mean),
                sd: amount(statistics.sd),
                cv: statistics
                    .cv_percent
                    .map_or_else(|| "—".to_owned(), |cv| format!("{cv:.1} %")),
                target: target.as_ref().map_or_else(
                    || "no target".to_owned(),
                    |t| format!("{} ± {} {unit}", figure(t.mean), figure(t.sd)),
                ),
                notes: results
                    .iter()
                    .filter(|r| {
                        r.status != QcVerdict::Pass
                            || r.comment.as_deref().is_some_and(|c| !c.trim().is_empty())
                    })
                    .map(|r| QcNote {
                        measured_at: readable(zone, &r.measured_at),
                        value: format!("{} {unit}", figure(r.value)),
                        verdict: match r.status {
                            QcVerdict::Pass => "Pass",
                            QcVerdict::Warning => "Warning",
                            QcVerdict::Reject => "Reject",
                        }
                        .to_owned(),
                        rules: lj_violations(r)
                            .into_iter()
                            .map(|v| v.rule)
                            .collect::<Vec<_>>()
                            .join(", "),
                        comment: r.comment.clone().unwrap_or_default(),
                        recorded_by: r
                            .operator_id
                            .and_then(|id| names.get(&id).cloned())
                            .unwrap_or_else(|| "instrument".into()),
                        result_id: r.id.0,
                        corrective_actions: corrective_actions
                            .iter()
                            .filter(|a| a.qc_result_id == r.id)
                            .map(|a| {
                                format!(
                                    "{} · {}: {}",
                                    readable(zone, &a.recorded_at),
                                    a.recorded_by_name.as_deref().unwrap_or("instrument"),
                                    a.action
                                )
                            })
                            .collect(),
                        corrective_action_href: (r.status == QcVerdict::Reject && can_record)
                            .then(|| paths::qc_corrective_actions(r.id.0)),
                    })
                    .collect(),
            });
            charts.push(LeveyJenningsChart {
                material: format!("{}{level}", material.name),
                lot: lot.lot.clone(),
                unit: unit.clone(),
                mean: target.as_ref().map_or(f64::NAN, |t| t.mean),
                sd: target.as_ref().map_or(f64::NAN, |t| t.sd),
                points: results
                    .iter()
                    .map(|r| LjPoint {
                        measured_at: zone.chart_text(r.measured_at),
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
    if !can_record {
        materials.clear();
    }
    let setup = if user.may(Permission::ManageQc) {
        let checklist = state.ops.setup_checklist().await?;
        Some(QcSetup {
            materials: setup_materials,
            lots: setup_lots,
            error: setup_error,
            checklist_open: checklist.is_open(SetupStep::QcMaterials)
                || checklist.is_open(SetupStep::QcTargets),
        })
    } else {
        None
    };
    let mut layout = user.layout(state, "Quality control", paths::QC);
    layout.notice = notice;
    let day = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    let ten_years = today.saturating_sub(time::Duration::days(MAX_RANGE_DAYS - 1));
    Ok(QcPage {
        layout,
        charts,
        reviews,
        zone_name: zone.name().to_owned(),
        range_from: day(range.from),
        range_to: day(range.to),
        range_error,
        whole_history_href: format!("{}?from={}&to={}", paths::QC, day(ten_years), day(today)),
        phantom_history,
        materials,
        form_error,
        can_record,
        setup,
        corrective_error: None,
    })
}

/// Query of the QC page.
#[derive(Debug, Default, Deserialize)]
pub struct QcQuery {
    /// A result just recorded (its verdict is shown).
    #[serde(default)]
    recorded: Option<i64>,
    /// A control material just defined.
    #[serde(default)]
    material: Option<i64>,
    /// A lot just added.
    #[serde(default)]
    lot: Option<i64>,
    /// A lot whose target was just set.
    #[serde(default)]
    target: Option<i64>,
    /// A QC result a corrective action was just recorded against.
    #[serde(default)]
    corrected: Option<i64>,
    /// The charts' first day, `YYYY-MM-DD` (absent: a month before `to`).
    #[serde(default)]
    from: Option<String>,
    /// The charts' last day (absent: today).
    #[serde(default)]
    to: Option<String>,
}

/// `GET /qc`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<QcQuery>,
) -> PageResult {
    user.require(Permission::ViewQc)?;
    let confirm = Confirm {
        from: query.from.unwrap_or_default(),
        to: query.to.unwrap_or_default(),
        recorded: query.recorded,
        material: query.material,
        lot: query.lot,
        target: query.target,
        corrected: query.corrected,
    };
    Ok(page(&state, &user, None, None, confirm)
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
    reagent_lot: Option<String>,
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
    let value = number("value", &form.value).map_err(|error| match error {
        OperationError::Invalid { field, reason } => (field.to_owned(), reason),
        other => ("value".to_owned(), other.to_string()),
    })?;
    Ok((QcLotId(lot_id), value))
}

/// `POST /qc/measurements`: records the value, then back to the QC page with the verdict.
async fn submit(State(state): State<AppState>, form: PageForm<QcMeasurementForm>) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::RecordQc)?;
    let outcome = match parse_measurement(&form) {
        Ok((lot_id, value)) => {
            match state
                .ops
                .record_qc(
                    &user.requester(),
                    lot_id,
                    value,
                    form.reagent_lot.as_deref(),
                    form.comment.as_deref(),
                )
                .await
            {
                Ok(result) => Ok(result),
                // The user's input was refused: the form again, naming the field.
                Err(OperationError::Invalid { field, reason }) => Err((field.to_owned(), reason)),
                Err(OperationError::NotFound { .. }) => Err((
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
            let mut page = page(
                &state,
                &user,
                Some(format!("{field}: {reason}")),
                None,
                Confirm::default(),
            )
            .await?;
            page.layout.notice = Some(Notice {
                level: "error".into(),
                text: format!("Nothing was recorded: {field} — {reason}"),
            });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// The corrective-action form; `from` and `to` keep the review's range.
#[derive(Debug, Deserialize)]
pub struct CorrectiveActionForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// `POST /qc/results/{id}/corrective-actions`: records what was done about a rejected QC value
/// (`Operations::record_corrective_action`), then back to the review at that value; a refused
/// text shows the page again with the error beside the form (422), nothing stored.
async fn record_corrective_action(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: PageForm<CorrectiveActionForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::RecordQc)?;
    let result_id = QcResultId(id);
    let recorded = match CorrectiveActionText::parse(&form.action) {
        Ok(action) => {
            state
                .ops
                .record_corrective_action(&user.requester(), result_id, &action)
                .await
        }
        Err(error) => Err(error),
    };
    let confirm = Confirm {
        from: form.from.clone(),
        to: form.to.clone(),
        ..Confirm::default()
    };
    match recorded {
        Ok(_) => {
            // Back to the same range (as parsed: dates only), at the value.
            let today = state
                .ops
                .settings
                .site
                .time_zone
                .date_of(Timestamp::now())
                .map_err(|e| OperationError::invalid("time", e.to_string()))?;
            let range = QcRange::parse(&form.from, &form.to, today)
                .map(|range| format!("from={}&to={}&", range.from, range.to))
                .unwrap_or_default();
            Ok(Redirect::to(&format!(
                "{}?{range}corrected={id}#qc-result-{id}",
                paths::QC
            ))
            .into_response())
        }
        Err(OperationError::Invalid { reason, .. }) => {
            let mut page = page(&state, &user, None, None, confirm).await?;
            page.corrective_error = Some((id, format!("Not recorded: {reason}.")));
            page.layout.notice = Some(Notice {
                level: "error".into(),
                text: format!("Nothing was recorded: the corrective action — {reason}."),
            });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(other) => {
            let layout = user.layout(&state, "Quality control", paths::QC);
            Err(super::PageError::from(other).within(layout))
        }
    }
}

/// A refused set-up form: the field and why.
type Refusal = (String, String);

fn refuse(field: &str, reason: impl Into<String>) -> Refusal {
    (field.to_owned(), reason.into())
}

/// A set-up operation's outcome: where to go next, or the field the operation refused and why
/// (the user's doing: the form again); anything else is not the user's doing (an error page).
fn setup_refusal(
    outcome: Result<String, OperationError>,
) -> Result<Result<String, Refusal>, OperationError> {
    match outcome {
        Ok(target) => Ok(Ok(target)),
        Err(OperationError::Invalid { field, reason }) => Ok(Err(refuse(field, reason))),
        Err(other) => Err(other),
    }
}

/// After a set-up form: back to the QC page confirming what was done, or the page again with
/// 422 naming the refused field (nothing was stored).
async fn setup_outcome(
    state: &AppState,
    user: &PageUser,
    outcome: Result<String, Refusal>,
) -> PageResult {
    match outcome {
        Ok(target) => Ok(Redirect::to(&target).into_response()),
        Err((field, reason)) => {
            let mut page = page(
                state,
                user,
                None,
                Some(format!("{field}: {reason}")),
                Confirm::default(),
            )
            .await?;
            page.layout.notice = Some(Notice {
                level: "error".into(),
                text: format!("Nothing was saved: {field} — {reason}"),
            });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// The new-control-material form.
#[derive(Debug, Deserialize)]
pub struct MaterialForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    control_level: String,
    #[serde(default)]
    analyte: String,
}

/// `POST /qc/materials`: defines a control material (the store audits it).
async fn add_material(State(state): State<AppState>, form: PageForm<MaterialForm>) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageQc)?;
    let made =
        match QcMaterialOrder::parse(&form.name, &form.kind, &form.control_level, &form.analyte) {
            Ok(order) => {
                state
                    .ops
                    .define_qc_material(&user.requester(), &order)
                    .await
            }
            Err(error) => Err(error),
        };
    let outcome = setup_refusal(made.map(|m| format!("{}?material={}", paths::QC, m.id.0)))?;
    setup_outcome(&state, &user, outcome).await
}

/// The new-lot form.
#[derive(Debug, Deserialize)]
pub struct LotForm {
    #[serde(default)]
    material_id: String,
    #[serde(default)]
    lot: String,
    #[serde(default)]
    expires_on: String,
}

/// `POST /qc/lots`: adds a lot of a material (the store audits it).
async fn add_lot(State(state): State<AppState>, form: PageForm<LotForm>) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageQc)?;
    let today = Timestamp::now().datetime().date();
    let made = match QcLotOrder::parse(&form.material_id, &form.lot, &form.expires_on, today) {
        Ok(order) => state.ops.add_qc_lot(&user.requester(), &order).await,
        Err(error) => Err(error),
    };
    let outcome = setup_refusal(made.map(|lot| format!("{}?lot={}", paths::QC, lot.id.0)))?;
    setup_outcome(&state, &user, outcome).await
}

/// The lot-target form.
#[derive(Debug, Deserialize)]
pub struct TargetForm {
    #[serde(default)]
    lot_id: String,
    #[serde(default)]
    mean: String,
    #[serde(default)]
    sd: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    n_values: String,
}

/// `POST /qc/targets`: sets a lot's target mean and SD; it supersedes the lot's earlier targets,
/// which stay on record (the store audits it).
async fn set_target(State(state): State<AppState>, form: PageForm<TargetForm>) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageQc)?;
    let made = match QcTargetOrder::parse(
        &form.lot_id,
        &form.mean,
        &form.sd,
        &form.source,
        &form.n_values,
    ) {
        Ok(order) => state.ops.set_qc_target(&user.requester(), &order).await,
        Err(error) => Err(error),
    };
    let outcome =
        setup_refusal(made.map(|target| format!("{}?target={}", paths::QC, target.lot_id.0)))?;
    setup_outcome(&state, &user, outcome).await
}
