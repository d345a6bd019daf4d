//! The jail a manifest describes, made real and kept so: [`build`]
//! recreates a root from a manifest and the host's files, [`verify`]
//! compares a root and the host with the manifest, and [`update`] brings a
//! root and its manifest up to date after the host changed.
//!
//! What this crate guarantees:
//! - **Confined writes.** Every change to a root goes through
//!   `jailtrace-rootfs` ([`jailtrace_rootfs::Root`]), so nothing is written
//!   outside it even when the root holds planted symlinks. Reads of the root
//!   go through a [`Host`] based at the root, confined the same way.
//! - **Nothing shipped silently.** Every file placed from the host is
//!   hashed; a SHA-256 that differs from the manifest's is reported as a
//!   [`Mismatch`], and with [`Options::strict`] it stops the build before
//!   anything is written.
//! - **Idempotent.** An entry already right in the root is left alone, so a
//!   second build changes nothing; a wrong one is replaced.
//! - Entries the program created at run time (cause `created`: logs, pid
//!   files) are not copied from the host: their directories are made,
//!   their files left to the program. Synthesized files (`/etc/passwd`)
//!   are written with the content the manifest records.

mod build;
mod check;
mod entry;
mod error;
mod parallel;
mod runtime;
mod update;
mod verify;

pub use build::{build, BuildReport, Mismatch, Options};
pub use check::{Field, Values};
pub use entry::{entry_deferred, entry_for};
pub use error::Error;
pub use update::{update, Change, UpdateReport};
pub use verify::{verify, Differences, Finding, Problem, VerifyReport};

pub use jailtrace_rootfs::Host;
