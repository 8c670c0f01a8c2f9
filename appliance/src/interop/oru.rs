//! The HL7 v2.5.1 ORU^R01 the appliance sends for a released result, shaped as the Laboratory
//! Results Interface guide shapes one: MSH, PID, ORC, OBR, one OBX per observation, SPM.
//!
//! What it is for: turning the typed values of one released result version ([`OruInput`]) into
//! the message text. The values are written exactly as released (a number as the shortest text
//! that reads back to the same `f64`: never re-rounded); times are UTC (`+0000`). What it is not
//! for: deciding what is released or when it is sent (the outbox), or transport (MLLP).

use time::OffsetDateTime;

use super::hl7::{Field, Segment, message};

/// The LOINC code sent beside the local code of the count per 7.5 mL ("Circulating tumor cell
/// number", as a large US reference lab uses it).
pub const LOINC_CTC_COUNT: &str = "67568-6";

/// The local code system's name in OBX-3 / OBR-4 (HL7 table 0396 `L`).
const LOCAL: &str = "L";

/// The count's status in OBR-25 and OBX-11.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultStatus {
    /// The first release of a result (`F`).
    Final,
    /// The release of a corrected version (`C`).
    Corrected,
}

impl ResultStatus {
    /// The HL7 code (table 0085 / 0123).
    pub fn code(self) -> &'static str {
        match self {
            Self::Final => "F",
            Self::Corrected => "C",
        }
    }
}

/// One observation (one OBX; in FHIR one `Observation`, or a component of the one it qualifies).
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The local code (OBX-3.1) and its text.
    pub local_code: &'static str,
    /// The local code's text.
    pub text: &'static str,
    /// The LOINC code sent first, when there is one.
    pub loinc: Option<(&'static str, &'static str)>,
    /// The value.
    pub value: ObservationValue,
    /// The local code of the observation this one qualifies (a 95 % interval limit of a count,
    /// the cut-off of a call): its own OBX in HL7 v2, a `component` of that one in FHIR.
    pub part_of: Option<&'static str>,
}

/// An observation's value (OBX-2 and OBX-5, OBX-6).
#[derive(Clone, Debug, PartialEq)]
pub enum ObservationValue {
    /// A number (`NM`) with its UCUM unit.
    Number {
        /// The released value, written unrounded.
        value: f64,
        /// The UCUM unit code (`/(7500.uL)`, `/mL`, `s-1`).
        ucum: &'static str,
    },
    /// A coded value (`CWE`) in the local code system.
    Coded {
        /// The code.
        code: String,
        /// Its text.
        text: String,
    },
}

/// Everything one ORU^R01 says, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct OruInput {
    /// MSH-10: unique per message, the same on every attempt.
    pub control_id: String,
    /// MSH-7: when the message was made (its release: the same on every attempt).
    pub message_time: OffsetDateTime,
    /// MSH-4: the sending facility as the receiver knows it (from configuration; may be empty).
    pub sending_facility: String,
    /// OBX-23: the performing lab's name (MSH-3, the sending application, is `FERROCOUNT`).
    pub lab_name: String,
    /// The performing lab's address (OBX-24, one line).
    pub lab_address: String,
    /// MSH-5 / MSH-6: the receiving application and facility (from configuration; may be empty).
    pub receiving_application: String,
    /// MSH-6.
    pub receiving_facility: String,
    /// PID-3: the medical record number.
    pub mrn: String,
    /// PID-3.4: who assigned it.
    pub mrn_authority: String,
    /// PID-5: the patient's name (family^given), when the site records it.
    pub patient_name: Option<(String, String)>,
    /// PID-7: the second identifier, the date of birth.
    pub birth_date: Option<time::Date>,
    /// ORC-2 / OBR-2 (placer order number) and SPM-2: the accession number.
    pub accession: String,
    /// ORC-3 / OBR-3 (filler order number): the appliance's run.
    pub filler_order: String,
    /// OBR-7, OBX-14, SPM-17: when the blood was drawn.
    pub drawn_at: OffsetDateTime,
    /// OBR-22: when the result was released (reported).
    pub reported_at: OffsetDateTime,
    /// OBX-19: when the run was measured.
    pub analysed_at: Option<OffsetDateTime>,
    /// OBR-25 / OBX-11.
    pub status: ResultStatus,
    /// OBX-18: the appliance's serial number.
    pub instrument_serial: String,
    /// The observations, in order.
    pub observations: Vec<Observation>,
}

