//! Runs: start one from a typed order parsed once, confirm the tube it waits for, cancel it, and
//! view it (every view audited here, once, for the API and the pages alike).
//!
//! A run order is entered three ways — the JSON body of `POST /api/v1/runs`, the new-run page's
//! form, `ferrocount run`'s flags — and each front end fills the same [`RunOrderFields`] as
//! entered and calls [`RunOrder::parse`], the one parser: every limit (the processed blood
//! volume's through [`BloodVolume::from_ml`], the draw time, replicates, tubes, the reagent lot
//! and indication against what this appliance has) is checked there, and every wrong field is
//! named. The engine checks the request again before it stores anything, with the same
//! functions.

use std::collections::HashSet;

use appliance::engine::{
    DEFAULT_REPLICATES, MAX_REPLICATES, MIN_REPLICATES, RunRequest, RunTicket, SIMULATED_LOT,
    SimulatedTruth, t2_distribution,
};
use appliance::store::audit::{AuditQuery, AuditRecord};
use appliance::store::calibrations::{Calibration, ReagentLot};
use appliance::store::measurements::Measurement;
use appliance::store::patients::{BirthDate, Mrn, Patient};
use appliance::store::qc_basis::QcBasis;
use appliance::store::results::{ResultVersion, TrendPoint};
use appliance::store::run_list::{ListedResult, ListedRun, ListedSample, RunListPage};
use appliance::store::runs::{Run, RunState};
use appliance::store::samples::{Accession, BloodVolume, Indication, Sample, TubeKind};
use appliance::store::users::User;
use appliance::store::{Actor, AuditEntry, RunId, StoreError, Timestamp};

use appliance::site::{LocalTime, QcPolicy, SiteTimeZone};

use crate::reported::Reported;
use crate::{OperationError, Operations, Permission, Requester};

/// The draw-time rule is the engine's, which checks every request with it; a run order applies it
/// as it parses the order, so the person typing sees the reason on the form.
pub use appliance::engine::{DRAW_CLOCK_SKEW, EARLIEST_DRAW_YEAR, check_draw_time};

/// A run order as entered, every value as typed (blank: not given). The API body, the new-run
/// form and `ferrocount run` fill it; [`RunOrder::parse`] reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOrderFields {
    /// The patient's MRN (registered when new).
    pub patient_mrn: String,
    /// The patient's date of birth, `YYYY-MM-DD` (the second identifier).
    pub birth_date: String,
    /// The specimen's accession number (required; typed or scanned from its label).
    pub accession: String,
    /// Processed blood volume, mL.
    pub blood_ml: String,
    /// Indication (blank: none; a configured one gives a call against its cut-off).
    pub indication: String,
    /// When the indication is not the patient's: why (the explicit, audited override).
    pub indication_override_reason: String,
    /// Reagent lot (blank: the simulated lot on the simulated board; required on hardware).
    pub reagent_lot: String,
    /// Blood draw time: RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` taken as UTC (the page's
    /// `datetime-local`); blank: now.
    pub drawn_at: String,
    /// Tubes after control and quad (`cd45`, `igg`, `epcam`, `muc1`, `her2`, `egfr`).
    pub extra_tubes: Vec<String>,
    /// Replicates per tube (blank: 3).
    pub replicates: String,
    /// Wait for the operator to confirm each tube even on the simulated board.
    pub manual_tube_confirmation: bool,
    /// Simulated board only: the true number of tumour cells (blank: no simulation truth).
    pub simulate_cells: String,
    /// Simulated board only: non-specific ΔR2 of the labelled tubes, 1/s.
    pub simulate_background_per_s: String,
    /// Simulated board only: the patient's control T2, ms.
    pub simulate_control_t2_ms: String,
}

/// A field of a run order, as each front end names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderField {
    /// The MRN.
    PatientMrn,
    /// The date of birth.
    BirthDate,
    /// The specimen's accession number.
    Accession,
    /// The blood volume.
    BloodMl,
    /// The indication.
    Indication,
    /// The reagent lot.
    ReagentLot,
    /// The draw time.
    DrawnAt,
    /// The extra tubes.
    ExtraTubes,
    /// Replicates per tube.
    Replicates,
    /// What the virtual tubes hold.
    Simulate,
}

impl OrderField {
    /// The field's key (the API body's and the form's).
    pub fn key(self) -> &'static str {
        match self {
            Self::PatientMrn => "patient_mrn",
            Self::BirthDate => "birth_date",
            Self::Accession => "accession",
            Self::BloodMl => "blood_ml",
            Self::Indication => "indication",
            Self::ReagentLot => "reagent_lot",
            Self::DrawnAt => "drawn_at",
            Self::ExtraTubes => "extra_tubes",
            Self::Replicates => "replicates",
            Self::Simulate => "simulate",
        }
    }

    /// The field in words, as the new-run page labels it.
    pub fn label(self) -> &'static str {
        match self {
            Self::PatientMrn => "Patient MRN",
            Self::BirthDate => "Date of birth",
            Self::Accession => "Accession number",
            Self::BloodMl => "Blood volume",
            Self::Indication => "Indication",
            Self::ReagentLot => "Reagent lot",
            Self::DrawnAt => "Draw time",
            Self::ExtraTubes => "Extra tubes",
            Self::Replicates => "Replicates",
            Self::Simulate => "Simulated sample",
        }
    }
}

/// One wrong field of a run order.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderProblem {
    /// The field.
    pub field: OrderField,
    /// What is wrong with it.
    pub reason: String,
}

/// Every wrong field of a run order (never empty).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderProblems(pub Vec<OrderProblem>);

impl OrderProblems {
    /// One line per field, in words: "Blood volume: 55 mL is not within 0.5 to 50 mL."
    pub fn lines(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|p| format!("{}: {}.", p.field.label(), p.reason))
            .collect()
    }
}

