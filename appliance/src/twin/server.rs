//! The twin itself: the simulated board — its physics and injected faults — served on a socket
//! to any number of connections, one transaction at a time, as one board on one bus.
//!
//! `ferrocount board twin --listen unix:PATH` runs [`TwinServer::serve`]; tests and benchmarks
//! may run it on a thread ([`TwinServer::spawn`]). Faults of its own, on top of the simulated
//! board's ([`crate::sim_board::Faults`]): a latency added to every bus transaction (a slow
//! link), and whatever firmware version [`SimBoardConfig::firmware`] says. Killing and restarting
//! it is the test's business (real signals on the real process).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::frontend::protocol::{Command, Request};
use crate::sim_board::{ClockMode, SimBoard, SimBoardConfig, SimClock};

use super::address::{TwinAddress, TwinListener, TwinStream};
use super::truth::{BUS_LOG_CAPACITY, TwinTruth};
use super::wire::{
    BusOperation, Channel, SimulationReply, SimulationRequest, decode_transaction,
    execute_transaction, hello_reply, parse_hello, read_frame, write_frame,
};

/// How a twin runs.
#[derive(Clone, Debug, PartialEq)]
pub struct TwinConfig {
    /// The simulated board behind the socket.
    pub board: SimBoardConfig,
    /// `None`: instant virtual time, moved only by the host's delays (sent over the side
    /// channel); `Some(f)`: virtual time is wall-clock time × f.
    pub speedup: Option<f64>,
    /// Added before every bus transaction is answered: a slow link.
    pub latency: Duration,
}

impl Default for TwinConfig {
    fn default() -> Self {
        Self {
            board: SimBoardConfig::default(),
            speedup: None,
            latency: Duration::ZERO,
        }
    }
}

/// Commands seen on the latest bus connection.
#[derive(Debug, Default)]
struct BusLog {
    connection: u64,
    commands: Vec<String>,
}

/// State shared by the connections.
#[derive(Debug)]
struct TwinState {
    board: Mutex<SimBoard>,
    clock: SimClock,
    speedup: Option<f64>,
    latency: Duration,
    bus_connections: AtomicU64,
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
    bus_log: Mutex<BusLog>,
}

impl TwinState {
    fn board(&self) -> MutexGuard<'_, SimBoard> {
        // A connection thread that panicked mid-transaction leaves a board whose state is still
        // a whole board (each field is assigned whole); keep serving it.
        self.board.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bus_log(&self) -> MutexGuard<'_, BusLog> {
        self.bus_log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, connection: u64, operations: &[BusOperation]) {
        let mut log = self.bus_log();
        if log.connection != connection {
            return;
        }
        for operation in operations {
            let written = match operation {
                BusOperation::Write(bytes)
                | BusOperation::Transfer(_, bytes)
                | BusOperation::TransferInPlace(bytes) => bytes,
                BusOperation::Read(_) | BusOperation::DelayNs(_) => continue,
            };
            if written.is_empty() || log.commands.len() >= BUS_LOG_CAPACITY {
                continue;
            }
            let name = Request::decode(written)
                .ok()
                .and_then(|request| Command::from_byte(request.command))
                .map_or("unreadable", Command::name);
            log.commands.push(name.to_owned());
        }
    }

    fn truth(&self) -> TwinTruth {
        let (bus_connections, bus_log) = {
            let log = self.bus_log();
            (log.connection, log.commands.clone())
        };
        let mut board = self.board();
        TwinTruth {
            serial: board.config().serial,
            firmware: board.config().firmware,
            sequencer: board.sequencer_state(),
            sequences_started: board.sequences_started(),
            fifo_level: board.fifo_level(),
            transactions: board.transactions(),
            virtual_time_s: self.clock.now_s(),
            true_magnet_temp_c: board.true_magnet_temp_c(),
            true_larmor_hz: board.true_larmor_hz(),
            tube: board.tube_slot().current(),
            bytes_written: self.bytes_written.load(Ordering::SeqCst),
            bytes_read: self.bytes_read.load(Ordering::SeqCst),
            bus_connections,
            bus_log,
        }
    }
}

/// A bound twin, ready to serve.
#[derive(Debug)]
pub struct TwinServer {
    listener: TwinListener,
    state: Arc<TwinState>,
}

