//! What may be copied from the host into a jail.
//!
//! Four kinds of paths are never copied: virtual file systems (`/proc`,
//! `/sys`: the jail needs them mounted, not copied), what lies in a host
//! directory bound into the jail (`--bind`: the host's directory, mounted
//! for the runs; [`Verdict::Bound`]), secrets matched by the deny rules,
//! and block devices (refused by the rootfs layer). The default
//! deny rules ([`DEFAULT_DENY`]) keep the host's credentials out of every
//! jail, and so does the built-in rule for key files
//! ([`Policy::secret_file`]: a file in `/etc` that the host keeps from
//! other users and whose name says key or secret, such as
//! `/etc/bind/rndc.key`); `--deny` adds rules and `--allow` makes
//! exceptions to them. A path
//! is refused when a deny rule matches it and no allow rule does; rules are
//! regular expressions (the `regex` crate's syntax) matched against the
//! bytes of the absolute jail path, so anchor them (`^/etc/shadow$`). The
//! built-in rules match bytes (Unicode off, so `[^/]` matches a name that
//! is not UTF-8); a rule given by the user is compiled as written, and
//! `(?-u)` does the same for it.
//!
//! # The policy file (`--policy FILE`)
//!
//! ```text
//! # /etc/jailtrace/web.policy
//! # The file is the whole list: drop the built-in deny rules.
//! defaults off
//! deny  ^/etc/shadow-?$
//! deny  ^/etc/ssl/private(/|$)
//! allow ^/etc/ssl/private/web\.pem$
//! ```
//!
//! - One rule per line: `deny REGEX` or `allow REGEX`. The regex is the rest
//!   of the line after the keyword and the blanks that follow it, with
//!   trailing blanks removed; it may contain spaces and `#`.
//! - A line whose first non-blank character is `#` is a comment; blank lines
//!   are ignored. There are no end-of-line comments (a `#` after a rule is
//!   part of its regex).
//! - `defaults off` on a line of its own drops the built-in deny list, so the
//!   file is the complete list. Without it the file's rules add to it.
//! - `--deny` and `--allow` on the command line add to what the file says.
//!
//! Guarantees: [`Policy::from_file`] reads the whole file before it returns,
//! and every error names the file and the line (`policy.conf:3: unknown rule
//! "permit"; expected deny or allow`), including an invalid regex.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::bytes::{Regex, RegexSet, RegexSetBuilder};

/// The default deny rules: host secrets no jail gets unless allowed.
pub const DEFAULT_DENY: &[&str] = &[
    r"^/etc/shadow-?$",
    r"^/etc/gshadow-?$",
    r"^/etc/passwd-$",
    r"^/etc/group-$",
    r"^/etc/sub[ug]id-?$",
    r"^/etc/\.pwd\.lock$",
    r"^/etc/sudoers$",
    r"^/etc/sudoers\.d(/|$)",
    r"^/etc/ssh/[^/]*_key$",
    r"^/etc/ssl/private(/|$)",
    r"^/root(/|$)",
    r"^/home/[^/]+/\.(ssh|gnupg)(/|$)",
    r"^/proc/[^/]+/environ$",
    r"^/dev/(mem|kmem|port)$",
];

/// Where the host keeps its runtime state: scratch files, pid files and
/// sockets, logs, caches, spools, locks, and accounts' home directories.
/// Below these directories, directories are placed (with the host's mode
/// and owner, empty) but nothing else is copied, whether the program opens
/// a path there or lists it: [`Verdict::DirsOnly`]. An allow rule, or
/// [`Policy::except_runtime`], makes an exception; the deny list still
/// applies then.
pub const RUNTIME_STATE: &[&str] = &[
    "/tmp",
    "/var/tmp",
    "/run",
    "/var/run",
    "/var/log",
    "/var/cache",
    "/var/spool",
    "/var/lock",
    "/home",
];

