//! What goes into a jail besides what the program opens: interpreters of
//! scripts it execs, synthesized account databases, stripped setuid bits.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use jailtrace_manifest::Cause;

use crate::cmd::{assert_same_stdout, chroot_output, host_output};
use crate::jail::Jail;
use crate::util::{require_root, BASE_ENV};

#[test]
fn a_script_exec_d_at_run_time_gets_its_env_interpreter() {
    if !require_root("a_script_exec_d_at_run_time_gets_its_env_interpreter") {
        return;
    }
    let jail = Jail::new("env-script");
    let script = jail.join("hello");
    fs::write(&script, "#!/usr/bin/env perl\nprint \"perl says hi\\n\";\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    // The shell execs the script; the kernel needs /usr/bin/env, env then
    // execs perl through PATH: both are found at run time, not by ldd.
    let line = format!("{} && echo done", script.display());
    let argv = ["/bin/sh", "-c", line.as_str()];
    let out = jail.run(&argv, &[], BASE_ENV);
    out.expect_ok();
    let manifest = out.manifest();
    let env = manifest
        .entry(std::path::Path::new("/usr/bin/env"))
        .expect("/usr/bin/env is in the jail");
    assert_eq!(env.reason.cause, Cause::Interpreter);
    assert!(manifest
        .entries
        .iter()
        .any(|e| e.path.as_path().ends_with("perl")
            || e.path.as_path().to_string_lossy().contains("/perl5")));
    assert_same_stdout(
        &chroot_output(&jail.root, &argv, BASE_ENV),
        &host_output(&argv, BASE_ENV),
    );
}

#[test]
fn account_databases_hold_only_what_the_jail_needs() {
    if !require_root("account_databases_hold_only_what_the_jail_needs") {
        return;
    }
    let jail = Jail::new("accounts");
    let argv = ["/bin/bash", "-c", "id; whoami; ls -ln /etc/passwd"];
    let out = jail.run(&argv, &[], BASE_ENV);
    out.expect_ok();
    let passwd = fs::read_to_string(jail.root.join("etc/passwd")).unwrap();
    let group = fs::read_to_string(jail.root.join("etc/group")).unwrap();
    let host_passwd = fs::read_to_string("/etc/passwd").unwrap();
    assert!(
        host_passwd.lines().count() > 5,
        "precondition: the host has several accounts"
    );
    // Only root: every file in this jail belongs to root.
    assert_eq!(passwd, "root:x:0:0::/root:/bin/bash\n");
    assert!(group.lines().all(|l| l.starts_with("root:x:0:")), "{group}");
    for line in passwd.lines().chain(group.lines()) {
        assert_eq!(
            line.split(':').nth(1),
            Some("x"),
            "a password field is not x: {line}"
        );
    }
    let manifest = out.manifest();
    for db in ["/etc/passwd", "/etc/group"] {
        let e = manifest
            .entry(std::path::Path::new(db))
            .unwrap_or_else(|| panic!("no entry for {db}"));
        assert_eq!(e.reason.cause, Cause::Synthesized, "{db}");
    }
    // id and whoami still resolve, from the synthesized files.
    assert_same_stdout(
        &chroot_output(
            &jail.root,
            &argv[..2]
                .iter()
                .copied()
                .chain(["id; whoami"])
                .collect::<Vec<_>>(),
            BASE_ENV,
        ),
        &host_output(&["/bin/bash", "-c", "id; whoami"], BASE_ENV),
    );

    // --passwd copy keeps the old behaviour, with a warning.
    let copy = Jail::new("accounts-copy");
    let out = copy.run(&argv, &["--passwd", "copy"], BASE_ENV);
    out.expect_ok();
    assert!(
        out.finished.stderr_text().contains("--passwd copy"),
        "no warning"
    );
    assert_eq!(
        fs::read_to_string(copy.root.join("etc/passwd")).unwrap(),
        host_passwd
    );
}

#[test]
fn setuid_bits_are_stripped_unless_kept() {
    if !require_root("setuid_bits_are_stripped_unless_kept") {
        return;
    }
    let prog = "/usr/bin/mount";
    let host_mode = fs::metadata(prog).unwrap().permissions().mode();
    if host_mode & 0o4000 == 0 {
        eprintln!("SKIPPED setuid_bits_are_stripped_unless_kept: {prog} is not setuid here");
        return;
    }
    let jail = Jail::new("setuid");
    let out = jail.run(&[prog, "--version"], &[], BASE_ENV);
    out.expect_ok();
    let in_root = fs::metadata(jail.root.join("usr/bin/mount"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        in_root & 0o7777,
        host_mode & 0o1777,
        "setuid kept in the root"
    );
    let manifest = out.manifest();
    let e = manifest
        .entry(std::path::Path::new("/usr/bin/mount"))
        .unwrap();
    assert!(e.setuid_stripped);
    // The summary names it.
    let text = jail.jailtrace(
        &[
            "run",
            "--fresh",
            "--root",
            jail.root.to_str().unwrap(),
            "--manifest",
            jail.manifest.to_str().unwrap(),
            "--",
            prog,
            "--version",
        ],
        BASE_ENV,
    );
    text.assert_success();
    assert!(
        text.stderr_text()
            .contains("setuid:  stripped from /usr/bin/mount"),
        "{}",
        text.report()
    );

    let keep = Jail::new("setuid-keep");
    keep.run(&[prog, "--version"], &["--keep-setuid"], BASE_ENV)
        .expect_ok();
    let kept = fs::metadata(keep.root.join("usr/bin/mount"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(kept & 0o7777, host_mode & 0o7777);
}

#[test]
fn a_pseudo_terminal_gets_ptmx_and_the_hosts_devpts() {
    if !require_root("a_pseudo_terminal_gets_ptmx_and_the_hosts_devpts") {
        return;
    }
    let jail = Jail::new("pty");
    let argv = [
        "/usr/bin/python3",
        "-c",
        "import os; m, s = os.openpty(); print(os.ttyname(s).startswith('/dev/pts/'))",
    ];
    let out = jail.run(&argv, &[], BASE_ENV);
    out.expect_ok();
    let manifest = out.manifest();
    let ptmx = manifest
        .entry(std::path::Path::new("/dev/ptmx"))
        .expect("/dev/ptmx is in the jail");
    assert_eq!(ptmx.kind, jailtrace_manifest::EntryKind::Device);
    assert!(
        manifest
            .mounts
            .iter()
            .any(|m| m.fstype == "devpts" && m.path.as_path() == std::path::Path::new("/dev/pts")),
        "the manifest does not record /dev/pts: {:?}",
        manifest.mounts
    );
    let chrooted = crate::cmd::chroot_output_with_mounts(&jail.root, &manifest, &argv, BASE_ENV);
    chrooted.assert_success();
    assert_eq!(chrooted.stdout_text(), "True\n");
}

#[test]
fn the_program_has_its_own_pid_namespace_and_proc() {
    if !require_root("the_program_has_its_own_pid_namespace_and_proc") {
        return;
    }
    // $$ is the shell's pid as the shell sees it; /proc lists what it can see.
    let script = "echo pid=$$; ls /proc | grep -c '^[0-9]'";
    let argv = ["/bin/sh", "-c", script];
    let jail = Jail::new("pidns");
    let out = jail.run(&argv, &[], BASE_ENV);
    out.expect_ok();
    let seen = out.finished.stderr_text();
    // The namespace's init is pid 1, the program pid 2; /proc shows only
    // the init, the shell, ls and grep (the last two may already be gone).
    assert!(seen.contains("pid=2\n"), "{}", out.finished.report());
    let count: usize = seen
        .lines()
        .find_map(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no count in {seen}"));
    assert!(
        count <= 5,
        "the jail's /proc shows {count} processes\n{}",
        out.finished.report()
    );
    let manifest = out.manifest();
    assert!(manifest.mounts.iter().any(|m| m.fstype == "proc"));

    // --no-pid-ns: the host's namespace, with all its processes.
    let host = Jail::new("no-pidns");
    let out = host.run(&argv, &["--no-pid-ns"], BASE_ENV);
    out.expect_ok();
    let seen = out.finished.stderr_text();
    assert!(!seen.contains("pid=2\n"), "{}", out.finished.report());
    let count: usize = seen.lines().find_map(|l| l.parse().ok()).unwrap_or(0);
    assert!(count > 5, "the host's /proc shows only {count} processes");
}
