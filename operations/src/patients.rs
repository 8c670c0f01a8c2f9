//! Patients: the patient list (search by MRN prefix and date of birth, a page at a time), find
//! one by MRN, register one, view one with their runs, their trend and its treatment or event
//! markers (added by clinicians, audited).
//!
//! Every view of patient data is audited here, once (who, what, when, from where), for the JSON
//! API and the pages alike: `patient.list`, `patient.lookup`, `patient.view`,
//! `patient.trend_view`; a marker's addition is audited `patient.event_add` by the store in the
//! same transaction.

use appliance::site::PatientNamePolicy;
use appliance::store::patient_events::{EventLabel, PatientEvent};
use appliance::store::patients::{BirthDate, Mrn, NewPatient, Patient, PatientFilter, PersonName};
use appliance::store::results::TrendPoint;
use appliance::store::run_list::RunListPage;
use appliance::store::samples::Indication;
use appliance::store::{AuditEntry, PatientId, RunId, Timestamp};

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

/// Most patients one page of the patient list holds (the API's `limit`, 1 to this).
pub const MAX_LISTED: u32 = 100;

/// Patients a page of the list holds unless asked otherwise.
pub const DEFAULT_LISTED: u32 = 25;

/// A search of the patient list as typed: an MRN prefix and a date of birth, either or both
/// blank (an empty search lists every patient, by MRN).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatientSearch {
    /// The start of an MRN (any case; surrounding white space is dropped).
    pub mrn_prefix: String,
    /// A date of birth, `YYYY-MM-DD` (blank: any).
    pub birth_date: String,
}

impl PatientSearch {
    /// [`PatientSearch::parse`]'s rule for the MRN prefix as an ECMA-262 regular expression (the
    /// API's OpenAPI document states it): optional surrounding white space (what `str::trim`
    /// drops, spelled out: `\s` differs between regex dialects) around 0 to
    /// [`Mrn::MAX_CHARS`] of the characters an MRN is made of.
    pub fn mrn_prefix_pattern() -> String {
        let space = appliance::store::text_pattern::white_space();
        format!(r"^{space}*[A-Za-z0-9./-]{{0,{}}}{space}*$", Mrn::MAX_CHARS)
    }

    /// [`PatientSearch::parse`]'s rule for the date of birth as an ECMA-262 regular expression:
    /// blank, or a calendar date written `YYYY-MM-DD` (leap days in leap years only), with
    /// optional surrounding white space.
    pub fn birth_date_pattern() -> String {
        let day = r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))";
        let leap = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)";
        let space = appliance::store::text_pattern::white_space();
        format!(r"^{space}*(?:[0-9]{{4}}-{day}|{leap}-02-29)?{space}*$")
    }

    /// The search as the store runs it, or the field that is wrong: a prefix of MRN characters
    /// (uppercased, as MRNs are kept) no longer than an MRN, a birth date that is blank or a
    /// calendar date. `None`: a search nobody can match (a birth date after `today` or before
    /// [`BirthDate::EARLIEST_YEAR`], which no patient has): an empty list, not an error.
    pub fn parse(&self, today: time::Date) -> Result<Option<PatientFilter>, OperationError> {
        let prefix = self.mrn_prefix.trim();
        if prefix.chars().count() > Mrn::MAX_CHARS
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-'))
        {
            return Err(OperationError::invalid(
                "mrn_prefix",
                format!(
                    "the start of an MRN is up to {} letters, digits, '-', '.' or '/'",
                    Mrn::MAX_CHARS
                ),
            ));
        }
        let birth_date = match self.birth_date.trim() {
            "" => None,
            text => {
                let shaped = text.len() == 10
                    && text.bytes().enumerate().all(|(i, b)| match i {
                        4 | 7 => b == b'-',
                        _ => b.is_ascii_digit(),
                    });
                let calendar = time::Date::parse(
                    text,
                    time::macros::format_description!("[year]-[month]-[day]"),
                );
                if !shaped || calendar.is_err() {
                    return Err(OperationError::invalid(
                        "birth_date",
                        format!(
                            "{:?} is not a calendar date written YYYY-MM-DD (e.g. 1961-04-23)",
                            text.chars().take(40).collect::<String>()
                        ),
                    ));
                }
                match BirthDate::parse(text, today) {
                    Ok(date) => Some(date),
                    Err(_) => return Ok(None),
                }
            }
        };
        Ok(Some(PatientFilter {
            mrn_prefix: prefix.to_ascii_uppercase(),
            birth_date,
        }))
    }
}

/// One page of the patient list.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientListPage {
    /// The patients, by MRN.
    pub patients: Vec<Patient>,
    /// The MRN the next page starts after, when there is one.
    pub next_after: Option<Mrn>,
}

/// A marker to add to a patient's trend, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventMarker {
    /// The day, `YYYY-MM-DD`.
    pub occurred_on: String,
    /// What happened ("started docetaxel").
    pub label: String,
}

impl EventMarker {
    /// Earliest year a marker's day may be in.
    pub const EARLIEST_YEAR: i32 = 2000;

