//! Owners and device nodes when jailtrace runs in a user namespace
//! (rootless).
//!
//! In a user namespace `stat` reports owners through the namespace's id
//! map (user_namespaces(7), "Interaction with system calls"): the caller's
//! own files look like root's, and every id the map lacks (the host's root
//! among them) comes back as the overflow id 65534. The manifest must record
//! what the host has, as a root run does, so a rootless jailtrace installs
//! an [`OwnerSource`] (a helper outside the namespace that `lstat`s the
//! paths it is sent) and [`crate::Host::system`] reports owners from
//! it. Nothing else changes: steps carry the host's owners, and entries are
//! made from steps.
//!
//! What the namespace cannot do is absorbed here, never hidden from the
//! manifest:
//! - giving a file to an id its map lacks (`chown` is `EINVAL`): the copy
//!   keeps the owner it can have (the caller, root in the namespace) and the
//!   ids are counted in [`unowned`]; the manifest keeps the host's, which
//!   `jailtrace build` run as root gives;
//! - creating a device node (`mknod` is `EPERM` outside the initial user
//!   namespace): [`crate::Root::apply`] bind-mounts the host's node onto an
//!   empty file instead, for as long as the mount namespace lives.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use nix::errno::Errno;
use nix::sys::stat::FileStat;
use nix::unistd::{Gid, Uid};

/// Where the host's owner of a file comes from, outside the user
/// namespace.
pub trait OwnerSource: Send + Sync + fmt::Debug {
    /// The host's (uid, gid) of the host path `path`, its last component
    /// not followed.
    fn owner(&self, path: &Path) -> io::Result<(u32, u32)>;

    /// The owners of every inode met on the way to each of `paths` as the
    /// kernel resolves it (each component, the symlinks in it and their
    /// targets), in one request: a plan walks those same inodes, so one
    /// round trip answers what would otherwise take one per component.
    /// The default answers nothing, and [`host_owner`] asks per path.
    fn walk(&self, paths: &[&Path]) -> io::Result<Vec<Owned>> {
        let _ = paths;
        Ok(Vec::new())
    }

    /// Whether the namespace's ids are mapped yet. Until they are, the
    /// files jailtrace creates belong to the caller (whom the map makes
    /// root) and `chown` to any id fails (`EINVAL`): see [`chown_with`].
    fn mapped(&self) -> bool {
        true
    }

    /// Waits until the namespace's ids are mapped; at once when they are.
    fn settle(&self) -> io::Result<()> {
        Ok(())
    }
}

/// One inode's host owners, as [`OwnerSource::walk`] reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    /// Device, inode and change time (seconds, nanoseconds) of the inode.
    pub key: Key,
    /// Its host user id.
    pub uid: u32,
    /// Its host group id.
    pub gid: u32,
}

static SOURCE: OnceLock<Box<dyn OwnerSource>> = OnceLock::new();
static UNOWNED: Mutex<Unowned> = Mutex::new(Unowned {
    files: 0,
    uids: BTreeSet::new(),
    gids: BTreeSet::new(),
});

/// Makes this process rootless: [`crate::Host::system`] reports owners from
/// `source`, owners that cannot be given are tolerated, device nodes are
/// bind-mounted. Once per process; `false` when a source was installed
/// already.
pub fn install(source: Box<dyn OwnerSource>) -> bool {
    SOURCE.set(source).is_ok()
}

/// Whether this process runs rootless ([`install`] was called).
pub fn rootless() -> bool {
    SOURCE.get().is_some()
}

/// Waits until the namespace's ids are mapped ([`OwnerSource::settle`]);
/// at once when they are, or when not rootless. Whatever asks who owns
/// what in the root, or runs a program there, comes after it.
pub fn settle() -> io::Result<()> {
    SOURCE.get().map_or(Ok(()), |source| source.settle())
}

/// Files whose owner the namespace could not give, so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unowned {
    /// How many files (directories, symlinks, copies, placeholders).
    pub files: u64,
    /// The host user ids that could not be given.
    pub uids: BTreeSet<u32>,
    /// The host group ids that could not be given.
    pub gids: BTreeSet<u32>,
}

/// The files whose owner could not be given so far in this process.
pub fn unowned() -> Unowned {
    UNOWNED.lock().map(|u| u.clone()).unwrap_or_default()
}

