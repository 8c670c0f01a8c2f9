//! Users and API tokens: add users with a role and a first password, change a role, disable and
//! enable accounts, set a password, make and revoke API tokens, the bearer check, and the list an
//! administrator manages them from.
//!
//! The rules live here and in the store beneath, once, for the admin page, the JSON API and
//! `ferrocount user`: nobody disables or changes the role of their own account, the last active
//! lab admin is never disabled or demoted (the store refuses), every change but a password or a
//! token has a reason, a token is made for oneself and revoked by its owner or a user manager
//! (to anyone else, someone else's token does not exist). A token works for the token life after
//! it is made (`http.token_life_days`, default [`DEFAULT_TOKEN_LIFE_DAYS`] days; a lab that
//! shortens it shortens it for tokens already made) and not at all once its user's password
//! changes or the user is disabled: [`Operations::create_token`] states the expiry,
//! [`Operations::token_user`] is the one bearer check, and [`Operations::set_password`] /
//! [`Operations::disable_user`] end the user's sessions and tokens in the store's one
//! transaction with the change.

use appliance::store::users::{ApiToken, NewPassword, NewUser, Role, User, Username};
use appliance::store::{ApiTokenId, StoreError, Timestamp};

use crate::{OperationError, Operations, Permission, Requester};

/// Longest API token label, in characters once surrounding white space is dropped (at least one
/// is needed: the label says what the token is for).
pub const TOKEN_LABEL_MAX_CHARS: usize = 100;

/// The label rule of [`Operations::create_token`] as an ECMA-262 regular expression (the form
/// JSON Schema states it in): 1 to [`TOKEN_LABEL_MAX_CHARS`] characters once surrounding white
/// space is dropped.
pub fn token_label_pattern() -> String {
    crate::text_rule::trimmed_chars_pattern(1, TOKEN_LABEL_MAX_CHARS)
}

pub use appliance::config::DEFAULT_TOKEN_LIFE_DAYS;

/// A token just made: its secret (shown this once), its description and when it stops working.
#[derive(Debug)]
pub struct IssuedToken {
    /// The secret for `Authorization: Bearer`.
    pub secret: String,
    /// The stored description.
    pub token: ApiToken,
    /// When it stops working (a password change ends it sooner).
    pub expires_at: Timestamp,
}

/// A new user, parsed.
#[derive(Clone, Debug)]
pub struct UserOrder {
    /// What is stored.
    pub new: NewUser,
}

impl UserOrder {
    /// Parses a new user: a user name, a printed name (at most 100 characters; blank: the user
    /// name), a role (`operator`, `clinician`, `lab-admin`, or `lab_admin` as the forms send it)
    /// and a first password.
    pub fn parse(
        username: &str,
        display_name: &str,
        role: &str,
        password: &str,
    ) -> Result<Self, OperationError> {
        let username = Username::parse(username)
            .map_err(|e| OperationError::invalid("username", reason(e)))?;
        let display_name = display_name.trim();
        if display_name.chars().count() > 100 {
            return Err(OperationError::invalid(
                "display_name",
                "at most 100 characters",
            ));
        }
        let role = parse_role(role)?;
        let password = NewPassword::parse(password)
            .map_err(|e| OperationError::invalid("password", reason(e)))?;
        Ok(Self {
            new: NewUser {
                username,
                display_name: display_name.to_owned(),
                role,
                password,
            },
        })
    }
}

/// A role as typed or chosen: `operator`, `clinician`, `lab-admin` (or `lab_admin`).
pub fn parse_role(text: &str) -> Result<Role, OperationError> {
    text.trim()
        .replace('_', "-")
        .parse::<Role>()
        .map_err(|_| OperationError::invalid("role", "choose operator, clinician or lab admin"))
}

/// Why an account changes: 1 to 500 characters, kept in the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeReason(String);

