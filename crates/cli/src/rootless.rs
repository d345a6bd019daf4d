//! Rootless: `run`, `update`, `verify`, `doctor` and `up` for a caller who
//! is not root.
//!
//! At its start, while it still has one thread (unshare(2) refuses
//! `CLONE_NEWUSER` to a threaded process), jailtrace enters a user
//! namespace and a mount namespace of its own, in which it is root: the
//! caller's uid and gid are mapped to 0 and, when `/etc/subuid` and
//! `/etc/subgid` give the caller a range and `newuidmap`/`newgidmap` are
//! installed, ids 1.. are mapped to that range (podman's rootless setup;
//! newuidmap(1)), so owners up to the range's size and `--user` work.
//! Without them only 0 is mapped: `--user` fails and every file in the root
//! belongs to the caller. Mounts are made private, so nothing mounted for
//! the runs (/proc, binds, device nodes) reaches the host. Everything above
//! runs unchanged, as root would: one code path, one manifest.
//!
//! Two things a namespace changes are put back here:
//! - `stat` in the namespace reports owners through its id map (the host's
//!   root as 65534, the caller as root). A helper started *before* the
//!   namespace, so outside it, answers `lstat` by path with the host's
//!   owners ([`jailtrace_rootfs::owners`]); the manifest records those.
//! - The helper also runs `newuidmap`/`newgidmap` on jailtrace's pid: they
//!   must be run from outside the namespace they map.
//!
//! Where user namespaces are refused (`user.max_user_namespaces` 0,
//! Debian's `kernel.unprivileged_userns_clone` 0, Ubuntu's AppArmor
//! restriction), [`enter`] fails with one error that names the setting and
//! the alternatives, before anything is written.
//!
//! The helper (a fork of jailtrace made before the namespace) exits when
//! jailtrace's end of the socket closes, that is,
//! when jailtrace exits. It runs in a process group of its own, so a Ctrl-C
//! for jailtrace does not take it away in the middle of a run.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::Context;
use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_setaffinity, unshare, CloneFlags, CpuSet};
use nix::unistd::{getgid, getuid, Pid, Uid, User};

/// How the namespace maps ids, for the summary and the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entered {
    /// The caller's uid and gid on the host (root in the namespace).
    pub uid: u32,
    pub gid: u32,
    /// How many ids above 0 are mapped to the caller's subordinate ranges
    /// (0 without newuidmap/newgidmap or a range).
    pub subordinate: u32,
    /// Why no subordinate ids are mapped, when none are.
    pub subordinate_note: Option<String>,
}

impl Entered {
    /// What the manifest records of it.
    pub fn manifest_record(&self) -> jailtrace_manifest::Rootless {
        jailtrace_manifest::Rootless {
            uid: self.uid,
            gid: self.gid,
            subordinate_ids: self.subordinate,
        }
    }
}

static ENTERED: std::sync::OnceLock<Entered> = std::sync::OnceLock::new();

/// How [`enter`] set up the namespace, when it did.
pub fn entered() -> Option<&'static Entered> {
    ENTERED.get()
}

/// Whether this command should enter the namespaces: `run`, `update`,
/// `verify`, `doctor` and `up`, when the caller is not root or asked with
/// `--rootless`.
pub fn wanted(command: &crate::cli::Command, asked: bool) -> bool {
    mounts_in_root(command) && (asked || !nix::unistd::geteuid().is_root())
}

/// Whether `command` runs programs in a root, mounting there for them:
/// `run`, `update`, `verify`, `doctor` and `up`.
pub fn mounts_in_root(command: &crate::cli::Command) -> bool {
    use crate::cli::Command as C;
    matches!(
        command,
        C::Run(_) | C::Update(_) | C::Verify(_) | C::Doctor(_) | C::Up(_)
    )
}

