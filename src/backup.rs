//! `ferrocount backup PATH`: an encrypted, consistent backup of the database, safe while the
//! appliance runs.
//!
//! `appliance::backup` takes the snapshot (`VACUUM INTO`, integrity-checked, audited) and encrypts
//! it with age for the lab's key: `--recipient` public keys, a `--passphrase-file`, or else the
//! configuration's `[backup] recipients`. An existing file is never overwritten; a failed backup
//! leaves no file. `ferrocount restore` reads it back.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use appliance::backup::{BackupKey, write_backup_file};
use appliance::config::ApplianceConfig;
use appliance::store::Actor;

use crate::data_dir::{DataDirArg, block_on};
use crate::input_file::{InputLimit, read_text};

/// Key files and passphrase files are small; anything bigger is not one.
const KEY_FILE_LIMIT: InputLimit = InputLimit::mib(1);

/// `ferrocount backup PATH`
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The backup is an age-encrypted file (age-encryption.org/v1). Without \
    --recipient, --recipients-file or --passphrase-file it is encrypted for the configuration's \
    [backup] recipients; with none configured it is refused. `ferrocount backup-key` makes a \
    key pair; `ferrocount restore` checks a backup and puts it back.\n\nExample:\n  \
    ferrocount backup /media/usb/ferrocount-2026-11-24.db.age --recipient age1…"
)]
pub struct BackupArgs {
    /// The encrypted file to write (must not exist).
    path: PathBuf,
    /// An age X25519 public key (age1…) to encrypt for; repeat for several.
    #[arg(long = "recipient", value_name = "AGE1…")]
    recipients: Vec<String>,
    /// A file of age public keys, one per line (`#` comments allowed).
    #[arg(long, value_name = "FILE")]
    recipients_file: Option<PathBuf>,
    /// Encrypt with the passphrase on the first line of FILE (at least 12 characters) instead.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["recipients", "recipients_file"])]
    passphrase_file: Option<PathBuf>,
    /// Configuration file whose [backup] recipients are used when no key is given.
    #[arg(long, value_name = "FILE", env = "FERROCOUNT_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    data_dir: DataDirArg,
}

/// Runs `backup`.
pub fn run(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let key = key(&args)?;
    let described = key.describe();
    block_on(async move {
        let store = args.data_dir.open_existing().await?;
        let written = write_backup_file(&store, &Actor::Appliance, key, &args.path).await;
        store.close().await;
        let (plain, encrypted) =
            written.with_context(|| format!("backing up to {}", args.path.display()))?;
        println!(
            "backed up to {} (database {plain} bytes, integrity ok; {encrypted} bytes encrypted for {described})",
            args.path.display()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The key from the options, else from the configuration.
fn key(args: &BackupArgs) -> anyhow::Result<BackupKey> {
    if let Some(file) = &args.passphrase_file {
        let text = read_text(file, KEY_FILE_LIMIT).context("reading the passphrase file")?;
        let first = text.lines().next().unwrap_or("");
        return Ok(BackupKey::passphrase(first)?);
    }
    let mut recipients = args.recipients.clone();
    if let Some(file) = &args.recipients_file {
        let text = read_text(file, KEY_FILE_LIMIT).context("reading the recipients file")?;
        recipients.extend(text.lines().map(str::to_owned));
    }
    if recipients.is_empty() {
        let config = ApplianceConfig::load(args.config.as_deref())?;
        recipients = config.backup.recipients;
    }
    Ok(BackupKey::recipients(&recipients)?)
}
