//! What a Ferrocount appliance and its hub must agree on, byte for byte, without either side
//! depending on the other's storage:
//!
//! - [`message`]: the sync protocol, the typed and versioned messages that carry an appliance's
//!   records (released results with their versions and signatures, measurements with their raw
//!   trains, QC results, calibrations, heartbeats) to the hub, each with a stable id and a
//!   per-appliance sequence number;
//! - [`audit_chain`]: the rule by which both sides chain their audit trails (the canonical
//!   encoding of a row and its SHA-256 link to the row before), so one verifier's logic holds
//!   for both.
//!
//! Not for: storage (the appliance's SQLite store lives in `appliance::store`, the hub's
//! PostgreSQL store in `hub`), transport (HTTP, TLS and credentials are the hub's and the
//! sender's business), or deciding what may be sent (that is the appliance's operations layer).

pub mod audit_chain;
pub mod message;
