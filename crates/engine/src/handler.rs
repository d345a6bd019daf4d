//! The tracer's handler for one run: every path syscall of the program is
//! checked against the root at its entry, and what the root lacks is placed
//! before the call runs (copying runs) or recorded as a miss (verifying
//! runs). Also the run's clock: readiness, the exercises once ready (what
//! the program needs while one runs is recorded with it), the timeout, and
//! stopping the tree once the program is ready and exercised or its first
//! process left others behind.
//!
//! Paths come from the tracer inside the jail's root, also after the
//! program chrooted itself further (`chroot /var/lib/haproxy`); the target
//! of its `chroot` is placed like any directory it needs. A datagram sent to
//! a unix socket (`sendto`/`sendmsg` to `/dev/log`) is recorded as a
//! `connect` (the manifest's `syscall` says which): either way the program
//! talks to a socket served outside the jail.
//!
//! In a read-only session (`jailtrace doctor`) the handler also asks for
//! the result of every path call, and records those that fail for want of
//! permission (and every failed `execve`) for the diagnosis; nothing the
//! program creates is recorded.

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jailtrace_elf::Interpreter;
use jailtrace_manifest::{Cause, Entry, EntryKind, Mode, SocketFamily, SocketOp};
use jailtrace_rootfs::{self as rootfs, Follow, Kind};
use jailtrace_tracer::{
    Control, ExitInterest, Handler, Op, PathCall, ProcessEvent, Status, Target, Tracee,
};
use nix::errno::Errno;

use crate::exercise::{Activity, Exercises, Stillness, DEFAULT_TIMEOUT, POLL_INTERVAL};
use crate::listing::Shows;
use crate::output::{Capture, TRANSCRIPT_MAX};
use crate::ready::{self, Readiness};
use crate::session::{Observer, Placement, Session, Who};
use crate::stack::{Companions, Step};

/// How long the rest of the tree may live after the program's first process
/// exited 0 (when readiness is only `exit`), before it gets SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// The grace ends sooner for leftovers that are a server up and serving:
/// they listen on a TCP port, their exercises are done, and they have sat
/// still ([`Stillness`]: no path call, no process event, little CPU) for
/// this long (a `Type=forking` unit's daemon, which would otherwise sit
/// out the whole grace in each run).
const LEFTOVER_STILL: Duration = Duration::from_millis(300);

/// How often the run's clock looks at a program that is starting: its
/// readiness, its exercises, the programs it runs with (the tracer's own
/// tick, 100 ms, is for the rest of the run).
const STARTING_TICK: Duration = Duration::from_millis(10);

pub(crate) struct RunHandler<'a> {
    pub session: &'a mut Session,
    pub observer: &'a mut dyn Observer,
    pub timeout: Option<Duration>,
    pub stop_timeout: Duration,
    pub readiness: Readiness,
    /// Run once the readiness conditions hold, before the tree is stopped.
    pub exercises: Exercises,
    /// The programs started before this one in the run (its stack).
    pub companions: Companions,
    pub capture: Option<Capture>,
    /// All readiness conditions held during this run.
    pub ready: bool,
    /// What the program does, for its exercises (see
    /// [`crate::exercise::Activity`]).
    pub activity: Arc<Activity>,
    /// A write into the root failed: the run is aborted and this reported.
    pub fatal: Option<rootfs::Error>,
    /// Everything the program wrote while its output was captured (up to
    /// [`TRANSCRIPT_MAX`] bytes), when asked for.
    pub transcript: Option<Vec<u8>>,
    leader_exited: bool,
    leader_exit: Option<Duration>,
    /// How still the program's leftovers sit, from the first look in the
    /// grace.
    leftovers_still: Option<Stillness>,
    /// Every process of the program ended (those it runs with may not).
    program_ended: bool,
    terminated_at: Option<Duration>,
}

impl<'a> RunHandler<'a> {
    pub fn new(
        session: &'a mut Session,
        observer: &'a mut dyn Observer,
        timeout: Option<Duration>,
        stop_timeout: Duration,
        readiness: Readiness,
    ) -> Self {
        RunHandler {
            session,
            observer,
            timeout,
            stop_timeout,
            readiness,
            exercises: Exercises::new(Vec::new(), DEFAULT_TIMEOUT, 0),
            companions: Companions::none(),
            capture: None,
            ready: false,
            activity: Arc::default(),
            fatal: None,
            transcript: None,
            leader_exited: false,
            leader_exit: None,
            leftovers_still: None,
            program_ended: false,
            terminated_at: None,
        }
    }

