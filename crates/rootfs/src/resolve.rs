//! Path resolution confined beneath a directory descriptor.
//!
//! Everything here resolves a jail path as if the directory `base` were `/`:
//! `..` at `base` stays at `base`, absolute symlink targets restart at
//! `base`, and magic links (`/proc/PID/fd/N`) are never traversed as
//! shortcuts out of it. Two strategies give the same answers:
//!
//! - [`Strategy::Openat2`]: one `openat2(2)` call with
//!   `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, where the kernel enforces the
//!   confinement (and retries on `EAGAIN` from concurrent renames);
//! - [`Strategy::Walk`]: for kernels without `openat2` (before 5.6), a walk
//!   one component at a time from `base`, each opened with
//!   `O_PATH | O_NOFOLLOW` and inspected through its descriptor, so a
//!   component swapped for a symlink between two steps is read as a symlink
//!   and resolved textually inside `base`, never followed by the kernel.
//!   `..` pops the walk's own stack of opened directories instead of asking
//!   the kernel for the parent, so it cannot climb above `base`.
//!
//! Results are `O_PATH` descriptors; callers act on them or on a last
//! component with `*at` calls that do not follow symlinks.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, FileStat, Mode};

/// Linux's limit on symlinks followed in one lookup (`MAXSYMLINKS`,
/// path_resolution(7)).
pub(crate) const MAX_SYMLINKS: usize = 40;

/// How to resolve paths beneath a base directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// The kernel's `openat2(RESOLVE_IN_ROOT)`.
    Openat2,
    /// Our own component-by-component walk.
    Walk,
}

impl Strategy {
    /// `Openat2` when the running kernel has it, else `Walk`. Probed once.
    pub(crate) fn detect() -> Strategy {
        static PROBE: OnceLock<Strategy> = OnceLock::new();
        *PROBE.get_or_init(|| {
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT);
            match openat2(nix::fcntl::AT_FDCWD, "/", how) {
                Err(Errno::ENOSYS) => Strategy::Walk,
                _ => Strategy::Openat2,
            }
        })
    }
}

/// The non-empty components of `p` split at `/` (`.` and `..` kept), so a
/// jail path is always taken from the base whether or not it starts with `/`.
pub(crate) fn components(p: &Path) -> Vec<&OsStr> {
    p.as_os_str()
        .as_bytes()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(OsStr::from_bytes)
        .collect()
}

/// `/` followed by `parts` joined with `/`.
pub(crate) fn jail_path<S: AsRef<OsStr>>(parts: &[S]) -> PathBuf {
    let mut s = OsString::from("/");
    for (i, c) in parts.iter().enumerate() {
        if i > 0 {
            s.push("/");
        }
        s.push(c.as_ref());
    }
    PathBuf::from(s)
}

/// Splits `p` into its parent (as a jail path) and last component, or `None`
/// when the last component is not a name (`/`, or ends in `.` or `..`).
pub(crate) fn split_last(p: &Path) -> Option<(PathBuf, &OsStr)> {
    let comps = components(p);
    let (&name, parent) = comps.split_last()?;
    if name == "." || name == ".." {
        return None;
    }
    Some((jail_path(parent), name))
}

/// Opens `p` beneath `base` as an `O_PATH` descriptor. With `follow_last`
/// false a symlink at the last component is opened itself.
pub(crate) fn resolve(
    base: BorrowedFd<'_>,
    p: &Path,
    follow_last: bool,
    strategy: Strategy,
) -> Result<OwnedFd, Errno> {
    let flags = if follow_last {
        OFlag::empty()
    } else {
        OFlag::O_NOFOLLOW
    };
    match in_root(base, p, OFlag::O_PATH | flags, strategy) {
        Some(result) => result,
        None => walk(base, p, follow_last),
    }
}

/// `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` of `p` beneath `base`
/// with `flags` (`O_CLOEXEC` added); `None` when the walk must answer
/// instead (no `openat2`, or renames kept racing the lookup).
fn in_root(
    base: BorrowedFd<'_>,
    p: &Path,
    flags: OFlag,
    strategy: Strategy,
) -> Option<Result<OwnedFd, Errno>> {
    if strategy != Strategy::Openat2 {
        return None;
    }
    let how = OpenHow::new()
        .flags(OFlag::O_CLOEXEC | flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel: &Path = if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    };
    // openat2(2): with RESOLVE_IN_ROOT the kernel returns EAGAIN when a
    // rename raced with the lookup; it asks us to retry.
    for _ in 0..16 {
        match openat2(base, rel, how) {
            Err(Errno::EAGAIN) => continue,
            Err(Errno::ENOSYS) => return None,
            other => return Some(other),
        }
    }
    // Still racing: the walk is equally safe.
    None
}

