//! What is mounted in the root for the runs: `/proc`, `/sys` and
//! `/dev/pts` (mounted, never copied), and the host directories the
//! command line binds into the jail (`--bind`).
//!
//! When a program touches `/proc` (or `/sys`) jailtrace mounts it in the root
//! at the entry of that call, read-only, `nosuid,nodev,noexec`, and records
//! that the jail needs it; the mounts stay for the following runs and are
//! taken down when the session ends. When the program runs in its own pid
//! namespace (the default), its `/proc` is mounted for that namespace (by a
//! helper that joins it), so it sees only its own processes; the mounts are
//! then taken down after each run, since every run has a new namespace.
//! A bind is mounted before each run and taken down after it; a read-only
//! one is remounted `ro` (keeping the `nosuid`, `nodev`, `noexec` and
//! access-time flags of the host directory's mount, which a bind
//! inherits).
//!
//! Guarantees: a mount lands inside the root. The mount point is opened
//! inside the root (`Root::open_dir`) and mounted onto `/proc/self/fd/N`,
//! so a symlink the program planted on the way cannot redirect the mount
//! to the host; a bind's source is opened once, as checked. Every mount is
//! taken down through a descriptor of the mount itself (`/proc/self/fd/N`,
//! `MNT_DETACH`), never through a path the program could have changed
//! meanwhile, and all of them when this value is dropped.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use jailtrace_rootfs::{self as rootfs, Host, Root};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, FsFlags};

/// One mount jailtrace made.
#[derive(Debug)]
struct Active {
    /// The host path of the mount point.
    path: PathBuf,
    /// A descriptor of the mounted file system's root, to unmount it by.
    mounted: Option<OwnedFd>,
}

/// The mounts made in one root.
#[derive(Debug, Default)]
pub(crate) struct Mounts {
    /// In mounting order.
    active: Vec<Active>,
}

/// Why a file system could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Root(#[from] rootfs::Error),
    #[error("cannot mount {fstype} on {path}: {errno}")]
    Mount {
        fstype: String,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("cannot bind {} on {}: {errno}", host.display(), path.display())]
    Bind {
        host: PathBuf,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("cannot make the bind on {} read-only: {errno}", path.display())]
    ReadOnly {
        path: PathBuf,
        errno: nix::errno::Errno,
    },
}

/// `/proc/self/fd/N` for `fd`.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

impl Mounts {
    /// The host path of jail path `jail` in `root`.
    fn host_path(root: &Root, jail: &Path) -> PathBuf {
        root.path().join(jail.strip_prefix("/").unwrap_or(jail))
    }

    pub(crate) fn is_mounted(&self, root: &Root, jail: &Path) -> bool {
        let path = Self::host_path(root, jail);
        self.active.iter().any(|a| a.path == path)
    }

    /// Records the mount just made at `jail`, with a descriptor of it.
    fn made(&mut self, root: &Root, jail: &Path) {
        self.active.push(Active {
            path: Self::host_path(root, jail),
            // Opened after mounting: the mounted file system's root.
            mounted: root.open_dir(jail).ok(),
        });
    }

    /// Makes the mount point `jail` in the root, with the host's
    /// attributes, unless it is there. Returns true when it made it.
    pub(crate) fn mount_point(
        root: &mut Root,
        host: &Host,
        jail: &Path,
    ) -> Result<bool, MountError> {
        if root.lstat(jail)?.is_some() {
            return Ok(false);
        }
        let attrs = host
            .lstat(jail)?
            .map(|m| m.attrs())
            .unwrap_or(jailtrace_rootfs::Attrs {
                mode: 0o555,
                uid: 0,
                gid: 0,
                mtime: None,
            });
        root.mkdir(jail, &attrs)?;
        Ok(true)
    }

