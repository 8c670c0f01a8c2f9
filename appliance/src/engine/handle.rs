//! Starting the engine, and the cheap cloneable [`EngineHandle`] every caller (CLI, web face)
//! uses to queue runs, confirm tubes, cancel, watch progress and shut it down.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, watch};

use crate::store::calibrations::ReagentLot;
use crate::store::instrument_log::{LogKind, NewLogEntry};
use crate::store::patients::{BirthDate, Mrn, NewPatient, RunIndication};
use crate::store::qc_basis::QcRelied;
use crate::store::runs::{NewRun, RunState};
use crate::store::samples::{Accession, BloodVolume, Indication, NewSample, NewTube, TubeLabel};
use crate::store::{Actor, RunId, Store, Timestamp};

use super::config::EngineConfig;
use super::control::RunControl;
use super::error::EngineError;
use super::event::{EventKind, RunEvent};
use super::instrument::Board;
use super::request::{MAX_REPLICATES, RunRequest, RunTicket};
use super::simulated_lot::SIMULATED_LOT;
use super::status::EngineStatus;
use super::worker::{Command, Job, Shared, Worker};

/// Events kept for subscribers that fall behind.
const EVENT_CAPACITY: usize = 1024;

/// Starts the acquisition engine.
pub struct Engine;

