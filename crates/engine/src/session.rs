//! The state one `jailtrace run` keeps across its runs, and the one place
//! where a needed path becomes entries in the root.
//!
//! [`Session::place`] plans a jail path against the host (symlink chain,
//! parent directories, the file itself), checks every step against the
//! policy, and either applies the steps (a copying run) or records a miss (a
//! verifying run). Every entry placed is recorded once, with the reason of
//! the first request that needed it.
//!
//! A *read-only* session (`jailtrace doctor`) never writes: every run only
//! checks, misses are recorded, a file system the program needs is noted
//! but not mounted, and nothing is listed, filled, pruned or synthesized.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use std::net::SocketAddr;

use jailtrace_manifest::{
    Cause, Entry, EntryKind, Exercise, FoundAccount, Manifest, Mount, Probe, Reason, Socket,
};
use jailtrace_rootfs::{self as rootfs, Applied, Follow, Host, Outcome, Root, Step};

use crate::accounts::{is_account_db, AccountDbs};
use crate::exercise::QuietPorts;
use crate::mounts::Mounts;
use crate::placeholders::Placeholders;
use crate::policy::{Policy, Verdict};
pub use crate::who::Who;

/// How many of the paths the host lacks too a run keeps, the latest
/// ([`Session::last_absent`]).
pub const LAST_ABSENT: usize = 5;

/// A path a verifying run found missing although the host has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    pub path: PathBuf,
    /// Whether the call followed a symlink at the last component.
    pub follow: Follow,
    pub syscall: Option<&'static str>,
    pub pid: Option<i32>,
    pub exe: Option<PathBuf>,
    /// The program creates the path: only its parent directory is missing.
    pub creates: bool,
    /// The exercise running when the program missed it.
    pub exercise: Option<Exercise>,
}

/// What [`Session::place`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The root had it already.
    Present,
    /// Steps were applied (or, in a verifying run, recorded as a miss).
    Placed,
    /// The host lacks it too.
    Absent,
    /// The policy refused a step.
    Denied,
    /// It lives in /proc or /sys.
    Virtual,
    /// It lies in a bind (`--bind`): the host directory mounted there has it or not.
    Bound,
    /// A loop, a fifo or socket on the host: nothing to place.
    Nothing,
}

/// Counters of the current run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunCounters {
    pub placed: u32,
    pub bytes: u64,
}

