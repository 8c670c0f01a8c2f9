//! The HTML pages: routes that load what a page shows from the store and the engine, build its
//! view model ([`crate::views`]) and render it; form posts that change something and redirect.
//!
//! Pages authenticate by the session cookie only ([`PageUser`]): a request without a live
//! session is redirected to the sign-in page (with `reason=inactivity` when its session ended
//! for idleness) instead of answered with a problem document. Every form post goes through
//! [`PageForm`], which checks the `csrf_token` field against the session. Errors are answered as
//! an HTML page that names what was wrong ([`PageError`]).
//!
//! The role decisions are the API's ([`crate::roles`]): a page asks [`PageUser::require`] for the
//! same permission its JSON twin asks for. Not here: the JSON API (the `api` module) or rendering
//! details ([`crate::views`]).

pub mod account;
pub mod admin;
pub mod calibrations;
pub mod dashboard;
pub mod outbox;
pub mod patients;
pub mod qc;
pub mod runs;
pub mod session;
mod static_files;
pub mod worklist;

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use appliance::store::users::{self, User};

use crate::auth::{csrf_token, same_token, session_secret};
use crate::problem::ApiError;
use crate::roles::{Permission, allows, require};
use crate::state::AppState;
use crate::views::{ErrorPage, Layout, Role, SignedInUser, paths};

/// Every page route.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(static_files::router())
        .merge(session::router())
        .merge(account::router())
        .merge(dashboard::router())
        .merge(runs::router())
        .merge(patients::router())
        .merge(worklist::router())
        .merge(qc::router())
        .merge(calibrations::router())
        .merge(admin::router())
        .merge(outbox::router())
}

/// A signed-in browser user (session cookie only; pages never take bearer tokens).
#[derive(Clone, Debug)]
pub struct PageUser {
    /// The user.
    pub user: User,
    /// The session secret from the cookie (its CSRF token is derived from it).
    secret: String,
}

impl PageUser {
    /// Refuses with a 403 page naming the role and the action unless the role allows it.
    pub fn require(&self, permission: Permission) -> Result<(), PageError> {
        Ok(require(self.user.role, permission)?)
    }

    /// The user as the operations layer takes them.
    pub fn requester(&self) -> operations::Requester {
        operations::Requester::User(self.user.clone())
    }

    /// Whether the role allows `permission` (to show or hide a control).
    pub fn may(&self, permission: Permission) -> bool {
        allows(self.user.role, permission)
    }

    /// The session's CSRF token.
    pub fn csrf_token(&self) -> String {
        csrf_token(&self.secret)
    }

    /// The user as the pages show them.
    pub fn signed_in_user(&self) -> SignedInUser {
        SignedInUser {
            username: self.user.username.to_string(),
            display_name: self.user.display_name.clone(),
            role: view_role(self.user.role),
        }
    }

    /// The page frame for this user on `path`, titled `title`.
    pub fn layout(&self, state: &AppState, title: &str, path: &str) -> Layout {
        let mut layout = Layout::new(state.http.instrument_name.clone(), title, self.csrf_token())
            .signed_in(self.signed_in_user(), path);
        layout.inactivity_timeout_min = state.http.session_idle_minutes.max(1);
        layout
    }
}

/// The pages' name for a stored role.
pub fn view_role(role: users::Role) -> Role {
    match role {
        users::Role::Operator => Role::Operator,
        users::Role::Clinician => Role::Clinician,
        users::Role::LabAdmin => Role::LabAdmin,
    }
}

/// Why a page request did not reach its handler.
#[derive(Debug)]
pub enum PageRejection {
    /// No live session: go to the sign-in page, then come back to `next`.
    SignIn {
        /// The session cookie was there but the session had ended (idle or signed out elsewhere).
        inactivity: bool,
        /// Where to return after signing in.
        next: String,
    },
    /// A lab admin reset the user's password: only the account page (to change it) and signing
    /// out open until it is changed.
    ChangePassword,
    /// Anything else, as an error page.
    Error(PageError),
}

impl From<PageError> for PageRejection {
    fn from(error: PageError) -> Self {
        Self::Error(error)
    }
}

impl From<ApiError> for PageRejection {
    fn from(error: ApiError) -> Self {
        Self::Error(error.into())
    }
}

