//! The fleet: one-time enrolment codes, the appliances they enrolled, their credentials and
//! their revocation.
//!
//! A lab admin issues a code for an appliance's name ([`HubStore::issue_enrolment_code`]); the
//! appliance exchanges it, once and before it expires, for its own bearer credential
//! ([`HubStore::enrol`]). The hub keeps only SHA-256 hashes of codes and credentials (both are
//! random, 78 and 256 bits: a slow password hash would add nothing). A revoked appliance's
//! credential is refused with the revocation's time and reason; its records stay.
//!
//! Not for: what an enrolled appliance may send (that is [`super::ingest`]).

use hub_protocol::audit_chain::sha256_hex;
use serde_json::json;
use time::OffsetDateTime;

use super::audit::{AuditEntry, HubActor, append};
use super::{Context, HubError, HubStore, random_hex};

/// Letters and digits of an enrolment code: no 0/O, 1/I/L or U, so a code read aloud or typed
/// from paper cannot be mistaken.
const CODE_ALPHABET: &[u8; 30] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";

/// Characters of a code (four groups of four: 78 bits).
const CODE_LENGTH: usize = 16;

/// The prefix of a credential (to recognise one in a configuration file).
const CREDENTIAL_PREFIX: &str = "fch_";

/// A code issued: shown once to the lab admin, who types it on the appliance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCode {
    /// `XXXX-XXXX-XXXX-XXXX`.
    pub code: String,
    /// The name the appliance will have on the hub.
    pub name: String,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// An appliance just enrolled: the credential is shown this once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrolled {
    /// The hub's id for it.
    pub appliance_id: i64,
    /// Its name.
    pub name: String,
    /// Its bearer credential.
    pub credential: String,
}

/// Why an enrolment was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnrolRefusal {
    /// No such code.
    #[error("this enrolment code is not known to the hub (mistyped?)")]
    UnknownCode,
    /// The code enrolled an appliance already.
    #[error("this enrolment code was already used; ask the hub's lab admin for a new one")]
    CodeUsed,
    /// The code expired.
    #[error("this enrolment code expired; ask the hub's lab admin for a new one")]
    CodeExpired,
    /// An appliance with this serial is enrolled and not revoked.
    #[error("an appliance with serial {0:?} is already enrolled; revoke it on the hub first")]
    SerialEnrolled(String),
    /// The serial is not acceptable.
    #[error("{0}")]
    InvalidSerial(String),
}

/// Why a credential was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialRefusal {
    /// No appliance holds it.
    #[error("the credential is not known to the hub: enrol the appliance first")]
    Unknown,
    /// Its appliance was revoked.
    #[error("appliance {serial:?} was revoked on the hub at {at}: {reason}")]
    Revoked {
        /// The appliance's serial.
        serial: String,
        /// When.
        at: String,
        /// Why.
        reason: String,
    },
}

/// An authenticated appliance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplianceIdentity {
    /// The hub's id.
    pub id: i64,
    /// Its name on the hub.
    pub name: String,
    /// Its serial.
    pub serial: String,
}

impl ApplianceIdentity {
    /// As an audit actor.
    pub fn actor(&self) -> HubActor {
        HubActor::Appliance {
            id: self.id,
            serial: self.serial.clone(),
        }
    }
}

/// An appliance as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplianceRecord {
    /// The hub's id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its serial.
    pub serial: String,
    /// When enrolled.
    pub enrolled_at: OffsetDateTime,
    /// When revoked, with whom and why.
    pub revoked: Option<(OffsetDateTime, String, String)>,
}

/// Checks a name or serial: 1 to 100 characters, no control characters, not only spaces.
fn checked_text(what: &str, text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control)
    {
        return Err(format!(
            "{what} {text:?} is not 1 to 100 printable characters"
        ));
    }
    Ok(trimmed.to_owned())
}

/// A code as typed: upper case, without dashes or spaces.
fn normalised_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn new_code() -> Result<String, HubError> {
    let mut letters = String::with_capacity(CODE_LENGTH + 3);
    let mut count = 0;
    while count < CODE_LENGTH {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|error| HubError::Random(error.to_string()))?;
        // Rejection sampling: 240 = 8 × 30, so every letter is equally likely.
        for byte in bytes.into_iter().filter(|&b| b < 240) {
            if count == CODE_LENGTH {
                break;
            }
            if count > 0 && count % 4 == 0 {
                letters.push('-');
            }
            letters.push(char::from(CODE_ALPHABET[usize::from(byte % 30)]));
            count += 1;
        }
    }
    Ok(letters)
}

