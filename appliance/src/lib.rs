//! Ferrocount's instrument: everything that touches the front-end board and the database.
//!
//! - [`assembly`]: the one wiring point: configuration in, store + board + engine out.
//! - [`frontend`]: the SPI protocol and the embedded-hal driver for the NMR front-end board.
//! - [`sim_board`]: a software twin of the board that speaks the same frames, for tests and demos.
//! - [`twin`]: that simulated board in a process of its own behind a socket, and the
//!   `SpiDevice` transport that carries each SPI transaction to it as bytes.
//! - [`procedures`]: measurement procedures (identify, tune, nutation, noise, CPMG) returning
//!   reports that can be stored.
//! - [`engine`]: the acquisition engine, the one owner of the board, and the sample-run workflow.
//! - [`site`]: the site's time zone, lab and instrument identity, paper size, patient name
//!   policy and QC policy (configuration's `[site]` and `[qc]`).
//! - [`interop`]: HL7 v2 messages (ORU^R01) for released results and MLLP, their transport.
//! - [`backup`]: encrypted backups of the database and their verified restore.
//! - [`store`]: the SQLite database (users, patients, samples, runs, measurements, results,
//!   calibrations, QC, instrument log, the hash-chained audit trail).
//! - `linux` (features `hw-linux`, `rpi`): adapters for spidev and GPIO on Linux / Raspberry Pi.
//!
//! Not here: the science (T2 fitting, counting), which lives in `nmr-core` and knows nothing of
//! any of this.

pub mod assembly;
pub mod backup;
pub mod config;
pub mod engine;
pub mod first_admin;
pub mod frontend;
pub mod interop;
#[cfg(feature = "hw-linux")]
pub mod linux;
pub mod procedures;
pub mod sim_board;
pub mod site;
pub mod store;
pub mod twin;
