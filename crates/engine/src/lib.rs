//! The discovery loop behind `jailtrace run`.
//!
//! One [`run`] turns a program and an empty (or earlier) root into a root the
//! program starts from, and a manifest of it:
//!
//! 1. **pre-seed**: the executable, its interpreter and its ELF closure
//!    (`jailtrace-elf`) are placed before anything runs;
//! 2. **discover**: the program runs chrooted into the root under the tracer;
//!    at the entry of every path syscall, what the root lacks and the host
//!    has is placed (`jailtrace-rootfs`) before the call runs, so the program
//!    never sees the miss; listed directories get placeholders, pruned after
//!    the run when unused;
//! 3. **verify**: the program runs again with copying off; a root that is
//!    complete shows no miss. Misses send the loop back to a **retry** run,
//!    up to `max_runs`.
//!
//! The program is ready when its readiness conditions hold (by default: its
//! first process exits 0; a server: a port answers, a log line appears…);
//! a ready server is then stopped (SIGTERM, then SIGKILL). Nothing is written
//! outside the root; the caller writes the manifest.
//!
//! [`doctor::doctor`] is the other way in: one run of the program in an
//! existing root with copying off and nothing written or mounted, and an
//! explanation of why the program does not start there.

mod accounts;
mod binds;
mod config;
mod creds;
mod digests;
mod dirents;
pub mod doctor;
mod drive;
mod etc;
pub mod exercise;
mod failed;
mod handler;
pub mod input;
mod listing;
mod lookup;
mod mounts;
mod outcome;
mod output;
mod placeholders;
pub mod policy;
pub mod ready;
mod retry;
mod rootdir;
mod rundirs;
mod runner;
mod session;
mod stack;
#[cfg(test)]
mod testutil;
mod who;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use jailtrace_manifest::{
    secret, Cause, Command, Manifest, PathText, Program, Run, RunRole, SCHEMA_VERSION,
};
use jailtrace_rootfs::{self as rootfs, Follow, Host, Root};
use jailtrace_tracer::{self as tracer};

pub use accounts::AccountDbs;
pub use accounts::Accounts;
pub use config::{BeforeCommand, Config, Credentials, MAX_LISTING};
pub use exercise::{Exercise, ExerciseResult};
pub use input::Input;
pub use mounts::{mount_points, MountError};
pub use outcome::{AccountSearch, Error, Outcome, Repeat, Report};
pub use placeholders::ListingStats;
pub use policy::{Policy, RuleError};
pub use rootdir::{check_root, find_program, prepare_root, InputError};
pub use session::{Miss, Observer, Quiet, Who, LAST_ABSENT};

