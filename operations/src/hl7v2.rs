//! An HL7 v2 destination: what the ORU^R01 of a released result says (each value taken from the
//! stored, released result version and its run, sample, patient and the site's configuration) and
//! its delivery over MLLP with the acknowledgement read.
//!
//! The result status (`F` for a first release, `C` for a released correction) is the one the
//! version carries as released ([`crate::reported::ResultStatus::as_released`], the same rule
//! the pages and the report follow). Not here: when to retry (the outbox's rule), the message
//! syntax (`appliance::interop`).

use std::time::Duration;

use appliance::interop::destination::DestinationConfig;
use appliance::interop::hl7::read_acknowledgement;
use appliance::interop::mllp;
use appliance::interop::oru::{
    LOINC_CTC_COUNT, Observation, ObservationValue, OruInput, ResultStatus, oru_r01,
};
use appliance::store::outbox::OutboxMessage;
use appliance::store::results::SignatureMeaning;

use crate::outbox::{Answer, Courier, NoAnswer};
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

/// HL7's result status for a released version's status (`None` for a preliminary one: nothing
/// is sent for it).
fn hl7_status(status: crate::reported::ResultStatus) -> Option<ResultStatus> {
    match status {
        crate::reported::ResultStatus::Final => Some(ResultStatus::Final),
        crate::reported::ResultStatus::Corrected => Some(ResultStatus::Corrected),
        crate::reported::ResultStatus::Preliminary => None,
    }
}

impl Operations {
    /// The ORU^R01 of an outbox message: the released result version it carries, as stored.
    pub async fn oru_r01_of(
        &self,
        message: &OutboxMessage,
        destination: &Hl7Destination,
    ) -> Result<String, OperationError> {
        let result = self.store.result_version(message.result_id).await?;
        let released = result
            .signatures
            .iter()
            .filter(|s| s.meaning == SignatureMeaning::Release)
            .map(|s| s.signed_at)
            .max()
            .ok_or_else(|| {
                OperationError::Conflict(format!(
                    "result {} carries no release signature: nothing is sent for it",
                    message.result_id
                ))
            })?;
        let run = self.store.run(message.run_id).await?;
        // The status this version carries as released: its own and its predecessors' signatures.
        let versions = self.store.result_versions(run.id).await?;
        let up_to = versions
            .iter()
            .position(|version| version.id == result.id)
            .map(|index| &versions[..=index])
            .unwrap_or_default();
        let status = crate::reported::ResultStatus::as_released(up_to)
            .and_then(hl7_status)
            .ok_or_else(|| {
                OperationError::Conflict(format!(
                    "result {} is not a released version of run {}: nothing is sent for it",
                    message.result_id, run.id
                ))
            })?;
        let sample = self.store.sample(run.sample_id).await?;
        let patient = self.store.patient(sample.patient_id).await?;
        let site = &self.settings.site;
        let report = &result.report;
        let per_7_5 = "/(7500.uL)";
        let number = |local_code, text, value, ucum| Observation {
            local_code,
            text,
            loinc: None,
            value: ObservationValue::Number { value, ucum },
        };
        let mut observations = vec![
            Observation {
                local_code: "FC-CTC75",
                text: "CTC per 7.5 mL",
                loinc: Some((LOINC_CTC_COUNT, "Circulating tumor cell number")),
                value: ObservationValue::Number {
                    value: report.per_7_5ml,
                    ucum: per_7_5,
                },
            },
            number(
                "FC-CTC75-L95",
                "CTC per 7.5 mL, 95 % interval low",
                report.per_7_5ml_ci95[0],
                per_7_5,
            ),
            number(
                "FC-CTC75-H95",
                "CTC per 7.5 mL, 95 % interval high",
                report.per_7_5ml_ci95[1],
                per_7_5,
            ),
            number("FC-CTCML", "CTC per mL", report.per_ml, "/mL"),
            number(
                "FC-CTCML-L95",
                "CTC per mL, 95 % interval low",
                report.per_ml_ci95[0],
                "/mL",
            ),
            number(
                "FC-CTCML-H95",
                "CTC per mL, 95 % interval high",
                report.per_ml_ci95[1],
                "/mL",
            ),
            Observation {
                local_code: "FC-CAT",
                text: "Reporting category",
                loinc: None,
                value: ObservationValue::Coded {
                    code: report.category.as_str().to_owned(),
                    text: report.category.as_str().replace('_', " "),
                },
            },
        ];
        if let Some(call) = report.call {
            observations.push(Observation {
                local_code: "FC-CALL",
                text: "Call against the cut-off",
                loinc: None,
                value: ObservationValue::Coded {
                    code: call.as_str().to_owned(),
                    text: call.as_str().to_owned(),
                },
            });
        }
        if let Some(cutoff) = report.cutoff_per_7_5ml {
            observations.push(number("FC-CUTOFF", "Cut-off per 7.5 mL", cutoff, per_7_5));
        }
        observations.push(number(
            "FC-DR2",
            "Delta R2 (quad-marker minus control)",
            report.delta_r2_per_s,
            "s-1",
        ));
        Ok(oru_r01(&OruInput {
            control_id: message.control_id(),
            message_time: released.datetime(),
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
            reported_at: released.datetime(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_released_statuses_have_an_hl7_status() {
        use crate::reported::ResultStatus as Reported;
        assert_eq!(hl7_status(Reported::Final), Some(ResultStatus::Final));
        assert_eq!(hl7_status(Reported::Corrected).map(|s| s.code()), Some("C"));
        assert_eq!(hl7_status(Reported::Preliminary), None);
    }
}