impl From<OrderProblems> for OperationError {
    /// The first wrong field (the JSON API names one field per problem document).
    fn from(problems: OrderProblems) -> Self {
        match problems.0.into_iter().next() {
            Some(first) => OperationError::invalid(first.field.key(), first.reason),
            None => OperationError::invalid("order", "refused"),
        }
    }
}

/// What a run order is checked against on this appliance.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderContext {
    /// The configured indications.
    pub indications: Vec<String>,
    /// Reagent lots a run may use: those with an active calibration, and on the simulated board
    /// its simulated lot (which the engine calibrates itself on first use).
    pub reagent_lots: Vec<String>,
    /// Whether the board is the simulated one.
    pub simulated: bool,
    /// The appliance's clock.
    pub now: Timestamp,
    /// The site's time zone: a draw time typed without an offset is local time there.
    pub time_zone: SiteTimeZone,
}

/// A run order, parsed and checked: what the engine is asked to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOrder {
    /// The patient.
    pub mrn: Mrn,
    /// Their date of birth, when given (a known patient's run must give it: the engine checks it
    /// with `Patient::confirm_birth_date` before storing anything).
    pub birth_date: Option<BirthDate>,
    /// The specimen.
    pub accession: Accession,
    /// Processed blood.
    pub blood: BloodVolume,
    /// The indication, if any.
    pub indication: Option<Indication>,
    /// Why the indication differs from the patient's, when it does.
    pub indication_override_reason: Option<String>,
    /// The reagent lot.
    pub reagent_lot: ReagentLot,
    /// When the blood was drawn (`None`: now).
    pub drawn_at: Option<Timestamp>,
    /// Tubes after control and quad, in measuring order.
    pub extra_tubes: Vec<TubeKind>,
    /// Replicates per tube.
    pub replicates: u32,
    /// Wait for the operator to confirm each tube even on the simulated board.
    pub manual_tube_confirmation: bool,
    /// Simulated board only: what the virtual tubes hold.
    pub simulate: Option<SimulatedTruth>,
}

/// A number as typed, or why it is not one.
fn number(text: &str) -> Result<f64, String> {
    let shown: String = text.trim().chars().take(40).collect();
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(format!("{shown:?} is not a number")),
    }
}

/// A blank text as `None`, anything else as its number.
fn optional_number(text: &str) -> Result<Option<f64>, String> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        number(text).map(Some)
    }
}

/// The reason a store parser gave, with the thing it names: "MRN \"\": is empty".
fn reason_of(error: StoreError) -> String {
    match error {
        StoreError::Invalid { field, reason } => format!("{field} {reason}"),
        other => other.to_string(),
    }
}

/// Parses a draw time: RFC 3339 with its offset, or `YYYY-MM-DDTHH:MM[:SS]` (the page's
/// `datetime-local`) meaning the site's local time in `zone`; then [`check_draw_time`]. A local
/// time the clocks skipped (the spring change) or passed twice (the autumn change) is refused in
/// words, never guessed: for a time passed twice the refusal names both readings and asks for
/// the offset. Stored times stay UTC.
pub fn parse_draw_time(
    text: &str,
    now: Timestamp,
    zone: &SiteTimeZone,
) -> Result<Timestamp, String> {
    let text = text.trim();
    let shown: String = text.chars().take(40).collect();
    // An offset after minutes without seconds (`2026-10-25T02:30+02:00`, as the fold's
    // refusal suggests) is RFC 3339 once the seconds are written.
    let with_seconds = match (text.get(..16), text.get(16..)) {
        (Some(minutes), Some(offset)) if offset.starts_with(['+', '-', 'Z', 'z']) => {
            format!("{minutes}:00{offset}")
        }
        _ => text.to_owned(),
    };
    let at = match Timestamp::parse(text).or_else(|_| Timestamp::parse(&with_seconds)) {
        Ok(at) => at,
        Err(_) => match zone.resolve_local(text) {
            Ok(LocalTime::Unique(at)) => at,
            Ok(LocalTime::Gap { before, after }) => {
                return Err(format!(
                    "{shown} did not happen in {zone}: the clocks went forward that night (from \
                     {before} to {after}) and skipped that time. Check the time on the tube's \
                     label"
                ));
            }
            Ok(LocalTime::Fold {
                earlier_offset,
                later_offset,
                ..
            }) => {
                return Err(format!(
                    "{shown} happened twice in {zone}: the clocks went back that night. Say \
                     which: {shown}{earlier_offset} (the first, before the change) or \
                     {shown}{later_offset} (the second, after it)"
                ));
            }
            Err(_) => {
                return Err(format!(
                    "{shown:?} is not a date and time (YYYY-MM-DDTHH:MM in the site's local \
                     time, {zone}, or RFC 3339 with an offset)"
                ));
            }
        },
    };
    check_draw_time(at, now)?;
    Ok(at)
}

