//! Signing in and out: the password checked (throttled per user name and client address
//! together, each attempt audited), a session opened or closed; a lab admin's unlock of a
//! throttled user name. The API's `POST/DELETE /api/v1/session` and the sign-in page and sign-out
//! button use the same two functions; `POST /api/v1/users/{username}/unlock` the third.

use std::net::IpAddr;
use std::time::Instant;

use appliance::store::users::User;
use appliance::store::{Actor, AuditEntry};

use crate::throttle::Lockout;
use crate::users::ChangeReason;
use crate::{OperationError, Operations, Requester};

impl Operations {
    /// Signs `username` in from `address`: the throttle, then the password; opens a session that
    /// ends after `idle` without use. The session's secret and the user.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        address: IpAddr,
        idle: time::Duration,
    ) -> Result<(User, String), OperationError> {
        let now = Instant::now();
        if let Err(refusal) = self.throttle.check(username, address, now) {
            self.audit_attempt(username, address, "throttled").await?;
            return Err(OperationError::TooManyAttempts {
                what: refusal.what,
                retry_after_s: refusal.retry_after_s,
            });
        }
        let Some(user) = self.store.authenticate(username, password).await? else {
            self.throttle.record_failure(username, address, now);
            self.audit_attempt(username, address, "refused").await?;
            return Err(OperationError::BadCredentials);
        };
        self.throttle.record_success(username, address);
        let (secret, _session) = self.store.create_session(&user, idle).await?;
        self.store
            .record_event(
                &user.actor(),
                AuditEntry::new("session.sign_in", "user")
                    .id(user.id)
                    .detail(serde_json::json!({ "client": address.to_string() })),
            )
            .await?;
        Ok((user, secret))
    }

    /// Ends a session and audits it.
    pub async fn sign_out(&self, user: &User, secret: &str) -> Result<(), OperationError> {
        self.store.revoke_session(secret).await?;
        self.store
            .record_event(
                &user.actor(),
                AuditEntry::new("session.sign_out", "user").id(user.id),
            )
            .await?;
        Ok(())
    }

    /// A user manager lifts the sign-in throttle on `username` from every address, saying why;
    /// audited with the addresses whose failures were forgotten. An unknown user name is 404.
    pub async fn unlock_sign_in(
        &self,
        who: &Requester,
        username: &str,
        reason: &ChangeReason,
    ) -> Result<Vec<Lockout>, OperationError> {
        let user = self.named_user(who, username).await?;
        let forgotten = self.throttle.unlock(&user.username, Instant::now());
        let addresses: Vec<String> = forgotten.iter().map(|l| l.address.to_string()).collect();
        self.store
            .record_event(
                &who.actor(),
                AuditEntry::new("session.unlock", "user")
                    .id(user.id)
                    .reason(reason.as_str())
                    .detail(serde_json::json!({
                        "username": user.username,
                        "addresses": addresses,
                    })),
            )
            .await?;
        Ok(forgotten)
    }

    async fn audit_attempt(
        &self,
        username: &str,
        address: IpAddr,
        outcome: &str,
    ) -> Result<(), OperationError> {
        let shown: String = username.chars().take(64).collect();
        self.store
            .record_event(
                &Actor::Appliance,
                AuditEntry::new(&format!("session.sign_in_{outcome}"), "user").detail(
                    serde_json::json!({ "username": shown, "client": address.to_string() }),
                ),
            )
            .await?;
        Ok(())
    }
}
