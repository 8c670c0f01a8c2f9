//! Signing in and out in the browser.
//!
//! The sign-in form is protected against login CSRF by a pre-session cookie
//! (`ferrocount_sign_in`, random, HttpOnly, SameSite=Strict) whose derived token the form must
//! echo; after signing in, the user goes back to the page that sent them to sign in (`next`,
//! only ever a path on this instrument).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

use appliance::store::random_hex;
use operations::OperationError;

use super::{PageError, PageForm, PageResult, PageUser, read_form};
use crate::auth::{cleared_cookie, cookie_value, csrf_token, same_token, session_cookie};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::{Layout, Notice, SignInPage, paths};

/// Name of the pre-session cookie that guards the sign-in form.
pub const SIGN_IN_COOKIE: &str = "ferrocount_sign_in";

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::SIGN_IN, get(show).post(submit))
        .route(paths::SIGN_OUT, post(sign_out))
}

/// The sign-in page's address, with why the user is sent there and where to return.
pub fn sign_in_href(inactivity: bool, next: &str) -> String {
    let mut href = paths::SIGN_IN.to_owned();
    let mut sep = '?';
    if inactivity {
        href.push_str("?reason=inactivity");
        sep = '&';
    }
    if next != paths::DASHBOARD && is_local_path(next) {
        href.push(sep);
        href.push_str("next=");
        href.push_str(&percent_encode(next));
    }
    href
}

/// Longest return target kept.
const NEXT_MAX_BYTES: usize = 2048;

