//! `ferrocount`: the appliance's command line.
//!
//! Wiring only: argument parsing lives here, and each subcommand's work lives in its own module
//! (`src/<command>.rs`) that calls into `nmr-core`, `appliance` and `web-ui`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod backup;
mod data_dir;
mod user;

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
    /// Manage users: add, set a password, disable.
    User(user::UserArgs),
    /// Check the audit trail's hash chain.
    Audit(audit::AuditArgs),
    /// Write a consistent copy of the database to PATH (safe while the appliance runs).
    Backup(backup::BackupArgs),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::User(args) => user::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Backup(args) => backup::run(args),
    }
}
