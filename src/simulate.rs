//! `ferrocount simulate`: a CPMG echo train from the physics, written as Ferrocount CSV.
//!
//! The train comes from [`nmr_core::CpmgSimulation`] (seeded, so a seed names a train exactly) and
//! is written by [`nmr_core::io::write_csv`], so `ferrocount simulate … | ferrocount fit -` is a
//! complete round trip through the same code the appliance uses.
//!
//! The amplitude is fixed at 1, so `--snr` sets the noise SD per receiver channel to `1/SNR`.
//!
//! Not here: the simulated front-end board (that belongs to `appliance`), or any fitting.

use std::io::{self, Write};

use anyhow::{Context, bail};
use clap::Args;
use nmr_core::io::write_csv;
use nmr_core::{Component, CpmgSimulation};

/// Longest train the command will write (a guard against a typo filling the disk).
const MAX_ECHOES: u64 = 10_000_000;

/// Arguments of `ferrocount simulate`.
#[derive(Debug, Args)]
#[command(
    about = "Simulate a CPMG echo train and write it to standard output as Ferrocount CSV",
    long_about = "Simulate a CPMG echo train and write it to standard output as Ferrocount CSV.\n\n\
        Echo k (k = 1 … ECHOES) is acquired at k·TE and carries Σ Aⱼ·exp(−t/T2ⱼ) + OFFSET, seen \
        through a receiver of phase PHASE_DEG, plus independent Gaussian noise in each channel. \
        The total amplitude is 1, so SNR = amplitude / noise SD = 1 / noise SD per channel. \
        The same seed always gives the same train.",
    after_help = "Example:\n  ferrocount simulate --t2-ms 80 --echoes 1000 --te-ms 0.5 --snr 100 --seed 7 > train.csv\n  \
        ferrocount simulate --t2-ms 80 --bi 10:0.3 --magnitude | ferrocount fit -"
)]
pub struct SimulateArgs {
    /// T2 of the (slow) component, in milliseconds.
    #[arg(long, value_name = "MS", allow_negative_numbers = true, value_parser = positive_number)]
    t2_ms: f64,

    /// Number of echoes.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=MAX_ECHOES))]
    echoes: u64,

    /// Echo spacing TE, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0.5, allow_negative_numbers = true, value_parser = positive_number)]
    te_ms: f64,

    /// Signal-to-noise ratio: amplitude (1) over the noise SD per receiver channel.
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true, value_parser = positive_number)]
    snr: f64,

    /// Seed of the noise generator (ChaCha8).
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Constant baseline added to the signal, in signal units (amplitude 1).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = finite_number)]
    offset: f64,

    /// Write magnitudes (Rician noise) instead of the complex re,im channels.
    #[arg(long)]
    magnitude: bool,

    /// Add a fast component: FRACTION of the amplitude relaxes with T2FAST_MS, the rest with
    /// --t2-ms. FRACTION must lie strictly between 0 and 1, and T2FAST_MS below --t2-ms.
    #[arg(long, value_name = "T2FAST_MS:FRACTION", value_parser = parse_fast_component)]
    bi: Option<FastComponent>,

    /// Receiver phase in degrees (the signal is rotated by it before noise is added).
    #[arg(
        long,
        value_name = "DEGREES",
        default_value_t = 0.0,
        allow_negative_numbers = true,
        value_parser = finite_number
    )]
    phase_deg: f64,

    /// Refocusing flip angle in degrees (180 = perfect); below 180 the echoes carry stimulated
    /// echoes (extended phase graph), as from a coil with imperfect B1.
    #[arg(long, value_name = "DEGREES", default_value_t = 180.0, value_parser = refocusing_degrees)]
    refocusing_deg: f64,

    /// T1 of the sample in ms (stimulated echoes are stored along z; matters only below 180°).
    #[arg(long, value_name = "MS", default_value_t = 1000.0, allow_negative_numbers = true, value_parser = positive_number)]
    t1_ms: f64,
}

/// A refocusing angle in (0°, 180°].
fn refocusing_degrees(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if value > 0.0 && value <= 180.0 {
        Ok(value)
    } else {
        Err(format!("{value}° is not a refocusing angle in (0, 180]"))
    }
}

/// The fast component asked for with `--bi T2FAST_MS:FRACTION`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FastComponent {
    /// T2 of the fast component, in milliseconds.
    pub t2_ms: f64,
    /// Its share of the total amplitude, in (0, 1).
    pub fraction: f64,
}

/// Runs `ferrocount simulate`: builds the simulation, draws the train and writes it to stdout.
pub fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    let simulation = simulation(args)?;
    let train = simulation.simulate(args.seed);
    let csv = write_csv(&train);
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(csv.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A reader that has seen enough (`| head`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write the train to standard output"),
    }
}

