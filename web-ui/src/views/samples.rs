//! Representative view models for every page: what the example renders to disk, what the tests
//! check, and what a developer can mount to see a page before its data exists.
//!
//! The numbers are plausible, not measured: decays follow A·exp(−t/T2)+C with a deterministic
//! wiggle standing in for noise. Not for anything clinical.

use super::*;
use crate::charts::{
    CalibrationChart, CalibrationLine, CalibrationPoint, DecayChart, FittedDecay,
    LeveyJenningsChart, LjPoint, LjViolation, T2DistributionChart, TrendChart, TrendChartPoint,
    TrendEvent,
};

/// The instrument name used by the samples.
pub const INSTRUMENT: &str = "Ferrocount FC-01 · Oncology day unit";
/// The CSRF token used by the samples (tests look for it in every form).
pub const CSRF_TOKEN: &str = "sample-csrf-token-3f9a";
/// An MRN that tries to inject markup: pages must escape it.
pub const HOSTILE_MRN: &str = "<script>alert(1)</script>";
/// A very long MRN and name, to check that layouts wrap instead of overflowing.
pub const LONG_MRN: &str = "MRN-2026-ONCOLOGY-DAY-UNIT-0000012345678901234567890";

/// A layout for a user of `role` on `path`.
pub fn layout(role: Role, page_title: &str, path: &str) -> Layout {
    let user = match role {
        Role::Operator => SignedInUser {
            username: "tnurse".into(),
            display_name: "Theresa Nurse".into(),
            role,
        },
        Role::Clinician => SignedInUser {
            username: "dr.okafor".into(),
            display_name: "Dr Adaeze Okafor-Villanueva de la Cruz".into(),
            role,
        },
        Role::LabAdmin => SignedInUser {
            username: "lab.lee".into(),
            display_name: "Min-jun Lee".into(),
            role,
        },
    };
    Layout::new(INSTRUMENT, page_title, CSRF_TOKEN).signed_in(user, path)
}

fn count(per_7_5ml: f64, ci: [f64; 2], category: &str, call: &str) -> CountView {
    let spans = ci[0] < 5.0 && ci[1] >= 5.0;
    let printed = operations::reported::PrintedCount::from_values(
        per_7_5ml,
        ci,
        category
            .parse()
            .unwrap_or(nmr_core::assay::CountCategory::Quantified),
        Some(5.0),
    );
    CountView {
        per_7_5ml,
        per_7_5ml_ci95: ci,
        line: printed.line(),
        category: category.into(),
        call: if spans && !call.is_empty() {
            "indeterminate".into()
        } else {
            call.into()
        },
        indication: "breast".into(),
        cutoff: "5 CTC/7.5 mL".into(),
        interval_spans_cutoff: spans,
        version: if per_7_5ml == 9.6 { 2 } else { 1 },
        status: if per_7_5ml == 9.6 {
            "CORRECTED".into()
        } else {
            "PRELIMINARY".into()
        },
        qc_hold: false,
    }
}

/// The sign-in page after a failed attempt.
pub fn sign_in() -> SignInPage {
    SignInPage {
        layout: Layout::new(INSTRUMENT, "Sign in", CSRF_TOKEN),
        username: "tnurse".into(),
        error: Some("Username or password not recognised.".into()),
        signed_out_for_inactivity: true,
        next: "/patients/3".into(),
    }
}

