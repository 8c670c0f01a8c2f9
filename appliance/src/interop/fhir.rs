//! The HL7 FHIR R4 resources of one released result: a `transaction` Bundle to post to the
//! hospital's FHIR server, and the same resources as one `DiagnosticReport` (the others
//! contained) for the appliance's own read-only `/fhir` routes.
//!
//! What it is for: turning the typed values of one released result version ([`FhirInput`]) into
//! FHIR JSON, shaped as US Core's laboratory result profile asks (category `laboratory` / `LAB`,
//! a LOINC code, UCUM units) with the local code beside the LOINC code and the method, the
//! observations the HL7 v2 ORU^R01 sends (the same [`Observation`] list: a 95 % interval limit or
//! a cut-off is a `component` of the observation it qualifies here, its own OBX there). Numbers are
//! written exactly as released: a FHIR decimal is the shortest text that reads back to the same
//! `f64` ([`Decimal`]), never re-rounded. What it is not for: deciding what is released, what a
//! result's status is, or when and where it is sent (the operations layer and the outbox).
//!
//! How the transaction stays safe to repeat (a retry after a lost answer, a correction):
//! the `DiagnosticReport` and each `Observation` are conditional updates by their identifier (the
//! run, and the run plus the local code), so a correction replaces the same resources with status
//! `corrected`; the `Specimen` and `Device`s are conditional creates (`ifNoneExist`) by identifier;
//! the patient is never created: the subject is a conditional reference by both identifiers (the
//! MRN and the date of birth), so a patient the hospital does not know, or knows with another date
//! of birth, makes the server refuse the transaction rather than file the result under someone.

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::oru::{LOINC_CTC_COUNT, Observation, ObservationValue, ResultStatus, number};

/// The code system of the appliance's local codes (`FC-CTC75`, …).
pub const LOCAL_CODES: &str = "urn:ferrocount:code";
/// The identifier system of the runs (the filler order number, `RUN-<id>`, as in ORC-3).
pub const RUN_IDENTIFIERS: &str = "urn:ferrocount:run";
/// The identifier system of the observations (`RUN-<id>/<local code>`).
pub const OBSERVATION_IDENTIFIERS: &str = "urn:ferrocount:observation";
/// The identifier system of the accession numbers.
pub const ACCESSION_IDENTIFIERS: &str = "urn:ferrocount:accession";
/// The identifier system of the appliances' serial numbers.
pub const SERIAL_IDENTIFIERS: &str = "urn:ferrocount:serial";
/// The identifier system of the reagent lots.
pub const LOT_IDENTIFIERS: &str = "urn:ferrocount:reagent-lot";
/// UCUM.
pub const UCUM: &str = "http://unitsofmeasure.org";
/// LOINC.
pub const LOINC: &str = "http://loinc.org";
/// The MIME type of FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json";

const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const DIAGNOSTIC_SERVICE: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
const IDENTIFIER_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
const SNOMED: &str = "http://snomed.info/sct";

/// Everything the FHIR resources of one released result say, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct FhirInput {
    /// The run (`RUN-<id>`): the DiagnosticReport's identifier, the filler order number.
    pub filler_order: String,
    /// The id the appliance serves the DiagnosticReport under (`/fhir/DiagnosticReport/{id}`).
    pub report_id: String,
    /// `final` or `corrected`.
    pub status: ResultStatus,
    /// The medical record number.
    pub mrn: String,
    /// Its identifier system (the hospital's MRN system URI).
    pub mrn_system: String,
    /// The second identifier, the date of birth.
    pub birth_date: Option<time::Date>,
    /// The accession number.
    pub accession: String,
    /// When the blood was drawn (`effectiveDateTime`, the specimen's collection).
    pub drawn_at: OffsetDateTime,
    /// When the result was released (`issued`).
    pub reported_at: OffsetDateTime,
    /// The performing laboratory's name.
    pub lab_name: String,
    /// The appliance's serial number.
    pub instrument_serial: String,
    /// The appliance's software version.
    pub software_version: String,
    /// The reagent lot the run used, when recorded.
    pub reagent_lot: Option<String>,
    /// The observations, in the ORU's order.
    pub observations: Vec<Observation>,
}