impl ChangeReason {
    /// Longest reason, in characters once surrounding white space is dropped.
    pub const MAX_CHARS: usize = 500;

    /// The rule as an ECMA-262 pattern, for the API's document.
    pub fn pattern() -> String {
        crate::text_rule::trimmed_chars_pattern(1, Self::MAX_CHARS)
    }

    /// Parses a reason.
    pub fn parse(text: &str) -> Result<Self, OperationError> {
        let reason = text.trim();
        if reason.is_empty() || reason.chars().count() > Self::MAX_CHARS {
            return Err(OperationError::invalid(
                "reason",
                format!("say why (1 to {} characters)", Self::MAX_CHARS),
            ));
        }
        Ok(Self(reason.to_owned()))
    }

    /// The reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The reason a store parser gave.
fn reason(error: StoreError) -> String {
    match error {
        StoreError::Invalid { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// The store's refusal of an account change, naming `field` when it is the user's doing.
fn account_refusal(error: StoreError, field: &'static str) -> OperationError {
    match error {
        StoreError::Invalid { field, reason } => OperationError::invalid(field, reason),
        StoreError::Conflict(text) | StoreError::NotPermitted(text) => {
            OperationError::invalid(field, text)
        }
        other => other.into(),
    }
}

/// One user as an administrator sees them.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    /// The user.
    pub user: User,
    /// When they last signed in (the audit trail's `session.sign_in`).
    pub last_sign_in: Option<Timestamp>,
}

/// Users and tokens as the requester may see them, a bounded page of each: users by name and
/// live tokens newest first for a user manager, only their own tokens otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct Accounts {
    /// One page of users (empty unless the requester manages users).
    pub users: Vec<UserRecord>,
    /// The user name the next page of users starts after; `None` on the last page.
    pub users_next: Option<String>,
    /// One page of unrevoked tokens with their owners, newest first.
    pub tokens: Vec<(User, ApiToken)>,
    /// The token the next page of tokens starts before; `None` on the last page.
    pub tokens_next: Option<ApiTokenId>,
}

/// Where the pages of [`Operations::accounts`] start (none: the first page of each).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountCursors {
    /// The last user name of the page of users before.
    pub users_after: Option<String>,
    /// The last token of the page of tokens before.
    pub tokens_before: Option<ApiTokenId>,
}

/// Users, and tokens, the administration page lists on one page.
pub const ACCOUNTS_PAGE: u32 = 50;

pub use appliance::store::users::MAX_ACCOUNTS_PAGE;

impl Operations {
    /// The users and tokens the requester may see: one page of each of at most `limit`
    /// (1 to [`MAX_ACCOUNTS_PAGE`], refused naming the bound otherwise), from `cursors`, each
    /// ONE statement (`Store::users_page` with each user's last sign-in,
    /// `Store::live_api_tokens_page` with each token's owner), read as `limit + 1` so that
    /// one more says whether another page follows.
    pub async fn accounts(
        &self,
        who: &Requester,
        cursors: &AccountCursors,
        limit: u32,
    ) -> Result<Accounts, OperationError> {
        if !(1..=MAX_ACCOUNTS_PAGE).contains(&limit) {
            return Err(OperationError::invalid(
                "limit",
                format!("{limit} is not within 1 to {MAX_ACCOUNTS_PAGE}"),
            ));
        }
        let manager = who.may(Permission::ManageUsers);
        let owner = if manager {
            None
        } else {
            who.require(Permission::CreateOwnTokens)?;
            match who.user() {
                Some(user) => Some(user.id),
                None => {
                    return Ok(Accounts {
                        users: Vec::new(),
                        users_next: None,
                        tokens: Vec::new(),
                        tokens_next: None,
                    });
                }
            }
        };
        let mut tokens = self
            .store
            .live_api_tokens_page(owner, cursors.tokens_before, limit + 1)
            .await?;
        let tokens_next = if tokens.len() > limit as usize {
            tokens.truncate(limit as usize);
            tokens.last().map(|(_, token)| token.id)
        } else {
            None
        };
        let (users, users_next) = if manager {
            let mut users = self
                .store
                .users_page(cursors.users_after.as_deref(), limit + 1)
                .await?;
            let next = if users.len() > limit as usize {
                users.truncate(limit as usize);
                users.last().map(|(user, _)| user.username.clone())
            } else {
                None
            };
            let users = users
                .into_iter()
                .map(|(user, last_sign_in)| UserRecord { user, last_sign_in })
                .collect();
            (users, next)
        } else {
            (Vec::new(), None)
        };
        Ok(Accounts {
            users,
            users_next,
            tokens,
            tokens_next,
        })
    }

