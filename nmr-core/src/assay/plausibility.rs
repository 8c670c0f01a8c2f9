//! The physical ranges a calibration, a blood volume and a result must lie in, and the two checks
//! that hold every calibration and every result to them.
//!
//! - [`check_calibration`]: every calibration, whether built from a dilution series
//!   ([`Calibration::from_series`]) or read from a file or an upload ([`Calibration::from_toml`]),
//!   passes through it before anything can use it. A refusal names the field.
//! - [`check_count`]: every count ([`CountEstimate::from_delta`], and so every
//!   [`super::CountReport`] of `ferrocount count`, of the engine and of the API) passes through it
//!   before it exists. A refusal names the cause, and the run fails with it instead of storing a
//!   number that could be released.
//!
//! Floating point lets nonsense through silently: a slope of 1e−300 turns twenty cells into
//! 10³⁰⁰, a standard error of 1e308 makes an interval that does not hold its own estimate. The
//! ranges below are wide enough for any real reagent lot and sample, and narrow enough that the
//! arithmetic after them stays finite.
//!
//! | quantity | range | why |
//! |---|---|---|
//! | echo time `te_ms` | 0.01 – 100 ms | what a CPMG front end can program |
//! | slope `slope_per_s_per_cell` | 10⁻⁶ – 10 (1/s)/cell | below, a million cells move R2 by less than 1/s; above, one cell would more than double a blood sample's R2 |
//! | `slope_se` | 0 – slope/2 | the line must rise significantly (the rule [`Calibration::from_series`] builds with) |
//! | intercept `intercept_per_s` | −100 – 100 1/s | the R2 of any sample the appliance measures (T2 ≥ 10 ms) |
//! | `intercept_se` | 0 – 100 1/s | likewise |
//! | `slope_intercept_cov` | \|cov\| ≤ SE(b)·SE(s) | a covariance matrix is positive semi-definite (Cauchy–Schwarz) |
//! | LoB, LoD, LoQ | 0 ≤ LoB ≤ LoD ≤ LoQ ≤ 10⁶ cells | a limit below no cells means nothing |
//! | `fit_df` | > 0 | degrees of freedom |
//! | `cv_goal` | (0, 1] | an imprecision goal of 0 to 100 % |
//! | `created` | a real RFC 3339 date-time in the years 2000 – 2099 | not `9999-99-99` |
//! | `lot` | 1 – 64 printable ASCII characters, no spaces | what is printed on a kit |
//! | processed blood `blood_ml` | 0.5 – 50 mL | from a small draw to several CellSearch tubes |
//! | count per 7.5 mL | 0 – 100,000 | far beyond any count reported in a patient |
//!
//! Not here: whether a calibration applies to a run ([`Calibration::check_applies`]), QC.

use std::ops::RangeInclusive;

use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::calibration::Calibration;
use super::count::CountEstimate;

/// Echo times a calibration may be made at, ms.
pub const TE_MS: RangeInclusive<f64> = 0.01..=100.0;
/// Calibration slopes, (1/s)/cell.
pub const SLOPE_PER_S_PER_CELL: RangeInclusive<f64> = 1.0e-6..=10.0;
/// Largest magnitude of a calibration's intercept, 1/s.
pub const INTERCEPT_PER_S_MAX: f64 = 100.0;
/// Largest standard error of a calibration's intercept, 1/s.
pub const INTERCEPT_SE_MAX_PER_S: f64 = 100.0;
/// Largest detection limit, cells.
pub const LIMIT_CELLS_MAX: f64 = 1.0e6;
/// Years a calibration's creation time may fall in.
pub const CREATED_YEARS: RangeInclusive<i32> = 2000..=2099;
/// Longest reagent lot identifier, characters.
pub const LOT_MAX_CHARS: usize = 64;
/// Processed blood volumes, mL.
pub const BLOOD_ML: RangeInclusive<f64> = 0.5..=50.0;
/// Largest count per 7.5 mL of blood (estimate and interval).
pub const PER_7_5ML_MAX: f64 = 1.0e5;