impl HubStore {
    /// Issues a one-time enrolment code for an appliance to be called `name`, valid for
    /// `valid_for`; audited `enrolment.issue` (the code itself is not recorded).
    pub async fn issue_enrolment_code(
        &self,
        by: &HubActor,
        name: &str,
        valid_for: time::Duration,
    ) -> Result<IssuedCode, HubError> {
        let name = checked_text("appliance name", name).map_err(HubError::Invalid)?;
        if valid_for <= time::Duration::ZERO || valid_for > time::Duration::days(30) {
            return Err(HubError::Invalid(
                "an enrolment code is valid for more than nothing and at most 30 days".to_owned(),
            ));
        }
        let code = new_code()?;
        let code_hash = sha256_hex(normalised_code(&code).as_bytes());
        let issued_by = by.label();
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        let row = sqlx::query!(
            "INSERT INTO enrolment_codes (code_hash, appliance_name, issued_at, issued_by, expires_at)
             VALUES ($1, $2, now(), $3, now() + make_interval(secs => $4))
             RETURNING id, expires_at",
            code_hash,
            name,
            issued_by,
            valid_for.as_seconds_f64(),
        )
        .fetch_one(&mut *tx)
        .await
        .context("storing an enrolment code")?;
        append(
            &mut tx,
            by,
            &AuditEntry::new("enrolment.issue", "enrolment_code")
                .id(row.id)
                .detail(
                    json!({ "appliance_name": name, "valid_seconds": valid_for.whole_seconds() }),
                ),
        )
        .await?;
        tx.commit().await.context("committing an enrolment code")?;
        Ok(IssuedCode {
            code,
            name,
            expires_at: row.expires_at,
        })
    }

    /// Exchanges a one-time code for a credential for the appliance with `serial`, in one
    /// transaction: the code is marked used, the appliance stored with its credential's hash,
    /// both audited. A code already used or expired is refused (and the attempt audited).
    pub async fn enrol(
        &self,
        code: &str,
        serial: &str,
    ) -> Result<Result<Enrolled, EnrolRefusal>, HubError> {
        let serial = match checked_text("serial", serial) {
            Ok(serial) => serial,
            Err(words) => return Ok(Err(EnrolRefusal::InvalidSerial(words))),
        };
        let code_hash = sha256_hex(normalised_code(code).as_bytes());
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        let Some(found) = sqlx::query!(
            r#"SELECT id, appliance_name, issued_by, used_at IS NOT NULL AS "used!",
                      expires_at <= now() AS "expired!"
               FROM enrolment_codes WHERE code_hash = $1 FOR UPDATE"#,
            code_hash,
        )
        .fetch_optional(&mut *tx)
        .await
        .context("reading an enrolment code")?
        else {
            return Ok(Err(EnrolRefusal::UnknownCode));
        };
        let refusal = if found.used {
            Some(EnrolRefusal::CodeUsed)
        } else if found.expired {
            Some(EnrolRefusal::CodeExpired)
        } else {
            let enrolled = sqlx::query!(
                r#"SELECT count(*) AS "n!" FROM appliances WHERE serial = $1 AND revoked_at IS NULL"#,
                serial,
            )
            .fetch_one(&mut *tx)
            .await
            .context("looking for an enrolled appliance")?;
            (enrolled.n > 0).then(|| EnrolRefusal::SerialEnrolled(serial.clone()))
        };
        if let Some(refusal) = refusal {
            append(
                &mut tx,
                &HubActor::Hub,
                &AuditEntry::new("enrolment.refuse", "enrolment_code")
                    .id(found.id)
                    .reason(refusal.to_string())
                    .detail(json!({ "serial": serial })),
            )
            .await?;
            tx.commit()
                .await
                .context("committing a refused enrolment")?;
            return Ok(Err(refusal));
        }
        let credential = format!("{CREDENTIAL_PREFIX}{}", random_hex::<32>()?);
        let credential_hash = sha256_hex(credential.as_bytes());
        let appliance_id = sqlx::query_scalar!(
            "INSERT INTO appliances (name, serial, enrolled_at, enrolled_by, credential_hash)
             VALUES ($1, $2, now(), $3, $4) RETURNING id",
            found.appliance_name,
            serial,
            found.issued_by,
            credential_hash,
        )
        .fetch_one(&mut *tx)
        .await
        .context("storing an enrolled appliance")?;
        sqlx::query!(
            "UPDATE enrolment_codes SET used_at = now(), appliance_id = $2 WHERE id = $1",
            found.id,
            appliance_id,
        )
        .execute(&mut *tx)
        .await
        .context("marking an enrolment code used")?;
        append(
            &mut tx,
            &HubActor::Appliance {
                id: appliance_id,
                serial: serial.clone(),
            },
            &AuditEntry::new("appliance.enrol", "appliance")
                .id(appliance_id)
                .detail(json!({ "name": found.appliance_name, "serial": serial,
                                "enrolment_code": found.id })),
        )
        .await?;
        tx.commit().await.context("committing an enrolment")?;
        Ok(Ok(Enrolled {
            appliance_id,
            name: found.appliance_name,
            credential,
        }))
    }

