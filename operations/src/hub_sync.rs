//! Sending this appliance's records to its hub (issue 15): the rules for what the hub's answers
//! mean, and the sender task `ferrocount serve` runs when the appliance is enrolled
//! ([`HubLink`], `hub-credential.json`).
//!
//! A round ([`Operations::sync_with_hub`]) first queues what was written since the last one
//! (`Store::queue_hub_sync`), then sends the queue from the first message the hub has not
//! acknowledged, a batch at a time over HTTPS with the appliance's bearer credential:
//!
//! - **200** (`IngestAccepted`): the hub holds everything up to its `last_sequence`; recorded
//!   (`Store::ack_hub_sync`), and the next batch starts after it;
//! - **409** (`IngestRefusal`): the hub expects another sequence. When it expects one this
//!   appliance has queued, the sender resends from there (the hub holds everything before it);
//!   when it expects one beyond the queue, or a message's content differs from what the hub
//!   holds, nothing the sender can do helps: the round stops with the hub's words;
//! - **401**: the credential was refused (revoked on the hub, or unknown): the sender stops for
//!   good and says so; a lab admin enrols the appliance again;
//! - no answer, or any other answer: the round stops and is tried again later, with a delay
//!   that doubles from 2 s up to 10 min.
//!
//! A heartbeat (the board's state, the messages pending) is queued every minute while the
//! sender runs, so the hub's silence alarm hears from an idle appliance. The hub never writes to
//! the appliance: the only traffic back is its answers.
//!
//! Not for: what a message carries (`appliance::store::hub_sync`) or enrolment
//! (`crate::hub_link`).

use std::time::Duration;

use hub_protocol::message::{
    Batch, Heartbeat, HubError, IngestAccepted, IngestRefusal, PROTOCOL_VERSION, StoredTime,
};

use appliance::store::Timestamp;
use appliance::store::hub_sync::MAX_SYNC_BATCH;

use crate::Operations;
use crate::hub_link::HubLink;

/// Messages per batch (each measurement carries its compressed train: a few megabytes at most).
pub const SYNC_BATCH: u32 = 50;

/// How the sender paces itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubSyncPolicy {
    /// How often an idle sender looks for new records.
    pub poll: Duration,
    /// How often a heartbeat is queued.
    pub heartbeat_every: Duration,
    /// The wait after a round that got no answer (doubling up to `max_delay`).
    pub first_delay: Duration,
    /// The longest wait between rounds without an answer.
    pub max_delay: Duration,
}

impl Default for HubSyncPolicy {
    /// New records within 5 s; a heartbeat a minute; 2 s doubling to 10 min without an answer.
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            heartbeat_every: Duration::from_secs(60),
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
        }
    }
}

/// What a round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncRound {
    /// Records queued at its start.
    pub queued: u64,
    /// Batches the hub accepted.
    pub batches: u32,
    /// Messages the hub stored new.
    pub stored: u64,
    /// Messages the hub held already and acknowledged again.
    pub repeated: u64,
    /// Times the hub asked for another sequence and the sender resent from there.
    pub rewinds: u32,
    /// The hub's last sequence after the round.
    pub last_sequence: u64,
}

