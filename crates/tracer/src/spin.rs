//! How long the loop keeps polling for the next stop before it sleeps.

use std::time::{Duration, Instant};

/// The tracer's wait for the next stop: a short, adaptive wait on
/// `waitpid(WNOHANG)` after each event, yielding the CPU between polls,
/// before it sleeps in `poll`.
///
/// A stop that wakes a sleeping tracer costs a cross-CPU wake-up (an
/// inter-processor interrupt and the idle CPU's exit latency), often more
/// than the tracer's own work on the stop; a path-heavy program stops again
/// within microseconds of being resumed. So after handling an event the
/// loop keeps polling for up to `budget`; a spin that ends with an event
/// doubles the budget (up to [`SPIN_MAX`]), one that ends empty halves it
/// (down to [`SPIN_MIN`]), so a program that computes between its calls
/// costs the tracer little CPU. Each poll is followed by `sched_yield`:
/// the resumed tracee is often woken on the tracer's own CPU, and a pure
/// busy loop kept it waiting (a fork/exec loop measured 10-20% slower).
/// Only while the program has one task (more may need both CPUs), never
/// on a machine (or cpuset) with one CPU, which includes the tracer bound
/// to one CPU by `pin.rs` (it is, from the start of a run, unless binding
/// is off or refused): the spin is for a tracer whose program runs on
/// another CPU. A task bound to the tracer's CPU instead wakes it with a
/// switch, not a cross-CPU wake-up, and the loop yields before its first
/// poll after resuming it: the task cannot have stopped again before it
/// ran, so that poll could only find nothing, and the tracer slept in
/// `poll` at nearly every stop (a Python run: 2,279 `poll`s and 4,674
/// `wait4`s for 2,358 stops before, 155 and 2,539 after; `find
/// /usr/share` went from 299 to 258 ms). Spinning while bound too was
/// measured and changed nothing.
pub(crate) struct Spin {
    on: bool,
    budget: Duration,
    /// When the last event was handled, while a spin is allowed.
    since: Option<Instant>,
}

/// The most one spin lasts.
const SPIN_MAX: Duration = Duration::from_micros(400);
/// The least budget a spin keeps, so that a busy phase is noticed again.
const SPIN_MIN: Duration = Duration::from_micros(5);

impl Spin {
    pub(crate) fn new(wanted: bool) -> Spin {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Spin {
            on: wanted && cpus > 1,
            budget: SPIN_MAX,
            since: None,
        }
    }

    /// An event was handled at `now`: a spin may follow.
    pub(crate) fn handled(&mut self, now: Instant) {
        if !self.on {
            return;
        }
        if self.since.is_some() {
            // The spin that was running ended with this event.
            self.budget = (self.budget * 2).min(SPIN_MAX);
        }
        self.since = Some(now);
    }

    /// Whether to poll again rather than sleep; a spin that runs out of
    /// budget halves it.
    pub(crate) fn again(&mut self, now: Instant) -> bool {
        let Some(since) = self.since else {
            return false;
        };
        if now - since < self.budget {
            return true;
        }
        self.since = None;
        self.budget = (self.budget / 2).max(SPIN_MIN);
        false
    }
}
