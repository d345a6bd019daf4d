//! Unit tests of the doctor's pieces on real files in temporary trees: the
//! read-only session writes nothing, the checks find what they should in a
//! root, the words of the diagnoses.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jailtrace_manifest::Cause;
use jailtrace_rootfs::{Follow, Host, Kind, Root, Step};
use jailtrace_tracer::Op;
use nix::errno::Errno;

use super::diagnose::{self, Account, Diagnosis, Owner};
use super::failures;
use super::inroot::{read_in_root, resolve_in_root};
use crate::accounts::Accounts;
use crate::creds::{parse_status, Creds};
use crate::failed::FailedCall;
use crate::policy::Policy;
use crate::session::{Placement, Quiet, Session, Who};

struct Trees {
    dir: tempfile::TempDir,
    host: PathBuf,
    root: PathBuf,
}

/// A fake host with a library behind a symlink and an empty root.
fn trees() -> Trees {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    let root = dir.path().join("root");
    fs::create_dir_all(host.join("usr/lib/x")).unwrap();
    fs::create_dir_all(host.join("srv/listed")).unwrap();
    fs::create_dir_all(&root).unwrap();
    symlink("usr/lib", host.join("lib")).unwrap();
    fs::write(host.join("usr/lib/x/libc.so.6"), b"libc bytes").unwrap();
    fs::write(host.join("srv/listed/a"), b"a").unwrap();
    Trees { dir, host, root }
}

fn read_only_session(t: &Trees) -> Session {
    let mut s = Session::new(
        Root::open(&t.root).unwrap(),
        Host::at(&t.host),
        Policy::default(),
        false,
        100,
    );
    s.read_only = true;
    s.begin_run(1, true);
    s
}

fn who() -> Who {
    Who {
        pid: Some(42),
        exe: Some("/bin/prog".into()),
        syscall: Some("openat"),
        exercise: None,
    }
}

/// The program asks for `path` (followed) in the session `s`.
fn ask(s: &mut Session, path: &str) -> Placement {
    s.place(
        Path::new(path),
        Follow::Yes,
        false,
        Cause::Accessed,
        &who(),
        &mut Quiet,
    )
    .unwrap()
}

fn entries(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn a_read_only_session_records_misses_and_writes_nothing() {
    let t = trees();
    let mut s = read_only_session(&t);
    assert!(!s.copying, "a read-only session never copies");
    let placed = ask(&mut s, "/lib/x/libc.so.6");
    assert_eq!(placed, Placement::Placed);
    assert_eq!(s.misses.len(), 1);
    // /proc is noted, not mounted, and no mount point is made.
    let v = ask(&mut s, "/proc/self/stat");
    assert_eq!(v, Placement::Virtual);
    assert_eq!(s.virtual_misses.len(), 1);
    assert_eq!(s.virtual_misses[0].1, "/proc");
    // Listing, pruning, filling and the account databases are no-ops.
    s.list(Path::new("/srv/listed"), who, false, &mut Quiet)
        .unwrap();
    s.fill(Path::new("/srv/listed/a"), &who(), &mut Quiet)
        .unwrap();
    assert_eq!(s.prune(&mut Quiet).unwrap(), 0);
    assert!(!s
        .synthesize_db(Path::new("/etc/passwd"), false, &who(), &mut Quiet)
        .unwrap());
    s.place_misses(&[], &mut Quiet).unwrap();
    assert!(entries(&t.root).is_empty(), "{:?}", entries(&t.root));
    assert!(s.entries.is_empty());
}

#[test]
fn failures_say_what_the_host_has_and_what_run_would_copy() {
    let t = trees();
    let mut s = read_only_session(&t);
    ask(&mut s, "/lib/x/libc.so.6");
    // The host lacks this one too: a probe, not a failure.
    ask(&mut s, "/lib/x/nothing.so");
    let f = failures(&s, None);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].path, Path::new("/lib/x/libc.so.6"));
    assert_eq!(f[0].resolved, Path::new("/usr/lib/x/libc.so.6"));
    assert_eq!(f[0].who, who());
    let host = f[0].host.unwrap();
    assert_eq!((host.kind, host.size), (Kind::File, 10));
    let steps: Vec<&Path> = f[0].would_copy.iter().map(Step::path).collect();
    assert_eq!(
        steps,
        [
            "/lib",
            "/usr",
            "/usr/lib",
            "/usr/lib/x",
            "/usr/lib/x/libc.so.6"
        ]
        .map(Path::new)
    );
    assert_eq!(s.absent.len(), 1);
    assert!(entries(&t.root).is_empty(), "planning writes nothing");
}

