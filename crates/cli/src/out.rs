//! What jailtrace itself prints, on stdout and stderr, where a closed pipe
//! is not an error.
//!
//! `println!` and `eprintln!` panic when a write fails, and a reader that
//! stops early (`jailtrace diff A B | head -2`) makes the next write fail
//! with `EPIPE`: Rust ignores SIGPIPE, so no signal ends the process as it
//! ends a C program. Every line the CLI prints goes through [`outln!`],
//! [`out!`], [`errln!`] and [`err!`] (or [`Stdout`], for a stream such as
//! an export), which never panic. What they guarantee:
//!
//! - **A closed pipe ends the output quietly.** The first write that fails
//!   marks its stream closed; later writes to it are skipped, nothing is
//!   said about it, and the command runs to its end and exits with the
//!   code it would have had if its output had been read whole (`exit.rs`).
//! - **Other write errors on stdout are errors** (a full disk behind
//!   `> file`): the first is kept and `main` reports it, exiting 1
//!   ([`take_stdout_error`]).
//! - Write errors on stderr are dropped: there is nowhere left to say them.
//!
//! Each call writes and flushes under the stream's lock, so lines of one
//! call are never interleaved with another thread's.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set once a write to stdout failed: nothing more is written there.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// Set once a write to stderr failed.
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
/// The first stdout failure that was not a closed pipe.
static STDOUT_ERROR: Mutex<Option<io::Error>> = Mutex::new(None);

/// `println!` through [`stdout`](crate::out::stdout): never panics.
macro_rules! outln {
    () => {
        $crate::out::stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`stdout`](crate::out::stdout): never panics.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` through [`stderr`](crate::out::stderr): never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` through [`stderr`](crate::out::stderr): never panics.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::out::stderr(format_args!($($arg)*))
    };
}

/// Writes `args` on stdout and flushes, unless stdout is closed (see the
/// module doc).
pub fn stdout(args: fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut lock = io::stdout().lock();
    if let Err(e) = lock.write_fmt(args).and_then(|()| lock.flush()) {
        stdout_failed(e);
    }
}

/// Writes `args` on stderr and flushes, unless stderr is closed.
pub fn stderr(args: fmt::Arguments<'_>) {
    if STDERR_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut lock = io::stderr().lock();
    if lock.write_fmt(args).and_then(|()| lock.flush()).is_err() {
        STDERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Marks stdout closed and keeps `e` unless it is a closed pipe.
fn stdout_failed(e: io::Error) {
    STDOUT_CLOSED.store(true, Ordering::Relaxed);
    if e.kind() != io::ErrorKind::BrokenPipe {
        // A poisoned lock still holds a valid Option.
        let mut first = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(e);
    }
}

/// Whether stdout's reader closed it (a write failed with `EPIPE`).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed) && STDOUT_ERROR.lock().is_ok_and(|e| e.is_none())
}

/// The first error writing stdout that was not a closed pipe, if any.
pub fn take_stdout_error() -> Option<io::Error> {
    STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
}

/// stdout as a writer for a stream (an export): every error is returned,
/// so the producer stops, and recorded as for [`stdout`]; after a closed
/// pipe, [`stdout_closed`] tells the command why it stopped.
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.result(|out| out.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.result(|out| out.flush())
    }
}

impl Stdout {
    fn result<T>(
        &mut self,
        op: impl FnOnce(&mut io::StdoutLock) -> io::Result<T>,
    ) -> io::Result<T> {
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        op(&mut io::stdout().lock()).inspect_err(|e| {
            // An interrupted write is retried by the caller, not a failure.
            if e.kind() != io::ErrorKind::Interrupted {
                // Keep a copy for main; the caller gets the original.
                stdout_failed(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}