/// Why a round stopped before the queue was sent.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No answer, or an answer that says nothing about the messages (try again later).
    #[error("the hub at {url} did not take the batch: {reason}")]
    NoAnswer {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The hub refused the credential: revoked or unknown. The sender stops.
    #[error("the hub refused this appliance's credential ({0}); enrol it again")]
    CredentialRefused(String),
    /// The hub refused the messages in a way a resend cannot mend.
    #[error("the hub refused the messages: {0}")]
    Refused(String),
    /// The appliance's own database failed.
    #[error("the appliance's database: {0}")]
    Store(#[from] appliance::store::StoreError),
}

impl SyncError {
    /// Whether the sender should stop for good (a lab admin has to act).
    pub fn is_final(&self) -> bool {
        matches!(self, Self::CredentialRefused(_))
    }
}

/// The hub's words from an error answer, or the body as text.
fn hub_words(body: &str) -> String {
    serde_json::from_str::<HubError>(body)
        .map(|answer| answer.error)
        .unwrap_or_else(|_| body.chars().take(500).collect())
}

impl Operations {
    /// Queues a heartbeat: now, the software's version, the board in a word, the messages
    /// pending for the hub.
    pub async fn queue_hub_heartbeat(&self) -> Result<u64, SyncError> {
        let state = self.store.hub_sync_state().await?;
        let board = match self.engine.as_ref() {
            None => "no engine",
            Some(engine) if engine.status().stopped => "stopped",
            Some(engine) if engine.is_simulated() => "simulated",
            Some(engine) if engine.status().board.is_some() => "ready",
            Some(_) => "not identified",
        };
        let at = StoredTime::parse(&Timestamp::now().to_rfc3339()).map_err(|e| {
            SyncError::Store(appliance::store::StoreError::Invalid {
                field: "time",
                reason: e.to_string(),
            })
        })?;
        Ok(self
            .store
            .queue_hub_heartbeat(&Heartbeat {
                at,
                software_version: env!("CARGO_PKG_VERSION").to_owned(),
                board_status: board.to_owned(),
                pending_messages: state.pending(),
            })
            .await?)
    }

    /// One round: queue what is new, then send from the first message the hub has not
    /// acknowledged until the queue is empty (see the module's rules).
    pub async fn sync_with_hub(
        &self,
        link: &HubLink,
        client: &reqwest::Client,
    ) -> Result<SyncRound, SyncError> {
        let mut round = SyncRound {
            queued: self.store.queue_hub_sync().await?,
            ..SyncRound::default()
        };
        let url = format!("{}/hub/v1/ingest", link.hub_url.trim_end_matches('/'));
        let state = self.store.hub_sync_state().await?;
        round.last_sequence = state.last_acknowledged;
        let mut next = state.last_acknowledged + 1;
        // Each pass either moves `next` on or rewinds it once to what the hub holds; a hub that
        // keeps asking for the same sequence stops the round.
        let mut rewound_to = None;
        loop {
            let messages = self
                .store
                .hub_sync_batch(&link.serial, next, SYNC_BATCH.min(MAX_SYNC_BATCH))
                .await?;
            let Some(last) = messages.last().map(|m| m.sequence) else {
                return Ok(round);
            };
            let batch = Batch {
                protocol: PROTOCOL_VERSION,
                messages,
            };
            let answer = client
                .post(&url)
                .bearer_auth(&link.credential)
                .json(&batch)
                .send()
                .await
                .map_err(|e| SyncError::NoAnswer {
                    url: url.clone(),
                    reason: crate::https_client::error_words(&e),
                })?;
            let status = answer.status();
            let body = answer.text().await.map_err(|e| SyncError::NoAnswer {
                url: url.clone(),
                reason: crate::https_client::error_words(&e),
            })?;
            match status.as_u16() {
                200 => {
                    let accepted: IngestAccepted =
                        serde_json::from_str(&body).map_err(|e| SyncError::NoAnswer {
                            url: url.clone(),
                            reason: format!("an acknowledgement that cannot be read: {e}"),
                        })?;
                    self.store.ack_hub_sync(accepted.last_sequence).await?;
                    round.batches += 1;
                    round.stored += u64::from(accepted.stored);
                    round.repeated += u64::from(accepted.repeated);
                    round.last_sequence = accepted.last_sequence;
                    if accepted.last_sequence < last {
                        return Err(SyncError::Refused(format!(
                            "the hub acknowledged up to {} of a batch ending at {last}",
                            accepted.last_sequence
                        )));
                    }
                    next = accepted.last_sequence + 1;
                }
                409 => {
                    let refusal: IngestRefusal =
                        serde_json::from_str(&body).map_err(|e| SyncError::NoAnswer {
                            url: url.clone(),
                            reason: format!("a refusal that cannot be read: {e}"),
                        })?;
                    let expected = refusal.expected_sequence;
                    let queued = self.store.hub_sync_state().await?.last_queued;
                    if expected == 0 || expected > queued + 1 || rewound_to == Some(expected) {
                        return Err(SyncError::Refused(format!(
                            "{} (the hub expects message {expected}; this appliance has \
                             queued {queued})",
                            refusal.error
                        )));
                    }
                    // The hub holds everything before `expected`.
                    self.store.ack_hub_sync(expected - 1).await?;
                    round.rewinds += 1;
                    round.last_sequence = expected - 1;
                    rewound_to = Some(expected);
                    next = expected;
                }
                401 => return Err(SyncError::CredentialRefused(hub_words(&body))),
                other => {
                    return Err(SyncError::NoAnswer {
                        url: url.clone(),
                        reason: format!("HTTP {other}: {}", hub_words(&body)),
                    });
                }
            }
        }
    }

    /// The sender: a round every `policy.poll`, a heartbeat every `policy.heartbeat_every`,
    /// rounds without an answer retried after a doubling delay; ends when the hub refuses the
    /// credential (said on standard error and in the instrument log's words) or when `stop`
    /// resolves.
    pub async fn run_hub_sender(
        &self,
        link: HubLink,
        client: reqwest::Client,
        policy: HubSyncPolicy,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let work = async {
            let mut last_heartbeat: Option<tokio::time::Instant> = None;
            let mut delay = policy.first_delay;
            loop {
                if last_heartbeat.is_none_or(|at| at.elapsed() >= policy.heartbeat_every) {
                    if let Err(error) = self.queue_hub_heartbeat().await {
                        tracing::warn!(%error, "hub sync: no heartbeat queued");
                    }
                    last_heartbeat = Some(tokio::time::Instant::now());
                }
                match self.sync_with_hub(&link, &client).await {
                    Ok(round) => {
                        if round.stored > 0 || round.rewinds > 0 {
                            tracing::info!(
                                stored = round.stored,
                                repeated = round.repeated,
                                rewinds = round.rewinds,
                                last_sequence = round.last_sequence,
                                "hub sync: sent"
                            );
                        }
                        delay = policy.first_delay;
                        tokio::time::sleep(policy.poll).await;
                    }
                    Err(error) if error.is_final() => {
                        tracing::error!(%error, "hub sync: stopped");
                        eprintln!("hub sync stopped: {error}");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, retry_in_s = delay.as_secs(), "hub sync: will retry");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(policy.max_delay);
                    }
                }
            }
        };
        tokio::select! {
            () = work => {}
            () = stop => {}
        }
    }
}
