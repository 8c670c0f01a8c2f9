//! The sync protocol, appliance → hub: a [`Batch`] of [`Message`]s, each with a stable
//! [`MessageId`] (the same on every attempt) and a per-appliance sequence number (1, 2, 3, …
//! without gaps), carrying one record as the appliance stores it.
//!
//! The hub ingests a batch in one transaction: a message it already holds (same id, same
//! sequence, same content) is acknowledged again and stored once; a sequence that does not follow
//! the last one stored is refused with the expected one named ([`IngestRefusal::expected_sequence`])
//! so the sender resends from there; a known id or sequence with other content is refused.
//! Values travel as stored on the appliance: times as their RFC 3339 text ([`StoredTime`]),
//! numbers as `f64` written as the shortest text that reads back to the same value (serde_json's
//! `float_roundtrip`), raw echo trains as their compressed bytes in base64. The hub keeps them
//! bit for bit.
//!
//! Versioned by [`PROTOCOL_VERSION`]: a hub refuses a batch of another version in words.
//!
//! Not for: the transport (HTTPS and the bearer credential are the sender's and the hub's), or
//! what is sent when (the appliance's outbox).

use serde::{Deserialize, Serialize};

/// The version of this format; every [`Batch`] names it.
pub const PROTOCOL_VERSION: u32 = 1;

/// The most messages one batch may hold.
pub const MAX_BATCH_MESSAGES: usize = 500;

/// Why a value from outside is not a valid protocol value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A message id that is empty, too long or holds other characters.
    #[error(
        "message id {0:?} is not 1 to 100 characters of letters, digits, '.', '_', ':' and '-'"
    )]
    MessageId(String),
    /// A time that is not RFC 3339.
    #[error("time {0:?} is not RFC 3339 text (e.g. 2026-12-02T10:00:00Z)")]
    Time(String),
}

/// A message's stable id, chosen by the appliance, the same on every attempt to send it: 1 to
/// 100 characters of ASCII letters, digits, `.`, `_`, `:` and `-`. Unique across the fleet
/// (the appliance prefixes its own serial or a random part).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

impl MessageId {
    /// Checks the text.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let valid = (1..=100).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(ProtocolError::MessageId(text.to_owned()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageId {
    type Error = ProtocolError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> Self {
        id.0
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A time as the appliance stored it: RFC 3339 text, checked, and kept exactly (a re-formatted
/// time would not be bit-identical to the appliance's record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StoredTime(String);

impl StoredTime {
    /// Checks the text.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(|_| Self(text.to_owned()))
            .map_err(|_| ProtocolError::Time(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The instant.
    pub fn instant(&self) -> time::OffsetDateTime {
        // Checked when made; the text cannot have changed since.
        time::OffsetDateTime::parse(&self.0, &time::format_description::well_known::Rfc3339)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
}

impl TryFrom<String> for StoredTime {
    type Error = ProtocolError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<StoredTime> for String {
    fn from(time: StoredTime) -> Self {
        time.0
    }
}

/// What an appliance sends in one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub protocol: u32,
    /// In sequence order, at most [`MAX_BATCH_MESSAGES`].
    pub messages: Vec<Message>,
}

/// One record on its way to the hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Stable across attempts.
    pub id: MessageId,
    /// The appliance's own count of messages to the hub: 1 for the first, no gaps.
    pub sequence: u64,
    /// What it carries.
    pub body: Body,
}

/// The record a message carries, tagged by its kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum Body {
    /// A released result version with its signatures.
    ReleasedResult(ReleasedResult),
    /// One measurement with its raw train.
    Measurement(Measurement),
    /// One QC value with its verdict.
    QcResult(QcResult),
    /// A calibration.
    Calibration(Calibration),
    /// The appliance's status.
    Heartbeat(Heartbeat),
}

/// The kinds of [`Body`], with their stored words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// [`Body::ReleasedResult`].
    ReleasedResult,
    /// [`Body::Measurement`].
    Measurement,
    /// [`Body::QcResult`].
    QcResult,
    /// [`Body::Calibration`].
    Calibration,
    /// [`Body::Heartbeat`].
    Heartbeat,
}

impl MessageKind {
    /// The word stored and sent (`released_result`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReleasedResult => "released_result",
            Self::Measurement => "measurement",
            Self::QcResult => "qc_result",
            Self::Calibration => "calibration",
            Self::Heartbeat => "heartbeat",
        }
    }
}

impl Body {
    /// Its kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::ReleasedResult(_) => MessageKind::ReleasedResult,
            Self::Measurement(_) => MessageKind::Measurement,
            Self::QcResult(_) => MessageKind::QcResult,
            Self::Calibration(_) => MessageKind::Calibration,
            Self::Heartbeat(_) => MessageKind::Heartbeat,
        }
    }

    /// The canonical bytes of the content (its JSON, fields in declaration order, numbers
    /// written to read back exactly): two messages hold the same content exactly when these are
    /// equal.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serialising plain structs of strings, numbers and byte vectors cannot fail; a
        // non-finite f64 becomes `null`, which still differs from any finite value.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The patient a result is for, by both identifiers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientRef {
    /// Medical record number.
    pub mrn: String,
    /// Date of birth, `YYYY-MM-DD`, when the appliance has it.
    pub birth_date: Option<String>,
}

