//! A software twin of the front-end board: it implements `SpiDevice` and speaks protocol 1.x, so the
//! driver runs exactly the same code path as on hardware.
//!
//! The board runs a loaded pulse program in virtual time ([`SimClock`]) against a virtual magnet,
//! coil, tube and receiver ([`physics`]). Faults are injected on demand ([`Faults`]): bit flips on
//! the bus, dropped responses, a board that stops answering, a reset in the middle of a sequence,
//! a small FIFO that overflows.
//!
//! Randomness comes from three separate ChaCha8 streams of the one seed: physics (receiver noise),
//! the magnet's temperature walk, and faults. Retries and injected faults therefore never change
//! the physics: a run with bus bit flips yields the same echoes as the fault-free run.
//!
//! Not for: modelling the analogue front end in detail (see `physics` for the first-order model).

pub mod clock;
pub mod physics;
mod tube_slot;

use std::collections::VecDeque;
use std::convert::Infallible;

use embedded_hal::spi::{ErrorType, Operation, SpiDevice};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Geometric, StandardNormal};

pub use clock::{ClockMode, SimClock, SimDelay};
pub use physics::{VirtualCoil, VirtualMagnet, VirtualReceiver, VirtualTube};
pub use tube_slot::{TubeSlot, TubeSlotError, VirtualTubeSlot};

use crate::frontend::protocol::{BoardStatus, Command, PROTOCOL_VERSION, Request, Response};
use crate::frontend::pulse_program::{ENTRY_LEN, MAX_ENTRIES, ProgramEntry, PulseProgram};
use crate::frontend::registers::{
    self, BoardStatusBlock, Identity, SequencerState, capability, ftw_to_frequency,
};
use physics::{Cplx, ScanSettings, evaluate_scan};

/// Faults to inject. All are off by default.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Faults {
    /// Probability that any one bit crossing the bus (either direction) is flipped.
    pub bit_flip_probability: f64,
    /// Probability that the board executes a request but its answer never appears.
    pub drop_response_probability: f64,
    /// After this many SPI transactions the board stops answering (reads 0xFF, ignores writes).
    pub dead_after_transactions: Option<u64>,
    /// The n-th START (1-based) is interrupted by a board reset halfway through the sequence.
    pub reset_during_start: Option<u32>,
    /// FIFO capacity in echoes (default 4096); a smaller value provokes overflow.
    pub fifo_capacity: Option<u16>,
}

/// Everything that defines a simulated board.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SimBoardConfig {
    /// Seed of all randomness (physics, temperature walk, faults use separate streams).
    pub seed: u64,
    /// Board serial number reported in the identity block.
    pub serial: u32,
    /// Protocol version the board speaks (change it to test the version check).
    pub protocol: (u8, u8),
    /// Firmware version (major, minor, patch) in the identity block (change it to test the
    /// host's firmware check).
    pub firmware: (u8, u8, u8),
    /// The magnet.
    pub magnet: VirtualMagnet,
    /// The coil.
    pub coil: VirtualCoil,
    /// The sample in the coil at power-on (swap it later through [`SimBoard::tube_slot`]).
    pub tube: VirtualTube,
    /// The receiver.
    pub receiver: VirtualReceiver,
    /// Injected faults.
    pub faults: Faults,
}

impl Default for SimBoardConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            serial: 0x5111_0001,
            protocol: PROTOCOL_VERSION,
            firmware: FIRMWARE_VERSION,
            magnet: VirtualMagnet::default(),
            coil: VirtualCoil::default(),
            tube: VirtualTube::default(),
            receiver: VirtualReceiver::default(),
            faults: Faults::default(),
        }
    }
}

/// The firmware version the simulated board reports by default.
pub const FIRMWARE_VERSION: (u8, u8, u8) = (0, 3, 0);

const DEFAULT_FIFO_CAPACITY: u16 = 4096;
const PHYSICS_STREAM: u64 = 1;
const TEMPERATURE_STREAM: u64 = 2;
const FAULT_STREAM: u64 = 3;