    /// The appliance holding `credential`, or why it is refused.
    pub async fn authenticate(
        &self,
        credential: &str,
    ) -> Result<Result<ApplianceIdentity, CredentialRefusal>, HubError> {
        let credential_hash = sha256_hex(credential.as_bytes());
        let Some(row) = sqlx::query!(
            "SELECT id, name, serial, revoked_at, revoked_reason
             FROM appliances WHERE credential_hash = $1",
            credential_hash,
        )
        .fetch_optional(&self.pool)
        .await
        .context("looking up a credential")?
        else {
            return Ok(Err(CredentialRefusal::Unknown));
        };
        if let Some(at) = row.revoked_at {
            return Ok(Err(CredentialRefusal::Revoked {
                serial: row.serial,
                at: at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                reason: row.revoked_reason.unwrap_or_default(),
            }));
        }
        Ok(Ok(ApplianceIdentity {
            id: row.id,
            name: row.name,
            serial: row.serial,
        }))
    }

    /// Revokes the enrolled appliance with `serial`: its credential is refused from now on; its
    /// records stay. Audited `appliance.revoke` with the reason. An unknown or already revoked
    /// serial is an error in words.
    pub async fn revoke(
        &self,
        by: &HubActor,
        serial: &str,
        reason: &str,
    ) -> Result<ApplianceIdentity, HubError> {
        let reason = checked_text("reason", reason).map_err(HubError::Invalid)?;
        let revoked_by = by.label();
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        let Some(row) = sqlx::query!(
            "UPDATE appliances SET revoked_at = now(), revoked_by = $2, revoked_reason = $3
             WHERE serial = $1 AND revoked_at IS NULL
             RETURNING id, name, serial",
            serial,
            revoked_by,
            reason,
        )
        .fetch_optional(&mut *tx)
        .await
        .context("revoking an appliance")?
        else {
            return Err(HubError::Invalid(format!(
                "no enrolled, unrevoked appliance has serial {serial:?}"
            )));
        };
        append(
            &mut tx,
            by,
            &AuditEntry::new("appliance.revoke", "appliance")
                .id(row.id)
                .reason(reason)
                .detail(json!({ "serial": row.serial, "name": row.name })),
        )
        .await?;
        tx.commit().await.context("committing a revocation")?;
        Ok(ApplianceIdentity {
            id: row.id,
            name: row.name,
            serial: row.serial,
        })
    }

    /// Every appliance ever enrolled, by id.
    pub async fn appliances(&self) -> Result<Vec<ApplianceRecord>, HubError> {
        let rows = sqlx::query!(
            "SELECT id, name, serial, enrolled_at, revoked_at, revoked_by, revoked_reason
             FROM appliances ORDER BY id"
        )
        .fetch_all(&self.pool)
        .await
        .context("listing appliances")?;
        Ok(rows
            .into_iter()
            .map(|row| ApplianceRecord {
                id: row.id,
                name: row.name,
                serial: row.serial,
                enrolled_at: row.enrolled_at,
                revoked: row.revoked_at.map(|at| {
                    (
                        at,
                        row.revoked_by.unwrap_or_default(),
                        row.revoked_reason.unwrap_or_default(),
                    )
                }),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_four_groups_of_four_from_the_alphabet() {
        let code = new_code().expect("random");
        assert_eq!(code.len(), 19);
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups.len(), 4);
        assert!(
            code.bytes()
                .all(|b| b == b'-' || CODE_ALPHABET.contains(&b)),
            "{code}"
        );
        assert_ne!(new_code().expect("random"), code);
    }

    #[test]
    fn a_code_is_recognised_however_it_is_typed() {
        assert_eq!(normalised_code("abcd-efgh jkmn-pqrs"), "ABCDEFGHJKMNPQRS");
    }
}