impl IntoResponse for PageRejection {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn { inactivity, next } => {
                Redirect::to(&session::sign_in_href(inactivity, &next)).into_response()
            }
            Self::ChangePassword => Redirect::to(paths::ACCOUNT).into_response(),
            Self::Error(error) => error.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = PageRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, PageRejection> {
        let next = return_path(&parts.uri);
        let Some(secret) = session_secret(&parts.headers) else {
            return Err(PageRejection::SignIn {
                inactivity: false,
                next,
            });
        };
        match state
            .store
            .session_user(&secret, state.session_idle())
            .await
            .map_err(ApiError::from)?
        {
            Some((user, _session)) => {
                // The rule is the operations layer's; which pages stay open for the change is
                // the face's: the account page, its form and signing out.
                let open_anyway = [paths::ACCOUNT, paths::ACCOUNT_PASSWORD, paths::SIGN_OUT]
                    .contains(&parts.uri.path());
                if !open_anyway
                    && operations::account::refuse_until_password_changed(&user).is_err()
                {
                    return Err(PageRejection::ChangePassword);
                }
                Ok(Self { user, secret })
            }
            None => Err(PageRejection::SignIn {
                inactivity: true,
                next,
            }),
        }
    }
}

/// Where a page request should come back to after signing in: its path and query, for pages
/// people navigate to (GET); the dashboard for form posts.
fn return_path(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| paths::DASHBOARD.to_owned())
}

/// A form post from a signed-in user, its CSRF token checked: `T` is the form without the token
/// (`T` must not deny unknown fields, since `csrf_token` is among them).
#[derive(Debug)]
pub struct PageForm<T> {
    /// Who posted.
    pub user: PageUser,
    /// The form's fields.
    pub form: T,
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf_token: String,
}

/// Reads a form body (within the configured size limit) and decodes it as `T`, naming the field
/// that was wrong.
pub(crate) async fn read_form<T: DeserializeOwned>(
    parts: &Parts,
    body: Body,
    state: &AppState,
) -> Result<(T, String), PageError> {
    let limit = state.http.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge { limit_bytes: limit })?;
    let rebuild = || {
        let mut request = Request::new(Body::from(bytes.clone()));
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.headers_mut() = parts.headers.clone();
        request
    };
    let Form(token) = Form::<CsrfField>::from_request(rebuild(), state)
        .await
        .map_err(|rejection| ApiError::invalid("form", rejection.body_text()))?;
    let Form(form) = Form::<T>::from_request(rebuild(), state)
        .await
        .map_err(|rejection| ApiError::invalid("form", rejection.body_text()))?;
    Ok((form, token.csrf_token))
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for PageForm<T> {
    type Rejection = PageRejection;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageRejection> {
        let (mut parts, body) = request.into_parts();
        let user = PageUser::from_request_parts(&mut parts, state).await?;
        let (form, token) = read_form::<T>(&parts, body, state).await?;
        if !same_token(&token, &user.csrf_token()) {
            return Err(PageError::csrf().into());
        }
        Ok(Self { user, form })
    }
}

/// A failed page request, answered as an HTML page with the error's status.
#[derive(Debug)]
pub struct PageError {
    error: ApiError,
    layout: Option<Box<Layout>>,
    /// A form's CSRF token was missing or wrong: refused with 403 whatever the error's status.
    forbidden: bool,
}

impl PageError {
    /// The form's CSRF token was missing or wrong (a stale page, or a forged post): 403.
    pub fn csrf() -> Self {
        let mut error = Self::from(ApiError::invalid(
            "csrf_token",
            "the form is out of date or did not come from this instrument; reload the page and try again",
        ));
        error.forbidden = true;
        error
    }

    /// The same error shown inside the user's page frame (navigation, sign-out).
    pub fn within(mut self, layout: Layout) -> Self {
        self.layout = Some(Box::new(layout));
        self
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        if self.forbidden {
            StatusCode::FORBIDDEN
        } else {
            self.error.status()
        }
    }
}

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(error: E) -> Self {
        Self {
            error: error.into(),
            layout: None,
            forbidden: false,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let title = self.error.title().to_owned();
        let mut layout = self
            .layout
            .map(|layout| *layout)
            .unwrap_or_else(|| Layout::new("Ferrocount", title.clone(), String::new()));
        layout.page_title = title.clone();
        let page = ErrorPage {
            layout,
            status: status.as_u16(),
            title,
            detail: self.error.public_detail(),
        };
        (status, page).into_response()
    }
}

/// Shorthand for page handlers.
pub type PageResult<T = Response> = Result<T, PageError>;
