//! Ferrocount's web face.
pub mod assets;
pub mod charts;
pub mod views;
