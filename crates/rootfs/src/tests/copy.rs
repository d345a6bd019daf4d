//! File copies: the real host's loader and localtime chains, hard links,
//! sparse files, placeholders.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::util::{attrs, dir, file, open_root};
use crate::{plan, Applied, Follow, Host, Outcome, Root};

/// Plans and applies `p` from `host` into `root`; returns the plan's
/// resolved path and what the applied steps did.
fn place(root: &mut Root, host: &Host, p: &Path) -> (PathBuf, Vec<Applied>) {
    let plan = plan(root, host, p, Follow::Yes).expect("plan");
    assert_eq!(plan.outcome, Outcome::Placed, "{p:?}: {plan:?}");
    let applied = plan
        .steps
        .iter()
        .map(|s| root.apply(host, s).expect("apply"))
        .collect();
    (plan.resolved, applied)
}

fn sha256sum(p: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(p)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf8")[..64].to_string()
}

#[test]
fn real_host_loader_and_localtime_resolve_inside_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    for fallback in [false, true] {
        let rp = tmp.path().join(format!("root-{fallback}"));
        fs::create_dir(&rp).unwrap();
        let mut root = open_root(&rp, fallback);
        for p in ["/lib64/ld-linux-x86-64.so.2", "/etc/localtime"] {
            let p = Path::new(p);
            if fs::symlink_metadata(p).is_err() {
                eprintln!("SKIPPED {p:?}: not on this host");
                continue;
            }
            let (resolved, applied) = place(&mut root, &Host::system(), p);
            assert_eq!(resolved, fs::canonicalize(p).unwrap(), "{p:?}");
            let Some(Applied::File(copied)) = applied.last() else {
                panic!("{p:?} did not end in a file: {applied:?}")
            };
            // The chain resolves, inside the root, to the copy...
            let in_root = root.stat(p).unwrap().expect("resolves in root");
            let copy = rp.join(resolved.strip_prefix("/").unwrap());
            assert_eq!(in_root.ino, fs::metadata(&copy).unwrap().ino());
            // ...whose bytes are the host's.
            assert_eq!(fs::read(&copy).unwrap(), fs::read(p).unwrap());
            assert_eq!(copied.sha256.wait(), sha256sum(p));
            // And the links in the root read as on the host.
            let mut q = PathBuf::from("/");
            for c in p.components().skip(1) {
                q.push(c);
                if let Ok(t) = fs::read_link(&q) {
                    assert_eq!(
                        fs::read_link(rp.join(q.strip_prefix("/").unwrap())).unwrap(),
                        t
                    );
                }
            }
        }
    }
}

#[test]
fn host_hard_links_stay_hard_links() {
    let tmp = tempfile::tempdir().unwrap();
    let h = tmp.path().join("host");
    fs::create_dir(&h).unwrap();
    dir(&h.join("a"), 0o755, 0, 0, 1_000);
    dir(&h.join("b"), 0o755, 0, 0, 1_000);
    file(&h.join("a/one"), b"shared", 0o644, 0, 0, 2_000);
    fs::hard_link(h.join("a/one"), h.join("b/two")).unwrap();
    fs::hard_link(h.join("a/one"), h.join("b/three")).unwrap();
    let host = Host::at(&h);
    for fallback in [false, true] {
        let rp = tmp.path().join(format!("root-{fallback}"));
        fs::create_dir(&rp).unwrap();
        let mut root = open_root(&rp, fallback);
        let (_, first) = place(&mut root, &host, Path::new("/a/one"));
        let (_, second) = place(&mut root, &host, Path::new("/b/two"));
        let Some(Applied::File(c1)) = first.last() else {
            panic!("{first:?}")
        };
        let Some(Applied::File(c2)) = second.last() else {
            panic!("{second:?}")
        };
        assert_eq!(c1.hardlink_to, None);
        assert_eq!(c2.hardlink_to.as_deref(), Some(Path::new("/a/one")));
        assert_eq!(c1.sha256, c2.sha256);
        let (m1, m2) = (
            fs::metadata(rp.join("a/one")).unwrap(),
            fs::metadata(rp.join("b/two")).unwrap(),
        );
        assert_eq!(m1.ino(), m2.ino());
        assert_eq!(m1.nlink(), 2);

        // The first copy replaced by another file in the root (the program
        // can do that): the next link gets a fresh copy, not a link to it.
        fs::remove_file(rp.join("a/one")).unwrap();
        fs::remove_file(rp.join("b/two")).unwrap();
        fs::write(rp.join("a/one"), b"planted").unwrap();
        let (_, third) = place(&mut root, &host, Path::new("/b/three"));
        let Some(Applied::File(c3)) = third.last() else {
            panic!("{third:?}")
        };
        assert_eq!(c3.hardlink_to, None);
        assert_eq!(fs::read(rp.join("b/three")).unwrap(), b"shared");
        assert_ne!(
            fs::metadata(rp.join("b/three")).unwrap().ino(),
            fs::metadata(rp.join("a/one")).unwrap().ino()
        );
    }
}

