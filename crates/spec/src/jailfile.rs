//! Jail files: a TOML file describing a whole jail (its root, manifest,
//! policy, accounts, and programs), for `jailtrace up FILE`.
//!
//! ```toml
//! root = "tools.jail"              # relative paths: from the file's directory
//! manifest = "tools.jail.json"
//!
//! [policy]
//! deny = ['^/etc/secret']
//! allow = []
//!
//! [accounts]
//! keep_users = ["www-data"]
//!
//! [[program]]
//! command = ["/bin/date", "+%F"]
//!
//! [[program]]
//! name = "web"
//! command = ["/usr/sbin/nginx", "-g", "daemon off;"]
//! ready = ["http:http://127.0.0.1:8080/"]
//! env = { TZ = "UTC" }
//! ```
//!
//! Guarantees: every table and key is typed (`deny_unknown_fields`), so a
//! typo is an error; every error names `FILE:LINE:COLUMN`; a file that
//! parses has at least one program, each with a non-empty command and a
//! unique name; relative paths are resolved against the file's directory.
//! Each program is exactly what the command line can say for one program
//! (see [`JailFile::run_args`]): the two cannot drift. The format's JSON
//! Schema ([`JailFile::json_schema`], `docs/jailfile.schema.json`) is
//! generated from these types.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use jailtrace_manifest::Program;
use schemars::JsonSchema;
use serde::Deserialize;

/// A jail file: a jail's root, manifest, policy, accounts, binds,
/// directories and programs (`jailtrace up FILE`; see docs/jailfile.md).
/// Relative paths are relative to the file's directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JailFile {
    /// The jail's root directory (`--root`).
    pub root: PathBuf,
    /// Where the manifest goes (`--manifest`) [default: the root's path +
    /// `.json`].
    #[serde(default)]
    pub manifest: Option<PathBuf>,
    /// What may be copied into the jail.
    #[serde(default)]
    pub policy: PolicySection,
    /// How the jail's `/etc/passwd` and `/etc/group` are made.
    #[serde(default)]
    pub accounts: AccountsSection,
    /// Host directories bound into the jail for every run (`--bind
    /// HOST[:JAIL][:ro]`; a relative HOST is relative to the jail file's
    /// directory, and then JAIL is given).
    #[serde(default)]
    pub binds: Vec<String>,
    /// Directories made in the jail (`--mkdir PATH[:MODE[:USER[:GROUP]]]`).
    #[serde(default)]
    pub mkdirs: Vec<String>,
    /// The programs (`[[program]]`), traced into the root in this order.
    #[serde(rename = "program")]
    #[schemars(length(min = 1))]
    pub programs: Vec<ProgramSection>,
}

/// `[policy]`: what may be copied (as `--policy`, `--deny`, `--allow`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// A policy file (`--policy`).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Also refuse to copy paths matching these regexes (`--deny`).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Copy paths matching these regexes even when a deny rule matches
    /// (`--allow`).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Keep setuid/setgid bits (`--keep-setuid`).
    #[serde(default)]
    pub keep_setuid: bool,
}

/// `[accounts]`: the jail's `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountsSection {
    /// `synthesize` (default) or `copy` (`--passwd`).
    #[serde(default)]
    pub passwd: Option<PasswdMode>,
    /// Users the synthesized `/etc/passwd` keeps (`--keep-user`).
    #[serde(default)]
    pub keep_users: Vec<String>,
    /// Groups the synthesized `/etc/group` keeps (`--keep-group`).
    #[serde(default)]
    pub keep_groups: Vec<String>,
}

/// How the account databases are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasswdMode {
    /// Only the accounts the jail needs or keeps.
    Synthesize,
    /// The host's whole files.
    Copy,
}

