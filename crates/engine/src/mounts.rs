//! `/proc` and `/sys` for the runs: mounted, never copied.
//!
//! When a program touches `/proc` (or `/sys`) jailtrace mounts it in the root
//! at the entry of that call, read-only, `nosuid,nodev,noexec`, and records
//! that the jail needs it; the mounts stay for the following runs and are
//! taken down when the session ends. The mount point is opened inside the
//! root (`Root::open_dir`) and mounted onto `/proc/self/fd/N`, so a symlink
//! the program planted at `ROOT/proc` cannot redirect the mount to the
//! host. When the program runs in its own pid namespace (the default), its
//! `/proc` is mounted for that namespace (by a helper that joins it), so it
//! sees only its own processes; the mounts are then taken down after each
//! run, since every run has a new namespace.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use jailtrace_rootfs::{self as rootfs, Host, Root};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The mounts made in one root.
#[derive(Debug, Default)]
pub(crate) struct Mounts {
    /// Host paths of the mount points, in mounting order.
    active: Vec<PathBuf>,
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
}

impl Mounts {
    pub(crate) fn is_mounted(&self, root: &Root, jail: &Path) -> bool {
        self.active
            .contains(&root.path().join(jail.strip_prefix("/").unwrap_or(jail)))
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
        let mut created = false;
        if root.lstat(jail)?.is_none() {
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
            created = true;
        }
        let dir = root.open_dir(jail)?;
        let target = format!("/proc/self/fd/{}", dir.as_raw_fd());
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
            mount(
                Some(fstype),
                target.as_str(),
                Some(fstype),
                flags,
                None::<&str>,
            )
        };
        mounted.map_err(|errno| MountError::Mount {
            fstype: fstype.into(),
            path: root.path().join(jail.strip_prefix("/").unwrap_or(jail)),
            errno,
        })?;
        self.active
            .push(root.path().join(jail.strip_prefix("/").unwrap_or(jail)));
        Ok(created)
    }

    /// Takes the mount at jail path `jail` down, if jailtrace made it.
    pub(crate) fn unmount(&mut self, root: &Root, jail: &Path) {
        let path = root.path().join(jail.strip_prefix("/").unwrap_or(jail));
        if let Some(i) = self.active.iter().position(|p| *p == path) {
            self.active.remove(i);
            if let Err(errno) = umount2(&path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
                tracing::warn!(path = %path.display(), %errno, "cannot unmount");
            }
        }
    }

    /// Takes every mount down, newest first.
    pub(crate) fn unmount_all(&mut self) {
        while let Some(path) = self.active.pop() {
            // The mount point is a direct child of the canonical root that
            // jailtrace checked; UMOUNT_NOFOLLOW refuses a symlink there.
            if let Err(errno) = umount2(&path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
                tracing::warn!(path = %path.display(), %errno, "cannot unmount");
            }
        }
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        self.unmount_all();
    }
}
