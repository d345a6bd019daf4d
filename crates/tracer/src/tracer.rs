//! The event loop: one `waitpid(-1, __WALL)` loop over every traced task.
//!
//! Each stop is matched exhaustively (ptrace(2), "Stopped states"):
//! syscall-stops, seccomp stops, fork/vfork/clone/exec event stops,
//! group-stops (`PTRACE_EVENT_STOP` with a stopping signal, answered with
//! `PTRACE_LISTEN` so a stopped job stays stopped), and signal-delivery stops
//! (the signal is re-injected). Per-task state lives in a map keyed by tid;
//! a task that vanishes while a stop is pending (`ESRCH`) is simply dropped.
//!
//! The loop never blocks in `waitpid`: it drains events with `WNOHANG` and
//! then sleeps in `poll` on a signalfd for `SIGCHLD`, `SIGINT`, `SIGTERM`,
//! `SIGHUP` and `SIGQUIT`, so the handler's tick (timeouts, readiness) runs on
//! time and a Ctrl-C kills the traced tree instead of leaving it behind.
//! Those signals are blocked in the calling thread while a run lasts, and
//! so is SIGTTOU (see [`crate::terminal`]).
//!
//! The program runs in a process group of its own. When it has the
//! terminal, the terminal's Ctrl-C and `Ctrl-\` reach the program's group,
//! not jailtrace: the loop recognises them in the program's
//! signal-delivery-stops (sent by the kernel, `SI_KERNEL`, not by a
//! process) and ends the run as if jailtrace had received them. A
//! terminal's Ctrl-Z is not passed on: a job-control shell would see
//! jailtrace running and keep waiting for it, so the program would stay
//! stopped with nothing to continue it.

use std::collections::{HashMap, HashSet};
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace::{self, Event};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::arch::{Arch, Sysno};
use crate::call::{self, PathCall};
use crate::error::Error;
use crate::pin::Pin;
use crate::proc::Tracee;
use crate::seccomp::Filters;
use crate::signals::SignalGuard;
use crate::spawn::{self, Spawn};
use crate::spin::Spin;
use crate::terminal::Foreground;
use crate::wait::{wait_any, Sig, Waited};

/// How the tracer gets its stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seccomp {
    /// A seccomp-bpf filter stops the program at path syscalls only.
    On,
    /// `PTRACE_SYSCALL`: a stop at every syscall's entry and exit.
    Off,
}

/// Settings of one traced run.
#[derive(Clone, Debug)]
pub struct Options {
    pub seccomp: Seccomp,
    /// How often [`Handler::on_tick`] runs while the program runs.
    pub tick: Duration,
    /// Kill the tree when it has more live tasks than this.
    pub max_tasks: Option<usize>,
    /// Busy-wait briefly for the next stop before sleeping (see `Spin`);
    /// never on one CPU.
    pub spin: bool,
    /// Bind the tracer and a program that has one task to one CPU (see
    /// `pin.rs`); never on one CPU.
    pub pin: bool,
    /// Syscalls the handler has no use for in this run: they never stop
    /// (the filter lets them through; without one they are skipped).
    pub untraced: Vec<Sysno>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seccomp: Seccomp::On,
            tick: Duration::from_millis(100),
            max_tasks: None,
            spin: true,
            pin: true,
            untraced: Vec::new(),
        }
    }
}

/// Whether the handler wants to see a call's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitInterest {
    No,
    Yes,
}

/// What the handler wants after a tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// Kill the whole traced tree (SIGKILL) and end the run; the reason ends
    /// up in [`RunOutcome::stopped`].
    Kill(String),
    /// Send SIGTERM to every traced task (a polite stop); the run goes on
    /// until they exit, or the handler kills them on a later tick.
    Terminate,
    /// Start the next program of the stack ([`run_stack`]) beside those
    /// already running.
    StartNext,
}

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled { signal: Sig, core_dumped: bool },
}

