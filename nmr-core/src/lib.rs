//! Ferrocount's science core.

pub mod fit;