/// File systems that are mounted, never copied.
/// `/dev/pts` is the host's devpts, bind-mounted: a pty the program opens
/// through `/dev/ptmx` appears there.
pub const VIRTUAL: &[&str] = &["/proc", "/sys", "/dev/pts"];

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    deny: Rules,
    allow: Rules,
    /// Paths below a [`RUNTIME_STATE`] directory that are copied as usual,
    /// with everything below them.
    runtime_exceptions: Vec<PathBuf>,
    /// Mount points of binds: nothing at or below them is copied.
    binds: Vec<PathBuf>,
    /// The built-in rule for key files applies ([`Policy::secret_file`];
    /// off with the policy file's `defaults off`).
    secret_files: bool,
}

/// The rule [`Policy::secret_file`] names.
pub const SECRET_FILE_RULE: &str =
    "key file: in /etc, not readable by others, named like a key or secret";

/// Words of a file name (split at `.`, `-`, `_`) that name a key or a
/// secret: `rndc.key`, `chrony.keys`, `ssh_host_rsa_key`, `secret`,
/// `opasswd`.
const SECRET_WORDS: &[&str] = &[
    "key",
    "keys",
    "secret",
    "secrets",
    "token",
    "tokens",
    "password",
    "passwords",
    "passwd",
    "opasswd",
    "credentials",
    "keytab",
];

/// A deny or allow rule that is not a valid regular expression.
#[derive(Debug, thiserror::Error)]
#[error("invalid path rule {rule:?}: {source}")]
pub struct RuleError {
    rule: String,
    #[source]
    source: regex::Error,
}

/// A policy file that cannot be read or parsed, or a bad `--deny`/`--allow`
/// rule. Errors in the file name it and the line (counted from 1).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: unknown rule {word:?}; expected deny or allow", path.display())]
    UnknownRule {
        path: PathBuf,
        line: usize,
        word: String,
    },
    #[error("{}:{line}: {keyword} needs a regular expression after it", path.display())]
    MissingRegex {
        path: PathBuf,
        line: usize,
        keyword: &'static str,
    },
    #[error(
        "{}:{line}: unknown setting \"defaults {value}\"; expected \"defaults off\"",
        path.display()
    )]
    Defaults {
        path: PathBuf,
        line: usize,
        value: String,
    },
    #[error("{}:{line}: the line is not valid UTF-8", path.display())]
    NotUtf8 { path: PathBuf, line: usize },
    #[error("{}:{line}: invalid regular expression {rule:?}", path.display())]
    InvalidRegex {
        path: PathBuf,
        line: usize,
        rule: String,
        #[source]
        source: regex::Error,
    },
    /// A `--deny` or `--allow` rule from the command line.
    #[error(transparent)]
    Flag(#[from] RuleError),
}

/// The rules of a policy file, compiled.
#[derive(Debug, Default)]
struct FileRules {
    /// False after `defaults off`.
    defaults: bool,
    deny: Vec<String>,
    allow: Vec<String>,
}

/// Parses the text of a policy file (see the module documentation).
fn parse(path: &Path, text: &[u8]) -> Result<FileRules, PolicyError> {
    let mut rules = FileRules {
        defaults: true,
        ..FileRules::default()
    };
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let Ok(raw) = std::str::from_utf8(raw) else {
            return Err(PolicyError::NotUtf8 {
                path: path.into(),
                line,
            });
        };
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let (word, rest) = match content.split_once(char::is_whitespace) {
            Some((word, rest)) => (word, rest.trim_start()),
            None => (content, ""),
        };
        let (keyword, list) = match word {
            "deny" => ("deny", &mut rules.deny),
            "allow" => ("allow", &mut rules.allow),
            "defaults" if rest == "off" => {
                rules.defaults = false;
                continue;
            }
            "defaults" => {
                return Err(PolicyError::Defaults {
                    path: path.into(),
                    line,
                    value: rest.into(),
                })
            }
            _ => {
                return Err(PolicyError::UnknownRule {
                    path: path.into(),
                    line,
                    word: word.into(),
                })
            }
        };
        if rest.is_empty() {
            return Err(PolicyError::MissingRegex {
                path: path.into(),
                line,
                keyword,
            });
        }
        Regex::new(rest).map_err(|source| PolicyError::InvalidRegex {
            path: path.into(),
            line,
            rule: rest.into(),
            source,
        })?;
        list.push(rest.to_string());
    }
    Ok(rules)
}

