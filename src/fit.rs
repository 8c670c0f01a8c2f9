//! `ferrocount fit`: fit echo-train files, many at a time, and report each result or error.
//!
//! Inputs (files, directories, `-` for standard input; see [`inputs`]) are read, parsed with
//! [`nmr_core::io::read_echo_trains`] (with the instrument's parameter file beside a file, when
//! there is one: `<name>.par`, else `acqu.par`) and fitted on every available core
//! ([`ordered_map`]); the results are written in input order as they become ready, either as a
//! readable [`table`] or as one JSON object per line, one per train (a Spinsolve inversion-recovery
//! file holds one train per delay). An input that cannot be read, parsed or fitted gets its own
//! line with the error, the others go on, and the exit status is 1 when any input failed. A file
//! that is an instrument's result rather than echo data (a Prospa T2 distribution beside its data)
//! gets a `skipped` line and is not a failure. Data and parameter files alike are read through
//! `crate::input_file` (regular files only, within `--max-file-mib`), and outside text in the
//! table is printed through `crate::printable`.
//!
//! Not here: the fits themselves (`nmr_core::fit`), or storing results (the appliance).

mod inputs;
mod ordered_map;
mod table;

use std::io::{self, BufWriter, StdoutLock, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;

use clap::{Args, ValueEnum};
use nmr_core::fit::{
    AlphaChoice, BiFit, FitOptions, MonoFit, OffsetModel, SpectrumOptions, T2Spectrum, fit_bi,
    fit_mono, fit_spectrum,
};
use nmr_core::io::{ImportedTrain, ParseError, read_echo_trains};
use nmr_core::{EchoTrain, SignalKind};
use serde::Serialize;

use crate::input_file::{
    InputError, InputLimit, InputLimitArg, read_bytes_into, read_text_if_present,
};
use crate::printable::printable;
use inputs::{Input, Source};
use ordered_map::{Sink, ordered_map};
use table::Table;

/// Arguments of `ferrocount fit`.
#[derive(Debug, Args)]
#[command(
    about = "Fit T2 to echo-train files (CSV, GeoSpec, minispec, Prospa, Spinsolve, Tecmag) and report each result",
    long_about = "Fit T2 to echo-train files and report each result.\n\n\
        Each PATH is a file, a directory (its *.csv, *.txt, *.dps, *.dat and *.tnt files in name \
        order) or `-` for standard input; formats are recognised by content, and an instrument's \
        parameter file beside a file (`<name>.par`, else `acqu.par`) is read with it. A file of \
        several trains (Spinsolve T1IRT2: one per inversion delay) gives one result per train. \
        Files are fitted in parallel and reported in the order given. An input that cannot be \
        read or fitted gets a line with its error and the others go on; the exit status is then \
        1.\n\n\
        Only regular files are read (data and parameter files alike): a FIFO, a device or a link \
        to one is an error naming it. A file (or standard input) larger than --max-file-mib \
        (default 16 MiB) is refused before it is read.\n\n\
        Signal kind: each format declares what its values are (complex `re,im`; a phased `real` \
        channel; `magnitude`; a CSV `amplitude` column is a magnitude unless a value is negative, \
        then a real channel; a minispec amplitude is a real channel). --signal overrides it. \
        Offset: --offset free (default, what the appliance uses) fits a constant baseline, none \
        fixes it at zero, auto keeps it when an F-test finds it significant at p < 0.01.",
    after_help = "JSON output (--json): one object per train and line, with `file` (and `train` \
        for a file of several), `model`, `signal_kind` with `signal_kind_reason`, `converged` and \
        the fit's fields, or `file`, `model` and `error` with the reason, which names the line or \
        echo at fault (`skipped` instead of `error` for a file that holds no echo data).\n  \
        mono: t2_ms, t2_ms_se, r2_per_s, r2_per_s_se, amplitude(_se), offset(_se), chi2_red, snr, \
        noise_sd, echoes_used, iterations, phase_rad, rician_corrected, offset_model (requested, \
        used, reason, and auto's F-test), noise (sd, method, the quadrature cross-check, lag-one \
        correlation), misfit and lack_of_fit (the χ² and runs tests, the standard-error \
        widening).\n  \
        bi: preferred (mono|bi), t2_fast_ms, t2_slow_ms, fraction_fast (each with _se), \
        amplitude_fast, amplitude_slow, offset, chi2_red, snr, echoes_used and the model \
        comparison (F-test, AICc, BIC, identifiability).\n  \
        spectrum: t2_logmean_ms, t2_at_99_ms (leaving out minor isolated peaks < 1 % and short \
        peaks the noise could have made: excluded_peaks, with t2_logmean_all_ms and \
        t2_at_99_all_ms over everything), flags (signal_at_short_edge, signal_at_long_edge, \
        unsupported_short_component, minor_isolated_peak), the distribution (t2_bins_ms, \
        amplitudes), peaks, total_amplitude, offset, alpha and alpha_method (gcv, l_curve, \
        discrepancy, fixed), chi2_red, echoes_used, converged (the non-negative solve met its \
        optimality conditions).\n\
        A number that is not finite (e.g. an infinite SNR of noiseless data) or not known (e.g. a \
        standard error without a covariance) is written as null, so every line stays valid JSON.\n\n\
        Example:\n  ferrocount simulate --t2-ms 80 --seed 7 | ferrocount fit -\n  \
        ferrocount fit --json archive/ > fits.jsonl"
)]
pub struct FitArgs {
    /// The model to fit.
    #[arg(long, value_enum, default_value_t = Model::Mono)]
    model: Model,

