//! `ferrocount count`: fits a run's control and quad-marker readings and reports the CTC count.
//!
//! Every file is fitted; the tubes' replicate R2 values give ΔR2; the calibration (which must be
//! for the trains' echo time, and for `--lot` when given) turns it into cells, per mL and per
//! 7.5 mL with 95 % intervals, a reporting category and, with `--indication`, a call against the
//! configured cut-off. Optional single-marker tubes give a marker profile (ΔR2 per marker, never
//! turned into counts that are added up) and CD45/IgG tubes a non-specific-binding check. QC flags (per reading, temperature drift, replicate CV) are reported with
//! the result; a flag of severity `hold` means the result must not be released.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use nmr_core::assay::{
    Calibration, Call, CountEstimate, DeltaR2, Indications, Marker, MarkerSignal, TubeKind,
    TubeSummary, marker_profile,
};
use nmr_core::qc::{
    MeasurementQcLimits, QcFlag, Severity, any_hold, check_measurement, check_replicate_cv,
    check_temperature_drift, median_fill_amplitude,
};
use serde::Serialize;

use crate::fitted_file::{FittedFile, common_te_ms};

/// The default cut-offs, embedded from `config/indications.toml`.
const DEFAULT_INDICATIONS: &str = include_str!("../config/indications.toml");

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
    /// Processed blood volume, mL.
    #[arg(long, value_name = "V")]
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
}

/// The report, as printed with `--json`.
#[derive(Debug, Serialize)]
struct CountReport {
    delta_r2_per_s: f64,
    delta_r2_per_s_se: f64,
    delta_r2_df: f64,
    cells: f64,
    cells_se: f64,
    cells_ci95: [f64; 2],
    blood_ml: f64,
    per_ml: f64,
    per_ml_ci95: [f64; 2],
    per_7_5ml: f64,
    per_7_5ml_ci95: [f64; 2],
    category: &'static str,
    call: Option<&'static str>,
    indication: Option<String>,
    cutoff_per_7_5ml: Option<f64>,
    call_interval_spans_cutoff: Option<bool>,
    qc_flags: Vec<QcFlag>,
    qc_hold: bool,
    lob_cells: f64,
    lod_cells: f64,
    loq_cells: f64,
    calibration_lot: String,
    te_ms: f64,
    control: TubeSummary,
    labeled: TubeSummary,
    marker_profile: Vec<TubeSignal>,
    nonspecific_controls: Vec<TubeSignal>,
}

/// ΔR2 of an extra tube (single marker or non-specific control) against the control tube.
#[derive(Debug, Serialize)]
struct TubeSignal {
    tube: TubeKind,
    delta_r2_per_s: f64,
    delta_r2_per_s_se: f64,
    delta_r2_ci95: [f64; 2],
    replicate_cv: f64,
}

impl TubeSignal {
    fn new(tube: &TubeSummary, delta: &DeltaR2) -> TubeSignal {
        TubeSignal {
            tube: tube.kind,
            delta_r2_per_s: delta.delta_r2_per_s,
            delta_r2_per_s_se: delta.se_per_s,
            delta_r2_ci95: delta.ci95_per_s(),
            replicate_cv: tube.cv,
        }
    }
}

/// Extra tubes of a run: their summaries and fitted files.
struct ExtraTube {
    summary: TubeSummary,
    files: Vec<FittedFile>,
}