/// Runs the discovery loop of `config`, reporting progress to `observer`.
pub fn run(config: &Config, observer: &mut dyn Observer) -> Result<Report, Error> {
    let start = Instant::now();
    // Before the tracer binds itself to one CPU: the hashing thread keeps
    // the caller's CPUs, and gives way to the traced program on them.
    jailtrace_rootfs::digest::start(jailtrace_tracer::background);
    let root = Root::open(&config.root)?;
    let mut session = session::Session::new(
        root,
        Host::system(),
        config.policy.clone(),
        config.keep_setuid,
        config.max_listing,
    );

    session.account_dbs = config.account_dbs.clone();
    session.placeholders.keep = config.keep_listing.clone();
    session.pid_namespace = config.pid_namespace;
    let mut runs: Vec<Run> = Vec::new();
    if let Some(earlier) = &config.earlier {
        // Several programs share the root: who else needs an entry is
        // recorded.
        session.shared = true;
        session.seed(earlier);
        session.seed_hollow(&earlier.entries)?;
        runs = earlier.runs.clone();
    }
    session.program = Some(config.name.clone());
    session.place_requested(&config.mkdirs, &config.binds, observer)?;
    preseed(config, &mut session, observer)?;
    // A rootless run may have pre-seeded an empty root before its user
    // namespace's ids were mapped (`rootfs::owners::chown_with`); the
    // runs need them (the program's ids, the owners `stat` shows).
    rootfs::owners::settle().map_err(Error::Ids)?;

    // Where the kernel refuses seccomp filters, every syscall stops instead.
    let mut drive = drive::Drive::new(&mut session, observer, runs, config.seccomp);
    // The new program is discovered; then every other program of the jail
    // is verified in the same root, and retried when it misses something.
    let mut outcome = drive.program(config, &companions(config, config)?, RunRole::Discover)?;
    // The summary speaks of this program's exercises, not of the others'.
    let exercised = drive.exercised.clone();
    for other in &config.others {
        if outcome != Outcome::Ready {
            break;
        }
        outcome = drive.program(other, &companions(config, other)?, RunRole::Verify)?;
    }
    let drive::Drive {
        runs,
        pending,
        hints,
        hidden_output,
        search: account_search,
        repeat,
        ..
    } = drive;

    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        created_unix: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        programs: programs(config),
        jail_file: config.earlier.as_ref().and_then(|m| m.jail_file.clone()),
        // The CLI, which made the namespace, says how (`Manifest::rootless`).
        rootless: None,
        root: config.root.as_path().into(),
        runs,
        // A path an earlier run found absent may be on the host now.
        absent: std::mem::take(&mut session.absent)
            .into_iter()
            .filter(|p| !session.has_entry(p.path.as_path()))
            .collect(),
        entries: {
            session.settle_digests();
            std::mem::take(&mut session.entries)
        },
        denied: std::mem::take(&mut session.denied),
        mounts: std::mem::take(&mut session.mounts),
        sockets: std::mem::take(&mut session.sockets),
        accounts: std::mem::take(&mut session.found_accounts),
    };
    let port_conflicts = std::mem::take(&mut session.port_conflicts);
    let last_absent = std::mem::take(&mut session.last_absent).into();
    // What the policy refused in the last run: a program that does not
    // start may need it (a secret). When no run of it started, what it was
    // refused in any: the first failure may have been that (nsd without
    // its control key), the later ones something the first hid (the
    // account search needs a run that started).
    let never_started = !manifest
        .runs
        .iter()
        .any(|r| r.ready && r.program.as_deref() == Some(config.name.as_str()));
    let denied_last_run = if outcome == Outcome::Ready {
        Vec::new()
    } else {
        manifest
            .denied
            .iter()
            .filter(|p| {
                (never_started && p.reason.program.as_deref() == Some(config.name.as_str()))
                    || session
                        .denied_this_run
                        .iter()
                        .any(|d| p.path.as_path() == d)
            })
            .cloned()
            .collect()
    };
    Ok(Report {
        manifest,
        outcome,
        elapsed: start.elapsed(),
        port_conflicts,
        pending,
        exercises: exercised,
        ptrace_callers: session.ptrace_callers.iter().cloned().collect(),
        hints,
        listing: session.placeholders.stats,
        hidden_output,
        last_absent,
        account_search,
        repeat,
        denied_last_run,
    })
}

/// The programs `program` runs with (its `with`), found among the jail's:
/// `config`'s program and its others.
fn companions<'a>(config: &'a Config, program: &Config) -> Result<Vec<&'a Config>, Error> {
    program
        .with
        .iter()
        .map(|name| {
            std::iter::once(config)
                .chain(&config.others)
                .find(|c| &c.name == name && c.name != program.name)
                .ok_or_else(|| Error::UnknownCompanion {
                    program: program.name.clone(),
                    with: name.clone(),
                })
        })
        .collect()
}

/// The manifest's programs: the earlier manifest's, with `config`'s
/// program replacing the one of its name or added after them.
fn programs(config: &Config) -> Vec<Program> {
    let new = program_record(config);
    let mut programs: Vec<Program> = config
        .earlier
        .iter()
        .flat_map(|m| m.programs.iter().cloned())
        .collect();
    match programs.iter_mut().find(|p| p.name == new.name) {
        Some(slot) => *slot = new,
        None => programs.push(new),
    }
    programs
}

