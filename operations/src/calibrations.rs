//! Calibrations: list and view them, import one, approve or reject it; and the rule that only an
//! approved calibration quantifies a patient result.
//!
//! One format: a calibration is imported as the TOML document `ferrocount calibrate` writes (and
//! the engine makes for its simulated lot), checked by `nmr_core`'s reader, and stored verbatim as
//! TOML; the lot and echo time it is filed under are read from the document, so they cannot
//! disagree with it. Rows stored as JSON by earlier versions are still read
//! (`CalibrationContent::document`, the one decoder).
//!
//! Every calibration is stored pending (an import, or the one the simulated appliance makes from
//! its dilution series). Approval is a signature-like act of a lab admin: the password re-entered
//! and the printed name (`Operations::confirm_signature`, as at a release) and a reason, audited;
//! the approved calibration becomes the one of its lot and echo time and the one it replaces is
//! superseded in the same transaction. A rejection takes the same signature and reason. States:
//! pending → approved → superseded, or pending → rejected (`migrations/0018` says why).
//!
//! The rule — only an approved calibration can quantify a patient result — is
//! [`quantifies_patient_results`], asked at a run's start by [`Operations::calibration_for_run`]
//! (a run without one does not start, and says in words what is missing and who can fix it). The
//! engine reads only the approved calibration when the run measures.

use std::net::IpAddr;

use appliance::engine::SIMULATED_LOT;
use appliance::store::CalibrationId;
use appliance::store::calibrations::{
    Calibration, CalibrationContent, CalibrationDecision, CalibrationPage, CalibrationState,
    NewCalibration, ReagentLot,
};

use crate::signature::SignatureInput;
use crate::{OperationError, Operations, Permission, Requester};

/// Calibrations a page holds unless asked otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 25;

/// The most calibrations a page holds.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The rule: a calibration quantifies a patient result only when a lab admin has approved it (a
/// pending, superseded or rejected one never does). The one home of the rule.
pub fn quantifies_patient_results(calibration: &Calibration) -> bool {
    calibration.state == CalibrationState::Approved
}

/// A calibration as imported: its document checked, filed under its own lot and echo time.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationImport {
    /// The document, read.
    pub calibration: nmr_core::assay::Calibration,
    /// What is stored: the TOML text as given.
    pub new: NewCalibration,
}

impl CalibrationImport {
    /// Parses a calibration document (TOML, as `ferrocount calibrate` writes it) and a note.
    pub fn parse(document: &str, note: Option<&str>) -> Result<Self, OperationError> {
        let calibration = nmr_core::assay::Calibration::from_toml(document)
            .map_err(|error| OperationError::invalid("content", error.to_string()))?;
        let te_us = calibration.te_ms * 1000.0;
        if !(te_us.is_finite() && te_us >= 1.0 && te_us <= f64::from(u32::MAX)) {
            return Err(OperationError::invalid(
                "content",
                format!("te_ms = {} is not a usable echo time", calibration.te_ms),
            ));
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 500) {
            return Err(OperationError::invalid("note", "at most 500 characters"));
        }
        let new = NewCalibration {
            reagent_lot: ReagentLot::parse(&calibration.lot)
                .map_err(|e| OperationError::invalid("content", e.to_string()))?,
            te_us: te_us.round() as u32,
            content: CalibrationContent::toml(document)?,
            note: note.map(str::to_owned),
        };
        Ok(Self { calibration, new })
    }
}

/// Why a calibration is approved or rejected: 1 to 500 characters, kept with it and in the
/// audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionReason(String);

impl DecisionReason {
    /// Parses a reason.
    pub fn parse(text: &str) -> Result<Self, OperationError> {
        let reason = text.trim();
        if reason.is_empty() {
            return Err(OperationError::invalid(
                "reason",
                "say why this calibration is approved or rejected (it goes into the audit trail)",
            ));
        }
        if reason.chars().count() > 500 {
            return Err(OperationError::invalid("reason", "at most 500 characters"));
        }
        Ok(Self(reason.to_owned()))
    }

