//! Delivering the durable outbox: the rule for what a destination's answer means, how long to
//! wait before trying again, and when to give up and park a message; the sender task that applies
//! it to one destination; and a lab admin's view of the outbox and resend of a parked message.
//!
//! The messages themselves are written by the store in each release's transaction
//! (`appliance::store::outbox`); here they are only delivered. One sender runs per destination
//! and sends one message at a time, in the order the store hands them out (oldest first, never
//! past an earlier undelivered message of the same patient), so one patient's results arrive in
//! order and a correction after its first release. A message is marked delivered only after the
//! destination acknowledged it: a sender stopped mid-send (power cut, crash, shutdown) leaves it
//! pending, and it is sent again with the same control id, which the destination uses to
//! de-duplicate.
//!
//! The retry rule ([`RetryPolicy`]): no answer (refused connection, dropped connection, time-out,
//! an unreadable answer) is tried again after a delay that doubles from 2 s up to 10 min; after
//! 50 attempts without an answer (about 7 h of a destination that is down) the message is parked.
//! An answer that refuses the message (HL7 `AE` or `AR`, a FHIR error status) parks it at once
//! with that answer as the reason: resending it unchanged would not help, so a lab admin resends
//! it after the cause is fixed ([`Operations::resend_message`]).
//!
//! Not here: what a message says (the message builders), how it travels (the transports).

use std::future::Future;
use std::time::Duration;

use appliance::store::outbox::{
    DeliveryOutcome, OutboxEntry, OutboxFilter, OutboxMessage, OutboxState, unix_ms,
};
use appliance::store::{AuditEntry, OutboxId, Timestamp};

use crate::{OperationError, Operations, Permission, Requester};

/// When to try a message again, and when to stop trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first attempt without an answer.
    pub first_delay: Duration,
    /// The longest wait (the delay doubles up to it).
    pub max_delay: Duration,
    /// Attempts without an answer after which the message is parked.
    pub max_attempts: u32,
    /// How often an idle sender looks for new messages.
    pub poll: Duration,
}

impl Default for RetryPolicy {
    /// 2 s doubling to 10 min; parked after 50 attempts without an answer; new messages are
    /// picked up within 1 s.
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
            max_attempts: 50,
            poll: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The wait after attempt number `attempt` (1, 2, …) went unanswered: `first_delay ×
    /// 2^(attempt−1)`, at most `max_delay`.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }
}

/// What a destination answered to one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// It took the message (HL7 `AA`, a FHIR 2xx): delivered.
    Accepted(String),
    /// It found an error in the message (HL7 `AE`): parked with the text.
    Error(String),
    /// It refused the message (HL7 `AR`, a FHIR 4xx): parked with the text.
    Rejected(String),
    /// The appliance could not build the message from what it stored: parked with the text.
    Unsendable(String),
}

/// Why a delivery attempt got no answer (it is tried again).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoAnswer(pub String);

/// One destination's way of delivering: renders an outbox message (from the stored, released
/// result) and sends it, returning the destination's answer or why there was none.
pub trait Courier: Send {
    /// The destination's name in the configuration (the outbox rows' `destination`).
    fn destination(&self) -> &str;

    /// Delivers one message.
    fn deliver(
        &mut self,
        ops: &Operations,
        message: &OutboxMessage,
    ) -> impl Future<Output = Result<Answer, NoAnswer>> + Send;
}

/// What one attempt of `message` (which had `attempts` before it) came to, at `now_ms`: the rule
/// in one place.
pub fn judge(
    policy: &RetryPolicy,
    message: &OutboxMessage,
    answer: Result<Answer, NoAnswer>,
    now_ms: i64,
) -> DeliveryOutcome {
    // The courier's text names the answer in its own protocol's words (HL7 `AE: …`, `AR: …`; FHIR
    // `HTTP 422: <the OperationOutcome's words>`): no protocol's code is added here.
    match answer {
        Ok(Answer::Accepted(detail)) => DeliveryOutcome::Delivered { detail },
        Ok(Answer::Error(text)) => DeliveryOutcome::Parked {
            reason: format!("the destination answered an error: {text}"),
        },
        Ok(Answer::Rejected(text)) => DeliveryOutcome::Parked {
            reason: format!("the destination rejected the message: {text}"),
        },
        Ok(Answer::Unsendable(text)) => DeliveryOutcome::Parked {
            reason: format!("the message could not be built: {text}"),
        },
        Err(NoAnswer(detail)) => {
            // Counted since the message was written or resent: a resend gets its full retries.
            let attempt = message.unanswered.saturating_add(1);
            if attempt >= policy.max_attempts {
                DeliveryOutcome::Parked {
                    reason: format!(
                        "no acknowledgement after {attempt} attempts in a row; the last: {detail}"
                    ),
                }
            } else {
                let delay =
                    i64::try_from(policy.delay_after(attempt).as_millis()).unwrap_or(i64::MAX);
                DeliveryOutcome::Retry {
                    detail,
                    next_attempt_ms: now_ms.saturating_add(delay),
                }
            }
        }
    }
}

