//! One sample run, step by step, on the engine's thread:
//!
//! checks (today's QC, board identity, stable temperature) → tune → the approved calibration for
//! the lot and TE → for each
//! tube: wait for it (`awaiting_tube`), then its replicate readings, each committed as soon as it
//! is measured → fits and QC → the result → `awaiting_release`.
//!
//! Every step may stop the run: a failure with its cause, a cancel, a shutdown. What was measured
//! stays in the store; the caller ([`super::worker`]) halts the board and records the state.

use nmr_core::assay::{Calibration, TubeKind};
use serde_json::json;

use crate::store::calibrations::CalibrationContent;
use crate::store::calibrations::{NewCalibration, ReagentLot};
use crate::store::instrument_log::{LogKind, NewLogEntry};
use crate::store::measurements::{MeasurementFit, NewMeasurement};
use crate::store::runs::RunState;
use crate::store::{self, Actor, JsonReport, Timestamp};
use nmr_core::qc::QcVerdict;

use super::control::TubeWait;
use super::dilution_series::{LEVELS_CELLS, SAMPLES_PER_LEVEL, calibrate_simulated_lot};
use super::event::EventKind;
use super::failure::{Failure, FailureKind, Stop};
use super::reading::{Reading, t2_distribution};
use super::run_report::{ReportInputs, RunReport, TubeReadings};
use super::simulated_lot::{SIMULATED_LOT, SimulatedTruth};
use super::status::BoardStatus;
use super::worker::{Job, Worker};

impl Worker {
    /// Runs `job` to its result, or stops.
    pub(crate) fn workflow(&mut self, job: &Job) -> Result<(), Stop> {
        let run_id = job.run_id;
        self.set_state(run_id, RunState::Running)?;
        self.check_qc_today(job)?;
        self.check_board(job)?;
        self.check_temperature(job)?;
        self.tune(job)?;
        let (calibration_id, calibration) = self.calibration_for(job)?;

        let plan = job.request.tubes();
        let mut tubes = Vec::with_capacity(plan.len());
        for (index, kind) in plan.iter().enumerate() {
            self.insert_tube(job, *kind, index + 1, plan.len())?;
            tubes.push(self.measure_tube(job, *kind)?);
        }

        self.step("computing the result");
        let config = &self.shared.config;
        let report = RunReport::build(
            &tubes,
            &ReportInputs {
                run_id,
                calibration: &calibration,
                blood_ml: job.sample.blood_ml,
                indication: job.sample.indication.as_deref(),
                indications: &config.indications,
                limits: &config.qc_limits,
                te_ms: config.cpmg.te_us / 1000.0,
            },
        )?;
        let actor = &job.request.operator;
        self.db(self
            .store
            .set_run_calibration(actor, run_id, calibration_id))?;
        self.db(self.store.record_result(actor, run_id, &report.count))?;
        self.shared.emit(
            Some(run_id),
            EventKind::Result {
                result: Box::new(report),
            },
        );
        self.shared.emit(
            Some(run_id),
            EventKind::State {
                state: RunState::AwaitingRelease,
                cause: None,
            },
        );
        Ok(())
    }

