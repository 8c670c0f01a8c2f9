//! Users with roles, their browser sessions and their API tokens.
//!
//! Passwords are hashed with argon2id (PHC string, random salt per hash). Session cookies and API
//! tokens are 256-bit random secrets shown once; only their SHA-256 is stored, so a stolen
//! database does not yield a usable credential. Disabling a user revokes their sessions and
//! tokens; users are never deleted (the audit trail and signatures name them).
//!
//! Not for: HTTP (cookies, headers, throttling), which belongs to the web face.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::SqliteConnection;

use super::audit::append;
use super::digest::{random_hex, sha256_hex};
use super::error::{SqlxResultExt, found};
use super::timestamp::{stored, stored_opt};
use super::{Actor, ApiTokenId, AuditEntry, SessionId, Store, StoreError, Timestamp, UserId, db};

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs samples.
    Operator,
    /// Views patients, releases results.
    Clinician,
    /// QC, calibration, users.
    LabAdmin,
}

impl Role {
    /// The stored and displayed name: `operator`, `clinician`, `lab-admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Clinician => "clinician",
            Self::LabAdmin => "lab-admin",
        }
    }

    /// Whether this role may sign a result's release.
    pub fn may_release_results(self) -> bool {
        matches!(self, Self::Clinician | Self::LabAdmin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "operator" => Ok(Self::Operator),
            "clinician" => Ok(Self::Clinician),
            "lab-admin" => Ok(Self::LabAdmin),
            other => Err(StoreError::Invalid {
                field: "role",
                reason: format!("{other:?} is not one of operator, clinician, lab-admin"),
            }),
        }
    }
}

/// A user name: 1 to 64 characters, lowercase ASCII letters, digits, `.`, `_`, `-`, starting
/// with a letter. Input is lowercased first, so `Alice` and `alice` are the same user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

/// How often a session's use is written (its last use and its pushed expiry), at most.
pub const SESSION_TOUCH_INTERVAL: time::Duration = time::Duration::seconds(30);

/// How often an API token's use is written (its `last_used_at`), at most.
pub const TOKEN_USE_INTERVAL: time::Duration = time::Duration::seconds(60);

impl Username {
    /// Longest user name, in characters (all ASCII).
    pub const MAX_CHARS: usize = 64;

    /// The rule of [`Username::parse`] as an ECMA-262 regular expression for the OpenAPI
    /// document: surrounding white space (as `str::trim` drops it), then a letter and up to
    /// [`Username::MAX_CHARS`]` - 1` letters (either case), digits, `.`, `_` or `-`.
    pub fn pattern() -> String {
        let space = super::text_pattern::white_space();
        format!(
            "^{space}*[A-Za-z][A-Za-z0-9._-]{{0,{}}}{space}*$",
            Self::MAX_CHARS - 1
        )
    }

    /// Parses a user name.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let name = text.trim().to_ascii_lowercase();
        let invalid = |reason: &str| StoreError::Invalid {
            field: "user name",
            reason: format!("{text:?}: {reason}"),
        };
        if name.is_empty() || name.len() > Self::MAX_CHARS {
            return Err(invalid("must be 1 to 64 characters"));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(invalid("must start with a letter"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid("may hold only letters, digits, '.', '_' and '-'"));
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password, by the policy shared with the hub ([`credentials::NewPassword`]: 10 to 1024
/// characters, not all whitespace). Its `Debug` hides it.
#[derive(Clone, Debug)]
pub struct NewPassword(credentials::NewPassword);

impl NewPassword {
    /// Shortest accepted password, in characters.
    pub const MIN_CHARS: usize = credentials::NewPassword::MIN_CHARS;

    /// Checks a new password against the policy.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        credentials::NewPassword::parse(text)
            .map(Self)
            .map_err(|error| StoreError::Invalid {
                field: "password",
                reason: error.to_string(),
            })
    }
}

/// What is needed to create a user.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// The sign-in name.
    pub username: Username,
    /// The printed name used in electronic signatures (the user name when empty).
    pub display_name: String,
    /// The role.
    pub role: Role,
    /// The initial password.
    pub password: NewPassword,
}

/// A stored user (without the password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// Sign-in name.
    pub username: String,
    /// Printed name for signatures.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Disabled users cannot sign in or use tokens.
    pub disabled: bool,
    /// When the user was created.
    pub created_at: Timestamp,
    /// When the password last changed.
    pub password_changed_at: Timestamp,
    /// A lab admin set a temporary password ([`Store::reset_password`]): the user changes it
    /// before they use the appliance for anything else.
    pub password_change_required: bool,
}

impl User {
    /// This user as the actor of an audited change.
    pub fn actor(&self) -> Actor {
        Actor::User {
            id: self.id,
            username: self.username.clone(),
        }
    }
}

/// A browser session (its secret is only in the cookie).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Session {
    /// Row id.
    pub id: SessionId,
    /// Whose.
    pub user_id: UserId,
    /// When it was opened.
    pub created_at: Timestamp,
    /// Last request seen.
    pub last_seen_at: Timestamp,
    /// When it lapses unless used.
    pub expires_at: Timestamp,
}

/// An API token's public description (its secret is shown once at creation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Row id.
    pub id: ApiTokenId,
    /// Whose.
    pub user_id: UserId,
    /// What it is for.
    pub label: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// Last use.
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

/// Most users or API tokens one page of [`Store::users_page`] or
/// [`Store::live_api_tokens_page`] holds.
pub const MAX_ACCOUNTS_PAGE: u32 = 500;

/// Prefix of every API token, so that a leaked one is recognisable in logs and scanners.
pub const API_TOKEN_PREFIX: &str = "fct_";

fn password_error(error: credentials::PasswordError) -> StoreError {
    StoreError::PasswordHash(error.to_string())
}

struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    role: String,
    disabled: i64,
    created_at: String,
    password_changed_at: String,
    password_change_required: i64,
}

impl UserRow {
    fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: UserId(self.id),
            role: self.role.parse().map_err(|_| StoreError::Corrupt {
                what: "user role",
                row: self.id,
                reason: format!("{:?} is not a role", self.role),
            })?,
            disabled: self.disabled != 0,
            created_at: stored(&self.created_at, "user creation time", self.id)?,
            password_changed_at: stored(
                &self.password_changed_at,
                "password change time",
                self.id,
            )?,
            password_change_required: self.password_change_required != 0,
            username: self.username,
            display_name: self.display_name,
        })
    }
}

