//! A person's own account page: their name and role, and the form that changes their password.

use askama::Template;
use askama_web::WebTemplate;

use super::layout::Layout;
use super::paths;

/// The account page (`GET /account`).
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "account.html")]
pub struct AccountPage {
    /// Frame.
    pub layout: Layout,
    /// What is wrong with the form, in words, when it is shown again (nothing typed is kept).
    pub error: Option<String>,
    /// A lab admin set a temporary password: the page says it must be changed before anything
    /// else opens.
    pub must_change: bool,
}

impl AccountPage {
    /// The password form's target.
    pub fn password_href(&self) -> &'static str {
        paths::ACCOUNT_PASSWORD
    }
}
