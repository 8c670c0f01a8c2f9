//! The appliance's link to its hub: enrolment (`ferrocount enrol`) and the stored credential.
//!
//! Enrolment trades a one-time code a lab admin issued on the hub for this appliance's bearer
//! credential (`POST /hub/v1/enrol`, HTTPS only, rustls, the system's roots or the hub's CA as
//! `--ca-file`), and keeps it with the hub's URL in [`HUB_CREDENTIAL_FILE`] in the data
//! directory, mode 0600, written whole (a temporary file renamed over the old one).
//!
//! Why a file and not the database: the database travels in backups and is restored onto
//! replacement hardware, where a copied credential would let a second box speak as this one
//! (the hub's sequence and audit are per appliance); a restored appliance enrols afresh instead.
//! The file is kept out of the database's exports for the same reason, and it matches the FHIR
//! destination's `token_file`. The enrolment itself (hub, appliance id, name; never the
//! credential) is in the appliance's audit trail.
//!
//! Not for: sending (the outbox's hub destination, which reads [`HubLink::load`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use appliance::store::AuditEntry;
use hub_protocol::message::{EnrolRequest, EnrolResponse, HubError};
use serde::{Deserialize, Serialize};

use crate::https_client::{HttpsClientError, error_words, https_client};
use crate::{OperationError, Operations, Requester};

/// The credential file in the data directory.
pub const HUB_CREDENTIAL_FILE: &str = "hub-credential.json";

/// How long one request to the hub may take.
const HUB_TIMEOUT: Duration = Duration::from_secs(30);

/// What the appliance keeps of its enrolment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubLink {
    /// The hub's base URL (`https://hub.example:8443`).
    pub hub_url: String,
    /// The hub's CA, when it is not among the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The serial this appliance enrolled with.
    pub serial: String,
    /// The hub's id for this appliance.
    pub appliance_id: i64,
    /// The name the lab admin gave it on the hub.
    pub name: String,
    /// The bearer credential.
    pub credential: String,
}

/// Why enrolment did not happen, in words.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// The hub URL is not an https URL.
    #[error("the hub URL {0:?} is not an https:// URL (the credential travels only over HTTPS)")]
    NotHttps(String),
    /// The serial is empty.
    #[error("the appliance's serial is empty: give --serial")]
    NoSerial,
    /// The CA file cannot be read or holds no certificate.
    #[error("--ca-file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The hub's certificate is not trusted.
    #[error(
        "the hub's certificate is not trusted ({0}); is --ca-file the hub's CA, and the URL's \
         host the certificate's name?"
    )]
    Certificate(String),
    /// No answer from the hub.
    #[error("the hub at {url} cannot be reached: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The code is unknown, used or expired.
    #[error("the hub refused the enrolment code: {0}")]
    BadCode(String),
    /// The serial is enrolled already (or was, and was revoked).
    #[error("the hub refused this appliance: {0}")]
    Refused(String),
    /// Another answer.
    #[error("the hub answered {status}: {words}")]
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// Its words.
        words: String,
    },
    /// The credential could not be kept; the hub has enrolled the appliance, so a lab admin
    /// revokes it and issues a new code.
    #[error(
        "the hub enrolled this appliance but its credential could not be written to {path} \
         ({reason}); ask the hub's lab admin to revoke serial {serial} and issue a new code"
    )]
    File {
        /// The file.
        path: PathBuf,
        /// The serial.
        serial: String,
        /// Why.
        reason: String,
    },
    /// The appliance's store.
    #[error(transparent)]
    Operation(#[from] OperationError),
}

impl HubLink {
    /// The credential file of `data_dir`.
    pub fn file(data_dir: &Path) -> PathBuf {
        data_dir.join(HUB_CREDENTIAL_FILE)
    }

