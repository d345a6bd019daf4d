//! The single operations of `Root`, under both resolvers.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::util::{attrs, link, need_root, open_root};
use crate::{Attrs, Error, Kind, Root};

fn with_roots(test: impl Fn(&mut Root, &Path)) {
    for fallback in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let rp = tmp.path().join("root");
        fs::create_dir(&rp).unwrap();
        let mut root = open_root(&rp, fallback);
        test(&mut root, &rp);
    }
}

#[test]
fn open_refuses_symlinks_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("real")).unwrap();
    link("real", &tmp.path().join("link"));
    fs::write(tmp.path().join("file"), b"").unwrap();
    for bad in ["link", "file", "missing"] {
        let err = Root::open(&tmp.path().join(bad)).unwrap_err();
        assert!(matches!(err, Error::OpenRoot { .. }), "{bad}: {err:?}");
    }
    let root = Root::open(&tmp.path().join("real")).unwrap();
    assert_eq!(
        root.path(),
        fs::canonicalize(tmp.path().join("real")).unwrap()
    );
}

/// A host's `read_dir` is confined to its base as every host read is: an
/// absolute symlink leads below the base, not to the real system's
/// directory; each entry has its kind and inode number.
#[test]
fn a_real_path_resolves_the_directories_inside_the_root() {
    with_roots(|root, r| {
        fs::create_dir_all(r.join("run/named")).unwrap();
        fs::create_dir(r.join("var")).unwrap();
        link("/run", &r.join("var/run"));
        // An absolute link that would leave the root on the host.
        link("/../../..", &r.join("up"));
        for spelled in [
            "/run/named/session.key",
            "//run/named/session.key",
            "/var/run/named/session.key",
            "/var/./run//named/session.key",
            "/up/run/named/session.key",
        ] {
            assert_eq!(
                root.real_path(Path::new(spelled)).unwrap(),
                Path::new("/run/named/session.key"),
                "{spelled}"
            );
        }
        // The last component is not followed.
        assert_eq!(
            root.real_path(Path::new("/var/run")).unwrap(),
            Path::new("/var/run")
        );
        assert!(root.real_path(Path::new("/missing/x")).is_err());
    });
}

#[test]
fn a_host_listing_stays_below_the_hosts_base() {
    let tmp = tempfile::tempdir().unwrap();
    let h = tmp.path();
    fs::create_dir_all(h.join("usr/lib/sub")).unwrap();
    fs::write(h.join("usr/lib/libx.so.1"), b"").unwrap();
    link("/usr/lib", &h.join("lib"));
    let host = crate::Host::at(h);
    let mut entries = host.read_dir(Path::new("/lib")).unwrap();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let seen: Vec<_> = entries.iter().map(|e| (e.name.clone(), e.kind)).collect();
    assert_eq!(
        seen,
        [
            ("libx.so.1".into(), Some(Kind::File)),
            ("sub".into(), Some(Kind::Dir)),
        ]
    );
    let ino = fs::symlink_metadata(h.join("usr/lib/sub")).unwrap().ino();
    assert_eq!(entries[1].ino, ino);
    assert!(host.read_dir(Path::new("/missing")).is_err());
}

/// `read_dir` names what a directory holds, with the kinds the listing
/// gives, through symlinks resolved inside the root; a missing path or a
/// file is an error.
#[test]
fn read_dir_lists_a_directory_of_the_root() {
    with_roots(|root, rp| {
        fs::create_dir_all(rp.join("usr/lib")).unwrap();
        fs::write(rp.join("usr/lib/libc.so.6"), b"").unwrap();
        link("libc.so.6", &rp.join("usr/lib/libc.so"));
        fs::create_dir(rp.join("usr/lib/sub")).unwrap();
        // Absolute: resolved inside the root, not on the host.
        link("/usr/lib", &rp.join("lib"));

        let mut names = root.read_dir(Path::new("/lib")).unwrap();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            names,
            [
                ("libc.so".into(), Some(Kind::Symlink)),
                ("libc.so.6".into(), Some(Kind::File)),
                ("sub".into(), Some(Kind::Dir)),
            ]
        );
        assert_eq!(root.read_dir(Path::new("/usr/lib/sub")).unwrap(), []);
        for bad in ["/missing", "/usr/lib/libc.so.6"] {
            assert!(
                matches!(
                    root.read_dir(Path::new(bad)),
                    Err(Error::Root { op: "read", .. })
                ),
                "{bad}"
            );
        }
    });
}

