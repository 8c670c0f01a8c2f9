//! Pulse programs: the small table the board's sequencer runs once per scan.
//!
//! An entry lasts an integer number of 10 ns ticks and either transmits RF, opens an acquire window
//! (one averaged complex sample per window, i.e. one echo) or waits. One loop level repeats a block
//! of entries, so a CPMG of any echo count is six entries, an FID with two windows five, and a
//! nutation step three. Builders here take nanoseconds and refuse any value that is not a whole
//! number of ticks or does not fit its field; nothing is rounded.
//!
//! Not here: register values (NA, TR, gain...), which the driver writes separately.

use super::registers::{ENTRY_AMPLITUDE_FULL, TICK_NS};

/// Bytes per encoded entry.
pub const ENTRY_LEN: usize = 12;
/// Most entries a program may have (protocol 1.x).
pub const MAX_ENTRIES: usize = 32;

/// Entry flag: transmit RF during this entry.
pub const FLAG_RF: u8 = 1 << 0;
/// Entry flag: acquire during this entry (one complex sample integrated over the entry).
pub const FLAG_ACQUIRE: u8 = 1 << 1;
/// Entry flag: first entry of the loop block.
pub const FLAG_LOOP_START: u8 = 1 << 2;
/// Entry flag: last entry of the loop block; `loop_count` says how often the block runs.
pub const FLAG_LOOP_END: u8 = 1 << 3;
/// Entry flag: the duration comes from the `P90_TICKS` register (duration field must be 0).
pub const FLAG_USE_P90: u8 = 1 << 4;
/// Entry flag: the duration comes from the `P180_TICKS` register (duration field must be 0).
pub const FLAG_USE_P180: u8 = 1 << 5;
const KNOWN_FLAGS: u8 =
    FLAG_RF | FLAG_ACQUIRE | FLAG_LOOP_START | FLAG_LOOP_END | FLAG_USE_P90 | FLAG_USE_P180;

/// One sequencer entry, as it goes over the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramEntry {
    /// Duration in 10 ns ticks (0 when a `USE_P90`/`USE_P180` flag supplies it).
    pub duration_ticks: u32,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// RF phase in quarter turns (0 = x, 1 = y, 2 = −x, 3 = −y).
    pub phase_quarters: u8,
    /// RF amplitude as a fraction of the `TX_AMPLITUDE` register, 0xFFFF = 100 %.
    pub amplitude: u16,
    /// Repetitions of the loop block (on the `LOOP_END` entry only, else 0).
    pub loop_count: u16,
}

impl ProgramEntry {
    /// Encodes: duration u32, flags u8, phase u8, amplitude u16, loop count u16, reserved u16 (LE).
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[0..4].copy_from_slice(&self.duration_ticks.to_le_bytes());
        out[4] = self.flags;
        out[5] = self.phase_quarters;
        out[6..8].copy_from_slice(&self.amplitude.to_le_bytes());
        out[8..10].copy_from_slice(&self.loop_count.to_le_bytes());
        out
    }

    /// Decodes one entry (12 bytes).
    pub fn decode(bytes: &[u8; ENTRY_LEN]) -> Self {
        Self {
            duration_ticks: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            flags: bytes[4],
            phase_quarters: bytes[5],
            amplitude: u16::from_le_bytes([bytes[6], bytes[7]]),
            loop_count: u16::from_le_bytes([bytes[8], bytes[9]]),
        }
    }

    /// Whether the entry is well formed on its own (board-side rule, also checked by the host).
    pub fn check(&self) -> Result<(), &'static str> {
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err("unknown entry flag");
        }
        if self.flags & FLAG_RF != 0 && self.flags & FLAG_ACQUIRE != 0 {
            return Err("an entry cannot transmit and acquire at once");
        }
        let from_register = self.flags & (FLAG_USE_P90 | FLAG_USE_P180);
        if from_register != 0 {
            if from_register == FLAG_USE_P90 | FLAG_USE_P180 || self.flags & FLAG_RF == 0 {
                return Err("a register-timed entry must be one RF pulse");
            }
            if self.duration_ticks != 0 {
                return Err("a register-timed entry must have duration 0");
            }
        } else if self.duration_ticks == 0 {
            return Err("duration must be at least one tick");
        }
        if self.phase_quarters > 3 {
            return Err("phase must be 0..=3 quarter turns");
        }
        if (self.flags & FLAG_LOOP_END != 0) != (self.loop_count != 0) {
            return Err("loop count must be set exactly on the loop-end entry");
        }
        Ok(())
    }
}

