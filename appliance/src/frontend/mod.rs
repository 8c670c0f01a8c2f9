//! Driver for the Ferrocount NMR front-end board over SPI (protocol 1.x, see
//! `docs/frontend-protocol.md`).
//!
//! The board's sequencer keeps all pulse timing; the host programs it, starts it and reads averaged
//! echoes back. This driver is generic over the [embedded-hal] 1.0 traits, so the same code runs
//! against the real board (Linux spidev, see [`crate::linux`]), the simulated board
//! ([`crate::sim_board`]) and `embedded-hal-mock` in tests.
//!
//! This driver allows you to:
//! - Connect and check the board's identity and protocol version: [`Frontend::connect()`].
//! - Set the RF frequency (32-bit DDS tuning word, 100 MHz clock, 0.023 Hz steps):
//!   [`Frontend::set_frequency_hz()`].
//! - Set transmit amplitude, 90°/180° pulse lengths, receiver gain, dead time, scans (NA),
//!   repetition time, dummy scans and the phase cycle.
//! - Read magnet and coil temperatures: [`Frontend::magnet_temp_c()`], [`Frontend::coil_temp_c()`].
//! - Load a pulse program ([`PulseProgram`]), start it, wait for it
//!   ([`Frontend::wait_for_sequence()`]) and read the echo FIFO in bursts ([`Frontend::read_echoes()`]).
//! - Halt, flush stale echoes, reset (soft, or through a reset line).
//! - Hand the bus and pins back: [`Frontend::destroy()`].
//!
//! Every value is range-checked before any I/O; a value that would need rounding (a duration that is
//! not whole 10 ns ticks) is refused, not rounded.
//!
//! ## Link robustness
//!
//! Every frame carries a CRC-16/CCITT and a sequence number. A corrupted response is re-read (the
//! board keeps serving it); a request the board saw corrupted is answered `BadCrc` and resent; a
//! missing answer is polled for `response_polls` times, `poll_interval_us` apart, then the request is
//! resent with the *same* sequence number, which the board answers from its replay cache instead of
//! executing the command twice. After `max_attempts` sends the command fails with
//! [`Error::Timeout`] or [`Error::Crc`]. With the default [`LinkTiming`] a board that stops
//! answering is reported after at most 4 × 20 polls × 250 µs = 20 ms of waiting per command
//! ([`LinkTiming::worst_case_wait_us`]); the driver counts polls and delays, it needs no clock.
//!
//! ## First contact
//!
//! A new driver does not know the sequence number of the board's replay cache: the board may
//! still hold the last request of a previous host (another process, one that was killed), and
//! when that number equals the new driver's first one the board would answer the new command
//! from the cache without executing it — a HALT that does not halt, an IDENTIFY answered with a
//! status block. So before its first command a driver sends one STATUS whose answer it does not
//! use, accepting whatever the board answers with that number (read whole, however long, and
//! CRC-checked). Afterwards the cache holds the driver's own number, and every following request
//! carries a new one. Every caller of every command gets this; none has to remember it.
//!
//! ## Usage
//!
//! ```no_run
//! # #[cfg(feature = "hw-linux")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use appliance::frontend::{CpmgTiming, Frontend, PhaseCycle, PulseProgram};
//! use appliance::linux::open_spidev;
//! use linux_embedded_hal::Delay;
//!
//! let spi = open_spidev("/dev/spidev0.0", 4_000_000)?;
//! let mut frontend = Frontend::new(spi, Delay);
//! let identity = frontend.connect().map_err(|e| e.to_string())?;
//! println!("board {} firmware {:?}", identity.serial, identity.firmware);
//! frontend.set_frequency_hz(20_862_730.0).map_err(|e| e.to_string())?;
//! frontend.set_scans(8).map_err(|e| e.to_string())?;
//! frontend.set_phase_cycle(PhaseCycle::Two).map_err(|e| e.to_string())?;
//! let timing = CpmgTiming { te_ns: 1_000_000, echoes: 1000, p90_ns: 10_000, p180_ns: 20_000, window_ns: 20_000 };
//! frontend.load_program(&PulseProgram::cpmg(&timing)?).map_err(|e| e.to_string())?;
//! frontend.start().map_err(|e| e.to_string())?;
//! frontend.wait_for_sequence(8 * 3_000_000, |_| Ok(())).map_err(|e| e.to_string())?;
//! let echoes = frontend.read_echoes(1000).map_err(|e| e.to_string())?;
//! println!("first echo I={} Q={}", echoes[0].i, echoes[0].q);
//! let (_spi, _data_ready, _reset, _delay) = frontend.destroy();
//! # Ok(()) }
//! # #[cfg(not(feature = "hw-linux"))] fn main() {}
//! ```
//!
//! [embedded-hal]: https://docs.rs/embedded-hal/1