async fn user_row_by_name(
    conn: &mut SqliteConnection,
    username: &str,
) -> Result<Option<(UserRow, String)>, StoreError> {
    let row = sqlx::query!(
        "SELECT id, username, display_name, role, disabled, created_at, password_changed_at,
                password_change_required, password_hash
         FROM users WHERE username = ?",
        username
    )
    .fetch_optional(&mut *conn)
    .await
    .context("looking up a user")?;
    Ok(row.map(|r| {
        (
            UserRow {
                id: r.id,
                username: r.username,
                display_name: r.display_name,
                role: r.role,
                disabled: r.disabled,
                created_at: r.created_at,
                password_changed_at: r.password_changed_at,
                password_change_required: r.password_change_required,
            },
            r.password_hash,
        )
    }))
}

async fn user_by_id(conn: &mut SqliteConnection, id: UserId) -> Result<Option<User>, StoreError> {
    let row = sqlx::query_as!(
        UserRow,
        "SELECT id, username, display_name, role, disabled, created_at, password_changed_at,
                password_change_required
         FROM users WHERE id = ?",
        id.0
    )
    .fetch_optional(&mut *conn)
    .await
    .context("looking up a user")?;
    row.map(UserRow::into_user).transpose()
}

/// A reason a change must give: trimmed, 1 to 500 characters.
fn required_reason(reason: &str) -> Result<&str, StoreError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(StoreError::Invalid {
            field: "reason",
            reason: "say why (1 to 500 characters)".into(),
        });
    }
    Ok(reason)
}

/// Refuses a user acting on their own account (`what`: "change your own role").
fn refuse_own_account(actor: &Actor, target: UserId, what: &str) -> Result<(), StoreError> {
    match actor {
        Actor::User { id, .. } if *id == target => {
            Err(StoreError::NotPermitted(format!("you cannot {what}")))
        }
        _ => Ok(()),
    }
}

/// Refuses to take away the last active lab admin (`how`: "demoted", "disabled"): someone must
/// be left to manage users, QC and calibration.
async fn refuse_last_lab_admin(
    conn: &mut SqliteConnection,
    user: &User,
    how: &str,
) -> Result<(), StoreError> {
    if user.role != Role::LabAdmin || user.disabled {
        return Ok(());
    }
    let lab_admin = Role::LabAdmin.as_str();
    let others = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "count!: i64" FROM users
           WHERE role = ? AND disabled = 0 AND id <> ?"#,
        lab_admin,
        user.id.0
    )
    .fetch_one(&mut *conn)
    .await
    .context("counting active lab admins")?;
    if others == 0 {
        return Err(StoreError::Conflict(format!(
            "{} is the last active lab admin and cannot be {how}",
            user.username
        )));
    }
    Ok(())
}

