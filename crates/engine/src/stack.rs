//! The programs a program is run with (`--with NAME`, a jail file's
//! `with`): the jail's servers it needs, started before it in each of its
//! runs, one after the other once the one before is ready, traced with it
//! (what they read while serving it is placed or missed like its own, in
//! their name) and stopped with it. Each program, of these and the run's
//! own, is preceded by the commands its runs run before it (a unit's
//! `ExecStartPre=`, [`crate::config::BeforeCommand`]), each to its end:
//! what they need is their program's.
//!
//! [`Companions`] is the handler's side of a [`jailtrace_tracer::run_stack`]:
//! job `i` is the `i`-th companion, the program itself is the last job.

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::Duration;

use jailtrace_spec::ready::Condition;
use jailtrace_tracer::{Spawn, Status, Stdio};

use crate::config::Config;
use crate::outcome::Error;
use crate::output::{Capture, Sink, TRANSCRIPT_MAX};
use crate::ready::{self, Readiness};

/// Lines of a failed companion's output quoted in the summary.
const LAST_LINES: usize = 5;

/// One job started before the program of the run: a program it runs
/// with, or a command run before it.
struct Companion {
    /// For people: the program's name, or a command's line.
    name: String,
    /// The program whose calls these are: its own for a program run with
    /// this one (and the commands it runs before it), `None` for a command
    /// the run's program runs before it.
    program: Option<String>,
    /// A command run before a program (its unit's `ExecStartPre=`).
    before: bool,
    /// Its failure is no failure (a unit's `-` prefix).
    may_fail: bool,
    readiness: Readiness,
    capture: Capture,
    /// Its output (hidden while it runs), kept to be quoted when it fails.
    transcript: Vec<u8>,
    ready: bool,
    /// When its job was started, into the run.
    started: Option<Duration>,
    /// How its first process ended, if it did.
    exited: Option<Status>,
}

/// The companions of one run, in the order they start.
pub(crate) struct Companions {
    list: Vec<Companion>,
    /// Jobs started: the companions so far, then the program.
    started: usize,
    /// When the program (the last job) was started, into the run.
    program_started: Option<Duration>,
}

/// What the companions want of the run at a tick.
pub(crate) enum Step {
    /// Start the next job.
    StartNext,
    /// Wait: the companion last started is not ready yet.
    Wait,
    /// A companion ended before it was ready: stop the run.
    Failed(String),
    /// All companions are up and the program was started at this time.
    Program(Duration),
}

impl Companions {
    /// A run of the program alone: it starts at once.
    pub(crate) fn none() -> Companions {
        Companions {
            list: Vec::new(),
            started: 1,
            program_started: Some(Duration::ZERO),
        }
    }

    /// The spawns of `companions`, each after the commands its runs run
    /// before it, and of the commands `program` runs before it (a unit's
    /// `ExecStartPre=`, each started as its program is), their output in
    /// hidden pipes and their input empty, and the tracking of them. They
    /// run in `root`, the root of the run, whatever their own configs say.
    pub(crate) fn new(
        companions: &[&Config],
        program: &Config,
        root: &Path,
    ) -> Result<(Companions, Vec<Spawn>), Error> {
        /// What starts one companion.
        struct Job {
            spawn: Spawn,
            ready: Vec<Condition>,
            name: String,
            runs_as: Option<String>,
            before: bool,
            may_fail: bool,
        }
        // The commands `config`'s program runs before it, whose calls are
        // `runs_as`'s.
        let before = |config: &Config, runs_as: Option<&str>| -> Vec<Job> {
            config
                .before
                .iter()
                .map(|b| {
                    let mut spawn = config.spawn();
                    spawn.program = b.executable.clone();
                    spawn.argv = b.argv.clone();
                    // It ends before its program starts: a pid namespace of
                    // its own would die with it (see `Session::mounts_paused`).
                    spawn.pid_namespace = false;
                    Job {
                        spawn,
                        ready: vec![Condition::Exit],
                        name: b.shown(),
                        runs_as: runs_as.map(str::to_string),
                        before: true,
                        may_fail: b.may_fail,
                    }
                })
                .collect()
        };
        let mut jobs = Vec::new();
        for c in companions {
            jobs.extend(before(c, Some(&c.name)));
            jobs.push(Job {
                spawn: c.spawn(),
                ready: c.ready.clone(),
                name: c.name.clone(),
                runs_as: Some(c.name.clone()),
                before: false,
                may_fail: false,
            });
        }
        jobs.extend(before(program, None));
        let mut list = Vec::new();
        let mut spawns = Vec::new();
        for Job {
            mut spawn,
            ready,
            name,
            runs_as,
            before,
            may_fail,
        } in jobs
        {
            let pipes = Capture::pipes(Sink::Hidden, Sink::Hidden, None).map_err(Error::Output)?;
            spawn.root = Some(root.to_path_buf());
            let readiness = Readiness::new(ready).in_root(root);
            if let Some(socket) = readiness.notify_socket() {
                spawn.env.push(format!("NOTIFY_SOCKET={socket}").into());
            }
            spawn.stdin = Stdio::Null;
            spawn.stdout = Stdio::Fd(pipes.stdout);
            spawn.stderr = Stdio::Fd(pipes.stderr);
            spawns.push(spawn);
            list.push(Companion {
                name,
                program: runs_as,
                before,
                may_fail,
                readiness,
                capture: pipes.capture,
                transcript: Vec::new(),
                ready: false,
                started: None,
                exited: None,
            });
        }
        let program_started = list.is_empty().then_some(Duration::ZERO);
        if let Some(first) = list.first_mut() {
            first.started = Some(Duration::ZERO);
        }
        Ok((
            Companions {
                list,
                started: 1,
                program_started,
            },
            spawns,
        ))
    }

