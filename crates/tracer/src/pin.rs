//! One CPU for the tracer and a program that has one task.
//!
//! A ptrace stop hands the CPU back and forth: the tracee stops, the tracer
//! wakes, resumes it, and the tracee wakes. When the two run on different
//! CPUs each hand-over is a cross-CPU wake-up; on one CPU it is a switch.
//! So while the traced program has one task, the tracer and that task are
//! bound to the CPU the tracer runs on (a verifying run of Python's imports
//! went from 130 to 95 ms on this project's 2-vCPU machine, `find /usr/share`
//! from 250 to 88). Once it has more (a fork, a thread), every task and the
//! tracer get the caller's CPUs back, so a server or a JVM runs in
//! parallel; a program back to one task is bound again. A program that asks
//! for its CPUs (`sched_getaffinity(2)`) while it is alone sees one.
//!
//! Only where the caller may use more than one CPU, and never when a call
//! fails (binding is an optimisation: a refused `sched_setaffinity`, as in a
//! cpuset that forbids it, leaves everything as it was).

use std::collections::HashSet;

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

pub(crate) struct Pin {
    /// The caller's CPUs, and the one the tracer binds to; `None` when not
    /// binding.
    sets: Option<(CpuSet, CpuSet)>,
    bound: bool,
    /// The tasks given the caller's CPUs since the last unbinding.
    freed: HashSet<Pid>,
    /// How many tasks there were at the last look.
    seen: usize,
}

impl Pin {
    /// Binds the calling thread (the tracer, before it starts the program:
    /// the spawning thread inherits the binding, and the program from it)
    /// to the CPU it runs on, when `wanted` and the caller has more than
    /// one.
    pub(crate) fn start(wanted: bool) -> Pin {
        let mut pin = Pin {
            sets: None,
            bound: false,
            freed: HashSet::new(),
            seen: 0,
        };
        if !wanted {
            return pin;
        }
        let (Ok(all), Ok(cpu)) = (sched_getaffinity(Pid::from_raw(0)), sched_getcpu()) else {
            return pin;
        };
        let usable = (0..CpuSet::count())
            .filter(|&c| all.is_set(c).unwrap_or(false))
            .count();
        let mut one = CpuSet::new();
        if usable < 2 || one.set(cpu).is_err() {
            return pin;
        }
        if sched_setaffinity(Pid::from_raw(0), &one).is_ok() {
            pin.sets = Some((all, one));
            pin.bound = true;
        }
        pin
    }

    /// Whether the tracer and the program's one task share a CPU now.
    pub(crate) fn bound(&self) -> bool {
        self.bound
    }

    /// Follows the program's task count: with `single` task, it and the
    /// tracer share the tracer's CPU; otherwise every task in `tasks`
    /// (and the tracer) has the caller's CPUs.
    pub(crate) fn follow<'a>(
        &mut self,
        single: bool,
        tasks: impl ExactSizeIterator<Item = &'a Pid>,
    ) {
        let Some((all, one)) = &self.sets else {
            return;
        };
        let count = std::mem::replace(&mut self.seen, tasks.len());
        if single == self.bound && count == self.seen {
            return;
        }
        match (single, self.bound) {
            (true, true) => {}
            (true, false) => {
                let _ = sched_setaffinity(Pid::from_raw(0), one);
                for pid in tasks {
                    let _ = sched_setaffinity(*pid, one);
                }
                self.freed.clear();
                self.bound = true;
            }
            (false, bound) => {
                if bound {
                    let _ = sched_setaffinity(Pid::from_raw(0), all);
                    self.bound = false;
                }
                // A task made while the tracer was bound inherited its CPU.
                for pid in tasks {
                    if self.freed.insert(*pid) {
                        let _ = sched_setaffinity(*pid, all);
                    }
                }
            }
        }
    }
}

/// Gives the calling thread the least scheduling priority (nice 19), so
/// that work started beside the main line (compiling the deny rules,
/// probing for pid namespaces) runs on a CPU nothing else wants instead
/// of taking the CPU of the thread that started it: on two CPUs, a `date`
/// jail started 2 ms later without this. Linux keeps the nice value of
/// each thread (setpriority(2), NOTES). Best effort: a refusal changes
/// nothing.
pub fn background() {
    // SAFETY: setpriority(2) takes no pointers; `who` 0 is the calling
    // thread.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
}

impl Drop for Pin {
    /// The tracer gets the caller's CPUs back when the run ends.
    fn drop(&mut self) {
        if let (Some((all, _)), true) = (&self.sets, self.bound) {
            let _ = sched_setaffinity(Pid::from_raw(0), all);
        }
    }
}
