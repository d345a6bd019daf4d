//! jailtrace's end-to-end tests, built as one test binary (as ripgrep does).
//!
//! Every test gets a fresh temporary directory, runs the real `jailtrace`
//! binary on real programs of this host, and then checks the result the way
//! a user would: by running the program again under a plain `chroot(8)`
//! into the root jailtrace built and comparing its output with the host's.
//!
//! Tests that jail need root (chroot, ptrace). Without it they print a loud
//! `SKIPPED <test>: …` line and pass, unless `JAILTRACE_TESTS_MUST_RUN=1`
//! (set by `.ci/run`) turns the skip into a failure. The C fixtures in
//! `fixtures/` are compiled once per run of this binary.
//!
//! Set `JAILTRACE_TESTS_KEEP=1` to keep each test's directory (the root and
//! the manifest) for inspection; its path is printed on stderr.

mod checks;
mod cmd;
mod fixtures;
mod jail;
mod net;
mod resolve;
mod util;

mod acceptance;
mod accounts;
mod badinput;
mod daemons;
mod datadirs;
mod discovery;
mod doctor;
mod errors;
mod exercises;
mod export;
mod generate;
mod harness;
mod hostile;
mod input;
mod inspect;
mod jailfile_up;
mod jailfiles;
mod lamp;
mod listings;
mod pipes;
mod programs;
mod rebuild;
mod rootless;
mod runtime;
mod secrets;
mod security;
mod servers;
mod unfinished;
mod units;
mod untouched;
