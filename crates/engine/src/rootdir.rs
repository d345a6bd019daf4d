//! Choosing where a jail may live, and finding the program to jail.
//!
//! A root is refused when writing into it could damage the host: `/`, a
//! system directory (`/usr`, `/etc`, `/var`, …) or an ancestor of one, a
//! path inside the trees the system owns (`/usr/…`, `/etc/…`, `/proc/…`),
//! a symlink, or something that is not a directory.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Directories that are never a root, nor may contain one as an ancestor.
const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/usr/local",
    "/usr/lib",
    "/usr/bin",
    "/usr/sbin",
    "/usr/share",
    "/var/lib",
    "/var/log",
    "/var/tmp",
    "/var/cache",
];

/// Trees nothing may be jailed inside.
const SYSTEM_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/sbin", "/sys", "/usr",
];

/// Why a root or a program cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("refusing to use {path} as a jail root: {why}")]
    DangerousRoot { path: PathBuf, why: &'static str },
    #[error("jail root {path} is not a directory")]
    RootNotDirectory { path: PathBuf },
    #[error("jail root {path} is a symlink; give the directory it points to, or --follow-root")]
    RootSymlink { path: PathBuf },
    #[error("cannot create jail root {path}: {source}")]
    CreateRoot {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("command not found: {} (looked in PATH)", name.to_string_lossy())]
    NotFound { name: OsString },
    #[error("{path}: no such file on the host")]
    NoSuchProgram { path: PathBuf },
    #[error("{path} is not an executable file")]
    NotExecutable { path: PathBuf },
    #[error("manifest {manifest} would be inside the jail root {root}; write it elsewhere")]
    ManifestInRoot { manifest: PathBuf, root: PathBuf },
}

/// Checks (and creates, if missing) the jail root; returns its canonical
/// path.
/// `follow_symlink`: accept a root that is a symlink (`--follow-root`); the
/// directory it points to is checked like any other root.
pub fn prepare_root(path: &Path, follow_symlink: bool) -> Result<PathBuf, InputError> {
    let abs = std::path::absolute(path).map_err(|source| InputError::CreateRoot {
        path: path.into(),
        source,
    })?;
    match std::fs::symlink_metadata(&abs) {
        Ok(m) if m.file_type().is_symlink() && !follow_symlink => {
            return Err(InputError::RootSymlink { path: abs })
        }
        Ok(m) if m.file_type().is_symlink() && !abs.is_dir() => {
            return Err(InputError::RootNotDirectory { path: abs })
        }
        // A followed link to a directory: checked below, once canonical.
        Ok(m) if m.file_type().is_symlink() => {}
        Ok(m) if !m.is_dir() => return Err(InputError::RootNotDirectory { path: abs }),
        Ok(_) => {}
        Err(_) => {
            // Check the would-be path before creating anything.
            check_root(&lexical(&abs))?;
            std::fs::create_dir_all(&abs).map_err(|source| InputError::CreateRoot {
                path: abs.clone(),
                source,
            })?;
        }
    }
    let canon = abs
        .canonicalize()
        .map_err(|source| InputError::CreateRoot {
            path: abs.clone(),
            source,
        })?;
    check_root(&canon)?;
    Ok(canon)
}

fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Refuses dangerous roots (`path` is absolute and canonical).
pub fn check_root(path: &Path) -> Result<(), InputError> {
    let refuse = |why| {
        Err(InputError::DangerousRoot {
            path: path.into(),
            why,
        })
    };
    if path == Path::new("/") {
        return refuse("it is the host's root directory");
    }
    if SYSTEM_DIRS.iter().any(|d| Path::new(d).starts_with(path)) {
        return refuse("it is a system directory of the host or contains one");
    }
    if SYSTEM_TREES.iter().any(|d| path.starts_with(d)) {
        return refuse("it lies inside a system directory of the host");
    }
    Ok(())
}

/// Finds `name` like `execvp` does: a name with a slash is a path, others
/// are looked up in `path_var`. The result must be an executable file.
pub fn find_program(name: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, InputError> {
    let check = |p: PathBuf| -> Result<PathBuf, InputError> {
        let abs = std::path::absolute(&p).unwrap_or(p);
        match std::fs::metadata(&abs) {
            Err(_) => Err(InputError::NoSuchProgram { path: abs }),
            Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => {
                Err(InputError::NotExecutable { path: abs })
            }
            Ok(_) => Ok(abs),
        }
    };
    if name.as_bytes().contains(&b'/') {
        return check(PathBuf::from(name));
    }
    let dirs = path_var.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(dirs) {
        let candidate = dir.join(name);
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return check(candidate);
            }
        }
    }
    Err(InputError::NotFound { name: name.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_directories_are_refused() {
        for bad in [
            "/",
            "/usr",
            "/etc",
            "/var",
            "/home",
            "/usr/lib",
            "/usr/lib/x",
            "/etc/jail",
            "/proc/1",
            "/var/lib",
        ] {
            assert!(check_root(Path::new(bad)).is_err(), "{bad}");
        }
        for fine in [
            "/srv/jails/date",
            "/var/jails/x",
            "/home/alice/jail",
            "/tmp/j",
            "/opt/jails/a",
            "/work/x.jail",
        ] {
            assert!(check_root(Path::new(fine)).is_ok(), "{fine}");
        }
    }

    #[test]
    fn roots_that_are_files_or_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(
            prepare_root(&file, false),
            Err(InputError::RootNotDirectory { .. })
        ));
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(matches!(
            prepare_root(&link, false),
            Err(InputError::RootSymlink { .. })
        ));
        let new = dir.path().join("a/b.jail");
        assert_eq!(
            prepare_root(&new, false).unwrap(),
            new.canonicalize().unwrap()
        );
    }

    #[test]
    fn programs_are_found_like_execvp() {
        assert_eq!(
            find_program(OsStr::new("sh"), Some(OsStr::new("/nonexistent:/bin"))).unwrap(),
            Path::new("/bin/sh")
        );
        assert!(matches!(
            find_program(OsStr::new("no-such-cmd-jt"), None),
            Err(InputError::NotFound { .. })
        ));
        assert!(matches!(
            find_program(OsStr::new("/etc/passwd"), None),
            Err(InputError::NotExecutable { .. })
        ));
        assert!(matches!(
            find_program(OsStr::new("/nonexistent/x"), None),
            Err(InputError::NoSuchProgram { .. })
        ));
    }
}