/// A sequence started and not yet collected.
#[derive(Clone, Debug)]
struct RunningSequence {
    end_ns: u64,
    start_ns: u64,
    scans: u16,
    echoes: Vec<(i32, i32)>,
    reset_at_ns: Option<u64>,
}

/// The magnet temperature: start value + linear drift + a random walk on a one-second grid,
/// interpolated linearly, generated lazily from its own RNG stream.
#[derive(Clone, Debug)]
struct TemperatureWalk {
    rng: ChaCha8Rng,
    grid_c: Vec<f64>,
}

impl TemperatureWalk {
    fn at(&mut self, magnet: &VirtualMagnet, t_s: f64) -> f64 {
        let t_s = t_s.max(0.0);
        let needed = t_s.floor() as usize + 2;
        while self.grid_c.len() < needed {
            let last = self.grid_c.last().copied().unwrap_or(0.0);
            let step: f64 = self.rng.sample(StandardNormal);
            self.grid_c.push(last + magnet.walk_c_per_sqrt_s * step);
        }
        let i = t_s.floor() as usize;
        let frac = t_s - t_s.floor();
        let walk = self.grid_c[i] * (1.0 - frac) + self.grid_c[i + 1] * frac;
        magnet.temp_c + magnet.drift_c_per_s * t_s + walk
    }
}

/// The simulated board.
#[derive(Debug)]
pub struct SimBoard {
    config: SimBoardConfig,
    clock: SimClock,
    physics_rng: ChaCha8Rng,
    fault_rng: ChaCha8Rng,
    bits_to_next_flip: u64,
    temperature: TemperatureWalk,
    tube_slot: TubeSlot,
    registers: [u32; 256],
    program: Option<Vec<ProgramEntry>>,
    fifo: VecDeque<(i32, i32)>,
    fifo_overflow: bool,
    echoes_lost: u16,
    state: SequencerState,
    running: Option<RunningSequence>,
    scans_done: u16,
    reset_seen: bool,
    starts: u32,
    /// The answer served to reads until the next request (None: reads see 0x00, "not ready").
    output: Option<Vec<u8>>,
    /// Sequence number and frame of the last executed request, replayed for a repeated number.
    replay: Option<(u8, Vec<u8>)>,
    transactions: u64,
    last_seq: u8,
}

