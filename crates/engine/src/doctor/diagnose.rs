//! The known causes of a program not starting in a jail, found in what a
//! read-only run recorded, each as a [`Diagnosis`] with a plain sentence
//! and the fix ([`Diagnosis::message`]).
//!
//! Every check only reads: the root through [`Root`] (resolved inside it),
//! the host's files, `/proc/self/mountinfo`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use jailtrace_elf::Interpreter;
use jailtrace_manifest::{Cause, Probe};
use jailtrace_rootfs::{Follow, Host, Kind, Meta, Root, Step};
use jailtrace_tracer::{Op, SpawnError};
use nix::errno::Errno;

use super::inroot::{interpreter_in_root, read_in_root, resolve_in_root};
use super::Failure;
use crate::accounts::Accounts;
use crate::config::Config;
use crate::creds::Creds;
use crate::failed::FailedCall;
use crate::session::{Session, Who};

/// How many levels of `#!` interpreters the kernel follows (binfmt_script).
const MAX_INTERPRETER_DEPTH: usize = 5;

/// The most of a root's account database read.
const MAX_DB: u64 = 4 << 20;

/// A known cause of a program not starting, with what the fix needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// The program could not be started at all (its executable or working
    /// directory missing, a user switch refused).
    StartFailed {
        /// What failed, e.g. "exec the program".
        stage: String,
        errno: Errno,
        program: PathBuf,
        cwd: PathBuf,
    },
    /// `execve` of a file the root has failed with ENOENT because its
    /// interpreter is missing from the root.
    MissingInterpreter {
        exe: PathBuf,
        interpreter: PathBuf,
        /// A `#!` interpreter rather than an ELF `PT_INTERP`.
        script: bool,
        who: Who,
    },
    /// A device node the program opens is missing (or, `regular_file`, the
    /// program made a regular file in its place).
    MissingDevice {
        path: PathBuf,
        block: bool,
        major: u64,
        minor: u64,
        mode: u32,
        uid: u32,
        gid: u32,
        regular_file: bool,
        who: Who,
    },
    /// A file system (/proc, /sys, /dev/pts) the program uses is not
    /// mounted in the root.
    NotMounted {
        /// The mount point, e.g. `/proc`.
        mount: PathBuf,
        fstype: &'static str,
        /// The paths the program looked for there (the first few).
        paths: Vec<PathBuf>,
        /// Whether the mount point exists in the root.
        mount_point_exists: bool,
        who: Who,
    },
    /// A user or group the program looks up that the root's database lacks.
    MissingAccount {
        name: String,
        account: Account,
        /// The uid or gid on the host.
        id: u32,
        /// The host's entry, as `jailtrace run` would write it.
        line: String,
        /// Where the name came from: `arguments`, `environment`, `output`.
        source: &'static str,
    },
    /// A path call refused with EACCES or EPERM.
    PermissionDenied {
        /// The path the call named.
        path: PathBuf,
        /// The entry that refuses: the file, or a directory on the way
        /// that the caller may not search.
        blocked_at: PathBuf,
        errno: Errno,
        who: Who,
        /// The caller's ids at the time.
        creds: Option<Creds>,
        /// `blocked_at` in the root and on the host.
        jail: Option<Owner>,
        host: Option<Owner>,
    },
    /// The program chroots itself (haproxy's `chroot /var/lib/haproxy`)
    /// into a directory the jail lacks, so its `chroot(2)` fails.
    MissingChrootTarget {
        /// The directory, inside the jail.
        path: PathBuf,
        /// The host's directory there (`None`: the host lacks it too).
        host: Option<Owner>,
        who: Who,
    },
    /// A bind failed with EADDRINUSE.
    PortInUse { addr: SocketAddr },
    /// The program read the jail's `/etc/passwd` or `/etc/group` and did
    /// not start, naming no account: it may look one up by name that it
    /// never switches to. `jailtrace run` finds which by experiment (the
    /// account search of `crate::lookup`).
    AccountSearch {
        /// The host's users and groups the jail lacks.
        lacking: u32,
        /// The most runs the search takes for one account among them.
        runs: u32,
    },
    /// A missing path the manifest lists (`--manifest`).
    InManifest { path: PathBuf, cause: Cause },
    /// A bind the manifest records (`run --bind`) whose mount point the
    /// jail lacks, so the run went without the host directory.
    NotBound {
        /// The bind, as the manifest records it.
        bind: jailtrace_manifest::Mount,
    },
}

/// Which account database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    User,
    Group,
}

/// An entry's owner, group and permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Owner {
    fn of(meta: &Meta) -> Owner {
        Owner {
            kind: meta.kind,
            uid: meta.uid,
            gid: meta.gid,
            mode: meta.mode,
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "owned by {}:{} mode {:04o}",
            self.uid, self.gid, self.mode
        )
    }
}

