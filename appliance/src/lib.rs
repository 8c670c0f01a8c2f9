//! Ferrocount's instrument.
//!
//! Everything that touches the outside world lives here: the board, the measurement procedures,
//! the acquisition engine and storage. The science it calls is in `nmr-core`, which knows nothing
//! of any of this.

pub mod store;
