//! Interoperability: the messages that carry released results to the hospital's systems, and
//! how they travel.
//!
//! - [`hl7`]: a small HL7 v2 builder (segments, fields, escaping) and the reading of an
//!   acknowledgement.
//! - [`oru`]: the HL7 v2.5.1 ORU^R01 of one released result, from typed values.
//! - [`fhir`]: the FHIR R4 resources of one released result (a transaction Bundle to send, a
//!   DiagnosticReport to serve), from the same typed observations.
//! - [`mllp`]: one MLLP exchange over TCP.
//! - [`destination`]: the configuration's `[[destinations]]`, checked.
//!
//! Not here: when a message is written or sent (the store's outbox and the operations layer's
//! sender), what is released (the operations layer).

pub mod destination;
pub mod fhir;
pub mod hl7;
pub mod mllp;
pub mod oru;