mod error;
pub mod protocol;
pub mod pulse_program;
pub mod registers;

use core::convert::Infallible;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

pub use error::Error;
use protocol::{BoardStatus, Command, FrameError, PROTOCOL_VERSION, Request, Response};
pub use pulse_program::{CpmgTiming, ProgramEntry, ProgramError, PulseProgram};
use registers::RegisterSpec;
pub use registers::{BoardStatusBlock, Identity, SequencerState};

/// Stand-in for an absent data-ready or reset line.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPin;

impl digital::ErrorType for NoPin {
    type Error = Infallible;
}
impl InputPin for NoPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(false)
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(true)
    }
}
impl OutputPin for NoPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Retry and polling budget of the link. The worst-case wait per command is
/// `max_attempts × response_polls × poll_interval_us`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LinkTiming {
    /// Request sends per command (first send + resends).
    pub max_attempts: u32,
    /// Response polls per send before resending.
    pub response_polls: u32,
    /// Delay between polls that found no answer.
    pub poll_interval_us: u32,
    /// Immediate re-reads of a corrupted response before resending the request.
    pub corrupt_rereads: u32,
    /// Echoes per FIFO read (1 ..= 1024). Smaller bursts survive a noisy bus: at a bit-error rate
    /// p a burst of n echoes (8n + 9 bytes) arrives intact with probability ≈ exp(−p·(64n + 72)),
    /// 66 % for 64 echoes at p = 1e-4 but 0.15 % for 1024.
    pub fifo_burst_echoes: u16,
}

impl Default for LinkTiming {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            response_polls: 20,
            poll_interval_us: 250,
            corrupt_rereads: 3,
            fifo_burst_echoes: 64,
        }
    }
}

impl LinkTiming {
    /// Longest a command can wait for answers before failing, in microseconds.
    pub fn worst_case_wait_us(&self) -> u64 {
        u64::from(self.max_attempts)
            * u64::from(self.response_polls)
            * u64::from(self.poll_interval_us)
    }
}

/// What crossed the link, for diagnostics and the figures in the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkCounters {
    /// SPI transactions (one per frame written, one per poll read).
    pub transactions: u64,
    /// Bytes written to the board.
    pub bytes_written: u64,
    /// Bytes read from the board.
    pub bytes_read: u64,
    /// Responses that failed their CRC or framing.
    pub corrupt_responses: u64,
    /// `BadCrc` answers: the board saw a corrupted request.
    pub request_nacks: u64,
    /// Polls that found no answer.
    pub empty_polls: u64,
    /// Requests sent again (same sequence number).
    pub resends: u64,
}

/// Phase cycle applied by the board while averaging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PhaseCycle {
    /// No cycling.
    None,
    /// 0°, 180° excitation with the receiver following: cancels receiver offsets.
    Two,
    /// 0°, 90°, 180°, 270° (CYCLOPS-like): cancels offsets and quadrature imbalance.
    Four,
}

