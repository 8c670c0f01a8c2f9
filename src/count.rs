//! `ferrocount count`: fits a run's control and quad-marker readings and reports the CTC count.
//!
//! Every file is fitted; the tubes' replicate R2 values give ΔR2; the calibration (which must be
//! for the trains' echo time, and for `--lot` when given) turns it into cells, per mL and per
//! 7.5 mL with 95 % intervals, a reporting category and, with `--indication`, a call against the
//! configured cut-off. Optional single-marker tubes give a marker profile (ΔR2 per marker, never
//! turned into counts that are added up) and CD45/IgG tubes a non-specific-binding check. QC flags (per reading, temperature drift, replicate CV) are reported with
//! the result; a flag of severity `hold` means the result must not be released.
//!
//! Inputs are read safely (`crate::input_file`): regular files only, at most `--max-file-mib`
//! each, and every file's declared echo time is checked against the calibration's from its first
//! kilobytes before any file is read in full. The count itself passes
//! `nmr_core::assay::check_count`: a calibration or volume outside the physical ranges is an error,
//! never a printed number.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use nmr_core::assay::{
    Calibration, CountInputs, CountReport, Indications, Marker, TubeKind, TubeSummary,
};
use nmr_core::qc::{
    MeasurementQcLimits, QcFlag, Severity, check_measurement, check_replicate_cv,
    check_replicate_outlier, check_temperature_drift, median_fill_amplitude,
};

use crate::fitted_file::{FittedFile, check_declared_te_ms, common_te_ms};
use crate::input_file::{InputLimit, InputLimitArg, read_text};
use crate::number_arg;
use crate::printable::printable;

/// Arguments of `ferrocount count`.
#[derive(Debug, clap::Args)]
pub struct CountArgs {
    /// Echo-train files of the control tube's replicate readings.
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    pub control: Vec<PathBuf>,
    /// Echo-train files of the quad-marker (labelled) tube's replicate readings.
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    pub labeled: Vec<PathBuf>,
    /// The calibration TOML for this reagent lot and echo time.
    #[arg(long, value_name = "CAL.toml")]
    pub calibration: PathBuf,
    /// Processed blood volume, mL (0.5 to 50).
    #[arg(long, value_name = "V", value_parser = number_arg::positive)]
    pub blood_ml: f64,
    /// Indication whose cut-off the call uses (breast, prostate, colorectal, …).
    #[arg(long, value_name = "NAME")]
    pub indication: Option<String>,
    /// A single-marker tube reading, as MARKER=FILE (marker: epcam, muc1, her2, egfr); repeat
    /// for each reading. Gives the marker profile; never added into the count.
    #[arg(long = "marker", value_name = "MARKER=FILE", value_parser = parse_marker_file)]
    pub markers: Vec<(Marker, PathBuf)>,
    /// Readings of a CD45-particle control tube (non-specific binding check).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub cd45: Vec<PathBuf>,
    /// Readings of an isotype-IgG-particle control tube (non-specific binding check).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub igg: Vec<PathBuf>,
    /// Reagent lot of the run; must match the calibration's.
    #[arg(long, value_name = "L")]
    pub lot: Option<String>,
    /// A TOML file of cut-offs replacing the built-in ones.
    #[arg(long, value_name = "FILE")]
    pub indications: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub limit: InputLimitArg,
}

/// Extra tubes of a run: their summaries and fitted files.
struct ExtraTube {
    summary: TubeSummary,
    files: Vec<FittedFile>,
}

