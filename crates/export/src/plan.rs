//! The manifest's entries as every format places them: [`items`] checks the
//! whole manifest once, before anything is written, and says what each
//! entry becomes.
//!
//! Guarantees, for the returned list:
//! - **Manifest order**, which is parents first: every item's parent is `/`
//!   or a directory listed before it, and no path comes twice.
//! - **Normal absolute paths**: [`Item::path`] is absolute with no `.`,
//!   `..` or empty components and no NUL byte.
//! - **What a builder needs is present**: a symlink has its target, a
//!   device its number, a hard link names an earlier file.
//! - **Run-time leftovers are left out**: entries the program created
//!   (cause `created`: files, directories) are its output, not its needs;
//!   it makes them again when it runs. An entry for `/` itself is left out
//!   (every format has a root already).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use jailtrace_manifest::{Cause, Entry, EntryKind, Manifest};

use crate::Error;

/// What an entry becomes in the exported root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum What<'a> {
    /// A directory.
    Dir,
    /// A symbolic link with this target (bytes as stored, may be relative).
    Symlink(&'a [u8]),
    /// A character device.
    Device {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A hard link to the earlier file at this (normal, absolute) jail path.
    Hardlink(PathBuf),
    /// A file with exactly this content, never read from the host.
    Synthesized(&'a [u8]),
    /// A file of this size with no content (`hollow` in the manifest):
    /// zeros, with the host file's modification time.
    Hollow { size: u64 },
    /// A file copied from the host at the same path.
    Copied {
        /// The manifest's SHA-256 (lowercase hex), if recorded.
        sha256: Option<&'a str>,
    },
}

/// One entry to place.
#[derive(Debug, Clone)]
pub(crate) struct Item<'a> {
    /// The manifest entry (mode, owner).
    pub entry: &'a Entry,
    /// The entry's path, absolute and normal.
    pub path: PathBuf,
    /// What it becomes.
    pub what: What<'a>,
}

impl Item<'_> {
    /// The path without its leading `/` (`usr/bin/date`), as archives name it.
    pub fn relative(&self) -> &Path {
        // Invariant (from `normal`): the path is absolute and not `/`.
        self.path.strip_prefix("/").unwrap_or(&self.path)
    }

    /// Permission bits from the manifest (setuid may have been stripped there).
    pub fn mode(&self) -> u32 {
        self.entry.mode.bits()
    }
}

/// Every entry the exported root places, checked, in manifest order.
pub(crate) fn items(manifest: &Manifest) -> Result<Vec<Item<'_>>, Error> {
    let mut out: Vec<Item<'_>> = Vec::with_capacity(manifest.entries.len());
    // Path -> kind of the items so far, for parent and hard-link checks.
    let mut seen: HashMap<PathBuf, EntryKind> = HashMap::new();
    for entry in &manifest.entries {
        let raw = entry.path.as_path();
        let path = normal(raw).ok_or_else(|| {
            Error::entry(raw, "the path must be absolute, without `..` or NUL bytes")
        })?;
        if path == Path::new("/") {
            if entry.kind == EntryKind::Dir {
                continue;
            }
            return Err(Error::entry(raw, "`/` can only be a directory"));
        }
        if entry.reason.cause == Cause::Created {
            continue;
        }
        if seen.contains_key(&path) {
            return Err(Error::entry(&path, "listed twice"));
        }
        // Invariant: a normal path other than `/` has a parent.
        let parent = path.parent().unwrap_or(Path::new("/"));
        if parent != Path::new("/") && seen.get(parent) != Some(&EntryKind::Dir) {
            return Err(Error::entry(
                &path,
                format!(
                    "its parent {} is not a directory listed before it",
                    parent.display()
                ),
            ));
        }
        let what = what(entry, &path, &seen)?;
        seen.insert(path.clone(), entry.kind);
        out.push(Item { entry, path, what });
    }
    Ok(out)
}

/// What `entry` (at normal path `path`) becomes.
fn what<'a>(
    entry: &'a Entry,
    path: &Path,
    seen: &HashMap<PathBuf, EntryKind>,
) -> Result<What<'a>, Error> {
    Ok(match entry.kind {
        EntryKind::Dir => What::Dir,
        EntryKind::Symlink => {
            let target = entry
                .target
                .as_ref()
                .ok_or_else(|| Error::entry(path, "a symlink without a target"))?;
            let bytes = target.as_bytes();
            if bytes.is_empty() || bytes.contains(&0) {
                return Err(Error::entry(
                    path,
                    "an empty symlink target or one with NUL",
                ));
            }
            What::Symlink(bytes)
        }
        EntryKind::Device => {
            let rdev = entry
                .rdev
                .ok_or_else(|| Error::entry(path, "a device without a device number"))?;
            What::Device {
                major: rdev.major,
                minor: rdev.minor,
            }
        }
        EntryKind::File => {
            if let Some(content) = &entry.content {
                What::Synthesized(content.as_bytes())
            } else if entry.hollow {
                What::Hollow {
                    size: entry.size.unwrap_or(0),
                }
            } else if let Some(to) = &entry.hardlink_to {
                let to = normal(to.as_path())
                    .filter(|to| seen.get(to) == Some(&EntryKind::File))
                    .ok_or_else(|| {
                        Error::entry(
                            path,
                            format!(
                                "a hard link to {}, which is not a file listed before it",
                                to
                            ),
                        )
                    })?;
                What::Hardlink(to)
            } else {
                let sha256 = entry.sha256.as_deref();
                if sha256.is_some_and(|s| !is_sha256(s)) {
                    return Err(Error::entry(
                        path,
                        "its sha256 is not 64 lowercase hex digits",
                    ));
                }
                What::Copied { sha256 }
            }
        }
    })
}