    /// The link of `data_dir`, `None` when the appliance has not enrolled.
    pub fn load(data_dir: &Path) -> Result<Option<Self>, String> {
        let file = Self::file(data_dir);
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: {e}", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", file.display())),
        }
    }

    /// Writes the link to `data_dir`, mode 0600, whole.
    fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let file = Self::file(data_dir);
        let temporary = data_dir.join(format!("{HUB_CREDENTIAL_FILE}.new"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = options.open(&temporary)?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        out.write_all(&json)?;
        out.sync_all()?;
        drop(out);
        std::fs::rename(&temporary, &file)
    }

    /// An HTTPS client for `hub_url`, trusting `ca_file` instead of the system's roots when
    /// given.
    pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, EnrolError> {
        https_client(HUB_TIMEOUT, ca_file).map_err(|error| match error {
            HttpsClientError::CaFile { path, reason } => EnrolError::CaFile { path, reason },
            HttpsClientError::Build(reason) => EnrolError::Unreachable {
                url: String::new(),
                reason: format!("the HTTPS client could not be made: {reason}"),
            },
        })
    }
}

/// The hub's words from an error answer, or the body as text.
fn hub_words(body: &str) -> String {
    serde_json::from_str::<HubError>(body)
        .map(|answer| answer.error)
        .unwrap_or_else(|_| body.chars().take(500).collect())
}

impl Operations {
    /// Enrols this appliance (data directory `data_dir`) with the hub at `hub_url` using the
    /// one-time `code`; keeps the credential in [`HUB_CREDENTIAL_FILE`] and audits
    /// `hub.enrol` (without the credential). Refusals and failures in words ([`EnrolError`]).
    pub async fn enrol_with_hub(
        &self,
        who: &Requester,
        data_dir: &Path,
        hub_url: &str,
        code: &str,
        serial: &str,
        ca_file: Option<&Path>,
    ) -> Result<HubLink, EnrolError> {
        let base = hub_url.trim_end_matches('/');
        if !base.starts_with("https://") {
            return Err(EnrolError::NotHttps(hub_url.to_owned()));
        }
        let serial = serial.trim();
        if serial.is_empty() {
            return Err(EnrolError::NoSerial);
        }
        let client = HubLink::client(ca_file)?;
        let url = format!("{base}/hub/v1/enrol");
        let response = client
            .post(&url)
            .json(&EnrolRequest {
                code: code.trim().to_owned(),
                serial: serial.to_owned(),
            })
            .send()
            .await
            .map_err(|e| {
                let words = error_words(&e);
                if words.contains("certificate") || words.contains("UnknownIssuer") {
                    EnrolError::Certificate(words)
                } else {
                    EnrolError::Unreachable {
                        url: base.to_owned(),
                        reason: words,
                    }
                }
            })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| EnrolError::Unreachable {
            url: base.to_owned(),
            reason: error_words(&e),
        })?;
        let enrolled: EnrolResponse = match status {
            200 => serde_json::from_str(&body).map_err(|e| EnrolError::Unexpected {
                status,
                words: format!("not an enrolment answer: {e}"),
            })?,
            401 => return Err(EnrolError::BadCode(hub_words(&body))),
            409 | 422 => return Err(EnrolError::Refused(hub_words(&body))),
            _ => {
                return Err(EnrolError::Unexpected {
                    status,
                    words: hub_words(&body),
                });
            }
        };
        let link = HubLink {
            hub_url: base.to_owned(),
            ca_file: ca_file.map(Path::to_owned),
            serial: serial.to_owned(),
            appliance_id: enrolled.appliance_id,
            name: enrolled.name,
            credential: enrolled.credential,
        };
        link.save(data_dir).map_err(|e| EnrolError::File {
            path: HubLink::file(data_dir),
            serial: serial.to_owned(),
            reason: e.to_string(),
        })?;
        self.store
            .record_event(
                &who.actor(),
                AuditEntry::new("hub.enrol", "hub")
                    .id(link.appliance_id)
                    .detail(serde_json::json!({
                        "hub": link.hub_url,
                        "serial": link.serial,
                        "name": link.name,
                    })),
            )
            .await
            .map_err(OperationError::from)?;
        Ok(link)
    }
}
