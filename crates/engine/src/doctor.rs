//! `jailtrace doctor`: why a program does not start in an existing jail.
//!
//! [`doctor`] runs the program once, chrooted into the root under the
//! tracer, in a *read-only* session: copying is off, nothing is placed,
//! listed, filled, pruned, synthesized or mounted by jailtrace, so the root
//! is left as it was (what the program itself writes there is its own
//! doing). The one exception: the binds the manifest records (`run
//! --bind`) are mounted for the run where their mount point is in the
//! root (and nothing is mounted there yet), as `run` does, and taken down
//! after it; one whose mount point the root lacks is a diagnosis. The session records what the program looked for and the root
//! lacks ([`Failure`]: who wanted it, whether the host has it, and the steps
//! `jailtrace run` would apply, planned and never applied), the paths the
//! host lacks too (ordinary probes), and every path call refused for want of
//! permission and every failed `execve`. From those and the program's
//! output, [`diagnose`] names the known causes in plain words
//! ([`Diagnosis`]): a missing ELF or `#!` interpreter, an account the
//! jail's `/etc/passwd` or `/etc/group` lacks, a file the program's user may
//! not use, a missing device node or `/proc`, a port in use.
//!
//! The program *starts* when its readiness conditions hold, as for `run`
//! (by default: its first process exits 0).

mod diagnose;
mod inroot;
mod message;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jailtrace_manifest::{Cause, Manifest, Probe, RunStatus};
use jailtrace_rootfs::{self as rootfs, Host, Kind, Outcome, Root, Step};
use jailtrace_tracer::{self as tracer, SpawnError};

use crate::accounts::{is_account_db, AccountDbs};
use crate::config::Config;
use crate::outcome::Error;
use crate::policy::Verdict;
use crate::session::{Observer, Session, Who};

pub use diagnose::{Account, Diagnosis, Owner};

/// What one doctor run found.
#[derive(Debug)]
pub struct Examination {
    /// The root's canonical path.
    pub root: PathBuf,
    /// How the program's first process ended (`exited 127` when it could
    /// not even be started).
    pub status: RunStatus,
    /// Its readiness conditions held (and no bind found its port taken).
    pub started: bool,
    /// The readiness conditions that did not hold.
    pub pending: Vec<String>,
    /// Paths the program looked for that the root lacks and the host has.
    pub failures: Vec<Failure>,
    /// Paths the program looked for that the host lacks too.
    pub absent: Vec<Probe>,
    /// Paths the root lacks that the policy would not copy.
    pub denied: Vec<Probe>,
    /// Known causes, each with its fix.
    pub diagnoses: Vec<Diagnosis>,
    /// Programs that called ptrace(2), which fails under tracing.
    pub ptrace_callers: Vec<PathBuf>,
    pub elapsed: Duration,
}

/// A path the program looked for that the root lacks and the host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The path as the program named it (absolute, inside the jail).
    pub path: PathBuf,
    /// Where it leads after the host's symlinks (for `creates`: the
    /// directory that should hold it).
    pub resolved: PathBuf,
    /// The program creates the path itself: only its directory is missing.
    pub creates: bool,
    /// The process, executable and syscall that looked for it.
    pub who: Who,
    /// What the host has at `resolved`.
    pub host: Option<HostFile>,
    /// The steps `jailtrace run` would apply (planned, not applied). For
    /// a `synthesized` file, only the directories it needs.
    pub would_copy: Vec<Step>,
    /// The path is `/etc/passwd` or `/etc/group`, which `jailtrace run`
    /// does not copy but writes itself, with only the accounts the jail
    /// needs (see [`crate::accounts`]); false when the manifest records the
    /// host's copy (`run --passwd copy`).
    pub synthesized: bool,
}

/// A host file's kind and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFile {
    pub kind: Kind,
    pub size: u64,
}

