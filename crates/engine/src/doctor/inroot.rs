//! Reading a jail root without writing it: files opened and paths resolved
//! with `openat2(RESOLVE_IN_ROOT)`, so no symlink of the root (which the
//! program may have planted) leads out of it.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use jailtrace_rootfs::{Follow, Root};

/// A regular file of the root opened for reading, resolved inside the root
/// (`openat2` with `RESOLVE_IN_ROOT`, so no symlink of the root leads out
/// of it); `None` when it is missing, not a regular file, or cannot be
/// opened.
pub(super) fn open_in_root(root: &Root, p: &Path) -> Option<OwnedFd> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let dir = root.open_dir(Path::new("/")).ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = p.strip_prefix("/").unwrap_or(p);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let fd = openat2(dir.as_fd(), rel, how).ok()?;
    let st = nix::sys::stat::fstat(&fd).ok()?;
    (st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some(fd)
}

/// Where jail path `p` leads inside the root, every symlink resolved
/// inside it (`follow`: the last one too); `None` when it does not exist.
pub(super) fn resolve_in_root(root: &Root, p: &Path, follow: Follow) -> Option<PathBuf> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let dir = root.open_dir(Path::new("/")).ok()?;
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if follow == Follow::No {
        flags |= OFlag::O_NOFOLLOW;
    }
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = p.strip_prefix("/").unwrap_or(p);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let fd = openat2(dir.as_fd(), rel, how).ok()?;
    let host = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    host.strip_prefix(root.path())
        .ok()
        .map(|rest| Path::new("/").join(rest))
}

/// The text of a root file (at most `max` bytes; lossy: for account
/// names, which are ASCII).
pub(super) fn read_in_root(root: &Root, p: &Path, max: u64) -> Option<String> {
    use std::io::Read;
    let fd = open_in_root(root, p)?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(max)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The interpreter of the root's file `p` (its `PT_INTERP` or `#!` line).
pub(super) fn interpreter_in_root(root: &Root, p: &Path) -> Option<jailtrace_elf::Interpreter> {
    let fd = open_in_root(root, p)?;
    let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    jailtrace_elf::interpreter(&path).ok().flatten()
}
