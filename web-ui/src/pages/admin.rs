//! The administration page (laboratory administrators): users and roles and API tokens (a
//! bounded page of each, `?users_after=&tokens_before=`), the audit-trail search, the instrument log, and the database backup download.
//!
//! What the store supports is what the page offers: adding a user with a role and an initial
//! password, changing a user's role, disabling one (which revokes their sessions and tokens)
//! and enabling them again; never one's own account, nor the last active lab admin. Every change is
//! audited by the store in the same transaction; the backup is audited by `appliance::backup`.
//!
//! A new API token's secret is shown once, in the answer to the form that made it (never in a
//! URL), so that answer is the page itself rather than a redirect, and is not cached.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures_util::stream;
use serde::Deserialize;

use appliance::backup::BackupKey;
use appliance::store::audit::{AuditQuery as StoreAuditQuery, AuditRecord};
use appliance::store::instrument_log::{LogEntry, LogKind};
use appliance::store::{ApiTokenId, AuditId, Timestamp};
use operations::OperationError;
use operations::users::{
    ACCOUNTS_PAGE, AccountCursors, ChangeReason, UserOrder, UserRecord, parse_role,
};

use super::runs::readable;
use super::{PageError, PageForm, PageResult, PageUser, view_role};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{AdminPage, AuditEntry, AuditQuery, LogLine, Notice, TokenRow, UserRow, paths};
use appliance::site::SiteTimeZone;

