//! The directories a jail gets besides what its program reads: host
//! directories bound into it ([`Bind`], `--bind HOST_DIR[:JAIL_DIR][:ro]`)
//! and directories made in it ([`MkDir`], `--mkdir
//! PATH[:MODE[:USER[:GROUP]]]`).
//!
//! Each is parsed from its command-line form ([`std::str::FromStr`]: only
//! the syntax, so a malformed value is a usage error) and then checked
//! against the host ([`Bind::check`], [`check_binds`], [`MkDir::resolve`]),
//! before anything is written. What the checks guarantee:
//!
//! - **Jail paths** are absolute, without `.` or `..` components, and not
//!   `/`; a bind is not made over `/proc`, `/sys` or `/dev` (or below them),
//!   nor over a system directory (`/usr`, `/etc`, …) whose copied files it
//!   would hide; two binds do not nest, and no `--mkdir` lies in a bind
//!   (making it would write into the host's directory).
//! - **Bind sources** exist, are directories, and are named by their
//!   canonical path (symlinks resolved once, here). Refused, because a bind
//!   hands the program the host's own files to read and, unless `ro`, to
//!   change: `/`; the host's system directories and anything below them
//!   ([`NEVER_BELOW`]: programs, libraries, configuration, devices, kernel
//!   interfaces, root's home); a few directories as a whole
//!   ([`NEVER_WHOLE`]: `/var`, `/home`, `/tmp`…, whose subdirectories,
//!   such as `/var/lib/mysql`, are the usual sources); a `.ssh` or
//!   `.gnupg` directory or anything in one; and a directory that holds
//!   the jail's root or lies in it (the program would reach its own
//!   root, or the bind would be recorded as the jail's content).
//! - **Owners** of a `--mkdir` are looked up on the host, by name or number.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use nix::unistd::{Group, Uid, User};

/// Host directories never bound, nor anything below them.
pub const NEVER_BELOW: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
    "/sbin", "/sys", "/usr",
];

/// Host directories never bound as a whole (their subdirectories may be).
pub const NEVER_WHOLE: &[&str] = &[
    "/",
    "/home",
    "/media",
    "/mnt",
    "/opt",
    "/run",
    "/srv",
    "/tmp",
    "/var",
    "/var/cache",
    "/var/lib",
    "/var/lock",
    "/var/log",
    "/var/run",
    "/var/spool",
    "/var/tmp",
];

/// Jail paths no bind goes at or below: file systems jailtrace mounts, and
/// the device nodes it places.
const VIRTUAL: &[&str] = &["/proc", "/sys", "/dev"];

/// A host directory bound into the jail (`--bind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// The host directory; canonical after [`Bind::check`].
    pub host: PathBuf,
    /// Where it appears in the jail.
    pub jail: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A directory made in the jail (`--mkdir`), as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkDir {
    /// The directory's path in the jail.
    pub path: PathBuf,
    /// Its permission bits (default 0755).
    pub mode: u32,
    /// Its owner, a name or number (default root).
    pub user: Option<String>,
    /// Its group, a name or number (default the owner's primary group,
    /// root's when no owner is given).
    pub group: Option<String>,
    /// The unit setting that asks for it (`redis-server.service
    /// RuntimeDirectory=redis`); `None` for `--mkdir`.
    pub setting: Option<String>,
}

/// A [`MkDir`] with its owner looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDir {
    /// The directory's path in the jail.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// As [`MkDir::setting`]: recorded in its entry's reason.
    pub setting: Option<String>,
}

/// What is wrong with a `--bind` or `--mkdir`.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// Not `HOST_DIR[:JAIL_DIR][:ro]` or `PATH[:MODE[:USER[:GROUP]]]`.
    #[error("{why}; expected {expected}")]
    Syntax { why: String, expected: &'static str },
    #[error("--bind {host}: cannot find the host directory", host = host.display())]
    NoHostDir {
        host: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--bind {host}: not a directory (only directories are bound)", host = host.display())]
    NotADirectory { host: PathBuf },
    #[error("--bind {host}: refused: {why}", host = host.display())]
    RefusedSource { host: PathBuf, why: String },
    #[error("--bind {bind}: refused: {why}")]
    RefusedTarget { bind: String, why: String },
    #[error(
        "the bind at {inner} lies in the bind at {outer}; bind each directory at its own place",
        inner = inner.display(),
        outer = outer.display()
    )]
    Nested { outer: PathBuf, inner: PathBuf },
    #[error("--mkdir {path}: refused: {why}", path = path.display())]
    RefusedDir { path: PathBuf, why: String },
    #[error("--mkdir {path}: no {what} {name:?} on the host (see /etc/{db})", path = path.display(), db = if *what == "user" { "passwd" } else { "group" })]
    NoAccount {
        path: PathBuf,
        what: &'static str,
        name: String,
    },
    #[error("--mkdir {path}: cannot look up {name:?}: {errno}", path = path.display())]
    Lookup {
        path: PathBuf,
        name: String,
        errno: nix::errno::Errno,
    },
}

