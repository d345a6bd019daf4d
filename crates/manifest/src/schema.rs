//! The records a [`crate::Manifest`] is made of.
//!
//! Field names, enum spellings and optionality here are the JSON format
//! (schema version [`crate::SCHEMA_VERSION`]); `docs/manifest.md` describes the
//! same thing for readers who do not read Rust. Readers ignore object keys
//! they do not know, so adding an optional field does not change the
//! version; renaming, removing or retyping a field, or adding an enum value,
//! does. Optional fields are omitted from the JSON when absent.
//!
//! One enum value is waiting for its version: [`Cause::Requested`] (what
//! `--mkdir` and `--bind` add) belongs to schema version 2, which is being
//! made; until it lands, manifests that use it say version 1. This crate
//! reads them either way, and a manifest of a jail without `--mkdir` or
//! `--bind` is exactly what it was; an older jailtrace refuses one that
//! uses it (`unknown variant \`requested\``) rather than misread it. The
//! account search's [`Cause::Lookup`] and [`RunRole::Lookup`] wait for the
//! same version, and are written only by a jail whose program looks an
//! account up by name.
//!
//! Paths inside the jail are absolute (`/usr/bin/date`) and relative to the
//! jail's root; host paths are absolute host paths. Both are [`PathText`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Mode, PathText};

/// One program of the jail: its name and how it is started.
///
/// JSON: an object with `name` and the fields of [`Command`] beside it
/// (`{"name": "date", "argv": [...], "executable": ..., ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Program {
    /// The program's name, unique in the jail: `--program NAME`, by
    /// default the executable's file name (`date`).
    pub name: String,
    /// How it is started.
    #[serde(flatten)]
    pub command: Command,
    /// The systemd service unit its command, user, environment, directories
    /// and readiness were read from (`jailtrace run --unit`); omitted for a
    /// program described by flags alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<ProgramUnit>,
}

/// The systemd unit a program was described by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProgramUnit {
    /// Its full name (`nginx.service`): the unit the systemd export writes
    /// a drop-in for.
    pub name: String,
    /// The unit file read, then its drop-ins, in the order they applied.
    pub files: Vec<PathText>,
}

impl Program {
    /// The default name of a program started as `executable`: its file
    /// name (`/usr/sbin/nginx` → `nginx`).
    pub fn default_name(executable: &std::path::Path) -> String {
        executable
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "program".into())
    }
}

/// How a program is started in the jail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Command {
    /// The full argument vector, `argv[0]` first, as given to `execve`.
    pub argv: Vec<PathText>,
    /// The program's host path after `PATH` lookup, as given (not canonicalised:
    /// `/bin/date`, not `/usr/bin/date`).
    pub executable: PathText,
    /// The working directory inside the jail.
    pub cwd: PathText,
    /// The environment the program was given, each item `KEY=VALUE`, in
    /// order, less the variables in [`Command::env_redacted`].
    pub env: Vec<PathText>,
    /// Variables the program was given whose values are not recorded
    /// because they look like credentials (see `docs/security.md`): names
    /// only. Present (possibly empty) in manifests written since redaction
    /// exists; absent in older ones, whose `env` may hold such values (see
    /// [`Command::environment`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_redacted: Option<Vec<PathText>>,
    /// The user the program ran as (`--user`), by name or number; `null` = unchanged.
    #[serde(default)]
    pub user: Option<String>,
    /// The group the program ran as (`--group`), by name or number; `null` = unchanged.
    #[serde(default)]
    pub group: Option<String>,
    /// Supplementary groups the program ran with besides its user's own
    /// (a unit's `SupplementaryGroups=`), by name or number as given.
    /// Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supplementary_groups: Vec<String>,
    /// The file mode creation mask the program started with, four octal
    /// digits (`"0027"`: a unit's `UMask=`); omitted when jailtrace's own
    /// was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<String>,
    /// When the program counts as started, as given to `--ready`
    /// (`tcp:127.0.0.1:80`, `log:REGEX`, …); empty means `exit` (its first
    /// process exits 0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ready: Vec<String>,
    /// What was done to the program once it was ready (`--exercise`,
    /// `--probe`), in the order it was done; each had to succeed in every
    /// run. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exercises: Vec<Exercise>,
    /// The jail's programs started (and ready) before this one in each of
    /// its runs, in order, and kept running until it is stopped: the
    /// servers it needs (a web application's database). Names of
    /// `programs`. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub with: Vec<String>,
    /// Commands run in the jail before the program in each of its runs,
    /// in order, each to its end, with the program's user, environment
    /// and working directory: a unit's `ExecStartPre=` lines (a
    /// configuration test, `mkdir`, `chown`), as systemd runs them in the
    /// service's root. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<Before>,
}

