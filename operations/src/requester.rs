//! Who asks for an operation: a signed-in person, or whoever holds the appliance's console.

use appliance::store::Actor;
use appliance::store::users::User;

use crate::{OperationError, Permission, permission};

/// The person an operation is done for, as every operation takes it.
///
/// The web face always has a [`Requester::User`] (a session or an API token). The command line
/// acts as the [`Requester::Console`]: whoever holds the appliance's shell holds its database
/// file too, so the console may do whatever a lab admin may, and is audited as `appliance`. A
/// signature is the one thing the console cannot give: releasing and correcting a result take a
/// signing [`User`] who re-enters their password ([`crate::signature`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Requester {
    /// A signed-in user, in their role.
    User(User),
    /// The appliance's own console (`ferrocount user …`, `ferrocount run`).
    Console,
}

impl Requester {
    /// The actor recorded in the audit trail.
    pub fn actor(&self) -> Actor {
        match self {
            Self::User(user) => user.actor(),
            Self::Console => Actor::Appliance,
        }
    }

    /// The signed-in user, if a person asks.
    pub fn user(&self) -> Option<&User> {
        match self {
            Self::User(user) => Some(user),
            Self::Console => None,
        }
    }

    /// Refuses, naming the role and the action, unless the requester has `permission` (the
    /// console has every permission).
    pub fn require(&self, permission: Permission) -> Result<(), OperationError> {
        match self {
            Self::User(user) => permission::require(user.role, permission),
            Self::Console => Ok(()),
        }
    }

    /// Whether the requester has `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.require(permission).is_ok()
    }
}

impl From<User> for Requester {
    fn from(user: User) -> Self {
        Self::User(user)
    }
}

impl From<&User> for Requester {
    fn from(user: &User) -> Self {
        Self::User(user.clone())
    }
}