#[test]
fn failures_say_run_writes_the_account_databases_itself() {
    let t = trees();
    fs::create_dir_all(t.host.join("etc")).unwrap();
    fs::write(t.host.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    let mut s = read_only_session(&t);
    ask(&mut s, "/etc/passwd");
    let f = failures(&s, None);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].synthesized, "{f:?}");
    // Only its directory is copied; the file is written, not the host's.
    let steps: Vec<&Path> = f[0].would_copy.iter().map(Step::path).collect();
    assert_eq!(steps, [Path::new("/etc")]);
}

#[test]
fn status_gives_the_file_system_ids_and_groups() {
    let status =
        "Name:\tcat\nUid:\t1000\t1000\t1000\t1001\nGid:\t100\t100\t100\t101\nGroups:\t4 27 \n";
    assert_eq!(
        parse_status(status),
        Some(Creds {
            uid: 1001,
            gid: 101,
            groups: vec![4, 27]
        })
    );
    assert_eq!(parse_status("Name:\tx\n"), None);
}

#[test]
fn account_names_come_from_arguments_environment_and_output() {
    let args = [OsString::from("www-data"), OsString::from("/etc/x.conf")];
    let env = [OsString::from("RUN_AS=backup"), OsString::from("PATH=/bin")];
    let output = b"id: 'proxy': no such user\n\
        nginx: [emerg] getpwnam(\"list\") failed in /etc/nginx/nginx.conf:1\n\
        /usr/bin/games: user not found\n\
        unrelated line mentioning news\n";
    let names = diagnose::account_candidates(&args, &env, output);
    let found: Vec<(&str, &str)> = names.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    for want in [
        ("www-data", "arguments"),
        ("backup", "environment"),
        ("proxy", "output"),
        ("list", "output"),
    ] {
        assert!(found.contains(&want), "{want:?} in {found:?}");
    }
    // Words of paths and of lines that do not speak of accounts are not
    // names the program looked up.
    for never in ["games", "news", "usr", "etc"] {
        assert!(
            !found.iter().any(|(n, _)| *n == never),
            "{never}: {found:?}"
        );
    }
}

#[test]
fn accounts_the_host_has_and_the_jail_lacks_are_diagnosed() {
    let host = Accounts::parse(
        "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n",
        "root:x:0:\nwww-data:x:33:\n",
    );
    let jail = Accounts::parse(
        "root:x:0:0::/root:/bin/bash\n",
        "root:x:0:\nwww-data:x:33:\n",
    );
    let candidates = vec![
        ("www-data".to_string(), "arguments"),
        ("root".to_string(), "environment"),
        ("nosuch".to_string(), "output"),
    ];
    let found = diagnose::missing_accounts(&candidates, &host, &jail);
    assert_eq!(
        found,
        vec![Diagnosis::MissingAccount {
            name: "www-data".into(),
            account: Account::User,
            id: 33,
            line: "www-data:x:33:33::/var/www:/usr/sbin/nologin".into(),
            source: "arguments",
        }]
    );
    let message = found[0].message(Path::new("/srv/jail"));
    assert!(message.contains("uid 33 on the host"), "{message}");
    assert!(message.contains("--keep-user www-data"), "{message}");
    assert!(message.contains("/srv/jail/etc/passwd"), "{message}");
}