/// Enters a new user and mount namespace (see the module comment). Must be
/// called while the process has one thread.
///
/// It does not wait for the maps: the helper looks up the caller's
/// subordinate ranges and runs `newuidmap`/`newgidmap` while jailtrace
/// goes on with what needs no ids (parsing, finding the program, and in
/// an empty root the files owned by root: see [`defers_ids`]), and
/// [`settle`] waits for them. When the helper finds no ranges, [`settle`]
/// maps only the caller.
pub fn enter() -> anyhow::Result<()> {
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    let helper = Helper::start().context("cannot start jailtrace's rootless helper")?;
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(refused)?;
    let mut entered = Entered {
        uid,
        gid,
        subordinate: 0,
        subordinate_note: None,
    };
    // Root asking for --rootless has no subordinate ranges to map.
    let waiting = uid != 0
        && match helper.send_map(std::process::id()) {
            Ok(()) => true,
            Err(e) => {
                entered.subordinate_note = Some(format!("newuidmap/newgidmap failed: {e}"));
                false
            }
        };
    if !waiting {
        map_caller_only(&entered)?;
    }
    // Making mounts private needs CAP_SYS_ADMIN in the new namespace, which
    // the process has from unshare(2) on, mapped or not.
    crate::mountns::make_private()
        .map_err(|e| refused_after(e, "make mounts private in the new mount namespace"))?;
    *helper
        .pending
        .lock()
        .map_err(|_| anyhow::anyhow!("rootless helper lock poisoned"))? = Some((entered, waiting));
    let helper = HELPER.get_or_init(|| helper);
    jailtrace_rootfs::owners::install(Box::new(helper));
    Ok(())
}

/// Waits until the namespace's ids are mapped (see [`enter`]); at once when
/// they are, or when not rootless. What asks who jailtrace is (getuid(2)
/// says 65534 until then), and what gives or reads owners in a root, comes
/// after it.
pub fn settle() -> anyhow::Result<()> {
    match HELPER.get() {
        Some(helper) => helper.settle(),
        None => Ok(()),
    }
}

/// Whether a rootless `run` into `root` may go on before the namespace's
/// ids are mapped: `root` is empty and not setgid, so everything in it
/// will have been made by this process, owned by the caller, whom the map
/// makes root (`jailtrace_rootfs::owners` then leaves owner 0 as it is
/// and waits for the map for any other). Filling a root that holds files
/// of other ids, or wiping it, needs the map.
pub fn defers_ids(root: &Path) -> bool {
    HELPER.get().is_some_and(|h| !h.settled())
        && fs::metadata(root).is_ok_and(|m| m.mode() & nix::libc::S_ISGID == 0)
        && fs::read_dir(root).is_ok_and(|mut entries| entries.next().is_none())
}

/// jailtrace's uid once the namespace's ids are mapped: root in it when
/// rootless, else its own.
pub fn uid() -> Uid {
    if HELPER.get().is_some() {
        Uid::from_raw(0)
    } else {
        getuid()
    }
}

/// Only the caller: setgroups must be denied before an unprivileged
/// process may write gid_map (user_namespaces(7)).
fn map_caller_only(entered: &Entered) -> anyhow::Result<()> {
    write_proc("/proc/self/setgroups", "deny")?;
    write_proc("/proc/self/uid_map", &format!("0 {} 1", entered.uid))?;
    write_proc("/proc/self/gid_map", &format!("0 {} 1", entered.gid))
}

fn write_proc(path: &str, text: &str) -> anyhow::Result<()> {
    fs::write(path, text).map_err(|e| {
        let errno = Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO));
        refused_after(errno, &format!("write {text:?} to {path}"))
    })
}

/// The caller's first subordinate range (start, count) in `file`
/// (subuid(5): `name-or-id:start:count` lines).
fn subordinate(file: &str, id: u32) -> Option<(u32, u32)> {
    let text = fs::read_to_string(file).ok()?;
    let name = if file.ends_with("subuid") {
        User::from_uid(Uid::from_raw(id))
            .ok()
            .flatten()
            .map(|u| u.name)
    } else {
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(id))
            .ok()
            .flatten()
            .map(|g| g.name)
    };
    text.lines().find_map(|line| {
        let mut parts = line.trim().split(':');
        let (who, start, count) = (parts.next()?, parts.next()?, parts.next()?);
        let mine = who == id.to_string() || name.as_deref() == Some(who);
        let (start, count) = (start.parse().ok()?, count.parse::<u32>().ok()?);
        (mine && count > 0).then_some((start, count))
    })
}

/// The setting that refuses user namespaces on this machine, read from
/// /proc/sys, with how to allow them.
fn refusing_setting() -> Option<String> {
    let read = |p: &str| fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some(
            "the sysctl user.max_user_namespaces is 0 (root can allow them with \
             `sysctl -w user.max_user_namespaces=15000`)"
                .into(),
        );
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some(
            "the sysctl kernel.unprivileged_userns_clone is 0 (root can allow them with \
             `sysctl -w kernel.unprivileged_userns_clone=1`)"
                .into(),
        );
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some(
            "AppArmor restricts unprivileged user namespaces \
             (kernel.apparmor_restrict_unprivileged_userns is 1; root can allow jailtrace \
             with an AppArmor profile granting `userns,`, or set the sysctl to 0)"
                .into(),
        );
    }
    None
}

