//! The simulated reagent lot the simulated appliance ships, and what its virtual tubes hold.
//!
//! `SIM-LOT-1` is a quad-marker reagent whose true per-cell ΔR2 and background are documented
//! here, so a whole run can be checked against truth: a labelled tube of a sample with N cells
//! relaxes at R2_control + b + s·N. The engine calibrates this lot, when no calibration is stored,
//! from a simulated dilution series measured through the same board and fit path
//! ([`super::dilution_series`]), so the calibration is an estimate of (b, s), never these values.
//!
//! Not for: real reagent lots, whose truth nobody knows.

use nmr_core::assay::TubeKind;
use serde::{Deserialize, Serialize};

use crate::sim_board::VirtualTube;

/// Name of the simulated lot.
pub const SIMULATED_LOT: &str = "SIM-LOT-1";

/// True ΔR2 per cell of the simulated lot's quad-marker reagent at TE = 1 ms, (1/s)/cell.
pub const SIMULATED_PER_CELL_DELTA_R2_PER_S: f64 = 0.02;

/// True ΔR2 of the simulated lot's particles with no cells (non-specific background), 1/s.
pub const SIMULATED_BACKGROUND_PER_S: f64 = 0.05;

/// Control-tube T2 of a simulated patient when the run does not say, ms (whole blood at 20 MHz
/// is 240 ± 40 ms, dmr-facts 4.2).
pub const DEFAULT_CONTROL_T2_MS: f64 = 240.0;

/// Share of the quad signal each single-marker tube carries in simulation (the four markers of the
/// cocktail contribute equally).
pub const SINGLE_MARKER_SHARE: f64 = 0.25;

/// Most tumour cells a simulated sample may hold.
pub const MAX_SIMULATED_CELLS: f64 = 1.0e6;

/// What the virtual tubes of a simulated run hold: the truth the result is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulatedTruth {
    /// True number of tumour cells in the processed sample.
    pub cells: f64,
    /// Non-specific ΔR2 of the labelled tubes, 1/s (default: the lot's background).
    #[serde(default)]
    pub background_per_s: Option<f64>,
    /// The patient's control-tube T2, ms (default [`DEFAULT_CONTROL_T2_MS`]).
    #[serde(default)]
    pub control_t2_ms: Option<f64>,
}

impl SimulatedTruth {
    /// A sample holding `cells` tumour cells, everything else default.
    pub fn cells(cells: f64) -> Self {
        Self {
            cells,
            background_per_s: None,
            control_t2_ms: None,
        }
    }

    /// Refuses values no tube can hold; names the field.
    pub fn check(&self) -> Result<(), String> {
        if !(self.cells.is_finite() && (0.0..=MAX_SIMULATED_CELLS).contains(&self.cells)) {
            return Err(format!(
                "simulated cells must be a number from 0 to {MAX_SIMULATED_CELLS}, got {}",
                self.cells
            ));
        }
        if let Some(b) = self.background_per_s
            && !(b.is_finite() && b >= 0.0)
        {
            return Err(format!(
                "simulated background must be a non-negative ΔR2 in 1/s, got {b}"
            ));
        }
        if let Some(t2) = self.control_t2_ms
            && !(t2.is_finite() && (20.0..=3000.0).contains(&t2))
        {
            return Err(format!(
                "simulated control T2 must be 20 to 3000 ms, got {t2}"
            ));
        }
        Ok(())
    }

    /// The control tube's R2, 1/s.
    pub fn control_r2_per_s(&self) -> f64 {
        1000.0 / self.control_t2_ms.unwrap_or(DEFAULT_CONTROL_T2_MS)
    }

    /// The true R2 of a tube of `kind`, 1/s.
    pub fn r2_per_s(&self, kind: TubeKind) -> f64 {
        let control = self.control_r2_per_s();
        let background = self.background_per_s.unwrap_or(SIMULATED_BACKGROUND_PER_S);
        let cells = SIMULATED_PER_CELL_DELTA_R2_PER_S * self.cells;
        match kind {
            TubeKind::Control => control,
            TubeKind::Quad => control + background + cells,
            TubeKind::Cd45Control | TubeKind::IggControl => control + background,
            TubeKind::Single(_) => control + background + SINGLE_MARKER_SHARE * cells,
        }
    }

    /// The virtual tube of `kind`.
    pub fn tube(&self, kind: TubeKind) -> VirtualTube {
        VirtualTube::mono(1.0 / self.r2_per_s(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nmr_core::assay::Marker;

    #[test]
    fn labelled_tubes_add_background_and_cells_to_the_control_rate() {
        let truth = SimulatedTruth {
            cells: 10.0,
            background_per_s: Some(0.1),
            control_t2_ms: Some(200.0),
        };
        assert!((truth.r2_per_s(TubeKind::Control) - 5.0).abs() < 1e-12);
        assert!((truth.r2_per_s(TubeKind::Quad) - (5.0 + 0.1 + 0.2)).abs() < 1e-12);
        assert!((truth.r2_per_s(TubeKind::IggControl) - 5.1).abs() < 1e-12);
        assert!(
            (truth.r2_per_s(TubeKind::Single(Marker::Her2)) - (5.0 + 0.1 + 0.05)).abs() < 1e-12
        );
        assert!((truth.tube(TubeKind::Control).components[0].t2_s - 0.2).abs() < 1e-12);
    }

    #[test]
    fn impossible_truths_are_refused_by_name() {
        assert!(
            SimulatedTruth::cells(-1.0)
                .check()
                .unwrap_err()
                .contains("cells")
        );
        let hot = SimulatedTruth {
            control_t2_ms: Some(1.0),
            ..SimulatedTruth::cells(3.0)
        };
        assert!(hot.check().unwrap_err().contains("control T2"));
        assert!(SimulatedTruth::cells(0.0).check().is_ok());
    }
}