impl Engine {
    /// Recovers from a previous crash (runs left in flight become `interrupted`, each audited),
    /// then starts the thread that owns `board`. Call it once from inside a tokio runtime and
    /// share the handle; [`EngineHandle::shutdown`] stops it.
    pub async fn start(
        store: Store,
        board: Box<dyn Board>,
        config: EngineConfig,
    ) -> Result<EngineHandle, EngineError> {
        let interrupted = store
            .interrupt_runs_in_flight(
                "the appliance stopped (crash, power loss or kill) while the run was in flight",
            )
            .await?;
        let simulated = board.tube_slot().is_some();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (journal, journal_queue) = mpsc::unbounded_channel();
        tokio::spawn(super::worker::journal(
            store.clone(),
            journal_queue,
            events.clone(),
        ));
        let shared = Arc::new(Shared {
            events,
            journal,
            status: Mutex::new(EngineStatus::default()),
            controls: Mutex::new(Default::default()),
            shutting_down: AtomicBool::new(false),
            simulated,
            config,
            stopped: watch::Sender::new(false),
        });
        let message = format!(
            "acquisition engine started on the {}{}",
            if simulated {
                "simulated board"
            } else {
                "front-end board"
            },
            if interrupted.is_empty() {
                String::new()
            } else {
                format!(
                    "; runs left in flight marked interrupted: {}",
                    interrupted
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        store
            .log_instrument(&NewLogEntry::message(LogKind::Event, &message))
            .await?;
        for run_id in &interrupted {
            shared.emit(
                Some(*run_id),
                EventKind::State {
                    state: RunState::Interrupted,
                    cause: Some("found in flight at start-up".into()),
                },
            );
        }
        let (commands, receiver) = mpsc::unbounded_channel();
        let worker = Worker {
            board,
            store: store.clone(),
            runtime: tokio::runtime::Handle::current(),
            shared: Arc::clone(&shared),
        };
        std::thread::Builder::new()
            .name("ferrocount-engine".into())
            .spawn(move || worker.serve(receiver))
            .map_err(|e| EngineError::Invalid {
                field: "engine thread",
                reason: e.to_string(),
            })?;
        Ok(EngineHandle {
            commands,
            shared,
            store,
        })
    }
}

/// A handle to the running engine; clone it freely.
#[derive(Clone)]
pub struct EngineHandle {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    store: Store,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle")
            .field("simulated", &self.shared.simulated)
            .finish_non_exhaustive()
    }
}

impl EngineHandle {
    /// The store the engine records into.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether the board is the simulated one.
    pub fn is_simulated(&self) -> bool {
        self.shared.simulated
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// Progress events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.shared.events.subscribe()
    }

    /// A snapshot of the instrument and the engine's work.
    pub fn status(&self) -> EngineStatus {
        self.shared.status().clone()
    }

    /// Measures a simulated dilution series of the simulated lot ([`SIMULATED_LOT`]) on the
    /// board, between runs, and stores the calibration it makes PENDING (it counts no patient
    /// until a lab admin approves it). The simulated board only.
    pub async fn calibrate_simulated_lot(
        &self,
    ) -> Result<crate::store::calibrations::Calibration, EngineError> {
        if !self.shared.simulated {
            return Err(EngineError::Calibration(super::failure::Failure::new(
                super::failure::FailureKind::Calibration,
                "the simulated lot is calibrated on the simulated board only",
            )));
        }
        if self.shared.is_shutting_down() {
            return Err(EngineError::Stopped);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::CalibrateSimulatedLot(reply))
            .map_err(|_| EngineError::Stopped)?;
        answer
            .await
            .map_err(|_| EngineError::Stopped)?
            .map_err(EngineError::Calibration)
    }

    /// Records the patient (when new), the sample and its tubes, queues the run and returns its
    /// id. Refuses bad input before anything is stored.
    pub async fn start_run(&self, request: RunRequest) -> Result<RunTicket, EngineError> {
        self.start_run_relying_on(request, &[]).await
    }

    /// Starts a run as [`EngineHandle::start_run`] does, storing the QC its start relied on
    /// (the QC gate judged for it) in the same transaction as the run itself
    /// ([`Store::create_run_relying_on`]): no run is queued without its stated QC basis.
    pub async fn start_run_relying_on(
        &self,
        request: RunRequest,
        qc_basis: &[QcRelied],
    ) -> Result<RunTicket, EngineError> {
        if self.shared.is_shutting_down() || self.commands.is_closed() {
            return Err(EngineError::Stopped);
        }
        let checked = self.check(&request)?;
        let actor = &request.operator;
        let known = self.store.patient_by_mrn(&checked.mrn).await?;
        let indication = match &known {
            Some(patient) => {
                patient.confirm_birth_date(checked.birth_date)?;
                patient.run_indication(
                    checked.indication.as_ref(),
                    request.indication_override_reason.as_deref(),
                )?
            }
            None => RunIndication {
                indication: checked.indication.clone(),
                override_reason: None,
            },
        };
        let patient = match known {
            Some(patient) => match (patient.birth_date, checked.birth_date) {
                (None, Some(born)) => {
                    self.store
                        .record_birth_date(actor, patient.id, born)
                        .await?
                }
                _ => patient,
            },
            None => {
                self.store
                    .patient_by_mrn_or_add(
                        actor,
                        &NewPatient {
                            mrn: checked.mrn.clone(),
                            birth_date: checked.birth_date,
                            name: None,
                            initials: None,
                            indication: checked.indication.clone(),
                        },
                    )
                    .await?
            }
        };
        let sample = self
            .store
            .add_sample(
                actor,
                &NewSample {
                    patient_id: patient.id,
                    accession: checked.accession,
                    drawn_at: checked.drawn_at,
                    blood: checked.blood,
                    indication: indication.indication,
                    indication_override_reason: indication.override_reason,
                    tubes: checked.tubes,
                },
            )
            .await?;
        let operator_id = match actor {
            Actor::User { id, .. } => Some(*id),
            Actor::Appliance => None,
        };
        let run = self
            .store
            .create_run_relying_on(
                actor,
                &NewRun {
                    sample_id: sample.id,
                    operator_id,
                    reagent_lot: Some(checked.lot.to_string()),
                    simulated: self.shared.simulated,
                },
                qc_basis,
            )
            .await?;
        let control = Arc::new(RunControl::new());
        self.shared.controls().insert(run.id, Arc::clone(&control));
        self.shared.status().queued.push(run.id);
        self.shared.emit(
            Some(run.id),
            EventKind::State {
                state: RunState::Queued,
                cause: None,
            },
        );
        let job = Job {
            run_id: run.id,
            sample,
            request,
            reagent_lot: checked.lot.to_string(),
            control,
        };
        if self.commands.send(Command::Run(Box::new(job))).is_err() {
            self.forget(run.id);
            self.store
                .set_run_state(
                    &Actor::Appliance,
                    run.id,
                    RunState::Interrupted,
                    Some("the acquisition engine had stopped"),
                )
                .await?;
            return Err(EngineError::Stopped);
        }
        Ok(RunTicket {
            id: run.id,
            state: RunState::Queued,
        })
    }

    /// The operator confirms the tube the run waits for is in the coil.
    pub fn confirm_tube(&self, run_id: RunId) -> Result<(), EngineError> {
        let control = self.control(run_id).ok_or(EngineError::NotActive(run_id))?;
        let mut state = control.lock();
        let index = state.awaiting.ok_or(EngineError::NotAwaitingTube(run_id))?;
        state.confirmed_tubes = state.confirmed_tubes.max(index);
        drop(state);
        control.notify();
        Ok(())
    }

    /// Cancels a run: a queued one at once, a measuring one at its next step (the readings
    /// already committed stay; [`Self::wait_for_run`] returns when it is recorded), one awaiting
    /// release at once. Returns the state it is, or will shortly be, in.
    pub async fn cancel(
        &self,
        run_id: RunId,
        actor: &Actor,
        reason: &str,
    ) -> Result<RunState, EngineError> {
        // The run's cause names who in words (the audit trail keeps the exact actor).
        let cause = format!("cancelled by {}: {}", actor.in_words(), reason.trim());
        if let Some(control) = self.control(run_id) {
            let started = {
                let mut state = control.lock();
                if state.closed {
                    None
                } else {
                    if state.cancel.is_none() {
                        state.cancel = Some((actor.clone(), cause.clone()));
                    }
                    Some(state.started)
                }
            };
            if let Some(started) = started {
                control.notify();
                if !started {
                    self.store
                        .set_run_state(actor, run_id, RunState::Cancelled, Some(&cause))
                        .await?;
                    self.shared.status().queued.retain(|id| *id != run_id);
                    self.shared.emit(
                        Some(run_id),
                        EventKind::State {
                            state: RunState::Cancelled,
                            cause: Some(cause),
                        },
                    );
                    control.finish(RunState::Cancelled);
                }
                return Ok(RunState::Cancelled);
            }
        }
        let run = self.store.run(run_id).await?;
        if run.state != RunState::AwaitingRelease {
            return Err(EngineError::NotCancellable {
                run: run_id,
                state: run.state,
            });
        }
        self.store
            .set_run_state(actor, run_id, RunState::Cancelled, Some(&cause))
            .await?;
        self.shared.emit(
            Some(run_id),
            EventKind::State {
                state: RunState::Cancelled,
                cause: Some(cause),
            },
        );
        Ok(RunState::Cancelled)
    }

    /// Waits until the engine is done with a run (a result awaiting release, or failed,
    /// cancelled, interrupted) and returns that state.
    pub async fn wait_for_run(&self, run_id: RunId) -> Result<RunState, EngineError> {
        if let Some(control) = self.control(run_id) {
            let mut final_state = control.subscribe_final();
            if let Ok(state) = final_state.wait_for(Option::is_some).await
                && let Some(state) = *state
            {
                return Ok(state);
            }
        }
        Ok(self.store.run(run_id).await?.state)
    }

    /// Stops the engine gracefully: the run being measured stops at its next step and is
    /// recorded `interrupted`, queued runs too, the board is halted. Returns when the engine's
    /// thread has finished.
    pub async fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        for control in self.shared.controls().values() {
            control.notify();
        }
        let _ = self.commands.send(Command::Shutdown);
        let mut stopped = self.shared.stopped.subscribe();
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }

    fn control(&self, run_id: RunId) -> Option<Arc<RunControl>> {
        self.shared.controls().get(&run_id).cloned()
    }

    fn forget(&self, run_id: RunId) {
        self.shared.controls().remove(&run_id);
        self.shared.status().queued.retain(|id| *id != run_id);
    }

    /// Parses and checks a request, naming the field that is wrong.
    fn check(&self, request: &RunRequest) -> Result<CheckedRequest, EngineError> {
        let invalid = |field: &'static str, reason: String| EngineError::Invalid { field, reason };
        if let Some(truth) = &request.simulate {
            if !self.shared.simulated {
                return Err(EngineError::SimulationOnHardware);
            }
            truth
                .check()
                .map_err(|reason| invalid("simulate", reason))?;
        }
        if !(2..=MAX_REPLICATES).contains(&request.replicates) {
            return Err(invalid(
                "replicates",
                format!(
                    "{} per tube; allowed 2 to {MAX_REPLICATES}",
                    request.replicates
                ),
            ));
        }
        let mrn = Mrn::parse(&request.patient_mrn)?;
        let accession = Accession::parse(&request.accession)?;
        let birth_date = request
            .birth_date
            .as_deref()
            .map(|text| BirthDate::parse(text, Timestamp::now().datetime().date()))
            .transpose()?;
        let blood = BloodVolume::from_ml(request.blood_ml)?;
        let indication = match request.indication.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => {
                self.shared
                    .config
                    .indications
                    .cutoff(name)
                    .map_err(|e| invalid("indication", e.to_string()))?;
                Some(Indication::parse(name)?)
            }
        };
        let lot = match request.reagent_lot.as_deref().map(str::trim) {
            Some(lot) if !lot.is_empty() => ReagentLot::parse(lot)?,
            _ if self.shared.simulated => ReagentLot::parse(SIMULATED_LOT)?,
            _ => {
                return Err(invalid(
                    "reagent lot",
                    "required on hardware (the lot printed on the tube kit)".into(),
                ));
            }
        };
        let now = Timestamp::now();
        let drawn_at = match &request.drawn_at {
            Some(text) => Timestamp::parse(text)
                .map_err(|e| invalid("draw time", format!("{text:?} is not RFC 3339: {e}")))?,
            None => now,
        };
        check_draw_time(drawn_at, now).map_err(|reason| invalid("draw time", reason))?;
        let mut seen = HashSet::new();
        let mut tubes = Vec::new();
        for kind in request.tubes() {
            if !seen.insert(kind) {
                return Err(invalid("tubes", format!("the {kind} is listed twice")));
            }
            tubes.push(NewTube {
                kind,
                label: TubeLabel::parse(&kind.as_str().to_ascii_uppercase())?,
            });
        }
        Ok(CheckedRequest {
            mrn,
            birth_date,
            accession,
            blood,
            indication,
            lot,
            drawn_at,
            tubes,
        })
    }
}