const REFUSED: &str = "cannot work without root: this machine refuses the user namespace \
                       jailtrace needs for that; run jailtrace as root, or have root run \
                       `jailtrace run` and hand you the manifest";

const REFUSED_AS_ROOT: &str = "cannot work --rootless: this machine refuses the user namespace \
                               jailtrace needs for that; run it as root without --rootless";

/// The first line of a refusal: what the caller can do instead. Root is
/// uid 0 that is the host's root too (`/proc/self/uid_map` maps 0 to 0),
/// not an ordinary user mapped to 0 in a namespace of their own.
fn refused_line() -> &'static str {
    let host_root = getuid().is_root()
        && fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| {
            map.lines().any(|line| {
                let mut f = line.split_whitespace();
                (f.next(), f.next()) == (Some("0"), Some("0"))
            })
        });
    if host_root {
        REFUSED_AS_ROOT
    } else {
        REFUSED
    }
}

/// The pid namespace probe started by [`probe_pid_namespace_meanwhile`].
static PID_NAMESPACE_PROBE: Mutex<Option<std::thread::JoinHandle<Result<(), Errno>>>> =
    Mutex::new(None);

/// Starts [`check_pid_namespace`]'s probe on a thread of its own, for a
/// caller with other work to do first: the probe's child usually takes
/// 0.1 ms, but one start in four or five it took 1 to 4 ms here. The
/// thread runs at the least priority, so it does not take the caller's
/// CPU.
pub fn probe_pid_namespace_meanwhile() {
    let probe = std::thread::Builder::new()
        .name("jailtrace-pidns".into())
        .spawn(|| {
            jailtrace_tracer::background();
            jailtrace_tracer::ns::probe_pid_namespace()
        });
    if let (Ok(probe), Ok(mut slot)) = (probe, PID_NAMESPACE_PROBE.lock()) {
        *slot = Some(probe);
    }
}

/// Fails with one clear error, before anything is written, when this
/// process cannot create the pid namespace a run gives its program (root
/// or not: a container without CAP_SYS_ADMIN, `user.max_pid_namespaces`
/// 0, a seccomp filter). Takes the result of
/// [`probe_pid_namespace_meanwhile`] when it was called, else probes now.
pub fn check_pid_namespace() -> anyhow::Result<()> {
    let started = PID_NAMESPACE_PROBE.lock().ok().and_then(|mut p| p.take());
    let probed = match started.map(std::thread::JoinHandle::join) {
        Some(Ok(result)) => result,
        _ => jailtrace_tracer::ns::probe_pid_namespace(),
    };
    let Err(e) = probed else {
        return Ok(());
    };
    let read = |p: &str| fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    let why = if read("/proc/sys/user/max_pid_namespaces").as_deref() == Some("0") {
        "the sysctl user.max_pid_namespaces is 0 (root can allow them with \
         `sysctl -w user.max_pid_namespaces=15000`)"
            .to_string()
    } else {
        match e {
            Errno::ENOSPC => {
                "the limit of pid namespaces (user.max_pid_namespaces) is reached".into()
            }
            Errno::EPERM => "the system refuses them to this process (no CAP_SYS_ADMIN, a seccomp \
                             filter or a security module, as in some containers)"
                .into(),
            _ => "unshare(2) failed".into(),
        }
    };
    Err(anyhow::Error::new(io::Error::from(e))
        .context("unshare(CLONE_NEWPID)")
        .context(why)
        .context(
            "cannot give the program a pid namespace of its own: this machine refuses it; \
             run with --no-pid-ns (the program then sees the host's processes in /proc), \
             or allow pid namespaces",
        ))
}

/// The error for an `unshare` that failed: what refused, then the call.
fn refused(e: Errno) -> anyhow::Error {
    let why = refusing_setting().unwrap_or_else(|| match e {
        Errno::ENOSPC => {
            "the limit of user namespaces (user.max_user_namespaces) is reached".into()
        }
        Errno::EPERM => "the system refuses them to this process (a seccomp filter or a \
                         security module, as in some containers)"
            .into(),
        _ => "unshare(2) failed".into(),
    });
    anyhow::Error::new(io::Error::from(e))
        .context("unshare(CLONE_NEWUSER | CLONE_NEWNS)")
        .context(why)
        .context(refused_line())
}

/// The error for a step after `unshare` that failed (AppArmor lets the
/// namespace be made but takes its capabilities away).
fn refused_after(e: Errno, what: &str) -> anyhow::Error {
    let error = anyhow::Error::new(io::Error::from(e)).context(format!("cannot {what}"));
    match refusing_setting() {
        Some(why) => error.context(why).context(refused_line()),
        None => error.context(refused_line()),
    }
}