/// Everything the checks look at.
pub(super) struct Facts<'a> {
    pub config: &'a Config,
    pub session: &'a Session,
    pub failures: &'a [Failure],
    pub started: bool,
    pub transcript: &'a [u8],
    pub start_error: Option<&'a SpawnError>,
    /// The manifest's binds that could not be mounted for the run.
    pub unbound: &'a [jailtrace_manifest::Mount],
}

/// All diagnoses, most fundamental first.
pub(super) fn diagnose(facts: &Facts<'_>) -> Vec<Diagnosis> {
    let session = facts.session;
    let mut out = Vec::new();
    if let Some(SpawnError::Child { stage, errno }) = facts.start_error {
        out.push(Diagnosis::StartFailed {
            stage: stage.to_string(),
            errno: *errno,
            program: facts.config.executable.clone(),
            cwd: facts.config.cwd.clone(),
        });
    }
    out.extend(interpreters(&session.root, &session.failed_calls));
    out.extend(chroot_targets(
        &session.host,
        facts.failures,
        &session.absent,
    ));
    out.extend(devices(&session.root, facts.failures));
    out.extend(mounts(&session.root, &session.virtual_misses));
    out.extend(
        facts
            .unbound
            .iter()
            .map(|bind| Diagnosis::NotBound { bind: bind.clone() }),
    );
    if !facts.started {
        let candidates = account_candidates(
            facts.config.argv.get(1..).unwrap_or_default(),
            &facts.config.env,
            facts.transcript,
        );
        if let Ok(host) = Accounts::read_host() {
            let jail = jail_accounts(&session.root);
            let named = missing_accounts(&candidates, &host, &jail);
            if named.is_empty() && session.account_reads {
                out.extend(account_search(&host, &jail));
            }
            out.extend(named);
        }
    }
    out.extend(
        session
            .failed_calls
            .iter()
            .filter(|c| matches!(c.errno, Errno::EACCES | Errno::EPERM))
            .filter_map(|c| permission(&session.root, &session.host, c)),
    );
    out.extend(
        session
            .port_conflicts
            .iter()
            .map(|&addr| Diagnosis::PortInUse { addr }),
    );
    if let Some(manifest) = &facts.config.earlier {
        for f in facts.failures {
            let listed = std::iter::once(f.path.as_path())
                .chain(std::iter::once(f.resolved.as_path()))
                .chain(f.would_copy.iter().map(Step::path))
                .find_map(|p| manifest.entry(p));
            if let Some(entry) = listed {
                out.push(Diagnosis::InManifest {
                    path: entry.path.as_path().to_path_buf(),
                    cause: entry.reason.cause,
                });
            }
        }
    }
    out
}

