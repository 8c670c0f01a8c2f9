//! People's passwords, the same on the appliance and on the hub: the policy a new password must
//! meet ([`NewPassword`]) and how passwords are kept — argon2id PHC strings with a random salt
//! each ([`hash`]), checked in the time a known user's check takes even for an unknown name
//! ([`matches`], [`spend_a_check`]). Argon2 takes tens of milliseconds by design, so both run on
//! tokio's blocking threads.
//!
//! Not for: where hashes are stored, sessions, tokens or throttling (each side's store and web
//! face), or machine credentials (random secrets whose SHA-256 is stored: a slow hash adds
//! nothing to 256 random bits).

use std::fmt;
use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Why a new password is refused, or a hash could not be made or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The new password does not meet the policy (the words say how).
    #[error("{0}")]
    Policy(String),
    /// Hashing or reading a stored hash failed.
    #[error("password hash: {0}")]
    Hash(String),
}

/// A new password: 10 to 1024 characters, not all whitespace. Its `Debug` hides it.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    /// Shortest accepted password, in characters.
    pub const MIN_CHARS: usize = 10;
    /// Longest accepted password, in characters (argon2 takes any length; this bounds the work
    /// a request can ask for).
    pub const MAX_CHARS: usize = 1024;

    /// Checks a new password against the policy.
    pub fn parse(text: &str) -> Result<Self, PasswordError> {
        let chars = text.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::Policy(format!(
                "must be at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordError::Policy(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if text.trim().is_empty() {
            return Err(PasswordError::Policy("must not be only whitespace".into()));
        }
        Ok(Self(text.to_owned()))
    }

    /// The password itself (to hash it, or to type it in a test).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<hidden>)")
    }
}

/// An argon2id hash of a password nobody has, checked against when a user name is unknown so
/// that the answer takes as long as for a known user.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"no user has this password")
        .ok()
        .map(|hash| hash.to_string())
});

/// The argon2id PHC string of `password` (random salt), on a blocking thread.
pub async fn hash(password: &NewPassword) -> Result<String, PasswordError> {
    let password = password.clone();
    blocking(move || hash_now(&password)).await
}

/// Whether `password` is the one `stored_hash` was made from, on a blocking thread.
pub async fn matches(password: &str, stored_hash: &str) -> Result<bool, PasswordError> {
    let (password, stored_hash) = (password.to_owned(), stored_hash.to_owned());
    blocking(move || matches_now(&password, &stored_hash)).await
}

/// Spends the time of one check (against a hash nobody's password matches): for an unknown
/// user name, so that the answer does not tell which names exist.
pub async fn spend_a_check(password: &str) {
    let password = password.to_owned();
    let _ = blocking(move || match DUMMY_HASH.as_deref() {
        Some(dummy) => matches_now(&password, dummy),
        None => Ok(false),
    })
    .await;
}

/// [`hash`] on the calling thread (for callers already off the executor).
pub fn hash_now(password: &NewPassword) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.0.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hash(error.to_string()))
}

/// [`matches`] on the calling thread (for callers already off the executor).
pub fn matches_now(password: &str, stored_hash: &str) -> Result<bool, PasswordError> {
    let parsed =
        PasswordHash::new(stored_hash).map_err(|error| PasswordError::Hash(error.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// The dummy hash, for a caller that checks on its own blocking thread.
pub fn dummy_hash() -> Option<&'static str> {
    DUMMY_HASH.as_deref()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
) -> Result<T, PasswordError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| PasswordError::Hash(format!("hashing task failed: {error}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_what_is_wrong() {
        assert_eq!(
            NewPassword::parse("short").map(|_| ()),
            Err(PasswordError::Policy(
                "must be at least 10 characters".into()
            ))
        );
        assert!(NewPassword::parse(&"x".repeat(1025)).is_err());
        assert!(NewPassword::parse(&" ".repeat(12)).is_err());
        // Characters, not bytes: ten accented letters are enough.
        assert!(NewPassword::parse(&"é".repeat(10)).is_ok());
        assert_eq!(
            format!("{:?}", NewPassword::parse("correct horse").expect("ok")),
            "NewPassword(<hidden>)"
        );
    }

    #[tokio::test]
    async fn hashes_are_salted_argon2id_and_check_only_their_password() {
        let password = NewPassword::parse("correct horse battery").expect("ok");
        let first = hash(&password).await.expect("hash");
        let second = hash(&password).await.expect("hash");
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second, "a random salt each time");
        assert!(
            matches("correct horse battery", &first)
                .await
                .expect("check")
        );
        assert!(
            !matches("correct horse batterz", &first)
                .await
                .expect("check")
        );
        assert!(matches("x", "not a hash").await.is_err());
        assert!(
            !matches_now("no user has this password!", dummy_hash().expect("dummy"))
                .expect("check")
        );
        spend_a_check("anything").await;
    }
}
