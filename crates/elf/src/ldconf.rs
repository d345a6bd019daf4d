//! `/etc/ld.so.conf`: the directory list `ldconfig` builds the cache from.
//!
//! Parsed as glibc's `ldconfig` does (`parse_conf`): `#` starts a comment;
//! blank lines are skipped; `include PATTERN...` reads every file matching
//! each pattern, sorted, with relative patterns taken from the including
//! file's directory; `hwcap` lines are ignored; any other line is one
//! directory, with an old-style `=TYPE` suffix and trailing slashes dropped.
//! Missing or unreadable files are skipped, include cycles are cut, and each
//! directory is listed once, at its first appearance.
//!
//! Patterns support `*` and `?` in any component, which is all that
//! `ld.so.conf` files use in practice (`/etc/ld.so.conf.d/*.conf`); as with
//! `glob(3)`, a wildcard does not match a leading `.`.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// Where `ldconfig` reads its configuration.
pub const DEFAULT_PATH: &str = "/etc/ld.so.conf";

/// Includes nested deeper than this are ignored (a cycle, in practice).
const MAX_DEPTH: usize = 16;

/// The directories listed by the configuration file at `path` and the files
/// it includes, in order, each once. Never fails: what cannot be read is
/// skipped (and logged at debug level).
pub fn read_ld_so_conf(path: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut seen = HashSet::new();
    parse_file(path, 0, &mut dirs, &mut seen);
    dirs
}

fn parse_file(path: &Path, depth: usize, dirs: &mut Vec<PathBuf>, seen: &mut HashSet<PathBuf>) {
    if depth > MAX_DEPTH {
        tracing::debug!(path = %path.display(), "ld.so.conf includes nest too deep; skipped");
        return;
    }
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(err) => {
            tracing::debug!(path = %path.display(), %err, "ld.so.conf file skipped");
            return;
        }
    };
    for line in text.split(|&b| b == b'\n') {
        let line = line.split(|&b| b == b'#').next().unwrap_or_default();
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = keyword(line, b"include") {
            for pattern in rest
                .split(|b| b.is_ascii_whitespace())
                .filter(|p| !p.is_empty())
            {
                let pattern = Path::new(OsStr::from_bytes(pattern));
                let pattern = match path.parent() {
                    Some(dir) if pattern.is_relative() => dir.join(pattern),
                    _ => pattern.to_path_buf(),
                };
                for file in glob(&pattern) {
                    parse_file(&file, depth + 1, dirs, seen);
                }
            }
        } else if keyword(line, b"hwcap").is_some() {
            continue;
        } else {
            let dir = line.split(|&b| b == b'=').next().unwrap_or_default();
            let mut dir = dir.trim_ascii_end();
            while dir.len() > 1 && dir.ends_with(b"/") {
                dir = &dir[..dir.len() - 1];
            }
            let dir = PathBuf::from(OsString::from_vec(dir.to_vec()));
            if seen.insert(dir.clone()) {
                dirs.push(dir);
            }
        }
    }
}

/// The rest of `line` if it starts with `word` followed by a blank.
fn keyword<'a>(line: &'a [u8], word: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(word)?;
    match rest.first() {
        Some(b' ' | b'\t') => Some(rest),
        _ => None,
    }
}

/// Files and directories matching `pattern`, sorted, like `glob(3)`.
pub(crate) fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for component in pattern.components() {
        let part = match component {
            Component::Normal(part) => part,
            other => {
                for path in &mut found {
                    path.push(other.as_os_str());
                }
                continue;
            }
        };
        let is_pattern = part.as_bytes().iter().any(|&b| b == b'*' || b == b'?');
        let mut next = Vec::new();
        for base in &found {
            if !is_pattern {
                next.push(base.join(part));
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<OsString> = entries
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .filter(|name| wildcard_match(part.as_bytes(), name.as_bytes()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|name| base.join(name)));
        }
        found = next;
    }
    found.retain(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_ok());
    found
}

/// `fnmatch` with `*` and `?` only; a leading `.` must be matched literally.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    // Iterative matcher with backtracking to the last `*`.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"*.conf", b"libc.conf"));
        assert!(!wildcard_match(b"*.conf", b".conf"));
        assert!(!wildcard_match(b"*.conf", b"libc.conf.bak"));
        assert!(wildcard_match(b"a?c*", b"abcdef"));
        assert!(wildcard_match(b"*a*b", b"xxaxxb"));
        assert!(!wildcard_match(b"*a*b", b"xxaxxbc"));
        assert!(wildcard_match(b"exact", b"exact"));
        assert!(wildcard_match(b".*", b".hidden"));
    }

    #[test]
    fn host_configuration_lists_multiarch_dirs() {
        let dirs = read_ld_so_conf(Path::new(DEFAULT_PATH));
        assert!(
            dirs.contains(&PathBuf::from("/usr/lib/x86_64-linux-gnu")),
            "{dirs:?}"
        );
        assert!(dirs.contains(&PathBuf::from("/usr/local/lib")), "{dirs:?}");
    }

    #[test]
    fn includes_globs_comments_and_oddities() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir(root.join("conf.d")).unwrap();
        std::fs::write(
            root.join("ld.so.conf"),
            "# comment\n\
             /first/dir  # trailing comment\n\
             \n\
             include conf.d/*.conf\n\
             hwcap 1 nosegneg\n\
             include\t/nonexistent/*.conf /nonexistent/file.conf\n\
             /old/style=libc6\n\
             /slashes///\n\
             /first/dir\n\
             include ld.so.conf\n",
        )
        .unwrap();
        std::fs::write(root.join("conf.d/b.conf"), "/from/b\n").unwrap();
        std::fs::write(root.join("conf.d/a.conf"), "\t/from/a\n").unwrap();
        std::fs::write(root.join("conf.d/.hidden.conf"), "/hidden\n").unwrap();
        std::fs::write(root.join("conf.d/c.txt"), "/not/conf\n").unwrap();
        let dirs = read_ld_so_conf(&root.join("ld.so.conf"));
        assert_eq!(
            dirs,
            ["/first/dir", "/from/a", "/from/b", "/old/style", "/slashes"].map(PathBuf::from)
        );
        assert!(read_ld_so_conf(&root.join("missing.conf")).is_empty());
    }

    #[test]
    fn glob_components() {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["x1/sub", "x2/sub", "y/sub"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
            std::fs::write(tmp.path().join(d).join("f.conf"), "").unwrap();
        }
        let got = glob(&tmp.path().join("x*/sub/*.conf"));
        assert_eq!(
            got,
            vec![
                tmp.path().join("x1/sub/f.conf"),
                tmp.path().join("x2/sub/f.conf")
            ]
        );
        assert!(glob(&tmp.path().join("nothing*/f")).is_empty());
        assert_eq!(
            glob(&tmp.path().join("y/sub/f.conf")),
            vec![tmp.path().join("y/sub/f.conf")]
        );
    }
}