    /// Whether `job` is a companion (a program run with the program, or a
    /// command run before it), not the program itself.
    pub(crate) fn is_companion(&self, job: usize) -> bool {
        job < self.list.len()
    }

    /// Whether `job` is a command run before a program.
    pub(crate) fn is_before(&self, job: usize) -> bool {
        self.list.get(job).is_some_and(|c| c.before)
    }

    /// The program whose calls `job` makes, when not the run's program: a
    /// program run with it.
    pub(crate) fn runs_as(&self, job: usize) -> Option<&str> {
        self.list.get(job).and_then(|c| c.program.as_deref())
    }

    /// When the program was started, if it was.
    pub(crate) fn program_started(&self) -> Option<Duration> {
        self.program_started
    }

    /// The companions' output pipes that may still bring output.
    pub(crate) fn watched<'a>(&'a self, fds: &mut Vec<BorrowedFd<'a>>) {
        for c in &self.list {
            c.capture.watched(fds);
        }
    }

    /// Reads the companions' output (for their `log:` conditions).
    pub(crate) fn pump_output(&mut self) {
        for c in &mut self.list {
            let seen = c.capture.drain();
            if !seen.is_empty() {
                let room = TRANSCRIPT_MAX.saturating_sub(c.transcript.len());
                c.transcript
                    .extend_from_slice(&seen[..seen.len().min(room)]);
                c.readiness.feed_output(&seen);
            }
        }
    }

    /// A companion's first process ended, or one of its processes crashed.
    pub(crate) fn exited(&mut self, job: usize, status: Status, leader: bool) {
        let Some(c) = self.list.get_mut(job) else {
            return;
        };
        if leader {
            c.exited = Some(status);
            c.readiness.leader_exited(match status {
                Status::Exited(code) => Some(code),
                Status::Signaled { .. } => None,
            });
        }
        if ready::is_crash(status) {
            c.readiness.crashed();
        }
    }

    /// Every process of a companion ended: what it waited for never holds.
    pub(crate) fn ended(&mut self, job: usize) {
        if let Some(c) = self.list.get_mut(job) {
            if !c.ready {
                c.readiness.tree_empty();
            }
        }
    }

    /// Moves the stack on at `elapsed` into the run.
    pub(crate) fn step(&mut self, elapsed: Duration) -> Step {
        if let Some(at) = self.program_started {
            return Step::Program(at);
        }
        let c = &mut self.list[self.started - 1];
        let since = elapsed.saturating_sub(c.started.unwrap_or_default());
        if !c.ready && (c.readiness.poll(since) || (c.may_fail && c.exited.is_some())) {
            c.ready = true;
        }
        if !c.ready {
            // A condition that failed (its first process exited non-zero,
            // a crash) never holds; a server whose first process forked
            // away and exited 0 may still answer.
            return match c.exited {
                Some(status) if c.before && c.readiness.failed() => Step::Failed(format!(
                    "{}, run before {} (ExecStartPre=), ended with {}",
                    c.name,
                    c.program.as_deref().unwrap_or("the program"),
                    describe(status)
                )),
                Some(status) if c.readiness.failed() => Step::Failed(format!(
                    "{} ended ({}) before it was ready: {}",
                    c.name,
                    describe(status),
                    c.readiness.pending().join(", ")
                )),
                _ => Step::Wait,
            };
        }
        self.started += 1;
        match self.list.get_mut(self.started - 1) {
            Some(next) => next.started = Some(elapsed),
            None => self.program_started = Some(elapsed),
        }
        Step::StartNext
    }

    /// The companions not ready when the run ended, with what they waited
    /// for, and those that ended while the program still needed them.
    pub(crate) fn pending(&mut self) -> Vec<String> {
        let mut pending = Vec::new();
        for c in &mut self.list {
            if c.started.is_none() {
                continue;
            }
            if !c.ready {
                c.readiness.tree_empty();
                let mut line = match c.before {
                    false => format!(
                        "{} (started before this program): {}",
                        c.name,
                        c.readiness.pending().join(", ")
                    ),
                    true => format!(
                        "{} (run before {}, ExecStartPre=): {}",
                        c.name,
                        c.program.as_deref().unwrap_or("this program"),
                        c.readiness.pending().join(", ")
                    ),
                };
                let text = String::from_utf8_lossy(&c.transcript);
                let last: Vec<&str> = text.lines().rev().take(LAST_LINES).collect();
                if !last.is_empty() {
                    line.push_str("; its last output: ");
                    line.push_str(&last.into_iter().rev().collect::<Vec<_>>().join(" | "));
                }
                pending.push(line);
            }
        }
        pending
    }
}

fn describe(status: Status) -> String {
    match status {
        Status::Exited(code) => format!("exit code {code}"),
        Status::Signaled { signal, .. } => format!("killed by {signal}"),
    }
}
