//! The board's register map, identity block and status block (protocol 1.x).
//!
//! Named addresses, their ranges and defaults live here once, shared by the driver (which
//! range-checks before any I/O) and the simulated board (which enforces the same ranges, as the
//! firmware does). Public code uses the driver's typed setters, never raw addresses.

/// One 32-bit register: its address, whether the host may write it, allowed range and reset value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RegisterSpec {
    pub addr: u8,
    pub name: &'static str,
    pub writable: bool,
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

/// DDS reference clock: frequency = tuning word × `DDS_CLOCK_HZ` / 2³².
pub const DDS_CLOCK_HZ: f64 = 100_000_000.0;
/// One sequencer tick, in nanoseconds: every duration on the board is an integer number of ticks.
pub const TICK_NS: u64 = 10;
/// Unity receiver/transmitter amplitude scale of a program entry (100 % of `TX_AMPLITUDE`).
pub const ENTRY_AMPLITUDE_FULL: u16 = 0xFFFF;

/// Lowest RF frequency the synthesiser is specified for.
pub const RF_MIN_HZ: f64 = 1_000_000.0;
/// Highest RF frequency the synthesiser is specified for (below the DDS Nyquist limit).
pub const RF_MAX_HZ: f64 = 40_000_000.0;

const fn ftw_of(freq_hz: f64) -> u32 {
    (freq_hz / DDS_CLOCK_HZ * 4_294_967_296.0) as u32
}

pub(crate) const RF_FTW: RegisterSpec = RegisterSpec {
    addr: 0x00,
    name: "RF_FTW",
    writable: true,
    min: ftw_of(RF_MIN_HZ),
    max: ftw_of(RF_MAX_HZ),
    // 20.8627 MHz: 42.577 MHz/T × 0.49 T, the nominal Larmor frequency at 25 °C.
    default: ftw_of(20_862_730.0),
};
pub(crate) const TX_AMPLITUDE: RegisterSpec = RegisterSpec {
    addr: 0x01,
    name: "TX_AMPLITUDE",
    writable: true,
    min: 0,
    max: 0xFFFF,
    default: 0x8000,
};
pub(crate) const P90_TICKS: RegisterSpec = RegisterSpec {
    addr: 0x02,
    name: "P90_TICKS",
    writable: true,
    min: 1,
    max: 100_000,
    default: 1_000,
};
pub(crate) const P180_TICKS: RegisterSpec = RegisterSpec {
    addr: 0x03,
    name: "P180_TICKS",
    writable: true,
    min: 1,
    max: 100_000,
    default: 2_000,
};
pub(crate) const RX_GAIN_DB: RegisterSpec = RegisterSpec {
    addr: 0x04,
    name: "RX_GAIN_DB",
    writable: true,
    min: 0,
    max: 60,
    default: 40,
};
pub(crate) const ACQ_DELAY_TICKS: RegisterSpec = RegisterSpec {
    addr: 0x05,
    name: "ACQ_DELAY_TICKS",
    writable: true,
    min: 0,
    max: 100_000,
    default: 1_000,
};
pub(crate) const SCANS: RegisterSpec = RegisterSpec {
    addr: 0x06,
    name: "SCANS",
    writable: true,
    min: 1,
    max: 0xFFFF,
    default: 1,
};
pub(crate) const TR_US: RegisterSpec = RegisterSpec {
    addr: 0x07,
    name: "TR_US",
    writable: true,
    min: 1_000,
    max: 60_000_000,
    default: 3_000_000,
};
pub(crate) const DUMMY_SCANS: RegisterSpec = RegisterSpec {
    addr: 0x08,
    name: "DUMMY_SCANS",
    writable: true,
    min: 0,
    max: 255,
    default: 0,
};
pub(crate) const PHASE_CYCLE: RegisterSpec = RegisterSpec {
    addr: 0x09,
    name: "PHASE_CYCLE",
    writable: true,
    min: 1,
    max: 4,
    default: 1,
};
/// Magnet temperature in milli-degrees Celsius, two's complement (read-only).
pub(crate) const MAGNET_TEMP_MC: RegisterSpec = RegisterSpec {
    addr: 0x10,
    name: "MAGNET_TEMP_MC",
    writable: false,
    min: 0,
    max: u32::MAX,
    default: 25_000,
};
/// Coil (probe) temperature in milli-degrees Celsius, two's complement (read-only).
pub(crate) const COIL_TEMP_MC: RegisterSpec = RegisterSpec {
    addr: 0x11,
    name: "COIL_TEMP_MC",
    writable: false,
    min: 0,
    max: u32::MAX,
    default: 25_000,
};

