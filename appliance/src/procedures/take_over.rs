//! Take over: what the appliance does first with a board it did not leave itself — after its own
//! start, a crash or a kill, possibly with a sequence still running from the previous process.
//!
//! It halts the sequencer and flushes the FIFO before anything else, so a sequence started by a
//! dead process neither runs on nor leaves echoes that could be read as a new measurement.
//!
//! HALT is sent twice, with consecutive sequence numbers: a new host numbers its requests from 1,
//! and when that happens to equal the number of the previous host's last request, the board
//! answers the first HALT from its replay cache (protocol §2, exactly-once execution) without
//! halting. The second cannot collide, so the board is halted whatever the previous host did.
//! HALT is idempotent, so the pair is harmless.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use super::ProcedureError;
use crate::frontend::Frontend;

/// Halts the board (twice, see the module docs) and flushes its FIFO.
pub fn take_over<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
) -> Result<(), ProcedureError<SPI::Error>>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    frontend.halt()?;
    frontend.halt()?;
    frontend.flush_fifo()?;
    Ok(())
}
