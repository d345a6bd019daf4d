//! Namespace helpers for a tracee: mounting a `/proc` that belongs to the
//! tracee's own pid namespace.
//!
//! A procfs mount shows the pid namespace of the process that mounts it, so
//! the tracer (in the host's namespace) cannot make one itself. A helper
//! process joins the tracee's pid namespace with `setns`, which applies to
//! its children only, and a child of it mounts. The mount namespace is the
//! tracer's, so the new mount is visible to the tracee at once.

use std::ffi::CString;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::unistd::Pid;

/// Mounts procfs at `target` (a path, typically `/proc/self/fd/N` of a
/// descriptor the caller opened safely) for the pid namespace of `pid`,
/// with `flags` (`MS_*`).
pub fn mount_proc_for(pid: Pid, target: &str, flags: libc::c_ulong) -> Result<(), Errno> {
    let ns = nix::fcntl::open(
        format!("/proc/{pid}/ns/pid").as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let target = CString::new(target).map_err(|_| Errno::EINVAL)?;
    let source = c"proc";
    // SAFETY: after fork the helper makes only async-signal-safe syscalls
    // on memory prepared above and always `_exit`s; the parent waits for it.
    unsafe {
        let helper = libc::fork();
        if helper < 0 {
            return Err(Errno::last());
        }
        if helper == 0 {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWPID) != 0 {
                libc::_exit(*libc::__errno_location());
            }
            let child = libc::fork();
            if child == 0 {
                let rc = libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    source.as_ptr(),
                    flags,
                    std::ptr::null(),
                );
                libc::_exit(if rc == 0 {
                    0
                } else {
                    *libc::__errno_location()
                });
            }
            let mut status = 0;
            if child < 0 || libc::waitpid(child, &mut status, libc::__WALL) != child {
                libc::_exit(libc::ECHILD);
            }
            libc::_exit(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                libc::EINTR
            });
        }
        let mut status = 0;
        loop {
            if libc::waitpid(helper, &mut status, libc::__WALL) == helper {
                break;
            }
            if *libc::__errno_location() != libc::EINTR {
                return Err(Errno::last());
            }
        }
        match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
            Some(0) => Ok(()),
            Some(code) => Err(Errno::from_raw(code)),
            None => Err(Errno::EINTR),
        }
    }
}
