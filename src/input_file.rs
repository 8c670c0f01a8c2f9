//! Files named on the command line, read safely: regular files only, never more than a stated
//! size, and never blocking.
//!
//! Every file `fit`, `count` and `calibrate` read comes through here (echo trains, text or
//! binary, the instrument parameter file `fit` reads beside a data file, calibrations, series,
//! indications, standard input), and so does the file `calibrate --out` writes:
//! - A path is looked at before it is opened: a FIFO, a device, a socket or a directory (also
//!   behind a symbolic link) is an error naming it, and is never opened. The open itself uses
//!   `O_NONBLOCK` and the opened file is checked again, so a path swapped for a FIFO in between
//!   cannot block either.
//! - A file larger than the limit ([`InputLimit`], `--max-file-mib`, default
//!   [`DEFAULT_MAX_FILE_MIB`] MiB) is refused from its size before it is read, and a file that
//!   grows while it is read is cut at the limit and refused, so memory stays bounded whatever the
//!   file system says.
//! - [`read_head`] reads only the first [`HEAD_BYTES`], for checks (the echo time a file
//!   declares) that should not wait for a whole file.
//!
//! Not here: what the text means (`nmr_core::io` parses it).

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The default limit on any one input file, MiB. An echo-train file of this size holds about
/// half a million echoes; the instruments we read write tens of thousands at most.
pub const DEFAULT_MAX_FILE_MIB: u64 = 16;
/// The largest limit `--max-file-mib` accepts, MiB.
pub const MAX_FILE_MIB_CEILING: u64 = 4096;
/// How much of a file [`read_head`] reads.
pub const HEAD_BYTES: u64 = 64 * 1024;

/// The `--max-file-mib` option of the commands that read files.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct InputLimitArg {
    /// Largest input file (and standard input) read, in MiB; a bigger one is refused before it
    /// is read. Raise it for unusually long echo trains.
    #[arg(
        long = "max-file-mib",
        value_name = "MIB",
        default_value_t = DEFAULT_MAX_FILE_MIB,
        value_parser = clap::value_parser!(u64).range(1..=MAX_FILE_MIB_CEILING),
    )]
    pub max_file_mib: u64,
}

impl InputLimitArg {
    /// The limit it sets.
    pub fn limit(self) -> InputLimit {
        InputLimit {
            mib: self.max_file_mib,
        }
    }
}

/// The largest input read, from `--max-file-mib`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputLimit {
    mib: u64,
}

impl InputLimit {
    /// A limit of `mib` MiB.
    pub const fn mib(mib: u64) -> Self {
        Self { mib }
    }

    /// The limit in bytes.
    pub fn bytes(self) -> u64 {
        self.mib.saturating_mul(1024 * 1024)
    }
}

impl Default for InputLimit {
    fn default() -> Self {
        Self::mib(DEFAULT_MAX_FILE_MIB)
    }
}

/// Why an input could not be read (or an output not written).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A FIFO, device, socket or directory where a file is needed.
    #[error("{path}: {what} is {kind}, not a regular file")]
    NotRegular {
        /// The path as given.
        path: String,
        /// `it`, or `its link target` for a symbolic link.
        what: &'static str,
        /// `a FIFO`, `a character device`…
        kind: &'static str,
    },
    /// Larger than the limit.
    #[error(
        "{path}: {size} exceeds the limit of {limit_mib} MiB (--max-file-mib {limit_mib}; raise it to read bigger files)"
    )]
    TooLarge {
        /// The path as given.
        path: String,
        /// The size found, in words (`17000000 bytes`, `more than 16777216 bytes`).
        size: String,
        /// The limit, MiB.
        limit_mib: u64,
    },
    /// Not UTF-8 text.
    #[error("{path}: not text (not valid UTF-8)")]
    NotText {
        /// The path as given.
        path: String,
    },
    /// The operating system refused.
    #[error("{path}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// Why.
        source: io::Error,
    },
}

/// Reads a whole regular file as text, within `limit`.
pub fn read_text(path: &Path, limit: InputLimit) -> Result<String, InputError> {
    let mut text = String::new();
    read_text_into(path, limit, &mut text)?;
    Ok(text)
}

/// Reads a whole regular file as text into `buffer` (cleared first), within `limit`.
pub fn read_text_into(
    path: &Path,
    limit: InputLimit,
    buffer: &mut String,
) -> Result<(), InputError> {
    buffer.clear();
    let (file, size) = open_regular(path)?;
    if size > limit.bytes() {
        return Err(too_large(path, format!("{size} bytes"), limit));
    }
    read_limited(file, &name(path), limit, buffer)
}