/// A calibration outside the physical ranges: which field, and why.
#[derive(Clone, Debug, PartialEq, Error)]
#[error("calibration field `{field}`: {reason}")]
pub struct CalibrationInvalid {
    /// The field as named in the calibration file.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Why a count cannot become a result.
#[derive(Clone, Debug, PartialEq, Error)]
#[error("implausible result: {quantity} {reason}")]
pub struct ImplausibleCount {
    /// The quantity at fault, as named in the report (`cells`, `per_7_5ml_ci95`, `blood_ml`…).
    pub quantity: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks every field of a calibration against the ranges of this module.
///
/// # Errors
/// The first field outside its range, named as in the calibration file.
pub fn check_calibration(calibration: &Calibration) -> Result<(), CalibrationInvalid> {
    let invalid = |field: &'static str, reason: String| Err(CalibrationInvalid { field, reason });
    check_lot(&calibration.lot).map_err(|reason| CalibrationInvalid {
        field: "lot",
        reason,
    })?;
    within("te_ms", calibration.te_ms, &TE_MS, "ms")?;
    let slope = calibration.slope_per_s_per_cell;
    within(
        "slope_per_s_per_cell",
        slope,
        &SLOPE_PER_S_PER_CELL,
        "(1/s)/cell",
    )?;
    within(
        "slope_se",
        calibration.slope_se,
        &(0.0..=slope / 2.0),
        "(1/s)/cell",
    )?;
    let intercept = -INTERCEPT_PER_S_MAX..=INTERCEPT_PER_S_MAX;
    within(
        "intercept_per_s",
        calibration.intercept_per_s,
        &intercept,
        "1/s",
    )?;
    let intercept_se = 0.0..=INTERCEPT_SE_MAX_PER_S;
    within(
        "intercept_se",
        calibration.intercept_se,
        &intercept_se,
        "1/s",
    )?;
    let cov = calibration.slope_intercept_cov;
    // Cauchy–Schwarz, with room for the rounding of a covariance written as decimal text.
    let bound = calibration.slope_se * calibration.intercept_se * (1.0 + 1.0e-9);
    if !(cov.is_finite() && cov.abs() <= bound) {
        return invalid(
            "slope_intercept_cov",
            format!(
                "{cov} is not a covariance of the slope and intercept (|cov| must be at most slope_se · intercept_se = {bound:e})"
            ),
        );
    }
    if let Some(df) = calibration.fit_df
        && !(df > 0.0)
    {
        return invalid("fit_df", format!("{df} must be a positive number"));
    }
    let limits = 0.0..=LIMIT_CELLS_MAX;
    within("lob_cells", calibration.lob_cells, &limits, "cells")?;
    within("lod_cells", calibration.lod_cells, &limits, "cells")?;
    within("loq_cells", calibration.loq_cells, &limits, "cells")?;
    if calibration.lod_cells < calibration.lob_cells {
        return invalid(
            "lod_cells",
            format!(
                "{} is below the limit of blank {}: the limits must satisfy LoB ≤ LoD ≤ LoQ",
                calibration.lod_cells, calibration.lob_cells
            ),
        );
    }
    if calibration.loq_cells < calibration.lod_cells {
        return invalid(
            "loq_cells",
            format!(
                "{} is below the limit of detection {}: the limits must satisfy LoB ≤ LoD ≤ LoQ",
                calibration.loq_cells, calibration.lod_cells
            ),
        );
    }
    check_created(&calibration.created).map_err(|reason| CalibrationInvalid {
        field: "created",
        reason,
    })?;
    if let Some(goal) = calibration.cv_goal
        && !(goal > 0.0 && goal <= 1.0)
    {
        return invalid(
            "cv_goal",
            format!("{goal} must be a CV fraction above 0 and at most 1 (100 %)"),
        );
    }
    for (field, value) in [
        ("lob_parametric_cells", calibration.lob_parametric_cells),
        (
            "lob_nonparametric_cells",
            calibration.lob_nonparametric_cells,
        ),
    ] {
        if let Some(value) = value
            && !(value.is_finite() && value.abs() <= LIMIT_CELLS_MAX)
        {
            return invalid(field, format!("{value} is not a number of cells"));
        }
    }
    if let Some(level) = calibration
        .levels_cells
        .iter()
        .find(|level| !(**level >= 0.0 && **level <= LIMIT_CELLS_MAX))
    {
        return invalid("levels_cells", format!("{level} is not a number of cells"));
    }
    Ok(())
}

/// Checks a reagent lot identifier: 1 to [`LOT_MAX_CHARS`] printable ASCII characters, no spaces
/// (so it prints the same everywhere and cannot carry terminal control sequences).
///
/// # Errors
/// What is wrong, with the text quoted and escaped.
pub fn check_lot(lot: &str) -> Result<(), String> {
    if !lot.is_empty() && lot.len() <= LOT_MAX_CHARS && lot.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(format!(
            "{lot:?} must be 1 to {LOT_MAX_CHARS} printable ASCII characters, no spaces"
        ))
    }
}

/// Checks a processed blood volume against [`BLOOD_ML`].
///
/// # Errors
/// The volume and the range.
pub fn check_blood_ml(blood_ml: f64) -> Result<(), ImplausibleCount> {
    if blood_ml.is_finite() && BLOOD_ML.contains(&blood_ml) {
        Ok(())
    } else {
        Err(ImplausibleCount {
            quantity: "blood_ml",
            reason: format!(
                "{} mL is outside the processed blood volumes {} to {} mL",
                shown(blood_ml),
                BLOOD_ML.start(),
                BLOOD_ML.end()
            ),
        })
    }
}

/// Checks a count before it can be stored or shown as a result: every number finite and not
/// negative, each estimate inside its own 95 % interval, the count per 7.5 mL at most
/// [`PER_7_5ML_MAX`], from a blood volume within [`BLOOD_ML`] and a calibration that passes
/// [`check_calibration`].
///
/// # Errors
/// The first quantity at fault, named as in the report.
pub fn check_count(
    count: &CountEstimate,
    calibration: &Calibration,
) -> Result<(), ImplausibleCount> {
    check_blood_ml(count.blood_ml)?;
    check_calibration(calibration).map_err(|error| ImplausibleCount {
        quantity: "calibration",
        reason: error.to_string(),
    })?;
    let bad = |quantity: &'static str, reason: String| Err(ImplausibleCount { quantity, reason });
    for (quantity, value) in [
        ("delta_r2_per_s", count.delta_r2_per_s),
        ("delta_r2_per_s_se", count.delta_r2_per_s_se),
        ("cells_uncut", count.cells_uncut),
        ("cells_se", count.cells_se),
    ] {
        if !value.is_finite() {
            return bad(quantity, format!("is {value}, not a finite number"));
        }
    }
    for (quantity, estimate, interval) in [
        ("cells", count.cells, count.cells_ci95),
        ("per_ml", count.per_ml, count.per_ml_ci95),
        ("per_7_5ml", count.per_7_5ml, count.per_7_5ml_ci95),
    ] {
        for value in [estimate, interval[0], interval[1]] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(
                    quantity,
                    format!(
                        "{estimate} with 95 % interval [{}, {}] holds {value}, not a finite number of at least 0",
                        interval[0], interval[1]
                    ),
                );
            }
        }
        if !(interval[0] <= estimate && estimate <= interval[1]) {
            return bad(
                quantity,
                format!(
                    "{estimate} lies outside its own 95 % interval [{}, {}]",
                    interval[0], interval[1]
                ),
            );
        }
    }
    if count.per_7_5ml_ci95[1] > PER_7_5ML_MAX {
        return bad(
            "per_7_5ml",
            format!(
                "{} with 95 % interval up to {} exceeds {PER_7_5ML_MAX} cells per 7.5 mL",
                count.per_7_5ml, count.per_7_5ml_ci95[1]
            ),
        );
    }
    if count.cells_se < 0.0 {
        return bad("cells_se", format!("{} is negative", count.cells_se));
    }
    Ok(())
}