    /// One JSON object per input and line instead of the table.
    #[arg(long)]
    json: bool,

    /// Include the residuals (data − model, per echo used) in the JSON output.
    #[arg(long, requires = "json")]
    residuals: bool,

    /// Also take files from the subdirectories of directory paths.
    #[arg(long, short = 'r')]
    recursive: bool,

    /// Fit the first echo too in the mono and bi models (by default they drop it: imperfect
    /// refocusing biases it). The spectrum always inverts every echo.
    #[arg(long)]
    keep_first_echo: bool,

    /// Read the values as this kind instead of what the file declares.
    #[arg(long, value_enum, value_name = "KIND")]
    signal: Option<SignalArg>,

    /// The offset model of the mono and bi fits.
    #[arg(long, value_enum, default_value_t = OffsetArg::Free)]
    offset: OffsetArg,

    /// Spectrum: how α is chosen: gcv, lcurve, discrepancy, or a number (fixed α).
    #[arg(long, value_name = "RULE", default_value = "gcv", value_parser = parse_alpha)]
    alpha: AlphaChoice,

    /// Spectrum: shortest T2 bin in ms [default: the echo spacing].
    #[arg(long, value_name = "MS")]
    t2_min_ms: Option<f64>,

    /// Spectrum: longest T2 bin in ms [default: twice the last echo time]. A vendor's choice is
    /// reproduced with its grid, e.g. `--t2-max-ms 500` for a GeoSpec file's `T2Max=500`.
    #[arg(long, value_name = "MS")]
    t2_max_ms: Option<f64>,

    /// Spectrum: number of log-spaced T2 bins.
    #[arg(long, value_name = "N", default_value_t = 100)]
    bins: usize,

    /// Worker threads [default: the available cores].
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<NonZeroUsize>,

    #[command(flatten)]
    limit: InputLimitArg,

    /// Files, directories, or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// The model fitted to every input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Model {
    /// A·exp(−t/T2) + C.
    Mono,
    /// Two exponentials with an offset, compared against one.
    Bi,
    /// A regularised T2 distribution.
    Spectrum,
}

impl Model {
    /// The name used on the command line and in the JSON output.
    fn name(self) -> &'static str {
        match self {
            Model::Mono => "mono",
            Model::Bi => "bi",
            Model::Spectrum => "spectrum",
        }
    }
}

/// `--signal`: the kind to read values as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SignalArg {
    /// In-phase and quadrature channels.
    Complex,
    /// A phased real channel (Gaussian noise).
    Real,
    /// Magnitudes (Rician noise).
    Magnitude,
}

impl SignalArg {
    fn kind(self) -> SignalKind {
        match self {
            SignalArg::Complex => SignalKind::Complex,
            SignalArg::Real => SignalKind::Real,
            SignalArg::Magnitude => SignalKind::Magnitude,
        }
    }
}

