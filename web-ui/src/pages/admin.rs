//! The administration page (laboratory administrators): users and roles, API tokens, the
//! audit-trail search, the instrument log, and the database backup download.
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
use appliance::store::users::{self, NewPassword, NewUser, User, Username};
use appliance::store::{ApiTokenId, StoreError, Timestamp};

use super::qc::when;
use super::{PageError, PageForm, PageResult, PageUser, view_role};
use crate::problem::ApiError;
use crate::roles::Permission;
use crate::state::AppState;
use crate::views::{
    AdminPage, AuditEntry, AuditQuery, LogLine, Notice, Role, TokenRow, UserRow, paths,
};

/// Instrument log lines shown.
const LOG_LINES: u32 = 50;
/// Audit entries a search returns at most.
const AUDIT_LIMIT: u32 = 500;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::ADMIN, get(show))
        .route(paths::ADMIN_AUDIT, get(search_audit))
        .route(paths::ADMIN_BACKUP, get(backup))
        .route(paths::ADMIN_USERS, post(add_user))
        .route("/admin/users/{username}/disable", post(disable_user))
        .route("/admin/users/{username}/role", post(change_role))
        .route("/admin/users/{username}/enable", post(enable_user))
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

fn audit_entry(record: &AuditRecord) -> AuditEntry {
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
        at: when(&record.at),
        user: user_label(&record.actor),
        action: record.action.clone(),
        subject: match &record.entity_id {
            Some(id) => format!("{} {id}", record.entity),
            None => record.entity.clone(),
        },
        detail,
    }
}

