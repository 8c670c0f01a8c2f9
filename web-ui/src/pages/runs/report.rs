//! The run's report (`GET /runs/{id}`): sample, result, tubes and replicates with decay curves,
//! fits, residuals and T2 distributions, QC flags, the calibration used, result versions with
//! their signatures, the audit trail; and its release by electronic signature
//! (`POST /runs/{id}/release`), which mirrors `POST /api/v1/runs/{id}/release`.

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

use appliance::site::SiteTimeZone;
use appliance::store::RunId;
use appliance::store::audit::AuditRecord;
use appliance::store::calibrations::Calibration as StoredCalibration;
use appliance::store::measurements::{FitOutcome, Measurement, T2Distribution};
use appliance::store::qc_basis::{JudgedFor, QcBasis};
use appliance::store::results::{SignatureMeaning, TrendPoint};
use appliance::store::runs::RunState;
use appliance::store::samples::Sample;
use nmr_core::qc::{QcFlag, Severity};
use operations::reported::{PrintedCount, whole_cells};

use super::{NoticeQuery, count_view, notice, path_id, readable};
use crate::charts::{DecayChart, FittedDecay, T2DistributionChart};
use crate::pages::{PageError, PageForm, PageResult, PageUser};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{
    AuditEntry, CalibrationUsed, CorrectionForm, QcFlagView, QcReliedView, ReleaseForm,
    ReplicateView, ResultVersion, RunHeader, RunPage, Signature, TubeView, paths,
};
use operations::results::CorrectionOrder;
use operations::runs::RunDetail;
use operations::signature::SignatureInput;

/// The report's routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/runs/{id}", get(show))
        .route("/runs/{id}/release", post(release))
        .route("/runs/{id}/corrections", post(correct))
}

/// What a stored fit report holds that the pages show.
#[derive(Debug, Default)]
pub(super) struct FitSummary {
    pub(super) t2_ms: Option<f64>,
    t2_ms_se: Option<f64>,
    r2_per_s: Option<f64>,
    pub(super) snr: Option<f64>,
    chi2_red: Option<f64>,
    amplitude: Option<f64>,
    offset: Option<f64>,
    echoes_used: Option<usize>,
    pub(super) error: Option<String>,
}

impl FitSummary {
    pub(super) fn of(measurement: &Measurement) -> Self {
        let Some(stored) = &measurement.fit_report else {
            return Self {
                error: Some("not fitted".into()),
                ..Self::default()
            };
        };
        match &stored.fit.outcome {
            FitOutcome::Mono(mono) => Self {
                t2_ms: Some(mono.t2_ms),
                t2_ms_se: Some(mono.t2_ms_se),
                r2_per_s: Some(mono.r2_per_s),
                snr: Some(mono.snr),
                chi2_red: Some(mono.chi2_red),
                amplitude: Some(mono.amplitude),
                offset: Some(mono.offset),
                echoes_used: Some(mono.echoes_used),
                error: None,
            },
            FitOutcome::Error(error) => Self {
                error: Some(error.clone()),
                ..Self::default()
            },
        }
    }
}

/// The QC flags as the pages list them.
fn flags_of(flags: &[QcFlag]) -> Vec<QcFlagView> {
    flags
        .iter()
        .map(|flag| QcFlagView {
            severity: match flag.severity {
                Severity::Warn => "warn",
                Severity::Hold => "hold",
            }
            .to_owned(),
            code: flag.code.as_str().to_owned(),
            subject: flag.subject.clone(),
            message: flag.message.clone(),
        })
        .collect()
}

/// A measurement's stored T2 distribution as the page charts it (computed when it was measured,
/// never here), or `None` when the inversion failed.
fn distribution_chart(measurement: &Measurement, label: String) -> Option<T2DistributionChart> {
    match measurement.t2_distribution.as_ref()? {
        T2Distribution::Computed {
            t2_bins_ms,
            amplitudes,
            t2_logmean_ms,
            ..
        } => Some(T2DistributionChart {
            label,
            t2_ms: t2_bins_ms.clone(),
            amplitudes: amplitudes.clone(),
            log_mean_t2_ms: *t2_logmean_ms,
        }),
        T2Distribution::Failed { .. } => None,
    }
}

