//! The one error of the operations layer. Each variant is a kind of refusal a front end maps to
//! its own form: the JSON API to 403 / 404 / 409 / 422 / 429 / 500, the pages to an error page or
//! a form shown again, the command line to a message and an exit code.

use appliance::engine::EngineError;
use appliance::store::StoreError;

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// The person's role does not allow it (403).
    #[error("a {role} may not {action}")]
    Forbidden {
        /// The person's role, or why they may not act (a disabled account).
        role: String,
        /// What was refused, in words.
        action: &'static str,
    },
    /// Something named does not exist (404).
    #[error("{entity} {key} not found")]
    NotFound {
        /// What was looked for.
        entity: &'static str,
        /// Its key as given.
        key: String,
    },
    /// The request is well formed but the record's state forbids it (409).
    #[error("{0}")]
    Conflict(String),
    /// The user name or password is wrong (401).
    #[error("the user name or password is wrong")]
    BadCredentials,
    /// A field of the input is wrong (422), named.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Too many failed password entries (429).
    #[error("too many failed attempts for {what}; try again in {retry_after_s} s")]
    TooManyAttempts {
        /// What is throttled: "this user name from this address".
        what: &'static str,
        /// Seconds until the window ends.
        retry_after_s: u64,
    },
    /// Storage failed (500: logged, not shown).
    #[error(transparent)]
    Store(StoreError),
    /// The acquisition engine refused or failed.
    #[error(transparent)]
    Engine(EngineError),
}

impl OperationError {
    /// An invalid field.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<StoreError> for OperationError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { entity, key } => Self::NotFound { entity, key },
            StoreError::Duplicate { entity, key } => {
                Self::Conflict(format!("{entity} {key} already exists"))
            }
            StoreError::Invalid { field, reason } => Self::Invalid { field, reason },
            StoreError::Conflict(text) => Self::Conflict(text),
            StoreError::NotPermitted(text) => Self::Forbidden {
                role: text,
                action: "do this",
            },
            other => Self::Store(other),
        }
    }
}

impl From<EngineError> for OperationError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Store(store) => store.into(),
            other => Self::Engine(other),
        }
    }
}