/// The simulation the arguments describe, with amplitude 1 split between the components.
fn simulation(args: &SimulateArgs) -> anyhow::Result<CpmgSimulation> {
    let slow_t2_s = args.t2_ms * 1e-3;
    let components = match args.bi {
        None => vec![Component {
            amplitude: 1.0,
            t2_s: slow_t2_s,
        }],
        Some(fast) => {
            if fast.t2_ms >= args.t2_ms {
                bail!(
                    "--bi: the fast component's T2 ({} ms) must be shorter than --t2-ms ({} ms)",
                    fast.t2_ms,
                    args.t2_ms
                );
            }
            vec![
                Component {
                    amplitude: fast.fraction,
                    t2_s: fast.t2_ms * 1e-3,
                },
                Component {
                    amplitude: 1.0 - fast.fraction,
                    t2_s: slow_t2_s,
                },
            ]
        }
    };
    let echoes = usize::try_from(args.echoes).context("--echoes does not fit in memory here")?;
    Ok(CpmgSimulation {
        components,
        offset: args.offset,
        noise_sd: 1.0 / args.snr,
        phase_rad: args.phase_deg.to_radians(),
        te_s: args.te_ms * 1e-3,
        echoes,
        magnitude: args.magnitude,
        refocusing: nmr_core::Refocusing {
            angle_deg: args.refocusing_deg,
            t1_s: args.t1_ms * 1e-3,
        },
    })
}

/// A finite number.
fn finite_number(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("`{text}` is not a finite number"))
    }
}

/// A finite number greater than zero.
fn positive_number(text: &str) -> Result<f64, String> {
    let value = finite_number(text)?;
    if value > 0.0 {
        Ok(value)
    } else {
        Err(format!("`{text}` must be greater than zero"))
    }
}

/// `T2FAST_MS:FRACTION`, e.g. `10:0.3`.
fn parse_fast_component(text: &str) -> Result<FastComponent, String> {
    let (t2, fraction) = text.split_once(':').ok_or_else(|| {
        format!("`{text}` is not T2FAST_MS:FRACTION (e.g. `10:0.3` for 30 % with T2 = 10 ms)")
    })?;
    let t2_ms = positive_number(t2).map_err(|e| format!("T2FAST_MS: {e}"))?;
    let fraction = finite_number(fraction).map_err(|e| format!("FRACTION: {e}"))?;
    if fraction <= 0.0 || fraction >= 1.0 {
        return Err(format!(
            "FRACTION `{fraction}` must lie strictly between 0 and 1"
        ));
    }
    Ok(FastComponent { t2_ms, fraction })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn parse(line: &str) -> Result<SimulateArgs, clap::Error> {
        Harness::try_parse_from(std::iter::once("simulate").chain(line.split_whitespace()))
            .map(|h| h.args)
    }

    #[test]
    fn bi_splits_the_unit_amplitude_between_fast_and_slow() {
        let args = parse("--t2-ms 80 --bi 10:0.3 --snr 50 --phase-deg -90 --offset -0.01").unwrap();
        let sim = simulation(&args).unwrap();
        assert_eq!(
            sim.components,
            vec![
                Component {
                    amplitude: 0.3,
                    t2_s: 0.010
                },
                Component {
                    amplitude: 0.7,
                    t2_s: 0.080
                },
            ]
        );
        assert_eq!(sim.noise_sd, 0.02);
        assert_eq!(sim.offset, -0.01);
        assert!((sim.phase_rad + std::f64::consts::FRAC_PI_2).abs() < 1e-15);
        assert_eq!((sim.te_s, sim.echoes), (0.0005, 1000));
    }

    #[test]
    fn bad_arguments_are_refused_with_the_reason() {
        let cases = [
            ("--t2-ms 0", "greater than zero"),
            ("--t2-ms -5", "greater than zero"),
            ("--t2-ms abc", "not a number"),
            ("--t2-ms inf", "not a finite"),
            ("--t2-ms 80 --te-ms 0", "greater than zero"),
            ("--t2-ms 80 --snr NaN", "not a finite"),
            ("--t2-ms 80 --echoes 0", "echoes"),
            ("--t2-ms 80 --echoes -3", "echoes"),
            ("--t2-ms 80 --bi 10", "T2FAST_MS:FRACTION"),
            ("--t2-ms 80 --bi 10:1", "strictly between 0 and 1"),
            ("--t2-ms 80 --bi 10:0", "strictly between 0 and 1"),
            ("--t2-ms 80 --bi=-3:0.5", "T2FAST_MS"),
        ];
        for (line, reason) in cases {
            let e = parse(line).expect_err(line).to_string();
            assert!(e.contains(reason), "{line}: {e}");
        }
        let args = parse("--t2-ms 80 --bi 100:0.5").unwrap();
        let e = simulation(&args).unwrap_err().to_string();
        assert!(e.contains("shorter than --t2-ms"), "{e}");
    }
}