impl Operations {
    /// Delivers `courier`'s destination's next due message, if any, and records the outcome
    /// (audited): the message as it stands afterwards, or `None` when nothing was due.
    pub async fn deliver_next<C: Courier>(
        &self,
        courier: &mut C,
        policy: &RetryPolicy,
    ) -> Result<Option<OutboxMessage>, OperationError> {
        let now = unix_ms(Timestamp::now());
        let Some(message) = self
            .store
            .next_outbox_message(courier.destination(), now)
            .await?
        else {
            return Ok(None);
        };
        let answer = courier.deliver(self, &message).await;
        let outcome = judge(policy, &message, answer, unix_ms(Timestamp::now()));
        Ok(Some(
            self.store.record_delivery(message.id, &outcome).await?,
        ))
    }

    /// The sender task of one destination: delivers its messages one at a time for as long as it
    /// runs (abort its task to stop it; a message being sent then stays pending). A store error
    /// is logged and the sender waits one poll before trying again.
    pub async fn run_sender<C: Courier>(&self, mut courier: C, policy: RetryPolicy) {
        loop {
            match self.deliver_next(&mut courier, &policy).await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(error) => tracing::warn!(
                    destination = courier.destination(),
                    %error,
                    "outbox sender: a store error; the message stays pending"
                ),
            }
            let wait = match self.store.next_outbox_due(courier.destination()).await {
                Ok(Some(due)) => {
                    let left = due.saturating_sub(unix_ms(Timestamp::now())).max(0);
                    Duration::from_millis(u64::try_from(left).unwrap_or(0)).min(policy.poll)
                }
                _ => policy.poll,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One page of the outbox for a lab admin (`ManageOutbox`), newest first: the messages
    /// `filter` selects below `before` (none: the newest), at most `limit` (1 to
    /// [`MAX_OUTBOX_PAGE`]), each with the MRN and accession number that find it at the LIS. It
    /// shows patient identifiers, so it is audited `outbox.view` with how many were shown.
    pub async fn outbox(
        &self,
        who: &Requester,
        filter: &OutboxFilter,
        before: Option<OutboxId>,
        limit: u32,
    ) -> Result<OutboxPage, OperationError> {
        who.require(Permission::ManageOutbox)?;
        if !(1..=MAX_OUTBOX_PAGE).contains(&limit) {
            return Err(OperationError::invalid(
                "limit",
                format!("{limit} is not within 1 to {MAX_OUTBOX_PAGE}"),
            ));
        }
        // One more than a page says whether another page follows.
        let mut entries = self.store.outbox_page(filter, before, limit + 1).await?;
        let next_before = if entries.len() > limit as usize {
            entries.truncate(limit as usize);
            entries.last().map(|entry| entry.message.id)
        } else {
            None
        };
        self.store
            .record_view(
                &who.actor(),
                AuditEntry::new("outbox.view", "outbox_message").detail(serde_json::json!({
                    "destination": filter.destination,
                    "state": filter.state.map(OutboxState::as_str),
                    "before": before.map(|id| id.0),
                    "shown": entries.len(),
                })),
            )
            .await?;
        Ok(OutboxPage {
            entries,
            next_before,
        })
    }

    /// Resends a parked message after its cause was fixed (lab admins; audited with the
    /// reason, [`ResendReason`]): it is pending again, due at once, with the same control id.
    /// A message that is not parked is a conflict (a delivered one is final, a pending one is
    /// being sent).
    pub async fn resend_message(
        &self,
        who: &Requester,
        id: OutboxId,
        reason: &str,
    ) -> Result<OutboxEntry, OperationError> {
        who.require(Permission::ManageOutbox)?;
        let reason = ResendReason::parse(reason)?;
        self.store
            .resend_outbox_message(&who.actor(), id, reason.as_str())
            .await?;
        Ok(self.store.outbox_entry(id).await?)
    }
}

/// Most messages one page of the outbox holds (the API's `limit`, 1 to this).
pub const MAX_OUTBOX_PAGE: u32 = 100;

/// Messages a page of the outbox holds unless asked otherwise.
pub const DEFAULT_OUTBOX_PAGE: u32 = 50;

/// One page of the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxPage {
    /// The messages, newest first.
    pub entries: Vec<OutboxEntry>,
    /// The message the next (older) page starts below, when there is one.
    pub next_before: Option<OutboxId>,
}

/// Why a parked message is resent: 3 to 1000 characters once surrounding white space is dropped,
/// kept in the audit trail (`outbox.resend`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResendReason(String);

impl ResendReason {
    /// Shortest reason, in characters once surrounding white space is dropped.
    pub const MIN_CHARS: usize = 3;
    /// Longest reason.
    pub const MAX_CHARS: usize = 1000;

