//! The calibration pages: the stored calibrations a page at a time (keyset, newest first, one
//! statement a page) with their state, one calibration's dilution-series plot with its limits
//! and EP06 linearity, a lab admin's signed approval or rejection (password re-entered, printed
//! name, reason: audited), the import of a calibration file (pasted or read from a file, checked
//! as `POST /api/v1/calibrations` checks it, stored pending) and, on the simulated board, the
//! simulated lot's dilution series. Every decision is `operations::calibrations`'.
//!
//! A stored calibration keeps its fit (slope, intercept, their SEs and covariance), its limits,
//! its levels and the EP06 comparison, but not the per-sample ΔR2 readings of the series. The
//! plot therefore shows the fitted line with its 95 % band from the stored covariance and, as
//! points, the EP06 quadratic at each level (or the levels on the line when no EP06 result was
//! kept), and says so.

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

use appliance::store::CalibrationId;
use appliance::store::calibrations::{Calibration, CalibrationDecision, CalibrationState};
use nmr_core::assay::quantile::t95;
use operations::calibrations::{CalibrationImport, DecisionReason};
use operations::signature::SignatureInput;

use super::runs::readable;
use super::{PageForm, PageResult, PageUser};
use crate::charts::{CalibrationChart, CalibrationLine, CalibrationPoint};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{CalibrationLotRow, CalibrationPage, Notice, SelectedCalibration, paths};
use appliance::site::SiteTimeZone;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::CALIBRATIONS, get(list))
        .route(paths::CALIBRATIONS, post(import))
        .route(paths::CALIBRATION_SIMULATED, post(make_simulated))
        .route("/calibrations/{id}", get(show))
        .route("/calibrations/{id}/approve", post(approve))
        .route("/calibrations/{id}/reject", post(reject))
}

fn lot_row(zone: &SiteTimeZone, stored: &Calibration) -> CalibrationLotRow {
    let parsed = stored.content.document().ok();
    let limit = |f: fn(&nmr_core::assay::Calibration) -> f64| parsed.as_ref().map_or(f64::NAN, f);
    CalibrationLotRow {
        calibration_id: stored.id.0,
        lot: stored.reagent_lot.clone(),
        created_at: readable(zone, &stored.created_at),
        te_ms: f64::from(stored.te_us) / 1000.0,
        lob_cells: limit(|c| c.lob_cells),
        lod_cells: limit(|c| c.lod_cells),
        loq_cells: limit(|c| c.loq_cells),
        active: stored.active,
        state: stored.state.as_str().to_owned(),
    }
}

/// Who decided, when and why, in words.
fn decision_text(
    zone: &SiteTimeZone,
    stored: &Calibration,
    decider: Option<&str>,
) -> Option<String> {
    let at = stored.decided_at.as_ref()?;
    let verb = match stored.state {
        CalibrationState::Rejected => "Rejected",
        _ => "Approved",
    };
    let by = match (stored.decided_by, decider) {
        (Some(_), Some(name)) => name.to_owned(),
        (Some(id), None) => format!("user {}", id.0),
        (None, _) => "the appliance's console".to_owned(),
    };
    Some(format!(
        "{verb} {} by {by}: {}",
        readable(zone, at),
        stored
            .decision_reason
            .as_deref()
            .unwrap_or("no reason recorded")
    ))
}

/// The fit's 95 % band at `cells`: b + s·c ± t·√(var b + c² var s + 2c cov).
fn band_at(c: &nmr_core::assay::Calibration, cells: f64, t: f64) -> [f64; 3] {
    let fit = c.intercept_per_s + c.slope_per_s_per_cell * cells;
    let var = c.intercept_se.powi(2)
        + cells.powi(2) * c.slope_se.powi(2)
        + 2.0 * cells * c.slope_intercept_cov;
    let half = t * var.max(0.0).sqrt();
    [cells, fit - half, fit + half]
}