/// One command run in the jail before a program ([`Command::before`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Before {
    /// Its argument vector, `argv[0]` first.
    pub argv: Vec<PathText>,
    /// Its host path (also its path in the jail).
    pub executable: PathText,
    /// Its failure does not fail the run (a unit's `-` prefix); omitted
    /// when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub may_fail: bool,
}

/// One step done to a ready program so that it reads what only a request
/// needs. Externally tagged: `{"command": "curl -fsS http://127.0.0.1/"}`,
/// `{"probe": "http://127.0.0.1:8080/page.php"}` or `{"listening": "/"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Exercise {
    /// A shell command run on the host with `sh -c`, outside the jail, as
    /// the user who ran jailtrace; it had to exit 0.
    Command(String),
    /// An `http://` URL fetched with `GET`; it had to answer 2xx or 3xx.
    Probe(String),
    /// `GET PATH` on each TCP port the program listened on (`run --unit`'s
    /// default exercise); whatever each port answered, or not, was fine.
    Listening(String),
}

/// For people: `` `/bin/mkdir -p /run/app` ``.
impl std::fmt::Display for Before {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let argv: Vec<String> = self.argv.iter().map(ToString::to_string).collect();
        write!(f, "`{}`", argv.join(" "))
    }
}

/// For people: `` `COMMAND` ``, `probe URL` or `GET PATH on each listening
/// TCP port`.
impl std::fmt::Display for Exercise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exercise::Command(command) => write!(f, "`{command}`"),
            Exercise::Probe(url) => write!(f, "probe {url}"),
            Exercise::Listening(path) => write!(f, "GET {path} on each listening TCP port"),
        }
    }
}

/// Why a run was made. JSON: `"discover"`, `"verify"`, `"retry"` or
/// `"lookup"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunRole {
    /// A run that copies what the program misses into the root.
    Discover,
    /// A run that checks the finished root: it places nothing when the root is complete.
    Verify,
    /// A further discover run after an earlier one placed files the program only
    /// found on its next attempt.
    Retry,
    /// A verifying run of the account search: the root as verified, with
    /// account databases holding the jail's accounts plus a subset of the
    /// host's (see [`FoundAccount`]). Waiting for version 2, as
    /// [`Cause::Lookup`].
    Lookup,
}

/// One execution of the program in the jail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Run {
    /// 1-based position of the run; [`Reason::run`] refers to it (0 means "before any run").
    pub index: u32,
    /// Why the run was made.
    pub role: RunRole,
    /// Whether a seccomp filter limited the ptrace stops to path syscalls.
    pub seccomp: bool,
    /// How the program ended.
    pub status: RunStatus,
    /// Whether the program reached the readiness condition (e.g. it exited 0,
    /// or a ready probe succeeded) before it ended or was stopped.
    pub ready: bool,
    /// Path lookups that failed in the jail during this run.
    pub misses: u32,
    /// Entries placed in the root during this run (those whose `reason.run` is `index`).
    pub placed: u32,
    /// Bytes of file content copied during this run.
    pub bytes: u64,
    /// Wall-clock duration in milliseconds.
    pub wall_ms: u64,
    /// Tasks traced (processes and their threads), including the first.
    pub processes: u32,
    /// ptrace stops handled.
    pub stops: u64,
    /// Microseconds jailtrace's handler spent on those stops (the rest of
    /// a stop's cost is the kernel's: the stop itself and the wake-ups);
    /// absent in manifests written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler_us: Option<u64>,
    /// The [`Program::name`] of the program this run started; absent in
    /// manifests of one program written before schema version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
}

/// How a run ended. Externally tagged: `{"exited":{"code":0}}`,
/// `{"signaled":{"signal":"SIGSEGV","core_dumped":true}}`,
/// `{"killed":{"reason":"timeout after 10s"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The program's first process exited by itself.
    Exited {
        /// Its exit status (0–255).
        code: i32,
    },
    /// The program's first process was ended by a signal it did not catch.
    Signaled {
        /// The signal's name, e.g. `"SIGSEGV"`.
        signal: String,
        /// Whether a core dump was produced.
        core_dumped: bool,
    },
    /// jailtrace ended the program.
    Killed {
        /// Why, for people (e.g. `"timeout after 10s"`, `"ready"`).
        reason: String,
    },
}

