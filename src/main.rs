//! `ferrocount`: the appliance's command line.
//!
//! Wiring only: argument parsing lives here, and each subcommand's work lives in its own module
//! (`src/<command>.rs`) that calls into `nmr-core`, `appliance` and `web-ui`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod board;
mod fit;
mod simulate;

#[derive(Debug, Parser)]
#[command(
    name = "ferrocount",
    version,
    about = "Point-of-care micro-NMR counter of circulating tumour cells"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Talk to the NMR front end (simulated unless --spi): info, tune, nutation, cpmg.
    Board(board::BoardArgs),
    Simulate(simulate::SimulateArgs),
    Fit(fit::FitArgs),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Board(args) => board::run(args),
        Command::Simulate(args) => simulate::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Fit(args) => fit::run(&args),
    }
}
