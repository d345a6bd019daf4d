//! The discovery loop behind `jailtrace run`.
//!
//! One [`run`] turns a program and an empty (or earlier) root into a root the
//! program starts from, and a manifest of it:
//!
//! 1. **pre-seed**: the executable, its interpreter and its ELF closure
//!    (`jailtrace-elf`) are placed before anything runs;
//! 2. **discover**: the program runs chrooted into the root under the tracer;
//!    at the entry of every path syscall, what the root lacks and the host
//!    has is placed (`jailtrace-rootfs`) before the call runs, so the program
//!    never sees the miss; listed directories get placeholders, pruned after
//!    the run when unused;
//! 3. **verify**: the program runs again with copying off; a root that is
//!    complete shows no miss. Misses send the loop back to a **retry** run,
//!    up to `max_runs`.
//!
//! The program is ready when its readiness conditions hold (by default: its
//! first process exits 0; a server: a port answers, a log line appears…);
//! a ready server is then stopped (SIGTERM, then SIGKILL). Nothing is written
//! outside the root; the caller writes the manifest.
//!
//! [`doctor::doctor`] is the other way in: one run of the program in an
//! existing root with copying off and nothing written or mounted, and an
//! explanation of why the program does not start there.

mod accounts;
mod binds;
pub mod doctor;
mod drive;
mod etc;
pub mod exercise;
mod handler;
pub mod input;
mod listing;
mod mounts;
mod output;
pub mod policy;
pub mod ready;
mod rootdir;
mod session;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use jailtrace_manifest::{
    secret, Cause, Command, Manifest, PathText, Program, Run, RunRole, RunStatus, SCHEMA_VERSION,
};
use jailtrace_rootfs::{self as rootfs, Follow, Host, Root};
use jailtrace_tracer::{self as tracer, Seccomp, Spawn, Status, Stdio};
use nix::sys::signal::Signal;

pub use accounts::Accounts;
pub use etc::AccountDbs;
pub use exercise::{Exercise, ExerciseResult};
pub use input::Input;
pub use listing::ListingStats;
pub use mounts::MountError;
pub use policy::{Policy, RuleError};
pub use rootdir::{check_root, find_program, prepare_root, InputError};
pub use session::{Miss, Observer, Quiet, Who, LAST_ABSENT};

/// Everything one `jailtrace run` needs. [`doctor::doctor`] takes the same
/// and ignores what only copying uses (`max_runs`, `keep_setuid`,
/// `max_listing`, `ld_library_path`, `account_dbs`).
#[derive(Debug)]
pub struct Config {
    /// The program's name in the jail (unique; the manifest's
    /// `programs[].name`).
    pub name: String,
    /// The other programs of the jail (from the earlier manifest): each is
    /// verified in the root once this one is ready. Only their program
    /// fields count; the root, policy and limits are this config's.
    pub others: Vec<Config>,
    /// `argv` as given, `argv[0]` included.
    pub argv: Vec<OsString>,
    /// The executable's absolute host path (also its path in the jail).
    pub executable: PathBuf,
    /// The program's environment, `KEY=VALUE`.
    pub env: Vec<OsString>,
    /// Names of variables in `env` whose values the manifest must not
    /// record (they look like secrets): recorded by name only.
    pub env_redacted: Vec<OsString>,
    /// Working directory inside the jail.
    pub cwd: PathBuf,
    /// The root, as returned by [`prepare_root`].
    pub root: PathBuf,
    pub seccomp: bool,
    pub max_runs: u32,
    /// Per run: the tree is killed when it lasts longer.
    pub timeout: Option<Duration>,
    /// Grace between SIGTERM and SIGKILL when stopping leftover processes.
    pub stop_timeout: Duration,
    pub policy: Policy,
    pub keep_setuid: bool,
    /// Send the program's stdout to jailtrace's stderr.
    pub stdout_to_stderr: bool,
    /// What every run reads on its standard input.
    pub input: Input,
    /// Directories whose listed entries all stay in the jail, with their
    /// content (`--keep-listing`); entries of other listings stay only
    /// when the program used them.
    pub keep_listing: Vec<PathBuf>,
    /// Most placeholders one directory listing creates.
    pub max_listing: usize,
    /// `LD_LIBRARY_PATH` to use for the ELF closure.
    pub ld_library_path: Vec<PathBuf>,
    /// When the program counts as started; empty means `exit`.
    pub ready: Vec<ready::Condition>,
    /// Done to the program once it is ready, in order, in every run; each
    /// must succeed for the run to count as ready.
    pub exercises: Vec<Exercise>,
    /// How long one exercise may take.
    pub exercise_timeout: Duration,
    /// Also save the program's output here.
    pub log_file: Option<PathBuf>,
    /// Run the program as this user (after the chroot).
    pub credentials: Option<Credentials>,
    /// Kill the tree when it has more live processes and threads.
    pub max_procs: Option<usize>,
    /// How /etc/passwd and /etc/group are made.
    pub account_dbs: AccountDbs,
    /// Run the program in a pid namespace of its own.
    pub pid_namespace: bool,
    /// The root's manifest, when the root already holds the jail it
    /// describes: its entries, mounts and runs are kept and the new runs
    /// add to them (its binds are mounted for them). For
    /// [`doctor::doctor`]: what the jail should hold, to say which missing
    /// paths the manifest lists; its binds are mounted for the run.
    pub earlier: Option<Manifest>,

