//! `ferrocount calibrate`: builds a calibration TOML from a spiked dilution series.
//!
//! The series file (format in `docs/calibration-series.md`) lists, per spiked sample, its cell
//! number and the echo-train files of its control and quad-marker tube readings. Every file is
//! fitted; each sample's ΔR2 comes from its two tubes' replicate R2 values; the calibration
//! itself is `nmr_core::assay::Calibration::from_series`.
//!
//! Everything that can be checked without fitting is checked first, so a bad series fails in
//! moments, not after minutes of fitting: `--out` (a regular file or a new one), the lot, the
//! series' design (levels, blanks, replicates per tube, `nmr_core::assay::check_series_design`),
//! and every train file (a regular file within `--max-file-mib`) with the echo time its header
//! declares against `--te-ms` and the others. The calibration is written whole or not at all.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;
use nmr_core::assay::replicate::MIN_REPLICATES;
use nmr_core::assay::{
    Calibration, CalibrationOptions, DeltaR2, LobMethod, SpikedSample, TubeKind, TubeSummary,
    check_series_design,
};

use crate::fitted_file::{FittedFile, check_declared_te_ms, common_te_ms};
use crate::input_file::{InputLimitArg, check_output, read_text, write_atomically};
use crate::number_arg;

/// Arguments of `ferrocount calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// The dilution-series file: `sample,cells,tube,file` rows (see docs/calibration-series.md).
    #[arg(long, value_name = "FILE")]
    pub series: PathBuf,
    /// Where to write the calibration TOML.
    #[arg(long, value_name = "CAL.toml")]
    pub out: PathBuf,
    /// Reagent lot (overrides a `# lot=` line of the series file).
    #[arg(long, value_name = "L")]
    pub lot: Option<String>,
    /// Expected echo time in ms; the trains' own echo time must match it.
    #[arg(long, value_name = "X", value_parser = number_arg::positive)]
    pub te_ms: Option<f64>,
    /// Imprecision goal that sets the limit of quantitation, CV in percent (above 0, at most 100).
    #[arg(long, value_name = "PCT", default_value_t = 20.0, value_parser = number_arg::percent)]
    pub cv_goal_pct: f64,
    /// Which limit of blank to report as `lob_cells`.
    #[arg(long, value_enum, default_value_t = LobChoice::Parametric)]
    pub lob_method: LobChoice,
    /// Creation time to record (RFC 3339); default: now.
    #[arg(long, value_name = "RFC3339")]
    pub created: Option<String>,
    #[command(flatten)]
    pub limit: InputLimitArg,
}

/// The LoB method, as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LobChoice {
    /// mean + c_p·SD of the blanks (EP17-A2 parametric).
    Parametric,
    /// The blank result at rank 0.5 + 0.95·N (EP17-A2 non-parametric).
    Nonparametric,
}

/// Which tube of a spiked sample a series row names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SeriesTube {
    Control,
    Quad,
}

/// One row of the series file.
#[derive(Debug, Clone, PartialEq)]
struct SeriesRow {
    sample: String,
    cells: f64,
    tube: SeriesTube,
    file: PathBuf,
}

/// The parsed series file.
#[derive(Debug, Clone, PartialEq)]
struct SeriesFile {
    lot: Option<String>,
    rows: Vec<SeriesRow>,
}