/// A busy dashboard for a clinician.
pub fn dashboard() -> DashboardPage {
    DashboardPage {
        layout: layout(Role::Clinician, "Dashboard", paths::DASHBOARD),
        instrument: InstrumentStatus {
            board: "Front-end FE-2 rev B on SPI 0.0".into(),
            board_ok: true,
            f0_hz: Some(21_472_350.0),
            magnet_temp_c: Some(32.014),
            last_tune: Some("today 07:42".into()),
        },
        qc_today: QcToday {
            status: QcVerdict::Failed,
            problems: vec!["Phantom T2 high, lot PH-24: 1-3s (reject) at 08:05".into()],
            measured: 3,
        },
        runs_in_progress: vec![RunInProgress {
            run_id: 118,
            patient_mrn: "A-204 117".into(),
            started_at: "09:12".into(),
            step: "Waiting for tube 2 of 3 (quad)".into(),
        }],
        recent_results: vec![
            ResultRow {
                run_id: 117,
                patient_id: 7,
                patient_mrn: "A-198 552".into(),
                drawn_at: "Tue 24 Nov 2026, 08:30".into(),
                count: count(12.4, [8.1, 18.0], "quantified", "unfavorable"),
                status: "Released".into(),
                patient_link: true,
            },
            ResultRow {
                run_id: 116,
                patient_id: 9,
                patient_mrn: HOSTILE_MRN.into(),
                drawn_at: "Mon 23 Nov 2026, 16:05".into(),
                count: count(0.0, [0.0, 2.8], "not_detected", "favorable"),
                status: "Released".into(),
                patient_link: true,
            },
        ],
        awaiting_release: vec![ResultRow {
            run_id: 115,
            patient_id: 12,
            patient_mrn: LONG_MRN.into(),
            drawn_at: "Mon 23 Nov 2026, 14:40".into(),
            count: count(2.1, [0.6, 5.4], "below_loq", "favorable"),
            status: "Awaiting release".into(),
            patient_link: true,
        }],
        awaiting_next_href: Some("/?awaiting_after=115#awaiting-heading".into()),
        awaiting_first_href: None,
        in_flight_next_href: None,
        in_flight_first_href: None,
        may_release: true,
        may_start_runs: true,
        setup_open: vec![],
    }
}

/// A dashboard on a fresh instrument: nothing measured yet.
pub fn dashboard_empty() -> DashboardPage {
    DashboardPage {
        layout: layout(Role::Operator, "Dashboard", paths::DASHBOARD),
        instrument: InstrumentStatus {
            board: "Simulated board".into(),
            board_ok: false,
            f0_hz: None,
            magnet_temp_c: None,
            last_tune: None,
        },
        qc_today: QcToday {
            status: QcVerdict::NotRun,
            problems: vec![],
            measured: 0,
        },
        runs_in_progress: vec![],
        recent_results: vec![],
        awaiting_release: vec![],
        awaiting_next_href: None,
        awaiting_first_href: None,
        in_flight_next_href: None,
        in_flight_first_href: None,
        may_release: true,
        may_start_runs: true,
        setup_open: vec![],
    }
}

/// The new-run form after a validation error, on a simulated board.
pub fn new_run() -> NewRunPage {
    NewRunPage {
        layout: layout(Role::Operator, "New run", paths::NEW_RUN),
        form: NewRunForm {
            patient_mrn: "A-204 117".into(),
            birth_date: "1961-04-23".into(),
            accession: "26-CTC-000123".into(),
            drawn_at: "2026-11-24T09:05".into(),
            blood_ml: "7.5".into(),
            indication: "breast".into(),
            reagent_lot: "RL-2611".into(),
            simulate_cells: "12".into(),
            confirm_tubes: false,
        },
        indications: vec!["breast".into(), "prostate".into(), "colorectal".into()],
        reagent_lots: vec!["RL-2611".into(), "RL-2609".into()],
        time_zone: "Europe/Berlin".into(),
        setup_open: vec![],
        errors: vec![],
        simulation: true,
        qc_warning: Some(
            "Today's QC failed (Phantom T2 high: 1-3s). Results will be held until QC passes."
                .into(),
        ),
        blood_ml_min: 0.5,
        blood_ml_max: 50.0,
    }
}