#[test]
fn mkdir_symlink_and_remove() {
    with_roots(|root, rp| {
        let a = Attrs {
            mode: 0o1777,
            uid: 0,
            gid: 0,
            mtime: Some((86_400, 5)),
        };
        root.mkdir(Path::new("/tmp"), &a).unwrap();
        let m = root.lstat(Path::new("/tmp")).unwrap().unwrap();
        assert_eq!((m.kind, m.mode, m.mtime), (Kind::Dir, 0o1777, (86_400, 5)));
        // Again: fine, and untouched.
        root.mkdir(Path::new("/tmp"), &attrs(0o700)).unwrap();
        assert_eq!(root.lstat(Path::new("/tmp")).unwrap().unwrap().mode, 0o1777);
        // Parent missing.
        assert!(matches!(
            root.mkdir(Path::new("/no/such"), &attrs(0o755)),
            Err(Error::Root { op: "mkdir", .. })
        ));
        // No name to act on.
        assert!(matches!(
            root.mkdir(Path::new("/tmp/.."), &attrs(0o755)),
            Err(Error::NoName { .. })
        ));

        root.symlink(Path::new("/t"), Path::new("tmp"), &attrs(0))
            .unwrap();
        root.symlink(Path::new("/t"), Path::new("tmp"), &attrs(0))
            .unwrap();
        assert!(matches!(
            root.symlink(Path::new("/t"), Path::new("other"), &attrs(0)),
            Err(Error::Exists {
                kind: Kind::Symlink,
                ..
            })
        ));
        assert!(matches!(
            root.mkdir(Path::new("/t"), &attrs(0o755)),
            Err(Error::Exists {
                kind: Kind::Symlink,
                ..
            })
        ));
        // Intermediate symlinks are followed (inside the root), the last not.
        root.create_empty(Path::new("/t/f"), &attrs(0o644)).unwrap();
        assert!(rp.join("tmp/f").is_file());
        // The directory keeps the time it was made with, as on the host.
        let tmp_time = |root: &Root| root.lstat(Path::new("/tmp")).unwrap().unwrap().mtime;
        assert_eq!(tmp_time(root), (86_400, 5));
        assert_eq!(
            root.lstat(Path::new("/t")).unwrap().unwrap().kind,
            Kind::Symlink
        );
        assert_eq!(root.stat(Path::new("/t")).unwrap().unwrap().kind, Kind::Dir);
        root.symlink(Path::new("/dangling"), Path::new("/nowhere"), &attrs(0))
            .unwrap();
        assert_eq!(root.stat(Path::new("/dangling")).unwrap(), None);
        assert_eq!(root.lstat(Path::new("/tmp/f/x")).unwrap(), None);

        // remove: a symlink to a directory goes, the directory stays.
        root.remove(Path::new("/t")).unwrap();
        assert!(rp.join("tmp").is_dir());
        assert!(root.remove(Path::new("/tmp")).is_err(), "not empty");
        root.remove(Path::new("/tmp/f")).unwrap();
        assert_eq!(tmp_time(root), (86_400, 5));
        root.remove(Path::new("/tmp")).unwrap();
        assert_eq!(fs::read_dir(rp).unwrap().count(), 1, "only /dangling left");
    });
}

#[test]
fn owners_modes_and_devices() {
    if !need_root("owners_modes_and_devices") {
        return;
    }
    with_roots(|root, rp| {
        root.mkdir(Path::new("/dev"), &attrs(0o755)).unwrap();
        let null = fs::metadata("/dev/null").unwrap().rdev();
        let a = Attrs {
            mode: 0o666,
            uid: 0,
            gid: 5,
            mtime: Some((1_000, 0)),
        };
        root.mknod(Path::new("/dev/null"), &a, null).unwrap();
        let m = fs::symlink_metadata(rp.join("dev/null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(
            (m.rdev(), m.mode() & 0o7777, m.gid(), m.mtime()),
            (null, 0o666, 5, 1_000)
        );
        // The same node again is fine; a different one is not.
        root.mknod(Path::new("/dev/null"), &a, null).unwrap();
        assert!(matches!(
            root.mknod(Path::new("/dev/null"), &a, null + 1),
            Err(Error::Exists { .. })
        ));

        let blk = Attrs {
            mode: libc::S_IFBLK | 0o660,
            ..a
        };
        assert!(matches!(
            root.mknod(Path::new("/dev/sda"), &blk, 0x800),
            Err(Error::BlockDevice { .. })
        ));
        assert!(fs::symlink_metadata(rp.join("dev/sda")).is_err());

        root.create_empty(Path::new("/dev/f"), &attrs(0o644))
            .unwrap();
        root.chown(Path::new("/dev/f"), 1234, 4321).unwrap();
        root.chmod(Path::new("/dev/f"), 0o2750).unwrap();
        let m = fs::metadata(rp.join("dev/f")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 4321, 0o2750));

        root.symlink(
            Path::new("/dev/l"),
            Path::new("f"),
            &Attrs {
                uid: 99,
                gid: 98,
                ..a
            },
        )
        .unwrap();
        let l = fs::symlink_metadata(rp.join("dev/l")).unwrap();
        assert_eq!((l.uid(), l.gid(), l.mtime()), (99, 98, 1_000));
        // chmod never goes through a symlink; chown changes the link only.
        assert!(root.chmod(Path::new("/dev/l"), 0o777).is_err());
        root.chown(Path::new("/dev/l"), 7, 7).unwrap();
        assert_eq!(fs::metadata(rp.join("dev/f")).unwrap().uid(), 1234);
        assert_eq!(
            fs::metadata(rp.join("dev/f")).unwrap().mode() & 0o7777,
            0o2750
        );
    });
}
