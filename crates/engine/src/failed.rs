//! What a read-only session (`jailtrace doctor`) records of the path calls
//! that failed: refused for want of permission, or an `execve` that
//! failed; the diagnosis explains them.

use std::path::PathBuf;

use jailtrace_rootfs::Follow;
use jailtrace_tracer::{Op, PathCall, Target, Tracee};
use nix::errno::Errno;

use crate::creds::{creds_of, Creds};
use crate::who::Who;

/// A path call that failed in a read-only session: refused for want of
/// permission (`EACCES`, `EPERM`), or an `execve` that failed.
#[derive(Debug, Clone)]
pub(crate) struct FailedCall {
    pub path: PathBuf,
    pub op: Op,
    pub follow: Follow,
    pub errno: Errno,
    pub who: Who,
    /// The caller's file-system ids at the time, from /proc/PID/status.
    pub creds: Option<Creds>,
}

/// At most this many failed calls are kept (a program in a retry loop
/// would otherwise grow the list without end).
const MAX_FAILED_CALLS: usize = 1000;

/// Whether a read-only session wants the result of `call`: the calls
/// whose failure says something about the root (not `access`, which
/// programs use to probe, nor calls on descriptors).
pub(crate) fn wants_result(call: &PathCall) -> bool {
    match call.target {
        Target::Path { .. } | Target::Socket { .. } => !matches!(
            call.op,
            Op::Access | Op::Xattr | Op::Watch | Op::List { .. }
        ),
        _ => false,
    }
}

/// Records a failed path call of a read-only session, if it is one the
/// diagnosis uses.
pub(crate) fn call_failed(
    failed: &mut Vec<FailedCall>,
    tracee: &Tracee,
    call: &PathCall,
    errno: Errno,
) {
    let denied = matches!(errno, Errno::EACCES | Errno::EPERM);
    if !(denied || call.op == Op::Exec) || failed.len() >= MAX_FAILED_CALLS {
        return;
    }
    let Ok(Some(path)) = tracee.resolve(&call.target) else {
        return;
    };
    if failed.iter().any(|c| c.path == path && c.errno == errno) {
        return;
    }
    let pid = tracee.pid().as_raw();
    // Before its first exec, the traced child still runs jailtrace itself:
    // no executable of the program's to name.
    let exe = tracee
        .exe()
        .ok()
        .filter(|e| std::env::current_exe().ok().as_ref() != Some(e));
    failed.push(FailedCall {
        follow: match call.target {
            Target::Path { follow: false, .. } => Follow::No,
            _ => Follow::Yes,
        },
        op: call.op,
        errno,
        who: Who {
            pid: Some(pid),
            exe,
            syscall: Some(call.sysno.name()),
            exercise: None,
        },
        creds: creds_of(pid),
        path,
    });
}