/// Instrument log lines shown.
const LOG_LINES: u32 = 50;
/// Audit entries on one page of a search (older ones are on the next pages).
const AUDIT_PAGE: u32 = 100;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::ADMIN, get(show))
        .route(paths::ADMIN_AUDIT, get(search_audit))
        .route(paths::ADMIN_AUDIT_CSV, get(export_audit))
        .route(paths::ADMIN_BACKUP, get(backup))
        .route(paths::ADMIN_USERS, post(add_user))
        .route("/admin/users/{username}/disable", post(disable_user))
        .route("/admin/users/{username}/role", post(change_role))
        .route("/admin/users/{username}/enable", post(enable_user))
        .route("/admin/users/{username}/unlock", post(unlock_user))
        .route(
            "/admin/users/{username}/password-reset",
            post(reset_password),
        )
        .route(paths::ADMIN_TOKENS, post(create_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
}

fn user_label(record_actor: &str) -> String {
    // `user:<id>:<username>` or `appliance`.
    match record_actor.splitn(3, ':').nth(2) {
        Some(username) => username.to_owned(),
        None => record_actor.to_owned(),
    }
}

fn audit_entry(zone: &SiteTimeZone, record: &AuditRecord) -> AuditEntry {
    let mut detail = String::new();
    if let Some(reason) = record.reason.as_deref() {
        detail.push_str("reason: ");
        detail.push_str(reason);
    }
    let value = record.detail.value();
    let empty = value.is_null() || value.as_object().is_some_and(|o| o.is_empty());
    if !empty {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str(&value.to_string());
    }
    AuditEntry {
        at: readable(zone, &record.at),
        user: user_label(&record.actor),
        action: record.action.clone(),
        subject: match &record.entity_id {
            Some(id) => format!("{} {id}", record.entity),
            None => record.entity.clone(),
        },
        detail,
    }
}

fn log_line(zone: &SiteTimeZone, entry: &LogEntry) -> LogLine {
    LogLine {
        at: readable(zone, &entry.logged_at),
        level: match entry.kind {
            LogKind::Error => "error",
            _ => "info",
        }
        .into(),
        message: match entry.run_id {
            Some(run) => format!("{} (run {run})", entry.message),
            None => entry.message.clone(),
        },
    }
}

/// The admin page, each section filled only when the viewer may see it (a non-admin who made
/// their own token sees only their own tokens).
async fn page(state: &AppState, viewer: &PageUser, path: &str) -> PageResult<AdminPage> {
    accounts_page(state, viewer, path, &AccountCursors::default()).await
}

/// The admin page with the pages of users and tokens that `cursors` start.
async fn accounts_page(
    state: &AppState,
    viewer: &PageUser,
    path: &str,
    cursors: &AccountCursors,
) -> PageResult<AdminPage> {
    let zone = &state.ops.settings.site.time_zone;
    let accounts = state
        .ops
        .accounts(&viewer.requester(), cursors, ACCOUNTS_PAGE)
        .await?;
    let tokens = accounts
        .tokens
        .into_iter()
        .map(|(owner, token)| TokenRow {
            token_id: token.id.0,
            label: format!("{} ({}…)", token.label, token.prefix),
            owner: owner.username,
            created_at: readable(zone, &token.created_at),
            last_used: token
                .last_used_at
                .as_ref()
                .map_or_else(|| "never".into(), |at| readable(zone, at)),
        })
        .collect();
    // Sign-ins are kept in the audit trail (`session.sign_in`), not on the user's record.
    let users = accounts
        .users
        .into_iter()
        .map(|UserRecord { user, last_sign_in }| UserRow {
            can_disable: !user.disabled && user.id != viewer.user.id,
            password_change_required: user.password_change_required,
            username: user.username,
            display_name: user.display_name,
            role: view_role(user.role),
            active: !user.disabled,
            last_sign_in: last_sign_in
                .as_ref()
                .map_or_else(|| "never".to_owned(), |at| readable(zone, at)),
        })
        .collect();
    let instrument_log = if viewer.may(Permission::ViewAuditTrail) {
        state
            .ops
            .instrument_log(&viewer.requester(), LOG_LINES)
            .await?
            .iter()
            .map(|entry| log_line(zone, entry))
            .collect()
    } else {
        Vec::new()
    };
    Ok(AdminPage {
        layout: viewer.layout(state, "Administration", path),
        users,
        tokens,
        new_token_secret: None,
        audit_query: AuditQuery::default(),
        audit_results: None,
        audit_older: None,
        audit_later_pages: false,
        instrument_log,
        form_error: None,
        users_after: cursors.users_after.clone(),
        users_next: accounts.users_next,
        tokens_before: cursors.tokens_before.map(|id| id.0),
        tokens_next: accounts.tokens_next.map(|id| id.0),
    })
}

/// The page answering a refused form: 422, the field named, nothing stored.
async fn refused(state: &AppState, viewer: &PageUser, field: &str, reason: &str) -> PageResult {
    let mut page = page(state, viewer, paths::ADMIN).await?;
    let text = format!("{field}: {reason}");
    page.layout.notice = Some(Notice {
        level: "error".into(),
        text: format!("Nothing was changed. {text}"),
    });
    page.form_error = Some(text);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Query of the admin page: the notice after a change, and where the pages of users and tokens
/// start (`users_after`: the last user name of the page before; `tokens_before`: the last token
/// id of the page before; absent or unreadable: the first page).
#[derive(Debug, Default, Deserialize)]
pub struct AdminQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    users_after: Option<String>,
    #[serde(default)]
    tokens_before: Option<String>,
}

/// `GET /admin`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<AdminQuery>,
) -> PageResult {
    user.require(Permission::ManageUsers)?;
    let cursors = AccountCursors {
        users_after: query.users_after.filter(|name| !name.is_empty()),
        tokens_before: query
            .tokens_before
            .as_deref()
            .and_then(|text| text.parse::<i64>().ok())
            .filter(|id| *id > 0)
            .map(ApiTokenId),
    };
    let mut page = accounts_page(&state, &user, paths::ADMIN, &cursors).await?;
    let text = match query.done.as_deref() {
        Some("user-added") => Some("User added."),
        Some("user-disabled") => Some("User disabled; their sessions and API tokens are revoked."),
        Some("role-changed") => Some("Role changed; it applies from the user's next request."),
        Some("user-enabled") => Some(
            "User enabled; they sign in again with their password (old API tokens stay revoked).",
        ),
        Some("token-revoked") => Some("API token revoked."),
        Some("user-unlocked") => Some(
            "Sign-in lock lifted: the user's failed attempts are forgotten and they may sign in \
             again now (audited with your reason).",
        ),
        Some("password-reset") => Some(
            "Temporary password set: the user's sessions and API tokens are ended, and they \
             must choose their own password when they next sign in (audited with your reason). \
             Tell them the temporary password in person.",
        ),
        Some("user-not-locked") => Some(
            "No failed sign-ins were counted against that user; the audit trail notes your reason.",
        ),
        _ => None,
    };
    page.layout.notice = text.map(|text| Notice {
        level: "success".into(),
        text: text.into(),
    });
    Ok(page.into_response())
}

/// The audit search's query string; `before` is where a later page starts (the last entry id of
/// the page before it; absent or unreadable: the newest entries).
#[derive(Debug, Default, Deserialize)]
pub struct AuditSearch {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    before: Option<String>,
}

