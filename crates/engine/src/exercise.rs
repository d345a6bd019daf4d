//! Exercises: what jailtrace does to a ready program, so that the files
//! only a request needs (a PHP page, a module loaded on the first request)
//! are read while the program is still traced.
//!
//! An exercise ([`Exercise`], parsed and validated by
//! [`jailtrace_spec::exercise`]) is a shell command run on the host
//! (`--exercise CMD`: `sh -c CMD`, outside the jail, as the caller, in
//! jailtrace's working directory and environment, with the jail's root in
//! `JAILTRACE_ROOT`; it must exit 0) or an
//! HTTP `GET` (`--probe URL`: the readiness client, reading the whole
//! answer; it must answer 2xx or 3xx). [`Exercises`] runs the steps of one
//! run.
//!
//! Guarantees:
//! - steps run one at a time, in the order given, each bounded by the
//!   timeout; the first that fails ends the sequence (the run is then not
//!   ready) and the later ones do not run;
//! - [`Exercises::poll`] never blocks: a command is a process whose pipes
//!   are read without blocking, a probe runs in a thread of its own (a
//!   thread made during a run inherits the tracer thread's blocked
//!   signals, as readiness probes do). A traced server that waits in a
//!   syscall stop for the tracer is served while its exercise waits for it;
//! - a command's processes are never children of jailtrace: the `sh` that
//!   jailtrace starts starts a subshell in the background and exits at
//!   once; the subshell runs `sh -c CMD`, waits for it and writes its exit
//!   status to a pipe. So the tracer's `waitpid(-1, __WALL)` only ever
//!   reaps that first `sh` (an unknown pid, reported as an exit the run's
//!   handler ignores), never the command, whose status it would consume,
//!   and a traced tree that ends is not kept waiting for the exercise;
//! - the command and everything it starts form one process group of their
//!   own: a timeout, an aborted run and dropping the [`Exercises`] kill
//!   that group with SIGKILL while its status pipe is open (so the group
//!   still exists and its id cannot name another); a command that leaves a
//!   process in the background after it exited leaves it running. The
//!   command starts with no signal blocked (std resets the mask the tracer
//!   set) but, as any background job of a non-interactive `sh`, with
//!   SIGINT and SIGQUIT ignored: a Ctrl-C reaches jailtrace, which ends it;
//! - of a command's output (stdout and stderr, interleaved as written), the
//!   last [`OUTPUT_MAX`] bytes are kept.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, ChildStdout, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use jailtrace_spec::ready::format_duration;
// The steps are the spec's; `jailtrace_engine::Exercise` names them too.
pub use jailtrace_spec::exercise::Exercise;

use crate::ready::{http_get, Get};

/// How long one exercise may take when no timeout is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Most bytes of a command's output kept (its end).
pub const OUTPUT_MAX: usize = 16 * 1024;

/// How often to look at a step that still runs when nothing else needs
/// the time (after the run; in tests).
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The `sh -c` script that runs an exercise: `$1` runs in a background
/// subshell (so that neither it nor its `sh -c` is a child of jailtrace)
/// with its stdout on stderr; the subshell's stdout carries the exit
/// status.
const WRAPPER: &str = r#"( sh -c "$1" >&2; echo "$?" ) </dev/null &"#;

/// How one step of one run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExerciseResult {
    /// The run (as [`jailtrace_manifest::Run::index`]).
    pub run: u32,
    /// The step's position, 1-based.
    pub index: usize,
    pub exercise: Exercise,
    pub passed: bool,
    /// What happened, for people: `exited with code 0`, `answered
    /// HTTP/1.1 200 OK`, `timed out after 60s`, `exited with code 1`.
    pub status: String,
    pub elapsed: Duration,
    /// The end of a command's output (at most [`OUTPUT_MAX`] bytes).
    pub output: Vec<u8>,
    /// Bytes of output written before [`ExerciseResult::output`] and not kept.
    pub output_dropped: u64,
}

/// The exercises of one run.
#[derive(Debug)]
pub struct Exercises {
    steps: Vec<Exercise>,
    timeout: Duration,
    run: u32,
    /// The next step to start.
    next: usize,
    running: Option<Running>,
    current: Option<jailtrace_manifest::Exercise>,
    results: Vec<ExerciseResult>,
    /// A step failed or the run was aborted: nothing more starts.
    stopped: bool,
    /// The jail's root, given to commands as `JAILTRACE_ROOT`.
    root: Option<PathBuf>,
    /// The ports that took a listening exercise's request, in this
    /// session's runs.
    quiet: QuietPorts,
    /// The traced program's, for a listening exercise.
    activity: Arc<Activity>,
}

