//! The program's environment: what the traced program is given, and which
//! of it may be written down.
//!
//! Like sudo's `env_reset` and a systemd service, the program does not get
//! jailtrace's environment. It starts from a small documented set
//! ([`Base::Clean`]): `PATH` reset to [`DEFAULT_PATH`]; `HOME`, `USER`,
//! `LOGNAME` and `SHELL` of the jail's user; and the caller's
//! [`DEFAULT_PASS`] variables (terminal, locale, time zone). Then, in this
//! order, each later step overriding the earlier ones:
//!
//! 1. `--pass-env NAME` (a glob: `JAVA_*`): the caller's matching variables;
//! 2. a systemd unit's `Environment=` and `EnvironmentFile=` (`--unit`);
//! 3. `--env-file FILE`: the file's assignments (parsed, never run);
//! 4. `--env KEY=VALUE`.
//!
//! `PWD` is set to the working directory inside the jail, and `OLDPWD` (a
//! host path) is never passed. [`Base::Inherit`] (`--inherit-env`) starts
//! from the caller's whole environment instead, [`Base::Empty`]
//! (`--clear-env`) from nothing at all (not even `PATH` or `PWD`).
//!
//! Guarantee: whatever the steps, a variable that matches a rule of
//! [`jailtrace_manifest::secret`] is in [`Environment::redacted`], not
//! recorded with its value, unless `--record-env` names it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use jailtrace_manifest::secret;
use regex::bytes::{Regex, RegexBuilder};

use crate::envfile::{self, EnvFileError};

/// `PATH` in the clean environment: Debian's default for root and systemd's
/// for services.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The caller's variables the clean environment keeps: the terminal type,
/// the locale and the time zone (patterns as for `--pass-env`).
pub const DEFAULT_PASS: &[&str] = &["TERM", "LANG", "LANGUAGE", "LC_*", "TZ"];

/// What the program's environment starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Base {
    /// The documented default set (see the module documentation).
    #[default]
    Clean,
    /// The caller's whole environment (`--inherit-env`).
    Inherit,
    /// Nothing (`--clear-env`).
    Empty,
}

/// How the program's environment is made: one value whether it comes from
/// the command line or, later, a jail file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSpec {
    pub base: Base,
    /// `--pass-env` patterns: names, `*` and `?` as in the shell.
    pub pass: Vec<String>,
    /// A systemd unit's `Environment=` and `EnvironmentFile=` variables
    /// (`--unit`), applied after `pass` and before `env_files`.
    pub unit: Vec<(OsString, OsString)>,
    /// `--env-file` files, in order.
    pub env_files: Vec<PathBuf>,
    /// `--env KEY=VALUE`, in order.
    pub set: Vec<(OsString, OsString)>,
    /// `--record-env` patterns: variables recorded with their value even
    /// when they look like secrets.
    pub record: Vec<String>,
}

/// The jail's user, whose `HOME`, `USER`, `LOGNAME` and `SHELL` the clean
/// environment holds (from the host's account database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// A variable given to the program but recorded by name only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub name: OsString,
    /// The [`secret::Rule::id`] it matched.
    pub rule: &'static str,
}

/// The program's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// Every variable the program gets, in order.
    pub vars: Vec<(OsString, OsString)>,
    /// The variables among them recorded by name only.
    pub redacted: Vec<Redacted>,
    /// Things the user should know (an env file's skipped lines, a
    /// `--pass-env` that matched nothing), for people.
    pub warnings: Vec<String>,
}

impl Environment {
    /// Every variable as `KEY=VALUE`, in order: what `execve` gets.
    pub fn items(&self) -> Vec<OsString> {
        self.vars
            .iter()
            .map(|(k, v)| {
                let mut kv = k.clone().into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                OsString::from_vec(kv)
            })
            .collect()
    }

    /// The names of [`Environment::redacted`].
    pub fn redacted_names(&self) -> Vec<OsString> {
        self.redacted.iter().map(|r| r.name.clone()).collect()
    }
}

