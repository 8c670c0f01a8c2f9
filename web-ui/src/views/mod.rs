//! The pages: view models (plain structs of already-formatted text and plain numbers) and the
//! askama templates that render them (`web-ui/templates/`).
//!
//! Every page struct derives `askama::Template` (call `.render()`) and `askama_web::WebTemplate`
//! (return it from an axum handler). Each embeds a [`Layout`] with the signed-in user, the role's
//! navigation and the CSRF token every POST form carries as `csrf_token`. Charts are drawn from
//! their inputs by [`crate::charts`] when the page renders. URLs come from [`paths`].
//!
//! Not here: routing, sessions, database access, or deciding who may see what — the HTTP side
//! builds these structs from domain types and enforces roles; the pages only render what they
//! are given (and hide controls a role cannot use).

mod account;
mod admin;
mod audit_entry;
mod calibration;
mod clinical_lists;
mod count_view;
mod dashboard;
mod error_page;
pub mod format;
mod layout;
mod new_run;
mod outbox;
pub mod paths;
mod patient;
mod qc;
mod run;
mod sign_in;

pub use account::AccountPage;
pub use admin::{AdminPage, AuditQuery, LogLine, TokenRow, UserRow};
pub use audit_entry::AuditEntry;
pub use calibration::{CalibrationLotRow, CalibrationPage, SelectedCalibration};
pub use clinical_lists::{PatientListPage, PatientListRow, WorklistPage, WorklistRow};
pub use count_view::CountView;
pub use dashboard::{
    DashboardPage, InstrumentStatus, QcToday, QcVerdict, ResultRow, RunInProgress, SetupStepView,
};
pub use error_page::ErrorPage;
pub use layout::{Layout, NavLink, Notice, Role, SignedInUser};
pub use new_run::{LiveRunPage, NewRunForm, NewRunPage, ProgressStep};
pub use outbox::{OutboxFilterLink, OutboxPage, OutboxRow};
pub use patient::{PatientEventRow, PatientPage, PatientRunRow};
pub use qc::{PhantomRow, QcChoice, QcLotReview, QcMaterialOption, QcNote, QcPage, QcSetup};
pub use run::{
    CalibrationUsed, CorrectionForm, QcFlagView, QcReliedView, ReleaseForm, ReplicateView,
    ResultVersion, RunHeader, RunPage, Signature, TubeView,
};
pub use sign_in::SignInPage;

pub mod samples;
#[cfg(test)]
mod tests;
