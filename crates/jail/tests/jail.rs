//! build, verify and update over a fake host tree (`Host::at`), so every
//! case is exact: each kind of entry, a host file that changed, a root that
//! was tampered with, an upgrade that retargets a symlink, and (as root,
//! on a loop-mounted XFS) reflinks.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use jailtrace_jail::{
    build, update, verify, Differences, Error, Field, Host, Options, Problem, Values,
};
use jailtrace_manifest::{
    Cause, Command as Cmd, Entry, EntryKind, Manifest, Mode, PathText, Reason, SCHEMA_VERSION,
};
use sha2::{Digest, Sha256};

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    host: PathBuf,
    root: PathBuf,
    manifest: Manifest,
}

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\n";

fn entry(path: &str, kind: EntryKind, mode: u32, cause: Cause) -> Entry {
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    Entry::new(
        path.into(),
        kind,
        Mode::new(mode).unwrap(),
        uid,
        gid,
        Reason::new(cause, 1),
    )
}

fn file(host: &Path, path: &str, mode: u32, cause: Cause) -> Entry {
    let bytes = fs::read(host.join(&path[1..])).unwrap();
    let mut e = entry(path, EntryKind::File, mode, cause);
    e.size = Some(bytes.len() as u64);
    e.sha256 = Some(sha(&bytes));
    e
}

