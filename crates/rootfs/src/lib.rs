//! Every write into a jail root, confined to it.
//!
//! This crate is the only code in jailtrace that creates, changes or removes
//! anything inside a jail root. It guarantees two things:
//!
//! 1. **Confinement.** Nothing it does lands outside the root, even when the
//!    traced (possibly hostile) program planted symlinks in the root such as
//!    `/etc -> /../../../etc` or swapped a directory for a symlink between a
//!    check and a use. Every operation on a jail path resolves the *parent*
//!    inside the root (`openat2` with `RESOLVE_IN_ROOT`, or a component walk
//!    that clamps `..` and absolute symlink targets at the root where the
//!    kernel lacks `openat2`) and then acts on the last component with an
//!    `*at` call that never follows it.
//! 2. **Fidelity.** What it places mirrors the host: symlink chains, modes
//!    (including setuid/setgid/sticky), owners, mtimes, device numbers, hard
//!    links and holes of sparse files.
//!
//! The work is split in two, bubblewrap style: [`plan`] walks the host and
//! returns the typed [`Step`]s that would make a jail path resolve in the
//! root as it does on the host, and [`Root::apply`] executes one step. The
//! caller can record the steps (they are what the manifest lists) and decide
//! which to apply.
//!
//! Terminology: a *jail path* is an absolute path as the program inside the
//! root sees it; the [`Host`] is where files are copied from (`/`, or a fake
//! tree in tests).

mod copy;
pub mod digest;
mod error;
mod host;
mod link;
mod meta;
pub mod owners;
mod plan;
mod resolve;
mod root;
mod walk;

#[cfg(test)]
mod tests;

pub use copy::Copied;
pub use digest::Sha256Sum;
pub use error::Error;
pub use host::Host;
pub use link::{sha256_of, Shared};
pub use meta::{Attrs, DirEntry, Kind, Meta};
pub use plan::{plan, plan_parent, Applied, Follow, Outcome, Plan, Step};
pub use root::Root;
pub use walk::PathWalk;