    fn who(&self, tracee: &Tracee, call: &PathCall) -> Who {
        who_of(tracee, call, self.exercises.current().cloned())
    }

    /// Handles one call at its entry; returns whether its result matters.
    fn entry(&mut self, tracee: &Tracee, call: &PathCall) -> Result<ExitInterest, rootfs::Error> {
        if let Some(interest) = self.not_a_file(tracee, call) {
            return Ok(interest);
        }
        if let Target::Fd(fd) = call.target {
            // A call on an open descriptor (`fstat`, `getdents64`) needs
            // nothing placed; only a listing in a copying run needs the
            // directory's path, which costs /proc reads to resolve.
            if let (Op::List { wide, .. }, true) = (call.op, self.session.copying) {
                if let Ok(Some(path)) = tracee.resolve(&call.target) {
                    // `who` costs a /proc read: only a new listing needs it.
                    let exercises = &self.exercises;
                    let who = || who_of(tracee, call, exercises.current().cloned());
                    self.session.list(&path, who, !wide, self.observer)?;
                    if wide && self.session.shows(tracee.pid().as_raw(), fd, &path) {
                        return Ok(ExitInterest::Yes);
                    }
                }
            }
            return Ok(ExitInterest::No);
        }
        let Ok(Some(path)) = tracee.resolve(&call.target) else {
            return Ok(ExitInterest::No);
        };
        let follow = match &call.target {
            Target::Path { follow: false, .. } => Follow::No,
            _ => Follow::Yes,
        };
        if let Target::Socket { .. } = &call.target {
            let op = if call.op == Op::Bind {
                SocketOp::Bind
            } else {
                SocketOp::Connect
            };
            let address = path.to_string_lossy().into_owned();
            // A logger sends each line: build `who` (three /proc reads)
            // only for a new address.
            let known = self
                .session
                .sockets
                .iter()
                .any(|s| s.family == SocketFamily::Unix && s.op == op && s.address == address);
            if !known {
                let who = self.who(tracee, call);
                self.session
                    .record_socket(SocketFamily::Unix, op, address, &who);
                if op == SocketOp::Connect {
                    self.socket_dir(&path, &who)?;
                }
            }
            if op == SocketOp::Connect {
                // Served by a process outside the jail: nothing to copy.
                return Ok(ExitInterest::No);
            }
        }
        // Only a regular file (or nothing) at the host's path is created by
        // the program; writing to /dev/null or /dev/stderr (a symlink into
        // /proc) needs the host's device or link.
        let creates = call.op.creates()
            && matches!(
                self.session.host.lstat(&path)?,
                None | Some(rootfs::Meta {
                    kind: Kind::File | Kind::Dir,
                    ..
                })
            );
        let metadata_only = metadata_only(call.op);
        if !metadata_only && crate::accounts::is_account_db(&path) {
            // A lookup in the user or group database (the account search
            // is worth trying only for a program that made one).
            self.session.account_reads = true;
        }
        if self.session.copying {
            self.session.touch(&path, metadata_only);
        }
        let interest = if creates {
            ExitInterest::Yes
        } else {
            ExitInterest::No
        };
        // Fast path: the root has it, and it is not an empty placeholder.
        let probe = if creates {
            path.parent().map(|p| (p.to_path_buf(), Follow::Yes))
        } else {
            Some((path.clone(), follow))
        };
        if let Some((p, f)) = probe {
            let mut meta = match f {
                Follow::Yes => self.session.root.stat(&p)?,
                Follow::No => self.session.root.lstat(&p)?,
            };
            if meta.is_none() && self.session.copying {
                let made = self.session.materialize(&p, f)?;
                if made.made {
                    // The path names what a listing showed: a placeholder now.
                    self.session.touch(&path, metadata_only);
                    meta = match (made.meta, f) {
                        (Some(meta), _) => Some(meta),
                        (None, Follow::Yes) => self.session.root.stat(&p)?,
                        (None, Follow::No) => self.session.root.lstat(&p)?,
                    };
                }
            }
            if let Some(meta) = meta {
                if let Some(ph) = self.session.placeholders.file_at(meta.dev, meta.ino) {
                    if metadata_only {
                        // A stat answers from the placeholder's metadata.
                    } else if self.session.copying {
                        self.session
                            .fill(&ph, &self.who(tracee, call), self.observer)?;
                    } else if self.session.placeholders.is_hollow(&ph) {
                        // A verifying run reads a file kept hollow: the
                        // jail lacks its content.
                        self.session
                            .record_miss(&ph, follow, false, &self.who(tracee, call));
                    }
                }
                if self.session.shared {
                    let exercise = self.exercises.current().cloned();
                    self.session
                        .note_use(&p, f, || who_of(tracee, call, exercise));
                }
                // Each executable's interpreters are checked once a run;
                // skip building `who` (three /proc reads) for the rest.
                if call.op == Op::Exec && !self.session.interp_checked.contains(&path) {
                    self.interpreters(&path, &self.who(tracee, call), 0)?;
                }
                return Ok(interest);
            }
        }
        let who = self.who(tracee, call);
        let placed =
            self.session
                .place(&path, follow, creates, Cause::Accessed, &who, self.observer)?;
        if call.op == Op::Exec && placed == Placement::Placed {
            self.interpreters(&path, &who, 0)?;
        }
        // O_CREAT of a file the host lacks (a pid file, a lock): the
        // program makes it, so it needs the directory it goes in.
        if placed == Placement::Absent && may_create(call.op) {
            self.session
                .place(&path, follow, true, Cause::Accessed, &who, self.observer)?;
            return Ok(ExitInterest::Yes);
        }
        Ok(interest)
    }

