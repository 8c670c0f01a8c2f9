//! What a message to the hospital says about one released result version, gathered once for
//! every format: the stored version, its release time and status as released, its run, sample and
//! patient, and the observations sent — the one list the HL7 v2 ORU^R01 (`crate::hl7v2`) and the
//! FHIR R4 resources (`crate::fhir`) both carry.
//!
//! The rules here: only a version that carries a release signature is sent or served (`F`/`final`
//! for a first release, `C`/`corrected` for a released correction:
//! [`crate::reported::ResultStatus::as_released`]); the values are the stored report's, never
//! re-rounded; the patient's identifiers (MRN, date of birth, name and initials where the site
//! keeps them) are the ones taken with the version's release, not the record as it stands when
//! the message is sent; the call is the call as reported ([`crate::reported::reported_call`]:
//! indeterminate when the 95 % interval contains the cut-off). Not here: the syntax of each format
//! (`appliance::interop`), delivery (`crate::outbox`).

use appliance::interop::oru::{LOINC_CTC_COUNT, Observation, ObservationValue, ResultStatus};
use appliance::store::ResultId;
use appliance::store::Timestamp;
use appliance::store::patients::ReleasedIdentifiers;
use appliance::store::results::{ResultVersion, SignatureMeaning};
use appliance::store::runs::Run;
use appliance::store::samples::Sample;

use crate::{OperationError, Operations};

/// One released result version and everything a message about it says.
#[derive(Clone, Debug, PartialEq)]
pub struct Released {
    /// The version as stored.
    pub result: ResultVersion,
    /// When it was released (its latest release signature).
    pub released_at: Timestamp,
    /// Final or corrected, as released.
    pub status: ResultStatus,
    /// Its run.
    pub run: Run,
    /// The run's sample.
    pub sample: Sample,
    /// Whose: the patient's identifiers as they stood at this version's release (a later change
    /// to the patient's record is not what was released).
    pub patient: ReleasedIdentifiers,
    /// The observations sent, in order.
    pub observations: Vec<Observation>,
}

/// The message status of a released version's status (`None` for a preliminary one: nothing is
/// sent or served for it).
pub fn message_status(status: crate::reported::ResultStatus) -> Option<ResultStatus> {
    match status {
        crate::reported::ResultStatus::Final => Some(ResultStatus::Final),
        crate::reported::ResultStatus::Corrected => Some(ResultStatus::Corrected),
        crate::reported::ResultStatus::Preliminary => None,
    }
}

/// The observations a message carries for `result`, in the ORU's OBX order: the count per 7.5 mL
/// (with the LOINC code) and its 95 % interval, the count per mL and its interval, the reporting
/// category, the call as reported with its cut-off (when there is a call), ΔR2.
pub fn observations(result: &ResultVersion) -> Vec<Observation> {
    let report = &result.report;
    let per_7_5 = "/(7500.uL)";
    let number = |local_code, text, value, ucum, part_of| Observation {
        local_code,
        text,
        loinc: None,
        value: ObservationValue::Number { value, ucum },
        part_of,
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
            part_of: None,
        },
        number(
            "FC-CTC75-L95",
            "CTC per 7.5 mL, 95 % interval low",
            report.per_7_5ml_ci95[0],
            per_7_5,
            Some("FC-CTC75"),
        ),
        number(
            "FC-CTC75-H95",
            "CTC per 7.5 mL, 95 % interval high",
            report.per_7_5ml_ci95[1],
            per_7_5,
            Some("FC-CTC75"),
        ),
        number("FC-CTCML", "CTC per mL", report.per_ml, "/mL", None),
        number(
            "FC-CTCML-L95",
            "CTC per mL, 95 % interval low",
            report.per_ml_ci95[0],
            "/mL",
            Some("FC-CTCML"),
        ),
        number(
            "FC-CTCML-H95",
            "CTC per mL, 95 % interval high",
            report.per_ml_ci95[1],
            "/mL",
            Some("FC-CTCML"),
        ),
        Observation {
            local_code: "FC-CAT",
            text: "Reporting category",
            loinc: None,
            value: ObservationValue::Coded {
                code: report.category.as_str().to_owned(),
                text: report.category.as_str().replace('_', " "),
            },
            part_of: None,
        },
    ];
    if let Some(call) = crate::reported::reported_call(&result.summary) {
        observations.push(Observation {
            local_code: "FC-CALL",
            text: "Call against the cut-off",
            loinc: None,
            value: ObservationValue::Coded {
                code: call.as_str().to_owned(),
                text: call.as_str().to_owned(),
            },
            part_of: None,
        });
    }
    if let Some(cutoff) = report.cutoff_per_7_5ml {
        observations.push(number(
            "FC-CUTOFF",
            "Cut-off per 7.5 mL",
            cutoff,
            per_7_5,
            Some("FC-CALL"),
        ));
    }
    observations.push(number(
        "FC-DR2",
        "Delta R2 (quad-marker minus control)",
        report.delta_r2_per_s,
        "s-1",
        None,
    ));
    observations
}

impl Operations {
    /// The released result version `result_id` and what a message about it says; refused
    /// (`Conflict`) when the version carries no release signature.
    pub async fn released(&self, result_id: ResultId) -> Result<Released, OperationError> {
        let result = self.store.result_version(result_id).await?;
        let released_at = result
            .signatures
            .iter()
            .filter(|s| s.meaning == SignatureMeaning::Release)
            .map(|s| s.signed_at)
            .max()
            .ok_or_else(|| {
                OperationError::Conflict(format!(
                    "result {result_id} carries no release signature: nothing is sent for it"
                ))
            })?;
        let run = self.store.run(result.run_id).await?;
        // The status this version carries as released: its own and its predecessors' signatures.
        let versions = self.store.result_versions(run.id).await?;
        let up_to = versions
            .iter()
            .position(|version| version.id == result.id)
            .map(|index| &versions[..=index])
            .unwrap_or_default();
        let status = crate::reported::ResultStatus::as_released(up_to)
            .and_then(message_status)
            .ok_or_else(|| {
                OperationError::Conflict(format!(
                    "result {result_id} is not a released version of run {}: nothing is sent for it",
                    run.id
                ))
            })?;
        let sample = self.store.sample(run.sample_id).await?;
        let patient = self.store.released_identifiers(result.id).await?;
        let observations = observations(&result);
        Ok(Released {
            result,
            released_at,
            status,
            run,
            sample,
            patient,
            observations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_released_statuses_have_a_message_status() {
        use crate::reported::ResultStatus as Reported;
        assert_eq!(message_status(Reported::Final), Some(ResultStatus::Final));
        assert_eq!(
            message_status(Reported::Corrected).map(|s| s.code()),
            Some("C")
        );
        assert_eq!(message_status(Reported::Preliminary), None);
    }
}