impl PhaseCycle {
    /// Steps in the cycle; NA must be a multiple of it.
    pub fn steps(self) -> u16 {
        match self {
            Self::None => 1,
            Self::Two => 2,
            Self::Four => 4,
        }
    }
}

/// One averaged echo from the FIFO, in ADC counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EchoSample {
    /// In-phase channel.
    pub i: i32,
    /// Quadrature channel.
    pub q: i32,
}

/// The front-end driver.
#[derive(Debug)]
pub struct Frontend<SPI, DR, RST, D> {
    spi: SPI,
    data_ready: Option<DR>,
    reset: Option<RST>,
    delay: D,
    seq: u8,
    timing: LinkTiming,
    counters: LinkCounters,
    identity: Option<Identity>,
    /// Whether the first contact (see the module docs) has been made: the board's replay cache
    /// holds this driver's own sequence number.
    synchronised: bool,
}

/// The name the first contact's errors carry (it is a STATUS, sent for its sequence number).
const FIRST_CONTACT: &str = "first contact (status)";

impl<SPI: SpiDevice, D: DelayNs> Frontend<SPI, NoPin, NoPin, D> {
    /// A driver on a SPI device with no data-ready or reset line. Does no I/O.
    pub fn new(spi: SPI, delay: D) -> Self {
        Self {
            spi,
            data_ready: None,
            reset: None,
            delay,
            seq: 0,
            timing: LinkTiming::default(),
            counters: LinkCounters::default(),
            identity: None,
            synchronised: false,
        }
    }
}