#[test]
fn sparse_files_keep_their_holes() {
    const SIZE: u64 = 64 << 20;
    // Its holes are hashed as zeros on the hashing thread.
    crate::digest::start(|| {});
    let tmp = tempfile::tempdir().unwrap();
    let h = tmp.path().join("host");
    fs::create_dir(&h).unwrap();
    let f = fs::File::create(h.join("sparse")).unwrap();
    f.set_len(SIZE).unwrap();
    f.write_all_at(b"x", SIZE - 1).unwrap();
    drop(f);
    let rp = tmp.path().join("root");
    fs::create_dir(&rp).unwrap();
    let mut root = open_root(&rp, false);
    let copied = root
        .copy_file(Path::new("/sparse"), &Host::at(&h), &attrs(0o644))
        .expect("copy");
    assert_eq!(copied.bytes, SIZE);
    assert_eq!(copied.sha256.wait(), sha256sum(&h.join("sparse")));
    let m = root.lstat(Path::new("/sparse")).unwrap().unwrap();
    assert_eq!(m.size, SIZE);
    // One data block (plus perhaps extent metadata), not 64 MiB worth.
    assert!(m.blocks <= 64, "copy allocated {} blocks", m.blocks);
    assert_eq!(
        fs::read(rp.join("sparse")).unwrap(),
        fs::read(h.join("sparse")).unwrap()
    );

    // Data first and a hole to the end: the copy gets its size from the
    // truncate that follows the last write.
    let f = fs::File::create(h.join("tail")).unwrap();
    f.write_all_at(b"x", 0).unwrap();
    f.set_len(SIZE).unwrap();
    drop(f);
    let copied = root
        .copy_file(Path::new("/tail"), &Host::at(&h), &attrs(0o644))
        .expect("copy");
    assert_eq!(copied.sha256.wait(), sha256sum(&h.join("tail")));
    let m = root.lstat(Path::new("/tail")).unwrap().unwrap();
    assert_eq!(m.size, SIZE);
    assert!(m.blocks <= 64, "copy allocated {} blocks", m.blocks);
}

#[test]
fn dense_and_empty_files_hash_correctly() {
    // "big" is copied by the kernel and hashed on the hashing thread,
    // "small" is copied and hashed through our buffer.
    crate::digest::start(|| {});
    let tmp = tempfile::tempdir().unwrap();
    // The host beside the root (one file system: `copy_file_range`), and
    // on a tmpfs where there is one (another: `sendfile`).
    let shm = tempfile::tempdir_in("/dev/shm").ok();
    let hosts = [
        Some(tmp.path().join("host")),
        shm.as_ref().map(|d| d.path().to_path_buf()),
    ];
    for h in hosts.into_iter().flatten() {
        fs::create_dir_all(&h).unwrap();
        // Bigger than one copy chunk, not a multiple of it.
        let big: Vec<u8> = (0..300_001u32).map(|i| (i % 251) as u8).collect();
        fs::write(h.join("big"), &big).unwrap();
        fs::write(h.join("small"), &big[..1000]).unwrap();
        fs::write(h.join("empty"), b"").unwrap();
        let rp = tmp
            .path()
            .join(format!("root-{}", h.display()).replace('/', "_"));
        fs::create_dir(&rp).unwrap();
        let mut root = open_root(&rp, false);
        let host = Host::at(&h);
        for (name, content) in [("big", &big[..]), ("small", &big[..1000])] {
            let c = root
                .copy_file(&Path::new("/").join(name), &host, &attrs(0o600))
                .unwrap();
            assert_eq!(
                (c.bytes, c.sha256.wait()),
                (content.len() as u64, sha256sum(&h.join(name))),
                "{name} from {h:?}"
            );
            assert_eq!(fs::read(rp.join(name)).unwrap(), content);
        }
        let e = root
            .copy_file(Path::new("/empty"), &host, &attrs(0o600))
            .unwrap();
        assert_eq!(
            e.sha256.wait(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // A second copy never overwrites.
        assert!(matches!(
            root.copy_file(Path::new("/big"), &host, &attrs(0o600)),
            Err(crate::Error::Exists { .. })
        ));
    }
}

#[test]
fn placeholders_are_created_then_filled() {
    let tmp = tempfile::tempdir().unwrap();
    let h = tmp.path().join("host");
    fs::create_dir(&h).unwrap();
    fs::write(h.join("conf"), b"key=value\n").unwrap();
    fs::write(h.join("fifo"), b"x").unwrap();
    let rp = tmp.path().join("root");
    fs::create_dir(&rp).unwrap();
    let mut root = open_root(&rp, false);
    let host = Host::at(&h);
    let a = crate::Attrs {
        mode: 0o640,
        uid: 0,
        gid: 0,
        mtime: Some((1_234_567, 89)),
    };
    root.create_empty(Path::new("/conf"), &a).unwrap();
    let m = root.lstat(Path::new("/conf")).unwrap().unwrap();
    assert_eq!((m.size, m.mode, m.mtime), (0, 0o640, (1_234_567, 89)));
    let c = root
        .fill_placeholder(Path::new("/conf"), &host, &a)
        .unwrap();
    assert_eq!(c.bytes, 10);
    assert_eq!(fs::read(rp.join("conf")).unwrap(), b"key=value\n");
    let m = root.lstat(Path::new("/conf")).unwrap().unwrap();
    assert_eq!((m.mode, m.mtime), (0o640, (1_234_567, 89)));
    // A fifo where the placeholder should be: refused, without blocking.
    nix::unistd::mkfifo(
        &rp.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    assert!(root
        .fill_placeholder(Path::new("/fifo"), &host, &a)
        .is_err());
    // A missing host file is a host error naming the host path.
    let err = root.copy_file(Path::new("/nope"), &host, &a).unwrap_err();
    assert!(
        err.to_string()
            .contains(&h.join("nope").display().to_string()),
        "{err}"
    );
}