/// Why FHIR resources could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FhirError {
    /// A number is not finite (a stored result never holds one).
    #[error("{0} is not a finite number: no FHIR decimal holds it")]
    NotFinite(String),
}

/// A FHIR decimal: written as the shortest decimal text that reads back to the same `f64` (as the
/// ORU's NM), never re-rounded and never with an exponent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decimal(f64);

impl Decimal {
    /// `value`, when finite.
    pub fn new(value: f64) -> Result<Self, FhirError> {
        if value.is_finite() {
            Ok(Self(value))
        } else {
            Err(FhirError::NotFinite(value.to_string()))
        }
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(number(self.0))
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// A Coding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coding {
    /// The code system.
    pub system: String,
    /// The code.
    pub code: String,
    /// Its text.
    pub display: String,
}

/// A CodeableConcept.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CodeableConcept {
    /// The codings.
    pub coding: Vec<Coding>,
    /// The text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// An Identifier.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Identifier {
    /// What kind of identifier (`MR`, `ACSN`, …).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<CodeableConcept>,
    /// Its system.
    pub system: String,
    /// Its value.
    pub value: String,
}

/// A Reference: a literal reference, or a logical one by identifier.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reference {
    /// `urn:uuid:…`, `#id`, or a conditional `Patient?identifier=…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The identifier of what is referred to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// Text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Reference {
    fn to(reference: String) -> Self {
        Self {
            reference: Some(reference),
            identifier: None,
            display: None,
        }
    }
}

/// A Quantity with a UCUM unit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quantity {
    /// The value, as released.
    pub value: Decimal,
    /// The unit (its UCUM code).
    pub unit: String,
    /// UCUM.
    pub system: String,
    /// The UCUM code.
    pub code: String,
}

/// An Observation's or component's value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Value {
    /// A number with its unit.
    #[serde(rename = "valueQuantity")]
    Quantity(Quantity),
    /// A coded value.
    #[serde(rename = "valueCodeableConcept")]
    Coded(CodeableConcept),
}

/// An Observation's component.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Component {
    /// What it is.
    pub code: CodeableConcept,
    /// Its value.
    #[serde(flatten)]
    pub value: Value,
}

/// A Bundle entry's request.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// `POST` or `PUT`.
    pub method: &'static str,
    /// The type, or a conditional update's search.
    pub url: String,
    /// A conditional create's search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_none_exist: Option<String>,
}

/// One resource (serialised with its `resourceType`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "resourceType")]
#[allow(clippy::large_enum_variant)]
pub enum Resource {
    /// The report.
    DiagnosticReport(DiagnosticReport),
    /// One observation.
    Observation(FhirObservation),
    /// The specimen.
    Specimen(Specimen),
    /// The appliance, or the reagent lot.
    Device(Device),
    /// Which appliance made the report with which reagent lot.
    Provenance(Provenance),
}

/// A DiagnosticReport.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticReport {
    /// Its id on the appliance (only in what the appliance serves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The other resources, in what the appliance serves.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contained: Vec<Resource>,
    /// The run and the accession number.
    pub identifier: Vec<Identifier>,
    /// `final` or `corrected`.
    pub status: &'static str,
    /// `LAB`.
    pub category: Vec<CodeableConcept>,
    /// The LOINC and local codes of the test.
    pub code: CodeableConcept,
    /// The patient.
    pub subject: Reference,
    /// The draw time.
    pub effective_date_time: String,
    /// The release time.
    pub issued: String,
    /// The performing laboratory.
    pub performer: Vec<Reference>,
    /// The specimen.
    pub specimen: Vec<Reference>,
    /// The observations.
    pub result: Vec<Reference>,
}