impl AuditSearch {
    /// The fields as the form shows them again.
    fn echoed(&self) -> AuditQuery {
        AuditQuery {
            user: self.user.clone(),
            action: self.action.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            text: self.text.clone(),
        }
    }

    /// The store's query for these fields, or the field that is wrong and why.
    fn store_query(&self) -> Result<StoreAuditQuery, (String, String)> {
        let nonblank = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        let from = parse_day("from", &self.from)?;
        let to = parse_day("to", &self.to)?;
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err((
                "to".to_owned(),
                "the end date is before the start date".to_owned(),
            ));
        }
        Ok(StoreAuditQuery {
            username: nonblank(&self.user).map(|u| u.to_ascii_lowercase()),
            action: nonblank(&self.action),
            from,
            to,
            text: nonblank(&self.text),
            before: self
                .before
                .as_deref()
                .and_then(|text| text.parse::<i64>().ok())
                .filter(|id| *id > 0)
                .map(AuditId),
            ..StoreAuditQuery::default()
        })
    }
}

fn parse_day(field: &str, text: &str) -> Result<Option<time::Date>, (String, String)> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format).map(Some).map_err(|_| {
        (
            field.to_owned(),
            format!("{text:?} is not a date (YYYY-MM-DD)"),
        )
    })
}

/// `GET /admin/audit?user=&action=&from=&to=&text=[&before=<id>]`: the audit trail, newest
/// first, [`AUDIT_PAGE`] entries a page with a link to the older ones and to the CSV export.
async fn search_audit(
    State(state): State<AppState>,
    user: PageUser,
    Query(search): Query<AuditSearch>,
) -> PageResult {
    user.require(Permission::ViewAuditTrail)?;
    let zone = &state.ops.settings.site.time_zone;
    let mut page = page(&state, &user, paths::ADMIN_AUDIT).await?;
    page.audit_query = search.echoed();
    let query = match search.store_query() {
        Ok(query) => query,
        Err((field, reason)) => {
            let text = format!("{field}: {reason}");
            page.layout.notice = Some(Notice {
                level: "error".into(),
                text: format!("The audit search was not run. {text}"),
            });
            page.form_error = Some(text);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let found = state
        .ops
        .audit_trail_page(&user.requester(), &query, AUDIT_PAGE)
        .await?;
    page.audit_results = Some(
        found
            .entries
            .iter()
            .map(|record| audit_entry(zone, record))
            .collect(),
    );
    page.audit_older = found.older.map(|id| id.0);
    page.audit_later_pages = query.before.is_some();
    Ok(page.into_response())
}

/// The CSV export's columns.
const AUDIT_CSV_HEADER: &str =
    "id,at,actor,user_id,action,entity,entity_id,reason,detail,prev_hash,hash\r\n";

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a field a
/// spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab or carriage return first) gets a
/// leading `'` so that opening the export runs nothing (numbers are written plainly and never
/// start so).
fn csv_field(out: &mut String, text: &str) {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula || text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn audit_csv_row(out: &mut String, record: &AuditRecord) {
    let at = record.at.to_rfc3339();
    let user_id = record
        .user_id
        .map(|id| id.0.to_string())
        .unwrap_or_default();
    let detail = record.detail.value().to_string();
    let fields: [&str; 11] = [
        &record.id.0.to_string(),
        &at,
        &record.actor,
        &user_id,
        &record.action,
        &record.entity,
        record.entity_id.as_deref().unwrap_or(""),
        record.reason.as_deref().unwrap_or(""),
        &detail,
        &record.prev_hash,
        &record.hash,
    ];
    for (n, field) in fields.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        csv_field(out, field);
    }
    out.push_str("\r\n");
}

/// `GET /admin/audit.csv?user=&action=&from=&to=&text=`: every entry the search selects, newest
/// first, as CSV, streamed a store page at a time (whatever the number of rows, memory stays at
/// one page). Audited (`audit.export`) before the first row; never cached.
async fn export_audit(
    State(state): State<AppState>,
    user: PageUser,
    Query(search): Query<AuditSearch>,
) -> PageResult {
    user.require(Permission::ViewAuditTrail)?;
    let query = search
        .store_query()
        .map_err(|(field, reason)| ApiError::invalid(field, reason))?;
    let mut export = state
        .ops
        .export_audit_trail(&user.requester(), &query, "csv")
        .await?;
    let (sender, mut chunks) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    tokio::spawn(async move {
        if sender.send(Ok(AUDIT_CSV_HEADER.to_owned())).await.is_err() {
            return;
        }
        loop {
            let chunk = match export.next_page().await {
                Ok(Some(rows)) => {
                    let mut text = String::with_capacity(rows.len() * 400);
                    for row in &rows {
                        audit_csv_row(&mut text, row);
                    }
                    Ok(text)
                }
                Ok(None) => return,
                // The body ends in an error, so the client sees an incomplete transfer rather
                // than a short file that looks whole.
                Err(error) => Err(std::io::Error::other(error.to_string())),
            };
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    let body = Body::from_stream(stream::poll_fn(move |cx| chunks.poll_recv(cx)));
    let now = Timestamp::now().datetime();
    let filename = format!(
        "ferrocount-audit-{:04}{:02}{:02}-{:02}{:02}{:02}.csv",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    Ok(attachment(body, "text/csv; charset=utf-8", &filename)?)
}

/// The new-user form.
#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// `POST /admin/users`: adds a user with a role and an initial password.
async fn add_user(State(state): State<AppState>, form: PageForm<NewUserForm>) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageUsers)?;
    let added = match UserOrder::parse(
        &form.username,
        &form.display_name,
        &form.role,
        &form.password,
    ) {
        Ok(order) => state.ops.add_user(&user.requester(), order).await.map(drop),
        Err(error) => Err(error),
    };
    outcome(&state, &user, added, "user-added").await
}

/// After an account form: back to the admin page with its notice, or the page again with 422
/// naming the refused field (nothing was changed); anything else is an error page.
async fn outcome(
    state: &AppState,
    viewer: &PageUser,
    result: Result<(), OperationError>,
    done: &str,
) -> PageResult {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("{}?done={done}", paths::ADMIN)).into_response()),
        Err(OperationError::Invalid { field, reason }) => {
            refused(state, viewer, field, &reason).await
        }
        Err(other) => {
            let layout = viewer.layout(state, "Administration", paths::ADMIN);
            Err(PageError::from(other).within(layout))
        }
    }
}

/// The disable form.
#[derive(Debug, Deserialize)]
pub struct DisableForm {
    #[serde(default)]
    reason: String,
}

/// `POST /admin/users/{username}/disable`: disables an account (not one's own), with a reason.
async fn disable_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: PageForm<DisableForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageUsers)?;
    let disabled = match ChangeReason::parse(&form.reason) {
        Ok(reason) => {
            state
                .ops
                .disable_user(&user.requester(), &name, &reason)
                .await
        }
        Err(error) => Err(error),
    };
    outcome(&state, &user, disabled, "user-disabled").await
}

