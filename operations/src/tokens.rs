//! API tokens and who may still use one: a token works for the token life after it was made
//! (`http.token_life_days`, default [`DEFAULT_TOKEN_LIFE_DAYS`] days), and not at all once its
//! user's password has changed or the user is disabled (the store revokes it then).
//!
//! The token life is a rule, so it is enforced here once: the JSON API, the admin page and the
//! bearer check all go through [`Operations::create_token`] and [`Operations::token_user`].
//! Not here: hashing and storing tokens (the store's), parsing the `Authorization` header (the
//! web face's).

use appliance::store::Timestamp;
use appliance::store::users::{ApiToken, User};

pub use appliance::config::DEFAULT_TOKEN_LIFE_DAYS;

use crate::permission::{Permission, require};
use crate::{OperationError, Operations};

/// A token just made: its secret (shown this once), its description and when it stops working.
#[derive(Debug)]
pub struct IssuedToken {
    /// The secret for `Authorization: Bearer`.
    pub secret: String,
    /// The stored description.
    pub token: ApiToken,
    /// When it stops working.
    pub expires_at: Timestamp,
}

impl Operations {
    /// How long a token works after it is made.
    pub fn token_life(&self) -> time::Duration {
        self.token_life
    }

    /// When a token made at `created_at` stops working.
    pub fn token_expiry(&self, created_at: Timestamp) -> Timestamp {
        created_at.plus(self.token_life)
    }

    /// Makes an API token for `user` (their own), labelled `label`.
    pub async fn create_token(
        &self,
        user: &User,
        label: &str,
    ) -> Result<IssuedToken, OperationError> {
        require(user.role, Permission::CreateOwnTokens)?;
        let (secret, token) = self
            .store
            .create_api_token(&user.actor(), user.id, label)
            .await?;
        let expires_at = self.token_expiry(token.created_at);
        Ok(IssuedToken {
            secret,
            token,
            expires_at,
        })
    }

    /// The user behind a bearer token, if the token is unrevoked, younger than the token life
    /// and its user enabled. `None` otherwise (the caller answers 401 without saying which).
    pub async fn token_user(&self, secret: &str) -> Result<Option<User>, OperationError> {
        let issued_after = Timestamp::now().plus(-self.token_life);
        Ok(self.store.api_token_user(secret, issued_after).await?)
    }
}
