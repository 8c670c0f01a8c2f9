//! Ferrocount's web face: the axum application that serves the HTML pages, the JSON API under `/api/v1`, its
//! authentication (session cookies with CSRF tokens, or bearer API tokens), the role locks on
//! every route, and live run events over server-sent events.
//!
//! What it is for: translating HTTP into calls on the store and the acquisition engine, and
//! their answers and errors back into JSON and RFC 9457 problem documents.
//!
//! What it is not for: science (`nmr-core`), the board or SQL (`appliance`). It sees domain types
//! and serde DTOs, never `sqlx` rows or driver types.
//!
//! Entry point: [`Application::build`], then [`Application::run_until`].

pub mod api;
mod application;
pub mod assets;
pub mod auth;
pub mod charts;
pub mod extract;
pub mod pages;
pub mod problem;
pub mod report_pdf;
pub mod roles;
pub mod state;
pub use operations::throttle;
pub mod views;

pub use application::{Application, ServeError, router, serve_router, server_tls_config};
pub use problem::ApiError;
pub use state::AppState;
