//! Encrypted backups of the appliance's database, and their restore.
//!
//! **Backup.** A consistent snapshot of the database (`VACUUM INTO`, one read transaction, while
//! the appliance goes on writing) is written beside the database, checked with
//! `PRAGMA integrity_check`, opened and unlinked at once, and streamed through age encryption
//! (age-encryption.org/v1, the `age` crate) to its destination: a file (`ferrocount backup`) or
//! the admin page's download. The key is the lab's:
//! - X25519 recipients (`age1…` public keys, `[backup] recipients` in the configuration or
//!   `--recipient`): the appliance holds only the public half, so a stolen appliance cannot read
//!   its own backups; `ferrocount backup-key` makes a key pair;
//! - or a passphrase (scrypt), for a lab without key files.
//!
//! Each backup is an audit entry (`database.backup`, with where it went and for whom).
//!
//! **Restore.** [`restore`] never touches the live database until the backup has proven itself:
//! it decrypts into a new file beside the database (age authenticates every 64 KiB chunk and the
//! end of the stream, so a changed, cut or wrongly keyed file fails here), checks its integrity,
//! brings its schema up to this version's migrations (a backup from a newer version is refused),
//! and walks its whole audit chain. Only then, holding the database file's exclusive lock (which
//! fails while the appliance or any command has it open), the live database and its WAL are moved
//! aside as `ferrocount.db.before-restore-<time>` (kept, never deleted) and the restored file is
//! renamed into place. The restore is recorded in the restored database's audit trail.
//!
//! Not here: the snapshot itself ([`crate::store::db::backup_into`]) or the audit chain's rules.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use age::secrecy;
use age::secrecy::SecretString;
use age::{Decryptor, Encryptor, Identity, Recipient, x25519};
use tokio::sync::mpsc;

use crate::store::db;
use crate::store::{
    Actor, AuditEntry, AuditVerification, Store, StoreError, Timestamp, random_hex,
};

/// Shortest passphrase accepted (NIST SP 800-63B asks at least 8 for memorised secrets; a key
/// that protects every patient's data gets more).
pub const MIN_PASSPHRASE_CHARS: usize = 12;
/// Size of the chunks the encrypted stream is handed on in.
const CHUNK_BYTES: usize = 64 * 1024;

/// Why a backup or a restore could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// No key was given or configured.
    #[error(
        "no backup key: give the lab's public key (--recipient age1…, or [backup] recipients in the configuration; `ferrocount backup-key` makes one) or a passphrase"
    )]
    NoKey,
    /// A recipient, identity or passphrase that cannot be used.
    #[error("backup key: {0}")]
    BadKey(String),
    /// Decryption failed: wrong key, or a changed, cut or foreign file.
    #[error("cannot decrypt the backup {path}: {reason}")]
    Decrypt {
        /// The backup file.
        path: PathBuf,
        /// Why (wrong key, corrupted, truncated…).
        reason: String,
    },
    /// The decrypted database is not sound; nothing was replaced.
    #[error("the backup {path} does not verify, nothing was replaced: {reason}")]
    Unsound {
        /// The backup file.
        path: PathBuf,
        /// What failed (integrity check, schema, audit chain).
        reason: String,
    },
    /// The live database is open in another process.
    #[error(
        "the database {0} is open in another process (is `ferrocount serve` running?): stop it, then restore"
    )]
    InUse(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The lab's key a backup is encrypted for.
pub enum BackupKey {
    /// X25519 public keys; any one's identity decrypts.
    Recipients(Vec<x25519::Recipient>),
    /// A passphrase (scrypt).
    Passphrase(SecretString),
}

impl BackupKey {
    /// Parses `age1…` recipients (one per item; blank items and `#` comments are skipped).
    ///
    /// # Errors
    /// [`BackupError::NoKey`] when none is left, [`BackupError::BadKey`] naming a bad one.
    pub fn recipients<S: AsRef<str>>(texts: &[S]) -> Result<Self, BackupError> {
        let mut recipients = Vec::new();
        for text in texts.iter().map(|t| t.as_ref().trim()) {
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let recipient = x25519::Recipient::from_str(text).map_err(|reason| {
                BackupError::BadKey(format!(
                    "{text:?} is not an age X25519 recipient (age1…): {reason}"
                ))
            })?;
            recipients.push(recipient);
        }
        if recipients.is_empty() {
            return Err(BackupError::NoKey);
        }
        Ok(Self::Recipients(recipients))
    }

    /// A passphrase of at least [`MIN_PASSPHRASE_CHARS`] characters (a trailing newline, as a
    /// passphrase file ends, is not part of it).
    ///
    /// # Errors
    /// [`BackupError::BadKey`] for a short one.
    pub fn passphrase(text: &str) -> Result<Self, BackupError> {
        Ok(Self::Passphrase(checked_passphrase(text)?))
    }

    /// For whom, in words for the audit trail and messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Recipients(recipients) => recipients
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            Self::Passphrase(_) => "a passphrase".to_owned(),
        }
    }

    fn encryptor(&self) -> Result<Encryptor, BackupError> {
        match self {
            Self::Recipients(recipients) => {
                Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn Recipient))
                    .map_err(|e| BackupError::BadKey(e.to_string()))
            }
            Self::Passphrase(passphrase) => Ok(Encryptor::with_user_passphrase(passphrase.clone())),
        }
    }
}