/// Failed `execve`s with ENOENT of files the root has, whose interpreter
/// (or the interpreter's, for scripts) the root lacks.
fn interpreters(root: &Root, calls: &[FailedCall]) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for call in calls
        .iter()
        .filter(|c| c.op == Op::Exec && c.errno == Errno::ENOENT)
    {
        if !matches!(root.stat(&call.path), Ok(Some(_))) {
            continue;
        }
        if let Some((exe, interpreter, script)) = missing_interpreter(root, &call.path) {
            let d = Diagnosis::MissingInterpreter {
                exe,
                interpreter,
                script,
                who: call.who.clone(),
            };
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// The directories the program chroots into that the root lacks: those
/// the host has (failures) and those it lacks too (absent probes).
pub(super) fn chroot_targets(
    host: &Host,
    failures: &[Failure],
    absent: &[Probe],
) -> Vec<Diagnosis> {
    const CHROOT: &str = "chroot";
    let mut out = Vec::new();
    for f in failures.iter().filter(|f| f.who.syscall == Some(CHROOT)) {
        let meta = host.lstat(&f.resolved).ok().flatten();
        out.push(Diagnosis::MissingChrootTarget {
            path: f.path.clone(),
            host: meta.filter(|m| m.kind == Kind::Dir).map(|m| Owner::of(&m)),
            who: f.who.clone(),
        });
    }
    for probe in absent
        .iter()
        .filter(|p| p.reason.syscall.as_deref() == Some(CHROOT))
    {
        out.push(Diagnosis::MissingChrootTarget {
            path: probe.path.as_path().to_path_buf(),
            host: None,
            who: Who {
                pid: probe.reason.pid,
                exe: probe.reason.exe.as_ref().map(|e| e.as_path().to_path_buf()),
                syscall: Some(CHROOT),
                exercise: None,
            },
        });
    }
    out
}

/// The first interpreter on `exe`'s chain the root lacks: (whose, which,
/// whether a `#!` one).
pub(super) fn missing_interpreter(root: &Root, exe: &Path) -> Option<(PathBuf, PathBuf, bool)> {
    let mut current = exe.to_path_buf();
    for _ in 0..MAX_INTERPRETER_DEPTH {
        let (path, script) = match interpreter_in_root(root, &current)? {
            Interpreter::Elf { path } => (path, false),
            Interpreter::Script { path, .. } => (path, true),
        };
        if !matches!(root.stat(&path), Ok(Some(_))) {
            return Some((current, path, script));
        }
        if !script {
            return None;
        }
        current = path;
    }
    None
}

/// Missing device nodes among the failures.
pub(super) fn devices(root: &Root, failures: &[Failure]) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for f in failures {
        for step in &f.would_copy {
            let Step::Device {
                path,
                attrs,
                rdev,
                block,
            } = step
            else {
                continue;
            };
            let regular_file = matches!(root.lstat(path), Ok(Some(m)) if m.kind == Kind::File);
            out.push(Diagnosis::MissingDevice {
                path: path.clone(),
                block: *block,
                major: nix::sys::stat::major(*rdev),
                minor: nix::sys::stat::minor(*rdev),
                mode: attrs.mode,
                uid: attrs.uid,
                gid: attrs.gid,
                regular_file,
                who: f.who.clone(),
            });
        }
    }
    out
}

/// The file systems the program looked into that are not mounted in the
/// root: one diagnosis each (/proc first, the one programs miss most), who
/// looked first, and the first few paths looked for.
pub(super) fn mounts(root: &Root, seen: &[(PathBuf, &'static str, Who)]) -> Vec<Diagnosis> {
    const MAX_PATHS: usize = 3;
    let points = crate::mounts::mount_points();
    let mut out: Vec<Diagnosis> = Vec::new();
    for (path, fs, who) in seen {
        let mount = PathBuf::from(fs);
        let host_point = root.path().join(mount.strip_prefix("/").unwrap_or(&mount));
        if points.contains(&host_point) {
            continue;
        }
        let known = out.iter_mut().find_map(|d| match d {
            Diagnosis::NotMounted {
                mount: m, paths, ..
            } if *m == mount => Some(paths),
            _ => None,
        });
        if let Some(paths) = known {
            if paths.len() < MAX_PATHS && !paths.contains(path) {
                paths.push(path.clone());
            }
            continue;
        }
        let fstype = match *fs {
            "/proc" => "proc",
            "/dev/pts" => "devpts",
            _ => "sysfs",
        };
        out.push(Diagnosis::NotMounted {
            mount_point_exists: matches!(root.stat(&mount), Ok(Some(m)) if m.kind == Kind::Dir),
            mount,
            fstype,
            paths: vec![path.clone()],
            who: who.clone(),
        });
    }
    out.sort_by_key(|d| match d {
        Diagnosis::NotMounted { fstype: "proc", .. } => 0,
        _ => 1,
    });
    out
}

/// A word shaped like a POSIX user or group name.
fn account_shaped(w: &str) -> bool {
    let mut chars = w.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && w.len() <= 32
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
}

/// Output lines that speak of accounts contain one of these.
const ACCOUNT_WORDS: &[&str] = &[
    "user", "group", "getpw", "getgr", "passwd", "owner", "account", "uid", "gid",
];

/// Names the program may look up: its arguments and environment values
/// that look like account names, and the words of its output lines that
/// speak of users or groups (`getpwnam("www-data") failed`, `id:
/// 'www-data': no such user`), paths left out. With where each came from.
pub(super) fn account_candidates(
    args: &[OsString],
    env: &[OsString],
    transcript: &[u8],
) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    let mut add = |w: &str, source: &'static str| {
        if account_shaped(w) && !out.iter().any(|(n, _)| n == w) {
            out.push((w.to_string(), source));
        }
    };
    for a in args.iter().filter_map(|a| a.to_str()) {
        add(a, "arguments");
    }
    for kv in env.iter().filter_map(|kv| kv.to_str()) {
        if let Some((_, v)) = kv.split_once('=') {
            add(v, "environment");
        }
    }
    for line in transcript.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let lower = line.to_ascii_lowercase();
        if !ACCOUNT_WORDS.iter().any(|k| lower.contains(k)) {
            continue;
        }
        let words = line.split(|c: char| {
            !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '$'))
        });
        for word in words.filter(|w| !w.contains('/')) {
            add(word.trim_end_matches(['.', '-']), "output");
        }
    }
    out
}

/// The root's own /etc/passwd and /etc/group (empty when missing).
fn jail_accounts(root: &Root) -> Accounts {
    let passwd = read_in_root(root, Path::new("/etc/passwd"), MAX_DB).unwrap_or_default();
    let group = read_in_root(root, Path::new("/etc/group"), MAX_DB).unwrap_or_default();
    Accounts::parse(&passwd, &group)
}