    /// The rule as an ECMA-262 pattern, for the API's document.
    pub fn pattern() -> String {
        crate::text_rule::trimmed_chars_pattern(Self::MIN_CHARS, Self::MAX_CHARS)
    }

    /// Parses a reason.
    pub fn parse(text: &str) -> Result<Self, OperationError> {
        let reason = text.trim();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&reason.chars().count()) {
            return Err(OperationError::invalid(
                "reason",
                format!(
                    "say what was fixed ({} to {} characters)",
                    Self::MIN_CHARS,
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(reason.to_owned()))
    }

    /// The reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use appliance::config::default_indications;
    use appliance::engine::EngineConfig;
    use appliance::store::example_report::example_report;
    use appliance::store::outbox::{MessageFormat, OutboxTarget};
    use appliance::store::patients::{BirthDate, Mrn, NewPatient};
    use appliance::store::results::SignatureMeaning;
    use appliance::store::runs::{NewRun, RunState};
    use appliance::store::samples::{
        Accession, BloodVolume, Indication, NewSample, NewTube, TubeKind, TubeLabel,
    };
    use appliance::store::users::{NewPassword, NewUser, Role, User, Username};
    use appliance::store::{Actor, RunId, Store};
    use nmr_core::assay::{Call, CountCategory};
    use std::collections::VecDeque;

    use crate::LoginThrottle;

    fn message(unanswered: u32) -> OutboxMessage {
        OutboxMessage {
            id: OutboxId(7),
            destination: "lis".into(),
            format: MessageFormat::Hl7v2,
            result_id: appliance::store::ResultId(1),
            run_id: RunId(1),
            patient_id: appliance::store::PatientId(1),
            state: OutboxState::Pending,
            attempts: 100,
            unanswered,
            next_attempt_ms: 0,
            last_outcome: None,
            parked_reason: None,
            created_at: Timestamp::now(),
            delivered_at: None,
        }
    }

    #[test]
    fn the_delay_doubles_to_its_bound() {
        let policy = RetryPolicy::default();
        let delays: Vec<u64> = (1..=11).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(policy.delay_after(u32::MAX), policy.max_delay);
    }

    #[test]
    fn only_an_acknowledgement_delivers_and_a_refusal_parks_at_once() {
        let policy = RetryPolicy::default();
        // 100 attempts before, but only `unanswered` since the last resend count.
        let judged = |answer, unanswered| judge(&policy, &message(unanswered), answer, 1_000);
        assert_eq!(
            judged(Ok(Answer::Accepted("AA".into())), 0),
            DeliveryOutcome::Delivered {
                detail: "AA".into()
            }
        );
        assert_eq!(
            judged(Ok(Answer::Error("AE: bad PID".into())), 0),
            DeliveryOutcome::Parked {
                reason: "the destination answered an error: AE: bad PID".into()
            }
        );
        assert_eq!(
            judged(Ok(Answer::Rejected("AR: unknown patient".into())), 0),
            DeliveryOutcome::Parked {
                reason: "the destination rejected the message: AR: unknown patient".into()
            }
        );
        // A FHIR server's refusal is said in HTTP's and its OperationOutcome's words, not HL7's.
        let outcome = r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error",
            "code":"not-found","diagnostics":"no patient FHIR-1"}]}"#;
        let refused = judge(
            &policy,
            &message(0),
            crate::fhir::judge_status(422, outcome),
            1_000,
        );
        let DeliveryOutcome::Parked { reason } = refused else {
            panic!("a 4xx parks: {refused:?}")
        };
        assert!(
            reason.starts_with("the destination rejected the message: HTTP 422")
                && reason.contains("no patient FHIR-1"),
            "{reason}"
        );
        assert!(!reason.contains("AR"), "no HL7 code for FHIR: {reason}");
        assert_eq!(
            judged(Err(NoAnswer("time-out".into())), 2),
            DeliveryOutcome::Retry {
                detail: "time-out".into(),
                next_attempt_ms: 1_000 + 8_000
            }
        );
        assert!(matches!(
            judged(Err(NoAnswer("refused".into())), policy.max_attempts - 1),
            DeliveryOutcome::Parked { reason } if reason.contains("50 attempts")
        ));
    }