/// Process tree changes, reported to [`Handler::on_process`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessEvent {
    /// `pid` was created by `parent` (fork, vfork or clone; threads too).
    Spawned { pid: Pid, parent: Pid },
    /// `pid` called exec; `former` is the tid that called it when a thread
    /// other than the leader exec'd (that tid is gone now).
    Exec { pid: Pid, former: Pid },
    /// `pid` ended; `leader` is true for a program jailtrace started, `job`
    /// says which (the index of its [`Spawn`] in [`run_stack`]).
    Exited {
        pid: Pid,
        status: Status,
        leader: bool,
        job: usize,
    },
    /// The last task of `job` ended (reported after its `Exited`).
    JobEnded { job: usize },
}

/// Receives a traced run's events. Every call happens while the task
/// concerned is stopped.
pub trait Handler {
    /// A path syscall is about to run. Whatever the handler does to the file
    /// system now, the call sees.
    fn on_entry(&mut self, tracee: &Tracee, call: &PathCall) -> ExitInterest;
    /// The call reported with [`ExitInterest::Yes`] returned: `Ok(value)` or
    /// `Err(errno)`.
    fn on_exit(&mut self, _tracee: &Tracee, _call: &PathCall, _result: Result<i64, Errno>) {}
    fn on_process(&mut self, _event: &ProcessEvent) {}
    /// Called about every [`Options::tick`] (or sooner, see
    /// [`Handler::tick_within`]), and after the first task exits.
    fn on_tick(&mut self, _elapsed: Duration) -> Control {
        Control::Continue
    }
    /// How soon the next [`Handler::on_tick`] must come when that is sooner
    /// than [`Options::tick`]: while the handler waits for something it
    /// looks at only on a tick and should notice at once (a server
    /// becoming ready, an exercise ending). Asked after every tick.
    fn tick_within(&self) -> Option<Duration> {
        None
    }
    /// Descriptors the loop also waits on while no task stops (the pipes
    /// the program's output is read from, which it would otherwise fill and
    /// block on until the next tick): adds them to `fds`.
    fn watched<'a>(&'a self, _fds: &mut Vec<BorrowedFd<'a>>) {}
    /// A descriptor of [`Handler::watched`] is readable, or its other end
    /// closed.
    fn on_readable(&mut self) {}
}

/// What a run came to.
#[derive(Clone, Debug, Default)]
pub struct RunOutcome {
    /// How the program's first process ended (the last program of a
    /// stack); `None` if it was still running when the tree was killed, or
    /// never started.
    pub status: Option<Status>,
    /// How each program of a stack ended, by job: the last one's is
    /// `status`.
    pub jobs: Vec<Option<Status>>,
    /// Why the tracer killed the tree, if it did.
    pub stopped: Option<String>,
    /// A signal (SIGINT, SIGTERM, …) that interrupted jailtrace itself.
    pub interrupted: Option<Signal>,
    /// Tasks seen (processes and threads).
    pub tasks: u32,
    /// Syscall stops handled.
    pub stops: u64,
    /// Time spent in the handler's [`Handler::on_entry`] and
    /// [`Handler::on_exit`]: of a stop's cost, the part that is not the
    /// kernel's (the stop, the wake-ups, `PTRACE_CONT`).
    pub handling: Duration,
    pub elapsed: Duration,
}

/// Per-task state.
#[derive(Debug, Default)]
struct Task {
    /// A task of the program: it exec'd, or descends from one that did
    /// (not the helpers that set up a pid namespace).
    program: bool,
    /// The program of the stack the task belongs to.
    job: usize,
    /// The call whose exit the handler asked for.
    pending: Option<PathCall>,
    /// Set between a PTRACE_SYSCALL entry stop and its exit stop (no-seccomp
    /// mode), so an exit is never mistaken for an entry.
    in_syscall: bool,
    /// Its parent's fork event came, or the loop started it (a job's
    /// child). A task first seen at a stop of its own waits for that event.
    forked: bool,
}

