//! The hub's own people and their browser sessions: lab admins, lab managers and clinicians who
//! sign in to the hub's pages. They are not the appliances' users (each appliance keeps its
//! own); passwords follow the same policy and hashing (`credentials`).
//!
//! - What a role may do is decided in one place, [`HubRole::may`].
//! - A session is a 256-bit random secret shown once (the cookie); the hub keeps its SHA-256,
//!   its user and its expiry, which slides forward with use ([`SESSION_IDLE`]) up to
//!   [`SESSION_LONGEST`] after sign-in. Disabling a user ends their sessions.
//! - Every sign-in, refused sign-in, sign-out and user change is in the hub's audit trail, with
//!   the user as the actor once known.
//!
//! Not for: HTTP (cookies, CSRF, throttling) or what the pages show.

use std::fmt;

use hub_protocol::audit_chain::sha256_hex;
use serde_json::json;
use time::OffsetDateTime;

use super::audit::{AuditEntry, HubActor, append};
use super::{Context, HubError, HubStore, random_hex};

/// How long a session lasts without use.
pub const SESSION_IDLE: time::Duration = time::Duration::minutes(30);
/// How long a session lasts at most, however busy.
pub const SESSION_LONGEST: time::Duration = time::Duration::hours(12);
/// A session's expiry is written at most this often (each use would be a write otherwise).
pub const SESSION_TOUCH_INTERVAL: time::Duration = time::Duration::seconds(30);

/// What one of the hub's people does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HubRole {
    /// Keeps the hub: its users, the appliances' enrolment, everything a lab manager and a
    /// clinician see.
    LabAdmin,
    /// Keeps the fleet in control: the fleet, its QC and comparability; no patient data.
    LabManager,
    /// Follows patients: their results from every appliance; not the fleet's workings.
    Clinician,
}

/// Something a page or request of the hub needs a role for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubPermission {
    /// See the fleet: appliances, their state, QC across the fleet, comparability.
    ViewFleet,
    /// See patients' results (names the patient: minimum necessary).
    ViewPatients,
    /// Add and disable the hub's users; enrol and revoke appliances.
    Administer,
}

impl HubRole {
    /// Every role, in the order pages list them.
    pub const ALL: [HubRole; 3] = [Self::LabAdmin, Self::LabManager, Self::Clinician];

    /// The rule: who may do what on the hub.
    pub fn may(self, permission: HubPermission) -> bool {
        match permission {
            HubPermission::ViewFleet => matches!(self, Self::LabAdmin | Self::LabManager),
            HubPermission::ViewPatients => matches!(self, Self::LabAdmin | Self::Clinician),
            HubPermission::Administer => self == Self::LabAdmin,
        }
    }

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LabAdmin => "lab_admin",
            Self::LabManager => "lab_manager",
            Self::Clinician => "clinician",
        }
    }

    /// In words, for pages.
    pub fn label(self) -> &'static str {
        match self {
            Self::LabAdmin => "Lab admin",
            Self::LabManager => "Lab manager",
            Self::Clinician => "Clinician",
        }
    }

    /// Reads a stored role or a command line's (`lab_admin`, `lab-admin`, …).
    pub fn parse(text: &str) -> Result<Self, HubError> {
        let wanted = text.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == wanted)
            .ok_or_else(|| {
                HubError::Invalid(format!(
                    "role {text:?} is not one of lab_admin, lab_manager, clinician"
                ))
            })
    }
}

impl fmt::Display for HubRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user name as the hub keeps it: 1 to 64 characters, a letter first, then letters, digits,
/// `.`, `_` or `-`; lower case (as the appliance's).
fn username(text: &str) -> Result<String, HubError> {
    let name = text.trim().to_ascii_lowercase();
    let invalid = |reason: &str| HubError::Invalid(format!("user name {text:?}: {reason}"));
    if name.is_empty() || name.len() > 64 {
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
    Ok(name)
}

/// What is needed to add one of the hub's people.
#[derive(Clone, Debug)]
pub struct NewHubUser {
    /// The sign-in name.
    pub username: String,
    /// The name pages show (the user name when empty).
    pub display_name: String,
    /// The role.
    pub role: HubRole,
    /// The first password.
    pub password: credentials::NewPassword,
}

/// One of the hub's people (without the password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubUser {
    /// Row id.
    pub id: i64,
    /// Sign-in name.
    pub username: String,
    /// The name pages show.
    pub display_name: String,
    /// Role.
    pub role: HubRole,
    /// Disabled users cannot sign in.
    pub disabled: bool,
}

impl HubUser {
    /// This user as the actor of an audited action.
    pub fn actor(&self) -> HubActor {
        HubActor::User {
            id: self.id,
            username: self.username.clone(),
        }
    }

    /// Whether their role allows `permission` (see [`HubRole::may`]).
    pub fn may(&self, permission: HubPermission) -> bool {
        self.role.may(permission)
    }
}

/// A session just opened: the secret is for the cookie and shown this once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubSession {
    /// The cookie's value.
    pub secret: String,
    /// Whose.
    pub user: HubUser,
    /// When it ends unless used.
    pub expires_at: OffsetDateTime,
}

