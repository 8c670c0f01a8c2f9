//! The engine's thread: the one owner of the board. It takes queued runs one at a time, drives
//! each through the workflow ([`super::workflow`]), records how it ended, and on shutdown leaves
//! the board halted and every run it held in a recorded state.
//!
//! The board driver is blocking, so this is a plain thread; it reaches the async store through
//! the tokio runtime handle it was started from (`Handle::block_on`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{broadcast, mpsc, watch};

use crate::store::instrument_log::{LogKind, NewLogEntry};
use crate::store::runs::RunState;
use crate::store::samples::Sample;
use crate::store::{Actor, JsonReport, RunId, Store, StoreError, Timestamp};

use super::config::EngineConfig;
use super::control::RunControl;
use super::event::{EventKind, RunEvent};
use super::failure::{Failure, Stop};
use super::instrument::Board;
use super::request::RunRequest;
use super::status::{EngineStatus, RunProgress};

/// State shared between the handles and the thread.
pub(crate) struct Shared {
    /// Subscribers' channel: events reach it after they are stored ([`journal`]).
    pub events: broadcast::Sender<RunEvent>,
    /// Where [`Shared::emit`] puts events: [`journal`] stores each run's, then publishes it.
    pub journal: mpsc::UnboundedSender<RunEvent>,
    pub status: Mutex<EngineStatus>,
    pub controls: Mutex<HashMap<RunId, Arc<RunControl>>>,
    pub shutting_down: AtomicBool,
    pub simulated: bool,
    pub config: EngineConfig,
    pub stopped: watch::Sender<bool>,
}

impl Shared {
    /// Publishes an event (nobody listening is fine), a run's after storing it in the run's
    /// history ([`journal`]); in the order emitted.
    pub fn emit(&self, run_id: Option<RunId>, kind: EventKind) {
        let _ = self.journal.send(RunEvent {
            run_id,
            at: Timestamp::now().to_rfc3339(),
            seq: None,
            kind,
        });
    }

    pub fn status(&self) -> MutexGuard<'_, EngineStatus> {
        // The status is a plain snapshot; a panic while it was held cannot leave it half-made in
        // a way that matters more than losing it.
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn controls(&self) -> MutexGuard<'_, HashMap<RunId, Arc<RunControl>>> {
        self.controls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// Stores each run's event in its history (`store::run_events`), numbering it, then publishes it;
/// an instrument event is only published. Runs until every sender ([`Shared`]) is gone.
///
/// Storing before publishing is what lets the live view replay without gaps or repeats: it
/// subscribes first, then reads the stored history; whatever it then receives with a number at
/// or below the last one read it has already sent. A store failure costs the event its place in
/// the history (logged), never its publication.
pub(crate) async fn journal(
    store: Store,
    mut queue: mpsc::UnboundedReceiver<RunEvent>,
    events: broadcast::Sender<RunEvent>,
) {
    while let Some(mut event) = queue.recv().await {
        if let Some(run_id) = event.run_id {
            match serde_json::to_string(&event) {
                Ok(data) => {
                    let at = Timestamp::parse(&event.at).unwrap_or_else(|_| Timestamp::now());
                    match store
                        .append_run_event(run_id, &at, event.kind.name(), &data)
                        .await
                    {
                        Ok(seq) => event.seq = Some(seq),
                        Err(error) => tracing::warn!(
                            run = run_id.0,
                            event = event.kind.name(),
                            %error,
                            "a run event could not be stored; the live view will not replay it"
                        ),
                    }
                }
                Err(error) => tracing::warn!(
                    run = run_id.0,
                    %error,
                    "a run event could not be serialised for its history"
                ),
            }
        }
        let _ = events.send(event);
    }
}

/// A queued run as the thread receives it.
pub(crate) struct Job {
    pub run_id: RunId,
    pub sample: Sample,
    pub request: RunRequest,
    pub reagent_lot: String,
    pub control: Arc<RunControl>,
}

/// What the thread is asked to do.
pub(crate) enum Command {
    Run(Box<Job>),
    /// Make the simulated lot's calibration (pending) and answer with it.
    CalibrateSimulatedLot(
        tokio::sync::oneshot::Sender<
            Result<crate::store::calibrations::Calibration, super::failure::Failure>,
        >,
    ),
    Shutdown,
}

/// The thread's state.
pub(crate) struct Worker {
    pub board: Box<dyn Board>,
    pub store: Store,
    pub runtime: tokio::runtime::Handle,
    pub shared: Arc<Shared>,
}

impl Worker {
    /// Runs store calls from the board thread.
    pub fn db<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.runtime.block_on(call)
    }