/// The TCP addresses the program listens on, shared with the thread of
/// an [`Exercise::Listening`] step.
type Ports = Arc<Mutex<Vec<SocketAddr>>>;

/// A step in progress.
#[derive(Debug)]
struct Running {
    index: usize,
    began: Instant,
    work: Work,
}

#[derive(Debug)]
enum Work {
    Command(CommandRun),
    /// The probe's thread; taken when it is joined.
    Probe(Option<JoinHandle<Result<String, String>>>),
    /// The thread asking the listening ports, and the ports as the
    /// tracer sees them now (kept up to date by each poll); the thread is
    /// taken when it is joined.
    Listening(Option<JoinHandle<String>>, Ports),
}

/// A command's process group and the read ends of its pipes.
#[derive(Debug)]
struct CommandRun {
    group: Pid,
    status: ChildStdout,
    status_text: Vec<u8>,
    output: ChildStderr,
    /// Its writers did not all close it yet.
    output_open: bool,
    tail: Tail,
}

/// The last [`OUTPUT_MAX`] bytes of a stream, and how many came before.
#[derive(Debug, Default)]
struct Tail {
    kept: Vec<u8>,
    dropped: u64,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.kept.extend_from_slice(bytes);
        if self.kept.len() > OUTPUT_MAX {
            let cut = self.kept.len() - OUTPUT_MAX;
            self.kept.drain(..cut);
            self.dropped += cut as u64;
        }
    }
}

/// What reading a non-blocking pipe came to.
#[derive(PartialEq, Eq)]
enum PipeState {
    /// The writers closed it.
    Closed,
    /// Nothing more for now.
    Open,
}

/// Reads what `pipe` holds now into `sink`.
fn read_now(mut pipe: impl Read, mut sink: impl FnMut(&[u8])) -> PipeState {
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return PipeState::Closed,
            Ok(n) => sink(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return PipeState::Open,
            Err(_) => return PipeState::Closed,
        }
    }
}

fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

impl CommandRun {
    /// Starts `command` (see [`WRAPPER`]) in a process group of its own.
    fn start(command: &str, root: Option<&Path>) -> io::Result<CommandRun> {
        use std::os::unix::process::CommandExt;
        // std resets the signal mask and SIGPIPE in the child, so the
        // command does not inherit the signals the tracer blocks.
        let mut sh = std::process::Command::new("/bin/sh");
        if let Some(root) = root {
            sh.env("JAILTRACE_ROOT", root);
        }
        let mut child = sh
            .arg("-c")
            .arg(WRAPPER)
            .arg("jailtrace-exercise")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        // The wrapper is reaped by the tracer's loop (or by the next run's,
        // when this one is over): the `Child` is dropped without a wait.
        let group = Pid::from_raw(child.id() as i32);
        let (Some(status), Some(output)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(io::Error::other("the exercise's pipes are missing"));
        };
        set_nonblocking(&status)?;
        set_nonblocking(&output)?;
        Ok(CommandRun {
            group,
            status,
            status_text: Vec::new(),
            output,
            output_open: true,
            tail: Tail::default(),
        })
    }

    /// The pipes that may still bring something: its output, and its
    /// status (which ends it).
    fn watched<'a>(&'a self, fds: &mut Vec<BorrowedFd<'a>>) {
        fds.push(self.status.as_fd());
        if self.output_open {
            fds.push(self.output.as_fd());
        }
    }

    /// The command's exit code once it is known; `Some(None)` when the
    /// subshell died without writing it (killed).
    fn poll(&mut self) -> Option<Option<i32>> {
        let status_text = &mut self.status_text;
        let closed = matches!(
            read_now(&mut self.status, |b| status_text.extend_from_slice(b)),
            PipeState::Closed
        );
        // After the status, so that output written before the exit is in.
        let tail = &mut self.tail;
        if read_now(&mut self.output, |b| tail.push(b)) == PipeState::Closed {
            self.output_open = false;
        }
        if !closed {
            return None;
        }
        let text = String::from_utf8_lossy(&self.status_text);
        Some(text.trim().parse().ok())
    }

    /// Kills the command's process group, unless the command has ended:
    /// the group's id surely names the command's group only while the
    /// subshell, which holds the status pipe open, lives.
    fn kill(&mut self) {
        if self.poll().is_none() {
            // ESRCH: nothing of the group is left.
            let _ = killpg(self.group, Signal::SIGKILL);
        }
    }
}

impl Exercises {
    /// The `steps` of run `run`, each bounded by `timeout`.
    pub fn new(steps: Vec<Exercise>, timeout: Duration, run: u32) -> Exercises {
        Exercises {
            steps,
            timeout,
            run,
            next: 0,
            running: None,
            current: None,
            results: Vec::new(),
            stopped: false,
            root: None,
            quiet: QuietPorts::default(),
            activity: Arc::default(),
        }
    }

