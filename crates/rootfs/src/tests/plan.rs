//! Planning and applying symlink chains against a fake host.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::util::{dir, file, link, need_root, open_root, set_mtime};
use crate::{plan, plan_parent, Applied, Follow, Host, Kind, Outcome, Root, Step};

/// A merged-/usr style fake host:
///
/// ```text
/// usr/                 0755
/// usr/lib/             0750 uid 1234 gid 4321
/// usr/lib/libfoo.so.1  "foo" 04755 uid 1234
/// usr/share/rel -> ../lib/libfoo.so.1
/// lib -> usr/lib       (owned by uid 777)
/// abs -> /usr/lib/libfoo.so.1
/// c1 -> c2, c2 -> /c3, c3 -> usr/lib/libfoo.so.1
/// loop1 -> loop2, loop2 -> loop1
/// ```
fn fake_host(h: &Path) {
    dir(&h.join("usr"), 0o755, 0, 0, 1_100_000_000);
    dir(&h.join("usr/lib"), 0o750, 1234, 4321, 1_000_000_000);
    file(
        &h.join("usr/lib/libfoo.so.1"),
        b"foo",
        0o4755,
        1234,
        0,
        1_500_000_000,
    );
    dir(&h.join("usr/share"), 0o755, 0, 0, 1_200_000_000);
    link("../lib/libfoo.so.1", &h.join("usr/share/rel"));
    link("usr/lib", &h.join("lib"));
    std::os::unix::fs::lchown(h.join("lib"), Some(777), Some(778)).expect("lchown");
    link("/usr/lib/libfoo.so.1", &h.join("abs"));
    link("c2", &h.join("c1"));
    link("/c3", &h.join("c2"));
    link("usr/lib/libfoo.so.1", &h.join("c3"));
    link("loop2", &h.join("loop1"));
    link("loop1", &h.join("loop2"));
    // Entries added above changed these; set them last.
    set_mtime(&h.join("usr"), 1_100_000_000, 0);
    set_mtime(&h.join("usr/lib"), 1_000_000_000, 0);
}

struct Fixture {
    _tmp: tempfile::TempDir,
    host: Host,
    root: Root,
    root_path: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = tmp.path().join("host");
    fs::create_dir(&h).expect("mkdir host");
    fake_host(&h);
    let root_path = tmp.path().join("root");
    fs::create_dir(&root_path).expect("mkdir root");
    Fixture {
        host: Host::at(&h),
        root: open_root(&root_path, false),
        root_path,
        _tmp: tmp,
    }
}

fn apply_all(root: &mut Root, host: &Host, steps: &[Step]) -> Vec<Applied> {
    steps
        .iter()
        .map(|s| root.apply(host, s).expect("apply"))
        .collect()
}

fn paths(steps: &[Step]) -> Vec<&Path> {
    steps.iter().map(Step::path).collect()
}