/// What the policy says about copying a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Copy,
    /// Mounted, never copied (`/proc`, `/sys`); the string names the mount.
    Virtual(&'static str),
    /// At or below the mount point of a bind: the host directory mounted
    /// there holds it (or lacks it); never copied, never recorded.
    Bound,
    /// Refused by the named rule.
    Deny(String),
    /// Host runtime state ([`RUNTIME_STATE`]; the string names the rule): a
    /// directory is placed, anything else refused.
    DirsOnly(String),
}

/// Rules tried in order, the first match naming the rule: each group of
/// rules compiled alike is one `RegexSet`, so a path is matched against
/// all of them in one pass (every path a program names is).
#[derive(Debug, Clone, Default)]
struct Rules {
    groups: Vec<(RegexSet, Vec<String>)>,
}

impl Rules {
    /// `rules` (each a valid regular expression) as one more group, with
    /// the crate's default syntax.
    fn push(&mut self, rules: Vec<String>) {
        if rules.is_empty() {
            return;
        }
        match RegexSet::new(&rules) {
            Ok(set) => self.groups.push((set, rules)),
            // Together past the size limit of one automaton: one set
            // each, as each compiled on its own.
            Err(_) => {
                for rule in rules {
                    let set = RegexSet::new([&rule]).expect("each rule compiled on its own");
                    self.groups.push((set, vec![rule]));
                }
            }
        }
    }

    /// The first rule that matches `bytes`.
    fn first(&self, bytes: &[u8]) -> Option<&str> {
        self.groups.iter().find_map(|(set, names)| {
            let first = set
                .is_match(bytes)
                .then(|| set.matches(bytes).iter().next());
            first.flatten().map(|i| names[i].as_str())
        })
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .flat_map(|(_, names)| names.iter().map(String::as_str))
    }
}

/// Each of `rules` checked on its own, so an invalid one is named.
fn checked(rules: &[String]) -> Result<Vec<String>, RuleError> {
    for r in rules {
        Regex::new(r).map_err(|source| RuleError {
            rule: r.clone(),
            source,
        })?;
    }
    Ok(rules.to_vec())
}

/// [`DEFAULT_DENY`], compiled once to match bytes: a path need not be
/// UTF-8, and in Unicode mode `[^/]+` matches only valid UTF-8, so
/// `/home/<name that is not UTF-8>/.ssh` escaped its rule. (The rules are
/// ASCII; without Unicode they also compile in half the time.)
fn default_deny() -> (RegexSet, Vec<String>) {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    let set = SET.get_or_init(|| {
        RegexSetBuilder::new(DEFAULT_DENY)
            .unicode(false)
            .build()
            .expect("the default rules are valid regular expressions")
    });
    (
        set.clone(),
        DEFAULT_DENY.iter().map(|r| r.to_string()).collect(),
    )
}

/// Compiles the built-in deny rules on a thread of their own, for a
/// caller that has other work to do before it needs a [`Policy`]
/// (about a millisecond, which `jailtrace run` spends reading its
/// arguments and the program's environment). The thread runs at the least
/// priority, so it does not take the caller's CPU.
pub fn compile_default_rules_meanwhile() {
    let _ = std::thread::Builder::new()
        .name("jailtrace-rules".into())
        .spawn(|| {
            jailtrace_tracer::background();
            default_deny()
        });
}

