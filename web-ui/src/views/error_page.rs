//! The page shown when a page request fails: what went wrong, in words, and a way back.

use askama::Template;
use askama_web::WebTemplate;

use super::layout::Layout;
use super::paths;

/// An error answered as HTML (the API answers problem+json instead).
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Frame (with the user when the request was signed in).
    pub layout: Layout,
    /// HTTP status code, shown small.
    pub status: u16,
    /// Short title ("Not permitted", "Not found").
    pub title: String,
    /// What was wrong, naming the field or the thing.
    pub detail: String,
}

impl ErrorPage {
    /// The way back.
    pub fn dashboard_href(&self) -> &'static str {
        paths::DASHBOARD
    }
}
