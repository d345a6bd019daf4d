//! `waitpid(2)` of any traced task, and signals by their number.
//!
//! nix's `WaitStatus` names a signal with its `Signal`, which has no
//! real-time signals: a task stopped by one, or killed with one, made
//! `waitpid` fail with `EINVAL` and ended the run. glibc itself sends two
//! of them between the threads of a process (SIGCANCEL, 32, for
//! `pthread_cancel`, and SIGSETXID, 33, for `setuid` and `setgid`, which
//! a threaded server calls when it drops its privileges: rsyslogd). So
//! the loop decodes the status itself and passes signals on by number.

use std::fmt;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// A signal by its number, real-time signals included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sig(pub i32);

impl Sig {
    /// The signal as nix knows it; `None` for a real-time signal.
    pub fn known(self) -> Option<Signal> {
        Signal::try_from(self.0).ok()
    }
}

impl From<Signal> for Sig {
    fn from(signal: Signal) -> Sig {
        Sig(signal as i32)
    }
}

/// `SIGTERM`; a real-time signal as strace names it, from the kernel's
/// first one: `SIGRTMIN` (32), `SIGRT_1` (33, glibc's SIGSETXID).
impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KERNEL_SIGRTMIN: i32 = 32;
        match (self.known(), self.0 - KERNEL_SIGRTMIN) {
            (Some(signal), _) => f.write_str(signal.as_str()),
            (None, 0) => f.write_str("SIGRTMIN"),
            (None, n) if n > 0 => write!(f, "SIGRT_{n}"),
            (None, _) => write!(f, "signal {}", self.0),
        }
    }
}

/// What `waitpid` reported of one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// Nothing happened (`WNOHANG`).
    Nothing,
    Exited(Pid, i32),
    Signaled(Pid, Sig, bool),
    /// A signal-delivery-stop (or a group-stop without `PTRACE_SEIZE`).
    Stopped(Pid, Sig),
    /// A `PTRACE_EVENT_*` stop: its signal and the event.
    Event(Pid, Sig, i32),
    /// A syscall-stop (`PTRACE_O_TRACESYSGOOD`).
    Syscall(Pid),
    Continued,
}

/// `waitpid(-1, __WALL | WNOHANG)`.
pub(crate) fn wait_any() -> Result<Waited, Errno> {
    let mut status = 0;
    // SAFETY: `status` is a valid c_int for the kernel to write.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::WNOHANG) };
    let pid = Errno::result(pid)?;
    Ok(if pid == 0 {
        Waited::Nothing
    } else {
        decode(Pid::from_raw(pid), status)
    })
}

fn decode(pid: Pid, status: i32) -> Waited {
    if libc::WIFEXITED(status) {
        Waited::Exited(pid, libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Waited::Signaled(pid, Sig(libc::WTERMSIG(status)), libc::WCOREDUMP(status))
    } else if libc::WIFSTOPPED(status) {
        let sig = libc::WSTOPSIG(status);
        match status >> 16 {
            0 if sig == libc::SIGTRAP | 0x80 => Waited::Syscall(pid),
            0 => Waited::Stopped(pid, Sig(sig)),
            event => Waited::Event(pid, Sig(sig), event),
        }
    } else {
        Waited::Continued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_time_signals_are_decoded_and_named() {
        let pid = Pid::from_raw(7);
        // Stopped by glibc's SIGSETXID (33): 0x7f | 33 << 8.
        assert_eq!(decode(pid, 0x217f), Waited::Stopped(pid, Sig(33)));
        assert_eq!(Sig(33).to_string(), "SIGRT_1");
        assert_eq!(Sig(32).to_string(), "SIGRTMIN");
        // Killed by SIGRTMIN+2 as glibc counts (36), with a core.
        assert_eq!(decode(pid, 36 | 0x80), Waited::Signaled(pid, Sig(36), true));
        assert_eq!(Sig(libc::SIGTERM).to_string(), "SIGTERM");
        assert_eq!(decode(pid, 3 << 8), Waited::Exited(pid, 3));
        // A seccomp event stop: SIGTRAP | PTRACE_EVENT_SECCOMP << 16.
        assert_eq!(
            decode(pid, 0x7f | (libc::SIGTRAP << 8) | (7 << 16)),
            Waited::Event(pid, Sig(libc::SIGTRAP), 7)
        );
        assert_eq!(
            decode(pid, 0x7f | ((libc::SIGTRAP | 0x80) << 8)),
            Waited::Syscall(pid)
        );
    }
}
