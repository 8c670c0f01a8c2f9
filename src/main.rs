//! `ferrocount`: the appliance's command line.
//!
//! Wiring only: argument parsing lives here, and each subcommand's work lives in its own module
//! (`src/<command>.rs`) that calls into `nmr-core`, `appliance` and `web-ui`.

mod audit;
mod backup;
mod backup_key;
mod board;
mod calibrate;
mod count;
mod data_dir;
mod demo;
mod enrol;
mod export;
mod fit;
mod fitted_file;
mod hub;
mod input_file;
mod number_arg;
mod printable;
mod restore;
mod result;
mod run;
mod serve;
mod simulate;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Build a calibration TOML from a spiked dilution series of echo-train files.
    Calibrate(calibrate::CalibrateArgs),
    /// Count CTCs from a run's control and quad-marker echo trains with a calibration.
    Count(count::CountArgs),
    /// A headless sample run on the simulated board: checks, tune, tubes, replicates, result.
    Run(Box<run::RunArgs>),
    /// Seed a demo database by really running simulated patients over months, with QC history.
    Demo(demo::DemoArgs),
    /// Export stored results (one CSV row per result version).
    Export(export::ExportArgs),
    /// Simulate a CPMG echo train from the physics and write it as CSV.
    Simulate(simulate::SimulateArgs),
    /// Fit T2 (mono, bi-exponential or a distribution) to echo-train files.
    Fit(fit::FitArgs),
    /// Results: correct a released result (a new version with a reason, signed).
    Result(result::ResultArgs),
    /// Manage users: add, set a password, disable.
    User(user::UserArgs),
    /// Check the audit trail's hash chain.
    Audit(audit::AuditArgs),
    /// Write an encrypted, consistent backup of the database to PATH (safe while the appliance
    /// runs).
    Backup(backup::BackupArgs),
    /// Make a key pair for the lab's backups: the identity to FILE, the public key printed.
    BackupKey(backup_key::BackupKeyArgs),
    /// Check an encrypted backup (key, integrity, audit chain) and put it back as the database.
    Restore(restore::RestoreArgs),
    /// Run the appliance: the engine on its board and the web face, until SIGTERM.
    Serve(serve::ServeArgs),
    /// Enrol this appliance with its hub (a one-time code for a credential kept in the data
    /// directory).
    Enrol(enrol::EnrolArgs),
    /// Run the hub for many appliances on PostgreSQL; issue enrolment codes; revoke appliances.
    Hub(hub::HubArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Board(args) => board::run(args),
        Command::Calibrate(args) => calibrate::run(&args),
        Command::Count(args) => count::run(&args),
        Command::Run(args) => run::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Export(args) => export::run(args),
        Command::Simulate(args) => simulate::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Fit(args) => fit::run(&args),
        Command::Result(args) => result::run(args),
        Command::User(args) => user::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Backup(args) => backup::run(args),
        Command::BackupKey(args) => backup_key::run(&args),
        Command::Restore(args) => restore::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Enrol(args) => enrol::run(args),
        Command::Hub(args) => hub::run(args),
    };
    match outcome {
        Ok(code) => code,
        // A reader that has seen enough (`| head`) ends the command, as for any Unix tool.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        // As Rust prints an error returned from `main`, but with the control characters of
        // outside text (file names, lines quoted from files, lot names) escaped.
        Err(e) => {
            eprintln!("Error: {}", printable::printable(&format!("{e:?}"), true));
            ExitCode::FAILURE
        }
    }
}

/// Whether an error comes from writing to a pipe whose reader has gone.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