/// Receives each entry as it is placed (the CLI's progress and `-v`).
pub trait Observer {
    fn run_started(&mut self, _index: u32, _role: jailtrace_manifest::RunRole) {}
    fn placed(&mut self, _entry: &Entry) {}
    fn run_finished(&mut self, _run: &jailtrace_manifest::Run) {}
    fn warn(&mut self, _message: &str) {}
    /// The program said how it is doing (sd_notify's `STATUS=`).
    fn status(&mut self, _text: &str) {}
    /// Exercise `index` (1-based) of run `run` started.
    fn exercise_started(
        &mut self,
        _run: u32,
        _index: usize,
        _exercise: &crate::exercise::Exercise,
    ) {
    }
    fn exercise_ended(&mut self, _result: &crate::ExerciseResult) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;
impl Observer for Quiet {}

#[derive(Debug)]
pub struct Session {
    pub(crate) root: Root,
    pub(crate) host: Host,
    policy: Policy,
    keep_setuid: bool,
    /// Copying (discover, retry) or only checking (verify).
    pub(crate) copying: bool,
    /// The index of the run in progress.
    pub(crate) run: u32,
    pub(crate) entries: Vec<Entry>,
    /// Entries whose file is still being hashed.
    pub(crate) digests: crate::digests::Pending,
    index: HashMap<PathBuf, usize>,
    /// Directories some recorded entry lies below (may name one whose
    /// entries were forgotten since: then a lookup only costs a scan).
    holders: HashSet<PathBuf>,
    pub(crate) absent: Vec<Probe>,
    absent_seen: HashSet<PathBuf>,
    /// The last [`LAST_ABSENT`] paths the current run probed that the host
    /// lacks too, oldest first (for the summary of a program that fails).
    pub(crate) last_absent: VecDeque<Probe>,
    pub(crate) denied: Vec<Probe>,
    denied_seen: HashSet<PathBuf>,
    pub(crate) mounts: Vec<Mount>,
    pub(crate) misses: Vec<Miss>,
    misses_seen: HashSet<PathBuf>,
    pub(crate) counters: RunCounters,
    pub(crate) placeholders: Placeholders,
    /// Executables whose interpreters were checked in this run.
    pub(crate) interp_checked: HashSet<PathBuf>,
    pub(crate) mounted: Mounts,
    pub(crate) sockets: Vec<Socket>,
    /// The listening ports that took the exercise's request without
    /// speaking first: a later run sends it at once.
    pub(crate) quiet_ports: QuietPorts,
    /// Addresses a bind found in use (EADDRINUSE).
    pub(crate) port_conflicts: Vec<SocketAddr>,
    /// How /etc/passwd and /etc/group are made.
    pub(crate) account_dbs: AccountDbs,
    /// The program runs in its own pid namespace (its /proc is mounted for it).
    pub(crate) pid_namespace: bool,
    /// The calls now handled are a command's run before the program, in
    /// jailtrace's pid namespace: a `/proc` mounted for it would show the
    /// host's processes, to the program too, so only its mount point is
    /// made (the mount is recorded; the program's own use mounts it).
    pub(crate) mounts_paused: bool,
    /// User and group ids the program switched to.
    pub(crate) ran_as_uids: BTreeSet<u32>,
    pub(crate) ran_as_gids: BTreeSet<u32>,
    /// Executables that called ptrace(2) (it fails under tracing).
    pub(crate) ptrace_callers: std::collections::BTreeSet<PathBuf>,
    /// Bound sockets by (pid, fd), for recording their `listen`.
    bound: HashMap<(i32, i32), SocketAddr>,
    /// A mount failed: the program cannot get what it asked for.
    pub(crate) mount_failures: Vec<String>,
    /// Nothing is written into the root and nothing mounted in it
    /// (`jailtrace doctor`); every run only checks.
    pub(crate) read_only: bool,
    /// The name of the program whose runs these are (entries and probes
    /// record it).
    pub(crate) program: Option<String>,
    /// The root holds other programs' entries too: [`Session::note_use`]
    /// records which programs need an entry.
    pub(crate) shared: bool,
    /// Paths [`Session::note_use`] looked at for the current program.
    pub(crate) noted: HashSet<PathBuf>,
    /// Files the program created in this run (see
    /// [`Session::forget_temporaries`]).
    pub(crate) created_this_run: Vec<PathBuf>,
    /// Paths (and whether they were followed) the host lacked when a run
    /// of this session needed them; the host is not walked for them again.
    host_absent: HashSet<(PathBuf, bool)>,
    /// Path calls that failed in a read-only session, for the diagnosis.
    pub(crate) failed_calls: Vec<crate::failed::FailedCall>,
    /// Paths in a file system the root lacks mounted (/proc, /sys,
    /// /dev/pts) that a read-only session saw, with the file system.
    pub(crate) virtual_misses: Vec<(PathBuf, &'static str, Who)>,
    /// Host accounts kept because a program looks them up by name (the
    /// account search, [`crate::lookup`]; an earlier manifest's).
    pub(crate) found_accounts: Vec<FoundAccount>,
    /// The host accounts a run of the account search adds to the jail's
    /// (users, groups); `None` outside the search.
    pub(crate) trial_accounts: Option<(BTreeSet<String>, BTreeSet<String>)>,
    /// The current run opened `/etc/passwd` or `/etc/group`.
    pub(crate) account_reads: bool,
    /// Paths the policy refused in the current run (each once).
    pub(crate) denied_this_run: Vec<PathBuf>,
}

impl Session {
    pub fn new(
        root: Root,
        host: Host,
        policy: Policy,
        keep_setuid: bool,
        max_listing: usize,
    ) -> Session {
        let placeholders = Placeholders::new(max_listing, root.path());
        Session {
            root,
            host,
            policy,
            keep_setuid,
            copying: true,
            run: 0,
            entries: Vec::new(),
            digests: Default::default(),
            index: HashMap::new(),
            holders: HashSet::new(),
            absent: Vec::new(),
            absent_seen: HashSet::new(),
            last_absent: VecDeque::new(),
            denied: Vec::new(),
            denied_seen: HashSet::new(),
            mounts: Vec::new(),
            misses: Vec::new(),
            misses_seen: HashSet::new(),
            counters: RunCounters::default(),
            placeholders,
            interp_checked: HashSet::new(),
            mounted: Mounts::default(),
            sockets: Vec::new(),
            quiet_ports: QuietPorts::default(),
            port_conflicts: Vec::new(),
            bound: HashMap::new(),
            ptrace_callers: Default::default(),
            account_dbs: AccountDbs::Copy,
            pid_namespace: false,
            mounts_paused: false,
            ran_as_uids: BTreeSet::new(),
            ran_as_gids: BTreeSet::new(),
            mount_failures: Vec::new(),
            read_only: false,
            failed_calls: Vec::new(),
            virtual_misses: Vec::new(),
            program: None,
            shared: false,
            noted: HashSet::new(),
            created_this_run: Vec::new(),
            host_absent: HashSet::new(),
            found_accounts: Vec::new(),
            trial_accounts: None,
            account_reads: false,
            denied_this_run: Vec::new(),
        }
    }