const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;
const PTRACE_SYSCALL_INFO_EXIT: u8 = 2;
const PTRACE_SYSCALL_INFO_SECCOMP: u8 = 3;

/// The syscall a stopped task is in, from `PTRACE_GET_SYSCALL_INFO`
/// (Linux 5.3): architecture-neutral, so no register layout is needed.
enum SyscallInfo {
    Entry {
        arch: Option<Arch>,
        nr: u64,
        args: [u64; 6],
    },
    Exit {
        result: Result<i64, Errno>,
    },
    Other,
}

fn syscall_info(pid: Pid) -> Result<SyscallInfo, Errno> {
    let info = ptrace::syscall_info(pid)?;
    let arch = Arch::from_audit(info.arch);
    // SAFETY: `op` says which member of the union the kernel filled.
    Ok(unsafe {
        match info.op {
            PTRACE_SYSCALL_INFO_ENTRY => SyscallInfo::Entry {
                arch,
                nr: info.u.entry.nr,
                args: info.u.entry.args,
            },
            PTRACE_SYSCALL_INFO_SECCOMP => SyscallInfo::Entry {
                arch,
                nr: info.u.seccomp.nr,
                args: info.u.seccomp.args,
            },
            PTRACE_SYSCALL_INFO_EXIT => SyscallInfo::Exit {
                result: if info.u.exit.is_error != 0 {
                    Err(Errno::from_raw(-info.u.exit.sval as i32))
                } else {
                    Ok(info.u.exit.sval)
                },
            },
            _ => SyscallInfo::Other,
        }
    })
}

/// `PTRACE_LISTEN`: leave a task in its group-stop but keep getting its
/// events (ptrace(2), "Group-stop"). nix has no wrapper for it.
fn listen(pid: Pid) -> Result<(), Errno> {
    // SAFETY: PTRACE_LISTEN takes no pointers; addr and data must be 0.
    let rc = unsafe { libc::ptrace(libc::PTRACE_LISTEN, pid.as_raw(), 0, 0) };
    Errno::result(rc).map(drop)
}

/// Runs `spec` under ptrace until every task it started has exited, and
/// reports each path syscall to `handler`.
///
/// One run at a time per process: the loop waits for any child
/// (`waitpid(-1)`), and ptrace requests must come from the thread that
/// seized the tracee, so concurrent runs in one process would steal each
/// other's events.
///
/// Terminating signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) sent to the
/// calling process kill the traced tree; they are consumed and reported in
/// [`RunOutcome::interrupted`], so the caller decides how to exit.
pub fn run(spec: &Spawn, opts: &Options, handler: &mut dyn Handler) -> Result<RunOutcome, Error> {
    run_stack(std::slice::from_ref(spec), opts, handler)
}