/// The live view part-way through a run.
pub fn live_run() -> LiveRunPage {
    let step = |kind: &str, text: &str| ProgressStep {
        kind: kind.into(),
        text: text.into(),
        awaiting_tube: None,
    };
    LiveRunPage {
        layout: layout(Role::Operator, "Run 118", &paths::run_live(118)),
        run_id: 118,
        patient_mrn: "A-204 117".into(),
        sample_summary: "breast · reagent lot RL-2611 · 7.5 mL drawn 09:05".into(),
        steps: vec![
            step("step", "Tuning: f0 = 21.472 350 MHz"),
            step("insert_tube", "Insert tube 1 of 3: baseline"),
            step("replicate", "Tube 1, replicate 1 of 3"),
            step("fit", "Tube 1 replicate 1: T2 = 84.2 ± 0.6 ms (SNR 310)"),
            step("replicate", "Tube 1, replicate 2 of 3"),
            step("fit", "Tube 1 replicate 2: T2 = 84.0 ± 0.6 ms (SNR 305)"),
            step("replicate", "Tube 1, replicate 3 of 3"),
            step("fit", "Tube 1 replicate 3: T2 = 84.3 ± 0.6 ms (SNR 298)"),
            ProgressStep {
                kind: "insert_tube".into(),
                text: "Insert tube 2 of 3: quad".into(),
                awaiting_tube: Some(2),
            },
        ],
        finished: false,
        result: None,
        failure: None,
        cancel_error: None,
    }
}

