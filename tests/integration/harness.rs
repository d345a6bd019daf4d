//! Tests of the test harness itself, none of which runs jailtrace: the C
//! fixtures build and behave as the acceptance tests assume, the process
//! runner captures output and kills whole process groups at the deadline,
//! `host_output` and `chroot_output` pass exactly the given environment, and
//! [`resolve_in`] never leaves the directory it resolves in.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cmd::{self, assert_same_stdout, chroot_output, host_output};
use crate::fixtures::fixtures;
use crate::resolve::{inside, resolve_in, Resolution};
use crate::util::{self, require_root, BASE_ENV};

/// True when the ELF file has a `PT_INTERP` program header (is dynamically loaded).
fn has_interpreter(path: &Path) -> bool {
    let elf = fs::read(path).expect("the fixture is readable");
    assert_eq!(
        &elf[..5],
        b"\x7fELF\x02",
        "{} is not a 64-bit ELF file",
        path.display()
    );
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(elf[at..at + 4].try_into().expect("4 bytes")) == 3 // PT_INTERP
    })
}

#[test]
fn fixtures_build_and_behave_on_the_host() {
    let Some(fx) = fixtures("fixtures_build_and_behave_on_the_host") else {
        return;
    };
    let path = |p: &PathBuf| p.to_str().expect("UTF-8").to_owned();

    let threads = host_output(&[&path(&fx.threads)], BASE_ENV);
    threads.assert_success();
    let lines: Vec<String> = threads.stdout_text().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 4, "{}", threads.report());
    assert!(
        lines[0].starts_with("thread 0: /etc/services "),
        "{}",
        threads.report()
    );
    assert!(
        lines[3].starts_with("thread 3: /etc/ethertypes "),
        "{}",
        threads.report()
    );
    assert_eq!(
        threads.stdout,
        host_output(&[&path(&fx.threads)], BASE_ENV).stdout,
        "the threads fixture's output must be deterministic"
    );

    let origin = host_output(&[&path(&fx.origin_main)], BASE_ENV);
    origin.assert_success();
    assert_eq!(
        origin.stdout_text(),
        "hello from libgreet via $ORIGIN/../lib\n"
    );
    assert!(has_interpreter(&fx.origin_main));
    // It finds libgreet only through $ORIGIN: a copy elsewhere cannot start.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let copy = elsewhere.path().join("origin-main");
    fs::copy(&fx.origin_main, &copy).expect("copy the fixture");
    let stranded = host_output(&[copy.to_str().expect("UTF-8")], BASE_ENV);
    assert_ne!(stranded.code(), Some(0), "{}", stranded.report());

    let stat = host_output(&[&path(&fx.static_bin), "one", "two words"], BASE_ENV);
    stat.assert_success();
    assert_eq!(
        stat.stdout_text(),
        "arg 1: one\narg 2: two words\nuname: Linux x86_64\n"
    );
    assert!(
        !has_interpreter(&fx.static_bin),
        "the static fixture has an ELF interpreter"
    );
}

#[test]
fn chroot_output_runs_in_a_hand_built_root() {
    if !require_root("chroot_output_runs_in_a_hand_built_root") {
        return;
    }
    let Some(fx) = fixtures("chroot_output_runs_in_a_hand_built_root") else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let exe = inside(root.path(), &fx.static_bin);
    fs::create_dir_all(exe.parent().expect("has a parent")).expect("mkdir -p");
    fs::copy(&fx.static_bin, &exe).expect("copy the static fixture");
    let argv = [fx.static_bin.to_str().expect("UTF-8"), "x"];
    assert_same_stdout(
        &chroot_output(root.path(), &argv, BASE_ENV),
        &host_output(&argv, BASE_ENV),
    );
    // Only the copy is there: /bin/date is not, so chroot cannot run it.
    let date = chroot_output(root.path(), &["/bin/date"], BASE_ENV);
    assert_ne!(date.code(), Some(0), "{}", date.report());
}

#[test]
fn host_output_passes_exactly_the_given_environment() {
    let out = host_output(
        &["/usr/bin/env"],
        &[("PATH", util::PATH), ("TZ", "Asia/Tokyo")],
    );
    out.assert_success();
    assert_eq!(
        out.stdout_text(),
        format!("PATH={}\nTZ=Asia/Tokyo\n", util::PATH)
    );
}

#[test]
fn runner_kills_the_whole_group_at_the_deadline() {
    let seconds = format!("1000.{}", util::unique_digits());
    let argv = ["/bin/sleep", seconds.as_str()];
    let mut sh = Command::new("/bin/sh");
    sh.args([
        "-c",
        &format!("/bin/sleep {seconds} & /bin/sleep {seconds}; echo never"),
    ]);
    let finished = cmd::run(sh, Duration::from_millis(500));
    assert!(finished.timed_out, "{}", finished.report());
    assert!(
        finished.elapsed < Duration::from_secs(10),
        "{}",
        finished.report()
    );
    assert!(finished.stdout.is_empty());
    let left = util::wait_until_gone(&argv, Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "sleeps of the killed group still run: {left:?}"
    );
}

#[test]
fn resolve_in_never_leaves_the_root() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    fs::create_dir_all(r.join("usr/share/zoneinfo/Etc")).expect("mkdir");
    fs::create_dir(r.join("etc")).expect("mkdir");
    fs::write(r.join("usr/share/zoneinfo/Etc/UTC"), "zone").expect("write");
    symlink("usr/share", r.join("share")).expect("symlink");
    symlink("/share/zoneinfo/Etc/UTC", r.join("etc/localtime")).expect("symlink");
    // Present on the host, absent in the root: must not resolve.
    symlink("/etc/services", r.join("etc/services")).expect("symlink");
    symlink("../../../../etc/localtime", r.join("usr/share/up")).expect("symlink");

    assert_eq!(
        resolve_in(r, Path::new("/etc/localtime")).expect("resolves"),
        Resolution {
            links: vec![PathBuf::from("/etc/localtime"), PathBuf::from("/share")],
            target: PathBuf::from("/usr/share/zoneinfo/Etc/UTC"),
        }
    );
    assert!(resolve_in(r, Path::new("/etc/services")).is_err());
    assert!(resolve_in(r, Path::new("/etc/protocols")).is_err());
    // `..` stops at the top of the root, as in a chroot.
    assert_eq!(
        resolve_in(r, Path::new("/usr/share/up"))
            .expect("resolves")
            .target,
        PathBuf::from("/usr/share/zoneinfo/Etc/UTC")
    );
    symlink("loop", r.join("loop")).expect("symlink");
    assert!(resolve_in(r, Path::new("/loop")).is_err());
}