/// Reads a whole regular file's bytes into `buffer` (cleared first), within `limit`: for formats
/// that are not text (Tecmag `.tnt`) as much as for text ones.
pub fn read_bytes_into(
    path: &Path,
    limit: InputLimit,
    buffer: &mut Vec<u8>,
) -> Result<(), InputError> {
    buffer.clear();
    let (file, size) = open_regular(path)?;
    if size > limit.bytes() {
        return Err(too_large(path, format!("{size} bytes"), limit));
    }
    let read = file
        .take(limit.bytes().saturating_add(1))
        .read_to_end(buffer)
        .map_err(|source| io_error(path, source))?;
    if read as u64 > limit.bytes() {
        buffer.clear();
        buffer.shrink_to(0);
        return Err(too_large(
            path,
            format!("more than {} bytes", limit.bytes()),
            limit,
        ));
    }
    Ok(())
}

/// Reads a regular file as text within `limit` when the path exists; `None` when nothing is
/// there. Anything else at the path (a FIFO, a device, a link to one, a file too large or not
/// text) is an error naming it, as for any other input.
pub fn read_text_if_present(path: &Path, limit: InputLimit) -> Result<Option<String>, InputError> {
    match fs::symlink_metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io_error(path, source)),
        Ok(_) => read_text(path, limit).map(Some),
    }
}

/// Reads the first [`HEAD_BYTES`] of a regular file within `limit` (a file over the limit is
/// refused here already), as text; a character cut at the end is dropped.
pub fn read_head(path: &Path, limit: InputLimit) -> Result<String, InputError> {
    let (file, size) = open_regular(path)?;
    if size > limit.bytes() {
        return Err(too_large(path, format!("{size} bytes"), limit));
    }
    let mut bytes = Vec::new();
    file.take(HEAD_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|source| io_error(path, source))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(error) => {
            let valid = error.utf8_error().valid_up_to();
            // Only a multi-byte character cut by the head's end is forgiven.
            if error.utf8_error().error_len().is_none() {
                let mut bytes = error.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).map_err(|_| InputError::NotText { path: name(path) })
            } else {
                Err(InputError::NotText { path: name(path) })
            }
        }
    }
}

/// Reads standard input as text, within `limit`.
pub fn read_stdin(limit: InputLimit) -> Result<String, InputError> {
    let mut text = String::new();
    read_limited(io::stdin().lock(), "standard input", limit, &mut text)?;
    Ok(text)
}

/// Checks, before any work, that `path` can be written as a regular file: it may not exist yet,
/// but if it does it must be a regular file (a FIFO would block the write for ever, a device
/// would swallow it).
pub fn check_output(path: &Path) -> Result<(), InputError> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(meta) => Err(not_regular(path, &meta)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_error(path, source)),
    }
}

/// Writes `bytes` to `path` as a whole or not at all: into a new file beside it, synced, then
/// renamed over it. `path` is checked with [`check_output`] first.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), InputError> {
    check_output(path)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io_error(path, io::Error::other("names no file")))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temporary = file_name.to_owned();
    temporary.push(format!(".{}.partial", std::process::id()));
    let temporary = dir.join(temporary);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, path));
    if let Err(source) = written {
        let _ = fs::remove_file(&temporary);
        return Err(io_error(path, source));
    }
    Ok(())
}

/// Opens a regular file without blocking, returning it with its size. The path is looked at
/// first (following links), so a FIFO or device is refused unopened; the opened file is looked at
/// again, so a path swapped in between is caught too.
fn open_regular(path: &Path) -> Result<(File, u64), InputError> {
    let meta = fs::metadata(path).map_err(|source| io_error(path, source))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|source| io_error(path, source))?;
    let meta = file.metadata().map_err(|source| io_error(path, source))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta));
    }
    Ok((file, meta.len()))
}