#[test]
fn permission_bits_follow_owner_group_other() {
    let file = Owner {
        kind: Kind::File,
        uid: 0,
        gid: 0,
        mode: 0o640,
    };
    let user = |uid, gid, groups: Vec<u32>| Creds { uid, gid, groups };
    assert!(diagnose::lacks(&file, &user(65534, 65534, vec![]), 4));
    assert!(!diagnose::lacks(&file, &user(1, 0, vec![]), 4));
    assert!(!diagnose::lacks(&file, &user(1, 5, vec![0]), 4));
    assert!(diagnose::lacks(&file, &user(1, 5, vec![0]), 2));
    // root reads anything, but executes only what has an execute bit.
    assert!(!diagnose::lacks(&file, &user(0, 0, vec![]), 6));
    assert!(diagnose::lacks(&file, &user(0, 0, vec![]), 1));
}

fn failed(path: &str, follow: Follow, creds: Creds) -> FailedCall {
    FailedCall {
        path: path.into(),
        op: Op::Open {
            flags: libc::O_RDONLY as u64,
        },
        follow,
        errno: Errno::EACCES,
        who: who(),
        creds: Some(creds),
    }
}

#[test]
fn a_refusal_names_the_directory_that_blocks_even_through_symlinks() {
    let t = trees();
    let me = fs::metadata(&t.root).unwrap();
    let (uid, gid) = (me.uid(), me.gid());
    fs::create_dir_all(t.root.join("etc")).unwrap();
    fs::create_dir_all(t.root.join("usr/share")).unwrap();
    fs::write(t.root.join("etc/alias"), b"x").unwrap();
    fs::set_permissions(t.root.join("etc/alias"), fs::Permissions::from_mode(0o644)).unwrap();
    // An absolute link, resolved inside the root.
    symlink("/etc/alias", t.root.join("usr/share/alias")).unwrap();
    fs::set_permissions(t.root.join("etc"), fs::Permissions::from_mode(0o700)).unwrap();
    let root = Root::open(&t.root).unwrap();
    let host = Host::at(&t.host);
    let stranger = Creds {
        uid: uid.wrapping_add(1000),
        gid: gid.wrapping_add(1000),
        groups: vec![],
    };
    let d = diagnose::permission(
        &root,
        &host,
        &failed("/usr/share/alias", Follow::Yes, stranger.clone()),
    )
    .expect("the path is in the root");
    let Diagnosis::PermissionDenied {
        blocked_at, jail, ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(blocked_at, Path::new("/etc"));
    assert_eq!(jail.map(|o| o.mode), Some(0o700));
    // A file the user may not read, in a directory it may search.
    fs::set_permissions(t.root.join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(t.root.join("etc/alias"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir_all(t.host.join("etc")).unwrap();
    fs::write(t.host.join("etc/alias"), b"x").unwrap();
    fs::set_permissions(t.host.join("etc/alias"), fs::Permissions::from_mode(0o644)).unwrap();
    let d = diagnose::permission(&root, &host, &failed("/etc/alias", Follow::Yes, stranger))
        .expect("the file is in the root");
    let message = d.message(&t.root);
    assert!(
        message.contains(&format!(
            "/etc/alias is owned by {uid}:{gid} mode 0600 in the jail, {uid}:{gid} 0644 on the host"
        )),
        "{message}"
    );
    assert!(message.contains("chmod 0644"), "{message}");
    // Nothing in the root: not a permission problem of the root.
    let creds = Creds {
        uid: 1,
        gid: 1,
        groups: vec![],
    };
    assert!(diagnose::permission(&root, &host, &failed("/nothing", Follow::Yes, creds)).is_none());
}

#[test]
fn root_files_are_read_and_resolved_inside_the_root() {
    let t = trees();
    fs::create_dir_all(t.root.join("etc")).unwrap();
    fs::write(t.root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    // An absolute symlink that would lead to the host's file when
    // followed outside the root.
    symlink("/etc/passwd", t.root.join("passwd-link")).unwrap();
    symlink("/../../../../etc", t.root.join("escape")).unwrap();
    let root = Root::open(&t.root).unwrap();
    assert_eq!(
        read_in_root(&root, Path::new("/passwd-link"), 1024).as_deref(),
        Some("root:x:0:0::/root:/bin/sh\n")
    );
    assert_eq!(
        resolve_in_root(&root, Path::new("/escape/passwd"), Follow::Yes),
        Some(PathBuf::from("/etc/passwd"))
    );
    assert_eq!(
        resolve_in_root(&root, Path::new("/passwd-link"), Follow::No),
        Some(PathBuf::from("/passwd-link"))
    );
    assert_eq!(read_in_root(&root, Path::new("/missing"), 1024), None);
    // A directory is not a file to read.
    assert_eq!(read_in_root(&root, Path::new("/etc"), 1024), None);
}

#[test]
fn a_missing_interpreter_is_found_for_elf_files_and_scripts() {
    let t = trees();
    let root_dir = &t.root;
    fs::create_dir_all(root_dir.join("usr/bin")).unwrap();
    // A real dynamically linked executable of this host.
    fs::copy("/usr/bin/true", root_dir.join("usr/bin/true")).unwrap();
    fs::write(
        root_dir.join("usr/bin/script"),
        b"#!/usr/bin/true -x\necho\n",
    )
    .unwrap();
    fs::write(root_dir.join("usr/bin/script2"), b"#!/usr/bin/nothing\n").unwrap();
    let root = Root::open(root_dir).unwrap();
    let interp = match jailtrace_elf::interpreter(Path::new("/usr/bin/true")) {
        Ok(Some(jailtrace_elf::Interpreter::Elf { path })) => path,
        other => panic!("/usr/bin/true has no ELF interpreter: {other:?}"),
    };
    assert_eq!(
        diagnose::missing_interpreter(&root, Path::new("/usr/bin/true")),
        Some(("/usr/bin/true".into(), interp.clone(), false))
    );
    // A script whose interpreter is there, but not that one's loader.
    assert_eq!(
        diagnose::missing_interpreter(&root, Path::new("/usr/bin/script")),
        Some(("/usr/bin/true".into(), interp.clone(), false))
    );
    assert_eq!(
        diagnose::missing_interpreter(&root, Path::new("/usr/bin/script2")),
        Some(("/usr/bin/script2".into(), "/usr/bin/nothing".into(), true))
    );
    let placed = root_dir.join(interp.strip_prefix("/").unwrap());
    fs::create_dir_all(placed.parent().unwrap()).unwrap();
    fs::write(&placed, b"loader").unwrap();
    assert_eq!(
        diagnose::missing_interpreter(&root, Path::new("/usr/bin/true")),
        None
    );
    let d = Diagnosis::MissingInterpreter {
        exe: "/usr/bin/date".into(),
        interpreter: "/lib64/ld-linux-x86-64.so.2".into(),
        script: false,
        who: who(),
    };
    assert!(d.message(&t.root).starts_with(
        "/usr/bin/date exists but its ELF interpreter /lib64/ld-linux-x86-64.so.2 is missing \
         from the jail, so execve fails with ENOENT"
    ));
    drop(t.dir);
}

#[test]
fn the_fixes_are_commands_under_the_root() {
    let root = Path::new("/srv/my jail");
    let null = Diagnosis::MissingDevice {
        path: "/dev/null".into(),
        block: false,
        major: 1,
        minor: 3,
        mode: 0o666,
        uid: 0,
        gid: 0,
        regular_file: false,
        who: who(),
    };
    assert!(
        null.message(root)
            .contains("`mknod -m 666 '/srv/my jail/dev/null' c 1 3`"),
        "{}",
        null.message(root)
    );
    let proc = Diagnosis::NotMounted {
        mount: "/proc".into(),
        fstype: "proc",
        paths: vec!["/proc/self/stat".into()],
        mount_point_exists: true,
        who: who(),
    };
    assert!(proc
        .message(Path::new("/srv/j"))
        .contains("`mount -t proc proc /srv/j/proc`"));
    let port = Diagnosis::PortInUse {
        addr: "127.0.0.1:8080".parse().unwrap(),
    };
    assert!(port
        .message(root)
        .starts_with("127.0.0.1:8080 is already in use"));
    for (d, kind) in [
        (null, "missing_device"),
        (proc, "not_mounted"),
        (port, "port_in_use"),
    ] {
        assert_eq!(d.kind(), kind);
    }
}

#[test]
fn mountinfo_escapes_are_undone() {
    assert_eq!(
        crate::mounts::unescape_mountinfo(br"/srv/my\040jail\134x"),
        b"/srv/my jail\\x".to_vec()
    );
}