/// Why a program could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProgramError {
    /// A duration is not a whole number of 10 ns ticks.
    #[error("{what} = {ns} ns is not a multiple of the {TICK_NS} ns sequencer tick")]
    NotWholeTicks {
        /// Which duration.
        what: &'static str,
        /// The value asked for.
        ns: i128,
    },
    /// A duration is negative, zero or too long for its 32-bit tick field.
    #[error("{what} = {ns} ns is outside 10 ns ..= 42.9 s")]
    DurationOutOfRange {
        /// Which duration.
        what: &'static str,
        /// The value asked for.
        ns: i128,
    },
    /// A count does not fit its field.
    #[error("{what} = {value} is outside {allowed}")]
    CountOutOfRange {
        /// Which count.
        what: &'static str,
        /// The value asked for.
        value: u64,
        /// The allowed range.
        allowed: &'static str,
    },
    /// The assembled program breaks a structural rule.
    #[error("invalid program: {0}")]
    Invalid(&'static str),
}

/// Converts nanoseconds to ticks, refusing anything that would need rounding or does not fit.
pub fn ticks(what: &'static str, ns: i128) -> Result<u32, ProgramError> {
    if ns <= 0 || ns > i128::from(u32::MAX) * i128::from(TICK_NS) {
        return Err(ProgramError::DurationOutOfRange { what, ns });
    }
    if ns % i128::from(TICK_NS) != 0 {
        return Err(ProgramError::NotWholeTicks { what, ns });
    }
    Ok((ns / i128::from(TICK_NS)) as u32)
}

/// A validated pulse program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulseProgram {
    entries: Vec<ProgramEntry>,
}

/// Timing of a CPMG echo train: pulse centres at 0 (90°x) and (2k−1)·TE/2 (180°y), echo k centred
/// at k·TE with an acquire window of `window_ns` around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CpmgTiming {
    /// Echo spacing.
    pub te_ns: u64,
    /// Echoes per scan.
    pub echoes: u32,
    /// 90° pulse length.
    pub p90_ns: u64,
    /// 180° pulse length.
    pub p180_ns: u64,
    /// Acquire window per echo.
    pub window_ns: u64,
}

