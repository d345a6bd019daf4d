//! `Manifest::write_atomic` on real directories: it replaces the target, a
//! failure leaves the old file and no temporary file behind, and a
//! concurrent reader never sees a partial manifest. `Saved` puts a file
//! back byte for byte.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use jailtrace_manifest::{
    Cause, Command, Entry, EntryKind, Error, Manifest, Mode, Reason, Saved, WriteStep,
    SCHEMA_VERSION,
};

/// A manifest with `count` file entries; `tag` makes two manifests differ.
fn manifest(tag: &str, count: usize) -> Manifest {
    let entries = (0..count)
        .map(|i| Entry {
            path: format!("/usr/lib/{tag}/lib{i}.so").into(),
            kind: EntryKind::File,
            mode: Mode::new(0o644).expect("0o644 is a valid mode"),
            uid: 0,
            gid: 0,
            size: Some(i as u64),
            sha256: Some(format!("{i:064x}")),
            target: None,
            rdev: None,
            hardlink_to: None,
            setuid_stripped: false,
            hollow: false,
            content: None,
            reason: Reason {
                syscall: Some("openat".into()),
                ..Reason::new(Cause::Accessed, 1)
            },
            also_needed_by: Vec::new(),
        })
        .collect();
    Manifest {
        schema_version: SCHEMA_VERSION,
        tool_version: format!("test-{tag}"),
        created_unix: 1_700_000_000,
        programs: vec![jailtrace_manifest::Program {
            name: "true".into(),
            command: Command {
                argv: vec!["/bin/true".into()],
                executable: "/bin/true".into(),
                cwd: "/".into(),
                env: vec![],
                env_redacted: None,
                user: None,
                group: None,
                supplementary_groups: Vec::new(),
                umask: None,
                ready: Vec::new(),
                exercises: Vec::new(),
                with: Vec::new(),
                before: Vec::new(),
            },
            unit: None,
        }],
        jail_file: None,
        root: "/tmp/jail".into(),
        runs: vec![],
        entries,
        absent: vec![],
        denied: vec![],
        mounts: vec![],
        sockets: vec![],
        rootless: None,
        accounts: Vec::new(),
    }
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn writes_a_new_file_and_replaces_an_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("date.jail.json");
    let old = manifest("old", 3);
    old.write_atomic(&target).unwrap();
    assert_eq!(fs::read_to_string(&target).unwrap(), old.to_json());
    let new = manifest("new", 5);
    new.write_atomic(&target).unwrap();
    assert_eq!(Manifest::read(&target).unwrap(), new);
    assert_eq!(
        names(dir.path()),
        ["date.jail.json"],
        "no temporary file is left"
    );
    // Readable by others (0644 less the umask; umasks remove at most group/other write).
    let mode = fs::metadata(&target).unwrap().mode() & 0o7777;
    assert_eq!(mode & 0o600, 0o600, "{mode:o}");
}

#[test]
fn saved_bytes_are_put_back_exactly_and_only_when_changed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("date.jail.json");
    // Bytes this crate would not write (spacing, a key it ignores): they
    // come back as they were, not re-serialised.
    let mut old = manifest("old", 2)
        .to_json()
        .replacen('{', "{\n  \"x-note\": 1,", 1);
    old.push_str("\n\n");
    fs::write(&target, &old).unwrap();
    let saved = Saved::read(&target).unwrap();
    assert!(saved.existed());
    // Unchanged: not even rewritten.
    let inode = fs::metadata(&target).unwrap().ino();
    assert!(!saved.restore().unwrap());
    assert_eq!(fs::metadata(&target).unwrap().ino(), inode);

    manifest("new", 3).write_atomic(&target).unwrap();
    assert!(saved.restore().unwrap());
    assert_eq!(fs::read_to_string(&target).unwrap(), old);
    assert_eq!(
        names(dir.path()),
        ["date.jail.json"],
        "no temporary file is left"
    );

    // Nothing saved: a manifest written since stays (restore never removes).
    let absent = dir.path().join("new.jail.json");
    let saved = Saved::read(&absent).unwrap();
    assert!(!saved.existed());
    manifest("new", 1).write_atomic(&absent).unwrap();
    assert!(!saved.restore().unwrap());
    assert!(absent.is_file());
}