    /// Today's QC, shown in the run's checks. It decides nothing: whether a run may start and
    /// whether its result may be released is the operations layer's QC gate
    /// (`operations::qc_gate`), the one home of that rule.
    fn check_qc_today(&self, job: &Job) -> Result<(), Stop> {
        self.step("checking today's QC");
        // The site's calendar day, as the QC gate reads it.
        let (midnight, next) = match self.shared.config.site.time_zone.day_of(Timestamp::now()) {
            Ok(day) => day,
            Err(error) => {
                self.check_event(
                    job,
                    "qc_today",
                    true,
                    &format!("today's QC not shown: the site's day is unknown ({error})"),
                );
                return Ok(());
            }
        };
        let today = self.db(self.store.qc_between(midnight, next))?;
        let recorded = today.values.len();
        let mut warnings = Vec::new();
        let mut rejected = Vec::new();
        for value in &today.values {
            let what = format!("{} lot {}", value.material.name, value.lot.lot);
            match value.result.status {
                QcVerdict::Reject => rejected.push(what),
                QcVerdict::Warning => warnings.push(what),
                QcVerdict::Pass => {}
            }
        }
        if recorded == 0 {
            self.check_event(
                job,
                "qc_today",
                true,
                "no QC result recorded today: the result stays on QC hold until QC passes",
            );
        } else if !rejected.is_empty() {
            self.check_event(
                job,
                "qc_today",
                true,
                &format!(
                    "today's QC was rejected on {}: the result stays on QC hold until QC passes",
                    rejected.join(", ")
                ),
            );
        } else if warnings.is_empty() {
            self.check_event(
                job,
                "qc_today",
                true,
                &format!("{recorded} QC result(s) today, all passed"),
            );
        } else {
            self.check_event(
                job,
                "qc_today",
                true,
                &format!("today's QC passed with warnings on {}", warnings.join(", ")),
            );
        }
        Ok(())
    }

    fn check_board(&mut self, job: &Job) -> Result<(), Stop> {
        self.step("identifying the board");
        let identity = match self.board.identify() {
            Ok(identity) => identity,
            Err(fault) => {
                self.check_event(job, "board", false, &fault.to_string());
                return Err(fault.into());
            }
        };
        {
            let mut status = self.shared.status();
            status.board = Some(BoardStatus {
                serial: identity.identity.serial,
                firmware: identity.firmware.clone(),
                simulated: identity.simulated,
            });
            status.magnet_temp_c = Some(identity.magnet_temp_c);
        }
        if identity.simulated != self.shared.simulated {
            let message = format!(
                "board serial {:#010x} says simulated = {}, but the engine was started for {}",
                identity.identity.serial,
                identity.simulated,
                if self.shared.simulated {
                    "the simulated board"
                } else {
                    "hardware"
                }
            );
            self.check_event(job, "board", false, &message);
            return Err(Failure::new(FailureKind::Board, message).into());
        }
        self.check_event(
            job,
            "board",
            true,
            &format!(
                "board serial {:#010x}, firmware {}{}",
                identity.identity.serial,
                identity.firmware,
                if identity.simulated {
                    " (simulated)"
                } else {
                    ""
                }
            ),
        );
        Ok(())
    }

    /// The magnet must be stable before tuning: two readings a window apart.
    fn check_temperature(&mut self, job: &Job) -> Result<(), Stop> {
        self.step("checking the magnet temperature is stable");
        let config = &self.shared.config;
        let (window_ms, limit_c) = (
            config.temperature_window_ms,
            config.max_temperature_change_c,
        );
        let first_c = self.board.magnet_temp_c()?;
        self.board.wait_ms(window_ms);
        let second_c = self.board.magnet_temp_c()?;
        self.shared.status().magnet_temp_c = Some(second_c);
        let change_c = second_c - first_c;
        let window_s = f64::from(window_ms) / 1000.0;
        let stable = change_c.abs() <= limit_c; // false for a NaN reading too
        if !stable {
            let message = format!(
                "magnet temperature moved {change_c:+.3} °C in {window_s} s ({first_c:.3} → {second_c:.3} °C), beyond the {limit_c} °C limit: let the instrument settle"
            );
            self.check_event(job, "temperature", false, &message);
            let entry = NewLogEntry {
                run_id: Some(job.run_id),
                temp_c: Some(second_c),
                ..NewLogEntry::message(LogKind::Temperature, message.clone())
            };
            self.log(entry)?;
            return Err(Failure::new(FailureKind::Temperature, message).into());
        }
        self.check_event(
            job,
            "temperature",
            true,
            &format!("magnet {second_c:.3} °C, moved {change_c:+.4} °C in {window_s} s"),
        );
        Ok(())
    }