    /// A `getdents64` of a directory whose listing shows names returned
    /// `result` into the tracee's `buf` of `count` bytes: once the kernel's
    /// pass is over, the names follow ([`Session::listed_result`]).
    fn listed(
        &mut self,
        tracee: &Tracee,
        fd: i32,
        buf: u64,
        count: u64,
        result: Result<i64, Errno>,
    ) {
        let Ok(n) = result else {
            return;
        };
        let mut got = vec![0u8; usize::try_from(n).unwrap_or(0)];
        // The end of a pass (0) has no records to read.
        let read = if got.is_empty() {
            Ok(())
        } else {
            tracee.read_memory(buf, &mut got).map(drop)
        };
        if let Err(e) = read {
            tracing::debug!(error = %e, "cannot read a listing's records");
            return;
        }
        // The kernel takes the count as an unsigned int.
        let count = count as u32 as usize;
        let tid = tracee.pid().as_raw();
        let done = match self.session.listed_result(tid, fd, &got, count) {
            Shows::Kernel => Ok(()),
            Shows::Names { at, records } => tracee
                .write_memory(buf + at as u64, &records)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    let len = i64::try_from(at + records.len()).unwrap_or(0);
                    tracee.set_result(len).map_err(|e| e.to_string())
                }),
            Shows::TooSmall => tracee
                .set_result(-i64::from(libc::EINVAL))
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = done {
            tracing::debug!(error = %e, "cannot show a listing's names");
        }
    }

    /// The directory of a unix socket the program connects or sends to,
    /// when the host has one: the socket is served from outside the jail,
    /// and that directory is where it goes (`syslogd -a ROOT/dev/log`, or
    /// haproxy's `/var/lib/haproxy/dev`).
    fn socket_dir(&mut self, socket: &Path, who: &Who) -> Result<(), rootfs::Error> {
        let Some(dir) = socket.parent() else {
            return Ok(());
        };
        if self.session.root.stat(dir)?.is_some()
            || !std::fs::metadata(self.session.host.path_of(dir)).is_ok_and(|m| m.is_dir())
        {
            return Ok(());
        }
        self.session
            .place(dir, Follow::Yes, false, Cause::Runtime, who, self.observer)?;
        Ok(())
    }

    /// Calls that name no file but matter to the jail: the ids a program
    /// switches to, ptrace, and the addresses it binds, listens on and
    /// connects to. `None` for every other call.
    fn not_a_file(&mut self, tracee: &Tracee, call: &PathCall) -> Option<ExitInterest> {
        if let Op::SetIds { group, ids } = call.op {
            let set = if group {
                &mut self.session.ran_as_gids
            } else {
                &mut self.session.ran_as_uids
            };
            set.extend(ids.iter().flatten());
            return Some(ExitInterest::No);
        }
        if let Op::Ptrace { .. } = call.op {
            // PTRACE_TRACEME or PTRACE_ATTACH fail with EPERM under
            // jailtrace (a task has one tracer): tell the user why.
            let exe = tracee.exe().unwrap_or_else(|_| PathBuf::from("?"));
            self.session.ptrace_callers.insert(exe);
            return Some(ExitInterest::No);
        }
        if call.op == Op::Listen {
            if let Target::Fd(fd) = &call.target {
                if let Some(addr) = self.session.bound_address(tracee.pid().as_raw(), *fd) {
                    let who = self.who(tracee, call);
                    self.session.record_socket(
                        inet_family(&addr),
                        SocketOp::Listen,
                        addr.to_string(),
                        &who,
                    );
                }
            }
            return Some(ExitInterest::No);
        }
        if let Target::Inet { addr, .. } = &call.target {
            let op = if call.op == Op::Bind {
                SocketOp::Bind
            } else {
                SocketOp::Connect
            };
            self.session.record_socket(
                inet_family(addr),
                op,
                addr.to_string(),
                &self.who(tracee, call),
            );
            // A bind's result tells a port conflict.
            return Some(if call.op == Op::Bind {
                ExitInterest::Yes
            } else {
                ExitInterest::No
            });
        }
        None
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
        let (interp, script) = match jailtrace_elf::interpreter(&self.session.host.path_of(exe)) {
            Ok(Some(Interpreter::Elf { path })) => (path, false),
            Ok(Some(Interpreter::Script { path, .. })) => (path, true),
            Ok(None) | Err(_) => return Ok(()),
        };
        let mut who = who.clone();
        who.exe = Some(exe.to_path_buf());
        let interp: PathBuf = interp;
        self.session.place(
            &interp,
            Follow::Yes,
            false,
            Cause::Interpreter,
            &who,
            self.observer,
        )?;
        if script {
            self.interpreters(&interp, &who, depth + 1)?;
        }
        Ok(())
    }

    /// A call that creates its target succeeded: record what it made.
    fn created(&mut self, tracee: &Tracee, call: &PathCall) -> Result<(), rootfs::Error> {
        let Ok(Some(path)) = tracee.resolve(&call.target) else {
            return Ok(());
        };
        // Recorded where it is: `//run/x` or `/var/run/x` is `/run/x`.
        let path = self.session.root.real_path(&path).unwrap_or(path);
        // What the program makes in a bind is the host directory's.
        if self.session.has_entry(&path) || self.session.policy().is_bound(&path) {
            return Ok(());
        }
        let Some(meta) = self.session.root.lstat(&path)? else {
            return Ok(());
        };
        let kind = match meta.kind {
            Kind::Dir => EntryKind::Dir,
            Kind::File => EntryKind::File,
            // Sockets and fifos are made again by the program each start.
            _ => return Ok(()),
        };
        let who = self.who(tracee, call);
        let reason = who.reason(Cause::Created, self.session.run, None);
        let mode = Mode::from_st_mode(meta.mode);
        let entry = Entry::new(
            path.as_path().into(),
            kind,
            mode,
            meta.uid,
            meta.gid,
            reason,
        );
        self.session.record(entry, self.observer);
        if kind == EntryKind::File {
            self.session.created_this_run.push(path);
        }
        Ok(())
    }

    fn pump_output(&mut self) {
        if let Some(capture) = &mut self.capture {
            let seen = capture.drain();
            if !seen.is_empty() {
                if let Some(kept) = &mut self.transcript {
                    let room = TRANSCRIPT_MAX.saturating_sub(kept.len());
                    kept.extend_from_slice(&seen[..seen.len().min(room)]);
                }
                self.readiness.feed_output(&seen);
            }
        }
    }

    /// Whether what the program left running is a server that has
    /// started ([`LEFTOVER_STILL`]), looked at once a tick during the
    /// grace. A background job that sleeps and then works listens on no
    /// port: it keeps the whole grace.
    fn leftovers_serve(&mut self) -> bool {
        let activity = &self.activity;
        let still = self
            .leftovers_still
            .get_or_insert_with(|| Stillness::new(activity));
        still.for_(activity) >= LEFTOVER_STILL && !self.session.listening_tcp().is_empty()
    }

    /// See [`Session::forget_temporaries`]; a failure only leaves them
    /// recorded.
    fn forget_temporaries(&mut self) {
        if let Err(e) = self.session.forget_temporaries() {
            tracing::debug!(error = %e, "cannot check the files the program created");
        }
    }

    /// Moves the exercises on (never blocks), telling the observer.
    fn exercise(&mut self) {
        let (ended, started) = (self.exercises.results().len(), self.exercises.started());
        self.exercises
            .poll_listening(|| self.session.listening_tcp());
        for result in &self.exercises.results()[ended..] {
            self.observer.exercise_ended(result);
        }
        if self.exercises.started() > started {
            if let Some((index, step)) = self.exercises.running() {
                self.observer
                    .exercise_started(self.session.run, index, step);
            }
        }
    }

    /// After the run: the last output, whether the tree ended ready, and,
    /// when it did, the exercises left (nothing is traced any more, so
    /// they may block; a program that ended before them fails them).
    pub(crate) fn finish(&mut self) {
        if self.terminated_at.is_none() {
            // The tree ended by itself.
            self.forget_temporaries();
        }
        self.pump_output();
        self.readiness.tree_empty();
        if !self.ready {
            self.ready = self.readiness.poll(Duration::ZERO);
        }
        if self.ready {
            self.exercise();
            while !self.exercises.done() {
                self.exercises.wait(POLL_INTERVAL);
                self.exercise();
            }
        }
    }
}

