//! The calibration pages: every stored calibration (which is active for its lot and echo
//! time), one calibration's dilution-series plot with its limits and EP06 linearity, and its
//! activation by a laboratory administrator, with a reason kept in the audit trail.
//!
//! A stored calibration keeps its fit (slope, intercept, their SEs and covariance), its limits,
//! its levels and the EP06 comparison, but not the per-sample ΔR2 readings of the series. The
//! plot therefore shows the fitted line with its 95 % band from the stored covariance and, as
//! points, the EP06 quadratic at each level (or the levels on the line when no EP06 result was
//! kept), and says so.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

use appliance::store::CalibrationId;
use appliance::store::calibrations::Calibration;
use nmr_core::assay::quantile::t95;
use operations::OperationError;
use operations::calibrations::ActivationReason;

use super::qc::when;
use super::{PageForm, PageResult, PageUser};
use crate::charts::{CalibrationChart, CalibrationLine, CalibrationPoint};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{CalibrationLotRow, CalibrationPage, Notice, SelectedCalibration, paths};

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::CALIBRATIONS, get(list))
        .route("/calibrations/{id}", get(show))
        .route("/calibrations/{id}/activate", post(activate))
}

fn lot_row(stored: &Calibration) -> CalibrationLotRow {
    let parsed = stored.content.document().ok();
    let limit = |f: fn(&nmr_core::assay::Calibration) -> f64| parsed.as_ref().map_or(f64::NAN, f);
    CalibrationLotRow {
        calibration_id: stored.id.0,
        lot: stored.reagent_lot.clone(),
        created_at: when(&stored.created_at),
        te_ms: f64::from(stored.te_us) / 1000.0,
        lob_cells: limit(|c| c.lob_cells),
        lod_cells: limit(|c| c.lod_cells),
        loq_cells: limit(|c| c.loq_cells),
        active: stored.active,
    }
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
fn selected(stored: &Calibration, user: &PageUser) -> SelectedCalibration {
    let can_activate = !stored.active && user.may(Permission::ManageCalibrations);
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
                can_activate: false,
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
            when(&stored.created_at),
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
        can_activate,
    }
}

/// The page with `chosen` in detail (else the newest active one, else the newest).
async fn page(
    state: &AppState,
    user: &PageUser,
    chosen: Option<CalibrationId>,
) -> PageResult<CalibrationPage> {
    let all = state.ops.calibrations(&user.requester()).await?;
    let detail = match chosen {
        Some(id) => Some(state.ops.calibration(&user.requester(), id).await?),
        None => all.iter().find(|c| c.active).or(all.first()).cloned(),
    };
    let path = chosen.map_or_else(
        || paths::CALIBRATIONS.to_owned(),
        |id| paths::calibration(id.0),
    );
    Ok(CalibrationPage {
        layout: user.layout(state, "Calibration", &path),
        lots: all.iter().map(lot_row).collect(),
        selected: detail.as_ref().map(|c| selected(c, user)),
        form_error: None,
    })
}

/// `GET /calibrations`.
async fn list(State(state): State<AppState>, user: PageUser) -> PageResult {
    user.require(Permission::ViewCalibrations)?;
    Ok(page(&state, &user, None).await?.into_response())
}

fn calibration_id(text: &str) -> Result<CalibrationId, ApiError> {
    text.parse::<i64>()
        .map(CalibrationId)
        .map_err(|_| ApiError::NotFound {
            entity: "calibration",
            key: text.chars().take(40).collect(),
        })
}

/// Query of a calibration's page.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    /// Set after activating it.
    #[serde(default)]
    activated: Option<String>,
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
    let mut page = page(&state, &user, Some(id))
        .await
        .map_err(|e| e.within(layout))?;
    if query.activated.is_some()
        && let Some(selected) = page.selected.as_ref().filter(|s| s.active)
    {
        page.layout.notice = Some(Notice {
            level: "success".into(),
            text: format!(
                "Calibration {} is now the active one for lot {}; new runs on this lot use it.",
                selected.calibration_id, selected.chart.lot
            ),
        });
    }
    Ok(page.into_response())
}

/// The activation form.
#[derive(Debug, Deserialize)]
pub struct ActivationForm {
    #[serde(default)]
    reason: String,
}

/// `POST /calibrations/{id}/activate`: makes it the active calibration of its lot and echo
/// time (the one it replaces is deactivated in the same transaction), audited with the reason.
async fn activate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: PageForm<ActivationForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageCalibrations)?;
    let layout = user.layout(&state, "Calibration", paths::CALIBRATIONS);
    let id = calibration_id(&id).map_err(|e| super::PageError::from(e).within(layout.clone()))?;
    let activated = match ActivationReason::parse(&form.reason) {
        Ok(reason) => {
            state
                .ops
                .activate_calibration(&user.requester(), id, &reason)
                .await
        }
        Err(error) => Err(error),
    };
    match activated {
        Ok(_) => {}
        Err(OperationError::Invalid { field, reason }) => {
            let problem = format!("{field}: {reason}");
            let mut page = page(&state, &user, Some(id))
                .await
                .map_err(|e| e.within(layout))?;
            page.layout.notice = Some(Notice {
                level: "error".into(),
                text: format!("Not activated: {problem}."),
            });
            page.form_error = Some(problem);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
        Err(other) => return Err(super::PageError::from(other).within(layout)),
    }
    Ok(Redirect::to(&format!("{}?activated=1", paths::calibration(id.0))).into_response())
}
