//! The assay through the full echo-train path: every reading is a simulated CPMG train
//! (`CpmgSimulation`, TE 4 ms, 500 echoes, first-echo SNR 300) fitted with `fit_mono`.
//!
//! Truth: ΔR2 = b + s·N with b = 0.05/s and s = 0.004 (1/s)/cell; control T2 drawn in
//! 250–450 ms per sample; each reading's true R2 also moves by N(0, 0.006/s), the
//! reading-to-reading variability (temperature, handling) that a fit cannot see.

use nmr_core::assay::quantile::t95;
use nmr_core::assay::{
    Calibration, CalibrationOptions, CountCategory, CountEstimate, DeltaR2, Replicate,
    SpikedSample, TubeKind, TubeSummary,
};
use nmr_core::fit::{FitOptions, fit_mono};
use nmr_core::simulate::CpmgSimulation;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Poisson;
use rand_distr::{Distribution, Normal};

const INTERCEPT_PER_S: f64 = 0.05;
const SLOPE_PER_S_PER_CELL: f64 = 0.004;
const EXTRA_SD_PER_S: f64 = 0.006;
const TE_S: f64 = 0.004;
const ECHOES: usize = 500;
const NOISE_SD: f64 = 1.0 / 300.0;

/// One reading: simulate a train whose true R2 is `r2_per_s` (moved by the extra variability)
/// and fit it.
fn reading(rng: &mut ChaCha8Rng, r2_per_s: f64, extra_sd: f64) -> Replicate {
    let r2 = r2_per_s + extra_sd * Normal::new(0.0, 1.0).expect("unit normal").sample(rng);
    let mut simulation = CpmgSimulation::mono(1.0, 1.0 / r2, TE_S, ECHOES);
    simulation.noise_sd = NOISE_SD;
    simulation.phase_rad = rng.random_range(-3.0..3.0);
    let train = simulation.simulate_with(rng);
    let fit = fit_mono(&train, &FitOptions::default()).expect("a clean simulated train fits");
    assert!(fit.converged);
    Replicate::new(fit.r2_per_s, fit.r2_per_s_se)
}

fn measure(rng: &mut ChaCha8Rng, cells: f64) -> DeltaR2 {
    let r2_control = 1.0 / rng.random_range(0.250..0.450);
    let r2_quad = r2_control + INTERCEPT_PER_S + SLOPE_PER_S_PER_CELL * cells;
    let control: Vec<Replicate> = (0..3)
        .map(|_| reading(rng, r2_control, EXTRA_SD_PER_S))
        .collect();
    let quad: Vec<Replicate> = (0..3)
        .map(|_| reading(rng, r2_quad, EXTRA_SD_PER_S))
        .collect();
    let control = TubeSummary::from_replicates(TubeKind::Control, &control).expect("control");
    let quad = TubeSummary::from_replicates(TubeKind::Quad, &quad).expect("quad");
    DeltaR2::between(&quad, &control)
}

/// A dilution series of `blanks` blank samples and 3 samples at each of six levels.
fn calibrate(rng: &mut ChaCha8Rng, blanks: usize) -> Calibration {
    let mut series = Vec::new();
    for _ in 0..blanks {
        series.push(SpikedSample {
            cells: 0.0,
            delta: measure(rng, 0.0),
        });
    }
    for level in [2.0, 5.0, 10.0, 25.0, 50.0, 100.0] {
        for _ in 0..3 {
            series.push(SpikedSample {
                cells: level,
                delta: measure(rng, level),
            });
        }
    }
    Calibration::from_series(
        "SIM-LOT",
        TE_S * 1000.0,
        "2026-11-24T04:00:00Z",
        &series,
        &CalibrationOptions::default(),
    )
    .expect("the simulated series calibrates")
}

/// A dilution series through simulated trains and fits gives a calibration whose 95 % slope and
/// intercept intervals cover the true values, and a spiked test sample is counted within its
/// interval.
#[test]
fn dilution_series_from_fitted_trains_calibrates_to_the_truth() {
    let mut rng = ChaCha8Rng::seed_from_u64(4_2026);
    let mut series = Vec::new();
    for _ in 0..8 {
        series.push(SpikedSample {
            cells: 0.0,
            delta: measure(&mut rng, 0.0),
        });
    }
    for level in [2.0, 5.0, 10.0, 25.0, 50.0, 100.0] {
        for _ in 0..3 {
            series.push(SpikedSample {
                cells: level,
                delta: measure(&mut rng, level),
            });
        }
    }
    let calibration = Calibration::from_series(
        "SIM-LOT",
        TE_S * 1000.0,
        "2026-11-24T04:00:00Z",
        &series,
        &CalibrationOptions::default(),
    )
    .expect("the simulated series calibrates");
    let t = t95(calibration.df());
    eprintln!(
        "slope {:.5} ± {:.5}, intercept {:.4} ± {:.4}, LoB {:.2}, LoD {:.2}, LoQ {:.2} cells",
        calibration.slope_per_s_per_cell,
        calibration.slope_se,
        calibration.intercept_per_s,
        calibration.intercept_se,
        calibration.lob_cells,
        calibration.lod_cells,
        calibration.loq_cells
    );
    assert!(
        (calibration.slope_per_s_per_cell - SLOPE_PER_S_PER_CELL).abs() <= t * calibration.slope_se,
        "slope {} ± {} misses {SLOPE_PER_S_PER_CELL}",
        calibration.slope_per_s_per_cell,
        t * calibration.slope_se
    );
    assert!(
        (calibration.intercept_per_s - INTERCEPT_PER_S).abs() <= t * calibration.intercept_se,
        "intercept misses the truth"
    );
    // The interval is informative, not vacuous: the slope is known to better than 10 %.
    assert!(calibration.slope_se < 0.1 * SLOPE_PER_S_PER_CELL);

    let count =
        CountEstimate::from_delta(&measure(&mut rng, 30.0), &calibration, 7.5).expect("count");
    assert!(
        count.cells_ci95[0] <= 30.0 && 30.0 <= count.cells_ci95[1],
        "30 cells outside {:?}",
        count.cells_ci95
    );
}

