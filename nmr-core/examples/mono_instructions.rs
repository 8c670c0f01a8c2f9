//! A fixed amount of fitting work for instruction counting: the benchmark's 1,000-echo complex
//! train (T2 80 ms, SNR 100, phase 0.6 rad, offset 0.005, seed 7) fitted a given number of times
//! (first argument, default 1,000), then the last fit's T2 printed. The second argument picks the
//! fit: `plain` (default, the mono-exponential fit), `epg` (T2 with the refocusing angle, on the
//! same train simulated with β = 150°) or `appliance` (the appliance's rule, [`fit_cpmg_t2`], on
//! the β = 180° train: what an ordinary reading costs).
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

use nmr_core::fit::{DEFAULT_T1_S, FitError, FitOptions, fit_cpmg_t2, fit_mono, fit_mono_epg};
use nmr_core::{CpmgSimulation, Refocusing};

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
    let which = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "plain".to_owned());
    if which == "epg" {
        simulation.refocusing = Refocusing {
            angle_deg: 150.0,
            t1_s: 1.0,
        };
    }
    let train = simulation.simulate(7);
    let options = FitOptions::default();
    let fit = |train: &nmr_core::EchoTrain| -> Result<f64, FitError> {
        match which.as_str() {
            "epg" => fit_mono_epg(train, &options, DEFAULT_T1_S).map(|fit| fit.t2_ms),
            "appliance" => fit_cpmg_t2(train, &options, DEFAULT_T1_S).map(|fit| {
                let (r2, _) = fit.r2_per_s();
                1e3 / r2
            }),
            _ => fit_mono(train, &options).map(|fit| fit.t2_ms),
        }
    };
    let mut last = None;
    for _ in 0..fits {
        last = Some(fit(black_box(&train)));
    }
    match last {
        Some(Ok(t2_ms)) => println!("{fits} {which} fits; T2 {t2_ms:.4} ms"),
        Some(Err(error)) => {
            eprintln!("the benchmark train did not fit: {error}");
            std::process::exit(1);
        }
        None => println!("0 fits"),
    }
}
