//! The runs of one program in the jail's session: discover, verify, retry
//! until the program starts with nothing missing (or `max_runs` are used
//! up, or it does not start although nothing more can be copied).
//!
//! Two rules keep the runs few. **No run that cannot change anything:**
//! before each run the root's state is digested
//! ([`Session::state_digest`]); a run that would start from the state of
//! an earlier run of the same kind (the program's input is the same for
//! every run) is not made, and the loop ends saying which run it would
//! repeat. **Accounts by experiment:** when a copying run started and a
//! verifying run that read `/etc/passwd` or `/etc/group` did not, the
//! host accounts the program looks up are found by a search
//! ([`crate::lookup`]) before anything else is tried.
//!
//! [`crate::run`] drives the new program from a discovering run, then each
//! other program of the jail from a verifying run: a jail of several
//! programs is finished only when every one of them starts in the root
//! that ships.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

use jailtrace_manifest::{AccountKind, Cause, FoundAccount, Reason, Run, RunRole};

use crate::accounts::AccountDbs;
use crate::config::Config;
use crate::exercise::ExerciseResult;
use crate::lookup::{self, Found, Trial};
use crate::outcome::{AccountSearch, Error, Outcome, Repeat};
use crate::runner::{status_of, trace_run, Output};
use crate::session::{Miss, Observer, Session};

/// What comes after a verifying run.
enum Next {
    Run(RunRole),
    Done(Outcome),
}

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
    /// The account search of the last program that needed one.
    pub search: Option<AccountSearch>,
    /// The run the loop did not make because it would repeat another.
    pub repeat: Option<Repeat>,
    /// The root's state at the start of each run of the current program
    /// ([`Session::state_digest`]), and that run.
    seen: HashMap<u64, u32>,
    /// What each verifying run of the current program missed.
    missed: HashMap<u32, Vec<Miss>>,
}

fn role_name(role: RunRole) -> &'static str {
    match role {
        RunRole::Verify => "verify",
        RunRole::Retry => "retry",
        RunRole::Discover => "discover",
        RunRole::Lookup => "lookup",
    }
}