/// Draw times before this year are typing errors (no appliance ran then).
pub const EARLIEST_DRAW_YEAR: i32 = 2000;
/// How far a draw time may lie ahead of the appliance's clock (another device's clock skew).
pub const DRAW_CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// A blood draw happened in the past: not after `now` (give or take [`DRAW_CLOCK_SKEW`]) and not
/// before [`EARLIEST_DRAW_YEAR`]. The one home of this rule: the engine checks every request with
/// it, and the operations layer's run order (`operations::runs::RunOrder::parse`) calls it too.
pub fn check_draw_time(drawn_at: Timestamp, now: Timestamp) -> Result<(), String> {
    let text = drawn_at.to_rfc3339();
    if drawn_at.datetime() > now.datetime() + DRAW_CLOCK_SKEW {
        Err(format!(
            "{text} is in the future (the appliance's clock reads {})",
            now.to_rfc3339()
        ))
    } else if drawn_at.datetime().year() < EARLIEST_DRAW_YEAR {
        Err(format!("{text} is before the year {EARLIEST_DRAW_YEAR}"))
    } else {
        Ok(())
    }
}

struct CheckedRequest {
    mrn: Mrn,
    birth_date: Option<BirthDate>,
    accession: Accession,
    blood: BloodVolume,
    indication: Option<Indication>,
    lot: ReagentLot,
    drawn_at: Timestamp,
    tubes: Vec<NewTube>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_times_in_the_future_or_before_2000_are_refused() {
        let now = Timestamp::parse("2026-11-24T12:00:00Z").expect("a time");
        let at = |text: &str| check_draw_time(Timestamp::parse(text).expect(text), now);
        assert!(at("2026-11-24T08:30:00Z").is_ok());
        assert!(at("2026-11-24T12:04:00Z").is_ok(), "within the clock skew");
        assert!(at("2000-01-01T00:00:00Z").is_ok());
        let future = at("2100-01-01T00:00:00Z").expect_err("2100");
        assert!(future.contains("future"), "{future}");
        assert!(at("2026-11-24T12:06:00Z").is_err());
        let past = at("1970-01-01T00:00:00Z").expect_err("1970");
        assert!(past.contains("2000"), "{past}");
    }
}