/// A call that needs only its target's metadata (a placeholder made by a
/// listing answers it without its content): the `stat` and `access`
/// families, `readlink`, `statfs`, extended attributes, inotify watches and
/// `O_PATH` opens.
fn metadata_only(op: Op) -> bool {
    match op {
        Op::Access | Op::Stat | Op::Readlink | Op::Statfs | Op::Xattr | Op::Watch => true,
        Op::Open { flags } => flags & libc::O_PATH as u64 != 0,
        _ => false,
    }
}

/// Whether `call` counts as work toward what a client waits for
/// ([`Activity`]). Reading the kernel's state of itself does not (Redis
/// reads /proc/self/stat on its 100 ms cron: a path in /proc or /sys as
/// spelled; one relative to a directory there is not seen as one), nor
/// does a `bind` or `connect` to an IP address: a resolver's queries
/// (bind9's, to the root servers, again and again on a machine without
/// network) go on whatever it was asked.
fn is_work(call: &PathCall) -> bool {
    match &call.target {
        Target::Path { path, .. } => {
            let path = path.as_bytes();
            !(path.starts_with(b"/proc/") || path.starts_with(b"/sys/"))
        }
        Target::Inet { .. } => false,
        _ => true,
    }
}

/// Who made `call`: the tracee (its executable read from /proc), the
/// syscall, and the exercise it was serving.
fn who_of(tracee: &Tracee, call: &PathCall, exercise: Option<jailtrace_manifest::Exercise>) -> Who {
    Who {
        pid: Some(tracee.pid().as_raw()),
        exe: tracee.exe().ok(),
        syscall: Some(call.sysno.name()),
        exercise,
    }
}

