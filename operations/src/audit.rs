//! The audit trail as people read it: the search a lab admin runs, a page at a time, and its
//! export. (Writing to the trail is the store's, in the same transaction as each change; the
//! views audited are in [`crate::patients`] and [`crate::runs`].)
//!
//! Both walk the trail newest first by keyset (`id < the last id shown`), one query per page,
//! so every matching row is reachable however many there are (the search used to stop silently
//! at its first 500), and rows appended meanwhile neither repeat nor shift a page.

use appliance::store::audit::{AuditQuery, AuditRecord};
use appliance::store::{AuditEntry, AuditId, Store};

use crate::{OperationError, Operations, Permission, Requester};

/// The most rows one page of a search may hold.
pub const MAX_AUDIT_PAGE: u32 = 500;

/// Rows read per query while exporting (the most the store reads in one query).
const EXPORT_PAGE: u32 = 1000;

/// One page of an audit search.
#[derive(Clone, Debug)]
pub struct AuditPage {
    /// The rows, newest first.
    pub entries: Vec<AuditRecord>,
    /// Where the next (older) page starts (`before` of its query), `None` on the last page.
    pub older: Option<AuditId>,
}

/// An export in progress: every row a search selects, a page at a time
/// ([`AuditExport::next_page`]); the export itself was audited when it began.
#[derive(Debug)]
pub struct AuditExport {
    store: Store,
    query: AuditQuery,
    done: bool,
}

impl AuditExport {
    /// The next rows (newest first), or `None` when every selected row has been read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<AuditRecord>>, OperationError> {
        if self.done {
            return Ok(None);
        }
        self.query.limit = EXPORT_PAGE;
        let rows = self.store.audit_entries(&self.query).await?;
        match rows.last() {
            Some(last) if rows.len() == EXPORT_PAGE as usize => self.query.before = Some(last.id),
            _ => self.done = true,
        }
        Ok((!rows.is_empty()).then_some(rows))
    }
}

impl Operations {
    /// One page of the entries `query` selects: at most `page_size` (1 to [`MAX_AUDIT_PAGE`])
    /// rows older than `query.before`, newest first, and where the next page starts. One query.
    pub async fn audit_trail_page(
        &self,
        who: &Requester,
        query: &AuditQuery,
        page_size: u32,
    ) -> Result<AuditPage, OperationError> {
        who.require(Permission::ViewAuditTrail)?;
        if !(1..=MAX_AUDIT_PAGE).contains(&page_size) {
            return Err(OperationError::invalid(
                "page size",
                format!("{page_size} is not within 1 to {MAX_AUDIT_PAGE}"),
            ));
        }
        // One row more than shown says whether an older page exists.
        let mut entries = self
            .store
            .audit_entries(&AuditQuery {
                limit: page_size + 1,
                ..query.clone()
            })
            .await?;
        let older = if entries.len() > page_size as usize {
            entries.truncate(page_size as usize);
            entries.last().map(|last| last.id)
        } else {
            None
        };
        Ok(AuditPage { entries, older })
    }

    /// Begins an export of every entry `query` selects (its `before` and `limit` are ignored):
    /// refused to those who may not read the trail; audited `audit.export` with the filters
    /// before any row is read.
    pub async fn export_audit_trail(
        &self,
        who: &Requester,
        query: &AuditQuery,
        format: &str,
    ) -> Result<AuditExport, OperationError> {
        who.require(Permission::ViewAuditTrail)?;
        let day = |day: Option<time::Date>| day.map(|d| d.to_string());
        self.store
            .record_event(
                &who.actor(),
                AuditEntry::new("audit.export", "audit_log").detail(serde_json::json!({
                    "format": format,
                    "user": query.username,
                    "action": query.action,
                    "from": day(query.from),
                    "to": day(query.to),
                    "text": query.text,
                    "entity": query.entity,
                    "entity_id": query.entity_id,
                })),
            )
            .await?;
        Ok(AuditExport {
            store: self.store.clone(),
            query: AuditQuery {
                before: None,
                limit: EXPORT_PAGE,
                ..query.clone()
            },
            done: false,
        })
    }
}
