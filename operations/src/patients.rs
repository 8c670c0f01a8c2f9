//! Patients: find one by MRN, register one, view one with their runs, and their trend.
//!
//! Every view of patient data is audited here, once (who, what, when, from where), for the JSON
//! API and the pages alike: `patient.list`, `patient.lookup`, `patient.view`,
//! `patient.trend_view`.

use appliance::site::PatientNamePolicy;
use appliance::store::patients::{BirthDate, Mrn, NewPatient, Patient, PersonName};
use appliance::store::results::{ResultVersion, TrendPoint};
use appliance::store::runs::Run;
use appliance::store::samples::Indication;
use appliance::store::samples::Sample;
use appliance::store::{AuditEntry, PatientId, Timestamp};

use crate::{OperationError, Operations, Permission, Requester};

/// A patient to register, as entered (the API body, the registration form).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PatientRegistration {
    /// The MRN.
    pub mrn: String,
    /// The date of birth, `YYYY-MM-DD`.
    pub birth_date: String,
    /// The name, where the site keeps names.
    pub name: Option<String>,
    /// The initials, where the site keeps initials.
    pub initials: Option<String>,
    /// The indication (blank: not yet known).
    pub indication: String,
}

/// Most patients one search lists.
pub const MAX_LISTED: u32 = 1000;

/// One run of a patient, with its sample and the current version of its result.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientRun {
    /// The run.
    pub run: Run,
    /// Its sample.
    pub sample: Sample,
    /// The current version of its result, if it has one.
    pub current: Option<ResultVersion>,
}

/// A patient as viewed: their runs (newest first) and their trend (by draw time).
#[derive(Clone, Debug, PartialEq)]
pub struct PatientRecord {
    /// The patient.
    pub patient: Patient,
    /// The current version of each run's result, by draw time.
    pub trend: Vec<TrendPoint>,
    /// Their runs, newest first.
    pub runs: Vec<PatientRun>,
    /// The indication of their latest sample that has one, and its configured cut-off per
    /// 7.5 mL (for the trend's line).
    pub cutoff: Option<(String, Option<f64>)>,
}