/// The lab's secret a backup is decrypted with.
pub enum RestoreKey {
    /// Identities from an age identity file (`AGE-SECRET-KEY-1…` lines).
    Identities(Vec<Box<dyn Identity + Send + Sync>>),
    /// The passphrase the backup was made with.
    Passphrase(SecretString),
}

impl RestoreKey {
    /// The identities of an age identity file's text.
    ///
    /// # Errors
    /// [`BackupError::BadKey`] when the text holds none or a bad line.
    pub fn identity_file(text: &str) -> Result<Self, BackupError> {
        let identities = age::IdentityFile::from_buffer(text.as_bytes())
            .and_then(|file| {
                file.into_identities()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            })
            .map_err(|e| BackupError::BadKey(format!("not an age identity file: {e}")))?;
        if identities.is_empty() {
            return Err(BackupError::BadKey(
                "the identity file holds no key (AGE-SECRET-KEY-1…)".to_owned(),
            ));
        }
        Ok(Self::Identities(identities))
    }

    /// A passphrase (a trailing newline is not part of it).
    ///
    /// # Errors
    /// [`BackupError::BadKey`] for a short one.
    pub fn passphrase(text: &str) -> Result<Self, BackupError> {
        Ok(Self::Passphrase(checked_passphrase(text)?))
    }
}

fn checked_passphrase(text: &str) -> Result<SecretString, BackupError> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(BackupError::BadKey(format!(
            "a passphrase needs at least {MIN_PASSPHRASE_CHARS} characters"
        )));
    }
    Ok(SecretString::from(text.to_owned()))
}

/// A new X25519 key pair for the lab: the identity file's text (keep it off the appliance) and
/// its public recipient (for `[backup] recipients`).
pub fn new_key_pair(created: &Timestamp) -> (SecretString, String) {
    use age::secrecy::ExposeSecret;
    let identity = x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let text = format!(
        "# Ferrocount backup key, created {}\n# public key: {recipient}\n{}\n",
        created.to_rfc3339(),
        identity.to_string().expose_secret()
    );
    (SecretString::from(text), recipient)
}

/// A verified snapshot of the database, open and already unlinked: it disappears with the last
/// handle whatever happens next.
pub struct Snapshot {
    file: File,
    /// Its size, bytes.
    pub bytes: u64,
}