/// The detail of one calibration.
fn selected(
    zone: &SiteTimeZone,
    stored: &Calibration,
    user: &PageUser,
    decider: Option<&str>,
) -> SelectedCalibration {
    let can_decide =
        stored.state == CalibrationState::Pending && user.may(Permission::ManageCalibrations);
    let state = stored.state.as_str().to_owned();
    let decision = decision_text(zone, stored, decider);
    let parsed = match stored.content.document() {
        Ok(parsed) => parsed,
        Err(error) => {
            return SelectedCalibration {
                calibration_id: stored.id.0,
                chart: CalibrationChart {
                    lot: stored.reagent_lot.clone(),
                    points: Vec::new(),
                    line: None,
                    lob_cells: None,
                    lod_cells: None,
                    loq_cells: None,
                    points_label: None,
                },
                slope_text: "—".into(),
                intercept_text: "—".into(),
                fit_notes: vec![format!(
                    "The stored calibration document does not read: {error}"
                )],
                active: stored.active,
                state,
                decision_text: decision,
                can_decide,
            };
        }
    };
    let t = t95(parsed.df());
    let cells_high = parsed
        .levels_cells
        .iter()
        .copied()
        .filter(|c| c.is_finite())
        .fold(parsed.loq_cells.max(1.0), f64::max);
    let band_95 = (0..=40)
        .map(|i| f64::from(i) / 40.0 * cells_high)
        .map(|cells| band_at(&parsed, cells, t))
        .collect();
    let line_at = |cells: f64| parsed.intercept_per_s + parsed.slope_per_s_per_cell * cells;
    let (points, points_label) = match &parsed.linearity {
        Some(linearity) if !linearity.levels.is_empty() => (
            linearity
                .levels
                .iter()
                .map(|level| CalibrationPoint {
                    cells: level.level_cells,
                    delta_r2_per_s: line_at(level.level_cells + level.deviation_cells),
                })
                .collect(),
            "EP06 quadratic fit at each level (per-sample readings are not stored)",
        ),
        _ => (
            parsed
                .levels_cells
                .iter()
                .map(|&cells| CalibrationPoint {
                    cells,
                    delta_r2_per_s: line_at(cells),
                })
                .collect(),
            "Series levels, on the fitted line (per-sample readings are not stored)",
        ),
    };
    let mut fit_notes = vec![
        format!(
            "Echo time {:.2} ms; stored {}{}.",
            parsed.te_ms,
            readable(zone, &stored.created_at),
            parsed
                .samples
                .map(|n| format!(" from {n} spiked samples"))
                .unwrap_or_default()
        ),
        match parsed.fit_df {
            Some(df) => format!("Weighted least squares; {df:.0} residual degrees of freedom (95 % band uses t = {t:.3})."),
            None => "No residual degrees of freedom recorded: SEs taken as exact (95 % band uses z = 1.96).".into(),
        },
        format!(
            "LoB by the {} method{}.",
            match parsed.lob_method {
                nmr_core::assay::LobMethod::Parametric => "parametric",
                nmr_core::assay::LobMethod::Nonparametric => "non-parametric",
            },
            parsed
                .cv_goal
                .map(|cv| format!("; LoQ at a CV goal of {:.0} %", cv * 100.0))
                .unwrap_or_default()
        ),
        "The calibration keeps its fit and limits, not the per-sample readings of the dilution series: the points are level summaries, not measurements.".into(),
    ];
    match &parsed.linearity {
        Some(linearity) => {
            let verdict = if linearity.linear {
                "linear"
            } else {
                "NOT linear"
            };
            let mut note = format!(
                "EP06 linearity: {verdict} (quadratic coefficient {:.3e} ± {:.1e}, p = {:.3})",
                linearity.quadratic_coefficient,
                linearity.quadratic_coefficient_se,
                linearity.quadratic_p_value
            );
            if let Some(worst) = linearity.worst_excess() {
                note.push_str(&format!(
                    "; at {} cells the quadratic departs from the line by {:.2} cells (allowed {:.2})",
                    worst.level_cells, worst.deviation_cells, worst.allowable_cells
                ));
            }
            note.push('.');
            fit_notes.push(note);
        }
        None => fit_notes.push("No EP06 linearity result was stored with this calibration.".into()),
    }
    if let Some(note) = stored.note.as_deref().filter(|n| !n.trim().is_empty()) {
        fit_notes.push(format!("Note: {note}"));
    }
    SelectedCalibration {
        calibration_id: stored.id.0,
        chart: CalibrationChart {
            lot: stored.reagent_lot.clone(),
            points,
            line: Some(CalibrationLine {
                slope_per_s_per_cell: parsed.slope_per_s_per_cell,
                intercept_per_s: parsed.intercept_per_s,
                band_95,
            }),
            lob_cells: Some(parsed.lob_cells),
            lod_cells: Some(parsed.lod_cells),
            loq_cells: Some(parsed.loq_cells),
            points_label: Some(points_label.into()),
        },
        slope_text: format!(
            "{:.5} ± {:.5} (1/s) per cell",
            parsed.slope_per_s_per_cell, parsed.slope_se
        ),
        intercept_text: format!(
            "{:.4} ± {:.4} 1/s",
            parsed.intercept_per_s, parsed.intercept_se
        ),
        fit_notes,
        active: stored.active,
        state,
        decision_text: decision,
        can_decide,
    }
}

