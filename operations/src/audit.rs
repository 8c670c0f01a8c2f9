//! The audit trail as people read it: the search a lab admin runs. (Writing to the trail is the
//! store's, in the same transaction as each change; the views audited are in [`crate::patients`]
//! and [`crate::runs`].)

use appliance::store::audit::{AuditQuery, AuditRecord};

use crate::{OperationError, Operations, Permission, Requester};

impl Operations {
    /// The audit entries `query` selects, newest first (those who may read the audit trail).
    pub async fn search_audit_trail(
        &self,
        who: &Requester,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, OperationError> {
        who.require(Permission::ViewAuditTrail)?;
        Ok(self.store.audit_entries(query).await?)
    }
}
