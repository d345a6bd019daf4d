//! The program's standard input, the same for every run.
//!
//! jailtrace runs the program several times (discover, verify, retry); a
//! verifying run that reads end-of-file where the discovering run read a
//! script verifies nothing. So what the program reads is fixed before the
//! first run ([`Input::from_stdin`]):
//!
//! - a pipe, FIFO or socket is read to its end (at most [`MAX_RECORDED`]
//!   bytes) into an anonymous memory file, outside the root and out of the
//!   manifest, and every run reads those bytes from the start;
//! - a regular file is read by every run from where it stood;
//! - a terminal, `/dev/null` or another character device is passed as it
//!   is: a terminal is the user's, who is told before each later run that
//!   the program reads it again.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use jailtrace_tracer::Stdio;
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::stat::{fstat, SFlag};

/// The most bytes of a piped stdin that are kept for the later runs.
pub const MAX_RECORDED: u64 = 64 * 1024 * 1024;

/// What every run reads on its standard input.
#[derive(Debug)]
pub enum Input {
    /// jailtrace's own stdin, as it is.
    Inherit {
        /// It is a terminal (the user types the program's input).
        terminal: bool,
    },
    /// Nothing: `/dev/null` (another program of the jail, verified again).
    Null,
    /// jailtrace's stdin is a regular file: each run reads it from `offset`.
    File { offset: u64 },
    /// What was read from a pipe or socket, replayed to every run.
    Recorded {
        memfd: File,
        /// Bytes kept.
        len: u64,
        /// The input went on past [`MAX_RECORDED`]; the rest was not read.
        truncated: bool,
    },
}

impl Default for Input {
    fn default() -> Self {
        Input::Inherit { terminal: false }
    }
}

impl Input {
    /// Decides, from what jailtrace's stdin (descriptor 0) is, what every
    /// run reads; a pipe is read to its end here.
    pub fn from_stdin() -> io::Result<Input> {
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        let st = match fstat(fd) {
            Ok(st) => st,
            // No stdin at all: the program gets none either.
            Err(_) => return Ok(Input::default()),
        };
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        match kind {
            SFlag::S_IFREG => {
                let offset = nix::unistd::lseek(fd, 0, nix::unistd::Whence::SeekCur)?;
                Ok(Input::File {
                    offset: u64::try_from(offset).unwrap_or(0),
                })
            }
            SFlag::S_IFIFO | SFlag::S_IFSOCK => Input::record(stdin.lock()),
            _ => Ok(Input::Inherit {
                terminal: nix::unistd::isatty(fd).unwrap_or(false),
            }),
        }
    }

    /// Reads `source` to its end (at most [`MAX_RECORDED`] bytes) into a
    /// memory file.
    pub fn record(source: impl Read) -> io::Result<Input> {
        let mut memfd = File::from(memfd_create(c"jailtrace-stdin", MFdFlags::MFD_CLOEXEC)?);
        let mut limited = source.take(MAX_RECORDED + 1);
        let mut len = io::copy(&mut limited, &mut memfd)?;
        let truncated = len > MAX_RECORDED;
        if truncated {
            memfd.set_len(MAX_RECORDED)?;
            len = MAX_RECORDED;
        }
        memfd.flush()?;
        Ok(Input::Recorded {
            memfd,
            len,
            truncated,
        })
    }

    /// Whether the user types the input (a terminal).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Input::Inherit { terminal: true })
    }

    /// The stdin of one run, read from the start.
    pub(crate) fn for_run(&self) -> io::Result<Stdio> {
        match self {
            Input::Inherit { .. } => Ok(Stdio::Inherit),
            Input::Null => Ok(Stdio::Null),
            Input::File { offset } => {
                let stdin = io::stdin();
                nix::unistd::lseek(
                    stdin.as_fd(),
                    i64::try_from(*offset).unwrap_or(0),
                    nix::unistd::Whence::SeekSet,
                )?;
                Ok(Stdio::Inherit)
            }
            Input::Recorded { memfd, .. } => {
                // A new open file description: its own offset, at 0, so a
                // process of an earlier run that still holds its stdin
                // cannot move this run's.
                let path = format!("/proc/self/fd/{}", memfd.as_raw_fd());
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(0))?;
                Ok(Stdio::Fd(OwnedFd::from(file)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(stdio: Stdio) -> Vec<u8> {
        let Stdio::Fd(fd) = stdio else {
            panic!("a recorded input is handed over as a descriptor");
        };
        let mut out = Vec::new();
        File::from(fd).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_recorded_input_is_replayed_whole_to_every_run() {
        let input = Input::record(&b"cat /etc/hostname\nexit 0\n"[..]).unwrap();
        let Input::Recorded { len, truncated, .. } = &input else {
            panic!("not recorded");
        };
        assert_eq!((*len, *truncated), (25, false));
        for _ in 0..3 {
            assert_eq!(
                read_all(input.for_run().unwrap()),
                b"cat /etc/hostname\nexit 0\n"
            );
        }
    }

    #[test]
    fn an_endless_input_is_kept_up_to_the_limit() {
        let input = Input::record(io::repeat(b'y')).unwrap();
        let Input::Recorded { len, truncated, .. } = &input else {
            panic!("not recorded");
        };
        assert_eq!((*len, *truncated), (MAX_RECORDED, true));
    }
}