    /// A session on the fake host at `host` with the root at `root` and
    /// the default policy (for tests).
    #[cfg(test)]
    pub(crate) fn fake(host: &Path, root: &Path) -> Session {
        Session::new(
            Root::open(root).expect("a test root opens"),
            Host::at(host),
            Policy::default(),
            false,
            100,
        )
    }

    /// Continues from an earlier manifest of this root (`jailtrace update
    /// --run`): its entries count as placed, so what is already in the root
    /// stays recorded with its first reason, and only new needs are added.
    pub(crate) fn seed(&mut self, earlier: &Manifest) {
        for entry in &earlier.entries {
            self.index
                .insert(entry.path.as_path().to_path_buf(), self.entries.len());
            self.note_holders(entry.path.as_path());
            self.entries.push(entry.clone());
        }
        for probe in &earlier.absent {
            self.record_absent_probe(probe.clone());
        }
        for probe in &earlier.denied {
            if self.denied_seen.insert(probe.path.as_path().to_path_buf()) {
                self.denied.push(probe.clone());
            }
        }
        self.mounts = earlier.mounts.clone();
        for bind in self.mounts.iter().filter(|m| m.is_bind()) {
            self.policy.bind(bind.path.as_path());
        }
        self.sockets = earlier.sockets.clone();
        self.found_accounts = earlier.accounts.clone();
    }

    fn record_absent_probe(&mut self, probe: Probe) {
        if self.absent_seen.insert(probe.path.as_path().to_path_buf()) {
            self.absent.push(probe);
        }
    }

    /// Starts run `index`, copying or only checking.
    pub(crate) fn begin_run(&mut self, index: u32, copying: bool) {
        self.run = index;
        self.copying = copying && !self.read_only;
        self.counters = RunCounters::default();
        self.misses.clear();
        self.misses_seen.clear();
        self.interp_checked.clear();
        self.last_absent.clear();
        self.created_this_run.clear();
        self.account_reads = false;
        self.denied_this_run.clear();
    }

