//! Take over: what the appliance does first with a board it did not leave itself — after its own
//! start, a crash or a kill, possibly with a sequence still running from the previous process.
//!
//! It halts the sequencer and flushes the FIFO before anything else, so a sequence started by a
//! dead process neither runs on nor leaves echoes that could be read as a new measurement.
//!
//! The HALT is executed even when the previous host's last sequence number equals this host's
//! first: the driver makes its first contact before its first command (see
//! [`crate::frontend`], "First contact"), so no request of this procedure can be answered from
//! the board's replay cache.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use super::ProcedureError;
use crate::frontend::Frontend;

/// Halts the board and flushes its FIFO.
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
    frontend.flush_fifo()?;
    Ok(())
}