    fn tune(&mut self, job: &Job) -> Result<(), Stop> {
        self.checkpoint(&job.control)?;
        self.step("tuning");
        self.shared.emit(Some(job.run_id), EventKind::Tuning);
        let settings = self.shared.config.tune.clone();
        let report = self.board.tune(&settings)?;
        {
            let mut status = self.shared.status();
            status.f0_hz = Some(report.f0_hz);
            status.last_tune_at = Some(Timestamp::now().to_rfc3339());
            status.magnet_temp_c = Some(report.magnet_temp_c);
        }
        self.log(NewLogEntry {
            run_id: Some(job.run_id),
            freq_hz: Some(report.f0_hz),
            temp_c: Some(report.magnet_temp_c),
            detail: Self::json(&report)?,
            ..NewLogEntry::message(
                LogKind::Tune,
                format!(
                    "tuned to f0 = {:.1} Hz (correction {:+.1} Hz) at {:.3} °C",
                    report.f0_hz, report.correction_hz, report.magnet_temp_c
                ),
            )
        })?;
        self.shared.emit(
            Some(job.run_id),
            EventKind::Tuned {
                f0_hz: report.f0_hz,
                magnet_temp_c: report.magnet_temp_c,
            },
        );
        Ok(())
    }

    /// The approved calibration of the run's lot at the engine's TE, read when the run measures
    /// (so a calibration superseded or rejected while the run was queued is not used). A run is
    /// only started with one (`operations::calibrations`, the rule's home); this is the engine's
    /// own refusal when there is none by now. A calibration is never made inside a patient run.
    fn calibration_for(&mut self, job: &Job) -> Result<(store::CalibrationId, Calibration), Stop> {
        let te_us = self.shared.config.te_us();
        let lot = ReagentLot::parse(&job.reagent_lot)?;
        let Some(stored) = self.db(self.store.active_calibration(&lot, te_us))? else {
            return Err(Failure::new(
                FailureKind::Calibration,
                format!(
                    "reagent lot {lot} has no approved calibration at TE {te_us} µs: a lab admin approves one on the Calibrations page"
                ),
            )
            .into());
        };
        let calibration = stored.content.document().map_err(|e| {
            Failure::new(
                FailureKind::Calibration,
                format!(
                    "stored calibration {} of lot {lot} is unreadable: {e}",
                    stored.id
                ),
            )
        })?;
        Ok((stored.id, calibration))
    }