fn log_line(entry: &LogEntry) -> LogLine {
    LogLine {
        at: when(&entry.logged_at),
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

/// Everyone's tokens (unrevoked), with their owners.
async fn all_tokens(state: &AppState, users: &[User]) -> PageResult<Vec<(User, users::ApiToken)>> {
    let mut tokens = Vec::new();
    for user in users {
        for token in state.store.api_tokens(user.id).await? {
            if token.revoked_at.is_none() {
                tokens.push((user.clone(), token));
            }
        }
    }
    tokens.sort_by_key(|(_, token)| std::cmp::Reverse(token.created_at));
    Ok(tokens)
}

/// The admin page, each section filled only when the viewer may see it (a non-admin who made
/// their own token sees only their own tokens).
async fn page(state: &AppState, viewer: &PageUser, path: &str) -> PageResult<AdminPage> {
    let admin = viewer.may(Permission::ManageUsers);
    let users = state.store.users().await?;
    let token_owners: Vec<User> = if admin {
        users.clone()
    } else {
        vec![viewer.user.clone()]
    };
    let tokens = all_tokens(state, &token_owners)
        .await?
        .into_iter()
        .map(|(owner, token)| TokenRow {
            token_id: token.id.0,
            label: format!("{} ({}…)", token.label, token.prefix),
            owner: owner.username,
            created_at: when(&token.created_at),
            last_used: token
                .last_used_at
                .as_ref()
                .map_or_else(|| "never".into(), when),
        })
        .collect();
    let mut user_rows = Vec::new();
    if admin {
        // Sign-ins are kept in the audit trail (`session.sign_in`), not on the user's record.
        let last_sign_ins = state.store.last_sign_ins().await?;
        for u in &users {
            user_rows.push(UserRow {
                username: u.username.clone(),
                display_name: u.display_name.clone(),
                role: view_role(u.role),
                active: !u.disabled,
                last_sign_in: last_sign_ins
                    .get(&u.id)
                    .map_or_else(|| "never".to_owned(), when),
                can_disable: !u.disabled && u.id != viewer.user.id,
            });
        }
    }
    let instrument_log = if viewer.may(Permission::ViewAuditTrail) {
        state
            .store
            .instrument_log(None, LOG_LINES)
            .await?
            .iter()
            .map(log_line)
            .collect()
    } else {
        Vec::new()
    };
    Ok(AdminPage {
        layout: viewer.layout(state, "Administration", path),
        users: user_rows,
        tokens,
        new_token_secret: None,
        audit_query: AuditQuery::default(),
        audit_results: None,
        instrument_log,
        form_error: None,
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

/// Query of the admin page (the notice after a change).
#[derive(Debug, Default, Deserialize)]
pub struct AdminQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /admin`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Query(query): Query<AdminQuery>,
) -> PageResult {
    user.require(Permission::ManageUsers)?;
    let mut page = page(&state, &user, paths::ADMIN).await?;
    let text = match query.done.as_deref() {
        Some("user-added") => Some("User added."),
        Some("user-disabled") => Some("User disabled; their sessions and API tokens are revoked."),
        Some("role-changed") => Some("Role changed; it applies from the user's next request."),
        Some("user-enabled") => Some(
            "User enabled; they sign in again with their password (old API tokens stay revoked).",
        ),
        Some("token-revoked") => Some("API token revoked."),
        _ => None,
    };
    page.layout.notice = text.map(|text| Notice {
        level: "success".into(),
        text: text.into(),
    });
    Ok(page.into_response())
}

/// The audit search's query string.
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

/// `GET /admin/audit?user=&action=&from=&to=&text=`: the audit trail, newest first.
async fn search_audit(
    State(state): State<AppState>,
    user: PageUser,
    Query(search): Query<AuditSearch>,
) -> PageResult {
    user.require(Permission::ViewAuditTrail)?;
    let nonblank = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let dates = parse_day("from", &search.from).and_then(|from| {
        let to = parse_day("to", &search.to)?;
        match (from, to) {
            (Some(from), Some(to)) if from > to => Err((
                "to".to_owned(),
                "the end date is before the start date".to_owned(),
            )),
            dates => Ok(dates),
        }
    });
    let mut page = page(&state, &user, paths::ADMIN_AUDIT).await?;
    page.audit_query = AuditQuery {
        user: search.user.clone(),
        action: search.action.clone(),
        from: search.from.clone(),
        to: search.to.clone(),
        text: search.text.clone(),
    };
    let (from, to) = match dates {
        Ok(dates) => dates,
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
    let records = state
        .store
        .audit_entries(&StoreAuditQuery {
            username: nonblank(&search.user).map(|u| u.to_ascii_lowercase()),
            action: nonblank(&search.action),
            from,
            to,
            text: nonblank(&search.text),
            limit: AUDIT_LIMIT,
            ..StoreAuditQuery::default()
        })
        .await?;
    page.audit_results = Some(records.iter().map(audit_entry).collect());
    Ok(page.into_response())
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

fn store_role(form_value: &str) -> Option<users::Role> {
    Role::ALL
        .into_iter()
        .find(|r| r.as_str() == form_value.trim())
        .map(|r| match r {
            Role::Operator => users::Role::Operator,
            Role::Clinician => users::Role::Clinician,
            Role::LabAdmin => users::Role::LabAdmin,
        })
}

/// `POST /admin/users`: adds a user with a role and an initial password.
async fn add_user(State(state): State<AppState>, form: PageForm<NewUserForm>) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageUsers)?;
    let username = match Username::parse(&form.username) {
        Ok(name) => name,
        Err(error) => return refused(&state, &user, "username", &error.to_string()).await,
    };
    let display_name = form.display_name.trim();
    if display_name.chars().count() > 100 {
        return refused(&state, &user, "display_name", "at most 100 characters").await;
    }
    let Some(role) = store_role(&form.role) else {
        return refused(
            &state,
            &user,
            "role",
            "choose operator, clinician or lab admin",
        )
        .await;
    };
    let password = match NewPassword::parse(&form.password) {
        Ok(password) => password,
        Err(error) => return refused(&state, &user, "password", &error.to_string()).await,
    };
    let new = NewUser {
        username: username.clone(),
        display_name: display_name.to_owned(),
        role,
        password,
    };
    match state.store.add_user(&user.user.actor(), new).await {
        Ok(_) => Ok(Redirect::to(&format!("{}?done=user-added", paths::ADMIN)).into_response()),
        Err(appliance::store::StoreError::Duplicate { .. }) => {
            refused(
                &state,
                &user,
                "username",
                &format!("{username} is taken already"),
            )
            .await
        }
        Err(other) => Err(other.into()),
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
    let layout = user.layout(&state, "Administration", paths::ADMIN);
    let (target, username) = named_user(&state, &layout, &name).await?;
    if target.id == user.user.id {
        return refused(
            &state,
            &user,
            "username",
            "you cannot disable your own account",
        )
        .await;
    }
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return refused(&state, &user, "reason", "say why (1 to 500 characters)").await;
    }
    match state
        .store
        .disable_user(&user.user.actor(), &username, reason)
        .await
    {
        Ok(()) => Ok(Redirect::to(&format!("{}?done=user-disabled", paths::ADMIN)).into_response()),
        Err(error) => store_refusal(&state, &user, layout, "username", error).await,
    }
}

/// The page for a change the store refused: its own field checks and rules (oneself, the last
/// active lab admin, nothing to change) as 422 naming the field; anything else as an error page.
async fn store_refusal(
    state: &AppState,
    viewer: &PageUser,
    layout: crate::views::Layout,
    field: &str,
    error: StoreError,
) -> PageResult {
    match error {
        StoreError::Invalid { field, reason } => refused(state, viewer, field, &reason).await,
        StoreError::Conflict(text) | StoreError::NotPermitted(text) => {
            refused(state, viewer, field, &text).await
        }
        other => Err(PageError::from(other).within(layout)),
    }
}

/// The account named in a form's path (with its parsed name), or a "not found" page.
async fn named_user(
    state: &AppState,
    layout: &crate::views::Layout,
    name: &str,
) -> PageResult<(User, Username)> {
    let not_found = || {
        PageError::from(ApiError::NotFound {
            entity: "user",
            key: name.chars().take(64).collect(),
        })
        .within(layout.clone())
    };
    let username = Username::parse(name).map_err(|_| not_found())?;
    match state.store.user_by_name(&username).await {
        Ok(found) => Ok((found, username)),
        Err(StoreError::NotFound { .. }) => Err(not_found()),
        Err(other) => Err(PageError::from(other).within(layout.clone())),
    }
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
    let layout = user.layout(&state, "Administration", paths::ADMIN);
    let (target, _) = named_user(&state, &layout, &name).await?;
    let Some(role) = store_role(&form.role) else {
        return refused(
            &state,
            &user,
            "role",
            "choose operator, clinician or lab admin",
        )
        .await;
    };
    if target.id == user.user.id {
        return refused(&state, &user, "username", "you cannot change your own role").await;
    }
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return refused(&state, &user, "reason", "say why (1 to 500 characters)").await;
    }
    match state
        .store
        .set_user_role(&user.user.actor(), target.id, role, reason)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("{}?done=role-changed", paths::ADMIN)).into_response()),
        Err(error) => store_refusal(&state, &user, layout, "role", error).await,
    }
}

/// `POST /admin/users/{username}/enable`: lets a disabled user sign in again, with a reason.
async fn enable_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: PageForm<DisableForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    user.require(Permission::ManageUsers)?;
    let layout = user.layout(&state, "Administration", paths::ADMIN);
    let (target, _) = named_user(&state, &layout, &name).await?;
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return refused(&state, &user, "reason", "say why (1 to 500 characters)").await;
    }
    match state
        .store
        .enable_user(&user.user.actor(), target.id, reason)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("{}?done=user-enabled", paths::ADMIN)).into_response()),
        Err(error) => store_refusal(&state, &user, layout, "username", error).await,
    }
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
    let label = form.label.trim();
    if label.is_empty() || label.chars().count() > 100 {
        return refused(
            &state,
            &user,
            "label",
            "say what the token is for (1 to 100 characters)",
        )
        .await;
    }
    let issued = state.ops.create_token(&user.user, label).await?;
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
    let own = state
        .store
        .api_tokens(user.user.id)
        .await?
        .iter()
        .any(|t| t.id == token_id);
    if own {
        user.require(Permission::CreateOwnTokens)?;
    } else if !user.may(Permission::ManageUsers) {
        // Someone else's token is, to this user, no token at all: a refusal would tell them it
        // exists.
        return Err(not_found());
    }
    state
        .store
        .revoke_api_token(&user.user.actor(), token_id)
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
    let mut response: Response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
            .map_err(|e| ApiError::Internal(format!("backup header: {e}")))?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
