//! One traced run of a program in the jail: spawned chrooted into the root
//! under the tracer, with the session handling its calls, its output and
//! input wired as asked; the body of every run of [`crate::run`] and of the
//! one run of [`crate::doctor::doctor`].

use jailtrace_manifest::RunStatus;
use jailtrace_tracer::{self as tracer, Seccomp, Sig, Status, Stdio, Sysno};

use crate::config::Config;
use crate::exercise::{self, ExerciseResult};
use crate::outcome::Error;
use crate::session::{self, Observer};
use crate::stack::Companions;
use crate::{handler, output, ready};

pub(crate) fn status_of(out: &tracer::RunOutcome) -> RunStatus {
    match (&out.stopped, out.status) {
        // jailtrace ended the program (timeout, interrupt): say so, not
        // "killed by SIGKILL".
        (
            Some(reason),
            None
            | Some(Status::Signaled {
                signal: Sig(libc::SIGKILL),
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
            signal: signal.to_string(),
            core_dumped,
        },
        (None, None) => RunStatus::Killed {
            reason: "vanished".into(),
        },
    }
}

/// What one traced run of the program came to.
pub(crate) struct Traced {
    pub(crate) out: tracer::RunOutcome,
    /// The readiness conditions held (and no bind found its port taken).
    pub(crate) ready: bool,
    /// The readiness conditions that did not hold, the exercises that failed.
    pub(crate) pending: Vec<String>,
    /// How the exercises went.
    pub(crate) exercises: Vec<ExerciseResult>,
    /// The program's output, when it was asked for.
    pub(crate) transcript: Vec<u8>,
}

/// Runs the program once under the tracer with `session` handling its
/// calls: the body of every run of [`run`], and the one run of
/// [`doctor::doctor`]. Where the kernel refuses seccomp filters, `seccomp`
/// is turned off and the run started again, tracing every syscall.
/// `output`: what becomes of the program's output. `companions` are
/// started before it, in order, each once the one before is ready
/// (see [`crate::stack`]).
pub(crate) fn trace_run(
    config: &Config,
    companions: &[&Config],
    session: &mut session::Session,
    observer: &mut dyn Observer,
    seccomp: &mut bool,
    output: Output,
) -> Result<Traced, Error> {
    let transcript = output != Output::Shown;
    loop {
        let pipes = capture(config, output, session.run)?;
        let readiness = ready::Readiness::new(config.ready.clone()).in_root(&config.root);
        let exercises = exercise::Exercises::new(
            config.exercises.clone(),
            config.exercise_timeout,
            session.run,
        )
        .in_root(&config.root)
        .with_quiet_ports(&session.quiet_ports);
        let mut handler = handler::RunHandler::new(
            session,
            observer,
            config.timeout,
            config.stop_timeout,
            readiness,
        );
        handler.exercises = exercises.with_activity(&handler.activity);
        if transcript {
            handler.transcript = Some(Vec::new());
        }
        let (stack, mut specs) = Companions::new(companions, config, &config.root)?;
        handler.companions = stack;
        let mut spec = config.spawn();
        if let Some(socket) = handler.readiness.notify_socket() {
            spec.env.push(format!("NOTIFY_SOCKET={socket}").into());
        }
        spec.stdin = config.input.for_run().map_err(Error::Stdin)?;
        if let Some(p) = pipes {
            spec.stdout = Stdio::Fd(p.stdout);
            spec.stderr = Stdio::Fd(p.stderr);
            handler.capture = Some(p.capture);
        }
        specs.push(spec);
        let mut opts = tracer_options(config, *seccomp);
        if !handler.session.copying {
            // Only a copying run shows listings: a listing has nothing to
            // check (a descriptor is never missing), so it need not stop.
            opts.untraced = vec![Sysno::Getdents, Sysno::Getdents64];
        }
        let out = match tracer::run_stack(&specs, &opts, &mut handler) {
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
        let mut pending = handler.companions.pending();
        let started = handler.companions.program_started().is_some();
        if started {
            pending.extend(handler.readiness.pending());
            pending.extend(handler.exercises.pending());
        }
        // A server that answers while its own bind failed is another
        // server on that port, not this one.
        let ready = started
            && handler.ready
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