/// Runs the command.
pub fn run(args: &CalibrateArgs) -> anyhow::Result<ExitCode> {
    let limit = args.limit.limit();
    check_output(&args.out).context("--out")?;
    let text = read_text(&args.series, limit).context("cannot read the series file")?;
    let base = args.series.parent().unwrap_or(Path::new("."));
    let series = parse_series(&text, base)
        .with_context(|| format!("series file {}", args.series.display()))?;
    let lot = args
        .lot
        .clone()
        .or(series.lot.clone())
        .context("no reagent lot: pass --lot or put a `# lot=...` line in the series file")?;
    nmr_core::assay::plausibility::check_lot(&lot)
        .map_err(|reason| anyhow::anyhow!("reagent lot: {reason}"))?;
    check_design(&series.rows).with_context(|| format!("series file {}", args.series.display()))?;
    let paths: Vec<&Path> = series.rows.iter().map(|row| row.file.as_path()).collect();
    check_declared_te_ms(&paths, args.te_ms.map(|te| (te, "--te-ms")), limit)?;

    let mut fitted: Vec<(SeriesRow, FittedFile)> = Vec::with_capacity(series.rows.len());
    for row in &series.rows {
        let file = FittedFile::read(&row.file, limit)?;
        if !file.fit.converged {
            bail!("the T2 fit of {} did not converge", row.file.display());
        }
        fitted.push((row.clone(), file));
    }
    let files: Vec<FittedFile> = fitted.iter().map(|(_, f)| f.clone()).collect();
    let te_ms = common_te_ms(&files)?;
    if let Some(expected) = args.te_ms
        && (expected - te_ms).abs() > 1.0e-4
    {
        bail!("--te-ms {expected} given, but the echo trains were acquired at {te_ms} ms");
    }

    let samples = spiked_samples(&fitted)?;
    let options = CalibrationOptions {
        cv_goal: args.cv_goal_pct / 100.0,
        lob_method: match args.lob_method {
            LobChoice::Parametric => LobMethod::Parametric,
            LobChoice::Nonparametric => LobMethod::Nonparametric,
        },
        ..CalibrationOptions::default()
    };
    let created = match &args.created {
        Some(created) => created.clone(),
        None => now_rfc3339()?,
    };
    let calibration = Calibration::from_series(&lot, te_ms, &created, &samples, &options)?;
    let toml = calibration.to_toml()?;
    write_atomically(&args.out, toml.as_bytes()).context("cannot write the calibration")?;
    writeln!(
        std::io::stdout(),
        "calibration for lot {} at TE {} ms from {} samples: ΔR2 = {:.4} (±{:.4}) + {:.5} (±{:.5}) /s per cell; \
         LoB {:.2}, LoD {:.2}, LoQ {:.2} cells; written to {}",
        calibration.lot,
        calibration.te_ms,
        samples.len(),
        calibration.intercept_per_s,
        calibration.intercept_se,
        calibration.slope_per_s_per_cell,
        calibration.slope_se,
        calibration.lob_cells,
        calibration.lod_cells,
        calibration.loq_cells,
        crate::printable::printable(&args.out.display().to_string(), false)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The series' design, from its rows alone: the levels (`check_series_design` on one number of
/// cells per sample), and in every sample at least [`MIN_REPLICATES`] readings of each tube.
fn check_design(rows: &[SeriesRow]) -> anyhow::Result<()> {
    let mut by_sample: BTreeMap<&str, (f64, [usize; 2])> = BTreeMap::new();
    for row in rows {
        let entry = by_sample
            .entry(row.sample.as_str())
            .or_insert((row.cells, [0, 0]));
        entry.1[row.tube as usize] += 1;
    }
    for (sample, (_, [control, quad])) in &by_sample {
        for (tube, found) in [("control", control), ("quad-marker", quad)] {
            if *found < MIN_REPLICATES {
                bail!(
                    "sample `{sample}`: the {tube} tube has {found} reading(s), at least {MIN_REPLICATES} are needed"
                );
            }
        }
    }
    let cells: Vec<f64> = by_sample.values().map(|(cells, _)| *cells).collect();
    check_series_design(&cells)?;
    Ok(())
}

/// Groups fitted rows by sample and turns each sample into a ΔR2 at its cell number.
fn spiked_samples(fitted: &[(SeriesRow, FittedFile)]) -> anyhow::Result<Vec<SpikedSample>> {
    let mut by_sample: BTreeMap<&str, Vec<&(SeriesRow, FittedFile)>> = BTreeMap::new();
    for entry in fitted {
        by_sample
            .entry(entry.0.sample.as_str())
            .or_default()
            .push(entry);
    }
    let mut samples = Vec::with_capacity(by_sample.len());
    for (sample, rows) in by_sample {
        let cells = rows[0].0.cells;
        let replicates = |tube: SeriesTube| {
            rows.iter()
                .filter(|(row, _)| row.tube == tube)
                .map(|(_, file)| file.replicate())
                .collect::<Vec<_>>()
        };
        let control =
            TubeSummary::from_replicates(TubeKind::Control, &replicates(SeriesTube::Control))
                .with_context(|| format!("sample `{sample}`"))?;
        let quad = TubeSummary::from_replicates(TubeKind::Quad, &replicates(SeriesTube::Quad))
            .with_context(|| format!("sample `{sample}`"))?;
        samples.push(SpikedSample {
            cells,
            delta: DeltaR2::between(&quad, &control),
        });
    }
    Ok(samples)
}

/// Parses the series text; relative file paths are resolved against `base`.
fn parse_series(text: &str, base: &Path) -> anyhow::Result<SeriesFile> {
    let mut lot = None;
    let mut rows = Vec::new();
    let mut header_seen = false;
    let mut cells_of_sample: BTreeMap<String, f64> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(value) = comment.trim().strip_prefix("lot=") {
                lot = Some(value.trim().to_string());
            }
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if !header_seen {
            if fields != ["sample", "cells", "tube", "file"] {
                bail!(
                    "line {line_no}: the header must be `sample,cells,tube,file`, found `{line}`"
                );
            }
            header_seen = true;
            continue;
        }
        let [sample, cells, tube, file] = fields[..] else {
            bail!(
                "line {line_no}: expected 4 fields (sample,cells,tube,file), found {}",
                fields.len()
            );
        };
        if sample.is_empty() || file.is_empty() {
            bail!("line {line_no}: the sample and file fields must not be empty");
        }
        let cells: f64 = cells
            .parse()
            .ok()
            .filter(|c: &f64| c.is_finite() && *c >= 0.0)
            .with_context(|| {
                format!("line {line_no}: cells `{cells}` is not a non-negative number")
            })?;
        let tube = match tube.to_ascii_lowercase().as_str() {
            "control" => SeriesTube::Control,
            "quad" => SeriesTube::Quad,
            other => bail!("line {line_no}: tube `{other}` is neither `control` nor `quad`"),
        };
        if let Some(previous) = cells_of_sample.insert(sample.to_string(), cells)
            && previous != cells
        {
            bail!(
                "line {line_no}: sample `{sample}` is listed with {previous} and with {cells} cells"
            );
        }
        let path = PathBuf::from(file);
        let file = if path.is_absolute() {
            path
        } else {
            base.join(path)
        };
        rows.push(SeriesRow {
            sample: sample.to_string(),
            cells,
            tube,
            file,
        });
    }
    if !header_seen {
        bail!("no `sample,cells,tube,file` header");
    }
    if rows.is_empty() {
        bail!("no samples listed");
    }
    Ok(SeriesFile { lot, rows })
}

/// The current UTC time as RFC 3339 text.
pub fn now_rfc3339() -> anyhow::Result<String> {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .context("cannot format the current time")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIES: &str = "\
# lot=LOT-7
# a comment
sample,cells,tube,file

S1,0,control,trains/s1_c1.csv
S1,0,quad,/abs/s1_q1.csv
";

    #[test]
    fn parses_rows_lot_and_resolves_paths() {
        let parsed = parse_series(SERIES, Path::new("/data/series")).expect("valid");
        assert_eq!(parsed.lot.as_deref(), Some("LOT-7"));
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(
            parsed.rows[0].file,
            PathBuf::from("/data/series/trains/s1_c1.csv")
        );
        assert_eq!(parsed.rows[1].file, PathBuf::from("/abs/s1_q1.csv"));
        assert_eq!(parsed.rows[1].tube, SeriesTube::Quad);
    }

    #[test]
    fn rejects_malformed_series() {
        let base = Path::new(".");
        for (text, needle) in [
            ("cells,tube,file\n", "header"),
            (
                "sample,cells,tube,file\nS1,0,control\n",
                "expected 4 fields",
            ),
            (
                "sample,cells,tube,file\nS1,-1,control,a.csv\n",
                "non-negative",
            ),
            ("sample,cells,tube,file\nS1,0,cd45,a.csv\n", "neither"),
            (
                "sample,cells,tube,file\nS1,0,control,a.csv\nS1,5,quad,b.csv\n",
                "listed with",
            ),
            ("sample,cells,tube,file\n", "no samples"),
        ] {
            let err = parse_series(text, base).expect_err(text).to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