/// What an entry is. JSON: `"file"`, `"dir"`, `"symlink"` or `"device"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file (its content was copied, or it is a hard link: see [`Entry::hardlink_to`]).
    File,
    /// A directory.
    Dir,
    /// A symbolic link (see [`Entry::target`]).
    Symlink,
    /// A character or block device node (see [`Entry::rdev`]).
    Device,
}

impl EntryKind {
    /// The JSON spelling: `"file"`, `"dir"`, `"symlink"` or `"device"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Device => "device",
        }
    }
}

/// A device number. JSON: `{"major": 1, "minor": 3}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct DeviceNumber {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

/// One thing placed in the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    /// Absolute path inside the jail.
    pub path: PathText,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits as placed, including setuid/setgid/sticky; JSON `"0755"`.
    pub mode: Mode,
    /// Owner user id as placed.
    pub uid: u32,
    /// Owner group id as placed.
    pub gid: u32,
    /// Size in bytes, for files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// SHA-256 of the content, lowercase hex, for files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern("^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
    /// The link's target exactly as stored in the link (may be relative), for symlinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<PathText>,
    /// The device number, for devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<DeviceNumber>,
    /// For a file that is a hard link to an earlier entry: that entry's path in the jail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardlink_to: Option<PathText>,
    /// True when the host file was setuid/setgid and the copy had those bits
    /// removed by policy (`mode` is the stripped mode). Omitted when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub setuid_stripped: bool,
    /// True for a regular file the program listed and only looked at
    /// (`stat`, `access`) without reading it: the root holds a file with
    /// the host's `size`, mode, owner and times but no content (a hole
    /// that reads as zeros), and `sha256` is absent. A run that reads it
    /// copies its content and clears this. Omitted when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hollow: bool,
    /// The whole content of a file jailtrace wrote itself rather than
    /// copied (cause `synthesized`: `/etc/passwd`, `/etc/group`), so that a
    /// builder writes the same bytes. Omitted for copied files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<PathText>,
    /// Why it was placed.
    pub reason: Reason,
    /// The first request of each other program of the jail that needs this
    /// entry too (`reason` is the first program's), so that `why` can say
    /// which programs need a library. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_needed_by: Vec<Reason>,
}

impl Entry {
    /// An entry with the optional fields (size, hash, target, …) absent.
    pub fn new(
        path: PathText,
        kind: EntryKind,
        mode: Mode,
        uid: u32,
        gid: u32,
        reason: Reason,
    ) -> Self {
        Self {
            path,
            kind,
            mode,
            uid,
            gid,
            size: None,
            sha256: None,
            target: None,
            rdev: None,
            hardlink_to: None,
            setuid_stripped: false,
            hollow: false,
            content: None,
            reason,
            also_needed_by: Vec::new(),
        }
    }
}

/// serde helper: omit `false` booleans.
fn is_false(value: &bool) -> bool {
    !*value
}

/// Why something was placed, probed or denied. JSON: snake_case strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The program itself.
    Executable,
    /// The program asked for this path and missed it.
    Accessed,
    /// A component of the symlink chain of a path the program asked for.
    SymlinkChain,
    /// A directory needed to hold another entry.
    Parent,
    /// An ELF interpreter (dynamic loader) or a `#!` script interpreter.
    Interpreter,
    /// An entry of a directory the program listed (`getdents64`) that the
    /// program then used; unused listed entries are pruned.
    Listed,
    /// Made by the program itself during a run (a log, a pid file, a
    /// directory): recorded, never copied from the host; no content is kept.
    Created,
    /// Placed before a run from a known-needed set: the libraries an ELF
    /// file names (the program's, before the first run; those of what a
    /// verifying run missed, before the retry that places it).
    Preseed,
    /// Generated content not copied from the host (e.g. a minimal `/etc/passwd`).
    Synthesized,
    /// Needed by the runtime environment rather than a single lookup (e.g. `/dev/null`, mounts).
    Runtime,
    /// Asked for on the command line, not by the program: a directory of
    /// `--mkdir` (with the mode and owner given there), the mount point of
    /// a `--bind` and its mount, and a directory above either that the
    /// host lacks too (made 0755, owned by root). Not read from the host
    /// at the entry's path, so `verify` and `update` do not compare it
    /// there. New in this version: see the module documentation.
    Requested,
    /// Found by experiment: a host account (a [`FoundAccount`]) the
    /// program looks up by name without switching to it, kept because the
    /// program did not start without it. Also waiting for version 2.
    Lookup,
}