/// An open that creates its file when it is missing (`O_CREAT`).
fn may_create(op: Op) -> bool {
    matches!(op, Op::Open { flags } if flags & libc::O_CREAT as u64 != 0)
}

fn inet_family(addr: &SocketAddr) -> SocketFamily {
    match addr {
        SocketAddr::V4(_) => SocketFamily::Inet,
        SocketAddr::V6(_) => SocketFamily::Inet6,
    }
}

impl RunHandler<'_> {
    /// Runs `f` for `call`, with the program's [`Activity`] busy meanwhile
    /// when the call is work toward what a client waits for ([`is_work`]).
    fn busy_with<T>(&mut self, call: &PathCall, f: impl FnOnce(&mut Self) -> T) -> T {
        let work = is_work(call);
        if work {
            self.activity.handling(true);
        }
        let result = f(self);
        if work {
            self.activity.handling(false);
        }
        result
    }

    /// Runs `f` for a call of `job`: the calls of a program run with this
    /// one are its own (the entries they place name it), and are not noted
    /// as the program's uses of the jail's shared entries; those of a
    /// command run before the program are the program's, with no `/proc`
    /// mounted for them (`Session::mounts_paused`).
    fn as_job<T>(&mut self, job: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        self.session.mounts_paused = self.companions.is_before(job);
        let result = match self.companions.runs_as(job).map(str::to_string) {
            None => f(self),
            Some(name) => {
                let program = self.session.program.replace(name);
                let shared = std::mem::replace(&mut self.session.shared, false);
                let result = f(self);
                self.session.program = program;
                self.session.shared = shared;
                result
            }
        };
        self.session.mounts_paused = false;
        result
    }

    /// `Some(Kill)` once the run has lasted longer than its timeout.
    fn timed_out(&mut self, elapsed: Duration) -> Option<Control> {
        let limit = self.timeout?;
        if elapsed <= limit || self.terminated_at.is_some() {
            return None;
        }
        let mut pending = self.companions.pending();
        if self.companions.program_started().is_some() {
            pending.extend(self.readiness.pending());
            pending.extend(self.exercises.pending());
        }
        let why = format!("timeout after {}", humanize(limit));
        self.exercises.abort(&format!("stopped: {why} (--timeout)"));
        Some(Control::Kill(format!(
            "{why} (waiting for: {})",
            pending.join(", ")
        )))
    }

    /// [`Handler::on_entry`]: the call's job's entry; a write into the
    /// root that failed for good ends the run.
    fn handle_entry(&mut self, tracee: &Tracee, call: &PathCall) -> ExitInterest {
        if self.fatal.is_some() {
            return ExitInterest::No;
        }
        match self.as_job(tracee.job(), |h| h.entry(tracee, call)) {
            Ok(_) if self.session.read_only && crate::failed::wants_result(call) => {
                ExitInterest::Yes
            }
            Ok(interest) => interest,
            Err(e) => {
                tracing::warn!(error = %e, "placing a path failed");
                if is_fatal(&e) {
                    self.fatal = Some(e);
                }
                ExitInterest::No
            }
        }
    }

    /// [`Handler::on_exit`]: a listing's names, a bound address, a file the
    /// program created, a failed call for `doctor`.
    fn handle_exit(&mut self, tracee: &Tracee, call: &PathCall, result: Result<i64, Errno>) {
        if let (Op::List { buf, count, .. }, Target::Fd(fd)) = (call.op, &call.target) {
            self.listed(tracee, *fd, buf, count, result);
            return;
        }
        match (&call.target, result) {
            (Target::Inet { addr, .. }, Err(Errno::EADDRINUSE)) => {
                self.session.port_conflict(*addr)
            }
            (Target::Inet { fd, addr }, Ok(_)) if call.op == Op::Bind => {
                self.session.bound(tracee.pid().as_raw(), *fd, *addr)
            }
            (Target::Inet { .. }, _) => {}
            (_, Err(errno)) if self.session.read_only => {
                crate::failed::call_failed(&mut self.session.failed_calls, tracee, call, errno)
            }
            (_, Ok(_)) if self.session.read_only => {}
            (_, Ok(_)) => {
                if let Err(e) = self.as_job(tracee.job(), |h| h.created(tracee, call)) {
                    tracing::debug!(error = %e, "cannot record a created file");
                }
            }
            (_, Err(_)) => {}
        }
    }
}