    /// The account named `username` (user managers), or not found.
    pub async fn named_user(
        &self,
        who: &Requester,
        username: &str,
    ) -> Result<User, OperationError> {
        who.require(Permission::ManageUsers)?;
        let not_found = || OperationError::NotFound {
            entity: "user",
            key: username.chars().take(64).collect(),
        };
        let name = Username::parse(username).map_err(|_| not_found())?;
        match self.store.user_by_name(&name).await {
            Ok(user) => Ok(user),
            Err(StoreError::NotFound { .. }) => Err(not_found()),
            Err(other) => Err(other.into()),
        }
    }

    /// Adds a user (user managers; the console); a name in use is refused naming `username`.
    pub async fn add_user(
        &self,
        who: &Requester,
        order: UserOrder,
    ) -> Result<User, OperationError> {
        who.require(Permission::ManageUsers)?;
        let name = order.new.username.clone();
        match self.store.add_user(&who.actor(), order.new).await {
            Ok(user) => Ok(user),
            Err(StoreError::Duplicate { .. }) => Err(OperationError::invalid(
                "username",
                format!("a user named {name} already exists"),
            )),
            Err(other) => Err(other.into()),
        }
    }

    /// Gives a user another role, with a reason (user managers; not one's own account).
    pub async fn change_role(
        &self,
        who: &Requester,
        username: &str,
        role: Role,
        reason: &ChangeReason,
    ) -> Result<User, OperationError> {
        let target = self.named_user(who, username).await?;
        refuse_own(who, &target, "you cannot change your own role")?;
        self.store
            .set_user_role(&who.actor(), target.id, role, reason.as_str())
            .await
            .map_err(|e| account_refusal(e, "role"))
    }

    /// Disables an account, with a reason: no sign-in, its sessions and tokens revoked (user
    /// managers; not one's own account, not the last active lab admin).
    pub async fn disable_user(
        &self,
        who: &Requester,
        username: &str,
        reason: &ChangeReason,
    ) -> Result<(), OperationError> {
        let target = self.named_user(who, username).await?;
        refuse_own(who, &target, "you cannot disable your own account")?;
        let name = Username::parse(&target.username)?;
        self.store
            .disable_user(&who.actor(), &name, reason.as_str())
            .await
            .map_err(|e| account_refusal(e, "username"))
    }

    /// Lets a disabled user sign in again, with a reason (user managers); their old sessions and
    /// tokens stay revoked.
    pub async fn enable_user(
        &self,
        who: &Requester,
        username: &str,
        reason: &ChangeReason,
    ) -> Result<User, OperationError> {
        let target = self.named_user(who, username).await?;
        self.store
            .enable_user(&who.actor(), target.id, reason.as_str())
            .await
            .map_err(|e| account_refusal(e, "username"))
    }

    /// Sets a user's password (user managers; the console) and ends everything the old one
    /// opened: the user's sessions and API tokens are revoked in the same transaction (audited
    /// as `tokens_revoked`), so a leaked token dies with the password it was made under.
    pub async fn set_password(
        &self,
        who: &Requester,
        username: &str,
        password: NewPassword,
    ) -> Result<(), OperationError> {
        let target = self.named_user(who, username).await?;
        let name = Username::parse(&target.username)?;
        Ok(self
            .store
            .set_password(&who.actor(), &name, password)
            .await?)
    }