impl RunOrder {
    /// Parses and checks a run order against this appliance, naming every wrong field.
    pub fn parse(fields: &RunOrderFields, context: &OrderContext) -> Result<Self, OrderProblems> {
        let mut problems = Vec::new();
        let mut wrong = |field: OrderField, reason: String| {
            problems.push(OrderProblem { field, reason });
        };
        let mrn = Mrn::parse(&fields.patient_mrn)
            .map_err(|e| wrong(OrderField::PatientMrn, reason_of(e)))
            .ok();
        let birth_date = match fields.birth_date.trim() {
            "" => None,
            text => BirthDate::parse(text, context.now.datetime().date())
                .map_err(|e| wrong(OrderField::BirthDate, reason_of(e)))
                .ok(),
        };
        let accession = Accession::parse(&fields.accession)
            .map_err(|e| wrong(OrderField::Accession, reason_of(e)))
            .ok();
        let indication_override_reason = match fields.indication_override_reason.trim() {
            "" => None,
            reason => Some(reason.chars().take(1000).collect::<String>()),
        };
        let blood = match number(&fields.blood_ml) {
            Ok(ml) => BloodVolume::from_ml(ml)
                .map_err(|e| wrong(OrderField::BloodMl, reason_of(e)))
                .ok(),
            Err(reason) => {
                wrong(
                    OrderField::BloodMl,
                    format!(
                        "{reason}; give the processed volume in mL ({} to {})",
                        BloodVolume::MIN_ML,
                        BloodVolume::MAX_ML
                    ),
                );
                None
            }
        };
        let indication = match fields.indication.trim() {
            "" => None,
            name if context.indications.iter().any(|known| known == name) => {
                Indication::parse(name)
                    .map_err(|e| wrong(OrderField::Indication, reason_of(e)))
                    .ok()
            }
            name => {
                wrong(
                    OrderField::Indication,
                    format!(
                        "{:?} has no configured cut-off; choose one of {}",
                        name.chars().take(40).collect::<String>(),
                        context.indications.join(", ")
                    ),
                );
                None
            }
        };
        let lot_text = match fields.reagent_lot.trim() {
            "" if context.simulated => SIMULATED_LOT,
            lot => lot,
        };
        let reagent_lot = if lot_text.is_empty() {
            wrong(
                OrderField::ReagentLot,
                "required on hardware (the lot printed on the tube kit)".into(),
            );
            None
        } else if !context.reagent_lots.iter().any(|known| known == lot_text) {
            wrong(
                OrderField::ReagentLot,
                if context.reagent_lots.is_empty() {
                    "no lot has an active calibration".to_owned()
                } else {
                    format!(
                        "{:?} has no active calibration; choose one of {}",
                        lot_text.chars().take(64).collect::<String>(),
                        context.reagent_lots.join(", ")
                    )
                },
            );
            None
        } else {
            ReagentLot::parse(lot_text)
                .map_err(|e| wrong(OrderField::ReagentLot, reason_of(e)))
                .ok()
        };
        let drawn_at = match fields.drawn_at.trim() {
            "" => None,
            text => parse_draw_time(text, context.now, &context.time_zone)
                .map_err(|reason| wrong(OrderField::DrawnAt, reason))
                .ok(),
        };
        let mut extra_tubes = Vec::new();
        let mut seen = HashSet::from([TubeKind::Control, TubeKind::Quad]);
        for name in &fields.extra_tubes {
            match name.trim().to_ascii_lowercase().parse::<TubeKind>() {
                Ok(kind) if !seen.insert(kind) => wrong(
                    OrderField::ExtraTubes,
                    format!(
                        "the {kind} tube is listed twice (control and quad are always measured)"
                    ),
                ),
                Ok(kind) => extra_tubes.push(kind),
                Err(_) => wrong(
                    OrderField::ExtraTubes,
                    format!(
                        "{:?} is not one of cd45, igg, epcam, muc1, her2, egfr",
                        name.chars().take(40).collect::<String>()
                    ),
                ),
            }
        }
        let replicates = match fields.replicates.trim() {
            "" => Some(DEFAULT_REPLICATES),
            text => match text.parse::<u32>() {
                Ok(n) if (MIN_REPLICATES..=MAX_REPLICATES).contains(&n) => Some(n),
                _ => {
                    wrong(
                        OrderField::Replicates,
                        format!(
                            "{:?} per tube; allowed {MIN_REPLICATES} to {MAX_REPLICATES}",
                            text.chars().take(20).collect::<String>()
                        ),
                    );
                    None
                }
            },
        };
        let simulate = simulated_truth(fields, context.simulated)
            .map_err(|reason| wrong(OrderField::Simulate, reason))
            .ok()
            .flatten();
        match (mrn, accession, blood, reagent_lot, replicates) {
            (Some(mrn), Some(accession), Some(blood), Some(reagent_lot), Some(replicates))
                if problems.is_empty() =>
            {
                Ok(Self {
                    mrn,
                    birth_date,
                    accession,
                    blood,
                    indication,
                    indication_override_reason,
                    reagent_lot,
                    drawn_at,
                    extra_tubes,
                    replicates,
                    manual_tube_confirmation: fields.manual_tube_confirmation,
                    simulate,
                })
            }
            _ => Err(OrderProblems(problems)),
        }
    }

    /// The engine's request for this order, by `operator`.
    pub fn request(&self, operator: Actor) -> RunRequest {
        RunRequest {
            birth_date: self.birth_date.map(|d| d.to_string()),
            indication: self.indication.as_ref().map(|i| i.as_str().to_owned()),
            indication_override_reason: self.indication_override_reason.clone(),
            reagent_lot: Some(self.reagent_lot.as_str().to_owned()),
            drawn_at: self.drawn_at.map(|at| at.to_rfc3339()),
            extra_tubes: self.extra_tubes.clone(),
            replicates: self.replicates,
            manual_tube_confirmation: self.manual_tube_confirmation,
            simulate: self.simulate,
            operator,
            ..RunRequest::new(self.mrn.as_str(), self.accession.as_str(), self.blood.ml())
        }
    }
}

/// What the virtual tubes hold, when the order says (refused on hardware).
fn simulated_truth(
    fields: &RunOrderFields,
    simulated: bool,
) -> Result<Option<SimulatedTruth>, String> {
    let cells = optional_number(&fields.simulate_cells).map_err(|e| format!("cells: {e}"))?;
    let background = optional_number(&fields.simulate_background_per_s)
        .map_err(|e| format!("background_per_s: {e}"))?;
    let control_t2_ms = optional_number(&fields.simulate_control_t2_ms)
        .map_err(|e| format!("control_t2_ms: {e}"))?;
    let Some(cells) = cells else {
        if background.is_some() || control_t2_ms.is_some() {
            return Err("cells: give the simulated cells with the background or control T2".into());
        }
        return Ok(None);
    };
    if !simulated {
        return Err("simulated tube contents were given, but the board is real hardware".into());
    }
    let truth = SimulatedTruth {
        cells,
        background_per_s: background,
        control_t2_ms,
    };
    truth.check()?;
    Ok(Some(truth))
}