static HELPER: std::sync::OnceLock<Helper> = std::sync::OnceLock::new();

/// jailtrace's end of the helper's socket.
#[derive(Debug)]
struct Helper {
    sock: Mutex<UnixStream>,
    /// Where the reply to the map request comes, apart from the lookups'
    /// replies, so that lookups are answered while the maps are made.
    maps: Mutex<UnixStream>,
    /// Until [`settle`]: how the namespace is entered, and whether the
    /// reply to the map request is still to be read.
    pending: Mutex<Option<(Entered, bool)>>,
    /// Whether [`settle`] is done.
    settled: std::sync::atomic::AtomicBool,
    /// The helper's parent, which exits at once, to be reaped in
    /// [`settle`] (before the tracer's `waitpid(-1)` could).
    detached: Mutex<Option<jailtrace_tracer::ns::Detached>>,
    /// The helper's pid (asked once) and the CPUs it was last given.
    pid: std::sync::OnceLock<Option<Pid>>,
    cpus: Mutex<Option<CpuSet>>,
}

impl Helper {
    /// Starts the helper: a fork of this process (no exec, so it costs a
    /// fraction of a millisecond), not as a child: the tracer's
    /// `waitpid(-1)` ends a run at `ECHILD`, which a living child would
    /// hold off.
    fn start() -> io::Result<Helper> {
        use std::os::fd::AsRawFd;
        let (mine, theirs) = UnixStream::pair()?;
        let (my_maps, their_maps) = UnixStream::pair()?;
        let close = [mine.as_raw_fd(), my_maps.as_raw_fd()];
        let detached =
            jailtrace_tracer::ns::spawn_detached(&close, move || match serve(theirs, their_maps) {
                Ok(()) => 0,
                Err(_) => 1,
            })
            .map_err(io::Error::from)?;
        Ok(Helper {
            sock: Mutex::new(mine),
            maps: Mutex::new(my_maps),
            pending: Mutex::new(None),
            settled: std::sync::atomic::AtomicBool::new(false),
            detached: Mutex::new(Some(detached)),
            pid: std::sync::OnceLock::new(),
            cpus: Mutex::new(None),
        })
    }

    /// One request and its reply.
    fn ask(&self, op: u8, body: &[u8]) -> io::Result<(i32, Vec<u8>)> {
        let mut sock = self
            .sock
            .lock()
            .map_err(|_| io::Error::other("rootless helper lock poisoned"))?;
        self.follow_cpus(&mut sock);
        send(&mut *sock, op, body)?;
        let (status, reply) = receive(&mut *sock)?;
        Ok((i32::from_le_bytes(status), reply))
    }

    /// Gives the helper the CPUs jailtrace has now. While the tracer
    /// shares one CPU with the program (`jailtrace_tracer`'s `pin.rs`), a
    /// helper left on another CPU would cost a wake-up of that idle CPU per
    /// lookup (a rootless `find /usr/share` took 1.15 s instead of 0.88).
    fn follow_cpus(&self, sock: &mut UnixStream) {
        let Ok(mine) = sched_getaffinity(Pid::from_raw(0)) else {
            return;
        };
        let Ok(mut given) = self.cpus.lock() else {
            return;
        };
        if *given == Some(mine) {
            return;
        }
        let pid = *self.pid.get_or_init(|| {
            send(sock, b'P', &[]).ok()?;
            match receive(sock).ok()? {
                (status, body) if i32::from_le_bytes(status) == 0 => {
                    let raw = i32::from_le_bytes(body.get(..4)?.try_into().ok()?);
                    Some(Pid::from_raw(raw))
                }
                _ => None,
            }
        });
        if let Some(pid) = pid {
            let _ = sched_setaffinity(pid, &mine);
        }
        *given = Some(mine);
    }

    /// Asks the helper to map the namespace of `pid` for the caller and
    /// their subordinate ranges; [`Helper::settle`] reads the reply.
    fn send_map(&self, pid: u32) -> io::Result<()> {
        let mut sock = self
            .sock
            .lock()
            .map_err(|_| io::Error::other("rootless helper lock poisoned"))?;
        send(&mut *sock, b'M', pid.to_string().as_bytes())
    }