/// An Observation.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FhirObservation {
    /// Its id inside the served report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The run and the local code.
    pub identifier: Vec<Identifier>,
    /// `final` or `corrected`.
    pub status: &'static str,
    /// `laboratory`.
    pub category: Vec<CodeableConcept>,
    /// LOINC (where there is one) and the local code.
    pub code: CodeableConcept,
    /// The patient.
    pub subject: Reference,
    /// The draw time.
    pub effective_date_time: String,
    /// The release time.
    pub issued: String,
    /// The value.
    #[serde(flatten)]
    pub value: Value,
    /// The method (micro-NMR ΔR2, quad-marker).
    pub method: CodeableConcept,
    /// The specimen.
    pub specimen: Reference,
    /// The appliance.
    pub device: Reference,
    /// The observations that qualify it (95 % interval limits, a cut-off).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub component: Vec<Component>,
}

/// The collection of a Specimen.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    /// The draw time.
    pub collected_date_time: String,
}

/// A Specimen.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Specimen {
    /// Its id inside the served report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The accession number.
    pub identifier: Vec<Identifier>,
    /// The accession number.
    pub accession_identifier: Identifier,
    /// Blood.
    #[serde(rename = "type")]
    pub kind: CodeableConcept,
    /// The patient.
    pub subject: Reference,
    /// When drawn.
    pub collection: Collection,
}

/// A Device's name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceName {
    /// The name.
    pub name: String,
    /// `model-name`, `user-friendly-name`, …
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A Device's version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceVersion {
    /// The version.
    pub value: String,
}

/// A Device: the appliance, or a reagent lot.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Its id inside the served report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The serial number or the lot.
    pub identifier: Vec<Identifier>,
    /// Its serial number (the appliance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Its lot (the reagent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lot_number: Option<String>,
    /// Its name.
    pub device_name: Vec<DeviceName>,
    /// What kind of device.
    #[serde(rename = "type")]
    pub kind: CodeableConcept,
    /// Its software version (the appliance).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub version: Vec<DeviceVersion>,
}

/// A Provenance agent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProvenanceAgent {
    /// The appliance.
    pub who: Reference,
}

/// A Provenance entity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProvenanceEntity {
    /// `source`.
    pub role: &'static str,
    /// The reagent lot.
    pub what: Reference,
}

/// A Provenance: the report was made by the appliance from the reagent lot (FHIR R4 has no
/// element of an Observation or a DiagnosticReport for a reagent).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Provenance {
    /// Its id inside the served report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The report.
    pub target: Vec<Reference>,
    /// The release time.
    pub recorded: String,
    /// The appliance.
    pub agent: Vec<ProvenanceAgent>,
    /// The reagent lot.
    pub entity: Vec<ProvenanceEntity>,
}

/// A Bundle entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// `urn:uuid:…` (a transaction) or the resource's URL (a search).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    /// The resource.
    pub resource: Resource,
    /// What to do with it (a transaction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// Why it is in a search set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchMode>,
}

/// A search entry's mode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchMode {
    /// `match`.
    pub mode: &'static str,
}

/// A Bundle's identifier (the outbox message's control id: the receiver may de-duplicate by it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BundleIdentifier {
    /// Its system.
    pub system: &'static str,
    /// The control id.
    pub value: String,
}

/// A Bundle's link.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    /// `self`.
    pub relation: &'static str,
    /// The URL.
    pub url: String,
}

/// A Bundle: a `transaction` (sent) or a `searchset` (served).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "resourceType", rename = "Bundle")]
pub struct Bundle {
    /// The message's control id (a transaction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<BundleIdentifier>,
    /// `transaction` or `searchset`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When it was made (a transaction: the release time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// How many matched (a search set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    /// The search's own URL (a search set).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<Link>,
    /// The entries.
    pub entry: Vec<Entry>,
}

/// The identifier system of the outbox messages' control ids.
pub const CONTROL_IDS: &str = "urn:ferrocount:control-id";

/// A FHIR `instant` / `dateTime`, UTC to the second.
pub fn instant(at: OffsetDateTime) -> String {
    let at = at
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at);
    at.format(&Rfc3339).unwrap_or_default()
}

/// FHIR's status of a released version.
pub fn status_code(status: ResultStatus) -> &'static str {
    match status {
        ResultStatus::Final => "final",
        ResultStatus::Corrected => "corrected",
    }
}