/// Snapshots the database beside it, checks the snapshot's integrity, opens and unlinks it, and
/// records the backup (`destination`, for whom) in the audit trail.
///
/// # Errors
/// The snapshot could not be written, read or verified.
pub async fn snapshot(
    store: &Store,
    actor: &Actor,
    key: &BackupKey,
    destination: &str,
) -> Result<Snapshot, BackupError> {
    let target = scratch_dir(store).join(format!(".ferrocount-snapshot-{}.db", random_hex::<8>()?));
    let taken = take_snapshot(store, &target).await;
    // Unlinked whatever happened: the open handle (if any) keeps the data until it is read.
    let removed = fs::remove_file(&target);
    let snapshot = taken?;
    if let Err(source) = removed
        && source.kind() != io::ErrorKind::NotFound
    {
        return Err(io_error(&target, source));
    }
    store
        .record_event(
            actor,
            AuditEntry::new("database.backup", "database").detail(serde_json::json!({
                "destination": destination,
                "encrypted_for": key.describe(),
                "bytes": snapshot.bytes,
            })),
        )
        .await?;
    Ok(snapshot)
}

async fn take_snapshot(store: &Store, target: &Path) -> Result<Snapshot, BackupError> {
    db::backup_into(store.pool(), target).await?;
    let integrity = db::check_file_integrity(target).await?;
    if integrity != ["ok"] {
        return Err(BackupError::Unsound {
            path: target.to_path_buf(),
            reason: format!(
                "the snapshot's integrity check says {}",
                integrity.join("; ")
            ),
        });
    }
    let file = File::open(target).map_err(|source| io_error(target, source))?;
    let bytes = file
        .metadata()
        .map_err(|source| io_error(target, source))?
        .len();
    Ok(Snapshot { file, bytes })
}

/// Encrypts `snapshot` for `key` into `output` (blocking); returns the encrypted bytes written.
///
/// # Errors
/// Reading the snapshot or writing the output failed.
pub fn encrypt(
    snapshot: Snapshot,
    key: &BackupKey,
    output: impl Write,
) -> Result<u64, BackupError> {
    let counted = Counted {
        inner: output,
        bytes: 0,
    };
    let failed = |source: io::Error| io_error(Path::new("the encrypted backup"), source);
    let mut writer = key.encryptor()?.wrap_output(counted).map_err(failed)?;
    let mut plain = BufReader::with_capacity(CHUNK_BYTES, snapshot.file);
    io::copy(&mut plain, &mut writer).map_err(failed)?;
    let mut counted = writer.finish().map_err(failed)?;
    counted.flush().map_err(failed)?;
    Ok(counted.bytes)
}

/// Encrypts `snapshot` for `key` on a blocking thread and hands the encrypted bytes on in chunks,
/// for a streaming download; a failure arrives as the last item (and so cuts the download, which
/// age then refuses to decrypt).
pub fn encrypted_chunks(snapshot: Snapshot, key: BackupKey) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let channel = ChunkSender {
            sender: sender.clone(),
            buffer: Vec::with_capacity(CHUNK_BYTES),
        };
        if let Err(error) = encrypt(snapshot, &key, channel) {
            let _ = sender.blocking_send(Err(io::Error::other(error.to_string())));
        }
    });
    receiver
}

/// Writes an encrypted backup to a new file at `path` (never over an existing one), synced to
/// disk; returns the snapshot's and the encrypted file's sizes.
///
/// # Errors
/// The file exists or cannot be written, or the snapshot failed; a partial file is removed.
pub async fn write_backup_file(
    store: &Store,
    actor: &Actor,
    key: BackupKey,
    path: &Path,
) -> Result<(u64, u64), BackupError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| io_error(path, source))?;
    let written = async {
        let snapshot = snapshot(store, actor, &key, &path.display().to_string()).await?;
        let plain = snapshot.bytes;
        let target = path.to_path_buf();
        let encrypted = tokio::task::spawn_blocking(move || {
            let bytes = encrypt(snapshot, &key, &mut file)?;
            file.sync_all()
                .map_err(|source| io_error(&target, source))?;
            Ok::<_, BackupError>(bytes)
        })
        .await
        .map_err(|e| io_error(path, io::Error::other(e.to_string())))??;
        Ok((plain, encrypted))
    }
    .await;
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// Audit rows verified in the restored database.
    pub audit_rows: u64,
    /// Where the database that was replaced now is (none when there was none).
    pub previous: Option<PathBuf>,
}

