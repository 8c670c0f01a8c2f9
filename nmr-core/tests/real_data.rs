//! Acceptance on echo trains from real instruments (`shared/data/external/`, beside the repository):
//! the T2 spectrum against the vendor's own analysis, and the bi fit and spectrum running cleanly on
//! a magnitude train of 10,000 echoes.
//!
//! Data: copies of `example_data/geospec_txt/CPMG_bunter.txt` and `example_data/bruker/minispec/cpmg.dps`
//! from aris-mav/NMRInversions.jl (MIT, Copyright (c) 2024 Aristarchos Mavridis); see the folder's
//! README for provenance and the licence notice.

use std::path::PathBuf;

use nmr_core::EchoTrain;
use nmr_core::fit::{FitOptions, SpectrumOptions, fit_bi, fit_spectrum};
use nmr_core::io::parse_echo_train;

/// Reads `shared/data/external/<name>` next to the repository, failing with a clear message.
fn external_train(name: &str) -> EchoTrain {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/external")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "real-data file {} is missing ({e}); the tests expect the repository cloned with shared/ beside it",
            path.display()
        )
    });
    parse_echo_train(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// GeoSpec, Bunter sandstone: 23,148 complex echoes, TE 0.108 ms, not phased. The vendor reports
/// `T2 Log Mean = 12.777 ms` and `T2 at 99% = 89.125 ms` (T2 bins up to `T2Max=500` ms).
#[test]
fn bunter_log_mean_matches_the_vendor() {
    let train = external_train("geospec_CPMG_bunter.txt");
    assert_eq!(train.len(), 23_148);
    assert!(!train.is_magnitude());
    let spectrum = fit_spectrum(&train, &SpectrumOptions::default()).expect("a clear decay");
    let vendor_ms = 12.777;
    assert!(
        (spectrum.t2_logmean_ms / vendor_ms - 1.0).abs() < 0.05,
        "T2 log-mean {:.3} ms, vendor {vendor_ms} ms",
        spectrum.t2_logmean_ms
    );
    assert_eq!(spectrum.echoes_used, 23_148);
    let chi2 = spectrum.chi2_red.expect("complex data carry their noise");
    // The residuals sit at the noise level of the quadrature channel (0.88 here: that channel also
    // carries the file's small odd/even echo alternation, so its RMS is a slight overestimate).
    assert!((0.8..1.2).contains(&chi2), "chi2_red {chi2}");
}

/// With the vendor's bin range (up to 500 ms), T2 at 99 % agrees within 10 %.
#[test]
fn bunter_t2_at_99_percent_matches_the_vendor_with_its_bin_range() {
    let train = external_train("geospec_CPMG_bunter.txt");
    let options = SpectrumOptions {
        t2_max_ms: Some(500.0),
        ..SpectrumOptions::default()
    };
    let spectrum = fit_spectrum(&train, &options).expect("a clear decay");
    let vendor_ms = 89.125;
    assert!(
        (spectrum.t2_at_99_ms / vendor_ms - 1.0).abs() < 0.10,
        "T2 at 99 % {:.2} ms, vendor {vendor_ms} ms",
        spectrum.t2_at_99_ms
    );
    assert!((spectrum.t2_logmean_ms / 12.777 - 1.0).abs() < 0.05);
}

/// Bruker minispec: 10,000 echoes of one real (magnitude-like) channel, TE 0.2122 ms, no reference
/// answer. Both fits must run and give finite, ordered, in-window numbers.
#[test]
fn minispec_gives_a_spectrum_and_a_bi_fit() {
    let train = external_train("minispec_cpmg.dps");
    assert_eq!(train.len(), 10_000);
    let spectrum = fit_spectrum(&train, &SpectrumOptions::default()).expect("a clear decay");
    assert!(spectrum.t2_logmean_ms.is_finite() && spectrum.t2_logmean_ms > 0.0);
    assert!(!spectrum.peaks.is_empty());
    let window_ms = train.times_s()[train.len() - 1] * 1e3;
    assert!(spectrum.t2_logmean_ms < window_ms);

    let bi = fit_bi(&train, &FitOptions::default()).expect("a clear decay");
    assert!(bi.t2_fast_ms.is_finite() && bi.t2_slow_ms.is_finite());
    assert!(bi.t2_fast_ms <= bi.t2_slow_ms);
    assert!(bi.comparison.p_value.is_finite());
    println!("minispec spectrum: {spectrum:?}\nminispec bi: {bi:?}");
}

/// The Bunter sandstone is a broad distribution, not two pools; the bi fit must still run on all
/// 23,147 used echoes and give ordered, finite components with a verdict.
#[test]
fn bunter_bi_fit_runs_on_a_long_train() {
    let train = external_train("geospec_CPMG_bunter.txt");
    let bi = fit_bi(&train, &FitOptions::default()).expect("a clear decay");
    assert_eq!(bi.echoes_used, 23_147);
    assert!(bi.t2_fast_ms.is_finite() && bi.t2_slow_ms.is_finite());
    assert!(bi.t2_fast_ms <= bi.t2_slow_ms);
    assert!(bi.comparison.p_value.is_finite());
    // The vendor's log-mean lies between the two components.
    assert!(bi.t2_fast_ms < 12.777 && 12.777 < bi.t2_slow_ms, "{bi:?}");
}