/// Checks a finite `value` against `range`, naming `field` and `unit` otherwise.
fn within(
    field: &'static str,
    value: f64,
    range: &RangeInclusive<f64>,
    unit: &str,
) -> Result<(), CalibrationInvalid> {
    if value.is_finite() && range.contains(&value) {
        Ok(())
    } else {
        Err(CalibrationInvalid {
            field,
            reason: format!(
                "{} is outside the physical range {} to {} {unit}",
                shown(value),
                shown(*range.start()),
                shown(*range.end())
            ),
        })
    }
}

/// A number as a person reads it: plainly between 10⁻³ and 10⁶, in scientific notation outside
/// (`1e-320`, not three hundred zeros).
fn shown(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 || !value.is_finite() || (1.0e-3..1.0e6).contains(&magnitude) {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// Checks that `created` is a real RFC 3339 date-time in [`CREATED_YEARS`].
fn check_created(created: &str) -> Result<(), String> {
    let parsed = OffsetDateTime::parse(created, &Rfc3339).map_err(|error| {
        format!("{created:?} is not an RFC 3339 date-time such as 2026-11-24T05:00:00Z ({error})")
    })?;
    if CREATED_YEARS.contains(&parsed.year()) {
        Ok(())
    } else {
        Err(format!(
            "{created:?} is not in the years {} to {}",
            CREATED_YEARS.start(),
            CREATED_YEARS.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calibration() -> Calibration {
        Calibration::from_toml(
            r#"
lot = "L1"
te_ms = 4.0
slope_per_s_per_cell = 0.01
slope_se = 0.0002
intercept_per_s = 0.05
intercept_se = 0.004
slope_intercept_cov = -2.0e-7
lob_cells = 1.5
lod_cells = 3.0
loq_cells = 6.0
created = "2026-11-24T04:00:00Z"
"#,
        )
        .expect("a valid calibration")
    }

    /// Each degenerate value the outside probe posted (and its neighbours) is refused with its
    /// field named; the same calibration with the value put back is accepted.
    #[test]
    fn every_degenerate_field_is_refused_by_name() {
        assert_eq!(check_calibration(&calibration()), Ok(()));
        type Edit = fn(&mut Calibration);
        let cases: [(&str, Edit); 24] = [
            ("slope_per_s_per_cell", |c| c.slope_per_s_per_cell = 1e-300),
            ("slope_per_s_per_cell", |c| c.slope_per_s_per_cell = 5e-324),
            ("slope_per_s_per_cell", |c| c.slope_per_s_per_cell = 1e300),
            ("slope_per_s_per_cell", |c| {
                c.slope_per_s_per_cell = f64::NAN
            }),
            ("slope_se", |c| c.slope_se = 1e308),
            ("slope_se", |c| c.slope_se = 0.006),
            ("slope_se", |c| c.slope_se = -1e-5),
            ("intercept_per_s", |c| c.intercept_per_s = 1e308),
            ("intercept_per_s", |c| c.intercept_per_s = -101.0),
            ("intercept_se", |c| c.intercept_se = 1e308),
            ("intercept_se", |c| c.intercept_se = f64::INFINITY),
            ("slope_intercept_cov", |c| c.slope_intercept_cov = 1e-3),
            ("slope_intercept_cov", |c| c.slope_intercept_cov = f64::NAN),
            ("lob_cells", |c| c.lob_cells = -5.0),
            ("lod_cells", |c| c.lod_cells = 1.0),
            ("loq_cells", |c| c.loq_cells = 2.0),
            ("loq_cells", |c| c.loq_cells = 1e300),
            ("te_ms", |c| c.te_ms = 1e-9),
            ("created", |c| c.created = "9999-99-99T00:00:00Z".into()),
            ("created", |c| c.created = "2026-02-30T00:00:00Z".into()),
            ("created", |c| c.created = "1970-01-01T00:00:00Z".into()),
            ("cv_goal", |c| c.cv_goal = Some(f64::INFINITY)),
            ("lot", |c| c.lot = "LOT\u{1b}[31m".into()),
            ("fit_df", |c| c.fit_df = Some(0.0)),
        ];
        for (field, edit) in cases {
            let mut bad = calibration();
            edit(&mut bad);
            let error = check_calibration(&bad).expect_err(field);
            assert_eq!(error.field, field, "{error}");
            assert!(error.to_string().contains(field), "{error}");
        }
    }

    #[test]
    fn a_covariance_at_its_bound_and_limits_that_touch_are_accepted() {
        let mut edge = calibration();
        edge.slope_intercept_cov = -edge.slope_se * edge.intercept_se;
        edge.lob_cells = 0.0;
        edge.lod_cells = 0.0;
        edge.loq_cells = 0.0;
        edge.slope_se = edge.slope_per_s_per_cell / 2.0;
        edge.slope_intercept_cov = edge.slope_se * edge.intercept_se;
        assert_eq!(check_calibration(&edge), Ok(()));
    }

    #[test]
    fn blood_volumes_outside_the_range_are_refused() {
        for ml in [
            1e-320,
            1e-300,
            0.0,
            -1.0,
            0.49,
            50.01,
            1e300,
            f64::NAN,
            f64::INFINITY,
        ] {
            let error = check_blood_ml(ml).expect_err("outside");
            assert_eq!(error.quantity, "blood_ml");
        }
        for ml in [0.5, 7.5, 50.0] {
            assert_eq!(check_blood_ml(ml), Ok(()));
        }
    }

    #[test]
    fn lots_with_control_characters_or_spaces_are_refused() {
        assert!(check_lot("SIM-LOT-1").is_ok());
        for lot in ["", " ", "A B", "A\tB", "LOT\u{7}", "LÖT", &"X".repeat(65)] {
            let error = check_lot(lot).expect_err(lot);
            assert!(!error.contains('\u{7}') && !error.contains('\t'), "{error}");
        }
    }
}
