//! Acceptance on real instruments' exports (`shared/data/external/`, beside the repository) against
//! the vendors' own answers, which the tests read from the vendors' files themselves: the NMR-MOUSE's
//! `resultsFit.par` and the rock-core analyser's `*_T2spec.dat`. And, over every train of every file,
//! the honesty checks of issue 12: no `converged` fit with χ²ᵣ > 5 that is not flagged `misfit`, no
//! SNR above 10⁵, no bi-exponential fraction printed outside [0, 1].
//!
//! Data: Magritek Prospa files from ThoHiller/nmr-nucleus (MIT, Copyright (c) 2018 Thomas Hiller);
//! GeoSpec, minispec, Spinsolve and Tecmag files from aris-mav/NMRInversions.jl (MIT, Copyright (c)
//! 2024 Aristarchos Mavridis); see the folder's README for provenance and the licence notice.

use std::path::{Path, PathBuf};

use nmr_core::fit::{
    AlphaChoice, FitOptions, OffsetModel, SpectrumOptions, fit_bi, fit_mono, fit_spectrum,
};
use nmr_core::io::{ImportedTrain, read_echo_trains};

fn external(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/external")
        .join(name)
}

/// Every train of a file, with its parameter file (`<stem>.par`, else `acqu.par`) when present.
fn trains(path: &Path) -> Vec<ImportedTrain> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "real-data file {} is missing ({e}); the tests expect shared/ beside the repository",
            path.display()
        )
    });
    let parameters = [path.with_extension("par"), path.with_file_name("acqu.par")]
        .into_iter()
        .find_map(|p| std::fs::read_to_string(p).ok());
    read_echo_trains(&bytes, parameters.as_deref())
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// The vendor's fits in `resultsFit.par`: depth (µm) → (T2 ms, its SE ms). The file is Latin-1 (±).
fn vendor_mouse_fits() -> Vec<(u32, f64, f64)> {
    let bytes = std::fs::read(external("prospa_nmr_mouse_exp6/resultsFit.par")).expect("present");
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .filter(|l| l.contains("T2 = ("))
        .map(|line| {
            let depth: u32 = line
                .split("depth = ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|d| d.parse().ok())
                .expect("a depth");
            let t2_part = line.split("T2 = (").nth(1).expect("a T2");
            let numbers: Vec<f64> = t2_part
                .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .filter_map(|f| f.parse().ok())
                .collect();
            (depth, numbers[0], numbers[1])
        })
        .collect()
}

#[test]
fn single_sided_sensor_fits_without_offset_agree_with_the_vendor() {
    let vendor = vendor_mouse_fits();
    assert_eq!(vendor.len(), 6);
    // The vendor: mono-exponential, no offset, every echo, real channel.
    let options = FitOptions {
        drop_first_echo: false,
        offset: OffsetModel::None,
        ..FitOptions::default()
    };
    for (depth, t2_vendor, se_vendor) in vendor {
        let path = external(&format!("prospa_nmr_mouse_exp6/data-{depth:05}um.dat"));
        let train = &trains(&path)[0].train;
        assert_eq!(train.len(), 1000);
        assert!((train.acquisition().te_s.expect("acqu.par") - 72.5e-6).abs() < 1e-12);
        let fit = fit_mono(train, &options).expect("a clear decay");
        // Like with like: the vendor's SE is the plain least-squares one, so ours is compared
        // before the misfit widening; the widened SE is what our report carries.
        let widening = fit.lack_of_fit.as_ref().map_or(1.0, |l| l.se_inflation);
        let unwidened_se = fit.t2_ms_se / widening;
        println!(
            "MOUSE {depth} µm: T2 {:.2} ms (vendor {t2_vendor}), SE {unwidened_se:.3} ms unwidened (vendor {se_vendor}), {:.3} ms widened ×{widening:.2}, misfit {}",
            fit.t2_ms, fit.t2_ms_se, fit.misfit,
        );
        assert!(
            (fit.t2_ms / t2_vendor - 1.0).abs() < 0.01,
            "{depth} µm: T2 {} vs vendor {t2_vendor}",
            fit.t2_ms
        );
        assert!(
            unwidened_se > se_vendor / 2.0 && unwidened_se < 2.0 * se_vendor,
            "{depth} µm: unwidened SE {unwidened_se} vs vendor {se_vendor}"
        );
    }
}

#[test]
fn bunter_summary_is_robust_to_its_tiny_long_peak_and_matches_the_vendor() {
    let train = &trains(&external("geospec_CPMG_bunter.txt"))[0].train;
    for (label, options) in [
        ("default grid", SpectrumOptions::default()),
        (
            "vendor grid (T2Max = 500 ms)",
            SpectrumOptions {
                t2_max_ms: Some(500.0),
                ..SpectrumOptions::default()
            },
        ),
        (
            "default grid, L-curve",
            SpectrumOptions {
                alpha: AlphaChoice::LCurve,
                ..SpectrumOptions::default()
            },
        ),
        (
            "default grid, discrepancy",
            SpectrumOptions {
                alpha: AlphaChoice::Discrepancy,
                ..SpectrumOptions::default()
            },
        ),
    ] {
        let spectrum = fit_spectrum(train, &options).expect("a clear decay");
        println!(
            "Bunter, {label}: α {:.3e}; log-mean {:.3} ms (all {:.3}), T2 at 99 % {:.2} ms (all {:.2}); excluded {:?}; flags {:?}",
            spectrum.alpha,
            spectrum.t2_logmean_ms,
            spectrum.t2_logmean_all_ms,
            spectrum.t2_at_99_ms,
            spectrum.t2_at_99_all_ms,
            spectrum
                .excluded_peaks
                .iter()
                .map(|p| &p.reason)
                .collect::<Vec<_>>(),
            spectrum.flags
        );
        assert!(
            (spectrum.t2_logmean_ms / 12.777 - 1.0).abs() < 0.05,
            "{label}"
        );
        // The tiny peak at 675 ms is left out of the summary on either grid.
        assert!(
            spectrum.t2_at_99_ms < spectrum.t2_at_99_all_ms || spectrum.excluded_peaks.is_empty()
        );
        // T2 at 99 % is a tail statistic: it follows the regularisation. On the default grid GCV
        // picks α ≈ 2e-2, which smooths the main peak's long side out to ~150 ms (2 % of the
        // amplitude above 90 ms) and reads 119 ms; the L-curve and the discrepancy principle
        // pick α ≈ 1 and 12 and read within 10 % of the vendor, as does GCV on the vendor's
        // 500 ms grid (where it picks α ≈ 7e-7).
        if options.t2_max_ms.is_some() || options.alpha != AlphaChoice::Gcv {
            assert!(
                (spectrum.t2_at_99_ms / 89.125 - 1.0).abs() < 0.10,
                "{label}"
            );
        }
    }
}

/// The vendor's own distribution beside the rock-core data: its log-mean, computed here.
fn vendor_rwth_log_mean_ms() -> f64 {
    let text = std::fs::read_to_string(external(
        "prospa_rwth_sample01_0bar/sample_01_T2_0bar_T2spec.dat",
    ))
    .expect("present");
    let (mut weighted, mut total) = (0.0, 0.0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|f| f.parse().expect("a number"))
            .collect();
        weighted += v[1] * (v[0] * 1e3).ln();
        total += v[1];
    }
    (weighted / total).exp()
}

