//! Identify: who the board is and what state it is in, at connect.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use super::ProcedureError;
use crate::frontend::{Frontend, Identity, LinkCounters};

/// What the board said about itself.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IdentifyReport {
    /// The identity block.
    pub identity: Identity,
    /// Firmware version as text.
    pub firmware: String,
    /// Whether the board is the simulator.
    pub simulated: bool,
    /// Magnet temperature.
    pub magnet_temp_c: f64,
    /// Coil temperature.
    pub coil_temp_c: f64,
    /// Programmed RF frequency.
    pub frequency_hz: f64,
    /// Link statistics so far.
    pub link: LinkCounters,
}

/// Connects (identity, version check) and reads temperatures and frequency.
pub fn identify<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
) -> Result<IdentifyReport, ProcedureError<SPI::Error>>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let identity = frontend.connect()?;
    let magnet_temp_c = frontend.magnet_temp_c()?;
    let coil_temp_c = frontend.coil_temp_c()?;
    let frequency_hz = frontend.frequency_hz()?;
    let (major, minor, patch) = identity.firmware;
    Ok(IdentifyReport {
        firmware: format!("{major}.{minor}.{patch}"),
        simulated: identity.capabilities & crate::frontend::registers::capability::SIMULATED != 0,
        identity,
        magnet_temp_c,
        coil_temp_c,
        frequency_hz,
        link: frontend.counters(),
    })
}
