//! `ferrocount backup-key FILE`: a new age key pair for the lab's backups.
//!
//! Writes the identity (the secret half) to FILE, readable by its owner only, and prints the
//! public key to put in the configuration's `[backup] recipients` (or give to `backup
//! --recipient`). Keep FILE off the appliance, e.g. in the lab's safe; without it no backup made
//! for its public key can be restored.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use appliance::backup::new_key_pair;
use appliance::backup::secrecy::ExposeSecret;
use appliance::store::Timestamp;

/// `ferrocount backup-key FILE`
#[derive(Debug, clap::Args)]
pub struct BackupKeyArgs {
    /// Where to write the new identity (must not exist; mode 0600).
    file: PathBuf,
}

/// Runs `backup-key`.
pub fn run(args: &BackupKeyArgs) -> anyhow::Result<ExitCode> {
    let (identity, recipient) = new_key_pair(&Timestamp::now());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.file)
        .with_context(|| format!("creating {}", args.file.display()))?;
    file.write_all(identity.expose_secret().as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", args.file.display()))?;
    println!("{recipient}");
    eprintln!(
        "The identity is in {} (keep it off the appliance: without it these backups cannot be restored).\n\
         Put the public key above in the configuration:\n  [backup]\n  recipients = [\"{recipient}\"]",
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}