#[test]
fn a_failed_rename_leaves_the_target_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    // A non-empty directory where the manifest should go: rename(2) must fail.
    let target = dir.path().join("manifest.json");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), "untouched").unwrap();
    let err = manifest("a", 2).write_atomic(&target).unwrap_err();
    let Error::Write { path, step, .. } = &err else {
        panic!("expected a write error, got {err:?}");
    };
    assert_eq!(
        (path.as_path(), *step),
        (target.as_path(), WriteStep::Rename)
    );
    assert_eq!(
        err.to_string(),
        format!(
            "cannot write manifest {}: could not rename the temporary file over it",
            target.display()
        )
    );
    assert_eq!(
        fs::read_to_string(target.join("keep")).unwrap(),
        "untouched"
    );
    assert_eq!(names(dir.path()), ["manifest.json"]);
}

#[test]
fn a_missing_directory_or_a_path_without_a_name_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("no-such-dir").join("m.json");
    let err = manifest("a", 1).write_atomic(&target).unwrap_err();
    assert!(
        matches!(&err, Error::Write { step: WriteStep::CreateTemporary, path, .. } if *path == target),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&*target.to_string_lossy()),
        "{err}"
    );
    assert!(!target.exists());

    let err = manifest("a", 1).write_atomic(Path::new("/")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Write {
                step: WriteStep::NameTarget,
                ..
            }
        ),
        "{err:?}"
    );
}

/// Environment variable that hands the child test its target.
const CHILD_TARGET: &str = "JAILTRACE_MANIFEST_TEST_READONLY_TARGET";

/// Writes over `target` in a directory this process cannot write to, and checks the error.
fn write_into_unwritable_dir(target: &Path) {
    let err = manifest("new", 2).write_atomic(target).unwrap_err();
    assert!(
        matches!(&err, Error::Write { step: WriteStep::CreateTemporary, path, .. } if path == target),
        "{err:?}"
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("Permission denied"), "{source}");
}

/// Run by `read_only_directory_is_refused_and_the_old_file_kept` as an
/// unprivileged child when the tests run as root (root ignores directory modes).
#[test]
#[ignore = "child half of read_only_directory_is_refused_and_the_old_file_kept"]
fn child_writes_into_read_only_directory() {
    if let Some(target) = std::env::var_os(CHILD_TARGET) {
        write_into_unwritable_dir(Path::new(&target));
    }
}

#[test]
fn read_only_directory_is_refused_and_the_old_file_kept() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("ro");
    fs::create_dir(&dir).unwrap();
    let target = dir.join("manifest.json");
    let old = manifest("old", 2);
    old.write_atomic(&target).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();

    let is_root = fs::metadata(&target).unwrap().uid() == 0;
    if is_root {
        // The child runs as nobody and must reach the target through the temp dir.
        fs::set_permissions(outer.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let output = Process::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_writes_into_read_only_directory"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_TARGET, &target)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("start this test binary as uid 65534");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("1 passed"),
            "the child test did not run:\n{stdout}"
        );
    } else {
        write_into_unwritable_dir(&target);
    }

    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(fs::read_to_string(&target).unwrap(), old.to_json());
    assert_eq!(names(&dir), ["manifest.json"], "no temporary file is left");
}

#[test]
fn a_concurrent_reader_never_sees_a_partial_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let target: PathBuf = dir.path().join("manifest.json");
    // Large enough (about 700 KB) that a non-atomic write would be seen half done.
    let versions = [manifest("a", 2500), manifest("b", 2500)];
    let texts: Vec<Vec<u8>> = versions.iter().map(|m| m.to_json().into_bytes()).collect();
    versions[0].write_atomic(&target).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, target, texts) = (Arc::clone(&stop), target.clone(), texts.clone());
        thread::spawn(move || {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let seen = fs::read(&target).expect("the target always exists");
                assert!(
                    texts.contains(&seen),
                    "read {} bytes that are neither manifest",
                    seen.len()
                );
                reads += 1;
            }
            reads
        })
    };
    for round in 0..60 {
        versions[round % 2].write_atomic(&target).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader saw only whole manifests");
    assert!(reads > 0);
    assert_eq!(names(dir.path()), ["manifest.json"]);
}
