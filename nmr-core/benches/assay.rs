//! Speed of the assay's pieces: the bi-exponential QC comparison of one 500-echo train, a
//! calibration from a 38-sample dilution series, and one count.
//!
//! Run with `cargo bench -p nmr-core --bench assay`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nmr_core::assay::{
    Calibration, CalibrationOptions, CountEstimate, DeltaR2, SeSource, SpikedSample,
};
use nmr_core::qc::{BiexponentialOptions, compare_mono_bi};
use nmr_core::simulate::CpmgSimulation;

fn series() -> Vec<SpikedSample> {
    let mut samples = Vec::new();
    let mut k = 0u32;
    let mut push = |cells: f64| {
        // A deterministic ±0.006/s scatter pattern around ΔR2 = 0.05 + 0.004·N.
        let jitter = 0.006 * (f64::from(k % 7) - 3.0) / 3.0;
        k += 1;
        samples.push(SpikedSample {
            cells,
            delta: DeltaR2 {
                delta_r2_per_s: 0.05 + 0.004 * cells + jitter,
                se_per_s: 0.006,
                df: 4.0,
                se_source: SeSource::ReplicateSpread,
            },
        });
    };
    for _ in 0..20 {
        push(0.0);
    }
    for level in [2.0, 5.0, 10.0, 25.0, 50.0, 100.0] {
        for _ in 0..3 {
            push(level);
        }
    }
    samples
}

fn benches(c: &mut Criterion) {
    let mut simulation = CpmgSimulation::mono(1.0, 0.3, 0.004, 500);
    simulation.noise_sd = 1.0 / 300.0;
    let train = simulation.simulate(1);
    let options = BiexponentialOptions::default();
    c.bench_function("qc/compare_mono_bi 500 echoes", |b| {
        b.iter(|| compare_mono_bi(black_box(&train), &options))
    });

    let series = series();
    let calibration_options = CalibrationOptions::default();
    c.bench_function("assay/calibration from 38 samples", |b| {
        b.iter(|| {
            Calibration::from_series(
                "LOT",
                4.0,
                "2026-11-24T04:00:00Z",
                black_box(&series),
                &calibration_options,
            )
        })
    });

    let calibration = Calibration::from_series(
        "LOT",
        4.0,
        "2026-11-24T04:00:00Z",
        &series,
        &calibration_options,
    )
    .expect("the benchmark series calibrates");
    let delta = DeltaR2 {
        delta_r2_per_s: 0.17,
        se_per_s: 0.005,
        df: 4.0,
        se_source: SeSource::ReplicateSpread,
    };
    c.bench_function("assay/count estimate", |b| {
        b.iter(|| CountEstimate::from_delta(black_box(&delta), &calibration, 7.5))
    });
}

criterion_group!(assay, benches);
criterion_main!(assay);
