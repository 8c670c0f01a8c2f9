//! Administration: users and roles, API tokens, audit-trail search, the instrument log and the
//! backup download.

use askama::Template;
use askama_web::WebTemplate;

use super::audit_entry::AuditEntry;
use super::layout::{Layout, Role};
use super::paths;

/// A user account.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// False when the account is disabled.
    pub active: bool,
    /// Last sign-in, local-readable, or "never".
    pub last_sign_in: String,
    /// True when this row may be disabled from the page (active, not the viewer).
    pub can_disable: bool,
    /// A lab admin set a temporary password the user has not changed yet.
    pub password_change_required: bool,
}

impl UserRow {
    /// The disable form's target.
    pub fn disable_href(&self) -> String {
        paths::admin_user_disable(&self.username)
    }

    /// Whether the role may be changed from the page: the rule of disabling (not the viewer's
    /// own account), for an active account (a disabled one is enabled first).
    pub fn can_change_role(&self) -> bool {
        self.active && self.can_disable
    }

    /// The role form's target.
    pub fn role_href(&self) -> String {
        paths::admin_user_role(&self.username)
    }

    /// Whether the account may be enabled again from the page (it is disabled; the viewer's own
    /// never is, since a disabled user cannot sign in).
    pub fn can_enable(&self) -> bool {
        !self.active
    }

    /// The enable form's target.
    pub fn enable_href(&self) -> String {
        paths::admin_user_enable(&self.username)
    }

    /// The unlock form's target (an active account: a locked-out user waits for nobody).
    pub fn unlock_href(&self) -> String {
        paths::admin_user_unlock(&self.username)
    }

    /// Whether a temporary password may be set from the page: another active account (one's
    /// own is changed on the account page).
    pub fn can_reset_password(&self) -> bool {
        self.active && self.can_disable
    }

    /// The password-reset form's target.
    pub fn password_reset_href(&self) -> String {
        paths::admin_user_password_reset(&self.username)
    }

    /// The roles this user could be given instead of their own.
    pub fn other_roles(&self) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|role| *role != self.role)
            .collect()
    }
}

/// An API token (never its secret: that is shown once, at creation).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRow {
    /// Token id.
    pub token_id: i64,
    /// What it is for, e.g. "lab dashboard".
    pub label: String,
    /// Owner's username.
    pub owner: String,
    /// Created, local-readable.
    pub created_at: String,
    /// Last used, local-readable, or "never".
    pub last_used: String,
}

impl TokenRow {
    /// The revoke form's target.
    pub fn revoke_href(&self) -> String {
        paths::admin_token_revoke(self.token_id)
    }
}

/// The audit search's fields, echoed back into the form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditQuery {
    /// Username.
    pub user: String,
    /// Action, e.g. `result.released`.
    pub action: String,
    /// From date `YYYY-MM-DD`.
    pub from: String,
    /// To date `YYYY-MM-DD`.
    pub to: String,
    /// Free text in subject or detail.
    pub text: String,
}

impl AuditQuery {
    /// The fields as a query string (`user=…&action=…&from=…&to=…&text=…`), percent-encoded.
    pub fn query_string(&self) -> String {
        let encoded = percent_encoded;
        [
            ("user", &self.user),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
            ("text", &self.text),
        ]
        .iter()
        .map(|(name, value)| format!("{name}={}", encoded(value)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// One instrument log line.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// When, local-readable.
    pub at: String,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
}

/// The admin page.
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "admin.html")]
pub struct AdminPage {
    /// Frame.
    pub layout: Layout,
    /// Accounts.
    pub users: Vec<UserRow>,
    /// API tokens.
    pub tokens: Vec<TokenRow>,
    /// A token just created: its secret, shown this once.
    pub new_token_secret: Option<String>,
    /// The audit search's fields.
    pub audit_query: AuditQuery,
    /// Audit entries found (newest first), one page of them, `None` before a search.
    pub audit_results: Option<Vec<AuditEntry>>,
    /// Where the next, older page of the search starts (the last entry id shown), if any.
    pub audit_older: Option<i64>,
    /// Whether this page is a later one (so a link back to the newest entries is offered).
    pub audit_later_pages: bool,
    /// Recent instrument log lines, newest first.
    pub instrument_log: Vec<LogLine>,
    /// What was wrong with the last form, naming the field.
    pub form_error: Option<String>,
    /// Where this page of users starts (the user name it follows; `None`: the first page).
    pub users_after: Option<String>,
    /// Where the next page of users starts, if there is one.
    pub users_next: Option<String>,
    /// Where this page of tokens starts (the token it precedes; `None`: the newest).
    pub tokens_before: Option<i64>,
    /// Where the next page of tokens starts, if there is one.
    pub tokens_next: Option<i64>,
}

/// `text` percent-encoded for a query string (every byte but the unreserved ones).
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl AdminPage {
    /// Roles for the new-user form.
    pub fn roles(&self) -> [Role; 3] {
        Role::ALL
    }

    /// The new-user form's target.
    pub fn users_href(&self) -> &'static str {
        paths::ADMIN_USERS
    }