/// Runs a stack of programs under one tracer: `specs[0]` at once, each
/// next one when the handler's tick returns [`Control::StartNext`] (a
/// database before the web server that queries it). Every task knows its
/// job (the index of its spec, [`Tracee::job`]); a stop signals the tasks
/// of every job. The last spec is the program the run is about: its status
/// is [`RunOutcome::status`].
///
/// A stack of more than one program never gets the terminal: a Ctrl-C
/// typed there reaches jailtrace, which kills the stack. When the first
/// program has a pid namespace of its own, the later ones join it (a
/// `/proc` mounted for it then shows them all).
pub fn run_stack(
    specs: &[Spawn],
    opts: &Options,
    handler: &mut dyn Handler,
) -> Result<RunOutcome, Error> {
    let Some(first) = specs.first() else {
        return Ok(RunOutcome::default());
    };
    let filters = match opts.seccomp {
        Seccomp::On => Some(Filters::build(Arch::native(), &opts.untraced)?),
        Seccomp::Off => None,
    };
    let signals = SignalGuard::new()?;
    // Declared after `signals`, so the terminal is given back while
    // SIGTTOU is still blocked.
    let foreground = if specs.len() == 1 {
        Foreground::claim()
    } else {
        None
    };
    // Before the first fork: the program inherits the binding.
    let mut pin = Pin::start(opts.pin);
    let job = Job::start(
        first,
        opts,
        filters.as_ref(),
        foreground.as_ref().map(Foreground::raw_fd),
        None,
    )?;
    let mut lp = Loop {
        opts,
        handler,
        specs,
        filters: filters.as_ref(),
        tasks: HashMap::from([(
            job.child.pid,
            Task {
                forked: true,
                ..Task::default()
            },
        )]),
        jobs: vec![job],
        out: RunOutcome {
            tasks: 1,
            jobs: vec![None],
            ..Default::default()
        },
        killing: false,
        failed: None,
        terminal: foreground.is_some(),
        program_tasks: 0,
        gone_early: HashSet::new(),
    };
    let start = Instant::now();
    let mut next_tick = start + lp.tick_interval();
    let mut spin = Spin::new(opts.spin);
    // The one task just resumed shares the tracer's CPU: it cannot have
    // stopped again before the tracer gives way (see `Spin`).
    let mut resumed_beside = false;
    loop {
        if std::mem::take(&mut resumed_beside) {
            std::thread::yield_now();
        }
        match wait_any() {
            Ok(Waited::Nothing) => {
                let now = Instant::now();
                if now >= next_tick {
                    lp.tick(start.elapsed());
                    next_tick = now + lp.tick_interval();
                    continue;
                }
                if lp.program_tasks == 1 && spin.again(now) {
                    std::thread::yield_now();
                    continue;
                }
                let mut watched = Vec::new();
                lp.handler.watched(&mut watched);
                let (sig, readable) = signals.wait(next_tick - now, &watched)?;
                drop(watched);
                if readable {
                    lp.handler.on_readable();
                }
                if let Some(sig) = sig {
                    lp.out.interrupted.get_or_insert(sig);
                    lp.kill_all(format!("jailtrace received {sig}"));
                }
            }
            Ok(status) => {
                let leader_exit = matches!(status, Waited::Exited(p, _) | Waited::Signaled(p, _, _) if lp.jobs.iter().any(|j| j.leader == p));
                lp.handle(status);
                pin.follow(lp.program_tasks <= 1, lp.tasks.keys());
                spin.handled(Instant::now());
                resumed_beside = pin.bound() && lp.program_tasks == 1;
                if leader_exit {
                    lp.tick(start.elapsed());
                    next_tick = next_tick.min(Instant::now() + lp.tick_interval());
                }
            }
            Err(Errno::ECHILD) => break,
            Err(Errno::EINTR) => {}
            Err(errno) => {
                return Err(Error::Os {
                    what: "waitpid",
                    errno,
                })
            }
        }
    }
    lp.out.elapsed = start.elapsed();
    if let Some(e) = lp.failed.take() {
        return Err(e);
    }
    for (job, status) in lp.jobs.iter().zip(&lp.out.jobs) {
        if let Some(Status::Exited(127)) = status {
            if let Some(err) = job.child.failure() {
                return Err(err.into());
            }
        }
    }
    lp.out.status = if lp.jobs.len() == specs.len() {
        lp.out.jobs.last().copied().flatten()
    } else {
        None
    };
    Ok(lp.out)
}

/// One program of a stack: the child started for it and what the loop
/// knows of its tasks.
struct Job {
    child: spawn::Child,
    /// The program's first task (the one that execs first).
    leader: Pid,
    /// The program's first exec happened; before it, the stops are the
    /// child's own set-up (chroot, chdir), not the program's.
    started: bool,
    /// The root the program started in, canonical (see [`Tracee`]).
    base: PathBuf,
    /// A task of the program called `chroot`.
    chrooted: bool,
}

