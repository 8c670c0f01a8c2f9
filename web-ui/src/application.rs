//! The web face as a running server: [`Application::build`] binds the listener (port 0 picks a
//! free port, for tests), loads the TLS certificate when one is configured, and assembles the
//! router with its layers; [`Application::run_until`] serves (HTTP, or HTTPS only) until a
//! shutdown signal, then stops accepting and lets requests in flight finish.
//!
//! TLS is rustls with the *ring* provider (no aws-lc-rs: it needs cmake and nasm to build),
//! served by `axum-server`, which does each handshake in the connection's own task (a slow
//! client cannot hold up the others) with a handshake time-out. A plain-HTTP request to the TLS
//! port gets no answer: the handshake fails and the connection is closed.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use appliance::config::{ApplianceConfig, TlsConfig};
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
    /// A TLS certificate or key file is missing, unreadable or not usable.
    #[error("TLS {what} {}: {reason}", file.display())]
    Tls {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The configured file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
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
    /// The TLS settings when serving HTTPS.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Application {
    /// Loads the TLS certificate and key when `[http.tls]` is configured (before anything is
    /// bound, so a bad file stops start-up with its name), binds `config.listen` and builds the
    /// router over the store and the engine.
    pub async fn build(
        config: &ApplianceConfig,
        store: Store,
        engine: EngineHandle,
    ) -> Result<Self, ServeError> {
        let tls = config
            .http
            .tls
            .as_ref()
            .map(server_tls_config)
            .transpose()?
            .map(Arc::new);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    address: config.listen,
                    source,
                })?;
        let address = listener.local_addr()?;
        let state =
            AppState::new(store, engine, config.http.clone()).with_backup(config.backup.clone());
        Ok(Self {
            listener,
            address,
            router: router(state),
            tls,
        })
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
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
        serve_router(self.listener, self.router, self.tls, shutdown).await
    }
}

/// Serves `router` on `listener` (HTTPS only when `tls` is given, else HTTP) until `shutdown`
/// completes; then stops accepting connections and waits for the requests in flight. The web
/// face and the hub (`ferrocount hub`) both serve through it.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let Some(tls) = tls else {
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await?;
        return Ok(());
    };
    let handle = axum_server::Handle::new();
    let signal = handle.clone();
    let watcher = tokio::spawn(async move {
        shutdown.await;
        // No deadline here: like plain HTTP, the caller bounds the drain.
        signal.graceful_shutdown(None);
    });
    let served =
        axum_server::from_tcp_rustls(listener.into_std()?, RustlsConfig::from_config(tls))?
            .handle(handle)
            .serve(service)
            .await;
    watcher.abort();
    served?;
    Ok(())
}

/// The rustls server settings from the configured PEM files: the certificate chain (leaf
/// first) and its private key (PKCS#8, PKCS#1 or SEC1). Each failure names the file.
pub fn server_tls_config(tls: &TlsConfig) -> Result<rustls::ServerConfig, ServeError> {
    let certificates = read_certificates(&tls.cert_file)?;
    let key = read_private_key(&tls.key_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ServeError::Tls {
            what: "certificate",
            file: tls.cert_file.clone(),
            reason: format!("no usable TLS protocol version: {error}"),
        })?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|error| ServeError::Tls {
            what: "private key",
            file: tls.key_file.clone(),
            reason: format!(
                "does not go with the certificate {} or is not usable: {error}",
                tls.cert_file.display()
            ),
        })
        .map(|mut config| {
            // HTTP/2 where the client offers it, else HTTP/1.1 (axum-server speaks both).
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            config
        })
}

fn read_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let failed = |reason: String| ServeError::Tls {
        what: "certificate",
        file: file.to_owned(),
        reason,
    };
    let pem = std::fs::read(file).map_err(|error| failed(format!("cannot be read: {error}")))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| failed(format!("is not valid PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(failed(
            "holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)".to_owned(),
        ));
    }
    Ok(certificates)
}

fn read_private_key(file: &Path) -> Result<PrivateKeyDer<'static>, ServeError> {
    let failed = |reason: String| ServeError::Tls {
        what: "private key",
        file: file.to_owned(),
        reason,
    };
    let pem = std::fs::read(file).map_err(|error| failed(format!("cannot be read: {error}")))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => failed(
            "holds no private key (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block)"
                .to_owned(),
        ),
        other => failed(format!("is not valid PEM: {other}")),
    })
}

/// Scripts and styles only from the instrument itself (no inline scripts anywhere); SVG charts
/// are inline markup; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The whole router with its layers: body-size limit, request time-out, security headers,
/// `Cache-Control: no-store` unless an answer says otherwise, response compression, tracing,
/// and problem answers for unknown routes and methods.
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
        // Pages and API answers may carry patient data: no browser or proxy keeps them (sign
        // out, press Back: nothing is shown). Only the embedded static files say otherwise
        // (`no-cache` with an ETag), so this is the default for every other answer.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(compression())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// gzip for what a browser or script downloads (HTML, JSON, CSV, CSS, JS, SVG) when the client
/// accepts it; never for server-sent events, which the compressor would hold back until its
/// buffer fills (the live run view would stall), nor for bodies too small to gain.
fn compression() -> CompressionLayer<impl Predicate> {
    // tower-http's default predicate already skips event streams, gRPC and raster images;
    // the SSE exclusion is stated again so that it survives a change of the default.
    CompressionLayer::new()
        .gzip(true)
        .compress_when(DefaultPredicate::new().and(NotForContentType::SSE))
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
