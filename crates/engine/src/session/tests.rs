//! Tests of [`super`].

use super::*;
use jailtrace_manifest::{SocketFamily, SocketOp};
use std::ffi::OsStr;
use std::os::unix::fs::symlink;

struct Fixture {
    _dir: tempfile::TempDir,
    session: Session,
    root: PathBuf,
}

/// A fake host with merged-/usr links, a library behind a symlink, a
/// secret, and an empty root.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    let root = dir.path().join("root");
    std::fs::create_dir_all(host.join("usr/lib/x")).unwrap();
    std::fs::create_dir_all(host.join("etc/ssl/private")).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    symlink("usr/lib", host.join("lib")).unwrap();
    std::fs::write(host.join("usr/lib/x/libc.so.6"), b"libc").unwrap();
    symlink("libc.so.6", host.join("usr/lib/x/libc.so")).unwrap();
    std::fs::write(host.join("etc/ssl/private/key.pem"), b"secret").unwrap();
    std::fs::write(host.join("etc/shadow"), b"root:$6$hash").unwrap();
    let session = Session::fake(&host, &root);
    Fixture {
        _dir: dir,
        session,
        root,
    }
}

/// `path` as a program's call at run entry asks for it (`creates`: it
/// makes the file itself).
fn place(s: &mut Session, path: &str, creates: bool) -> Placement {
    s.place(
        Path::new(path),
        Follow::Yes,
        creates,
        Cause::Accessed,
        &who(),
        &mut Quiet,
    )
    .unwrap()
}

fn ask(s: &mut Session, path: &str) -> Placement {
    place(s, path, false)
}

fn ask_to_create(s: &mut Session, path: &str) -> Placement {
    place(s, path, true)
}

fn who() -> Who {
    Who {
        pid: Some(42),
        exe: Some("/bin/prog".into()),
        syscall: Some("openat"),
        exercise: None,
    }
}

