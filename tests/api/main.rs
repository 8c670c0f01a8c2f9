//! End-to-end tests of the web face's API and its HTML pages: the real router, store and engine (simulated board,
//! instant clock) over loopback HTTP, and the real binary (`helpers::ServeProcess`) for start-up,
//! SIGTERM, schemathesis and a kill mid-send.

mod helpers;
#[path = "../support/test_board.rs"]
mod test_board;

mod bad_input;
mod fhir;
mod killed_mid_send;
mod locks;
mod openapi_conformance;
mod openapi_tls;
mod page_locks;
mod pages_admin;
mod pages_clinical;
mod pages_lab;
mod pages_outbox;
mod patients;
mod qc_gate;
mod report_pdf;
mod runs;
mod schemathesis;
mod serve_binary;
mod session;