    /// How long an API token works after it is made.
    pub fn token_life(&self) -> time::Duration {
        self.token_life
    }

    /// Makes an API token for the requester (a person: the console has no account); the secret
    /// is returned this once, only its hash is kept. It works until `expires_at`, the token life
    /// after it was made.
    pub async fn create_token(
        &self,
        who: &Requester,
        label: &str,
    ) -> Result<IssuedToken, OperationError> {
        who.require(Permission::CreateOwnTokens)?;
        let Some(owner) = who.user() else {
            return Err(OperationError::Conflict(
                "the console has no account to make a token for".into(),
            ));
        };
        let label = label.trim();
        if label.is_empty() || label.chars().count() > TOKEN_LABEL_MAX_CHARS {
            return Err(OperationError::invalid(
                "label",
                format!("say what the token is for (1 to {TOKEN_LABEL_MAX_CHARS} characters)"),
            ));
        }
        let (secret, token) = self
            .store
            .create_api_token(&who.actor(), owner.id, label)
            .await?;
        let expires_at = token.created_at.plus(self.token_life);
        Ok(IssuedToken {
            secret,
            token,
            expires_at,
        })
    }

    /// The user behind a bearer token, if the token is unrevoked, younger than the token life
    /// and its user enabled; `None` otherwise (the caller answers 401 without saying which). An
    /// expired token's use is not recorded.
    pub async fn token_user(&self, secret: &str) -> Result<Option<User>, OperationError> {
        let issued_after = Timestamp::now().plus(-self.token_life);
        Ok(self.store.api_token_user(secret, issued_after).await?)
    }

    /// Revokes an API token: one's own, or anyone's for a user manager. Someone else's token is,
    /// to anyone else, no token at all (a refusal would tell them it exists).
    pub async fn revoke_token(
        &self,
        who: &Requester,
        id: ApiTokenId,
    ) -> Result<(), OperationError> {
        let own = match who.user() {
            Some(user) => self
                .store
                .api_tokens(user.id)
                .await?
                .iter()
                .any(|token| token.id == id),
            None => false,
        };
        if own {
            who.require(Permission::CreateOwnTokens)?;
        } else if !who.may(Permission::ManageUsers) {
            return Err(OperationError::NotFound {
                entity: "API token",
                key: id.0.to_string(),
            });
        }
        Ok(self.store.revoke_api_token(&who.actor(), id).await?)
    }
}

/// Refuses a change of the requester's own account.
fn refuse_own(who: &Requester, target: &User, refusal: &str) -> Result<(), OperationError> {
    if who.user().is_some_and(|user| user.id == target.id) {
        return Err(OperationError::invalid("username", refusal));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_user_is_parsed_naming_the_field() {
        let field = |result: Result<UserOrder, OperationError>| match result {
            Err(OperationError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let good = UserOrder::parse("Nina", "Nina Nurse", "lab_admin", "a long password").unwrap();
        assert_eq!(good.new.username.as_str(), "nina");
        assert_eq!(good.new.role, Role::LabAdmin);
        assert_eq!(
            field(UserOrder::parse("1x", "", "operator", "a long password")),
            "username"
        );
        assert_eq!(
            field(UserOrder::parse(
                "nina",
                &"n".repeat(101),
                "operator",
                "a long password"
            )),
            "display_name"
        );
        assert_eq!(
            field(UserOrder::parse("nina", "", "boss", "a long password")),
            "role"
        );
        assert_eq!(
            field(UserOrder::parse("nina", "", "operator", "short")),
            "password"
        );
        assert!(ChangeReason::parse(" ").is_err());
        assert!(ChangeReason::parse(&"r".repeat(501)).is_err());
    }
}