/// One version of a released result, as the appliance stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasedResult {
    /// The appliance's run id.
    pub run_id: u64,
    /// The result's version (1, then one per correction).
    pub version: u32,
    /// Whose sample.
    pub patient: PatientRef,
    /// The specimen's accession number.
    pub accession: Option<String>,
    /// When the blood was drawn.
    pub drawn_at: StoredTime,
    /// Cells per 7.5 mL.
    pub per_7_5ml: f64,
    /// Its 95 % interval, low end.
    pub per_7_5ml_ci95_low: f64,
    /// Its 95 % interval, high end.
    pub per_7_5ml_ci95_high: f64,
    /// Reporting category (`not_detected`, `below_loq`, `quantified`).
    pub category: String,
    /// The call against the indication's cut-off, when there is one.
    pub call: Option<String>,
    /// The whole count report, the appliance's stored JSON text.
    pub report_json: String,
    /// Why this version was made (every correction has one).
    pub reason: Option<String>,
    /// When this version was made.
    pub created_at: StoredTime,
    /// Its signatures, in the order they were given.
    pub signatures: Vec<Signature>,
}

/// A signature on a result version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The signer's printed name.
    pub printed_name: String,
    /// `release` or `review`.
    pub meaning: String,
    /// When.
    pub signed_at: StoredTime,
}

/// One replicate measurement of a tube with its raw echo train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    /// The appliance's measurement id.
    pub measurement_id: u64,
    /// The appliance's run id.
    pub run_id: u64,
    /// The tube's kind (`control`, `quad`, …).
    pub tube_kind: String,
    /// The tube's label (barcode).
    pub tube_label: String,
    /// Replicate number, from 1.
    pub replicate: u32,
    /// When measured.
    pub measured_at: StoredTime,
    /// Echoes in the train.
    pub echo_count: u32,
    /// How `train` is encoded (`appliance::store::train_codec`).
    pub train_codec: String,
    /// The train's stored bytes (compressed as on the appliance), base64 on the wire.
    #[serde(with = "base64_bytes")]
    pub train: Vec<u8>,
    /// The acquisition parameters, the appliance's stored JSON text.
    pub acquisition_json: String,
    /// The fit, the appliance's stored JSON text.
    pub fit_json: Option<String>,
    /// The QC flags, the appliance's stored JSON text.
    pub qc_flags_json: String,
}

/// One QC value with its Westgard verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QcResult {
    /// The appliance's QC result id.
    pub qc_result_id: u64,
    /// The control material's name.
    pub material: String,
    /// The material's lot.
    pub lot: String,
    /// The value measured.
    pub value: f64,
    /// `pass`, `warning` or `reject`.
    pub status: String,
    /// The Westgard rules broken, the appliance's stored JSON text.
    pub violations_json: String,
    /// The measurement it came from, when measured on the appliance.
    pub measurement_id: Option<u64>,
    /// When measured.
    pub measured_at: StoredTime,
    /// The operator's comment.
    pub comment: Option<String>,
}

/// A calibration as imported on the appliance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// The appliance's calibration id.
    pub calibration_id: u64,
    /// Its reagent lot.
    pub reagent_lot: String,
    /// Its echo time, µs.
    pub te_us: u32,
    /// `toml` or `json`.
    pub content_format: String,
    /// The document.
    pub content: String,
    /// When imported.
    pub created_at: StoredTime,
}

/// The appliance's status at a moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// When.
    pub at: StoredTime,
    /// The software's version.
    pub software_version: String,
    /// The board's status in words (`ready`, `simulated`, `disconnected`, …).
    pub board_status: String,
    /// Messages waiting in the appliance's outbox for the hub.
    pub pending_messages: u64,
}

/// The hub's answer to an accepted batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestAccepted {
    /// Messages stored by this batch.
    pub stored: u32,
    /// Messages the hub already held, acknowledged again.
    pub repeated: u32,
    /// The last sequence number the hub holds for this appliance (0 for none).
    pub last_sequence: u64,
}