impl<'a> Drive<'a> {
    pub(crate) fn new(
        session: &'a mut Session,
        observer: &'a mut dyn Observer,
        runs: Vec<Run>,
        seccomp: bool,
    ) -> Drive<'a> {
        Drive {
            session,
            observer,
            runs,
            seccomp,
            pending: Vec::new(),
            exercised: Vec::new(),
            hints: Vec::new(),
            hidden_output: None,
            search: None,
            repeat: None,
            seen: HashMap::new(),
            missed: HashMap::new(),
        }
    }

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
        self.seen.clear();
        self.missed.clear();
        let mut searched = false;
        loop {
            let index = self.runs.len() as u32 + 1;
            if index - first_run > config.max_runs {
                return Ok(self.still_missing());
            }
            if role == RunRole::Retry {
                // The retry run's own number: what it places is its doing.
                self.session.run = index;
                self.session
                    .place_misses(&config.ld_library_path, self.observer)?;
            }
            let copying = matches!(role, RunRole::Discover | RunRole::Retry);
            let digest = self.session.state_digest(copying);
            if let Some(&same_as) = self.seen.get(&digest) {
                return Ok(self.repeated(index, role, same_as));
            }
            self.seen.insert(digest, index);
            let ready = self.one_run(config, companions, role, first_run)?;
            let next = match role {
                RunRole::Discover | RunRole::Retry => Next::Run(RunRole::Verify),
                RunRole::Verify | RunRole::Lookup
                    if !ready && !searched && self.search_worthwhile(first_run) =>
                {
                    searched = true;
                    self.search_accounts(config, companions, first_run, index)?
                }
                RunRole::Verify | RunRole::Lookup => self.after_verify(index, ready),
            };
            match next {
                Next::Run(next) => role = next,
                Next::Done(outcome) => return Ok(outcome),
            }
        }
    }

    /// After verifying run `index`: a retry for what it missed, else done.
    fn after_verify(&mut self, index: u32, ready: bool) -> Next {
        let misses = self.missed.get(&index).cloned().unwrap_or_default();
        if !misses.is_empty() {
            self.session.misses = misses;
            return Next::Run(RunRole::Retry);
        }
        let status = self.runs[index as usize - 1].status.clone();
        if ready {
            return Next::Done(Outcome::Ready);
        }
        self.account_hint();
        Next::Done(Outcome::NotReady { status })
    }

    /// Runs out: what the last verifying run missed.
    fn still_missing(&self) -> Outcome {
        let last = self
            .runs
            .iter()
            .rev()
            .find(|r| matches!(r.role, RunRole::Verify | RunRole::Lookup))
            .map(|r| r.index);
        let misses = last
            .and_then(|i| self.missed.get(&i).cloned())
            .unwrap_or_else(|| self.session.misses.clone());
        Outcome::StillMissing { misses }
    }

    /// Run `index` would start from the same root as run `same_as`: the
    /// loop ends with what the last verifying run came to.
    fn repeated(&mut self, index: u32, role: RunRole, same_as: u32) -> Outcome {
        self.repeat = Some(Repeat {
            run: index,
            role,
            same_as,
        });
        let outcome = self.still_missing();
        let mut hint = format!(
            "jailtrace stopped before run {index} ({}): it would start from the same root, with \
             the same input, as run {same_as}, so it could not change anything",
            role_name(role)
        );
        if let Outcome::StillMissing { misses } = &outcome {
            let paths: Vec<String> = misses
                .iter()
                .take(3)
                .map(|m| m.path.display().to_string())
                .collect();
            hint.push_str(&format!(
                ". The verifying runs miss {}{}, which each retry places, and yet the root comes \
                 out of it as it was (the program removes what it read, or takes another way once \
                 it has it)",
                paths.join(", "),
                if misses.len() > 3 { ", …" } else { "" }
            ));
            self.hints.push(hint);
            return outcome;
        }
        self.hints.push(hint);
        match self.runs.last() {
            Some(last) => Outcome::NotReady {
                status: last.status.clone(),
            },
            None => outcome,
        }
    }

    /// One run of `config`'s program as `role`; records it, and returns
    /// whether the program was ready.
    fn one_run(
        &mut self,
        config: &Config,
        companions: &[&Config],
        role: RunRole,
        first_run: u32,
    ) -> Result<bool, Error> {
        let index = self.runs.len() as u32 + 1;
        self.observer.run_started(index, role);
        let copying = matches!(role, RunRole::Discover | RunRole::Retry);
        // A retry placed the misses before it started: that is its work.
        let placed_before = (role == RunRole::Retry).then_some(self.session.counters);
        self.session.begin_run(index, copying);
        if let Some(counters) = placed_before {
            self.session.counters = counters;
        }
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
        self.session.empty_run_dirs()?;
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
                // An interrupted copying run (or a run of the account
                // search) must not leave the host's accounts in the root:
                // write the jail's own.
                if copying || self.session.trial_accounts.is_some() {
                    self.session.trial_accounts = None;
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
        } else {
            self.missed.insert(index, self.session.misses.clone());
        }
        let status = status_of(&out);
        let run = Run {
            index,
            role,
            seccomp: self.seccomp,
            status,
            ready,
            misses: self.session.misses.len() as u32,
            placed: self.session.counters.placed,
            bytes: self.session.counters.bytes,
            wall_ms: began.elapsed().as_millis() as u64,
            processes: out.tasks,
            stops: out.stops,
            handler_us: Some(out.handling.as_micros() as u64),
            program: Some(config.name.clone()),
        };
        self.observer.run_finished(&run);
        self.runs.push(run);
        Ok(ready)
    }

    /// Whether the account search may explain why the program does not
    /// start: the jail's account databases are synthesized, a copying run
    /// of this program started (with the host's accounts), the last run
    /// read an account database, and the host has accounts the jail lacks.
    fn search_worthwhile(&self, first_run: u32) -> bool {
        if !matches!(self.session.account_dbs, AccountDbs::Synthesize { .. })
            || !self.session.account_reads
        {
            return false;
        }
        let copied_run_ready = self.runs[first_run as usize..]
            .iter()
            .any(|r| r.ready && matches!(r.role, RunRole::Discover | RunRole::Retry));
        copied_run_ready && !self.candidates().is_empty()
    }

    /// The host accounts the jail lacks, groups first, then users, each in
    /// the host's order: only of the databases the jail has.
    fn candidates(&self) -> Vec<(AccountKind, String)> {
        let (AccountDbs::Synthesize { host, .. }, Some(needed)) =
            (&self.session.account_dbs, self.session.needed())
        else {
            return Vec::new();
        };
        let made = host.synthesize(&needed);
        let names = |text: &str| -> BTreeSet<String> {
            text.lines()
                .filter_map(|l| l.split(':').next())
                .map(str::to_string)
                .collect()
        };
        let has = |db: &str| {
            self.session
                .entries
                .iter()
                .any(|e| e.path.as_path() == Path::new(db) && e.reason.cause == Cause::Synthesized)
        };
        let mut out = Vec::new();
        if has("/etc/group") {
            let jail = names(&made.group);
            out.extend(
                host.group_names()
                    .into_iter()
                    .filter(|n| !jail.contains(*n))
                    .map(|n| (AccountKind::Group, n.to_string())),
            );
        }
        if has("/etc/passwd") {
            let jail = names(&made.passwd);
            out.extend(
                host.user_names()
                    .into_iter()
                    .filter(|n| !jail.contains(*n))
                    .map(|n| (AccountKind::User, n.to_string())),
            );
        }
        out
    }

    /// The account search after verifying run `failed` did not start (see
    /// [`crate::lookup`]): runs with candidate account databases, then the
    /// jail's databases with the accounts found.
    fn search_accounts(
        &mut self,
        config: &Config,
        companions: &[&Config],
        first_run: u32,
        failed: u32,
    ) -> Result<Next, Error> {
        let candidates = self.candidates();
        let started_at = self.runs.len();
        let found = lookup::search(candidates.len(), failed, |set| {
            let mut users = BTreeSet::new();
            let mut groups = BTreeSet::new();
            for &i in set {
                let (kind, name) = &candidates[i];
                match kind {
                    AccountKind::User => users.insert(name.clone()),
                    AccountKind::Group => groups.insert(name.clone()),
                };
            }
            self.session.trial_accounts = Some((users, groups));
            self.session.refresh_account_dbs(false, self.observer)?;
            // A set tried before (the same root) has its answer already.
            if let Some(&run) = self.seen.get(&self.session.state_digest(false)) {
                let started = self.runs[run as usize - 1].ready;
                return Ok(Some(Trial { started, run }));
            }
            let index = self.runs.len() as u32 + 1;
            if index - first_run > config.max_runs {
                return Ok(None);
            }
            self.seen.insert(self.session.state_digest(false), index);
            let started = self.one_run(config, companions, RunRole::Lookup, first_run)?;
            Ok::<_, Error>(Some(Trial {
                started,
                run: index,
            }))
        });
        // Whatever the search came to, the root holds the jail's own
        // databases again (with the accounts found).
        self.session.trial_accounts = None;
        let found = found?;
        let runs = (self.runs.len() - started_at) as u32;
        let mut search = AccountSearch {
            runs,
            candidates: candidates.len() as u32,
            found: Vec::new(),
            not_accounts: None,
        };
        let next = match found {
            Found::Needed { needed, proof } => {
                for n in needed.iter().rev() {
                    let (kind, name) = &candidates[n.index];
                    let reason = self.session.tag(Reason::new(Cause::Lookup, n.run));
                    let account = FoundAccount {
                        name: name.clone(),
                        kind: *kind,
                        reason,
                        failed_without: n.failed_without,
                    };
                    search.found.push(account.clone());
                    self.session.found_accounts.push(account);
                }
                self.session.refresh_account_dbs(false, self.observer)?;
                // The proof run had exactly these accounts: it is the
                // verifying run of this root.
                self.after_verify(proof, true)
            }
            Found::NotAccounts { run } => {
                self.session.refresh_account_dbs(false, self.observer)?;
                search.not_accounts = Some(run);
                self.hints.push(format!(
                    "the program started in a copying run but not in the verifying ones, not even \
                     with every host account in /etc/passwd and /etc/group (run {run}): accounts are \
                     not what it lacks. Other differences between the runs are the files the first \
                     run created (recorded as `created`), names of listed directories left out \
                     (--keep-listing DIR keeps them) and timing; jailtrace cannot tell which by \
                     experiment"
                ));
                self.after_verify(run, false)
            }
            Found::Transient { run } => {
                self.session.refresh_account_dbs(false, self.observer)?;
                self.hints.push(format!(
                    "the verifying run {failed} did not start, but run {run} did with the same \
                     accounts: no account is missing. The program's start is not reliable under \
                     the readiness conditions given (a timeout on a loaded machine?)"
                ));
                // That run had the jail's own accounts: it verifies the jail.
                self.after_verify(run, true)
            }
            Found::Unfinished => {
                self.session.refresh_account_dbs(false, self.observer)?;
                Next::Done(self.still_missing_or_not_ready())
            }
        };
        self.search = Some(search);
        Ok(next)
    }

    /// Runs out during the search: still missing what the last verifying
    /// run missed, or not ready.
    fn still_missing_or_not_ready(&mut self) -> Outcome {
        match self.still_missing() {
            Outcome::StillMissing { misses } if misses.is_empty() => {
                self.account_hint();
                Outcome::NotReady {
                    status: self
                        .runs
                        .last()
                        .map(|r| r.status.clone())
                        .unwrap_or(jailtrace_manifest::RunStatus::Exited { code: 0 }),
                }
            }
            other => other,
        }
    }

    /// Ready with the host's accounts, not with the jail's own: the
    /// program looks up a name it never switches to.
    fn account_hint(&mut self) {
        if self
            .search
            .as_ref()
            .is_some_and(|s| s.not_accounts.is_some())
        {
            return;
        }
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