    /// The day and label, or the field that is wrong: a calendar date from
    /// [`EventMarker::EARLIEST_YEAR`] to a year after `today` (a planned treatment may be
    /// marked ahead), and a label of 1 to [`EventLabel::MAX_CHARS`] characters once trimmed.
    pub fn parse(&self, today: time::Date) -> Result<(time::Date, EventLabel), OperationError> {
        let text = self.occurred_on.trim();
        let day = time::Date::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| {
            OperationError::invalid(
                "occurred_on",
                format!(
                    "{:?} is not a calendar date written YYYY-MM-DD",
                    text.chars().take(40).collect::<String>()
                ),
            )
        })?;
        let latest = today.saturating_add(time::Duration::days(366));
        if day.year() < Self::EARLIEST_YEAR || day > latest {
            return Err(OperationError::invalid(
                "occurred_on",
                format!(
                    "{text} is outside {}-01-01 to {latest} (a year ahead at most)",
                    Self::EARLIEST_YEAR
                ),
            ));
        }
        let label = EventLabel::parse(&self.label)
            .map_err(|e| OperationError::invalid("label", e.to_string()))?;
        Ok((day, label))
    }
}

/// One run of a patient, with its sample and the current version of its result.
pub type PatientRun = crate::runs::RunSummary;

/// A patient's runs listed on their page at most, per page (the trend shows every result).
pub const MAX_PATIENT_RUNS_PAGE: u32 = 100;

/// A patient's runs a page of `GET /api/v1/patients/{id}/runs` holds when the request does not
/// say.
pub const DEFAULT_PATIENT_RUNS_PAGE: u32 = 25;

/// The latest points of a patient's trend the patient page's chart shows at most (older ones
/// are in the trend's CSV and JSON, which the page links to).
pub const MAX_TREND_SHOWN: u32 = 200;

/// One point of a patient's trend with its result as reported (status, call, printed count):
/// what the trend's JSON and CSV carry.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportedPoint {
    /// The stored point (full precision).
    pub point: TrendPoint,
    /// Its result as reported.
    pub reported: crate::reported::Reported,
}

/// One page of a patient's runs ([`Operations::patient_runs`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PatientRunsPage {
    /// The runs, newest first.
    pub runs: Vec<PatientRun>,
    /// The run the next (older) page starts before; `None` on the last page.
    pub next_before: Option<RunId>,
}

/// A patient as viewed: their runs (newest first) and their trend (by draw time).
#[derive(Clone, Debug, PartialEq)]
pub struct PatientRecord {
    /// The patient.
    pub patient: Patient,
    /// The current version of each run's result, by draw time: only the latest asked for.
    pub trend: Vec<TrendPoint>,
    /// Whether older points than those in `trend` exist.
    pub trend_older: bool,
    /// One page of their runs, newest first.
    pub runs: Vec<PatientRun>,
    /// Where the next (older) page of their runs starts, when there is one.
    pub runs_next: Option<RunId>,
    /// The indication of their latest sample that has one, and its configured cut-off per
    /// 7.5 mL (for the trend's line).
    pub cutoff: Option<(String, Option<f64>)>,
    /// The treatment and event markers on their trend, by day.
    pub events: Vec<PatientEvent>,
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

    /// One page of the patient list (clinicians and lab admins): the patients `search` finds
    /// (an empty search: all), by MRN, after the MRN `after` (the `next_after` of the page
    /// before; none: the first page), at most `limit` (1 to [`MAX_LISTED`]). One query a page.
    /// Audited `patient.list` with the search and how many were shown.
    pub async fn list_patients(
        &self,
        who: &Requester,
        search: &PatientSearch,
        after: Option<&str>,
        limit: u32,
    ) -> Result<PatientListPage, OperationError> {
        who.require(Permission::ViewPatients)?;
        if !(1..=MAX_LISTED).contains(&limit) {
            return Err(OperationError::invalid(
                "limit",
                format!("{limit} is not within 1 to {MAX_LISTED}"),
            ));
        }
        let filter = search.parse(Timestamp::now().datetime().date())?;
        let after = after
            .map(|text| {
                Mrn::parse(text).map_err(|_| {
                    OperationError::invalid("after", "the MRN a page starts after is an MRN")
                })
            })
            .transpose()?;
        // One more than a page says whether another page follows.
        let mut patients = match &filter {
            Some(filter) => {
                self.store
                    .patients_page(filter, after.as_ref(), limit + 1)
                    .await?
            }
            None => Vec::new(),
        };
        let next_after = if patients.len() > limit as usize {
            patients.truncate(limit as usize);
            patients.last().map(|p| p.mrn.clone())
        } else {
            None
        };
        self.store
            .record_view(
                &who.actor(),
                AuditEntry::new("patient.list", "patient").detail(serde_json::json!({
                    "mrn_prefix": search.mrn_prefix.trim(),
                    "birth_date": search.birth_date.trim(),
                    "after": after.as_ref().map(Mrn::as_str),
                    "shown": patients.len(),
                })),
            )
            .await?;
        Ok(PatientListPage {
            patients,
            next_after,
        })
    }