impl Job {
    /// Forks the child for `spec`, seizes it and lets it go on to exec.
    fn start(
        spec: &Spawn,
        opts: &Options,
        filters: Option<&Filters>,
        tty: Option<std::os::fd::RawFd>,
        pid_namespace: Option<&std::fs::File>,
    ) -> Result<Job, Error> {
        // Paths are reported inside the root the program starts in; /proc
        // shows canonical host paths.
        let base = match &spec.root {
            Some(root) => std::fs::canonicalize(root).unwrap_or_else(|_| root.clone()),
            None => PathBuf::from("/"),
        };
        let child = spawn::spawn_child(
            spec,
            filters,
            tty,
            pid_namespace.map(std::os::fd::AsRawFd::as_raw_fd),
        )?;
        let options = ptrace::Options::PTRACE_O_TRACESYSGOOD
            | ptrace::Options::PTRACE_O_TRACEFORK
            | ptrace::Options::PTRACE_O_TRACEVFORK
            | ptrace::Options::PTRACE_O_TRACECLONE
            | ptrace::Options::PTRACE_O_TRACEEXEC
            | ptrace::Options::PTRACE_O_TRACESECCOMP
            | ptrace::Options::PTRACE_O_EXITKILL;
        if let Err(errno) = ptrace::seize(child.pid, options) {
            let _ = signal::kill(child.pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child.pid, None);
            return Err(Error::Seize { errno });
        }
        if opts.seccomp == Seccomp::Off {
            // Stop the child before it execs, so that the loop resumes it
            // with PTRACE_SYSCALL and sees the first execve (with a filter,
            // the execve stops by itself).
            ptrace::interrupt(child.pid).map_err(|errno| Error::Seize { errno })?;
        }
        child.release()?;
        Ok(Job {
            leader: child.pid,
            child,
            started: false,
            base,
            chrooted: false,
        })
    }
}

struct Loop<'a> {
    opts: &'a Options,
    handler: &'a mut dyn Handler,
    specs: &'a [Spawn],
    filters: Option<&'a Filters>,
    tasks: HashMap<Pid, Task>,
    /// The programs started so far, by job.
    jobs: Vec<Job>,
    out: RunOutcome,
    killing: bool,
    /// A later program of the stack could not be started: the run is
    /// killed and this returned.
    failed: Option<Error>,
    /// The program's group has the terminal (see [`crate::terminal`]).
    terminal: bool,
    /// Live tasks of the programs (see [`Task::program`]): the loop spins
    /// only while there is one (see [`crate::spin::Spin`]).
    program_tasks: usize,
    /// Tasks that exited before their parent's fork event was handled (the
    /// child of a fork can exec and exit first): that event must not bring
    /// them back, or their job would never end.
    gone_early: HashSet<Pid>,
}