    /// Measures a simulated dilution series of the simulated lot through the board and fit path
    /// and stores the calibration it makes, PENDING: a lab admin approves it before it counts a
    /// patient (issue 11). Not part of any run; stopped only by a shutdown.
    pub(crate) fn make_simulated_calibration(
        &mut self,
    ) -> Result<store::calibrations::Calibration, Failure> {
        let te_us = self.shared.config.te_us();
        let lot = ReagentLot::parse(SIMULATED_LOT)?;
        let samples = LEVELS_CELLS.len() * SAMPLES_PER_LEVEL;
        let message = format!(
            "calibrating the simulated lot {lot} at TE {te_us} µs: measuring a simulated dilution series ({} levels {:?} cells, {SAMPLES_PER_LEVEL} samples each, {samples} samples)",
            LEVELS_CELLS.len(),
            LEVELS_CELLS
        );
        self.shared.emit(
            None,
            EventKind::Calibrating {
                lot: lot.to_string(),
                te_us,
                message: message.clone(),
            },
        );
        self.log(NewLogEntry::message(LogKind::Event, message))?;
        let identity = self.board.identify().map_err(|fault| {
            Failure::new(
                FailureKind::Board,
                format!("identifying the board before the dilution series: {fault}"),
            )
        })?;
        if !identity.simulated {
            return Err(Failure::new(
                FailureKind::Calibration,
                "the board is not the simulated one: the simulated lot is calibrated on the simulated board only",
            ));
        }
        let tune = self.shared.config.tune.clone();
        self.board.tune(&tune).map_err(|fault| {
            Failure::new(
                FailureKind::Board,
                format!("tuning before the dilution series: {fault}"),
            )
        })?;
        let settings = self.shared.config.cpmg.clone();
        let seed = self.shared.config.calibration_seed;
        let created = Timestamp::now().to_rfc3339();
        let shared = std::sync::Arc::clone(&self.shared);
        let mut checkpoint = || -> Result<(), Stop> {
            if shared.is_shutting_down() {
                return Err(Stop::Shutdown);
            }
            Ok(())
        };
        let mut progress = |_done: usize, _total: usize| {};
        let calibration = calibrate_simulated_lot(
            self.board.as_mut(),
            &settings,
            lot.as_str(),
            &created,
            seed,
            &mut checkpoint,
            &mut progress,
        )
        .map_err(|stop| match stop {
            Stop::Failed(failure) => failure,
            Stop::Cancelled(..) | Stop::Shutdown => Failure::new(
                FailureKind::Calibration,
                "the appliance shut down during the dilution series",
            ),
        })?;
        let halted = self.board.halt();
        if let Err(fault) = halted {
            return Err(Failure::new(
                FailureKind::Board,
                format!("halting the board after the dilution series failed: {fault}"),
            ));
        }
        let text = calibration.to_toml().map_err(|e| {
            Failure::new(
                FailureKind::Calibration,
                format!("writing the calibration: {e}"),
            )
        })?;
        let stored = self.db(self.store.add_calibration(
            &Actor::Appliance,
            &NewCalibration {
                reagent_lot: lot.clone(),
                te_us,
                content: CalibrationContent::toml(&text)?,
                note: Some(format!(
                    "made by the simulated appliance from a simulated dilution series of {samples} spiked samples"
                )),
            },
        ))?;
        self.log(NewLogEntry {
            detail: JsonReport::from_value(json!({
                "calibration_id": stored.id,
                "slope_per_s_per_cell": calibration.slope_per_s_per_cell,
                "intercept_per_s": calibration.intercept_per_s,
                "lob_cells": calibration.lob_cells,
                "lod_cells": calibration.lod_cells,
                "loq_cells": calibration.loq_cells,
            })),
            ..NewLogEntry::message(
                LogKind::Event,
                format!(
                    "calibration {} of the simulated lot {lot} at TE {te_us} µs made, pending approval: ΔR2 = {:.4} + {:.5}·N 1/s, LoB {:.2}, LoD {:.2}, LoQ {:.1} cells",
                    stored.id,
                    calibration.intercept_per_s,
                    calibration.slope_per_s_per_cell,
                    calibration.lob_cells,
                    calibration.lod_cells,
                    calibration.loq_cells
                ),
            )
        })?;
        self.shared.emit(
            None,
            EventKind::CalibrationMade {
                lot: lot.to_string(),
                te_us,
                calibration_id: stored.id.0,
                slope_per_s_per_cell: calibration.slope_per_s_per_cell,
                intercept_per_s: calibration.intercept_per_s,
            },
        );
        Ok(stored)
    }