    /// Adds a treatment or event marker to a patient's trend (clinicians and lab admins); the
    /// store audits it (`patient.event_add`: who, the day, what) in the same transaction.
    pub async fn add_patient_event(
        &self,
        who: &Requester,
        patient_id: PatientId,
        marker: &EventMarker,
    ) -> Result<PatientEvent, OperationError> {
        who.require(Permission::AnnotatePatients)?;
        let (day, label) = marker.parse(Timestamp::now().datetime().date())?;
        Ok(self
            .store
            .add_patient_event(&who.actor(), patient_id, day, &label)
            .await?)
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

    /// Views a patient: one page of their runs (at most `runs_listed`, 0 to
    /// [`MAX_PATIENT_RUNS_PAGE`], newest first, those before the run `runs_before`; none when
    /// 0) with the current version of each result, read in one query, and the latest
    /// `trend_shown` points of their trend (0 to [`MAX_TREND_SHOWN`]) with their event markers
    /// (neither read when 0); audited `patient.view` with `from`.
    pub async fn view_patient(
        &self,
        who: &Requester,
        id: PatientId,
        runs_listed: u32,
        runs_before: Option<RunId>,
        trend_shown: u32,
        from: &str,
    ) -> Result<PatientRecord, OperationError> {
        who.require(Permission::ViewPatients)?;
        if runs_listed > MAX_PATIENT_RUNS_PAGE {
            return Err(OperationError::invalid(
                "limit",
                format!("{runs_listed} is not within 0 to {MAX_PATIENT_RUNS_PAGE}"),
            ));
        }
        if trend_shown > MAX_TREND_SHOWN {
            return Err(OperationError::invalid(
                "trend_shown",
                format!("{trend_shown} is not within 0 to {MAX_TREND_SHOWN}"),
            ));
        }
        let (patient, trend, trend_older, events) = if trend_shown == 0 {
            (self.store.patient(id).await?, Vec::new(), false, Vec::new())
        } else {
            let (patient, trend, older) = self
                .store
                .patient_with_latest_trend(id, trend_shown)
                .await?;
            let events = self.store.patient_events(patient.id).await?;
            (patient, trend, older, events)
        };
        let (runs, runs_next) = if runs_listed == 0 {
            (Vec::new(), None)
        } else {
            crate::runs::run_page(
                &self.store,
                RunListPage::OfPatient {
                    patient: patient.id,
                    before: runs_before,
                },
                runs_listed,
            )
            .await?
        };
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
            trend_older,
            runs,
            runs_next,
            cutoff,
            events,
        })
    }

    /// One page of a patient's runs for the API: at most `limit` (1 to
    /// [`MAX_PATIENT_RUNS_PAGE`]), newest first, those before the run `before`, each with its
    /// sample and the current version of its result as reported, read in ONE statement
    /// (`Store::run_list_page`; the patient is read first, so an unknown one is not found);
    /// audited `patient.runs_view`. Out of range `limit` is refused naming the bound.
    pub async fn patient_runs(
        &self,
        who: &Requester,
        id: PatientId,
        before: Option<RunId>,
        limit: u32,
    ) -> Result<PatientRunsPage, OperationError> {
        who.require(Permission::ViewPatients)?;
        if !(1..=MAX_PATIENT_RUNS_PAGE).contains(&limit) {
            return Err(OperationError::invalid(
                "limit",
                format!("{limit} is not within 1 to {MAX_PATIENT_RUNS_PAGE}"),
            ));
        }
        let patient = self.store.patient(id).await?;
        let (runs, next_before) = crate::runs::run_page(
            &self.store,
            RunListPage::OfPatient {
                patient: patient.id,
                before,
            },
            limit,
        )
        .await?;
        self.store
            .record_view(
                &who.actor(),
                AuditEntry::new("patient.runs_view", "patient")
                    .id(id)
                    .detail(serde_json::json!({
                        "before": before.map(|id| id.0), "runs": runs.len(),
                    })),
            )
            .await?;
        Ok(PatientRunsPage { runs, next_before })
    }

    /// A patient's trend: the current version of each run's result, by draw time; audited
    /// `patient.trend_view` with how it was shown (`json`, `csv`, …).
    pub async fn view_trend(
        &self,
        who: &Requester,
        id: PatientId,
        shown_as: &str,
    ) -> Result<(Patient, Vec<ReportedPoint>), OperationError> {
        who.require(Permission::ViewPatients)?;
        // The patient and the trend on one borrowed connection; the trend one query, each
        // point carrying its release marks, so no run or version is read per point.
        let (patient, points) = self.store.patient_with_trend(id).await?;
        let trend: Vec<ReportedPoint> = points
            .into_iter()
            .map(|point| ReportedPoint {
                reported: crate::reported::Reported::of_summary(
                    point.run_state,
                    &point.summary,
                    point.marks,
                ),
                point,
            })
            .collect();
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