/// HL7 DTM in UTC to the second: `YYYYMMDDHHMMSS+0000`.
pub fn dtm(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}+0000",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A released number as HL7 NM text: the shortest decimal that reads back to the same `f64`
/// (Rust's `Display`, which never writes an exponent), so the value is never re-rounded.
pub fn number(value: f64) -> String {
    format!("{value}")
}

/// The ORU^R01 message text.
pub fn oru_r01(input: &OruInput) -> String {
    let status = input.status.code();
    let msh = Segment::new("MSH")
        .text(3, "FERROCOUNT")
        .text(4, &input.sending_facility)
        .text(5, &input.receiving_application)
        .text(6, &input.receiving_facility)
        .text(7, dtm(input.message_time))
        .components(9, &["ORU", "R01", "ORU_R01"])
        .text(10, &input.control_id)
        .text(11, "P")
        .text(12, "2.5.1");
    let name = match &input.patient_name {
        Some((family, given)) => Field::components(&[family.as_str(), given.as_str()]),
        // Not recorded (minimum necessary): name type U, unspecified.
        None => Field::components(&["", "", "", "", "", "", "U"]),
    };
    let mut pid = Segment::new("PID")
        .text(1, "1")
        .components(3, &[&input.mrn, "", "", &input.mrn_authority, "MR"])
        .set(5, name);
    if let Some(date) = input.birth_date {
        pid = pid.text(
            7,
            format!(
                "{:04}{:02}{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            ),
        );
    }
    let orc = Segment::new("ORC")
        .text(1, "RE")
        .components(2, &[input.accession.as_str(), "", "", ""])
        .components(3, &[input.filler_order.as_str(), "FERROCOUNT"]);
    let service = [
        LOINC_CTC_COUNT,
        "Circulating tumor cell number",
        "LN",
        "FC-CTC",
        "CTC count by micro-NMR",
        LOCAL,
    ];
    let obr = Segment::new("OBR")
        .text(1, "1")
        .components(2, &[input.accession.as_str()])
        .components(3, &[input.filler_order.as_str(), "FERROCOUNT"])
        .components(4, &service)
        .text(7, dtm(input.drawn_at))
        .text(22, dtm(input.reported_at))
        .text(25, status);
    let mut segments = vec![msh, pid, orc, obr];
    for (index, observation) in input.observations.iter().enumerate() {
        segments.push(obx(index + 1, observation, input));
    }
    segments.push(
        Segment::new("SPM")
            .text(1, "1")
            .components(2, &[input.accession.as_str()])
            .components(4, &["119297000", "Blood specimen", "SCT"])
            .text(17, dtm(input.drawn_at)),
    );
    message(&segments)
}

fn obx(set_id: usize, observation: &Observation, input: &OruInput) -> Segment {
    let mut code: Vec<&str> = Vec::new();
    if let Some((loinc, text)) = observation.loinc {
        code.extend([loinc, text, "LN"]);
    }
    code.extend([observation.local_code, observation.text, LOCAL]);
    let segment = Segment::new("OBX")
        .text(1, set_id.to_string())
        .components(3, &code);
    let segment = match &observation.value {
        ObservationValue::Number { value, ucum } => segment
            .text(2, "NM")
            .text(5, number(*value))
            .components(6, &[*ucum, *ucum, "UCUM"]),
        ObservationValue::Coded { code, text } => segment
            .text(2, "CWE")
            .components(5, &[code.as_str(), text.as_str(), LOCAL]),
    };
    let mut segment = segment
        .text(11, input.status.code())
        .text(14, dtm(input.drawn_at))
        .components(17, &["FC-UNMR-DR2", "Micro-NMR dR2, quad-marker", LOCAL])
        .components(18, &[input.instrument_serial.as_str(), "FERROCOUNT"])
        .components(23, &[input.lab_name.as_str()])
        .components(24, &[input.lab_address.as_str()]);
    if let Some(at) = input.analysed_at {
        segment = segment.text(19, dtm(at));
    }
    segment
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    pub(crate) fn input() -> OruInput {
        OruInput {
            control_id: "FC00000001".into(),
            message_time: datetime!(2026-12-02 09:00:00 UTC),
            sending_facility: "LAB|1".into(),
            lab_name: "St. Example Lab".into(),
            lab_address: "1 Main St^Springfield".into(),
            receiving_application: "LIS".into(),
            receiving_facility: "HOSP".into(),
            mrn: "MRN-42".into(),
            mrn_authority: "HOSP".into(),
            patient_name: None,
            birth_date: Some(date!(1961 - 04 - 23)),
            accession: "ACC-7".into(),
            filler_order: "RUN-3".into(),
            drawn_at: datetime!(2026-11-20 08:30:00 UTC),
            reported_at: datetime!(2026-11-20 14:05:09 UTC),
            analysed_at: None,
            status: ResultStatus::Corrected,
            instrument_serial: "FC-0001".into(),
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
                Observation {
                    local_code: "FC-CALL",
                    text: "Call",
                    loinc: None,
                    value: ObservationValue::Coded {
                        code: "unfavorable".into(),
                        text: "Unfavorable".into(),
                    },
                    part_of: None,
                },
            ],
        }
    }

    #[test]
    fn the_values_go_out_exactly_as_released() {
        assert_eq!(number(4.28), "4.28");
        assert_eq!(number(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(number(1e-7), "0.0000001");
        assert_eq!(number(12.0), "12");
        for value in [4.28, 0.1 + 0.2, 1.0 / 3.0, 123_456.789] {
            assert_eq!(number(value).parse::<f64>().unwrap(), value);
        }
    }

    #[test]
    fn an_oru_carries_the_segments_in_order_with_a_correction_as_c() {
        let text = oru_r01(&input());
        let segments: Vec<&str> = text.split('\r').filter(|s| !s.is_empty()).collect();
        let ids: Vec<&str> = segments.iter().map(|s| &s[..3]).collect();
        assert_eq!(ids, ["MSH", "PID", "ORC", "OBR", "OBX", "OBX", "SPM"]);
        assert!(segments[0].starts_with(
            "MSH|^~\\&|FERROCOUNT|LAB\\F\\1|LIS|HOSP|20261202090000+0000||ORU^R01^ORU_R01|FC00000001|P|2.5.1"
        ));
        assert_eq!(segments[1], "PID|1||MRN-42^^^HOSP^MR||^^^^^^U||19610423");
        let obx: Vec<&str> = segments[4].split('|').collect();
        assert_eq!(obx[2], "NM");
        assert_eq!(
            obx[3],
            "67568-6^Circulating tumor cell number^LN^FC-CTC75^CTC per 7.5 mL^L"
        );
        assert_eq!(obx[5], "4.28");
        assert_eq!(obx[6], "/(7500.uL)^/(7500.uL)^UCUM");
        assert_eq!(obx[11], "C");
        assert_eq!(obx[18], "FC-0001^FERROCOUNT");
        assert_eq!(obx[24], "1 Main St\\S\\Springfield");
        assert!(segments[3].ends_with("|C"), "OBR-25: {}", segments[3]);
        let mut first = input();
        first.status = ResultStatus::Final;
        assert!(oru_r01(&first).contains("|F|"));
    }
}