/// Why the environment could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{flag} {pattern:?}: not a variable name or pattern (letters, digits, `_`, `*`, `?`)")]
    BadPattern { flag: &'static str, pattern: String },
    #[error(transparent)]
    File(#[from] EnvFileError),
}

/// A `--pass-env`/`--record-env` pattern, matched against whole names:
/// `*` matches any run of bytes, `?` any one byte.
#[derive(Debug)]
struct Pattern {
    text: String,
    matcher: Matcher,
}

/// How a [`Pattern`] is matched. A name, or a prefix and `*` (all of
/// [`DEFAULT_PASS`], and most patterns given), needs no regex: compiling
/// the defaults as regexes cost a third of a millisecond at every start.
#[derive(Debug)]
enum Matcher {
    Name,
    Prefix,
    Regex(Regex),
}

impl Pattern {
    fn new(flag: &'static str, text: &str) -> Result<Pattern, EnvError> {
        let bad = || EnvError::BadPattern {
            flag,
            pattern: text.to_string(),
        };
        let valid = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'*' | b'?'));
        if !valid {
            return Err(bad());
        }
        let wild = |b: &u8| matches!(b, b'*' | b'?');
        let matcher = match text.as_bytes() {
            name if !name.iter().any(wild) => Matcher::Name,
            [head @ .., b'*'] if !head.iter().any(wild) => Matcher::Prefix,
            _ => {
                let body = text.replace('*', ".*").replace('?', ".");
                // Names are bytes, matched byte by byte (`.` any byte).
                let regex = RegexBuilder::new(&format!("^{body}$"))
                    .unicode(false)
                    .build()
                    .map_err(|_| bad())?;
                Matcher::Regex(regex)
            }
        };
        Ok(Pattern {
            text: text.to_string(),
            matcher,
        })
    }

    fn matches(&self, name: &OsStr) -> bool {
        let (text, name) = (self.text.as_bytes(), name.as_bytes());
        match &self.matcher {
            Matcher::Name => name == text,
            Matcher::Prefix => name.starts_with(&text[..text.len() - 1]),
            Matcher::Regex(regex) => regex.is_match(name),
        }
    }
}

fn patterns(flag: &'static str, texts: &[impl AsRef<str>]) -> Result<Vec<Pattern>, EnvError> {
    texts
        .iter()
        .map(|t| Pattern::new(flag, t.as_ref()))
        .collect()
}

/// Sets `key` to `value`, moving it to the end.
fn set(vars: &mut Vec<(OsString, OsString)>, key: OsString, value: OsString) {
    vars.retain(|(k, _)| *k != key);
    vars.push((key, value));
}

impl EnvSpec {
    /// The program's environment, from the caller's (`caller`, jailtrace's
    /// own in practice), the jail's user and the working directory in the
    /// jail.
    pub fn resolve(
        &self,
        caller: &[(OsString, OsString)],
        account: Option<&Account>,
        cwd: &Path,
    ) -> Result<Environment, EnvError> {
        let pass = patterns("--pass-env", &self.pass)?;
        let record = patterns("--record-env", &self.record)?;
        let mut warnings = Vec::new();

        let mut vars: Vec<(OsString, OsString)> = match self.base {
            Base::Inherit => caller.to_vec(),
            Base::Empty => Vec::new(),
            Base::Clean => {
                let defaults = patterns("--pass-env", DEFAULT_PASS)?;
                let mut vars: Vec<_> = caller
                    .iter()
                    .filter(|(k, _)| defaults.iter().any(|p| p.matches(k)))
                    .cloned()
                    .collect();
                set(&mut vars, "PATH".into(), DEFAULT_PATH.into());
                if let Some(a) = account {
                    set(&mut vars, "HOME".into(), a.home.clone().into());
                    set(&mut vars, "USER".into(), a.name.clone().into());
                    set(&mut vars, "LOGNAME".into(), a.name.clone().into());
                    set(&mut vars, "SHELL".into(), a.shell.clone().into());
                }
                vars
            }
        };
        for p in &pass {
            let mut matched = false;
            for (k, v) in caller.iter().filter(|(k, _)| p.matches(k)) {
                set(&mut vars, k.clone(), v.clone());
                matched = true;
            }
            if !matched {
                warnings.push(format!(
                    "--pass-env {}: no such variable in jailtrace's environment",
                    p.text
                ));
            }
        }
        for (k, v) in &self.unit {
            set(&mut vars, k.clone(), v.clone());
        }
        for path in &self.env_files {
            let file = envfile::read(path, &vars)?;
            warnings.extend(
                file.warnings
                    .iter()
                    .map(|w| format!("{}: {w}", path.display())),
            );
            for name in &file.unset {
                vars.retain(|(k, _)| k.as_os_str() != OsStr::new(name));
            }
            for (k, v) in file.vars {
                set(&mut vars, k.into(), v.into());
            }
        }
        for (k, v) in &self.set {
            set(&mut vars, k.clone(), v.clone());
        }
        vars.retain(|(k, _)| k != "OLDPWD");
        if self.base != Base::Empty || vars.iter().any(|(k, _)| k == "PWD") {
            set(&mut vars, "PWD".into(), cwd.as_os_str().to_os_string());
        }

        for p in &record {
            if !vars.iter().any(|(k, _)| p.matches(k)) {
                warnings.push(format!(
                    "--record-env {}: the program's environment has no such variable",
                    p.text
                ));
            }
        }
        let redacted = vars
            .iter()
            .filter(|(k, _)| !record.iter().any(|p| p.matches(k)))
            .filter_map(|(k, v)| {
                let rule = secret::rule_for(k.as_bytes(), v.as_bytes())?;
                Some(Redacted {
                    name: k.clone(),
                    rule: rule.id,
                })
            })
            .collect();
        Ok(Environment {
            vars,
            redacted,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests;
