//! A stopped tracee, and the view of the file system it has.
//!
//! Paths a tracee passes are relative to its root, its working directory
//! or a directory descriptor. [`Tracee::resolve`] turns a [`Target`] into
//! the absolute path the tracee means *inside the root the program was
//! started in* (`Spawn::root`, the jail; `/` without one), even after the
//! program chrooted itself further: once a task of the run has called
//! `chroot`, an absolute path is joined to where `/proc/PID/root` lies in
//! that root (haproxy chrooted into `ROOT/var/lib/haproxy` opening `/x`
//! means `/var/lib/haproxy/x`). Working directories and descriptors come
//! from `/proc/PID/{cwd,fd/N}` as host paths, which need no such join. The
//! join is lexical: `..` and symlinks are left for the caller, who resolves
//! them inside the root where they belong (so a `..` above the program's
//! own root, or an absolute symlink below it, is resolved against the
//! start root, not the program's).

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;
use procfs::process::Process;

use crate::arch::Arch;
use crate::call::Target;
use crate::memory::{self, MemoryError};

/// A tracee stopped at a syscall, lent to the [`crate::Handler`].
#[derive(Debug)]
pub struct Tracee<'a> {
    pid: Pid,
    arch: Arch,
    /// The root the program was started in, as a canonical host path.
    base: &'a Path,
    /// Some task of the run called `chroot`: a task's root may lie below
    /// `base`, so absolute paths need `/proc/PID/root`.
    chrooted: bool,
    /// The program of a stack the tracee belongs to.
    job: usize,
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

impl<'a> Tracee<'a> {
    pub(crate) fn new(
        pid: Pid,
        arch: Arch,
        base: &'a Path,
        chrooted: bool,
        job: usize,
    ) -> Tracee<'a> {
        Tracee {
            pid,
            arch,
            base,
            chrooted,
            job,
        }
    }

    /// The program of a stack ([`crate::run_stack`]) the tracee belongs
    /// to: the index of its spec; 0 in a run of one program.
    pub fn job(&self) -> usize {
        self.job
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Reads `buf.len()` bytes of the tracee's memory at `addr`.
    pub fn read_memory<'b>(&self, addr: u64, buf: &'b mut [u8]) -> Result<&'b [u8], MemoryError> {
        memory::read_bytes(self.pid, addr, buf)
    }

    /// Writes `data` into the tracee's memory at `addr`.
    pub fn write_memory(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        memory::write_bytes(self.pid, addr, data)
    }

    /// Makes the call the tracee is stopped at the exit of return `value`
    /// (a count, or `-errno`). Only meaningful in [`crate::Handler::on_exit`].
    pub fn set_result(&self, value: i64) -> Result<(), Errno> {
        let mut regs = ptrace::getregs(self.pid)?;
        #[cfg(target_arch = "x86_64")]
        {
            regs.rax = value as u64;
        }
        #[cfg(target_arch = "aarch64")]
        {
            regs.regs[0] = value as u64;
        }
        ptrace::setregs(self.pid, regs)
    }

    fn process(&self) -> io::Result<Process> {
        Process::new(self.pid.as_raw()).map_err(|e| proc_err(self.pid, e))
    }

    /// The tracee's root directory as a host path.
    pub fn root(&self) -> io::Result<PathBuf> {
        self.process()?.root().map_err(|e| proc_err(self.pid, e))
    }

    /// The executable the tracee runs, as a path inside the start root.
    /// One readlink(2), as in [`Tracee::resolve`]: asked at every
    /// placement, where procfs's `Process` cost four more calls.
    pub fn exe(&self) -> io::Result<PathBuf> {
        let exe =
            std::fs::read_link(format!("/proc/{}/exe", self.pid)).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("process {} is gone", self.pid),
                ),
                _ => e,
            })?;
        Ok(inside(self.base, &exe))
    }

    /// The absolute path `target` names, inside the root the program was
    /// started in (see the module documentation); `None` for a descriptor
    /// that is not a file system object (a pipe, a socket, an anonymous
    /// inode).
    pub fn resolve(&self, target: &Target) -> io::Result<Option<PathBuf>> {
        let (dirfd, rel) = match target {
            Target::Path { path, .. } | Target::Socket { path }
                if path.as_bytes().first() == Some(&b'/') =>
            {
                return self.absolute(Path::new(path)).map(Some);
            }
            Target::Path { dirfd, path, .. } => (*dirfd, Some(path.as_os_str())),
            Target::Socket { path } => (None, Some(path.as_os_str())),
            Target::Fd(fd) => (Some(*fd), None),
            Target::Inet { .. } | Target::Process(_) => return Ok(None),
        };
        // One readlink(2) of the magic link: procfs's `Process` and
        // `fd_from_fd` cost five more calls (opening /proc/PID, the link,
        // a stat), at every `getdents64` and relative path.
        let link = match dirfd {
            None => format!("/proc/{}/cwd", self.pid),
            Some(fd) => format!("/proc/{}/fd/{fd}", self.pid),
        };
        let base = std::fs::read_link(&link).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => io::Error::new(
                io::ErrorKind::NotFound,
                format!("process {} or its descriptor is gone", self.pid),
            ),
            _ => e,
        })?;
        // A pipe, socket or anonymous inode reads as `pipe:[N]` and the
        // like: only a file system object has a path.
        if base.as_os_str().as_bytes().first() != Some(&b'/') {
            return Ok(None);
        }
        let base = inside(self.base, &base);
        Ok(Some(match rel {
            Some(rel) if !rel.is_empty() => base.join(rel),
            _ => base,
        }))
    }

    /// The tracee's absolute path `path`, inside the start root: below the
    /// tracee's own root when it chrooted.
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        if !self.chrooted {
            return Ok(path.to_path_buf());
        }
        let own = inside(self.base, &self.root()?);
        Ok(match path.strip_prefix("/") {
            _ if own == Path::new("/") => path.to_path_buf(),
            Ok(rest) if rest.as_os_str().is_empty() => own,
            Ok(rest) => own.join(rest),
            Err(_) => path.to_path_buf(),
        })
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
        let me = Tracee::new(
            nix::unistd::getpid(),
            Arch::native(),
            Path::new("/"),
            false,
            0,
        );
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