    /// A destination that answers from a script and records what it was sent.
    struct Scripted {
        answers: VecDeque<Result<Answer, NoAnswer>>,
        sent: Vec<(String, RunId)>,
    }

    impl Courier for Scripted {
        fn destination(&self) -> &str {
            "lis"
        }

        async fn deliver(
            &mut self,
            _ops: &Operations,
            message: &OutboxMessage,
        ) -> Result<Answer, NoAnswer> {
            self.sent.push((message.control_id(), message.run_id));
            self.answers
                .pop_front()
                .unwrap_or(Ok(Answer::Accepted("AA".into())))
        }
    }

    async fn released_run(store: &Store, clinician: &User, mrn: &str) -> RunId {
        let actor = Actor::Appliance;
        let patient = store
            .patient_by_mrn_or_add(
                &actor,
                &NewPatient::new(
                    Mrn::parse(mrn).unwrap(),
                    BirthDate::parse("1961-04-23", time::macros::date!(2026 - 01 - 01)).unwrap(),
                ),
            )
            .await
            .unwrap();
        let sample = store
            .add_sample(
                &actor,
                &NewSample {
                    patient_id: patient.id,
                    accession: Accession::parse(&format!("{mrn}-A")).unwrap(),
                    drawn_at: Timestamp::parse("2026-11-20T08:30:00Z").unwrap(),
                    blood: BloodVolume::from_ml(7.5).unwrap(),
                    indication: Some(Indication::parse("breast").unwrap()),
                    indication_override_reason: None,
                    tubes: vec![
                        NewTube {
                            kind: TubeKind::Control,
                            label: TubeLabel::parse(&format!("{mrn}-C")).unwrap(),
                        },
                        NewTube {
                            kind: TubeKind::Quad,
                            label: TubeLabel::parse(&format!("{mrn}-Q")).unwrap(),
                        },
                    ],
                },
            )
            .await
            .unwrap();
        let run = store
            .create_run(
                &actor,
                &NewRun {
                    sample_id: sample.id,
                    operator_id: None,
                    reagent_lot: Some("LOT-A1".into()),
                    simulated: true,
                },
            )
            .await
            .unwrap();
        store
            .set_run_state(&actor, run.id, RunState::Running, None)
            .await
            .unwrap();
        let report = example_report(
            6.0,
            [3.0, 13.0],
            CountCategory::Quantified,
            Some(Call::Unfavorable),
            false,
        );
        store.record_result(&actor, run.id, &report).await.unwrap();
        store
            .sign_result(clinician, run.id, SignatureMeaning::Release)
            .await
            .unwrap();
        run.id
    }