/// Why a sign-in was refused (one answer for a wrong name and a wrong password).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefusal {
    /// No such user, a wrong password, or a disabled user.
    #[error("the user name or password is wrong, or the account is disabled")]
    Refused,
}

struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    role: String,
    disabled_at: Option<OffsetDateTime>,
}

impl UserRow {
    fn into_user(self) -> Result<HubUser, HubError> {
        Ok(HubUser {
            role: HubRole::parse(&self.role).map_err(|error| HubError::Corrupt {
                what: "user role",
                detail: error.to_string(),
            })?,
            id: self.id,
            username: self.username,
            display_name: self.display_name,
            disabled: self.disabled_at.is_some(),
        })
    }
}

impl HubStore {
    /// Adds one of the hub's people, audited `user.add`. The name must be new.
    pub async fn add_user(&self, actor: &HubActor, new: &NewHubUser) -> Result<HubUser, HubError> {
        let name = username(&new.username)?;
        let display_name = match new.display_name.trim() {
            "" => name.clone(),
            shown if shown.chars().count() > 100 => {
                return Err(HubError::Invalid(
                    "display name: at most 100 characters".into(),
                ));
            }
            shown => shown.to_owned(),
        };
        let hash = credentials::hash(&new.password)
            .await
            .map_err(|error| HubError::PasswordHash(error.to_string()))?;
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        let id = sqlx::query_scalar!(
            "INSERT INTO users (username, display_name, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4, now())
             ON CONFLICT (username) DO NOTHING
             RETURNING id",
            name,
            display_name,
            new.role.as_str(),
            hash,
        )
        .fetch_optional(&mut *tx)
        .await
        .context("adding a hub user")?
        .ok_or_else(|| HubError::Invalid(format!("the hub has a user named {name:?} already")))?;
        append(
            &mut tx,
            actor,
            &AuditEntry::new("user.add", "user")
                .id(id)
                .detail(json!({ "username": name, "role": new.role.as_str(),
                                "display_name": display_name })),
        )
        .await?;
        tx.commit().await.context("committing a new hub user")?;
        Ok(HubUser {
            id,
            username: name,
            display_name,
            role: new.role,
            disabled: false,
        })
    }

    /// Every one of the hub's people, by user name.
    pub async fn users(&self) -> Result<Vec<HubUser>, HubError> {
        sqlx::query_as!(
            UserRow,
            "SELECT id, username, display_name, role, disabled_at FROM users ORDER BY username"
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the hub's users")?
        .into_iter()
        .map(UserRow::into_user)
        .collect()
    }

    /// Disables a user (they cannot sign in; their sessions end), audited `user.disable` with
    /// the reason. Refused for one's own account.
    pub async fn disable_user(
        &self,
        actor: &HubActor,
        username_text: &str,
        reason: &str,
    ) -> Result<HubUser, HubError> {
        let name = username(username_text)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(HubError::Invalid("a reason is required".into()));
        }
        if matches!(actor, HubActor::User { username, .. } if *username == name) {
            return Err(HubError::Invalid(
                "one cannot disable one's own account".into(),
            ));
        }
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        let row = sqlx::query_as!(
            UserRow,
            "UPDATE users SET disabled_at = COALESCE(disabled_at, now()) WHERE username = $1
             RETURNING id, username, display_name, role, disabled_at",
            name,
        )
        .fetch_optional(&mut *tx)
        .await
        .context("disabling a hub user")?
        .ok_or_else(|| HubError::Invalid(format!("the hub has no user named {name:?}")))?;
        sqlx::query!(
            "UPDATE sessions SET ended_at = now() WHERE user_id = $1 AND ended_at IS NULL",
            row.id,
        )
        .execute(&mut *tx)
        .await
        .context("ending a disabled user's sessions")?;
        append(
            &mut tx,
            actor,
            &AuditEntry::new("user.disable", "user")
                .id(row.id)
                .reason(reason)
                .detail(json!({ "username": name })),
        )
        .await?;
        tx.commit()
            .await
            .context("committing a disabled hub user")?;
        row.into_user()
    }