/// Every register, for the board's lookup.
pub(crate) const ALL: [RegisterSpec; 12] = [
    RF_FTW,
    TX_AMPLITUDE,
    P90_TICKS,
    P180_TICKS,
    RX_GAIN_DB,
    ACQ_DELAY_TICKS,
    SCANS,
    TR_US,
    DUMMY_SCANS,
    PHASE_CYCLE,
    MAGNET_TEMP_MC,
    COIL_TEMP_MC,
];

/// Looks a register up by address.
pub(crate) fn spec(addr: u8) -> Option<RegisterSpec> {
    ALL.iter().copied().find(|r| r.addr == addr)
}

/// Converts a frequency to the nearest DDS tuning word, or `None` outside the synthesiser range.
pub fn frequency_to_ftw(freq_hz: f64) -> Option<u32> {
    if !(RF_MIN_HZ..=RF_MAX_HZ).contains(&freq_hz) {
        return None;
    }
    Some((freq_hz / DDS_CLOCK_HZ * 4_294_967_296.0).round() as u32)
}

/// The frequency a DDS tuning word produces.
pub fn ftw_to_frequency(ftw: u32) -> f64 {
    f64::from(ftw) * DDS_CLOCK_HZ / 4_294_967_296.0
}

/// Magic bytes at the start of the identity block.
pub const IDENTITY_MAGIC: [u8; 4] = *b"FCNT";
/// Length of the identity block payload.
pub const IDENTITY_LEN: usize = 20;
/// Length of the status block payload.
pub const STATUS_LEN: usize = 10;
/// Bytes per echo in a FIFO burst: I then Q, each `i32` little-endian.
pub const ECHO_LEN: usize = 8;
/// Most echoes one `ReadFifo` command returns.
pub const MAX_ECHOES_PER_BURST: u16 = 1024;

/// Capability bits in the identity block.
pub mod capability {
    /// The board averages scans with the phase cycle applied (always set in protocol 1.x).
    pub const ONBOARD_AVERAGING: u32 = 1 << 0;
    /// The board drives a data-ready line when a sequence finishes.
    pub const DATA_READY_LINE: u32 = 1 << 1;
    /// The board reads magnet and coil temperatures.
    pub const TEMPERATURES: u32 = 1 << 2;
    /// The board is a software simulation, not hardware.
    pub const SIMULATED: u32 = 1 << 31;
}

/// The identity block read at connect.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// Protocol version (major, minor) the board speaks.
    pub protocol: (u8, u8),
    /// Firmware version (major, minor, patch).
    pub firmware: (u8, u8, u8),
    /// Board serial number.
    pub serial: u32,
    /// Capability bits, see [`capability`].
    pub capabilities: u32,
    /// FIFO capacity in echoes.
    pub fifo_capacity: u16,
    /// Most pulse-program entries the sequencer holds.
    pub max_program_entries: u8,
}

impl Identity {
    /// Encodes the identity block: magic[4], protocol major, minor, firmware major, minor, patch,
    /// serial u32, capabilities u32, FIFO capacity u16, max program entries u8 (little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(IDENTITY_LEN);
        out.extend_from_slice(&IDENTITY_MAGIC);
        out.extend_from_slice(&[self.protocol.0, self.protocol.1]);
        out.extend_from_slice(&[self.firmware.0, self.firmware.1, self.firmware.2]);
        out.extend_from_slice(&self.serial.to_le_bytes());
        out.extend_from_slice(&self.capabilities.to_le_bytes());
        out.extend_from_slice(&self.fifo_capacity.to_le_bytes());
        out.push(self.max_program_entries);
        out
    }

    /// Decodes an identity block; `Err` carries the magic found when it is not ours or the block is short.
    pub fn decode(bytes: &[u8]) -> Result<Self, [u8; 4]> {
        let mut magic = [0u8; 4];
        for (slot, byte) in magic.iter_mut().zip(bytes) {
            *slot = *byte;
        }
        if bytes.len() != IDENTITY_LEN || magic != IDENTITY_MAGIC {
            return Err(magic);
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Ok(Self {
            protocol: (bytes[4], bytes[5]),
            firmware: (bytes[6], bytes[7], bytes[8]),
            serial: u32_at(9),
            capabilities: u32_at(13),
            fifo_capacity: u16::from_le_bytes([bytes[17], bytes[18]]),
            max_program_entries: bytes[19],
        })
    }
}

/// What the sequencer is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SequencerState {
    /// Nothing loaded or started since reset/halt.
    Idle,
    /// A program is running.
    Running,
    /// The last program finished; its echoes are in the FIFO.
    Done,
    /// The sequencer stopped on an error (see the status block's error byte).
    Error,
}