    /// Mounts `fstype` at jail path `jail` (creating the mount point with
    /// the host's attributes). Returns true when the directory was created.
    pub(crate) fn mount(
        &mut self,
        root: &mut Root,
        host: &Host,
        fstype: &str,
        jail: &Path,
        pid_namespace_of: Option<i32>,
    ) -> Result<bool, MountError> {
        let created = Self::mount_point(root, host, jail)?;
        let dir = root.open_dir(jail)?;
        let target = fd_path(&dir);
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let mounted = if let (Some(pid), "proc") = (pid_namespace_of, fstype) {
            // The program's own pid namespace: it sees only its processes.
            jailtrace_tracer::ns::mount_proc_for(
                nix::unistd::Pid::from_raw(pid),
                &target,
                flags.bits(),
            )
        } else if fstype == "devpts" {
            // The host's instance, so that a pty opened through the host's
            // /dev/ptmx node shows up in the jail's /dev/pts.
            mount(
                Some("/dev/pts"),
                target.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        } else {
            match mount(
                Some(fstype),
                target.as_str(),
                Some(fstype),
                flags,
                None::<&str>,
            ) {
                // Rootless: a sysfs may only be mounted by the owner of
                // the network namespace; bind the host's instead (with its
                // submounts: a user namespace may not bind a mount without
                // the mounts below it), then make it read-only keeping the
                // flags it has (locked in a user namespace).
                Err(nix::errno::Errno::EPERM)
                    if fstype == "sysfs" && jailtrace_rootfs::owners::rootless() =>
                {
                    mount(
                        Some("/sys"),
                        target.as_str(),
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None::<&str>,
                    )
                    .and_then(|()| {
                        let bound = root.open_dir(jail).map_err(|_| nix::errno::Errno::EBADF)?;
                        let remounted = mount(
                            None::<&str>,
                            fd_path(&bound).as_str(),
                            None::<&str>,
                            MsFlags::MS_BIND
                                | MsFlags::MS_REMOUNT
                                | kept_flags(&bound)
                                | MsFlags::MS_RDONLY,
                            None::<&str>,
                        );
                        if remounted.is_err() {
                            let _ = umount2(fd_path(&bound).as_str(), MntFlags::MNT_DETACH);
                        }
                        remounted
                    })
                }
                other => other,
            }
        };
        mounted.map_err(|errno| MountError::Mount {
            fstype: fstype.into(),
            path: Self::host_path(root, jail),
            errno,
        })?;
        self.made(root, jail);
        Ok(created)
    }

    /// Bind-mounts the host directory `source` (checked and canonical) on
    /// the existing directory `jail` in the root; `read_only` remounts it
    /// `ro`. On failure nothing stays mounted.
    pub(crate) fn bind(
        &mut self,
        root: &Root,
        source: &Path,
        jail: &Path,
        read_only: bool,
    ) -> Result<(), MountError> {
        let path = Self::host_path(root, jail);
        let bind_err = |errno| MountError::Bind {
            host: source.to_path_buf(),
            path: path.clone(),
            errno,
        };
        let from = open(
            source,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(bind_err)?;
        let dir = root.open_dir(jail)?;
        mount(
            Some(fd_path(&from).as_str()),
            fd_path(&dir).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(bind_err)?;
        self.made(root, jail);
        if read_only {
            // A bind takes MS_RDONLY only on a remount, which also sets
            // every other per-mount flag: keep the source mount's.
            let flags =
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept_flags(&from);
            let remounted = match self.active.last().and_then(|a| a.mounted.as_ref()) {
                Some(fd) => mount(
                    None::<&str>,
                    fd_path(fd).as_str(),
                    None::<&str>,
                    flags,
                    None::<&str>,
                ),
                None => Err(nix::errno::Errno::EBADF),
            };
            if let Err(errno) = remounted {
                if let Some(active) = self.active.pop() {
                    take_down(active);
                }
                return Err(MountError::ReadOnly { path, errno });
            }
        }
        Ok(())
    }

    /// Takes the mount at jail path `jail` down, if jailtrace made it.
    pub(crate) fn unmount(&mut self, root: &Root, jail: &Path) {
        let path = Self::host_path(root, jail);
        if let Some(i) = self.active.iter().position(|a| a.path == path) {
            take_down(self.active.remove(i));
        }
    }

    /// Takes every mount down, newest first.
    pub(crate) fn unmount_all(&mut self) {
        while let Some(active) = self.active.pop() {
            take_down(active);
        }
    }
}

/// The per-mount flags of the mount `fd` lies on, as `MsFlags` for a
/// remount, which sets them all (and, in a user namespace, may not clear
/// them).
fn kept_flags(fd: &OwnedFd) -> MsFlags {
    let kept = fstatvfs(fd).map(|s| s.flags()).unwrap_or(FsFlags::empty());
    let mut flags = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if kept.contains(fs) {
            flags |= ms;
        }
    }
    flags
}

/// Unmounts `active` through its descriptor; without one, by its path (a
/// direct child of the canonical root for /proc and /sys; UMOUNT_NOFOLLOW
/// refuses a symlink there).
fn take_down(active: Active) {
    let done = match &active.mounted {
        Some(fd) => umount2(fd_path(fd).as_str(), MntFlags::MNT_DETACH),
        None => umount2(
            &active.path,
            MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
        ),
    };
    if let Err(errno) = done {
        tracing::warn!(path = %active.path.display(), %errno, "cannot unmount");
    }
}

/// The mount points of jailtrace's mount namespace.
pub fn mount_points() -> BTreeSet<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else {
        return BTreeSet::new();
    };
    info.split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape_mountinfo(field))))
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
pub(crate) fn unescape_mountinfo(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|s| u8::from_str_radix(s, 8).ok());
        match (field[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Whether something is mounted at jail path `jail` in `root`.
pub(crate) fn is_mount_point(root: &Root, jail: &Path) -> bool {
    mount_points().contains(&Mounts::host_path(root, jail))
}

impl Drop for Mounts {
    fn drop(&mut self) {
        self.unmount_all();
    }
}
