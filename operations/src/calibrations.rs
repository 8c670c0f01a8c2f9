//! Calibrations: list and view them, import one, and approve one by activating it with a reason.
//!
//! One format: a calibration is imported as the TOML document `ferrocount calibrate` writes (and
//! the engine makes for its simulated lot), checked by `nmr_core`'s reader, and stored verbatim as
//! TOML; the lot and echo time it is filed under are read from the document, so they cannot
//! disagree with it. Rows stored as JSON by earlier versions are still read
//! (`CalibrationContent::document`, the one decoder).
//!
//! Approval is activation: a lab admin makes a calibration the one used for its lot and echo time,
//! saying why (kept in the audit trail); the calibration it replaces is deactivated in the same
//! transaction.

use appliance::store::CalibrationId;
use appliance::store::calibrations::{Calibration, CalibrationContent, NewCalibration, ReagentLot};

use crate::{OperationError, Operations, Permission, Requester};

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

/// Why a calibration is activated: 1 to 500 characters, kept in the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivationReason(String);

impl ActivationReason {
    /// Parses a reason.
    pub fn parse(text: &str) -> Result<Self, OperationError> {
        let reason = text.trim();
        if reason.is_empty() {
            return Err(OperationError::invalid(
                "reason",
                "say why this calibration is activated (it goes into the audit trail)",
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
    /// Every calibration, newest first.
    pub async fn calibrations(&self, who: &Requester) -> Result<Vec<Calibration>, OperationError> {
        who.require(Permission::ViewCalibrations)?;
        Ok(self.store.calibrations().await?)
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

    /// Imports a calibration (lab admins); `activate` approves it at once, with that reason.
    pub async fn import_calibration(
        &self,
        who: &Requester,
        import: &CalibrationImport,
        activate: Option<&ActivationReason>,
    ) -> Result<Calibration, OperationError> {
        who.require(Permission::ManageCalibrations)?;
        let stored = self
            .store
            .add_calibration(&who.actor(), &import.new, false)
            .await?;
        match activate {
            Some(reason) => self.activate_calibration(who, stored.id, reason).await,
            None => Ok(stored),
        }
    }

    /// Approves a calibration (lab admins): makes it the active one of its lot and echo time,
    /// with a reason; the one it replaces is deactivated in the same transaction. A document
    /// that does not read is refused: it could not count a run.
    pub async fn activate_calibration(
        &self,
        who: &Requester,
        id: CalibrationId,
        reason: &ActivationReason,
    ) -> Result<Calibration, OperationError> {
        who.require(Permission::ManageCalibrations)?;
        let stored = self.store.calibration(id).await?;
        stored.content.document().map_err(|error| {
            OperationError::Conflict(format!(
                "calibration {} does not read ({error}); it cannot be activated",
                id.0
            ))
        })?;
        self.store
            .activate_calibration(&who.actor(), id, Some(reason.as_str()))
            .await?;
        Ok(self.store.calibration(id).await?)
    }
}