impl Handler for RunHandler<'_> {
    fn on_entry(&mut self, tracee: &Tracee, call: &PathCall) -> ExitInterest {
        self.busy_with(call, |h| h.handle_entry(tracee, call))
    }

    fn on_exit(&mut self, tracee: &Tracee, call: &PathCall, result: Result<i64, Errno>) {
        self.busy_with(call, |h| h.handle_exit(tracee, call, result));
    }

    fn on_process(&mut self, event: &ProcessEvent) {
        match *event {
            ProcessEvent::Spawned { pid, .. } => self.activity.event(pid.as_raw(), true),
            ProcessEvent::Exec { pid, former } => {
                self.activity.event(former.as_raw(), false);
                self.activity.event(pid.as_raw(), true);
            }
            ProcessEvent::Exited { pid, .. } => self.activity.event(pid.as_raw(), false),
            ProcessEvent::JobEnded { .. } => {}
        }
        if let ProcessEvent::JobEnded { job } = *event {
            if self.companions.is_companion(job) {
                self.companions.ended(job);
            } else {
                self.program_ended = true;
            }
            return;
        }
        let ProcessEvent::Exited {
            status,
            leader,
            job,
            ..
        } = *event
        else {
            return;
        };
        if self.companions.is_companion(job) {
            self.companions.exited(job, status, leader);
            return;
        }
        if leader {
            self.readiness.leader_exited(match status {
                Status::Exited(code) => Some(code),
                Status::Signaled { .. } => None,
            });
            self.leader_exited = true;
        }
        if ready::is_crash(status) {
            self.readiness.crashed();
        }
    }

    fn watched<'b>(&'b self, fds: &mut Vec<BorrowedFd<'b>>) {
        if let Some(capture) = &self.capture {
            capture.watched(fds);
        }
        self.companions.watched(fds);
        self.exercises.watched(fds);
    }

    fn on_readable(&mut self) {
        self.pump_output();
        self.companions.pump_output();
        if self.ready {
            self.exercise();
        }
    }

    /// Often while the program is starting: until its readiness holds
    /// and its exercises are done (each noticed a tick late otherwise, a
    /// server's run ended up to 200 ms after it could), and while the
    /// programs it runs with start.
    fn tick_within(&self) -> Option<Duration> {
        let starting = self.terminated_at.is_none()
            && (self.companions.program_started().is_none()
                || (!self.ready && !self.readiness.only_exit())
                || (self.ready && !self.exercises.done()));
        starting.then_some(STARTING_TICK)
    }

    fn on_tick(&mut self, run_elapsed: Duration) -> Control {
        self.pump_output();
        self.companions.pump_output();
        if let Some(e) = &self.fatal {
            let why = format!("cannot write into the root: {e}");
            self.exercises.abort(&format!("stopped: {why}"));
            return Control::Kill(why);
        }
        // The program's own clock starts when the programs before it are
        // up.
        let elapsed = match self.companions.step(run_elapsed) {
            Step::Program(started) => run_elapsed - started,
            Step::StartNext => return Control::StartNext,
            Step::Wait => return self.timed_out(run_elapsed).unwrap_or(Control::Continue),
            Step::Failed(why) => {
                self.exercises.abort(&format!("stopped: {why}"));
                return Control::Kill(why);
            }
        };
        if !self.ready && self.readiness.poll(elapsed) {
            self.ready = true;
        }
        for status in self.readiness.take_status() {
            self.observer.status(&status);
        }
        if self.ready {
            self.exercise();
        }
        let exercising = self.ready && !self.exercises.done();
        // Stop the tree once ready and exercised (a server), or once the
        // first process exited and its leftovers had their grace and
        // their exercises (a command).
        if self.leader_exited {
            self.leader_exit.get_or_insert(elapsed);
        }
        let leader_gone = self.leader_exit;
        let leftovers_serve = leader_gone.is_some() && !exercising && self.leftovers_serve();
        // Programs run with this one never end by themselves: once its
        // own processes are gone, there is nothing to wait for, ready or
        // not (what has not held by then never will).
        let stop = !exercising
            && ((self.ready && !self.readiness.only_exit())
                || (self.program_ended && !self.ready)
                || leader_gone.is_some_and(|t| {
                    self.readiness.only_exit()
                        && (self.program_ended || elapsed - t >= LEFTOVER_GRACE || leftovers_serve)
                }));
        match self.terminated_at {
            None if stop => {
                self.terminated_at = Some(elapsed);
                self.forget_temporaries();
                return Control::Terminate;
            }
            Some(t) if elapsed - t >= self.stop_timeout => {
                let reason = if self.ready {
                    "still running after SIGTERM"
                } else {
                    "processes left after the program exited"
                };
                return Control::Kill(reason.into());
            }
            _ => {}
        }
        self.timed_out(run_elapsed).unwrap_or(Control::Continue)
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

#[cfg(test)]
mod tests {
    use jailtrace_tracer::Sysno;

    use super::*;

    #[test]
    fn reading_kernel_state_or_reaching_an_ip_address_is_no_work_for_a_client() {
        let open = |path: &str, dirfd: Option<i32>| PathCall {
            sysno: Sysno::Openat,
            op: Op::Open { flags: 0 },
            target: Target::Path {
                dirfd,
                path: path.into(),
                follow: true,
            },
        };
        assert!(!is_work(&open("/proc/self/stat", None)));
        assert!(!is_work(&open(
            "/sys/kernel/mm/transparent_hugepage/enabled",
            None
        )));
        let connect = PathCall {
            sysno: Sysno::Connect,
            op: Op::Connect,
            target: Target::Inet {
                fd: 5,
                addr: "[2001:500:2f::f]:53".parse().unwrap(),
            },
        };
        assert!(!is_work(&connect));
        for work in [
            open("/etc/ssh/sshd_config", None),
            open("/processes", None),
            open("stat", Some(3)),
        ] {
            assert!(is_work(&work), "{:?}", work.target);
        }
    }
}