    /// Whether [`Helper::settle`] is done.
    fn settled(&self) -> bool {
        self.settled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Reaps the helper's parent and reads the reply to
    /// [`Helper::send_map`], once; when no subordinate ids were mapped,
    /// maps only the caller.
    fn settle(&self) -> anyhow::Result<()> {
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| anyhow::anyhow!("rootless helper lock poisoned"))?;
        let Some((mut entered, waiting)) = pending.take() else {
            return Ok(());
        };
        if let Some(mut detached) = self.detached.lock().ok().and_then(|mut d| d.take()) {
            detached
                .reap()
                .map_err(io::Error::from)
                .context("cannot start jailtrace's rootless helper")?;
        }
        if waiting {
            let reply = {
                let mut maps = self
                    .maps
                    .lock()
                    .map_err(|_| anyhow::anyhow!("rootless helper lock poisoned"))?;
                receive(&mut *maps)
            };
            match reply {
                Ok((status, count)) if i32::from_le_bytes(status) == 0 && count.len() == 4 => {
                    entered.subordinate =
                        u32::from_le_bytes([count[0], count[1], count[2], count[3]]);
                }
                Ok((_, message)) => {
                    entered.subordinate_note = Some(String::from_utf8_lossy(&message).into_owned());
                    map_caller_only(&entered)?;
                }
                Err(e) => {
                    entered.subordinate_note = Some(format!("newuidmap/newgidmap failed: {e}"));
                    map_caller_only(&entered)?;
                }
            }
        }
        let _ = ENTERED.set(entered);
        self.settled
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }
}

impl jailtrace_rootfs::owners::OwnerSource for &'static Helper {
    fn owner(&self, path: &Path) -> io::Result<(u32, u32)> {
        let (status, reply) = self.ask(b'S', path.as_os_str().as_bytes())?;
        if status != 0 {
            return Err(io::Error::from_raw_os_error(status));
        }
        match reply[..] {
            [u0, u1, u2, u3, g0, g1, g2, g3] => Ok((
                u32::from_le_bytes([u0, u1, u2, u3]),
                u32::from_le_bytes([g0, g1, g2, g3]),
            )),
            _ => Err(io::Error::other("short reply from the rootless helper")),
        }
    }

    fn walk(&self, paths: &[&Path]) -> io::Result<Vec<jailtrace_rootfs::owners::Owned>> {
        let body = paths
            .iter()
            .map(|p| p.as_os_str().as_bytes())
            .collect::<Vec<_>>()
            .join(&0);
        let (status, reply) = self.ask(b'W', &body)?;
        if status != 0 {
            return Err(io::Error::from_raw_os_error(status));
        }
        Ok(reply.chunks_exact(WALKED).map(walked).collect())
    }

    fn mapped(&self) -> bool {
        self.settled()
    }

    fn settle(&self) -> io::Result<()> {
        Helper::settle(self).map_err(|e| io::Error::other(format!("{e:#}")))
    }
}

/// The size of one inode's record in a walk reply (see [`walk`]).
const WALKED: usize = 40;

/// One record of a walk reply.
fn walked(b: &[u8]) -> jailtrace_rootfs::owners::Owned {
    let word = |i: usize| u64::from_le_bytes(std::array::from_fn(|k| b[i + k]));
    let half = |i: usize| u32::from_le_bytes(std::array::from_fn(|k| b[i + k]));
    jailtrace_rootfs::owners::Owned {
        key: (word(0), word(8), word(16) as i64, word(24) as i64),
        uid: half(32),
        gid: half(36),
    }
}

/// A frame: one byte (request kind, or nothing for a reply's status
/// bytes), a little-endian u32 length, the body.
fn send(w: &mut impl Write, op: u8, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("frame too long"))?;
    let mut frame = Vec::with_capacity(body.len() + 5);
    frame.push(op);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(body);
    w.write_all(&frame)
}

/// A reply, read with as few calls as it takes (one, for an owner): the
/// helper answers one request at a time, so nothing follows the frame.
fn receive(r: &mut impl Read) -> io::Result<([u8; 4], Vec<u8>)> {
    let mut buf = vec![0u8; 64];
    let mut have = 0;
    while have < 8 {
        match r.read(&mut buf[have..])? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => have += n,
        }
    }
    let status = [buf[0], buf[1], buf[2], buf[3]];
    let len = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    buf.resize(8 + len.max(have - 8), 0);
    if have < 8 + len {
        r.read_exact(&mut buf[have..8 + len])?;
    }
    buf.truncate(8 + len);
    Ok((status, buf.split_off(8)))
}

fn reply(w: &mut impl Write, status: i32, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("frame too long"))?;
    let mut frame = Vec::with_capacity(body.len() + 8);
    frame.extend_from_slice(&status.to_le_bytes());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(body);
    w.write_all(&frame)
}

