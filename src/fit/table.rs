//! The readable table `ferrocount fit` prints without `--json`: one aligned row per input.
//!
//! Columns have fixed widths (the file column is as wide as the longest name, known before any
//! fit runs), so rows can be printed as they arrive. An estimate is printed to the precision its
//! standard error supports (the error to two significant digits); a value far from unity switches
//! to scientific notation rather than losing digits or growing the column.
//!
//! Not here: the JSON output, which carries every number at full precision.

use std::io::Write;

use nmr_core::fit::{BiFit, Model, MonoFit, T2Spectrum};

/// Width of the `value ± se` columns.
const ESTIMATE_WIDTH: usize = 21;
/// Width of the amplitude and offset columns.
const LEVEL_WIDTH: usize = 11;

/// Formats rows for files whose names are at most `file_width` characters.
pub(super) struct Table {
    file_width: usize,
}

impl Table {
    /// A table whose file column fits every one of `names`.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let file_width = names
            .into_iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .max("file".len());
        Self { file_width }
    }

    /// The header of the mono-exponential table.
    pub fn mono_header(&self, out: &mut Vec<u8>) {
        let _ = writeln!(
            out,
            "{:<fw$}  {:<ew$}  {:<ew$}  {:>lw$}  {:>lw$}  {:>7}  {:>8}  {:>6}  {:<10}  converged",
            "file",
            "T2 (ms)",
            "R2 (1/s)",
            "A",
            "C",
            "χ²red",
            "SNR",
            "echoes",
            "misfit",
            fw = self.file_width,
            ew = ESTIMATE_WIDTH,
            lw = LEVEL_WIDTH,
        );
    }

    /// One mono-exponential result; a misfit says by how much its errors were widened.
    pub fn mono_row(&self, file: &str, fit: &MonoFit, out: &mut Vec<u8>) {
        let misfit = if fit.misfit {
            let widened = fit.lack_of_fit.as_ref().map_or(1.0, |l| l.se_inflation);
            format!("YES ×{}", fixed_or_scientific(widened, 1))
        } else {
            "no".to_owned()
        };
        let _ = writeln!(
            out,
            "{:<fw$}  {:<ew$}  {:<ew$}  {:>lw$}  {:>lw$}  {:>7}  {:>8}  {:>6}  {:<10}  {}",
            file,
            with_error(fit.t2_ms, fit.t2_ms_se),
            with_error(fit.r2_per_s, fit.r2_per_s_se),
            significant(fit.amplitude, 5),
            significant(fit.offset, 4),
            fixed_or_scientific(fit.chi2_red, 2),
            fixed_or_scientific(fit.snr, 1),
            fit.echoes_used,
            misfit,
            if fit.converged { "yes" } else { "NO" },
            fw = self.file_width,
            ew = ESTIMATE_WIDTH,
            lw = LEVEL_WIDTH,
        );
    }

    /// The header of the bi-exponential table.
    pub fn bi_header(&self, out: &mut Vec<u8>) {
        let _ = writeln!(
            out,
            "{:<fw$}  {:<ew$}  {:<ew$}  {:<ew$}  {:>lw$}  {:>7}  {:>8}  {:>6}  preferred  converged",
            "file",
            "T2 fast (ms)",
            "T2 slow (ms)",
            "fraction fast",
            "C",
            "χ²red",
            "SNR",
            "echoes",
            fw = self.file_width,
            ew = ESTIMATE_WIDTH,
            lw = LEVEL_WIDTH,
        );
    }

    /// One bi-exponential result, with the model the comparison prefers. Components that are not
    /// identifiable are not printed as numbers: the row says why, and gives the mono T2.
    pub fn bi_row(&self, file: &str, fit: &BiFit, out: &mut Vec<u8>) {
        if !fit.identifiable {
            let _ = writeln!(
                out,
                "{:<fw$}  not identifiable: {}; mono T2 {} ms  (preferred mono, converged {})",
                file,
                fit.not_identifiable.join("; "),
                significant(fit.comparison.mono_t2_ms, 5),
                if fit.converged { "yes" } else { "NO" },
                fw = self.file_width,
            );
            return;
        }
        let _ = writeln!(
            out,
            "{:<fw$}  {:<ew$}  {:<ew$}  {:<ew$}  {:>lw$}  {:>7}  {:>8}  {:>6}  {:<9}  {}",
            file,
            maybe_with_error(fit.t2_fast_ms, fit.t2_fast_ms_se),
            maybe_with_error(fit.t2_slow_ms, fit.t2_slow_ms_se),
            maybe_with_error(fit.fraction_fast, fit.fraction_fast_se),
            significant(fit.offset, 4),
            fit.chi2_red
                .map_or_else(|| "-".into(), |c| fixed_or_scientific(c, 2)),
            fixed_or_scientific(fit.snr, 1),
            fit.echoes_used,
            match fit.comparison.preferred {
                Model::Mono => "mono",
                Model::Bi => "bi",
            },
            if fit.converged { "yes" } else { "NO" },
            fw = self.file_width,
            ew = ESTIMATE_WIDTH,
            lw = LEVEL_WIDTH,
        );
    }

    /// The header of the T2-distribution table.
    pub fn spectrum_header(&self, out: &mut Vec<u8>) {
        let _ = writeln!(
            out,
            "{:<fw$}  {:>14}  {:>14}  {:>lw$}  {:>lw$}  {:>7}  {:>6}  peaks: T2 (ms) fraction",
            "file",
            "T2 logmean(ms)",
            "T2 at 99%(ms)",
            "total A",
            "C",
            "χ²red",
            "echoes",
            fw = self.file_width,
            lw = LEVEL_WIDTH,
        );
    }

    /// One T2 distribution, summarised by its log-mean, its 99th percentile and its peaks.
    pub fn spectrum_row(&self, file: &str, spectrum: &T2Spectrum, out: &mut Vec<u8>) {
        let peaks: Vec<String> = spectrum
            .peaks
            .iter()
            .map(|p| {
                format!(
                    "{} {:.0}%",
                    significant(p.t2_logmean_ms, 3),
                    100.0 * p.fraction
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "{:<fw$}  {:>14}  {:>14}  {:>lw$}  {:>lw$}  {:>7}  {:>6}  {}",
            file,
            significant(spectrum.t2_logmean_ms, 4),
            significant(spectrum.t2_at_99_ms, 4),
            significant(spectrum.total_amplitude, 5),
            significant(spectrum.offset, 4),
            spectrum
                .chi2_red
                .map_or_else(|| "-".into(), |c| fixed_or_scientific(c, 2)),
            spectrum.echoes_used,
            if spectrum.flags.is_empty() {
                peaks.join(", ")
            } else {
                let flags: Vec<String> = spectrum.flags.iter().map(|f| format!("{f:?}")).collect();
                format!("{}  FLAGS: {}", peaks.join(", "), flags.join(", "))
            },
            fw = self.file_width,
            lw = LEVEL_WIDTH,
        );
    }

    /// An input that could not be read or fitted.
    pub fn error_row(&self, file: &str, message: &str, out: &mut Vec<u8>) {
        let _ = writeln!(out, "{file:<fw$}  error: {message}", fw = self.file_width);
    }

    /// An input that was passed over, and why (e.g. a file that holds no echo data).
    pub fn note_row(&self, file: &str, message: &str, out: &mut Vec<u8>) {
        let _ = writeln!(out, "{file:<fw$}  {message}", fw = self.file_width);
    }
}

/// `value ± se`, the value rounded to the se's second significant digit.
fn with_error(value: f64, se: f64) -> String {
    if !(value.is_finite() && se.is_finite() && se > 0.0) {
        return format!("{} ± {}", significant(value, 5), significant(se, 2));
    }
    let decimals = 1 - se.log10().floor() as i32;
    let huge = value.abs().max(se) >= 1e7;
    if huge || decimals > 8 {
        return format!("{value:.4e} ± {se:.1e}");
    }
    let decimals = decimals.max(0) as usize;
    format!("{value:.decimals$} ± {se:.decimals$}")
}

/// `value ± se`, or `value ± -` when there is no standard error (no covariance).
fn maybe_with_error(value: f64, se: Option<f64>) -> String {
    match se {
        Some(se) => with_error(value, se),
        None => format!("{} ± -", significant(value, 5)),
    }
}

/// `value` to `digits` significant digits in fixed notation, or scientific when far from unity.
fn significant(value: f64, digits: i32) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs().log10().floor() as i32;
    if !(-3..7).contains(&magnitude) {
        let decimals = (digits - 1).max(0) as usize;
        return format!("{value:.decimals$e}");
    }
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    format!("{value:.decimals$}")
}