impl<SPI, DR, RST, D> Frontend<SPI, DR, RST, D>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    /// Uses a data-ready line (high when a sequence has finished) instead of polling status.
    pub fn with_data_ready<P: InputPin>(self, pin: P) -> Frontend<SPI, P, RST, D> {
        Frontend {
            spi: self.spi,
            data_ready: Some(pin),
            reset: self.reset,
            delay: self.delay,
            seq: self.seq,
            timing: self.timing,
            counters: self.counters,
            identity: self.identity,
            synchronised: self.synchronised,
        }
    }

    /// Uses a reset line (active low) for [`Frontend::hardware_reset`].
    pub fn with_reset_line<P: OutputPin>(self, pin: P) -> Frontend<SPI, DR, P, D> {
        Frontend {
            spi: self.spi,
            data_ready: self.data_ready,
            reset: Some(pin),
            delay: self.delay,
            seq: self.seq,
            timing: self.timing,
            counters: self.counters,
            identity: self.identity,
            synchronised: self.synchronised,
        }
    }

    /// Replaces the retry and polling budget.
    pub fn with_link_timing(mut self, timing: LinkTiming) -> Self {
        self.timing = timing;
        self
    }

    /// The retry and polling budget in use.
    pub fn link_timing(&self) -> LinkTiming {
        self.timing
    }

    /// Link statistics since creation.
    pub fn counters(&self) -> LinkCounters {
        self.counters
    }

    /// The identity read by the last [`Frontend::connect`].
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Hands back the bus, the pins and the delay.
    pub fn destroy(self) -> (SPI, Option<DR>, Option<RST>, D) {
        (self.spi, self.data_ready, self.reset, self.delay)
    }

    /// Waits using the driver's delay (for procedures that pace their own steps).
    pub fn delay_us(&mut self, us: u32) {
        self.delay.delay_us(us);
    }

    /// Reads the identity block and checks it: magic, then protocol major version.
    /// Also clears the board's "reset seen" flag.
    pub fn connect(&mut self) -> Result<Identity, Error<SPI::Error>> {
        let identity = self.identify()?;
        if identity.protocol.0 != PROTOCOL_VERSION.0 {
            return Err(Error::VersionMismatch {
                host_major: PROTOCOL_VERSION.0,
                host_minor: PROTOCOL_VERSION.1,
                board_major: identity.protocol.0,
                board_minor: identity.protocol.1,
            });
        }
        self.identity = Some(identity.clone());
        Ok(identity)
    }

    /// Reads the identity block without judging the version.
    pub fn identify(&mut self) -> Result<Identity, Error<SPI::Error>> {
        let payload = self.command(Command::Identify, Vec::new(), registers::IDENTITY_LEN)?;
        Identity::decode(&payload).map_err(|found| Error::BadMagic { found })
    }

    /// Sets the RF frequency; returns the frequency actually programmed (nearest DDS step,
    /// 0.023 Hz). Refuses frequencies outside 1–40 MHz.
    pub fn set_frequency_hz(&mut self, freq_hz: f64) -> Result<f64, Error<SPI::Error>> {
        let ftw = registers::frequency_to_ftw(freq_hz).ok_or_else(|| Error::InvalidArgument {
            name: "freq_hz",
            value: format!("{freq_hz}"),
            allowed: format!("{} ..= {} Hz", registers::RF_MIN_HZ, registers::RF_MAX_HZ),
        })?;
        self.write_register(registers::RF_FTW, ftw)?;
        Ok(registers::ftw_to_frequency(ftw))
    }

    /// Reads the programmed RF frequency.
    pub fn frequency_hz(&mut self) -> Result<f64, Error<SPI::Error>> {
        Ok(registers::ftw_to_frequency(
            self.read_register(registers::RF_FTW)?,
        ))
    }

    /// Transmit amplitude, 0 ..= 65535 (full scale); 32768 is the calibrated default.
    pub fn set_tx_amplitude(&mut self, amplitude: u16) -> Result<(), Error<SPI::Error>> {
        self.write_register(registers::TX_AMPLITUDE, u32::from(amplitude))
    }

    /// Length of pulses timed by the `P90` register (10 ns ticks, 10 ns ..= 1 ms).
    pub fn set_p90_ns(&mut self, p90_ns: u64) -> Result<(), Error<SPI::Error>> {
        let ticks = Self::checked_ticks("p90_ns", p90_ns, registers::P90_TICKS)?;
        self.write_register(registers::P90_TICKS, ticks)
    }

    /// Length of pulses timed by the `P180` register (10 ns ticks, 10 ns ..= 1 ms).
    pub fn set_p180_ns(&mut self, p180_ns: u64) -> Result<(), Error<SPI::Error>> {
        let ticks = Self::checked_ticks("p180_ns", p180_ns, registers::P180_TICKS)?;
        self.write_register(registers::P180_TICKS, ticks)
    }

    /// Receiver gain, 0 ..= 60 dB in 1 dB steps.
    pub fn set_rx_gain_db(&mut self, gain_db: u8) -> Result<(), Error<SPI::Error>> {
        let value = Self::checked("rx_gain_db", u64::from(gain_db), registers::RX_GAIN_DB)?;
        self.write_register(registers::RX_GAIN_DB, value)
    }

    /// Receiver dead time after a pulse (10 ns ticks, 0 ..= 1 ms).
    pub fn set_acquisition_delay_ns(&mut self, delay_ns: u64) -> Result<(), Error<SPI::Error>> {
        if delay_ns == 0 {
            return self.write_register(registers::ACQ_DELAY_TICKS, 0);
        }
        let ticks =
            Self::checked_ticks("acquisition_delay_ns", delay_ns, registers::ACQ_DELAY_TICKS)?;
        self.write_register(registers::ACQ_DELAY_TICKS, ticks)
    }

    /// Number of averaged scans (NA), 1 ..= 65535.
    pub fn set_scans(&mut self, scans: u16) -> Result<(), Error<SPI::Error>> {
        let value = Self::checked("scans", u64::from(scans), registers::SCANS)?;
        self.write_register(registers::SCANS, value)
    }

    /// Repetition time (scan start to scan start), 1 ms ..= 60 s in µs.
    pub fn set_repetition_time_us(&mut self, tr_us: u32) -> Result<(), Error<SPI::Error>> {
        let value = Self::checked("tr_us", u64::from(tr_us), registers::TR_US)?;
        self.write_register(registers::TR_US, value)
    }

    /// Scans run before averaging starts, to reach steady state (0 ..= 255).
    pub fn set_dummy_scans(&mut self, dummy_scans: u8) -> Result<(), Error<SPI::Error>> {
        self.write_register(registers::DUMMY_SCANS, u32::from(dummy_scans))
    }

    /// The phase cycle the board applies while averaging.
    pub fn set_phase_cycle(&mut self, cycle: PhaseCycle) -> Result<(), Error<SPI::Error>> {
        self.write_register(registers::PHASE_CYCLE, u32::from(cycle.steps()))
    }

    /// Magnet temperature, °C (1 m°C resolution).
    pub fn magnet_temp_c(&mut self) -> Result<f64, Error<SPI::Error>> {
        Ok(f64::from(self.read_register(registers::MAGNET_TEMP_MC)? as i32) / 1000.0)
    }

    /// Coil temperature, °C (1 m°C resolution).
    pub fn coil_temp_c(&mut self) -> Result<f64, Error<SPI::Error>> {
        Ok(f64::from(self.read_register(registers::COIL_TEMP_MC)? as i32) / 1000.0)
    }

    /// Loads a pulse program, replacing the previous one.
    pub fn load_program(&mut self, program: &PulseProgram) -> Result<(), Error<SPI::Error>> {
        if let Some(identity) = &self.identity
            && program.entries().len() > usize::from(identity.max_program_entries)
        {
            return Err(Error::InvalidArgument {
                name: "program entries",
                value: program.entries().len().to_string(),
                allowed: format!("1 ..= {}", identity.max_program_entries),
            });
        }
        self.command(Command::WriteProgram, program.encode(), 0)
            .map(drop)
    }

    /// Starts the loaded program: dummy scans, then NA scans averaged into the FIFO.
    pub fn start(&mut self) -> Result<(), Error<SPI::Error>> {
        self.command(Command::Start, Vec::new(), 0).map(drop)
    }

    /// Halts the sequencer.
    pub fn halt(&mut self) -> Result<(), Error<SPI::Error>> {
        self.command(Command::Halt, Vec::new(), 0).map(drop)
    }

    /// Empties the FIFO and clears its overflow flag (stale echoes of an earlier run).
    pub fn flush_fifo(&mut self) -> Result<(), Error<SPI::Error>> {
        self.command(Command::FlushFifo, Vec::new(), 0).map(drop)
    }

    /// Soft reset: halt, registers to defaults, program and FIFO cleared. Reconnects afterwards.
    pub fn soft_reset(&mut self) -> Result<Identity, Error<SPI::Error>> {
        self.command(Command::Reset, Vec::new(), 0)?;
        self.connect()
    }

    /// Pulses the reset line low for 10 µs, waits 1 ms, reconnects. Without a reset line, does a
    /// soft reset.
    pub fn hardware_reset(&mut self) -> Result<Identity, Error<SPI::Error>> {
        let Some(pin) = self.reset.as_mut() else {
            return self.soft_reset();
        };
        let pin_error = |e: RST::Error| Error::Pin {
            line: "reset",
            kind: digital::Error::kind(&e),
        };
        pin.set_low().map_err(pin_error)?;
        self.delay.delay_us(10);
        pin.set_high().map_err(pin_error)?;
        self.delay.delay_ms(1);
        self.connect()
    }

    /// Reads the status block.
    pub fn status(&mut self) -> Result<BoardStatusBlock, Error<SPI::Error>> {
        let payload = self.command(Command::Status, Vec::new(), registers::STATUS_LEN)?;
        BoardStatusBlock::decode(&payload).ok_or(Error::Protocol {
            command: "status",
            what: "status block",
        })
    }

    /// Waits for a started sequence expected to last `expected_us`, polling every
    /// `clamp(expected/50, 1 ms, 1 s)` (status, or the data-ready line when there is one) and calling
    /// `on_poll` at each poll (a temperature guard, a progress report). Gives up with
    /// [`Error::SequenceTimeout`] after `expected + max(expected/2, 200 ms)`. Reports a FIFO overflow,
    /// a board reset or a sequencer error as errors.
    pub fn wait_for_sequence(
        &mut self,
        expected_us: u64,
        mut on_poll: impl FnMut(&mut Self) -> Result<(), Error<SPI::Error>>,
    ) -> Result<BoardStatusBlock, Error<SPI::Error>> {
        let interval_us = (expected_us / 50).clamp(1_000, 1_000_000);
        let budget_us = expected_us + (expected_us / 2).max(200_000);
        let mut waited_us = 0;
        loop {
            let check_status = match self.data_ready.as_mut() {
                Some(pin) => pin.is_high().map_err(|e| Error::Pin {
                    line: "data ready",
                    kind: digital::Error::kind(&e),
                })?,
                None => true,
            };
            // With a data-ready line the status is still read at the end of the budget, so a
            // broken line cannot hide a finished or failed sequence.
            if check_status || waited_us >= budget_us {
                let status = self.status()?;
                if status.reset_seen {
                    return Err(Error::BoardReset);
                }
                match status.state {
                    SequencerState::Done => {
                        if status.fifo_overflow {
                            return Err(Error::FifoOverflow {
                                echoes_lost: status.echoes_lost,
                            });
                        }
                        return Ok(status);
                    }
                    SequencerState::Error => {
                        return Err(Error::Sequencer {
                            code: status.error_code,
                        });
                    }
                    SequencerState::Idle => {
                        return Err(Error::Protocol {
                            command: "wait for sequence",
                            what: "sequencer idle: halted or never started",
                        });
                    }
                    SequencerState::Running => {}
                }
            }
            if waited_us >= budget_us {
                return Err(Error::SequenceTimeout {
                    expected_us,
                    waited_us,
                });
            }
            on_poll(self)?;
            self.delay.delay_us(interval_us as u32);
            waited_us += interval_us;
        }
    }

    /// Reads `count` echoes from the FIFO in bursts of [`LinkTiming::fifo_burst_echoes`].
    pub fn read_echoes(&mut self, count: usize) -> Result<Vec<EchoSample>, Error<SPI::Error>> {
        let mut echoes = Vec::with_capacity(count);
        let burst_max = usize::from(
            self.timing
                .fifo_burst_echoes
                .clamp(1, registers::MAX_ECHOES_PER_BURST),
        );
        while echoes.len() < count {
            let burst = (count - echoes.len()).min(burst_max);
            let got = self.read_fifo_burst(burst as u16, &mut echoes)?;
            if got == 0 {
                return Err(Error::Protocol {
                    command: "read FIFO",
                    what: "FIFO empty before all echoes were read",
                });
            }
        }
        Ok(echoes)
    }

    /// One `ReadFifo` command: appends up to `count` echoes, returns how many came.
    pub fn read_fifo_burst(
        &mut self,
        count: u16,
        into: &mut Vec<EchoSample>,
    ) -> Result<usize, Error<SPI::Error>> {
        if count == 0 || count > registers::MAX_ECHOES_PER_BURST {
            return Err(Error::InvalidArgument {
                name: "burst echoes",
                value: count.to_string(),
                allowed: format!("1 ..= {}", registers::MAX_ECHOES_PER_BURST),
            });
        }
        let expected = 2 + usize::from(count) * registers::ECHO_LEN;
        let payload =
            self.command_up_to(Command::ReadFifo, count.to_le_bytes().to_vec(), expected)?;
        let malformed = Error::Protocol {
            command: "read FIFO",
            what: "burst length",
        };
        if payload.len() < 2 {
            return Err(malformed);
        }
        let n = usize::from(u16::from_le_bytes([payload[0], payload[1]]));
        if n > usize::from(count) || payload.len() != 2 + n * registers::ECHO_LEN {
            return Err(malformed);
        }
        into.extend(
            payload[2..]
                .chunks_exact(registers::ECHO_LEN)
                .map(|c| EchoSample {
                    i: i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                    q: i32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                }),
        );
        Ok(n)
    }

    fn checked(
        name: &'static str,
        value: u64,
        spec: RegisterSpec,
    ) -> Result<u32, Error<SPI::Error>> {
        if value < u64::from(spec.min) || value > u64::from(spec.max) {
            return Err(Error::InvalidArgument {
                name,
                value: value.to_string(),
                allowed: format!("{} ..= {}", spec.min, spec.max),
            });
        }
        Ok(value as u32)
    }

    fn checked_ticks(
        name: &'static str,
        ns: u64,
        spec: RegisterSpec,
    ) -> Result<u32, Error<SPI::Error>> {
        if !ns.is_multiple_of(registers::TICK_NS) {
            return Err(Error::InvalidArgument {
                name,
                value: ns.to_string(),
                allowed: format!("a multiple of {} ns", registers::TICK_NS),
            });
        }
        let ticks = ns / registers::TICK_NS;
        if ticks < u64::from(spec.min) || ticks > u64::from(spec.max) {
            return Err(Error::InvalidArgument {
                name,
                value: ns.to_string(),
                allowed: format!(
                    "{} ..= {} ns",
                    u64::from(spec.min) * registers::TICK_NS,
                    u64::from(spec.max) * registers::TICK_NS
                ),
            });
        }
        Ok(ticks as u32)
    }

    /// Reads any register by its spec, raw (also for the self-test's read-back checks).
    pub(crate) fn read_register(&mut self, spec: RegisterSpec) -> Result<u32, Error<SPI::Error>> {
        let payload = self.command(Command::ReadRegister, vec![spec.addr], 4)?;
        Ok(u32::from_le_bytes([
            payload[0], payload[1], payload[2], payload[3],
        ]))
    }

    fn write_register(&mut self, spec: RegisterSpec, value: u32) -> Result<(), Error<SPI::Error>> {
        debug_assert!(spec.writable, "only writable registers are written");
        let mut payload = vec![spec.addr];
        payload.extend_from_slice(&value.to_le_bytes());
        self.command(Command::WriteRegister, payload, 0).map(drop)
    }

    /// Sends a command expecting exactly `payload_len` bytes back.
    fn command(
        &mut self,
        command: Command,
        payload: Vec<u8>,
        payload_len: usize,
    ) -> Result<Vec<u8>, Error<SPI::Error>> {
        let answer = self.command_up_to(command, payload, payload_len)?;
        if answer.len() != payload_len {
            return Err(Error::Protocol {
                command: command.name(),
                what: "answer length",
            });
        }
        Ok(answer)
    }

    /// Sends a command and returns its answer (at most `max_payload_len` bytes), with the retry
    /// rules described in the module docs; the driver's first command is preceded by the first
    /// contact.
    fn command_up_to(
        &mut self,
        command: Command,
        payload: Vec<u8>,
        max_payload_len: usize,
    ) -> Result<Vec<u8>, Error<SPI::Error>> {
        if !self.synchronised {
            self.first_contact()?;
        }
        let response = self.exchange(command.name(), command, payload, max_payload_len, false)?;
        match BoardStatus::from_byte(response.status) {
            BoardStatus::Ok => Ok(response.payload),
            status => Err(Error::Board {
                command: command.name(),
                status,
            }),
        }
    }

    /// One STATUS whose answer is not used, so that the board's replay cache holds this driver's
    /// sequence number before its first real command (module docs, "First contact"). Any answer
    /// carrying that number will do, whatever its status and length: it may be the previous
    /// host's last answer, served from the cache.
    fn first_contact(&mut self) -> Result<(), Error<SPI::Error>> {
        self.exchange(
            FIRST_CONTACT,
            Command::Status,
            Vec::new(),
            registers::STATUS_LEN,
            true,
        )?;
        self.synchronised = true;
        Ok(())
    }

    /// Sends one request with a new sequence number and returns the board's answer to it (any
    /// status but `BadCrc`). `name` names the command in errors. With `read_whole_answer`, an
    /// answer longer than `max_payload_len` (a replayed answer to another command) is read again
    /// at the length its header declares, so its CRC can be checked; otherwise it counts as
    /// corrupted.
    fn exchange(
        &mut self,
        name: &'static str,
        command: Command,
        payload: Vec<u8>,
        max_payload_len: usize,
        read_whole_answer: bool,
    ) -> Result<Response, Error<SPI::Error>> {
        self.seq = self.seq.wrapping_add(1);
        let request = Request::new(self.seq, command, payload).encode();
        let mut buffer = vec![0u8; Response::frame_len(max_payload_len)];
        let mut total_polls = 0u32;
        let mut last_was_corrupt = false;
        for attempt in 1..=self.timing.max_attempts {
            if attempt > 1 {
                self.counters.resends += 1;
            }
            self.spi.write(&request).map_err(Error::Spi)?;
            self.counters.transactions += 1;
            self.counters.bytes_written += request.len() as u64;
            let mut empty_polls = 0;
            let mut rereads = 0;
            loop {
                self.spi.read(&mut buffer).map_err(Error::Spi)?;
                self.counters.transactions += 1;
                self.counters.bytes_read += buffer.len() as u64;
                match Response::decode(&buffer) {
                    Ok(response)
                        if BoardStatus::from_byte(response.status) == BoardStatus::BadCrc =>
                    {
                        // The board saw our request corrupted and did nothing: send it again.
                        self.counters.request_nacks += 1;
                        last_was_corrupt = true;
                        break;
                    }
                    Ok(response) if response.seq == self.seq => return Ok(response),
                    // No answer yet (idle bus reads 0x00 or 0xFF), or a stale answer to an earlier
                    // request: wait and poll again.
                    Ok(_)
                    | Err(FrameError::NoSync {
                        found: 0x00 | 0xFF, ..
                    }) => {
                        self.counters.empty_polls += 1;
                        total_polls += 1;
                        empty_polls += 1;
                        last_was_corrupt = false;
                        self.delay.delay_us(self.timing.poll_interval_us);
                        if empty_polls >= self.timing.response_polls {
                            break;
                        }
                    }
                    // Longer than expected and numbered as ours: read it whole (the header's length
                    // is at most the protocol's maximum, or decoding would have said `TooLong`).
                    Err(FrameError::Truncated { needed, .. })
                        if read_whole_answer
                            && needed > buffer.len()
                            && buffer.get(1) == Some(&self.seq) =>
                    {
                        buffer.resize(needed, 0);
                        last_was_corrupt = true;
                        rereads += 1;
                        if rereads > self.timing.corrupt_rereads {
                            break;
                        }
                    }
                    // Corrupted on the way back: the board keeps serving the answer, read it again.
                    Err(_) => {
                        self.counters.corrupt_responses += 1;
                        last_was_corrupt = true;
                        rereads += 1;
                        if rereads > self.timing.corrupt_rereads {
                            break;
                        }
                    }
                }
            }
        }
        if last_was_corrupt {
            Err(Error::Crc {
                command: name,
                attempts: self.timing.max_attempts,
            })
        } else {
            Err(Error::Timeout {
                command: name,
                attempts: self.timing.max_attempts,
                polls: total_polls,
                budget_us: u64::from(total_polls) * u64::from(self.timing.poll_interval_us),
            })
        }
    }
}