/// One `[[program]]`: what `jailtrace run` says for one program.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    {"required": ["command"], "properties": {"command": {"minItems": 1}}},
    {"required": ["unit"]}
]))]
pub struct ProgramSection {
    /// Its name in the jail (`--program`) [default: the command's file
    /// name]; unique in the jail.
    #[serde(default)]
    pub name: Option<String>,
    /// The program and its arguments (`-- PROGRAM ARGS…`) [default with
    /// `unit`: the unit's `ExecStart=`]; `command` or `unit` is required.
    #[serde(default)]
    pub command: Vec<String>,
    /// A systemd service unit that describes the program (`--unit`):
    /// its command, user, environment, directories and readiness; the
    /// other keys override it.
    #[serde(default)]
    pub unit: Option<String>,
    /// Working directory in the jail, absolute (`--cwd`) [default: `/`].
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// The user it runs as, a name or a number (`--user`).
    #[serde(default)]
    pub user: Option<String>,
    /// The group it runs as (`--group`, with `user`) [default: the user's
    /// primary group].
    #[serde(default)]
    pub group: Option<String>,
    /// Variables to set (`--env`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A file of `KEY=VALUE` lines, parsed, never run (`--env-file`).
    #[serde(default)]
    pub env_file: Option<PathBuf>,
    /// The caller's variables passed to it, names or globs (`--pass-env`).
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Variables whose secret-looking values the manifest records anyway,
    /// names or globs (`--record-env`).
    #[serde(default)]
    pub record_env: Vec<String>,
    /// Start from no environment (`--clear-env`).
    #[serde(default)]
    pub clear_env: bool,
    /// Start from the caller's whole environment (`--inherit-env`).
    #[serde(default)]
    pub inherit_env: bool,
    /// When it counts as started, all must hold (`--ready`): `exit`,
    /// `tcp:HOST:PORT`, `http:URL`, `log:REGEX`, `alive:DURATION`
    /// [default: `exit`].
    #[serde(default)]
    pub ready: Vec<String>,
    /// What is done to the program once it is ready, in order:
    /// `{ probe = "http://…" }` (`--probe`) or `{ command = "…" }`
    /// (`--exercise`).
    #[serde(default)]
    pub exercises: Vec<Step>,
    /// How long one exercise may take (`--exercise-timeout`, like `60s`).
    #[serde(default)]
    pub exercise_timeout: Option<String>,
    /// Directories whose listed entries all stay in the jail
    /// (`--keep-listing`).
    #[serde(default)]
    pub keep_listing: Vec<PathBuf>,
    /// How long one run may take (`--timeout`, like `30s` or `5m`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// A file that gets the program's output, every run (`--log`).
    #[serde(default)]
    pub log: Option<PathBuf>,
    /// Programs of this file, listed before this one, started first and
    /// kept running while this one starts and is exercised (`--with`)
    /// [default: every earlier server, that is every earlier program with
    /// a readiness condition other than `exit`; `[]` for none].
    #[serde(default)]
    pub with: Option<Vec<String>>,
}

/// One exercise of a program.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// A shell command run on the host (`--exercise`).
    Command(String),
    /// An HTTP GET that must answer 2xx or 3xx (`--probe`).
    Probe(String),
}

