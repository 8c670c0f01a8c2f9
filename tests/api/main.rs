//! End-to-end tests of the web face's API: the real router, store and engine (simulated board,
//! instant clock) over loopback HTTP, and the real binary for start-up and SIGTERM.

mod helpers;

mod bad_input;
mod locks;
mod patients;
mod runs;
mod serve_binary;
mod session;