/// "Tue 31 Mar 2026, 23:33" (UTC) for a Unix time.
fn readable_date(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[weekday repr:short] [day padding:none] [month repr:short] [year], [hour]:[minute]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn trend_points() -> Vec<TrendChartPoint> {
    let point = |day: i64, value: f64, ci: [f64; 2], category: &str, run_id: i64| TrendChartPoint {
        drawn_at_unix_s: 1_775_000_000 + day * 86_400,
        drawn_at: readable_date(1_775_000_000 + day * 86_400),
        per_7_5ml: value,
        per_7_5ml_ci95: ci,
        category: category.into(),
        run_id,
        corrected: run_id == 44,
        released: run_id != 117,
    };
    vec![
        point(0, 18.2, [12.9, 24.8], "quantified", 21),
        point(28, 9.6, [6.1, 14.3], "quantified", 44),
        point(56, 4.1, [1.9, 7.8], "below_loq", 63),
        point(84, 0.0, [0.0, 2.8], "not_detected", 90),
        point(140, 2.2, [0.7, 5.6], "below_loq", 117),
    ]
}

/// A patient with five runs and the hostile MRN.
pub fn patient() -> PatientPage {
    let rows = trend_points()
        .into_iter()
        .rev()
        .map(|p| PatientRunRow {
            run_id: p.run_id,
            drawn_at: p.drawn_at.clone(),
            blood_ml: 7.5,
            reagent_lot: "RL-2611".into(),
            count: Some(count(
                p.per_7_5ml,
                p.per_7_5ml_ci95,
                &p.category,
                if p.per_7_5ml >= 5.0 {
                    "unfavorable"
                } else {
                    "favorable"
                },
            )),
            status: "Released".into(),
        })
        .chain([PatientRunRow {
            run_id: 12,
            drawn_at: readable_date(1_775_000_000 - 14 * 86_400),
            blood_ml: 7.5,
            reagent_lot: "RL-2609".into(),
            count: None,
            status: "Failed: tube 2 underfilled".into(),
        }])
        .collect();
    PatientPage {
        layout: layout(Role::Clinician, "Patient", &paths::patient(9)),
        patient_id: 9,
        mrn: HOSTILE_MRN.into(),
        indication: Some("breast".into()),
        trend: TrendChart {
            patient_label: HOSTILE_MRN.into(),
            points: trend_points(),
            cutoff_per_7_5ml: Some(5.0),
            indication: "breast".into(),
            events: vec![TrendEvent {
                day_unix_s: 1_775_000_000 - 1_775_000_000 % 86_400 + 30 * 86_400,
                day: "2026-04-30".into(),
                label: "Started docetaxel".into(),
            }],
        },
        trend_older: Some(200),
        runs: rows,
        runs_next_href: Some("/patients/7?runs_before=80#runs-heading".into()),
        runs_first_href: None,
        may_start_runs: false,
        events: vec![PatientEventRow {
            occurred_on: "2026-04-30".into(),
            label: "Started docetaxel".into(),
            recorded: "Claire Tester, Thu 30 Apr 2026, 09:12 UTC".into(),
        }],
        may_annotate: true,
        event_form: None,
    }
}

/// A new patient with no runs and a long MRN.
pub fn patient_empty() -> PatientPage {
    PatientPage {
        layout: layout(Role::Clinician, "Patient", &paths::patient(12)),
        patient_id: 12,
        mrn: LONG_MRN.into(),
        indication: None,
        trend: TrendChart {
            patient_label: LONG_MRN.into(),
            points: vec![],
            cutoff_per_7_5ml: Some(5.0),
            indication: "breast".into(),
            events: vec![],
        },
        trend_older: None,
        runs: vec![],
        runs_next_href: None,
        runs_first_href: None,
        may_start_runs: true,
        events: vec![],
        may_annotate: false,
        event_form: None,
    }
}

/// A deterministic decay with a small wiggle standing in for noise.
pub fn sample_decay(label: &str, t2_ms: f64, amplitude: f64, echoes: usize) -> DecayChart {
    let fit = FittedDecay {
        amplitude,
        t2_ms,
        offset: 2.0,
        echoes_skipped: 1,
    };
    let times_ms: Vec<f64> = (1..=echoes).map(|i| i as f64 * 1.5).collect();
    let amplitudes = times_ms
        .iter()
        .map(|t| fit.at(*t) + 4.0 * (t * 1.7).sin() * (t * 0.31).cos())
        .collect();
    DecayChart {
        label: label.into(),
        times_ms,
        amplitudes,
        fit: Some(fit),
    }
}

fn sample_t2_distribution(label: &str, t2_ms: f64) -> T2DistributionChart {
    let grid: Vec<f64> = (0..80)
        .map(|i| 10f64.powf(0.3 + i as f64 * 0.035))
        .collect();
    let amplitudes = grid
        .iter()
        .map(|t| 100.0 * (-((t / t2_ms).log10()).powi(2) / 0.01).exp())
        .collect();
    T2DistributionChart {
        label: label.into(),
        t2_ms: grid,
        amplitudes,
        log_mean_t2_ms: Some(t2_ms),
    }
}

/// A finished run awaiting release, seen by a clinician.
pub fn run() -> RunPage {
    let tube = |number: u32, role: &str, t2_ms: f64| {
        let replicates = (1..=3)
            .map(|r| {
                let t2 = t2_ms * (1.0 + 0.004 * (r as f64 - 2.0));
                ReplicateView {
                    number: r,
                    t2_ms: Some(t2),
                    t2_ms_se: Some(0.6),
                    r2_per_s: Some(1000.0 / t2),
                    snr: Some(310.0 - 20.0 * r as f64),
                    chi2_red: Some(1.02),
                    used: !(number == 2 && r == 3),
                    note: if number == 2 && r == 3 {
                        "excluded: low fill (air bubble?)".into()
                    } else {
                        String::new()
                    },
                    decay: sample_decay(
                        &format!("Tube {number} ({role}), replicate {r}"),
                        t2,
                        1000.0,
                        160,
                    ),
                    t2_distribution: (r == 1).then(|| {
                        sample_t2_distribution(&format!("Tube {number}, replicate {r}"), t2)
                    }),
                }
            })
            .collect();
        TubeView {
            number,
            role: role.into(),
            mean_r2_per_s: Some(1000.0 / t2_ms),
            cv_percent: Some(0.4),
            replicates,
        }
    };
    RunPage {
        layout: layout(Role::Clinician, "Run 115", &paths::run(115)),
        run: RunHeader {
            run_id: 115,
            patient_id: 12,
            patient_mrn: LONG_MRN.into(),
            drawn_at: "Mon 23 Nov 2026, 14:40".into(),
            blood_ml: 7.5,
            indication: "breast".into(),
            reagent_lot: "RL-2611".into(),
            operator: "Theresa Nurse".into(),
            state: "Finished".into(),
            started_at: "Mon 23 Nov 2026, 14:52".into(),
            finished_at: Some("Mon 23 Nov 2026, 15:09".into()),
        },
        result: Some(count(2.1, [0.6, 5.4], "below_loq", "favorable")),
        cutoff_per_7_5ml: Some(5.0),
        tubes: vec![tube(1, "baseline (no particles)", 84.0), tube(2, "quad (targeted particles)", 79.5)],
        qc_flags: vec![
            QcFlagView {
                severity: "warn".into(),
                code: "low_fill".into(),
                subject: "tube 2 replicate 3".into(),
                message: "First echo 38 % below the expected fill: air bubble or short fill. Replicate excluded.".into(),
            },
            QcFlagView {
                severity: "hold".into(),
                code: "temperature_drift".into(),
                subject: "run".into(),
                message: "Magnet temperature moved 0.31 °C (limit 0.2 °C). Repeat the run after the magnet settles.".into(),
            },
        ],
        previous: Some(
            "Run 98, drawn Tue 3 Nov 2026, 09:10 CET: 6 CTC/7.5 mL (95 % CI 3–11). Change: −4 CTC/7.5 mL."
                .into(),
        ),
        previous_shown: true,
        qc_relied: Some(QcReliedView {
            judged: "at the run's start, Mon 23 Nov 2026, 14:52".into(),
            values: vec![
                "Negative control: CTC control negative, lot QN-2611, measured Mon 23 Nov 2026, 07:40 — pass".into(),
                "Positive control: CTC control positive, lot QP-2611, measured Mon 23 Nov 2026, 07:52 — warning".into(),
            ],
        }),
        calibration: Some(CalibrationUsed {
            calibration_id: 4,
            lot: "RL-2611".into(),
            slope_per_s_per_cell: 0.004,
            intercept_per_s: 0.02,
            lob_cells: 1.2,
            lod_cells: 3.4,
            loq_cells: 8.0,
            activated_at: "Fri 6 Nov 2026".into(),
        }),
        versions: vec![ResultVersion {
            version: 1,
            created_at: "Mon 23 Nov 2026, 15:09".into(),
            count: count(2.1, [0.6, 5.4], "below_loq", "favorable"),
            reason: "First computation".into(),
            signature: None,
        }],
        release: Some(ReleaseForm {
            printed_name: "Dr Adaeze Okafor-Villanueva de la Cruz".into(),
            meanings: vec![
                ("release".into(), "Released for clinical use".into()),
                ("review".into(), "Reviewed".into()),
            ],
            error: None,
        }),
        correction: None,
        audit: vec![
            AuditEntry {
                at: "Mon 23 Nov 2026, 14:52".into(),
                user: "Theresa Nurse".into(),
                action: "run.started".into(),
                subject: "run 115".into(),
                detail: "lot RL-2611, 7.5 mL".into(),
            },
            AuditEntry {
                at: "Mon 23 Nov 2026, 15:09".into(),
                user: "system".into(),
                action: "result.computed".into(),
                subject: "run 115".into(),
                detail: "v1".into(),
            },
        ],
    }
}

/// The same run with its hold resolved (only a warning left): the release form is offered.
pub fn run_releasable() -> RunPage {
    let mut page = run();
    page.qc_flags.retain(|f| f.severity != "hold");
    page
}

/// A run that failed before any tube was measured, seen by an operator.
pub fn run_empty() -> RunPage {
    let mut page = run();
    page.layout = layout(Role::Operator, "Run 119", &paths::run(119));
    page.run.run_id = 119;
    page.run.state = "Failed: board not answering".into();
    page.run.finished_at = None;
    page.result = None;
    page.tubes.clear();
    page.qc_flags.clear();
    page.qc_relied = None;
    page.calibration = None;
    page.versions.clear();
    page.release = None;
    page.audit.clear();
    page
}

fn lj_chart(
    material: &str,
    lot: &str,
    unit: &str,
    mean: f64,
    sd: f64,
    values: &[f64],
) -> LeveyJenningsChart {
    let points = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let z = (v - mean) / sd;
            let violations = if z.abs() > 3.0 {
                vec![LjViolation {
                    rule: "1-3s".into(),
                    rejects: true,
                }]
            } else if z.abs() > 2.0 {
                vec![LjViolation {
                    rule: "1-2s".into(),
                    rejects: false,
                }]
            } else {
                vec![]
            };
            LjPoint {
                measured_at: format!("{} Nov", i + 3),
                value: *v,
                violations,
            }
        })
        .collect();
    LeveyJenningsChart {
        material: material.into(),
        lot: lot.into(),
        unit: unit.into(),
        mean,
        sd,
        points,
    }
}