fn coding(system: &str, code: &str, display: &str) -> Coding {
    Coding {
        system: system.to_owned(),
        code: code.to_owned(),
        display: display.to_owned(),
    }
}

fn concept(coding: Vec<Coding>, text: &str) -> CodeableConcept {
    CodeableConcept {
        coding,
        text: Some(text.to_owned()),
    }
}

fn identifier(system: &str, value: &str) -> Identifier {
    Identifier {
        kind: None,
        system: system.to_owned(),
        value: value.to_owned(),
    }
}

fn observation_code(observation: &Observation) -> CodeableConcept {
    let mut codings = Vec::new();
    if let Some((code, text)) = observation.loinc {
        codings.push(coding(LOINC, code, text));
    }
    codings.push(coding(
        LOCAL_CODES,
        observation.local_code,
        observation.text,
    ));
    concept(codings, observation.text)
}

fn value_of(observation: &Observation) -> Result<Value, FhirError> {
    Ok(match &observation.value {
        ObservationValue::Number { value, ucum } => Value::Quantity(Quantity {
            value: Decimal::new(*value)
                .map_err(|_| FhirError::NotFinite(observation.local_code.to_owned()))?,
            unit: (*ucum).to_owned(),
            system: UCUM.to_owned(),
            code: (*ucum).to_owned(),
        }),
        ObservationValue::Coded { code, text } => {
            Value::Coded(concept(vec![coding(LOCAL_CODES, code, text)], text))
        }
    })
}

/// The report's test code: LOINC and the local code, as OBR-4.
fn report_code() -> CodeableConcept {
    concept(
        vec![
            coding(LOINC, LOINC_CTC_COUNT, "Circulating tumor cell number"),
            coding(LOCAL_CODES, "FC-CTC", "CTC count by micro-NMR"),
        ],
        "CTC count by micro-NMR",
    )
}

/// How the resources refer to each other: by `urn:uuid` inside a transaction, by `#id` inside the
/// served report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Linking<'a> {
    /// Inside a transaction Bundle: fullUrls made from this key.
    Transaction(&'a str),
    /// Contained in the served DiagnosticReport.
    Contained,
}

impl Linking<'_> {
    fn reference(self, local: &str) -> String {
        match self {
            Self::Transaction(key) => urn_uuid(key, local),
            Self::Contained => format!("#{local}"),
        }
    }

    fn id(self, local: &str) -> Option<String> {
        match self {
            Self::Transaction(_) => None,
            Self::Contained => Some(local.to_owned()),
        }
    }
}