impl Policy {
    /// The default rules plus `deny`, with `allow` as exceptions.
    pub fn new(deny: &[String], allow: &[String]) -> Result<Policy, RuleError> {
        let mut all = Rules {
            groups: vec![default_deny()],
        };
        all.push(checked(deny)?);
        let mut allowed = Rules::default();
        allowed.push(checked(allow)?);
        Ok(Policy {
            deny: all,
            allow: allowed,
            runtime_exceptions: Vec::new(),
            binds: Vec::new(),
            secret_files: true,
        })
    }

    /// Copies `path` and what lies below it as usual although it is host
    /// runtime state (the jail's user's home directory, the directory its
    /// program is in). The deny list still applies there.
    pub fn except_runtime(&mut self, path: &Path) {
        self.runtime_exceptions.push(path.to_path_buf());
    }

    /// Treats `jail`, the mount point of a bind, and what lies below it as
    /// the bound host directory's ([`Verdict::Bound`]).
    pub fn bind(&mut self, jail: &Path) {
        if !self.binds.iter().any(|b| b == jail) {
            self.binds.push(jail.to_path_buf());
        }
    }

    /// Whether `path` is at or below the mount point of a bind.
    pub fn is_bound(&self, path: &Path) -> bool {
        self.binds.iter().any(|b| path.starts_with(b))
    }

    /// The [`RUNTIME_STATE`] directory `path` lies strictly below, if any.
    pub fn runtime_dir(path: &Path) -> Option<&'static str> {
        first_holding(path, RUNTIME_STATE, true)
    }

    /// For a path below a [`RUNTIME_STATE`] directory, its first component
    /// there (`/tmp/build/bin/prog` → `/tmp/build`); `None` for any other.
    pub fn runtime_top(path: &Path) -> Option<PathBuf> {
        let dir = Path::new(Policy::runtime_dir(path)?);
        let first = path.strip_prefix(dir).ok()?.components().next()?;
        Some(dir.join(first))
    }

    /// The rules of the policy file `path` (see the module documentation),
    /// with the built-in deny list unless the file says `defaults off`;
    /// `deny` and `allow` (the command line's) are added to the file's.
    pub fn from_file(
        path: &Path,
        deny: &[String],
        allow: &[String],
    ) -> Result<Policy, PolicyError> {
        let text = std::fs::read(path).map_err(|source| PolicyError::Read {
            path: path.into(),
            source,
        })?;
        let file = parse(path, &text)?;
        let mut all_deny = Rules::default();
        if file.defaults {
            all_deny.groups.push(default_deny());
        }
        let mut user_deny = file.deny;
        user_deny.extend(checked(deny)?);
        all_deny.push(user_deny);
        let mut all_allow = file.allow;
        all_allow.extend(checked(allow)?);
        let mut allow = Rules::default();
        allow.push(all_allow);
        Ok(Policy {
            deny: all_deny,
            allow,
            runtime_exceptions: Vec::new(),
            binds: Vec::new(),
            secret_files: file.defaults,
        })
    }

    /// The deny rules in the order they are tried (the first match is the
    /// rule a denied path records).
    pub fn deny_rules(&self) -> impl Iterator<Item = &str> {
        self.deny.names()
    }

    /// The allow rules (exceptions to the deny rules).
    pub fn allow_rules(&self) -> impl Iterator<Item = &str> {
        self.allow.names()
    }

    /// Whether `path` (an absolute jail path) may be copied.
    pub fn verdict(&self, path: &Path) -> Verdict {
        if let Some(v) = virtual_fs(path) {
            return Verdict::Virtual(v);
        }
        if self.is_bound(path) {
            return Verdict::Bound;
        }
        let bytes = path.as_os_str().as_bytes();
        let allowed = || self.allow.first(bytes).is_some();
        if let Some(rule) = self.deny.first(bytes) {
            if !allowed() {
                return Verdict::Deny(rule.to_string());
            }
        }
        if let Some(dir) = Policy::runtime_dir(path) {
            let excepted = self.runtime_exceptions.iter().any(|e| path.starts_with(e));
            if !excepted && !allowed() {
                return Verdict::DirsOnly(format!("host runtime state under {dir}"));
            }
        }
        Verdict::Copy
    }
}