#[test]
fn merged_usr_chain_is_planned_and_mirrored() {
    if !need_root("merged_usr_chain_is_planned_and_mirrored") {
        return;
    }
    let Fixture {
        host,
        mut root,
        root_path,
        _tmp,
    } = fixture();
    let p = Path::new("/lib/libfoo.so.1");
    let plan = plan(&root, &host, p, Follow::Yes).expect("plan");
    assert_eq!(plan.outcome, Outcome::Placed);
    assert_eq!(plan.resolved, Path::new("/usr/lib/libfoo.so.1"));
    assert_eq!(
        paths(&plan.steps),
        ["/lib", "/usr", "/usr/lib", "/usr/lib/libfoo.so.1"].map(Path::new)
    );
    assert!(
        matches!(&plan.steps[0], Step::Symlink { target, .. } if target == Path::new("usr/lib"))
    );
    let applied = apply_all(&mut root, &host, &plan.steps);
    let Applied::File(copied) = &applied[3] else {
        panic!("not a file: {applied:?}")
    };
    assert_eq!(copied.bytes, 3);
    // sha256("foo")
    assert_eq!(
        copied.sha256.wait(),
        "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
    );

    assert_eq!(
        fs::read_link(root_path.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    let l = fs::symlink_metadata(root_path.join("lib")).unwrap();
    assert_eq!((l.uid(), l.gid()), (777, 778));
    let d = fs::metadata(root_path.join("usr/lib")).unwrap();
    assert_eq!(d.mode() & 0o7777, 0o750);
    assert_eq!((d.uid(), d.gid()), (1234, 4321));
    // The mtime survives the file created inside it afterwards.
    assert_eq!((d.mtime(), d.mtime_nsec()), (1_000_000_000, 0));
    assert_eq!(
        fs::metadata(root_path.join("usr")).unwrap().mtime(),
        1_100_000_000
    );
    let f = fs::metadata(root_path.join("usr/lib/libfoo.so.1")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o4755);
    assert_eq!((f.uid(), f.gid()), (1234, 0));
    assert_eq!((f.mtime(), f.mtime_nsec()), (1_500_000_000, 123_456_789));
    assert_eq!(fs::read(root_path.join("lib/libfoo.so.1")).unwrap(), b"foo");

    // Everything is there now: nothing more to do.
    let again = crate::plan(&root, &host, p, Follow::Yes).expect("replan");
    assert_eq!(again.outcome, Outcome::Present);
    assert!(again.steps.is_empty());
}

#[test]
fn absolute_relative_and_chained_links_resolve_in_the_root() {
    let Fixture {
        host,
        mut root,
        root_path,
        _tmp,
    } = fixture();
    for (p, first) in [
        (
            "/abs",
            vec!["/abs", "/usr", "/usr/lib", "/usr/lib/libfoo.so.1"],
        ),
        ("/usr/share/rel", vec!["/usr/share", "/usr/share/rel"]),
        ("/c1", vec!["/c1", "/c2", "/c3"]),
    ] {
        let p = Path::new(p);
        let plan = plan(&root, &host, p, Follow::Yes).expect("plan");
        assert_eq!(plan.outcome, Outcome::Placed, "{p:?}");
        assert_eq!(plan.resolved, Path::new("/usr/lib/libfoo.so.1"), "{p:?}");
        assert_eq!(
            paths(&plan.steps),
            first.iter().map(Path::new).collect::<Vec<_>>()
        );
        apply_all(&mut root, &host, &plan.steps);
        let st = root.stat(p).expect("stat").expect("resolves");
        assert_eq!(st.kind, Kind::File);
        let real = fs::metadata(root_path.join("usr/lib/libfoo.so.1")).unwrap();
        assert_eq!(st.ino, real.ino(), "{p:?} resolves to the copy");
    }
    assert_eq!(
        fs::read_link(root_path.join("usr/share/rel")).unwrap(),
        Path::new("../lib/libfoo.so.1")
    );
    assert_eq!(
        fs::read_link(root_path.join("c2")).unwrap(),
        Path::new("/c3")
    );
}

#[test]
fn follow_no_plans_the_link_only() {
    let Fixture {
        host, root, _tmp, ..
    } = fixture();
    let plan = plan(&root, &host, Path::new("/abs"), Follow::No).expect("plan");
    assert_eq!(plan.outcome, Outcome::Placed);
    assert_eq!(plan.resolved, Path::new("/abs"));
    assert_eq!(paths(&plan.steps), [Path::new("/abs")]);
}

#[test]
fn a_loop_ends_the_walk() {
    let Fixture {
        host, root, _tmp, ..
    } = fixture();
    let plan = plan(&root, &host, Path::new("/loop1/x"), Follow::Yes).expect("plan");
    assert_eq!(plan.outcome, Outcome::Loop);
    // Each link once, however often the walk passed it.
    assert_eq!(paths(&plan.steps), ["/loop1", "/loop2"].map(Path::new));
}

#[test]
fn a_missing_leaf_returns_the_steps_up_to_it() {
    let Fixture {
        host, root, _tmp, ..
    } = fixture();
    let plan = plan(&root, &host, Path::new("/lib/nothing"), Follow::Yes).expect("plan");
    assert_eq!(
        plan.outcome,
        Outcome::AbsentOnHost {
            at: PathBuf::from("/usr/lib/nothing")
        }
    );
    assert_eq!(
        paths(&plan.steps),
        ["/lib", "/usr", "/usr/lib"].map(Path::new)
    );
}

#[test]
fn a_file_in_the_middle_is_not_a_directory() {
    let Fixture {
        host, root, _tmp, ..
    } = fixture();
    let plan = plan(&root, &host, Path::new("/abs/x/y"), Follow::Yes).expect("plan");
    assert_eq!(
        plan.outcome,
        Outcome::NotADirectory {
            at: PathBuf::from("/usr/lib/libfoo.so.1")
        }
    );
}

#[test]
fn dot_dot_never_climbs_above_slash() {
    let Fixture {
        host, root, _tmp, ..
    } = fixture();
    let plan = plan(
        &root,
        &host,
        Path::new("/../../usr/./lib/../lib/libfoo.so.1"),
        Follow::Yes,
    )
    .expect("plan");
    assert_eq!(plan.outcome, Outcome::Placed);
    assert_eq!(plan.resolved, Path::new("/usr/lib/libfoo.so.1"));
    assert_eq!(
        paths(&plan.steps),
        ["/usr", "/usr/lib", "/usr/lib/libfoo.so.1"].map(Path::new)
    );
}

#[test]
fn plan_parent_makes_the_directory_only() {
    let Fixture {
        host,
        mut root,
        root_path,
        _tmp,
    } = fixture();
    let plan = plan_parent(&root, &host, Path::new("/lib/newfile")).expect("plan");
    assert_eq!(plan.outcome, Outcome::Placed);
    assert_eq!(plan.resolved, Path::new("/usr/lib"));
    assert_eq!(
        paths(&plan.steps),
        ["/lib", "/usr", "/usr/lib"].map(Path::new)
    );
    apply_all(&mut root, &host, &plan.steps);
    assert!(fs::metadata(root_path.join("lib")).unwrap().is_dir());

    let bad = plan_parent(&root, &host, Path::new("/abs/newfile")).expect("plan");
    assert_eq!(
        bad.outcome,
        Outcome::NotADirectory {
            at: PathBuf::from("/usr/lib/libfoo.so.1")
        }
    );
    let top = plan_parent(&root, &host, Path::new("/newfile")).expect("plan");
    assert_eq!((top.outcome, top.steps.len()), (Outcome::Present, 0));
}

#[test]
fn what_the_root_has_is_not_planned_again() {
    let Fixture {
        host,
        mut root,
        root_path,
        _tmp,
    } = fixture();
    // The root has its own /usr (different mode); it is kept and not planned.
    fs::create_dir(root_path.join("usr")).unwrap();
    let plan = plan(&root, &host, Path::new("/usr/lib/libfoo.so.1"), Follow::Yes).expect("plan");
    assert_eq!(
        paths(&plan.steps),
        ["/usr/lib", "/usr/lib/libfoo.so.1"].map(Path::new)
    );
    apply_all(&mut root, &host, &plan.steps);
    // Applying a directory step again is fine; a file step again is refused.
    assert_eq!(root.apply(&host, &plan.steps[0]).unwrap(), Applied::Dir);
    assert!(matches!(
        root.apply(&host, &plan.steps[1]),
        Err(crate::Error::Exists {
            kind: Kind::File,
            ..
        })
    ));
}

#[test]
fn fifos_are_special_and_devices_are_planned() {
    if !need_root("fifos_are_special_and_devices_are_planned") {
        return;
    }
    let Fixture {
        host,
        mut root,
        root_path,
        _tmp,
    } = fixture();
    let h = host.base().to_path_buf();
    nix::unistd::mkfifo(
        &h.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let null = fs::metadata("/dev/null").unwrap().rdev();
    let mk = |name: &str, kind| {
        nix::sys::stat::mknod(
            &h.join(name),
            kind,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            null,
        )
    };
    mk("null", nix::sys::stat::SFlag::S_IFCHR).expect("mknod c");
    fs::set_permissions(
        h.join("null"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();

    let fifo = plan(&root, &host, Path::new("/fifo"), Follow::Yes).unwrap();
    assert_eq!(
        fifo.outcome,
        Outcome::Special {
            at: PathBuf::from("/fifo"),
            kind: Kind::Fifo
        }
    );
    assert!(fifo.steps.is_empty());

    let dev = plan(&root, &host, Path::new("/null"), Follow::Yes).unwrap();
    assert!(matches!(&dev.steps[..], [Step::Device { rdev, block: false, .. }] if *rdev == null));
    assert_eq!(root.apply(&host, &dev.steps[0]).unwrap(), Applied::Device);
    let m = fs::symlink_metadata(root_path.join("null")).unwrap();
    assert_eq!((m.rdev(), m.mode() & 0o7777), (null, 0o666));

    // Block devices: planned as such, refused when applied.
    if mk("blk", nix::sys::stat::SFlag::S_IFBLK).is_ok() {
        let blk = plan(&root, &host, Path::new("/blk"), Follow::Yes).unwrap();
        assert!(matches!(&blk.steps[..], [Step::Device { block: true, .. }]));
        assert!(matches!(
            root.apply(&host, &blk.steps[0]),
            Err(crate::Error::BlockDevice { .. })
        ));
        assert!(fs::symlink_metadata(root_path.join("blk")).is_err());
    }
}

#[test]
fn a_plan_asks_the_root_only_what_one_lookup_cannot_tell() {
    let Fixture {
        host,
        root,
        root_path,
        _tmp,
    } = fixture();
    // The root has /usr/share as directories all the way: the prefixes
    // are present without a step.
    fs::create_dir_all(root_path.join("usr/share")).unwrap();
    assert!(root.is_plain_dir(Path::new("/usr/share")));
    let rel = plan(&root, &host, Path::new("/usr/share/rel"), Follow::No).unwrap();
    assert_eq!(paths(&rel.steps), [Path::new("/usr/share/rel")]);

    // A symlink where the host has a directory: no plain directory, and
    // what the root has there is kept (no step for /usr/lib, which the
    // root's link names), as a lookup of each component finds.
    fs::create_dir(root_path.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", root_path.join("usr/lib")).unwrap();
    assert!(!root.is_plain_dir(Path::new("/usr/lib")));
    assert!(!root.is_plain_dir(Path::new("/usr/missing")));
    let via_link = plan(&root, &host, Path::new("/usr/lib/libfoo.so.1"), Follow::Yes).unwrap();
    assert_eq!(paths(&via_link.steps), [Path::new("/usr/lib/libfoo.so.1")]);

    // Below a directory the root lacks, every step is planned.
    let fresh = plan(&root, &host, Path::new("/lib/libfoo.so.1"), Follow::Yes).unwrap();
    assert_eq!(
        paths(&fresh.steps),
        [Path::new("/lib"), Path::new("/usr/lib/libfoo.so.1")]
    );
}

#[test]
fn the_deepest_directory_the_root_has_is_found_from_below() {
    let Fixture {
        host,
        root,
        root_path,
        _tmp,
    } = fixture();
    fs::create_dir(root_path.join("usr")).unwrap();
    let found = |p: &str| root.deepest_plain_dir(Path::new(p));
    let some =
        |dir: &str, missing: Option<&str>| Some((PathBuf::from(dir), missing.map(PathBuf::from)));
    // The root has /usr, not /usr/share: /usr/share is the entry it lacks.
    assert_eq!(found("/usr/share/a/b"), some("/usr", Some("/usr/share")));
    assert_eq!(found("/usr"), some("/usr", None));
    assert_eq!(found("/none/x"), some("/", Some("/none")));
    // A symlink or a file on the way: nothing is told.
    std::os::unix::fs::symlink("usr", root_path.join("lib")).unwrap();
    assert_eq!(found("/lib/x"), None);
    fs::write(root_path.join("usr/f"), b"").unwrap();
    assert_eq!(found("/usr/f/x"), None);
    // Below the entry the root lacks, each step is planned without asking
    // the root, and applying them makes the path resolve.
    let mut root = root;
    let p = plan(&root, &host, Path::new("/usr/share/rel"), Follow::Yes).unwrap();
    assert_eq!(
        paths(&p.steps),
        [
            Path::new("/usr/share"),
            Path::new("/usr/share/rel"),
            Path::new("/usr/lib"),
            Path::new("/usr/lib/libfoo.so.1")
        ]
    );
    apply_all(&mut root, &host, &p.steps);
    assert_eq!(fs::read(root_path.join("usr/share/rel")).unwrap(), b"foo");
}
