//! `jailtrace run`: validate the input, drive the engine, write the
//! manifest, print the summary. Every check of the input (`--bind` and
//! `--mkdir` included) comes before anything is written. A run that fails
//! never writes the manifest; when it was adding to a jail that exists,
//! what it placed in the root is taken out again (`rollback.rs`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::HumanBytes;
use jailtrace_engine::{self as engine, Config, Outcome, Policy};
use jailtrace_manifest::{Manifest, Program, Unfinished};
use jailtrace_spec::{Base, EnvSpec, Environment};

use crate::cli::{DirArgs, ProgramArgs, RunArgs};
use crate::credentials;
use crate::exit;
use crate::progress::Progress;
use crate::recorded;
use crate::summary::{print_failed_exercises, summary_json, summary_text};

pub fn run(mut args: RunArgs) -> anyhow::Result<u8> {
    // Needed once the program is found and its environment read.
    engine::policy::compile_default_rules_meanwhile();
    if !args.no_pid_ns {
        crate::rootless::probe_pid_namespace_meanwhile();
    }
    let from_unit = crate::unit::apply(&mut args)?;
    let path_var = std::env::var_os("PATH");
    let executable = engine::find_program(&args.command[0], path_var.as_deref())?;
    let name = match &from_unit {
        Some(u) => u.unit.short_name().into(),
        None => executable
            .file_name()
            .map(OsStr::to_os_string)
            .unwrap_or_else(|| "program".into()),
    };
    let root_arg = args
        .root
        .clone()
        .unwrap_or_else(|| with_suffix(&name, ".jail"));
    let manifest_path = std::path::absolute(
        args.manifest
            .clone()
            .unwrap_or_else(|| with_suffix(&name, ".jail.json")),
    )
    .context("cannot resolve the manifest path")?;
    let (binds, mkdirs) = requested_dirs(&args.dirs, &root_arg)?;
    // A rootless run's newuidmap runs meanwhile (see `rootless::settle`):
    // nothing here may ask who jailtrace is (until the map is written,
    // getuid(2) says 65534; `rootless::uid` says who it will be).
    let policy = match &args.policy {
        Some(file) => Policy::from_file(file, &args.deny, &args.allow)?,
        None => Policy::new(&args.deny, &args.allow)?,
    };

    let mut credentials = args.program.credentials()?;
    if let (Some(u), Some(c)) = (&from_unit, credentials.as_mut()) {
        credentials::add_groups(c, &u.unit.supplementary_groups)
            .with_context(|| format!("{}: SupplementaryGroups=", u.unit.name))?;
    }
    if !args.program.cwd.is_dir() {
        bail!(
            "--cwd {}: the host has no such directory (the jail's working directory is copied from the host)",
            args.program.cwd.display()
        );
    }
    let env = args.program.environment(credentials.as_ref())?;
    if let Some(u) = &from_unit {
        args.command = u.argv(&args.command, &env.vars);
    }
    let policy =
        credentials::program_policy(policy, &executable, &args.command, credentials.as_ref());
    check_program_allowed(&policy, &executable)?;
    // The probe ran meanwhile; the last check before the root is made.
    if !args.no_pid_ns {
        crate::rootless::check_pid_namespace()?;
    }
    let root = engine::prepare_root(&root_arg, args.follow_root)?;
    // Into an empty root the engine copies what root owns before it waits
    // for the ids (it waits before the first run); anything else in the
    // root needs them now.
    if !crate::rootless::defers_ids(&root) {
        crate::rootless::settle()?;
    }
    check_manifest_outside(&manifest_path, &root)?;
    // A root that holds a jail gets this program added (or, when one of
    // its programs has this name, replaced).
    let earlier = check_root_is_ours(&root, &manifest_path, args.fresh)?;
    crate::rootless::bind_devices(earlier.as_ref(), &root);
    let program_name = args
        .program_name
        .clone()
        .unwrap_or_else(|| Program::default_name(&executable));
    check_with(&args.with, &program_name, earlier.as_ref())?;
    let account_dbs = account_dbs(&args, credentials.as_ref(), &env.items(), earlier.as_ref())?;
    let others = match &earlier {
        Some(m) => m
            .programs
            .iter()
            .filter(|p| p.name != program_name)
            .map(|p| {
                recorded::config(
                    p,
                    m,
                    &root,
                    args.timeout,
                    None,
                    engine::Input::Null,
                    args.exercise_timeout,
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let ld_library_path = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| jailtrace_elf::split_search_path(&v))
        .unwrap_or_default();
    let config = Config {
        name: program_name,
        others,
        argv: args.command.clone(),
        executable: executable.clone(),
        env: env.items(),
        env_redacted: env.redacted_names(),
        cwd: args.program.cwd.clone(),
        root: root.clone(),
        seccomp: !args.no_seccomp,
        max_runs: args.max_runs,
        timeout: Some(args.timeout),
        stop_timeout: args.stop_timeout,
        policy,
        keep_setuid: args.keep_setuid,
        stdout_to_stderr: args.json,
        keep_listing: args.keep_listing.clone(),
        input: program_input()?,
        max_listing: args.max_listing,
        ld_library_path,
        ready: args.ready.clone(),
        exercises: args.exercises.steps.clone(),
        exercise_timeout: args.exercise_timeout,
        with: args.with.clone(),
        before: from_unit
            .as_ref()
            .map(|u| u.before(&env.vars))
            .unwrap_or_default(),
        log_file: args.program_log.clone(),
        credentials,
        max_procs: args.max_procs,
        account_dbs,
        pid_namespace: !args.no_pid_ns,
        earlier,
        binds,
        mkdirs,
        unit: from_unit.as_ref().map(crate::unit::FromUnit::record),
        umask: from_unit.as_ref().and_then(|u| u.unit.umask),
    };

    // From the first write into a new (or wiped) root on, a record beside
    // it says the root is jailtrace's, until the manifest is written.
    if config.earlier.is_none() {
        Unfinished {
            root: root.as_path().into(),
            manifest: manifest_path.as_path().into(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            tool_version: env!("CARGO_PKG_VERSION").into(),
        }
        .write()
        .with_context(|| format!("cannot write {}", Unfinished::path_for(&root).display()))?;
    }
    let mut progress = Progress::new(args.global.verbose > 0);
    let result = engine::run(&config, &mut progress);
    progress.finish();
    let mut report = match result {
        Ok(report) => report,
        Err(engine::Error::Interrupted(sig)) => {
            errln!("jailtrace: interrupted by {sig}; the traced programs were killed and no manifest was written");
            return Ok(exit::signaled(sig));
        }
        Err(e) => return Err(e).context(format!("jailing {} failed", executable.display())),
    };

    report.manifest.rootless = crate::rootless::entered().map(|e| e.manifest_record());
    let code = match &report.outcome {
        Outcome::Ready => {
            report
                .manifest
                .write_atomic(&manifest_path)
                .with_context(|| {
                    format!("cannot write the manifest {}", manifest_path.display())
                })?;
            Unfinished::remove(&root).with_context(|| {
                format!("cannot remove {}", Unfinished::path_for(&root).display())
            })?;
            exit::OK
        }
        Outcome::NotReady { .. } => exit::NOT_READY,
        Outcome::StillMissing { .. } => exit::STILL_MISSING,
    };
    if let (Some((run, output)), false) = (&report.hidden_output, code == exit::OK) {
        if !output.is_empty() {
            errln!("jailtrace: the program's output in run {run}, where it did not start:");
            err!("{}", String::from_utf8_lossy(output));
        }
    }
    // On stderr with --json too, as the hints: a script sees
    // `likely_cause`, a person this.
    for p in &report.denied_last_run {
        errln!(
            "jailtrace: likely cause: the program needs {}, which the policy denies ({}); it was not \
             copied, and no further run can change that (--allow REGEX lets it in)",
            p.path,
            p.rule
                .as_deref()
                .map_or_else(|| "?".into(), |r| format!("rule {r}"))
        );
    }
    for hint in &report.hints {
        errln!("hint: {hint}");
    }
    for exe in &report.ptrace_callers {
        errln!(
            "note: {} called ptrace(2), which fails while jailtrace traces it (a process has one tracer); in the finished jail it works",
            exe.display()
        );
    }
    for addr in &report.port_conflicts {
        errln!("error: port conflict: {addr} is already in use (another server, or another copy of this jail, holds it)");
    }
    print_failed_exercises(&report.exercises, &report.manifest.runs);
    if args.json {
        let mut summary = summary_json(&report, &config.name, &manifest_path);
        if let Some(u) = &from_unit {
            summary["unit"] = u.json();
        }
        outln!("{}", summary);
    } else {
        err!(
            "{}",
            summary_text(&report, &config.name, &executable, &manifest_path)
        );
    }
    // A jail that exists keeps its manifest; its root is made to match it
    // again.
    if let (Some(earlier), false) = (&config.earlier, code == exit::OK) {
        let undone = crate::rollback::roll_back(&root, earlier, &report.manifest);
        if undone.left.is_empty() && undone.removed == 0 {
            errln!(
                "jailtrace: the jail is as its manifest {} describes it",
                manifest_path.display()
            );
        } else if undone.left.is_empty() {
            errln!(
                "jailtrace: the jail is as its manifest {} describes it: what this run placed ({}) was taken out of {}",
                manifest_path.display(),
                entries(undone.removed),
                root.display()
            );
        } else {
            errln!(
                "warning: the jail is not quite as its manifest {} describes it: of what this run placed, {} taken out of {}, but not all:",
                manifest_path.display(),
                entries(undone.removed),
                root.display()
            );
            for what in &undone.left {
                errln!("  {what}");
            }
        }
    }
    Ok(code)
}

impl ProgramArgs {
    /// The user and group to run as (`--user`, `--group`), looked up on the host.
    pub(crate) fn credentials(&self) -> anyhow::Result<Option<engine::Credentials>> {
        self.user
            .as_deref()
            .map(|u| credentials::credentials(u, self.group.as_deref()))
            .transpose()
    }

    /// The program's environment (see [`jailtrace_spec::env`]), its
    /// warnings printed. `credentials` is the jail's user, when not root.
    pub(crate) fn environment(
        &self,
        credentials: Option<&engine::Credentials>,
    ) -> anyhow::Result<Environment> {
        let spec = EnvSpec {
            base: if self.inherit_env {
                Base::Inherit
            } else if self.clear_env {
                Base::Empty
            } else {
                Base::Clean
            },
            pass: self.pass_env.clone(),
            unit: self.unit_env.clone(),
            env_files: self.env_file.iter().cloned().collect(),
            set: self.env.clone(),
            record: self.record_env.clone(),
        };
        let caller: Vec<_> = std::env::vars_os().collect();
        let env = spec.resolve(
            &caller,
            credentials::jail_account(credentials).as_ref(),
            &self.cwd,
        )?;
        for w in &env.warnings {
            errln!("warning: {w}");
        }
        if self.inherit_env {
            errln!(
                "warning: --inherit-env: the manifest records jailtrace's whole environment ({} variables; the {} that look like secrets by name only)",
                env.vars.len(),
                env.redacted.len()
            );
        }
        Ok(env)
    }
}

/// `--bind` and `--mkdir` checked against the host (see
/// [`jailtrace_spec::dirs`]), before the root at `root_arg` is made: a
/// bind's host directory is compared with where the root is or will be.
fn requested_dirs(
    dirs: &DirArgs,
    root_arg: &Path,
) -> anyhow::Result<(Vec<jailtrace_spec::Bind>, Vec<jailtrace_spec::NewDir>)> {
    if dirs.binds.is_empty() && dirs.mkdirs.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    // The root's canonical path, or the one it will have: its nearest
    // existing ancestor made canonical, the rest added as given.
    let mut root = std::path::absolute(root_arg).context("cannot resolve the root path")?;
    let mut rest = Vec::new();
    while !root.exists() {
        match (root.file_name().map(OsStr::to_os_string), root.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                root = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut root = root.canonicalize().unwrap_or(root);
    root.extend(rest.iter().rev());
    let binds = dirs
        .binds
        .iter()
        .map(|b| b.check(&root))
        .collect::<Result<Vec<_>, _>>()?;
    jailtrace_spec::dirs::check_binds(&binds, &dirs.mkdirs)?;
    let mkdirs = dirs
        .mkdirs
        .iter()
        .map(jailtrace_spec::MkDir::resolve)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((binds, mkdirs))
}

/// What every run of the program reads on stdin (see
/// [`engine::Input`]): a piped input is read here, before the first run.
pub(crate) fn program_input() -> anyhow::Result<engine::Input> {
    let input =
        engine::Input::from_stdin().context("cannot read the program's input from stdin")?;
    if let engine::Input::Recorded {
        truncated: true, ..
    } = &input
    {
        errln!(
            "warning: stdin is longer than {}; every run gets only its first {}",
            HumanBytes(engine::input::MAX_RECORDED),
            HumanBytes(engine::input::MAX_RECORDED)
        );
    }
    Ok(input)
}

/// Refuses a program the policy would not copy (found through `PATH` in a
/// denied place, such as a shim under /root), naming the rule.
fn check_program_allowed(policy: &Policy, executable: &Path) -> anyhow::Result<()> {
    let real = std::fs::canonicalize(executable).unwrap_or_else(|_| executable.to_path_buf());
    for path in [executable, real.as_path()] {
        if let engine::policy::Verdict::Deny(rule) | engine::policy::Verdict::DirsOnly(rule) =
            policy.verdict(path)
        {
            bail!(
                "the program {} is refused by the rule `{rule}`{}; give the path of another copy \
                 (e.g. /usr/bin/NAME) or allow it with --allow '^{}$'",
                executable.display(),
                if path == executable {
                    String::new()
                } else {
                    format!(" (it is {})", path.display())
                },
                path.display()
            );
        }
    }
    Ok(())
}

/// The synthesized databases keep root, the run's user and group and the
/// `--keep-*` names (the owners of placed files are added as they come).
///
/// A user named in the program's arguments or environment is kept too:
/// programs look such names up without switching to them (`apache2 -t`
/// checks `User ${APACHE_RUN_USER}`), so tracing cannot see them.
fn account_dbs(
    args: &RunArgs,
    credentials: Option<&engine::Credentials>,
    env: &[OsString],
    earlier: Option<&Manifest>,
) -> anyhow::Result<engine::AccountDbs> {
    if args.passwd == crate::cli::PasswdMode::Copy {
        errln!("warning: --passwd copy puts the host's whole /etc/passwd and /etc/group (every account) into the jail");
        return Ok(engine::AccountDbs::Copy);
    }
    let host = engine::Accounts::read_host()
        .context("cannot read the host's /etc/passwd and /etc/group")?;
    let mut users: std::collections::BTreeSet<String> = args.keep_user.iter().cloned().collect();
    let mut groups: std::collections::BTreeSet<String> = args.keep_group.iter().cloned().collect();
    // The other programs of the jail keep the accounts they have.
    if let Some(engine::AccountDbs::Synthesize {
        users: kept_users,
        groups: kept_groups,
        ..
    }) = earlier.map(recorded::account_dbs).transpose()?
    {
        users.extend(kept_users);
        groups.extend(kept_groups);
    }
    if let Some(c) = credentials {
        users.insert(c.user.clone());
        groups.insert(c.group.clone());
    }
    let values = env.iter().filter_map(|kv| {
        let kv = kv.to_str()?;
        kv.split_once('=').map(|(_, v)| v)
    });
    let words = values.chain(args.command.iter().filter_map(|a| a.to_str()));
    for word in words.filter(|w| looks_like_account_name(w)) {
        // Names the host lacks are simply not written.
        users.insert(word.to_string());
        groups.insert(word.to_string());
    }
    Ok(engine::AccountDbs::Synthesize {
        host,
        users,
        groups,
    })
}

/// A word shaped like a POSIX user or group name.
fn looks_like_account_name(w: &str) -> bool {
    let mut chars = w.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && w.len() <= 32
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
}

/// `1 entry`, `3 entries`.
fn entries(n: usize) -> String {
    match n {
        1 => "1 entry".into(),
        n => format!("{n} entries"),
    }
}

fn with_suffix(name: &OsStr, suffix: &str) -> PathBuf {
    let mut s = name.to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn check_manifest_outside(manifest: &Path, root: &Path) -> anyhow::Result<()> {
    let parent = manifest.parent().unwrap_or(Path::new("/"));
    let parent = parent
        .canonicalize()
        .unwrap_or_else(|_| parent.to_path_buf());
    if parent.starts_with(root) {
        return Err(engine::InputError::ManifestInRoot {
            manifest: manifest.into(),
            root: root.into(),
        }
        .into());
    }
    Ok(())
}

/// A non-empty root must be one jailtrace made: the manifest describes it,
/// or the record of an unfinished run beside it does (see [`Unfinished`]).
/// jailtrace records only what it places, so running into someone else's
/// tree would give a manifest that does not describe the root. An
/// unfinished root is wiped and made again, a finished one with `--fresh`;
/// otherwise a finished jail is returned (its manifest), for the program
/// to be added to it. Else the root is empty afterwards.
/// `--with NAME`: each a program the jail already has, other than this
/// one, named once.
fn check_with(with: &[String], program: &str, earlier: Option<&Manifest>) -> anyhow::Result<()> {
    for (i, name) in with.iter().enumerate() {
        if name == program {
            bail!("--with {name}: that is this program; --with names another program of the jail, started before it");
        }
        if with[..i].contains(name) {
            bail!("--with {name} is given twice");
        }
        let known: Vec<&str> = earlier
            .map(|m| m.programs.iter().map(|p| p.name.as_str()).collect())
            .unwrap_or_default();
        if !known.contains(&name.as_str()) {
            bail!(
                "--with {name}: the jail has no program of that name ({}); add it first with `jailtrace run --program {name} ...`",
                if known.is_empty() {
                    "it has no programs yet".to_string()
                } else {
                    format!("it has: {}", known.join(", "))
                }
            );
        }
    }
    Ok(())
}

fn check_root_is_ours(
    root: &Path,
    manifest: &Path,
    fresh: bool,
) -> anyhow::Result<Option<Manifest>> {
    let empty = std::fs::read_dir(root)
        .with_context(|| format!("cannot read jail root {}", root.display()))?
        .next()
        .is_none();
    if empty {
        return Ok(None);
    }
    let finished = match Manifest::read(manifest) {
        Ok(m) if m.root.as_path() == root => Some(m),
        _ => None,
    };
    if Unfinished::read(root).is_some() {
        if !fresh {
            errln!(
                "jailtrace: {} holds a jail an earlier run did not finish; starting it again",
                root.display()
            );
        }
        return wipe(root).map(|()| None);
    }
    match finished {
        Some(_) if fresh => wipe(root).map(|()| None),
        Some(m) => Ok(Some(m)),
        None => bail!(
            "jail root {} is not empty and jailtrace did not make it ({} does not describe it, and there is \
             no {}); choose an empty or new directory, or remove this one yourself (rm -rf {}) if it is yours to lose",
            root.display(),
            manifest.display(),
            Unfinished::path_for(root).display(),
            root.display()
        ),
    }
}

/// Whether `root` holds a finished jail that `manifest` describes: the
/// jail a run (without `--fresh`) adds its program to, as
/// [`check_root_is_ours`] decides.
pub(crate) fn holds_finished_jail(root: &Path, manifest: &Path) -> bool {
    let Ok(root) = std::fs::canonicalize(root) else {
        return false;
    };
    Unfinished::read(&root).is_none()
        && Manifest::read(manifest).is_ok_and(|m| m.root.as_path() == root)
}

/// Removes everything in `root` (a root jailtrace made), never descending
/// into a file system mounted there.
fn wipe(root: &Path) -> anyhow::Result<()> {
    // Wiping must not descend into a file system mounted in the jail
    // (the /proc a user mounted as the summary said).
    if let Some(point) = mounts_under(root).first() {
        bail!(
            "{} is mounted inside the jail root; unmount it before starting the jail again",
            point.display()
        );
    }
    for item in
        std::fs::read_dir(root).with_context(|| format!("cannot read {}", root.display()))?
    {
        let path = item?.path();
        let gone = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        gone.with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

/// Mount points at or below `dir`.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    engine::mount_points()
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect()
}
