//! The sign-in page.

use askama::Template;
use askama_web::WebTemplate;

use super::layout::Layout;
use super::paths;

/// The sign-in page: username and password, with a message after a failed attempt, after
/// inactivity or after signing out.
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    /// Frame (no user; carries the pre-session CSRF token).
    pub layout: Layout,
    /// Username to pre-fill after a failed attempt.
    pub username: String,
    /// Why the last attempt failed (never says which of username or password was wrong).
    pub error: Option<String>,
    /// True when the previous session ended for inactivity.
    pub signed_out_for_inactivity: bool,
    /// Where to go after signing in (a path on this instrument; empty for the dashboard).
    pub next: String,
}

impl SignInPage {
    /// The form's target.
    pub fn action(&self) -> &'static str {
        paths::SIGN_IN
    }
}
