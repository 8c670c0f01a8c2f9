//! Ferrocount's science core: echo trains, T2 fitting, the CPMG simulator, and (as it grows) the
//! CTC assay and QC rules.
//!
//! Everything here is a pure function over plain data. This crate knows nothing of Linux, SPI, SQL,
//! HTTP, async or wall-clock time: it takes numbers and returns numbers and reports, and it never
//! panics on bad data: it returns an error or a flagged result.
//!
//! - [`echo_train`]: the validated [`EchoTrain`] with its [`Acquisition`] metadata, phasing and noise.
//! - [`fit`]: fits that turn a train into T2 with honest uncertainty.
//! - [`simulate`]: the physics-based [`CpmgSimulation`], seeded.
//! - [`crlb`]: the Cramér–Rao bound the fits are judged against.
//! - [`io`]: echo-train files (CSV, Green Imaging GeoSpec, Bruker minispec), parsed from text.
//!
//! Not here: the board, storage, the web face; they live in `appliance` and `web-ui`.

// Numeric guards are written `!(x > limit)` on purpose: a NaN fails the comparison and so takes
// the error branch, which `x <= limit` would let through.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod crlb;
pub mod echo_train;
pub mod fit;
pub mod io;
mod linalg;
pub mod simulate;

pub use echo_train::{Acquisition, EchoTrain, Phased, Signal, TrainError};
pub use simulate::{Component, CpmgSimulation};
