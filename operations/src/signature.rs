//! An electronic signature's checks (21 CFR Part 11 §11.200): the signer re-enters their password
//! (throttled like a sign-in; a failure is audited) and types their name as on their account.
//! Release and correction both sign through [`confirm_signature`], the one place these checks
//! live, for the API, the run page and the command line alike.

use std::net::IpAddr;
use std::time::Instant;

use appliance::store::AuditEntry;
use appliance::store::users::User;

use crate::{OperationError, Operations};

/// What a signer types to sign: their password again and their printed name.
#[derive(Clone, Debug)]
pub struct SignatureInput {
    /// The signer's password, re-entered.
    pub password: String,
    /// The signer's name as on their account.
    pub printed_name: String,
}

impl Operations {
    /// Confirms that `signer` is signing in person: the password re-entered matches (a failure
    /// counts towards the throttle of `client` and is audited with `refused_action` on `entity`
    /// `entity_id`), and the printed name is the account's.
    pub async fn confirm_signature(
        &self,
        signer: &User,
        client: IpAddr,
        input: &SignatureInput,
        refused_action: &'static str,
        entity: &'static str,
        entity_id: i64,
    ) -> Result<(), OperationError> {
        let username = signer.username.clone();
        let now = Instant::now();
        if let Err(refusal) = self.throttle.check(&username, client, now) {
            return Err(OperationError::TooManyAttempts {
                what: refusal.what,
                retry_after_s: refusal.retry_after_s,
            });
        }
        let confirmed = self.store.authenticate(&username, &input.password).await?;
        if confirmed.as_ref().map(|u| u.id) != Some(signer.id) {
            self.throttle.record_failure(&username, client, now);
            self.store
                .record_event(
                    &signer.actor(),
                    AuditEntry::new(refused_action, entity)
                        .id(entity_id)
                        .reason("password re-entry failed"),
                )
                .await?;
            return Err(OperationError::invalid(
                "password",
                "the password does not match the signed-in user",
            ));
        }
        let expected = signer.display_name.trim();
        if !input.printed_name.trim().eq_ignore_ascii_case(expected) {
            return Err(OperationError::invalid(
                "printed_name",
                format!("must be the signer's name as on their account ({expected:?})"),
            ));
        }
        Ok(())
    }
}