    /// A digest of everything a run starts from that can change between
    /// runs: every entry recorded (path, kind, mode, owner, size, content
    /// hash, target, hollowness: the account databases' content among
    /// them), the mounts, whether the run copies, and the root as it is
    /// on disk (each name's kind, mode, owner, size and link target, not
    /// crossing mounts; what the program itself moved, linked or removed
    /// there shows). The program's input (argv, environment, stdin,
    /// binds) is the same for every run of one invocation. Two runs with
    /// the same digest start from the same root: the second cannot change
    /// anything the first did not (file content the program rewrote at
    /// the same size and times are not compared).
    ///
    /// A large copy still being hashed counts without its content hash
    /// (its entry has none until the manifest is made, see
    /// [`crate::digests`]): its size, times and path stand for the host
    /// file it came from, and waiting for the hash here held every run
    /// back while the hashing thread, on the other CPU, could finish it
    /// beside the program (1.8 ms of libc in every run's start).
    pub(crate) fn state_digest(&mut self, copying: bool) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        copying.hash(&mut hasher);
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        for e in entries {
            (&e.path, e.kind.as_str(), e.mode, e.uid, e.gid).hash(&mut hasher);
            (e.size, &e.sha256, &e.target, e.hollow).hash(&mut hasher);
        }
        for m in &self.mounts {
            (&m.path, &m.fstype, &m.options).hash(&mut hasher);
        }
        hash_tree(self.root.path(), &mut hasher);
        hasher.finish()
    }

    /// Forgets the files the program created in this run and removed
    /// again while it ran (a `mkstemp` file renamed into place, a
    /// semaphore file unlinked at once): temporaries, with a new name each
    /// run, that no jail needs. Called before the program is stopped, so a
    /// pid file it removes when it stops stays recorded.
    pub(crate) fn forget_temporaries(&mut self) -> Result<(), rootfs::Error> {
        let mut gone = HashSet::new();
        for path in std::mem::take(&mut self.created_this_run) {
            if self.root.lstat(&path)?.is_none() {
                gone.insert(path);
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        let before = self.entries.len();
        self.entries.retain(|e| {
            !(e.reason.cause == Cause::Created
                && e.kind == EntryKind::File
                && gone.contains(e.path.as_path()))
        });
        // Each was recorded, and counted, in this run.
        self.counters.placed = self
            .counters
            .placed
            .saturating_sub((before - self.entries.len()) as u32);
        self.reindex();
        Ok(())
    }

    /// Rebuilds the path index after entries moved.
    fn reindex(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.as_path().to_path_buf(), i))
            .collect();
    }

