//! The board an end-to-end test drives: a board twin in its own process (the real `ferrocount
//! board twin`, started here and killed with real signals), or — hardware in the loop — a real
//! front-end board when `FERROCOUNT_TEST_SPI` names its spidev device (e.g. `/dev/spidev0.0`, on
//! a Raspberry Pi with a `--features hw-linux` build; see docs/raspberry-pi.md).
//!
//! Tests that need what only a simulation has (the truth of a virtual tube, a twin to kill)
//! ask [`TestBoard::twin`] and skip, saying so, on hardware.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use appliance::twin::{TwinAddress, TwinLinkOptions, TwinSimulation, TwinTruth};

/// Environment variable naming a real board's spidev device.
pub const HARDWARE_ENV: &str = "FERROCOUNT_TEST_SPI";

/// Longest wait for a twin to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `ferrocount board twin` process.
pub struct TwinProcess {
    child: Child,
    socket: PathBuf,
    /// Keeps the pipe open so the twin never writes into a closed stdout.
    _stdout: mpsc::Receiver<String>,
}

impl TwinProcess {
    /// Starts a twin on the Unix socket `socket` with extra `board twin` options, and waits
    /// (bounded) for its "listening" line.
    pub fn spawn(socket: &Path, options: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocount"))
            .args(["board", "twin", "--listen"])
            .arg(format!("unix:{}", socket.display()))
            .args(options)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the twin starts");
        let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
        let (lines, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        match receiver.recv_timeout(START_TIMEOUT) {
            Ok(line) if line.starts_with("board twin listening on") => {}
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the twin did not say it listens: {other:?}");
            }
        }
        Self {
            child,
            socket: socket.to_owned(),
            _stdout: receiver,
        }
    }

    /// `twin:unix:PATH`, for `--board`.
    pub fn board_flag(&self) -> String {
        format!("twin:{}", self.address())
    }

    /// The twin's address.
    pub fn address(&self) -> TwinAddress {
        TwinAddress::Unix(self.socket.clone())
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The twin's truth, over its side channel.
    pub fn truth(&self) -> TwinTruth {
        TwinSimulation::new(self.address(), TwinLinkOptions::default())
            .truth()
            .expect("the twin answers on its side channel")
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TwinProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The board of an end-to-end test.
pub enum TestBoard {
    /// A twin in its own process.
    Twin(TwinProcess),
    /// A real board's spidev device.
    Hardware(String),
}

impl TestBoard {
    /// The real board when [`HARDWARE_ENV`] is set, otherwise a twin on a socket in `dir`
    /// started with `twin_options`.
    pub fn start(dir: &Path, twin_options: &[&str]) -> Self {
        match std::env::var(HARDWARE_ENV) {
            Ok(device) if !device.is_empty() => Self::Hardware(device),
            _ => Self::Twin(TwinProcess::spawn(&dir.join("twin.sock"), twin_options)),
        }
    }

    /// The options that make a `ferrocount board …` command drive this board.
    pub fn board_args(&self) -> Vec<String> {
        match self {
            Self::Twin(twin) => vec!["--board".into(), twin.board_flag()],
            Self::Hardware(device) => vec!["--spi".into(), device.clone()],
        }
    }

    /// The twin, or `None` (with a note on standard error) on hardware.
    pub fn twin(&mut self, test: &str) -> Option<&mut TwinProcess> {
        match self {
            Self::Twin(twin) => Some(twin),
            Self::Hardware(device) => {
                eprintln!("{test}: skipped on the real board {device} (needs the twin)");
                None
            }
        }
    }
}
