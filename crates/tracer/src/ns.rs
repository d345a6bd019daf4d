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
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// Mounts procfs at `target` (a path, typically `/proc/self/fd/N` of a
/// descriptor the caller opened safely) for the pid namespace of `pid`,
/// with `flags` (`MS_*`).
///
/// The helper and its child share this process's memory (`CLONE_VM |
/// CLONE_VFORK`: the calling thread waits, suspended, until the helper
/// exits, and the helper until its child exits), as the program's process
/// does (see `spawn`): a fork of the tracer in the middle of a run copied
/// its page tables and left every page of its heap to fault once more (1,100
/// faults in a `find /usr/share` run that mounts a `/proc`).
pub fn mount_proc_for(pid: Pid, target: &str, flags: libc::c_ulong) -> Result<(), Errno> {
    let ns = nix::fcntl::open(
        format!("/proc/{pid}/ns/pid").as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let target = CString::new(target).map_err(|_| Errno::EINVAL)?;
    let source = c"proc";
    // The mount, by the child in the namespace: 0 or an errno.
    let mut mount: Option<Box<dyn FnMut() -> isize + '_>> = Some(Box::new(|| {
        // SAFETY: pointers to C strings that live in the suspended caller's
        // frame.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                source.as_ptr(),
                flags,
                std::ptr::null(),
            )
        };
        if rc == 0 {
            0
        } else {
            Errno::last_raw() as isize
        }
    }));
    let mut child_stack = [0u8; 16 * 1024];
    // The helper: joins the namespace (`setns` applies to its children) and
    // clones the child that mounts; 0 or an errno.
    let helper = Box::new(|| {
        if let Err(e) = nix::sched::setns(&ns, CloneFlags::CLONE_NEWPID) {
            return e as isize;
        }
        let Some(mount) = mount.take() else {
            return libc::EINVAL as isize;
        };
        // SAFETY: `mount` makes one syscall. The helper frees its box once
        // the child is gone, with the thread-local state of the suspended
        // caller, as the caller would.
        match unsafe { run_beside(mount, &mut child_stack) } {
            Ok(()) => 0,
            Err(e) => e as isize,
        }
    });
    let mut helper_stack = [0u8; 32 * 1024];
    // SAFETY: the helper makes a few syscalls and one clone, with both
    // closures boxed above.
    unsafe { run_beside(helper, &mut helper_stack) }
}

/// Runs `body` in a child that shares this process's memory, on `stack`,
/// this thread suspended until it exits (`CLONE_VM | CLONE_VFORK`): no page
/// table is copied for a few syscalls. `body` returns 0 or an errno, which
/// becomes the result.
///
/// # Safety
/// `body` runs in another process in this memory, with the calling
/// thread's thread-local state: it must make only async-signal-safe calls
/// and allocate nothing, and `stack` must be large enough for it.
unsafe fn run_beside(body: nix::sched::CloneCb<'_>, stack: &mut [u8]) -> Result<(), Errno> {
    // SAFETY: per the caller; the child exits with `body`'s result and is
    // waited for by pid.
    let child = unsafe {
        nix::sched::clone(
            body,
            stack,
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
            Some(libc::SIGCHLD),
        )
    }?;
    wait_errno(child.as_raw())
}

/// Runs `body` in a new process that is not the caller's child: a child
/// forks it and exits at once, so init (or the nearest subreaper) adopts
/// it and the caller's `waitpid(-1)` never waits for it. It runs in a
/// process group of its own (a Ctrl-C for the caller's job does not reach
/// it), with stdin, stdout and stderr on `/dev/null` and the descriptors
/// `close` closed, and exits with what `body` returns.
///
/// It returns without waiting for that first child: [`Detached::reap`]
/// does, later, when the caller has done its own work meanwhile (by then
/// the child is long gone), and before anything else may `waitpid(-1)`.
///
/// This is a fork without an exec, which costs a fraction of starting a
/// program: it is only sound while the caller has one thread (fork(2):
/// only the calling thread is copied, so a lock another thread held would
/// stay locked in the copy), which is checked: `EBUSY` otherwise.
pub fn spawn_detached<F>(close: &[std::os::fd::RawFd], body: F) -> Result<Detached, Errno>
where
    F: FnOnce() -> i32,
{
    let threads = std::fs::read_dir("/proc/self/task")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?
        .count();
    if threads != 1 {
        return Err(Errno::EBUSY);
    }
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: the process has one thread (checked above), so the forked
    // copies may run any code: no lock can be held by a thread that is not
    // copied. The first child only forks and `_exit`s; the second runs
    // `body` and `_exit`s without returning into the caller's frames. The
    // parent reaps the first child only, by pid.
    unsafe {
        let first = libc::fork();
        if first < 0 {
            return Err(Errno::last());
        }
        if first == 0 {
            let second = libc::fork();
            if second != 0 {
                libc::_exit(if second < 0 { 1 } else { 0 });
            }
            libc::setpgid(0, 0);
            for fd in 0..3 {
                libc::dup2(null.as_raw_fd(), fd);
            }
            for &fd in close {
                libc::close(fd);
            }
            let code = body();
            libc::_exit(code);
        }
        Ok(Detached {
            first: Some(Pid::from_raw(first)),
        })
    }
}

/// The first child of [`spawn_detached`], to be reaped. Dropped unreaped,
/// it is reaped then.
#[derive(Debug)]
pub struct Detached {
    first: Option<Pid>,
}

impl Detached {
    /// Waits for the first child; `ECHILD` when it could not fork the
    /// second, which then never ran.
    pub fn reap(&mut self) -> Result<(), Errno> {
        let Some(first) = self.first.take() else {
            return Ok(());
        };
        loop {
            match waitpid(first, None) {
                Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
                Ok(_) => return Err(Errno::ECHILD),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        let _ = self.reap();
    }
}

/// Whether this process may create a new pid namespace: a child tries
/// `unshare(CLONE_NEWPID)` and exits with its errno. For a clear error
/// before anything is written, where the spawn of the program would fail
/// only once the root exists. The child shares this process's memory
/// (`CLONE_VM | CLONE_VFORK`, this process waiting meanwhile), so no page
/// table is copied for one syscall: a fork cost about 0.9 ms of
/// `jailtrace run`'s start.
pub fn probe_pid_namespace() -> Result<(), Errno> {
    let mut stack = [0u8; 16 * 1024];
    let probe = Box::new(|| match nix::sched::unshare(CloneFlags::CLONE_NEWPID) {
        Ok(()) => 0,
        Err(e) => e as isize,
    });
    // SAFETY: one syscall, no allocation, a few hundred bytes of stack.
    unsafe { run_beside(probe, &mut stack) }
}

/// Waits for `child`, which exits with 0 or an errno: that errno as the
/// error (`EINTR` when a signal ended it).
fn wait_errno(child: libc::pid_t) -> Result<(), Errno> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only into `status`.
        if unsafe { libc::waitpid(child, &mut status, libc::__WALL) } == child {
            break;
        }
        if Errno::last() != Errno::EINTR {
            return Err(Errno::last());
        }
    }
    match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
        Some(0) => Ok(()),
        Some(code) => Err(Errno::from_raw(code)),
        None => Err(Errno::EINTR),
    }
}
