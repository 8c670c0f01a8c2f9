//! Ferrocount's science core.

pub mod assay;