/// A fake host under `base` and the manifest of a jail of it.
fn fixture_in(base: &Path) -> Fixture {
    let dir = tempfile::tempdir_in(base).unwrap();
    let host = dir.path().join("host");
    let root = dir.path().join("root");
    fs::create_dir_all(host.join("usr/lib")).unwrap();
    fs::create_dir_all(host.join("usr/bin")).unwrap();
    fs::create_dir_all(host.join("etc")).unwrap();
    fs::create_dir_all(host.join("opt/v1")).unwrap();
    fs::create_dir_all(host.join("opt/v2")).unwrap();
    fs::create_dir_all(host.join("var/log")).unwrap();
    fs::set_permissions(host.join("var/log"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::create_dir_all(&root).unwrap();
    fs::write(host.join("usr/lib/libx.so.1"), b"library, version 1").unwrap();
    symlink("usr/lib", host.join("lib")).unwrap();
    fs::write(host.join("usr/bin/tool"), b"#!tool").unwrap();
    fs::set_permissions(host.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::hard_link(host.join("usr/bin/tool"), host.join("usr/bin/tool2")).unwrap();
    fs::write(host.join("opt/v1/data"), b"one").unwrap();
    fs::write(host.join("opt/v2/data"), b"two").unwrap();
    symlink("v1", host.join("opt/current")).unwrap();
    fs::write(
        host.join("etc/passwd"),
        b"the host's passwd, not the jail's",
    )
    .unwrap();

    let mut passwd = entry("/etc/passwd", EntryKind::File, 0o644, Cause::Synthesized);
    passwd.size = Some(PASSWD.len() as u64);
    passwd.sha256 = Some(sha(PASSWD.as_bytes()));
    passwd.content = Some(PASSWD.into());
    let mut lib = entry("/lib", EntryKind::Symlink, 0o777, Cause::SymlinkChain);
    lib.target = Some("usr/lib".into());
    let mut current = entry(
        "/opt/current",
        EntryKind::Symlink,
        0o777,
        Cause::SymlinkChain,
    );
    current.target = Some("v1".into());
    let mut data = file(&host, "/opt/v1/data", 0o644, Cause::Accessed);
    data.reason.requested = Some("/opt/current/data".into());
    let mut tool2 = file(&host, "/usr/bin/tool2", 0o755, Cause::Accessed);
    tool2.hardlink_to = Some("/usr/bin/tool".into());
    let mut log = entry("/var/log/app.log", EntryKind::File, 0o640, Cause::Created);
    log.size = Some(0);
    let entries = vec![
        entry("/usr", EntryKind::Dir, 0o755, Cause::Parent),
        entry("/usr/lib", EntryKind::Dir, 0o755, Cause::Parent),
        lib,
        file(&host, "/usr/lib/libx.so.1", 0o644, Cause::Preseed),
        entry("/usr/bin", EntryKind::Dir, 0o755, Cause::Parent),
        file(&host, "/usr/bin/tool", 0o755, Cause::Executable),
        tool2,
        entry("/opt", EntryKind::Dir, 0o755, Cause::Parent),
        current,
        entry("/opt/v1", EntryKind::Dir, 0o755, Cause::Parent),
        data,
        entry("/etc", EntryKind::Dir, 0o755, Cause::Parent),
        passwd,
        entry("/var", EntryKind::Dir, 0o755, Cause::Parent),
        entry("/var/log", EntryKind::Dir, 0o1777, Cause::Parent),
        log,
    ];
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        tool_version: "test".into(),
        created_unix: 0,
        programs: vec![jailtrace_manifest::Program {
            name: "tool".into(),
            command: Cmd {
                argv: vec!["/usr/bin/tool".into()],
                executable: "/usr/bin/tool".into(),
                cwd: "/".into(),
                env: Vec::new(),
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
        root: PathText::from(root.as_path()),
        runs: Vec::new(),
        entries,
        absent: Vec::new(),
        denied: Vec::new(),
        mounts: Vec::new(),
        sockets: Vec::new(),
        rootless: None,
        accounts: Vec::new(),
    };
    Fixture {
        _dir: dir,
        host,
        root,
        manifest,
    }
}

fn fixture() -> Fixture {
    fixture_in(&std::env::temp_dir())
}

fn opts() -> Options {
    Options {
        jobs: 3,
        ..Default::default()
    }
}

#[test]
fn build_places_every_kind_and_a_second_build_changes_nothing() {
    let f = fixture();
    let host = Host::at(&f.host);
    let r = build(&f.manifest, &f.root, &host, &opts()).unwrap();
    assert_eq!(r.copied, 3, "{r:?}");
    assert_eq!(r.linked_in_jail, 1);
    assert_eq!(r.written, 1);
    assert_eq!(r.skipped_created, 1);
    assert!(r.mismatches.is_empty());
    assert_eq!(
        fs::read_link(f.root.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    assert_eq!(
        fs::read(f.root.join("lib/libx.so.1")).unwrap(),
        b"library, version 1"
    );
    assert_eq!(
        fs::read_to_string(f.root.join("etc/passwd")).unwrap(),
        PASSWD
    );
    let tool = fs::metadata(f.root.join("usr/bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o755);
    assert_eq!(
        tool.ino(),
        fs::metadata(f.root.join("usr/bin/tool2")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(f.root.join("var/log")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert!(
        !f.root.join("var/log/app.log").exists(),
        "a created file is the program's to make"
    );

    let v = verify(&f.manifest, &f.root, &host, 2).unwrap();
    assert!(v.is_clean(), "{v:#?}");
    let again = build(&f.manifest, &f.root, &host, &opts()).unwrap();
    assert_eq!(again.unchanged, f.manifest.entries.len() - 1, "{again:?}");
    assert_eq!(
        again.copied + again.made + again.written + again.linked_in_jail,
        0
    );
}

#[test]
fn a_host_file_that_differs_is_reported_and_strict_writes_nothing() {
    let f = fixture();
    fs::write(f.host.join("usr/lib/libx.so.1"), b"library, version 2").unwrap();
    let host = Host::at(&f.host);
    let strict = Options {
        strict: true,
        ..opts()
    };
    match build(&f.manifest, &f.root, &host, &strict) {
        Err(Error::Strict(m)) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].path.as_path(), Path::new("/usr/lib/libx.so.1"));
            assert_eq!(m[0].host, sha(b"library, version 2"));
        }
        other => panic!("expected a strict refusal, got {other:?}"),
    }
    assert_eq!(
        fs::read_dir(&f.root).unwrap().count(),
        0,
        "strict wrote into the root"
    );
    let lax = build(&f.manifest, &f.root, &host, &opts()).unwrap();
    assert_eq!(lax.mismatches.len(), 1);
    // The jail gets the host's file, and verify says the host changed.
    let v = verify(&f.manifest, &f.root, &host, 1).unwrap();
    let problems: Vec<_> = v
        .findings
        .iter()
        .map(|x| (x.path.to_string(), x.problem.clone()))
        .collect();
    assert!(
        problems.contains(&(
            "/usr/lib/libx.so.1".into(),
            Problem::ChangedOnHost(Differences {
                fields: vec![Field::Content],
                expected: Values {
                    size: Some(18),
                    sha256: Some(sha(b"library, version 1")),
                    ..Values::default()
                },
                found: Values {
                    size: Some(18),
                    sha256: Some(sha(b"library, version 2")),
                    ..Values::default()
                },
            })
        )),
        "{problems:#?}"
    );
}

#[test]
fn verify_reports_missing_changed_and_extra_entries() {
    let f = fixture();
    let host = Host::at(&f.host);
    build(&f.manifest, &f.root, &host, &opts()).unwrap();
    fs::remove_file(f.root.join("opt/v1/data")).unwrap();
    fs::set_permissions(
        f.root.join("usr/bin/tool"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    fs::remove_file(f.root.join("lib")).unwrap();
    symlink("/elsewhere", f.root.join("lib")).unwrap();
    fs::write(f.root.join("etc/shadow"), b"planted").unwrap();
    fs::write(f.root.join("var/log/app.log"), b"the program's log").unwrap();
    fs::write(f.root.join("var/log/other.log"), b"runtime").unwrap();
    let v = verify(&f.manifest, &f.root, &host, 2).unwrap();
    let got: Vec<_> = v
        .findings
        .iter()
        .map(|x| (x.path.to_string(), x.problem.clone()))
        .collect();
    let mode = |bits| Values {
        mode: Some(Mode::new(bits).unwrap()),
        ..Values::default()
    };
    let mode_changed = Problem::ChangedInRoot(Differences {
        fields: vec![Field::Mode],
        expected: mode(0o755),
        found: mode(0o700),
    });
    let want = vec![
        (
            "/lib".to_string(),
            Problem::ChangedInRoot(Differences {
                fields: vec![Field::Target],
                expected: Values {
                    target: Some("usr/lib".into()),
                    ..Values::default()
                },
                found: Values {
                    target: Some("/elsewhere".into()),
                    ..Values::default()
                },
            }),
        ),
        ("/usr/bin/tool".into(), mode_changed.clone()),
        // One inode: its hard link changed with it.
        ("/usr/bin/tool2".into(), mode_changed),
        ("/opt/v1/data".into(), Problem::Missing),
        (
            "/etc/shadow".into(),
            Problem::Extra {
                kind: "file".into(),
            },
        ),
    ];
    assert_eq!(got, want);
    assert_eq!(v.runtime_files, 1, "other.log is the program's");
}

#[test]
fn update_records_the_hosts_new_files_and_follows_a_retargeted_link() {
    let f = fixture();
    let host = Host::at(&f.host);
    build(&f.manifest, &f.root, &host, &opts()).unwrap();
    fs::write(
        f.host.join("usr/lib/libx.so.1"),
        b"library, version 2 (security fix)",
    )
    .unwrap();
    fs::remove_file(f.host.join("opt/current")).unwrap();
    symlink("v2", f.host.join("opt/current")).unwrap();
    let mut m = f.manifest.clone();
    let r = update(&mut m, &f.root, &host, &opts()).unwrap();
    let changed: Vec<_> = r
        .changed
        .iter()
        .map(|c| (c.path.to_string(), c.fields.clone()))
        .collect();
    assert_eq!(
        changed,
        vec![
            ("/usr/lib/libx.so.1".into(), vec![Field::Content]),
            ("/opt/current".into(), vec![Field::Target]),
        ]
    );
    let added: Vec<_> = r.added.iter().map(|p| p.to_string()).collect();
    assert_eq!(added, ["/opt/v2", "/opt/v2/data"]);
    assert_eq!(
        fs::read(f.root.join("lib/libx.so.1")).unwrap(),
        b"library, version 2 (security fix)"
    );
    assert_eq!(fs::read(f.root.join("opt/current/data")).unwrap(), b"two");
    let lib = m.entry(Path::new("/usr/lib/libx.so.1")).unwrap();
    assert_eq!(
        lib.sha256.as_deref(),
        Some(sha(b"library, version 2 (security fix)").as_str())
    );
    assert!(verify(&m, &f.root, &host, 2).unwrap().is_clean());
    let mut again = m.clone();
    let r = update(&mut again, &f.root, &host, &opts()).unwrap();
    assert!(!r.manifest_changed());
    assert_eq!(again, m);
}

/// Hard links need the same file system, reflinks one that clones (XFS);
/// a loop-mounted XFS gives both. Needs root and mkfs.xfs.
#[test]
fn link_hard_links_same_attrs_and_reflinks_the_rest_on_xfs() {
    let skip = |why: &str| {
        if std::env::var_os("JAILTRACE_TESTS_MUST_RUN").is_some_and(|v| v == "1") {
            panic!("link_hard_links_same_attrs_and_reflinks_the_rest_on_xfs must run: {why}");
        }
        eprintln!("SKIPPED link_hard_links_same_attrs_and_reflinks_the_rest_on_xfs: {why}");
    };
    if !nix::unistd::getuid().is_root() {
        return skip("needs root to mount a loop file system");
    }
    let Ok(work) = tempfile::tempdir() else {
        return skip("no temporary directory");
    };
    let image = work.path().join("xfs.img");
    let mnt = work.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    fs::File::create(&image)
        .unwrap()
        .set_len(320 << 20)
        .unwrap();
    let ok = |cmd: &mut Command| cmd.status().is_ok_and(|s| s.success());
    if !ok(Command::new("mkfs.xfs").arg("-q").arg(&image)) {
        return skip("mkfs.xfs is missing or failed (apt-get install xfsprogs)");
    }
    if !ok(Command::new("mount")
        .args(["-o", "loop"])
        .arg(&image)
        .arg(&mnt))
    {
        return skip("cannot loop-mount");
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let mut f = fixture_in(&mnt);
    // libx is setuid on the host and stripped in the jail: the host's
    // inode cannot be shared (its mode is not the jail's), so it is cloned.
    let lib = f.host.join("usr/lib/libx.so.1");
    fs::set_permissions(&lib, fs::Permissions::from_mode(0o4755)).unwrap();
    for e in &mut f.manifest.entries {
        if e.path.as_path() == Path::new("/usr/lib/libx.so.1") {
            e.mode = Mode::new(0o755).unwrap();
            e.setuid_stripped = true;
        }
    }
    let link = Options {
        link: true,
        ..opts()
    };
    let r = build(&f.manifest, &f.root, &Host::at(&f.host), &link).unwrap();
    assert_eq!((r.hardlinked, r.reflinked, r.copied), (2, 1, 0), "{r:?}");
    let host_lib = fs::metadata(f.host.join("usr/lib/libx.so.1")).unwrap();
    let jail_lib = fs::metadata(f.root.join("usr/lib/libx.so.1")).unwrap();
    assert_ne!(host_lib.ino(), jail_lib.ino());
    assert_eq!(jail_lib.mode() & 0o7777, 0o755);
    assert_eq!(
        host_lib.mode() & 0o7777,
        0o4755,
        "the host's file kept its mode"
    );
    assert_eq!(
        fs::read(f.root.join("usr/lib/libx.so.1")).unwrap(),
        b"library, version 1"
    );
    assert_eq!(
        fs::metadata(f.host.join("opt/v1/data")).unwrap().ino(),
        fs::metadata(f.root.join("opt/v1/data")).unwrap().ino()
    );
    assert!(verify(&f.manifest, &f.root, &Host::at(&f.host), 1)
        .unwrap()
        .is_clean());
}

#[test]
fn the_programs_data_sockets_and_fifos_are_its_runtime_state() {
    let mut f = fixture();
    fs::create_dir_all(f.host.join("var/lib/app")).unwrap();
    fs::write(f.host.join("var/lib/app/db"), b"the seed").unwrap();
    let db = file(&f.host, "/var/lib/app/db", 0o644, Cause::Accessed);
    f.manifest.entries.extend([
        entry("/var/lib", EntryKind::Dir, 0o755, Cause::Parent),
        entry("/var/lib/app", EntryKind::Dir, 0o755, Cause::Parent),
        db,
        // The program makes a file beside db: /var/lib/app is its data
        // directory.
        entry("/var/lib/app/pid", EntryKind::File, 0o644, Cause::Created),
    ]);
    let host = Host::at(&f.host);
    build(&f.manifest, &f.root, &host, &opts()).unwrap();
    let root_db = f.root.join("var/lib/app/db");
    assert_eq!(fs::read(&root_db).unwrap(), b"the seed");
    // The program runs: it writes its data, binds a socket, makes a fifo.
    fs::write(&root_db, b"what the program wrote").unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(f.root.join("opt/app.sock")).unwrap();
    nix::unistd::mkfifo(
        &f.root.join("usr/app.fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    // And the host's own copy of the database moves on.
    fs::write(f.host.join("var/lib/app/db"), b"the host's, later").unwrap();

    let v = verify(&f.manifest, &f.root, &host, 2).unwrap();
    assert!(v.is_clean(), "{v:#?}");
    assert_eq!((v.data_files, v.runtime_files), (1, 2), "{v:#?}");

    // Neither a build nor an update overwrites what the program wrote.
    build(&f.manifest, &f.root, &host, &opts()).unwrap();
    assert_eq!(fs::read(&root_db).unwrap(), b"what the program wrote");
    let u = update(&mut f.manifest, &f.root, &host, &opts()).unwrap();
    assert!(!u.manifest_changed(), "{u:#?}");
    assert_eq!(fs::read(&root_db).unwrap(), b"what the program wrote");

    // Its mode is still the jail's.
    fs::set_permissions(&root_db, fs::Permissions::from_mode(0o666)).unwrap();
    let v = verify(&f.manifest, &f.root, &host, 2).unwrap();
    assert_eq!(v.findings.len(), 1, "{v:#?}");
    assert!(
        matches!(&v.findings[0].problem, Problem::ChangedInRoot(d) if d.fields == [Field::Mode]),
        "{v:#?}"
    );
}

#[test]
fn update_marks_a_changed_file_that_is_no_elf_object_as_configuration() {
    let mut f = fixture();
    let host = Host::at(&f.host);
    build(&f.manifest, &f.root, &host, &opts()).unwrap();
    fs::write(f.host.join("usr/lib/libx.so.1"), b"\x7fELF, version 2").unwrap();
    fs::write(f.host.join("opt/v1/data"), b"include /opt/v1/more").unwrap();
    let r = update(&mut f.manifest, &f.root, &host, &opts()).unwrap();
    let marked: Vec<_> = r
        .changed
        .iter()
        .map(|c| (c.path.to_string(), c.configuration))
        .collect();
    assert_eq!(
        marked,
        [
            ("/usr/lib/libx.so.1".to_string(), false),
            ("/opt/v1/data".to_string(), true)
        ]
    );
    let configuration: Vec<_> = r.configuration().map(ToString::to_string).collect();
    assert_eq!(configuration, ["/opt/v1/data"]);
}
