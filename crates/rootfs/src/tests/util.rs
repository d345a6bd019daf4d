//! Helpers shared by the unit tests: building host trees and comparing
//! directory trees before and after.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::{Attrs, Root};

/// Every entry under `dir` (not following symlinks) with its type, mode,
/// owner, size, mtime and content or link target.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(base: &Path, p: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let m = fs::symlink_metadata(p).expect("snapshot: entry vanished");
    let rel = p.strip_prefix(base).expect("under base").to_path_buf();
    let mut line = format!(
        "mode={:o} uid={} gid={} size={} mtime={}.{} ino={}",
        m.mode(),
        m.uid(),
        m.gid(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ino()
    );
    let ft = m.file_type();
    if ft.is_symlink() {
        line += &format!(" -> {:?}", fs::read_link(p).expect("readlink"));
    } else if ft.is_file() {
        line += &format!(" content={:?}", fs::read(p).expect("read"));
    } else if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)
            .expect("read_dir")
            .map(|e| e.expect("dirent").path())
            .collect();
        names.sort();
        for n in names {
            walk(base, &n, out);
        }
    }
    out.insert(rel, line);
}

/// Asserts two snapshots are equal, listing only the entries that differ.
pub(crate) fn assert_same(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
    what: &str,
) {
    let mut diff = Vec::new();
    for k in before
        .keys()
        .chain(after.keys().filter(|k| !before.contains_key(*k)))
    {
        if before.get(k) != after.get(k) {
            diff.push(format!("{k:?}: {:?} -> {:?}", before.get(k), after.get(k)));
        }
    }
    assert!(
        diff.is_empty(),
        "{what}: outside changed:\n{}",
        diff.join("\n")
    );
}

/// Sets the mtime of `p` itself (not following a symlink).
pub(crate) fn set_mtime(p: &Path, s: i64, ns: i64) {
    utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &TimeSpec::UTIME_OMIT,
        &TimeSpec::new(s, ns),
        UtimensatFlags::NoFollowSymlink,
    )
    .expect("utimensat");
}

/// Writes a file with content, mode, owner and mtime.
pub(crate) fn file(p: &Path, content: &[u8], mode: u32, uid: u32, gid: u32, mtime: i64) {
    fs::write(p, content).expect("write");
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
    set_mtime(p, mtime, 123_456_789);
}

/// Makes a directory with mode, owner and mtime.
pub(crate) fn dir(p: &Path, mode: u32, uid: u32, gid: u32, mtime: i64) {
    fs::create_dir(p).expect("mkdir");
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
    set_mtime(p, mtime, 0);
}

/// A symlink `p -> target`.
pub(crate) fn link(target: &str, p: &Path) {
    std::os::unix::fs::symlink(target, p).expect("symlink");
}

/// Opens `path` as a root, with the openat2 or the fallback resolver.
pub(crate) fn open_root(path: &Path, fallback: bool) -> Root {
    let mut r = Root::open(path).expect("open root");
    if fallback {
        r.force_fallback();
    }
    r
}

/// Plain attributes for things tests create directly.
pub(crate) fn attrs(mode: u32) -> Attrs {
    Attrs {
        mode,
        uid: 0,
        gid: 0,
        mtime: None,
    }
}

/// Whether root-only tests can run: true as root; otherwise they skip with
/// a loud message, unless `JAILTRACE_TESTS_MUST_RUN=1` makes that a failure.
pub(crate) fn need_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let must = std::env::var_os("JAILTRACE_TESTS_MUST_RUN").is_some_and(|v| v == "1");
    assert!(!must, "{test} needs root and JAILTRACE_TESTS_MUST_RUN=1");
    eprintln!("SKIPPED {test}: needs root (owners, device nodes)");
    false
}
