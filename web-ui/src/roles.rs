//! Who may do what, as the web face asks it: the operations layer's one permission table
//! ([`operations::permission`]), and the 403 a refusal becomes.
//!
//! Every handler that needs more than authentication asks [`Caller::require`](crate::auth::Caller::require)
//! for one [`Permission`]; nothing else in the web face decides access.

use appliance::store::users::Role;
pub use operations::permission::{Permission, allows};

/// Refuses with 403, naming the role and the action, unless `role` has `permission`.
pub fn require(role: Role, permission: Permission) -> Result<(), crate::problem::ApiError> {
    if allows(role, permission) {
        Ok(())
    } else {
        Err(crate::problem::ApiError::Forbidden {
            role: role.to_string(),
            action: permission.action(),
        })
    }
}