/// The QC page with two materials, one in trouble.
pub fn qc() -> QcPage {
    QcPage {
        layout: layout(Role::LabAdmin, "QC", paths::QC),
        charts: vec![
            lj_chart(
                "Phantom T2 high",
                "PH-24",
                "ms",
                120.0,
                1.5,
                &[
                    120.4, 119.1, 121.0, 118.8, 120.2, 123.4, 119.6, 120.9, 121.8, 124.9,
                ],
            ),
            lj_chart("Spiked control low", "SC-07", "CTC/7.5 mL", 10.0, 1.2, &[]),
        ],
        zone_name: "UTC".into(),
        reviews: vec![QcLotReview {
            title: "Phantom T2 high · lot PH-24".into(),
            values: 10,
            rejected: 1,
            warned: 1,
            mean: "120.6 ms".into(),
            sd: "1.01 ms".into(),
            cv: "0.8 %".into(),
            target: "120 ± 1.5 ms".into(),
            more: None,
                notes: vec![QcNote {
                measured_at: "Tue 1 Dec 2026, 07:40 UTC".into(),
                value: "124.9 ms".into(),
                verdict: "Reject".into(),
                rules: "1-3s".into(),
                comment: "probe warm <re-run>".into(),
                recorded_by: "Olga Tester".into(),
                result_id: 7,
                corrective_actions: vec![
                    "2026-12-01 08:10 UTC · Olga Tester: let the probe settle <30 min>, rerun passed"
                        .into(),
                ],
                corrective_action_href: Some(paths::qc_corrective_actions(7)),
            }],
        }],
        range_from: "2026-11-02".into(),
        range_to: "2026-12-02".into(),
        range_error: None,
        whole_history_href: "/qc?from=2016-12-06&to=2026-12-02".into(),
        phantom_history: vec![
            PhantomRow {
                measured_at: "Tue 24 Nov 2026, 08:05".into(),
                phantom: "T2 high · S/N 0042".into(),
                t2_ms: 124.9,
                expected_t2_ms: 120.0,
                tolerance_percent: 3.0,
                temp_c: Some(32.01),
                operator: "Min-jun Lee".into(),
                verdict: None,
                rules: String::new(),
            },
            PhantomRow {
                measured_at: "Mon 23 Nov 2026, 07:58".into(),
                phantom: "T2 high · S/N 0042".into(),
                t2_ms: 121.8,
                expected_t2_ms: 120.0,
                tolerance_percent: 3.0,
                temp_c: Some(32.00),
                operator: "Theresa Nurse".into(),
                verdict: None,
                rules: String::new(),
            },
        ],
        materials: vec![
            QcMaterialOption {
                id: 1,
                label: "Phantom T2 high · lot PH-24 (ms)".into(),
            },
            QcMaterialOption {
                id: 2,
                label: "Spiked control low · lot SC-07 (CTC/7.5 mL)".into(),
            },
        ],
        form_error: None,
        can_record: true,
        setup: Some(QcSetup {
            materials: vec![
                QcChoice {
                    id: 1,
                    label: "Phantom T2 high (phantom, t2_ms in ms)".into(),
                },
                QcChoice {
                    id: 2,
                    label: "Spiked control low (control, cells in cells)".into(),
                },
            ],
            lots: vec![QcChoice {
                id: 1,
                label: "Phantom T2 high · lot PH-24, expires 2027-03-31 — target 120 ± 1.5 ms"
                    .into(),
            }],
            checklist_open: false,
            error: None,
        }),
        corrective_error: None,
    }
}

