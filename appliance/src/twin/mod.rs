//! The board twin: the simulated board in a process of its own, behind a Unix or TCP socket, and
//! the host's transport to it.
//!
//! `ferrocount board twin --listen unix:PATH` serves a [`crate::sim_board::SimBoard`] — its
//! physics and injected faults — on a socket ([`TwinServer`]). The appliance drives it through
//! [`TwinSpi`], an embedded-hal `SpiDevice` that carries every SPI transaction as bytes, so the
//! driver, the procedures and the engine are exactly those that run on spidev, and the twin sits
//! behind a real operating-system boundary: its latency, its disconnects, its restarts. That is
//! how CI, a laptop demo and a developer without hardware exercise the real path.
//!
//! Simulation truth (the virtual tube in the coil, the passing of virtual time, the twin's own
//! view for tests) has its own side channel ([`TwinSimulation`]), a separate connection that
//! never touches the SPI protocol. On hardware there is no side channel, so simulation truth is
//! refused there as before.
//!
//! The wire: [`wire`]. Not here: what the appliance does when a board comes back (identify,
//! refuse another firmware, halt and flush, tune): that is the engine's and the procedures' job,
//! the same for every board.

mod address;
mod server;
mod simulation_link;
mod spi_link;
mod truth;
pub mod wire;

pub use address::{TwinAddress, TwinAddressError, TwinListener, TwinStream};
pub use server::{TwinConfig, TwinServer};
pub use simulation_link::{TwinDelay, TwinSimulation};
pub use spi_link::{TwinLinkError, TwinLinkOptions, TwinSpi};
pub use truth::{BUS_LOG_CAPACITY, TwinTruth};

use crate::engine::Instrument;
use crate::frontend::{Frontend, NoPin};

/// The instrument on a board twin: the driver on [`TwinSpi`] with the twin's delay, and the
/// side channel as its tube slot.
pub type TwinInstrument = Instrument<TwinSpi, NoPin, NoPin, TwinDelay>;

/// The front end of the twin at `address` (nothing is connected until first use), and its side
/// channel.
pub fn twin_frontend(
    address: &TwinAddress,
    options: TwinLinkOptions,
) -> (Frontend<TwinSpi, NoPin, NoPin, TwinDelay>, TwinSimulation) {
    let simulation = TwinSimulation::new(address.clone(), options);
    let frontend = Frontend::new(TwinSpi::new(address.clone(), options), simulation.delay());
    (frontend, simulation)
}

/// The instrument on the twin at `address` (nothing is connected until first use).
pub fn twin_instrument(address: &TwinAddress, options: TwinLinkOptions) -> TwinInstrument {
    let (frontend, simulation) = twin_frontend(address, options);
    Instrument::with_tube_slot(frontend, Box::new(simulation))
}