fn tubes(sample: &Sample, measurements: &[Measurement]) -> Vec<TubeView> {
    let labels: Vec<String> = measurements
        .iter()
        .map(|m| {
            let number = sample
                .tubes
                .iter()
                .position(|t| t.id == m.tube_id)
                .map_or(0, |p| p + 1);
            format!("Tube {number}, replicate {}", m.replicate)
        })
        .collect();
    let mut views = Vec::new();
    for (index, tube) in sample.tubes.iter().enumerate() {
        let mut replicates = Vec::new();
        for (measurement, label) in measurements
            .iter()
            .zip(&labels)
            .filter(|(m, _)| m.tube_id == tube.id)
        {
            let fit = FitSummary::of(measurement);
            let flags = flags_of(&measurement.qc_flags);
            let note = fit
                .error
                .clone()
                .into_iter()
                .chain(
                    flags
                        .iter()
                        .map(|f| format!("{}: {}", f.severity_label(), f.message)),
                )
                .collect::<Vec<_>>()
                .join(" ");
            let train = &measurement.train;
            let times_ms: Vec<f64> = train.times_s().iter().map(|t| t * 1000.0).collect();
            let fitted = match (fit.amplitude, fit.t2_ms, fit.offset) {
                (Some(amplitude), Some(t2_ms), offset) => Some(FittedDecay {
                    amplitude,
                    t2_ms,
                    offset: offset.unwrap_or(0.0),
                    echoes_skipped: fit
                        .echoes_used
                        .map_or(0, |used| train.len().saturating_sub(used)),
                }),
                _ => None,
            };
            replicates.push(ReplicateView {
                number: measurement.replicate,
                t2_ms: fit.t2_ms,
                t2_ms_se: fit.t2_ms_se,
                r2_per_s: fit.r2_per_s,
                snr: fit.snr,
                chi2_red: fit.chi2_red,
                used: fit.t2_ms.is_some(),
                note,
                decay: DecayChart {
                    label: format!("{label} ({})", tube.kind.as_str()),
                    times_ms,
                    amplitudes: train.phase().real,
                    fit: fitted,
                },
                t2_distribution: distribution_chart(measurement, label.clone()),
            });
        }
        let r2: Vec<f64> = replicates
            .iter()
            .filter(|r| r.used)
            .filter_map(|r| r.r2_per_s)
            .collect();
        let (mean, cv) = mean_cv(&r2);
        views.push(TubeView {
            number: u32::try_from(index + 1).unwrap_or(u32::MAX),
            role: format!("{} — {}", tube.kind.role(), tube.label.as_str()),
            mean_r2_per_s: mean,
            cv_percent: cv,
            replicates,
        });
    }
    views
}