/// Status block flag: the FIFO overflowed since it was last flushed; echoes were lost.
pub const STATUS_FLAG_OVERFLOW: u8 = 1 << 0;
/// Status block flag: the board has reset (power-on, watchdog or reset line) since the last identify.
pub const STATUS_FLAG_RESET: u8 = 1 << 1;

/// The status block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BoardStatusBlock {
    /// Sequencer state.
    pub state: SequencerState,
    /// FIFO overflowed since the last flush.
    pub fifo_overflow: bool,
    /// The board reset since the last identify.
    pub reset_seen: bool,
    /// Echoes waiting in the FIFO.
    pub fifo_level: u16,
    /// Scans completed (dummy scans excluded) in the current or last sequence.
    pub scans_done: u16,
    /// Sequence number of the last executed request.
    pub last_seq: u8,
    /// Sequencer error code (0 = none).
    pub error_code: u8,
    /// Echoes dropped because the FIFO was full.
    pub echoes_lost: u16,
}

impl BoardStatusBlock {
    /// Encodes: state u8, flags u8, FIFO level u16, scans done u16, last seq u8, error u8, echoes lost u16.
    pub fn encode(&self) -> Vec<u8> {
        let state = match self.state {
            SequencerState::Idle => 0,
            SequencerState::Running => 1,
            SequencerState::Done => 2,
            SequencerState::Error => 3,
        };
        let mut flags = 0;
        if self.fifo_overflow {
            flags |= STATUS_FLAG_OVERFLOW;
        }
        if self.reset_seen {
            flags |= STATUS_FLAG_RESET;
        }
        let mut out = vec![state, flags];
        out.extend_from_slice(&self.fifo_level.to_le_bytes());
        out.extend_from_slice(&self.scans_done.to_le_bytes());
        out.push(self.last_seq);
        out.push(self.error_code);
        out.extend_from_slice(&self.echoes_lost.to_le_bytes());
        out
    }

    /// Decodes a status block, `None` if it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != STATUS_LEN {
            return None;
        }
        let state = match bytes[0] {
            0 => SequencerState::Idle,
            1 => SequencerState::Running,
            2 => SequencerState::Done,
            3 => SequencerState::Error,
            _ => return None,
        };
        Some(Self {
            state,
            fifo_overflow: bytes[1] & STATUS_FLAG_OVERFLOW != 0,
            reset_seen: bytes[1] & STATUS_FLAG_RESET != 0,
            fifo_level: u16::from_le_bytes([bytes[2], bytes[3]]),
            scans_done: u16::from_le_bytes([bytes[4], bytes[5]]),
            last_seq: bytes[6],
            error_code: bytes[7],
            echoes_lost: u16::from_le_bytes([bytes[8], bytes[9]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn register_addresses_are_unique_and_defaults_in_range() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(a.min <= a.default && a.default <= a.max, "{}", a.name);
            for b in &ALL[i + 1..] {
                assert_ne!(a.addr, b.addr, "{} and {}", a.name, b.name);
            }
        }
    }

    #[test]
    fn dds_resolution_is_below_a_tenth_of_a_hertz() {
        // Independent arithmetic: 100 MHz / 2^32 = 0.023283 Hz.
        let step = ftw_to_frequency(1);
        assert!((step - 0.023_283_064).abs() < 1e-9);
        let ftw = frequency_to_ftw(20_862_730.0).expect("in range");
        assert!((ftw_to_frequency(ftw) - 20_862_730.0).abs() <= step / 2.0);
        assert_eq!(frequency_to_ftw(50e6), None);
    }

    proptest! {
        #[test]
        fn identity_round_trips(major: u8, minor: u8, fw: (u8, u8, u8), serial: u32, caps: u32, fifo: u16, entries: u8) {
            let identity = Identity { protocol: (major, minor), firmware: fw, serial, capabilities: caps, fifo_capacity: fifo, max_program_entries: entries };
            prop_assert_eq!(Identity::decode(&identity.encode()), Ok(identity));
        }

        #[test]
        fn status_round_trips(state in 0u8..4, overflow: bool, reset: bool, level: u16, scans: u16, seq: u8, err: u8, lost: u16) {
            let state = [SequencerState::Idle, SequencerState::Running, SequencerState::Done, SequencerState::Error][state as usize];
            let status = BoardStatusBlock { state, fifo_overflow: overflow, reset_seen: reset, fifo_level: level, scans_done: scans, last_seq: seq, error_code: err, echoes_lost: lost };
            prop_assert_eq!(BoardStatusBlock::decode(&status.encode()), Some(status));
        }
    }
}