/// The helper's loop, in the forked process outside the namespace. Ends
/// quietly when jailtrace closes its end of `sock`. The map request is
/// answered on `maps`, from a thread, while the loop goes on answering
/// lookups.
fn serve(sock: UnixStream, maps: UnixStream) -> io::Result<()> {
    // Looked up at once, while jailtrace enters the namespace: the map
    // request then only has the tools to run.
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    let mut maps = Some(maps);
    let ranges = Ranges {
        uid,
        gid,
        subuid: subordinate("/etc/subuid", uid),
        subgid: subordinate("/etc/subgid", gid),
    };
    let mut listed = HashSet::new();
    let mut requests = io::BufReader::new(sock.try_clone()?);
    let mut sock = sock;
    loop {
        let mut head = [0u8; 5];
        if requests.read_exact(&mut head).is_err() {
            return Ok(());
        }
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len];
        requests.read_exact(&mut body)?;
        match head[0] {
            b'S' => {
                let path = PathBuf::from(std::ffi::OsStr::from_bytes(&body));
                match fs::symlink_metadata(&path) {
                    Ok(m) => {
                        let mut ids = m.uid().to_le_bytes().to_vec();
                        ids.extend_from_slice(&m.gid().to_le_bytes());
                        reply(&mut sock, 0, &ids)?;
                    }
                    Err(e) => reply(&mut sock, e.raw_os_error().unwrap_or(nix::libc::EIO), &[])?,
                }
            }
            b'P' => reply(&mut sock, 0, &std::process::id().to_le_bytes())?,
            b'W' => {
                // Every plan starts at `/`: its owner comes once per reply.
                let mut out = Vec::new();
                if let Ok(m) = fs::symlink_metadata("/") {
                    record(&mut out, &m);
                }
                for path in body.split(|&b| b == 0) {
                    walk(
                        Path::new(std::ffi::OsStr::from_bytes(path)),
                        &mut out,
                        &mut listed,
                    );
                }
                reply(&mut sock, 0, &out)?;
            }
            b'M' => {
                let Some(mut maps) = maps.take() else {
                    continue;
                };
                std::thread::spawn(move || {
                    let _ = match map(&String::from_utf8_lossy(&body), &ranges) {
                        Ok(count) => reply(&mut maps, 0, &count.to_le_bytes()),
                        Err(message) => reply(&mut maps, 1, message.as_bytes()),
                    };
                });
            }
            _ => reply(&mut sock, nix::libc::EINVAL, &[])?,
        }
    }
}

/// The helper's answer to a walk request, for one of its paths, added to
/// `out`: the owners of every inode met while resolving `path` as the
/// kernel would (each component, every symlink and what it leads to, at
/// most 40 links), 40 bytes each: device, inode, ctime seconds and
/// nanoseconds, uid, gid ([`WALKED`]). Stops where a component is missing.
/// `listed` holds the directories (device, inode) whose entries a walk read
/// already. (`/` itself is in every reply once, from [`serve`].)
fn walk(path: &Path, out: &mut Vec<u8>, listed: &mut HashSet<(u64, u64)>) {
    let mut walk = jailtrace_rootfs::PathWalk::new(path);
    while let Some(next) = walk.next_path() {
        let Ok(m) = fs::symlink_metadata(&next) else {
            break;
        };
        record(out, &m);
        if m.file_type().is_symlink() {
            match fs::read_link(&next) {
                Ok(target) if walk.follow(&target) => {}
                _ => break,
            }
        } else if m.is_dir() {
            walk.enter(next);
        }
    }
    // The neighbours in a small directory: a program that reads one file
    // of a locale or a zone directory reads its siblings next. A directory
    // bigger than one block is not read at all: listing it fills libc's
    // 32 KiB buffer (a walk ending in /usr/bin took 300 µs instead of 20).
    // Nor is one read before (`listed`): /etc, say, fits in a block but
    // holds too many names, and every walk ending there read it again.
    let small = fs::metadata(walk.dir())
        .is_ok_and(|m| m.len() <= SMALL_DIR && listed.insert((m.dev(), m.ino())));
    let names: Vec<_> = small
        .then(|| fs::read_dir(walk.dir()))
        .into_iter()
        .flatten()
        .flatten()
        .take(WALK_NEIGHBOURS + 1)
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    if names.len() <= WALK_NEIGHBOURS {
        for name in names {
            if let Ok(m) = fs::symlink_metadata(name) {
                record(out, &m);
            }
        }
    }
}

