//! Bad input and hostile surroundings end in a clear error or a correct
//! jail, never a panic: non-UTF-8 paths, paths near PATH_MAX, a full disk,
//! a read-only root, a corrupt executable.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{chroot_output, run, PROGRAM_TIMEOUT};
use crate::jail::{exit, Jail};
use crate::util::{require_root, BASE_ENV};

#[test]
fn non_utf8_paths_are_copied_and_recorded_byte_for_byte() {
    if !require_root("non_utf8_paths_are_copied_and_recorded_byte_for_byte") {
        return;
    }
    let jail = Jail::new("non-utf8");
    let dir = jail.join("host");
    fs::create_dir(&dir).unwrap();
    // "café" in Latin-1: the lone byte 0xE9 is not UTF-8.
    let name = OsStr::from_bytes(b"caf\xe9.txt");
    let file = dir.join(name);
    fs::write(&file, "latin-1 name\n").unwrap();
    let script = format!("cat \"$(printf '{}/caf\\351.txt')\"", dir.display());
    let argv = ["/bin/sh", "-c", script.as_str()];
    let allow = jail.allow_own_files();
    let out = jail.run(&argv, &[&allow[0], &allow[1]], BASE_ENV);
    out.expect_ok();
    let in_root = jail.root.join(file.strip_prefix("/").unwrap());
    assert_eq!(fs::read(&in_root).unwrap(), b"latin-1 name\n");
    // The manifest keeps the raw bytes ({"bytes": base64}) and reads back.
    let manifest = out.manifest();
    assert!(
        manifest.entry(&file).is_some(),
        "no entry for the non-UTF-8 path"
    );
    let raw = String::from_utf8(out.manifest_bytes.clone().unwrap()).unwrap();
    assert!(
        raw.contains("\"bytes\""),
        "the non-UTF-8 path is not stored as bytes"
    );
    let chrooted = chroot_output(&jail.root, &argv, BASE_ENV);
    chrooted.assert_success();
    assert_eq!(chrooted.stdout_text(), "latin-1 name\n");
}

#[test]
fn a_path_near_path_max_is_copied() {
    if !require_root("a_path_near_path_max_is_copied") {
        return;
    }
    let jail = Jail::new("path-max");
    // 16 components of 240 bytes: about 3.9 KiB, under PATH_MAX (4096).
    let mut deep: PathBuf = jail.join("d");
    for i in 0..16 {
        deep.push(format!("{i:02}{}", "x".repeat(238)));
    }
    fs::create_dir_all(&deep).unwrap();
    let file = deep.join("leaf");
    fs::write(&file, "deep\n").unwrap();
    assert!(file.as_os_str().len() > 3800 && file.as_os_str().len() < 4096);
    let target = file.to_str().unwrap();
    let out = jail.run(&["/bin/cat", target], &[], BASE_ENV);
    out.expect_ok();
    let in_root = jail.root.join(file.strip_prefix("/").unwrap());
    assert_eq!(fs::read(&in_root).unwrap(), b"deep\n");
}

/// Runs `f` with a small file system mounted at `at`, unmounted after.
fn with_tmpfs(at: &Path, options: &str, f: impl FnOnce()) {
    fs::create_dir_all(at).unwrap();
    let mut mount = Command::new("mount");
    mount.args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(at);
    run(mount, PROGRAM_TIMEOUT).assert_success();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let mut umount = Command::new("umount");
    umount.arg(at);
    run(umount, PROGRAM_TIMEOUT).assert_success();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_full_disk_is_a_clear_error_naming_the_path() {
    if !require_root("a_full_disk_is_a_clear_error_naming_the_path") {
        return;
    }
    let jail = Jail::new("full-disk");
    let small = jail.join("small");
    with_tmpfs(&small, "size=512k", || {
        let root = small.join("root");
        let out = jail.run_at(
            &root,
            &jail.manifest,
            &["/usr/bin/python3", "-c", "print(1)"],
            &[],
            BASE_ENV,
        );
        let stderr = out.expect_error(exit::ERROR);
        assert!(stderr.contains("No space left on device"), "{stderr}");
        assert!(
            stderr.contains(&root.display().to_string()),
            "the error does not name the root\n{stderr}"
        );
        assert!(!jail.manifest.exists(), "a failed run wrote a manifest");
    });
}

#[test]
fn a_read_only_root_is_a_clear_error_naming_the_path() {
    if !require_root("a_read_only_root_is_a_clear_error_naming_the_path") {
        return;
    }
    let jail = Jail::new("ro-root");
    let ro = jail.join("ro");
    with_tmpfs(&ro, "ro,size=1m", || {
        let out = jail.run_at(&ro, &jail.manifest, &["/bin/date"], &[], BASE_ENV);
        let stderr = out.expect_error(exit::ERROR);
        assert!(stderr.contains("Read-only file system"), "{stderr}");
        assert!(
            stderr.contains(&ro.display().to_string()),
            "the error does not name the root\n{stderr}"
        );
    });
}

#[test]
fn a_corrupt_executable_does_not_start_and_does_not_panic() {
    if !require_root("a_corrupt_executable_does_not_start_and_does_not_panic") {
        return;
    }
    let jail = Jail::new("corrupt-elf");
    let bad = jail.join("bad");
    // An ELF header cut short: the kernel refuses it (ENOEXEC).
    let mut bytes = fs::read("/bin/true").unwrap();
    bytes.truncate(100);
    fs::write(&bad, &bytes).unwrap();
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o755)).unwrap();
    let out = jail.run(&[bad.to_str().unwrap()], &[], BASE_ENV);
    out.finished.assert_no_panic();
    let code = out.finished.code();
    assert!(
        code == Some(exit::ERROR) || code == Some(exit::NOT_STARTED),
        "{}",
        out.finished.report()
    );
    assert!(
        out.finished.stderr_text().contains("error")
            || out.finished.stderr_text().contains("does not start")
    );
}