/// Whether `p` beneath `base` is a directory reached through directories
/// only: no component of it is a symlink, so each of its prefixes is a
/// directory too. One `openat2(RESOLVE_NO_SYMLINKS)`; `false` when that
/// fails for any reason or the kernel lacks `openat2` (the caller then
/// looks at each prefix itself).
pub(crate) fn is_plain_dir(base: BorrowedFd<'_>, p: &Path, strategy: Strategy) -> bool {
    plain_dir(base, p, strategy).is_ok()
}

/// [`is_plain_dir`] with the reason it is not: `ENOENT` means the first
/// component that is not a directory of `base` is missing (a symlink on
/// the way is `ELOOP`, anything else there `ENOTDIR`); `ENOSYS` without
/// `openat2`.
pub(crate) fn plain_dir(base: BorrowedFd<'_>, p: &Path, strategy: Strategy) -> Result<(), Errno> {
    if strategy != Strategy::Openat2 {
        return Err(Errno::ENOSYS);
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_IN_ROOT
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    openat2(base, p, how).map(drop)
}

/// Opens the directory `p` beneath `base` (symlinks followed, confined).
pub(crate) fn resolve_dir(
    base: BorrowedFd<'_>,
    p: &Path,
    strategy: Strategy,
) -> Result<OwnedFd, Errno> {
    // O_DIRECTORY: the kernel itself refuses anything else (ENOTDIR).
    match in_root(base, p, OFlag::O_PATH | OFlag::O_DIRECTORY, strategy) {
        Some(result) => result,
        None => resolve_dir_stat(base, p, strategy).map(|(fd, _)| fd),
    }
}

/// The directory `p` beneath `base` opened for reading its entries (not
/// `O_PATH`): in one call with `openat2`, else [`resolve_dir`] and a
/// reopen of the directory it found.
pub(crate) fn open_dir_readable(
    base: BorrowedFd<'_>,
    p: &Path,
    strategy: Strategy,
) -> Result<OwnedFd, Errno> {
    // Opening a directory has no side effect (no device, no FIFO): O_RDONLY
    // is as safe as O_PATH.
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    match in_root(base, p, flags, strategy) {
        Some(result) => result,
        None => {
            let dir = resolve_dir(base, p, strategy)?;
            openat(&dir, ".", flags | OFlag::O_CLOEXEC, Mode::empty())
        }
    }
}

/// [`resolve_dir`] with the directory's `fstat`.
pub(crate) fn resolve_dir_stat(
    base: BorrowedFd<'_>,
    p: &Path,
    strategy: Strategy,
) -> Result<(OwnedFd, FileStat), Errno> {
    let fd = resolve(base, p, true, strategy)?;
    let st = fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    Ok((fd, st))
}

/// The fallback walk (see the module docs).
fn walk(base: BorrowedFd<'_>, p: &Path, follow_last: bool) -> Result<OwnedFd, Errno> {
    let mut queue: VecDeque<OsString> = components(p).into_iter().map(OsStr::to_owned).collect();
    // Directories entered below `base`; empty means "at base".
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0usize;
    while let Some(c) = queue.pop_front() {
        if c == "." {
            continue;
        }
        if c == ".." {
            stack.pop();
            continue;
        }
        let cur = stack.last().map_or(base, |fd| fd.as_fd());
        let fd = openat(
            cur,
            c.as_os_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let st = fstat(&fd)?;
        let is_last = queue.is_empty();
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => stack.push(fd),
            libc::S_IFLNK if !is_last || follow_last => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                // readlinkat(2) with an empty path reads the link an O_PATH
                // descriptor refers to.
                let target = readlinkat(&fd, "")?;
                if target.is_empty() {
                    return Err(Errno::ENOENT);
                }
                let target = PathBuf::from(target);
                if target.has_root() {
                    stack.clear();
                }
                for t in components(&target).into_iter().rev() {
                    queue.push_front(t.to_owned());
                }
            }
            _ if is_last => return Ok(fd),
            _ => return Err(Errno::ENOTDIR),
        }
    }
    match stack.pop() {
        Some(fd) => Ok(fd),
        None => base
            .try_clone_to_owned()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_keep_dots_and_drop_empty() {
        let c = components(Path::new("//a/./b/../c/"));
        assert_eq!(c, ["a", ".", "b", "..", "c"]);
        assert!(components(Path::new("/")).is_empty());
    }

    #[test]
    fn split_last_refuses_dot_names() {
        assert_eq!(
            split_last(Path::new("/usr/lib/x")),
            Some((PathBuf::from("/usr/lib"), OsStr::new("x")))
        );
        assert_eq!(
            split_last(Path::new("x")),
            Some((PathBuf::from("/"), OsStr::new("x")))
        );
        assert_eq!(split_last(Path::new("/")), None);
        assert_eq!(split_last(Path::new("/a/..")), None);
        assert_eq!(split_last(Path::new("/a/.")), None);
    }
}