/// Runs the command.
pub fn run(args: &CountArgs) -> anyhow::Result<ExitCode> {
    if !(args.blood_ml.is_finite() && args.blood_ml > 0.0) {
        bail!(
            "--blood-ml must be a positive volume in mL, got {}",
            args.blood_ml
        );
    }
    let calibration_text = std::fs::read_to_string(&args.calibration)
        .with_context(|| format!("cannot read calibration {}", args.calibration.display()))?;
    let calibration = Calibration::from_toml(&calibration_text)
        .with_context(|| format!("calibration {}", args.calibration.display()))?;
    let indications = match &args.indications {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read indications file {}", path.display()))?;
            Indications::from_toml(&text).with_context(|| format!("{}", path.display()))?
        }
        None => Indications::from_toml(DEFAULT_INDICATIONS)
            .context("the built-in indications configuration")?,
    };
    if let Some(indication) = &args.indication {
        indications.cutoff(indication)?;
    }

    let control = read_all(&args.control)?;
    let labeled = read_all(&args.labeled)?;
    let extra = extra_tubes(args)?;
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
    let delta = DeltaR2::between(&labeled_summary, &control_summary);
    let singles: Vec<TubeSummary> = extra
        .iter()
        .filter(|t| matches!(t.summary.kind, TubeKind::Single(_)))
        .map(|t| t.summary.clone())
        .collect();
    let profile: Vec<MarkerSignal> = marker_profile(&control_summary, &singles)?;
    let marker_signals: Vec<TubeSignal> = singles
        .iter()
        .zip(&profile)
        .map(|(tube, signal)| TubeSignal::new(tube, &signal.delta))
        .collect();
    let nonspecific: Vec<TubeSignal> = extra
        .iter()
        .filter(|t| !matches!(t.summary.kind, TubeKind::Single(_)))
        .map(|t| TubeSignal::new(&t.summary, &DeltaR2::between(&t.summary, &control_summary)))
        .collect();
    let count = CountEstimate::from_delta(&delta, &calibration, args.blood_ml)?;
    let call = args
        .indication
        .as_deref()
        .map(|indication| indications.call(indication, &count))
        .transpose()?;

    let report = CountReport {
        delta_r2_per_s: delta.delta_r2_per_s,
        delta_r2_per_s_se: delta.se_per_s,
        delta_r2_df: delta.df,
        cells: count.cells,
        cells_se: count.cells_se,
        cells_ci95: count.cells_ci95,
        blood_ml: count.blood_ml,
        per_ml: count.per_ml,
        per_ml_ci95: count.per_ml_ci95,
        per_7_5ml: count.per_7_5ml,
        per_7_5ml_ci95: count.per_7_5ml_ci95,
        category: count.category.as_str(),
        call: call.as_ref().map(|c| match c.call {
            Call::Favorable => "favorable",
            Call::Unfavorable => "unfavorable",
        }),
        indication: call.as_ref().map(|c| c.indication.clone()),
        cutoff_per_7_5ml: call.as_ref().map(|c| c.cutoff_per_7_5ml),
        call_interval_spans_cutoff: call.as_ref().map(|c| c.interval_spans_cutoff),
        qc_hold: any_hold(&qc_flags),
        qc_flags,
        lob_cells: calibration.lob_cells,
        lod_cells: calibration.lod_cells,
        loq_cells: calibration.loq_cells,
        calibration_lot: calibration.lot.clone(),
        te_ms,
        control: control_summary,
        labeled: labeled_summary,
        marker_profile: marker_signals,
        nonspecific_controls: nonspecific,
    };
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

fn read_all(paths: &[PathBuf]) -> anyhow::Result<Vec<FittedFile>> {
    paths.iter().map(|p| FittedFile::read(p)).collect()
}

fn summary(kind: TubeKind, files: &[FittedFile]) -> anyhow::Result<TubeSummary> {
    let replicates: Vec<_> = files.iter().map(FittedFile::replicate).collect();
    Ok(TubeSummary::from_replicates(kind, &replicates)?)
}

/// Reads the optional single-marker and non-specific control tubes, in a fixed order.
fn extra_tubes(args: &CountArgs) -> anyhow::Result<Vec<ExtraTube>> {
    let mut tubes = Vec::new();
    for marker in Marker::ALL {
        let paths: Vec<PathBuf> = args
            .markers
            .iter()
            .filter(|(m, _)| *m == marker)
            .map(|(_, path)| path.clone())
            .collect();
        if !paths.is_empty() {
            tubes.push(extra_tube(TubeKind::Single(marker), &paths)?);
        }
    }
    if !args.cd45.is_empty() {
        tubes.push(extra_tube(TubeKind::Cd45Control, &args.cd45)?);
    }
    if !args.igg.is_empty() {
        tubes.push(extra_tube(TubeKind::IggControl, &args.igg)?);
    }
    Ok(tubes)
}

fn extra_tube(kind: TubeKind, paths: &[PathBuf]) -> anyhow::Result<ExtraTube> {
    let files = read_all(paths)?;
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
    for (tube, _) in tubes {
        flags.extend(check_replicate_cv(&tube.kind.to_string(), tube.cv, &limits));
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
        report.category.replace('_', " ")
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
        (report.call, &report.indication, report.cutoff_per_7_5ml)
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
                flag.code, flag.subject, flag.message
            )?;
        }
        if report.qc_hold {
            writeln!(out, "QC: result on HOLD, do not release")?;
        }
    }
    Ok(())
}