/// Reads at most `limit` bytes of text; one byte more is an error.
fn read_limited(
    reader: impl Read,
    path: &str,
    limit: InputLimit,
    buffer: &mut String,
) -> Result<(), InputError> {
    let read = reader
        .take(limit.bytes().saturating_add(1))
        .read_to_string(buffer);
    match read {
        Ok(n) if n as u64 > limit.bytes() => {
            buffer.clear();
            buffer.shrink_to(0);
            Err(InputError::TooLarge {
                path: path.to_owned(),
                size: format!("more than {} bytes", limit.bytes()),
                limit_mib: limit.mib,
            })
        }
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::InvalidData => {
            buffer.clear();
            Err(InputError::NotText {
                path: path.to_owned(),
            })
        }
        Err(source) => Err(InputError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn name(path: &Path) -> String {
    path.display().to_string()
}

fn io_error(path: &Path, source: io::Error) -> InputError {
    InputError::Io {
        path: name(path),
        source,
    }
}

fn too_large(path: &Path, size: String, limit: InputLimit) -> InputError {
    InputError::TooLarge {
        path: name(path),
        size,
        limit_mib: limit.mib,
    }
}

/// The error for a path whose (followed) metadata is not a regular file's.
fn not_regular(path: &Path, meta: &Metadata) -> InputError {
    let kind = meta.file_type();
    let kind = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    let linked = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    InputError::NotRegular {
        path: name(path),
        what: if linked { "its link target" } else { "it" },
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_links_to_them_are_refused_unread() {
        let dir = tempfile::tempdir().expect("a directory");
        let fifo = dir.path().join("train.csv");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let link = dir.path().join("zero.csv");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("a link");
        let limit = InputLimit::default();
        for (path, needle) in [
            (fifo.as_path(), "it is a FIFO"),
            (Path::new("/dev/zero"), "it is a character device"),
            (link.as_path(), "its link target is a character device"),
            (dir.path(), "it is a directory"),
        ] {
            let error = read_text(path, limit).expect_err("refused");
            assert!(error.to_string().contains(needle), "{error}");
            let error = read_head(path, limit).expect_err("refused");
            assert!(error.to_string().contains(needle), "{error}");
            let error = read_bytes_into(path, limit, &mut Vec::new()).expect_err("refused");
            assert!(error.to_string().contains(needle), "{error}");
            let error = read_text_if_present(path, limit).expect_err("there, but refused");
            assert!(error.to_string().contains(needle), "{error}");
        }
        let absent = dir.path().join("acqu.par");
        assert!(
            read_text_if_present(&absent, limit)
                .expect("absent")
                .is_none()
        );
        let error = check_output(&fifo).expect_err("a FIFO is no output");
        assert!(error.to_string().contains("FIFO"), "{error}");
    }

    #[test]
    fn files_over_the_limit_are_refused_from_their_size() {
        let dir = tempfile::tempdir().expect("a directory");
        let big = dir.path().join("big.csv");
        let file = File::create(&big).expect("a file");
        file.set_len(1024 * 1024 + 1)
            .expect("a sparse MiB and a byte");
        let error = read_text(&big, InputLimit::mib(1)).expect_err("over");
        assert!(
            error.to_string().contains("1048577 bytes")
                && error.to_string().contains("--max-file-mib"),
            "{error}"
        );
        assert!(read_head(&big, InputLimit::mib(1)).is_err());
        let mut bytes = Vec::new();
        let error = read_bytes_into(&big, InputLimit::mib(1), &mut bytes).expect_err("over");
        assert!(error.to_string().contains("1048577 bytes"), "{error}");
        assert!(read_text_if_present(&big, InputLimit::mib(1)).is_err());
        // At the limit exactly it is read (NUL bytes are valid UTF-8).
        file.set_len(1024 * 1024).expect("a MiB");
        assert_eq!(
            read_text(&big, InputLimit::mib(1))
                .expect("at the limit")
                .len(),
            1024 * 1024
        );
        assert_eq!(
            read_head(&big, InputLimit::mib(1)).expect("head").len() as u64,
            HEAD_BYTES
        );
        read_bytes_into(&big, InputLimit::mib(1), &mut bytes).expect("at the limit");
        assert_eq!(bytes.len(), 1024 * 1024);
    }

    #[test]
    fn a_stream_longer_than_the_limit_is_cut_and_refused() {
        let mut text = String::new();
        let endless = io::repeat(b'1');
        let error = read_limited(endless, "standard input", InputLimit::mib(1), &mut text)
            .expect_err("endless");
        assert!(
            error.to_string().contains("more than 1048576 bytes"),
            "{error}"
        );
        assert!(text.is_empty());
        let error = read_limited(&[0xff, 0xfe][..], "x", InputLimit::mib(1), &mut text)
            .expect_err("not UTF-8");
        assert!(matches!(error, InputError::NotText { .. }));
    }

    #[test]
    fn a_head_cut_inside_a_character_is_kept_up_to_it() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("a.csv");
        let mut bytes = vec![b'#'; HEAD_BYTES as usize - 1];
        bytes.extend("µ".as_bytes());
        fs::write(&path, &bytes).expect("written");
        let head = read_head(&path, InputLimit::default()).expect("head");
        assert_eq!(head.len() as u64, HEAD_BYTES - 1);
    }

    #[test]
    fn outputs_are_written_whole_over_regular_files_only() {
        let dir = tempfile::tempdir().expect("a directory");
        let out = dir.path().join("cal.toml");
        write_atomically(&out, b"one").expect("new");
        write_atomically(&out, b"two").expect("over");
        assert_eq!(fs::read(&out).expect("read"), b"two");
        assert_eq!(
            fs::read_dir(dir.path()).expect("list").count(),
            1,
            "no leftovers"
        );
        assert!(write_atomically(Path::new("/dev/null"), b"x").is_err());
    }
}