    #[tokio::test]
    async fn a_sender_retries_parks_and_delivers_only_on_acknowledgement() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path())
            .await
            .unwrap()
            .with_outbox(vec![OutboxTarget {
                name: "lis".into(),
                format: MessageFormat::Hl7v2,
            }]);
        let add = |name: &str, role| {
            let store = store.clone();
            let name = name.to_owned();
            async move {
                store
                    .add_user(
                        &Actor::Appliance,
                        NewUser {
                            username: Username::parse(&name).unwrap(),
                            display_name: name.clone(),
                            role,
                            password: NewPassword::parse("correct horse battery").unwrap(),
                        },
                    )
                    .await
                    .unwrap()
            }
        };
        let clinician = add("dr-send", Role::Clinician).await;
        let admin = add("ada", Role::LabAdmin).await;
        let first = released_run(&store, &clinician, "SEND-1").await;
        let second = released_run(&store, &clinician, "SEND-2").await;
        let ops = Operations::new(
            store.clone(),
            EngineConfig::new(default_indications().unwrap()),
            LoginThrottle::new(Duration::from_secs(60), 5),
        );
        let policy = RetryPolicy {
            first_delay: Duration::ZERO,
            ..RetryPolicy::default()
        };
        let mut courier = Scripted {
            answers: VecDeque::from([
                Err(NoAnswer("connection refused".into())),
                Ok(Answer::Rejected("unknown patient".into())),
            ]),
            sent: Vec::new(),
        };
        let retried = ops
            .deliver_next(&mut courier, &policy)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(retried.state, OutboxState::Pending);
        let parked = ops
            .deliver_next(&mut courier, &policy)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(parked.state, OutboxState::Parked);
        assert!(
            parked
                .parked_reason
                .as_deref()
                .unwrap()
                .contains("unknown patient")
        );
        let delivered = ops
            .deliver_next(&mut courier, &policy)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(delivered.run_id, second, "another patient is not held back");
        assert_eq!(delivered.state, OutboxState::Delivered);
        assert_eq!(ops.deliver_next(&mut courier, &policy).await.unwrap(), None);

        let clinician = Requester::User(clinician);
        let refused = ops.resend_message(&clinician, parked.id, "fixed").await;
        assert!(matches!(refused, Err(OperationError::Forbidden { .. })));
        let admin = Requester::User(admin);
        let unexplained = ops.resend_message(&admin, parked.id, "  ok  ").await;
        assert!(
            matches!(
                unexplained,
                Err(OperationError::Invalid {
                    field: "reason",
                    ..
                })
            ),
            "{unexplained:?}"
        );
        ops.resend_message(&admin, parked.id, "patient registered in the LIS")
            .await
            .unwrap();
        let delivered = ops
            .deliver_next(&mut courier, &policy)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(delivered.run_id, first);
        assert_eq!(delivered.state, OutboxState::Delivered);
        assert_eq!(delivered.attempts, 3);
        let control = delivered.control_id();
        assert_eq!(
            courier.sent,
            [
                (control.clone(), first),
                (control.clone(), first),
                (courier.sent[2].0.clone(), second),
                (control, first),
            ],
            "every attempt of a message carries its one control id"
        );
        assert_ne!(courier.sent[2].0, courier.sent[0].0);
        let delivered = OutboxFilter {
            state: Some(OutboxState::Delivered),
            ..OutboxFilter::default()
        };
        let page = ops.outbox(&admin, &delivered, None, 1).await.unwrap();
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].mrn.as_str(), "SEND-2", "newest first");
        assert_eq!(page.entries[0].accession.as_str(), "SEND-2-A");
        let older = ops
            .outbox(&admin, &delivered, page.next_before, 1)
            .await
            .unwrap();
        assert_eq!(older.entries[0].mrn.as_str(), "SEND-1");
        assert_eq!(older.next_before, None, "the last page");
        assert!(matches!(
            ops.outbox(&clinician, &delivered, None, 1).await,
            Err(OperationError::Forbidden { .. })
        ));
        assert!(matches!(
            ops.outbox(&admin, &delivered, None, MAX_OUTBOX_PAGE + 1)
                .await,
            Err(OperationError::Invalid { .. })
        ));
        let viewed = store
            .audit_entries(&appliance::store::audit::AuditQuery {
                action: Some("outbox.view".into()),
                limit: 100,
                ..appliance::store::audit::AuditQuery::default()
            })
            .await
            .unwrap()
            .len();
        assert_eq!(viewed, 2, "each page shown is audited");
        store.close().await;
    }
}
