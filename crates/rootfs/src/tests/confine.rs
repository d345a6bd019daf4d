//! Adversarial roots: symlinks planted to lead out of the root, and
//! directories swapped for such symlinks between planning and applying (and
//! concurrently with operations). Every operation must land inside the root
//! or fail, and the directory outside must be unchanged afterwards; each
//! test runs with `openat2` and with the fallback walk.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::util::{assert_same, attrs, dir, file, link, need_root, open_root, snapshot};
use crate::{plan, Follow, Host, Root};

/// Where links in the root point (unconfined) besides the real `/etc`.
const ESCAPES: [&str; 6] = ["/var/log", "/evil", "/abs2", "/up", "/out_dir", "/etc"];

struct Scene {
    tmp: tempfile::TempDir,
    outside: PathBuf,
    root_path: PathBuf,
    host: Host,
}

/// ```text
/// outside/{secret, passwd, sub/inner}
/// jail/root/etc -> /../../../etc
/// jail/root/var/log -> <outside>            (absolute)
/// jail/root/evil -> ../../outside           (relative, climbing)
/// jail/root/abs2 -> /../../../..<outside>
/// jail/root/up -> ../../../../../../../..
/// jail/root/out_dir -> <outside>, out_file -> <outside>/secret
/// jail/root/outside/                        (where clamped links land)
/// host/<each escape>/{secret, passwd, sub/inner, NAME-copy}, host/out_file
/// ```
fn scene(unique: &str) -> Scene {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let outside = t.join("outside");
    dir(&outside, 0o755, 0, 0, 1_000);
    file(&outside.join("secret"), b"s3cret", 0o600, 0, 0, 2_000);
    file(&outside.join("passwd"), b"root:x:0:0", 0o644, 0, 0, 2_000);
    fs::create_dir(outside.join("sub")).unwrap();
    file(&outside.join("sub/inner"), b"inner", 0o644, 0, 0, 2_000);
    let o = outside.to_str().expect("utf-8 temp path");

    let root_path = t.join("jail/root");
    fs::create_dir_all(root_path.join("var")).unwrap();
    fs::create_dir(root_path.join("outside")).unwrap();
    link("/../../../etc", &root_path.join("etc"));
    link(o, &root_path.join("var/log"));
    link("../../outside", &root_path.join("evil"));
    link(&format!("/../../../..{o}"), &root_path.join("abs2"));
    link("../../../../../../../..", &root_path.join("up"));
    link(o, &root_path.join("out_dir"));
    link(&format!("{o}/secret"), &root_path.join("out_file"));

    let h = t.join("host");
    for e in ESCAPES {
        let d = h.join(&e[1..]);
        fs::create_dir_all(d.join("sub")).unwrap();
        for f in ["secret", "passwd", "sub/inner", &format!("{unique}-copy")] {
            fs::write(d.join(f), b"from the host").unwrap();
        }
    }
    fs::write(h.join("out_file"), b"from the host").unwrap();
    Scene {
        outside,
        root_path,
        host: Host::at(&h),
        tmp,
    }
}

/// Tries every operation through every escaping link; results are ignored,
/// only where things land matters.
fn attack(root: &mut Root, host: &Host, unique: &str) {
    let null = fs::metadata("/dev/null").map(|m| m.rdev()).unwrap_or(0x103);
    let a = crate::Attrs {
        mode: 0o777,
        uid: 4242,
        gid: 4242,
        mtime: Some((1, 0)),
    };
    for e in ESCAPES {
        let n = |s: &str| PathBuf::from(format!("{e}/{unique}-{s}"));
        let _ = root.mkdir(&n("dir"), &a);
        let _ = root.symlink(&n("link"), Path::new("/x"), &a);
        let _ = root.create_empty(&n("empty"), &a);
        let _ = root.copy_file(&n("copy"), host, &a);
        let _ = root.mknod(&n("null"), &a, null);
        let _ = root.lstat(&n("copy"));
        if e == "/etc" {
            // The real /etc: only ever names that cannot exist there.
            continue;
        }
        for v in ["secret", "passwd", "sub/inner"] {
            let v = PathBuf::from(format!("{e}/{v}"));
            let _ = root.chown(&v, 4242, 4242);
            let _ = root.chmod(&v, 0o777);
            let _ = root.fill_placeholder(&v, host, &a);
            let _ = root.remove(&v);
        }
        let _ = root.remove(&PathBuf::from(format!("{e}/sub")));
    }
    // Symlinks as the last component: acted on themselves, never followed.
    let f = Path::new("/out_file");
    assert!(root.fill_placeholder(f, host, &a).is_err());
    assert!(root.copy_file(f, host, &a).is_err());
    assert!(root.create_empty(f, &a).is_err());
    assert!(root.mknod(f, &a, null).is_err());
    assert!(root.chmod(f, 0o777).is_err());
    assert!(root.mkdir(Path::new("/out_dir"), &a).is_err());
    root.chown(f, 4242, 4242)
        .expect("lchown of the link itself");
    root.remove(f).expect("unlink the link itself");
    root.remove(Path::new("/out_dir"))
        .expect("unlink the link itself");
}

