//! A plausible count report for the store's tests, examples and benchmarks (load seeding, the
//! migration test): every field of a real [`CountReport`], the numbers chosen by the caller.
//!
//! Not for anything clinical: the engine's reports come from `CountReport::compute` over real
//! fits and a calibration.

use nmr_core::assay::{Call, CountCategory, CountReport, TubeKind, TubeSummary};

/// A count report of `per_7_5ml` CTCs per 7.5 mL with the interval `ci95`, this category and
/// call (against a breast cut-off of 5 per 7.5 mL when a call is given), held by QC when
/// `qc_hold`.
pub fn example_report(
    per_7_5ml: f64,
    ci95: [f64; 2],
    category: CountCategory,
    call: Option<Call>,
    qc_hold: bool,
) -> CountReport {
    let tube = |kind, mean_r2_per_s| TubeSummary {
        kind,
        replicates: 3,
        mean_r2_per_s,
        sd_r2_per_s: 0.05,
        cv: 0.05 / mean_r2_per_s,
        fit_se_rms_per_s: 0.02,
    };
    let cells = per_7_5ml;
    CountReport {
        delta_r2_per_s: 0.3 * cells + 0.1,
        delta_r2_per_s_se: 0.05,
        delta_r2_df: 3.9,
        cells,
        cells_se: (ci95[1] - ci95[0]) / 3.92,
        cells_ci95: ci95,
        blood_ml: 7.5,
        per_ml: per_7_5ml / 7.5,
        per_ml_ci95: [ci95[0] / 7.5, ci95[1] / 7.5],
        per_7_5ml,
        per_7_5ml_ci95: ci95,
        category,
        call,
        indication: call.map(|_| "breast".to_owned()),
        cutoff_per_7_5ml: call.map(|_| 5.0),
        call_interval_spans_cutoff: call.map(|_| ci95[0] <= 5.0 && 5.0 <= ci95[1]),
        qc_flags: Vec::new(),
        qc_hold,
        lob_cells: 0.4,
        lod_cells: 1.1,
        loq_cells: 3.0,
        calibration_lot: "SIM-LOT-1".to_owned(),
        te_ms: 1.0,
        control: tube(TubeKind::Control, 10.0),
        labeled: tube(TubeKind::Quad, 10.0 + 0.3 * cells + 0.1),
        marker_profile: Vec::new(),
        nonspecific_controls: Vec::new(),
    }
}

/// A plausible calibration document of the lot `RL-EXAMPLE` at 4 ms, as `ferrocount calibrate`
/// writes it, for the store's tests and examples.
pub fn example_calibration_toml() -> String {
    r#"lot = "RL-EXAMPLE"
te_ms = 4.0
slope_per_s_per_cell = 0.004
slope_se = 0.00004
intercept_per_s = 0.05
intercept_se = 0.0012
slope_intercept_cov = -2e-8
fit_df = 28
lob_cells = 1.3
lod_cells = 2.5
loq_cells = 6.5
created = "2026-11-24T04:00:00Z"
levels_cells = [0.0, 5.0, 20.0, 100.0]
"#
    .to_owned()
}
