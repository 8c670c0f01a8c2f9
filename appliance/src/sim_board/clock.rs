//! Virtual time for the simulated board: instant (tests) or scaled to wall-clock time (demos).
//!
//! The board and the driver's delay share one [`SimClock`]. In instant mode time moves only when the
//! driver waits ([`SimDelay`]), so a 10-minute measurement runs in milliseconds and every run with
//! the same seed sees the same times. In scaled mode virtual time is wall-clock time since creation
//! times a speed-up factor, and delays really sleep.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// How virtual time relates to wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClockMode {
    /// Virtual time advances only through [`SimDelay`]; nothing sleeps.
    Instant,
    /// Virtual time = wall-clock time since creation × `speedup`; delays sleep `1/speedup` as long.
    Scaled {
        /// Virtual seconds per wall-clock second (1.0 = real time).
        speedup: f64,
    },
}

/// The shared virtual clock.
#[derive(Clone, Debug)]
pub struct SimClock {
    mode: ClockMode,
    virtual_ns: Arc<AtomicU64>,
    origin: Instant,
}

impl SimClock {
    /// A clock in instant mode, at t = 0.
    pub fn instant() -> Self {
        Self::new(ClockMode::Instant)
    }

    /// A clock in the given mode, at t = 0.
    pub fn new(mode: ClockMode) -> Self {
        Self {
            mode,
            virtual_ns: Arc::new(AtomicU64::new(0)),
            origin: Instant::now(),
        }
    }

    /// Virtual time now, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        match self.mode {
            ClockMode::Instant => self.virtual_ns.load(Ordering::SeqCst),
            ClockMode::Scaled { speedup } => {
                (self.origin.elapsed().as_secs_f64() * speedup * 1e9) as u64
            }
        }
    }

    /// Virtual time now, in seconds.
    pub fn now_s(&self) -> f64 {
        self.now_ns() as f64 * 1e-9
    }

    /// Lets `ns` of virtual time pass (advances the counter, or sleeps the scaled wall-clock time).
    pub fn pass_ns(&self, ns: u64) {
        match self.mode {
            ClockMode::Instant => {
                self.virtual_ns.fetch_add(ns, Ordering::SeqCst);
            }
            ClockMode::Scaled { speedup } => std::thread::sleep(
                std::time::Duration::from_secs_f64(ns as f64 * 1e-9 / speedup),
            ),
        }
    }

    /// A delay for the driver that passes time on this clock.
    pub fn delay(&self) -> SimDelay {
        SimDelay {
            clock: self.clone(),
        }
    }
}

/// `DelayNs` on a [`SimClock`]: the driver's waits are what move virtual time in instant mode.
#[derive(Clone, Debug)]
pub struct SimDelay {
    clock: SimClock,
}

impl embedded_hal::delay::DelayNs for SimDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.clock.pass_ns(u64::from(ns));
    }
    fn delay_us(&mut self, us: u32) {
        self.clock.pass_ns(u64::from(us) * 1_000);
    }
    fn delay_ms(&mut self, ms: u32) {
        self.clock.pass_ns(u64::from(ms) * 1_000_000);
    }
}