/// Only a plain path on this server may be a return target: it starts with one `/`, and every
/// character is printable ASCII other than `\\` (no space, tab, newline or other control
/// character, which browsers drop or which would break the `Location` header; no `//host`,
/// `/\\host` or `scheme:`, which browsers read as another site). Anything else goes to the
/// dashboard.
fn is_local_path(next: &str) -> bool {
    next.len() <= NEXT_MAX_BYTES
        && next.starts_with('/')
        && !next.starts_with("//")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Query of the sign-in page.
#[derive(Debug, Default, Deserialize)]
pub struct SignInQuery {
    /// `inactivity` or `signed-out`.
    #[serde(default)]
    reason: Option<String>,
    /// Where to go after signing in.
    #[serde(default)]
    next: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

fn pre_session_secret(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SIGN_IN_COOKIE)
        .filter(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn pre_session_cookie(secret: &str, secure: bool) -> String {
    format!(
        "{SIGN_IN_COOKIE}={secret}; Path={}; HttpOnly; SameSite=Strict{}",
        paths::SIGN_IN,
        if secure { "; Secure" } else { "" }
    )
}

fn cleared_pre_session_cookie(secure: bool) -> String {
    format!(
        "{SIGN_IN_COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0{}",
        paths::SIGN_IN,
        if secure { "; Secure" } else { "" }
    )
}

fn header_value(text: &str) -> Result<HeaderValue, PageError> {
    HeaderValue::from_str(text).map_err(|e| ApiError::Internal(format!("cookie: {e}")).into())
}

/// Renders the sign-in page with a fresh pre-session token (or the one the browser has).
fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    page: impl FnOnce(Layout) -> SignInPage,
) -> PageResult {
    let (secret, fresh) = match pre_session_secret(headers) {
        Some(secret) => (secret, false),
        None => (random_hex::<32>().map_err(ApiError::from)?, true),
    };
    let mut layout = Layout::new(
        state.http.instrument_name.clone(),
        "Sign in",
        csrf_token(&secret),
    );
    layout.inactivity_timeout_min = state.http.session_idle_minutes.max(1);
    let mut response = (status, page(layout)).into_response();
    if fresh {
        response.headers_mut().append(
            header::SET_COOKIE,
            header_value(&pre_session_cookie(&secret, state.tls()))?,
        );
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /sign-in`: the form (or straight on, when already signed in).
async fn show(
    State(state): State<AppState>,
    user: Result<PageUser, super::PageRejection>,
    Query(query): Query<SignInQuery>,
    headers: HeaderMap,
) -> PageResult {
    match user {
        Ok(_) => return Ok(Redirect::to(&target(query.next.as_deref())).into_response()),
        Err(super::PageRejection::ChangePassword) => {
            return Ok(Redirect::to(paths::ACCOUNT).into_response());
        }
        Err(_) => {}
    }
    let reason = query.reason.as_deref();
    let next = query.next.clone().filter(|n| is_local_path(n));
    sign_in_page(&state, &headers, StatusCode::OK, |mut layout| {
        if reason == Some("signed-out") {
            layout.notice = Some(Notice {
                level: "info".into(),
                text: "You have signed out.".into(),
            });
        }
        if reason == Some("password-changed") {
            layout.notice = Some(Notice {
                level: "info".into(),
                text: "Your password is changed. Sign in with the new one.".into(),
            });
        }
        SignInPage {
            layout,
            username: String::new(),
            error: None,
            signed_out_for_inactivity: reason == Some("inactivity"),
            next: next.unwrap_or_default(),
        }
    })
}

fn target(next: Option<&str>) -> String {
    match next {
        Some(next) if is_local_path(next) => next.to_owned(),
        _ => paths::DASHBOARD.to_owned(),
    }
}

/// `POST /sign-in`.
async fn submit(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> PageResult {
    let (parts, body) = request.into_parts();
    let (form, token) = read_form::<SignInForm>(&parts, body, &state).await?;
    let next = form.next.clone().filter(|n| is_local_path(n));
    let refuse = |status: StatusCode, message: String| {
        sign_in_page(&state, &parts.headers, status, |layout| SignInPage {
            layout,
            username: form.username.chars().take(64).collect(),
            error: Some(message),
            signed_out_for_inactivity: false,
            next: next.clone().unwrap_or_default(),
        })
    };
    let token_ok = pre_session_secret(&parts.headers)
        .is_some_and(|secret| same_token(&token, &csrf_token(&secret)));
    if !token_ok {
        return refuse(
            StatusCode::FORBIDDEN,
            "This sign-in form had expired. Please sign in again.".into(),
        );
    }
    match state
        .ops
        .sign_in(
            &form.username,
            &form.password,
            client.ip(),
            state.session_idle(),
        )
        .await
    {
        Ok((_user, secret)) => Ok((
            AppendHeaders([
                (
                    header::SET_COOKIE,
                    header_value(&session_cookie(&secret, state.tls()))?,
                ),
                (
                    header::SET_COOKIE,
                    header_value(&cleared_pre_session_cookie(state.tls()))?,
                ),
            ]),
            Redirect::to(&target(next.as_deref())),
        )
            .into_response()),
        Err(OperationError::BadCredentials) => refuse(
            StatusCode::UNAUTHORIZED,
            "The username or password is wrong.".into(),
        ),
        Err(error @ OperationError::TooManyAttempts { .. }) => refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Sign-in refused: {error}."),
        ),
        Err(other) => Err(ApiError::from(other).into()),
    }
}

/// The sign-out form carries only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct Empty {}

/// `POST /sign-out`: ends the session, clears the cookie, back to the sign-in page.
async fn sign_out(State(state): State<AppState>, form: PageForm<Empty>) -> PageResult {
    state
        .ops
        .sign_out(&form.user.user, &form.user.secret)
        .await?;
    Ok((
        [(
            header::SET_COOKIE,
            header_value(&cleared_cookie(state.tls()))?,
        )],
        Redirect::to(&format!("{}?reason=signed-out", paths::SIGN_IN)),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_local_paths_are_return_targets() {
        for good in ["/patients/12", "/runs/3?tab=qc", "/calibrations/4#line"] {
            assert!(is_local_path(good), "{good}");
        }
        for bad in [
            "/\t/example.com",
            "/\n/example.com",
            "/\r\nSet-Cookie: x=1",
            "//example.com",
            "/\\example.com",
            "/x\\y",
            "https://example.com",
            "javascript:alert(1)",
            "/ /example.com",
            "/\u{7f}",
            "/é",
            "",
            "patients",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
        assert!(!is_local_path(&format!("/{}", "a".repeat(NEXT_MAX_BYTES))));
    }
}
