//! The set-up checklist of a fresh instrument: what must be in place before the first patient
//! run, each step open or done. The one home of the rule "the instrument is set up";
//! [`checklist`] decides it, the dashboard shows it (with a link to each step's page) until it is
//! done, and the new-run page shows its open steps instead of the form while it is not.
//!
//! The steps:
//! - **Users**: at least two enabled accounts. The first lab admin (`ferrocount` makes it at the
//!   first start) sets the instrument up; the daily work needs at least one more person's own
//!   account (an operator, a clinician or a second lab admin — any role: a lab admin may do
//!   everything, so the minimum is a second person, not a role).
//! - **QC materials**: a control material of each level, negative and positive.
//! - **QC targets**: for each level, a lot of such a material that has not expired and has a
//!   target (mean and SD) the Westgard rules judge against.
//! - **Calibration**: an approved calibration of some reagent lot (the engine's own one on the
//!   simulated board is pending until a lab admin approves it).
//!
//! The clinical gates stay where they are: a run without an approved calibration of its lot does
//! not start ([`crate::calibrations`]), a result without today's passing controls is not released
//! ([`crate::qc_gate`]). The checklist guides the set-up; it adds no gate of its own to the API.

use appliance::store::Store;
use appliance::store::Timestamp;
use appliance::store::qc::{ControlLevel, QcMaterialKind};

use crate::{OperationError, Operations};

/// One step of the set-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetupStep {
    /// At least two enabled user accounts.
    Users,
    /// A control material of each level.
    QcMaterials,
    /// An unexpired lot with a target for each control level.
    QcTargets,
    /// An approved calibration.
    Calibration,
}

impl SetupStep {
    /// Every step, in the order they are done.
    pub const ALL: [SetupStep; 4] = [
        SetupStep::Users,
        SetupStep::QcMaterials,
        SetupStep::QcTargets,
        SetupStep::Calibration,
    ];

    /// What the step asks for, in words.
    pub fn words(self) -> &'static str {
        match self {
            Self::Users => {
                "Add at least one more user besides the first lab admin (the people who run \
                 samples and release results)"
            }
            Self::QcMaterials => "Add a negative and a positive control material",
            Self::QcTargets => {
                "Add an unexpired lot with a target (mean and SD) for both the negative and the \
                 positive control"
            }
            Self::Calibration => "Import a calibration and have a lab admin approve it",
        }
    }
}

/// The set-up of this instrument: which steps are still open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupChecklist {
    /// The open steps, in the order they are done (empty: set up).
    pub open: Vec<SetupStep>,
}

impl SetupChecklist {
    /// Whether every step is done.
    pub fn done(&self) -> bool {
        self.open.is_empty()
    }

    /// Whether `step` is still open.
    pub fn is_open(&self, step: SetupStep) -> bool {
        self.open.contains(&step)
    }
}

/// The checklist as the store stands at `now` (a lot expiring today still counts).
pub async fn checklist(store: &Store, now: Timestamp) -> Result<SetupChecklist, OperationError> {
    let users = store.users().await?;
    let enabled = users.iter().filter(|user| !user.disabled).count();
    let catalogue = store.qc_catalogue().await?;
    let today = now.datetime().date();
    let mut material_levels = Vec::new();
    let mut target_levels = Vec::new();
    for entry in &catalogue {
        let material = &entry.material;
        let Some(level) = material.control_level else {
            continue;
        };
        if material.kind != QcMaterialKind::Control {
            continue;
        }
        material_levels.push(level);
        if entry
            .lots
            .iter()
            .any(|lot| lot.lot.expires_on >= today && lot.target.is_some())
        {
            target_levels.push(level);
        }
    }
    let both = |levels: &[ControlLevel]| {
        levels.contains(&ControlLevel::Negative) && levels.contains(&ControlLevel::Positive)
    };
    let approved = !store.approved_calibration_lots().await?.is_empty();
    let open = SetupStep::ALL
        .into_iter()
        .filter(|step| match step {
            SetupStep::Users => enabled < 2,
            SetupStep::QcMaterials => !both(&material_levels),
            SetupStep::QcTargets => !both(&target_levels),
            SetupStep::Calibration => !approved,
        })
        .collect();
    Ok(SetupChecklist { open })
}

impl Operations {
    /// The set-up checklist now ([`checklist`]).
    pub async fn setup_checklist(&self) -> Result<SetupChecklist, OperationError> {
        checklist(&self.store, Timestamp::now()).await
    }
}
