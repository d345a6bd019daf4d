//! The program's output when jailtrace must read it (`--ready log:…`,
//! `--log FILE`, a run after the first, whose output is not shown): its
//! stdout and stderr go to pipes that the tracer drains without blocking
//! whenever they are readable (it waits on them as on the program's
//! stops), forwarding every byte to where it would have gone (jailtrace's
//! stdout or stderr, or nowhere for a hidden run) and to the log file.
//! Otherwise the program writes to jailtrace's streams directly.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;

/// The most program output kept of one run (the transcript shown when it
/// fails).
pub(crate) const TRANSCRIPT_MAX: usize = 256 * 1024;

/// Where one captured stream goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    Stdout,
    Stderr,
    /// Not forwarded: only the log file and the transcript get it.
    Hidden,
}

#[derive(Debug)]
pub(crate) struct Capture {
    streams: Vec<Stream>,
    log: Option<File>,
}

/// The read end of one captured stream.
#[derive(Debug)]
struct Stream {
    fd: OwnedFd,
    sink: Sink,
    /// Every write end is closed and all was read: nothing to wait for.
    ended: bool,
}

/// The write ends to hand to the program, and the capture that reads them.
pub(crate) struct Pipes {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub capture: Capture,
}

impl Capture {
    /// Pipes for stdout and stderr, forwarded to `stdout` and `stderr`.
    pub(crate) fn pipes(stdout: Sink, stderr: Sink, log: Option<File>) -> io::Result<Pipes> {
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        // The program's ends block, as a terminal or file would.
        for w in [&out_w, &err_w] {
            let flags = OFlag::from_bits_truncate(nix::fcntl::fcntl(
                w.as_fd(),
                nix::fcntl::FcntlArg::F_GETFL,
            )?);
            nix::fcntl::fcntl(
                w.as_fd(),
                nix::fcntl::FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK),
            )?;
        }
        Ok(Pipes {
            stdout: out_w,
            stderr: err_w,
            capture: Capture {
                streams: [(out_r, stdout), (err_r, stderr)]
                    .into_iter()
                    .map(|(fd, sink)| Stream {
                        fd,
                        sink,
                        ended: false,
                    })
                    .collect(),
                log,
            },
        })
    }

    /// The pipes that may still bring output, for the tracer to wait on.
    pub(crate) fn watched<'a>(&'a self, fds: &mut Vec<BorrowedFd<'a>>) {
        fds.extend(
            self.streams
                .iter()
                .filter(|s| !s.ended)
                .map(|s| s.fd.as_fd()),
        );
    }

    /// Forwards what is waiting in the pipes; returns it for matching.
    pub(crate) fn drain(&mut self) -> Vec<u8> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        for Stream { fd, sink, ended } in self.streams.iter_mut().filter(|s| !s.ended) {
            loop {
                match nix::unistd::read(&*fd, &mut buf) {
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => break,
                    Ok(0) | Err(_) => {
                        *ended = true;
                        break;
                    }
                    Ok(n) => {
                        let chunk = &buf[..n];
                        // Ignoring a failed forward: jailtrace's own stdout
                        // closed must not stop the jail being built.
                        let _ = match sink {
                            Sink::Stdout => io::stdout().write_all(chunk),
                            Sink::Stderr => io::stderr().write_all(chunk),
                            Sink::Hidden => Ok(()),
                        };
                        if let Some(log) = &mut self.log {
                            let _ = log.write_all(chunk);
                        }
                        seen.extend_from_slice(chunk);
                    }
                }
            }
        }
        seen
    }
}