/// Why a run is cancelled: 3 to 1000 characters (kept in the audit trail and the run's cause).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelReason(String);

impl CancelReason {
    /// Shortest reason, in characters once surrounding white space is dropped.
    pub const MIN_CHARS: usize = 3;
    /// Longest reason, likewise.
    pub const MAX_CHARS: usize = 1000;

    /// The rule as an ECMA-262 pattern, for the API's document.
    pub fn pattern() -> String {
        crate::text_rule::trimmed_chars_pattern(Self::MIN_CHARS, Self::MAX_CHARS)
    }

    /// Parses a reason.
    pub fn parse(text: &str) -> Result<Self, OperationError> {
        let reason = text.trim();
        if (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&reason.chars().count()) {
            Ok(Self(reason.to_owned()))
        } else {
            Err(OperationError::invalid(
                "reason",
                format!(
                    "must be {} to {} characters",
                    Self::MIN_CHARS,
                    Self::MAX_CHARS
                ),
            ))
        }
    }

    /// The reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How much of a run a view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunDetail {
    /// The run, its sample and patient, every result version.
    Result,
    /// That, and its measurements (raw trains, fits, QC flags, stored T2 distributions).
    Readings,
    /// That, and the calibration used, the operator and the run's audit trail: the report.
    Report,
}

/// A run as viewed.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    /// The run.
    pub run: Run,
    /// Its sample.
    pub sample: Sample,
    /// Whose sample.
    pub patient: Patient,
    /// Every version of its result, oldest first (the last is current).
    pub versions: Vec<ResultVersion>,
    /// Its measurements with their T2 distributions ([`RunDetail::Readings`] and more).
    pub measurements: Vec<Measurement>,
    /// The calibration its result used ([`RunDetail::Report`]).
    pub calibration: Option<Calibration>,
    /// Who started it (`None`: the appliance, or not asked for).
    pub operator: Option<User>,
    /// The audit trail of the run and its result versions, oldest first ([`RunDetail::Report`]).
    pub audit: Vec<AuditRecord>,
    /// The QC judgements of the run (at start, at release), oldest first, each with the control
    /// values it relied on as judged then.
    pub qc_basis: Vec<QcBasis>,
    /// The patient's previous released result, drawn before this one ([`RunDetail::Report`],
    /// and only for those who may view patients' data: it is the patient's history).
    pub previous: Option<TrendPoint>,
}

impl RunRecord {
    /// The current version of the result.
    pub fn current(&self) -> Option<&ResultVersion> {
        self.versions.last()
    }

    /// The current result as reported (status, call, printed count), if any.
    pub fn reported(&self) -> Option<Reported> {
        Reported::of(self.run.state, &self.versions)
    }

    /// The QC the result relies on ([`crate::reported::qc_relied_on`]).
    pub fn qc_relied_on(&self) -> Option<&QcBasis> {
        crate::reported::qc_relied_on(&self.qc_basis)
    }
}

/// How long after it was queued an operator still works on a run they started (its live view,
/// its preliminary result): a shift.
pub const OPERATOR_WORKING_HOURS: i64 = 12;

/// Whether `who` may open `run` (its record, live view, report, PDF, and its place in the
/// dashboard's lists). Those who may view patients' data (clinicians, lab admins, the console)
/// open any run. An operator opens only the runs they are working on: any run in flight on the
/// instrument (a colleague's included, to confirm its tube), and a run they started that is not
/// released, queued within the last [`OPERATOR_WORKING_HOURS`]; never a released report nor
/// other patients' history.
pub fn may_open_run(who: &Requester, run: &Run, now: Timestamp) -> bool {
    if who.may(Permission::ViewPatients) {
        return true;
    }
    if RunState::IN_FLIGHT.contains(&run.state) {
        return true;
    }
    let own = match (who.user(), run.operator_id) {
        (Some(user), Some(operator)) => user.id == operator,
        _ => false,
    };
    let recent = run
        .queued_at
        .plus(time::Duration::hours(OPERATOR_WORKING_HOURS))
        > now;
    own && recent && run.state != RunState::Released
}

/// [`may_open_run`], or the refusal naming what an operator may open.
fn require_may_open(who: &Requester, run: &Run, now: Timestamp) -> Result<(), OperationError> {
    if may_open_run(who, run, now) {
        Ok(())
    } else {
        Err(OperationError::Forbidden {
            role: who
                .user()
                .map_or_else(|| "console".to_owned(), |u| u.role.to_string()),
            action: "open a run other than the unreleased ones they are working on (released \
                     results and patients' history are for clinicians)",
        })
    }
}

/// A run in a list, with its sample, patient and the current version of its result (one row of
/// a page read in one query: `Store::run_list_page`).
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The run.
    pub run: Run,
    /// Its sample.
    pub sample: ListedSample,
    /// Whose.
    pub patient: Patient,
    /// The current version of its result, if any.
    pub current: Option<ListedResult>,
    /// The current result as reported (status, call, printed count), if any.
    pub reported: Option<Reported>,
}

impl From<ListedRun> for RunSummary {
    fn from(listed: ListedRun) -> Self {
        let reported = listed
            .current
            .as_ref()
            .map(|current| Reported::of_summary(listed.run.state, &current.summary, current.marks));
        Self {
            run: listed.run,
            sample: listed.sample,
            patient: listed.patient,
            current: listed.current,
            reported,
        }
    }
}

