//! The frame every page shares: instrument name, the signed-in user and role, navigation by role,
//! the sign-out form, a CSRF token for every form, and the inactivity notice.
//!
//! The HTTP side builds one [`Layout`] per request (it knows the session and the CSRF token);
//! pages embed it. Not here: authentication or authorisation decisions — the navigation only
//! hides links a role cannot use, the router must still refuse them.

use super::paths;

/// A user's role (issue 6's three roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Runs samples at the bedside.
    Operator,
    /// Views patients and releases results.
    Clinician,
    /// QC, calibration and users.
    LabAdmin,
}

impl Role {
    /// Every role, for forms that choose one.
    pub const ALL: [Role; 3] = [Role::Operator, Role::Clinician, Role::LabAdmin];

    /// The stable name used in forms and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Clinician => "clinician",
            Role::LabAdmin => "lab_admin",
        }
    }

    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            Role::Operator => "Operator",
            Role::Clinician => "Clinician",
            Role::LabAdmin => "Lab admin",
        }
    }
}

/// Who is signed in.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedInUser {
    /// Login name.
    pub username: String,
    /// Name shown in the header and printed on signatures.
    pub display_name: String,
    /// The user's role.
    pub role: Role,
}

/// A one-off message at the top of a page ("Result released", "Tube confirmed").
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// `info`, `success`, `warning` or `error` (a CSS class).
    pub level: String,
    /// The message.
    pub text: String,
}

/// A navigation link.
#[derive(Clone, Debug, PartialEq)]
pub struct NavLink {
    /// Target URL.
    pub href: &'static str,
    /// Link text.
    pub label: &'static str,
    /// True on the page it points to.
    pub current: bool,
}

/// The page frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// Instrument name shown in the header, e.g. "Ferrocount FC-01 · Oncology day unit".
    pub instrument_name: String,
    /// The page's own title (the `<title>` is "page — instrument").
    pub page_title: String,
    /// Path of the current page, to mark the navigation.
    pub current_path: String,
    /// The signed-in user; `None` on the sign-in page.
    pub user: Option<SignedInUser>,
    /// The session's CSRF token: every POST form carries it as `csrf_token`, scripts send it as
    /// `x-csrf-token`.
    pub csrf_token: String,
    /// Minutes of inactivity after which the session ends (default 15).
    pub inactivity_timeout_min: u32,
    /// A one-off message.
    pub notice: Option<Notice>,
    /// No navigation and no patient lookup: the page is the only one the user may reach (a
    /// password change an administrator asked for).
    pub navigation_hidden: bool,
}

impl Layout {
    /// A layout with the defaults: no user, no notice, 15-minute timeout.
    pub fn new(
        instrument_name: impl Into<String>,
        page_title: impl Into<String>,
        csrf_token: impl Into<String>,
    ) -> Self {
        Layout {
            instrument_name: instrument_name.into(),
            page_title: page_title.into(),
            current_path: String::new(),
            user: None,
            csrf_token: csrf_token.into(),
            inactivity_timeout_min: 15,
            notice: None,
            navigation_hidden: false,
        }
    }

    /// The same layout for a signed-in user on `current_path`.
    pub fn signed_in(mut self, user: SignedInUser, current_path: impl Into<String>) -> Self {
        self.user = Some(user);
        self.current_path = current_path.into();
        self
    }

    /// The links this user's role may follow.
    pub fn nav(&self) -> Vec<NavLink> {
        let Some(user) = self.user.as_ref().filter(|_| !self.navigation_hidden) else {
            return Vec::new();
        };
        let links: &[(&'static str, &'static str)] = match user.role {
            Role::Operator => &[
                (paths::DASHBOARD, "Dashboard"),
                (paths::NEW_RUN, "New run"),
                (paths::QC, "QC"),
            ],
            Role::Clinician => &[
                (paths::DASHBOARD, "Dashboard"),
                (paths::PATIENT_SEARCH, "Patients"),
                (paths::WORKLIST, "Worklist"),
            ],
            Role::LabAdmin => &[
                (paths::DASHBOARD, "Dashboard"),
                (paths::PATIENT_SEARCH, "Patients"),
                (paths::WORKLIST, "Worklist"),
                (paths::NEW_RUN, "New run"),
                (paths::QC, "QC"),
                (paths::CALIBRATIONS, "Calibration"),
                (paths::ADMIN, "Admin"),
                (paths::OUTBOX, "Outbox"),
            ],
        };
        links
            .iter()
            .map(|(href, label)| NavLink {
                href,
                label,
                current: self.is_current(href),
            })
            .collect()
    }

    fn is_current(&self, href: &str) -> bool {
        if href == paths::DASHBOARD {
            self.current_path == paths::DASHBOARD
        } else {
            self.current_path == href || self.current_path.starts_with(&format!("{href}/"))
        }
    }

    /// True when a user is signed in (the header shows the user, the patient search and sign-out).
    pub fn is_signed_in(&self) -> bool {
        self.user.is_some()
    }

    /// The inactivity timeout in seconds, for the notice script.
    pub fn inactivity_timeout_s(&self) -> u32 {
        self.inactivity_timeout_min.saturating_mul(60)
    }

    /// The signed-in person's account page (their name in the header links to it).
    pub fn account_href(&self) -> &'static str {
        paths::ACCOUNT
    }

    /// The sign-out form's target.
    pub fn sign_out_href(&self) -> &'static str {
        paths::SIGN_OUT
    }

    /// The sign-in page's address (the inactivity script goes there when the session has ended).
    pub fn sign_in_href(&self) -> &'static str {
        paths::SIGN_IN
    }

    /// Whether the header offers the patient lookup: clinicians and lab admins browse patients,
    /// operators do not (they would only meet a refusal).
    pub fn shows_patient_search(&self) -> bool {
        !self.navigation_hidden
            && self
                .user
                .as_ref()
                .is_some_and(|user| user.role != Role::Operator)
    }

    /// The patient lookup's target.
    pub fn patient_search_href(&self) -> &'static str {
        paths::PATIENT_SEARCH
    }

    /// The stylesheet's address.
    pub fn stylesheet_href(&self) -> &'static str {
        paths::STYLESHEET
    }

    /// The shared page script's address.
    pub fn page_script_href(&self) -> &'static str {
        paths::PAGE_SCRIPT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> SignedInUser {
        SignedInUser {
            username: "u".into(),
            display_name: "U".into(),
            role,
        }
    }

    #[test]
    fn navigation_follows_the_role() {
        let base = Layout::new("FC-01", "Dashboard", "t");
        assert!(base.nav().is_empty());
        let labels = |role| {
            base.clone()
                .signed_in(user(role), "/qc")
                .nav()
                .iter()
                .map(|l| l.label)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            labels(Role::Clinician),
            ["Dashboard", "Patients", "Worklist"]
        );
        assert_eq!(labels(Role::Operator), ["Dashboard", "New run", "QC"]);
        assert_eq!(
            labels(Role::LabAdmin),
            [
                "Dashboard",
                "Patients",
                "Worklist",
                "New run",
                "QC",
                "Calibration",
                "Admin",
                "Outbox"
            ]
        );
    }

    #[test]
    fn the_current_page_is_marked_once() {
        let layout = Layout::new("FC-01", "Calibration", "t")
            .signed_in(user(Role::LabAdmin), "/calibrations/3");
        let current: Vec<_> = layout
            .nav()
            .into_iter()
            .filter(|l| l.current)
            .map(|l| l.label)
            .collect();
        assert_eq!(current, ["Calibration"]);
    }
}