const BIND_FORM: &str = "HOST_DIR[:JAIL_DIR][:ro]";
const MKDIR_FORM: &str = "PATH[:MODE[:USER[:GROUP]]] (e.g. /run/sshd:0755:root)";

fn syntax(why: impl Into<String>, expected: &'static str) -> DirError {
    DirError::Syntax {
        why: why.into(),
        expected,
    }
}

/// `path` if it is a clean absolute jail path (no `.`, `..`, not `/`).
fn jail_path(path: &str, expected: &'static str) -> Result<PathBuf, DirError> {
    let p = PathBuf::from(path);
    if !p.is_absolute() {
        return Err(syntax(
            format!("the jail path {path:?} is not absolute"),
            expected,
        ));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(syntax(
            format!("the jail path {path:?} contains `.` or `..`"),
            expected,
        ));
    }
    if p == Path::new("/") {
        return Err(syntax(
            "the jail path is / itself (the whole root)",
            expected,
        ));
    }
    Ok(p)
}

impl FromStr for Bind {
    type Err = DirError;

    /// `HOST_DIR`, `HOST_DIR:ro`, `HOST_DIR:JAIL_DIR` or
    /// `HOST_DIR:JAIL_DIR:ro` (`rw` is accepted for the default). Without
    /// `JAIL_DIR`, the directory appears at its host path, which must then
    /// be a clean absolute path.
    fn from_str(value: &str) -> Result<Bind, DirError> {
        let mut parts: Vec<&str> = value.split(':').collect();
        let read_only = match parts.last() {
            Some(&"ro") if parts.len() > 1 => true,
            Some(&"rw") if parts.len() > 1 => false,
            _ => {
                parts.push("rw");
                false
            }
        };
        parts.pop();
        let (host, jail) = match parts[..] {
            [host] => (host, host),
            [host, jail] => (host, jail),
            _ => {
                return Err(syntax(
                    "too many `:` (paths with `:` cannot be bound)",
                    BIND_FORM,
                ))
            }
        };
        if host.is_empty() {
            return Err(syntax("the host directory is empty", BIND_FORM));
        }
        Ok(Bind {
            host: PathBuf::from(host),
            jail: jail_path(jail, BIND_FORM)?,
            read_only,
        })
    }
}

impl fmt::Display for Bind {
    /// The command-line form, `HOST:JAIL[:ro]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host.display(), self.jail.display())?;
        if self.read_only {
            f.write_str(":ro")?;
        }
        Ok(())
    }
}

/// `path` is `dir` or below it.
fn at_or_below(path: &Path, dir: &str) -> bool {
    path.starts_with(dir)
}