/// The calibration page with the active lot selected.
pub fn calibration() -> CalibrationPage {
    let mut points = Vec::new();
    for (i, cells) in [0.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0]
        .into_iter()
        .enumerate()
    {
        for r in 0..3 {
            let wiggle = 0.004 * ((i * 3 + r) as f64 * 2.3).sin() * (1.0 + cells / 50.0);
            points.push(CalibrationPoint {
                cells,
                delta_r2_per_s: 0.02 + 0.004 * cells + wiggle,
            });
        }
    }
    let band_95 = (0..=25)
        .map(|i| i as f64 * 4.2)
        .map(|c| {
            [
                c,
                0.02 + 0.004 * c - 0.005 - 0.00005 * c,
                0.02 + 0.004 * c + 0.005 + 0.00005 * c,
            ]
        })
        .collect();
    let lot = |id: i64, lot: &str, active: bool| CalibrationLotRow {
        calibration_id: id,
        lot: lot.into(),
        created_at: "Fri 6 Nov 2026".into(),
        te_ms: 1.5,
        lob_cells: 1.2,
        lod_cells: 3.4,
        loq_cells: 8.0,
        active,
        state: if active { "approved" } else { "pending" }.into(),
    };
    CalibrationPage {
        layout: layout(Role::LabAdmin, "Calibration", &paths::calibration(4)),
        lots: vec![lot(4, "RL-2611", false), lot(3, "RL-2609", true)],
        next_href: Some(format!("{}?before=3", paths::CALIBRATIONS)),
        selected: Some(SelectedCalibration {
            calibration_id: 4,
            chart: CalibrationChart {
                lot: "RL-2611".into(),
                points,
                line: Some(CalibrationLine { slope_per_s_per_cell: 0.004, intercept_per_s: 0.02, band_95 }),
                lob_cells: Some(1.2),
                lod_cells: Some(3.4),
                loq_cells: Some(8.0),
                points_label: None,
            },
            slope_text: "0.00400 ± 0.00008 (1/s) per cell".into(),
            intercept_text: "0.020 ± 0.002 1/s".into(),
            fit_notes: vec!["Weighted least squares, weights 1/variance per level; 19 residual degrees of freedom.".into()],
            active: false,
            state: "pending".into(),
            decision_text: None,
            can_decide: true,
        }),
        form_error: None,
        can_import: true,
        can_make_simulated: true,
        import_content: String::new(),
        import_note: String::new(),
        import_error: None,
    }
}