/// Restores `backup` into `data_dir` with `key` (see the module's description for the order of
/// checks); the restore is recorded as `actor`'s.
///
/// # Errors
/// Any failed check, or the live database open elsewhere; then nothing was replaced.
pub async fn restore(
    data_dir: &Path,
    backup: &Path,
    key: RestoreKey,
    actor: &Actor,
) -> Result<Restored, BackupError> {
    let live = db::database_file_in(data_dir)?;
    let candidate = data_dir.join(format!(".ferrocount-restore-{}.db", random_hex::<8>()?));
    let restored = restore_into(&live, &candidate, backup, key, actor).await;
    for leftover in sqlite_files(&candidate) {
        let _ = fs::remove_file(leftover);
    }
    restored
}

async fn restore_into(
    live: &Path,
    candidate: &Path,
    backup: &Path,
    key: RestoreKey,
    actor: &Actor,
) -> Result<Restored, BackupError> {
    // 1. Decrypt (authenticated) into a new file beside the live database.
    let (source, target) = (backup.to_path_buf(), candidate.to_path_buf());
    tokio::task::spawn_blocking(move || decrypt_file(&source, &target, &key))
        .await
        .map_err(|e| io_error(backup, io::Error::other(e.to_string())))??;
    let unsound = |reason: String| BackupError::Unsound {
        path: backup.to_path_buf(),
        reason,
    };
    // 2. Integrity, before anything opens it for writing.
    let integrity = db::check_file_integrity(candidate)
        .await
        .map_err(|e| unsound(format!("it is not a database: {e}")))?;
    if integrity != ["ok"] {
        return Err(unsound(format!(
            "integrity check: {}",
            integrity.join("; ")
        )));
    }
    // 3. Schema (migrations up to this version; a newer one is refused) and the audit chain.
    let store = Store::open_file(candidate)
        .await
        .map_err(|e| unsound(format!("its schema cannot be brought to this version: {e}")))?;
    let audit_rows = match store.verify_audit_chain().await? {
        AuditVerification::Intact { rows, .. } => rows,
        AuditVerification::Broken(chain_break) => {
            store.close().await;
            return Err(unsound(format!("its audit trail is broken: {chain_break}")));
        }
    };
    // 4. Swap, under the exclusive lock of the live file.
    let lock = if live.exists() {
        match db::lock_exclusive(live).map_err(|source| io_error(live, source))? {
            Some(lock) => Some(lock),
            None => {
                store.close().await;
                return Err(BackupError::InUse(live.to_path_buf()));
            }
        }
    } else {
        None
    };
    let previous = lock.is_some().then(|| aside_name(live, &Timestamp::now()));
    store
        .record_event(
            actor,
            AuditEntry::new("database.restore", "database").detail(serde_json::json!({
                "backup": backup.display().to_string(),
                "previous_database": previous.as_ref().map(|p| p.display().to_string()),
            })),
        )
        .await?;
    // Everything into the main file; a database and its WAL move together all the same.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .map_err(|e| unsound(format!("cannot checkpoint the restored database: {e}")))?;
    store.close().await;
    drop(store);
    if let Some(previous) = &previous {
        move_database(live, previous)?;
    }
    move_database(candidate, live)?;
    if let Some(dir) = live.parent()
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    drop(lock);
    Ok(Restored {
        audit_rows,
        previous,
    })
}