/// The hub's answer to a refused batch: nothing of it was stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRefusal {
    /// Why, in words.
    pub error: String,
    /// The sequence number the hub expects next: resend from there.
    pub expected_sequence: u64,
}

/// An appliance's request to enrol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The one-time code a lab admin issued on the hub.
    pub code: String,
    /// The appliance's serial number.
    pub serial: String,
}

/// The hub's answer to an enrolment: the credential is shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolResponse {
    /// The hub's id for the appliance.
    pub appliance_id: i64,
    /// The name the lab admin gave it when issuing the code.
    pub name: String,
    /// The bearer credential for `POST /hub/v1/ingest`; the hub keeps only its hash.
    pub credential: String,
}

/// An error answer of the hub, in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubError {
    /// What went wrong.
    pub error: String,
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|error| serde::de::Error::custom(format!("train is not base64: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn time(text: &str) -> StoredTime {
        StoredTime::parse(text).expect("valid time")
    }

    pub(crate) fn measurement(train: Vec<u8>, value: f64) -> Body {
        Body::Measurement(Measurement {
            measurement_id: 12,
            run_id: 3,
            tube_kind: "quad".into(),
            tube_label: "Q-0001".into(),
            replicate: 1,
            measured_at: time("2026-12-02T10:00:00.123456789Z"),
            echo_count: 2000,
            train_codec: "f32le-deflate-v1".into(),
            train,
            acquisition_json: format!("{{\"te_us\":{value}}}"),
            fit_json: None,
            qc_flags_json: "[]".into(),
        })
    }

    #[test]
    fn message_ids_are_checked() {
        assert!(MessageId::parse("FC-SN0042:17").is_ok());
        for bad in ["", "a b", "é", &"x".repeat(101)] {
            assert_eq!(
                MessageId::parse(bad),
                Err(ProtocolError::MessageId(bad.to_owned()))
            );
        }
    }

    #[test]
    fn times_are_checked_and_kept_as_written() {
        let text = "2026-12-02T10:00:00.123456789+01:00";
        assert_eq!(time(text).as_str(), text);
        assert!(StoredTime::parse("2026-12-02 10:00").is_err());
        let json = r#"{"id":"m1","sequence":1,"body":{"kind":"heartbeat","record":{"at":"yesterday","software_version":"0.1.0","board_status":"ready","pending_messages":0}}}"#;
        let refused = serde_json::from_str::<Message>(json).expect_err("a bad time is refused");
        assert!(refused.to_string().contains("RFC 3339"), "{refused}");
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let extra = r#"{"protocol":1,"messages":[],"extra":1}"#;
        assert!(serde_json::from_str::<Batch>(extra).is_err());
        let kind = r#"{"id":"m1","sequence":1,"body":{"kind":"patient","record":{}}}"#;
        assert!(serde_json::from_str::<Message>(kind).is_err());
    }

    proptest! {
        // Bit-identical: every byte of a train and every f64 survives the wire.
        #[test]
        fn a_message_reads_back_exactly(train in proptest::collection::vec(any::<u8>(), 0..300),
                                         bits in any::<u64>()) {
            let value = f64::from_bits(bits);
            prop_assume!(value.is_finite());
            let body = Body::QcResult(QcResult {
                qc_result_id: 1,
                material: "CTC control".into(),
                lot: "L1".into(),
                value,
                status: "pass".into(),
                violations_json: "[]".into(),
                measurement_id: None,
                measured_at: time("2026-12-02T10:00:00Z"),
                comment: None,
            });
            let message = Message { id: MessageId::parse("m-1").expect("id"), sequence: 1, body };
            let json = serde_json::to_string(&message).expect("serialises");
            let back: Message = serde_json::from_str(&json).expect("reads back");
            let Body::QcResult(qc) = &back.body else { panic!("kind changed") };
            prop_assert_eq!(qc.value.to_bits(), bits);
            prop_assert_eq!(&back, &message);
            let with_train = measurement(train.clone(), 1.0);
            let back: Body = serde_json::from_slice(&with_train.canonical_bytes()).expect("reads back");
            prop_assert_eq!(back, with_train);
        }
    }

    #[test]
    fn the_canonical_bytes_tell_contents_apart() {
        assert_eq!(
            measurement(vec![1, 2], 1.0).canonical_bytes(),
            measurement(vec![1, 2], 1.0).canonical_bytes()
        );
        assert_ne!(
            measurement(vec![1, 2], 1.0).canonical_bytes(),
            measurement(vec![1, 3], 1.0).canonical_bytes()
        );
    }
}