/// The page with `chosen` in detail (else the approved one on this page, else its newest), the
/// list starting below `before`.
async fn page(
    state: &AppState,
    user: &PageUser,
    chosen: Option<CalibrationId>,
    before: Option<CalibrationId>,
) -> PageResult<CalibrationPage> {
    let listed = state
        .ops
        .calibration_page(&user.requester(), before, None)
        .await?;
    let detail = match chosen {
        Some(id) => Some(state.ops.calibration(&user.requester(), id).await?),
        None => listed
            .calibrations
            .iter()
            .find(|c| c.active)
            .or(listed.calibrations.first())
            .cloned(),
    };
    let path = chosen.map_or_else(
        || paths::CALIBRATIONS.to_owned(),
        |id| paths::calibration(id.0),
    );
    let decider = match &detail {
        Some(calibration) => {
            state
                .ops
                .calibration_decider(&user.requester(), calibration)
                .await?
        }
        None => None,
    };
    let manage = user.may(Permission::ManageCalibrations);
    let zone = &state.ops.settings.site.time_zone;
    Ok(CalibrationPage {
        layout: user.layout(state, "Calibration", &path),
        lots: listed
            .calibrations
            .iter()
            .map(|stored| lot_row(zone, stored))
            .collect(),
        next_href: listed
            .next_before
            .map(|id| format!("{}?before={}", paths::CALIBRATIONS, id.0)),
        selected: detail
            .as_ref()
            .map(|c| selected(zone, c, user, decider.as_deref())),
        form_error: None,
        can_import: manage,
        can_make_simulated: manage && state.ops.is_simulated(),
        import_content: String::new(),
        import_note: String::new(),
        import_error: None,
    })
}

fn calibration_id(text: &str) -> Result<CalibrationId, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(CalibrationId)
        .ok_or_else(|| ApiError::NotFound {
            entity: "calibration",
            key: text.chars().take(40).collect(),
        })
}

/// Query of the list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// The calibration the page starts below.
    #[serde(default)]
    before: Option<String>,
    /// Set after an import or the simulated lot's series: the calibration made.
    #[serde(default)]
    made: Option<String>,
}

/// `GET /calibrations`.
async fn list(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<ListQuery>,
) -> PageResult {
    user.require(Permission::ViewCalibrations)?;
    let layout = user.layout(&state, "Calibration", paths::CALIBRATIONS);
    let before = match query.before.as_deref().filter(|b| !b.is_empty()) {
        Some(text) => Some(
            calibration_id(text).map_err(|e| super::PageError::from(e).within(layout.clone()))?,
        ),
        None => None,
    };
    let made = query.made.as_deref().and_then(|m| calibration_id(m).ok());
    let mut page = page(&state, &user, made, before)
        .await
        .map_err(|e| e.within(layout))?;
    if let Some(id) = made {
        page.layout.notice = Some(Notice {
            level: "success".into(),
            text: format!(
                "Calibration {} is stored, pending: it counts no patient until a lab admin \
                 approves it below.",
                id.0
            ),
        });
    }
    Ok(page.into_response())
}

/// Query of a calibration's page.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    /// Set after approving or rejecting it.
    #[serde(default)]
    decided: Option<String>,
}

/// `GET /calibrations/{id}`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> PageResult {
    user.require(Permission::ViewCalibrations)?;
    let layout = user.layout(&state, "Calibration", paths::CALIBRATIONS);
    let id = calibration_id(&id).map_err(|e| super::PageError::from(e).within(layout.clone()))?;
    let mut page = page(&state, &user, Some(id), None)
        .await
        .map_err(|e| e.within(layout))?;
    if query.decided.is_some()
        && let Some(selected) = page.selected.as_ref()
    {
        let text = match selected.state.as_str() {
            "approved" => format!(
                "Calibration {} is approved: it is the one of lot {}; new runs on this lot use it.",
                selected.calibration_id, selected.chart.lot
            ),
            "rejected" => format!(
                "Calibration {} is rejected: it will never count a run.",
                selected.calibration_id
            ),
            _ => String::new(),
        };
        if !text.is_empty() {
            page.layout.notice = Some(Notice {
                level: "success".into(),
                text,
            });
        }
    }
    Ok(page.into_response())
}

