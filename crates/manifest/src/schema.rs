//! The records a [`crate::Manifest`] is made of.
//!
//! Field names, enum spellings and optionality here are the JSON format
//! (schema version [`crate::SCHEMA_VERSION`]); `docs/manifest.md` describes the
//! same thing for readers who do not read Rust. Readers ignore object keys
//! they do not know, so adding an optional field does not change the
//! version; renaming, removing or retyping a field, or adding an enum value,
//! does. Optional fields are omitted from the JSON when absent.
//!
//! Paths inside the jail are absolute (`/usr/bin/date`) and relative to the
//! jail's root; host paths are absolute host paths. Both are [`PathText`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Mode, PathText};

/// The program jailtrace was asked to run.
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
    /// What was done to the program once it was ready (`--exercise`,
    /// `--probe`), in the order it was done; each had to succeed in every
    /// run. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exercises: Vec<Exercise>,
}

/// One step done to a ready program so that it reads what only a request
/// needs. Externally tagged: `{"command": "curl -fsS http://127.0.0.1/"}`
/// or `{"probe": "http://127.0.0.1:8080/page.php"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Exercise {
    /// A shell command run on the host with `sh -c`, outside the jail, as
    /// the user who ran jailtrace; it had to exit 0.
    Command(String),
    /// An `http://` URL fetched with `GET`; it had to answer 2xx or 3xx.
    Probe(String),
}

/// For people: `` `COMMAND` `` or `probe URL`.
impl std::fmt::Display for Exercise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exercise::Command(command) => write!(f, "`{command}`"),
            Exercise::Probe(url) => write!(f, "probe {url}"),
        }
    }
}

/// Why a run was made. JSON: `"discover"`, `"verify"` or `"retry"`.
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
    /// Placed before the first run from a known-needed set (e.g. the ELF's libraries).
    Preseed,
    /// Generated content not copied from the host (e.g. a minimal `/etc/passwd`).
    Synthesized,
    /// Needed by the runtime environment rather than a single lookup (e.g. `/dev/null`, mounts).
    Runtime,
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
    /// The exercise (one of [`Command::exercises`]) that was running when
    /// the program made the request: what only serving it needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercise: Option<Exercise>,
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
            exercise: None,
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
    /// The filesystem type: `"proc"`, `"sysfs"`, `"devpts"` or `"tmpfs"`.
    pub fstype: String,
    /// The mount point inside the jail.
    pub path: PathText,
    /// Mount options as for `mount -o`, one per item, e.g. `["nosuid", "nodev"]`.
    pub options: Vec<String>,
    /// What made it necessary.
    pub reason: Reason,
}

impl Mount {
    /// The shell command that mounts this file system into the jail at
    /// `root` before `chroot ROOT …` (paths printed as text, for people):
    /// `mount -t proc -o ro proc /srv/jail/proc`, or a bind mount of the
    /// host's `/dev/pts`.
    pub fn shell_command(&self, root: &std::path::Path) -> String {
        let at = root.join(
            self.path
                .as_path()
                .strip_prefix("/")
                .unwrap_or(self.path.as_path()),
        );
        match self.fstype.as_str() {
            "devpts" => format!("mount --bind /dev/pts {}", at.display()),
            fstype => format!("mount -t {fstype} -o ro {fstype} {}", at.display()),
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
        ] {
            let json = serde_json::to_string(&cause).unwrap();
            assert_eq!(json, format!("\"{}\"", cause.as_str()));
        }
    }
}
