//! A signed-in person's own account: changing their own password.
//!
//! The current password is re-entered (throttled like a sign-in, a failure audited), the new one
//! typed twice; the change revokes every session and API token of the account in the same
//! transaction (`Store::set_password`, audited `user.password`), so the person signs in again
//! with the new password. Not for: a lab admin setting someone else's password
//! (`Operations::set_password`).

use std::net::IpAddr;
use std::time::Instant;

use appliance::store::AuditEntry;
use appliance::store::users::{NewPassword, Username};

use crate::{OperationError, Operations, Requester};

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