/// The approval or rejection form: the signature and the reason.
#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    printed_name: String,
    #[serde(default)]
    password: String,
}

/// `POST /calibrations/{id}/approve`.
async fn approve(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    form: PageForm<DecisionForm>,
) -> PageResult {
    decide(&state, client.ip(), &id, form, CalibrationDecision::Approve).await
}

/// `POST /calibrations/{id}/reject`.
async fn reject(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    form: PageForm<DecisionForm>,
) -> PageResult {
    decide(&state, client.ip(), &id, form, CalibrationDecision::Reject).await
}

/// A lab admin's signed decision, as `POST /api/v1/calibrations/{id}/approve` makes it; a
/// wrong password or a missing reason shows the page again with the error beside the form.
async fn decide(
    state: &AppState,
    client: std::net::IpAddr,
    id: &str,
    form: PageForm<DecisionForm>,
    decision: CalibrationDecision,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageCalibrations)?;
    let layout = user.layout(state, "Calibration", paths::CALIBRATIONS);
    let id = calibration_id(id).map_err(|e| super::PageError::from(e).within(layout.clone()))?;
    let decided = match DecisionReason::parse(&form.reason) {
        Ok(reason) => {
            state
                .ops
                .decide_calibration(
                    &user.requester(),
                    client,
                    id,
                    decision,
                    &reason,
                    &SignatureInput {
                        password: form.password.clone(),
                        printed_name: form.printed_name.clone(),
                    },
                )
                .await
        }
        Err(error) => Err(error),
    };
    match decided {
        Ok(_) => {
            Ok(Redirect::to(&format!("{}?decided=1", paths::calibration(id.0))).into_response())
        }
        Err(error) => {
            let error = ApiError::from(error);
            let status = error.status();
            let problem = error.public_detail();
            let mut page = page(state, &user, Some(id), None)
                .await
                .map_err(|e| e.within(layout))?;
            let verb = match decision {
                CalibrationDecision::Approve => "approved",
                CalibrationDecision::Reject => "rejected",
            };
            page.layout.notice = Some(Notice {
                level: "error".into(),
                text: format!("Not {verb}: {problem}"),
            });
            page.form_error = Some(problem);
            Ok((status, page).into_response())
        }
    }
}

/// The import form: the calibration file's text (pasted, or read from a file by the page's
/// script) and a note.
#[derive(Debug, Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    content: String,
    #[serde(default)]
    note: String,
}

/// `POST /calibrations`: imports a calibration as `POST /api/v1/calibrations` does (the same
/// checks, stored pending); an error shows the form again with what was typed.
async fn import(State(state): State<AppState>, form: PageForm<ImportForm>) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageCalibrations)?;
    let layout = user.layout(&state, "Calibration", paths::CALIBRATIONS);
    let note = Some(form.note.as_str()).filter(|n| !n.trim().is_empty());
    let imported = match CalibrationImport::parse(&form.content, note) {
        Ok(import) => {
            state
                .ops
                .import_calibration(&user.requester(), &import)
                .await
        }
        Err(error) => Err(error),
    };
    match imported {
        Ok(stored) => Ok(
            Redirect::to(&format!("{}?made={}", paths::CALIBRATIONS, stored.id.0)).into_response(),
        ),
        Err(error) => {
            let error = ApiError::from(error);
            let status = error.status();
            let problem = error.public_detail();
            let mut page = page(&state, &user, None, None)
                .await
                .map_err(|e| e.within(layout))?;
            page.layout.notice = Some(Notice {
                level: "error".into(),
                text: format!("Not imported: {problem}"),
            });
            page.import_error = Some(problem);
            page.import_content = form.content;
            page.import_note = form.note;
            Ok((status, page).into_response())
        }
    }
}

/// The simulated lot's form (no fields besides the CSRF token).
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /calibrations/simulated`: measures the simulated lot's dilution series on the
/// simulated board and stores the calibration pending.
async fn make_simulated(State(state): State<AppState>, form: PageForm<NoFields>) -> PageResult {
    let PageForm { user, .. } = form;
    user.require(Permission::ManageCalibrations)?;
    let layout = user.layout(&state, "Calibration", paths::CALIBRATIONS);
    let made = state
        .ops
        .make_simulated_calibration(&user.requester())
        .await
        .map_err(|e| super::PageError::from(e).within(layout))?;
    Ok(Redirect::to(&format!("{}?made={}", paths::CALIBRATIONS, made.id.0)).into_response())
}
