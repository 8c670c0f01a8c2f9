//! The one error type of the web face, answered as RFC 9457 problem details
//! (`application/problem+json` with `type`, `title`, `status`, `detail`).
//!
//! Every client error names what was wrong: the field, the id, the permission. Internal errors
//! (a database that failed, a bug) are logged with their cause and answered with a bare 500 whose
//! detail says only that the fault was logged; nothing of the cause reaches the client.
//!
//! Not for: deciding what is allowed (that is [`crate::roles`]) or checking values (the domain
//! types parse themselves; their errors arrive here through `From`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use appliance::engine::EngineError;
use appliance::store::StoreError;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, or credentials that are not (or no longer) valid.
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// The user name or password was wrong (which of the two is not said, on purpose).
    #[error("the user name or password is wrong")]
    BadCredentials,
    /// Authenticated, but the role may not do this.
    #[error("a {role} may not {action}")]
    Forbidden {
        /// The caller's role.
        role: String,
        /// What was refused, in words.
        action: &'static str,
    },
    /// A cookie-authenticated unsafe request without the session's CSRF token.
    #[error(
        "missing or wrong X-CSRF-Token header: unsafe requests with a session cookie must carry the session's CSRF token"
    )]
    Csrf,
    /// The thing named in the path does not exist.
    #[error("{entity} {key} not found")]
    NotFound {
        /// The kind of thing.
        entity: &'static str,
        /// Its id or name.
        key: String,
    },
    /// The request body could not be read as JSON at all.
    #[error("{0}")]
    MalformedBody(String),
    /// A value in the request is of the wrong type, missing or refused.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field (or path or query parameter).
        field: String,
        /// Why.
        reason: String,
    },
    /// The body is larger than the configured limit.
    #[error("the request body is larger than the limit of {limit_bytes} bytes")]
    TooLarge {
        /// The limit.
        limit_bytes: usize,
    },
    /// The body is not declared as `application/json`.
    #[error("the request body must be sent with Content-Type: application/json")]
    UnsupportedMediaType,
    /// The request conflicts with the state of the thing it is about.
    #[error("{0}")]
    Conflict(String),
    /// Too many failed sign-ins.
    #[error("too many failed sign-ins for {what}; try again in {retry_after_s} s")]
    TooManyAttempts {
        /// What is throttled: "this user name from this address".
        what: &'static str,
        /// Seconds until the next attempt is accepted.
        retry_after_s: u64,
    },
    /// No route has this path.
    #[error("no resource at {0}")]
    NoRoute(String),
    /// The route exists, the method does not.
    #[error("method not allowed here")]
    MethodNotAllowed,
    /// The appliance cannot serve now (its database or engine does not answer).
    #[error("the appliance is not available")]
    Unavailable,
    /// A fault of the appliance (logged, hidden from the client).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The problem document.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_s: Option<u64>,
}

impl ApiError {
    /// Status, problem-type slug and title.
    fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            Self::BadCredentials => (
                StatusCode::UNAUTHORIZED,
                "bad-credentials",
                "Sign-in refused",
            ),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", "Not permitted"),
            Self::Csrf => (StatusCode::FORBIDDEN, "csrf", "CSRF token missing or wrong"),
            Self::NotFound { .. } => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MalformedBody(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "The request body is not valid JSON",
            ),
            Self::Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "A value in the request is invalid",
            ),
            Self::TooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request body too large",
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "JSON expected",
            ),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::TooManyAttempts { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-sign-in-attempts",
                "Too many failed sign-ins",
            ),
            Self::NoRoute(_) => (StatusCode::NOT_FOUND, "no-route", "No such resource"),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.kind().0
    }

    /// The short title people read ("Not permitted").
    pub fn title(&self) -> &'static str {
        self.kind().2
    }

    /// What was wrong, in words; an internal fault is logged here and described only as such.
    pub fn public_detail(&self) -> String {
        match self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error answered with 500");
                "an internal error occurred; it has been logged".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// Shorthand for an invalid field.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.kind();
        let detail = self.public_detail();
        let field = match &self {
            Self::Invalid { field, .. } => Some(field.as_str()),
            _ => None,
        };
        let retry_after_s = match &self {
            Self::TooManyAttempts { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        };
        let problem = Problem {
            problem_type: format!("urn:ferrocount:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail,
            field,
            retry_after_s,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ferrocount\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { entity, key } => Self::NotFound { entity, key },
            StoreError::Duplicate { entity, key } => {
                Self::Conflict(format!("{entity} {key} already exists"))
            }
            StoreError::Invalid { field, reason } => Self::invalid(field, reason),
            StoreError::Conflict(text) => Self::Conflict(text),
            StoreError::NotPermitted(text) => Self::Forbidden {
                role: text,
                action: "do this",
            },
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<operations::OperationError> for ApiError {
    fn from(error: operations::OperationError) -> Self {
        use operations::OperationError as E;
        match error {
            E::Forbidden { role, action } => Self::Forbidden { role, action },
            E::BadCredentials => Self::BadCredentials,
            E::NotFound { entity, key } => Self::NotFound { entity, key },
            E::Conflict(text) => Self::Conflict(text),
            E::Invalid { field, reason } => Self::invalid(field, reason),
            E::TooManyAttempts {
                what,
                retry_after_s,
            } => Self::TooManyAttempts {
                what,
                retry_after_s,
            },
            E::Store(store) => store.into(),
            E::Engine(engine) => engine.into(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Invalid { field, reason } => Self::invalid(field, reason),
            EngineError::SimulationOnHardware => Self::invalid("simulate", error.to_string()),
            EngineError::NotActive(_)
            | EngineError::NotAwaitingTube(_)
            | EngineError::NotCancellable { .. }
            | EngineError::Calibration(_)
            | EngineError::Stopped => Self::Conflict(error.to_string()),
            EngineError::Store(store) => store.into(),
        }
    }
}
