//! Progress of runs, published by the engine as it happens (the web face's live view forwards
//! these as server-sent events; the CLI prints them).
//!
//! Every event is serde-serialisable with a stable `event` tag. Events are for watching; the
//! database is the record (a subscriber that lags behind misses events, never data).

use nmr_core::qc::QcFlag;
use serde::Serialize;

use crate::store::RunId;
use crate::store::runs::RunState;

use super::failure::Failure;
use super::run_report::RunReport;

/// One thing that happened, when, and to which run (`None`: the instrument itself).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunEvent {
    /// The run, if the event belongs to one.
    pub run_id: Option<RunId>,
    /// When it happened, RFC 3339 UTC.
    pub at: String,
    /// Its number in the run's stored history (`crate::store::run_events`), which the live view's
    /// stream sends as the event id; `None` for an instrument event or one that could not be
    /// stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl EventKind {
    /// The event's name: its `event` tag in JSON, and the server-sent event's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::State { .. } => "state",
            Self::Check { .. } => "check",
            Self::Tuning => "tuning",
            Self::Tuned { .. } => "tuned",
            Self::Calibrating { .. } => "calibrating",
            Self::CalibrationMade { .. } => "calibration_made",
            Self::AwaitingTube { .. } => "awaiting_tube",
            Self::TubeConfirmed { .. } => "tube_confirmed",
            Self::Replicate { .. } => "replicate",
            Self::Result { .. } => "result",
            Self::Failed { .. } => "failed",
            Self::Notice { .. } => "notice",
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The run moved to a new state.
    State {
        /// The new state.
        state: RunState,
        /// Why, for failed, cancelled and interrupted runs.
        cause: Option<String>,
    },
    /// A pre-run check finished.
    Check {
        /// Which check (`qc_today`, `board`, `temperature`).
        check: String,
        /// Whether it passed (a warning passes).
        passed: bool,
        /// What was found.
        message: String,
    },
    /// Tuning started.
    Tuning,
    /// Tuning found f0.
    Tuned {
        /// Larmor frequency, Hz.
        f0_hz: f64,
        /// Magnet temperature, °C.
        magnet_temp_c: f64,
    },
    /// The simulated lot has no calibration: the appliance is measuring a dilution series.
    Calibrating {
        /// Reagent lot.
        lot: String,
        /// Echo time, µs.
        te_us: u32,
        /// What is being done.
        message: String,
    },
    /// A calibration was made and activated.
    CalibrationMade {
        /// Reagent lot.
        lot: String,
        /// Echo time, µs.
        te_us: u32,
        /// Stored calibration id.
        calibration_id: i64,
        /// Fitted ΔR2 per cell, (1/s)/cell.
        slope_per_s_per_cell: f64,
        /// Fitted background, 1/s.
        intercept_per_s: f64,
    },
    /// The operator must insert a tube ("insert tube 2 of 3: quad-marker tube").
    AwaitingTube {
        /// Tube kind (stored name: `control`, `quad`, ...).
        tube: String,
        /// Its position, from 1.
        index: usize,
        /// Number of tubes.
        of: usize,
        /// The instruction.
        message: String,
    },
    /// The tube is in.
    TubeConfirmed {
        /// Tube kind.
        tube: String,
        /// Its position, from 1.
        index: usize,
        /// True when the simulation confirmed it without an operator.
        automatic: bool,
    },
    /// A replicate reading was measured, fitted, checked and committed.
    Replicate {
        /// Tube kind.
        tube: String,
        /// Replicate number, from 1.
        replicate: u32,
        /// Replicates per tube.
        of: u32,
        /// Stored measurement id.
        measurement_id: i64,
        /// Fitted T2, ms (`None` when the fit failed).
        t2_ms: Option<f64>,
        /// Fitted R2, 1/s.
        r2_per_s: Option<f64>,
        /// Fit SNR.
        snr: Option<f64>,
        /// Why the fit failed, if it did.
        fit_error: Option<String>,
        /// QC flags raised on this reading.
        qc_flags: Vec<QcFlag>,
    },
    /// The result was computed and stored (the run now awaits release).
    Result {
        /// The result.
        result: Box<RunReport>,
    },
    /// The run failed.
    Failed {
        /// Why.
        failure: Failure,
    },
    /// Something for the record that is not a step of a run (start-up recovery, shutdown).
    Notice {
        /// The sentence.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_a_stable_tag_and_flat_fields() {
        let event = RunEvent {
            run_id: Some(RunId(7)),
            at: "2026-11-24T04:00:00Z".into(),
            seq: None,
            kind: EventKind::AwaitingTube {
                tube: "quad".into(),
                index: 2,
                of: 3,
                message: "insert tube 2 of 3: quad-marker tube".into(),
            },
        };
        let value = serde_json::to_value(&event).expect("events serialize");
        assert_eq!(value["event"], "awaiting_tube");
        assert_eq!(value["run_id"], 7);
        assert_eq!(value["index"], 2);
        assert_eq!(value["message"], "insert tube 2 of 3: quad-marker tube");
        assert_eq!(value["event"], event.kind.name());
        assert!(value.get("seq").is_none(), "no number until stored");
        let state = RunEvent {
            run_id: Some(RunId(7)),
            at: "2026-11-24T04:00:00Z".into(),
            seq: Some(12),
            kind: EventKind::State {
                state: RunState::AwaitingRelease,
                cause: None,
            },
        };
        let value = serde_json::to_value(&state).expect("events serialize");
        assert_eq!(value["event"], "state");
        assert_eq!(value["event"], state.kind.name());
        assert_eq!(value["seq"], 12);
        assert_eq!(value["state"], "awaiting_release");
    }
}
