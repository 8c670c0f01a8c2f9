//! A FHIR R4 destination and the appliance's read-only FHIR view: the resources of a released
//! result (each value taken from the stored, released version through [`crate::released`]),
//! their delivery as a transaction Bundle posted with a bearer token over HTTPS, and the
//! DiagnosticReports served at `/fhir` to those who may view patients' results.
//!
//! What a FHIR server's answer means (the rule [`judge_status`]): 2xx delivered; 4xx refused
//! (parked with the OperationOutcome's words: sending it unchanged again would not help); 5xx,
//! a time-out or no connection is no answer (tried again by the outbox's rule). Only released
//! versions are sent or served: a preliminary result is not served at all (not even marked
//! `preliminary`), because a FHIR client files what it reads into the patient's record, and
//! nothing unreleased leaves the appliance. Not here: the resources' syntax
//! (`appliance::interop::fhir`), when to retry (`crate::outbox`).

use std::path::PathBuf;
use std::time::Duration;

use appliance::interop::destination::{DEFAULT_MRN_SYSTEM, DestinationConfig};
use appliance::interop::fhir::{
    self, Bundle, DiagnosticReport, FHIR_JSON, FhirInput, operation_outcome_text,
};
use appliance::store::outbox::OutboxMessage;
use appliance::store::patients::Mrn;
use appliance::store::results::SignatureMeaning;
use appliance::store::run_list::RunListPage;
use appliance::store::{AuditEntry, RunId};

use crate::https_client::{HttpsClientError, error_words, https_client};
use crate::outbox::{Answer, Courier, NoAnswer};
use crate::released::Released;
use crate::{OperationError, Operations, Permission, Requester};

/// The most runs of one patient a FHIR search returns.
pub const MAX_SEARCHED_RUNS: u32 = 500;

/// A configured FHIR destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FhirDestination {
    /// Its name (the outbox rows').
    pub name: String,
    /// The server's base URL (`https://…`; the transaction is posted to it).
    pub base_url: String,
    /// The file holding the bearer token (read at every attempt: a new token needs no restart).
    pub token_file: PathBuf,
    /// The hospital's CA certificate (PEM), trusted instead of the system's roots when set.
    pub ca_file: Option<PathBuf>,
    /// The MRN's identifier system.
    pub mrn_system: String,
    /// How long one attempt may take (connect, send, answer).
    pub timeout: Duration,
}

impl FhirDestination {
    /// The FHIR destinations of the configuration, named as the outbox names them.
    pub fn configured(destinations: &[DestinationConfig]) -> Vec<Self> {
        destinations
            .iter()
            .enumerate()
            .filter_map(|(position, destination)| match destination {
                DestinationConfig::Fhir {
                    base_url,
                    token_file,
                    ca_file,
                    mrn_system,
                    timeout_ms,
                    ..
                } => Some(Self {
                    name: destination.name(position),
                    base_url: base_url.trim_end_matches('/').to_owned(),
                    token_file: token_file.clone(),
                    ca_file: ca_file.clone(),
                    mrn_system: mrn_system.clone(),
                    timeout: Duration::from_millis(*timeout_ms),
                }),
                DestinationConfig::Hl7v2 { .. } => None,
            })
            .collect()
    }
}

/// What a FHIR server's HTTP status (with its body) means for a message: 2xx accepted, 4xx
/// rejected with the OperationOutcome's words (or the start of the body), anything else no
/// answer.
pub fn judge_status(status: u16, body: &str) -> Result<Answer, NoAnswer> {
    let words = operation_outcome_text(body).unwrap_or_else(|| {
        let start: String = body.trim().chars().take(300).collect();
        if start.is_empty() {
            "no OperationOutcome".to_owned()
        } else {
            start
        }
    });
    match status {
        200..=299 => Ok(Answer::Accepted(format!("HTTP {status}"))),
        400..=499 => Ok(Answer::Rejected(format!("HTTP {status}: {words}"))),
        _ => Err(NoAnswer(format!("HTTP {status}: {words}"))),
    }
}

