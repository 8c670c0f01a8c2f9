//! What `ferrocount fit` is asked to read: command-line paths expanded into an ordered list of inputs.
//!
//! A path is a file, a directory (its `*.csv`, `*.txt`, `*.dps`, `*.dat` and `*.tnt` files in name
//! order, descending into subdirectories only when asked), or `-` for standard input, which is read
//! here, once, within the size limit. A path that cannot be listed becomes an input that carries
//! its error, so it is reported in its place in the output and the other inputs go on. A FIFO,
//! device or link to one is listed like a file and refused when it is read (`crate::input_file`),
//! so it too gets its own error line instead of blocking the command.
//!
//! Not here: reading the files' contents (the fitting workers do that, in parallel).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::input_file::{InputLimit, read_stdin};

/// File extensions (compared case-insensitively) taken from a directory.
pub(super) const TRAIN_EXTENSIONS: [&str; 5] = ["csv", "txt", "dps", "dat", "tnt"];

/// One thing to fit, named as the output will name it.
#[derive(Debug)]
pub(super) struct Input {
    /// The path as given (joined with the directory for files found in one), or `-`.
    pub name: String,
    /// Where its text comes from.
    pub source: Source,
}

/// Where an input's text comes from.
#[derive(Debug)]
pub(super) enum Source {
    /// A file, read by a worker.
    File(PathBuf),
    /// Text already in memory (standard input).
    Text(String),
    /// The path could not be listed or read; the message says why.
    Unreadable(String),
}

/// Expands the command-line paths, in order, into inputs.
pub(super) fn expand(paths: &[PathBuf], recursive: bool, limit: InputLimit) -> Vec<Input> {
    let mut inputs = Vec::with_capacity(paths.len());
    let mut stdin_read = false;
    for path in paths {
        if path.as_os_str() == "-" {
            let source = if stdin_read {
                Source::Unreadable("standard input was already read by an earlier `-`".into())
            } else {
                stdin_read = true;
                match read_stdin(limit) {
                    Ok(text) => Source::Text(text),
                    Err(e) => Source::Unreadable(format!("cannot read: {e}")),
                }
            };
            inputs.push(Input {
                name: "-".into(),
                source,
            });
            continue;
        }
        match fs::metadata(path) {
            Err(e) => inputs.push(unreadable(path, format!("cannot read: {e}"))),
            Ok(meta) if meta.is_dir() => {
                let before = inputs.len();
                if let Err(e) = collect_directory(path, recursive, &mut inputs) {
                    inputs.push(unreadable(path, format!("cannot list the directory: {e}")));
                } else if inputs.len() == before {
                    let depth = if recursive { " or below it" } else { "" };
                    inputs.push(unreadable(
                        path,
                        format!(
                            "no *.csv, *.txt, *.dps, *.dat or *.tnt files in this directory{depth}"
                        ),
                    ));
                }
            }
            Ok(_) => inputs.push(Input {
                name: path.display().to_string(),
                source: Source::File(path.clone()),
            }),
        }
    }
    inputs
}

fn unreadable(path: &Path, message: String) -> Input {
    Input {
        name: path.display().to_string(),
        source: Source::Unreadable(message),
    }
}

/// Appends the directory's echo-train files in name order; subdirectories are entered (in the same
/// order) only when `recursive`, and symbolic links to directories never, so a link loop cannot trap
/// the walk.
fn collect_directory(dir: &Path, recursive: bool, inputs: &mut Vec<Input>) -> io::Result<()> {
    let mut entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if recursive {
                let before = inputs.len();
                if let Err(e) = collect_directory(&path, recursive, inputs) {
                    inputs.truncate(before);
                    inputs.push(unreadable(&path, format!("cannot list the directory: {e}")));
                }
            }
        } else if has_train_extension(&path) {
            inputs.push(Input {
                name: path.display().to_string(),
                source: Source::File(path),
            });
        }
    }
    Ok(())
}

fn has_train_extension(path: &Path) -> bool {
    path.extension()
        .and_then(OsStr::to_str)
        .is_some_and(|ext| TRAIN_EXTENSIONS.iter().any(|t| ext.eq_ignore_ascii_case(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(inputs: &[Input]) -> Vec<&str> {
        inputs.iter().map(|i| i.name.as_str()).collect()
    }

    #[test]
    fn directories_give_their_train_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in ["b.csv", "a.TXT", "c.dps", "notes.md", "z.csv"] {
            fs::write(root.join(name), "").unwrap();
        }
        fs::create_dir(root.join("m")).unwrap();
        fs::write(root.join("m").join("inner.csv"), "").unwrap();
        let flat = expand(&[root.to_path_buf()], false, InputLimit::default());
        let expected: Vec<String> = ["a.TXT", "b.csv", "c.dps", "z.csv"]
            .iter()
            .map(|n| root.join(n).display().to_string())
            .collect();
        assert_eq!(names(&flat), expected);
        assert!(flat.iter().all(|i| matches!(i.source, Source::File(_))));

        let deep = expand(&[root.to_path_buf()], true, InputLimit::default());
        let mut expected_deep = expected.clone();
        expected_deep.insert(3, root.join("m").join("inner.csv").display().to_string());
        assert_eq!(names(&deep), expected_deep);
    }

    #[test]
    fn missing_paths_and_empty_directories_become_error_inputs_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let file = dir.path().join("x.csv");
        fs::write(&file, "").unwrap();
        let missing = dir.path().join("missing.csv");
        let inputs = expand(
            &[missing.clone(), empty.clone(), file.clone()],
            false,
            InputLimit::default(),
        );
        assert_eq!(inputs.len(), 3);
        assert_eq!(inputs[0].name, missing.display().to_string());
        assert!(
            matches!(&inputs[0].source, Source::Unreadable(m) if m.starts_with("cannot read")),
            "{:?}",
            inputs[0]
        );
        assert!(
            matches!(&inputs[1].source, Source::Unreadable(m) if m.contains("no *.csv")),
            "{:?}",
            inputs[1]
        );
        assert!(matches!(&inputs[2].source, Source::File(p) if *p == file));
    }
}