/// The coverage study (`assay_coverage.rs`) draws readings with SD √(σ_fit² + σ_extra²) and
/// σ_fit = 0.14 % of R2. Check that assumption against real fits: the fit's own SE and the spread
/// of fitted R2 over repeated trains (no extra variability) are both close to 0.14 % of R2.
#[test]
fn fit_precision_matches_the_coverage_study_model() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for t2_s in [0.25, 0.35, 0.45] {
        let r2 = 1.0 / t2_s;
        let readings: Vec<Replicate> = (0..200).map(|_| reading(&mut rng, r2, 0.0)).collect();
        let mean = readings.iter().map(|r| r.r2_per_s).sum::<f64>() / 200.0;
        let sd = (readings
            .iter()
            .map(|r| (r.r2_per_s - mean).powi(2))
            .sum::<f64>()
            / 199.0)
            .sqrt();
        let se = readings.iter().map(|r| r.r2_per_s_se).sum::<f64>() / 200.0;
        eprintln!(
            "T2 {t2_s} s: R2 SD {:.5} ({:.3} %), mean fit SE {:.5}",
            sd,
            100.0 * sd / r2,
            se
        );
        assert!((sd / se - 1.0).abs() < 0.2, "fit SE {se} vs spread {sd}");
        assert!(
            (0.0008..0.0018).contains(&(sd / r2)),
            "relative R2 precision {} far from the model's 0.14 %",
            sd / r2
        );
    }
}

/// The coverage study of `assay_coverage.rs` again, but every reading a simulated train and a
/// `fit_mono` fit: 2,000 samples (30 % without cells, else 0.05–8 cells/mL in 2, 4 or 7.5 mL),
/// a fresh calibration (20 blanks, 6 levels × 3) for every 20 samples. About 35,000 fits.
#[test]
fn coverage_through_fitted_trains() {
    let mut rng = ChaCha8Rng::seed_from_u64(11_24);
    let samples = 2_000;
    let (mut cells_covered, mut per_ml_covered, mut zero, mut zero_not_detected) = (0, 0, 0, 0);
    let mut calibration = calibrate(&mut rng, 20);
    for index in 0..samples {
        if index % 20 == 19 {
            calibration = calibrate(&mut rng, 20);
        }
        let concentration_per_ml = if rng.random_bool(0.3) {
            0.0
        } else {
            rng.random_range(0.05..8.0)
        };
        let blood_ml = [2.0, 4.0, 7.5][rng.random_range(0..3)];
        let cells: f64 = if concentration_per_ml > 0.0 {
            Poisson::new(concentration_per_ml * blood_ml)
                .expect("positive mean")
                .sample(&mut rng)
        } else {
            0.0
        };
        let count = CountEstimate::from_delta(&measure(&mut rng, cells), &calibration, blood_ml)
            .expect("count");
        if count.cells_ci95[0] <= cells && cells <= count.cells_ci95[1] {
            cells_covered += 1;
        }
        if count.per_ml_ci95[0] <= concentration_per_ml
            && concentration_per_ml <= count.per_ml_ci95[1]
        {
            per_ml_covered += 1;
        }
        if cells == 0.0 {
            zero += 1;
            if count.category == CountCategory::NotDetected {
                zero_not_detected += 1;
            }
        }
    }
    let cells_rate = f64::from(cells_covered) / f64::from(samples);
    let per_ml_rate = f64::from(per_ml_covered) / f64::from(samples);
    let not_detected = f64::from(zero_not_detected) / f64::from(zero);
    eprintln!(
        "fitted-train study: cells {cells_rate:.3}, per mL {per_ml_rate:.3}, blanks not detected {not_detected:.3} of {zero}"
    );
    assert!(
        (0.93..=0.97).contains(&cells_rate),
        "cell coverage {cells_rate}"
    );
    assert!(per_ml_rate >= 0.95, "per-mL coverage {per_ml_rate}");
    assert!(
        (0.90..=0.98).contains(&not_detected),
        "not detected {not_detected}"
    );
}