impl Store {
    /// Creates a user. The name must be new.
    pub async fn add_user(&self, actor: &Actor, new: NewUser) -> Result<User, StoreError> {
        let password_hash = credentials::hash(&new.password.0)
            .await
            .map_err(password_error)?;
        let display_name = match new.display_name.trim() {
            "" => new.username.as_str().to_owned(),
            name => name.to_owned(),
        };
        let now = Timestamp::now().to_rfc3339();
        let username = new.username.as_str();
        let role = new.role.as_str();
        let mut tx = db::begin_write(&self.pool).await?;
        let id = sqlx::query_scalar!(
            "INSERT INTO users (username, display_name, role, password_hash, created_at,
                                password_changed_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            username,
            display_name,
            role,
            password_hash,
            now,
            now,
        )
        .fetch_one(&mut *tx)
        .await
        .unique("adding a user", "user", username)?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("user.add", "user")
                .id(id)
                .detail(serde_json::json!({ "username": username, "role": role,
                                            "display_name": display_name })),
        )
        .await?;
        let user = found(user_by_id(&mut tx, UserId(id)).await?, "user", id)?;
        tx.commit().await.context("committing a new user")?;
        Ok(user)
    }

    /// The user with this name.
    pub async fn user_by_name(&self, username: &Username) -> Result<User, StoreError> {
        let mut conn = self.pool.acquire().await.context("looking up a user")?;
        let row = user_row_by_name(&mut conn, username.as_str()).await?;
        found(row, "user", username)?.0.into_user()
    }

    /// The user with this id.
    pub async fn user(&self, id: UserId) -> Result<User, StoreError> {
        let mut conn = self.pool.acquire().await.context("looking up a user")?;
        found(user_by_id(&mut conn, id).await?, "user", id)
    }

    /// All users, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query_as!(
            UserRow,
            "SELECT id, username, display_name, role, disabled, created_at, password_changed_at,
                    password_change_required
             FROM users ORDER BY username"
        )
        .fetch_all(&self.pool)
        .await
        .context("listing users")?
        .into_iter()
        .map(UserRow::into_user)
        .collect()
    }

    /// One page of users by name, after `after` (none: from the first), at most `limit`
    /// (1 to [`MAX_ACCOUNTS_PAGE`]), each with their last sign-in (the audit trail's newest
    /// `session.sign_in` entry of theirs, one seek in `audit_log_sign_in`): ONE statement.
    pub async fn users_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(User, Option<Timestamp>)>, StoreError> {
        let after = after.unwrap_or("");
        let limit = i64::from(limit.clamp(1, MAX_ACCOUNTS_PAGE));
        let rows = sqlx::query!(
            r#"SELECT u.id AS "id!", u.username, u.display_name, u.role, u.disabled, u.created_at,
                      u.password_changed_at, u.password_change_required,
                      (SELECT a.at FROM audit_log a
                       WHERE a.action = 'session.sign_in' AND a.entity = 'user'
                         AND a.entity_id = CAST(u.id AS TEXT)
                       ORDER BY a.id DESC LIMIT 1) AS "last_sign_in?: String"
               FROM users u WHERE u.username > ?1 ORDER BY u.username LIMIT ?2"#,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("listing a page of users")?;
        rows.into_iter()
            .map(|row| {
                let last = stored_opt(row.last_sign_in.as_deref(), "sign-in time", row.id)?;
                let user = UserRow {
                    id: row.id,
                    username: row.username,
                    display_name: row.display_name,
                    role: row.role,
                    disabled: row.disabled,
                    created_at: row.created_at,
                    password_changed_at: row.password_changed_at,
                    password_change_required: row.password_change_required,
                }
                .into_user()?;
                Ok((user, last))
            })
            .collect()
    }

    /// How many users exist (the first start creates an administrator when there are none).
    pub async fn user_count(&self) -> Result<u64, StoreError> {
        let count = sqlx::query_scalar!(r#"SELECT COUNT(*) AS "count!: i64" FROM users"#)
            .fetch_one(&self.pool)
            .await
            .context("counting users")?;
        Ok(count.unsigned_abs())
    }

    /// Checks a password. `None` when the name is unknown, the user disabled or the password
    /// wrong (the caller cannot tell which, on purpose). Not audited here: the caller records a
    /// sign-in, with the source address it knows.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        let name = Username::parse(username).ok();
        let row = match &name {
            Some(name) => {
                let mut conn = self.pool.acquire().await.context("looking up a user")?;
                user_row_by_name(&mut conn, name.as_str()).await?
            }
            None => None,
        };
        match row {
            None => {
                // Spend the same time as for a real user.
                credentials::spend_a_check(password).await;
                Ok(None)
            }
            Some((row, hash)) => {
                let matches = credentials::matches(password, &hash)
                    .await
                    .map_err(password_error)?;
                let user = row.into_user()?;
                Ok((matches && !user.disabled).then_some(user))
            }
        }
    }

    /// Sets a new password and revokes the user's open sessions and API tokens (a token made
    /// under the old password must not outlive it). The password is the user's own from now on:
    /// a temporary one a lab admin had set ([`Store::reset_password`]) no longer needs changing.
    pub async fn set_password(
        &self,
        actor: &Actor,
        username: &Username,
        password: NewPassword,
    ) -> Result<(), StoreError> {
        self.replace_password(actor, username, password, None).await
    }

    /// A lab admin's password reset: sets the temporary `password` another user must change at
    /// their next sign-in (`password_change_required`), revokes their sessions and API tokens,
    /// audited `user.password_reset` with the reason. Refused for one's own account (one changes
    /// one's own password on the account page, with the current one).
    pub async fn reset_password(
        &self,
        actor: &Actor,
        username: &Username,
        password: NewPassword,
        reason: &str,
    ) -> Result<(), StoreError> {
        let reason = required_reason(reason)?;
        self.replace_password(actor, username, password, Some(reason))
            .await
    }

    /// Replaces a password: the user's own (`reset_reason` `None`) or a temporary one set by a
    /// lab admin for the reason given.
    async fn replace_password(
        &self,
        actor: &Actor,
        username: &Username,
        password: NewPassword,
        reset_reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let password_hash = credentials::hash(&password.0)
            .await
            .map_err(password_error)?;
        let now = Timestamp::now().to_rfc3339();
        let name = username.as_str();
        let temporary = reset_reason.is_some();
        let mut tx = db::begin_write(&self.pool).await?;
        if temporary {
            let (row, _) = found(user_row_by_name(&mut tx, name).await?, "user", name)?;
            refuse_own_account(
                actor,
                UserId(row.id),
                "reset your own password: change it on your account page",
            )?;
        }
        let id = sqlx::query_scalar!(
            "UPDATE users SET password_hash = ?, password_changed_at = ?,
                              password_change_required = ?
             WHERE username = ?
             RETURNING id AS \"id!\"",
            password_hash,
            now,
            temporary,
            name,
        )
        .fetch_optional(&mut *tx)
        .await
        .context("changing a password")?;
        let id = found(id, "user", name)?;
        let revoked = sqlx::query!(
            "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            now,
            id
        )
        .execute(&mut *tx)
        .await
        .context("revoking sessions after a password change")?
        .rows_affected();
        let tokens_revoked = sqlx::query!(
            "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            now,
            id
        )
        .execute(&mut *tx)
        .await
        .context("revoking API tokens after a password change")?
        .rows_affected();
        let detail = serde_json::json!({
            "username": name,
            "sessions_revoked": revoked,
            "tokens_revoked": tokens_revoked,
        });
        let entry = match reset_reason {
            None => AuditEntry::new("user.password", "user"),
            Some(reason) => AuditEntry::new("user.password_reset", "user").reason(reason),
        };
        append(&mut tx, actor, entry.id(id).detail(detail)).await?;
        tx.commit().await.context("committing a password change")?;
        Ok(())
    }

    /// Disables a user and revokes their sessions and API tokens. Refused: one's own account,
    /// and the last active lab admin.
    pub async fn disable_user(
        &self,
        actor: &Actor,
        username: &Username,
        reason: &str,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now().to_rfc3339();
        let name = username.as_str();
        let mut tx = db::begin_write(&self.pool).await?;
        let (row, _) = found(user_row_by_name(&mut tx, name).await?, "user", name)?;
        let user = row.into_user()?;
        refuse_own_account(actor, user.id, "disable your own account")?;
        refuse_last_lab_admin(&mut tx, &user, "disabled").await?;
        let id = user.id.0;
        sqlx::query!("UPDATE users SET disabled = 1 WHERE id = ?", id)
            .execute(&mut *tx)
            .await
            .context("disabling a user")?;
        sqlx::query!(
            "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            now,
            id
        )
        .execute(&mut *tx)
        .await
        .context("revoking a disabled user's sessions")?;
        sqlx::query!(
            "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            now,
            id
        )
        .execute(&mut *tx)
        .await
        .context("revoking a disabled user's API tokens")?;
        let mut entry = AuditEntry::new("user.disable", "user")
            .id(id)
            .detail(serde_json::json!({ "username": name }));
        if !reason.trim().is_empty() {
            entry = entry.reason(reason.trim());
        }
        append(&mut tx, actor, entry).await?;
        tx.commit().await.context("committing a disabled user")?;
        Ok(())
    }

    /// Changes a user's role, with a reason, in one audited transaction. The change holds from
    /// the user's next request (sessions and tokens look the user up each time), so nothing is
    /// revoked. Refused: an empty reason, one's own role (nobody demotes or promotes themselves),
    /// the role the user has already, and demoting the last active lab admin (the appliance
    /// would have nobody left to manage users, QC or calibration).
    pub async fn set_user_role(
        &self,
        actor: &Actor,
        user_id: UserId,
        role: Role,
        reason: &str,
    ) -> Result<User, StoreError> {
        let reason = required_reason(reason)?;
        refuse_own_account(actor, user_id, "change your own role")?;
        let mut tx = db::begin_write(&self.pool).await?;
        let user = found(user_by_id(&mut tx, user_id).await?, "user", user_id)?;
        if user.role == role {
            return Err(StoreError::Conflict(format!(
                "{} is a {role} already",
                user.username
            )));
        }
        if user.role == Role::LabAdmin {
            refuse_last_lab_admin(&mut tx, &user, "demoted").await?;
        }
        let role_text = role.as_str();
        sqlx::query!(
            "UPDATE users SET role = ? WHERE id = ?",
            role_text,
            user.id.0
        )
        .execute(&mut *tx)
        .await
        .context("changing a user's role")?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("user.role", "user")
                .id(user.id)
                .reason(reason)
                .detail(serde_json::json!({
                    "username": user.username,
                    "from": user.role.as_str(),
                    "to": role_text,
                })),
        )
        .await?;
        tx.commit().await.context("committing a role change")?;
        Ok(User { role, ..user })
    }

    /// Re-enables a disabled user, with a reason, in one audited transaction. Their old sessions
    /// and API tokens stay revoked: they sign in again with their password and make new tokens.
    /// Refused: an empty reason, and a user who is not disabled.
    pub async fn enable_user(
        &self,
        actor: &Actor,
        user_id: UserId,
        reason: &str,
    ) -> Result<User, StoreError> {
        let reason = required_reason(reason)?;
        let mut tx = db::begin_write(&self.pool).await?;
        let user = found(user_by_id(&mut tx, user_id).await?, "user", user_id)?;
        if !user.disabled {
            return Err(StoreError::Conflict(format!(
                "{} is not disabled",
                user.username
            )));
        }
        sqlx::query!("UPDATE users SET disabled = 0 WHERE id = ?", user.id.0)
            .execute(&mut *tx)
            .await
            .context("enabling a user")?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("user.enable", "user")
                .id(user.id)
                .reason(reason)
                .detail(serde_json::json!({ "username": user.username })),
        )
        .await?;
        tx.commit().await.context("committing an enabled user")?;
        Ok(User {
            disabled: false,
            ..user
        })
    }

    /// When each user last signed in successfully, from the `session.sign_in` entries the web
    /// face writes to the audit trail (entity `user`, entity id the user's id), in one query for
    /// all users. Users who never signed in are absent. The trail is append-only and its ids
    /// grow with time, so the highest id per user is the newest sign-in.
    pub async fn last_sign_ins(&self) -> Result<HashMap<UserId, Timestamp>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT id AS "id!", entity_id AS "entity_id!", at FROM audit_log
               WHERE id IN (SELECT MAX(id) FROM audit_log
                            WHERE action = 'session.sign_in' AND entity = 'user'
                              AND entity_id IS NOT NULL
                            GROUP BY entity_id)"#
        )
        .fetch_all(&self.pool)
        .await
        .context("finding the last sign-ins")?;
        let mut last = HashMap::with_capacity(rows.len());
        for row in rows {
            let user_id = row.entity_id.parse().map_err(|_| StoreError::Corrupt {
                what: "sign-in audit entry's user id",
                row: row.id,
                reason: format!("{:?} is not a user id", row.entity_id),
            })?;
            last.insert(UserId(user_id), stored(&row.at, "sign-in time", row.id)?);
        }
        Ok(last)
    }

    /// Opens a session for a user who has just authenticated; returns the secret for the cookie
    /// (shown once, stored only hashed). The sign-in is audited.
    pub async fn create_session(
        &self,
        user: &User,
        idle_timeout: time::Duration,
    ) -> Result<(String, Session), StoreError> {
        let secret = random_hex::<32>()?;
        let token_hash = sha256_hex(secret.as_bytes());
        let now = Timestamp::now();
        let expires = now.plus(idle_timeout);
        let (now_text, expires_text) = (now.to_rfc3339(), expires.to_rfc3339());
        let mut tx = db::begin_write(&self.pool).await?;
        let id = sqlx::query_scalar!(
            "INSERT INTO sessions (user_id, token_hash, created_at, last_seen_at, expires_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            user.id.0,
            token_hash,
            now_text,
            now_text,
            expires_text,
        )
        .fetch_one(&mut *tx)
        .await
        .context("opening a session")?;
        append(
            &mut tx,
            &user.actor(),
            AuditEntry::new("session.open", "session").id(id),
        )
        .await?;
        tx.commit().await.context("committing a new session")?;
        Ok((
            secret,
            Session {
                id: SessionId(id),
                user_id: user.id,
                created_at: now,
                last_seen_at: now,
                expires_at: expires,
            },
        ))
    }

    /// The user behind a session cookie, if the session is open, unexpired and its user enabled;
    /// using it pushes its expiry `idle_timeout` ahead (sign-out after inactivity). The push is
    /// written at most once per [`SESSION_TOUCH_INTERVAL`], so a session used continuously costs
    /// a read per request and a write per interval (every write is a sync to disk, and SQLite has
    /// one writer); the inactivity sign-out therefore comes up to that interval early, never late.
    pub async fn session_user(
        &self,
        secret: &str,
        idle_timeout: time::Duration,
    ) -> Result<Option<(User, Session)>, StoreError> {
        let token_hash = sha256_hex(secret.as_bytes());
        let now = Timestamp::now();
        let now_text = now.to_rfc3339();
        let mut conn = self.pool.acquire().await.context("checking a session")?;
        let row = sqlx::query!(
            "SELECT id, user_id, created_at, last_seen_at, expires_at FROM sessions
             WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?",
            token_hash,
            now_text,
        )
        .fetch_optional(&mut *conn)
        .await
        .context("checking a session")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = found(
            user_by_id(&mut conn, UserId(row.user_id)).await?,
            "user",
            row.user_id,
        )?;
        if user.disabled {
            return Ok(None);
        }
        let mut session = Session {
            id: SessionId(row.id),
            user_id: user.id,
            created_at: stored(&row.created_at, "session opening time", row.id)?,
            last_seen_at: stored(&row.last_seen_at, "session last use", row.id)?,
            expires_at: stored(&row.expires_at, "session expiry", row.id)?,
        };
        if session.last_seen_at <= now.plus(-SESSION_TOUCH_INTERVAL) {
            let expires = now.plus(idle_timeout);
            let expires_text = expires.to_rfc3339();
            // One statement, so it is atomic without a transaction: a session revoked or lapsed
            // since the read above is not revived.
            let touched = sqlx::query!(
                "UPDATE sessions SET last_seen_at = ?, expires_at = ?
                 WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
                now_text,
                expires_text,
                row.id,
                now_text,
            )
            .execute(&mut *conn)
            .await
            .context("recording a session's use")?
            .rows_affected();
            if touched == 0 {
                return Ok(None);
            }
            session.last_seen_at = now;
            session.expires_at = expires;
        }
        Ok(Some((user, session)))
    }

    /// Closes a session (sign-out). Unknown or closed sessions are ignored.
    pub async fn revoke_session(&self, secret: &str) -> Result<(), StoreError> {
        let token_hash = sha256_hex(secret.as_bytes());
        let now = Timestamp::now().to_rfc3339();
        let mut tx = db::begin_write(&self.pool).await?;
        let row = sqlx::query!(
            "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL
             RETURNING id, user_id",
            now,
            token_hash
        )
        .fetch_optional(&mut *tx)
        .await
        .context("closing a session")?;
        if let Some(row) = row
            && let Some(user) = user_by_id(&mut tx, UserId(row.user_id)).await?
        {
            append(
                &mut tx,
                &user.actor(),
                AuditEntry::new("session.close", "session").id(row.id),
            )
            .await?;
        }
        tx.commit().await.context("committing a closed session")?;
        Ok(())
    }

    /// Makes an API token for `user_id`; returns the secret (shown once) and its description.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        user_id: UserId,
        label: &str,
    ) -> Result<(String, ApiToken), StoreError> {
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 100 {
            return Err(StoreError::Invalid {
                field: "token label",
                reason: "must be 1 to 100 characters".into(),
            });
        }
        let secret = format!("{API_TOKEN_PREFIX}{}", random_hex::<32>()?);
        let prefix: String = secret.chars().take(API_TOKEN_PREFIX.len() + 6).collect();
        let token_hash = sha256_hex(secret.as_bytes());
        let now = Timestamp::now();
        let now_text = now.to_rfc3339();
        let mut tx = db::begin_write(&self.pool).await?;
        found(user_by_id(&mut tx, user_id).await?, "user", user_id)?;
        let id = sqlx::query_scalar!(
            "INSERT INTO api_tokens (user_id, label, token_prefix, token_hash, created_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            user_id.0,
            label,
            prefix,
            token_hash,
            now_text,
        )
        .fetch_one(&mut *tx)
        .await
        .context("creating an API token")?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("api_token.create", "api_token")
                .id(id)
                .detail(serde_json::json!({ "user_id": user_id, "label": label,
                                            "prefix": prefix })),
        )
        .await?;
        tx.commit().await.context("committing an API token")?;
        Ok((
            secret,
            ApiToken {
                id: ApiTokenId(id),
                user_id,
                label: label.to_owned(),
                prefix,
                created_at: now,
                last_used_at: None,
                revoked_at: None,
            },
        ))
    }

    /// The user behind an API token, if it is unrevoked, was made after `issued_after` (older
    /// tokens have expired: the operations layer sets the token life) and its user is enabled;
    /// records the use, at most once per [`TOKEN_USE_INTERVAL`] (so `last_used_at` is right to
    /// within that interval, and a busy client costs a read per request, not a sync to disk). An
    /// expired token's use is not recorded.
    pub async fn api_token_user(
        &self,
        secret: &str,
        issued_after: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        let token_hash = sha256_hex(secret.as_bytes());
        let now = Timestamp::now();
        let mut conn = self.pool.acquire().await.context("checking an API token")?;
        // The token and its user in one statement (every API request runs it).
        let token = sqlx::query!(
            r#"SELECT t.id AS "token_id!", t.created_at AS token_created_at, t.last_used_at,
                      u.id AS "id!", u.username, u.display_name, u.role, u.disabled,
                      u.created_at, u.password_changed_at, u.password_change_required
               FROM api_tokens t JOIN users u ON u.id = t.user_id
               WHERE t.token_hash = ? AND t.revoked_at IS NULL"#,
            token_hash
        )
        .fetch_optional(&mut *conn)
        .await
        .context("checking an API token")?;
        let Some(token) = token else {
            return Ok(None);
        };
        if stored(
            &token.token_created_at,
            "token creation time",
            token.token_id,
        )? <= issued_after
        {
            return Ok(None);
        }
        let user = UserRow {
            id: token.id,
            username: token.username,
            display_name: token.display_name,
            role: token.role,
            disabled: token.disabled,
            created_at: token.created_at,
            password_changed_at: token.password_changed_at,
            password_change_required: token.password_change_required,
        }
        .into_user()?;
        if user.disabled {
            return Ok(None);
        }
        let last_used = stored_opt(token.last_used_at.as_deref(), "token use", token.token_id)?;
        if last_used.is_none_or(|at| at <= now.plus(-TOKEN_USE_INTERVAL)) {
            let now_text = now.to_rfc3339();
            sqlx::query!(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                now_text,
                token.token_id
            )
            .execute(&mut *conn)
            .await
            .context("recording an API token's use")?;
        }
        Ok(Some(user))
    }

    /// A user's API tokens, newest first.
    pub async fn api_tokens(&self, user_id: UserId) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query!(
            "SELECT id, user_id, label, token_prefix, created_at, last_used_at, revoked_at
             FROM api_tokens WHERE user_id = ? ORDER BY id DESC",
            user_id.0
        )
        .fetch_all(&self.pool)
        .await
        .context("listing API tokens")?;
        rows.into_iter()
            .map(|row| {
                Ok(ApiToken {
                    id: ApiTokenId(row.id),
                    user_id: UserId(row.user_id),
                    label: row.label,
                    prefix: row.token_prefix,
                    created_at: stored(&row.created_at, "token creation time", row.id)?,
                    last_used_at: stored_opt(row.last_used_at.as_deref(), "token use", row.id)?,
                    revoked_at: stored_opt(row.revoked_at.as_deref(), "token revocation", row.id)?,
                })
            })
            .collect()
    }

    /// One page of unrevoked API tokens, newest first, before the token `before` (none: from
    /// the newest), at most `limit` (1 to [`MAX_ACCOUNTS_PAGE`]), of `owner` only or (none)
    /// of everyone, each with its owner: ONE statement.
    pub async fn live_api_tokens_page(
        &self,
        owner: Option<UserId>,
        before: Option<ApiTokenId>,
        limit: u32,
    ) -> Result<Vec<(User, ApiToken)>, StoreError> {
        let owner = owner.map(|id| id.0);
        let before = before.map_or(i64::MAX, |id| id.0);
        let limit = i64::from(limit.clamp(1, MAX_ACCOUNTS_PAGE));
        let rows = sqlx::query!(
            r#"SELECT t.id AS "token_id!", t.label, t.token_prefix, t.created_at AS token_created_at,
                      t.last_used_at, u.id AS "id!", u.username, u.display_name, u.role, u.disabled,
                      u.created_at, u.password_changed_at, u.password_change_required
               FROM api_tokens t JOIN users u ON u.id = t.user_id
               WHERE t.revoked_at IS NULL AND t.id < ?1 AND (?2 IS NULL OR t.user_id = ?2)
               ORDER BY t.id DESC LIMIT ?3"#,
            before,
            owner,
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("listing a page of API tokens")?;
        rows.into_iter()
            .map(|row| {
                let token = ApiToken {
                    id: ApiTokenId(row.token_id),
                    user_id: UserId(row.id),
                    label: row.label,
                    prefix: row.token_prefix,
                    created_at: stored(&row.token_created_at, "token creation time", row.token_id)?,
                    last_used_at: stored_opt(
                        row.last_used_at.as_deref(),
                        "token use",
                        row.token_id,
                    )?,
                    revoked_at: None,
                };
                let user = UserRow {
                    id: row.id,
                    username: row.username,
                    display_name: row.display_name,
                    role: row.role,
                    disabled: row.disabled,
                    created_at: row.created_at,
                    password_changed_at: row.password_changed_at,
                    password_change_required: row.password_change_required,
                }
                .into_user()?;
                Ok((user, token))
            })
            .collect()
    }

    /// Revokes an API token.
    pub async fn revoke_api_token(&self, actor: &Actor, id: ApiTokenId) -> Result<(), StoreError> {
        let now = Timestamp::now().to_rfc3339();
        let mut tx = db::begin_write(&self.pool).await?;
        let revoked = sqlx::query_scalar!(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING id AS \"id!\"",
            now,
            id.0
        )
        .fetch_optional(&mut *tx)
        .await
        .context("revoking an API token")?;
        found(revoked, "API token", id)?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("api_token.revoke", "api_token").id(id),
        )
        .await?;
        tx.commit()
            .await
            .context("committing a revoked API token")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sqlx::SqlitePool;

    use super::*;
    use crate::store::test_fixtures::{PASSWORD, count, user};

    /// A cut-off no token in these tests is older than (so none has expired).
    fn long_ago() -> Timestamp {
        Timestamp::parse("2000-01-01T00:00:00Z").unwrap()
    }

    #[test]
    fn names_roles_and_passwords_are_parsed() {
        assert_eq!(Username::parse(" Alice ").unwrap().as_str(), "alice");
        for bad in ["", "1abc", "a b", "é", &"a".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!("lab-admin".parse::<Role>().unwrap(), Role::LabAdmin);
        assert!("admin".parse::<Role>().is_err());
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("           ").is_err());
        assert!(!format!("{:?}", NewPassword::parse(PASSWORD).unwrap()).contains("horse"));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn passwords_are_stored_as_argon2id_and_checked(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let alice = user(&store, "alice", Role::Clinician).await;
        let stored: String = sqlx::query_scalar("SELECT password_hash FROM users")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains(PASSWORD));
        assert_eq!(
            store.authenticate("ALICE", PASSWORD).await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            store.authenticate("alice", "wrong password").await.unwrap(),
            None
        );
        assert_eq!(store.authenticate("nobody", PASSWORD).await.unwrap(), None);
        assert_eq!(store.authenticate("", PASSWORD).await.unwrap(), None);
        assert_eq!(alice.display_name, "alice (printed)");
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_user_name_is_taken_once(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        user(&store, "alice", Role::Operator).await;
        let again = store
            .add_user(
                &Actor::Appliance,
                NewUser {
                    username: Username::parse("Alice").unwrap(),
                    display_name: String::new(),
                    role: Role::LabAdmin,
                    password: NewPassword::parse(PASSWORD).unwrap(),
                },
            )
            .await;
        assert!(
            matches!(again, Err(StoreError::Duplicate { entity: "user", .. })),
            "{again:?}"
        );
        assert_eq!(count(&pool, "users").await, 1);
        // The refused attempt left no audit entry either.
        assert_eq!(count(&pool, "audit_log").await, 1);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_new_password_replaces_the_old_and_closes_sessions(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let alice = user(&store, "alice", Role::Operator).await;
        let idle = time::Duration::minutes(15);
        let (cookie, _) = store.create_session(&alice, idle).await.unwrap();
        let (old_token, _) = store
            .create_api_token(&alice.actor(), alice.id, "script")
            .await
            .unwrap();
        let name = Username::parse("alice").unwrap();
        store
            .set_password(
                &alice.actor(),
                &name,
                NewPassword::parse("another long one").unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(store.authenticate("alice", PASSWORD).await.unwrap(), None);
        // A token made under the old password dies with it (it used to live on); a new one works.
        assert_eq!(
            store.api_token_user(&old_token, long_ago()).await.unwrap(),
            None
        );
        assert!(
            store.api_tokens(alice.id).await.unwrap()[0]
                .revoked_at
                .is_some()
        );
        let (new_token, _) = store
            .create_api_token(&alice.actor(), alice.id, "script")
            .await
            .unwrap();
        assert!(
            store
                .api_token_user(&new_token, long_ago())
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .authenticate("alice", "another long one")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(store.session_user(&cookie, idle).await.unwrap(), None);
        let unknown = store
            .set_password(
                &alice.actor(),
                &Username::parse("bob").unwrap(),
                NewPassword::parse(PASSWORD).unwrap(),
            )
            .await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound { .. })),
            "{unknown:?}"
        );
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_reset_password_is_temporary_revokes_every_way_in_and_is_audited(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let admin = user(&store, "ada", Role::LabAdmin).await;
        let alice = user(&store, "alice", Role::Operator).await;
        assert!(!alice.password_change_required);
        let idle = time::Duration::minutes(15);
        let (cookie, _) = store.create_session(&alice, idle).await.unwrap();
        let (token, _) = store
            .create_api_token(&alice.actor(), alice.id, "script")
            .await
            .unwrap();
        let name = Username::parse("alice").unwrap();
        let temporary = || NewPassword::parse("temporary one 42").unwrap();
        // A reason is required; one's own account is refused; neither changes anything.
        let blank = store
            .reset_password(&admin.actor(), &name, temporary(), "  ")
            .await;
        assert!(
            matches!(
                blank,
                Err(StoreError::Invalid {
                    field: "reason",
                    ..
                })
            ),
            "{blank:?}"
        );
        let own = store
            .reset_password(
                &admin.actor(),
                &Username::parse("ada").unwrap(),
                temporary(),
                "forgot",
            )
            .await;
        assert!(matches!(own, Err(StoreError::NotPermitted(_))), "{own:?}");
        assert!(store.session_user(&cookie, idle).await.unwrap().is_some());

        store
            .reset_password(&admin.actor(), &name, temporary(), "forgot it on nights")
            .await
            .unwrap();
        // The temporary password signs in, flagged; the old one, the session and token are gone.
        assert_eq!(store.authenticate("alice", PASSWORD).await.unwrap(), None);
        let signed = store
            .authenticate("alice", "temporary one 42")
            .await
            .unwrap()
            .expect("the temporary password");
        assert!(signed.password_change_required);
        assert_eq!(store.session_user(&cookie, idle).await.unwrap(), None);
        assert_eq!(
            store.api_token_user(&token, long_ago()).await.unwrap(),
            None
        );
        let (action, by, reason): (String, Option<i64>, Option<String>) = sqlx::query_as(
            "SELECT action, user_id, reason FROM audit_log ORDER BY id DESC LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            (action.as_str(), by, reason.as_deref()),
            (
                "user.password_reset",
                Some(admin.id.0),
                Some("forgot it on nights")
            )
        );
        // The user's own change clears the flag.
        store
            .set_password(
                &signed.actor(),
                &name,
                NewPassword::parse("my own long one").unwrap(),
            )
            .await
            .unwrap();
        assert!(!store.user(alice.id).await.unwrap().password_change_required);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_disabled_user_loses_every_way_in(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let alice = user(&store, "alice", Role::Operator).await;
        let idle = time::Duration::minutes(15);
        let (cookie, _) = store.create_session(&alice, idle).await.unwrap();
        let (token, _) = store
            .create_api_token(&alice.actor(), alice.id, "dashboard")
            .await
            .unwrap();
        let name = Username::parse("alice").unwrap();
        store
            .disable_user(&Actor::Appliance, &name, "left the lab")
            .await
            .unwrap();
        assert_eq!(store.authenticate("alice", PASSWORD).await.unwrap(), None);
        assert_eq!(store.session_user(&cookie, idle).await.unwrap(), None);
        assert_eq!(
            store.api_token_user(&token, long_ago()).await.unwrap(),
            None
        );
        assert!(store.user(alice.id).await.unwrap().disabled);
        let reason: Option<String> =
            sqlx::query_scalar("SELECT reason FROM audit_log WHERE action = 'user.disable'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(reason.as_deref(), Some("left the lab"));
    }

    /// A session's and a token's use are written at most once per interval: a request within
    /// it only reads (a write is a sync to disk, and the one writer is shared with runs and
    /// audit rows), one after it pushes the session's expiry and the token's last use.
    #[sqlx::test(migrations = "../migrations")]
    async fn uses_are_written_at_most_once_per_interval(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let alice = user(&store, "alice", Role::Clinician).await;
        let idle = time::Duration::minutes(15);
        let (cookie, _) = store.create_session(&alice, idle).await.unwrap();
        let (secret, _) = store
            .create_api_token(&alice.actor(), alice.id, "LIS")
            .await
            .unwrap();
        let set = |sql: &'static str, at: Timestamp| {
            let pool = pool.clone();
            async move {
                sqlx::query(sql)
                    .bind(at.to_rfc3339())
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        };
        let read = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, Option<String>>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        let now = Timestamp::now();
        let recent = now.plus(-time::Duration::seconds(10));
        let soon = now.plus(time::Duration::minutes(5));
        set("UPDATE sessions SET last_seen_at = ?", recent).await;
        set("UPDATE sessions SET expires_at = ?", soon).await;
        set("UPDATE api_tokens SET last_used_at = ?", recent).await;
        let (_, seen) = store.session_user(&cookie, idle).await.unwrap().unwrap();
        assert_eq!(
            seen.expires_at, soon,
            "used within the interval: nothing written"
        );
        assert!(
            store
                .api_token_user(&secret, long_ago())
                .await
                .unwrap()
                .is_some()
        );
        let expires = read("SELECT expires_at FROM sessions").await;
        let used = read("SELECT last_used_at FROM api_tokens").await;
        assert_eq!(expires, Some(soon.to_rfc3339()));
        assert_eq!(used, Some(recent.to_rfc3339()));

        let before = now.plus(-SESSION_TOUCH_INTERVAL - TOKEN_USE_INTERVAL);
        set("UPDATE sessions SET last_seen_at = ?", before).await;
        set("UPDATE api_tokens SET last_used_at = ?", before).await;
        let (_, seen) = store.session_user(&cookie, idle).await.unwrap().unwrap();
        assert!(
            seen.expires_at >= now.plus(idle),
            "pushed a full idle time ahead"
        );
        assert!(
            store
                .api_token_user(&secret, long_ago())
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            read("SELECT expires_at FROM sessions").await,
            Some(seen.expires_at.to_rfc3339())
        );
        let used = read("SELECT last_used_at FROM api_tokens").await;
        let used = Timestamp::parse(&used.expect("a use")).unwrap();
        assert!(used >= now, "the use is recorded");
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn sessions_open_slide_and_close(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let alice = user(&store, "alice", Role::Clinician).await;
        let idle = time::Duration::minutes(15);
        let (cookie, session) = store.create_session(&alice, idle).await.unwrap();
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM sessions")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_ne!(stored, cookie, "only the hash of the cookie is stored");
        let (who, seen) = store.session_user(&cookie, idle).await.unwrap().unwrap();
        assert_eq!(who.id, alice.id);
        assert!(seen.expires_at >= session.expires_at);
        assert_eq!(
            store.session_user("not a cookie", idle).await.unwrap(),
            None
        );
        store.revoke_session(&cookie).await.unwrap();
        assert_eq!(store.session_user(&cookie, idle).await.unwrap(), None);
        // An idle session lapses: opened with a timeout already past.
        let (stale, _) = store
            .create_session(&alice, time::Duration::seconds(-1))
            .await
            .unwrap();
        assert_eq!(store.session_user(&stale, idle).await.unwrap(), None);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn api_tokens_are_shown_once_and_stored_hashed(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let admin = user(&store, "root", Role::LabAdmin).await;
        let (secret, token) = store
            .create_api_token(&admin.actor(), admin.id, "LIS export")
            .await
            .unwrap();
        assert!(secret.starts_with(API_TOKEN_PREFIX));
        assert!(secret.starts_with(&token.prefix));
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(!stored.contains(&secret[API_TOKEN_PREFIX.len()..]));
        assert_eq!(
            store
                .api_token_user(&secret, long_ago())
                .await
                .unwrap()
                .map(|u| u.id),
            Some(admin.id)
        );
        assert!(
            store.api_tokens(admin.id).await.unwrap()[0]
                .last_used_at
                .is_some()
        );
        // Made at or before the cut-off: expired, and the attempt is not recorded as a use.
        let used = store.api_tokens(admin.id).await.unwrap()[0].last_used_at;
        assert_eq!(
            store
                .api_token_user(&secret, token.created_at)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store.api_tokens(admin.id).await.unwrap()[0].last_used_at,
            used
        );
        store
            .revoke_api_token(&admin.actor(), token.id)
            .await
            .unwrap();
        assert_eq!(
            store.api_token_user(&secret, long_ago()).await.unwrap(),
            None
        );
        let missing = store.revoke_api_token(&admin.actor(), ApiTokenId(99)).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
        let for_nobody = store
            .create_api_token(&admin.actor(), UserId(99), "x")
            .await;
        assert!(
            matches!(for_nobody, Err(StoreError::NotFound { .. })),
            "{for_nobody:?}"
        );
        assert_eq!(store.user_count().await.unwrap(), 1);
    }

    async fn audit_rows(pool: &SqlitePool, action: &str) -> Vec<(Option<String>, String)> {
        sqlx::query_as("SELECT reason, detail_json FROM audit_log WHERE action = ? ORDER BY id")
            .bind(action)
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_role_change_is_audited_with_its_reason_and_holds_for_open_sessions(
        pool: SqlitePool,
    ) {
        let store = Store::from_pool(pool.clone());
        let admin = user(&store, "lars", Role::LabAdmin).await;
        let olga = user(&store, "olga", Role::Operator).await;
        let idle = time::Duration::minutes(15);
        let (cookie, _) = store.create_session(&olga, idle).await.unwrap();
        let changed = store
            .set_user_role(
                &admin.actor(),
                olga.id,
                Role::Clinician,
                "  moved to the clinic ",
            )
            .await
            .unwrap();
        assert_eq!(changed.role, Role::Clinician);
        assert_eq!(store.user(olga.id).await.unwrap().role, Role::Clinician);
        let (seen, _) = store.session_user(&cookie, idle).await.unwrap().unwrap();
        assert_eq!(
            seen.role,
            Role::Clinician,
            "the open session sees the new role"
        );
        let rows = audit_rows(&pool, "user.role").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0.as_deref(), Some("moved to the clinic"));
        let detail: serde_json::Value = serde_json::from_str(&rows[0].1).unwrap();
        assert_eq!(
            detail,
            serde_json::json!({ "username": "olga", "from": "operator", "to": "clinician" })
        );
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn role_changes_are_refused_without_a_reason_for_oneself_and_for_the_last_lab_admin(
        pool: SqlitePool,
    ) {
        let store = Store::from_pool(pool.clone());
        let lars = user(&store, "lars", Role::LabAdmin).await;
        let olga = user(&store, "olga", Role::Operator).await;
        let blank = store
            .set_user_role(&lars.actor(), olga.id, Role::Clinician, "  ")
            .await;
        assert!(
            matches!(
                blank,
                Err(StoreError::Invalid {
                    field: "reason",
                    ..
                })
            ),
            "{blank:?}"
        );
        let own = store
            .set_user_role(&lars.actor(), lars.id, Role::Operator, "stepping down")
            .await;
        assert!(matches!(own, Err(StoreError::NotPermitted(_))), "{own:?}");
        let same = store
            .set_user_role(&lars.actor(), olga.id, Role::Operator, "no change")
            .await;
        assert!(matches!(same, Err(StoreError::Conflict(_))), "{same:?}");
        let last = store
            .set_user_role(
                &Actor::Appliance,
                lars.id,
                Role::Operator,
                "by the command line",
            )
            .await;
        assert!(
            matches!(&last, Err(StoreError::Conflict(m)) if m.contains("last active lab admin")),
            "{last:?}"
        );
        let unknown = store
            .set_user_role(&lars.actor(), UserId(999), Role::Operator, "who?")
            .await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound { .. })),
            "{unknown:?}"
        );
        assert_eq!(store.user(lars.id).await.unwrap().role, Role::LabAdmin);
        assert_eq!(store.user(olga.id).await.unwrap().role, Role::Operator);
        assert!(audit_rows(&pool, "user.role").await.is_empty());
        // With a second active lab admin, the first may be demoted (by someone else).
        let anna = user(&store, "anna", Role::LabAdmin).await;
        store
            .set_user_role(
                &anna.actor(),
                lars.id,
                Role::Clinician,
                "left the lab office",
            )
            .await
            .unwrap();
        assert_eq!(store.user(lars.id).await.unwrap().role, Role::Clinician);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn disabling_refuses_oneself_and_the_last_active_lab_admin(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let lars = user(&store, "lars", Role::LabAdmin).await;
        let anna = user(&store, "anna", Role::LabAdmin).await;
        let lars_name = Username::parse("lars").unwrap();
        let anna_name = Username::parse("anna").unwrap();
        let own = store.disable_user(&lars.actor(), &lars_name, "bye").await;
        assert!(matches!(own, Err(StoreError::NotPermitted(_))), "{own:?}");
        store
            .disable_user(&lars.actor(), &anna_name, "on leave")
            .await
            .unwrap();
        let last = store
            .disable_user(&Actor::Appliance, &lars_name, "by the command line")
            .await;
        assert!(
            matches!(&last, Err(StoreError::Conflict(m)) if m.contains("last active lab admin")),
            "{last:?}"
        );
        assert!(!store.user(lars.id).await.unwrap().disabled);
        assert!(store.user(anna.id).await.unwrap().disabled);
        assert_eq!(audit_rows(&pool, "user.disable").await.len(), 1);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn an_enabled_user_signs_in_again_but_old_sessions_and_tokens_stay_revoked(
        pool: SqlitePool,
    ) {
        let store = Store::from_pool(pool.clone());
        let lars = user(&store, "lars", Role::LabAdmin).await;
        let olga = user(&store, "olga", Role::Operator).await;
        let idle = time::Duration::minutes(15);
        let (cookie, _) = store.create_session(&olga, idle).await.unwrap();
        let (token, _) = store
            .create_api_token(&olga.actor(), olga.id, "bench")
            .await
            .unwrap();
        let active = store.enable_user(&lars.actor(), olga.id, "back").await;
        assert!(matches!(active, Err(StoreError::Conflict(_))), "{active:?}");
        let olga_name = Username::parse("olga").unwrap();
        store
            .disable_user(&lars.actor(), &olga_name, "on leave")
            .await
            .unwrap();
        let blank = store.enable_user(&lars.actor(), olga.id, "").await;
        assert!(
            matches!(
                blank,
                Err(StoreError::Invalid {
                    field: "reason",
                    ..
                })
            ),
            "{blank:?}"
        );
        assert!(store.user(olga.id).await.unwrap().disabled);
        let enabled = store
            .enable_user(&lars.actor(), olga.id, "back from leave")
            .await
            .unwrap();
        assert!(!enabled.disabled);
        assert!(
            store
                .authenticate("olga", PASSWORD)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(store.session_user(&cookie, idle).await.unwrap(), None);
        assert_eq!(
            store.api_token_user(&token, long_ago()).await.unwrap(),
            None
        );
        let rows = audit_rows(&pool, "user.enable").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0.as_deref(), Some("back from leave"));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn last_sign_ins_are_the_newest_sign_in_entry_per_user(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let lars = user(&store, "lars", Role::LabAdmin).await;
        let olga = user(&store, "olga", Role::Operator).await;
        let _claire = user(&store, "claire", Role::Clinician).await;
        assert!(store.last_sign_ins().await.unwrap().is_empty());
        for who in [&lars, &olga, &lars] {
            store
                .record_event(
                    &who.actor(),
                    AuditEntry::new("session.sign_in", "user").id(who.id),
                )
                .await
                .unwrap();
        }
        // A refused sign-in names no user id and counts for nobody.
        store
            .record_event(
                &Actor::Appliance,
                AuditEntry::new("session.sign_in_refused", "user"),
            )
            .await
            .unwrap();
        let last = store.last_sign_ins().await.unwrap();
        assert_eq!(last.len(), 2, "claire never signed in: {last:?}");
        let newest: (String,) = sqlx::query_as(
            "SELECT at FROM audit_log WHERE action = 'session.sign_in' ORDER BY id DESC LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(last[&lars.id], Timestamp::parse(&newest.0).unwrap());
        assert!(last[&olga.id] <= last[&lars.id]);
    }
}