    /// A listening exercise waits for a server's first word only while
    /// `activity` (the traced program's, kept by the handler) shows it
    /// busy, at most [`listening::SPEAKS_FIRST`].
    pub(crate) fn with_activity(mut self, activity: &Arc<Activity>) -> Exercises {
        self.activity = Arc::clone(activity);
        self
    }

    /// A listening exercise sends its request at once to the ports in
    /// `quiet` (they took it in an earlier run), and adds those that take
    /// it now.
    pub(crate) fn with_quiet_ports(mut self, quiet: &QuietPorts) -> Exercises {
        self.quiet = Arc::clone(quiet);
        self
    }

    /// Commands get the jail's root in `JAILTRACE_ROOT` (to reach a unix
    /// socket the program serves in the jail, say).
    pub fn in_root(mut self, root: &Path) -> Exercises {
        self.root = Some(root.to_path_buf());
        self
    }

    /// Every step has run, or one failed, or the run was aborted.
    pub fn done(&self) -> bool {
        self.running.is_none() && (self.stopped || self.next >= self.steps.len())
    }

    /// Every step ran and passed.
    pub fn passed(&self) -> bool {
        self.results.len() == self.steps.len() && self.results.iter().all(|r| r.passed)
    }

    /// The step running now, as the manifest records it.
    pub fn current(&self) -> Option<&jailtrace_manifest::Exercise> {
        self.current.as_ref()
    }

    /// How many steps were started (or failed to start).
    pub fn started(&self) -> usize {
        self.next
    }