    /// The reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Operations {
    /// One page of calibrations, newest first: `size` (default [`DEFAULT_PAGE_SIZE`], at most
    /// [`MAX_PAGE_SIZE`]) below `before`; one statement a page.
    pub async fn calibration_page(
        &self,
        who: &Requester,
        before: Option<CalibrationId>,
        size: Option<u32>,
    ) -> Result<CalibrationPage, OperationError> {
        who.require(Permission::ViewCalibrations)?;
        let size = size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(OperationError::invalid(
                "limit",
                format!("a page holds 1 to {MAX_PAGE_SIZE} calibrations"),
            ));
        }
        Ok(self.store.calibration_page(before, size).await?)
    }

    /// One calibration.
    pub async fn calibration(
        &self,
        who: &Requester,
        id: CalibrationId,
    ) -> Result<Calibration, OperationError> {
        who.require(Permission::ViewCalibrations)?;
        Ok(self.store.calibration(id).await?)
    }

    /// The printed name of whoever approved or rejected a calibration (`None`: undecided, or
    /// decided at the appliance's console), for the pages to name them.
    pub async fn calibration_decider(
        &self,
        who: &Requester,
        calibration: &Calibration,
    ) -> Result<Option<String>, OperationError> {
        who.require(Permission::ViewCalibrations)?;
        match calibration.decided_by {
            Some(id) => Ok(Some(self.store.user(id).await?.display_name)),
            None => Ok(None),
        }
    }

    /// Imports a calibration (lab admins): stored pending, to be approved on its own.
    pub async fn import_calibration(
        &self,
        who: &Requester,
        import: &CalibrationImport,
    ) -> Result<Calibration, OperationError> {
        who.require(Permission::ManageCalibrations)?;
        Ok(self
            .store
            .add_calibration(&who.actor(), &import.new)
            .await?)
    }

    /// A lab admin approves or rejects a pending calibration, signing as at a release: the
    /// password re-entered and the printed name ([`Operations::confirm_signature`]; a failure is
    /// audited as `calibration.sign_refused`), and a reason. Approving supersedes the approved
    /// calibration of its lot and echo time. A document that does not read is never approved.
    pub async fn decide_calibration(
        &self,
        who: &Requester,
        client: IpAddr,
        id: CalibrationId,
        decision: CalibrationDecision,
        reason: &DecisionReason,
        signature: &SignatureInput,
    ) -> Result<Calibration, OperationError> {
        who.require(Permission::ManageCalibrations)?;
        let Some(signer) = who.user() else {
            return Err(OperationError::Forbidden {
                role: "console".into(),
                action: "sign a calibration's approval (a lab admin signs in person)",
            });
        };
        let stored = self.store.calibration(id).await?;
        if stored.state != CalibrationState::Pending {
            return Err(OperationError::Conflict(format!(
                "calibration {} is {}: only a pending calibration is approved or rejected",
                id.0, stored.state
            )));
        }
        if decision == CalibrationDecision::Approve {
            stored.content.document().map_err(|error| {
                OperationError::Conflict(format!(
                    "calibration {} does not read ({error}); it cannot be approved",
                    id.0
                ))
            })?;
        }
        self.confirm_signature(
            signer,
            client,
            signature,
            "calibration.sign_refused",
            "calibration",
            id.0,
        )
        .await?;
        Ok(self
            .store
            .decide_calibration(&who.actor(), id, decision, reason.as_str())
            .await?)
    }

    /// The appliance's console (the demo's seeding, `ferrocount run
    /// --approve-simulated-calibration`) makes the simulated lot's calibration on the simulated
    /// board and approves it in its own name with `reason`, audited as the appliance; a person
    /// approves on the Calibrations page instead. An approved one already there is kept.
    pub async fn approve_simulated_calibration_as_console(
        &self,
        who: &Requester,
        reason: &DecisionReason,
    ) -> Result<Calibration, OperationError> {
        if who.user().is_some() {
            return Err(OperationError::Forbidden {
                role: "signed-in user".into(),
                action: "approve without signing (approve on the Calibrations page)",
            });
        }
        let engine = self.engine()?;
        let lot = ReagentLot::parse(SIMULATED_LOT)?;
        if let Some(approved) = self
            .store
            .active_calibration(&lot, engine.config().te_us())
            .await?
        {
            return Ok(approved);
        }
        let made = self.make_simulated_calibration(who).await?;
        Ok(self
            .store
            .decide_calibration(
                &who.actor(),
                made.id,
                CalibrationDecision::Approve,
                reason.as_str(),
            )
            .await?)
    }

    /// Measures the simulated lot's dilution series on the simulated board and stores the
    /// calibration PENDING (lab admins; the simulated board only).
    pub async fn make_simulated_calibration(
        &self,
        who: &Requester,
    ) -> Result<Calibration, OperationError> {
        who.require(Permission::ManageCalibrations)?;
        let engine = self.engine()?;
        if !engine.is_simulated() {
            return Err(OperationError::Conflict(
                "the simulated lot is calibrated on the simulated board only; import a \
                 calibration made with `ferrocount calibrate` instead"
                    .into(),
            ));
        }
        match engine.calibrate_simulated_lot().await {
            Ok(made) => Ok(made),
            Err(appliance::engine::EngineError::Calibration(failure)) => Err(
                OperationError::Conflict(format!("no calibration was made: {}", failure.message)),
            ),
            Err(other) => Err(other.into()),
        }
    }

    /// The calibration a patient run on `lot` is counted with: the approved one of the lot at
    /// the engine's echo time ([`quantifies_patient_results`]). Otherwise the run does not
    /// start, and the refusal says what is missing and who can fix it.
    pub async fn calibration_for_run(
        &self,
        lot: &ReagentLot,
    ) -> Result<Calibration, OperationError> {
        let engine = self.engine()?;
        let te_us = engine.config().te_us();
        let approved = self
            .store
            .active_calibration(lot, te_us)
            .await?
            .filter(quantifies_patient_results);
        if let Some(approved) = approved {
            return Ok(approved);
        }
        let te = format!("{:.2} ms", f64::from(te_us) / 1000.0);
        let pending = self.store.pending_calibration(lot, te_us).await?;
        let what = match pending {
            Some(id) => format!(
                "calibration {} of reagent lot {lot} at TE {te} awaits approval: a lab admin \
                 approves it (or rejects it) on the Calibrations page",
                id.0
            ),
            None if engine.is_simulated() && lot.as_str() == SIMULATED_LOT => format!(
                "reagent lot {lot} has no calibration at TE {te}: a lab admin makes one from \
                 the simulated dilution series on the Calibrations page and approves it"
            ),
            None => format!(
                "reagent lot {lot} has no approved calibration at TE {te}: a lab admin imports \
                 the lot's calibration (the file `ferrocount calibrate` writes) on the \
                 Calibrations page and approves it"
            ),
        };
        Err(OperationError::Conflict(format!(
            "the run was not started: no approved calibration ({what})"
        )))
    }
}