#[test]
fn rock_core_log_mean_agrees_with_the_vendor_distribution() {
    let vendor = vendor_rwth_log_mean_ms();
    let train = &trains(&external("prospa_rwth_sample01_0bar/sample_01_T2_0bar.dat"))[0].train;
    assert_eq!(train.len(), 3000);
    let spectrum = fit_spectrum(train, &SpectrumOptions::default()).expect("a clear decay");
    println!(
        "rock core: log-mean {:.3} ms (vendor distribution {vendor:.3} ms), T2 at 99 % {:.2} ms, flags {:?}",
        spectrum.t2_logmean_ms, spectrum.t2_at_99_ms, spectrum.flags
    );
    assert!((spectrum.t2_logmean_ms / vendor - 1.0).abs() < 0.10);
}

#[test]
fn spinsolve_recovered_trains_agree_with_each_other() {
    let all = trains(&external("spinsolve_ircpmg_berea/T1IRT2.dat"));
    assert_eq!(all.len(), 16);
    let log_means: Vec<f64> = all[13..]
        .iter()
        .map(|t| {
            let s = fit_spectrum(&t.train, &SpectrumOptions::default()).expect("recovered");
            println!(
                "Spinsolve {}: log-mean {:.3} ms, noise correlated {:?}",
                t.label.as_deref().unwrap_or("?"),
                s.t2_logmean_ms,
                fit_mono(&t.train, &FitOptions::default())
                    .ok()
                    .and_then(|f| f.noise.map(|n| (n.correlated, n.lag1_correlation)))
            );
            s.t2_logmean_ms
        })
        .collect();
    let (lo, hi) = log_means
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    assert!(hi / lo - 1.0 < 0.05, "{log_means:?}");
}

#[test]
fn no_real_train_hides_a_misfit_an_absurd_snr_or_an_impossible_fraction() {
    let files = [
        "geospec_CPMG_bunter.txt",
        "minispec_cpmg.dps",
        "prospa_nmr_mouse_exp6/data-03500um.dat",
        "prospa_nmr_mouse_exp6/data-04500um.dat",
        "prospa_nmr_mouse_exp6/data-05500um.dat",
        "prospa_nmr_mouse_exp6/data-06500um.dat",
        "prospa_nmr_mouse_exp6/data-07500um.dat",
        "prospa_nmr_mouse_exp6/data-08500um.dat",
        "prospa_rwth_sample01_0bar/sample_01_T2_0bar.dat",
        "spinsolve_ircpmg_berea/T1IRT2.dat",
        "tecmag_silicon_oil/CPMG_silicon_oil.tnt",
    ];
    let mut checked = 0;
    for name in files {
        for imported in trains(&external(name)) {
            let what = format!("{name} {}", imported.label.as_deref().unwrap_or(""));
            for offset in [OffsetModel::Free, OffsetModel::None, OffsetModel::Auto] {
                let options = FitOptions {
                    offset,
                    ..FitOptions::default()
                };
                if let Ok(fit) = fit_mono(&imported.train, &options) {
                    checked += 1;
                    assert!(
                        !(fit.converged && fit.chi2_red > 5.0 && !fit.misfit),
                        "{what} {offset:?}: χ²ᵣ {} without misfit",
                        fit.chi2_red
                    );
                    assert!(fit.snr <= 1e5, "{what} {offset:?}: SNR {}", fit.snr);
                }
            }
            if let Ok(bi) = fit_bi(&imported.train, &FitOptions::default())
                && bi.identifiable
            {
                assert!(
                    (0.0..=1.0).contains(&bi.fraction_fast),
                    "{what}: fraction {}",
                    bi.fraction_fast
                );
            }
        }
    }
    assert!(checked >= 60, "{checked} fits checked");
}