/// How `config`'s program is started, as the manifest records it: the
/// redacted variables by name only.
fn program_record(config: &Config) -> Program {
    Program {
        name: config.name.clone(),
        command: Command {
            argv: config
                .argv
                .iter()
                .map(|a| PathText::new(a.clone()))
                .collect(),
            executable: config.executable.as_path().into(),
            cwd: config.cwd.as_path().into(),
            env: config
                .env
                .iter()
                .filter(|item| {
                    let name = secret::split_item(item.as_bytes()).0;
                    !config.env_redacted.iter().any(|r| r.as_bytes() == name)
                })
                .map(|a| PathText::new(a.clone()))
                .collect(),
            env_redacted: Some(
                config
                    .env_redacted
                    .iter()
                    .map(|n| PathText::new(n.clone()))
                    .collect(),
            ),
            user: config.credentials.as_ref().map(|c| c.user.clone()),
            group: config.credentials.as_ref().map(|c| c.group.clone()),
            supplementary_groups: config
                .credentials
                .as_ref()
                .map(|c| c.extra_groups.clone())
                .unwrap_or_default(),
            umask: config.umask.map(|m| format!("{m:04o}")),
            ready: config.ready.iter().map(ToString::to_string).collect(),
            exercises: config.exercises.iter().map(Exercise::record).collect(),
            with: config.with.clone(),
            before: config
                .before
                .iter()
                .map(|b| jailtrace_manifest::Before {
                    argv: b.argv.iter().map(|a| PathText::new(a.clone())).collect(),
                    executable: b.executable.as_path().into(),
                    may_fail: b.may_fail,
                })
                .collect(),
        },
        unit: config.unit.clone(),
    }
}

/// What glibc reads as a dynamically linked program starts, wherever the
/// program goes next: the loader's cache, the locale archive, aliases and
/// the C.UTF-8 locale's files (a walk reports a small directory's entries
/// too), and the time zone.
const GLIBC_START: [&str; 6] = [
    "/etc/ld.so.cache",
    "/usr/lib/locale/locale-archive",
    "/usr/share/locale/locale.alias",
    "/usr/lib/locale/C.utf8/LC_CTYPE",
    "/usr/lib/locale/C.utf8/LC_MESSAGES/SYS_LC_MESSAGES",
    "/etc/localtime",
];

/// Places the executable, its interpreters and its ELF closure before the
/// first run, so that the first run does not start with a failed exec.
fn preseed(
    config: &Config,
    session: &mut session::Session,
    observer: &mut dyn Observer,
) -> Result<(), Error> {
    let who = Who::default();
    let mut wanted: Vec<(&Path, Cause)> = vec![
        (&config.executable, Cause::Executable),
        (&config.cwd, Cause::Runtime),
    ];
    // A program run as a service user resolves its own name, and so does
    // `chroot --userspec`: the user and group databases go in.
    if config.credentials.is_some() {
        for db in ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf"] {
            wanted.push((Path::new(db), Cause::Runtime));
        }
    }
    // Every jail gets the scratch directories programs take for granted
    // (mode 1777, as on the host).
    for scratch in ["/tmp", "/var/tmp"] {
        wanted.push((Path::new(scratch), Cause::Runtime));
    }
    let opts = jailtrace_elf::ClosureOptions {
        ld_library_path: config.ld_library_path.clone(),
        ..Default::default()
    };
    let closure = jailtrace_elf::closure(&config.executable, &opts).ok();
    // Rootless, the owners of all of these come in one request, with those
    // of what a program linked with glibc reads as it starts (asked for,
    // never placed unless the program asks).
    let objects: Vec<&Path> = closure
        .iter()
        .flat_map(|c| &c.objects)
        .map(|o| o.path.as_path())
        .collect();
    let gconv = objects
        .iter()
        .find(|o| o.file_name().is_some_and(|n| n == "libc.so.6"))
        .and_then(|libc| libc.parent())
        .map(|dir| dir.join("gconv/gconv-modules.cache"));
    let all: Vec<&Path> = wanted
        .iter()
        .map(|(path, _)| *path)
        .chain(objects.iter().copied())
        .chain(gconv.iter().map(PathBuf::as_path))
        .chain(GLIBC_START.iter().map(Path::new))
        .collect();
    session.host.prefetch_owners(&all);
    for (path, cause) in wanted {
        session.place(path, Follow::Yes, false, cause, &who, observer)?;
    }
    {
        let readiness = ready::Readiness::new(Vec::new());
        let mut h =
            handler::RunHandler::new(session, observer, None, config.stop_timeout, readiness);
        h.interpreters(&config.executable, &who, 0)?;
    }
    if let Some(closure) = closure {
        session.place_closure(closure, observer)?;
    }
    Ok(())
}