/// `--alpha`: a rule name or a fixed positive α.
fn parse_alpha(text: &str) -> Result<AlphaChoice, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "gcv" => Ok(AlphaChoice::Gcv),
        "lcurve" | "l-curve" => Ok(AlphaChoice::LCurve),
        "discrepancy" => Ok(AlphaChoice::Discrepancy),
        other => match other.parse::<f64>() {
            Ok(alpha) if alpha > 0.0 && alpha.is_finite() => Ok(AlphaChoice::Fixed(alpha)),
            _ => Err(format!(
                "`{text}` is neither gcv, lcurve, discrepancy nor a positive number"
            )),
        },
    }
}

/// `--offset`: the offset model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OffsetArg {
    /// Fit a constant baseline.
    Free,
    /// No baseline.
    None,
    /// Keep the baseline when an F-test finds it significant.
    Auto,
}

impl OffsetArg {
    fn model(self) -> OffsetModel {
        match self {
            OffsetArg::Free => OffsetModel::Free,
            OffsetArg::None => OffsetModel::None,
            OffsetArg::Auto => OffsetModel::Auto,
        }
    }
}

/// How every input is fitted and reported.
struct Settings {
    /// The largest file read.
    limit: InputLimit,
    model: Model,
    options: FitOptions,
    signal: Option<SignalKind>,
    spectrum: SpectrumOptions,
    /// `None` for JSON output.
    table: Option<Table>,
}

/// A fit's result, by model.
enum Report {
    Mono(MonoFit),
    Bi(BiFit),
    Spectrum(T2Spectrum, SignalKind),
}

impl Report {
    /// The kind of values fitted.
    fn kind(&self) -> SignalKind {
        match self {
            Report::Mono(fit) => fit.signal_kind,
            Report::Bi(fit) => fit.signal_kind,
            Report::Spectrum(_, kind) => *kind,
        }
    }
}

/// One input's line(s) of output, ready to write.
struct Outcome {
    bytes: Vec<u8>,
    failed: bool,
}

/// Runs `ferrocount fit`; the exit code is 1 when any input failed.
pub fn run(args: &FitArgs) -> anyhow::Result<ExitCode> {
    let limit = args.limit.limit();
    let inputs = inputs::expand(&args.paths, args.recursive, limit);
    let settings = Settings {
        limit,
        model: args.model,
        options: FitOptions {
            drop_first_echo: !args.keep_first_echo,
            residuals: args.residuals,
            offset: args.offset.model(),
        },
        signal: args.signal.map(SignalArg::kind),
        spectrum: SpectrumOptions {
            alpha: args.alpha,
            t2_min_ms: args.t2_min_ms,
            t2_max_ms: args.t2_max_ms,
            bins: args.bins,
            ..SpectrumOptions::default()
        },
        table: (!args.json).then(|| {
            let names: Vec<_> = inputs.iter().map(|i| printable(&i.name, false)).collect();
            Table::new(names.iter().map(|name| name.as_ref()))
        }),
    };
    let jobs = args.jobs.map_or_else(
        || thread::available_parallelism().map_or(1, NonZeroUsize::get),
        NonZeroUsize::get,
    );

    let mut output = Output {
        writer: BufWriter::with_capacity(1 << 16, io::stdout().lock()),
        failures: 0,
    };
    if let Some(table) = &settings.table {
        let mut header = Vec::new();
        match settings.model {
            Model::Mono => table.mono_header(&mut header),
            Model::Bi => table.bi_header(&mut header),
            Model::Spectrum => table.spectrum_header(&mut header),
        }
        output.write(&header)?;
    }
    let written = ordered_map(
        &inputs,
        jobs,
        Vec::new,
        |input, text| fit_input(input, text, &settings),
        &mut output,
    );
    match written {
        // A reader that has seen enough (`| head`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(anyhow::Error::new(e).context("cannot write to standard output")),
        Ok(()) => {}
    }
    if output.failures > 0 {
        eprintln!(
            "ferrocount fit: {} of {} input(s) could not be read or fitted",
            output.failures,
            inputs.len()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Standard output, buffered, counting failed inputs.
struct Output<'a> {
    writer: BufWriter<StdoutLock<'a>>,
    failures: usize,
}

impl Output<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }
}