/// Mean and coefficient of variation (%, sample SD) of the values.
fn mean_cv(values: &[f64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 || mean == 0.0 {
        return (Some(mean), None);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (Some(mean), Some(variance.sqrt() / mean.abs() * 100.0))
}

fn calibration_used(zone: &SiteTimeZone, stored: &StoredCalibration) -> Option<CalibrationUsed> {
    let c = stored.content.document().ok()?;
    Some(CalibrationUsed {
        calibration_id: stored.id.0,
        lot: stored.reagent_lot.clone(),
        slope_per_s_per_cell: c.slope_per_s_per_cell,
        intercept_per_s: c.intercept_per_s,
        lob_cells: c.lob_cells,
        lod_cells: c.lod_cells,
        loq_cells: c.loq_cells,
        activated_at: readable(zone, &stored.created_at),
    })
}

/// "claire" from the stored actor `user:3:claire`; "appliance" for the instrument.
fn actor_name(actor: &str) -> String {
    actor
        .strip_prefix("user:")
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(|| actor.to_owned(), |(_, name)| name.to_owned())
}

fn audit_trail(zone: &SiteTimeZone, records: &[AuditRecord]) -> Vec<AuditEntry> {
    records
        .iter()
        .map(|record| {
            let mut detail = Vec::new();
            if let Some(reason) = &record.reason {
                detail.push(format!("reason: {reason}"));
            }
            let value = record.detail.value();
            if !(value.is_null() || value.as_object().is_some_and(|o| o.is_empty())) {
                detail.push(value.to_string());
            }
            AuditEntry {
                at: readable(zone, &record.at),
                user: actor_name(&record.actor),
                action: record.action.clone(),
                subject: format!(
                    "{} {}",
                    record.entity,
                    record.entity_id.clone().unwrap_or_default()
                )
                .trim()
                .to_owned(),
                detail: detail.join("; "),
            }
        })
        .collect()
}

/// The QC a result relied on, as the report lists it.
pub(crate) fn qc_relied_view(zone: &SiteTimeZone, basis: &QcBasis) -> QcReliedView {
    let judged = match basis.judged_for {
        JudgedFor::Start => "at the run's start",
        JudgedFor::Release => "at release",
    };
    QcReliedView {
        judged: format!("{judged}, {}", readable(zone, &basis.judged_at)),
        values: basis
            .values
            .iter()
            .map(|v| {
                let level = v.level.as_str();
                format!(
                    "{}{} control: {}, lot {}, measured {} — {}",
                    level.get(..1).unwrap_or_default().to_uppercase(),
                    level.get(1..).unwrap_or_default(),
                    v.material,
                    v.qc_lot,
                    readable(zone, &v.measured_at),
                    v.verdict.as_str()
                )
            })
            .collect(),
    }
}

/// The previous released result and the change from it: "Run 98, drawn Tue 3 Nov 2026, 09:10
/// CET: 6 CTC/7.5 mL (95 % CI 3–11). Change: −4 CTC/7.5 mL." (whole cells, as results print).
fn previous_text(zone: &SiteTimeZone, previous: &TrendPoint, now: Option<f64>) -> String {
    let printed = PrintedCount::from_values(
        previous.per_7_5ml,
        previous.per_7_5ml_ci95,
        previous.category,
        None,
    );
    let change = now
        .map(|now| {
            let delta = now - previous.per_7_5ml;
            let sign = if delta < 0.0 { "−" } else { "+" };
            format!(
                " Change: {sign}{} CTC/7.5 mL.",
                whole_cells(delta.abs(), None)
            )
        })
        .unwrap_or_default();
    format!(
        "Run {}, drawn {}: {}.{change}",
        previous.run_id.0,
        readable(zone, &previous.drawn_at),
        printed.line()
    )
}

/// Builds the run page (and records the view of its data).
async fn run_page(
    state: &AppState,
    user: &PageUser,
    id: i64,
    release_error: Option<String>,
    correction_error: Option<String>,
) -> Result<RunPage, PageError> {
    let record = state
        .ops
        .view_run(
            &user.requester(),
            RunId(id),
            RunDetail::Report,
            "report page",
        )
        .await?;
    let (run, sample, patient, versions, measurements) = (
        &record.run,
        &record.sample,
        &record.patient,
        &record.versions,
        &record.measurements,
    );
    let current = record.current();
    let zone = &state.ops.settings.site.time_zone;
    let operator = record
        .operator
        .as_ref()
        .map_or_else(|| "the appliance".to_owned(), |u| u.display_name.clone());
    let qc_flags = match current {
        Some(version) => flags_of(&version.report.qc_flags),
        None => measurements
            .iter()
            .flat_map(|m| flags_of(&m.qc_flags))
            .collect(),
    };
    let cutoff = current.and_then(|v| v.summary.cutoff_per_7_5ml);
    let release = (user.may(Permission::ReleaseResults)
        && run.state == RunState::AwaitingRelease
        && current.is_some())
    .then(|| ReleaseForm {
        printed_name: user.user.display_name.clone(),
        meanings: [SignatureMeaning::Release, SignatureMeaning::Review]
            .into_iter()
            .map(|m| (m.as_str().to_owned(), m.statement().to_owned()))
            .collect(),
        error: release_error,
    });
    let correction = (user.may(Permission::ReleaseResults)
        && matches!(run.state, RunState::AwaitingRelease | RunState::Released))
    .then_some(current)
    .flatten()
    .map(|version| CorrectionForm {
        printed_name: user.user.display_name.clone(),
        blood_ml: version.report.blood_ml,
        indication: version.report.indication.clone().unwrap_or_default(),
        error: correction_error,
    });
    let state_text =
        crate::pages::dashboard::outcome_words(run.state, run.failure_cause.as_deref());
    Ok(RunPage {
        layout: user.layout(state, &format!("Run {id}"), &paths::run(id)),
        run: RunHeader {
            run_id: id,
            patient_id: patient.id.0,
            patient_mrn: patient.mrn.as_str().to_owned(),
            drawn_at: readable(zone, &sample.drawn_at),
            blood_ml: sample.blood_ml,
            indication: sample
                .indication
                .clone()
                .unwrap_or_else(|| "none".to_owned()),
            reagent_lot: run.reagent_lot.clone().unwrap_or_else(|| "—".to_owned()),
            operator,
            state: state_text,
            started_at: readable(zone, run.started_at.as_ref().unwrap_or(&run.queued_at)),
            finished_at: run.finished_at.as_ref().map(|at| readable(zone, at)),
        },
        result: current.map(|v| count_view(v, record.reported().map(|r| r.status))),
        cutoff_per_7_5ml: cutoff,
        tubes: tubes(sample, measurements),
        qc_flags,
        qc_relied: record.qc_relied_on().map(|b| qc_relied_view(zone, b)),
        previous: record
            .previous
            .as_ref()
            .map(|previous| previous_text(zone, previous, current.map(|c| c.summary.per_7_5ml))),
        previous_shown: user.may(Permission::ViewPatients),
        calibration: record
            .calibration
            .as_ref()
            .and_then(|c| calibration_used(zone, c)),
        versions: versions
            .iter()
            .rev()
            .map(|version| ResultVersion {
                version: version.version,
                created_at: readable(zone, &version.created_at),
                count: count_view(
                    version,
                    current
                        .filter(|c| c.id == version.id)
                        .and_then(|_| record.reported().map(|r| r.status)),
                ),
                reason: version
                    .reason
                    .clone()
                    .unwrap_or_else(|| "first computation".to_owned()),
                signature: version
                    .signatures
                    .iter()
                    .rev()
                    .find(|s| s.meaning == SignatureMeaning::Release)
                    .or_else(|| version.signatures.last())
                    .map(|s| Signature {
                        name: s.printed_name.clone(),
                        meaning: s.meaning.statement().to_owned(),
                        at: readable(zone, &s.signed_at),
                    }),
            })
            .collect(),
        release,
        correction,
        audit: audit_trail(zone, &record.audit),
    })
}

/// `GET /runs/{id}`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    user.require(Permission::ViewRuns)?;
    let id = path_id("run", &id)?;
    let layout = user.layout(&state, &format!("Run {id}"), &paths::run(id));
    let mut page = run_page(&state, &user, id, None, None)
        .await
        .map_err(|error| error.within(layout))?;
    page.layout.notice = notice(query.notice.as_deref());
    Ok(page.into_response())
}

/// The release form: the electronic signature.
#[derive(Debug, Deserialize)]
struct ReleaseFields {
    #[serde(default)]
    printed_name: String,
    #[serde(default)]
    meaning: String,
    #[serde(default)]
    password: String,
}

/// `POST /runs/{id}/release`: signs the newest result version as `POST /api/v1/runs/{id}/release`
/// does (password re-entered and throttled like a sign-in, printed name as on the account), and
/// refuses while a QC flag holds the result.
async fn release(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    PageForm { user, form }: PageForm<ReleaseFields>,
) -> PageResult {
    user.require(Permission::ReleaseResults)?;
    let run_id = path_id("run", &id)?;
    let outcome = sign(&state, &user, RunId(run_id), &form, client.ip()).await;
    match outcome {
        Ok(meaning) => Ok(Redirect::to(&format!(
            "{}?notice={}",
            paths::run(run_id),
            match meaning {
                SignatureMeaning::Release => "released",
                SignatureMeaning::Review => "reviewed",
            }
        ))
        .into_response()),
        Err(error) => {
            let status = error.status();
            let page = run_page(&state, &user, run_id, Some(error.public_detail()), None).await?;
            Ok((status, page).into_response())
        }
    }
}

async fn sign(
    state: &AppState,
    user: &PageUser,
    run_id: RunId,
    form: &ReleaseFields,
    client: std::net::IpAddr,
) -> Result<SignatureMeaning, ApiError> {
    let meaning = match form.meaning.trim() {
        "" | "release" => SignatureMeaning::Release,
        "review" => SignatureMeaning::Review,
        other => {
            return Err(ApiError::invalid(
                "meaning",
                format!(
                    "{:?} is not release or review",
                    other.chars().take(40).collect::<String>()
                ),
            ));
        }
    };
    state
        .ops
        .release_result(
            &user.user,
            client,
            run_id,
            &SignatureInput {
                password: form.password.clone(),
                printed_name: form.printed_name.clone(),
            },
            meaning,
        )
        .await?;
    Ok(meaning)
}

#[derive(Debug, Deserialize)]
struct CorrectionFields {
    #[serde(default)]
    blood_ml: String,
    #[serde(default)]
    indication: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    printed_name: String,
    #[serde(default)]
    password: String,
}

/// `POST /runs/{id}/corrections`: corrects the result as `POST /api/v1/runs/{id}/corrections`
/// does (the one operation); a refusal shows the run page again with the reason.
async fn correct(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    PageForm { user, form }: PageForm<CorrectionFields>,
) -> PageResult {
    user.require(Permission::ReleaseResults)?;
    let run_id = path_id("run", &id)?;
    let outcome = correct_with(&state, &user, RunId(run_id), &form, client.ip()).await;
    match outcome {
        Ok(()) => {
            Ok(Redirect::to(&format!("{}?notice=corrected", paths::run(run_id))).into_response())
        }
        Err(error) => {
            let status = error.status();
            let page = run_page(&state, &user, run_id, None, Some(error.public_detail())).await?;
            Ok((status, page).into_response())
        }
    }
}

async fn correct_with(
    state: &AppState,
    user: &PageUser,
    run_id: RunId,
    form: &CorrectionFields,
    client: std::net::IpAddr,
) -> Result<(), ApiError> {
    // The form carries every current value; the operation takes what differs as the correction.
    let order = CorrectionOrder::parse(Some(&form.blood_ml), Some(&form.indication), &form.reason)?;
    state
        .ops
        .correct_result(
            &user.user,
            client,
            run_id,
            &order,
            &SignatureInput {
                password: form.password.clone(),
                printed_name: form.printed_name.clone(),
            },
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_actors_read_as_names() {
        assert_eq!(actor_name("user:3:claire"), "claire");
        assert_eq!(actor_name("appliance"), "appliance");
        assert_eq!(mean_cv(&[]), (None, None));
        let (mean, cv) = mean_cv(&[9.0, 10.0, 11.0]);
        assert_eq!(mean, Some(10.0));
        assert!((cv.expect("cv") - 10.0).abs() < 1e-12);
    }
}
