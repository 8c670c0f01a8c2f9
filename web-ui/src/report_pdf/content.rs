//! What the clinical report says, line by line, from a viewed run: the words only (no layout).
//!
//! Every decision was made elsewhere: the status, the call and the printed count by
//! `operations::reported`, the QC relied on by the QC gate when it was judged (stored with the
//! run), the time zone and the header by the site's configuration. This only words them.

use appliance::site::SiteConfig;
use appliance::store::qc_basis::JudgedFor;
use appliance::store::results::SignatureMeaning;
use operations::reported::{ResultStatus, whole_cells};
use operations::runs::RunRecord;

use crate::views::format;

/// One labelled line of the report ("Accession", "26-CTC-000123").
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The label.
    pub label: String,
    /// The value.
    pub value: String,
}

fn field(label: &str, value: impl Into<String>) -> Field {
    Field {
        label: label.to_owned(),
        value: value.into(),
    }
}

/// The clinical report's text.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportText {
    /// The laboratory's name.
    pub lab_name: String,
    /// Its address, one line per entry.
    pub lab_address: Vec<String>,
    /// "Instrument: Ferrocount bedside 1, serial FC-0042".
    pub instrument: String,
    /// PRELIMINARY, FINAL or CORRECTED.
    pub status: ResultStatus,
    /// What the status means, in words.
    pub status_words: String,
    /// The patient and specimen.
    pub patient: Vec<Field>,
    /// The result: count with interval, category, call with its cut-off.
    pub result: Vec<Field>,
    /// A warning under the result (an indeterminate call, a preliminary result), if any.
    pub result_notes: Vec<String>,
    /// The QC relied on and the calibration.
    pub references: Vec<Field>,
    /// The signature: printed name, time, meaning — or that there is none yet.
    pub signature: Vec<Field>,
    /// The footer: run, version and when the report was made.
    pub footer: String,
}

impl ReportText {
    /// The report of `record` (its current result as `operations` reports it), headed from the
    /// site's configuration; `made_at` is when it was printed, in the site's words.
    pub fn of(
        record: &RunRecord,
        site: &SiteConfig,
        instrument_name: &str,
        made_at: &str,
    ) -> Option<Self> {
        let zone = &site.time_zone;
        let current = record.current()?;
        let reported = record.reported()?;
        let summary = &current.summary;
        let patient = &record.patient;
        let sample = &record.sample;

        let mut patient_fields = vec![
            field("MRN", patient.mrn.as_str()),
            field(
                "Date of birth",
                patient
                    .birth_date
                    .as_ref()
                    .map_or_else(|| "not recorded".to_owned(), ToString::to_string),
            ),
        ];
        if let Some(name) = &patient.name {
            patient_fields.push(field("Name", name.as_str()));
        } else if let Some(initials) = &patient.initials {
            patient_fields.push(field("Initials", initials.as_str()));
        }
        patient_fields.extend([
            field("Accession", sample.accession.as_str()),
            field("Drawn", zone.display(sample.drawn_at)),
            field("Blood processed", format!("{:.1} mL", sample.blood_ml)),
        ]);

        let cutoff = summary
            .cutoff_per_7_5ml
            .map(|c| format!("{} CTC/7.5 mL", whole_cells(c, None)));
        let call_words = reported
            .call
            .map_or_else(|| "No call".to_owned(), |c| format::call_words(c.as_str()));
        let call_line = match (&summary.indication, &cutoff) {
            (Some(indication), Some(cutoff)) => {
                format!("{call_words} ({indication}; cut-off {cutoff})")
            }
            _ => call_words,
        };
        let result = vec![
            field("Result", reported.count.line()),
            field(
                "Category",
                format::category_words(summary.category.as_str()),
            ),
            field("Call", call_line),
        ];
        let mut result_notes = Vec::new();
        if reported.call == Some(nmr_core::assay::Call::Indeterminate) {
            result_notes.push(format!(
                "Indeterminate: the 95 % interval contains the cut-off{}, so the result is \
                 neither favourable nor unfavourable.",
                cutoff.map(|c| format!(" of {c}")).unwrap_or_default()
            ));
        }
        if summary.qc_hold {
            result_notes.push("QC hold: a QC flag holds this result.".to_owned());
        }

        let qc = match record.qc_relied_on() {
            Some(basis) => {
                let when = match basis.judged_for {
                    JudgedFor::Start => "judged at the run's start",
                    JudgedFor::Release => "judged at release",
                };
                let values: Vec<String> = basis
                    .values
                    .iter()
                    .map(|v| {
                        format!(
                            "{} {} lot {} ({}) {}",
                            v.level.as_str(),
                            v.material,
                            v.qc_lot,
                            zone.display(v.measured_at),
                            v.verdict.as_str()
                        )
                    })
                    .collect();
                format!("{}; {when}", values.join("; "))
            }
            None => "No valid QC recorded for this run".to_owned(),
        };
        let calibration = match &record.calibration {
            Some(c) => format!(
                "Calibration {} (reagent lot {}, echo time {:.1} ms), made {}",
                c.id.0,
                c.reagent_lot,
                f64::from(c.te_us) / 1000.0,
                zone.display(c.created_at)
            ),
            None => format!(
                "Reagent lot {} (no calibration recorded)",
                record.run.reagent_lot.as_deref().unwrap_or("—")
            ),
        };
        let references = vec![field("QC relied on", qc), field("Calibration", calibration)];

        let signature = current
            .signatures
            .iter()
            .rev()
            .find(|s| s.meaning == SignatureMeaning::Release)
            .or_else(|| current.signatures.last())
            .map_or_else(
                || {
                    vec![field(
                        "Signature",
                        "Not signed: not released for clinical use",
                    )]
                },
                |s| {
                    vec![
                        field("Signed by", s.printed_name.as_str()),
                        field("Signed", zone.display(s.signed_at)),
                        field("Meaning", s.meaning.statement()),
                    ]
                },
            );

        let status_words = match reported.status {
            ResultStatus::Preliminary => {
                "PRELIMINARY: not released; not for clinical decisions".to_owned()
            }
            ResultStatus::Final => "FINAL: released for clinical use".to_owned(),
            ResultStatus::Corrected => {
                "CORRECTED: released; replaces an earlier released result".to_owned()
            }
        };
        let serial = if site.instrument_serial.trim().is_empty() {
            String::new()
        } else {
            format!(", serial {}", site.instrument_serial.trim())
        };
        Some(Self {
            lab_name: site.lab_name.clone(),
            lab_address: site
                .lab_address
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            instrument: format!("Instrument: {instrument_name}{serial}"),
            status: reported.status,
            status_words,
            patient: patient_fields,
            result,
            result_notes,
            references,
            signature,
            footer: format!(
                "Run {} · result version {} · printed {made_at} · times in {}",
                record.run.id.0,
                current.version,
                zone.name()
            ),
        })
    }
}
