//! The JSON API under `/api/v1`: one module per resource, each owning its handlers and its
//! request and response types. Every handler authenticates with [`Caller`](crate::auth::Caller),
//! asks for one [`Permission`](crate::roles::Permission), and answers errors as problem+json.

pub mod calibrations;
pub mod fhir;
pub mod health;
pub mod input_schemas;
pub mod instrument;
pub mod outbox;
pub mod patients;
pub mod qc;
pub mod run_report;
pub mod runs;
pub mod session;
pub mod tokens;
pub mod worklist;

pub mod openapi;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The routes under `/api/v1` (and `/healthz`, and the read-only FHIR view under `/fhir`).
pub fn router() -> Router<AppState> {
    documented_routes().split_for_parts().0
}

/// Every route of the API together with its documentation: each path is mounted through
/// `routes!` from handlers annotated with `#[utoipa::path]`, so a route cannot be served without
/// being described in the OpenAPI document ([`openapi::document`]). Mount nothing here with a
/// bare `route` call: it would be served undocumented.
pub fn documented_routes() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(
            session::sign_in,
            session::current,
            session::sign_out
        ))
        .routes(routes!(tokens::create))
        .routes(routes!(session::unlock))
        .routes(routes!(patients::list, patients::register))
        .routes(routes!(patients::show))
        .routes(routes!(patients::runs))
        .routes(routes!(patients::trend))
        .routes(routes!(patients::add_event))
        .routes(routes!(worklist::list))
        .routes(routes!(outbox::list))
        .routes(routes!(outbox::resend))
        .routes(routes!(runs::start))
        .routes(routes!(runs::show))
        .routes(routes!(runs::confirm_tube))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::events))
        .routes(routes!(runs::release))
        .routes(routes!(runs::correct))
        .routes(routes!(run_report::report_pdf))
        .routes(routes!(instrument::show))
        .routes(routes!(qc::show, qc::add))
        .routes(routes!(calibrations::list, calibrations::add))
        .routes(routes!(calibrations::approve))
        .routes(routes!(calibrations::reject))
        .routes(routes!(openapi::serve_document));
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health::healthz))
        .routes(routes!(fhir::search))
        .routes(routes!(fhir::read))
        .nest("/api/v1", v1)
}