    /// Checks a user name and password and opens a session, audited `session.start` (by the
    /// user) or `sign_in.refused` (by the hub, with the name as typed). `address` is the
    /// client's, for the trail.
    pub async fn sign_in(
        &self,
        username_text: &str,
        password: &str,
        address: &str,
    ) -> Result<Result<HubSession, SignInRefusal>, HubError> {
        let row = match username(username_text) {
            Ok(name) => sqlx::query!(
                "SELECT id, username, display_name, role, disabled_at, password_hash
                 FROM users WHERE username = $1",
                name,
            )
            .fetch_optional(&self.pool)
            .await
            .context("looking up a hub user")?,
            Err(_) => None,
        };
        let user = match row {
            None => {
                // As long as for a real user: the answer does not tell which names exist.
                credentials::spend_a_check(password).await;
                None
            }
            Some(row) => {
                let matches = credentials::matches(password, &row.password_hash)
                    .await
                    .map_err(|error| HubError::Corrupt {
                        what: "password hash",
                        detail: error.to_string(),
                    })?;
                let user = UserRow {
                    id: row.id,
                    username: row.username,
                    display_name: row.display_name,
                    role: row.role,
                    disabled_at: row.disabled_at,
                }
                .into_user()?;
                (matches && !user.disabled).then_some(user)
            }
        };
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        let Some(user) = user else {
            let typed: String = username_text.chars().take(64).collect();
            append(
                &mut tx,
                &HubActor::Hub,
                &AuditEntry::new("sign_in.refused", "user")
                    .detail(json!({ "username": typed, "address": address })),
            )
            .await?;
            tx.commit().await.context("committing a refused sign-in")?;
            return Ok(Err(SignInRefusal::Refused));
        };
        let secret = random_hex::<32>()?;
        let expires_at = sqlx::query_scalar!(
            "INSERT INTO sessions (secret_hash, user_id, started_at, expires_at)
             VALUES ($1, $2, now(), now() + make_interval(secs => $3))
             RETURNING expires_at",
            sha256_hex(secret.as_bytes()),
            user.id,
            SESSION_IDLE.as_seconds_f64(),
        )
        .fetch_one(&mut *tx)
        .await
        .context("opening a session")?;
        append(
            &mut tx,
            &user.actor(),
            &AuditEntry::new("session.start", "user")
                .id(user.id)
                .detail(json!({ "address": address })),
        )
        .await?;
        tx.commit().await.context("committing a new session")?;
        Ok(Ok(HubSession {
            secret,
            user,
            expires_at,
        }))
    }

    /// The user of an open session, sliding its expiry forward (written at most every
    /// [`SESSION_TOUCH_INTERVAL`]); `None` for an unknown, ended or expired session or a
    /// disabled user.
    pub async fn session_user(&self, secret: &str) -> Result<Option<HubUser>, HubError> {
        let row = sqlx::query!(
            r#"SELECT s.id AS session_id, s.expires_at, s.started_at,
                      u.id, u.username, u.display_name, u.role, u.disabled_at
               FROM sessions s JOIN users u ON u.id = s.user_id
               WHERE s.secret_hash = $1 AND s.ended_at IS NULL AND s.expires_at > now()"#,
            sha256_hex(secret.as_bytes()),
        )
        .fetch_optional(&self.pool)
        .await
        .context("looking up a session")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = UserRow {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            role: row.role,
            disabled_at: row.disabled_at,
        }
        .into_user()?;
        if user.disabled {
            return Ok(None);
        }
        let now = OffsetDateTime::now_utc();
        let wanted = (now + SESSION_IDLE).min(row.started_at + SESSION_LONGEST);
        if wanted - row.expires_at >= SESSION_TOUCH_INTERVAL {
            sqlx::query!(
                "UPDATE sessions SET expires_at = $2 WHERE id = $1 AND ended_at IS NULL",
                row.session_id,
                wanted,
            )
            .execute(&self.pool)
            .await
            .context("extending a session")?;
        }
        Ok(Some(user))
    }

    /// Ends a session (signing out), audited `session.end`; an unknown or ended one is left.
    pub async fn sign_out(&self, secret: &str) -> Result<(), HubError> {
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        let ended = sqlx::query!(
            r#"UPDATE sessions s SET ended_at = now() FROM users u
               WHERE s.secret_hash = $1 AND s.ended_at IS NULL AND u.id = s.user_id
               RETURNING u.id, u.username"#,
            sha256_hex(secret.as_bytes()),
        )
        .fetch_optional(&mut *tx)
        .await
        .context("ending a session")?;
        if let Some(user) = ended {
            append(
                &mut tx,
                &HubActor::User {
                    id: user.id,
                    username: user.username,
                },
                &AuditEntry::new("session.end", "user").id(user.id),
            )
            .await?;
        }
        tx.commit().await.context("committing a sign-out")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_may_what_its_work_needs_and_no_more() {
        use HubPermission::*;
        use HubRole::*;
        let table = [
            (LabAdmin, [true, true, true]),
            (LabManager, [true, false, false]),
            (Clinician, [false, true, false]),
        ];
        for (role, allowed) in table {
            for (permission, allowed) in [ViewFleet, ViewPatients, Administer]
                .into_iter()
                .zip(allowed)
            {
                assert_eq!(role.may(permission), allowed, "{role} {permission:?}");
            }
        }
    }

    #[test]
    fn roles_and_names_are_read_as_the_console_types_them() {
        assert_eq!(HubRole::parse("lab-admin").ok(), Some(HubRole::LabAdmin));
        assert_eq!(HubRole::parse(" Clinician ").ok(), Some(HubRole::Clinician));
        assert!(HubRole::parse("operator").is_err());
        assert_eq!(username(" Lars.T ").ok().as_deref(), Some("lars.t"));
        assert!(username("1lars").is_err());
        assert!(username("lars tester").is_err());
        assert!(username(&"a".repeat(65)).is_err());
    }
}