const STOP_SIGNALS: [Signal; 4] = [
    Signal::SIGSTOP,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

impl Loop<'_> {
    /// The time to the next tick, as the handler wants it now.
    fn tick_interval(&self) -> Duration {
        self.handler
            .tick_within()
            .map_or(self.opts.tick, |soon| soon.min(self.opts.tick))
    }

    fn tick(&mut self, elapsed: Duration) {
        match self.handler.on_tick(elapsed) {
            Control::Continue => {}
            Control::Kill(reason) => self.kill_all(reason),
            Control::Terminate => {
                for pid in self.tasks.keys() {
                    let _ = signal::kill(*pid, Signal::SIGTERM);
                }
            }
            Control::StartNext => self.start_next(),
        }
    }

    /// Starts the next program of the stack, if there is one and the run
    /// is not being killed.
    fn start_next(&mut self) {
        let index = self.jobs.len();
        let Some(spec) = self.specs.get(index) else {
            return;
        };
        if self.killing {
            return;
        }
        // One pid namespace for the stack, that of the first program that
        // has one (a command run before the program has none): the `/proc`
        // mounted for it shows every program of the stack.
        let first = self
            .jobs
            .iter()
            .zip(self.specs)
            .find(|(_, s)| s.pid_namespace);
        let namespace = if let (true, Some((job, _))) = (spec.pid_namespace, first) {
            let leader = job.leader;
            match std::fs::File::open(format!("/proc/{leader}/ns/pid")) {
                Ok(ns) => Some(ns),
                Err(e) => {
                    self.kill_all(format!("cannot join the stack's pid namespace: {e}"));
                    self.failed = Some(Error::Os {
                        what: "opening the stack's pid namespace",
                        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                    });
                    return;
                }
            }
        } else {
            None
        };
        match Job::start(spec, self.opts, self.filters, None, namespace.as_ref()) {
            Ok(job) => {
                self.out.tasks += 1;
                self.tasks.insert(
                    job.child.pid,
                    Task {
                        job: index,
                        forked: true,
                        ..Task::default()
                    },
                );
                self.jobs.push(job);
                self.out.jobs.push(None);
            }
            Err(e) => {
                self.kill_all(format!(
                    "cannot start program {} of the stack: {e}",
                    index + 1
                ));
                self.failed = Some(e);
            }
        }
    }

    fn kill_all(&mut self, reason: String) {
        self.out.stopped.get_or_insert(reason);
        self.killing = true;
        for pid in self.tasks.keys() {
            let _ = signal::kill(*pid, Signal::SIGKILL);
        }
    }

    /// Forgets a task that is gone.
    fn remove_task(&mut self, pid: Pid) -> Option<Task> {
        let task = self.tasks.remove(&pid);
        if task.as_ref().is_some_and(|t| t.program) {
            self.program_tasks -= 1;
        }
        task
    }

    fn task(&mut self, pid: Pid) -> &mut Task {
        if !self.tasks.contains_key(&pid) {
            self.out.tasks += 1;
            if self.killing {
                let _ = signal::kill(pid, Signal::SIGKILL);
            }
            // A pid that exited early and is in use again.
            self.gone_early.remove(&pid);
            let job = self.job_of_new(pid);
            self.tasks.insert(
                pid,
                Task {
                    job,
                    ..Task::default()
                },
            );
        }
        self.tasks.entry(pid).or_default()
    }

    /// The job of a task seen for the first time. Its parent's fork event
    /// sets it too, but the new task's first stop may come before that
    /// event: the job is then the one of its thread group leader, or of
    /// its parent, as /proc tells.
    fn job_of_new(&self, pid: Pid) -> usize {
        if self.jobs.len() < 2 {
            return 0;
        }
        let Ok(status) = procfs::process::Process::new(pid.as_raw()).and_then(|p| p.status())
        else {
            return 0;
        };
        [status.tgid, status.ppid]
            .into_iter()
            .find_map(|p| self.tasks.get(&Pid::from_raw(p)))
            .map_or(0, |t| t.job)
    }

    /// Resumes `pid`: to its next syscall stop when we want one, else to
    /// its next seccomp or event stop.
    fn resume(&mut self, pid: Pid, sig: Option<Sig>) {
        let off = self.opts.seccomp == Seccomp::Off;
        let step = off || self.task(pid).pending.is_some();
        let request = if step {
            libc::PTRACE_SYSCALL
        } else {
            libc::PTRACE_CONT
        };
        // By number: nix's `ptrace::cont` takes no real-time signal.
        let data = sig.map_or(0, |s| s.0 as libc::c_long);
        // SAFETY: PTRACE_CONT and PTRACE_SYSCALL take no pointer: addr is
        // ignored, data is the signal to deliver.
        let r = Errno::result(unsafe { libc::ptrace(request, pid.as_raw(), 0, data) });
        if let Err(errno) = r {
            // ESRCH: the task was killed meanwhile; its exit is reported by
            // a later waitpid.
            tracing::trace!(%pid, %errno, "resume failed");
        }
    }

    fn handle(&mut self, status: Waited) {
        match status {
            Waited::Exited(pid, code) => self.exited(pid, Status::Exited(code)),
            Waited::Signaled(pid, signal, core_dumped) => self.exited(
                pid,
                Status::Signaled {
                    signal,
                    core_dumped,
                },
            ),
            Waited::Syscall(pid) => {
                self.out.stops += 1;
                self.syscall_stop(pid);
                self.resume(pid, None);
            }
            Waited::Event(pid, sig, event) => self.event(pid, sig, event),
            Waited::Stopped(pid, sig) => {
                // Signal-delivery-stop: give the signal back to the task,
                // unless it is the terminal's (see the module docs).
                self.task(pid);
                match self.terminal_signal(pid, sig) {
                    Some(Signal::SIGTSTP) => self.resume(pid, None),
                    Some(terminal) => {
                        self.out.interrupted.get_or_insert(terminal);
                        self.kill_all(format!("jailtrace received {terminal}"));
                        self.resume(pid, Some(sig));
                    }
                    None => self.resume(pid, Some(sig)),
                }
            }
            Waited::Continued | Waited::Nothing => {}
        }
    }

    /// `sig`, delivered to `pid`, when it is a Ctrl-C, `Ctrl-\` or Ctrl-Z of
    /// the terminal the program's group has: sent by the kernel
    /// (`SI_KERNEL`), where `kill(2)` gives `SI_USER`.
    fn terminal_signal(&self, pid: Pid, sig: Sig) -> Option<Signal> {
        let sig = sig.known()?;
        if !self.terminal || !matches!(sig, Signal::SIGINT | Signal::SIGQUIT | Signal::SIGTSTP) {
            return None;
        }
        let info = ptrace::getsiginfo(pid).ok()?;
        (info.si_code == libc::SI_KERNEL).then_some(sig)
    }

    fn exited(&mut self, pid: Pid, status: Status) {
        let task = self.remove_task(pid);
        if task.as_ref().is_some_and(|t| !t.forked) {
            self.gone_early.insert(pid);
        }
        let leader = self.jobs.iter().position(|j| j.leader == pid);
        if let Some(job) = leader {
            self.out.jobs[job] = Some(status);
        }
        let known = leader.or(task.map(|t| t.job));
        let job = known.unwrap_or(0);
        self.handler.on_process(&ProcessEvent::Exited {
            pid,
            status,
            leader: leader.is_some(),
            job,
        });
        // An unknown pid is a child jailtrace itself started (an
        // exercise's shell), reaped by this loop's `waitpid(-1)`.
        // One program: its job ends with the last task (no scan of the
        // tasks on every exit of a fork-heavy program).
        let job_left = if self.jobs.len() == 1 {
            !self.tasks.is_empty()
        } else {
            self.tasks.values().any(|t| t.job == job)
        };
        if known.is_some() && !job_left {
            self.handler.on_process(&ProcessEvent::JobEnded { job });
        }
    }

    fn event(&mut self, pid: Pid, sig: Sig, event: i32) {
        const FORK: i32 = Event::PTRACE_EVENT_FORK as i32;
        const VFORK: i32 = Event::PTRACE_EVENT_VFORK as i32;
        const CLONE: i32 = Event::PTRACE_EVENT_CLONE as i32;
        const EXEC: i32 = Event::PTRACE_EVENT_EXEC as i32;
        const SECCOMP: i32 = Event::PTRACE_EVENT_SECCOMP as i32;
        const STOP: i32 = Event::PTRACE_EVENT_STOP as i32;
        match event {
            FORK | VFORK | CLONE => {
                if let Ok(child) = ptrace::getevent(pid) {
                    let child = Pid::from_raw(child as i32);
                    if self.gone_early.remove(&child) {
                        self.handler.on_process(&ProcessEvent::Spawned {
                            pid: child,
                            parent: pid,
                        });
                        self.resume(pid, None);
                        return;
                    }
                    let (job, program) = {
                        let parent = self.task(pid);
                        (parent.job, parent.program)
                    };
                    let task = self.task(child);
                    task.job = job;
                    task.forked = true;
                    let newly = program && !task.program;
                    task.program |= program;
                    if newly {
                        self.program_tasks += 1;
                    }
                    if let Some(max) = self.opts.max_tasks {
                        if self.tasks.len() > max {
                            self.kill_all(format!(
                                "more than {max} processes and threads (--max-procs)"
                            ));
                        }
                    }
                    self.handler.on_process(&ProcessEvent::Spawned {
                        pid: child,
                        parent: pid,
                    });
                }
                self.resume(pid, None);
            }
            EXEC => {
                // A non-leader thread that execs takes over the leader's tid;
                // the old tid is gone without an exit report (ptrace(2),
                // "execve(2) under ptrace").
                let former = ptrace::getevent(pid)
                    .map(|f| Pid::from_raw(f as i32))
                    .unwrap_or(pid);
                if former != pid {
                    self.remove_task(former);
                }
                let task = self.task(pid);
                task.pending = None;
                task.in_syscall = false;
                let newly = !std::mem::replace(&mut task.program, true);
                let index = task.job;
                if newly {
                    self.program_tasks += 1;
                }
                let job = &mut self.jobs[index];
                if !job.started {
                    // The program is the task that execs first: with a pid
                    // namespace, the spawned child and the namespace's init
                    // are helpers that never exec.
                    job.leader = pid;
                }
                job.started = true;
                self.handler.on_process(&ProcessEvent::Exec { pid, former });
                self.resume(pid, None);
            }
            SECCOMP => {
                self.out.stops += 1;
                self.syscall_stop(pid);
                self.resume(pid, None);
            }
            STOP if sig.known().is_some_and(|s| STOP_SIGNALS.contains(&s)) => {
                // Group-stop: stay stopped, but tell us when it ends.
                self.task(pid);
                if let Err(errno) = listen(pid) {
                    tracing::trace!(%pid, %errno, "PTRACE_LISTEN failed");
                }
            }
            _ => {
                // The first stop of a new task, an interrupt, vfork-done.
                self.resume(pid, None);
            }
        }
    }

    fn syscall_stop(&mut self, pid: Pid) {
        let info = match syscall_info(pid) {
            Ok(info) => info,
            Err(errno) => {
                tracing::trace!(%pid, %errno, "PTRACE_GET_SYSCALL_INFO failed");
                return;
            }
        };
        match info {
            SyscallInfo::Entry { arch, nr, args } => {
                let off = self.opts.seccomp == Seccomp::Off;
                let task = self.task(pid);
                if task.in_syscall && off {
                    // An entry while we believed we were in a call: a call
                    // restarted after a signal. Treat it as new.
                    task.pending = None;
                }
                task.in_syscall = true;
                let job_index = task.job;
                let Some(arch) = arch else { return };
                let Some(sysno) = arch.sysno(nr) else { return };
                if self.opts.untraced.contains(&sysno) {
                    return;
                }
                let job = &mut self.jobs[job_index];
                if !job.started && sysno != Sysno::Execve {
                    return;
                }
                if sysno == Sysno::Chroot {
                    // From now on a task's root may lie below `base`.
                    job.chrooted = true;
                }
                let call = match call::decode(pid, sysno, &args) {
                    Ok(Some(call)) => call,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::debug!(%pid, %sysno, error = %e, "cannot read syscall arguments");
                        return;
                    }
                };
                let job = &self.jobs[job_index];
                let tracee = Tracee::new(pid, arch, &job.base, job.chrooted, job_index);
                let began = Instant::now();
                let interest = self.handler.on_entry(&tracee, &call);
                self.out.handling += began.elapsed();
                if interest == ExitInterest::Yes {
                    self.task(pid).pending = Some(call);
                }
            }
            SyscallInfo::Exit { result } => {
                let task = self.task(pid);
                task.in_syscall = false;
                if let Some(call) = task.pending.take() {
                    let index = task.job;
                    let job = &self.jobs[index];
                    let tracee = Tracee::new(pid, Arch::native(), &job.base, job.chrooted, index);
                    let began = Instant::now();
                    self.handler.on_exit(&tracee, &call, result);
                    self.out.handling += began.elapsed();
                }
            }
            SyscallInfo::Other => {}
        }
    }
}