/// Adds the record of the inode `m` to a walk reply (see [`walk`]).
fn record(out: &mut Vec<u8>, m: &fs::Metadata) {
    for n in [m.dev(), m.ino()] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    for n in [m.ctime(), m.ctime_nsec()] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&m.uid().to_le_bytes());
    out.extend_from_slice(&m.gid().to_le_bytes());
}

/// How many entries a directory may have for a walk to report them all.
const WALK_NEIGHBOURS: usize = 32;

/// The largest directory (`st_size`) a walk lists: one ext4 block, which
/// holds a few dozen names.
const SMALL_DIR: u64 = 4096;

/// The caller's ids and their subordinate ranges (start, count).
#[derive(Clone, Copy)]
struct Ranges {
    uid: u32,
    gid: u32,
    subuid: Option<(u32, u32)>,
    subgid: Option<(u32, u32)>,
}

/// The helper's answer to a map request (`PID`): maps the user namespace
/// of PID with the caller's subordinate `ranges`, and returns how many ids
/// above 0 it mapped; the reason, when it mapped none.
fn map(request: &str, ranges: &Ranges) -> Result<u32, String> {
    let pid: u32 = request
        .trim()
        .parse()
        .map_err(|_| "malformed map request".to_string())?;
    let Ranges { uid, gid, .. } = *ranges;
    let (Some((ustart, ucount)), Some((gstart, gcount))) = (ranges.subuid, ranges.subgid) else {
        return Err(format!(
            "no range for uid {uid} in /etc/subuid and gid {gid} in /etc/subgid"
        ));
    };
    let count = ucount.min(gcount);
    run_maps(
        &format!("{pid} 0 {uid} 1 1 {ustart} {count}"),
        &format!("{pid} 0 {gid} 1 1 {gstart} {count}"),
    )
    .map_err(|e| format!("newuidmap/newgidmap failed: {e}"))?;
    Ok(count)
}

