//! Linux adapters for the real front-end board (feature `hw-linux`; `rpi` adds Raspberry Pi GPIO).
//!
//! SPI goes through the kernel's spidev with kernel-managed chip select
//! (`linux_embedded_hal::SpidevDevice`, which implements `SpiDevice` correctly, including unequal
//! transfer lengths). GPIO lines (data ready, reset) go through the GPIO character device
//! (`gpio-cdev`), or through rppal on a Raspberry Pi. rppal's own SPI device wrapper is not used:
//! its `Transfer` runs for the shorter buffer and `TransferInPlace` clocks out zeros, which breaks
//! the embedded-hal contract.
//!
//! Large FIFO bursts need the spidev buffer raised: boot with `spidev.bufsiz=65536`.

use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
pub use linux_embedded_hal::{CdevPin, Delay, SpidevDevice};

/// Why a Linux device could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LinuxDeviceError {
    /// The spidev node could not be opened or configured.
    #[error("SPI device {path}: {source}")]
    Spi {
        /// Device path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A GPIO line could not be requested.
    #[error("GPIO {chip} line {line}: {message}")]
    Gpio {
        /// Chip path.
        chip: String,
        /// Line offset.
        line: u32,
        /// What failed.
        message: String,
    },
}

/// Opens a spidev node (e.g. `/dev/spidev0.0`) in SPI mode 0, 8-bit words, at `max_speed_hz`.
pub fn open_spidev(path: &str, max_speed_hz: u32) -> Result<SpidevDevice, LinuxDeviceError> {
    let spi_error = |source: std::io::Error| LinuxDeviceError::Spi {
        path: path.to_owned(),
        source,
    };
    let mut device =
        SpidevDevice::open(path).map_err(|e| spi_error(std::io::Error::other(e.to_string())))?;
    let options = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(max_speed_hz)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    device.configure(&options).map_err(spi_error)?;
    Ok(device)
}

fn request_line(
    chip: &str,
    line: u32,
    flags: LineRequestFlags,
    default: u8,
) -> Result<CdevPin, LinuxDeviceError> {
    let gpio_error = |e: linux_embedded_hal::gpio_cdev::Error| LinuxDeviceError::Gpio {
        chip: chip.to_owned(),
        line,
        message: e.to_string(),
    };
    let mut gpio_chip = Chip::new(chip).map_err(gpio_error)?;
    let handle = gpio_chip
        .get_line(line)
        .and_then(|l| l.request(flags, default, "ferrocount-frontend"))
        .map_err(gpio_error)?;
    CdevPin::new(handle).map_err(gpio_error)
}

/// Requests the board's data-ready line as an input (e.g. `/dev/gpiochip0`, line 25).
pub fn open_data_ready(chip: &str, line: u32) -> Result<CdevPin, LinuxDeviceError> {
    request_line(chip, line, LineRequestFlags::INPUT, 0)
}

/// Requests the board's reset line (active low) as an output, initially high (not in reset).
pub fn open_reset_line(chip: &str, line: u32) -> Result<CdevPin, LinuxDeviceError> {
    request_line(chip, line, LineRequestFlags::OUTPUT, 1)
}

/// Raspberry Pi GPIO through rppal (feature `rpi`): BCM pin numbers, no chip path needed.
#[cfg(feature = "rpi")]
pub mod rpi {
    use super::LinuxDeviceError;
    use rppal::gpio::{Gpio, InputPin, OutputPin};

    fn gpio_error(line: u8) -> impl Fn(rppal::gpio::Error) -> LinuxDeviceError {
        move |e| LinuxDeviceError::Gpio {
            chip: "rppal".to_owned(),
            line: u32::from(line),
            message: e.to_string(),
        }
    }

    /// The data-ready line on BCM pin `bcm`, as an input with pull-down.
    pub fn data_ready(bcm: u8) -> Result<InputPin, LinuxDeviceError> {
        Ok(Gpio::new()
            .map_err(gpio_error(bcm))?
            .get(bcm)
            .map_err(gpio_error(bcm))?
            .into_input_pulldown())
    }

    /// The reset line (active low) on BCM pin `bcm`, as an output driven high.
    pub fn reset_line(bcm: u8) -> Result<OutputPin, LinuxDeviceError> {
        Ok(Gpio::new()
            .map_err(gpio_error(bcm))?
            .get(bcm)
            .map_err(gpio_error(bcm))?
            .into_output_high())
    }
}