impl Operations {
    /// The FHIR resources' input for a released result version, its patient's MRN in
    /// `mrn_system`.
    pub fn fhir_input(&self, released: &Released, mrn_system: &str) -> FhirInput {
        let site = &self.settings.site;
        let report = &released.result.report;
        let reagent_lot = released.run.reagent_lot.clone().or_else(|| {
            (!report.calibration_lot.trim().is_empty()).then(|| report.calibration_lot.clone())
        });
        FhirInput {
            filler_order: format!("RUN-{}", released.run.id),
            report_id: released.run.id.to_string(),
            status: released.status,
            mrn: released.patient.mrn.as_str().to_owned(),
            mrn_system: mrn_system.to_owned(),
            birth_date: released.patient.birth_date.map(|b| b.date()),
            accession: released.sample.accession.as_str().to_owned(),
            drawn_at: released.sample.drawn_at.datetime(),
            reported_at: released.released_at.datetime(),
            lab_name: site.lab_name.clone(),
            instrument_serial: site.instrument_serial.clone(),
            software_version: env!("CARGO_PKG_VERSION").to_owned(),
            reagent_lot,
            observations: released.observations.clone(),
        }
    }

    /// The transaction Bundle of an outbox message: the released result version it carries.
    pub async fn fhir_bundle_of(
        &self,
        message: &OutboxMessage,
        destination: &FhirDestination,
    ) -> Result<Bundle, OperationError> {
        let released = self.released(message.result_id).await?;
        let input = self.fhir_input(&released, &destination.mrn_system);
        fhir::transaction(&input, &message.control_id())
            .map_err(|e| OperationError::Conflict(e.to_string()))
    }

    /// The DiagnosticReport served for run `run_id` (clinicians and lab admins): its latest
    /// released version, final or corrected; not found when no version of it was released.
    /// Audited `run.result_view` from `fhir`.
    pub async fn fhir_report(
        &self,
        who: &Requester,
        run_id: RunId,
    ) -> Result<DiagnosticReport, OperationError> {
        who.require(Permission::ViewPatients)?;
        let run = self.store.run(run_id).await?;
        let report = self
            .served_report(run.id)
            .await?
            .ok_or_else(|| OperationError::NotFound {
                entity: "released result of run",
                key: run_id.to_string(),
            })?;
        let sample = self.store.sample(run.sample_id).await?;
        self.store
            .record_view(
                &who.actor(),
                AuditEntry::new("run.result_view", "run")
                    .id(run.id)
                    .detail(serde_json::json!({ "from": "fhir", "patient_id": sample.patient_id })),
            )
            .await?;
        Ok(report)
    }

    /// The DiagnosticReports served for the patient with MRN `mrn` (clinicians and lab
    /// admins): one per run with a released version, newest run first (at most
    /// [`MAX_SEARCHED_RUNS`]); none for an MRN no patient has (an MRN no patient could have is
    /// invalid). Audited `patient.view` from `fhir` (or `patient.lookup` when no patient has the
    /// MRN).
    pub async fn fhir_reports_of_patient(
        &self,
        who: &Requester,
        mrn: &str,
    ) -> Result<Vec<DiagnosticReport>, OperationError> {
        who.require(Permission::ViewPatients)?;
        let mrn = mrn.trim();
        if mrn.is_empty() {
            return Err(OperationError::invalid(
                "patient",
                "name the patient by MRN: ?patient=<MRN>",
            ));
        }
        let mrn = Mrn::parse(mrn).map_err(|e| OperationError::invalid("patient", e.to_string()))?;
        let patient = self.store.patient_by_mrn(&mrn).await?;
        let Some(patient) = patient else {
            self.store
                .record_view(
                    &who.actor(),
                    AuditEntry::new("patient.lookup", "patient").detail(serde_json::json!({
                        "mrn": mrn.as_str(), "found": false, "from": "fhir",
                    })),
                )
                .await?;
            return Ok(Vec::new());
        };
        let mut reports = Vec::new();
        let page = RunListPage::OfPatient {
            patient: patient.id,
            before: None,
        };
        for listed in self.store.run_list_page(page, MAX_SEARCHED_RUNS).await? {
            if let Some(report) = self.served_report(listed.run.id).await? {
                reports.push(report);
            }
        }
        self.store
            .record_view(
                &who.actor(),
                AuditEntry::new("patient.view", "patient")
                    .id(patient.id)
                    .detail(serde_json::json!({ "from": "fhir", "reports": reports.len() })),
            )
            .await?;
        Ok(reports)
    }

