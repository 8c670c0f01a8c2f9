//! Seeded statistical tests of the mono-exponential fit against the simulator's known truth and
//! the Cramér–Rao bound (both independent of the fit).

use nmr_core::CpmgSimulation;
use nmr_core::crlb::mono_crlb;
use nmr_core::fit::{FitOptions, fit_mono};

struct Study {
    mean_t2_ms: f64,
    sd_t2_ms: f64,
    coverage: f64,
    trains: usize,
}

/// Fits `trains` simulated trains (seeds 0..trains) and summarises T2.
fn study(sim: &CpmgSimulation, trains: u64) -> Study {
    let truth_ms = sim.components[0].t2_s * 1e3;
    let mut t2 = Vec::new();
    let mut covered = 0;
    for seed in 0..trains {
        let fit = fit_mono(&sim.simulate(seed), &FitOptions::default())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(fit.converged, "seed {seed} did not converge");
        if (fit.t2_ms - truth_ms).abs() <= 1.96 * fit.t2_ms_se {
            covered += 1;
        }
        t2.push(fit.t2_ms);
    }
    let n = t2.len() as f64;
    let mean = t2.iter().sum::<f64>() / n;
    let sd = (t2.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    Study {
        mean_t2_ms: mean,
        sd_t2_ms: sd,
        coverage: covered as f64 / n,
        trains: t2.len(),
    }
}

/// SNR 100 (A/σ), T2 80 ms, TE 0.5 ms, 1,000 echoes, an offset and a receiver phase.
fn snr_100() -> CpmgSimulation {
    let mut sim = CpmgSimulation::mono(1.0, 0.080, 0.0005, 1000);
    sim.noise_sd = 0.01;
    sim.offset = 0.01;
    sim.phase_rad = 0.8;
    sim
}

#[test]
fn t2_is_unbiased_efficient_and_honest_at_snr_100() {
    let sim = snr_100();
    let s = study(&sim, 2000);
    let truth_ms = 80.0;
    // The bound for the echoes the fit uses (first echo dropped).
    let times = &sim.times_s()[1..];
    let bound_ms = 1e3 * mono_crlb(times, 1.0, 0.080, 0.01, 0.01).unwrap().t2_s_sd;
    let bias = s.mean_t2_ms / truth_ms - 1.0;
    println!(
        "{} trains: mean T2 {:.4} ms (bias {:+.4} %), SD {:.4} ms, CRLB {:.4} ms (ratio {:.4}), coverage {:.4}",
        s.trains,
        s.mean_t2_ms,
        100.0 * bias,
        s.sd_t2_ms,
        bound_ms,
        s.sd_t2_ms / bound_ms,
        s.coverage
    );
    assert!(bias.abs() < 0.005, "bias {bias}");
    // Within 10 % of the bound (and no estimator beats it by more than sampling noise, ~1.6 % here).
    assert!(
        s.sd_t2_ms / bound_ms < 1.10,
        "spread {} vs bound {}",
        s.sd_t2_ms,
        bound_ms
    );
    assert!(
        s.sd_t2_ms / bound_ms > 0.95,
        "spread {} below the bound {}",
        s.sd_t2_ms,
        bound_ms
    );
    assert!(
        (0.93..=0.97).contains(&s.coverage),
        "coverage {}",
        s.coverage
    );
}

#[test]
fn magnitude_data_at_snr_20_and_above_are_not_biased_by_the_noise_floor() {
    for (snr, trains) in [(20.0, 400), (50.0, 200)] {
        let mut sim = snr_100();
        sim.offset = 0.0;
        sim.noise_sd = 1.0 / snr;
        sim.magnitude = true;
        let s = study(&sim, trains);
        let bias = s.mean_t2_ms / 80.0 - 1.0;
        // Standard error of the mean bias, to show the test can resolve 1 %.
        let sem = s.sd_t2_ms / 80.0 / (s.trains as f64).sqrt();
        println!(
            "magnitude SNR {snr}: bias {:+.4} % (± {:.4} %)",
            100.0 * bias,
            100.0 * sem
        );
        assert!(sem < 0.003);
        assert!(bias.abs() < 0.01, "SNR {snr}: bias {bias}");
    }
}
