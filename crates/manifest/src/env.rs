//! The recorded environment of a [`Command`], as every reader should see
//! it: values that were recorded, and names whose values were not.
//!
//! A manifest written since redaction exists holds no secret-looking value
//! (the writer left them out and listed their names in
//! [`Command::env_redacted`]). An older manifest recorded the whole
//! environment; readers treat its secret-looking items (by
//! [`crate::secret`]'s rules) as redacted too, so no export or report
//! repeats a value that should never have been written.

use std::os::unix::ffi::OsStrExt;

use crate::secret::{self, Rule};
use crate::{Command, PathText};

/// One variable of a recorded environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvVar<'a> {
    /// Recorded with its value: the whole `KEY=VALUE` item.
    Recorded(&'a PathText),
    /// Given to the program, recorded by name only.
    Redacted(&'a [u8]),
}

impl EnvVar<'_> {
    /// The variable's name.
    pub fn name(&self) -> &[u8] {
        match self {
            EnvVar::Recorded(item) => secret::split_item(item.as_bytes()).0,
            EnvVar::Redacted(name) => name,
        }
    }
}

impl Command {
    /// The recorded environment in order, the redacted names last.
    ///
    /// In a manifest from before redaction (`env_redacted` absent), an item
    /// of `env` that matches a secret rule is returned as
    /// [`EnvVar::Redacted`].
    pub fn environment(&self) -> Vec<EnvVar<'_>> {
        let legacy = self.env_redacted.is_none();
        let mut vars: Vec<EnvVar<'_>> = self
            .env
            .iter()
            .map(|item| {
                if legacy && secret::rule_for_item(item.as_bytes()).is_some() {
                    EnvVar::Redacted(secret::split_item(item.as_bytes()).0)
                } else {
                    EnvVar::Recorded(item)
                }
            })
            .collect();
        vars.extend(
            self.env_redacted
                .iter()
                .flatten()
                .map(|name| EnvVar::Redacted(name.as_os_str().as_bytes())),
        );
        vars
    }

    /// The environment for people and comparisons: recorded items as they
    /// are, each redacted one as `NAME=<redacted>`.
    pub fn environment_shown(&self) -> Vec<PathText> {
        self.environment()
            .into_iter()
            .map(|v| match v {
                EnvVar::Recorded(item) => item.clone(),
                EnvVar::Redacted(name) => {
                    let mut item = name.to_vec();
                    item.extend_from_slice(b"=<redacted>");
                    PathText::from(item)
                }
            })
            .collect()
    }

    /// The variables of an older manifest's `env` that look like secrets:
    /// each name with the rule it matches. Empty for a manifest written
    /// since redaction exists.
    pub fn legacy_secrets(&self) -> Vec<(String, &'static Rule)> {
        if self.env_redacted.is_some() {
            return Vec::new();
        }
        self.env
            .iter()
            .filter_map(|item| {
                let rule = secret::rule_for_item(item.as_bytes())?;
                let name = secret::split_item(item.as_bytes()).0;
                Some((String::from_utf8_lossy(name).into_owned(), rule))
            })
            .collect()
    }

    /// Brings an older manifest's environment to today's form: its
    /// secret-looking items leave `env` and their names go to
    /// `env_redacted`. Returns the names moved. A no-op on a manifest
    /// written since redaction exists.
    pub fn redact_legacy(&mut self) -> Vec<String> {
        if self.env_redacted.is_some() {
            return Vec::new();
        }
        let mut redacted = Vec::new();
        let mut names = Vec::new();
        self.env.retain(|item| {
            if secret::rule_for_item(item.as_bytes()).is_none() {
                return true;
            }
            let name = secret::split_item(item.as_bytes()).0;
            names.push(String::from_utf8_lossy(name).into_owned());
            redacted.push(PathText::from(std::ffi::OsStr::from_bytes(name)));
            false
        });
        self.env_redacted = Some(redacted);
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(env: &[&str], redacted: Option<&[&str]>) -> Command {
        Command {
            argv: vec![PathText::from("/bin/true")],
            executable: PathText::from("/bin/true"),
            cwd: PathText::from("/"),
            env: env.iter().map(|&s| PathText::from(s)).collect(),
            env_redacted: redacted.map(|r| r.iter().map(|&s| PathText::from(s)).collect()),
            user: None,
            group: None,
            supplementary_groups: Vec::new(),
            umask: None,
            ready: Vec::new(),
            exercises: Vec::new(),
            with: Vec::new(),
            before: Vec::new(),
        }
    }

    #[test]
    fn a_current_manifest_is_taken_as_written() {
        // An explicitly recorded secret-looking value (--record-env) stays.
        let c = command(&["PATH=/bin", "DB_PASSWORD=shown"], Some(&["GITHUB_TOKEN"]));
        let vars = c.environment();
        assert_eq!(vars.len(), 3);
        assert!(
            matches!(vars[1], EnvVar::Recorded(item) if item.as_bytes() == b"DB_PASSWORD=shown")
        );
        assert_eq!(vars[2], EnvVar::Redacted(b"GITHUB_TOKEN"));
        assert!(c.legacy_secrets().is_empty());
    }

    #[test]
    fn an_older_manifest_has_its_secrets_redacted_on_reading() {
        let mut c = command(
            &["PATH=/bin", "AWS_SECRET_ACCESS_KEY=hunter2", "LANG=C"],
            None,
        );
        let names: Vec<_> = c.environment().iter().map(|v| v.name().to_vec()).collect();
        assert_eq!(names, [&b"PATH"[..], b"AWS_SECRET_ACCESS_KEY", b"LANG"]);
        assert!(matches!(c.environment()[1], EnvVar::Redacted(_)));
        let legacy = c.legacy_secrets();
        assert_eq!(legacy.len(), 1);
        assert_eq!(legacy[0].0, "AWS_SECRET_ACCESS_KEY");

        assert_eq!(c.redact_legacy(), ["AWS_SECRET_ACCESS_KEY"]);
        assert_eq!(
            c.env,
            [PathText::from("PATH=/bin"), PathText::from("LANG=C")]
        );
        assert_eq!(
            c.env_redacted,
            Some(vec![PathText::from("AWS_SECRET_ACCESS_KEY")])
        );
        assert!(c.redact_legacy().is_empty());
        assert!(c.legacy_secrets().is_empty());
    }
}
