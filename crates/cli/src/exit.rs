//! jailtrace's exit codes. Scripts may rely on them.
//!
//! A closed stdout or stderr is not an error and has no code of its own:
//! when the reader stops early (`jailtrace diff A B | head -2`), jailtrace
//! stops writing there, says nothing, and exits with the code the command
//! would have had if its output had been read whole: `verify` 1 for a jail
//! with problems, `doctor` the program's status, `run` 3 when the program
//! does not start, 0 for an export cut short. ripgrep exits 0 instead; a
//! command's verdict is decided before it prints, and a script with
//! `set -o pipefail` should see it whatever the reader did. Any other
//! failure to write stdout (a full disk behind `> FILE`) is an error (1).

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
