//! What [`crate::run`] comes to: how the loop ended ([`Outcome`]), the
//! manifest and the rest a person should hear ([`Report`]), and why a run
//! could not be carried out at all ([`Error`]).

use std::path::PathBuf;
use std::time::Duration;

use jailtrace_manifest::{FoundAccount, Manifest, Probe, RunRole, RunStatus};

use crate::exercise::ExerciseResult;
use crate::mounts::MountError;
use crate::placeholders::ListingStats;
use crate::rootdir::InputError;
use crate::session::Miss;
use crate::{rootfs, tracer};

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
    /// The account search, when one was made ([`crate::lookup`]).
    pub account_search: Option<AccountSearch>,
    /// The run that was not made because it would have repeated an
    /// earlier one (same root, same input).
    pub repeat: Option<Repeat>,
    /// Paths the policy refused in the last run, when the program did not
    /// start: the likely cause (a secret it needs).
    pub denied_last_run: Vec<Probe>,
}

/// The account search of a program ([`crate::lookup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSearch {
    /// The runs it made.
    pub runs: u32,
    /// The host accounts the jail lacked when it began.
    pub candidates: u32,
    /// The accounts found (also in the manifest's `accounts`).
    pub found: Vec<FoundAccount>,
    /// The run in which the program did not start with every host
    /// account: accounts are not what it lacks.
    pub not_accounts: Option<u32>,
}

/// A run the loop did not make: it would have started from the same
/// root as an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    /// The run's index.
    pub run: u32,
    /// What it would have been.
    pub role: RunRole,
    /// The earlier run with the same root.
    pub same_as: u32,
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
    #[error("cannot map the user namespace's ids")]
    Ids(#[source] std::io::Error),
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
    #[error("program {program} is to run with {with}, which is not a program of the jail")]
    UnknownCompanion { program: String, with: String },
}
