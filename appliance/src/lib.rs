//! Ferrocount's instrument.