fn note_unowned(uid: Option<u32>, gid: Option<u32>) {
    if let Ok(mut u) = UNOWNED.lock() {
        u.files += 1;
        u.uids.extend(uid);
        u.gids.extend(gid);
    }
}

/// An inode and its change time: device, inode, ctime seconds and
/// nanoseconds.
pub type Key = (u64, u64, i64, i64);

/// The owners asked for so far, by inode and change time: a plan walks
/// every component of every path, so the same directories come up again
/// and again, and a change of owner changes the ctime.
static CACHE: Mutex<Option<HashMap<Key, (u32, u32)>>> = Mutex::new(None);

fn key_of(st: &FileStat) -> Key {
    (st.st_dev, st.st_ino, st.st_ctime, st.st_ctime_nsec)
}

fn cached(key: &Key) -> Option<(u32, u32)> {
    CACHE
        .lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(|c| c.get(key).copied()))
}

fn remember(owned: impl IntoIterator<Item = Owned>) {
    if let Ok(mut c) = CACHE.lock() {
        let c = c.get_or_insert_with(HashMap::new);
        c.extend(owned.into_iter().map(|o| (o.key, (o.uid, o.gid))));
    }
}

/// When rootless, fills the cache with the owners of everything on the
/// way to each of the host paths `paths` in one request
/// ([`OwnerSource::walk`]), leaving out those whose deepest part that
/// exists is cached already. Only a shortcut: [`host_owner`] asks for
/// whatever is still missing.
pub(crate) fn prefetch(paths: &[&Path]) {
    let Some(source) = SOURCE.get() else {
        return;
    };
    let unknown: Vec<&Path> = paths
        .iter()
        .copied()
        .filter(|path| {
            let mut at = *path;
            let st = loop {
                match nix::sys::stat::lstat(at) {
                    Ok(st) => break st,
                    Err(_) => match at.parent() {
                        Some(parent) => at = parent,
                        None => return false,
                    },
                }
            };
            cached(&key_of(&st)).is_none()
        })
        .collect();
    if unknown.is_empty() {
        return;
    }
    if let Ok(owned) = source.walk(&unknown) {
        remember(owned);
    }
}

/// Replaces `uid`/`gid` (as `stat` in the namespace gave them for the
/// host path `path`, of which `st` is the stat) with the host's, when
/// rootless.
pub(crate) fn host_owner(
    path: &Path,
    st: &FileStat,
    uid: &mut u32,
    gid: &mut u32,
) -> Result<(), Errno> {
    let Some(source) = SOURCE.get() else {
        return Ok(());
    };
    let key = key_of(st);
    let (u, g) = match cached(&key) {
        Some(ids) => ids,
        None => {
            let (uid, gid) = source
                .owner(path)
                .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
            remember([Owned { key, uid, gid }]);
            (uid, gid)
        }
    };
    *uid = u;
    *gid = g;
    Ok(())
}

/// `chown` through `set` (an `fchown` or a non-following `fchownat`). When
/// rootless, an id the namespace's map lacks (`EINVAL`) is left as it is
/// and noted; the other id is still given.
///
/// Before the namespace's ids are mapped, root's owner (0, 0) is left
/// as it is: a rootless run leaves its ids unmapped only while it fills a
/// root that was empty and not setgid (`jailtrace run`), so every file
/// there was made by this process, owned by the caller, whom the map
/// makes root. Any other owner waits for the map.
pub(crate) fn chown_with(
    uid: u32,
    gid: u32,
    set: impl Fn(Option<Uid>, Option<Gid>) -> Result<(), Errno>,
) -> Result<(), Errno> {
    if let Some(source) = SOURCE.get().filter(|s| !s.mapped()) {
        if (uid, gid) == (0, 0) {
            return Ok(());
        }
        source
            .settle()
            .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
    }
    let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    match set(u, g) {
        Err(Errno::EINVAL) if rootless() => {
            let uid_failed = matches!(set(u, None), Err(Errno::EINVAL));
            let gid_failed = matches!(set(None, g), Err(Errno::EINVAL));
            note_unowned(uid_failed.then_some(uid), gid_failed.then_some(gid));
            Ok(())
        }
        other => other,
    }
}

/// `fchown(fd)` through [`chown_with`].
pub(crate) fn fchown(fd: &impl AsFd, uid: u32, gid: u32) -> Result<(), Errno> {
    chown_with(uid, gid, |u, g| nix::unistd::fchown(fd, u, g))
}