impl TwinServer {
    /// Builds the board and binds `address` (a stale Unix socket file is replaced).
    pub fn bind(address: &TwinAddress, config: TwinConfig) -> io::Result<Self> {
        if let Some(speedup) = config.speedup
            && !(speedup.is_finite() && speedup > 0.0)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("speed-up must be a positive factor, got {speedup}"),
            ));
        }
        let clock = match config.speedup {
            None => SimClock::instant(),
            Some(speedup) => SimClock::new(ClockMode::Scaled { speedup }),
        };
        let listener = TwinListener::bind(address)?;
        let board = SimBoard::new(config.board, clock.clone());
        Ok(Self {
            listener,
            state: Arc::new(TwinState {
                board: Mutex::new(board),
                clock,
                speedup: config.speedup,
                latency: config.latency,
                bus_connections: AtomicU64::new(0),
                bytes_written: AtomicU64::new(0),
                bytes_read: AtomicU64::new(0),
                bus_log: Mutex::new(BusLog::default()),
            }),
        })
    }

    /// The address bound (with the port the system chose for `tcp:HOST:0`).
    pub fn local_address(&self) -> io::Result<TwinAddress> {
        self.listener.local_address()
    }

    /// Accepts connections until the listener fails, each on its own thread.
    pub fn serve(self) -> io::Result<()> {
        loop {
            let stream = self.listener.accept()?;
            let state = Arc::clone(&self.state);
            std::thread::Builder::new()
                .name("twin-connection".into())
                .spawn(move || serve_connection(&state, stream))?;
        }
    }

    /// Serves on a background thread (tests, benchmarks). The thread ends with the process.
    pub fn spawn(self) -> io::Result<JoinHandle<io::Result<()>>> {
        std::thread::Builder::new()
            .name("twin-listener".into())
            .spawn(move || self.serve())
    }
}

/// One connection: the hello, then its channel until the peer goes away.
fn serve_connection(state: &TwinState, mut stream: TwinStream) {
    let Ok(hello) = read_frame(&mut stream) else {
        return;
    };
    let outcome = parse_hello(&hello);
    if write_frame(&mut stream, &hello_reply(&outcome)).is_err() {
        return;
    }
    match outcome {
        Ok(Channel::Bus) => serve_bus(state, stream),
        Ok(Channel::Simulation) => serve_simulation(state, stream),
        Err(_) => {}
    }
}

fn serve_bus(state: &TwinState, mut stream: TwinStream) {
    let connection = state.bus_connections.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut log = state.bus_log();
        if connection > log.connection {
            *log = BusLog {
                connection,
                commands: Vec::new(),
            };
        }
    }
    while let Ok(body) = read_frame(&mut stream) {
        if !state.latency.is_zero() {
            std::thread::sleep(state.latency);
        }
        // A malformed transaction ends the connection: the client is not speaking this wire.
        let Ok(operations) = decode_transaction(&body) else {
            return;
        };
        state.record(connection, &operations);
        let written: usize = operations
            .iter()
            .map(|operation| match operation {
                BusOperation::Write(bytes)
                | BusOperation::Transfer(_, bytes)
                | BusOperation::TransferInPlace(bytes) => bytes.len(),
                BusOperation::Read(_) | BusOperation::DelayNs(_) => 0,
            })
            .sum();
        state
            .bytes_written
            .fetch_add(written as u64, Ordering::SeqCst);
        let reply = {
            let mut board = state.board();
            match execute_transaction(&mut *board, operations) {
                Ok(reply) => reply,
                Err(never) => match never {},
            }
        };
        state
            .bytes_read
            .fetch_add(reply.len() as u64, Ordering::SeqCst);
        if write_frame(&mut stream, &reply).is_err() {
            return;
        }
    }
}

fn serve_simulation(state: &TwinState, mut stream: TwinStream) {
    while let Ok(body) = read_frame(&mut stream) {
        let reply = match serde_json::from_slice::<SimulationRequest>(&body) {
            Err(error) => SimulationReply::Refused {
                reason: format!("unreadable request: {error}"),
            },
            Ok(SimulationRequest::Clock) => SimulationReply::Clock {
                speedup: state.speedup,
            },
            Ok(SimulationRequest::InsertTube { tube }) => {
                state.board().tube_slot().insert(tube);
                SimulationReply::Done
            }
            Ok(SimulationRequest::PassTime { ns }) => {
                state.clock.pass_ns(ns);
                SimulationReply::Done
            }
            Ok(SimulationRequest::Truth) => SimulationReply::Truth {
                truth: Box::new(state.truth()),
            },
        };
        let Ok(bytes) = serde_json::to_vec(&reply) else {
            return;
        };
        if write_frame(&mut stream, &bytes).is_err() {
            return;
        }
    }
}