    // The directories the command line asks for (`--bind`, `--mkdir`).
    /// Host directories mounted into the root for every run instead of
    /// copied, checked ([`jailtrace_spec::Bind::check`]).
    pub binds: Vec<jailtrace_spec::Bind>,
    /// Directories made in the root before the first run.
    pub mkdirs: Vec<jailtrace_spec::NewDir>,
}

/// A user and group to run the program as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The program starts from the root with nothing missing.
    Ready,
    /// Nothing is missing, but the program does not start (exits non-zero,
    /// crashes, times out).
    NotReady { status: RunStatus },
    /// `max_runs` were used up and paths are still missing.
    StillMissing { misses: Vec<Miss> },
}

/// The result of [`run`]: the manifest and how the loop ended.
#[derive(Debug)]
pub struct Report {
    pub manifest: Manifest,
    pub outcome: Outcome,
    pub elapsed: Duration,
    /// Addresses the program could not bind because they were in use.
    pub port_conflicts: Vec<std::net::SocketAddr>,
    /// Readiness conditions the last run did not meet, and its exercises
    /// that failed.
    pub pending: Vec<String>,
    /// How the exercises of the last run went (none when it never
    /// became ready).
    pub exercises: Vec<ExerciseResult>,
    /// Programs that called ptrace(2), which fails while jailtrace traces
    /// them (a process has one tracer) but works in the finished jail.
    pub ptrace_callers: Vec<PathBuf>,
    /// Advice for a program that does not start.
    pub hints: Vec<String>,
    /// What the program's directory listings came to.
    pub listing: ListingStats,
    /// The program's output in the last run, when it was not shown (runs
    /// after the first are quiet unless the user types the input): the run
    /// and the output, for the user to see when the program did not start.
    pub hidden_output: Option<(u32, Vec<u8>)>,
    /// The last paths (at most [`LAST_ABSENT`], oldest first) the last run
    /// looked for that the host lacks too: what a program that fails was
    /// after last (sshd's `/run/sshd`).
    pub last_absent: Vec<jailtrace_manifest::Probe>,
}

