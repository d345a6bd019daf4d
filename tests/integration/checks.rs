//! The checks every acceptance jail must pass.
//!
//! [`check_jail`] ties the three views of one `jailtrace run` together: the
//! `--json` summary, the manifest (read with the real `jailtrace_manifest`
//! reader), and the root on disk, compared entry by entry with the host.
//! Paths inside the root are always resolved with [`resolve_in`], so a
//! check of the jail never silently looks at the host.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use jailtrace_manifest::{Cause, Entry, EntryKind, Manifest, RunStatus, SCHEMA_VERSION};
use sha2::{Digest, Sha256};

use crate::jail::{Jail, Outcome, Summary};
use crate::resolve::{inside, resolve_in};
use crate::util;

/// Prints `ACCEPTANCE <name> runs=.. files=.. bytes=.. wall_ms=..` on stderr.
pub fn report_acceptance(name: &str, summary: &Summary) {
    eprintln!(
        "ACCEPTANCE {name} runs={} files={} bytes={} wall_ms={}",
        summary.runs, summary.files, summary.bytes, summary.wall_ms
    );
}

/// Everything an acceptance jail must satisfy after `jailtrace run` of
/// `argv` with `env` succeeded into `jail.root` / `jail.manifest`. Prints the
/// `ACCEPTANCE` line and returns the manifest.
pub fn check_jail(
    name: &str,
    jail: &Jail,
    outcome: &Outcome,
    argv: &[&str],
    env: &[(&str, &str)],
) -> Manifest {
    let summary = outcome.expect_ok();
    report_acceptance(name, &summary);
    let report = outcome.finished.report();
    // First, so the walks below never descend into a leftover mount.
    let mounts = util::mounts_under(&jail.path);
    assert!(
        mounts.is_empty(),
        "jailtrace exited but left mounts in the jail: {mounts:?}\n{report}"
    );

    let raw = outcome.manifest_json();
    assert_eq!(
        raw.get("schema_version")
            .and_then(serde_json::Value::as_u64),
        Some(u64::from(SCHEMA_VERSION)),
        "the manifest's schema_version must be the number {SCHEMA_VERSION}\n{report}"
    );
    let manifest = outcome.manifest();
    assert_eq!(manifest.schema_version, SCHEMA_VERSION);

    check_summary(&summary, &manifest, jail, &report);
    check_command(&manifest, argv, env, &report);
    check_runs(&manifest, &report);
    check_entries(&manifest, &jail.root, &report);
    check_executable(&manifest, &jail.root, argv[0], &report);
    check_absent(&manifest, &report);
    check_nothing_unrecorded(&manifest, &jail.root, &report);

    let leftovers: Vec<_> = fs::read_dir(&jail.path)
        .expect("the test directory is readable")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.as_bytes().starts_with(b".jailtrace-manifest-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary manifest files were left next to the manifest: {leftovers:?}\n{report}"
    );
    manifest
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn check_summary(summary: &Summary, manifest: &Manifest, jail: &Jail, report: &str) {
    assert!(
        same_file(summary.root.as_path(), &jail.root),
        "summary root {:?} is not {}\n{report}",
        summary.root,
        jail.root.display()
    );
    assert!(
        same_file(manifest.root.as_path(), &jail.root),
        "manifest root {:?} is not {}\n{report}",
        manifest.root,
        jail.root.display()
    );
    assert!(
        summary
            .manifest
            .as_ref()
            .is_some_and(|m| same_file(m.as_path(), &jail.manifest)),
        "summary manifest {:?} is not {}\n{report}",
        summary.manifest,
        jail.manifest.display()
    );
    assert!(summary.runs >= 1, "summary runs must be >= 1\n{report}");
    assert_eq!(
        summary.runs,
        manifest.runs.len() as u64,
        "summary runs vs manifest runs\n{report}"
    );
    assert_eq!(
        summary.entries,
        manifest.entries.len() as u64,
        "summary entries vs manifest entries\n{report}"
    );
    let files: Vec<&Entry> = manifest
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .collect();
    let copies = files.iter().filter(|e| e.hardlink_to.is_none()).count() as u64;
    assert!(
        (copies..=files.len() as u64).contains(&summary.files),
        "summary files={} but the manifest has {copies} file copies and {} file entries\n{report}",
        summary.files,
        files.len()
    );
    let bytes: u64 = files
        .iter()
        .filter(|e| e.hardlink_to.is_none())
        .filter_map(|e| e.size)
        .sum();
    assert_eq!(
        summary.bytes, bytes,
        "summary bytes vs the sizes of the files in the manifest\n{report}"
    );
    let run_ms: u64 = manifest.runs.iter().map(|r| r.wall_ms).sum();
    assert!(
        summary.wall_ms + manifest.runs.len() as u64 >= run_ms,
        "summary wall_ms={} is less than the runs' total {run_ms}\n{report}",
        summary.wall_ms
    );
}

fn check_command(manifest: &Manifest, argv: &[&str], env: &[(&str, &str)], report: &str) {
    let recorded: Vec<&[u8]> = manifest
        .first_program()
        .command
        .argv
        .iter()
        .map(|a| a.as_bytes())
        .collect();
    let given: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
    assert_eq!(recorded, given, "manifest command.argv\n{report}");
    assert_eq!(
        manifest.first_program().command.executable.as_bytes(),
        argv[0].as_bytes(),
        "manifest command.executable\n{report}"
    );
    // The program gets a clean environment: of jailtrace's own variables
    // only the terminal, locale and time zone are passed (and recorded);
    // PATH is reset; nothing else of the caller's is recorded.
    let recorded = |item: &str| {
        manifest
            .first_program()
            .command
            .env
            .iter()
            .any(|e| e.as_bytes() == item.as_bytes())
    };
    assert!(
        recorded(&format!("PATH={}", util::PATH)),
        "manifest command.env lacks the default PATH\n{report}"
    );
    for (key, value) in env {
        let item = format!("{key}={value}");
        let passed = ["TERM", "LANG", "LANGUAGE", "TZ"].contains(key) || key.starts_with("LC_");
        if passed {
            assert!(
                recorded(&item),
                "manifest command.env lacks {item}\n{report}"
            );
        } else if *key != "PATH" {
            assert!(
                !recorded(&item),
                "manifest command.env records the caller's {item}\n{report}"
            );
        }
    }
}

fn check_runs(manifest: &Manifest, report: &str) {
    for (i, run) in manifest.runs.iter().enumerate() {
        assert_eq!(
            run.index as usize,
            i + 1,
            "runs must be numbered 1, 2, …\n{report}"
        );
        let placed = manifest
            .entries
            .iter()
            .filter(|e| e.reason.run == run.index)
            .count();
        assert_eq!(
            run.placed as usize, placed,
            "run {} says placed={} but {placed} entries name it\n{report}",
            run.index, run.placed
        );
    }
    let last = manifest.runs.last().expect("checked: at least one run");
    assert_eq!(
        last.status,
        RunStatus::Exited { code: 0 },
        "last run status\n{report}"
    );
    assert!(last.ready, "the last run must be ready\n{report}");
}

/// Causes whose entries are copies of the host object at the same path.
fn is_copy(cause: Cause) -> bool {
    matches!(
        cause,
        Cause::Executable
            | Cause::Accessed
            | Cause::SymlinkChain
            | Cause::Parent
            | Cause::Interpreter
            | Cause::Listed
            | Cause::Preseed
    )
}

fn kind_of(meta: &Metadata) -> Option<EntryKind> {
    let t = meta.file_type();
    if t.is_file() {
        Some(EntryKind::File)
    } else if t.is_dir() {
        Some(EntryKind::Dir)
    } else if t.is_symlink() {
        Some(EntryKind::Symlink)
    } else if t.is_char_device() || t.is_block_device() {
        Some(EntryKind::Device)
    } else {
        None
    }
}

fn check_entries(manifest: &Manifest, root: &Path, report: &str) {
    let runs = manifest.runs.len() as u32;
    let mut seen: HashMap<PathBuf, EntryKind> = HashMap::new();
    for entry in &manifest.entries {
        let path = entry.path.as_path().to_owned();
        let at = format!("entry {}", path.display());
        assert!(path.is_absolute(), "{at}: not absolute\n{report}");
        assert!(
            !path.starts_with("/proc") || path == Path::new("/proc"),
            "{at}: under /proc\n{report}"
        );
        assert!(
            !path.starts_with("/sys") || path == Path::new("/sys"),
            "{at}: under /sys\n{report}"
        );
        assert!(
            entry.reason.run <= runs,
            "{at}: reason.run beyond the last run\n{report}"
        );
        if let Some(parent) = path.parent().filter(|p| *p != Path::new("/")) {
            assert_eq!(
                seen.get(parent),
                Some(&EntryKind::Dir),
                "{at}: its parent must be an earlier dir entry\n{report}"
            );
        }
        if let Some(first) = &entry.hardlink_to {
            assert_eq!(
                seen.get(first.as_path()),
                Some(&EntryKind::File),
                "{at}: hardlink_to must name an earlier file entry\n{report}"
            );
        }
        assert!(
            seen.insert(path.clone(), entry.kind).is_none(),
            "{at}: listed twice\n{report}"
        );
        check_entry_on_disk(entry, root, &at, report);
    }
}

/// The entry exists in the root as recorded and, for copies, as on the host.
fn check_entry_on_disk(entry: &Entry, root: &Path, at: &str, report: &str) {
    let path = entry.path.as_path();
    let in_root = inside(root, path);
    let meta = match fs::symlink_metadata(&in_root) {
        Ok(meta) => meta,
        // What the program created it may remove again (a pid file at
        // exit, a lock renamed into place): a record of its behaviour.
        Err(_) if entry.reason.cause == Cause::Created => return,
        Err(e) => panic!("{at}: missing from the root ({e})\n{report}"),
    };
    assert_eq!(
        kind_of(&meta),
        Some(entry.kind),
        "{at}: kind in the root\n{report}"
    );
    if entry.kind != EntryKind::Symlink {
        assert_eq!(
            meta.mode() & 0o7777,
            entry.mode.bits(),
            "{at}: mode in the root\n{report}"
        );
    }
    assert_eq!(
        (meta.uid(), meta.gid()),
        (entry.uid, entry.gid),
        "{at}: owner in the root\n{report}"
    );

    match entry.kind {
        // A file the program created: its content is the program's, so the
        // manifest records neither size nor hash.
        EntryKind::File if entry.reason.cause == Cause::Created => {
            assert!(
                entry.size.is_none() && entry.sha256.is_none(),
                "{at}: a created file has no recorded content\n{report}"
            );
        }
        // A listed file the program only looked at: the host's size and
        // metadata, no content at all (not a byte of disk).
        EntryKind::File if entry.hollow => {
            let host = fs::metadata(path).unwrap_or_else(|e| panic!("{at}: not on the host: {e}"));
            assert_eq!(
                Some(meta.len()),
                entry.size,
                "{at}: size in the root\n{report}"
            );
            assert_eq!(
                host.len(),
                meta.len(),
                "{at}: size differs from the host's\n{report}"
            );
            assert!(
                entry.sha256.is_none(),
                "{at}: a hollow file has no recorded hash\n{report}"
            );
            assert_eq!(
                meta.blocks(),
                0,
                "{at}: a hollow file holds content\n{report}"
            );
        }
        EntryKind::File => {
            assert_eq!(
                Some(meta.len()),
                entry.size,
                "{at}: size in the root\n{report}"
            );
            let content = fs::read(&in_root).unwrap_or_else(|e| panic!("{at}: unreadable: {e}"));
            let digest = format!("{:x}", Sha256::digest(&content));
            assert_eq!(
                Some(&digest),
                entry.sha256.as_ref(),
                "{at}: sha256 of the root's file (did the program rewrite it during a run?)\n{report}"
            );
            if let Some(first) = &entry.hardlink_to {
                let first = fs::symlink_metadata(inside(root, first.as_path()))
                    .unwrap_or_else(|e| panic!("{at}: hardlink_to missing: {e}"));
                assert_eq!(
                    (first.dev(), first.ino()),
                    (meta.dev(), meta.ino()),
                    "{at}: not a hard link to hardlink_to\n{report}"
                );
            }
            if is_copy(entry.reason.cause) {
                let host =
                    fs::read(path).unwrap_or_else(|e| panic!("{at}: unreadable on the host: {e}"));
                assert!(
                    host == content,
                    "{at}: content differs from the host's ({} bytes in the root, {} on the host)\n{report}",
                    content.len(),
                    host.len()
                );
            }
        }
        EntryKind::Symlink => {
            let target = fs::read_link(&in_root).unwrap_or_else(|e| panic!("{at}: readlink: {e}"));
            assert_eq!(
                entry.target.as_ref().map(|t| t.as_path()),
                Some(target.as_path()),
                "{at}: link target in the root\n{report}"
            );
            if is_copy(entry.reason.cause) {
                let host = fs::read_link(path)
                    .unwrap_or_else(|e| panic!("{at}: readlink on the host: {e}"));
                assert_eq!(
                    target, host,
                    "{at}: link target differs from the host's\n{report}"
                );
            }
        }
        EntryKind::Device => {
            let rdev = entry
                .rdev
                .unwrap_or_else(|| panic!("{at}: a device entry without rdev\n{report}"));
            let dev = meta.rdev();
            assert_eq!(
                (nix::sys::stat::major(dev), nix::sys::stat::minor(dev)),
                (u64::from(rdev.major), u64::from(rdev.minor)),
                "{at}: device number in the root\n{report}"
            );
        }
        EntryKind::Dir => {}
    }

    if is_copy(entry.reason.cause) {
        let host = fs::symlink_metadata(path).unwrap_or_else(|e| {
            panic!("{at}: copied, but the host has no such path ({e})\n{report}")
        });
        assert_eq!(
            kind_of(&host),
            Some(entry.kind),
            "{at}: kind differs from the host's\n{report}"
        );
        let host_mode = host.mode() & 0o7777;
        let expected = if entry.setuid_stripped {
            host_mode & !0o6000
        } else {
            host_mode
        };
        if entry.kind != EntryKind::Symlink {
            assert_eq!(
                entry.mode.bits(),
                expected,
                "{at}: mode differs from the host's\n{report}"
            );
        }
        assert_eq!(
            (entry.uid, entry.gid),
            (host.uid(), host.gid()),
            "{at}: owner differs from the host's\n{report}"
        );
    }
}

/// The executable: its host symlink chain is in the manifest, the file it
/// leads to is a file entry, one of them has cause `executable` or
/// `accessed`, and the path resolves the same way inside the root.
fn check_executable(manifest: &Manifest, root: &Path, executable: &str, report: &str) {
    let host = resolve_in(Path::new("/"), Path::new(executable))
        .unwrap_or_else(|e| panic!("the executable does not resolve on the host: {e}"));
    let jailed = resolve_in(root, Path::new(executable))
        .unwrap_or_else(|e| panic!("the executable does not resolve in the root: {e}\n{report}"));
    assert_eq!(
        jailed, host,
        "{executable} resolves differently in the root\n{report}"
    );
    let file = manifest.entry(&host.target).unwrap_or_else(|| {
        panic!(
            "no entry for the executable {}\n{report}",
            host.target.display()
        )
    });
    assert_eq!(
        file.kind,
        EntryKind::File,
        "the executable's entry kind\n{report}"
    );
    for link in &host.links {
        let entry = manifest.entry(link).unwrap_or_else(|| {
            panic!(
                "no entry for the link {} on the way to {executable}\n{report}",
                link.display()
            )
        });
        assert_eq!(
            entry.kind,
            EntryKind::Symlink,
            "{}: kind\n{report}",
            link.display()
        );
    }
    let causes: Vec<Cause> = host
        .links
        .iter()
        .chain(std::iter::once(&host.target))
        .filter_map(|p| manifest.entry(p))
        .map(|e| e.reason.cause)
        .collect();
    assert!(
        causes.iter().any(|c| matches!(c, Cause::Executable | Cause::Accessed)),
        "no entry on the way to {executable} has cause executable or accessed: {causes:?}\n{report}"
    );
}

/// Every `absent` path is absent on the host too.
fn check_absent(manifest: &Manifest, report: &str) {
    for probe in &manifest.absent {
        let path = probe.path.as_path();
        assert!(
            fs::metadata(path).is_err(),
            "absent lists {}, which the host has\n{report}",
            path.display()
        );
    }
}

/// Nothing in the root that also exists on the host is missing from the
/// manifest (outside `/tmp`, where the program itself may create files).
fn check_nothing_unrecorded(manifest: &Manifest, root: &Path, report: &str) {
    let recorded: BTreeSet<&Path> = manifest.entries.iter().map(|e| e.path.as_path()).collect();
    let mut unrecorded = Vec::new();
    let mut stack = vec![PathBuf::from("/")];
    while let Some(dir) = stack.pop() {
        let Ok(read) = fs::read_dir(inside(root, &dir)) else {
            continue;
        };
        for item in read.filter_map(Result::ok) {
            let path = dir.join(item.file_name());
            if path.starts_with("/tmp") {
                continue;
            }
            let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
            if !recorded.contains(path.as_path()) && fs::symlink_metadata(&path).is_ok() {
                unrecorded.push(path.clone());
            }
            if is_dir {
                stack.push(path);
            }
        }
    }
    assert!(
        unrecorded.is_empty(),
        "the root holds host paths the manifest does not list: {unrecorded:?}\n{report}"
    );
}
