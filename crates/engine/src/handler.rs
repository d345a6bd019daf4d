//! The tracer's handler for one run: every path syscall of the program is
//! checked against the root at its entry, and what the root lacks is placed
//! before the call runs (copying runs) or recorded as a miss (verifying
//! runs). Also the run's clock: the timeout, and the end of a program whose
//! leader exited but left processes behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jailtrace_elf::Interpreter;
use jailtrace_manifest::Cause;
use jailtrace_rootfs::{self as rootfs, Follow};
use jailtrace_tracer::{
    Control, ExitInterest, Handler, Op, PathCall, ProcessEvent, Target, Tracee,
};

use crate::session::{Observer, Placement, Session, Who};

/// How long the rest of the tree may live after the program's first process
/// exited, before it gets SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

pub(crate) struct RunHandler<'a> {
    pub session: &'a mut Session,
    pub observer: &'a mut dyn Observer,
    pub timeout: Option<Duration>,
    pub stop_timeout: Duration,
    /// A write into the root failed: the run is aborted and this reported.
    pub fatal: Option<rootfs::Error>,
    leader_exit: Option<Duration>,
    leader_exited: bool,
    terminated_at: Option<Duration>,
}

impl<'a> RunHandler<'a> {
    pub fn new(
        session: &'a mut Session,
        observer: &'a mut dyn Observer,
        timeout: Option<Duration>,
        stop_timeout: Duration,
    ) -> Self {
        RunHandler {
            session,
            observer,
            timeout,
            stop_timeout,
            fatal: None,
            leader_exit: None,
            leader_exited: false,
            terminated_at: None,
        }
    }

    fn who(tracee: &Tracee, call: &PathCall) -> Who {
        Who {
            pid: Some(tracee.pid().as_raw()),
            exe: tracee.exe().ok(),
            syscall: Some(call.sysno.name()),
        }
    }

    fn entry(&mut self, tracee: &Tracee, call: &PathCall) -> Result<(), rootfs::Error> {
        let Ok(Some(path)) = tracee.resolve(&call.target) else {
            return Ok(());
        };
        let follow = match &call.target {
            Target::Path { follow: false, .. } => Follow::No,
            Target::Path { .. } | Target::Socket { .. } => Follow::Yes,
            Target::Fd(_) => {
                if call.op == Op::List && self.session.copying {
                    self.session
                        .list(&path, &Self::who(tracee, call), self.observer)?;
                }
                return Ok(());
            }
        };
        if call.op == Op::Connect {
            // A socket is served by a process outside the jail; nothing to
            // copy (recorded with the network work, later).
            return Ok(());
        }
        let creates = call.op.creates();
        if self.session.copying {
            self.session.touch(&path);
        }
        // Fast path: the root has it, and it is not an empty placeholder.
        let probe = if creates {
            path.parent()
                .map(Path::to_path_buf)
                .map(|p| (p, Follow::Yes))
        } else {
            Some((path.clone(), follow))
        };
        if let Some((p, f)) = probe {
            let meta = match f {
                Follow::Yes => self.session.root.stat(&p)?,
                Follow::No => self.session.root.lstat(&p)?,
            };
            if let Some(meta) = meta {
                if let Some(ph) = self.session.placeholders.file_at(meta.dev, meta.ino) {
                    if self.session.copying {
                        self.session
                            .fill(&ph, &Self::who(tracee, call), self.observer)?;
                    }
                }
                if call.op == Op::Exec {
                    self.interpreters(&path, &Self::who(tracee, call), 0)?;
                }
                return Ok(());
            }
        }
        let who = Self::who(tracee, call);
        let placed =
            self.session
                .place(&path, follow, creates, Cause::Accessed, &who, self.observer)?;
        if call.op == Op::Exec && placed == Placement::Placed {
            self.interpreters(&path, &who, 0)?;
        }
        Ok(())
    }

    /// Linux answers an `execve` whose interpreter is missing with a bare
    /// ENOENT naming neither (execve(2), ERRORS): place the ELF interpreter
    /// or the `#!` interpreter of `exe` (and of that, for nested scripts).
    pub(crate) fn interpreters(
        &mut self,
        exe: &Path,
        who: &Who,
        depth: u32,
    ) -> Result<(), rootfs::Error> {
        // The kernel allows 4 levels of script interpreters (binfmt_script).
        if depth > 4 || !self.session.interp_checked.insert(exe.to_path_buf()) {
            return Ok(());
        }
        let interp = match jailtrace_elf::interpreter(&self.session.host.path_of(exe)) {
            Ok(Some(Interpreter::Elf { path })) => (path, false),
            Ok(Some(Interpreter::Script { path, .. })) => (path, true),
            Ok(None) | Err(_) => return Ok(()),
        };
        let mut who = who.clone();
        who.exe = Some(exe.to_path_buf());
        let requested: PathBuf = interp.0;
        self.session.place(
            &requested,
            Follow::Yes,
            false,
            Cause::Interpreter,
            &who,
            self.observer,
        )?;
        if interp.1 {
            self.interpreters(&requested, &who, depth + 1)?;
        }
        Ok(())
    }
}

impl Handler for RunHandler<'_> {
    fn on_entry(&mut self, tracee: &Tracee, call: &PathCall) -> ExitInterest {
        if self.fatal.is_none() {
            if let Err(e) = self.entry(tracee, call) {
                tracing::warn!(error = %e, "placing a path failed");
                if is_fatal(&e) {
                    self.fatal = Some(e);
                }
            }
        }
        ExitInterest::No
    }

    fn on_process(&mut self, event: &ProcessEvent) {
        if let ProcessEvent::Exited {
            leader: true,
            status,
            ..
        } = event
        {
            self.leader_exited = true;
            tracing::debug!(?status, "the program's first process exited");
        }
    }

    fn on_tick(&mut self, elapsed: Duration) -> Control {
        if let Some(e) = &self.fatal {
            return Control::Kill(format!("cannot write into the root: {e}"));
        }
        if let Some(limit) = self.timeout {
            if elapsed > limit {
                return Control::Kill(format!("timeout after {}", humanize(limit)));
            }
        }
        if self.leader_exited {
            let since = *self.leader_exit.get_or_insert(elapsed);
            match self.terminated_at {
                None if elapsed - since >= LEFTOVER_GRACE => {
                    self.terminated_at = Some(elapsed);
                    return Control::Terminate;
                }
                Some(t) if elapsed - t >= self.stop_timeout => {
                    return Control::Kill("processes left after the program exited".into());
                }
                _ => {}
            }
        }
        Control::Continue
    }
}

/// Errors that make going on pointless: the root cannot be written.
fn is_fatal(e: &rootfs::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EROFS) | Some(libc::EDQUOT) | Some(libc::EIO)
    )
}

/// `90s` → "1m30s".
pub(crate) fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, 0) => format!("{}ms", d.as_millis()),
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}
