//! Why a run could not happen.

use nix::errno::Errno;

use crate::seccomp::FilterError;
use crate::spawn::SpawnError;

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("{what}: {errno}")]
    Os { what: &'static str, errno: Errno },
    #[error("cannot trace the program: {errno} (ptrace needs CAP_SYS_PTRACE or a permissive kernel.yama.ptrace_scope)")]
    Seize { errno: Errno },
}

impl Error {
    /// See [`SpawnError::is_seccomp_refused`].
    pub fn is_seccomp_refused(&self) -> bool {
        matches!(self, Error::Spawn(e) if e.is_seccomp_refused())
    }
}

pub(crate) fn os(what: &'static str) -> impl FnOnce(Errno) -> Error {
    move |errno| Error::Os { what, errno }
}
