//! The simulated board's tube holder: which virtual tube sits in the coil right now.
//!
//! On the real appliance the operator swaps tubes by hand; in simulation the acquisition engine
//! does it through a [`TubeSlot`], a cheap cloneable handle shared with the
//! [`SimBoard`](crate::sim_board::SimBoard). The board reads the slot when a sequence starts, so a tube
//! swapped during a sequence only takes effect at the next one, as on hardware.
//!
//! A board twin in another process has a slot too, reached over its side channel
//! ([`crate::twin::TwinSimulation`]); the engine sees either through [`VirtualTubeSlot`].
//!
//! Not for: anything on real hardware (there is no slot to write to).

use std::sync::{Arc, Mutex, PoisonError};

use super::physics::VirtualTube;

/// Where the engine puts a virtual tube: in process, or on a twin across a socket.
pub trait VirtualTubeSlot: Send + Sync {
    /// Puts `tube` in the coil (it takes effect at the next sequence start).
    fn insert_tube(&self, tube: VirtualTube) -> Result<(), TubeSlotError>;
}

/// The tube could not be put in the coil (the twin could not be reached).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TubeSlotError(pub String);

impl VirtualTubeSlot for TubeSlot {
    fn insert_tube(&self, tube: VirtualTube) -> Result<(), TubeSlotError> {
        self.insert(tube);
        Ok(())
    }
}

/// Shared handle to the virtual tube in the coil.
#[derive(Clone, Debug)]
pub struct TubeSlot {
    tube: Arc<Mutex<VirtualTube>>,
}

impl TubeSlot {
    /// A slot holding `tube`.
    pub fn new(tube: VirtualTube) -> Self {
        Self {
            tube: Arc::new(Mutex::new(tube)),
        }
    }

    /// Puts `tube` in the coil (replacing the one there).
    pub fn insert(&self, tube: VirtualTube) {
        // A poisoned lock only means another thread panicked while swapping a plain value; the
        // value itself is always a whole tube, so it is safe to keep using it.
        *self.tube.lock().unwrap_or_else(PoisonError::into_inner) = tube;
    }

    /// The tube in the coil now.
    pub fn current(&self) -> VirtualTube {
        self.tube
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_tube() {
        let slot = TubeSlot::new(VirtualTube::mono(0.2));
        let engine_side = slot.clone();
        engine_side.insert(VirtualTube::mono(0.05));
        assert_eq!(slot.current(), VirtualTube::mono(0.05));
    }
}