impl SimBoard {
    /// A board fresh from power-on (its "reset seen" flag is set until the host identifies it).
    pub fn new(config: SimBoardConfig, clock: SimClock) -> Self {
        let stream = |n: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            rng.set_stream(n);
            rng
        };
        let mut board = Self {
            physics_rng: stream(PHYSICS_STREAM),
            fault_rng: stream(FAULT_STREAM),
            bits_to_next_flip: u64::MAX,
            temperature: TemperatureWalk {
                rng: stream(TEMPERATURE_STREAM),
                grid_c: vec![0.0],
            },
            tube_slot: TubeSlot::new(config.tube.clone()),
            clock,
            registers: [0; 256],
            program: None,
            fifo: VecDeque::new(),
            fifo_overflow: false,
            echoes_lost: 0,
            state: SequencerState::Idle,
            running: None,
            scans_done: 0,
            reset_seen: true,
            starts: 0,
            output: None,
            replay: None,
            transactions: 0,
            last_seq: 0,
            config,
        };
        board.power_on_state();
        board.bits_to_next_flip = board.draw_flip_gap();
        board
    }

    /// The board's configuration.
    pub fn config(&self) -> &SimBoardConfig {
        &self.config
    }

    /// The shared clock.
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    /// The holder of the tube in the coil: clone it to swap tubes while the driver owns the board.
    pub fn tube_slot(&self) -> TubeSlot {
        self.tube_slot.clone()
    }

    /// The true magnet temperature now (not the sensor reading).
    pub fn true_magnet_temp_c(&mut self) -> f64 {
        let now = self.clock.now_s();
        self.temperature.at(&self.config.magnet, now)
    }

    /// The true Larmor frequency now.
    pub fn true_larmor_hz(&mut self) -> f64 {
        let temp = self.true_magnet_temp_c();
        self.config.magnet.larmor_hz(temp)
    }

    /// Sequences started (START commands executed, replays not counted).
    pub fn sequences_started(&self) -> u32 {
        self.starts
    }

    /// SPI transactions seen so far.
    pub fn transactions(&self) -> u64 {
        self.transactions
    }

    /// The sequencer's state now (a sequence whose virtual time is over is done).
    pub fn sequencer_state(&mut self) -> SequencerState {
        self.advance();
        self.state
    }

    /// Echoes waiting in the FIFO now.
    pub fn fifo_level(&mut self) -> usize {
        self.advance();
        self.fifo.len()
    }

    fn power_on_state(&mut self) {
        self.registers = [0; 256];
        for spec in registers::ALL {
            self.registers[usize::from(spec.addr)] = spec.default;
        }
        self.program = None;
        self.fifo.clear();
        self.fifo_overflow = false;
        self.echoes_lost = 0;
        self.state = SequencerState::Idle;
        self.running = None;
        self.scans_done = 0;
        self.reset_seen = true;
        self.output = None;
        self.replay = None;
    }

    fn draw_flip_gap(&mut self) -> u64 {
        let p = self.config.faults.bit_flip_probability;
        if p <= 0.0 {
            return u64::MAX;
        }
        match Geometric::new(p.min(1.0)) {
            Ok(geometric) => geometric.sample(&mut self.fault_rng),
            Err(_) => u64::MAX,
        }
    }

    /// Flips bits in `bytes` as the noisy bus would.
    fn corrupt(&mut self, bytes: &mut [u8]) {
        let mut bits = bytes.len() as u64 * 8;
        let mut position = 0u64;
        while bits > self.bits_to_next_flip {
            position += self.bits_to_next_flip;
            bits -= self.bits_to_next_flip + 1;
            bytes[(position / 8) as usize] ^= 1 << (position % 8);
            position += 1;
            self.bits_to_next_flip = self.draw_flip_gap();
        }
        if self.bits_to_next_flip != u64::MAX {
            self.bits_to_next_flip -= bits;
        }
    }

    fn is_dead(&self) -> bool {
        self.config
            .faults
            .dead_after_transactions
            .is_some_and(|n| self.transactions > n)
    }

    /// Brings time-dependent state up to date: a due reset, a finished sequence.
    fn advance(&mut self) {
        let now = self.clock.now_ns();
        let Some(running) = &self.running else { return };
        if running.reset_at_ns.is_some_and(|at| now >= at) {
            self.power_on_state();
            return;
        }
        let tr_ns = u64::from(self.registers[usize::from(registers::TR_US.addr)]) * 1_000;
        let dummies = u64::from(self.registers[usize::from(registers::DUMMY_SCANS.addr)]);
        let elapsed_scans =
            (now.saturating_sub(running.start_ns) / tr_ns.max(1)).saturating_sub(dummies);
        self.scans_done = elapsed_scans.min(u64::from(running.scans)) as u16;
        if now >= running.end_ns {
            let Some(finished) = self.running.take() else {
                return;
            };
            let capacity = usize::from(
                self.config
                    .faults
                    .fifo_capacity
                    .unwrap_or(DEFAULT_FIFO_CAPACITY),
            );
            for echo in finished.echoes {
                if self.fifo.len() < capacity {
                    self.fifo.push_back(echo);
                } else {
                    self.fifo_overflow = true;
                    self.echoes_lost = self.echoes_lost.saturating_add(1);
                }
            }
            self.scans_done = finished.scans;
            self.state = SequencerState::Done;
        }
    }

    fn reg(&self, spec: registers::RegisterSpec) -> u32 {
        self.registers[usize::from(spec.addr)]
    }

    fn status_block(&self) -> BoardStatusBlock {
        BoardStatusBlock {
            state: self.state,
            fifo_overflow: self.fifo_overflow,
            reset_seen: self.reset_seen,
            fifo_level: self.fifo.len().min(usize::from(u16::MAX)) as u16,
            scans_done: self.scans_done,
            last_seq: self.last_seq,
            error_code: 0,
            echoes_lost: self.echoes_lost,
        }
    }

    /// Handles one request frame (the bytes written between chip-select edges).
    fn handle_frame(&mut self, bytes: &[u8]) {
        let request = match Request::decode(bytes) {
            Ok(request) => request,
            Err(_) => {
                // Chip select delimits frames, so the board knows a frame arrived even when it is
                // unreadable: it answers BadCrc and executes nothing.
                let seq = bytes.get(1).copied().unwrap_or(0);
                self.output = Some(
                    Response {
                        seq,
                        status: BoardStatus::BadCrc as u8,
                        payload: Vec::new(),
                    }
                    .encode(),
                );
                return;
            }
        };
        if let Some((seq, frame)) = &self.replay
            && *seq == request.seq
        {
            self.output = Some(frame.clone());
            return;
        }
        let (status, payload) = match self.execute(&request) {
            Ok(payload) => (BoardStatus::Ok, payload),
            Err(status) => (status, Vec::new()),
        };
        self.last_seq = request.seq;
        let frame = Response {
            seq: request.seq,
            status: status as u8,
            payload,
        }
        .encode();
        self.replay = Some((request.seq, frame.clone()));
        let dropped = self.config.faults.drop_response_probability > 0.0
            && self
                .fault_rng
                .random_bool(self.config.faults.drop_response_probability.min(1.0));
        self.output = if dropped { None } else { Some(frame) };
    }

    fn execute(&mut self, request: &Request) -> Result<Vec<u8>, BoardStatus> {
        let command = Command::from_byte(request.command).ok_or(BoardStatus::UnknownCommand)?;
        let payload = &request.payload;
        let busy = self.running.is_some();
        match command {
            Command::Identify => {
                if !payload.is_empty() {
                    return Err(BoardStatus::BadLength);
                }
                self.reset_seen = false;
                Ok(Identity {
                    protocol: self.config.protocol,
                    firmware: self.config.firmware,
                    serial: self.config.serial,
                    capabilities: capability::ONBOARD_AVERAGING
                        | capability::TEMPERATURES
                        | capability::SIMULATED,
                    fifo_capacity: self
                        .config
                        .faults
                        .fifo_capacity
                        .unwrap_or(DEFAULT_FIFO_CAPACITY),
                    max_program_entries: MAX_ENTRIES as u8,
                }
                .encode())
            }
            Command::ReadRegister => {
                let [addr] = payload.as_slice() else {
                    return Err(BoardStatus::BadLength);
                };
                let spec = registers::spec(*addr).ok_or(BoardStatus::BadRegister)?;
                let value = if spec == registers::MAGNET_TEMP_MC || spec == registers::COIL_TEMP_MC
                {
                    let mut reading =
                        self.true_magnet_temp_c() + self.config.magnet.sensor_offset_c;
                    if spec == registers::COIL_TEMP_MC {
                        reading += self.config.coil.temp_above_magnet_c;
                    }
                    ((reading * 1000.0).round() as i32) as u32
                } else {
                    self.reg(spec)
                };
                Ok(value.to_le_bytes().to_vec())
            }
            Command::WriteRegister => {
                let [addr, b0, b1, b2, b3] = payload.as_slice() else {
                    return Err(BoardStatus::BadLength);
                };
                let spec = registers::spec(*addr).ok_or(BoardStatus::BadRegister)?;
                if !spec.writable {
                    return Err(BoardStatus::ReadOnlyRegister);
                }
                if busy {
                    return Err(BoardStatus::Busy);
                }
                let value = u32::from_le_bytes([*b0, *b1, *b2, *b3]);
                let phase_cycle_ok = spec != registers::PHASE_CYCLE || matches!(value, 1 | 2 | 4);
                if value < spec.min || value > spec.max || !phase_cycle_ok {
                    return Err(BoardStatus::ValueOutOfRange);
                }
                self.registers[usize::from(spec.addr)] = value;
                Ok(Vec::new())
            }
            Command::WriteProgram => {
                if busy {
                    return Err(BoardStatus::Busy);
                }
                let (&count, body) = payload.split_first().ok_or(BoardStatus::BadLength)?;
                if body.len() != usize::from(count) * ENTRY_LEN {
                    return Err(BoardStatus::BadLength);
                }
                let entries: Vec<ProgramEntry> = body
                    .chunks_exact(ENTRY_LEN)
                    .map(|chunk| {
                        let mut raw = [0u8; ENTRY_LEN];
                        raw.copy_from_slice(chunk);
                        ProgramEntry::decode(&raw)
                    })
                    .collect();
                PulseProgram::new(entries.clone()).map_err(|_| BoardStatus::InvalidProgram)?;
                self.program = Some(entries);
                Ok(Vec::new())
            }
            Command::Start => {
                if busy {
                    return Err(BoardStatus::Busy);
                }
                self.start_sequence()?;
                Ok(Vec::new())
            }
            Command::Halt => {
                self.running = None;
                self.state = SequencerState::Idle;
                Ok(Vec::new())
            }
            Command::Status => Ok(self.status_block().encode()),
            Command::ReadFifo => {
                let [lo, hi] = payload.as_slice() else {
                    return Err(BoardStatus::BadLength);
                };
                let asked = u16::from_le_bytes([*lo, *hi]);
                if asked == 0 || asked > registers::MAX_ECHOES_PER_BURST {
                    return Err(BoardStatus::ValueOutOfRange);
                }
                let n = usize::from(asked).min(self.fifo.len());
                let mut out = Vec::with_capacity(2 + n * registers::ECHO_LEN);
                out.extend_from_slice(&(n as u16).to_le_bytes());
                for (i, q) in self.fifo.drain(..n) {
                    out.extend_from_slice(&i.to_le_bytes());
                    out.extend_from_slice(&q.to_le_bytes());
                }
                Ok(out)
            }
            Command::FlushFifo => {
                self.fifo.clear();
                self.fifo_overflow = false;
                self.echoes_lost = 0;
                Ok(Vec::new())
            }
            Command::Reset => {
                self.power_on_state();
                Ok(Vec::new())
            }
        }
    }

    /// Runs the whole sequence now (its echoes appear in the FIFO when virtual time reaches its end).
    fn start_sequence(&mut self) -> Result<(), BoardStatus> {
        let entries = self.program.clone().ok_or(BoardStatus::InvalidProgram)?;
        let scans = self.reg(registers::SCANS) as u16;
        let cycle = self.reg(registers::PHASE_CYCLE) as u16;
        if !scans.is_multiple_of(cycle) {
            return Err(BoardStatus::ValueOutOfRange);
        }
        let settings = ScanSettings {
            rf_hz: ftw_to_frequency(self.reg(registers::RF_FTW)),
            tx_amplitude: self.reg(registers::TX_AMPLITUDE) as u16,
            p90_ticks: self.reg(registers::P90_TICKS),
            p180_ticks: self.reg(registers::P180_TICKS),
            acq_delay_ticks: self.reg(registers::ACQ_DELAY_TICKS),
        };
        let tr_s = f64::from(self.reg(registers::TR_US)) * 1e-6;
        let temp_c = self.true_magnet_temp_c();
        let tube = self.tube_slot.current();
        let scan = evaluate_scan(
            &entries,
            settings,
            temp_c,
            &self.config.magnet,
            &self.config.coil,
            &tube,
        );
        if scan.duration_s > tr_s {
            return Err(BoardStatus::InvalidProgram);
        }
        self.starts += 1;
        let dummies = self.reg(registers::DUMMY_SCANS);
        let gain = 10f64.powf(f64::from(self.reg(registers::RX_GAIN_DB)) / 20.0);
        let receiver = &self.config.receiver;
        let rx_rotation = Cplx::polar(1.0, receiver.phase_rad);
        let e1 = (-tr_s / tube.t1_s).exp();
        let mut mz = 1.0;
        let mut sums = vec![(0i64, 0i64); scan.windows.len()];
        for scan_index in 0..(dummies + u32::from(scans)) {
            let averaged = scan_index >= dummies;
            let step = if averaged {
                (scan_index - dummies) % u32::from(cycle)
            } else {
                0
            };
            // The excitation phase advances by 360°/cycle; the digital receiver follows it.
            let quarter_turns = step * 4 / u32::from(cycle);
            let cycle_rotation =
                Cplx::polar(1.0, f64::from(quarter_turns) * std::f64::consts::FRAC_PI_2);
            for (k, (window, window_s)) in scan.windows.iter().zip(&scan.window_s).enumerate() {
                let signal = window
                    .mul(cycle_rotation)
                    .mul(rx_rotation)
                    .scale(mz * receiver.counts_per_unit * gain);
                let noise_sd =
                    receiver.noise_counts * gain * (receiver.reference_window_s / window_s).sqrt();
                let n_i: f64 = self.physics_rng.sample(StandardNormal);
                let n_q: f64 = self.physics_rng.sample(StandardNormal);
                let adc = |x: f64| {
                    x.round()
                        .clamp(-receiver.full_scale_counts, receiver.full_scale_counts)
                        as i64
                };
                let i = adc(signal.re + receiver.dc_offset_counts.0 * gain + noise_sd * n_i);
                let q = adc(signal.im + receiver.dc_offset_counts.1 * gain + noise_sd * n_q);
                if averaged {
                    // Undo the cycle's rotation exactly (quarter turns: swaps and sign changes).
                    let (i, q) = match quarter_turns {
                        0 => (i, q),
                        1 => (q, -i),
                        2 => (-i, -q),
                        _ => (-q, i),
                    };
                    sums[k].0 += i;
                    sums[k].1 += q;
                }
            }
            mz = 1.0 - (1.0 - mz * scan.mz_after_excitation) * e1;
        }
        let na = f64::from(scans);
        let echoes = sums
            .into_iter()
            .map(|(i, q)| {
                (
                    (i as f64 / na).round() as i32,
                    (q as f64 / na).round() as i32,
                )
            })
            .collect();
        let start_ns = self.clock.now_ns();
        let duration_ns =
            (u64::from(dummies) + u64::from(scans)) * u64::from(self.reg(registers::TR_US)) * 1_000;
        let reset_at_ns = (self.config.faults.reset_during_start == Some(self.starts))
            .then_some(start_ns + duration_ns / 2);
        self.fifo_overflow = false;
        self.echoes_lost = 0;
        self.scans_done = 0;
        self.state = SequencerState::Running;
        self.running = Some(RunningSequence {
            end_ns: start_ns + duration_ns,
            start_ns,
            scans,
            echoes,
            reset_at_ns,
        });
        Ok(())
    }
}

