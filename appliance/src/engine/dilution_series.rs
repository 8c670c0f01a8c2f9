//! The simulated appliance's own calibration of its simulated lot: a spiked dilution series
//! measured through the same board, CPMG and fit path as patient runs, turned into an
//! `nmr_core::assay::Calibration` (EP06 linearity, EP17 limits).
//!
//! Six levels (0, 5, 10, 25, 50, 100 cells), three spiked samples per level, each a control and a
//! quad-marker tube read in replicate. Each sample has its own blood matrix: a control T2 drawn
//! uniformly from 200–280 ms with a seeded generator, so the calibration sees the spread of real
//! samples. The fitted line estimates the lot's true (b, s) of [`super::simulated_lot`]; it is never
//! set from them.
//!
//! Not for: real lots (those are calibrated with `ferrocount calibrate` from measured files).

use nmr_core::assay::{
    Calibration, CalibrationOptions, DeltaR2, SpikedSample, TubeKind, TubeSummary,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::procedures::CpmgSettings;

use super::failure::{Failure, FailureKind, Stop};
use super::instrument::Board;
use super::reading::Reading;
use super::simulated_lot::SimulatedTruth;

/// Spiked levels, cells.
pub const LEVELS_CELLS: [f64; 6] = [0.0, 5.0, 10.0, 25.0, 50.0, 100.0];

/// Spiked samples per level.
pub const SAMPLES_PER_LEVEL: usize = 3;

/// Readings per tube in the series.
pub const REPLICATES: u32 = 3;

/// Measures the series on the simulated board and builds the calibration of `lot`.
/// `checkpoint` is called before every reading (cancel and shutdown stop the series);
/// `progress(done, total)` after every spiked sample.
pub(crate) fn calibrate_simulated_lot(
    board: &mut dyn Board,
    settings: &CpmgSettings,
    lot: &str,
    created: &str,
    seed: u64,
    checkpoint: &mut dyn FnMut() -> Result<(), Stop>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Calibration, Stop> {
    if board.tube_slot().is_none() {
        return Err(Failure::new(
            FailureKind::Calibration,
            "a simulated dilution series needs the simulated board",
        )
        .into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let total = LEVELS_CELLS.len() * SAMPLES_PER_LEVEL;
    let mut series = Vec::with_capacity(total);
    for level in LEVELS_CELLS {
        for _ in 0..SAMPLES_PER_LEVEL {
            let truth = SimulatedTruth {
                cells: level,
                background_per_s: None,
                control_t2_ms: Some(rng.random_range(200.0..280.0)),
            };
            let mut summaries = Vec::with_capacity(2);
            for kind in [TubeKind::Control, TubeKind::Quad] {
                if let Some(slot) = board.tube_slot() {
                    slot.insert_tube(truth.tube(kind)).map_err(|e| {
                        Failure::new(
                            FailureKind::Board,
                            format!("putting a calibration tube in the simulated coil: {e}"),
                        )
                    })?;
                }
                let mut replicates = Vec::new();
                for replicate in 1..=REPLICATES {
                    checkpoint()?;
                    let measurement = board.measure_cpmg(settings)?;
                    let subject = format!("calibration {level} cells, {kind} reading {replicate}");
                    let reading = Reading::fit(subject, &measurement.train);
                    match (reading.replicate(), &reading.fit) {
                        (Some(replicate), _) => replicates.push(replicate),
                        (None, error) => {
                            let error = error.as_ref().err().map_or("no fit", String::as_str);
                            return Err(Failure::new(
                                FailureKind::Calibration,
                                format!("{}: the T2 fit failed: {error}", reading.subject),
                            )
                            .into());
                        }
                    }
                }
                summaries.push(
                    TubeSummary::from_replicates(kind, &replicates)
                        .map_err(|e| Failure::new(FailureKind::Calibration, e.to_string()))?,
                );
            }
            series.push(SpikedSample {
                cells: level,
                delta: DeltaR2::between(&summaries[1], &summaries[0]),
            });
            progress(series.len(), total);
        }
    }
    let te_ms = settings.te_us / 1000.0;
    Calibration::from_series(lot, te_ms, created, &series, &CalibrationOptions::default()).map_err(
        |e| {
            Failure::new(
                FailureKind::Calibration,
                format!("the simulated dilution series gave no calibration: {e}"),
            )
            .into()
        },
    )
}