/// Decrypts `backup` into the new file `target`, synced.
fn decrypt_file(backup: &Path, target: &Path, key: &RestoreKey) -> Result<(), BackupError> {
    let decrypt_error = |reason: String| BackupError::Decrypt {
        path: backup.to_path_buf(),
        reason,
    };
    let meta = fs::metadata(backup).map_err(|source| io_error(backup, source))?;
    if !meta.is_file() {
        return Err(decrypt_error("not a regular file".to_owned()));
    }
    let input = BufReader::new(File::open(backup).map_err(|source| io_error(backup, source))?);
    let decryptor = Decryptor::new_buffered(input)
        .map_err(|e| decrypt_error(format!("not an age-encrypted backup: {e}")))?;
    let passphrase;
    let identities: Vec<&dyn Identity> = match key {
        RestoreKey::Identities(identities) => {
            if decryptor.is_scrypt() {
                return Err(decrypt_error(
                    "it was encrypted with a passphrase, not a key: give the passphrase".to_owned(),
                ));
            }
            identities
                .iter()
                .map(|i| i.as_ref() as &dyn Identity)
                .collect()
        }
        RestoreKey::Passphrase(secret) => {
            if !decryptor.is_scrypt() {
                return Err(decrypt_error(
                    "it was encrypted for a key, not a passphrase: give the identity file"
                        .to_owned(),
                ));
            }
            passphrase = age::scrypt::Identity::new(secret.clone());
            vec![&passphrase as &dyn Identity]
        }
    };
    let mut plain = decryptor
        .decrypt(identities.into_iter())
        .map_err(|e| decrypt_error(e.to_string()))?;
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
        .map_err(|source| io_error(target, source))?;
    // A changed or cut stream fails its authentication here, before the file is used.
    io::copy(&mut plain, &mut output)
        .map_err(|e| decrypt_error(format!("{e} (changed or cut?)")))?;
    output
        .sync_all()
        .map_err(|source| io_error(target, source))?;
    Ok(())
}

/// Renames a database file with its WAL and shared-memory companions (those that exist).
fn move_database(from: &Path, to: &Path) -> Result<(), BackupError> {
    for (from, to) in sqlite_files(from).into_iter().zip(sqlite_files(to)) {
        match fs::rename(&from, &to) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(io_error(&from, source)),
        }
    }
    Ok(())
}

/// The database file and its WAL and shared-memory companions.
fn sqlite_files(database: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [database.to_path_buf(), with("-wal"), with("-shm")]
}

/// `ferrocount.db.before-restore-20261124T050000Z`.
fn aside_name(live: &Path, now: &Timestamp) -> PathBuf {
    let stamp: String = now
        .to_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    let mut name = live.as_os_str().to_owned();
    name.push(format!(".before-restore-{stamp}Z"));
    PathBuf::from(name)
}

/// Where snapshots are written: beside the database (the same file system, not a RAM-backed
/// /tmp on the appliance), else the system's temporary directory.
fn scratch_dir(store: &Store) -> PathBuf {
    let options = store.pool().connect_options();
    options
        .get_filename()
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty() && dir.is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}

fn io_error(path: &Path, source: io::Error) -> BackupError {
    BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A writer that counts what passes through.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A blocking writer that hands full chunks to a channel (the download's body).
struct ChunkSender {
    sender: mpsc::Sender<io::Result<Vec<u8>>>,
    buffer: Vec<u8>,
}

impl ChunkSender {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the download was abandoned"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupKey({})", self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_parsed_and_bad_ones_named() {
        let (identity, recipient) = new_key_pair(&Timestamp::now());
        use age::secrecy::ExposeSecret;
        assert!(identity.expose_secret().contains("AGE-SECRET-KEY-1"));
        assert!(matches!(
            BackupKey::recipients(&[recipient.as_str(), "# a comment", ""]),
            Ok(BackupKey::Recipients(r)) if r.len() == 1
        ));
        assert!(matches!(
            BackupKey::recipients::<&str>(&[]),
            Err(BackupError::NoKey)
        ));
        let bad = BackupKey::recipients(&["age1notakey"]).unwrap_err();
        assert!(bad.to_string().contains("age1notakey"), "{bad}");
        assert!(BackupKey::passphrase("short\n").is_err());
        assert!(RestoreKey::identity_file(identity.expose_secret()).is_ok());
        assert!(RestoreKey::identity_file("# nothing\n").is_err());
    }

    #[test]
    fn the_aside_name_keeps_the_companions_together() {
        let now = Timestamp::parse("2026-11-24T05:06:07.123Z").expect("time");
        let aside = aside_name(Path::new("/d/ferrocount.db"), &now);
        assert_eq!(
            aside,
            Path::new("/d/ferrocount.db.before-restore-20261124T050607Z")
        );
        let [db, wal, shm] = sqlite_files(&aside);
        assert_eq!(db, aside);
        assert!(
            wal.to_string_lossy().ends_with("Z-wal") && shm.to_string_lossy().ends_with("Z-shm")
        );
    }
}