/// `value` with `decimals` decimals, scientific when that would hide it or overflow the column.
fn fixed_or_scientific(value: f64, decimals: usize) -> String {
    let size = value.abs();
    if value.is_finite() && value != 0.0 && !(1e-2..1e5).contains(&size) {
        format!("{value:.1e}")
    } else {
        format!("{value:.decimals$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_rounded_to_their_standard_error() {
        assert_eq!(with_error(80.01234, 0.1234), "80.01 ± 0.12");
        assert_eq!(with_error(80.01234, 1.5), "80.0 ± 1.5");
        assert_eq!(with_error(1234.4, 27.0), "1234 ± 27");
        assert_eq!(with_error(12.5, 0.0), "12.500 ± 0");
        assert_eq!(with_error(2.5e9, 3.0e7), "2.5000e9 ± 3.0e7");
        assert_eq!(with_error(f64::NAN, 1.0), "NaN ± 1.0");
    }

    #[test]
    fn levels_keep_their_significant_digits() {
        assert_eq!(significant(1.000_234_5, 5), "1.0002");
        assert_eq!(significant(-0.012_345_6, 4), "-0.01235");
        assert_eq!(significant(49_476.07, 5), "49476");
        assert_eq!(significant(1.5e-6, 4), "1.500e-6");
        assert_eq!(significant(f64::INFINITY, 4), "inf");
        assert_eq!(fixed_or_scientific(1.0234, 2), "1.02");
        assert_eq!(fixed_or_scientific(3.0e6, 1), "3.0e6");
        assert_eq!(fixed_or_scientific(0.0, 2), "0.00");
    }

    #[test]
    fn rows_line_up_under_the_header() {
        let table = Table::new(["a.csv", "longer/name.csv"]);
        let fit = MonoFit {
            t2_ms: 80.0123,
            t2_ms_se: 0.1234,
            r2_per_s: 12.498,
            r2_per_s_se: 0.0193,
            amplitude: 1.0002,
            amplitude_se: 0.001,
            offset: 0.0001,
            offset_se: 0.0002,
            chi2_red: 1.02,
            snr: 100.2,
            noise_sd: 0.01,
            echoes_used: 999,
            converged: true,
            iterations: 5,
            phase_rad: 0.0,
            rician_corrected: false,
            signal_kind: nmr_core::SignalKind::Complex,
            offset_model: nmr_core::fit::OffsetChoice::default(),
            noise: None,
            misfit: false,
            lack_of_fit: None,
            residuals: None,
        };
        let mut out = Vec::new();
        table.mono_header(&mut out);
        table.mono_row("a.csv", &fit, &mut out);
        table.error_row("longer/name.csv", "line 3: bad", &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let column = |line: &str, what: &str| line.find(what).map(|b| line[..b].chars().count());
        assert_eq!(column(lines[0], "T2"), column(lines[1], "80.01 ± 0.12"));
        assert_eq!(column(lines[0], "T2"), column(lines[2], "error:"));
        assert_eq!(column(lines[0], "converged"), column(lines[1], "yes"));
        assert!(lines[1].contains("12.498 ± 0.019"), "{}", lines[1]);
    }
}
