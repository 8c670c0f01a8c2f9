//! Who is calling: a session cookie (browsers) or `Authorization: Bearer <token>` (scripts).
//!
//! - The session cookie `ferrocount_session` holds a random secret; the database holds only its
//!   hash, the session's expiry, and pushes the expiry forward on each use (idle sign-out).
//!   The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` when served over TLS.
//! - A cookie-authenticated unsafe request (anything but GET, HEAD, OPTIONS) must carry the
//!   session's CSRF token in the `X-CSRF-Token` header. The token is derived from the session
//!   secret (SHA-256 under a fixed label), so it is per session, needs no storage, and cannot be
//!   computed by a page that cannot read the HttpOnly cookie. Bearer requests are exempt: a
//!   browser never attaches a bearer token on its own.
//!
//! An account whose password a lab admin reset is refused (403, in words) until its user has
//! changed the temporary password on the account page
//! (`operations::account::refuse_until_password_changed`); its tokens were revoked at the reset.
//!
//! Not for: deciding what a role may do ([`crate::roles`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use sha2::{Digest, Sha256};

use appliance::store::users::User;

use crate::problem::ApiError;
use crate::roles::{Permission, require};
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ferrocount_session";

/// Header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A browser session; the secret from its cookie.
    Session(String),
    /// An API token.
    Bearer,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user.
    pub user: User,
    /// How they authenticated.
    pub credential: Credential,
}

impl Caller {
    /// Refuses with 403, naming the role and the action, unless the caller's role allows it.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        require(self.user.role, permission)
    }

    /// The caller as the operations layer takes them.
    pub fn requester(&self) -> operations::Requester {
        operations::Requester::User(self.user.clone())
    }
}

/// The CSRF token of a session secret.
pub fn csrf_token(session_secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"ferrocount-csrf-v1:")
        .chain_update(session_secret.as_bytes())
        .finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The value of the session cookie in a request, if any.
pub fn session_secret(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
}

/// The non-empty value of the cookie `name` in a request, if any.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// The `Set-Cookie` value that opens a session.
pub fn session_cookie(secret: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie(secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Constant-time comparison of two tokens.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            // The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer`, `BEARER`.
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.trim_start().split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim())
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ApiError::Unauthenticated(
                        "the Authorization header must be `Bearer <token>`".into(),
                    )
                })?;
            let user = state.ops.token_user(token).await?.ok_or_else(|| {
                ApiError::Unauthenticated(
                    "the API token is unknown or revoked, or has expired".into(),
                )
            })?;
            operations::account::refuse_until_password_changed(&user)?;
            return Ok(Self {
                user,
                credential: Credential::Bearer,
            });
        }
        let secret = session_secret(&parts.headers).ok_or_else(|| {
            ApiError::Unauthenticated(
                "sign in (POST /api/v1/session) or send `Authorization: Bearer <token>`".into(),
            )
        })?;
        let (user, _session) = state
            .store
            .session_user(&secret, state.session_idle())
            .await?
            .ok_or_else(|| {
                ApiError::Unauthenticated(
                    "the session has ended (signed out or idle too long); sign in again".into(),
                )
            })?;
        if !is_safe(&parts.method) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !same_token(sent, &csrf_token(&secret)) {
                return Err(ApiError::Csrf);
            }
        }
        // An account whose password a lab admin reset is refused until its user changed it
        // on the account page (the one rule: `operations::account`).
        operations::account::refuse_until_password_changed(&user)?;
        Ok(Self {
            user,
            credential: Credential::Session(secret),
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; ferrocount_session=abc; b=2"),
        );
        assert_eq!(session_secret(&headers).as_deref(), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("ferrocount_session="),
        );
        assert_eq!(session_secret(&headers), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let a = csrf_token("secret-a");
        assert_eq!(a.len(), 64);
        assert_ne!(a, csrf_token("secret-b"));
        assert!(same_token(&a, &csrf_token("secret-a")));
        assert!(!same_token(&a, &a[..63]));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_under_tls() {
        let plain = session_cookie("s", false);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        assert!(session_cookie("s", true).ends_with("; Secure"));
    }
}