/// Checks that nothing named `unique` appeared in the real `/etc` or `/`
/// (where `/etc` and `/up` point unconfined); removes what did, then fails.
fn real_host_untouched(unique: &str) {
    let mut found = Vec::new();
    for d in ["/etc", "/"] {
        for s in ["dir", "link", "empty", "copy", "null"] {
            let p = PathBuf::from(format!("{d}/{unique}-{s}"));
            if fs::symlink_metadata(&p).is_ok() {
                let _ = fs::remove_file(&p).or_else(|_| fs::remove_dir(&p));
                found.push(p);
            }
        }
    }
    assert!(found.is_empty(), "created on the real host: {found:?}");
}

#[test]
fn planted_links_never_lead_out() {
    if !need_root("planted_links_never_lead_out") {
        return;
    }
    for fallback in [false, true] {
        let unique = format!("jailtrace-confine-{}-{fallback}", std::process::id());
        let s = scene(&unique);
        let before = snapshot(&s.outside);
        let mut root = open_root(&s.root_path, fallback);
        attack(&mut root, &s.host, &unique);
        real_host_untouched(&unique);
        assert_same(
            &before,
            &snapshot(&s.outside),
            &format!("fallback={fallback}"),
        );
        // Clamped links did lead somewhere: inside the root.
        let inside = s.root_path.join("outside");
        assert!(
            inside.join(format!("{unique}-dir")).is_dir(),
            "fallback={fallback}"
        );
        assert_eq!(
            fs::read(inside.join(format!("{unique}-copy"))).unwrap(),
            b"from the host"
        );
        assert!(
            s.root_path.join(format!("{unique}-dir")).is_dir(),
            "/up clamps to /"
        );
        drop(s.tmp);
    }
}

/// Host `/a/b/file`; the root has `/a`. Plans, then swaps a directory in
/// the root for `link` before applying.
fn swap_then_apply(
    fallback: bool,
    swap_at: &str,
    link_to: impl Fn(&Path) -> String,
) -> (PathBuf, tempfile::TempDir) {
    let s = scene("swap");
    let h = s.host.base().to_path_buf();
    fs::create_dir_all(h.join("a/b")).unwrap();
    fs::write(h.join("a/b/file"), b"payload").unwrap();
    fs::create_dir(s.root_path.join("a")).unwrap();
    let before = snapshot(&s.outside);
    let mut root = open_root(&s.root_path, fallback);
    let plan = plan(&root, &s.host, Path::new("/a/b/file"), Follow::Yes).unwrap();
    let paths: Vec<_> = plan.steps.iter().map(|s| s.path().to_path_buf()).collect();
    assert_eq!(paths, [Path::new("/a/b"), Path::new("/a/b/file")]);
    let mut steps = plan.steps.iter();
    if swap_at == "a/b" {
        root.apply(&s.host, steps.next().unwrap()).unwrap();
    }
    let victim = s.root_path.join(swap_at);
    fs::rename(&victim, s.root_path.join("moved-away")).unwrap();
    link(&link_to(&s.outside), &victim);
    for step in steps {
        let _ = root.apply(&s.host, step);
    }
    assert_same(
        &before,
        &snapshot(&s.outside),
        &format!("fallback={fallback} swap {swap_at}"),
    );
    (s.root_path, s.tmp)
}

#[test]
fn swapped_directories_between_plan_and_apply() {
    for fallback in [false, true] {
        // Absolute link to the outside: resolves to <root><outside>, absent.
        let abs = |o: &Path| o.to_str().unwrap().to_string();
        let (rp, _t) = swap_then_apply(fallback, "a", abs);
        assert!(!rp.join("outside/b").exists());
        let (_, _t) = swap_then_apply(fallback, "a/b", abs);
        // Relative climbing link: clamped at the root, lands in root/outside.
        let (rp, _t) = swap_then_apply(fallback, "a", |_| "../../outside".into());
        assert_eq!(fs::read(rp.join("outside/b/file")).unwrap(), b"payload");
        let (rp, _t) = swap_then_apply(fallback, "a/b", |_| "../../../outside".into());
        assert_eq!(fs::read(rp.join("outside/file")).unwrap(), b"payload");
    }
}

#[test]
fn concurrent_swaps_never_lead_out() {
    for fallback in [false, true] {
        let s = scene("race");
        let before = snapshot(&s.outside);
        // d is a directory and d.link a symlink to the outside; a thread
        // keeps exchanging the two names atomically while we work in /d.
        let d = s.root_path.join("d");
        fs::create_dir(&d).unwrap();
        link(s.outside.to_str().unwrap(), &s.root_path.join("d.link"));
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, rp) = (stop.clone(), s.root_path.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = nix::fcntl::renameat2(
                        nix::fcntl::AT_FDCWD,
                        &rp.join("d"),
                        nix::fcntl::AT_FDCWD,
                        &rp.join("d.link"),
                        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                    );
                }
            })
        };
        let mut root = open_root(&s.root_path, fallback);
        for i in 0..300 {
            let _ = root.mkdir(&PathBuf::from(format!("/d/dir{i}")), &attrs(0o755));
            let _ = root.create_empty(&PathBuf::from(format!("/d/file{i}")), &attrs(0o644));
            let _ = root.symlink(
                &PathBuf::from(format!("/d/link{i}")),
                Path::new("x"),
                &attrs(0),
            );
            let _ = root.remove(Path::new("/d/secret"));
            let _ = root.chmod(Path::new("/d/secret"), 0o777);
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert_same(
            &before,
            &snapshot(&s.outside),
            &format!("fallback={fallback}"),
        );
    }
}