    /// The new-token form's target.
    pub fn tokens_href(&self) -> &'static str {
        paths::ADMIN_TOKENS
    }

    /// The audit search's target.
    pub fn audit_href(&self) -> &'static str {
        paths::ADMIN_AUDIT
    }

    /// The next, older page of the search, if there is one.
    pub fn audit_older_href(&self) -> Option<String> {
        self.audit_older.map(|before| {
            format!(
                "{}?{}&before={before}#audit-heading",
                paths::ADMIN_AUDIT,
                self.audit_query.query_string()
            )
        })
    }

    /// The first page (newest entries) of the same search.
    pub fn audit_newest_href(&self) -> String {
        format!(
            "{}?{}#audit-heading",
            paths::ADMIN_AUDIT,
            self.audit_query.query_string()
        )
    }

    /// Every entry of the same search as CSV.
    pub fn audit_csv_href(&self) -> String {
        format!(
            "{}?{}",
            paths::ADMIN_AUDIT_CSV,
            self.audit_query.query_string()
        )
    }

    /// The administration page with these cursors of its users' and tokens' pages.
    fn accounts_href(users_after: Option<&str>, tokens_before: Option<i64>, at: &str) -> String {
        let mut query = Vec::new();
        if let Some(after) = users_after {
            query.push(format!("users_after={}", percent_encoded(after)));
        }
        if let Some(before) = tokens_before {
            query.push(format!("tokens_before={before}"));
        }
        match query.is_empty() {
            true => format!("{}#{at}", paths::ADMIN),
            false => format!("{}?{}#{at}", paths::ADMIN, query.join("&")),
        }
    }

    /// The next page of users, if there is one (the tokens' page kept).
    pub fn users_next_href(&self) -> Option<String> {
        self.users_next
            .as_deref()
            .map(|next| Self::accounts_href(Some(next), self.tokens_before, "users-heading"))
    }

    /// The first page of users, on a later page.
    pub fn users_first_href(&self) -> Option<String> {
        self.users_after
            .as_ref()
            .map(|_| Self::accounts_href(None, self.tokens_before, "users-heading"))
    }

    /// The next (older) page of tokens, if there is one (the users' page kept).
    pub fn tokens_next_href(&self) -> Option<String> {
        self.tokens_next.map(|next| {
            Self::accounts_href(self.users_after.as_deref(), Some(next), "tokens-heading")
        })
    }

    /// The first page (newest) of tokens, on a later page.
    pub fn tokens_first_href(&self) -> Option<String> {
        self.tokens_before
            .map(|_| Self::accounts_href(self.users_after.as_deref(), None, "tokens-heading"))
    }

    /// The backup download.
    pub fn backup_href(&self) -> &'static str {
        paths::ADMIN_BACKUP
    }
}

#[cfg(test)]
mod tests {
    use askama::Template;

    use super::super::samples;

    #[test]
    fn active_users_get_a_role_form_and_disabled_ones_an_enable_form() {
        let page = samples::admin();
        let html = page.render().expect("renders");
        for needle in [
            "action=\"/admin/users/tnurse/role\"",
            "action=\"/admin/users/old.locum/enable\"",
            "action=\"/admin/users/tnurse/unlock\"",
            "From <span class=\"muted\">(YYYY-MM-DD, UTC)</span>",
            "To <span class=\"muted\">(YYYY-MM-DD, UTC)</span>",
        ] {
            assert!(html.contains(needle), "admin page lacks {needle:?}");
        }
        assert!(!html.contains("action=\"/admin/users/old.locum/role\""));
        assert!(!html.contains("action=\"/admin/users/tnurse/enable\""));
        assert!(
            !html.contains("action=\"/admin/users/old.locum/unlock\""),
            "a disabled account is enabled, not unlocked"
        );
        // The role form offers only the other roles, each form with its reason and CSRF token.
        let operator = &page.users[0];
        assert_eq!(operator.other_roles().len(), 2);
        assert!(!operator.other_roles().contains(&operator.role));
        let role_form = &html[html
            .find("action=\"/admin/users/tnurse/role\"")
            .expect("role form")..];
        let role_form = &role_form[..role_form.find("</form>").expect("form ends")];
        assert!(role_form.contains("name=\"csrf_token\""));
        assert!(role_form.contains("name=\"reason\""));
        assert!(!role_form.contains("value=\"operator\""));
    }
}