impl Policy {
    /// The rule that refuses the regular file `path` of the host, whose
    /// mode is `mode`, as a key file: in `/etc`, not readable by others,
    /// and named like a key or a secret (a word of its name in
    /// [`SECRET_WORDS`]). What a service's unit needs to run
    /// (`/etc/bind/rndc.key`, `/etc/varnish/secret`,
    /// `/etc/chrony/chrony.keys`) stays out unless an allow rule names it;
    /// the configuration files a host keeps from others
    /// (`/etc/redis/redis.conf`) are copied as usual.
    pub fn secret_file(&self, path: &Path, mode: u32) -> Option<&'static str> {
        (mode & 0o004 == 0 && self.may_be_secret_file(path)).then_some(SECRET_FILE_RULE)
    }

    /// Whether [`Policy::secret_file`] refuses `path` if its mode keeps it
    /// from others: by its place and name alone (no metadata needed, so a
    /// listing looks a name up only then).
    pub fn may_be_secret_file(&self, path: &Path) -> bool {
        if !self.secret_files || !path.starts_with("/etc") {
            return false;
        }
        let Some(name) = path.file_name() else {
            return false;
        };
        let secret = name
            .as_bytes()
            .split(|b| matches!(b, b'.' | b'-' | b'_'))
            .any(|word| {
                SECRET_WORDS
                    .iter()
                    .any(|w| word.eq_ignore_ascii_case(w.as_bytes()))
            });
        secret && self.allow.first(path.as_os_str().as_bytes()).is_none()
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(&[], &[]).expect("the default rules are valid regular expressions")
    }
}

/// The virtual file system `path` lies in, if any.
pub fn virtual_fs(path: &Path) -> Option<&'static str> {
    first_holding(path, VIRTUAL, false)
}

/// The first of `dirs` that `path` lies below (`strictly`), or is or lies
/// below, component by component. Every path a call names is checked
/// against these lists, so a path without `//`, `.` or `..` components or
/// a trailing `/` (nearly all) is compared as bytes.
fn first_holding(path: &Path, dirs: &[&'static str], strictly: bool) -> Option<&'static str> {
    let bytes = path.as_os_str().as_bytes();
    // No empty, `.` or `..` name after the first `/` (so no `//`, no
    // trailing `/`): the bytes compare as the components would. One pass.
    let plain = bytes
        .split(|&b| b == b'/')
        .skip(1)
        .all(|name| !matches!(name, b"" | b"." | b".."));
    dirs.iter().copied().find(|dir| {
        if !plain {
            return path.starts_with(dir) && !(strictly && path == Path::new(dir));
        }
        match bytes.strip_prefix(dir.as_bytes()).map(|rest| rest.first()) {
            Some(None) => !strictly,
            Some(Some(b'/')) => true,
            _ => false,
        }
    })
}

/// The file system uid of process `pid` when it could not read a file with
/// `attrs` on the host (its mode bits for that uid, its groups and others
/// give no read permission); `None` when it could, or for root, or when
/// the process is gone.
pub(crate) fn unreadable_by(pid: i32, attrs: &jailtrace_rootfs::Attrs) -> Option<u32> {
    // Readable by its owner, its group and others (most files): whoever
    // asks may read it, and /proc/PID/status (about 10 µs for the kernel
    // to write) need not be read.
    if attrs.mode & 0o444 == 0o444 {
        return None;
    }
    let creds = crate::creds::creds_of(pid)?;
    if creds.uid == 0 {
        return None;
    }
    let bits = if attrs.uid == creds.uid {
        attrs.mode >> 6
    } else if attrs.gid == creds.gid || creds.groups.contains(&attrs.gid) {
        attrs.mode >> 3
    } else {
        attrs.mode
    };
    (bits & 0o4 == 0).then_some(creds.uid)
}

#[cfg(test)]
mod tests;