impl PulseProgram {
    /// Validates a list of entries (the same rules the board applies).
    pub fn new(entries: Vec<ProgramEntry>) -> Result<Self, ProgramError> {
        if entries.is_empty() || entries.len() > MAX_ENTRIES {
            return Err(ProgramError::Invalid("a program has 1..=32 entries"));
        }
        for entry in &entries {
            entry.check().map_err(ProgramError::Invalid)?;
        }
        let starts = entries
            .iter()
            .filter(|e| e.flags & FLAG_LOOP_START != 0)
            .count();
        let ends: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.flags & FLAG_LOOP_END != 0)
            .map(|(i, _)| i)
            .collect();
        let start = entries.iter().position(|e| e.flags & FLAG_LOOP_START != 0);
        match (starts, ends.as_slice(), start) {
            (0, [], _) => {}
            (1, [end], Some(start)) if start <= *end => {}
            _ => {
                return Err(ProgramError::Invalid(
                    "one loop level: at most one loop start before one loop end",
                ));
            }
        }
        if !entries.iter().any(|e| e.flags & FLAG_ACQUIRE != 0) {
            return Err(ProgramError::Invalid(
                "a program needs at least one acquire window",
            ));
        }
        Ok(Self { entries })
    }

    /// The entries.
    pub fn entries(&self) -> &[ProgramEntry] {
        &self.entries
    }

    /// The `WriteProgram` payload: entry count, then the entries.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.entries.len() * ENTRY_LEN);
        out.push(self.entries.len() as u8);
        for entry in &self.entries {
            out.extend_from_slice(&entry.encode());
        }
        out
    }

    /// Acquire windows per scan (echoes per scan), counting loop repetitions.
    pub fn acquisitions_per_scan(&self) -> u64 {
        let start = self
            .entries
            .iter()
            .position(|e| e.flags & FLAG_LOOP_START != 0);
        let end = self
            .entries
            .iter()
            .position(|e| e.flags & FLAG_LOOP_END != 0);
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.flags & FLAG_ACQUIRE != 0)
            .map(|(i, _)| match (start, end) {
                (Some(s), Some(t)) if (s..=t).contains(&i) => u64::from(self.entries[t].loop_count),
                _ => 1,
            })
            .sum()
    }

    /// A CPMG echo train: 90°x, then `echoes` × (180°y, window centred on the echo).
    pub fn cpmg(timing: &CpmgTiming) -> Result<Self, ProgramError> {
        let CpmgTiming {
            te_ns,
            echoes,
            p90_ns,
            p180_ns,
            window_ns,
        } = timing;
        let (te, p90, p180, window) = (
            i128::from(*te_ns),
            i128::from(*p90_ns),
            i128::from(*p180_ns),
            i128::from(*window_ns),
        );
        if *echoes == 0 || *echoes > u32::from(u16::MAX) {
            return Err(ProgramError::CountOutOfRange {
                what: "echoes",
                value: u64::from(*echoes),
                allowed: "1..=65535",
            });
        }
        // Pulses and windows are centred on their nominal times, so every half must be whole ticks.
        for (what, ns) in [
            ("TE (a multiple of 20 ns)", te),
            ("p90 (a multiple of 20 ns)", p90),
            ("p180 (a multiple of 20 ns)", p180),
            ("window (a multiple of 20 ns)", window),
        ] {
            if ns % (2 * i128::from(TICK_NS)) != 0 {
                return Err(ProgramError::NotWholeTicks { what, ns });
            }
        }
        let full = ENTRY_AMPLITUDE_FULL;
        let rf = |ns: i128, phase: u8, flags: u8, what| -> Result<ProgramEntry, ProgramError> {
            Ok(ProgramEntry {
                duration_ticks: ticks(what, ns)?,
                flags: FLAG_RF | flags,
                phase_quarters: phase,
                amplitude: full,
                loop_count: 0,
            })
        };
        let wait = |ns: i128, flags: u8, count: u16, what| -> Result<ProgramEntry, ProgramError> {
            Ok(ProgramEntry {
                duration_ticks: ticks(what, ns)?,
                flags,
                phase_quarters: 0,
                amplitude: 0,
                loop_count: count,
            })
        };
        Self::new(vec![
            rf(p90, 0, 0, "p90")?,
            wait(te / 2 - p90 / 2 - p180 / 2, 0, 0, "TE/2 − p90/2 − p180/2")?,
            rf(p180, 1, FLAG_LOOP_START, "p180")?,
            wait(
                te / 2 - p180 / 2 - window / 2,
                0,
                0,
                "TE/2 − p180/2 − window/2",
            )?,
            wait(window, FLAG_ACQUIRE, 0, "window")?,
            wait(
                te / 2 - window / 2 - p180 / 2,
                FLAG_LOOP_END,
                *echoes as u16,
                "TE/2 − window/2 − p180/2",
            )?,
        ])
    }

    /// A free induction decay after one pulse of the `P90_TICKS` register length, sampled by two
    /// windows: the first starts `delay_ns` after the pulse ends, the second `gap_ns` after the
    /// first ends. The phase difference between the two gives the frequency offset.
    pub fn fid_two_windows(
        delay_ns: u64,
        window_ns: u64,
        gap_ns: u64,
    ) -> Result<Self, ProgramError> {
        Self::new(vec![
            ProgramEntry {
                duration_ticks: 0,
                flags: FLAG_RF | FLAG_USE_P90,
                phase_quarters: 0,
                amplitude: ENTRY_AMPLITUDE_FULL,
                loop_count: 0,
            },
            ProgramEntry {
                duration_ticks: ticks("delay", i128::from(delay_ns))?,
                flags: 0,
                phase_quarters: 0,
                amplitude: 0,
                loop_count: 0,
            },
            ProgramEntry {
                duration_ticks: ticks("window", i128::from(window_ns))?,
                flags: FLAG_ACQUIRE,
                phase_quarters: 0,
                amplitude: 0,
                loop_count: 0,
            },
            ProgramEntry {
                duration_ticks: ticks("gap", i128::from(gap_ns))?,
                flags: 0,
                phase_quarters: 0,
                amplitude: 0,
                loop_count: 0,
            },
            ProgramEntry {
                duration_ticks: ticks("window", i128::from(window_ns))?,
                flags: FLAG_ACQUIRE,
                phase_quarters: 0,
                amplitude: 0,
                loop_count: 0,
            },
        ])
    }

    /// One nutation step: a pulse of the `P90_TICKS` register length, a delay, one FID window.
    /// Sweeping the register then needs no program reload.
    pub fn nutation_step(delay_ns: u64, window_ns: u64) -> Result<Self, ProgramError> {
        Self::new(vec![
            ProgramEntry {
                duration_ticks: 0,
                flags: FLAG_RF | FLAG_USE_P90,
                phase_quarters: 0,
                amplitude: ENTRY_AMPLITUDE_FULL,
                loop_count: 0,
            },
            ProgramEntry {
                duration_ticks: ticks("delay", i128::from(delay_ns))?,
                flags: 0,
                phase_quarters: 0,
                amplitude: 0,
                loop_count: 0,
            },
            ProgramEntry {
                duration_ticks: ticks("window", i128::from(window_ns))?,
                flags: FLAG_ACQUIRE,
                phase_quarters: 0,
                amplitude: 0,
                loop_count: 0,
            },
        ])
    }

    /// Receiver noise: `windows` acquire windows with no RF, `gap_ns` apart.
    pub fn noise(windows: u16, window_ns: u64, gap_ns: u64) -> Result<Self, ProgramError> {
        if windows == 0 {
            return Err(ProgramError::CountOutOfRange {
                what: "windows",
                value: 0,
                allowed: "1..=65535",
            });
        }
        Self::new(vec![
            ProgramEntry {
                duration_ticks: ticks("window", i128::from(window_ns))?,
                flags: FLAG_ACQUIRE | FLAG_LOOP_START,
                phase_quarters: 0,
                amplitude: 0,
                loop_count: 0,
            },
            ProgramEntry {
                duration_ticks: ticks("gap", i128::from(gap_ns))?,
                flags: FLAG_LOOP_END,
                phase_quarters: 0,
                amplitude: 0,
                loop_count: windows,
            },
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn timing() -> CpmgTiming {
        CpmgTiming {
            te_ns: 1_000_000,
            echoes: 2000,
            p90_ns: 10_000,
            p180_ns: 20_000,
            window_ns: 20_000,
        }
    }

    #[test]
    fn cpmg_fits_in_six_entries_with_exact_timing() {
        let program = PulseProgram::cpmg(&timing()).expect("valid timing");
        let e = program.entries();
        assert_eq!(e.len(), 6);
        assert_eq!(program.acquisitions_per_scan(), 2000);
        // Pulse centre to 180° centre: p90/2 + gap + p180/2 = 500 µs = TE/2.
        assert_eq!(
            e[0].duration_ticks / 2 + e[1].duration_ticks + e[2].duration_ticks / 2,
            50_000
        );
        // One loop pass lasts exactly TE.
        let pass: u32 = e[2..=5].iter().map(|x| x.duration_ticks).sum();
        assert_eq!(pass, 100_000);
        assert_eq!(e[5].loop_count, 2000);
    }

    #[test]
    fn values_needing_rounding_are_refused() {
        let odd_te = CpmgTiming {
            te_ns: 1_000_005,
            ..timing()
        };
        assert!(matches!(
            PulseProgram::cpmg(&odd_te),
            Err(ProgramError::NotWholeTicks { .. })
        ));
        let odd_pulse = CpmgTiming {
            p90_ns: 10_010,
            ..timing()
        };
        assert!(matches!(
            PulseProgram::cpmg(&odd_pulse),
            Err(ProgramError::NotWholeTicks { .. })
        ));
        let too_many = CpmgTiming {
            echoes: 70_000,
            ..timing()
        };
        assert!(matches!(
            PulseProgram::cpmg(&too_many),
            Err(ProgramError::CountOutOfRange { .. })
        ));
        let te_too_short = CpmgTiming {
            te_ns: 30_000,
            ..timing()
        };
        assert!(matches!(
            PulseProgram::cpmg(&te_too_short),
            Err(ProgramError::DurationOutOfRange { .. })
        ));
        assert!(matches!(
            ticks("x", 43_000_000_000),
            Err(ProgramError::DurationOutOfRange { .. })
        ));
        assert_eq!(ticks("x", 42_949_672_950), Ok(u32::MAX));
    }

    #[test]
    fn structural_rules_are_enforced() {
        let acquire = ProgramEntry {
            duration_ticks: 10,
            flags: FLAG_ACQUIRE,
            phase_quarters: 0,
            amplitude: 0,
            loop_count: 0,
        };
        let end_without_start = ProgramEntry {
            flags: FLAG_ACQUIRE | FLAG_LOOP_END,
            loop_count: 3,
            ..acquire
        };
        assert!(PulseProgram::new(vec![end_without_start]).is_err());
        let rf_only = ProgramEntry {
            flags: FLAG_RF,
            ..acquire
        };
        assert!(PulseProgram::new(vec![rf_only]).is_err());
        assert!(PulseProgram::new(vec![]).is_err());
        assert!(PulseProgram::new(vec![acquire; 33]).is_err());
        assert!(
            PulseProgram::new(vec![ProgramEntry {
                flags: FLAG_RF | FLAG_ACQUIRE,
                ..acquire
            }])
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn entries_round_trip(duration: u32, flags: u8, phase: u8, amplitude: u16, count: u16) {
            let entry = ProgramEntry { duration_ticks: duration, flags, phase_quarters: phase, amplitude, loop_count: count };
            prop_assert_eq!(ProgramEntry::decode(&entry.encode()), entry);
        }
    }
}