/// Runs the program of `config` once in its existing root, changing
/// nothing, and explains what kept it from starting.
///
/// Errors are jailtrace's own (the root cannot be opened, the tracer
/// fails, jailtrace is interrupted); a program that cannot be started in
/// the root (its executable, interpreter or working directory missing) is
/// an [`Examination`] with status `exited 127`.
pub fn doctor(config: &Config, observer: &mut dyn Observer) -> Result<Examination, Error> {
    let start = Instant::now();
    let root = Root::open(&config.root)?;
    let mut session = Session::new(
        root,
        Host::system(),
        config.policy.clone(),
        config.keep_setuid,
        config.max_listing,
    );
    session.read_only = true;
    session.account_dbs = AccountDbs::Copy;
    session.pid_namespace = config.pid_namespace;
    session.begin_run(1, false);
    if let Some(manifest) = &config.earlier {
        let binds: Vec<_> = manifest
            .mounts
            .iter()
            .filter(|m| m.is_bind())
            .cloned()
            .collect();
        for bind in &binds {
            session.policy_mut().bind(bind.path.as_path());
        }
        session.mounts = binds;
    }
    let unbound: Vec<_> = session
        .mount_binds()?
        .iter()
        .filter_map(|p| {
            session
                .mounts
                .iter()
                .find(|m| m.path.as_path() == p)
                .cloned()
        })
        .collect();
    let mut seccomp = config.seccomp;
    let mut start_error = None;
    let (status, started, pending, transcript) = match crate::runner::trace_run(
        config,
        &[],
        &mut session,
        observer,
        &mut seccomp,
        crate::runner::Output::Kept,
    ) {
        Ok(t) => (
            crate::runner::status_of(&t.out),
            t.ready,
            t.pending,
            t.transcript,
        ),
        // The child could not chroot, change directory, switch user or
        // exec in this root: that is the program not starting, as a
        // plain chroot(8) would report with status 127.
        Err(Error::Trace(tracer::Error::Spawn(e @ SpawnError::Child { .. }))) => {
            start_error = Some(e);
            (
                RunStatus::Exited { code: 127 },
                false,
                Vec::new(),
                Vec::new(),
            )
        }
        Err(e) => return Err(e),
    };
    let failures = failures(&session, config.earlier.as_ref());
    let facts = diagnose::Facts {
        config,
        session: &session,
        failures: &failures,
        started,
        transcript: &transcript,
        start_error: start_error.as_ref(),
        unbound: &unbound,
    };
    let diagnoses = diagnose::diagnose(&facts);
    Ok(Examination {
        root: session.root.path().to_path_buf(),
        status,
        started,
        pending,
        failures,
        absent: std::mem::take(&mut session.absent),
        denied: std::mem::take(&mut session.denied),
        diagnoses,
        ptrace_callers: session.ptrace_callers.iter().cloned().collect(),
        elapsed: start.elapsed(),
    })
}

/// Whether `jailtrace run` would write the account database at `path`
/// itself: it is one, and the manifest (if any) does not record the
/// host's copy of it.
fn synthesized(path: &std::path::Path, manifest: Option<&Manifest>) -> bool {
    let copied = manifest
        .and_then(|m| m.entry(path))
        .is_some_and(|e| e.reason.cause != Cause::Synthesized);
    is_account_db(path) && !copied
}

/// The session's misses, each planned against the host (never applied).
fn failures(session: &Session, manifest: Option<&Manifest>) -> Vec<Failure> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for miss in &session.misses {
        let planned = if miss.creates {
            rootfs::plan_parent(&session.root, &session.host, &miss.path)
        } else {
            rootfs::plan(&session.root, &session.host, &miss.path, miss.follow)
        };
        let (resolved, would_copy) = match planned {
            Ok(plan) => {
                // As `place` does: a chain into /proc or /sys stops there.
                let boundary = plan
                    .steps
                    .iter()
                    .position(|s| matches!(session.policy().verdict(s.path()), Verdict::Virtual(_)))
                    .unwrap_or(plan.steps.len());
                let resolved = match plan.outcome {
                    Outcome::Placed | Outcome::Present => plan.resolved.clone(),
                    _ => miss.path.clone(),
                };
                let mut steps = plan.steps;
                steps.truncate(boundary);
                (resolved, steps)
            }
            Err(e) => {
                tracing::debug!(path = %miss.path.display(), error = %e, "cannot plan a miss");
                (miss.path.clone(), Vec::new())
            }
        };
        // Two names of one file (`/lib64/ld-linux-x86-64.so.2` and where it
        // leads) are one failure.
        if !seen.insert(resolved.clone()) {
            continue;
        }
        let synthesized = !miss.creates && synthesized(&resolved, manifest);
        let mut would_copy = would_copy;
        if synthesized {
            would_copy.retain(|step| step.path() != resolved);
        }
        let host = session
            .host
            .lstat(&resolved)
            .ok()
            .flatten()
            .map(|m| HostFile {
                kind: m.kind,
                size: m.size,
            });
        out.push(Failure {
            path: miss.path.clone(),
            resolved,
            creates: miss.creates,
            who: Who {
                pid: miss.pid,
                exe: miss.exe.clone(),
                syscall: miss.syscall,
                exercise: miss.exercise.clone(),
            },
            host,
            would_copy,
            synthesized,
        });
    }
    out
}