    /// `awaiting_tube` until the tube is in (the operator confirms, or the simulation does), then
    /// puts the simulated tube in the coil and goes back to `running`.
    fn insert_tube(
        &mut self,
        job: &Job,
        kind: TubeKind,
        index: usize,
        of: usize,
    ) -> Result<(), Stop> {
        self.checkpoint(&job.control)?;
        let run_id = job.run_id;
        let name = kind.as_str();
        let message = format!("insert tube {index} of {of}: {kind}");
        self.set_state(run_id, RunState::AwaitingTube)?;
        self.step(message.clone());
        // Accept a confirmation from the moment the prompt is published.
        job.control.lock().awaiting = Some(index);
        self.shared.emit(
            Some(run_id),
            EventKind::AwaitingTube {
                tube: name.to_owned(),
                index,
                of,
                message,
            },
        );
        let automatic = self.shared.simulated && !job.request.manual_tube_confirmation;
        if automatic {
            job.control.lock().confirmed_tubes = index;
        } else {
            let shared = std::sync::Arc::clone(&self.shared);
            match job
                .control
                .wait_for_tube(index, || shared.is_shutting_down())
            {
                TubeWait::Confirmed => {}
                TubeWait::Cancelled(actor, reason) => return Err(Stop::Cancelled(actor, reason)),
                TubeWait::Shutdown => return Err(Stop::Shutdown),
            }
        }
        self.shared.emit(
            Some(run_id),
            EventKind::TubeConfirmed {
                tube: name.to_owned(),
                index,
                automatic,
            },
        );
        if let Some(slot) = self.board.tube_slot() {
            let truth = job.request.simulate.unwrap_or(SimulatedTruth::cells(0.0));
            slot.insert_tube(truth.tube(kind)).map_err(|e| {
                Failure::new(
                    FailureKind::Board,
                    format!("putting the {name} tube in the simulated coil: {e}"),
                )
            })?;
        }
        self.set_state(run_id, RunState::Running)?;
        Ok(())
    }

    /// The replicate readings of one tube, each committed as soon as it is measured.
    fn measure_tube(&mut self, job: &Job, kind: TubeKind) -> Result<TubeReadings, Stop> {
        let run_id = job.run_id;
        let name = kind.as_str();
        let tube_id = job
            .sample
            .tube(kind)
            .ok_or_else(|| {
                Failure::new(
                    FailureKind::Storage,
                    format!("sample {} has no {name} tube", job.sample.id),
                )
            })?
            .id;
        let of = job.request.replicates;
        let settings = self.shared.config.cpmg.clone();
        let limits = self.shared.config.qc_limits;
        let mut readings = Vec::with_capacity(of as usize);
        for replicate in 1..=of {
            self.checkpoint(&job.control)?;
            self.step(format!("{kind}: replicate {replicate} of {of}"));
            let measurement = self.board.measure_cpmg(&settings)?;
            self.shared.status().magnet_temp_c = Some(measurement.report.magnet_temp_after_c);
            let reading = Reading::fit(format!("{kind} reading {replicate}"), &measurement.train);
            let flags = reading.flags(&limits);
            let measurement_id = self.db(self.store.add_measurement(
                &job.request.operator,
                &NewMeasurement {
                    run_id,
                    tube_id,
                    replicate,
                    measured_at: Timestamp::now(),
                    train: &measurement.train,
                    fit_report: Some(MeasurementFit {
                        fit: reading.stored_fit(),
                        cpmg: measurement.report.clone(),
                    }),
                    qc_flags: flags.clone(),
                    t2_distribution: Some(t2_distribution(&measurement.train)),
                },
            ))?;
            let fit = reading.fit.as_ref().ok();
            self.shared.emit(
                Some(run_id),
                EventKind::Replicate {
                    tube: name.to_owned(),
                    replicate,
                    of,
                    measurement_id: measurement_id.0,
                    t2_ms: fit.map(|f| f.t2_ms),
                    r2_per_s: fit.map(|f| f.r2_per_s),
                    snr: fit.map(|f| f.snr),
                    fit_error: reading.fit.as_ref().err().cloned(),
                    qc_flags: flags,
                },
            );
            readings.push(reading);
        }
        Ok(TubeReadings { kind, readings })
    }

    fn check_event(&self, job: &Job, check: &str, passed: bool, message: &str) {
        self.shared.emit(
            Some(job.run_id),
            EventKind::Check {
                check: check.to_owned(),
                passed,
                message: message.to_owned(),
            },
        );
    }
}
