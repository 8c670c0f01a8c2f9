//! The per-run mailbox between callers and the engine's thread: cancel, tube confirmations, and
//! the final state, shared behind a mutex and condition variable so the board thread can block
//! on "the operator has put the tube in" while callers stay async.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::Actor;
use crate::store::runs::RunState;

/// What callers have asked of a run, and how far the engine has got with it.
#[derive(Debug, Default)]
pub(crate) struct ControlState {
    /// Set by cancel: who, and the cause recorded with the run.
    pub cancel: Option<(Actor, String)>,
    /// The engine has taken the run off the queue (it owns its state from now on).
    pub started: bool,
    /// Tubes the operator has confirmed so far.
    pub confirmed_tubes: usize,
    /// The engine waits for tube number `awaiting` (1-based) to be confirmed.
    pub awaiting: Option<usize>,
    /// The engine has decided how the run ends: a cancel from now on is a cancel of the stored
    /// run (a result awaiting release), not of the measurement.
    pub closed: bool,
}

/// One run's mailbox.
#[derive(Debug)]
pub(crate) struct RunControl {
    state: Mutex<ControlState>,
    changed: Condvar,
    final_state: watch::Sender<Option<RunState>>,
}

/// Why a wait for a tube ended without it.
pub(crate) enum TubeWait {
    Confirmed,
    Cancelled(Actor, String),
    Shutdown,
}

impl RunControl {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(ControlState::default()),
            changed: Condvar::new(),
            final_state: watch::Sender::new(None),
        }
    }

    /// The state, locked. A poisoned lock means a thread panicked while holding plain flags that
    /// are always consistent on their own, so they are used as they are.
    pub fn lock(&self) -> MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the engine's thread if it waits on this run.
    pub fn notify(&self) {
        self.changed.notify_all();
    }

    /// Blocks the board thread until tube `index` is confirmed, the run is cancelled or
    /// `shutting_down` says so (checked every 100 ms).
    pub fn wait_for_tube(&self, index: usize, shutting_down: impl Fn() -> bool) -> TubeWait {
        let mut state = self.lock();
        state.awaiting = Some(index);
        loop {
            if let Some((actor, reason)) = &state.cancel {
                let stop = TubeWait::Cancelled(actor.clone(), reason.clone());
                state.awaiting = None;
                return stop;
            }
            if shutting_down() {
                state.awaiting = None;
                return TubeWait::Shutdown;
            }
            if state.confirmed_tubes >= index {
                state.awaiting = None;
                return TubeWait::Confirmed;
            }
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Records the state the run ended in (a result awaiting release, or a terminal state).
    pub fn finish(&self, state: RunState) {
        self.final_state.send_replace(Some(state));
    }

    /// A receiver that sees the final state once the engine is done with the run.
    pub fn subscribe_final(&self) -> watch::Receiver<Option<RunState>> {
        self.final_state.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiting_thread_wakes_on_confirmation_and_on_cancel() {
        let control = Arc::new(RunControl::new());
        let waiter = {
            let control = Arc::clone(&control);
            std::thread::spawn(move || {
                matches!(control.wait_for_tube(1, || false), TubeWait::Confirmed)
            })
        };
        while control.lock().awaiting.is_none() {
            std::thread::yield_now();
        }
        control.lock().confirmed_tubes = 1;
        control.notify();
        assert!(waiter.join().expect("waiter thread"));

        let waiter = {
            let control = Arc::clone(&control);
            std::thread::spawn(move || match control.wait_for_tube(2, || false) {
                TubeWait::Cancelled(_, reason) => reason,
                _ => String::new(),
            })
        };
        control.lock().cancel = Some((Actor::Appliance, "operator".into()));
        control.notify();
        assert_eq!(waiter.join().expect("waiter thread"), "operator");
        assert!(matches!(
            control.wait_for_tube(3, || true),
            TubeWait::Cancelled(..)
        ));
    }
}
