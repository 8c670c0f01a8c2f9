//! The audit chain's hashing rule, shared by the appliance's trail (`appliance::store::audit`)
//! and the hub's (`hub::store::audit`).
//!
//! Each row's hash is SHA-256, as lowercase hex, over a canonical encoding of the row (id, time,
//! user id, actor, action, entity, entity id, reason, detail) followed by the previous row's hash
//! ([`GENESIS_HASH`] for the first row). The encoding starts with a tag, then gives each field as
//! a presence byte (0 absent, 1 present), a little-endian u64 byte length and the UTF-8 bytes
//! (integers as decimal text): length prefixes make it unambiguous whatever the fields contain.
//!
//! [`AuditEntry`] is what a caller asks either store to record (what was done to which record,
//! and why); [`AuditEntry::chained`] gives the fields the rule hashes, so both stores build a row
//! the same way.
//!
//! Not for: storing rows or walking a chain (each store does that over its own table).

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Tag of the canonical encoding, so that a future encoding cannot be confused with this one.
pub const CANONICAL_TAG: &[u8] = b"ferrocount-audit-v1";

/// One thing to record in an audit trail (the appliance's or the hub's): what was done to which
/// record, and why. Who acted and when are the store's to add when it appends the row.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    action: String,
    entity: String,
    entity_id: Option<String>,
    reason: Option<String>,
    detail: serde_json::Value,
}

impl AuditEntry {
    /// `action` is dotted (`user.add`, `appliance.enrol`); `entity` is the kind of record
    /// (`user`, `appliance`).
    pub fn new(action: &str, entity: &str) -> Self {
        Self {
            action: action.to_owned(),
            entity: entity.to_owned(),
            entity_id: None,
            reason: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// The affected record's id.
    pub fn id(mut self, entity_id: impl ToString) -> Self {
        self.entity_id = Some(entity_id.to_string());
        self
    }

    /// Why it was done.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// What was done, as a JSON object (old and new values, parameters).
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// The action, as stored in `audit_log.action`.
    pub fn action_text(&self) -> &str {
        &self.action
    }

    /// The kind of record, as stored in `audit_log.entity`.
    pub fn entity_text(&self) -> &str {
        &self.entity
    }

    /// The record's id, as stored in `audit_log.entity_id`.
    pub fn entity_id_text(&self) -> Option<&str> {
        self.entity_id.as_deref()
    }

    /// The reason, as stored in `audit_log.reason`.
    pub fn reason_text(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The detail as the JSON text stored in `audit_log.detail_json` (and hashed).
    pub fn detail_json(&self) -> String {
        self.detail.to_string()
    }

    /// The fields the chain's rule hashes for this entry appended as row `id` at `at` by
    /// `actor` (`user_id` when a user acted) after the row whose hash is `prev_hash`;
    /// `detail_json` is [`Self::detail_json`]'s text.
    pub fn chained<'a>(
        &'a self,
        id: i64,
        at: &'a str,
        user_id: Option<i64>,
        actor: &'a str,
        detail_json: &'a str,
        prev_hash: &'a str,
    ) -> ChainedFields<'a> {
        ChainedFields {
            id,
            at,
            user_id,
            actor,
            action: &self.action,
            entity: &self.entity,
            entity_id: self.entity_id.as_deref(),
            reason: self.reason.as_deref(),
            detail_json,
            prev_hash,
        }
    }
}

/// The fields of one audit row that are hashed, in their stored form.
#[derive(Clone, Copy, Debug)]
pub struct ChainedFields<'a> {
    /// Position in the chain (1, 2, 3, ...).
    pub id: i64,
    /// When, as stored (RFC 3339 text).
    pub at: &'a str,
    /// The acting user's id, when a user acted.
    pub user_id: Option<i64>,
    /// Who acted, as stored.
    pub actor: &'a str,
    /// What was done.
    pub action: &'a str,
    /// To which kind of record.
    pub entity: &'a str,
    /// To which record.
    pub entity_id: Option<&'a str>,
    /// Why.
    pub reason: Option<&'a str>,
    /// The detail, as the stored JSON text.
    pub detail_json: &'a str,
    /// The previous row's hash.
    pub prev_hash: &'a str,
}

impl ChainedFields<'_> {
    /// The canonical encoding (see the module's documentation).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, value: Option<&str>) {
            match value {
                None => out.push(0),
                Some(text) => {
                    out.push(1);
                    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
                    out.extend_from_slice(text.as_bytes());
                }
            }
        }
        let id = self.id.to_string();
        let user_id = self.user_id.map(|id| id.to_string());
        let mut out = Vec::with_capacity(256 + self.detail_json.len());
        out.extend_from_slice(CANONICAL_TAG);
        field(&mut out, Some(&id));
        field(&mut out, Some(self.at));
        field(&mut out, user_id.as_deref());
        field(&mut out, Some(self.actor));
        field(&mut out, Some(self.action));
        field(&mut out, Some(self.entity));
        field(&mut out, self.entity_id);
        field(&mut out, self.reason);
        field(&mut out, Some(self.detail_json));
        field(&mut out, Some(self.prev_hash));
        out
    }

    /// This row's hash: SHA-256 of the canonical encoding, lowercase hex.
    pub fn hash(&self) -> String {
        sha256_hex(&self.canonical_bytes())
    }
}

