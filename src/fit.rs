//! `ferrocount fit`: fit echo-train files, many at a time, and report each result or error.
//!
//! Inputs (files, directories, `-` for standard input; see [`inputs`]) are read, parsed with
//! [`nmr_core::io::parse_echo_train`] and fitted on every available core ([`ordered_map`]); the
//! results are written in input order as they become ready, either as a readable [`table`] or as
//! one JSON object per line. An input that cannot be read, parsed or fitted gets its own line with
//! the error, the others go on, and the exit status is 1 when any input failed.
//!
//! Not here: the fits themselves (`nmr_core::fit`), or storing results (the appliance).

mod inputs;
mod ordered_map;
mod table;

use std::io::{self, BufWriter, StdoutLock, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;

use clap::{Args, ValueEnum};
use nmr_core::EchoTrain;
use nmr_core::fit::{
    BiFit, FitOptions, MonoFit, SpectrumOptions, T2Spectrum, fit_bi, fit_mono, fit_spectrum,
};
use nmr_core::io::parse_echo_train;
use serde::Serialize;

use crate::input_file::{InputLimit, InputLimitArg, read_text_into};
use crate::printable::printable;
use inputs::{Input, Source};
use ordered_map::{Sink, ordered_map};
use table::Table;

/// Arguments of `ferrocount fit`.
#[derive(Debug, Args)]
#[command(
    about = "Fit T2 to echo-train files (CSV, GeoSpec .txt, minispec .dps) and report each result",
    long_about = "Fit T2 to echo-train files and report each result.\n\n\
        Each PATH is a file, a directory (its *.csv, *.txt and *.dps files in name order) or `-` \
        for standard input; formats are recognised by content. Files are fitted in parallel and \
        reported in the order given. An input that cannot be read or fitted gets a line with its \
        error and the others go on; the exit status is then 1.\n\n\
        Only regular files are read: a FIFO, a device or a link to one is an error naming it. \
        A file (or standard input) larger than --max-file-mib (default 16 MiB) is refused \
        before it is read.",
    after_help = "JSON output (--json): one object per input and line, with `file`, `model`, \
        `converged` and the fit's fields, or `file`, `model` and `error` with the reason, which \
        names the line or echo at fault.\n  \
        mono: t2_ms, t2_ms_se, r2_per_s, r2_per_s_se, amplitude(_se), offset(_se), chi2_red, snr, \
        noise_sd, echoes_used, iterations, phase_rad, rician_corrected.\n  \
        bi: preferred (mono|bi), t2_fast_ms, t2_slow_ms, fraction_fast (each with _se), \
        amplitude_fast, amplitude_slow, offset, chi2_red, snr, echoes_used and the model \
        comparison (F-test, AICc, BIC, identifiability).\n  \
        spectrum: t2_logmean_ms, t2_at_99_ms, the distribution (t2_bins_ms, amplitudes), peaks, \
        total_amplitude, offset, alpha, chi2_red, echoes_used, converged (the non-negative \
        solve met its optimality conditions).\n\
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

/// How every input is fitted and reported.
struct Settings {
    /// The largest file read.
    limit: InputLimit,
    model: Model,
    options: FitOptions,
    /// `None` for JSON output.
    table: Option<Table>,
}

/// A fit's result, by model.
enum Report {
    Mono(MonoFit),
    Bi(BiFit),
    Spectrum(T2Spectrum),
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
        String::new,
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

/// Reads, parses, fits and formats one input; `text` is the worker's reusable read buffer.
fn fit_input(input: &Input, text: &mut String, settings: &Settings) -> Outcome {
    let result = read(input, text, settings.limit)
        .and_then(|text| parse_echo_train(text).map_err(|e| e.to_string()))
        .and_then(|train| fit(&train, settings));
    let mut bytes = Vec::with_capacity(512);
    let (file, model) = (input.name.as_str(), settings.model.name());
    // The table goes to a terminal: outside text is printed with its control characters escaped
    // (the JSON lines escape them as JSON does).
    let shown = printable(file, false);
    match (&result, &settings.table) {
        (Ok(Report::Mono(fit)), Some(table)) => table.mono_row(&shown, fit, &mut bytes),
        (Ok(Report::Bi(fit)), Some(table)) => table.bi_row(&shown, fit, &mut bytes),
        (Ok(Report::Spectrum(fit)), Some(table)) => table.spectrum_row(&shown, fit, &mut bytes),
        (Err(message), Some(table)) => {
            table.error_row(&shown, &printable(message, false), &mut bytes)
        }
        (Ok(Report::Mono(fit)), None) => json_line(&MonoLine { file, model, fit }, &mut bytes),
        (Ok(Report::Bi(fit)), None) => json_line(
            &BiLine {
                file,
                model,
                preferred: fit.comparison.preferred,
                fit,
            },
            &mut bytes,
        ),
        (Ok(Report::Spectrum(fit)), None) => {
            json_line(&SpectrumLine { file, model, fit }, &mut bytes)
        }
        (Err(error), None) => json_line(&ErrorLine { file, model, error }, &mut bytes),
    }
    Outcome {
        bytes,
        failed: result.is_err(),
    }
}

/// The input's text: a file read into the reused buffer (a regular file within `limit` only),
/// or text already in memory.
fn read<'a>(
    input: &'a Input,
    buffer: &'a mut String,
    limit: InputLimit,
) -> Result<&'a str, String> {
    match &input.source {
        Source::Text(text) => Ok(text),
        Source::Unreadable(message) => Err(message.clone()),
        Source::File(path) => {
            read_text_into(path, limit, buffer).map_err(|e| format!("cannot read: {e}"))?;
            Ok(buffer)
        }
    }
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
        Model::Spectrum => fit_spectrum(train, &SpectrumOptions::default())
            .map(Report::Spectrum)
            .map_err(|e| e.to_string()),
    }
}

/// A mono-exponential result as a JSON line.
#[derive(Serialize)]
struct MonoLine<'a> {
    file: &'a str,
    model: &'static str,
    #[serde(flatten)]
    fit: &'a MonoFit,
}

/// A bi-exponential result as a JSON line, with the verdict of the model comparison on top
/// (`converged` comes with the fit).
#[derive(Serialize)]
struct BiLine<'a> {
    file: &'a str,
    model: &'static str,
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
    fit: &'a T2Spectrum,
}

/// An input that failed, as a JSON line.
#[derive(Serialize)]
struct ErrorLine<'a> {
    file: &'a str,
    model: &'static str,
    error: &'a str,
}

/// Appends `value` as one line of JSON. Non-finite numbers become `null` (serde_json's rule).
fn json_line(value: &impl Serialize, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, value)
        .expect("these lines hold only strings, numbers and booleans, which always serialise");
    out.push(b'\n');
}