/// Why a jail file was refused.
#[derive(Debug, thiserror::Error)]
pub enum JailFileError {
    #[error("cannot read the jail file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, a typo'd key, a value of the wrong type.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Parsed, but not a jail.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl JailFile {
    /// Reads and checks the jail file at `path`; relative paths in it are
    /// made absolute against its directory.
    pub fn read(path: &Path) -> Result<JailFile, JailFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| JailFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        JailFile::parse(path, &text)
    }

    /// Parses `text` (the content of `path`) and checks it.
    pub fn parse(path: &Path, text: &str) -> Result<JailFile, JailFileError> {
        let mut file: JailFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            JailFileError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim_end().to_string(),
            }
        })?;
        let invalid = |message: String| JailFileError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if file.programs.is_empty() {
            return Err(invalid("the jail has no [[program]]".into()));
        }
        let mut names: Vec<String> = Vec::new();
        for (i, p) in file.programs.iter().enumerate() {
            if p.command.is_empty() && p.unit.is_none() {
                return Err(invalid(format!(
                    "program {}: `command` is empty (give a command or a `unit`)",
                    i + 1
                )));
            }
            let name = file.program_name(i);
            if names.contains(&name) {
                return Err(invalid(format!(
                    "two programs are called {name:?}; give one a `name`"
                )));
            }
            for with in p.with.iter().flatten() {
                if !names.contains(with) {
                    return Err(invalid(format!(
                        "program {name:?}: `with` names {with:?}, which is not a program listed before it"
                    )));
                }
            }
            names.push(name);
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let absolute = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        absolute(&mut file.root);
        if let Some(m) = &mut file.manifest {
            absolute(m);
        }
        if let Some(f) = &mut file.policy.file {
            absolute(f);
        }
        // A bind's relative host directory is the file's neighbour (its
        // jail path is then given: `site:/srv/site:ro`).
        for bind in &mut file.binds {
            if let Some((host, rest)) = bind.split_once(':') {
                if !host.is_empty()
                    && !host.starts_with('/')
                    && !rest.is_empty()
                    && rest != "ro"
                    && rest != "rw"
                {
                    *bind = format!("{}:{rest}", base.join(host).display());
                }
            }
        }
        for p in &mut file.programs {
            if let Some(f) = &mut p.env_file {
                absolute(f);
            }
            if let Some(f) = &mut p.log {
                absolute(f);
            }
        }
        Ok(file)
    }

    /// The manifest's path: `manifest`, or the root's path with `.json`.
    pub fn manifest_path(&self) -> PathBuf {
        self.manifest.clone().unwrap_or_else(|| {
            let mut m = self.root.clone().into_os_string();
            m.push(".json");
            PathBuf::from(m)
        })
    }

    /// Program `i`'s name in the jail.
    pub fn program_name(&self, i: usize) -> String {
        let p = &self.programs[i];
        p.name
            .clone()
            .unwrap_or_else(|| match (p.command.first(), &p.unit) {
                (Some(first), _) => Program::default_name(Path::new(first)),
                // As `--unit` names it: the unit's name without `.service`.
                (None, Some(unit)) => {
                    let file = unit.rsplit('/').next().unwrap_or(unit);
                    file.strip_suffix(".service").unwrap_or(file).to_string()
                }
                // `parse` refused a program with neither.
                (None, None) => "program".into(),
            })
    }

    /// The programs program `i` runs with: its `with`, or every earlier
    /// server (a program whose readiness is more than its exit).
    pub fn with(&self, i: usize) -> Vec<String> {
        match &self.programs[i].with {
            Some(with) => with.clone(),
            None => (0..i)
                .filter(|&j| {
                    let p = &self.programs[j];
                    // A unit is a service: a server unless it says `exit`.
                    p.ready.iter().any(|r| !r.eq_ignore_ascii_case("exit"))
                        || (p.unit.is_some() && p.ready.is_empty())
                })
                .map(|j| self.program_name(j))
                .collect(),
        }
    }

    /// The JSON Schema of jail files, generated from these types, as
    /// pretty-printed JSON (an editor that reads TOML through a JSON Schema,
    /// such as taplo's, checks a jail file with it). It is committed as
    /// `docs/jailfile.schema.json`; a test fails when the two differ.
    ///
    /// It says what the types accept: every table is closed
    /// (`additionalProperties: false`, as `deny_unknown_fields`), a key
    /// with a default is optional, and there is at least one program with
    /// a non-empty command. What only [`JailFile::parse`] checks (unique
    /// names) and what `jailtrace up` checks (the values of `ready`,
    /// `binds`, durations…) is in the descriptions. TOML has no null, so an
    /// optional key's schema is its value's, without `null`.
    pub fn json_schema() -> String {
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .with_transform(schemars::transform::RecursiveTransform(drop_null))
            .into_generator()
            .into_root_schema_for::<JailFile>();
        // A schemars `Schema` is a JSON value with string keys: it always serialises.
        let mut text =
            serde_json::to_string_pretty(&schema).expect("a JSON Schema always serialises to JSON");
        text.push('\n');
        text
    }

    /// The `jailtrace run` arguments of program `i` (after `run`, up to
    /// and including `--` and the command): what the command line says for
    /// that one program.
    pub fn run_args(&self, i: usize) -> Vec<OsString> {
        let p = &self.programs[i];
        let mut a: Vec<OsString> = Vec::new();
        let mut opt = |flag: &str, value: &dyn AsRef<std::ffi::OsStr>| {
            a.push(flag.into());
            a.push(value.as_ref().to_os_string());
        };
        opt("--root", &self.root);
        opt("--manifest", &self.manifest_path());
        if let Some(f) = &self.policy.file {
            opt("--policy", f);
        }
        for r in &self.policy.deny {
            opt("--deny", r);
        }
        for r in &self.policy.allow {
            opt("--allow", r);
        }
        if let Some(mode) = self.accounts.passwd {
            opt(
                "--passwd",
                &match mode {
                    PasswdMode::Synthesize => "synthesize",
                    PasswdMode::Copy => "copy",
                },
            );
        }
        for u in &self.accounts.keep_users {
            opt("--keep-user", u);
        }
        for g in &self.accounts.keep_groups {
            opt("--keep-group", g);
        }
        if let Some(name) = &p.name {
            opt("--program", name);
        }
        if let Some(unit) = &p.unit {
            opt("--unit", unit);
        }
        for with in self.with(i) {
            opt("--with", &with);
        }
        if let Some(cwd) = &p.cwd {
            opt("--cwd", cwd);
        }
        if let Some(u) = &p.user {
            opt("--user", u);
        }
        if let Some(g) = &p.group {
            opt("--group", g);
        }
        for (k, v) in &p.env {
            opt("--env", &format!("{k}={v}"));
        }
        if let Some(f) = &p.env_file {
            opt("--env-file", f);
        }
        for n in &p.pass_env {
            opt("--pass-env", n);
        }
        for n in &p.record_env {
            opt("--record-env", n);
        }
        for r in &p.ready {
            opt("--ready", r);
        }
        for d in &p.keep_listing {
            opt("--keep-listing", d);
        }
        for step in &p.exercises {
            match step {
                Step::Command(c) => opt("--exercise", c),
                Step::Probe(u) => opt("--probe", u),
            }
        }
        if let Some(t) = &p.exercise_timeout {
            opt("--exercise-timeout", t);
        }
        // The jail's binds and directories come with its first program;
        // later runs find them in the manifest.
        if i == 0 {
            for b in &self.binds {
                opt("--bind", b);
            }
            for d in &self.mkdirs {
                opt("--mkdir", d);
            }
        }
        if let Some(t) = &p.timeout {
            opt("--timeout", t);
        }
        if let Some(l) = &p.log {
            opt("--log", l);
        }
        let mut flags: Vec<OsString> = Vec::new();
        if p.clear_env {
            flags.push("--clear-env".into());
        }
        if p.inherit_env {
            flags.push("--inherit-env".into());
        }
        if self.policy.keep_setuid {
            flags.push("--keep-setuid".into());
        }
        a.extend(flags);
        if !p.command.is_empty() {
            a.push("--".into());
            a.extend(p.command.iter().map(OsString::from));
        }
        a
    }
}

/// Takes `null` out of a schema's types and defaults: a TOML key is left
/// out, never null, and schemars gives every `Option` a null.
fn drop_null(schema: &mut schemars::Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let is_null = |t: &serde_json::Value| t == "null";
    if object
        .get("default")
        .is_some_and(serde_json::Value::is_null)
    {
        object.remove("default");
    }
    if let Some(serde_json::Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| !is_null(t));
        if let [only] = types.as_slice() {
            let only = only.clone();
            object.insert("type".into(), only);
        }
    }
    if let Some(serde_json::Value::Array(any_of)) = object.get_mut("anyOf") {
        any_of.retain(|s| !s.get("type").is_some_and(is_null));
        if let [only] = any_of.as_slice() {
            let only = only.clone();
            object.remove("anyOf");
            if let serde_json::Value::Object(only) = only {
                object.extend(only);
            }
        }
    }
}

/// The 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
