//! A person's own password: changing it, and a lab admin's reset that makes them change it.
//!
//! - **Own change.** The current password is re-entered (throttled like a sign-in, a failure
//!   audited), the new one typed twice; the change revokes every session and API token of the
//!   account in the same transaction (`Store::set_password`, audited `user.password`), so the
//!   person signs in again with the new password.
//! - **Reset** (issue 11 point 8). A lab admin sets a temporary password for another user, with
//!   a reason (`Store::reset_password`, audited `user.password_reset`: who, when, why). Every
//!   session and API token of that user ends with it. **The rule:** until the user has changed
//!   the temporary password, the account is used for nothing else
//!   ([`refuse_until_password_changed`]): the pages lead only to the account page (and sign
//!   out), the JSON API refuses the account with a 403 that says so. Tokens are revoked at the
//!   reset rather than merely refused, so a script holding one never works again under a
//!   password its owner did not choose, and no new token can be made before the change (making
//!   one needs a usable session).
//!
//! Not for: the console setting a password (`Operations::set_password`, `ferrocount user
//! passwd`), which the user need not change.

use std::net::IpAddr;
use std::time::Instant;

use appliance::store::AuditEntry;
use appliance::store::users::{NewPassword, User, Username};

use crate::users::ChangeReason;
use crate::{OperationError, Operations, Requester};

/// Refuses an account whose password a lab admin reset until its user has changed it: the one
/// check the pages (which then lead to the account page) and the JSON API (a 403) ask.
pub fn refuse_until_password_changed(user: &User) -> Result<(), OperationError> {
    if user.password_change_required {
        return Err(OperationError::Forbidden {
            role: "user whose password a lab admin reset".into(),
            action: "use the appliance before changing that temporary password on the account \
                     page (/account)",
        });
    }
    Ok(())
}

/// A password change as typed on the account page.
#[derive(Clone, Default)]
pub struct PasswordChange {
    /// The password now, re-entered.
    pub current: String,
    /// The new password.
    pub new: String,
    /// The new password again.
    pub repeated: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange(<hidden>)")
    }
}

impl Operations {
    /// Changes the requester's own password: the current one must match (from `client`, counted
    /// by the sign-in throttle; a mismatch is audited `user.password_change_refused`), the new
    /// one typed the same twice, valid ([`NewPassword::parse`]) and not the current one. Every
    /// session and token of the account ends with it.
    pub async fn change_own_password(
        &self,
        who: &Requester,
        client: IpAddr,
        change: &PasswordChange,
    ) -> Result<(), OperationError> {
        let Some(user) = who.user() else {
            return Err(OperationError::Forbidden {
                role: "the console".into(),
                action: "change its own password (it has no account)",
            });
        };
        let now = Instant::now();
        if let Err(refusal) = self.throttle.check(&user.username, client, now) {
            return Err(OperationError::TooManyAttempts {
                what: refusal.what,
                retry_after_s: refusal.retry_after_s,
            });
        }
        let confirmed = self
            .store
            .authenticate(&user.username, &change.current)
            .await?;
        if confirmed.as_ref().map(|u| u.id) != Some(user.id) {
            self.throttle.record_failure(&user.username, client, now);
            self.store
                .record_event(
                    &user.actor(),
                    AuditEntry::new("user.password_change_refused", "user")
                        .id(user.id)
                        .reason("current password re-entry failed"),
                )
                .await?;
            return Err(OperationError::invalid(
                "current_password",
                "this is not your current password",
            ));
        }
        if change.new != change.repeated {
            return Err(OperationError::invalid(
                "new_password_again",
                "the two new passwords differ: type the same one twice",
            ));
        }
        if change.new == change.current {
            return Err(OperationError::invalid(
                "new_password",
                "the new password is the current one: choose another",
            ));
        }
        let password = NewPassword::parse(&change.new)
            .map_err(|e| OperationError::invalid("new_password", e.to_string()))?;
        let name = Username::parse(&user.username)?;
        Ok(self
            .store
            .set_password(&user.actor(), &name, password)
            .await?)
    }
}

impl Operations {
    /// A lab admin resets another user's password to `temporary`, with a reason: the user must
    /// change it at their next sign-in ([`refuse_until_password_changed`]); their sessions and
    /// API tokens end now. Refused for one's own account (change it on the account page).
    pub async fn reset_password(
        &self,
        who: &Requester,
        username: &str,
        temporary: &str,
        reason: &ChangeReason,
    ) -> Result<(), OperationError> {
        let target = self.named_user(who, username).await?;
        let password = NewPassword::parse(temporary)
            .map_err(|e| OperationError::invalid("temporary_password", e.to_string()))?;
        let name = Username::parse(&target.username)?;
        Ok(self
            .store
            .reset_password(&who.actor(), &name, password, reason.as_str())
            .await?)
    }
}