/// The runs a person works from: those in flight, the latest results, and (for those who may
/// release) the results awaiting release, each list a bounded page read in one query.
#[derive(Clone, Debug, PartialEq)]
pub struct Worklist {
    /// One page of the runs queued, measuring or waiting for a tube, oldest first, at most
    /// [`IN_FLIGHT_PAGE_SIZE`].
    pub in_flight: Vec<RunSummary>,
    /// Where the next page of runs in flight starts, when there are more.
    pub in_flight_next: Option<RunId>,
    /// The latest measured runs with a result the requester may open, ordered by when their
    /// blood was drawn, latest draw first (a sample drawn yesterday and measured today sorts
    /// below this morning's; same draw time: the later run first).
    pub recent_results: Vec<RunSummary>,
    /// One page of the runs whose result awaits release, oldest first, at most
    /// [`AWAITING_PAGE_SIZE`] (empty unless the requester may release).
    pub awaiting_release: Vec<RunSummary>,
    /// Where the next page of results awaiting release starts (`after` for the next call), when
    /// there are more.
    pub awaiting_next: Option<RunId>,
}

/// Where the worklist's pages start (none: the first page of each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorklistCursors {
    /// The last run of the page of runs in flight before.
    pub in_flight_after: Option<RunId>,
    /// The last run of the page of results awaiting release before.
    pub awaiting_after: Option<RunId>,
}

/// Results awaiting release shown per page of the worklist: the dashboard stays the same size
/// however many results wait (the outside probe's 100,000 waiting results timed the page out).
pub const AWAITING_PAGE_SIZE: u32 = 25;

/// Runs in flight shown per page of the worklist (however many are queued).
pub const IN_FLIGHT_PAGE_SIZE: u32 = 25;

/// Most recent results the worklist shows.
pub const MAX_RECENT_RESULTS: u32 = 100;

/// One page of `page` holding at most `size` runs, read as `size + 1` so that one more says
/// whether another page follows: the rows and the run the next page starts from.
pub(crate) async fn run_page(
    store: &appliance::store::Store,
    page: RunListPage,
    size: u32,
) -> Result<(Vec<RunSummary>, Option<RunId>), OperationError> {
    let mut rows = store.run_list_page(page, size + 1).await?;
    let next = if rows.len() > size as usize {
        rows.truncate(size as usize);
        rows.last().map(|row| row.run.id)
    } else {
        None
    };
    Ok((rows.into_iter().map(RunSummary::from).collect(), next))
}

/// Audit rows a run's report shows at most, per record.
const AUDIT_ROWS: u32 = 500;

impl Operations {
    /// What a run order is checked against here: the configured indications, the reagent lots
    /// with an approved calibration (and the simulated lot on the simulated board), the clock.
    pub async fn order_context(&self) -> Result<OrderContext, OperationError> {
        let simulated = self.is_simulated();
        let mut reagent_lots: Vec<String> = Vec::new();
        if simulated {
            reagent_lots.push(SIMULATED_LOT.to_owned());
        }
        for lot in self.store.approved_calibration_lots().await? {
            if !reagent_lots.contains(&lot) {
                reagent_lots.push(lot);
            }
        }
        Ok(OrderContext {
            indications: self
                .settings
                .indications
                .indications
                .keys()
                .cloned()
                .collect(),
            reagent_lots,
            simulated,
            now: Timestamp::now(),
            time_zone: self.settings.site.time_zone.clone(),
        })
    }

    /// Parses `fields` against this appliance ([`RunOrder::parse`]).
    pub async fn parse_order(
        &self,
        fields: &RunOrderFields,
    ) -> Result<Result<RunOrder, OrderProblems>, OperationError> {
        Ok(RunOrder::parse(fields, &self.order_context().await?))
    }

    /// Starts a run (operators and lab admins; the patient is registered when new): the engine
    /// records the sample and its tubes and queues the run. Refused, in words, without an
    /// approved calibration for the run's lot (`Operations::calibration_for_run`) or, under the
    /// default QC policy, without today's passing QC.
    pub async fn start_run(
        &self,
        who: &Requester,
        order: &RunOrder,
    ) -> Result<RunTicket, OperationError> {
        who.require(Permission::OperateRuns)?;
        let engine = self.engine()?;
        self.calibration_for_run(&order.reagent_lot).await?;
        let mut relied = Vec::new();
        if self.settings.qc_policy == QcPolicy::RequirePassing {
            let gate = self.qc_gate(&order.reagent_lot, Timestamp::now()).await?;
            if !gate.passed() {
                return Err(OperationError::Conflict(format!(
                    "the run was not started: QC has not passed today ({}). Run and record both \
                     controls first",
                    gate.missing_text()
                )));
            }
            relied = gate.relied();
        }
        // The QC the run starts on, kept as judged now (the report names it), stored in the
        // run's own transaction.
        Ok(engine
            .start_run_relying_on(order.request(who.actor()), &relied)
            .await?)
    }

    /// The operator confirms the tube a run waits for is in the coil (audited).
    pub async fn confirm_tube(&self, who: &Requester, run_id: RunId) -> Result<(), OperationError> {
        who.require(Permission::OperateRuns)?;
        let run = self.store.run(run_id).await?;
        self.engine()?.confirm_tube(run.id)?;
        self.store
            .record_event(
                &who.actor(),
                AuditEntry::new("run.tube_confirmed", "run").id(run.id),
            )
            .await?;
        Ok(())
    }

    /// Cancels a run with a reason: a queued one at once, a measuring one at its next step, one
    /// awaiting release at once (its result is never released). The state it is, or will
    /// shortly be, in.
    pub async fn cancel_run(
        &self,
        who: &Requester,
        run_id: RunId,
        reason: &CancelReason,
    ) -> Result<RunState, OperationError> {
        who.require(Permission::OperateRuns)?;
        let run = self.store.run(run_id).await?;
        Ok(self
            .engine()?
            .cancel(run.id, &who.actor(), reason.as_str())
            .await?)
    }