impl ErrorType for SimBoard {
    type Error = Infallible;
}

impl SpiDevice for SimBoard {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        self.transactions += 1;
        self.advance();
        let dead = self.is_dead();
        // What the board clocks out this transaction: its current answer, then idle bytes.
        let outgoing: &[u8] = self.output.as_deref().unwrap_or_default();
        let mut out_pos = 0usize;
        let mut incoming = Vec::new();
        let next_out = |out_pos: &mut usize| -> u8 {
            let byte = if dead {
                0xFF
            } else {
                outgoing.get(*out_pos).copied().unwrap_or(0x00)
            };
            *out_pos += 1;
            byte
        };
        for op in operations.iter_mut() {
            match op {
                Operation::Read(buf) => buf.iter_mut().for_each(|b| *b = next_out(&mut out_pos)),
                Operation::Write(buf) => incoming.extend_from_slice(buf),
                Operation::Transfer(read, write) => {
                    for k in 0..read.len().max(write.len()) {
                        let byte = next_out(&mut out_pos);
                        if let Some(slot) = read.get_mut(k) {
                            *slot = byte;
                        }
                        if let Some(w) = write.get(k) {
                            incoming.push(*w);
                        }
                    }
                }
                Operation::TransferInPlace(buf) => {
                    for slot in buf.iter_mut() {
                        incoming.push(*slot);
                        *slot = next_out(&mut out_pos);
                    }
                }
                Operation::DelayNs(ns) => self.clock.pass_ns(u64::from(*ns)),
            }
        }
        // Bit flips on the way back: corrupt what the host received.
        if self.config.faults.bit_flip_probability > 0.0 && !dead {
            for op in operations.iter_mut() {
                match op {
                    Operation::Read(buf) | Operation::TransferInPlace(buf) => self.corrupt(buf),
                    Operation::Transfer(read, _) => self.corrupt(read),
                    _ => {}
                }
            }
        }
        if dead || incoming.is_empty() {
            return Ok(());
        }
        self.corrupt(&mut incoming);
        self.output = None;
        self.handle_frame(&incoming);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(board: &mut SimBoard, frame: &[u8], read_len: usize) -> Vec<u8> {
        let mut answer = vec![0u8; read_len];
        let Ok(()) = board.write(frame);
        let Ok(()) = board.read(&mut answer);
        answer
    }