    /// The pipes of the command running now, for the tracer to wait on:
    /// what it writes is read as it comes (it would block on a full pipe
    /// until the next poll), and its end is seen at once.
    pub(crate) fn watched<'a>(&'a self, fds: &mut Vec<BorrowedFd<'a>>) {
        if let Some(Running {
            work: Work::Command(command),
            ..
        }) = &self.running
        {
            command.watched(fds);
        }
    }

    /// Waits up to `most` for the running command's pipes to be readable
    /// (without a command, a probe's thread or the listening exercise's,
    /// it just waits): after a run, when nothing else wakes jailtrace.
    pub(crate) fn wait(&self, most: Duration) {
        let mut fds = Vec::new();
        self.watched(&mut fds);
        if fds.is_empty() {
            std::thread::sleep(most);
            return;
        }
        let _ = jailtrace_tracer::poll_readable(&fds, most);
    }

    /// The step running now and its position (1-based).
    pub fn running(&self) -> Option<(usize, &Exercise)> {
        self.running
            .as_ref()
            .map(|r| (r.index + 1, &self.steps[r.index]))
    }

    /// How the steps that ended went, in order.
    pub fn results(&self) -> &[ExerciseResult] {
        &self.results
    }

    /// Collects a step that ended and starts the next one; never blocks.
    /// An [`Exercise::Listening`] step asks no port (see
    /// [`Exercises::poll_listening`]).
    pub fn poll(&mut self) {
        self.poll_listening(Vec::new);
    }

    /// As [`Exercises::poll`]; a [`Exercise::Listening`] step asks the
    /// TCP addresses `listening` gives (called only while one starts or
    /// runs: the program may listen on its ports after the step began).
    pub fn poll_listening(&mut self, listening: impl FnOnce() -> Vec<SocketAddr>) {
        let mut listening = Some(listening);
        if let Some(Running {
            work: Work::Listening(_, ports),
            ..
        }) = &self.running
        {
            if let Some(now) = listening.take() {
                *ports.lock().unwrap_or_else(|e| e.into_inner()) = now();
            }
        }
        if let Some(running) = &mut self.running {
            let elapsed = running.began.elapsed();
            let ended = match &mut running.work {
                Work::Command(cmd) => match cmd.poll() {
                    Some(Some(0)) => Some(Ok("exited with code 0".to_string())),
                    Some(Some(code)) => Some(Err(format!("exited with code {code}"))),
                    Some(None) => Some(Err("ended without an exit status".to_string())),
                    None => None,
                },
                Work::Probe(probe) => probe.take_if(|h| h.is_finished()).map(joined),
                Work::Listening(ask, _) => ask
                    .take_if(|h| h.is_finished())
                    .map(|h| Ok(h.join().unwrap_or_else(|_| "the requests failed".into()))),
            };
            match ended {
                Some(result) => self.end(result, elapsed),
                None if elapsed > self.timeout => {
                    if let Work::Command(cmd) = &mut running.work {
                        cmd.kill();
                    }
                    let why = format!("timed out after {}", format_duration(self.timeout));
                    self.end(Err(why), elapsed);
                }
                None => return,
            }
        }
        if let Some(listening) = listening {
            self.start_next(listening);
        } else {
            self.start_next(Vec::new);
        }
    }

    /// Starts the next step, unless one runs or the sequence is over.
    fn start_next(&mut self, listening: impl FnOnce() -> Vec<SocketAddr>) {
        if self.running.is_some() || self.stopped || self.next >= self.steps.len() {
            return;
        }
        let index = self.next;
        self.next += 1;
        let began = Instant::now();
        let step = &self.steps[index];
        let work = match step {
            Exercise::Command(command) => {
                CommandRun::start(command, self.root.as_deref()).map(Work::Command)
            }
            Exercise::Probe(url) => {
                let url = url.clone();
                let get = Get {
                    connect: self.timeout,
                    io: self.timeout,
                    whole: true,
                };
                std::thread::Builder::new()
                    .name("jailtrace-exercise".into())
                    .spawn(move || http_get(&url, get))
                    .map(|handle| Work::Probe(Some(handle)))
            }
            Exercise::Listening(path) => {
                let path = path.clone();
                let ports: Ports = Arc::new(Mutex::new(listening()));
                let seen = Arc::clone(&ports);
                // Done before the timeout, which would fail the run.
                let deadline = began + self.timeout.mul_f32(0.9);
                // After the first run, no port known means none to wait for.
                let wait_for_first = self.run <= 1;
                let quiet = Arc::clone(&self.quiet);
                let activity = Arc::clone(&self.activity);
                std::thread::Builder::new()
                    .name("jailtrace-exercise".into())
                    .spawn(move || {
                        let now = || seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        listening::ask_each(now, &path, deadline, wait_for_first, &quiet, &activity)
                    })
                    .map(|handle| Work::Listening(Some(handle), ports))
            }
        };
        match work {
            Ok(work) => {
                self.current = Some(step.record());
                self.running = Some(Running { index, began, work });
            }
            Err(e) => {
                let result = ExerciseResult {
                    run: self.run,
                    index: index + 1,
                    exercise: step.clone(),
                    passed: false,
                    status: format!("cannot be started: {e}"),
                    elapsed: Duration::ZERO,
                    output: Vec::new(),
                    output_dropped: 0,
                };
                self.results.push(result);
                self.stopped = true;
            }
        }
    }

    /// Ends the running step with `result`.
    fn end(&mut self, result: Result<String, String>, elapsed: Duration) {
        let Some(running) = self.running.take() else {
            return;
        };
        self.current = None;
        let (output, output_dropped) = match running.work {
            Work::Command(cmd) => (cmd.tail.kept, cmd.tail.dropped),
            // A probe that timed out is left to end by its own timeouts
            // (or when the program is stopped): a thread cannot be killed.
            Work::Probe(_) | Work::Listening(..) => (Vec::new(), 0),
        };
        let passed = result.is_ok();
        if !passed {
            self.stopped = true;
        }
        self.results.push(ExerciseResult {
            run: self.run,
            index: running.index + 1,
            exercise: self.steps[running.index].clone(),
            passed,
            status: result.unwrap_or_else(|why| why),
            elapsed,
            output,
            output_dropped,
        });
    }

    /// Ends the sequence now: a running step is killed and fails with
    /// `why`; the later ones do not run.
    pub fn abort(&mut self, why: &str) {
        if let Some(running) = &mut self.running {
            if let Work::Command(cmd) = &mut running.work {
                cmd.kill();
            }
            let elapsed = running.began.elapsed();
            self.end(Err(why.to_string()), elapsed);
        }
        self.stopped = true;
    }

    /// The steps that failed or still run, for a run that is not ready.
    pub fn pending(&self) -> Vec<String> {
        let failed = self
            .results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| format!("exercise {} {} ({})", r.index, r.exercise, r.status));
        let running = self.running.as_ref().map(|r| {
            format!(
                "exercise {} {} (running for {})",
                r.index + 1,
                self.steps[r.index],
                format_duration(Duration::from_secs(r.began.elapsed().as_secs()))
            )
        });
        failed.chain(running).collect()
    }
}

impl Drop for Exercises {
    fn drop(&mut self) {
        if let Some(Running {
            work: Work::Command(cmd),
            ..
        }) = &mut self.running
        {
            cmd.kill();
        }
    }
}

/// A probe's answer, from its finished thread.
fn joined(handle: JoinHandle<Result<String, String>>) -> Result<String, String> {
    match handle.join() {
        Ok(Ok(line)) => Ok(format!("answered {line}")),
        Ok(Err(why)) => Err(why),
        Err(_) => Err("the probe failed".to_string()),
    }
}

mod listening;

pub(crate) use listening::{Activity, QuietPorts, Stillness};

#[cfg(test)]
mod tests;
