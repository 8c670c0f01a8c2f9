//! Ferrocount's science core: echo trains, T2 fitting, the CPMG simulator, the CTC assay and QC
//! rules.
//!
//! Everything here is a pure function over plain data. This crate knows nothing of Linux, SPI, SQL,
//! HTTP, async or wall-clock time: it takes numbers and returns numbers and reports, and it never
//! panics on bad data: it returns an error or a flagged result.
//!
//! - [`echo_train`]: the validated [`EchoTrain`] (complex, phased real or magnitude: [`SignalKind`])
//!   with its [`Acquisition`] metadata and phasing.
//! - [`noise`]: the model-free noise estimate every fit's uncertainty stands on.
//! - [`fit`]: fits that turn a train into T2 with honest uncertainty.
//! - [`simulate`]: the physics-based [`CpmgSimulation`], seeded, with imperfect refocusing by
//!   the extended phase graph ([`epg`]).
//! - [`crlb`]: the Cramér–Rao bound the fits are judged against.
//! - [`io`]: echo-train files (CSV, Green Imaging GeoSpec, Bruker minispec), parsed from text.
//! - [`assay`]: from replicate R2 values to a CTC count: ΔR2, calibration, detection limits,
//!   intervals, categories and calls.
//! - [`qc`]: per-measurement QC flags and Westgard rules over control materials.
//! - [`vocabulary`]: the error of the named vocabularies (category, call, tube kind, QC verdict),
//!   each of which carries its own text form.
//!
//! Not here: the board, storage, the web face; they live in `appliance` and `web-ui`.

// Numeric guards are written `!(x > limit)` on purpose: a NaN fails the comparison and so takes
// the error branch, which `x <= limit` would let through.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod assay;
pub mod crlb;
pub mod echo_train;
pub mod epg;
pub mod fit;
pub mod io;
mod json_float;
mod linalg;
pub mod noise;
pub mod qc;
pub mod simulate;
pub mod vocabulary;

pub use echo_train::{Acquisition, EchoTrain, Phased, Signal, SignalKind, TrainError};
pub use simulate::{Component, CpmgSimulation, Refocusing};