    /// The served report of a run: its latest version carrying a release signature, as
    /// released; `None` when no version was released.
    async fn served_report(
        &self,
        run_id: RunId,
    ) -> Result<Option<DiagnosticReport>, OperationError> {
        let versions = self.store.result_versions(run_id).await?;
        let Some(latest) = versions.iter().rev().find(|version| {
            version
                .signatures
                .iter()
                .any(|s| s.meaning == SignatureMeaning::Release)
        }) else {
            return Ok(None);
        };
        let released = self.released(latest.id).await?;
        // The appliance's own MRN system (a destination may name the hospital's).
        let input = self.fhir_input(&released, DEFAULT_MRN_SYSTEM);
        fhir::served_report(&input)
            .map(Some)
            .map_err(|e| OperationError::Conflict(e.to_string()))
    }
}

/// Delivers transaction Bundles to one FHIR server over HTTPS.
#[derive(Clone, Debug)]
pub struct FhirCourier {
    destination: FhirDestination,
    client: reqwest::Client,
}

/// Why a FHIR courier could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CourierError {
    /// The CA file cannot be read or holds no certificate.
    #[error("ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("the HTTPS client: {0}")]
    Client(String),
}

impl FhirCourier {
    /// A courier for `destination`: HTTPS only, trusting the hospital's CA (`ca_file`) instead
    /// of the system's roots when one is configured.
    pub fn new(destination: FhirDestination) -> Result<Self, CourierError> {
        let client =
            https_client(destination.timeout, destination.ca_file.as_deref()).map_err(|error| {
                match error {
                    HttpsClientError::CaFile { path, reason } => {
                        CourierError::CaFile { path, reason }
                    }
                    HttpsClientError::Build(reason) => CourierError::Client(reason),
                }
            })?;
        Ok(Self {
            destination,
            client,
        })
    }
}

impl Courier for FhirCourier {
    fn destination(&self) -> &str {
        &self.destination.name
    }

    async fn deliver(
        &mut self,
        ops: &Operations,
        message: &OutboxMessage,
    ) -> Result<Answer, NoAnswer> {
        let bundle = match ops.fhir_bundle_of(message, &self.destination).await {
            Ok(bundle) => bundle,
            Err(OperationError::Store(error)) => {
                return Err(NoAnswer(format!("the store could not be read: {error}")));
            }
            Err(refusal) => return Ok(Answer::Unsendable(refusal.to_string())),
        };
        let body = serde_json::to_vec(&bundle)
            .map_err(|e| NoAnswer(format!("the Bundle could not be written: {e}")))?;
        let token = std::fs::read_to_string(&self.destination.token_file).map_err(|e| {
            NoAnswer(format!(
                "token_file {}: {e}",
                self.destination.token_file.display()
            ))
        })?;
        let response = self
            .client
            .post(&self.destination.base_url)
            .header(reqwest::header::CONTENT_TYPE, FHIR_JSON)
            .header(reqwest::header::ACCEPT, FHIR_JSON)
            .bearer_auth(token.trim())
            .body(body)
            .send()
            .await
            .map_err(|e| NoAnswer(error_words(&e)))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| NoAnswer(error_words(&e)))?;
        judge_status(status, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_status_is_judged_as_the_outbox_needs() {
        let outcome = r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error",
            "code":"not-found","diagnostics":"no patient MRN-1 born 1961-04-23"}]}"#;
        assert_eq!(
            judge_status(200, "{}"),
            Ok(Answer::Accepted("HTTP 200".into()))
        );
        assert_eq!(
            judge_status(400, outcome),
            Ok(Answer::Rejected(
                "HTTP 400: error: no patient MRN-1 born 1961-04-23".into()
            ))
        );
        assert_eq!(
            judge_status(422, ""),
            Ok(Answer::Rejected("HTTP 422: no OperationOutcome".into()))
        );
        assert_eq!(
            judge_status(503, "busy"),
            Err(NoAnswer("HTTP 503: busy".into()))
        );
        assert!(
            judge_status(302, "").is_err(),
            "a redirect is not an answer"
        );
    }
}
