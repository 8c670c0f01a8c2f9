//! The URLs the pages link to and post to, in one place.
//!
//! The router (owned by the HTTP side of `web-ui`) must serve these paths; pages never spell a URL
//! themselves. Not here: routing, extractors or authorisation.

/// Dashboard (home).
pub const DASHBOARD: &str = "/";
/// Sign-in page (GET) and sign-in form target (POST).
pub const SIGN_IN: &str = "/sign-in";
/// The signed-in person's own account page.
pub const ACCOUNT: &str = "/account";
/// Target of the own-password form (POST).
pub const ACCOUNT_PASSWORD: &str = "/account/password";
/// Sign-out form target (POST).
pub const SIGN_OUT: &str = "/sign-out";
/// New-run form (GET) ...
pub const NEW_RUN: &str = "/runs/new";
/// ... and its target (POST).
pub const RUNS: &str = "/runs";
/// The patient list and its search (GET `?mrn_prefix=&birth_date=`; `?mrn=` from the header's
/// search box opens the patient with exactly that MRN, else lists those it starts).
pub const PATIENT_SEARCH: &str = "/patients";
/// QC page.
pub const QC: &str = "/qc";
/// The worklist of results awaiting release.
pub const WORKLIST: &str = "/worklist";
/// Target of the QC-measurement form (POST).
pub const QC_MEASUREMENTS: &str = "/qc/measurements";
/// Target of the new-control-material form (POST, lab admins).
pub const QC_MATERIALS: &str = "/qc/materials";
/// Target of the new-lot form (POST, lab admins).
pub const QC_LOTS: &str = "/qc/lots";
/// Target of the lot-target form (POST, lab admins).
pub const QC_TARGETS: &str = "/qc/targets";
/// Calibration lots.
pub const CALIBRATIONS: &str = "/calibrations";
/// Admin page.
pub const ADMIN: &str = "/admin";
/// The outbox of messages to the hospital's systems (lab admins; GET `?destination=&state=&before=`).
pub const OUTBOX: &str = "/outbox";
/// Target of the new-user form (POST).
pub const ADMIN_USERS: &str = "/admin/users";
/// Target of the new-token form (POST).
pub const ADMIN_TOKENS: &str = "/admin/tokens";
/// Audit-trail search (GET, query parameters `user`, `action`, `from`, `to`, `text`).
pub const ADMIN_AUDIT: &str = "/admin/audit";
/// Audit search export as CSV (GET, same fields as the search).
pub const ADMIN_AUDIT_CSV: &str = "/admin/audit.csv";
/// Backup download (GET).
pub const ADMIN_BACKUP: &str = "/admin/backup";
/// The stylesheet, served from [`crate::assets`].
pub const STYLESHEET: &str = "/static/ferrocount.css";
/// The live-run script (server-sent events), served from [`crate::assets`].
pub const LIVE_RUN_SCRIPT: &str = "/static/live-run.js";
/// The script every signed-in page loads (inactivity notice, print buttons), served from [`crate::assets`].
pub const PAGE_SCRIPT: &str = "/static/page.js";

/// A patient's page.
pub fn patient(patient_id: i64) -> String {
    format!("/patients/{patient_id}")
}

/// Where a treatment or event marker for a patient's trend is posted.
pub fn patient_events(patient_id: i64) -> String {
    format!("/patients/{patient_id}/events")
}

/// A patient's trend as CSV (the API's export, opened with the session cookie).
pub fn patient_trend_csv(patient_id: i64) -> String {
    format!("/api/v1/patients/{patient_id}/trend?format=csv")
}

/// A run's page (the report).
pub fn run(run_id: i64) -> String {
    format!("/runs/{run_id}")
}

/// A run's live progress page.
pub fn run_live(run_id: i64) -> String {
    format!("/runs/{run_id}/live")
}

/// A run's server-sent event stream.
pub fn run_events(run_id: i64) -> String {
    format!("/api/v1/runs/{run_id}/events")
}

/// Confirms the tube the live view asked for (POST, CSRF token in the `x-csrf-token` header).
pub fn run_confirm_tube(run_id: i64) -> String {
    format!("/api/v1/runs/{run_id}/confirm-tube")
}

/// Cancels a run (POST form).
pub fn run_cancel(run_id: i64) -> String {
    format!("/runs/{run_id}/cancel")
}

/// Release form target (POST).
pub fn run_release(run_id: i64) -> String {
    format!("/runs/{run_id}/release")
}

/// A run's clinical report as PDF (the API's, opened by the session cookie).
pub fn run_report_pdf(run_id: i64) -> String {
    format!("/api/v1/runs/{run_id}/report.pdf")
}

/// A run's correction form target.
pub fn run_corrections(run_id: i64) -> String {
    format!("/runs/{run_id}/corrections")
}

/// A calibration lot's page.
pub fn calibration(calibration_id: i64) -> String {
    format!("/calibrations/{calibration_id}")
}

/// Approval form target (POST).
pub fn calibration_approve(calibration_id: i64) -> String {
    format!("/calibrations/{calibration_id}/approve")
}

/// Rejection form target (POST).
pub fn calibration_reject(calibration_id: i64) -> String {
    format!("/calibrations/{calibration_id}/reject")
}

/// Makes the simulated lot's calibration (POST; the simulated board only).
pub const CALIBRATION_SIMULATED: &str = "/calibrations/simulated";

/// Resends a parked outbox message (POST form, with a reason).
pub fn outbox_resend(message_id: i64) -> String {
    format!("/outbox/{message_id}/resend")
}

/// Revokes an API token (POST form).
pub fn admin_token_revoke(token_id: i64) -> String {
    format!("/admin/tokens/{token_id}/revoke")
}

/// Disables a user account (POST form).
pub fn admin_user_disable(username: &str) -> String {
    format!("/admin/users/{username}/disable")
}

/// Changes a user's role (POST form).
pub fn admin_user_role(username: &str) -> String {
    format!("/admin/users/{username}/role")
}

/// Enables a disabled user account again (POST form).
pub fn admin_user_enable(username: &str) -> String {
    format!("/admin/users/{username}/enable")
}

/// Where a lab admin lifts a user's sign-in lock (POST, with a reason).
pub fn admin_user_unlock(username: &str) -> String {
    format!("/admin/users/{username}/unlock")
}

/// Where a corrective action is recorded against a rejected QC result (POST).
pub fn qc_corrective_actions(qc_result_id: i64) -> String {
    format!("/qc/results/{qc_result_id}/corrective-actions")
}

/// Where a lab admin sets a temporary password the user changes at next sign-in (POST, with a
/// reason).
pub fn admin_user_password_reset(username: &str) -> String {
    format!("/admin/users/{username}/password-reset")
}
