//! Identify: who the board is and what state it is in, at connect — and whether this host may
//! drive it at all.
//!
//! Two versions are checked. The protocol's major version is the driver's (the frames would not
//! mean the same, [`Frontend::connect`]). The firmware's major version is the appliance's: a
//! board whose firmware changed what its registers and sequences mean would measure something
//! else with the same bytes, so a host refuses a firmware major it was not built for
//! ([`check_firmware`], the one place that rule lives).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use super::ProcedureError;
use crate::frontend::{Frontend, Identity, LinkCounters};

/// The firmware major version this host drives.
pub const SUPPORTED_FIRMWARE_MAJOR: u8 = 0;

/// The board's firmware is of another major version than this host supports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "board firmware {}.{}.{} is not supported: this host drives firmware {supported_major}.x; update the appliance software or the board's firmware",
    board.0, board.1, board.2
)]
pub struct FirmwareMismatch {
    /// The board's firmware version.
    pub board: (u8, u8, u8),
    /// The major version this host supports.
    pub supported_major: u8,
}

/// Refuses a board whose firmware major version is not [`SUPPORTED_FIRMWARE_MAJOR`].
pub fn check_firmware(identity: &Identity) -> Result<(), FirmwareMismatch> {
    if identity.firmware.0 == SUPPORTED_FIRMWARE_MAJOR {
        Ok(())
    } else {
        Err(FirmwareMismatch {
            board: identity.firmware,
            supported_major: SUPPORTED_FIRMWARE_MAJOR,
        })
    }
}

/// What the board said about itself.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IdentifyReport {
    /// The identity block.
    pub identity: Identity,
    /// Firmware version as text.
    pub firmware: String,
    /// Whether this host supports the board's firmware major version.
    pub firmware_supported: bool,
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

/// Connects (identity, protocol check), refuses a firmware major this host does not support,
/// and reads temperatures and frequency.
pub fn identify<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
) -> Result<IdentifyReport, ProcedureError<SPI::Error>>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let report = read_identity(frontend)?;
    check_firmware(&report.identity)?;
    Ok(report)
}

/// Like [`identify`] without refusing the firmware: for diagnostics (`ferrocount board info`,
/// the self-test), which must show a board they will not drive.
pub fn read_identity<SPI, DR, RST, D>(
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
        firmware_supported: check_firmware(&identity).is_ok(),
        simulated: identity.capabilities & crate::frontend::registers::capability::SIMULATED != 0,
        identity,
        magnet_temp_c,
        coil_temp_c,
        frequency_hz,
        link: frontend.counters(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(firmware: (u8, u8, u8)) -> Identity {
        Identity {
            protocol: (1, 0),
            firmware,
            serial: 7,
            capabilities: 0,
            fifo_capacity: 4096,
            max_program_entries: 32,
        }
    }

    #[test]
    fn only_the_supported_firmware_major_is_driven_whatever_its_minor_and_patch() {
        for ok in [
            (SUPPORTED_FIRMWARE_MAJOR, 0, 0),
            (SUPPORTED_FIRMWARE_MAJOR, 9, 200),
        ] {
            assert_eq!(check_firmware(&identity(ok)), Ok(()));
        }
        let newer = (SUPPORTED_FIRMWARE_MAJOR + 1, 0, 0);
        let error = check_firmware(&identity(newer)).expect_err("another major");
        assert_eq!(error.board, newer);
        assert!(error.to_string().contains("not supported"), "{error}");
    }
}
