//! What a caller asks for when it starts a run.

use nmr_core::assay::TubeKind;
use serde::Serialize;

use crate::store::Actor;

use super::simulated_lot::SimulatedTruth;

/// A sample run to queue.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRequest {
    /// Patient's medical record number (the patient is created when new).
    pub patient_mrn: String,
    /// The patient's date of birth, `YYYY-MM-DD` (the second identifier: checked against a
    /// known patient's, a mismatch refused before anything is stored; recorded for a new patient
    /// or one stored before birth dates were).
    pub birth_date: Option<String>,
    /// The specimen's accession number (unique).
    pub accession: String,
    /// Processed blood volume, mL.
    pub blood_ml: f64,
    /// Why the blood was drawn (an indication with a configured cut-off gives a call).
    pub indication: Option<String>,
    /// When `indication` differs from the patient's: the reason for that explicit override.
    pub indication_override_reason: Option<String>,
    /// Reagent lot of the tubes (default on the simulated board: the simulated lot; required on
    /// hardware).
    pub reagent_lot: Option<String>,
    /// When the blood was drawn, RFC 3339 (default: now).
    pub drawn_at: Option<String>,
    /// Tubes besides the control and quad-marker tubes, measured after them in this order.
    pub extra_tubes: Vec<TubeKind>,
    /// Replicate readings per tube (default 3; at least 2).
    pub replicates: u32,
    /// Wait for the operator to confirm each tube even on the simulated board.
    pub manual_tube_confirmation: bool,
    /// Simulated board only: what the virtual tubes hold. Refused on hardware. `None` on the
    /// simulated board: a sample without tumour cells (0 cells, the lot's background, the default
    /// control T2).
    pub simulate: Option<SimulatedTruth>,
    /// Who asks.
    pub operator: Actor,
}

impl RunRequest {
    /// A run of the control and quad tubes of the specimen `accession`, 3 replicates each, by
    /// the appliance itself.
    pub fn new(patient_mrn: &str, accession: &str, blood_ml: f64) -> Self {
        Self {
            patient_mrn: patient_mrn.to_owned(),
            birth_date: None,
            accession: accession.to_owned(),
            blood_ml,
            indication: None,
            indication_override_reason: None,
            reagent_lot: None,
            drawn_at: None,
            extra_tubes: Vec::new(),
            replicates: DEFAULT_REPLICATES,
            manual_tube_confirmation: false,
            simulate: None,
            operator: Actor::Appliance,
        }
    }

    /// All tubes in measuring order: control, quad, then the extras.
    pub fn tubes(&self) -> Vec<TubeKind> {
        let mut tubes = vec![TubeKind::Control, TubeKind::Quad];
        tubes.extend(self.extra_tubes.iter().copied());
        tubes
    }
}

/// Replicate readings per tube unless asked otherwise.
pub const DEFAULT_REPLICATES: u32 = 3;

/// Fewest replicate readings per tube a run may ask for: a spread needs two.
pub const MIN_REPLICATES: u32 = 2;

/// Most replicate readings per tube a run may ask for.
pub const MAX_REPLICATES: u32 = 10;

/// The answer to a queued run: its id and state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RunTicket {
    /// The run.
    pub id: crate::store::RunId,
    /// Its state (`queued`).
    pub state: crate::store::runs::RunState,
}