impl Bind {
    /// The bind checked against the host and the jail's canonical `root`
    /// (see the module documentation), its host directory made canonical.
    pub fn check(&self, root: &Path) -> Result<Bind, DirError> {
        let host = std::path::absolute(&self.host)
            .and_then(std::fs::canonicalize)
            .map_err(|source| DirError::NoHostDir {
                host: self.host.clone(),
                source,
            })?;
        if !host.is_dir() {
            return Err(DirError::NotADirectory {
                host: self.host.clone(),
            });
        }
        let refuse = |why: String| DirError::RefusedSource {
            host: self.host.clone(),
            why,
        };
        let shown = if host == self.host {
            String::new()
        } else {
            format!(" (it is {})", host.display())
        };
        if host == Path::new("/") {
            return Err(refuse(format!(
                "it is the host's root{shown}: the jail would hold the whole host"
            )));
        }
        if let Some(dir) = NEVER_BELOW.iter().find(|d| at_or_below(&host, d)) {
            return Err(refuse(format!(
                "{dir} is a host system directory{shown}: the jail gets copies of what the \
                 program needs from there, never the host's own"
            )));
        }
        if NEVER_WHOLE.iter().any(|d| host == Path::new(d)) {
            return Err(refuse(format!(
                "{} is shared by the whole host{shown}; bind the subdirectory the program \
                 needs (e.g. {}/NAME)",
                host.display(),
                host.display()
            )));
        }
        if host
            .components()
            .any(|c| c.as_os_str() == ".ssh" || c.as_os_str() == ".gnupg")
        {
            return Err(refuse(format!("it holds keys{shown}")));
        }
        if root.starts_with(&host) {
            return Err(refuse(format!(
                "it holds the jail root {}{shown}: the program would reach its own root",
                root.display()
            )));
        }
        if host.starts_with(root) {
            return Err(refuse(format!(
                "it lies in the jail root {}{shown}",
                root.display()
            )));
        }
        let refuse_target = |why: String| DirError::RefusedTarget {
            bind: self.to_string(),
            why,
        };
        if let Some(dir) = VIRTUAL.iter().find(|d| at_or_below(&self.jail, d)) {
            return Err(refuse_target(format!(
                "jailtrace places {dir} in the jail itself"
            )));
        }
        if let Some(dir) = NEVER_BELOW
            .iter()
            .chain(["/var", "/var/lib"].iter())
            .find(|d| self.jail == Path::new(d))
        {
            return Err(refuse_target(format!(
                "a bind on {dir} would hide the files the jail copies there; bind a \
                 directory below it"
            )));
        }
        Ok(Bind {
            host,
            jail: self.jail.clone(),
            read_only: self.read_only,
        })
    }
}

/// Checks what concerns several binds and directories together: no bind
/// in another (or at the same place), and no `--mkdir` in a bind.
pub fn check_binds(binds: &[Bind], dirs: &[MkDir]) -> Result<(), DirError> {
    for (i, a) in binds.iter().enumerate() {
        for b in &binds[i + 1..] {
            let (outer, inner) = if b.jail.starts_with(&a.jail) {
                (a, b)
            } else if a.jail.starts_with(&b.jail) {
                (b, a)
            } else {
                continue;
            };
            return Err(DirError::Nested {
                outer: outer.jail.clone(),
                inner: inner.jail.clone(),
            });
        }
    }
    for dir in dirs {
        if let Some(bind) = binds.iter().find(|b| dir.path.starts_with(&b.jail)) {
            return Err(DirError::RefusedDir {
                path: dir.path.clone(),
                why: format!(
                    "it lies in the bind of {} at {}: make it in the host's directory",
                    bind.host.display(),
                    bind.jail.display()
                ),
            });
        }
    }
    Ok(())
}

impl FromStr for MkDir {
    type Err = DirError;

    /// `PATH`, `PATH:MODE`, `PATH:MODE:USER` or `PATH:MODE:USER:GROUP`;
    /// an empty field takes its default (`/run/app::www-data`).
    fn from_str(value: &str) -> Result<MkDir, DirError> {
        let parts: Vec<&str> = value.split(':').collect();
        if parts.len() > 4 {
            return Err(syntax("too many `:`", MKDIR_FORM));
        }
        let path = jail_path(parts[0], MKDIR_FORM)?;
        let mode = match parts.get(1) {
            None | Some(&"") => 0o755,
            Some(m) => {
                let digits = m.strip_prefix("0o").unwrap_or(m);
                match u32::from_str_radix(digits, 8) {
                    Ok(mode) if mode <= 0o7777 && !digits.is_empty() && digits.len() <= 5 => mode,
                    _ => {
                        return Err(syntax(
                            format!("the mode {m:?} is not octal permission bits (0 to 07777)"),
                            MKDIR_FORM,
                        ))
                    }
                }
            }
        };
        let name = |i: usize| {
            parts
                .get(i)
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string())
        };
        for field in parts.iter().skip(2) {
            if field.contains(char::is_whitespace) {
                return Err(syntax(
                    format!("{field:?} is not a user or group name"),
                    MKDIR_FORM,
                ));
            }
        }
        Ok(MkDir {
            path,
            mode,
            user: name(2),
            group: name(3),
            setting: None,
        })
    }
}