/// Runs the command.
pub fn run(args: &CountArgs) -> anyhow::Result<ExitCode> {
    nmr_core::assay::check_blood_ml(args.blood_ml).context("--blood-ml")?;
    let limit = args.limit.limit();
    let calibration_text =
        read_text(&args.calibration, limit).context("cannot read the calibration")?;
    let calibration = Calibration::from_toml(&calibration_text)
        .with_context(|| format!("calibration {}", args.calibration.display()))?;
    let indications = match &args.indications {
        // Read within the limit like every input (a FIFO or device is refused, unread).
        Some(path) => {
            let text = read_text(path, limit).context("cannot read the indications file")?;
            Indications::from_toml(&text)
                .with_context(|| format!("indications file {}", path.display()))?
        }
        None => appliance::config::default_indications()?,
    };
    if let Some(indication) = &args.indication {
        indications.cutoff(indication)?;
    }
    // Before any file is read in full: the lot, then every file (a regular file within the limit)
    // and the echo time its header declares against the calibration's.
    calibration.check_applies(args.lot.as_deref(), calibration.te_ms)?;
    let paths: Vec<&Path> = args
        .control
        .iter()
        .chain(&args.labeled)
        .chain(args.markers.iter().map(|(_, path)| path))
        .chain(&args.cd45)
        .chain(&args.igg)
        .map(PathBuf::as_path)
        .collect();
    check_declared_te_ms(
        &paths,
        Some((calibration.te_ms, "the calibration's echo time")),
        limit,
    )?;

    let control = read_all(&args.control, limit)?;
    let labeled = read_all(&args.labeled, limit)?;
    let extra = extra_tubes(args, limit)?;
    let all: Vec<FittedFile> = control
        .iter()
        .chain(&labeled)
        .chain(extra.iter().flat_map(|tube| &tube.files))
        .cloned()
        .collect();
    let te_ms = common_te_ms(&all)?;
    calibration.check_applies(args.lot.as_deref(), te_ms)?;

    let control_summary = summary(TubeKind::Control, &control)?;
    let labeled_summary = summary(TubeKind::Quad, &labeled)?;
    let mut tubes = vec![
        (&control_summary, control.as_slice()),
        (&labeled_summary, labeled.as_slice()),
    ];
    tubes.extend(extra.iter().map(|t| (&t.summary, t.files.as_slice())));
    let qc_flags = qc_flags(&tubes);
    let report = CountReport::compute(CountInputs {
        control: control_summary,
        labeled: labeled_summary,
        extra: extra.iter().map(|t| t.summary.clone()).collect(),
        calibration: &calibration,
        blood_ml: args.blood_ml,
        indication: args.indication.as_deref(),
        indications: &indications,
        te_ms,
        qc_flags,
    })?;
    if args.json {
        writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string_pretty(&report)?
        )?;
    } else {
        print_text(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn read_all(paths: &[PathBuf], limit: InputLimit) -> anyhow::Result<Vec<FittedFile>> {
    paths.iter().map(|p| FittedFile::read(p, limit)).collect()
}

fn summary(kind: TubeKind, files: &[FittedFile]) -> anyhow::Result<TubeSummary> {
    let replicates: Vec<_> = files.iter().map(FittedFile::replicate).collect();
    Ok(TubeSummary::from_replicates(kind, &replicates)?)
}

/// Reads the optional single-marker and non-specific control tubes, in a fixed order.
fn extra_tubes(args: &CountArgs, limit: InputLimit) -> anyhow::Result<Vec<ExtraTube>> {
    let mut tubes = Vec::new();
    for marker in Marker::ALL {
        let paths: Vec<PathBuf> = args
            .markers
            .iter()
            .filter(|(m, _)| *m == marker)
            .map(|(_, path)| path.clone())
            .collect();
        if !paths.is_empty() {
            tubes.push(extra_tube(TubeKind::Single(marker), &paths, limit)?);
        }
    }
    if !args.cd45.is_empty() {
        tubes.push(extra_tube(TubeKind::Cd45Control, &args.cd45, limit)?);
    }
    if !args.igg.is_empty() {
        tubes.push(extra_tube(TubeKind::IggControl, &args.igg, limit)?);
    }
    Ok(tubes)
}

fn extra_tube(kind: TubeKind, paths: &[PathBuf], limit: InputLimit) -> anyhow::Result<ExtraTube> {
    let files = read_all(paths, limit)?;
    Ok(ExtraTube {
        summary: summary(kind, &files)?,
        files,
    })
}

/// Parses a `MARKER=FILE` argument.
fn parse_marker_file(text: &str) -> Result<(Marker, PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not MARKER=FILE"))?;
    let marker = match name.trim().to_ascii_lowercase().replace('-', "").as_str() {
        "epcam" => Marker::Epcam,
        "muc1" => Marker::Muc1,
        "her2" => Marker::Her2,
        "egfr" => Marker::Egfr,
        other => {
            return Err(format!(
                "unknown marker `{other}` (epcam, muc1, her2, egfr)"
            ));
        }
    };
    if path.is_empty() {
        return Err(format!("`{text}` names no file"));
    }
    Ok((marker, PathBuf::from(path)))
}

fn qc_flags(tubes: &[(&TubeSummary, &[FittedFile])]) -> Vec<QcFlag> {
    let limits = MeasurementQcLimits::default();
    let inputs: Vec<_> = tubes
        .iter()
        .flat_map(|(summary, files)| {
            files
                .iter()
                .enumerate()
                .map(move |(i, f)| f.qc_input(&format!("{} reading {}", summary.kind, i + 1)))
        })
        .collect();
    let expected_fill = median_fill_amplitude(&inputs);
    let mut flags: Vec<QcFlag> = inputs
        .iter()
        .flat_map(|input| check_measurement(input, expected_fill, &limits))
        .collect();
    flags.extend(check_temperature_drift(&inputs, &limits));
    for (tube, files) in tubes {
        flags.extend(check_replicate_cv(&tube.kind.to_string(), tube.cv, &limits));
        let labels: Vec<String> = files
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{} reading {} ({})", tube.kind, i + 1, f.path.display()))
            .collect();
        let replicates: Vec<_> = files.iter().map(FittedFile::replicate).collect();
        flags.extend(check_replicate_outlier(
            &tube.kind.to_string(),
            &labels,
            &replicates,
        ));
    }
    flags
}

fn print_text(report: &CountReport) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ΔR2 = {:.4} ± {:.4} /s (control R2 {:.4} /s, CV {:.2} %; quad R2 {:.4} /s, CV {:.2} %)",
        report.delta_r2_per_s,
        report.delta_r2_per_s_se,
        report.control.mean_r2_per_s,
        report.control.cv * 100.0,
        report.labeled.mean_r2_per_s,
        report.labeled.cv * 100.0
    )?;
    writeln!(
        out,
        "cells in sample: {:.1} (95 % CI {:.1}–{:.1}); {}",
        report.cells,
        report.cells_ci95[0],
        report.cells_ci95[1],
        report.category.as_str().replace('_', " ")
    )?;
    writeln!(
        out,
        "per mL: {:.2} ({:.2}–{:.2}); per 7.5 mL: {:.1} ({:.1}–{:.1}) from {} mL of blood",
        report.per_ml,
        report.per_ml_ci95[0],
        report.per_ml_ci95[1],
        report.per_7_5ml,
        report.per_7_5ml_ci95[0],
        report.per_7_5ml_ci95[1],
        report.blood_ml
    )?;
    if let (Some(call), Some(indication), Some(cutoff)) =
        (&report.call, &report.indication, report.cutoff_per_7_5ml)
    {
        let caveat = if report.call_interval_spans_cutoff == Some(true) {
            " (the 95 % interval spans the cut-off)"
        } else {
            ""
        };
        writeln!(
            out,
            "{indication}: {call} (cut-off ≥ {cutoff} per 7.5 mL){caveat}"
        )?;
    }
    for signal in report
        .marker_profile
        .iter()
        .chain(&report.nonspecific_controls)
    {
        writeln!(
            out,
            "{}: ΔR2 = {:.4} ± {:.4} /s",
            signal.tube, signal.delta_r2_per_s, signal.delta_r2_per_s_se
        )?;
    }
    if report.qc_flags.is_empty() {
        writeln!(out, "QC: no flags")?;
    } else {
        for flag in &report.qc_flags {
            let severity = match flag.severity {
                Severity::Warn => "WARN",
                Severity::Hold => "HOLD",
            };
            writeln!(
                out,
                "QC {severity} [{}] {}: {}",
                flag.code,
                printable(&flag.subject, false),
                printable(&flag.message, false)
            )?;
        }
        if report.qc_hold {
            writeln!(out, "QC: result on HOLD, do not release")?;
        }
    }
    Ok(())
}