    /// Serves commands until shutdown or until every handle is gone.
    pub fn serve(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        self.take_over_board();
        while let Some(command) = commands.blocking_recv() {
            match command {
                Command::Run(job) => self.run_job(*job),
                Command::CalibrateSimulatedLot(reply) => {
                    let _ = reply.send(self.make_simulated_calibration());
                }
                Command::Shutdown => break,
            }
        }
        // Runs still queued behind the shutdown are recorded, not dropped.
        commands.close();
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Run(job) => self.run_job(*job),
                // Dropping the reply answers "stopped".
                Command::CalibrateSimulatedLot(_) | Command::Shutdown => {}
            }
        }
        self.shut_down();
    }

    /// Before anything else, the board is halted and its FIFO flushed: a sequence that a
    /// previous process (crashed, killed, powered off) left running must neither run on nor leave
    /// echoes to be read as ours. A board that cannot be reached now is logged; every run
    /// identifies the board before it measures.
    fn take_over_board(&mut self) {
        let (kind, message) = match self.board.take_over() {
            Ok(()) => (
                LogKind::Event,
                "board taken over at start-up: sequencer halted, FIFO flushed".to_owned(),
            ),
            Err(fault) => (
                LogKind::Error,
                format!("could not halt the board at start-up: {fault}"),
            ),
        };
        self.log_and_announce(kind, message, "the board take-over");
    }

    /// Writes an engine-wide entry to the instrument log and publishes it as a notice; a failure
    /// to log is published too (there is no run to fail).
    fn log_and_announce(&self, kind: LogKind, message: String, what: &str) {
        if let Err(error) = self.db(self
            .store
            .log_instrument(&NewLogEntry::message(kind, &message)))
        {
            self.shared.emit(
                None,
                EventKind::Notice {
                    message: format!("could not log {what}: {error}"),
                },
            );
        }
        self.shared.emit(None, EventKind::Notice { message });
    }

    fn shut_down(&mut self) {
        let halted = self.board.halt();
        let message = match &halted {
            Ok(()) => "acquisition engine stopped; board halted".to_owned(),
            Err(fault) => format!("acquisition engine stopped; halting the board failed: {fault}"),
        };
        let kind = if halted.is_ok() {
            LogKind::Event
        } else {
            LogKind::Error
        };
        self.log_and_announce(kind, message, "the shutdown");
        self.shared.status().stopped = true;
        self.shared.stopped.send_replace(true);
    }

    fn run_job(&mut self, job: Job) {
        let run_id = job.run_id;
        let cancelled_while_queued = {
            let mut control = job.control.lock();
            let cancelled = control.cancel.is_some();
            control.started = !cancelled;
            cancelled
        };
        self.shared.status().queued.retain(|id| *id != run_id);
        if cancelled_while_queued {
            // The handle that cancelled it has recorded the state.
            self.forget(run_id);
            return;
        }
        let final_state = if self.shared.is_shutting_down() {
            self.end(
                run_id,
                &Actor::Appliance,
                RunState::Interrupted,
                "the appliance shut down before the run started",
            )
        } else {
            self.shared.status().current_run = Some(RunProgress {
                run_id,
                state: RunState::Queued,
                step: "starting".into(),
            });
            let outcome = self.workflow(&job);
            let late_cancel = {
                let mut control = job.control.lock();
                control.closed = true;
                control.cancel.clone()
            };
            match outcome {
                // A cancel that arrived while the result was being recorded still applies.
                Ok(()) => match late_cancel {
                    Some((actor, reason)) => self.end(run_id, &actor, RunState::Cancelled, &reason),
                    None => RunState::AwaitingRelease,
                },
                Err(stop) => self.stopped(run_id, stop),
            }
        };
        job.control.finish(final_state);
        self.shared.status().current_run = None;
        self.forget(run_id);
    }

    /// Leaves the board safe and records how the run stopped.
    fn stopped(&mut self, run_id: RunId, stop: Stop) -> RunState {
        let halt_note = match self.board.halt() {
            Ok(()) => String::new(),
            Err(fault) => format!(" (and halting the board failed: {fault})"),
        };
        match stop {
            Stop::Failed(failure) => {
                let cause = format!("{failure}{halt_note}");
                let entry = NewLogEntry {
                    run_id: Some(run_id),
                    ..NewLogEntry::message(LogKind::Error, format!("run {run_id} failed: {cause}"))
                };
                if let Err(error) = self.db(self.store.log_instrument(&entry)) {
                    self.shared.emit(
                        Some(run_id),
                        EventKind::Notice {
                            message: format!("could not log the failure: {error}"),
                        },
                    );
                }
                self.shared.emit(
                    Some(run_id),
                    EventKind::Failed {
                        failure: failure.clone(),
                    },
                );
                self.end(run_id, &Actor::Appliance, RunState::Failed, &cause)
            }
            Stop::Cancelled(actor, reason) => self.end(
                run_id,
                &actor,
                RunState::Cancelled,
                &format!("{reason}{halt_note}"),
            ),
            Stop::Shutdown => self.end(
                run_id,
                &Actor::Appliance,
                RunState::Interrupted,
                &format!("the appliance shut down during the run{halt_note}"),
            ),
        }
    }

    /// Moves the run to a terminal state; a store failure is published, the state stays as the
    /// store has it.
    fn end(&self, run_id: RunId, actor: &Actor, state: RunState, cause: &str) -> RunState {
        match self.set_state_as(actor, run_id, state, Some(cause)) {
            Ok(()) => state,
            Err(error) => {
                self.shared.emit(
                    Some(run_id),
                    EventKind::Notice {
                        message: format!("could not record the run as {state}: {error}"),
                    },
                );
                self.db(self.store.run(run_id))
                    .map_or(state, |run| run.state)
            }
        }
    }

    fn forget(&self, run_id: RunId) {
        self.shared.controls().remove(&run_id);
    }

    /// Moves a run to `state` in the store (audited), publishes it and updates the status.
    pub fn set_state(&self, run_id: RunId, state: RunState) -> Result<(), StoreError> {
        self.set_state_as(&Actor::Appliance, run_id, state, None)
    }

    fn set_state_as(
        &self,
        actor: &Actor,
        run_id: RunId,
        state: RunState,
        cause: Option<&str>,
    ) -> Result<(), StoreError> {
        self.db(self.store.set_run_state(actor, run_id, state, cause))?;
        if let Some(current) = self.shared.status().current_run.as_mut()
            && current.run_id == run_id
        {
            current.state = state;
        }
        self.shared.emit(
            Some(run_id),
            EventKind::State {
                state,
                cause: cause.map(str::to_owned),
            },
        );
        Ok(())
    }

    /// Says what the current run is doing (status snapshot).
    pub fn step(&self, step: impl Into<String>) {
        if let Some(current) = self.shared.status().current_run.as_mut() {
            current.step = step.into();
        }
    }

    /// Stops when the run was cancelled or the engine is shutting down.
    pub fn checkpoint(&self, control: &RunControl) -> Result<(), Stop> {
        if let Some((actor, reason)) = &control.lock().cancel {
            return Err(Stop::Cancelled(actor.clone(), reason.clone()));
        }
        if self.shared.is_shutting_down() {
            return Err(Stop::Shutdown);
        }
        Ok(())
    }

    /// Writes an instrument-log entry; a failure to log fails the run (the log is part of the
    /// record).
    pub fn log(&self, entry: NewLogEntry) -> Result<(), Failure> {
        self.db(self.store.log_instrument(&entry))?;
        Ok(())
    }

    /// A report as stored JSON.
    pub fn json<T: serde::Serialize>(value: &T) -> Result<JsonReport, Failure> {
        Ok(JsonReport::of(value)?)
    }
}