impl Operations {
    /// Registers a patient (operators at the bedside, clinicians, lab admins) by the two
    /// identifiers, the MRN and the date of birth, with a name or initials only where the site's
    /// configuration keeps them (`[site] patient_name`; given otherwise, they are refused: minimum
    /// necessary), and their indication when known; a conflict when the MRN exists.
    pub async fn register_patient(
        &self,
        who: &Requester,
        registration: &PatientRegistration,
    ) -> Result<Patient, OperationError> {
        who.require(Permission::RegisterPatients)?;
        let invalid = |field: &'static str| {
            move |e: appliance::store::StoreError| OperationError::invalid(field, e.to_string())
        };
        let mrn = Mrn::parse(&registration.mrn).map_err(invalid("mrn"))?;
        let birth_date =
            BirthDate::parse(&registration.birth_date, Timestamp::now().datetime().date())
                .map_err(invalid("birth_date"))?;
        let policy = self.settings.site.patient_name;
        let named = |field: &'static str, text: &Option<String>, kept: bool| match text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            None => Ok(None),
            Some(_) if !kept => Err(OperationError::invalid(
                field,
                "this site keeps no patient names or initials (minimum necessary)",
            )),
            Some(text) => PersonName::parse(field, text)
                .map(Some)
                .map_err(|e| OperationError::invalid(field, e.to_string())),
        };
        let name = named(
            "name",
            &registration.name,
            policy == PatientNamePolicy::Name,
        )?;
        let initials = named(
            "initials",
            &registration.initials,
            policy == PatientNamePolicy::Initials,
        )?;
        let indication = match registration.indication.trim() {
            "" => None,
            text => {
                self.settings
                    .indications
                    .cutoff(text)
                    .map_err(|e| OperationError::invalid("indication", e.to_string()))?;
                Some(Indication::parse(text).map_err(invalid("indication"))?)
            }
        };
        let new = NewPatient {
            mrn,
            birth_date: Some(birth_date),
            name,
            initials,
            indication,
        };
        Ok(self.store.add_patient(&who.actor(), &new).await?)
    }

    /// Patients whose MRN starts with `mrn_prefix` (empty: all), at most `limit` (1 to
    /// [`MAX_LISTED`]); audited `patient.list`.
    pub async fn find_patients(
        &self,
        who: &Requester,
        mrn_prefix: &str,
        limit: u32,
    ) -> Result<Vec<Patient>, OperationError> {
        who.require(Permission::ViewPatients)?;
        if !(1..=MAX_LISTED).contains(&limit) {
            return Err(OperationError::invalid(
                "limit",
                format!("{limit} is not within 1 to {MAX_LISTED}"),
            ));
        }
        let patients = self
            .store
            .patients_with_mrn_prefix(mrn_prefix, limit)
            .await?;
        self.store
            .record_view(
                &who.actor(),
                AuditEntry::new("patient.list", "patient").detail(
                    serde_json::json!({ "mrn_prefix": mrn_prefix, "shown": patients.len() }),
                ),
            )
            .await?;
        Ok(patients)
    }

    /// The patient with exactly this MRN; audited `patient.lookup` (found or not). An empty MRN
    /// is invalid; an MRN no patient could have is simply not found.
    pub async fn look_up_patient(
        &self,
        who: &Requester,
        mrn: &str,
    ) -> Result<Patient, OperationError> {
        who.require(Permission::ViewPatients)?;
        let typed: String = mrn.trim().chars().take(64).collect();
        if typed.is_empty() {
            return Err(OperationError::invalid(
                "mrn",
                "type a patient's MRN to look them up",
            ));
        }
        let not_found = |key: String| OperationError::NotFound {
            entity: "patient with MRN",
            key,
        };
        let Ok(mrn) = Mrn::parse(&typed) else {
            return Err(not_found(typed));
        };
        let found = self.store.patient_by_mrn(&mrn).await?;
        self.store
            .record_view(
                &who.actor(),
                match &found {
                    Some(patient) => AuditEntry::new("patient.lookup", "patient").id(patient.id),
                    None => AuditEntry::new("patient.lookup", "patient"),
                }
                .detail(serde_json::json!({ "mrn": mrn.as_str(), "found": found.is_some() })),
            )
            .await?;
        found.ok_or_else(|| not_found(mrn.as_str().to_owned()))
    }

    /// Views a patient: their runs (at most `runs_listed`, newest first; none when 0) with the
    /// current version of each result, and their trend; audited `patient.view` with `from`.
    pub async fn view_patient(
        &self,
        who: &Requester,
        id: PatientId,
        runs_listed: u32,
        from: &str,
    ) -> Result<PatientRecord, OperationError> {
        who.require(Permission::ViewPatients)?;
        let patient = self.store.patient(id).await?;
        let trend = self.store.patient_trend(patient.id).await?;
        let mut runs = Vec::new();
        let listed = if runs_listed == 0 {
            Vec::new()
        } else {
            self.store.patient_runs(patient.id, runs_listed).await?
        };
        for run in listed {
            let sample = self.store.sample(run.sample_id).await?;
            let current = self.store.current_result(run.id).await?;
            runs.push(PatientRun {
                run,
                sample,
                current,
            });
        }
        self.store
            .record_view(
                &who.actor(),
                AuditEntry::new("patient.view", "patient")
                    .id(id)
                    .detail(serde_json::json!({
                        "from": from, "points": trend.len(), "runs": runs.len(),
                    })),
            )
            .await?;
        let cutoff = runs
            .iter()
            .find_map(|r| r.sample.indication.clone())
            .map(|indication| {
                let cutoff = self
                    .settings
                    .indications
                    .cutoff(&indication)
                    .ok()
                    .map(|c| c.unfavorable_at_or_above_per_7_5ml);
                (indication, cutoff)
            });
        Ok(PatientRecord {
            patient,
            trend,
            runs,
            cutoff,
        })
    }

    /// A patient's trend: the current version of each run's result, by draw time; audited
    /// `patient.trend_view` with how it was shown (`json`, `csv`, …).
    pub async fn view_trend(
        &self,
        who: &Requester,
        id: PatientId,
        shown_as: &str,
    ) -> Result<(Patient, Vec<TrendPoint>), OperationError> {
        who.require(Permission::ViewPatients)?;
        let patient = self.store.patient(id).await?;
        let trend = self.store.patient_trend(patient.id).await?;
        self.store
            .record_view(
                &who.actor(),
                AuditEntry::new("patient.trend_view", "patient")
                    .id(id)
                    .detail(serde_json::json!({ "points": trend.len(), "format": shown_as })),
            )
            .await?;
        Ok((patient, trend))
    }
}