/// Why a run could not be carried out at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Root(#[from] rootfs::Error),
    #[error(transparent)]
    Trace(#[from] tracer::Error),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("interrupted by {0}")]
    Interrupted(nix::sys::signal::Signal),
    #[error("cannot capture the program's output: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot give the program its input: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("cannot open the log file {path}: {source}")]
    LogFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn status_of(out: &tracer::RunOutcome) -> RunStatus {
    match (&out.stopped, out.status) {
        // jailtrace ended the program (timeout, interrupt): say so, not
        // "killed by SIGKILL".
        (
            Some(reason),
            None
            | Some(Status::Signaled {
                signal: Signal::SIGKILL,
                ..
            }),
        ) => RunStatus::Killed {
            reason: reason.clone(),
        },
        (_, Some(Status::Exited(code))) => RunStatus::Exited { code },
        (
            _,
            Some(Status::Signaled {
                signal,
                core_dumped,
            }),
        ) => RunStatus::Signaled {
            signal: signal.as_str().to_string(),
            core_dumped,
        },
        (None, None) => RunStatus::Killed {
            reason: "vanished".into(),
        },
    }
}

/// Runs the discovery loop of `config`, reporting progress to `observer`.
pub fn run(config: &Config, observer: &mut dyn Observer) -> Result<Report, Error> {
    let start = Instant::now();
    let root = Root::open(&config.root)?;
    let mut session = session::Session::new(
        root,
        Host::system(),
        config.policy.clone(),
        config.keep_setuid,
        config.max_listing,
    );

    session.account_dbs = config.account_dbs.clone();
    session.placeholders.keep = config.keep_listing.clone();
    session.pid_namespace = config.pid_namespace;
    let mut runs: Vec<Run> = Vec::new();
    if let Some(earlier) = &config.earlier {
        // Several programs share the root: who else needs an entry is
        // recorded.
        session.shared = true;
        session.seed(earlier);
        session.seed_hollow(&earlier.entries)?;
        runs = earlier.runs.clone();
    }
    session.program = Some(config.name.clone());
    session.place_requested(&config.mkdirs, &config.binds, observer)?;
    preseed(config, &mut session, observer)?;

    // Where the kernel refuses seccomp filters, every syscall stops instead.
    let mut drive = drive::Drive {
        session: &mut session,
        observer,
        runs,
        seccomp: config.seccomp,
        pending: Vec::new(),
        exercised: Vec::new(),
        hints: Vec::new(),
        hidden_output: None,
    };
    // The new program is discovered; then every other program of the jail
    // is verified in the same root, and retried when it misses something.
    let mut outcome = drive.program(config, RunRole::Discover)?;
    // The summary speaks of this program's exercises, not of the others'.
    let exercised = drive.exercised.clone();
    for other in &config.others {
        if outcome != Outcome::Ready {
            break;
        }
        outcome = drive.program(other, RunRole::Verify)?;
    }
    let drive::Drive {
        runs,
        pending,
        hints,
        hidden_output,
        ..
    } = drive;

    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        created_unix: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        programs: programs(config),
        jail_file: config.earlier.as_ref().and_then(|m| m.jail_file.clone()),
        root: config.root.as_path().into(),
        runs,
        // A path an earlier run found absent may be on the host now.
        absent: std::mem::take(&mut session.absent)
            .into_iter()
            .filter(|p| !session.has_entry(p.path.as_path()))
            .collect(),
        entries: std::mem::take(&mut session.entries),
        denied: std::mem::take(&mut session.denied),
        mounts: std::mem::take(&mut session.mounts),
        sockets: std::mem::take(&mut session.sockets),
    };
    let port_conflicts = std::mem::take(&mut session.port_conflicts);
    let last_absent = std::mem::take(&mut session.last_absent).into();
    Ok(Report {
        manifest,
        outcome,
        elapsed: start.elapsed(),
        port_conflicts,
        pending,
        exercises: exercised,
        ptrace_callers: session.ptrace_callers.iter().cloned().collect(),
        hints,
        listing: session.placeholders.stats,
        hidden_output,
        last_absent,
    })
}

/// The manifest's programs: the earlier manifest's, with `config`'s
/// program replacing the one of its name or added after them.
fn programs(config: &Config) -> Vec<Program> {
    let new = program_record(config);
    let mut programs: Vec<Program> = config
        .earlier
        .iter()
        .flat_map(|m| m.programs.iter().cloned())
        .collect();
    match programs.iter_mut().find(|p| p.name == new.name) {
        Some(slot) => *slot = new,
        None => programs.push(new),
    }
    programs
}

