//! A unit's command lines (`ExecStart=`, `ExecStartPre=`): prefix, words
//! with specifiers resolved, the executable systemd would run, and the
//! argument vector with `$VAR`s expanded.

use std::path::{Path, PathBuf};

use super::syntax::{self, ExecPrefix};

/// One command line: `ExecStart=` or `ExecStartPre=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecCommand {
    /// The executable's path (absolute, or as written when no directory
    /// of systemd's fixed search path has it).
    pub executable: PathBuf,
    /// The words after the prefix, specifiers resolved, `$VAR` not yet
    /// expanded: the first is the executable as written, or `argv[0]`
    /// with `@`.
    pub words: Vec<String>,
    pub prefix: ExecPrefix,
}

impl ExecCommand {
    /// Parses an `Exec*=` value: its prefix and words, specifiers resolved
    /// with `apply`; `None` when it names no program.
    pub(super) fn parse(
        value: &str,
        apply: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Option<ExecCommand>, String> {
        let (prefix, rest) = syntax::exec_prefix(value);
        let words = syntax::split_words(rest)?
            .iter()
            .map(|w| apply(w))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(program) = words.first().cloned() else {
            return Ok(None);
        };
        let executable = if program.starts_with('/') {
            PathBuf::from(&program)
        } else {
            // systemd looks a bare name up in fixed directories.
            crate::env::DEFAULT_PATH
                .split(':')
                .map(|d| Path::new(d).join(&program))
                .find(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from(&program))
        };
        let mut words = if prefix.argv0 {
            words[1..].to_vec()
        } else {
            words
        };
        if words.is_empty() {
            words.push(program);
        }
        Ok(Some(ExecCommand {
            executable,
            words,
            prefix,
        }))
    }

    /// The command line: the words with `$VAR` and `${VAR}` expanded from
    /// `env`, unless the `:` prefix says not to.
    pub fn argv(&self, env: &[(String, String)]) -> Vec<String> {
        if self.prefix.no_expand {
            return self.words.clone();
        }
        syntax::expand_argv(&self.words, env)
    }
}
