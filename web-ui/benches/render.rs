//! Cost of rendering the heaviest pages and charts from the sample view models: what a page
//! request spends in `web_ui::views` before any I/O.
//!
//! `cargo bench -p web-ui --bench render`

use askama::Template;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use web_ui::charts::{decay_chart, trend_chart};
use web_ui::views::samples;

fn pages(c: &mut Criterion) {
    let run = samples::run();
    let patient = samples::patient();
    let qc = samples::qc();
    let dashboard = samples::dashboard();
    c.bench_function("render run page (6 decays, 2 T2 distributions)", |b| {
        b.iter(|| black_box(&run).render())
    });
    c.bench_function("render patient page (trend of 5 runs)", |b| {
        b.iter(|| black_box(&patient).render())
    });
    c.bench_function("render QC page (2 Levey–Jennings charts)", |b| {
        b.iter(|| black_box(&qc).render())
    });
    c.bench_function("render dashboard", |b| {
        b.iter(|| black_box(&dashboard).render())
    });
}

fn charts(c: &mut Criterion) {
    let long_train = samples::sample_decay("bench", 80.0, 1000.0, 20_000);
    c.bench_function("decay chart, 20 000 echoes binned", |b| {
        b.iter(|| decay_chart(black_box(&long_train)))
    });
    let trend = samples::patient().trend;
    c.bench_function("trend chart, 5 runs", |b| {
        b.iter(|| trend_chart(black_box(&trend)))
    });
}

criterion_group!(benches, pages, charts);
criterion_main!(benches);