/// The role form.
#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/users/{username}/role`: gives a user another role, with a reason. Not one's
/// own, and not the last active lab admin's (the store refuses both too). The change holds from
/// the user's next request.
async fn change_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: PageForm<RoleForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageUsers)?;
    let changed = match parse_role(&form.role)
        .and_then(|role| ChangeReason::parse(&form.reason).map(|reason| (role, reason)))
    {
        Ok((role, reason)) => state
            .ops
            .change_role(&user.requester(), &name, role, &reason)
            .await
            .map(drop),
        Err(error) => Err(error),
    };
    outcome(&state, &user, changed, "role-changed").await
}

/// `POST /admin/users/{username}/unlock`: lifts a user's sign-in throttle from every address
/// (the operation `POST /api/v1/users/{username}/unlock` uses), with a reason: a locked-out nurse
/// does not wait out the lock.
async fn unlock_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: PageForm<DisableForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageUsers)?;
    let mut done = "user-unlocked";
    let unlocked = match ChangeReason::parse(&form.reason) {
        Ok(reason) => state
            .ops
            .unlock_sign_in(&user.requester(), &name, &reason)
            .await
            .map(|forgotten| {
                if forgotten.is_empty() {
                    done = "user-not-locked";
                }
            }),
        Err(error) => Err(error),
    };
    outcome(&state, &user, unlocked, done).await
}