/// The account search, proposed when the host has accounts the jail
/// lacks.
fn account_search(host: &Accounts, jail: &Accounts) -> Option<Diagnosis> {
    let (jail_users, jail_groups) = (jail.user_names(), jail.group_names());
    let lacking = host
        .user_names()
        .iter()
        .filter(|n| !jail_users.contains(n))
        .count()
        + host
            .group_names()
            .iter()
            .filter(|n| !jail_groups.contains(n))
            .count();
    let log2 = usize::BITS - lacking.saturating_sub(1).leading_zeros();
    (lacking > 0).then_some(Diagnosis::AccountSearch {
        lacking: lacking as u32,
        runs: log2 + 2,
    })
}

/// The candidates the host has as users or groups and the jail lacks.
pub(super) fn missing_accounts(
    candidates: &[(String, &'static str)],
    host: &Accounts,
    jail: &Accounts,
) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (name, source) in candidates {
        if let (Some((id, line)), None) = (host.user(name), jail.user(name)) {
            out.push(Diagnosis::MissingAccount {
                name: name.clone(),
                account: Account::User,
                id,
                line,
                source,
            });
        }
        if let (Some((id, line)), None) = (host.group(name), jail.group(name)) {
            out.push(Diagnosis::MissingAccount {
                name: name.clone(),
                account: Account::Group,
                id,
                line,
                source,
            });
        }
    }
    out
}

/// Permission bits `want` (4 read, 2 write, 1 execute/search) that
/// `creds` lack on an entry `meta` (root lacks only execute of a file with
/// no execute bit at all).
pub(super) fn lacks(meta: &Owner, creds: &Creds, want: u32) -> bool {
    if creds.uid == 0 {
        return want & 1 != 0 && meta.kind != Kind::Dir && meta.mode & 0o111 == 0;
    }
    let bits = if meta.uid == creds.uid {
        (meta.mode >> 6) & 7
    } else if meta.gid == creds.gid || creds.groups.contains(&meta.gid) {
        (meta.mode >> 3) & 7
    } else {
        meta.mode & 7
    };
    bits & want != want
}

/// Where a refused call was refused: the first directory on the way the
/// caller may not search, else the target itself; with its owner and mode
/// in the root and on the host.
pub(super) fn permission(root: &Root, host: &Host, call: &FailedCall) -> Option<Diagnosis> {
    let in_root = |p: &Path, follow: bool| {
        let meta = if follow { root.stat(p) } else { root.lstat(p) };
        meta.ok().flatten().map(|m| Owner::of(&m))
    };
    let mut blocked_at = call.path.clone();
    if let Some(creds) = &call.creds {
        // The directories on the way as named, then on the way to where
        // the symlinks lead (`locale.alias -> /etc/locale.alias`).
        let resolved = resolve_in_root(root, &call.path, call.follow);
        let mut dirs: Vec<PathBuf> = Vec::new();
        for p in std::iter::once(&call.path).chain(resolved.as_ref()) {
            let mut ancestors: Vec<&Path> = p.ancestors().skip(1).collect();
            ancestors.reverse();
            dirs.extend(ancestors.into_iter().map(Path::to_path_buf));
        }
        let blocked = dirs.into_iter().find(|dir| {
            in_root(dir, true).is_some_and(|o| o.kind == Kind::Dir && lacks(&o, creds, 1))
        });
        if let Some(dir) = blocked {
            blocked_at = dir;
        }
    }
    let follow = blocked_at != call.path || call.follow == Follow::Yes;
    let jail = in_root(&blocked_at, follow);
    // A refusal of something the root lacks is a miss, not a permission
    // problem of the root.
    jail?;
    // Through `host`, not `std::fs`: rootless, `stat` shows owners through
    // the namespace's map (the host's root as 65534), `host` the host's.
    let host_path = host.path_of(&blocked_at);
    let target = if follow {
        std::fs::canonicalize(&host_path).ok()
    } else {
        Some(host_path)
    };
    let host = target
        .and_then(|p| {
            p.strip_prefix(host.base())
                .ok()
                .map(|rel| Path::new("/").join(rel))
        })
        .and_then(|jail_path| host.lstat(&jail_path).ok().flatten())
        .map(|m| Owner {
            kind: m.kind,
            uid: m.uid,
            gid: m.gid,
            mode: m.mode & 0o7777,
        });
    Some(Diagnosis::PermissionDenied {
        path: call.path.clone(),
        blocked_at,
        errno: call.errno,
        who: call.who.clone(),
        creds: call.creds.clone(),
        jail,
        host,
    })
}
