//! `jailtrace run --unit NAME`: a systemd service unit as the program's
//! description ([`jailtrace_spec::unit`] reads it). The unit fills in what
//! the command line leaves out: the command (`ExecStart=`, its `$VAR`s
//! expanded from the program's final environment), `--user`/`--group`
//! (not with the `+`/`!` prefixes, which run the command as root),
//! `--cwd`, the environment, `--mkdir` for its `*Directory=` settings and
//! `--ready` from `Type=` (added to the ones given), the program's name
//! and so the default root and manifest (`./NAME.jail`), and, when no
//! `--probe` or `--exercise` is given, the exercise of the listening
//! ports (`GET /` on each TCP port the service listens on). Its
//! `ExecStartPre=` commands run in the jail before the program in each run
//! ([`FromUnit::before`], the manifest's `before`). What jailtrace does not
//! honour is printed before the runs, and is in the `--json` summary's
//! `unit` object.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Context;
use jailtrace_engine::BeforeCommand;
use jailtrace_manifest::{PathText, ProgramUnit};
use jailtrace_spec::unit::ServiceType;
use jailtrace_spec::{Exercise, Unit};
use serde_json::json;

use crate::cli::RunArgs;

/// A unit being applied to a run.
pub(crate) struct FromUnit {
    pub unit: Unit,
    /// The command line is the unit's (none was given).
    pub its_command: bool,
}

/// Reads `--unit` and fills `args` with what it says and the command line
/// does not.
pub(crate) fn apply(args: &mut RunArgs) -> anyhow::Result<Option<FromUnit>> {
    let Some(name) = &args.unit else {
        return Ok(None);
    };
    let unit = Unit::find(name).with_context(|| format!("--unit {name}"))?;
    let its_command = args.command.is_empty();
    if its_command {
        args.command = vec![unit.start.executable.clone().into()];
    }
    let p = &mut args.program;
    if p.user.is_none() && !unit.runs_as_root() {
        p.user = unit.user.clone();
        if p.user.is_some() && p.group.is_none() {
            p.group = unit.group.clone();
        }
    }
    if p.cwd == Path::new("/") {
        if let Some(dir) = &unit.working_directory {
            p.cwd = dir.clone();
        }
    }
    p.pass_env.extend(unit.pass_env.iter().cloned());
    p.unit_env = unit
        .env
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    let mut mkdirs: Vec<_> = unit
        .mkdirs()
        .into_iter()
        .filter(|d| !args.dirs.mkdirs.iter().any(|m| m.path == d.path))
        .collect();
    mkdirs.append(&mut args.dirs.mkdirs);
    args.dirs.mkdirs = mkdirs;
    let mut ready = unit.ready();
    ready.append(&mut args.ready);
    args.ready = ready;
    // A server may read what it serves only when asked (nginx's default
    // page): without an exercise given, ask each TCP port it listens on
    // for `/`, which never fails (see docs/servers.md).
    if args.exercises.steps.is_empty() && unit.service_type != ServiceType::Oneshot {
        args.exercises.steps.push(Exercise::listening());
    }
    if args.program_name.is_none() {
        args.program_name = Some(unit.short_name().to_string());
    }
    for line in notes(&unit) {
        errln!("jailtrace: {}: {line}", unit.name);
    }
    Ok(Some(FromUnit { unit, its_command }))
}

/// What the unit says that jailtrace does not do, for people.
fn notes(unit: &Unit) -> Vec<String> {
    let mut out: Vec<String> = unit
        .not_honoured_lines()
        .into_iter()
        .map(|l| format!("not honoured: {l}"))
        .collect();
    if unit.group.is_some() && unit.user.is_none() {
        out.push("not honoured: Group= without User=: the program runs as root".into());
    }
    out.extend(unit.warnings.iter().map(|w| format!("warning: {w}")));
    out
}

impl FromUnit {
    /// The command line, the unit's `$VAR`s expanded from `env` (the
    /// program's environment), when the unit gives it; else `given`.
    pub(crate) fn argv(&self, given: &[OsString], env: &[(OsString, OsString)]) -> Vec<OsString> {
        if !self.its_command {
            return given.to_vec();
        }
        os_strings(self.unit.argv(&text_env(env)))
    }

    /// The unit's `ExecStartPre=` commands that run in the jail, their
    /// `$VAR`s expanded from `env`; none when the command line gave the
    /// program's command instead of the unit.
    pub(crate) fn before(&self, env: &[(OsString, OsString)]) -> Vec<BeforeCommand> {
        if !self.its_command {
            return Vec::new();
        }
        let env = text_env(env);
        self.unit
            .start_pre
            .iter()
            .map(|c| BeforeCommand {
                argv: os_strings(c.argv(&env)),
                executable: c.executable.clone(),
                may_fail: c.prefix.ignore_failure,
            })
            .collect()
    }

    /// The manifest's record of the unit.
    pub(crate) fn record(&self) -> ProgramUnit {
        ProgramUnit {
            name: self.unit.name.clone(),
            files: std::iter::once(&self.unit.path)
                .chain(&self.unit.dropins)
                .map(|p| PathText::from(p.as_path()))
                .collect(),
        }
    }

    /// The `--json` summary's `unit` object.
    pub(crate) fn json(&self) -> serde_json::Value {
        json!({
            "name": self.unit.name,
            "type": self.unit.service_type.as_str(),
            "not_honoured": self.unit.not_honoured.iter().map(|n| json!({
                "key": n.key,
                "value": n.value,
                "why": n.why,
            })).collect::<Vec<_>>(),
            "notes": notes(&self.unit),
        })
    }
}

/// `env` as text, for a unit's `$VAR` expansion.
fn text_env(env: &[(OsString, OsString)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

fn os_strings(words: Vec<String>) -> Vec<OsString> {
    words.into_iter().map(OsString::from).collect()
}
