//! The one HTTPS client the appliance uses towards other machines (the hospital's FHIR server,
//! the hub): HTTPS only, no redirects, a time-out, and either the system's roots or, when a CA
//! file is configured, that file's certificates only.
//!
//! Not for: MLLP over TLS (a raw TLS stream, `appliance::interop::mllp`) or the service's own
//! HTTPS (`web_ui::serve_router`).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HttpsClientError {
    /// The CA file cannot be read or holds no PEM certificate.
    #[error("the CA file {path} cannot be used: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TLS library refused the configuration.
    #[error("the HTTPS client could not be made: {0}")]
    Build(String),
}

/// An HTTPS client with `timeout` for connecting and for a whole request, trusting only the
/// certificates in `ca_file` when it is given, else the system's roots.
pub fn https_client(
    timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, HttpsClientError> {
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ferrocount/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let ca_error = |reason: String| HttpsClientError::CaFile {
            path: path.to_owned(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
        if certificates.is_empty() {
            return Err(ca_error("no PEM certificate in it".into()));
        }
        builder = builder.tls_built_in_root_certs(false);
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|e| HttpsClientError::Build(e.to_string()))
}

/// An HTTP error in words, with its causes (reqwest's own text omits them).
pub fn error_words(error: &reqwest::Error) -> String {
    let mut words = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        words.push_str(": ");
        words.push_str(&cause.to_string());
        source = cause.source();
    }
    words
}
