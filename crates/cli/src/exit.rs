//! jailtrace's exit codes. Scripts may rely on them.

/// The program runs from the jail (or the command succeeded).
pub const OK: u8 = 0;
/// An error: bad input, a refused root, an I/O failure.
pub const ERROR: u8 = 1;
/// Command-line usage error (clap exits with it itself).
#[allow(dead_code)]
pub const USAGE: u8 = 2;
/// Nothing more could be copied, but the program does not start (it exits
/// non-zero, crashes, or outlives `--timeout`).
pub const NOT_READY: u8 = 3;
/// `--max-runs` was used up with paths still missing.
pub const STILL_MISSING: u8 = 4;

/// The conventional code of a process ended by `signal`: 128 + its number
/// (130 for SIGINT, 143 for SIGTERM).
pub fn signaled(signal: nix::sys::signal::Signal) -> u8 {
    128u8.saturating_add(signal as i32 as u8)
}
