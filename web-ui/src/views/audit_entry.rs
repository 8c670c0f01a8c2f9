//! One line of the audit trail, as the run page and the admin search show it.

/// An audit-trail entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// When, local-readable.
    pub at: String,
    /// Who (display name or username; "system" for the instrument).
    pub user: String,
    /// What kind of event, e.g. `result.released`, `patient.viewed`.
    pub action: String,
    /// What it was about, e.g. "run 42".
    pub subject: String,
    /// Details, e.g. "meaning: reviewed and approved".
    pub detail: String,
}