/// The admin page after creating a token and searching the audit trail.
pub fn admin() -> AdminPage {
    AdminPage {
        layout: layout(Role::LabAdmin, "Admin", paths::ADMIN),
        users: vec![
            UserRow {
                username: "tnurse".into(),
                display_name: "Theresa Nurse".into(),
                role: Role::Operator,
                active: true,
                last_sign_in: "today 07:31".into(),
                can_disable: true,
                password_change_required: true,
            },
            UserRow {
                username: "dr.okafor".into(),
                display_name: "Dr Adaeze Okafor-Villanueva de la Cruz".into(),
                role: Role::Clinician,
                active: true,
                last_sign_in: "yesterday 17:02".into(),
                can_disable: true,
                password_change_required: false,
            },
            UserRow {
                username: "lab.lee".into(),
                display_name: "Min-jun Lee".into(),
                role: Role::LabAdmin,
                active: true,
                last_sign_in: "today 08:01".into(),
                can_disable: true,
                password_change_required: false,
            },
            UserRow {
                username: "old.locum".into(),
                display_name: "Locum <b>bold</b>".into(),
                role: Role::Operator,
                active: false,
                last_sign_in: "never".into(),
                can_disable: true,
                password_change_required: false,
            },
        ],
        tokens: vec![TokenRow {
            token_id: 2,
            label: "lab dashboard".into(),
            owner: "lab.lee".into(),
            created_at: "2 Nov 2026".into(),
            last_used: "today 08:15".into(),
        }],
        new_token_secret: Some("fc_tok_5JX2Q9M3V7K1W8P4".into()),
        audit_query: AuditQuery {
            action: "result.released".into(),
            ..AuditQuery::default()
        },
        audit_results: Some(vec![AuditEntry {
            at: "Mon 23 Nov 2026, 17:01".into(),
            user: "Dr Adaeze Okafor-Villanueva de la Cruz".into(),
            action: "result.released".into(),
            subject: "run 114".into(),
            detail: "v1, meaning: Reviewed and released".into(),
        }]),
        audit_older: Some(1041),
        audit_later_pages: false,
        instrument_log: vec![
            LogLine {
                at: "08:05:12".into(),
                level: "warn".into(),
                message: "QC: Phantom T2 high lot PH-24 violates 1-3s".into(),
            },
            LogLine {
                at: "07:42:03".into(),
                level: "info".into(),
                message: "Tuned: f0 = 21.472 350 MHz, Q = 38".into(),
            },
        ],
        form_error: None,
        users_after: None,
        users_next: Some("tnurse".into()),
        tokens_before: None,
        tokens_next: None,
    }
}

