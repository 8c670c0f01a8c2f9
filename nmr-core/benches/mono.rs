//! Speed of the appliance's inner loop: the mono-exponential fit and reading a train from CSV.
//!
//! Run with `cargo bench -p nmr-core --bench mono`. Every train is simulated with a fixed seed, so
//! runs compare like with like. The aim for a 1,000-echo complex train is under 20 µs per fit.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nmr_core::fit::{
    DEFAULT_T1_S, FitOptions, OffsetModel, fit_cpmg_t2, fit_mono, fit_mono_epg, refocusing_score,
};
use nmr_core::io::{parse_echo_train, write_csv};
use nmr_core::{CpmgSimulation, Refocusing, SignalKind};

/// T2 = 80 ms at SNR 100 (amplitude 1, noise SD 0.01 per channel), receiver phase 0.6 rad, so the
/// fit also phases the train. `te_s` is chosen so the window spans about six T2.
fn simulation(echoes: usize, te_s: f64, magnitude: bool) -> CpmgSimulation {
    let mut simulation = CpmgSimulation::mono(1.0, 0.080, te_s, echoes);
    simulation.noise_sd = 0.01;
    simulation.phase_rad = 0.6;
    simulation.offset = 0.005;
    simulation.magnitude = magnitude;
    simulation
}

fn mono_fit(c: &mut Criterion) {
    let options = FitOptions::default();
    let mut group = c.benchmark_group("fit_mono");
    for (name, echoes, te_s, magnitude) in [
        ("complex", 1_000, 0.0005, false),
        ("complex", 10_000, 0.00005, false),
        ("magnitude_rician", 1_000, 0.0005, true),
    ] {
        let train = simulation(echoes, te_s, magnitude).simulate(7);
        // A bench of a failing fit would measure the wrong thing.
        fit_mono(&train, &options).expect("the benchmark train is a clean mono-exponential");
        group.throughput(Throughput::Elements(echoes as u64));
        group.bench_with_input(BenchmarkId::new(name, echoes), &train, |b, train| {
            b.iter(|| fit_mono(black_box(train), &options))
        });
    }
    group.finish();
}

/// Issue 12's fits per 1,000-echo train: the offset models, a phased real channel, magnitudes with
/// a baseline, and T2 with the refocusing angle (β = 150°).
fn new_fits(c: &mut Criterion) {
    let mut group = c.benchmark_group("fit_mono_1000");
    group.throughput(Throughput::Elements(1000));
    let complex = simulation(1_000, 0.0005, false).simulate(7);
    for (name, offset) in [
        ("offset_free", OffsetModel::Free),
        ("offset_none", OffsetModel::None),
        ("offset_auto", OffsetModel::Auto),
    ] {
        let options = FitOptions {
            offset,
            ..FitOptions::default()
        };
        fit_mono(&complex, &options).expect("clean train");
        group.bench_function(name, |b| b.iter(|| fit_mono(black_box(&complex), &options)));
    }
    let real = complex.as_kind(SignalKind::Real).expect("complex to real");
    group.bench_function("real_channel", |b| {
        b.iter(|| fit_mono(black_box(&real), &FitOptions::default()))
    });
    let mut with_baseline = simulation(1_000, 0.0005, true);
    with_baseline.offset = 0.03;
    let magnitude = with_baseline.simulate(7);
    fit_mono(&magnitude, &FitOptions::default()).expect("clean train");
    group.bench_function("magnitude_baseline_rician", |b| {
        b.iter(|| fit_mono(black_box(&magnitude), &FitOptions::default()))
    });
    // What an ordinary reading costs: the appliance's rule on a perfect coil (the pre-test's
    // score on this train is below its threshold, so no β fit), and the pre-test alone.
    let plain = fit_mono(&complex, &FitOptions::default()).expect("clean train");
    let score = refocusing_score(&complex, &plain, &FitOptions::default(), DEFAULT_T1_S);
    assert!(
        score.is_some_and(|z| z <= nmr_core::fit::REFOCUSING_SCORE_THRESHOLD),
        "the benchmark's perfect-coil train should not ask for the β fit: {score:?}"
    );
    group.bench_function("refocusing_score", |b| {
        b.iter(|| {
            refocusing_score(
                black_box(&complex),
                &plain,
                &FitOptions::default(),
                DEFAULT_T1_S,
            )
        })
    });
    group.bench_function("appliance_rule_perfect_coil", |b| {
        b.iter(|| fit_cpmg_t2(black_box(&complex), &FitOptions::default(), DEFAULT_T1_S))
    });
    let mut imperfect = simulation(1_000, 0.0005, false);
    imperfect.refocusing = Refocusing {
        angle_deg: 150.0,
        t1_s: 1.0,
    };
    let stimulated = imperfect.simulate(7);
    fit_mono_epg(&stimulated, &FitOptions::default(), DEFAULT_T1_S).expect("clean train");
    group.sample_size(20);
    group.bench_function("epg_beta_150", |b| {
        b.iter(|| fit_mono_epg(black_box(&stimulated), &FitOptions::default(), DEFAULT_T1_S))
    });
    group.finish();
}

fn parse_csv(c: &mut Criterion) {
    let text = write_csv(&simulation(1_000, 0.0005, false).simulate(7));
    let mut group = c.benchmark_group("parse_echo_train");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(BenchmarkId::new("csv_complex", 1_000), |b| {
        b.iter(|| parse_echo_train(black_box(&text)))
    });
    group.finish();
}

criterion_group!(benches, mono_fit, new_fits, parse_csv);
criterion_main!(benches);
