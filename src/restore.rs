//! `ferrocount restore BACKUP`: puts an encrypted backup back as the appliance's database, after
//! it has proven itself.
//!
//! `appliance::backup::restore` decrypts it beside the database (authenticated: a wrong key, a
//! changed or a cut file fails), checks its integrity, its schema and its whole audit chain, and
//! only then, while nothing else has the database open, moves the current database aside (kept as
//! `ferrocount.db.before-restore-<time>`) and puts the restored one in its place. Stop the
//! appliance first: a restore refuses to run under it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use appliance::backup::{RestoreKey, restore};
use appliance::store::Actor;

use crate::data_dir::{DataDirArg, block_on};
use crate::input_file::{InputLimit, read_text};

/// Key files and passphrase files are small; anything bigger is not one.
const KEY_FILE_LIMIT: InputLimit = InputLimit::mib(1);

/// `ferrocount restore BACKUP`
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The encrypted backup (from `ferrocount backup` or the admin page).
    backup: PathBuf,
    /// The age identity file (AGE-SECRET-KEY-1…) of one of the backup's recipients.
    #[arg(long, value_name = "FILE", required_unless_present = "passphrase_file")]
    identity: Option<PathBuf>,
    /// The file whose first line is the passphrase the backup was made with.
    #[arg(long, value_name = "FILE", conflicts_with = "identity")]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    data_dir: DataDirArg,
}

/// Runs `restore`.
pub fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let key = match (&args.identity, &args.passphrase_file) {
        (Some(file), _) => {
            let text = read_text(file, KEY_FILE_LIMIT).context("reading the identity file")?;
            RestoreKey::identity_file(&text)?
        }
        (None, Some(file)) => {
            let text = read_text(file, KEY_FILE_LIMIT).context("reading the passphrase file")?;
            RestoreKey::passphrase(text.lines().next().unwrap_or(""))?
        }
        (None, None) => anyhow::bail!("give --identity FILE or --passphrase-file FILE"),
    };
    block_on(async move {
        let restored = restore(
            &args.data_dir.data_dir,
            &args.backup,
            key,
            &Actor::Appliance,
        )
        .await
        .with_context(|| format!("restoring {}", args.backup.display()))?;
        let previous = restored.previous.map_or_else(
            || "there was no database before".to_owned(),
            |p| format!("the previous database is kept as {}", p.display()),
        );
        println!(
            "restored {} into {} (integrity ok, audit trail intact: {} rows); {previous}",
            args.backup.display(),
            args.data_dir.database_file().display(),
            restored.audit_rows
        );
        Ok(ExitCode::SUCCESS)
    })
}