impl Cause {
    /// The JSON spelling, e.g. `"symlink_chain"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Executable => "executable",
            Cause::Accessed => "accessed",
            Cause::SymlinkChain => "symlink_chain",
            Cause::Parent => "parent",
            Cause::Interpreter => "interpreter",
            Cause::Listed => "listed",
            Cause::Created => "created",
            Cause::Preseed => "preseed",
            Cause::Synthesized => "synthesized",
            Cause::Runtime => "runtime",
            Cause::Requested => "requested",
            Cause::Lookup => "lookup",
        }
    }
}

/// The provenance of an entry, probe or mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reason {
    /// Why.
    pub cause: Cause,
    /// [`Run::index`] of the run that caused it; 0 = before any run (e.g. pre-seeding).
    pub run: u32,
    /// The process that made the request (a host pid, meaningful only within that run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// That process's executable, as a path inside the jail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<PathText>,
    /// The syscall that missed, e.g. `"openat"`, `"execve"`, `"stat"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// The path the program asked for, when it differs from this record's own path
    /// (a symlink-chain component, a parent directory, an interpreter, or a file
    /// reached through a symlinked directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<PathText>,
    /// The [`Program::name`] of the program whose run made the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The exercise (one of [`Command::exercises`]) that was running when
    /// the program made the request: what only serving it needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercise: Option<Exercise>,
    /// For a `requested` directory, the systemd unit setting that asked
    /// for it (`redis-server.service RuntimeDirectory=redis`); absent for
    /// `--mkdir` and `--bind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<String>,
}

impl Reason {
    /// A reason with only `cause` and `run`; fill the optional fields as known.
    pub fn new(cause: Cause, run: u32) -> Self {
        Self {
            cause,
            run,
            pid: None,
            exe: None,
            syscall: None,
            requested: None,
            program: None,
            exercise: None,
            setting: None,
        }
    }
}

/// A path that was looked up but not placed (see [`crate::Manifest::absent`]
/// and [`crate::Manifest::denied`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Probe {
    /// Absolute path inside the jail (the same path on the host).
    pub path: PathText,
    /// Who asked and when.
    pub reason: Reason,
    /// For a denied path: the policy rule that refused it, as written in the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// A filesystem the jail needs mounted when the program runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Mount {
    /// The filesystem type: `"proc"`, `"sysfs"`, `"devpts"` or `"tmpfs"`,
    /// or `"bind"` for a host directory bind-mounted into the jail
    /// (`--bind`; see [`Mount::source`]).
    pub fstype: String,
    /// The mount point inside the jail.
    pub path: PathText,
    /// Mount options as for `mount -o`, one per item, e.g. `["nosuid", "nodev"]`;
    /// for a bind, `["ro"]` when it is read-only, else empty.
    pub options: Vec<String>,
    /// For a bind: the host directory mounted at [`Mount::path`] (an
    /// absolute, canonical host path). Absent for other file systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathText>,
    /// What made it necessary.
    pub reason: Reason,
}

impl Mount {
    /// Whether this is a host directory bound into the jail (`--bind`).
    pub fn is_bind(&self) -> bool {
        self.fstype == "bind"
    }

    /// Whether a bind is read-only (its options hold `ro`).
    pub fn read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }

    /// The shell command that mounts this file system into the jail at
    /// `root` before `chroot ROOT …` (paths printed as text, for people):
    /// `mount -t proc -o ro proc /srv/jail/proc`, a bind mount of the
    /// host's `/dev/pts`, or for a bind `mount --bind HOST ROOT/JAIL`,
    /// followed for a read-only one by `&& mount -o remount,bind,ro
    /// ROOT/JAIL` (a bind mount takes `ro` only when it is remounted).
    pub fn shell_command(&self, root: &std::path::Path) -> String {
        let at = root.join(
            self.path
                .as_path()
                .strip_prefix("/")
                .unwrap_or(self.path.as_path()),
        );
        match (self.fstype.as_str(), &self.source) {
            ("devpts", _) => format!("mount --bind /dev/pts {}", at.display()),
            ("bind", Some(source)) => {
                let bind = format!("mount --bind {source} {}", at.display());
                if self.read_only() {
                    format!("{bind} && mount -o remount,bind,ro {}", at.display())
                } else {
                    bind
                }
            }
            (fstype, _) => format!("mount -t {fstype} -o ro {fstype} {}", at.display()),
        }
    }
}

/// An address family. JSON: `"inet"`, `"inet6"` or `"unix"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SocketFamily {
    /// IPv4 (`AF_INET`).
    Inet,
    /// IPv6 (`AF_INET6`).
    Inet6,
    /// Unix domain (`AF_UNIX`).
    Unix,
}

/// A socket operation. JSON: `"bind"`, `"connect"` or `"listen"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SocketOp {
    /// `bind(2)`.
    Bind,
    /// `connect(2)`.
    Connect,
    /// `listen(2)`.
    Listen,
}

