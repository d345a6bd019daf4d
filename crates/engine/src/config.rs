//! What one `jailtrace run` of a program needs: [`Config`], made by the
//! command line (or from a manifest's program), executed by the engine.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use jailtrace_manifest::Manifest;

use jailtrace_tracer::{Spawn, Stdio};

use crate::accounts::AccountDbs;
use crate::exercise::Exercise;
use crate::input::Input;
use crate::policy::Policy;

/// Everything one `jailtrace run` needs. [`doctor::doctor`] takes the same
/// and ignores what only copying uses (`max_runs`, `keep_setuid`,
/// `max_listing`, `ld_library_path`, `account_dbs`).
/// How many host entries one directory listing shows by default: names
/// cost no inode until a path names one, so this only bounds memory (a
/// name takes about 100 bytes).
pub const MAX_LISTING: usize = 100_000;

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
    /// Most host entries one directory listing shows
    /// ([`MAX_LISTING`] by default).
    pub max_listing: usize,
    /// `LD_LIBRARY_PATH` to use for the ELF closure.
    pub ld_library_path: Vec<PathBuf>,
    /// When the program counts as started; empty means `exit`.
    pub ready: Vec<jailtrace_spec::ready::Condition>,
    /// Done to the program once it is ready, in order, in every run; each
    /// must succeed for the run to count as ready.
    pub exercises: Vec<Exercise>,
    /// How long one exercise may take.
    pub exercise_timeout: Duration,
    /// Programs of the jail (names in `others`) started before this one in
    /// each of its runs, each once the one before it is ready, and traced
    /// with it until it is stopped: the servers it needs.
    pub with: Vec<String>,
    /// Commands run in the root before the program in each of its runs
    /// (after the programs of `with`), each to its end, as the program is
    /// started: a unit's `ExecStartPre=`.
    pub before: Vec<BeforeCommand>,
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
    /// The systemd unit the program was described by (`--unit`), for the
    /// manifest.
    pub unit: Option<jailtrace_manifest::ProgramUnit>,
    /// The file mode creation mask the program starts with (a unit's
    /// `UMask=`); `None` keeps jailtrace's.
    pub umask: Option<u32>,
}

impl Config {
    /// How the tracer starts the program (chrooted into the root, as its
    /// user), before its standard streams are wired.
    pub(crate) fn spawn(&self) -> Spawn {
        Spawn {
            program: self.executable.clone(),
            argv: self.argv.clone(),
            env: self.env.clone(),
            root: Some(self.root.clone()),
            cwd: self.cwd.clone(),
            stdout: if self.stdout_to_stderr {
                Stdio::Stderr
            } else {
                Stdio::Inherit
            },
            pid_namespace: self.pid_namespace,
            uid: self.credentials.as_ref().map(|c| c.uid),
            gid: self.credentials.as_ref().map(|c| c.gid),
            groups: self
                .credentials
                .as_ref()
                .map(|c| c.groups.clone())
                .unwrap_or_default(),
            umask: self.umask,
            ..Default::default()
        }
    }
}

/// A command run in the root before the program ([`Config::before`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeforeCommand {
    /// `argv[0]` first.
    pub argv: Vec<OsString>,
    /// Its absolute host path (also its path in the jail).
    pub executable: PathBuf,
    /// Its failure is no failure (a unit's `-` prefix).
    pub may_fail: bool,
}

impl BeforeCommand {
    /// For people: `` `mkdir -m 740 -p /run/app` ``.
    pub(crate) fn shown(&self) -> String {
        let words: Vec<String> = self
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        format!("`{}`", words.join(" "))
    }
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
    /// The supplementary groups given besides the user's own (a unit's
    /// `SupplementaryGroups=`), as given: the manifest records them.
    pub extra_groups: Vec<String>,
}
