//! `ferrocount backup PATH`: a consistent copy of the database, safe while the appliance runs.
//!
//! SQLite's `VACUUM INTO` reads one snapshot (WAL lets writers go on meanwhile) and writes a
//! compact copy; the copy is then opened read-only and its integrity checked. An existing file is
//! never overwritten. The backup is recorded in the audit trail.

use std::path::PathBuf;
use std::process::ExitCode;

use appliance::store::{Actor, db};

use crate::data_dir::{DataDirArg, block_on};

/// `ferrocount backup PATH`
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The file to write (must not exist).
    path: PathBuf,
    #[command(flatten)]
    data_dir: DataDirArg,
}

/// Runs `backup`.
pub fn run(args: BackupArgs) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let store = args.data_dir.open_existing().await?;
        store.backup(&Actor::Appliance, &args.path).await?;
        store.close().await;
        let integrity = db::check_file_integrity(&args.path).await?;
        let bytes = std::fs::metadata(&args.path).map(|m| m.len()).unwrap_or(0);
        if integrity == ["ok"] {
            println!(
                "backed up to {} ({bytes} bytes, integrity ok)",
                args.path.display()
            );
            Ok(ExitCode::SUCCESS)
        } else {
            println!(
                "backup written to {} but its integrity check failed: {}",
                args.path.display(),
                integrity.join("; ")
            );
            Ok(ExitCode::FAILURE)
        }
    })
}