impl MkDir {
    /// The directory with its owner and group looked up on the host (a
    /// number is taken as is). Also refuses a path in `/proc`, `/sys` or
    /// `/dev/pts`, which are mounted over.
    pub fn resolve(&self) -> Result<NewDir, DirError> {
        if let Some(dir) = ["/proc", "/sys", "/dev/pts"]
            .iter()
            .find(|d| at_or_below(&self.path, d))
        {
            return Err(DirError::RefusedDir {
                path: self.path.clone(),
                why: format!("{dir} is a file system jailtrace mounts"),
            });
        }
        let lookup = |name: &str, errno| DirError::Lookup {
            path: self.path.clone(),
            name: name.into(),
            errno,
        };
        let missing = |what, name: &str| DirError::NoAccount {
            path: self.path.clone(),
            what,
            name: name.into(),
        };
        let (uid, primary) = match &self.user {
            None => (0, 0),
            Some(user) => {
                let found = match user.parse::<u32>() {
                    Ok(uid) => User::from_uid(Uid::from_raw(uid)).map_err(|e| lookup(user, e))?,
                    Err(_) => User::from_name(user).map_err(|e| lookup(user, e))?,
                };
                match (found, user.parse::<u32>()) {
                    (Some(u), _) => (u.uid.as_raw(), u.gid.as_raw()),
                    // A number without an account: an owner all the same.
                    (None, Ok(uid)) => (uid, uid),
                    (None, Err(_)) => return Err(missing("user", user)),
                }
            }
        };
        let gid = match &self.group {
            None => primary,
            Some(group) => match group.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => Group::from_name(group)
                    .map_err(|e| lookup(group, e))?
                    .map(|g| g.gid.as_raw())
                    .ok_or_else(|| missing("group", group))?,
            },
        };
        Ok(NewDir {
            path: self.path.clone(),
            mode: self.mode,
            uid,
            gid,
            setting: self.setting.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(s: &str) -> Bind {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn bind_error(s: &str) -> String {
        s.parse::<Bind>().unwrap_err().to_string()
    }

    #[test]
    fn bind_forms() {
        let b = bind("/srv/data");
        assert_eq!(
            (b.host.as_path(), b.jail.as_path(), b.read_only),
            (Path::new("/srv/data"), Path::new("/srv/data"), false)
        );
        let b = bind("/srv/data:ro");
        assert_eq!(
            (b.jail.as_path(), b.read_only),
            (Path::new("/srv/data"), true)
        );
        let b = bind("data:/var/lib/app");
        assert_eq!(
            (b.host.as_path(), b.jail.as_path(), b.read_only),
            (Path::new("data"), Path::new("/var/lib/app"), false)
        );
        let b = bind("/srv/www:/var/www/html:ro");
        assert!(b.read_only);
        assert_eq!(b.to_string(), "/srv/www:/var/www/html:ro");
        assert!(!bind("/srv/www:/var/www:rw").read_only);
    }

    #[test]
    fn malformed_binds_say_what_is_wrong() {
        assert!(bind_error("/srv/x:var/lib").contains("is not absolute"));
        assert!(bind_error("data").contains("is not absolute"));
        assert!(bind_error("/srv/x:/var/../etc").contains("`..`"));
        assert!(bind_error("/srv/x:/").contains("the whole root"));
        assert!(bind_error(":/x").contains("host directory is empty"));
        assert!(bind_error("/a:/b:/c").contains("too many"));
        assert!(bind_error("/a:/b:ro:x").contains("too many"));
        assert!(bind_error("/x:y").ends_with("expected HOST_DIR[:JAIL_DIR][:ro]"));
    }

    #[test]
    fn dangerous_sources_and_targets_are_refused() {
        let root = Path::new("/nonexistent-root");
        let refused = |s: &str| bind(s).check(root).unwrap_err().to_string();
        assert!(
            refused("/:/host").contains("the host's root"),
            "{}",
            refused("/:/host")
        );
        for system in ["/usr:/x", "/etc:/x", "/usr/lib:/x", "/proc:/x", "/root:/x"] {
            assert!(
                refused(system).contains("host system directory"),
                "{system}"
            );
        }
        for whole in ["/var:/x", "/tmp:/x", "/home:/x"] {
            assert!(
                refused(whole).contains("shared by the whole host"),
                "{whole}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let data = std::fs::canonicalize(dir.path()).unwrap();
        let ok = |jail: &str| format!("{}:{jail}", data.display());
        for jail in ["/proc/x", "/sys", "/dev/shm"] {
            assert!(
                refused(&ok(jail)).contains("places"),
                "{jail}: {}",
                refused(&ok(jail))
            );
        }
        for jail in ["/usr", "/etc", "/var/lib"] {
            assert!(refused(&ok(jail)).contains("would hide"), "{jail}");
        }
        // The jail's root in the source, or the source in the root.
        let in_it = bind(&ok("/data")).check(&data.join("root")).unwrap_err();
        assert!(in_it.to_string().contains("holds the jail root"), "{in_it}");
        let inner = data.join("root/x");
        std::fs::create_dir_all(&inner).unwrap();
        let err = bind(&format!("{}:/data", inner.display()))
            .check(&data.join("root"))
            .unwrap_err();
        assert!(err.to_string().contains("lies in the jail root"), "{err}");
        // Missing, or a file.
        let err = bind(&format!("{}/missing:/data", data.display()))
            .check(root)
            .unwrap_err();
        assert!(matches!(err, DirError::NoHostDir { .. }), "{err}");
        std::fs::write(data.join("file"), b"x").unwrap();
        let err = bind(&format!("{}/file:/data", data.display()))
            .check(root)
            .unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        // A fine one comes back canonical.
        let link = data.join("link");
        std::os::unix::fs::symlink(&inner, &link).unwrap();
        let checked = bind(&format!("{}:/var/lib/app:ro", link.display()))
            .check(root)
            .unwrap();
        assert_eq!(checked.host, inner);
        assert_eq!(checked.jail, Path::new("/var/lib/app"));
        assert!(checked.read_only);
    }

    #[test]
    fn binds_do_not_nest_and_directories_stay_out_of_them() {
        let a = bind("/srv/a:/data");
        let b = bind("/srv/b:/data/sub");
        let err = check_binds(&[a.clone(), b], &[]).unwrap_err();
        assert!(err.to_string().contains("lies in"), "{err}");
        let same = check_binds(&[a.clone(), bind("/srv/c:/data")], &[]).unwrap_err();
        assert!(matches!(same, DirError::Nested { .. }));
        let dir: MkDir = "/data/run".parse().unwrap();
        let err = check_binds(std::slice::from_ref(&a), &[dir]).unwrap_err();
        assert!(err.to_string().contains("in the host's directory"), "{err}");
        let fine: MkDir = "/run/app".parse().unwrap();
        check_binds(&[a, bind("/srv/b:/database")], &[fine]).unwrap();
    }

    #[test]
    fn mkdir_forms_and_defaults() {
        let d: MkDir = "/run/sshd".parse().unwrap();
        assert_eq!(
            (d.mode, d.user.as_deref(), d.group.as_deref()),
            (0o755, None, None)
        );
        let d: MkDir = "/run/jt:0700:nobody".parse().unwrap();
        assert_eq!((d.mode, d.user.as_deref()), (0o700, Some("nobody")));
        let d: MkDir = "/run/x::www-data:adm".parse().unwrap();
        assert_eq!(
            (d.mode, d.user.as_deref(), d.group.as_deref()),
            (0o755, Some("www-data"), Some("adm"))
        );
        assert_eq!("/x:1777".parse::<MkDir>().unwrap().mode, 0o1777);
        for bad in [
            "run/x",
            "/run/../x",
            "/",
            "/x:999",
            "/x:0o",
            "/x:17777",
            "/x:1:2:3:4",
            "/x:7:a b",
        ] {
            let err = bad.parse::<MkDir>().unwrap_err();
            assert!(matches!(err, DirError::Syntax { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn mkdir_owners_are_looked_up() {
        let root = "/r:0700".parse::<MkDir>().unwrap().resolve().unwrap();
        assert_eq!((root.mode, root.uid, root.gid), (0o700, 0, 0));
        let numeric = "/r:0700:4242:4343"
            .parse::<MkDir>()
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!((numeric.uid, numeric.gid), (4242, 4343));
        let by_name = "/r::root:root".parse::<MkDir>().unwrap().resolve().unwrap();
        assert_eq!((by_name.uid, by_name.gid), (0, 0));
        let err = "/r::no-such-user-jt"
            .parse::<MkDir>()
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(
            err.to_string().contains("no user \"no-such-user-jt\""),
            "{err}"
        );
        let err = "/r::root:no-such-group-jt"
            .parse::<MkDir>()
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("/etc/group"), "{err}");
        let err = "/proc/x".parse::<MkDir>().unwrap().resolve().unwrap_err();
        assert!(err.to_string().contains("mounts"), "{err}");
    }
}