    /// The worklist (anyone who may view runs): one page of the runs in flight, the `recent`
    /// latest measured results the requester may open (shown by draw time) (at most [`MAX_RECENT_RESULTS`]), and for those
    /// who may release one page of the results awaiting release; `cursors` say where the pages
    /// start. Each list is one query however many runs there are. A list, not a view of one
    /// patient's data: not audited (opening a run or a patient is).
    pub async fn worklist(
        &self,
        who: &Requester,
        recent: u32,
        cursors: WorklistCursors,
    ) -> Result<Worklist, OperationError> {
        who.require(Permission::ViewRuns)?;
        let (in_flight, in_flight_next) = run_page(
            &self.store,
            RunListPage::InFlight {
                after: cursors.in_flight_after,
            },
            IN_FLIGHT_PAGE_SIZE,
        )
        .await?;
        // An operator may open only some results: a few pages' worth are read in the one query
        // and those they may not open are left out.
        let recent = recent.min(MAX_RECENT_RESULTS) as usize;
        let scanned = u32::try_from(recent.saturating_mul(3)).unwrap_or(u32::MAX);
        let now = Timestamp::now();
        let recent_results: Vec<RunSummary> = self
            .store
            .run_list_page(RunListPage::WithResults { before: None }, scanned)
            .await?
            .into_iter()
            .filter(|listed| may_open_run(who, &listed.run, now))
            .take(recent)
            .map(RunSummary::from)
            .collect();
        let mut recent_results = recent_results;
        recent_results.sort_by_key(|s| std::cmp::Reverse((s.sample.drawn_at, s.run.id)));
        let (awaiting_release, awaiting_next) = if who.may(Permission::ReleaseResults) {
            run_page(
                &self.store,
                RunListPage::AwaitingRelease {
                    after: cursors.awaiting_after,
                },
                AWAITING_PAGE_SIZE,
            )
            .await?
        } else {
            (Vec::new(), None)
        };
        Ok(Worklist {
            in_flight,
            in_flight_next,
            recent_results,
            awaiting_release,
            awaiting_next,
        })
    }

    /// The newest `limit` entries of the instrument log, newest first (anyone who may read the
    /// instrument's status).
    pub async fn instrument_log(
        &self,
        who: &Requester,
        limit: u32,
    ) -> Result<Vec<appliance::store::instrument_log::LogEntry>, OperationError> {
        who.require(Permission::ViewInstrument)?;
        Ok(self.store.instrument_log(None, limit).await?)
    }

    /// The instrument's status as pages and the API show it (anyone who may read it): the
    /// engine's snapshot (none without an engine: a default one), with the last tune's time and
    /// frequency from the instrument log, so they survive a restart (the engine's snapshot
    /// starts empty; the log is where every tune is written).
    pub async fn instrument_status(
        &self,
        who: &Requester,
    ) -> Result<appliance::engine::EngineStatus, OperationError> {
        who.require(Permission::ViewInstrument)?;
        let mut status = self
            .engine
            .as_ref()
            .map(|engine| engine.status())
            .unwrap_or_default();
        let stored = self
            .store
            .instrument_log(Some(appliance::store::instrument_log::LogKind::Tune), 1)
            .await?;
        if let Some(tune) = stored.first() {
            status.last_tune_at = Some(tune.logged_at.to_rfc3339());
            if status.f0_hz.is_none() {
                status.f0_hz = tune.freq_hz;
            }
        }
        Ok(status)
    }

    /// Whether the database answers (the health check's question; no requester).
    pub async fn database_answers(&self) -> bool {
        self.store.user_count().await.is_ok()
    }

    /// A run's record: its state, times and cause, without its sample, patient or result (so not
    /// a view of patient data, and not audited): what a live view follows.
    pub async fn run(&self, who: &Requester, run_id: RunId) -> Result<Run, OperationError> {
        who.require(Permission::ViewRuns)?;
        let run = self.store.run(run_id).await?;
        require_may_open(who, &run, Timestamp::now())?;
        Ok(run)
    }

    /// A run's published events after number `after` (0: all), oldest first, for the live view
    /// to replay (whoever may open the run). Not audited as a view of patient data: the events
    /// name tubes, steps and states; the run's result is viewed through [`Self::view_run`].
    pub async fn run_history(
        &self,
        who: &Requester,
        run_id: RunId,
        after: i64,
    ) -> Result<Vec<appliance::store::run_events::StoredRunEvent>, OperationError> {
        who.require(Permission::ViewRuns)?;
        let run = self.store.run(run_id).await?;
        require_may_open(who, &run, Timestamp::now())?;
        Ok(self.store.run_events_after(run_id, after).await?)
    }

    /// Views a run (anyone who may view runs): `detail` says how much. Audited here, once, for
    /// every front end: `run.result_view` when the run has a result, else `run.view`, with
    /// `from` (where it was viewed: `api`, `report page`, …). The report's T2 distributions were
    /// stored when measured; a measurement stored before they were kept gets its distribution
    /// computed now from its raw train and stored, once.
    pub async fn view_run(
        &self,
        who: &Requester,
        run_id: RunId,
        detail: RunDetail,
        from: &str,
    ) -> Result<RunRecord, OperationError> {
        who.require(Permission::ViewRuns)?;
        let run = self.store.run(run_id).await?;
        require_may_open(who, &run, Timestamp::now())?;
        let sample = self.store.sample(run.sample_id).await?;
        let patient = self.store.patient(sample.patient_id).await?;
        let versions = self.store.result_versions(run.id).await?;
        self.store
            .record_view(
                &who.actor(),
                AuditEntry::new(
                    if versions.is_empty() {
                        "run.view"
                    } else {
                        "run.result_view"
                    },
                    "run",
                )
                .id(run.id)
                .detail(serde_json::json!({ "from": from, "patient_id": patient.id })),
            )
            .await?;
        let mut record = RunRecord {
            run,
            sample,
            patient,
            versions,
            measurements: Vec::new(),
            calibration: None,
            operator: None,
            audit: Vec::new(),
            qc_basis: Vec::new(),
            previous: None,
        };
        record.qc_basis = self.store.qc_basis(record.run.id).await?;
        if detail == RunDetail::Result {
            return Ok(record);
        }
        record.measurements = self.store.run_measurements(record.run.id).await?;
        if detail == RunDetail::Readings {
            return Ok(record);
        }
        if who.may(Permission::ViewPatients) {
            record.previous = self
                .store
                .patient_trend(record.patient.id)
                .await?
                .into_iter()
                .rev()
                .find(|p| {
                    p.released && p.run_id != record.run.id && p.drawn_at < record.sample.drawn_at
                });
        }
        self.complete_t2_distributions(&mut record.measurements)
            .await?;
        record.calibration = match record.run.calibration_id {
            Some(id) => Some(self.store.calibration(id).await?),
            None => None,
        };
        record.operator = match record.run.operator_id {
            Some(id) => Some(self.store.user(id).await?),
            None => None,
        };
        record.audit = self.run_audit_trail(&record).await?;
        Ok(record)
    }