/// The outbox: one message in each state, one of them a correction, an MRN that tries markup.
pub fn outbox() -> OutboxPage {
    let message = |id: i64, state: &str, mrn: &str| OutboxRow {
        id,
        control_id: format!("FC{id:08}"),
        destination: "lis".into(),
        state: state.into(),
        attempts: 1,
        created_at: "Tue 24 Nov 2026, 09:30 CET".into(),
        next_attempt: None,
        delivered_at: None,
        last_outcome: None,
        parked_reason: None,
        mrn: mrn.into(),
        accession: format!("ACC-{id}"),
        run_id: 100 + id,
        version: 1,
    };
    OutboxPage {
        layout: layout(Role::LabAdmin, "Outbox", paths::OUTBOX),
        destinations: vec![
            OutboxFilterLink {
                label: "all".into(),
                href: "/outbox".into(),
                current: true,
            },
            OutboxFilterLink {
                label: "lis".into(),
                href: "/outbox?destination=lis".into(),
                current: false,
            },
        ],
        states: vec![OutboxFilterLink {
            label: "parked".into(),
            href: "/outbox?state=parked".into(),
            current: false,
        }],
        rows: vec![
            OutboxRow {
                attempts: 3,
                next_attempt: Some("Tue 24 Nov 2026, 09:31 CET".into()),
                last_outcome: Some("could not connect to lis.example:2575: refused".into()),
                ..message(43, "pending", "MRN-0043")
            },
            OutboxRow {
                last_outcome: Some("AR: unknown patient".into()),
                parked_reason: Some(
                    "the destination rejected the message: AR: unknown patient".into(),
                ),
                version: 2,
                ..message(42, "parked", HOSTILE_MRN)
            },
            OutboxRow {
                delivered_at: Some("Tue 24 Nov 2026, 09:30 CET".into()),
                last_outcome: Some("AA".into()),
                ..message(41, "delivered", LONG_MRN)
            },
        ],
        form_error: None,
        next_href: Some("/outbox?before=41".into()),
        first_href: None,
    }
}
