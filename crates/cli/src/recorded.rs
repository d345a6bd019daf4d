//! A program of a manifest as the engine runs it again: `update --run`
//! traces every program of the jail once more, and `run` into a jail that
//! holds other programs verifies them after the new one.
//!
//! The program starts as the manifest recorded it: the same argument
//! vector, working directory, user, readiness and environment (each
//! variable recorded by name only taken from jailtrace's environment).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use jailtrace_engine as engine;
use jailtrace_manifest::{EnvVar, Manifest, Program};
use jailtrace_spec::{ready::Condition, Exercise};

/// The engine's config for `program` of `manifest` in `root`: its
/// readiness is `ready` when given, else the recorded one; each run gets
/// `input` on stdin.
pub(crate) fn config(
    program: &Program,
    manifest: &Manifest,
    root: &Path,
    timeout: Duration,
    ready: Option<&[Condition]>,
    input: engine::Input,
    exercise_timeout: Duration,
) -> anyhow::Result<engine::Config> {
    let c = &program.command;
    let mut credentials = c
        .user
        .as_deref()
        .map(|u| crate::credentials::credentials(u, c.group.as_deref()))
        .transpose()?;
    if let Some(creds) = credentials.as_mut() {
        crate::credentials::add_groups(creds, &c.supplementary_groups)
            .context("the manifest's supplementary_groups")?;
    }
    let argv: Vec<OsString> = c.argv.iter().map(|a| a.as_os_str().to_owned()).collect();
    let executable = c.executable.as_path().to_path_buf();
    let ready = match ready {
        Some(given) => given.to_vec(),
        None => c
            .ready
            .iter()
            .map(|r| {
                r.parse::<Condition>().with_context(|| {
                    format!("program {} of the manifest: readiness {r:?}", program.name)
                })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    Ok(engine::Config {
        name: program.name.clone(),
        others: Vec::new(),
        with: c.with.clone(),
        before: c
            .before
            .iter()
            .map(|b| engine::BeforeCommand {
                argv: b.argv.iter().map(|a| a.as_os_str().to_owned()).collect(),
                executable: b.executable.as_path().to_path_buf(),
                may_fail: b.may_fail,
            })
            .collect(),
        policy: crate::credentials::program_policy(
            engine::Policy::default(),
            &executable,
            &argv,
            credentials.as_ref(),
        ),
        argv,
        executable,
        env: recorded_env(c)?,
        env_redacted: c
            .environment()
            .iter()
            .filter(|v| matches!(v, EnvVar::Redacted(_)))
            .map(|v| OsStr::from_bytes(v.name()).to_owned())
            .collect(),
        cwd: c.cwd.as_path().to_path_buf(),
        root: root.to_path_buf(),
        seccomp: true,
        max_runs: 50,
        timeout: Some(timeout),
        stop_timeout: Duration::from_secs(5),
        // Setuid bits the jail kept were kept on purpose.
        keep_setuid: manifest
            .entries
            .iter()
            .any(|e| e.mode.has_setid() && !e.setuid_stripped),
        stdout_to_stderr: true,
        keep_listing: Vec::new(),
        input,
        max_listing: jailtrace_engine::MAX_LISTING,
        ld_library_path: Vec::new(),
        ready,
        exercises: c
            .exercises
            .iter()
            .map(Exercise::from_record)
            .collect::<Result<_, _>>()?,
        exercise_timeout,
        log_file: None,
        credentials,
        max_procs: None,
        account_dbs: account_dbs(manifest)?,
        umask: c
            .umask
            .as_deref()
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .with_context(|| format!("the manifest's umask {m:?} is not octal"))
            })
            .transpose()?,
        pid_namespace: true,
        earlier: Some(manifest.clone()),
        // The manifest's binds and directories come with it.
        binds: Vec::new(),
        mkdirs: Vec::new(),
        unit: program.unit.clone(),
    })
}

/// The environment the manifest's command ran with: the recorded items,
/// and each variable recorded by name only from jailtrace's environment
/// (an error when it is not set there: the run would not be the one
/// verified).
fn recorded_env(c: &jailtrace_manifest::Command) -> anyhow::Result<Vec<OsString>> {
    c.environment()
        .into_iter()
        .map(|v| match v {
            EnvVar::Recorded(item) => Ok(item.as_os_str().to_owned()),
            EnvVar::Redacted(name) => {
                let name = OsStr::from_bytes(name);
                let value = std::env::var_os(name).with_context(|| {
                    format!(
                        "the manifest records {} by name only (its value looked like a secret); \
                         set it in jailtrace's environment for the run",
                        name.to_string_lossy()
                    )
                })?;
                let mut item = name.to_os_string();
                item.push("=");
                item.push(value);
                Ok(item)
            }
        })
        .collect()
}

/// How the re-run makes /etc/passwd and /etc/group: as the manifest's
/// were made, keeping every account they hold.
pub(crate) fn account_dbs(manifest: &Manifest) -> anyhow::Result<engine::AccountDbs> {
    let synthesized = |path: &str| {
        manifest
            .entry(Path::new(path))
            .filter(|e| e.reason.cause == jailtrace_manifest::Cause::Synthesized)
            .and_then(|e| e.content.as_ref())
            .map(|c| {
                String::from_utf8_lossy(c.as_bytes())
                    .lines()
                    .filter_map(|l| l.split(':').next())
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .collect::<std::collections::BTreeSet<_>>()
            })
    };
    match (synthesized("/etc/passwd"), synthesized("/etc/group")) {
        (None, None) => Ok(engine::AccountDbs::Copy),
        (users, groups) => Ok(engine::AccountDbs::Synthesize {
            host: engine::Accounts::read_host()
                .context("cannot read the host's /etc/passwd and /etc/group")?,
            users: users.unwrap_or_default(),
            groups: groups.unwrap_or_default(),
        }),
    }
}
