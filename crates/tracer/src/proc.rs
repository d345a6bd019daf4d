//! A stopped tracee, and the view of the file system it has.
//!
//! Paths a tracee passes are relative to its root (it may be chrooted), its
//! working directory or a directory descriptor. `/proc/PID/{root,cwd,fd/N}`
//! give those as host paths; [`Tracee::resolve`] turns a [`Target`] into the
//! absolute path the tracee means, *as it sees it inside its root*. The join
//! is lexical: `..` and symlinks are left for the caller, who resolves them
//! inside the root where they belong.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use procfs::process::{FDTarget, Process};

use crate::arch::Arch;
use crate::call::Target;

/// A tracee stopped at a syscall, lent to the [`crate::Handler`].
#[derive(Debug)]
pub struct Tracee {
    pid: Pid,
    arch: Arch,
}

fn proc_err(pid: Pid, e: procfs::ProcError) -> io::Error {
    match e {
        procfs::ProcError::Io(e, _) => e,
        procfs::ProcError::NotFound(_) => {
            io::Error::new(io::ErrorKind::NotFound, format!("process {pid} is gone"))
        }
        other => io::Error::other(other.to_string()),
    }
}

impl Tracee {
    pub(crate) fn new(pid: Pid, arch: Arch) -> Tracee {
        Tracee { pid, arch }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    fn process(&self) -> io::Result<Process> {
        Process::new(self.pid.as_raw()).map_err(|e| proc_err(self.pid, e))
    }

    /// The tracee's root directory as a host path.
    pub fn root(&self) -> io::Result<PathBuf> {
        self.process()?.root().map_err(|e| proc_err(self.pid, e))
    }

    /// The executable the tracee runs, as it sees it inside its root.
    pub fn exe(&self) -> io::Result<PathBuf> {
        let p = self.process()?;
        let exe = p.exe().map_err(|e| proc_err(self.pid, e))?;
        let root = p.root().map_err(|e| proc_err(self.pid, e))?;
        Ok(inside(&root, &exe))
    }

    /// The absolute path `target` names, as the tracee sees it inside its
    /// root; `None` for a descriptor that is not a file system object (a
    /// pipe, a socket, an anonymous inode).
    pub fn resolve(&self, target: &Target) -> io::Result<Option<PathBuf>> {
        let (dirfd, rel) = match target {
            Target::Path { path, .. } | Target::Socket { path }
                if path.as_bytes().first() == Some(&b'/') =>
            {
                return Ok(Some(PathBuf::from(path)));
            }
            Target::Path { dirfd, path, .. } => (*dirfd, Some(path.as_os_str())),
            Target::Socket { path } => (None, Some(path.as_os_str())),
            Target::Fd(fd) => (Some(*fd), None),
            Target::Inet { .. } | Target::Process(_) => return Ok(None),
        };
        let p = self.process()?;
        let base = match dirfd {
            None => p.cwd().map_err(|e| proc_err(self.pid, e))?,
            Some(fd) => match p.fd_from_fd(fd).map_err(|e| proc_err(self.pid, e))?.target {
                FDTarget::Path(path) => path,
                _ => return Ok(None),
            },
        };
        let root = p.root().map_err(|e| proc_err(self.pid, e))?;
        let base = inside(&root, &base);
        Ok(Some(match rel {
            Some(rel) if !rel.is_empty() => base.join(rel),
            _ => base,
        }))
    }
}

/// `host` (a path from /proc, as the tracer sees it) as seen from inside
/// `root`. A path outside the root (a descriptor opened before a chroot) is
/// returned unchanged.
pub(crate) fn inside(root: &Path, host: &Path) -> PathBuf {
    match host.strip_prefix(root) {
        Ok(rest) => Path::new("/").join(rest),
        Err(_) => host.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_root() {
        let root = Path::new("/srv/jail");
        assert_eq!(
            inside(root, Path::new("/srv/jail/usr/bin")),
            Path::new("/usr/bin")
        );
        assert_eq!(inside(root, Path::new("/srv/jail")), Path::new("/"));
        assert_eq!(inside(Path::new("/"), Path::new("/etc")), Path::new("/etc"));
        // Not a prefix match on bytes: /srv/jail2 is not inside /srv/jail.
        assert_eq!(
            inside(root, Path::new("/srv/jail2/x")),
            Path::new("/srv/jail2/x")
        );
    }

    #[test]
    fn resolves_relative_to_cwd_and_dirfd() {
        use std::os::fd::AsRawFd;
        let me = Tracee::new(nix::unistd::getpid(), Arch::native());
        let cwd = std::env::current_dir().unwrap();
        let t = Target::Path {
            dirfd: None,
            path: "a/../b".into(),
            follow: true,
        };
        assert_eq!(me.resolve(&t).unwrap().unwrap(), cwd.join("a/../b"));
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::open(dir.path()).unwrap();
        let t = Target::Path {
            dirfd: Some(f.as_raw_fd()),
            path: "x".into(),
            follow: true,
        };
        let want = dir.path().canonicalize().unwrap().join("x");
        assert_eq!(me.resolve(&t).unwrap().unwrap(), want);
        let abs = Target::Path {
            dirfd: Some(f.as_raw_fd()),
            path: "/etc/x".into(),
            follow: true,
        };
        assert_eq!(me.resolve(&abs).unwrap().unwrap(), Path::new("/etc/x"));
        assert_eq!(
            me.resolve(&Target::Fd(f.as_raw_fd())).unwrap().unwrap(),
            dir.path().canonicalize().unwrap()
        );
    }
}