#[test]
fn places_the_symlink_chain_with_reasons() {
    let mut f = fixture();
    let placed = ask(&mut f.session, "/lib/x/libc.so");
    assert_eq!(placed, Placement::Placed);
    assert_eq!(
        std::fs::read_link(f.root.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    assert_eq!(
        std::fs::read_link(f.root.join("usr/lib/x/libc.so")).unwrap(),
        Path::new("libc.so.6")
    );
    assert_eq!(
        std::fs::read(f.root.join("usr/lib/x/libc.so.6")).unwrap(),
        b"libc"
    );
    let causes: Vec<_> = f
        .session
        .entries
        .iter()
        .map(|e| (e.path.to_string(), e.reason.cause))
        .collect();
    assert!(
        causes.contains(&("/lib".into(), Cause::SymlinkChain)),
        "{causes:?}"
    );
    assert!(
        causes.contains(&("/usr/lib/x/libc.so.6".into(), Cause::Accessed)),
        "{causes:?}"
    );
    let file = f
        .session
        .entries
        .iter()
        .find(|e| e.path.as_path() == Path::new("/usr/lib/x/libc.so.6"))
        .unwrap();
    assert_eq!(
        file.reason
            .requested
            .as_ref()
            .map(|p| p.as_path().to_path_buf()),
        Some("/lib/x/libc.so".into())
    );
    assert_eq!(file.reason.pid, Some(42));
    assert_eq!(file.size, Some(4));
    // A second request changes nothing.
    let again = ask(&mut f.session, "/usr/lib/x/libc.so.6");
    assert_eq!(again, Placement::Present);
}

#[test]
fn secrets_absent_paths_and_virtual_fs_are_recorded_not_copied() {
    let mut f = fixture();
    assert_eq!(ask(&mut f.session, "/etc/shadow"), Placement::Denied);
    assert_eq!(
        ask(&mut f.session, "/etc/ssl/private/key.pem"),
        Placement::Denied
    );
    assert!(!f.root.join("etc/shadow").exists());
    assert!(!f.root.join("etc/ssl/private").exists());
    assert_eq!(f.session.denied.len(), 2);
    assert_eq!(
        f.session.denied[0].rule.as_deref(),
        Some(r"^/etc/shadow-?$")
    );
    assert_eq!(
        ask(&mut f.session, "/usr/lib/missing.so"),
        Placement::Absent
    );
    assert!(
        !f.root.join("usr").exists(),
        "nothing is prepared for an absent path"
    );
    assert_eq!(f.session.absent.len(), 1);
    assert_eq!(ask(&mut f.session, "/proc/self/maps"), Placement::Virtual);
    assert_eq!(f.session.mounts.len(), 1);
    assert_eq!(f.session.mounts[0].fstype, "proc");
}

#[test]
fn a_verifying_run_records_misses_and_writes_nothing() {
    let mut f = fixture();
    f.session.begin_run(2, false);
    let placed = ask(&mut f.session, "/lib/x/libc.so");
    assert_eq!(placed, Placement::Placed);
    assert_eq!(f.session.misses.len(), 1);
    assert_eq!(f.session.misses[0].path, Path::new("/lib/x/libc.so"));
    assert_eq!(std::fs::read_dir(&f.root).unwrap().count(), 0);
}

#[test]
fn the_state_digest_changes_with_the_root_and_the_kind_of_run_only() {
    let mut f = fixture();
    let empty = f.session.state_digest(false);
    assert_eq!(empty, f.session.state_digest(false), "stable");
    assert_ne!(empty, f.session.state_digest(true), "copying or not");
    f.session.begin_run(1, true);
    ask(&mut f.session, "/lib/x/libc.so");
    let placed = f.session.state_digest(false);
    assert_ne!(empty, placed, "an entry placed");
    // A run that records nothing new leaves it as it was.
    f.session.begin_run(2, false);
    ask(&mut f.session, "/usr/lib/missing.so");
    assert_eq!(placed, f.session.state_digest(false));
}

#[test]
fn creating_a_file_places_only_its_parent() {
    let mut f = fixture();
    std::fs::write(f._dir.path().join("host/usr/lib/x/app.log"), b"host log").unwrap();
    let placed = ask_to_create(&mut f.session, "/usr/lib/x/app.log");
    assert_eq!(placed, Placement::Placed);
    assert!(f.root.join("usr/lib/x").is_dir());
    assert!(
        !f.root.join("usr/lib/x/app.log").exists(),
        "the host's log must not leak into the jail"
    );
}

/// The records of `names` as the kernel returns them.
fn records(names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in names {
        assert!(crate::dirents::push(
            &mut out,
            usize::MAX,
            1,
            rootfs::Kind::Dir,
            OsStr::new(name)
        ));
    }
    out
}

/// The names of `shows`' records, after the kernel's.
fn shown(shows: &crate::listing::Shows, kernel: &[u8]) -> Vec<String> {
    let crate::listing::Shows::Names { at, records } = shows else {
        panic!("no names: {shows:?}");
    };
    assert_eq!(*at, kernel.len(), "the names follow the kernel's records");
    crate::dirents::names(records)
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_listing_s_names_follow_the_kernel_s_last_records_when_they_fit() {
    use crate::listing::Shows;
    let mut f = fixture();
    // As on ext4 or tmpfs, whichever the test's temporary directory is on.
    f.session.placeholders.root_fills = true;
    f.session.begin_run(1, true);
    let host = f._dir.path().join("host/usr/lib/x");
    for n in ["a", "b", "c"] {
        std::fs::write(host.join(n), n).unwrap();
    }
    ask(&mut f.session, "/usr/lib/x/libc.so.6");
    let dir = Path::new("/usr/lib/x");
    f.session.list(dir, who, false, &mut Quiet).unwrap();
    assert!(f.session.shows(7, 3, dir));
    let kernel = records(&[".", "..", "libc.so.6"]);

    // Room for any record after the kernel's: its pass is over, the names
    // come in the same call, and the next call ends the listing.
    let shows = f.session.listed_result(7, 3, &kernel, 4096);
    let mut names = shown(&shows, &kernel);
    names.sort();
    assert_eq!(names, ["a", "b", "c", "libc.so"]);
    assert_eq!(f.session.listed_result(7, 3, &[], 4096), Shows::Kernel);

    // A rewind: the kernel's records again, this time filling the buffer
    // (the pass may go on), so the names wait for its end.
    let tight = kernel.len() + crate::dirents::ROOM_FOR_ANY - 8;
    assert_eq!(f.session.listed_result(7, 3, &kernel, tight), Shows::Kernel);
    let shows = f.session.listed_result(7, 3, &[], tight);
    let crate::listing::Shows::Names { at: 0, records } = shows else {
        panic!("{shows:?}");
    };
    assert_eq!(crate::dirents::names(&records).count(), 4);
    assert_eq!(f.session.listed_result(7, 3, &[], tight), Shows::Kernel);

    // A file system that may return part of a directory with room left
    // (NFS, FUSE): the names wait for the kernel's empty result.
    f.session.placeholders.root_fills = false;
    assert_eq!(f.session.listed_result(7, 3, &kernel, 4096), Shows::Kernel);
    let shows = f.session.listed_result(7, 3, &[], 4096);
    assert!(matches!(shows, Shows::Names { at: 0, .. }), "{shows:?}");
}

/// A listed name in a directory the root has is made alone (the lookup
/// of its parent tells that everything above it is the root's); a listed
/// symlink is made and followed, its target's listed directory made too;
/// a path with nothing listed on the way makes nothing.
#[test]
fn a_listed_name_is_made_alone_and_a_listed_symlink_is_followed() {
    let mut f = fixture();
    let host = f._dir.path().join("host/usr/lib/x");
    std::fs::create_dir(host.join("sub")).unwrap();
    std::fs::create_dir(host.join("other")).unwrap();
    std::fs::write(host.join("sub/f"), b"f").unwrap();
    symlink("sub/f", host.join("link")).unwrap();
    symlink("other", host.join("link2")).unwrap();
    f.session.begin_run(1, true);
    ask(&mut f.session, "/usr/lib/x/libc.so.6");
    let dir = Path::new("/usr/lib/x");
    f.session.list(dir, who, false, &mut Quiet).unwrap();
    let in_root = |f: &Fixture, p: &str| {
        std::fs::symlink_metadata(f.root.join(p.trim_start_matches('/')))
            .ok()
            .map(|m| m.file_type())
    };

    let materialize = |f: &mut Fixture, p: &str| {
        f.session
            .materialize(Path::new(p), Follow::Yes)
            .unwrap()
            .made
    };
    assert!(!materialize(&mut f, "/usr/lib/x/missing"));
    assert!(materialize(&mut f, "/usr/lib/x/libc.so"));
    assert!(in_root(&f, "/usr/lib/x/libc.so").is_some_and(|t| t.is_symlink()));
    assert!(materialize(&mut f, "/usr/lib/x/link"));
    assert!(in_root(&f, "/usr/lib/x/link").is_some_and(|t| t.is_symlink()));
    // Followed: the link's target is in a listed directory, made for it;
    // `f` itself was not listed (nothing listed `sub`).
    assert!(in_root(&f, "/usr/lib/x/sub").is_some_and(|t| t.is_dir()));
    assert!(in_root(&f, "/usr/lib/x/sub/f").is_none());
    assert!(in_root(&f, "/usr/lib/x/other").is_none());
    // Made once: asked again, nothing more to make.
    assert!(!materialize(&mut f, "/usr/lib/x/link"));
    // Named directly (after an lstat found nothing): the placeholder comes
    // with what a lookup in the root finds; through a symlink, without.
    let other = Path::new("/usr/lib/x/other");
    let made = f.session.materialize(other, Follow::No).unwrap();
    assert!(made.made);
    assert_eq!(
        made.meta,
        Some(f.session.root.lstat(other).unwrap().unwrap())
    );
    let made = f
        .session
        .materialize(Path::new("/usr/lib/x/link2"), Follow::No);
    assert!(made.as_ref().is_ok_and(|m| m.made && m.meta.is_none()));
    assert!(in_root(&f, "/usr/lib/x/link2").is_some_and(|t| t.is_symlink()));
}

#[test]
fn a_directory_recorded_after_what_it_holds_comes_first_and_all_are_found() {
    let mut f = fixture();
    let entry = |path: &str, kind| {
        Entry::new(
            path.into(),
            kind,
            jailtrace_manifest::Mode::new(0o755).unwrap(),
            0,
            0,
            Reason::new(Cause::Listed, 1),
        )
    };
    for p in ["/a/b/one", "/c", "/a/b/two"] {
        f.session.record(entry(p, EntryKind::File), &mut Quiet);
    }
    // A placeholder directory kept at prune, after the files in it.
    f.session.record(entry("/a/b", EntryKind::Dir), &mut Quiet);
    f.session.record(entry("/a", EntryKind::Dir), &mut Quiet);
    f.session.record(entry("/d", EntryKind::File), &mut Quiet);
    let order: Vec<String> = f
        .session
        .entries
        .iter()
        .map(|e| e.path.to_string())
        .collect();
    assert_eq!(order, ["/a", "/a/b", "/a/b/one", "/c", "/a/b/two", "/d"]);
    for p in &order {
        assert_eq!(
            f.session.entry(Path::new(p)).map(|e| e.path.to_string()),
            Some(p.clone()),
            "{p}"
        );
    }
}

#[test]
fn the_listening_ports_are_one_per_port_on_the_loopback_and_never_port_0() {
    let mut f = fixture();
    for address in ["0.0.0.0:80", "[::]:80", "127.0.0.1:0", "[::1]:8080"] {
        f.session
            .record_socket(SocketFamily::Inet, SocketOp::Listen, address.into(), &who());
    }
    f.session.record_socket(
        SocketFamily::Unix,
        SocketOp::Listen,
        "/run/app.sock".into(),
        &who(),
    );
    let ports: Vec<String> = f
        .session
        .listening_tcp()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ports, ["127.0.0.1:80", "[::1]:8080"]);
}