/// The password-reset form.
#[derive(Debug, Deserialize)]
pub struct PasswordResetForm {
    #[serde(default)]
    temporary_password: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/users/{username}/password-reset`: a lab admin sets a temporary password for
/// another user, with a reason (`Operations::reset_password`); the user changes it at their
/// next sign-in.
async fn reset_password(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: PageForm<PasswordResetForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageUsers)?;
    let reset = match ChangeReason::parse(&form.reason) {
        Ok(reason) => {
            state
                .ops
                .reset_password(&user.requester(), &name, &form.temporary_password, &reason)
                .await
        }
        Err(error) => Err(error),
    };
    outcome(&state, &user, reset, "password-reset").await
}

/// `POST /admin/users/{username}/enable`: lets a disabled user sign in again, with a reason.
async fn enable_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: PageForm<DisableForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageUsers)?;
    let enabled = match ChangeReason::parse(&form.reason) {
        Ok(reason) => state
            .ops
            .enable_user(&user.requester(), &name, &reason)
            .await
            .map(drop),
        Err(error) => Err(error),
    };
    outcome(&state, &user, enabled, "user-enabled").await
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    label: String,
}

/// `POST /admin/tokens`: a token for the signed-in user, its secret shown this once.
async fn create_token(State(state): State<AppState>, form: PageForm<NewTokenForm>) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::CreateOwnTokens)?;
    let issued = match state.ops.create_token(&user.requester(), &form.label).await {
        Ok(made) => made,
        Err(OperationError::Invalid { field, reason }) => {
            return refused(&state, &user, field, &reason).await;
        }
        Err(other) => return Err(other.into()),
    };
    let label = &issued.token.label;
    let mut page = page(&state, &user, paths::ADMIN).await?;
    page.new_token_secret = Some(issued.secret);
    page.layout.notice = Some(Notice {
        level: "success".into(),
        text: format!(
            "API token “{label}” created; it works until {} (UTC) or until your password \
             changes. Copy it now: it is not shown again.",
            issued.expires_at.datetime().date()
        ),
    });
    let mut response = (StatusCode::CREATED, page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The revoke form carries only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct Empty {}

/// `POST /admin/tokens/{id}/revoke`: one's own token, or anyone's for a user manager.
async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: PageForm<Empty>,
) -> PageResult {
    let user = form.user;
    let layout = user.layout(&state, "Administration", paths::ADMIN);
    let not_found = || {
        PageError::from(ApiError::NotFound {
            entity: "API token",
            key: id.chars().take(40).collect(),
        })
        .within(layout.clone())
    };
    let token_id = id.parse::<i64>().map(ApiTokenId).map_err(|_| not_found())?;
    state
        .ops
        .revoke_token(&user.requester(), token_id)
        .await
        .map_err(|e| PageError::from(e).within(layout.clone()))?;
    let target = if user.may(Permission::ManageUsers) {
        format!("{}?done=token-revoked", paths::ADMIN)
    } else {
        paths::DASHBOARD.to_owned()
    };
    Ok(Redirect::to(&target).into_response())
}

/// `GET /admin/backup`: an encrypted, consistent snapshot of the database
/// (`appliance::backup`: `VACUUM INTO`, integrity-checked, audited, age-encrypted for the
/// configuration's `[backup] recipients`) streamed as `ferrocount-YYYYMMDD-HHMMSS.db.age`. The
/// snapshot is unlinked as soon as it is open, so it is gone whatever happens to the download.
/// The body comes from a channel the encryption thread fills, which ends once and stays ended:
/// the compression layer may poll it again after its end (a stream that panics then cut every
/// gzip download short). Without a configured key there is no backup: 409 saying what to
/// configure.
async fn backup(State(state): State<AppState>, user: PageUser) -> PageResult {
    user.require(Permission::DownloadBackup)?;
    let key = BackupKey::recipients(&state.backup.recipients).map_err(|error| {
        ApiError::Conflict(format!(
            "{error}; the download is encrypted for the lab's public keys in [backup] recipients"
        ))
    })?;
    let now = Timestamp::now().datetime();
    let filename = format!(
        "ferrocount-{:04}{:02}{:02}-{:02}{:02}{:02}.db.age",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let snapshot = appliance::backup::snapshot(
        &state.store,
        &user.user.actor(),
        &key,
        &format!("download {filename}"),
    )
    .await
    .map_err(|error| ApiError::Internal(format!("backup: {error}")))?;
    let mut chunks = appliance::backup::encrypted_chunks(snapshot, key);
    let body = Body::from_stream(stream::poll_fn(move |cx| chunks.poll_recv(cx)));
    Ok(attachment(body, "application/octet-stream", &filename)?)
}

/// A streamed download of the admin page (the audit export, a backup): saved as `filename`, never
/// cached (both carry patient data).
fn attachment(
    body: Body,
    content_type: &'static str,
    filename: &str,
) -> Result<Response, ApiError> {
    let mut response: Response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
            .map_err(|e| ApiError::Internal(format!("download header for {filename}: {e}")))?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
