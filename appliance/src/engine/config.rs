//! How the engine measures: CPMG and tune settings, QC limits and the pre-run checks.

use nmr_core::assay::Indications;
use nmr_core::qc::MeasurementQcLimits;

use crate::procedures::{CpmgSettings, TuneSettings};
use crate::site::{QcPolicy, SiteConfig};

/// The engine's settings. `EngineConfig::new(indications)` gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// CPMG of every replicate reading (TE 1 ms, 1000 echoes, 4 scans, TR 3 s, guard 0.05 °C).
    pub cpmg: CpmgSettings,
    /// Tuning before the tubes.
    pub tune: TuneSettings,
    /// Per-reading and per-run QC limits.
    pub qc_limits: MeasurementQcLimits,
    /// Cut-offs per indication.
    pub indications: Indications,
    /// The stable-temperature check reads the magnet twice this far apart, ms.
    pub temperature_window_ms: u32,
    /// ... and fails when the two readings differ by more than this, °C.
    pub max_temperature_change_c: f64,
    /// Seed of the simulated dilution series' sample matrix (control T2 of each spiked sample).
    pub calibration_seed: u64,
    /// The site (time zone, lab and instrument identity, paper, patient name policy): read by
    /// the operations layer and the faces through the same settings the engine counts with.
    pub site: SiteConfig,
    /// How QC gates patient runs.
    pub qc_policy: QcPolicy,
}

impl EngineConfig {
    /// Defaults, with these cut-offs.
    pub fn new(indications: Indications) -> Self {
        Self {
            cpmg: CpmgSettings::default(),
            tune: TuneSettings::default(),
            qc_limits: MeasurementQcLimits::default(),
            indications,
            temperature_window_ms: 5_000,
            max_temperature_change_c: 0.02,
            calibration_seed: 7,
            site: SiteConfig::default(),
            qc_policy: QcPolicy::default(),
        }
    }

    /// The echo time of every reading, µs (rounded to the µs the calibrations are keyed by).
    pub fn te_us(&self) -> u32 {
        self.cpmg.te_us.round() as u32
    }
}
