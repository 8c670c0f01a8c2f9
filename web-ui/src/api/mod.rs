//! The JSON API under `/api/v1`: one module per resource, each owning its handlers and its
//! request and response types. Every handler authenticates with [`Caller`](crate::auth::Caller),
//! asks for one [`Permission`](crate::roles::Permission), and answers errors as problem+json.

pub mod calibrations;
pub mod health;
pub mod instrument;
pub mod patients;
pub mod qc;
pub mod runs;
pub mod session;
pub mod tokens;

use axum::Router;

use crate::state::AppState;

/// The routes under `/api/v1` (and `/healthz`).
pub fn router() -> Router<AppState> {
    use axum::routing::{get, post};
    let v1 = Router::new()
        .route(
            "/session",
            post(session::sign_in)
                .get(session::current)
                .delete(session::sign_out),
        )
        .route("/tokens", post(tokens::create))
        .route("/patients", get(patients::list).post(patients::register))
        .route("/patients/{id}", get(patients::show))
        .route("/patients/{id}/trend", get(patients::trend))
        .route("/runs", post(runs::start))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/confirm-tube", post(runs::confirm_tube))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/events", get(runs::events))
        .route("/runs/{id}/release", post(runs::release))
        .route("/instrument", get(instrument::show))
        .route("/qc", get(qc::show).post(qc::add))
        .route(
            "/calibrations",
            get(calibrations::list).post(calibrations::add),
        );
    Router::new()
        .route("/healthz", get(health::healthz))
        .nest("/api/v1", v1)
}