    /// Computes and stores the T2 distribution of each measurement that has none (stored before
    /// distributions were kept), off the async threads.
    async fn complete_t2_distributions(
        &self,
        measurements: &mut [Measurement],
    ) -> Result<(), OperationError> {
        let missing: Vec<(usize, nmr_core::EchoTrain)> = measurements
            .iter()
            .enumerate()
            .filter(|(_, m)| m.t2_distribution.is_none())
            .map(|(index, m)| (index, m.train.clone()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let computed = tokio::task::spawn_blocking(move || {
            missing
                .into_iter()
                .map(|(index, train)| (index, t2_distribution(&train)))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|error| {
            OperationError::Conflict(format!("computing T2 distributions failed: {error}"))
        })?;
        for (index, distribution) in computed {
            let measurement = &mut measurements[index];
            self.store
                .add_t2_distribution(&Actor::Appliance, measurement.id, &distribution)
                .await?;
            measurement.t2_distribution = Some(distribution);
        }
        Ok(())
    }

    /// The audit trail of a run and of its result versions, oldest first.
    async fn run_audit_trail(
        &self,
        record: &RunRecord,
    ) -> Result<Vec<AuditRecord>, OperationError> {
        let mut subjects = vec![("run", record.run.id.0)];
        subjects.extend(record.versions.iter().map(|v| ("result", v.id.0)));
        let mut rows = Vec::new();
        for (entity, id) in subjects {
            rows.extend(
                self.store
                    .audit_entries(&AuditQuery {
                        entity: Some(entity.to_owned()),
                        entity_id: Some(id.to_string()),
                        limit: AUDIT_ROWS,
                        ..AuditQuery::default()
                    })
                    .await?,
            );
        }
        rows.sort_by_key(|row| row.id.0);
        rows.dedup_by_key(|row| row.id.0);
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> OrderContext {
        OrderContext {
            indications: vec!["breast".into(), "prostate".into()],
            reagent_lots: vec!["L1".into()],
            simulated: false,
            now: Timestamp::parse("2026-11-24T12:00:00Z").expect("a time"),
            time_zone: SiteTimeZone::utc(),
        }
    }

    fn fields(mrn: &str, blood: &str, indication: &str, lot: &str, drawn: &str) -> RunOrderFields {
        RunOrderFields {
            patient_mrn: mrn.into(),
            accession: "ACC-1".into(),
            blood_ml: blood.into(),
            indication: indication.into(),
            reagent_lot: lot.into(),
            drawn_at: drawn.into(),
            ..RunOrderFields::default()
        }
    }

    #[test]
    fn a_good_order_parses_with_its_defaults() {
        let order = RunOrder::parse(
            &fields("a-1", "7.5", "breast", "L1", "2026-01-02T03:04"),
            &context(),
        )
        .expect("valid");
        assert_eq!(order.mrn.as_str(), "A-1");
        assert_eq!(order.blood.ml(), 7.5);
        assert_eq!(
            order.drawn_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-01-02T03:04:00Z")
        );
        assert_eq!(order.replicates, DEFAULT_REPLICATES);
        assert!(order.simulate.is_none() && order.extra_tubes.is_empty());
        let request = order.request(Actor::Appliance);
        assert_eq!(request.reagent_lot.as_deref(), Some("L1"));
        assert_eq!(request.tubes(), [TubeKind::Control, TubeKind::Quad]);
        let rfc = RunOrder::parse(
            &fields("A-1", "7.5", "", "L1", "2026-01-02T03:04:05+01:00"),
            &context(),
        )
        .expect("RFC 3339");
        assert_eq!(
            rfc.drawn_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-01-02T02:04:05Z")
        );
        assert_eq!(rfc.indication, None);
    }

    /// The blood-volume limit is the store's one range: its edges are taken, just outside is
    /// refused, on every front end (they all parse here).
    #[test]
    fn the_blood_volume_limit_is_the_one_range() {
        let parse = |ml: &str| RunOrder::parse(&fields("A-1", ml, "", "L1", ""), &context());
        for ml in [BloodVolume::MIN_ML, 7.5, BloodVolume::MAX_ML] {
            assert!(parse(&ml.to_string()).is_ok(), "{ml} mL");
        }
        for ml in ["0.49", "50.01", "0", "-1", "NaN", "inf", "lots", ""] {
            let problems = parse(ml).expect_err(ml);
            assert_eq!(problems.0.len(), 1, "{ml}: {problems:?}");
            assert_eq!(problems.0[0].field, OrderField::BloodMl, "{ml}");
        }
    }

    #[test]
    fn every_wrong_field_is_named() {
        let mut wrong = fields("", "0.1", "liver", "L9", "yesterday");
        wrong.birth_date = "23.04.1961".into();
        wrong.accession = "26 CTC".into();
        wrong.extra_tubes = vec!["plasma".into(), "cd45".into(), "cd45".into()];
        wrong.replicates = "1".into();
        wrong.simulate_cells = "12".into();
        let problems = RunOrder::parse(&wrong, &context()).expect_err("invalid");
        let named: Vec<OrderField> = problems.0.iter().map(|p| p.field).collect();
        assert_eq!(
            named,
            [
                OrderField::PatientMrn,
                OrderField::BirthDate,
                OrderField::Accession,
                OrderField::BloodMl,
                OrderField::Indication,
                OrderField::ReagentLot,
                OrderField::DrawnAt,
                OrderField::ExtraTubes,
                OrderField::ExtraTubes,
                OrderField::Replicates,
                OrderField::Simulate,
            ]
        );
        let lines = problems.lines().join("\n");
        for label in [
            "Patient MRN",
            "Date of birth",
            "Accession number",
            "Blood volume",
            "Indication",
            "Reagent lot",
            "Draw time",
        ] {
            assert!(lines.contains(label), "{label} not in {lines}");
        }
        assert!(lines.contains("real hardware"), "{lines}");
        let first = OperationError::from(problems);
        assert!(
            matches!(
                first,
                OperationError::Invalid {
                    field: "patient_mrn",
                    ..
                }
            ),
            "{first:?}"
        );
    }

    #[test]
    fn draw_times_in_the_future_or_before_2000_are_refused() {
        let now = context().now;
        let utc = SiteTimeZone::utc();
        let at = |text: &str| parse_draw_time(text, now, &utc);
        assert!(at("2026-11-24T08:30:00Z").is_ok());
        assert!(at("2026-11-24T12:04").is_ok(), "within the clock skew");
        assert!(at("2000-01-01T00:00:00Z").is_ok());
        assert!(
            at("2026-11-24T12:06")
                .expect_err("ahead")
                .contains("future")
        );
        assert!(
            at("1999-12-31T23:59:59Z")
                .expect_err("old")
                .contains("2000")
        );
        assert!(at("tomorrow").expect_err("words").contains("not a date"));
    }

    #[test]
    fn a_draw_time_typed_in_the_sites_zone_is_stored_as_the_right_instant_across_dst() {
        let berlin: SiteTimeZone = "Europe/Berlin".parse().expect("a zone");
        let now = Timestamp::parse("2026-12-02T12:00:00Z").expect("a time");
        let at = |text: &str| parse_draw_time(text, now, &berlin);
        // Winter time (+01:00), summer time (+02:00), and either side of the spring change.
        let instant = |text: &str| at(text).expect(text).to_rfc3339();
        assert_eq!(instant("2026-12-02T09:30"), "2026-12-02T08:30:00Z");
        assert_eq!(instant("2026-07-01T09:30"), "2026-07-01T07:30:00Z");
        assert_eq!(instant("2026-03-29T01:59"), "2026-03-29T00:59:00Z");
        assert_eq!(instant("2026-03-29T03:00"), "2026-03-29T01:00:00Z");
        // An explicit offset is taken as given.
        assert_eq!(instant("2026-10-25T02:30:00+01:00"), "2026-10-25T01:30:00Z");
        assert_eq!(instant("2026-10-25T02:30+02:00"), "2026-10-25T00:30:00Z");
        // The spring gap: refused in words, nothing guessed.
        let gap = at("2026-03-29T02:30").expect_err("a time that never happened");
        assert!(
            gap.contains("did not happen in Europe/Berlin") && gap.contains("forward"),
            "{gap}"
        );
        // The autumn overlap: refused, naming both readings.
        let fold = at("2026-10-25T02:30").expect_err("a time that happened twice");
        assert!(
            fold.contains("happened twice")
                && fold.contains("2026-10-25T02:30+02:00")
                && fold.contains("2026-10-25T02:30+01:00"),
            "{fold}"
        );
        // The local field's text is not UTC: 12:30 Berlin is 11:30Z, in the past at noon UTC.
        assert!(at("2026-12-02T12:30").is_ok());
        assert!(
            at("2026-12-02T13:30")
                .expect_err("ahead")
                .contains("future")
        );
    }

    #[test]
    fn the_simulated_lot_is_the_default_only_on_the_simulated_board() {
        let mut simulated = context();
        simulated.simulated = true;
        simulated.reagent_lots.push(SIMULATED_LOT.into());
        let mut order = fields("A-1", "7.5", "", "", "");
        order.simulate_cells = "12".into();
        order.simulate_control_t2_ms = "180".into();
        let parsed = RunOrder::parse(&order, &simulated).expect("simulated");
        assert_eq!(parsed.reagent_lot.as_str(), SIMULATED_LOT);
        assert_eq!(parsed.simulate.map(|s| s.control_t2_ms), Some(Some(180.0)));
        let hardware = RunOrder::parse(&fields("A-1", "7.5", "", "", ""), &context())
            .expect_err("no lot on hardware");
        assert_eq!(hardware.0[0].field, OrderField::ReagentLot);
        order.simulate_cells = "2e6".into();
        assert!(
            RunOrder::parse(&order, &simulated).is_err(),
            "too many cells"
        );
        order.simulate_cells = String::new();
        let background_alone = RunOrder::parse(&order, &simulated).expect_err("no cells");
        assert_eq!(background_alone.0[0].field, OrderField::Simulate);
    }

    #[test]
    fn a_cancel_needs_a_reason() {
        assert!(CancelReason::parse("  ").is_err());
        assert!(CancelReason::parse("ab").is_err());
        assert!(CancelReason::parse(&"x".repeat(1001)).is_err());
        assert_eq!(
            CancelReason::parse(" tube dropped ").expect("ok").as_str(),
            "tube dropped"
        );
    }
}