/// How `config`'s program is started, as the manifest records it: the
/// redacted variables by name only.
fn program_record(config: &Config) -> Program {
    Program {
        name: config.name.clone(),
        command: Command {
            argv: config
                .argv
                .iter()
                .map(|a| PathText::new(a.clone()))
                .collect(),
            executable: config.executable.as_path().into(),
            cwd: config.cwd.as_path().into(),
            env: config
                .env
                .iter()
                .filter(|item| {
                    let name = secret::split_item(item.as_bytes()).0;
                    !config.env_redacted.iter().any(|r| r.as_bytes() == name)
                })
                .map(|a| PathText::new(a.clone()))
                .collect(),
            env_redacted: Some(
                config
                    .env_redacted
                    .iter()
                    .map(|n| PathText::new(n.clone()))
                    .collect(),
            ),
            user: config.credentials.as_ref().map(|c| c.user.clone()),
            group: config.credentials.as_ref().map(|c| c.group.clone()),
            ready: config.ready.iter().map(ToString::to_string).collect(),
            exercises: config.exercises.iter().map(Exercise::record).collect(),
        },
    }
}

/// What one traced run of the program came to.
struct Traced {
    out: tracer::RunOutcome,
    /// The readiness conditions held (and no bind found its port taken).
    ready: bool,
    /// The readiness conditions that did not hold, the exercises that failed.
    pending: Vec<String>,
    /// How the exercises went.
    exercises: Vec<ExerciseResult>,
    /// The program's output, when it was asked for.
    transcript: Vec<u8>,
}

/// Runs the program once under the tracer with `session` handling its
/// calls: the body of every run of [`run`], and the one run of
/// [`doctor::doctor`]. Where the kernel refuses seccomp filters, `seccomp`
/// is turned off and the run started again, tracing every syscall.
/// `output`: what becomes of the program's output.
fn trace_run(
    config: &Config,
    session: &mut session::Session,
    observer: &mut dyn Observer,
    seccomp: &mut bool,
    output: Output,
) -> Result<Traced, Error> {
    let transcript = output != Output::Shown;
    loop {
        let pipes = capture(config, output, session.run)?;
        let readiness = ready::Readiness::new(config.ready.clone());
        let exercises = exercise::Exercises::new(
            config.exercises.clone(),
            config.exercise_timeout,
            session.run,
        );
        let mut handler = handler::RunHandler::new(
            session,
            observer,
            config.timeout,
            config.stop_timeout,
            readiness,
        );
        handler.exercises = exercises;
        if transcript {
            handler.transcript = Some(Vec::new());
        }
        let mut spec = spawn(config);
        spec.stdin = config.input.for_run().map_err(Error::Stdin)?;
        if let Some(p) = pipes {
            spec.stdout = Stdio::Fd(p.stdout);
            spec.stderr = Stdio::Fd(p.stderr);
            handler.capture = Some(p.capture);
        }
        let out = match tracer::run(&spec, &tracer_options(config, *seccomp), &mut handler) {
            Err(e) if *seccomp && e.is_seccomp_refused() => {
                handler
                    .observer
                    .warn(&format!("{e}; tracing every syscall instead (slower)"));
                *seccomp = false;
                continue;
            }
            other => other?,
        };
        // Before `finish`, which would run the exercises left: dropping
        // the handler kills the one in progress.
        if let Some(sig) = out.interrupted {
            return Err(Error::Interrupted(sig));
        }
        if let Some(e) = handler.fatal.take() {
            return Err(e.into());
        }
        handler.finish();
        let mut pending = handler.readiness.pending();
        pending.extend(handler.exercises.pending());
        // A server that answers while its own bind failed is another
        // server on that port, not this one.
        let ready = handler.ready
            && handler.exercises.passed()
            && handler.session.port_conflicts.is_empty();
        return Ok(Traced {
            out,
            ready,
            pending,
            exercises: handler.exercises.results().to_vec(),
            transcript: handler.transcript.take().unwrap_or_default(),
        });
    }
}

