//! The clinician's worklist: the results awaiting release, a bounded page at a time, oldest
//! first, each with the patient's two identifiers, the specimen, the draw time and the current
//! result (one joined query a page: `Store::awaiting_release_page`).
//!
//! Not for: releasing (`Operations::release_result`, which re-judges QC and asks for the
//! signature) nor the dashboard's own summary of waiting results.

use appliance::store::worklist::AwaitingRelease;
use appliance::store::{AuditEntry, RunId};

use crate::{OperationError, Operations, Permission, Requester};

/// Most results one page of the worklist holds (the API's `limit`, 1 to this).
pub const MAX_WORKLIST_PAGE: u32 = 100;

/// Results a page of the worklist holds unless asked otherwise.
pub const DEFAULT_WORKLIST_PAGE: u32 = 25;

/// One page of the worklist.
#[derive(Clone, Debug, PartialEq)]
pub struct WorklistPage {
    /// The results awaiting release, oldest run first.
    pub awaiting: Vec<AwaitingRelease>,
    /// The run the next page starts after, when there is one.
    pub next_after: Option<RunId>,
}

impl Operations {
    /// One page of the results awaiting release (those who may release): runs after `after`
    /// (none: the first page), at most `limit` (1 to [`MAX_WORKLIST_PAGE`]). It shows patient
    /// identifiers and results, so it is audited `run.worklist_view` with how many were shown.
    pub async fn awaiting_release(
        &self,
        who: &Requester,
        after: Option<RunId>,
        limit: u32,
    ) -> Result<WorklistPage, OperationError> {
        who.require(Permission::ReleaseResults)?;
        if !(1..=MAX_WORKLIST_PAGE).contains(&limit) {
            return Err(OperationError::invalid(
                "limit",
                format!("{limit} is not within 1 to {MAX_WORKLIST_PAGE}"),
            ));
        }
        // One more than a page says whether another page follows.
        let mut awaiting = self.store.awaiting_release_page(after, limit + 1).await?;
        let next_after = if awaiting.len() > limit as usize {
            awaiting.truncate(limit as usize);
            awaiting.last().map(|row| row.run_id)
        } else {
            None
        };
        self.store
            .record_view(
                &who.actor(),
                AuditEntry::new("run.worklist_view", "run").detail(serde_json::json!({
                    "after": after.map(|id| id.0),
                    "shown": awaiting.len(),
                })),
            )
            .await?;
        Ok(WorklistPage {
            awaiting,
            next_after,
        })
    }
}
