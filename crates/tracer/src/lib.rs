//! Follow a process tree under ptrace and report its path syscalls.
//!
//! This crate knows nothing about jails. It spawns one program (optionally
//! chrooted, with another working directory, user and environment) as a job
//! of its own (its own process group, the terminal while it runs, see
//! `terminal`), follows every descendant through fork, vfork, clone and
//! exec, and hands each path syscall to a [`Handler`] while the calling
//! thread is stopped, so the handler can act before the call runs (copy a
//! missing file into place) and, when it asks to, see the call's result.
//! Paths are reported inside the root the program was started in, also
//! after it chrooted itself further ([`Tracee::resolve`]).
//!
//! With a seccomp-bpf filter (the default) the program stops only at the
//! path syscalls; without one (`Seccomp::Off`) it stops at every syscall and
//! the tracer skips the others.
//!
//! All `unsafe` of the tracer lives in this crate's lowest layer: the program's
//! child (`spawn`), the seccomp install, `PTRACE_GET_SYSCALL_INFO` and a
//! helper thread's priority (`pin::background`).

pub mod arch;
pub mod call;
mod error;
pub mod memory;
pub mod ns;
mod pin;
mod proc;
pub mod seccomp;
mod signals;
mod spawn;
mod spin;
mod terminal;
mod tracer;
mod wait;

pub use arch::{Arch, Sysno};
pub use call::{Op, PathCall, Target};
pub use error::Error;
pub use pin::background;
pub use proc::Tracee;
pub use signals::{poll_readable, reserve_sigchld};
pub use spawn::{Spawn, SpawnError, Stdio};
pub use tracer::{
    run, run_stack, Control, ExitInterest, Handler, Options, ProcessEvent, RunOutcome, Seccomp,
    Status,
};
pub use wait::Sig;
