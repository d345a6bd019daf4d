//! A mount namespace of jailtrace's own for a root run: what it mounts in
//! a root for the runs (`/proc`, `/sys`, `/dev/pts`, `--bind` directories)
//! never reaches the host's mount table, and goes away with the last
//! process in the namespace even when jailtrace is killed (`SIGKILL`, the
//! OOM killer): a `--bind` left mounted in a root would let an `rm -rf` of
//! the root delete the host directory's files. A rootless run has one
//! already ([`crate::rootless`]).
//!
//! Mounts are made private, as in the rootless namespace: nothing
//! propagates either way. Where the namespace is refused (a container
//! without `CAP_SYS_ADMIN`), jailtrace goes on in the caller's, as it did
//! before; its mounts then fail or succeed there as before.

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Enters a new mount namespace with private mounts. Must be called while
/// the process has one thread (`CLONE_NEWNS` unshares the file system
/// context, which threads share).
pub fn enter() {
    // Refused: the runs mount in the caller's namespace, as before (logging
    // is not set up yet; a mount that then fails is reported as usual).
    let _ = unshare(CloneFlags::CLONE_NEWNS).and_then(|()| make_private());
}

/// Makes every mount of this (new) mount namespace private: nothing
/// mounted here reaches the namespace it was copied from, nor the reverse.
pub fn make_private() -> nix::Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
}