/// A `urn:uuid` that is the same for the same key and local name (every attempt of a message
/// is the same text): a name-based UUID (version 8) from SHA-256.
pub fn urn_uuid(key: &str, local: &str) -> String {
    let digest = Sha256::digest(format!("ferrocount/{key}/{local}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// One resource to file: its local name, itself, and the request that files it.
type Filed = (String, Resource, Request);

/// The resources of one released result, and the requests that file them, in filing order:
/// those the report refers to, the report, those that refer to the report.
struct Made {
    before: Vec<Filed>,
    report: (DiagnosticReport, Request),
    after: Vec<Filed>,
}

fn patient_reference(input: &FhirInput, linking: Linking<'_>) -> Reference {
    match linking {
        Linking::Transaction(_) => {
            let mut search = format!("Patient?identifier={}|{}", input.mrn_system, input.mrn);
            if let Some(date) = input.birth_date {
                search.push_str(&format!(
                    "&birthdate={:04}-{:02}-{:02}",
                    date.year(),
                    u8::from(date.month()),
                    date.day()
                ));
            }
            Reference::to(search)
        }
        Linking::Contained => Reference {
            reference: None,
            identifier: Some(Identifier {
                kind: Some(concept(
                    vec![coding(IDENTIFIER_TYPE, "MR", "Medical record number")],
                    "MRN",
                )),
                system: input.mrn_system.clone(),
                value: input.mrn.clone(),
            }),
            display: None,
        },
    }
}

fn made(input: &FhirInput, linking: Linking<'_>) -> Result<Made, FhirError> {
    let status = status_code(input.status);
    let drawn = instant(input.drawn_at);
    let issued = instant(input.reported_at);
    let subject = patient_reference(input, linking);
    let appliance_ref = Reference::to(linking.reference("device"));
    let specimen_ref = Reference::to(linking.reference("specimen"));
    let mut entries = Vec::new();

    let appliance = Device {
        id: linking.id("device"),
        identifier: vec![identifier(SERIAL_IDENTIFIERS, &input.instrument_serial)],
        serial_number: Some(input.instrument_serial.clone()),
        lot_number: None,
        device_name: vec![DeviceName {
            name: "Ferrocount".to_owned(),
            kind: "model-name",
        }],
        kind: concept(Vec::new(), "Micro-NMR circulating tumour cell counter"),
        version: vec![DeviceVersion {
            value: input.software_version.clone(),
        }],
    };
    entries.push((
        "device".to_owned(),
        Resource::Device(appliance),
        Request {
            method: "POST",
            url: "Device".to_owned(),
            if_none_exist: Some(format!(
                "identifier={SERIAL_IDENTIFIERS}|{}",
                input.instrument_serial
            )),
        },
    ));
    if let Some(lot) = &input.reagent_lot {
        entries.push((
            "reagent-lot".to_owned(),
            Resource::Device(Device {
                id: linking.id("reagent-lot"),
                identifier: vec![identifier(LOT_IDENTIFIERS, lot)],
                serial_number: None,
                lot_number: Some(lot.clone()),
                device_name: vec![DeviceName {
                    name: "Ferrocount quad-marker reagent".to_owned(),
                    kind: "model-name",
                }],
                kind: concept(Vec::new(), "Reagent lot"),
                version: Vec::new(),
            }),
            Request {
                method: "POST",
                url: "Device".to_owned(),
                if_none_exist: Some(format!("identifier={LOT_IDENTIFIERS}|{lot}")),
            },
        ));
    }
    let accession = identifier(ACCESSION_IDENTIFIERS, &input.accession);
    entries.push((
        "specimen".to_owned(),
        Resource::Specimen(Specimen {
            id: linking.id("specimen"),
            identifier: vec![accession.clone()],
            accession_identifier: accession.clone(),
            kind: concept(vec![coding(SNOMED, "119297000", "Blood specimen")], "Blood"),
            subject: subject.clone(),
            collection: Collection {
                collected_date_time: drawn.clone(),
            },
        }),
        Request {
            method: "POST",
            url: "Specimen".to_owned(),
            if_none_exist: Some(format!(
                "identifier={ACCESSION_IDENTIFIERS}|{}",
                input.accession
            )),
        },
    ));

    let method = concept(
        vec![coding(
            LOCAL_CODES,
            "FC-UNMR-DR2",
            "Micro-NMR dR2, quad-marker",
        )],
        "Micro-NMR dR2, quad-marker",
    );
    let category = vec![concept(
        vec![coding(OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
        "Laboratory",
    )];
    let has_parent = |o: &Observation| {
        o.part_of.is_some_and(|parent| {
            input
                .observations
                .iter()
                .any(|other| other.local_code == parent)
        })
    };
    let mut results = Vec::new();
    for observation in input.observations.iter().filter(|o| !has_parent(o)) {
        let local = format!("obs-{}", observation.local_code.to_ascii_lowercase());
        let mut component = Vec::new();
        for part in input
            .observations
            .iter()
            .filter(|o| o.part_of == Some(observation.local_code))
        {
            component.push(Component {
                code: observation_code(part),
                value: value_of(part)?,
            });
        }
        let value = format!("{}/{}", input.filler_order, observation.local_code);
        results.push(Reference::to(linking.reference(&local)));
        entries.push((
            local.clone(),
            Resource::Observation(FhirObservation {
                id: linking.id(&local),
                identifier: vec![identifier(OBSERVATION_IDENTIFIERS, &value)],
                status,
                category: category.clone(),
                code: observation_code(observation),
                subject: subject.clone(),
                effective_date_time: drawn.clone(),
                issued: issued.clone(),
                value: value_of(observation)?,
                method: method.clone(),
                specimen: specimen_ref.clone(),
                device: appliance_ref.clone(),
                component,
            }),
            Request {
                method: "PUT",
                url: format!("Observation?identifier={OBSERVATION_IDENTIFIERS}|{value}"),
                if_none_exist: None,
            },
        ));
    }
    let mut accession_type = accession.clone();
    accession_type.kind = Some(concept(
        vec![coding(IDENTIFIER_TYPE, "ACSN", "Accession ID")],
        "Accession",
    ));
    let report = (
        DiagnosticReport {
            id: None,
            contained: Vec::new(),
            identifier: vec![
                identifier(RUN_IDENTIFIERS, &input.filler_order),
                accession_type,
            ],
            status,
            category: vec![concept(
                vec![coding(DIAGNOSTIC_SERVICE, "LAB", "Laboratory")],
                "Laboratory",
            )],
            code: report_code(),
            subject,
            effective_date_time: drawn,
            issued: issued.clone(),
            performer: vec![Reference {
                reference: None,
                identifier: None,
                display: Some(input.lab_name.clone()),
            }],
            specimen: vec![specimen_ref],
            result: results,
        },
        Request {
            method: "PUT",
            url: format!(
                "DiagnosticReport?identifier={RUN_IDENTIFIERS}|{}",
                input.filler_order
            ),
            if_none_exist: None,
        },
    );
    let mut after = Vec::new();
    if input.reagent_lot.is_some() {
        let target = match linking {
            Linking::Transaction(_) => linking.reference("report"),
            Linking::Contained => "#".to_owned(),
        };
        after.push((
            "provenance".to_owned(),
            Resource::Provenance(Provenance {
                id: linking.id("provenance"),
                target: vec![Reference::to(target)],
                recorded: issued.clone(),
                agent: vec![ProvenanceAgent { who: appliance_ref }],
                entity: vec![ProvenanceEntity {
                    role: "source",
                    what: Reference::to(linking.reference("reagent-lot")),
                }],
            }),
            Request {
                method: "POST",
                url: "Provenance".to_owned(),
                if_none_exist: Some(format!(
                    "target:DiagnosticReport.identifier={RUN_IDENTIFIERS}|{}&recorded={issued}",
                    input.filler_order
                )),
            },
        ));
    }
    Ok(Made {
        before: entries,
        report,
        after,
    })
}

/// The transaction Bundle that files one released result on a FHIR server. `control_id` is the
/// outbox message's (the Bundle's identifier, and the key of its `urn:uuid`s: every attempt of a
/// message is the same text).
pub fn transaction(input: &FhirInput, control_id: &str) -> Result<Bundle, FhirError> {
    let linking = Linking::Transaction(control_id);
    let Made {
        before,
        report: (report, request),
        after,
    } = made(input, linking)?;
    let filed = before
        .into_iter()
        .chain([(
            "report".to_owned(),
            Resource::DiagnosticReport(report),
            request,
        )])
        .chain(after);
    Ok(Bundle {
        identifier: Some(BundleIdentifier {
            system: CONTROL_IDS,
            value: control_id.to_owned(),
        }),
        kind: "transaction",
        timestamp: Some(instant(input.reported_at)),
        total: None,
        link: Vec::new(),
        entry: filed
            .map(|(local, resource, request)| Entry {
                full_url: Some(linking.reference(&local)),
                resource,
                request: Some(request),
                search: None,
            })
            .collect(),
    })
}

/// The DiagnosticReport the appliance serves for one released result, the other resources
/// contained, its subject the patient by identifier (serialise it as a
/// [`Resource::DiagnosticReport`], which names its `resourceType`).
pub fn served_report(input: &FhirInput) -> Result<DiagnosticReport, FhirError> {
    let Made {
        before,
        report: (mut report, _),
        after,
    } = made(input, Linking::Contained)?;
    report.id = Some(input.report_id.clone());
    report.contained = before
        .into_iter()
        .chain(after)
        .map(|(_, resource, _)| resource)
        .collect();
    Ok(report)
}

/// A `searchset` Bundle of served reports; `self_url` is the search as asked, `base` the
/// server's base URL (`…/fhir`).
pub fn searchset(reports: Vec<DiagnosticReport>, base: &str, self_url: String) -> Bundle {
    Bundle {
        identifier: None,
        kind: "searchset",
        timestamp: None,
        total: Some(reports.len()),
        link: vec![Link {
            relation: "self",
            url: self_url,
        }],
        entry: reports
            .into_iter()
            .map(|report| Entry {
                full_url: report
                    .id
                    .as_ref()
                    .map(|id| format!("{base}/DiagnosticReport/{id}")),
                resource: Resource::DiagnosticReport(report),
                request: None,
                search: Some(SearchMode { mode: "match" }),
            })
            .collect(),
    }
}

/// The text of an OperationOutcome (its issues' `diagnostics` and `details.text`, joined), when
/// `body` is one: what a FHIR server says about a refused transaction.
pub fn operation_outcome_text(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let object = value.as_object()?;
    if object.get("resourceType")?.as_str()? != "OperationOutcome" {
        return None;
    }
    let texts: Vec<String> = object
        .get("issue")?
        .as_array()?
        .iter()
        .filter_map(|issue| {
            let issue = issue.as_object()?;
            let severity = issue.get("severity").and_then(|s| s.as_str()).unwrap_or("");
            let words: Vec<&str> = [
                issue
                    .get("details")
                    .and_then(|d| d.get("text"))
                    .and_then(|t| t.as_str()),
                issue.get("diagnostics").and_then(|d| d.as_str()),
            ]
            .into_iter()
            .flatten()
            .collect();
            (!words.is_empty()).then(|| format!("{severity}: {}", words.join(" — ")))
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("; "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::{date, datetime};

    pub(crate) fn input() -> FhirInput {
        let number = |local_code, value: f64, ucum, part_of| Observation {
            local_code,
            text: local_code,
            loinc: None,
            value: ObservationValue::Number { value, ucum },
            part_of,
        };
        FhirInput {
            filler_order: "RUN-3".into(),
            report_id: "3".into(),
            status: ResultStatus::Final,
            mrn: "MRN-42".into(),
            mrn_system: "urn:oid:1.2.3".into(),
            birth_date: Some(date!(1961 - 04 - 23)),
            accession: "ACC-7".into(),
            drawn_at: datetime!(2026-11-20 08:30:00.25 UTC),
            reported_at: datetime!(2026-11-20 14:05:09 +01:00),
            lab_name: "St. Example Lab".into(),
            instrument_serial: "FC-0001".into(),
            software_version: "0.1.0".into(),
            reagent_lot: Some("LOT-A1".into()),
            observations: vec![
                Observation {
                    local_code: "FC-CTC75",
                    text: "CTC per 7.5 mL",
                    loinc: Some((LOINC_CTC_COUNT, "Circulating tumor cell number")),
                    value: ObservationValue::Number {
                        value: 4.28,
                        ucum: "/(7500.uL)",
                    },
                    part_of: None,
                },
                number("FC-CTC75-L95", 0.1 + 0.2, "/(7500.uL)", Some("FC-CTC75")),
                number("FC-CTC75-H95", 12.0, "/(7500.uL)", Some("FC-CTC75")),
                number("FC-CUTOFF", 5.0, "/(7500.uL)", Some("FC-CALL")),
                number("FC-DR2", 1e-7, "s-1", None),
            ],
        }
    }

    #[test]
    fn numbers_are_written_exactly_as_released() {
        let text = serde_json::to_string(&transaction(&input(), "FC00000001").unwrap()).unwrap();
        assert!(text.contains(r#""value":4.28,"#), "{text}");
        assert!(text.contains(r#""value":0.30000000000000004,"#), "{text}");
        assert!(text.contains(r#""value":12,"#), "{text}");
        assert!(text.contains(r#""value":0.0000001,"#), "{text}");
        assert_eq!(
            Decimal::new(f64::NAN),
            Err(FhirError::NotFinite("NaN".into()))
        );
    }

    #[test]
    fn a_transaction_files_the_report_by_identifier_and_never_creates_the_patient() {
        let bundle = transaction(&input(), "FC00000001").unwrap();
        let value = serde_json::to_value(&bundle).unwrap();
        assert_eq!(value["type"], "transaction");
        assert_eq!(value["identifier"]["value"], "FC00000001");
        let entries = value["entry"].as_array().unwrap();
        let types: Vec<&str> = entries
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "Device",
                "Device",
                "Specimen",
                "Observation",
                "Observation",
                "Observation",
                "DiagnosticReport",
                "Provenance"
            ],
            "the interval limits are components; the cut-off without its call stands alone"
        );
        let count = &entries[3]["resource"];
        assert_eq!(count["component"].as_array().unwrap().len(), 2);
        assert_eq!(count["code"]["coding"][0]["system"], LOINC);
        assert_eq!(count["code"]["coding"][1]["code"], "FC-CTC75");
        assert_eq!(count["valueQuantity"]["code"], "/(7500.uL)");
        assert_eq!(count["valueQuantity"]["system"], UCUM);
        assert_eq!(count["status"], "final");
        assert_eq!(count["effectiveDateTime"], "2026-11-20T08:30:00Z");
        assert_eq!(count["issued"], "2026-11-20T13:05:09Z");
        assert_eq!(
            count["subject"]["reference"],
            "Patient?identifier=urn:oid:1.2.3|MRN-42&birthdate=1961-04-23"
        );
        assert!(
            types.iter().all(|t| *t != "Patient"),
            "the patient is referred to, never created"
        );
        let report = &entries[6];
        assert_eq!(report["request"]["method"], "PUT");
        assert_eq!(
            report["request"]["url"],
            "DiagnosticReport?identifier=urn:ferrocount:run|RUN-3"
        );
        assert_eq!(
            report["resource"]["result"][0]["reference"],
            entries[3]["fullUrl"]
        );
        // The same message is the same text on every attempt; another message has other uuids.
        assert_eq!(bundle, transaction(&input(), "FC00000001").unwrap());
        let other = serde_json::to_value(transaction(&input(), "FC00000002").unwrap()).unwrap();
        assert_ne!(other["entry"][0]["fullUrl"], entries[0]["fullUrl"]);
        let mut corrected = input();
        corrected.status = ResultStatus::Corrected;
        let corrected =
            serde_json::to_value(transaction(&corrected, "FC00000002").unwrap()).unwrap();
        assert_eq!(corrected["entry"][6]["resource"]["status"], "corrected");
        assert_eq!(corrected["entry"][3]["resource"]["status"], "corrected");
    }

    #[test]
    fn the_served_report_contains_the_rest_and_names_the_patient_by_identifier() {
        let report = Resource::DiagnosticReport(served_report(&input()).unwrap());
        let report = serde_json::to_value(report).unwrap();
        assert_eq!(report["resourceType"], "DiagnosticReport");
        assert_eq!(report["id"], "3");
        assert_eq!(report["contained"].as_array().unwrap().len(), 7);
        assert_eq!(report["subject"]["identifier"]["value"], "MRN-42");
        assert_eq!(report["result"][0]["reference"], "#obs-fc-ctc75");
        assert_eq!(report["contained"][6]["target"][0]["reference"], "#");
    }

    #[test]
    fn an_operation_outcome_is_read_for_its_words() {
        let body = r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error",
            "code":"not-found","diagnostics":"no patient with MRN-42"},{"severity":"error",
            "code":"invalid","details":{"text":"bad code"}}]}"#;
        assert_eq!(
            operation_outcome_text(body).as_deref(),
            Some("error: no patient with MRN-42; error: bad code")
        );
        assert_eq!(operation_outcome_text("<html>"), None);
        assert_eq!(
            operation_outcome_text(r#"{"resourceType":"Patient"}"#),
            None
        );
    }

    #[test]
    fn uuids_are_well_formed() {
        let urn = urn_uuid("FC00000001", "device");
        let uuid = urn.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "8");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
    }
}
