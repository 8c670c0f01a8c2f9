//! The first start: when the database has no users, make one laboratory administrator with a
//! random password, to be shown once on the console. There is never a fixed default password.
//!
//! Not for: managing users afterwards (`ferrocount user ...` and the store's user functions).

use crate::store::users::{NewPassword, NewUser, Role, Username};
use crate::store::{Actor, Store, StoreError};

/// Sign-in name of the first administrator.
pub const FIRST_ADMIN_NAME: &str = "admin";

/// Characters of generated passwords: no 0/O, 1/l/I, so it can be read off a screen.
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Length of a generated password (56^20 ≈ 2^116).
const PASSWORD_CHARS: usize = 20;

/// The administrator made at first start, with the password to show once.
#[derive(Clone)]
pub struct FirstAdmin {
    /// Sign-in name.
    pub username: String,
    /// The generated password (shown once, stored only hashed).
    pub password: String,
}

impl std::fmt::Debug for FirstAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstAdmin")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// A random password from [`ALPHABET`], by rejection sampling (no modulo bias).
pub fn random_password() -> Result<String, StoreError> {
    let mut password = String::with_capacity(PASSWORD_CHARS);
    let limit = 256 - 256 % ALPHABET.len();
    while password.len() < PASSWORD_CHARS {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
        for byte in bytes {
            if usize::from(byte) < limit && password.len() < PASSWORD_CHARS {
                password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
            }
        }
    }
    Ok(password)
}

/// Makes the first administrator when there are no users; `None` when there are.
pub async fn ensure_first_admin(store: &Store) -> Result<Option<FirstAdmin>, StoreError> {
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    let password = random_password()?;
    store
        .add_user(
            &Actor::Appliance,
            NewUser {
                username: Username::parse(FIRST_ADMIN_NAME)?,
                display_name: "Administrator".to_owned(),
                role: Role::LabAdmin,
                password: NewPassword::parse(&password)?,
            },
        )
        .await?;
    Ok(Some(FirstAdmin {
        username: FIRST_ADMIN_NAME.to_owned(),
        password,
    }))
}

#[cfg(test)]
mod tests {
    use sqlx::SqlitePool;

    use super::*;

    #[test]
    fn passwords_are_long_random_and_from_the_alphabet() {
        let a = random_password().unwrap();
        let b = random_password().unwrap();
        assert_eq!(a.chars().count(), PASSWORD_CHARS);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn the_first_start_makes_one_lab_admin_whose_password_works(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let admin = ensure_first_admin(&store)
            .await
            .unwrap()
            .expect("no users yet");
        let user = store
            .authenticate(&admin.username, &admin.password)
            .await
            .unwrap()
            .expect("the printed password signs in");
        assert_eq!(user.role, Role::LabAdmin);
        assert!(ensure_first_admin(&store).await.unwrap().is_none());
        assert_eq!(store.user_count().await.unwrap(), 1);
    }
}
