//! A fixed amount of fitting work for instruction counting: the benchmark's 1,000-echo complex
//! train (T2 80 ms, SNR 100, phase 0.6 rad, offset 0.005, seed 7) fitted mono-exponentially a
//! given number of times (first argument, default 1,000), then the last fit's T2 printed.
//!
//! Wall-clock benchmarks (`cargo bench -p nmr-core --bench mono`) drift with the load on a shared
//! machine; instruction counts do not. Compare two versions of the fit with
//!
//! ```text
//! cargo build --release -p nmr-core --example mono_instructions
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/mono.cg \
//!     target/release/examples/mono_instructions 1000
//! callgrind_annotate /tmp/mono.cg | head -30
//! ```
//!
//! and divide the total by the number of fits (simulating the train once is included; it is the
//! same in both versions).

use std::hint::black_box;

use nmr_core::CpmgSimulation;
use nmr_core::fit::{FitOptions, fit_mono};

fn main() {
    let fits: usize = match std::env::args().nth(1) {
        None => 1_000,
        Some(text) => match text.parse() {
            Ok(count) => count,
            Err(error) => {
                eprintln!("the number of fits must be a whole number, not {text:?}: {error}");
                std::process::exit(2);
            }
        },
    };
    let mut simulation = CpmgSimulation::mono(1.0, 0.080, 0.0005, 1_000);
    simulation.noise_sd = 0.01;
    simulation.phase_rad = 0.6;
    simulation.offset = 0.005;
    let train = simulation.simulate(7);
    let options = FitOptions::default();
    let mut last = None;
    for _ in 0..fits {
        last = Some(fit_mono(black_box(&train), &options));
    }
    match last {
        Some(Ok(fit)) => println!("{fits} fits; T2 {:.4} ms", fit.t2_ms),
        Some(Err(error)) => {
            eprintln!("the benchmark train did not fit: {error}");
            std::process::exit(1);
        }
        None => println!("0 fits"),
    }
}
