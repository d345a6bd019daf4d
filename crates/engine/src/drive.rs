//! The runs of one program in the jail's session: discover, verify, retry
//! until the program starts with nothing missing (or `max_runs` are used
//! up, or it does not start although nothing more can be copied).
//!
//! [`crate::run`] drives the new program from a discovering run, then each
//! other program of the jail from a verifying run: a jail of several
//! programs is finished only when every one of them starts in the root
//! that ships.

use std::path::Path;
use std::time::Instant;

use jailtrace_manifest::{Cause, Run, RunRole};

use crate::config::Config;
use crate::exercise::ExerciseResult;
use crate::outcome::{Error, Outcome};
use crate::runner::{status_of, trace_run, Output};
use crate::session::{Observer, Session};

/// State across the programs of one [`crate::run`].
pub(crate) struct Drive<'a> {
    pub session: &'a mut Session,
    pub observer: &'a mut dyn Observer,
    /// Every run so far (an earlier manifest's first).
    pub runs: Vec<Run>,
    /// Whether runs use the seccomp filter (off once the kernel refused it).
    pub seccomp: bool,
    /// Readiness conditions the last run did not meet.
    pub pending: Vec<String>,
    /// How the exercises of the last run went.
    pub exercised: Vec<ExerciseResult>,
    /// Advice for a program that does not start.
    pub hints: Vec<String>,
    /// The last run's output, when it was not shown.
    pub hidden_output: Option<(u32, Vec<u8>)>,
}

fn role_name(role: RunRole) -> &'static str {
    match role {
        RunRole::Verify => "verify",
        RunRole::Retry => "retry",
        RunRole::Discover => "discover",
    }
}

impl Drive<'_> {
    /// Runs `config`'s program from `role` until it is ready or cannot be,
    /// with `companions` started before it in each run.
    pub(crate) fn program(
        &mut self,
        config: &Config,
        companions: &[&Config],
        mut role: RunRole,
    ) -> Result<Outcome, Error> {
        let first_run = self.runs.len() as u32;
        self.session.program = Some(config.name.clone());
        self.session.noted.clear();
        loop {
            let index = self.runs.len() as u32 + 1;
            if index - first_run > config.max_runs {
                return Ok(Outcome::StillMissing {
                    misses: self.session.misses.clone(),
                });
            }
            self.observer.run_started(index, role);
            let copying = role != RunRole::Verify;
            if role == RunRole::Retry {
                // The retry run's own number: what it places is its doing.
                self.session.run = index;
                self.session.place_misses(self.observer)?;
            }
            self.session.begin_run(index, copying);
            if copying {
                self.session.refresh_account_dbs(true, self.observer)?;
            }
            let began = Instant::now();
            let later = index > first_run + 1;
            if later && config.input.is_terminal() {
                self.observer.warn(&format!(
                    "run {index} ({}) starts the program again in the jail, and it reads this terminal: \
                     give it the same input again (input piped into jailtrace is replayed to every run instead)",
                    role_name(role)
                ));
            }
            // Every run after the first shows nothing (the user saw the
            // first); its output goes to --log, and is kept to be shown on
            // failure.
            let quiet = later && !config.input.is_terminal();
            let output = if quiet { Output::Hidden } else { Output::Shown };
            self.session.mount_binds()?;
            let traced = trace_run(
                config,
                companions,
                self.session,
                self.observer,
                &mut self.seccomp,
                output,
            );
            self.session.unmount_binds();
            let traced = match traced {
                Ok(traced) => traced,
                Err(e) => {
                    // An interrupted copying run must not leave the host's
                    // account databases in the root: write the jail's own.
                    if copying {
                        let _ = self.session.refresh_account_dbs(false, self.observer);
                    }
                    return Err(e);
                }
            };
            self.pending = traced.pending;
            self.exercised = traced.exercises;
            self.hidden_output = quiet.then(|| (index, traced.transcript.clone()));
            let (out, ready) = (traced.out, traced.ready);
            if let Some(failure) = self.session.mount_failures.first() {
                self.observer.warn(failure);
            }
            if config.pid_namespace {
                // The next run has a new pid namespace: its /proc is mounted anew.
                self.session
                    .mounted
                    .unmount(&self.session.root, Path::new("/proc"));
            }
            if copying {
                self.session.prune(self.observer)?;
                self.session.refresh_account_dbs(false, self.observer)?;
            }
            let status = status_of(&out);
            let run = Run {
                index,
                role,
                seccomp: self.seccomp,
                status: status.clone(),
                ready,
                misses: self.session.misses.len() as u32,
                placed: self.session.counters.placed,
                bytes: self.session.counters.bytes,
                wall_ms: began.elapsed().as_millis() as u64,
                processes: out.tasks,
                stops: out.stops,
                program: Some(config.name.clone()),
            };
            self.observer.run_finished(&run);
            self.runs.push(run);
            role = match role {
                RunRole::Discover | RunRole::Retry => RunRole::Verify,
                RunRole::Verify if !self.session.misses.is_empty() => RunRole::Retry,
                RunRole::Verify if ready => return Ok(Outcome::Ready),
                RunRole::Verify => {
                    self.account_hint();
                    return Ok(Outcome::NotReady { status });
                }
            };
        }
    }

    /// Ready with the host's accounts, not with the jail's own: the
    /// program looks up a name it never switches to.
    fn account_hint(&mut self) {
        let copied_run_ready = self.runs.iter().rev().nth(1).is_some_and(|r| r.ready);
        let synthesized = self
            .session
            .entries
            .iter()
            .any(|e| e.reason.cause == Cause::Synthesized);
        if copied_run_ready && synthesized {
            self.hints.push(
                "the program started in the discovering run but not in the verifying one. One \
                 difference: /etc/passwd and /etc/group hold only the accounts the jail needs \
                 once discovery is over. If the program looks a user or group up by name, add \
                 --keep-user NAME / --keep-group NAME (or --passwd copy)"
                    .into(),
            );
        }
    }
}
