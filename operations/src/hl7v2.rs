//! An HL7 v2 destination: what the ORU^R01 of a released result says (each value taken from the
//! stored, released result version and its run, sample, the patient's identifiers as released
//! and the site's configuration) and
//! its delivery over MLLP with the acknowledgement read.
//!
//! The result status (`F` for a first release, `C` for a released correction) is the one the
//! version carries as released ([`crate::reported::ResultStatus::as_released`], the same rule
//! the pages and the report follow); the values and observations are gathered for every format
//! by [`crate::released`]. Not here: when to retry (the outbox's rule), the message
//! syntax (`appliance::interop`).

use std::time::Duration;

use appliance::interop::destination::DestinationConfig;
use appliance::interop::hl7::read_acknowledgement;
use appliance::interop::mllp;
use appliance::interop::oru::{OruInput, oru_r01};
use appliance::store::outbox::OutboxMessage;

use crate::outbox::{Answer, Courier, NoAnswer};
use crate::released::Released;
use crate::{OperationError, Operations};

/// A configured HL7 v2 destination.
#[derive(Clone, Debug)]
pub struct Hl7Destination {
    /// Its name (the outbox rows').
    pub name: String,
    /// `host:port` of its MLLP listener.
    pub address: String,
    /// Plain TCP, or TLS with the configured CA and server name.
    pub link: mllp::Link,
    /// MSH-5.
    pub receiving_application: String,
    /// MSH-6.
    pub receiving_facility: String,
    /// MSH-4: this lab as the receiver knows it.
    pub sending_facility: String,
    /// PID-3.4: who assigns the medical record numbers.
    pub mrn_authority: String,
    /// How long to wait for a connection, and then for the acknowledgement.
    pub timeout: Duration,
}

impl Hl7Destination {
    /// The HL7 v2 destinations of the configuration, named as the outbox names them, each with
    /// its link (TLS reads the CA file now: an error names the destination and the key).
    pub fn configured(destinations: &[DestinationConfig]) -> Result<Vec<Self>, String> {
        destinations
            .iter()
            .enumerate()
            .filter_map(|(position, destination)| {
                let link = match destination.mllp_link() {
                    Ok(link) => link?,
                    Err(reason) => {
                        return Some(Err(format!(
                            "destinations[{position}] ({}): {reason}",
                            destination.name(position)
                        )));
                    }
                };
                Self::of(destination, position, link).map(Ok)
            })
            .collect()
    }

    fn of(destination: &DestinationConfig, position: usize, link: mllp::Link) -> Option<Self> {
        match destination {
            DestinationConfig::Hl7v2 {
                address,
                receiving_application,
                receiving_facility,
                sending_facility,
                mrn_authority,
                timeout_ms,
                ..
            } => Some(Self {
                name: destination.name(position),
                address: address.clone(),
                link,
                receiving_application: receiving_application.clone(),
                receiving_facility: receiving_facility.clone(),
                sending_facility: sending_facility.clone(),
                mrn_authority: mrn_authority.clone(),
                timeout: Duration::from_millis(*timeout_ms),
            }),
            DestinationConfig::Fhir { .. } => None,
        }
    }
}

impl Operations {
    /// The ORU^R01 of an outbox message: the released result version it carries, as stored
    /// (what it says is gathered by [`Operations::released`], shared with FHIR).
    pub async fn oru_r01_of(
        &self,
        message: &OutboxMessage,
        destination: &Hl7Destination,
    ) -> Result<String, OperationError> {
        let Released {
            released_at,
            status,
            run,
            sample,
            patient,
            observations,
            ..
        } = self.released(message.result_id).await?;
        let site = &self.settings.site;
        Ok(oru_r01(&OruInput {
            control_id: message.control_id(),
            message_time: released_at.datetime(),
            sending_facility: destination.sending_facility.clone(),
            lab_name: site.lab_name.clone(),
            lab_address: site.lab_address.clone(),
            receiving_application: destination.receiving_application.clone(),
            receiving_facility: destination.receiving_facility.clone(),
            mrn: patient.mrn.as_str().to_owned(),
            mrn_authority: destination.mrn_authority.clone(),
            patient_name: patient
                .name
                .as_ref()
                .map(|name| (name.as_str().to_owned(), String::new())),
            birth_date: patient.birth_date.map(|b| b.date()),
            accession: sample.accession.as_str().to_owned(),
            filler_order: format!("RUN-{}", run.id),
            drawn_at: sample.drawn_at.datetime(),
            reported_at: released_at.datetime(),
            analysed_at: run.finished_at.map(|t| t.datetime()),
            status,
            instrument_serial: site.instrument_serial.clone(),
            observations,
        }))
    }
}

/// Delivers ORU^R01 messages to one HL7 v2 destination over MLLP.
#[derive(Clone, Debug)]
pub struct Hl7Courier {
    /// Where.
    pub destination: Hl7Destination,
}

impl Courier for Hl7Courier {
    fn destination(&self) -> &str {
        &self.destination.name
    }

    async fn deliver(
        &mut self,
        ops: &Operations,
        message: &OutboxMessage,
    ) -> Result<Answer, NoAnswer> {
        let text = match ops.oru_r01_of(message, &self.destination).await {
            Ok(text) => text,
            Err(OperationError::Store(error)) => {
                return Err(NoAnswer(format!("the store could not be read: {error}")));
            }
            Err(refusal) => return Ok(Answer::Unsendable(refusal.to_string())),
        };
        let destination = &self.destination;
        let answer = mllp::send(
            &destination.address,
            &destination.link,
            &text,
            destination.timeout,
        )
        .await
        .map_err(|e| NoAnswer(e.to_string()))?;
        let control_id = message.control_id();
        let ack = read_acknowledgement(&answer)
            .ok_or_else(|| NoAnswer("an answer without an acknowledgement code".into()))?;
        if ack.control_id != control_id {
            return Err(NoAnswer(format!(
                "an acknowledgement of {:?}, not of {control_id}",
                ack.control_id
            )));
        }
        let detail = if ack.text.is_empty() {
            ack.code.clone()
        } else {
            format!("{}: {}", ack.code, ack.text)
        };
        match ack.code.as_str() {
            "AA" | "CA" => Ok(Answer::Accepted(detail)),
            "AE" | "CE" => Ok(Answer::Error(detail)),
            "AR" | "CR" => Ok(Answer::Rejected(detail)),
            _ => Err(NoAnswer(format!(
                "an unknown acknowledgement code: {detail}"
            ))),
        }
    }
}
