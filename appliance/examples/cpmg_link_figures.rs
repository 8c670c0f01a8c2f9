//! Bytes and SPI transactions per CPMG, counted by a wrapper around the simulated board's
//! `SpiDevice` (independent of the driver's own counters).
//!
//! Run: `cargo run -p appliance --release --example cpmg_link_figures`

use appliance::frontend::{Frontend, LinkTiming};
use appliance::procedures::{self, CpmgSettings};
use appliance::sim_board::{SimBoard, SimBoardConfig, SimClock};
use embedded_hal::spi::{ErrorType, Operation, SpiDevice};

/// Counts what crosses the bus.
struct CountingSpi<S> {
    inner: S,
    transactions: u64,
    bytes_out: u64,
    bytes_in: u64,
}

impl<S: SpiDevice> ErrorType for CountingSpi<S> {
    type Error = S::Error;
}

impl<S: SpiDevice> SpiDevice for CountingSpi<S> {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), S::Error> {
        self.transactions += 1;
        for op in operations.iter() {
            match op {
                Operation::Write(w) => self.bytes_out += w.len() as u64,
                Operation::Read(r) => self.bytes_in += r.len() as u64,
                Operation::Transfer(r, w) => {
                    self.bytes_in += r.len() as u64;
                    self.bytes_out += w.len() as u64;
                }
                Operation::TransferInPlace(b) => {
                    self.bytes_in += b.len() as u64;
                    self.bytes_out += b.len() as u64;
                }
                Operation::DelayNs(_) => {}
            }
        }
        self.inner.transaction(operations)
    }
}

fn main() {
    println!(
        "echoes  burst  transactions  bytes_out  bytes_in  (one CPMG: registers, program, start, wait, FIFO)"
    );
    for (echoes, burst) in [(1000u32, 64u16), (1000, 1024), (4000, 64), (4000, 1024)] {
        let clock = SimClock::instant();
        let board = SimBoard::new(SimBoardConfig::default(), clock.clone());
        let counting = CountingSpi {
            inner: board,
            transactions: 0,
            bytes_out: 0,
            bytes_in: 0,
        };
        let timing = LinkTiming {
            fifo_burst_echoes: burst,
            ..LinkTiming::default()
        };
        let mut frontend = Frontend::new(counting, clock.delay()).with_link_timing(timing);
        if let Err(e) = frontend.connect() {
            eprintln!("connect failed: {e}");
            return;
        }
        let before = frontend.counters();
        let settings = CpmgSettings {
            echoes,
            scans: 4,
            tr_ms: 5000,
            guard: None,
            ..CpmgSettings::default()
        };
        if let Err(e) = procedures::measure_cpmg(&mut frontend, &settings) {
            eprintln!("cpmg failed: {e}");
            return;
        }
        let after = frontend.counters();
        let (spi, ..) = frontend.destroy();
        println!(
            "{echoes:>6}  {burst:>5}  {:>12}  {:>9}  {:>8}   (wrapper totals incl. connect: {} transactions, {} B out, {} B in)",
            after.transactions - before.transactions,
            after.bytes_written - before.bytes_written,
            after.bytes_read - before.bytes_read,
            spi.transactions,
            spi.bytes_out,
            spi.bytes_in
        );
    }
}
