//! The controlling terminal during a run, handled as a job-control shell
//! handles it for a foreground job.
//!
//! The program always runs in a process group of its own (the child calls
//! `setpgid` before exec, see `spawn`), so what it sends to its group
//! (`kill(0, …)`, Apache's `killpg(getpgrp(), SIGTERM)`) reaches only its
//! own processes, never jailtrace or the shell that started jailtrace.
//!
//! When jailtrace is the foreground job of its controlling terminal,
//! [`Foreground::claim`] opens the terminal for the child, which makes its
//! new group the terminal's foreground group before exec: the program reads
//! the terminal without SIGTTIN and gets the terminal's signals (Ctrl-C,
//! window size). Dropping the [`Foreground`] gives the terminal back to
//! jailtrace's group, however the run ended. SIGTTOU is blocked for the
//! run (by the tracer's signal guard): `tcsetpgrp` from a background group
//! and writes under `stty tostop` would otherwise stop jailtrace
//! (tcsetpgrp(3), termios(3) "TOSTOP").
//!
//! Without a controlling terminal, or as a background job, the terminal is
//! left alone.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{getpgrp, tcgetpgrp, tcsetpgrp, Pid};

/// The terminal lent to the program's process group for one run.
#[derive(Debug)]
pub(crate) struct Foreground {
    tty: OwnedFd,
    /// jailtrace's own process group, which gets the terminal back.
    own: Pid,
}

impl Foreground {
    /// The controlling terminal, when jailtrace's process group is its
    /// foreground group; `None` otherwise (no terminal, a background job).
    pub(crate) fn claim() -> Option<Foreground> {
        let tty = open(
            "/dev/tty",
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let own = getpgrp();
        (tcgetpgrp(tty.as_fd()).ok()? == own).then_some(Foreground { tty, own })
    }

    /// The descriptor the child passes to `tcsetpgrp` (close-on-exec).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.tty.as_raw_fd()
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Err(errno) = tcsetpgrp(self.tty.as_fd(), self.own) {
            tracing::debug!(%errno, "cannot give the terminal back to jailtrace's group");
        }
    }
}
