//! The host's end of the simulation side channel: [`TwinSimulation`] puts virtual tubes in the
//! twin's coil, lets virtual time pass for the host's delays ([`TwinDelay`]), and reads the
//! twin's truth for tests. None of this travels on the bus: a real board has no wire for it.
//!
//! Like the bus link, it connects on first use and again after a lost link.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::sim_board::{TubeSlotError, VirtualTube, VirtualTubeSlot};

use super::address::{TwinAddress, TwinStream};
use super::spi_link::{TwinLinkError, TwinLinkOptions, open_channel};
use super::truth::TwinTruth;
use super::wire::{
    Channel, SimulationReply, SimulationRequest, WireError, read_frame, write_frame,
};

#[derive(Debug)]
struct SideChannel {
    stream: Option<TwinStream>,
    /// The twin's clock as it said at connection: `Some(None)` instant, `Some(Some(f))` scaled.
    clock: Option<Option<f64>>,
}

/// A cloneable handle on a twin's simulation side channel.
#[derive(Clone, Debug)]
pub struct TwinSimulation {
    address: TwinAddress,
    options: TwinLinkOptions,
    channel: Arc<Mutex<SideChannel>>,
}

impl TwinSimulation {
    /// A side channel to the twin at `address`; connects on first use.
    pub fn new(address: TwinAddress, options: TwinLinkOptions) -> Self {
        Self {
            address,
            options,
            channel: Arc::new(Mutex::new(SideChannel {
                stream: None,
                clock: None,
            })),
        }
    }

    /// Sends one request and reads its reply (a lost link is dropped, to be made again next time).
    pub fn request(&self, request: &SimulationRequest) -> Result<SimulationReply, TwinLinkError> {
        let mut channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        if channel.stream.as_mut().is_some_and(TwinStream::peer_closed) {
            channel.stream = None;
        }
        if channel.stream.is_none() {
            channel.stream = Some(open_channel(
                &self.address,
                &self.options,
                Channel::Simulation,
            )?);
            channel.clock = None;
        }
        let wire = |error: String| TwinLinkError::Wire {
            address: self.address.clone(),
            error: WireError(error),
        };
        let body = serde_json::to_vec(request).map_err(|e| wire(e.to_string()))?;
        let Some(stream) = channel.stream.as_mut() else {
            return Err(wire("no side-channel connection".into()));
        };
        let answer = write_frame(stream, &body).and_then(|()| read_frame(stream));
        let answer = match answer {
            Ok(answer) => answer,
            Err(source) => {
                channel.stream = None;
                return Err(TwinLinkError::Lost {
                    address: self.address.clone(),
                    source,
                });
            }
        };
        match serde_json::from_slice(&answer) {
            Ok(SimulationReply::Refused { reason }) => Err(TwinLinkError::Refused {
                address: self.address.clone(),
                reason,
            }),
            Ok(reply) => Ok(reply),
            Err(error) => {
                channel.stream = None;
                Err(wire(format!("unreadable side-channel reply: {error}")))
            }
        }
    }

    fn expect_done(&self, request: &SimulationRequest) -> Result<(), TwinLinkError> {
        match self.request(request)? {
            SimulationReply::Done => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }

    fn unexpected(&self, reply: &SimulationReply) -> TwinLinkError {
        TwinLinkError::Wire {
            address: self.address.clone(),
            error: WireError(format!("unexpected side-channel reply {reply:?}")),
        }
    }

    /// Puts `tube` in the twin's coil.
    pub fn insert_tube(&self, tube: VirtualTube) -> Result<(), TwinLinkError> {
        self.expect_done(&SimulationRequest::InsertTube { tube })
    }

    /// The twin's truth now.
    pub fn truth(&self) -> Result<TwinTruth, TwinLinkError> {
        match self.request(&SimulationRequest::Truth)? {
            SimulationReply::Truth { truth } => Ok(*truth),
            other => Err(self.unexpected(&other)),
        }
    }

    /// How the twin's time runs: `None` instant (moved by the host), `Some(f)` scaled.
    pub fn clock_speedup(&self) -> Result<Option<f64>, TwinLinkError> {
        if let Some(clock) = self
            .channel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clock
        {
            return Ok(clock);
        }
        let speedup = match self.request(&SimulationRequest::Clock)? {
            SimulationReply::Clock { speedup } => speedup,
            other => return Err(self.unexpected(&other)),
        };
        self.channel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clock = Some(speedup);
        Ok(speedup)
    }

    /// Lets `ns` of the twin's time pass: a request in instant mode, a local sleep of
    /// `ns / speedup` in scaled mode.
    pub fn pass_time_ns(&self, ns: u64) -> Result<(), TwinLinkError> {
        match self.clock_speedup()? {
            None => self.expect_done(&SimulationRequest::PassTime { ns }),
            Some(speedup) => {
                std::thread::sleep(Duration::from_secs_f64(ns as f64 * 1e-9 / speedup));
                Ok(())
            }
        }
    }

    /// A `DelayNs` for the driver that moves the twin's time.
    pub fn delay(&self) -> TwinDelay {
        TwinDelay {
            simulation: self.clone(),
        }
    }
}

impl VirtualTubeSlot for TwinSimulation {
    fn insert_tube(&self, tube: VirtualTube) -> Result<(), TubeSlotError> {
        TwinSimulation::insert_tube(self, tube).map_err(|e| TubeSlotError(e.to_string()))
    }
}

/// The driver's delay on a twin: the host's waits are what move the twin's virtual time, as
/// [`crate::sim_board::SimDelay`] does in process. When the twin cannot be reached the wait
/// returns after at most a millisecond: the next bus transaction reports the lost link.
#[derive(Clone, Debug)]
pub struct TwinDelay {
    simulation: TwinSimulation,
}

impl embedded_hal::delay::DelayNs for TwinDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.wait(u64::from(ns));
    }
    fn delay_us(&mut self, us: u32) {
        self.wait(u64::from(us) * 1_000);
    }
    fn delay_ms(&mut self, ms: u32) {
        self.wait(u64::from(ms) * 1_000_000);
    }
}

impl TwinDelay {
    fn wait(&self, ns: u64) {
        if self.simulation.pass_time_ns(ns).is_err() {
            std::thread::sleep(Duration::from_nanos(ns.min(1_000_000)));
        }
    }
}