impl Sink<Outcome> for Output<'_> {
    type Error = io::Error;

    fn accept(&mut self, outcome: Outcome) -> io::Result<()> {
        self.failures += usize::from(outcome.failed);
        self.write(&outcome.bytes)
    }

    fn idle(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Reads, parses, fits and formats one input; `buffer` is the worker's reusable read buffer.
fn fit_input(input: &Input, buffer: &mut Vec<u8>, settings: &Settings) -> Outcome {
    let model = settings.model.name();
    let file = input.name.as_str();
    let mut bytes = Vec::with_capacity(512);
    let trains = read(input, buffer, settings.limit).and_then(|(content, parameters)| {
        read_echo_trains(content, parameters.as_deref()).map_err(|e| match e {
            ParseError::NotAnEchoTrain { what } => Skip::NotData(what),
            other => Skip::Error(other.to_string()),
        })
    });
    let trains = match trains {
        Ok(trains) => trains,
        Err(Skip::NotData(what)) => {
            match &settings.table {
                // The table goes to a terminal: outside text is printed with its control
                // characters escaped (the JSON lines escape them as JSON does).
                Some(table) => table.note_row(
                    &printable(file, false),
                    &printable(&format!("skipped: {what}"), false),
                    &mut bytes,
                ),
                None => json_line(
                    &SkippedLine {
                        file,
                        model,
                        skipped: &what,
                    },
                    &mut bytes,
                ),
            }
            return Outcome {
                bytes,
                failed: false,
            };
        }
        Err(Skip::Error(error)) => {
            write_error(settings, file, None, &error, &mut bytes);
            return Outcome {
                bytes,
                failed: true,
            };
        }
    };
    let mut failed = false;
    for imported in &trains {
        let label = imported.label.as_deref();
        let result = as_asked(imported, settings.signal)
            .and_then(|(train, reason)| fit(&train, settings).map(|report| (report, reason)));
        let (report, reason) = match result {
            Ok(done) => done,
            Err(error) => {
                failed = true;
                write_error(settings, file, label, &error, &mut bytes);
                continue;
            }
        };
        let shown = shown_name(file, label);
        let signal = Signal {
            train: label,
            signal_kind: report.kind(),
            signal_kind_reason: &reason,
        };
        match (&report, &settings.table) {
            (Report::Mono(fit), Some(table)) => table.mono_row(&shown, fit, &mut bytes),
            (Report::Bi(fit), Some(table)) => table.bi_row(&shown, fit, &mut bytes),
            (Report::Spectrum(fit, _), Some(table)) => table.spectrum_row(&shown, fit, &mut bytes),
            (Report::Mono(fit), None) => json_line(
                &MonoLine {
                    file,
                    model,
                    signal,
                    fit,
                },
                &mut bytes,
            ),
            (Report::Bi(fit), None) => json_line(
                &BiLine {
                    file,
                    model,
                    signal,
                    preferred: fit.comparison.preferred,
                    fit,
                },
                &mut bytes,
            ),
            (Report::Spectrum(fit, _), None) => json_line(
                &SpectrumLine {
                    file,
                    model,
                    signal,
                    fit,
                },
                &mut bytes,
            ),
        }
    }
    Outcome { bytes, failed }
}

/// Why an input gave no trains.
enum Skip {
    /// An instrument's result file: not data, not a failure.
    NotData(String),
    /// Unreadable or unparsable.
    Error(String),
}

fn write_error(
    settings: &Settings,
    file: &str,
    train: Option<&str>,
    error: &str,
    out: &mut Vec<u8>,
) {
    let model = settings.model.name();
    match &settings.table {
        Some(table) => {
            table.error_row(&shown_name(file, train), &printable(error, false), out);
        }
        None => json_line(
            &ErrorLine {
                file,
                train,
                model,
                error,
            },
            out,
        ),
    }
}

/// The train read as `--signal` asks, with the reason for its kind.
fn as_asked(
    imported: &ImportedTrain,
    signal: Option<SignalKind>,
) -> Result<(EchoTrain, String), String> {
    let declared = imported.train.signal_kind();
    match signal {
        None => Ok((imported.train.clone(), imported.signal_reason.clone())),
        Some(kind) if kind == declared => Ok((
            imported.train.clone(),
            format!(
                "--signal {kind}, as the file declares ({})",
                imported.signal_reason
            ),
        )),
        Some(kind) => imported
            .train
            .as_kind(kind)
            .map(|train| {
                (
                    train,
                    format!(
                        "--signal {kind} given on the command line; the file was read as {declared} ({})",
                        imported.signal_reason
                    ),
                )
            })
            .map_err(|e| format!("--signal {kind}: {e}")),
    }
}

/// The input's bytes (a file read into the reused buffer, or text already in memory) and the
/// text of the parameter file beside a file, when there is one.
fn read<'a>(
    input: &'a Input,
    buffer: &'a mut Vec<u8>,
    limit: InputLimit,
) -> Result<(&'a [u8], Option<String>), Skip> {
    match &input.source {
        Source::Text(text) => Ok((text.as_bytes(), None)),
        Source::Unreadable(message) => Err(Skip::Error(message.clone())),
        Source::File(path) => {
            read_bytes_into(path, limit, buffer)
                .map_err(|e| Skip::Error(format!("cannot read: {e}")))?;
            let parameters = parameter_file(path, limit)
                .map_err(|e| Skip::Error(format!("cannot read the parameter file: {e}")))?;
            Ok((buffer, parameters))
        }
    }
}