/// Places the executable, its interpreters and its ELF closure before the
/// first run, so that the first run does not start with a failed exec.
fn preseed(
    config: &Config,
    session: &mut session::Session,
    observer: &mut dyn Observer,
) -> Result<(), Error> {
    let who = Who::default();
    let mut wanted: Vec<(&Path, Cause)> = vec![
        (&config.executable, Cause::Executable),
        (&config.cwd, Cause::Runtime),
    ];
    // A program run as a service user resolves its own name, and so does
    // `chroot --userspec`: the user and group databases go in.
    if config.credentials.is_some() {
        for db in ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf"] {
            wanted.push((Path::new(db), Cause::Runtime));
        }
    }
    // Every jail gets the scratch directories programs take for granted
    // (mode 1777, as on the host).
    for scratch in ["/tmp", "/var/tmp"] {
        wanted.push((Path::new(scratch), Cause::Runtime));
    }
    for (path, cause) in wanted {
        session.place(path, Follow::Yes, false, cause, &who, observer)?;
    }
    {
        let readiness = ready::Readiness::new(Vec::new());
        let mut h =
            handler::RunHandler::new(session, observer, None, config.stop_timeout, readiness);
        h.interpreters(&config.executable, &who, 0)?;
    }
    let opts = jailtrace_elf::ClosureOptions {
        ld_library_path: config.ld_library_path.clone(),
        ..Default::default()
    };
    if let Ok(closure) = jailtrace_elf::closure(&config.executable, &opts) {
        for object in closure.objects {
            let who = Who {
                exe: object.needed_by.clone(),
                ..Who::default()
            };
            session.place(
                &object.path,
                Follow::Yes,
                false,
                Cause::Preseed,
                &who,
                observer,
            )?;
        }
    }
    Ok(())
}

fn spawn(config: &Config) -> Spawn {
    Spawn {
        program: config.executable.clone(),
        argv: config.argv.clone(),
        env: config.env.clone(),
        root: Some(config.root.clone()),
        cwd: config.cwd.clone(),
        stdout: if config.stdout_to_stderr {
            Stdio::Stderr
        } else {
            Stdio::Inherit
        },
        pid_namespace: config.pid_namespace,
        uid: config.credentials.as_ref().map(|c| c.uid),
        gid: config.credentials.as_ref().map(|c| c.gid),
        groups: config
            .credentials
            .as_ref()
            .map(|c| c.groups.clone())
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// What becomes of the program's output in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// On jailtrace's streams (and `--log`).
    Shown,
    /// On jailtrace's streams and kept (`jailtrace doctor` reads it).
    Kept,
    /// Only kept (and in `--log`): a run after the first.
    Hidden,
}

/// Pipes for the program's output when jailtrace must read it: a `log:`
/// readiness, `--log`, or an `output` that is kept. A log file gets a line
/// naming the run before its output.
fn capture(config: &Config, output: Output, run: u32) -> Result<Option<output::Pipes>, Error> {
    let wants_log = config
        .ready
        .iter()
        .any(|c| matches!(c, ready::Condition::Log(_)));
    if output == Output::Shown && !wants_log && config.log_file.is_none() {
        return Ok(None);
    }
    let log = match &config.log_file {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| Error::LogFile {
                    path: path.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    if let (Some(mut file), Some(path)) = (log.as_ref(), &config.log_file) {
        use std::io::Write as _;
        writeln!(file, "=== jailtrace: run {run} ===").map_err(|source| Error::LogFile {
            path: path.clone(),
            source,
        })?;
    }
    let (stdout, stderr) = match output {
        Output::Hidden => (output::Sink::Hidden, output::Sink::Hidden),
        _ if config.stdout_to_stderr => (output::Sink::Stderr, output::Sink::Stderr),
        _ => (output::Sink::Stdout, output::Sink::Stderr),
    };
    output::Capture::pipes(stdout, stderr, log)
        .map(Some)
        .map_err(Error::Output)
}

fn tracer_options(config: &Config, seccomp: bool) -> tracer::Options {
    tracer::Options {
        seccomp: if seccomp { Seccomp::On } else { Seccomp::Off },
        max_tasks: config.max_procs,
        ..Default::default()
    }
}
