//! One echo-train file read and fitted: the unit both `calibrate` and `count` work on.
//!
//! [`declared_te_ms`] reads only a file's first kilobytes (refusing a FIFO, a device or a file
//! over the size limit without reading it) and returns the echo time its header declares, so the
//! commands can check every file's echo time before reading any in full. [`FittedFile::read`]
//! reads the file (a regular file within the limit), parses it by content (`nmr_core::io::parse_echo_train`), fits a
//! mono-exponential (`nmr_core::fit::fit_mono`, default options) and keeps what the assay and QC
//! need: R2 and its SE, the echo time, the magnet temperature, the first-echo amplitude and
//! whether the decay prefers two exponentials (`nmr_core::qc::compare_mono_bi`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::input_file::{InputLimit, read_head, read_text};
use nmr_core::assay::Replicate;
use nmr_core::fit::{FitOptions, MonoFit, fit_mono};
use nmr_core::io::{declared_acquisition, parse_echo_train};
use nmr_core::qc::{BiexponentialOptions, MeasurementQcInput, compare_mono_bi};

/// A fitted echo-train file.
#[derive(Debug, Clone)]
pub struct FittedFile {
    /// Where it came from.
    pub path: PathBuf,
    /// The mono-exponential fit.
    pub fit: MonoFit,
    /// Echo time, ms: the file's `te_s` metadata, or the spacing of its echo times.
    pub te_ms: f64,
    /// Magnet temperature recorded with the train, °C.
    pub temp_c: Option<f64>,
    /// Fitted signal at the first echo, A·e^(−t₁/T2) + C.
    pub first_echo_amplitude: f64,
    /// Whether the train prefers two exponentials (`None` when the comparison could not be made).
    pub biexponential_preferred: Option<bool>,
}

impl FittedFile {
    /// Reads and fits `path`: a regular file of at most `limit`.
    pub fn read(path: &Path, limit: InputLimit) -> anyhow::Result<FittedFile> {
        let text = read_text(path, limit).context("cannot read an echo-train file")?;
        let train = parse_echo_train(&text)
            .with_context(|| format!("{} is not a readable echo train", path.display()))?;
        let te_ms = match train.acquisition().te_s {
            Some(te_s) => te_s * 1000.0,
            None => uniform_spacing_ms(train.times_s()).with_context(|| {
                format!(
                    "{} has no echo time (`# te_ms=` line) and its echo times are not evenly spaced",
                    path.display()
                )
            })?,
        };
        let fit = fit_mono(&train, &FitOptions::default())
            .with_context(|| format!("the T2 fit of {} failed", path.display()))?;
        let first_time_s = train.times_s().first().copied().unwrap_or(0.0);
        let first_echo_amplitude =
            fit.amplitude * (-first_time_s * 1000.0 / fit.t2_ms).exp() + fit.offset;
        let biexponential_preferred =
            compare_mono_bi(&train, &BiexponentialOptions::default()).map(|check| check.preferred);
        Ok(FittedFile {
            biexponential_preferred,
            path: path.to_path_buf(),
            temp_c: train.acquisition().temp_c,
            fit,
            te_ms,
            first_echo_amplitude,
        })
    }

    /// The fit as an assay replicate.
    pub fn replicate(&self) -> Replicate {
        Replicate::new(self.fit.r2_per_s, self.fit.r2_per_s_se)
    }

    /// What the per-measurement QC checks look at; `label` names the tube and replicate.
    pub fn qc_input(&self, label: &str) -> MeasurementQcInput {
        MeasurementQcInput {
            subject: format!("{label} ({})", self.path.display()),
            snr: self.fit.snr,
            first_echo_amplitude: self.first_echo_amplitude,
            converged: self.fit.converged,
            biexponential_preferred: self.biexponential_preferred,
            temp_c: self.temp_c,
            misfit: self.fit.misfit.then(|| nmr_core::qc::MisfitSeen {
                chi2_red: self.fit.chi2_red,
                se_widening: self
                    .fit
                    .lack_of_fit
                    .as_ref()
                    .map_or(1.0, |l| l.se_inflation),
            }),
        }
    }
}

/// The echo time `path` declares in its header, ms (`None` when it declares none: a minispec
/// file, or a CSV without `# te_ms=`), from its first kilobytes only. A FIFO, a device or a file
/// over `limit` is refused here, unread.
pub fn declared_te_ms(path: &Path, limit: InputLimit) -> anyhow::Result<Option<f64>> {
    let head = read_head(path, limit).context("cannot read an echo-train file")?;
    let declared = declared_acquisition(&head)
        .with_context(|| format!("{} is not a readable echo train", path.display()))?;
    Ok(declared.te_s.map(|te_s| te_s * 1000.0))
}

/// Checks, before any file is read in full, that the echo times `paths` declare agree with
/// each other and with `expected` (ms, from the command line or the calibration), and that every
/// path is a regular file within `limit`. Files that declare no echo time are checked after the
/// fit ([`common_te_ms`]).
pub fn check_declared_te_ms(
    paths: &[&Path],
    expected: Option<(f64, &str)>,
    limit: InputLimit,
) -> anyhow::Result<()> {
    let mut first: Option<(f64, &Path)> = None;
    for path in paths {
        let Some(te_ms) = declared_te_ms(path, limit)? else {
            continue;
        };
        if let Some((wanted, source)) = expected
            && !same_te_ms(te_ms, wanted)
        {
            bail!(
                "{} declares an echo time of {te_ms} ms in its header, but {source} is {wanted} ms",
                path.display()
            );
        }
        match first {
            Some((te_first, path_first)) if !same_te_ms(te_ms, te_first) => bail!(
                "echo times differ: {} declares {te_first} ms, {} declares {te_ms} ms",
                path_first.display(),
                path.display()
            ),
            Some(_) => {}
            None => first = Some((te_ms, path)),
        }
    }
    Ok(())
}

/// Echo times closer than 0.1 µs are the same.
fn same_te_ms(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1.0e-4
}

/// The spacing of evenly spaced echo times, ms (within 0.1 %).
fn uniform_spacing_ms(times_s: &[f64]) -> anyhow::Result<f64> {
    if times_s.len() < 2 {
        bail!("fewer than two echoes");
    }
    let spacing = times_s[1] - times_s[0];
    let even = times_s
        .windows(2)
        .all(|w| ((w[1] - w[0]) - spacing).abs() <= 1.0e-3 * spacing);
    if !even || spacing <= 0.0 {
        bail!("uneven echo spacing");
    }
    Ok(spacing * 1000.0)
}

/// Checks that every file shares one echo time and returns it, ms.
pub fn common_te_ms(files: &[FittedFile]) -> anyhow::Result<f64> {
    let Some(first) = files.first() else {
        bail!("no echo-train files");
    };
    for file in files {
        if !same_te_ms(file.te_ms, first.te_ms) {
            bail!(
                "echo times differ: {} was acquired at {} ms, {} at {} ms",
                first.path.display(),
                first.te_ms,
                file.path.display(),
                file.te_ms
            );
        }
    }
    Ok(first.te_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_is_inferred_only_when_even() {
        let even: Vec<f64> = (1..=10).map(|i| f64::from(i) * 0.004).collect();
        assert!((uniform_spacing_ms(&even).expect("even") - 4.0).abs() < 1e-9);
        assert!(uniform_spacing_ms(&[0.004, 0.008, 0.020]).is_err());
        assert!(uniform_spacing_ms(&[0.004]).is_err());
    }
}
