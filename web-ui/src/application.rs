//! The web face as a running server: [`Application::build`] binds the listener (port 0 picks a
//! free port, for tests) and assembles the router with its layers; [`Application::run_until`]
//! serves until a shutdown signal, then stops accepting and lets requests in flight finish.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use appliance::config::ApplianceConfig;
use appliance::engine::EngineHandle;
use appliance::store::Store;

use crate::problem::ApiError;
use crate::state::AppState;

/// Why the web face could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the web server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// The bound, not yet serving, web face.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    router: Router,
}

impl Application {
    /// Binds `config.listen` and builds the router over the store and the engine.
    pub async fn build(
        config: &ApplianceConfig,
        store: Store,
        engine: EngineHandle,
    ) -> Result<Self, ServeError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    address: config.listen,
                    source,
                })?;
        let address = listener.local_addr()?;
        let state = AppState::new(store, engine, config.http.clone());
        Ok(Self {
            listener,
            address,
            router: router(state),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Serves until `shutdown` completes; then stops accepting connections and waits for the
    /// requests in flight (open event streams end with the server).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        Ok(())
    }
}

/// Scripts and styles only from the instrument itself (no inline scripts anywhere); SVG charts
/// are inline markup; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The whole router with its layers: body-size limit, request time-out, tracing, and problem
/// answers for unknown routes and methods.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.http.request_timeout_s.max(1));
    let limit = state.http.max_body_bytes;
    crate::api::router()
        .merge(crate::pages::router())
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// An unknown path: an HTML "not found" page for a browser that prefers HTML (outside the API),
/// a problem document for everyone else.
async fn no_route(uri: Uri, headers: HeaderMap) -> Response {
    let error = ApiError::NoRoute(uri.path().to_owned());
    let api = uri.path() == "/api" || uri.path().starts_with("/api/");
    if !api && prefers_html(&headers) {
        crate::pages::PageError::from(error).into_response()
    } else {
        error.into_response()
    }
}

/// Whether the `Accept` header ranks `text/html` above JSON (as browsers' navigations do).
fn prefers_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let quality = |wanted: &[&str]| {
        accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let media = parts.next()?.trim().to_ascii_lowercase();
                if !wanted.contains(&media.as_str()) {
                    return None;
                }
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some(q)
            })
            .fold(None, |best: Option<f32>, q| {
                Some(best.map_or(q, |b| b.max(q)))
            })
    };
    match quality(&["text/html", "application/xhtml+xml"]) {
        Some(html) if html > 0.0 => quality(&["application/json", "application/problem+json"])
            .is_none_or(|json| html > json),
        _ => false,
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
