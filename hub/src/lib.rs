//! Ferrocount's hub: one PostgreSQL database holding the records of many appliances, so a lab
//! manager sees the fleet, a clinician a patient's counts from every instrument, and a lab can
//! compare its instruments.
//!
//! What it is for:
//! - [`store`]: the hub's schema (`hub/migrations/`, forward-only, queries compile-checked
//!   against PostgreSQL), enrolment (one-time codes exchanged for per-appliance credentials,
//!   revocable), ingestion of the sync messages of `hub_protocol::message` (idempotent by message
//!   id, in order per appliance, one transaction per batch, never changing what it holds), and
//!   the hub's own hash-chained audit trail (the appliance's rule, `hub_protocol::audit_chain`);
//! - [`http`]: the hub's HTTP face for appliances, `POST /hub/v1/enrol` and
//!   `POST /hub/v1/ingest` (the binary's `ferrocount hub` serves it, over TLS when configured).
//!
//! Not for: anything an appliance does (measuring, counting, releasing: the hub holds records,
//! it never makes or changes them), the appliance's SQLite store, or the hub's pages (a later
//! part of issue 15).
//!
//! Data flows one way, appliance → hub; back go only the enrolment answer and acknowledgements.

pub mod http;
pub mod store;

pub use store::{HubError, HubStore};