/// The instrument's parameter file beside `path`: `<stem>.par`, else `acqu.par`; `None` when
/// neither is there. It is read like any input (a regular file within `limit`), so a FIFO or
/// device named `acqu.par` is an error naming it rather than a blocked or unbounded read.
fn parameter_file(path: &Path, limit: InputLimit) -> Result<Option<String>, InputError> {
    let own = path.with_extension("par");
    let shared = path.with_file_name("acqu.par");
    for candidate in [own, shared] {
        if candidate.as_path() == path {
            continue;
        }
        if let Some(text) = read_text_if_present(&candidate, limit)? {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// How a train is named in the table: the file, and the train's label for a file of several;
/// control characters escaped (the table goes to a terminal).
fn shown_name(file: &str, train: Option<&str>) -> String {
    let shown = match train {
        Some(label) => format!("{file} [{label}]"),
        None => file.to_owned(),
    };
    printable(&shown, false).into_owned()
}

/// Fits the model asked for.
fn fit(train: &EchoTrain, settings: &Settings) -> Result<Report, String> {
    match settings.model {
        Model::Mono => fit_mono(train, &settings.options)
            .map(Report::Mono)
            .map_err(|e| e.to_string()),
        Model::Bi => fit_bi(train, &settings.options)
            .map(Report::Bi)
            .map_err(|e| e.to_string()),
        Model::Spectrum => fit_spectrum(train, &settings.spectrum)
            .map(|s| Report::Spectrum(s, train.signal_kind()))
            .map_err(|e| e.to_string()),
    }
}

/// Which train of a file, and the kind its values were read as.
#[derive(Serialize)]
struct Signal<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    train: Option<&'a str>,
    signal_kind: SignalKind,
    signal_kind_reason: &'a str,
}

/// A mono-exponential result as a JSON line.
#[derive(Serialize)]
struct MonoLine<'a> {
    file: &'a str,
    model: &'static str,
    #[serde(flatten)]
    signal: Signal<'a>,
    #[serde(flatten)]
    fit: &'a MonoFit,
}

/// A bi-exponential result as a JSON line, with the verdict of the model comparison on top
/// (`converged` comes with the fit).
#[derive(Serialize)]
struct BiLine<'a> {
    file: &'a str,
    model: &'static str,
    #[serde(flatten)]
    signal: Signal<'a>,
    preferred: nmr_core::fit::Model,
    #[serde(flatten)]
    fit: &'a BiFit,
}

/// A T2 distribution as a JSON line (`converged` comes with the inversion).
#[derive(Serialize)]
struct SpectrumLine<'a> {
    file: &'a str,
    model: &'static str,
    #[serde(flatten)]
    signal: Signal<'a>,
    #[serde(flatten)]
    fit: &'a T2Spectrum,
}

/// An input that failed, as a JSON line.
#[derive(Serialize)]
struct ErrorLine<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    train: Option<&'a str>,
    model: &'static str,
    error: &'a str,
}

/// A file that holds no echo data, as a JSON line.
#[derive(Serialize)]
struct SkippedLine<'a> {
    file: &'a str,
    model: &'static str,
    skipped: &'a str,
}

/// Appends `value` as one line of JSON. Non-finite numbers become `null` (serde_json's rule).
fn json_line(value: &impl Serialize, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, value)
        .expect("these lines hold only strings, numbers and booleans, which always serialise");
    out.push(b'\n');
}