/// Walks a chain row by row, in id order from the first, and says what is wrong with the first
/// row that does not verify: both stores' `verify` read their rows and feed them here.
#[derive(Clone, Debug)]
pub struct ChainWalk {
    expected_prev: String,
    last_id: i64,
    rows: u64,
}

impl Default for ChainWalk {
    fn default() -> Self {
        Self {
            expected_prev: GENESIS_HASH.to_owned(),
            last_id: 0,
            rows: 0,
        }
    }
}

impl ChainWalk {
    /// A walk from the first row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next row against its stored `hash`: `Err` says, in words, why it breaks.
    pub fn check(&mut self, row: &ChainedFields<'_>, hash: &str) -> Result<(), String> {
        if row.id != self.last_id + 1 {
            return Err(format!(
                "ids jump from {} to {}: rows are missing",
                self.last_id, row.id
            ));
        }
        if row.prev_hash != self.expected_prev {
            return Err(format!(
                "its previous-row hash {} does not match the previous row's hash {}: \
                 the previous row was removed, replaced or altered",
                row.prev_hash, self.expected_prev
            ));
        }
        let recomputed = row.hash();
        if recomputed != hash {
            return Err(format!(
                "its content does not match its hash (stored {hash}, recomputed {recomputed}): \
                 the row was altered"
            ));
        }
        hash.clone_into(&mut self.expected_prev);
        self.last_id = row.id;
        self.rows += 1;
        Ok(())
    }

    /// The last row checked (0 before the first).
    pub fn last_id(&self) -> i64 {
        self.last_id
    }

    /// Rows checked.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The last row's hash, `None` when no row was checked.
    pub fn head_hash(&self) -> Option<&str> {
        (self.rows > 0).then_some(self.expected_prev.as_str())
    }
}

/// SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut text = String::with_capacity(64);
    for byte in digest {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(entity_id: Option<&'a str>, reason: Option<&'a str>) -> ChainedFields<'a> {
        ChainedFields {
            id: 7,
            at: "2026-12-02T10:00:00Z",
            user_id: None,
            actor: "hub",
            action: "appliance.enrol",
            entity: "appliance",
            entity_id,
            reason,
            detail_json: "{}",
            prev_hash: GENESIS_HASH,
        }
    }

    #[test]
    fn sha256_matches_the_fips_180_2_example() {
        // FIPS 180-2, appendix B.1: SHA-256("abc").
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_encoding_is_the_documented_one() {
        let mut expected = b"ferrocount-audit-v1".to_vec();
        for value in [
            Some("7"),
            Some("2026-12-02T10:00:00Z"),
            None,
            Some("hub"),
            Some("appliance.enrol"),
            Some("appliance"),
            Some("3"),
            None,
            Some("{}"),
            Some(GENESIS_HASH),
        ] {
            match value {
                None => expected.push(0),
                Some(text) => {
                    expected.push(1);
                    expected.extend_from_slice(&(text.len() as u64).to_le_bytes());
                    expected.extend_from_slice(text.as_bytes());
                }
            }
        }
        assert_eq!(row(Some("3"), None).canonical_bytes(), expected);
    }

    #[test]
    fn a_walk_names_a_gap_a_broken_link_and_an_altered_row() {
        let first = row(Some("1"), None);
        let first = ChainedFields { id: 1, ..first };
        let first_hash = first.hash();
        let second = ChainedFields {
            id: 2,
            prev_hash: &first_hash,
            ..first
        };
        let mut walk = ChainWalk::new();
        walk.check(&first, &first_hash).expect("first row");
        walk.check(&second, &second.hash()).expect("second row");
        assert_eq!((walk.rows(), walk.last_id()), (2, 2));
        assert_eq!(walk.head_hash(), Some(second.hash().as_str()));

        let mut walk = ChainWalk::new();
        let gap = ChainedFields { id: 2, ..first };
        assert!(
            walk.check(&gap, &gap.hash())
                .unwrap_err()
                .contains("missing")
        );
        let mut walk = ChainWalk::new();
        let forked = ChainedFields {
            prev_hash: "x",
            ..first
        };
        assert!(
            walk.check(&forked, &forked.hash())
                .unwrap_err()
                .contains("previous row")
        );
        let mut walk = ChainWalk::new();
        assert!(
            walk.check(&first, &second.hash())
                .unwrap_err()
                .contains("altered")
        );
    }

    #[test]
    fn an_absent_field_and_an_empty_one_hash_differently() {
        // Without presence bytes and lengths, moving text between fields could keep the hash.
        assert_ne!(row(None, Some("")).hash(), row(Some(""), None).hash());
        assert_ne!(
            row(Some("ab"), Some("c")).hash(),
            row(Some("a"), Some("bc")).hash()
        );
    }
}
