//! Ferrocount's science core.

pub mod assay;
pub mod qc;
