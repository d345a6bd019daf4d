//! What may be copied from the host into a jail.
//!
//! Three kinds of paths are never copied: virtual file systems (`/proc`,
//! `/sys`: the jail needs them mounted, not copied), secrets matched by the
//! deny rules, and block devices (refused by the rootfs layer). The default
//! deny rules keep the host's credentials out of every jail; `--deny` adds
//! rules and `--allow` makes exceptions to them.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use regex::bytes::Regex;

/// The default deny rules: host secrets no jail gets unless allowed.
pub const DEFAULT_DENY: &[&str] = &[
    r"^/etc/shadow-?$",
    r"^/etc/gshadow-?$",
    r"^/etc/sudoers$",
    r"^/etc/sudoers\.d(/|$)",
    r"^/etc/ssh/[^/]*_key$",
    r"^/etc/ssl/private(/|$)",
    r"^/root(/|$)",
    r"^/home/[^/]+/\.(ssh|gnupg)(/|$)",
    r"^/proc/[^/]+/environ$",
];

/// File systems that are mounted, never copied.
pub const VIRTUAL: &[&str] = &["/proc", "/sys"];

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    deny: Vec<(String, Regex)>,
    allow: Vec<(String, Regex)>,
}

/// A deny or allow rule that is not a valid regular expression.
#[derive(Debug, thiserror::Error)]
#[error("invalid path rule {rule:?}: {source}")]
pub struct RuleError {
    rule: String,
    #[source]
    source: regex::Error,
}

/// What the policy says about copying a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Copy,
    /// Mounted, never copied (`/proc`, `/sys`); the string names the mount.
    Virtual(&'static str),
    /// Refused by the named rule.
    Deny(String),
}

fn compile(rules: &[String]) -> Result<Vec<(String, Regex)>, RuleError> {
    rules
        .iter()
        .map(|r| {
            Regex::new(r)
                .map(|re| (r.clone(), re))
                .map_err(|source| RuleError {
                    rule: r.clone(),
                    source,
                })
        })
        .collect()
}

impl Policy {
    /// The default rules plus `deny`, with `allow` as exceptions.
    pub fn new(deny: &[String], allow: &[String]) -> Result<Policy, RuleError> {
        let mut all: Vec<String> = DEFAULT_DENY.iter().map(|s| s.to_string()).collect();
        all.extend(deny.iter().cloned());
        Ok(Policy {
            deny: compile(&all)?,
            allow: compile(allow)?,
        })
    }

    pub fn verdict(&self, path: &Path) -> Verdict {
        if let Some(v) = virtual_fs(path) {
            return Verdict::Virtual(v);
        }
        let bytes = path.as_os_str().as_bytes();
        if let Some((rule, _)) = self.deny.iter().find(|(_, re)| re.is_match(bytes)) {
            if !self.allow.iter().any(|(_, re)| re.is_match(bytes)) {
                return Verdict::Deny(rule.clone());
            }
        }
        Verdict::Copy
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(&[], &[]).expect("the default rules are valid regular expressions")
    }
}

/// The virtual file system `path` lies in, if any.
pub fn virtual_fs(path: &Path) -> Option<&'static str> {
    VIRTUAL.iter().copied().find(|v| path.starts_with(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_denied_by_default() {
        let p = Policy::default();
        for secret in [
            "/etc/shadow",
            "/etc/gshadow-",
            "/etc/sudoers.d/admins",
            "/etc/ssh/ssh_host_ed25519_key",
            "/etc/ssl/private/server.key",
            "/root/.bashrc",
            "/home/alice/.ssh/id_rsa",
            "/home/bob/.gnupg",
        ] {
            assert!(
                matches!(p.verdict(Path::new(secret)), Verdict::Deny(_)),
                "{secret}"
            );
        }
        for fine in [
            "/etc/passwd",
            "/etc/ssh/ssh_host_ed25519_key.pub",
            "/home/alice/.profile",
            "/rootfs",
        ] {
            assert_eq!(p.verdict(Path::new(fine)), Verdict::Copy, "{fine}");
        }
        assert_eq!(
            p.verdict(Path::new("/proc/self/maps")),
            Verdict::Virtual("/proc")
        );
        assert_eq!(p.verdict(Path::new("/sys")), Verdict::Virtual("/sys"));
        assert_eq!(p.verdict(Path::new("/system")), Verdict::Copy);
    }

    #[test]
    fn allow_makes_exceptions_and_deny_adds_rules() {
        let p = Policy::new(&[r"^/etc/secret".into()], &[r"^/root/\.gitconfig$".into()]).unwrap();
        assert_eq!(p.verdict(Path::new("/root/.gitconfig")), Verdict::Copy);
        assert!(matches!(
            p.verdict(Path::new("/root/.profile")),
            Verdict::Deny(_)
        ));
        assert!(matches!(
            p.verdict(Path::new("/etc/secret.txt")),
            Verdict::Deny(_)
        ));
        assert!(Policy::new(&["(".into()], &[]).is_err());
    }
}
