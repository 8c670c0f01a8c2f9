//! Work spread over threads, results delivered in input order: the engine of `ferrocount fit`.
//!
//! Workers take the next item from a shared counter (so a slow file never holds a whole chunk of
//! others hostage), each with its own reusable state, and send `(index, result)` to the calling
//! thread. The caller puts results back in order and hands them to a [`Sink`] as soon as the next
//! one in line is there, so output streams while later items are still being worked on. Workers
//! never run more than a bounded window ahead of what has been delivered, which bounds the memory
//! held for reordering when one item is slow.
//!
//! Not here: what the work is or how results are written (that is the caller's [`Sink`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, mpsc};
use std::thread;

/// How many items each worker may run ahead of the last one delivered.
const WINDOW_PER_JOB: usize = 256;

/// Receives results in input order.
pub(super) trait Sink<R> {
    /// The error that stops the run (e.g. a closed output).
    type Error;
    /// The next result in input order.
    fn accept(&mut self, result: R) -> Result<(), Self::Error>;
    /// Called when no result is ready; a buffered writer flushes here, so output keeps streaming.
    fn idle(&mut self) -> Result<(), Self::Error>;
}

/// Applies `work` to every item on `jobs` threads (at least one) and delivers the results to `sink`
/// in the order of `items`. `init` makes each worker's reusable state (e.g. a read buffer).
///
/// The first error from the sink stops the run: workers finish the item in hand and take no more.
pub(super) fn ordered_map<T, S, R, K>(
    items: &[T],
    jobs: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&T, &mut S) -> R + Sync,
    sink: &mut K,
) -> Result<(), K::Error>
where
    T: Sync,
    R: Send,
    K: Sink<R>,
{
    let jobs = jobs.clamp(1, items.len().max(1));
    let window = WINDOW_PER_JOB * jobs;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let delivered = Mutex::new(0_usize);
    let progressed = Condvar::new();

    thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<(usize, R)>();
        for _ in 0..jobs {
            let sender = sender.clone();
            let (next, stop, delivered, progressed) = (&next, &stop, &delivered, &progressed);
            let (init, work) = (&init, &work);
            scope.spawn(move || {
                let mut state = init();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= items.len() || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // The item `*delivered` is always in some worker's hands and never waits here,
                    // so the window always moves on.
                    let mut done = delivered.lock().unwrap_or_else(PoisonError::into_inner);
                    while index >= *done + window && !stop.load(Ordering::Relaxed) {
                        done = progressed
                            .wait(done)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    drop(done);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = work(&items[index], &mut state);
                    if sender.send((index, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);

        let halt = |error| {
            stop.store(true, Ordering::Relaxed);
            // Take the lock so no worker is between its check of `stop` and its wait.
            drop(delivered.lock().unwrap_or_else(PoisonError::into_inner));
            progressed.notify_all();
            Err(error)
        };
        // pending[k] holds the result of item base + k once it has arrived.
        let mut pending: VecDeque<Option<R>> = VecDeque::new();
        let mut base = 0_usize;
        loop {
            let (index, result) = match receiver.try_recv() {
                Ok(message) => message,
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {
                    if let Err(e) = sink.idle() {
                        return halt(e);
                    }
                    match receiver.recv() {
                        Ok(message) => message,
                        Err(mpsc::RecvError) => break,
                    }
                }
            };
            let slot = index - base;
            if pending.len() <= slot {
                pending.resize_with(slot + 1, || None);
            }
            pending[slot] = Some(result);
            let before = base;
            while let Some(Some(_)) = pending.front() {
                let ready = pending
                    .pop_front()
                    .flatten()
                    .expect("the front slot was just seen to hold a result");
                base += 1;
                if let Err(e) = sink.accept(ready) {
                    return halt(e);
                }
            }
            if base > before {
                *delivered.lock().unwrap_or_else(PoisonError::into_inner) = base;
                progressed.notify_all();
            }
        }
        debug_assert!(pending.is_empty() && base == items.len());
        sink.idle()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Records what it is given; fails on `fail_at` if set.
    struct Recorder {
        seen: Vec<usize>,
        idles: usize,
        fail_at: Option<usize>,
    }

    impl Sink<usize> for Recorder {
        type Error = String;
        fn accept(&mut self, result: usize) -> Result<(), String> {
            if Some(result) == self.fail_at {
                return Err(format!("refused {result}"));
            }
            self.seen.push(result);
            Ok(())
        }
        fn idle(&mut self) -> Result<(), String> {
            self.idles += 1;
            Ok(())
        }
    }

    fn recorder(fail_at: Option<usize>) -> Recorder {
        Recorder {
            seen: Vec::new(),
            idles: 0,
            fail_at,
        }
    }

    #[test]
    fn results_arrive_in_input_order_whatever_the_finishing_order() {
        // Early items take longest, so workers finish them last; the window is exceeded too.
        let items: Vec<usize> = (0..2_000).collect();
        for jobs in [1, 2, 3, 8] {
            let mut sink = recorder(None);
            ordered_map(
                &items,
                jobs,
                || 0_u32,
                |&i, calls| {
                    *calls += 1;
                    if i % 500 < 3 {
                        thread::sleep(Duration::from_millis(5));
                    }
                    i * 3
                },
                &mut sink,
            )
            .unwrap();
            let expected: Vec<usize> = items.iter().map(|i| i * 3).collect();
            assert_eq!(sink.seen, expected, "jobs = {jobs}");
            assert!(sink.idles >= 1);
        }
    }

    #[test]
    fn a_sink_error_stops_the_run_and_is_returned() {
        let items: Vec<usize> = (0..10_000).collect();
        let mut sink = recorder(Some(40));
        let e = ordered_map(&items, 2, || (), |&i, ()| i, &mut sink).unwrap_err();
        assert_eq!(e, "refused 40");
        assert_eq!(sink.seen, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn no_items_is_no_work() {
        let mut sink = recorder(None);
        ordered_map(&[] as &[usize], 4, || (), |&i, ()| i, &mut sink).unwrap();
        assert!(sink.seen.is_empty());
    }
}
