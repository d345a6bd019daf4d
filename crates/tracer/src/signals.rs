//! The signals the loop waits for: SIGCHLD (a task stopped or ended) and
//! the terminating ones, read from a signalfd, beside the descriptors the
//! handler watches.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::error::{os, Error};

/// Blocks SIGCHLD in the calling thread. For a program's main thread,
/// before it starts any other: every thread then inherits the mask, and the
/// SIGCHLD a stop sends waits for the tracer's signalfd. A thread that had
/// it unblocked could take it (and drop it: it is ignored by default)
/// while the tracer was about to sleep, which then slept through the stop
/// until its next tick. (The loop's own thread blocks it anyway.)
pub fn reserve_sigchld() {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    let _ = signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

/// Blocks the signals the loop waits for in this thread and restores the
/// old mask when dropped.
pub(crate) struct SignalGuard {
    old: SigSet,
    fd: SignalFd,
}

impl SignalGuard {
    pub(crate) fn new() -> Result<SignalGuard, Error> {
        let mut set = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            set.add(s);
        }
        // SIGTTOU is blocked but not read: see `terminal`.
        let mut blocked = set;
        blocked.add(Signal::SIGTTOU);
        let mut old = SigSet::empty();
        signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut old))
            .map_err(os("blocking signals"))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(os("signalfd"))?;
        Ok(SignalGuard { old, fd })
    }

    /// Waits up to `timeout` for a signal or for one of `watched` to be
    /// readable; returns a terminating signal, if one came, and whether one
    /// of `watched` is readable (or hung up).
    pub(crate) fn wait(
        &self,
        timeout: Duration,
        watched: &[BorrowedFd<'_>],
    ) -> Result<(Option<Signal>, bool), Error> {
        let fds: Vec<BorrowedFd<'_>> = std::iter::once(self.fd.as_fd())
            .chain(watched.iter().copied())
            .collect();
        let ready = poll_readable(&fds, timeout).map_err(|errno| Error::Os {
            what: "poll",
            errno,
        })?;
        let readable = ready[1..].iter().any(|r| *r);
        let mut terminating = None;
        while let Ok(Some(info)) = self.fd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) | Err(_) => {}
                Ok(sig) => terminating = Some(sig),
            }
        }
        Ok((terminating, readable))
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        // Signals that arrived meanwhile stay pending and are delivered now
        // (a SIGINT then ends jailtrace by its default action unless the
        // caller handles it; the run reports it in `interrupted` first).
        let _ = signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Waits up to `timeout` (60 s at most) for any of `fds` to be readable or
/// hung up; says which are. Interrupted by a signal, it says none.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Duration) -> Result<Vec<bool>, Errno> {
    let ms =
        PollTimeout::try_from(timeout.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
    let mut polled: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    match poll(&mut polled, ms) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(errno) => return Err(errno),
    }
    Ok(polled
        .iter()
        .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
        .collect())
}