/// How a manifest made without root was made. Its entries are what a root
/// run records (the host's owners, device numbers and modes); only the
/// root it was made in differs: there, files whose owner the user
/// namespace could not give belong to the user, and device nodes were the
/// host's, bind-mounted for the runs. `jailtrace build` as root makes the
/// root the entries describe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rootless {
    /// The user who ran jailtrace (host uid), root in the namespace.
    pub uid: u32,
    /// Their group (host gid).
    pub gid: u32,
    /// How many ids above 0 the namespace mapped to the user's subordinate
    /// ranges (`/etc/subuid`, `/etc/subgid`); 0 when only the user was
    /// mapped.
    pub subordinate_ids: u32,
}

/// Network use by the program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Socket {
    /// The address family.
    pub family: SocketFamily,
    /// What the program did.
    pub op: SocketOp,
    /// The address: `"127.0.0.1:53"`, `"[::1]:8080"`, or a unix socket path
    /// (an abstract one starts with `@`).
    pub address: String,
    /// Which process, in which run.
    pub reason: Reason,
}

/// A host account the program looks up by name and never switches to,
/// found by experiment: the synthesized `/etc/passwd` or `/etc/group`
/// holds it because a verifying run without it did not start
/// (`failed_without`) and one with it did (`reason.run`). Its line is
/// written as every kept account's (password `x`, no gecos); nothing of
/// `/etc/shadow` takes part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FoundAccount {
    /// The user or group name.
    pub name: String,
    /// Which database holds it.
    pub kind: AccountKind,
    /// [`Cause::Lookup`], with the run in which the program started with
    /// it, and the program that needs it.
    pub reason: Reason,
    /// The run in which the program did not start without it (with every
    /// other account of that run's set).
    pub failed_without: u32,
}

/// Which account database a [`FoundAccount`] is in. JSON: `"user"`
/// (`/etc/passwd`) or `"group"` (`/etc/group`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    User,
    Group,
}

impl AccountKind {
    /// `"user"` or `"group"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "user",
            AccountKind::Group => "group",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_json_spelling() {
        use EntryKind::*;
        for kind in [File, Dir, Symlink, Device] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        use Cause::*;
        for cause in [
            Executable,
            Accessed,
            SymlinkChain,
            Parent,
            Interpreter,
            Listed,
            Created,
            Preseed,
            Synthesized,
            Runtime,
            Requested,
        ] {
            let json = serde_json::to_string(&cause).unwrap();
            assert_eq!(json, format!("\"{}\"", cause.as_str()));
        }
    }

    fn bind(options: &[&str]) -> Mount {
        Mount {
            fstype: "bind".into(),
            path: PathText::from("/var/lib/app"),
            options: options.iter().map(|o| o.to_string()).collect(),
            source: Some(PathText::from("/srv/app-data")),
            reason: Reason::new(Cause::Requested, 0),
        }
    }

    #[test]
    fn a_bind_prints_mount_bind_and_a_read_only_one_its_remount() {
        let root = std::path::Path::new("/srv/jail");
        assert!(bind(&[]).is_bind() && !bind(&[]).read_only());
        assert_eq!(
            bind(&[]).shell_command(root),
            "mount --bind /srv/app-data /srv/jail/var/lib/app"
        );
        assert_eq!(
            bind(&["ro"]).shell_command(root),
            "mount --bind /srv/app-data /srv/jail/var/lib/app && \
             mount -o remount,bind,ro /srv/jail/var/lib/app"
        );
        // No source: written by nothing jailtrace makes, but printed
        // without a panic.
        let mut odd = bind(&[]);
        odd.source = None;
        assert!(odd.shell_command(root).starts_with("mount -t bind"));
    }

    #[test]
    fn a_bind_round_trips_and_other_mounts_have_no_source() {
        let json = serde_json::to_value(bind(&["ro"])).unwrap();
        assert_eq!(json["source"], "/srv/app-data");
        assert_eq!(json["options"], serde_json::json!(["ro"]));
        let back: Mount = serde_json::from_value(json).unwrap();
        assert_eq!(back, bind(&["ro"]));
        let proc_json = serde_json::json!({
            "fstype": "proc", "path": "/proc", "options": ["ro"],
            "reason": {"cause": "runtime", "run": 1}
        });
        let proc_mount: Mount = serde_json::from_value(proc_json).unwrap();
        assert_eq!(proc_mount.source, None);
        assert!(!serde_json::to_string(&proc_mount)
            .unwrap()
            .contains("source"));
    }
}