    /// Notes that an entry at `path` is recorded below each of its
    /// ancestors.
    fn note_holders(&mut self, path: &Path) {
        for dir in path.ancestors().skip(1) {
            if !self.holders.insert(dir.to_path_buf()) {
                break;
            }
        }
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    pub(crate) fn policy_mut(&mut self) -> &mut Policy {
        &mut self.policy
    }

    pub(crate) fn keep_setuid(&self) -> bool {
        self.keep_setuid
    }

    /// Replaces the recorded entry at `entry.path` (a hollow file whose
    /// content a later run copied), or records it when there is none.
    pub(crate) fn replace_entry(&mut self, entry: Entry) {
        match self.index.get(entry.path.as_path()) {
            Some(&i) => self.entries[i] = entry,
            None => {
                self.index
                    .insert(entry.path.as_path().to_path_buf(), self.entries.len());
                self.note_holders(entry.path.as_path());
                self.entries.push(entry);
            }
        }
    }

    /// Makes `path` exist in the root as it does on the host. `creates`: the
    /// program creates the path itself, so only its parent is placed.
    pub fn place(
        &mut self,
        path: &Path,
        follow: Follow,
        creates: bool,
        cause: Cause,
        who: &Who,
        observer: &mut dyn Observer,
    ) -> Result<Placement, rootfs::Error> {
        match self.policy.verdict(path) {
            Verdict::Virtual(fs) => {
                self.note_virtual(path, fs, who);
                self.need_mount(fs, who);
                return Ok(Placement::Virtual);
            }
            Verdict::Bound => return Ok(Placement::Bound),
            _ => {}
        }
        if path == Path::new("/dev/ptmx") {
            // Opening ptmx finds its devpts through the `pts` directory
            // beside it (Linux 4.7+): the pty needs /dev/pts.
            self.place(
                Path::new("/dev"),
                Follow::Yes,
                false,
                Cause::Parent,
                who,
                observer,
            )?;
            self.note_virtual(path, "/dev/pts", who);
            self.need_mount("/dev/pts", who);
        }
        if !creates
            && is_account_db(path)
            && matches!(self.account_dbs, AccountDbs::Synthesize { .. })
        {
            return self.place_account_db(path, who, observer);
        }
        // The host lacked it in an earlier run of this invocation, and the
        // root lacks it now (the handler asks only then): no need to walk
        // the host again.
        let known_absent = (path.to_path_buf(), follow == Follow::Yes);
        if !creates && self.host_absent.contains(&known_absent) {
            self.record_absent(path, who);
            return Ok(Placement::Absent);
        }
        let plan = if creates {
            rootfs::plan_parent(&self.root, &self.host, path)
        } else {
            rootfs::plan(&self.root, &self.host, path, follow)
        };
        let plan = match plan {
            Err(e) if host_refused(&e) => return Ok(self.record_unreadable(path, who, &e)),
            other => other?,
        };
        // A chain that leads into /proc or /sys (`/dev/stderr ->
        // /proc/self/fd/2`) is placed up to there and the file system
        // mounted, whatever the host walk found beyond; one into a bind,
        // up to there.
        let boundary = plan.steps.iter().position(|s| {
            matches!(
                self.policy.verdict(s.path()),
                Verdict::Virtual(_) | Verdict::Bound
            )
        });
        let outcome = match boundary {
            Some(_) => Outcome::Placed,
            None => plan.outcome.clone(),
        };
        match outcome {
            Outcome::Present => {
                self.note_use(path, follow, || who.clone());
                return Ok(Placement::Present);
            }
            Outcome::AbsentOnHost { .. } | Outcome::NotADirectory { .. } => {
                if !creates {
                    self.record_absent(path, who);
                    self.host_absent.insert(known_absent);
                }
                return Ok(Placement::Absent);
            }
            Outcome::Loop | Outcome::Special { .. } => return Ok(Placement::Nothing),
            Outcome::Placed => {}
        }
        // Check the whole chain first: a denied step anywhere denies the
        // path; a chain that leads into /proc or /sys (`/dev/stderr ->
        // /proc/self/fd/2`) is placed up to there, and the file system mounted.
        let mut steps = &plan.steps[..boundary.unwrap_or(plan.steps.len())];
        let mut mount = None;
        let mut bound = false;
        for (i, step) in plan
            .steps
            .iter()
            .enumerate()
            .take(boundary.map_or(usize::MAX, |b| b + 1))
        {
            match self.policy.verdict(step.path()) {
                Verdict::Copy => {}
                Verdict::Virtual(fs) => {
                    steps = &plan.steps[..i];
                    mount = Some(fs);
                    break;
                }
                Verdict::Bound => {
                    steps = &plan.steps[..i];
                    bound = true;
                    break;
                }
                Verdict::Deny(rule) => {
                    self.record_denied(path, who, rule);
                    return Ok(Placement::Denied);
                }
                Verdict::DirsOnly(_) if matches!(step, Step::Dir { .. }) => {}
                Verdict::DirsOnly(rule) => {
                    self.record_denied(path, who, rule);
                    return Ok(Placement::Denied);
                }
            }
            if let Step::File {
                path: file, attrs, ..
            } = step
            {
                if let Some(rule) = self.policy.secret_file(file, attrs.mode) {
                    self.record_denied(path, who, rule.to_string());
                    return Ok(Placement::Denied);
                }
                if let Some(uid) = who
                    .pid
                    .and_then(|pid| crate::policy::unreadable_by(pid, attrs))
                {
                    self.record_denied(
                        path,
                        who,
                        format!("not readable on the host by uid {uid}, which asked for it"),
                    );
                    return Ok(Placement::Denied);
                }
            }
            if let Step::File { path: file, .. } = step {
                // Rootless, jailtrace reads the host as the user who ran
                // it: refuse before anything on the way is made.
                if rootfs::owners::rootless() {
                    let host = self.host.path_of(file);
                    if let Err(errno) = nix::unistd::access(&host, nix::unistd::AccessFlags::R_OK) {
                        let e = rootfs::Error::Host {
                            op: "read",
                            path: host,
                            source: errno.into(),
                        };
                        return Ok(self.record_unreadable(path, who, &e));
                    }
                }
            }
            if let Step::Device { block: true, .. } = step {
                self.record_denied(path, who, "block devices are never created".into());
                return Ok(Placement::Denied);
            }
        }
        if !self.copying && !steps.is_empty() {
            if self.denied_seen.contains(path) {
                // A copying run found the host refusing it: retrying would not help.
                return Ok(Placement::Denied);
            }
            self.record_miss(path, follow, creates, who);
            return Ok(Placement::Placed);
        }
        let copying = self.copying;
        for step in steps.iter().filter(|_| copying) {
            let step_cause = if step.path() == plan.resolved && !creates {
                cause
            } else {
                match step {
                    Step::Symlink { .. } => Cause::SymlinkChain,
                    _ => Cause::Parent,
                }
            };
            let requested = (step.path() != path).then_some(path);
            let reason = who.reason(step_cause, self.run, requested);
            match self.apply(step, reason, observer) {
                Err(e) if host_refused(&e) => return Ok(self.record_unreadable(path, who, &e)),
                other => other?,
            }
        }
        if let Some(fs) = mount {
            self.note_virtual(path, fs, who);
            self.need_mount(fs, who);
            return Ok(Placement::Virtual);
        }
        if bound {
            return Ok(Placement::Bound);
        }
        Ok(Placement::Placed)
    }

    /// Applies one step and records its entry.
    pub(crate) fn apply(
        &mut self,
        step: &Step,
        reason: Reason,
        observer: &mut dyn Observer,
    ) -> Result<(), rootfs::Error> {
        if self.read_only {
            return Ok(());
        }
        let mut step = step.clone();
        let mut stripped = false;
        if let Step::File { attrs, .. } = &mut step {
            if attrs.mode & 0o6000 != 0 && !self.keep_setuid {
                attrs.mode &= !0o6000;
                stripped = true;
            }
        }
        let applied = self.root.apply(&self.host, &step)?;
        let (entry, pending) = entry_deferred(&step, &applied, stripped, reason);
        if let Applied::File(copied) = &applied {
            self.counters.bytes += copied.bytes;
        }
        self.digests.add(step.path(), pending);
        self.record(entry, observer);
        Ok(())
    }

    /// Records an entry (the first reason wins). Entries stay in the order
    /// they were placed, except that a directory always comes before what
    /// it holds (a listed directory is recorded only after its run).
    pub(crate) fn record(&mut self, mut entry: Entry, observer: &mut dyn Observer) {
        let key = entry.path.as_path().to_path_buf();
        if self.index.contains_key(&key) {
            return;
        }
        // Placed otherwise, a name a listing showed is the root's own now.
        self.placeholders.take_unmade(&key);
        entry.reason = self.tag(entry.reason);
        self.counters.placed += 1;
        observer.placed(&entry);
        let at = match entry.kind {
            EntryKind::Dir if self.holders.contains(&key) => self
                .entries
                .iter()
                .position(|e| e.path.as_path().starts_with(&key)),
            _ => None,
        }
        .unwrap_or(self.entries.len());
        self.note_holders(&key);
        self.entries.insert(at, entry);
        if at + 1 < self.entries.len() {
            // The entries after it moved one place down.
            for i in self.index.values_mut().filter(|i| **i >= at) {
                *i += 1;
            }
        }
        self.index.insert(key, at);
    }

    /// `reason`, naming the program whose run this is (when it names none).
    pub(crate) fn tag(&self, mut reason: Reason) -> Reason {
        if reason.program.is_none() {
            reason.program = self.program.clone();
        }
        reason
    }

    /// The program whose run this is needs `path`, which the root has: when
    /// an entry of another program's, remember this program's first
    /// request of it (the entry's `also_needed_by`). Cheap when the entry
    /// is this program's or already names it.
    pub(crate) fn note_use(&mut self, path: &Path, follow: Follow, who: impl FnOnce() -> Who) {
        if !self.shared || self.noted.contains(path) {
            return;
        }
        self.noted.insert(path.to_path_buf());
        // The entry of what `path` leads to (`/lib/libc.so.6` is recorded
        // as `/usr/lib/libc.so.6`).
        let resolved = if self.index.contains_key(path) {
            path.to_path_buf()
        } else {
            match rootfs::plan(&self.root, &self.host, path, follow) {
                Ok(plan) => plan.resolved,
                Err(_) => return,
            }
        };
        let (Some(program), Some(&i)) = (&self.program, self.index.get(&resolved)) else {
            return;
        };
        let entry = &self.entries[i];
        let named = |r: &Reason| r.program.as_ref() == Some(program);
        if named(&entry.reason) || entry.also_needed_by.iter().any(named) {
            return;
        }
        let reason = self.tag(who().reason(Cause::Accessed, self.run, None));
        self.entries[i].also_needed_by.push(reason);
    }

    /// Waits for the digests of large copies still being hashed and puts
    /// them in their entries.
    pub(crate) fn settle_digests(&mut self) {
        self.digests.settle(&mut self.entries, &self.index);
    }

    pub(crate) fn entry(&self, path: &Path) -> Option<&Entry> {
        self.index.get(path).map(|&i| &self.entries[i])
    }

    pub(crate) fn entry_mut(&mut self, path: &Path) -> Option<&mut Entry> {
        self.index.get(path).map(|&i| &mut self.entries[i])
    }

    pub(crate) fn has_entry(&self, path: &Path) -> bool {
        self.index.contains_key(path)
    }

    /// A verifying run found `path` missing although it could be placed.
    pub(crate) fn record_miss(&mut self, path: &Path, follow: Follow, creates: bool, who: &Who) {
        if self.misses_seen.insert(path.to_path_buf()) {
            self.misses.push(Miss {
                path: path.to_path_buf(),
                follow,
                creates,
                syscall: who.syscall,
                pid: who.pid,
                exe: who.exe.clone(),
                exercise: who.exercise.clone(),
            });
        }
    }

    fn record_absent(&mut self, path: &Path, who: &Who) {
        let probe = Probe {
            path: path.into(),
            reason: self.tag(who.reason(Cause::Accessed, self.run, None)),
            rule: None,
        };
        self.last_absent.retain(|p| p.path != probe.path);
        if self.last_absent.len() == LAST_ABSENT {
            self.last_absent.pop_front();
        }
        self.last_absent.push_back(probe.clone());
        self.record_absent_probe(probe);
    }

    /// The host refused jailtrace a read on the way to `path` (a rootless
    /// jailtrace reads the host as the user who ran it: a file of mode 0600
    /// of another user, a directory it may not search). Recorded among the
    /// denied paths, with the reason, never a half-made entry: the file's
    /// copy is only created after the host file was opened.
    fn record_unreadable(&mut self, path: &Path, who: &Who, e: &rootfs::Error) -> Placement {
        let errno = e
            .raw_os_error()
            .map_or(nix::errno::Errno::UnknownErrno, nix::errno::Errno::from_raw);
        let rule = if rootfs::owners::rootless() {
            format!(
                "not readable on the host by you, who ran jailtrace without root ({e}: {}); \
                 run jailtrace as root to copy it",
                errno.desc()
            )
        } else {
            format!(
                "the host refused jailtrace reading it ({e}: {})",
                errno.desc()
            )
        };
        self.record_denied(path, who, rule);
        Placement::Denied
    }

    fn record_denied(&mut self, path: &Path, who: &Who, rule: String) {
        if !self.denied_this_run.iter().any(|p| p == path) {
            self.denied_this_run.push(path.to_path_buf());
        }
        if self.denied_seen.insert(path.to_path_buf()) {
            let reason = self.tag(who.reason(Cause::Accessed, self.run, None));
            self.denied.push(Probe {
                path: path.into(),
                reason,
                rule: Some(rule),
            });
        }
    }

    /// A read-only session notes each path that needed `fs` (the first few).
    fn note_virtual(&mut self, path: &Path, fs: &'static str, who: &Who) {
        if self.read_only && self.virtual_misses.len() < 100 {
            self.virtual_misses
                .push((path.to_path_buf(), fs, who.clone()));
        }
    }

    /// Notes that the jail needs `fs` mounted, and mounts it for the runs
    /// (not in a read-only session).
    pub(crate) fn need_mount(&mut self, fs: &str, who: &Who) {
        let fstype = match fs {
            "/proc" => "proc",
            "/dev/pts" => "devpts",
            _ => "sysfs",
        };
        let path = Path::new(fs);
        if !self.mounts.iter().any(|m| m.path.as_path() == path) {
            let reason = self.tag(who.reason(Cause::Runtime, self.run, None));
            self.mounts.push(Mount {
                fstype: fstype.into(),
                path: path.into(),
                options: match fstype {
                    "devpts" => vec!["bind".into()],
                    _ => ["ro", "nosuid", "nodev", "noexec"]
                        .map(String::from)
                        .to_vec(),
                },
                source: None,
                reason,
            });
        }
        if self.read_only || self.mounted.is_mounted(&self.root, path) {
            return;
        }
        let pidns = who.pid.filter(|_| self.pid_namespace);
        let made = if self.mounts_paused && fstype == "proc" {
            // Only its mount point: the program's own use mounts it.
            Mounts::mount_point(&mut self.root, &self.host, path)
        } else {
            self.mounted
                .mount(&mut self.root, &self.host, fstype, path, pidns)
        };
        match made {
            Ok(created) => {
                if created {
                    // The host's mount point, as the mount made in the root
                    // shows it to root (rootless, a file system's root
                    // belongs to an id the namespace lacks).
                    let meta = match self.host.lstat(path) {
                        Ok(Some(meta)) => Ok(Some(meta)),
                        _ => self.root.lstat(path),
                    };
                    if let Ok(Some(meta)) = meta {
                        let step = Step::Dir {
                            path: path.to_path_buf(),
                            attrs: meta.attrs(),
                        };
                        let entry = entry_for(
                            &step,
                            &Applied::Dir,
                            false,
                            who.reason(Cause::Runtime, self.run, None),
                        );
                        self.record(entry, &mut Quiet);
                    }
                }
            }
            Err(e) => self.mount_failures.push(e.to_string()),
        }
    }
}

pub(crate) use jailtrace_jail::{entry_deferred, entry_for};

/// Hashes the tree below `top` (names in order; each name's kind, mode,
/// owner, size and link target), without following links or crossing
/// into another file system. Only metadata is read.
fn hash_tree(top: &Path, hasher: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(top) else {
        return;
    };
    let dev = meta.dev();
    let mut stack = vec![top.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        // Each entry's metadata is asked of its directory (no lookup from
        // `/` for every name), its path hashed as bytes.
        let mut items: Vec<_> = read.filter_map(Result::ok).collect();
        items.sort_by_cached_key(|d| d.file_name());
        for item in items {
            let Ok(meta) = item.metadata() else {
                continue;
            };
            let path = item.path();
            let rel = path.strip_prefix(top).unwrap_or(&path);
            rel.as_os_str().hash(hasher);
            (meta.mode(), meta.uid(), meta.gid()).hash(hasher);
            if meta.file_type().is_symlink() {
                std::fs::read_link(&path).ok().hash(hasher);
            } else if meta.is_dir() {
                if meta.dev() == dev {
                    stack.push(path);
                }
            } else {
                meta.size().hash(hasher);
            }
        }
    }
}

/// Whether `e` is the host refusing a read (`EACCES`, `EPERM`), not the
/// root failing.
fn host_refused(e: &rootfs::Error) -> bool {
    matches!(e, rootfs::Error::Host { .. })
        && matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM))
}

mod sockets;
#[cfg(test)]
mod tests;
