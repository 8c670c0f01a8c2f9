//! Speed of the fits, one criterion group per fit so others can add theirs (e.g. `mono`).
//!
//! Run: `cargo bench -p nmr-core --bench fits`.

use criterion::{Criterion, criterion_group, criterion_main};
use nmr_core::fit::{FitOptions, SpectrumOptions, fit_bi, fit_spectrum};
use nmr_core::{Component, CpmgSimulation};

/// A two-pool train: 40 % at 20 ms, 60 % at 150 ms, SNR 500, receiver phase 0.7 rad.
fn bi_train_simulation(te_s: f64, echoes: usize) -> CpmgSimulation {
    CpmgSimulation {
        components: vec![
            Component {
                amplitude: 40.0,
                t2_s: 0.020,
            },
            Component {
                amplitude: 60.0,
                t2_s: 0.150,
            },
        ],
        offset: 0.0,
        noise_sd: 0.2,
        phase_rad: 0.7,
        te_s,
        echoes,
        magnitude: false,
        refocusing: Default::default(),
    }
}

fn bi(c: &mut Criterion) {
    let mut group = c.benchmark_group("bi");
    let train = bi_train_simulation(1e-3, 1_000).simulate(1);
    group.bench_function("fit_bi 1000 echoes", |b| {
        b.iter(|| fit_bi(std::hint::black_box(&train), &FitOptions::default()))
    });
    // Magnitudes at SNR 50 reaching the floor: the Gaussian seed plus the Rician refinement of
    // both models (the bi fit and its mono comparison).
    let mut magnitude = bi_train_simulation(1e-3, 1_000);
    magnitude.noise_sd = 2.0;
    magnitude.magnitude = true;
    let magnitude = magnitude.simulate(1);
    let fit = fit_bi(&magnitude, &FitOptions::default()).expect("a clean two-pool train");
    assert!(fit.rician_corrected);
    group.sample_size(20);
    group.bench_function("fit_bi_magnitude_rician 1000 echoes", |b| {
        b.iter(|| fit_bi(std::hint::black_box(&magnitude), &FitOptions::default()))
    });
    group.finish();
}

fn spectrum(c: &mut Criterion) {
    let mut group = c.benchmark_group("spectrum");
    group.sample_size(20);
    // Like the GeoSpec Bunter file: 25,000 echoes at TE 0.108 ms.
    let long = bi_train_simulation(0.108e-3, 25_000).simulate(2);
    group.bench_function("fit_spectrum 25000 echoes", |b| {
        b.iter(|| fit_spectrum(std::hint::black_box(&long), &SpectrumOptions::default()))
    });
    let short = bi_train_simulation(1e-3, 1_000).simulate(3);
    group.bench_function("fit_spectrum 1000 echoes", |b| {
        b.iter(|| fit_spectrum(std::hint::black_box(&short), &SpectrumOptions::default()))
    });
    group.finish();
}

criterion_group!(fits, bi, spectrum);
criterion_main!(fits);