    #[test]
    fn a_repeated_sequence_number_is_answered_from_the_replay_cache_not_executed() {
        let mut board = SimBoard::new(SimBoardConfig::default(), SimClock::instant());
        let program = PulseProgram::nutation_step(10_000, 10_000).expect("valid");
        exchange(
            &mut board,
            &Request::new(1, Command::WriteProgram, program.encode()).encode(),
            7,
        );
        let start = Request::new(2, Command::Start, Vec::new()).encode();
        let first = exchange(&mut board, &start, 7);
        let again = exchange(&mut board, &start, 7);
        assert_eq!(first, again);
        assert_eq!(
            Response::decode(&first).map(|r| r.status),
            Ok(BoardStatus::Ok as u8)
        );
        assert_eq!(board.sequences_started(), 1);
        // A new number runs it again (and the board is busy now).
        let busy = exchange(
            &mut board,
            &Request::new(3, Command::Start, Vec::new()).encode(),
            7,
        );
        assert_eq!(
            Response::decode(&busy).map(|r| r.status),
            Ok(BoardStatus::Busy as u8)
        );
    }

    #[test]
    fn an_unreadable_request_is_answered_bad_crc_and_reads_are_idle_before_any_request() {
        let mut board = SimBoard::new(SimBoardConfig::default(), SimClock::instant());
        let mut idle = [0xAAu8; 4];
        let Ok(()) = board.read(&mut idle);
        assert_eq!(idle, [0; 4]);
        let mut frame = Request::new(9, Command::Status, Vec::new()).encode();
        frame[0] ^= 0x10;
        let answer = exchange(&mut board, &frame, 7);
        assert_eq!(
            Response::decode(&answer).map(|r| r.status),
            Ok(BoardStatus::BadCrc as u8)
        );
    }

    #[test]
    fn bit_flips_hit_at_the_configured_rate() {
        let config = SimBoardConfig {
            faults: Faults {
                bit_flip_probability: 1e-3,
                ..Faults::default()
            },
            ..SimBoardConfig::default()
        };
        let mut board = SimBoard::new(config, SimClock::instant());
        let mut bytes = vec![0u8; 100_000];
        board.corrupt(&mut bytes);
        let flipped: u32 = bytes.iter().map(|b| b.count_ones()).sum();
        // 800 000 bits at 1e-3: 800 expected, SD 28.
        assert!(
            (flipped as f64 - 800.0).abs() < 5.0 * 28.3,
            "{flipped} flips"
        );
    }

    #[test]
    fn instant_clock_moves_only_when_told() {
        let clock = SimClock::instant();
        assert_eq!(clock.now_ns(), 0);
        embedded_hal::delay::DelayNs::delay_ms(&mut clock.delay(), 3);
        assert_eq!(clock.now_ns(), 3_000_000);
    }
}