/// `path` rebuilt from its components when it is absolute with no `..`
/// and no NUL byte (`.` and repeated `/` are dropped); otherwise `None`.
pub(crate) fn normal(path: &Path) -> Option<PathBuf> {
    if path.as_os_str().as_bytes().contains(&0) {
        return None;
    }
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in components {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// True for 64 lowercase hex digits.
fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The bytes of a path (paths are bytes on Linux).
pub(crate) fn bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

/// A path from bytes.
#[cfg(test)]
pub(crate) fn path_of(bytes: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{entry, manifest};
    use jailtrace_manifest::{DeviceNumber, PathText, Reason};

    #[test]
    fn normal_paths() {
        assert_eq!(
            normal(Path::new("/usr//bin/./date/")),
            Some("/usr/bin/date".into())
        );
        assert_eq!(normal(Path::new("/")), Some("/".into()));
        assert_eq!(normal(Path::new("usr/bin")), None);
        assert_eq!(normal(Path::new("/usr/../etc")), None);
        assert_eq!(normal(path_of(b"/a\0b")), None);
        assert_eq!(
            normal(path_of(b"/caf\xe9")),
            Some(path_of(b"/caf\xe9").into())
        );
    }

    #[test]
    fn what_the_program_created_is_left_out() {
        let mut m = manifest();
        let mut log = entry("/var/log/app.log", EntryKind::File, 0o644);
        log.reason = Reason::new(Cause::Created, 1);
        let mut dir = entry("/var/cache", EntryKind::Dir, 0o755);
        dir.reason = Reason::new(Cause::Created, 1);
        m.entries = vec![
            entry("/var", EntryKind::Dir, 0o755),
            entry("/var/log", EntryKind::Dir, 0o755),
            log,
            dir,
        ];
        let items = items(&m).unwrap();
        let paths: Vec<_> = items.iter().map(|i| i.path.clone()).collect();
        assert_eq!(paths, vec![PathBuf::from("/var"), "/var/log".into()]);
        assert_eq!(items[1].relative(), Path::new("var/log"));
    }

    #[test]
    fn kinds_become_what_builders_need() {
        let mut m = manifest();
        let mut link = entry("/lib64", EntryKind::Symlink, 0o777);
        link.target = Some(PathText::from("usr/lib64"));
        let mut null = entry("/dev/null", EntryKind::Device, 0o666);
        null.rdev = Some(DeviceNumber { major: 1, minor: 3 });
        let mut passwd = entry("/etc/passwd", EntryKind::File, 0o644);
        passwd.content = Some(PathText::from("root:x:0:0::/:/bin/sh\n"));
        let mut hard = entry("/etc/again", EntryKind::File, 0o644);
        hard.hardlink_to = Some(PathText::from("/etc//passwd"));
        m.entries = vec![
            link,
            entry("/dev", EntryKind::Dir, 0o755),
            null,
            entry("/etc", EntryKind::Dir, 0o755),
            passwd,
            hard,
        ];
        let whats: Vec<_> = items(&m).unwrap().into_iter().map(|i| i.what).collect();
        assert_eq!(
            whats,
            vec![
                What::Symlink(b"usr/lib64"),
                What::Dir,
                What::Device { major: 1, minor: 3 },
                What::Dir,
                What::Synthesized(b"root:x:0:0::/:/bin/sh\n"),
                What::Hardlink("/etc/passwd".into()),
            ]
        );
    }

    #[test]
    fn bad_manifests_are_errors_naming_the_entry() {
        let check = |entries: Vec<Entry>, wanted: &str| {
            let mut m = manifest();
            m.entries = entries;
            let err = items(&m).unwrap_err().to_string();
            assert!(err.contains(wanted), "{err} lacks {wanted}");
        };
        check(
            vec![entry("/usr/bin/date", EntryKind::File, 0o755)],
            "manifest entry /usr/bin/date: its parent /usr/bin is not a directory listed before it",
        );
        check(
            vec![entry("/x", EntryKind::Symlink, 0o777)],
            "manifest entry /x: a symlink without a target",
        );
        check(
            vec![entry("/null", EntryKind::Device, 0o666)],
            "a device without a device number",
        );
        let mut hard = entry("/b", EntryKind::File, 0o644);
        hard.hardlink_to = Some(PathText::from("/a"));
        check(
            vec![hard],
            "a hard link to /a, which is not a file listed before it",
        );
        check(
            vec![
                entry("/a", EntryKind::Dir, 0o755),
                entry("/a/", EntryKind::Dir, 0o755),
            ],
            "manifest entry /a: listed twice",
        );
        check(vec![entry("a", EntryKind::Dir, 0o755)], "must be absolute");
        let mut bad_sum = entry("/f", EntryKind::File, 0o644);
        bad_sum.sha256 = Some("ABC".into());
        check(vec![bad_sum], "its sha256 is not 64 lowercase hex digits");
        // A file under a symlink is not under a directory.
        let mut link = entry("/lib", EntryKind::Symlink, 0o777);
        link.target = Some(PathText::from("usr/lib"));
        check(
            vec![link, entry("/lib/libc.so.6", EntryKind::File, 0o755)],
            "its parent /lib is not a directory listed before it",
        );
    }
}