/// Runs newuidmap and newgidmap, side by side (each is a setuid program
/// that reads its file; they do not depend on each other).
fn run_maps(uids: &str, gids: &str) -> Result<(), String> {
    let start = |tool: &str, args: &str| {
        Command::new(system_program(tool))
            .args(args.split_whitespace())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{tool}: {e}"))
    };
    let children = [("newuidmap", uids), ("newgidmap", gids)]
        .map(|(tool, args)| (tool, args, start(tool, args)));
    for (tool, args, child) in children {
        let out = child?
            .wait_with_output()
            .map_err(|e| format!("{tool}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{tool} {args}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// Where the system keeps `tool` (shadow's `newuidmap` is in `/usr/bin`),
/// else `tool` itself for a search of `PATH`: the caller's `PATH` may list
/// many directories first, and each miss is a failed exec in the critical
/// path of every rootless start.
fn system_program(tool: &str) -> PathBuf {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(tool))
}

/// Rootless, a device node in a root is an empty file (mknod is refused in
/// a user namespace) onto which the run that placed it bind-mounted the
/// host's node; that mount ended with the run. Binds the host's nodes onto
/// them again for this command (verify, doctor, a run into the root): the
/// `manifest`'s device entries, or without one every empty file in the
/// root's `/dev` whose host path is a character device. Does nothing when
/// not rootless. A node that cannot be bound is a warning: what follows
/// reports the file as it is.
pub fn bind_devices(manifest: Option<&jailtrace_manifest::Manifest>, root: &Path) {
    use jailtrace_manifest::EntryKind;
    use jailtrace_rootfs::{owners, Attrs, Host, Kind, Root};
    if !owners::rootless() {
        return;
    }
    let paths: Vec<PathBuf> = match manifest {
        Some(m) => m
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Device)
            .map(|e| e.path.as_path().to_path_buf())
            .collect(),
        None => fs::read_dir(root.join("dev"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| Path::new("/dev").join(e.file_name()))
            .collect(),
    };
    if paths.is_empty() {
        return;
    }
    let Ok(mut jail) = Root::open(root) else {
        return;
    };
    let host = Host::system();
    for path in paths {
        let in_root = jail.lstat(&path).ok().flatten();
        let on_host = host.lstat(&path).ok().flatten();
        let (Some(r), Some(h)) = (in_root, on_host) else {
            continue;
        };
        if r.kind != Kind::File || r.size != 0 || h.kind != Kind::CharDevice {
            continue;
        }
        let attrs = Attrs {
            mode: h.mode,
            uid: h.uid,
            gid: h.gid,
            mtime: None,
        };
        if let Err(e) = jail.bind_device(&path, &host, &attrs, h.rdev) {
            errln!(
                "warning: cannot bind the host's {} into the root: {e}",
                path.display()
            );
        }
    }
}

/// What a person should hear about a rootless run, one line each: what
/// differs between the root made here and the one the manifest describes.
pub fn summary(manifest: &jailtrace_manifest::Manifest) -> Vec<String> {
    let Some(entered) = entered() else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "made as uid {} in a user namespace ({}); the manifest records the host's owners and \
         devices, as a root run does",
        entered.uid,
        match entered.subordinate {
            0 => "only your ids mapped".to_string(),
            n => format!("{n} subordinate ids mapped"),
        }
    )];
    if let Some(note) = &entered.subordinate_note {
        lines.push(format!("no subordinate ids: {note}"));
    }
    let unowned = jailtrace_rootfs::owners::unowned();
    if unowned.files > 0 {
        let ids = |set: &std::collections::BTreeSet<u32>| {
            set.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        lines.push(format!(
            "{} files in the root are yours instead of uid {} / gid {} (unmapped in the namespace); \
             `jailtrace build --manifest M` as root gives the owners",
            unowned.files,
            ids(&unowned.uids),
            ids(&unowned.gids)
        ));
    }
    let devices = manifest
        .entries
        .iter()
        .filter(|e| e.kind == jailtrace_manifest::EntryKind::Device)
        .count();
    if devices > 0 {
        lines.push(format!(
            "{devices} device nodes are empty files in the root (the host's nodes were \
             bind-mounted on them for the runs); `jailtrace build` as root makes real ones"
        ));
    }
    lines
}

/// [`summary`] for `--json`: `null` when not rootless.
pub fn summary_json(manifest: &jailtrace_manifest::Manifest) -> serde_json::Value {
    let Some(entered) = entered() else {
        return serde_json::Value::Null;
    };
    let unowned = jailtrace_rootfs::owners::unowned();
    serde_json::json!({
        "uid": entered.uid,
        "gid": entered.gid,
        "subordinate_ids": entered.subordinate,
        "unowned_files": unowned.files,
        "unowned_uids": unowned.uids,
        "unowned_gids": unowned.gids,
        "devices_bound": manifest
            .entries
            .iter()
            .filter(|e| e.kind == jailtrace_manifest::EntryKind::Device)
            .count(),
        "lines": summary(manifest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> jailtrace_rootfs::owners::Key {
        let m = fs::symlink_metadata(path).unwrap();
        (m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
    }

    #[test]
    fn a_walk_reports_every_inode_on_the_way_through_its_symlinks() {
        // /bin/sh: on Debian /bin is a link to usr/bin and sh one to dash.
        let mut out = Vec::new();
        walk(Path::new("/bin/sh"), &mut out, &mut HashSet::new());
        let got: Vec<_> = out.chunks_exact(WALKED).map(walked).collect();
        let real = fs::canonicalize("/bin/sh").unwrap();
        let mut wanted = vec!["/bin", "/bin/sh", real.to_str().unwrap()];
        wanted.extend(real.parent().unwrap().ancestors().filter_map(Path::to_str));
        for path in wanted.into_iter().filter(|p| *p != "/") {
            let m = fs::symlink_metadata(path).unwrap();
            let found = got.iter().find(|o| o.key == key(path));
            assert_eq!(
                found.map(|o| (o.uid, o.gid)),
                Some((m.uid(), m.gid())),
                "{path} in the walk of /bin/sh"
            );
        }
    }

    #[test]
    fn a_walk_stops_at_a_missing_component_and_lists_a_small_directory() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b", "c"] {
            fs::write(dir.path().join(name), name).unwrap();
        }
        let mut listed = HashSet::new();
        let walked_to = |path: &Path, listed: &mut HashSet<(u64, u64)>| {
            let mut out = Vec::new();
            walk(path, &mut out, listed);
            out.chunks_exact(WALKED).map(walked).collect::<Vec<_>>()
        };
        let got = walked_to(&dir.path().join("missing/deeper"), &mut listed);
        let has = |got: &[jailtrace_rootfs::owners::Owned], name: &str| {
            let path = dir.path().join(name);
            got.iter().any(|o| o.key == key(path.to_str().unwrap()))
        };
        for name in ["a", "b", "c"] {
            assert!(
                has(&got, name),
                "{name} is a neighbour of the missing component"
            );
        }
        assert!(got
            .iter()
            .any(|o| o.key == key(dir.path().to_str().unwrap())));
        // A directory is listed once: the next walk to `a` reports `a`,
        // not its neighbours again.
        let again = walked_to(&dir.path().join("a"), &mut listed);
        assert!(has(&again, "a") && !has(&again, "b") && !has(&again, "c"));
    }
}
