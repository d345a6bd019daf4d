//! Who needed a path: the process, its executable, the syscall and the
//! exercise it was serving; and the manifest [`Reason`] that records it.

use std::path::{Path, PathBuf};

use jailtrace_manifest::{Cause, Exercise, PathText, Reason};

/// Who needed a path: the process, its executable and the syscall, and
/// the exercise it was serving.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub pid: Option<i32>,
    pub exe: Option<PathBuf>,
    pub syscall: Option<&'static str>,
    pub exercise: Option<Exercise>,
}

/// "/usr/bin/cat (pid 12, openat)": the process that did something, for
/// people ("the program" when the executable is not known).
impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.exe {
            Some(exe) => write!(f, "{}", exe.display())?,
            None => f.write_str("the program")?,
        }
        match (self.pid, self.syscall) {
            (Some(pid), Some(sys)) => write!(f, " (pid {pid}, {sys})"),
            (None, Some(sys)) => write!(f, " ({sys})"),
            (Some(pid), None) => write!(f, " (pid {pid})"),
            (None, None) => Ok(()),
        }
    }
}

impl Who {
    pub(crate) fn reason(&self, cause: Cause, run: u32, requested: Option<&Path>) -> Reason {
        Reason {
            cause,
            run,
            pid: self.pid,
            exe: self.exe.as_deref().map(PathText::from),
            syscall: self.syscall.map(str::to_string),
            requested: requested.map(PathText::from),
            program: None,
            exercise: self.exercise.clone(),
            setting: None,
        }
    }
}
