//! `jailtrace doctor` on jails that `jailtrace run` built and a test then
//! broke in one way: each diagnosis is named with what its fix needs, the
//! exit status mirrors the program's, and doctor never changes the root
//! (a snapshot of every entry's kind, mode, owner, size, mtime, link target
//! and content is the same before and after, and nothing is left mounted).

use std::collections::BTreeMap;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cmd::{self, Finished, PROGRAM_TIMEOUT};
use crate::fixtures::{self, BuildError};
use crate::jail::{exit, Jail};
use crate::net::free_port;
use crate::util::{mounts_under, require_root, BASE_ENV};

/// One entry of a root as `ls -l` and `sha256sum` would see it.
type Snapshot = BTreeMap<PathBuf, String>;

/// Every entry below `root` (not following symlinks, not descending into
/// other file systems).
fn snapshot(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let dev = fs::symlink_metadata(root).expect("the root exists").dev();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for item in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = item.expect("a directory entry").path();
            let m = fs::symlink_metadata(&path).expect("an entry just listed");
            let ft = m.file_type();
            let extra = if ft.is_symlink() {
                format!("-> {:?}", fs::read_link(&path).expect("a symlink"))
            } else if ft.is_file() {
                let bytes = fs::read(&path).expect("a readable file");
                format!("sha256 {:x}", Sha256::digest(&bytes))
            } else {
                format!("rdev {}", m.rdev())
            };
            out.insert(
                path.strip_prefix(root)
                    .expect("below the root")
                    .to_path_buf(),
                format!(
                    "{:o} {}:{} size {} mtime {}.{} {extra}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    m.len(),
                    m.mtime(),
                    m.mtime_nsec()
                ),
            );
            if ft.is_dir() && m.dev() == dev {
                todo.push(path);
            }
        }
    }
    out
}

/// `jailtrace doctor --root ROOT EXTRA -- ARGV` (with `--json` when
/// `json`), checking that it did not panic, changed nothing in the root
/// and left nothing mounted.
fn doctor(jail: &Jail, json: bool, extra: &[&str], argv: &[&str]) -> Finished {
    let root = jail.root.to_str().expect("test paths are UTF-8");
    let mut args = vec!["doctor", "--root", root];
    if json {
        args.push("--json");
    }
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(argv);
    let before = snapshot(&jail.root);
    let out = jail.jailtrace(&args, BASE_ENV);
    out.assert_no_panic();
    let after = snapshot(&jail.root);
    if before != after {
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| (k, before.get(k), after.get(k)))
            .collect();
        panic!("doctor changed the root: {changed:#?}\n{}", out.report());
    }
    assert_eq!(
        mounts_under(&jail.path),
        Vec::<std::ffi::OsString>::new(),
        "doctor left something mounted\n{}",
        out.report()
    );
    out
}

/// The `--json` report of `doctor`.
fn report(out: &Finished) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json must print one JSON object: {e}\n{}",
            out.report()
        )
    })
}

/// The diagnoses of `kind` in a `--json` report.
fn diagnoses<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["diagnoses"]
        .as_array()
        .expect("diagnoses is an array")
        .iter()
        .filter(|d| d["kind"] == kind)
        .collect()
}

/// Jails `argv` with `extra` run options, and checks that doctor finds
/// the intact jail fine: exit 0, started, no failures.
fn jail_intact(name: &str, argv: &[&str], extra: &[&str], doctor_extra: &[&str]) -> Jail {
    let jail = Jail::new(name);
    jail.run(argv, extra, BASE_ENV).expect_ok();
    let out = doctor(&jail, true, doctor_extra, argv);
    out.assert_code(exit::OK);
    let r = report(&out);
    assert_eq!(r["started"], true, "{}", out.report());
    assert_eq!(r["failures"], Value::Array(vec![]), "{}", out.report());
    jail
}

/// `ROOT/rel` removed (a file, symlink or device).
fn remove(jail: &Jail, rel: &str) {
    let path = jail.root.join(rel.trim_start_matches('/'));
    fs::remove_file(&path).unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
}

#[test]
fn doctor_names_a_missing_library_and_what_run_would_copy() {
    if !require_root("doctor_names_a_missing_library_and_what_run_would_copy") {
        return;
    }
    let argv = ["/bin/date", "-u", "-d", "@0"];
    let jail = jail_intact("doctor-libc", &argv, &[], &[]);
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let host_size = fs::metadata(libc).expect("the host has libc").len();
    remove(&jail, libc);

    let out = doctor(&jail, true, &[], &argv);
    // ld.so's own status when a library is missing.
    out.assert_code(127);
    let r = report(&out);
    assert_eq!(r["started"], false);
    assert_eq!(r["exit_code"], 127);
    let failures = r["failures"].as_array().expect("failures");
    let f = failures
        .iter()
        .find(|f| f["resolved"] == libc)
        .unwrap_or_else(|| panic!("libc is not among the failures\n{}", out.report()));
    assert_eq!(f["kind"], "missing");
    assert!(
        f["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/libc.so.6")),
        "{f}"
    );
    assert_eq!(f["exe"], "/usr/bin/date", "{f}");
    assert!(f["pid"].as_i64().is_some_and(|p| p > 0), "{f}");
    assert!(
        matches!(f["syscall"].as_str(), Some("openat" | "open")),
        "{f}"
    );
    assert_eq!(f["host"]["kind"], "file", "{f}");
    assert_eq!(f["host"]["size"], host_size, "{f}");
    let steps = f["would_copy"].as_array().expect("would_copy");
    assert!(
        steps
            .iter()
            .any(|s| s["op"] == "copy" && s["path"] == libc && s["size"] == host_size),
        "{f}"
    );

    // The text report says the same in words, and the manifest knows it.
    let m = jail.manifest.to_str().expect("test paths are UTF-8");
    let text = doctor(&jail, false, &["--manifest", m], &argv);
    text.assert_code(127);
    let stderr = text.stderr_text();
    for want in [
        "does not start in".to_string(),
        "missing from the jail (".to_string(),
        format!("(-> {libc})"),
        "wanted by /usr/bin/date (pid ".to_string(),
        format!("on the host: regular file, {host_size} bytes"),
        format!("`jailtrace run` would: copy {libc} ({host_size} bytes"),
        format!("the manifest lists {libc} (cause "),
    ] {
        assert!(
            stderr.contains(&want),
            "{want:?} missing\n{}",
            text.report()
        );
    }
}

#[test]
fn doctor_says_run_writes_the_jails_passwd_rather_than_copying_it() {
    if !require_root("doctor_says_run_writes_the_jails_passwd_rather_than_copying_it") {
        return;
    }
    // id looks its user up in /etc/passwd.
    let argv = ["/usr/bin/id"];
    let jail = jail_intact("doctor-passwd", &argv, &[], &[]);
    remove(&jail, "/etc/passwd");

    let m = jail.manifest.to_str().expect("test paths are UTF-8");
    let words = doctor(&jail, false, &["--manifest", m], &argv);
    let stderr = words.stderr_text();
    assert!(
        stderr.contains(
            "`jailtrace run` would: write /etc/passwd itself with only the accounts the jail needs"
        ),
        "{}",
        words.report()
    );
    assert!(
        !stderr.contains("would: copy /etc/passwd"),
        "run never copies the host's /etc/passwd\n{}",
        words.report()
    );

    let out = doctor(&jail, true, &[], &argv);
    let r = report(&out);
    let f = r["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .find(|f| f["resolved"] == "/etc/passwd")
        .unwrap_or_else(|| panic!("/etc/passwd is not among the failures\n{}", out.report()));
    assert_eq!(
        f["would_copy"],
        serde_json::json!([{"op": "synthesize", "path": "/etc/passwd"}]),
        "{f}"
    );

    // A jail made with --passwd copy gets the host's file again.
    let copied = jail_intact("doctor-passwd-copy", &argv, &["--passwd", "copy"], &[]);
    remove(&copied, "/etc/passwd");
    let m = copied.manifest.to_str().expect("test paths are UTF-8");
    let words = doctor(&copied, false, &["--manifest", m], &argv);
    assert!(
        words
            .stderr_text()
            .contains("`jailtrace run` would: copy /etc/passwd ("),
        "{}",
        words.report()
    );
}

#[test]
fn doctor_explains_a_missing_elf_interpreter() {
    if !require_root("doctor_explains_a_missing_elf_interpreter") {
        return;
    }
    let argv = ["/bin/date", "-u", "-d", "@0"];
    let jail = jail_intact("doctor-interp", &argv, &[], &[]);
    let interp = match jailtrace_elf::interpreter(Path::new("/usr/bin/date")) {
        Ok(Some(jailtrace_elf::Interpreter::Elf { path })) => path,
        other => panic!("/usr/bin/date has no ELF interpreter: {other:?}"),
    };
    // The loader file itself, wherever the host's symlinks lead.
    let real = fs::canonicalize(&interp).expect("the host has the loader");
    remove(&jail, real.to_str().expect("UTF-8"));

    let out = doctor(&jail, true, &[], &argv);
    out.assert_code(127);
    let r = report(&out);
    let found = diagnoses(&r, "missing_interpreter");
    let d = found
        .first()
        .unwrap_or_else(|| panic!("no missing_interpreter diagnosis\n{}", out.report()));
    assert_eq!(d["file"], "/bin/date", "{d}");
    assert_eq!(d["interpreter"], interp.to_str().expect("UTF-8"), "{d}");
    assert_eq!(d["script"], false, "{d}");
    let expected = format!(
        "/bin/date exists but its ELF interpreter {} is missing from the jail, so execve fails with ENOENT",
        interp.display()
    );
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&expected)),
        "{d}"
    );
    // The loader is also listed as a failure, wanted by the execve.
    assert!(
        r["failures"]
            .as_array()
            .expect("failures")
            .iter()
            .any(|f| f["resolved"] == real.to_str().expect("UTF-8") && f["syscall"] == "execve"),
        "{}",
        out.report()
    );
}

#[test]
fn doctor_names_an_account_the_jails_passwd_lacks() {
    if !require_root("doctor_names_an_account_the_jails_passwd_lacks") {
        return;
    }
    let Some(user) = nix::unistd::User::from_name("www-data").expect("reading /etc/passwd") else {
        crate::util::skip(
            "doctor_names_an_account_the_jails_passwd_lacks",
            "the host has no www-data user",
        );
        return;
    };
    let argv = ["/usr/bin/id", "www-data"];
    let jail = jail_intact("doctor-account", &argv, &["--keep-user", "www-data"], &[]);
    let passwd = jail.root.join("etc/passwd");
    let text = fs::read_to_string(&passwd).expect("the jail has /etc/passwd");
    assert!(text.contains("www-data:"), "{text}");
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with("www-data:"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&passwd, kept).expect("rewrite the jail's passwd");

    let out = doctor(&jail, true, &[], &argv);
    // id's status for an unknown user.
    out.assert_code(1);
    let r = report(&out);
    let found = diagnoses(&r, "missing_account");
    let d = found
        .iter()
        .find(|d| d["name"] == "www-data" && d["account"] == "user")
        .unwrap_or_else(|| panic!("no missing_account for www-data\n{}", out.report()));
    let uid = user.uid.as_raw();
    assert_eq!(d["host_id"], uid, "{d}");
    let message = d["message"].as_str().expect("a message");
    assert!(
        message.contains(&format!("uid {uid} on the host")),
        "{message}"
    );
    assert!(message.contains("--keep-user www-data"), "{message}");
    assert!(
        message.contains(&format!("www-data:x:{uid}:")),
        "the line to add: {message}"
    );
}

#[test]
fn doctor_explains_a_file_the_programs_user_may_not_read() {
    if !require_root("doctor_explains_a_file_the_programs_user_may_not_read") {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("reading /etc/passwd")
        .expect("the host has nobody");
    let argv = ["/bin/sh", "-c", "cat /etc/hostname"];
    let user = ["--user", "nobody"];
    let jail = jail_intact("doctor-perm", &argv, &user, &user);
    let file = jail.root.join("etc/hostname");
    let host = fs::metadata("/etc/hostname").expect("the host has /etc/hostname");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
    let jailed = fs::metadata(&file).expect("the jail has it");

    let out = doctor(&jail, true, &user, &argv);
    // cat's status when it cannot open its file.
    out.assert_code(1);
    let r = report(&out);
    let found = diagnoses(&r, "permission_denied");
    let d = found
        .iter()
        .find(|d| d["path"] == "/etc/hostname")
        .unwrap_or_else(|| panic!("no permission diagnosis\n{}", out.report()));
    assert_eq!(d["errno"], "EACCES", "{d}");
    assert_eq!(d["blocked_at"], "/etc/hostname", "{d}");
    assert_eq!(d["uid"], nobody.uid.as_raw(), "{d}");
    assert_eq!(d["jail"]["mode"], "0600", "{d}");
    assert_eq!(d["jail"]["uid"], jailed.uid(), "{d}");
    assert_eq!(
        d["host"]["mode"],
        format!("{:04o}", host.mode() & 0o7777),
        "{d}"
    );
    let message = d["message"].as_str().expect("a message");
    let want = format!(
        "owned by {}:{} mode 0600 in the jail, {}:{} {:04o} on the host",
        jailed.uid(),
        jailed.gid(),
        host.uid(),
        host.gid(),
        host.mode() & 0o7777
    );
    assert!(message.contains(&want), "{want:?} not in {message}");
    assert!(
        message.contains(&format!("running as uid {}", nobody.uid)),
        "{message}"
    );
}

/// `mount -t proc proc DIR`, taken down on drop.
struct ProcMount(PathBuf);

impl ProcMount {
    fn new(dir: &Path) -> Self {
        let mut cmd = Command::new("mount");
        cmd.args(["-t", "proc", "proc"]).arg(dir);
        cmd::run(cmd, PROGRAM_TIMEOUT).assert_success();
        ProcMount(dir.to_path_buf())
    }
}

impl Drop for ProcMount {
    fn drop(&mut self) {
        let mut cmd = Command::new("umount");
        cmd.arg(&self.0);
        cmd::run(cmd, PROGRAM_TIMEOUT).assert_success();
    }
}

#[test]
fn doctor_explains_a_missing_proc_and_dev_null() {
    if !require_root("doctor_explains_a_missing_proc_and_dev_null") {
        return;
    }
    // /proc: the jail works once /proc is mounted as run's summary says.
    let argv = ["/bin/ls", "/proc/self/fd"];
    let jail = Jail::new("doctor-proc");
    jail.run(&argv, &[], BASE_ENV).expect_ok();
    {
        let mounted = ProcMount::new(&jail.root.join("proc"));
        let root = jail.root.to_str().expect("UTF-8");
        let out = jail.jailtrace(
            &["doctor", "--root", root, "--json", "--", argv[0], argv[1]],
            BASE_ENV,
        );
        out.assert_no_panic().assert_code(exit::OK);
        assert_eq!(
            report(&out)["failures"],
            Value::Array(vec![]),
            "{}",
            out.report()
        );
        drop(mounted);
    }
    let out = doctor(&jail, true, &[], &argv);
    // ls's status when it cannot access its argument.
    out.assert_code(2);
    let r = report(&out);
    let d = diagnoses(&r, "not_mounted")
        .into_iter()
        .find(|d| d["mount"] == "/proc")
        .unwrap_or_else(|| panic!("no not_mounted /proc\n{}", out.report()));
    let command = format!("mount -t proc proc {}/proc", jail.root.display());
    assert!(
        d["message"].as_str().is_some_and(|m| m.contains(&command)),
        "{command:?} not in {d}"
    );
    assert!(!jail.root.join("proc/self").exists(), "nothing is mounted");

    // /dev/null, read by the shell.
    let argv = ["/bin/sh", "-c", "exec </dev/null; echo ok"];
    let jail = jail_intact("doctor-null", &argv, &[], &[]);
    remove(&jail, "/dev/null");
    let out = doctor(&jail, true, &[], &argv);
    // dash's status for a redirection that fails.
    out.assert_code(2);
    let r = report(&out);
    let f = r["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .find(|f| f["path"] == "/dev/null")
        .unwrap_or_else(|| panic!("/dev/null is not a failure\n{}", out.report()))
        .clone();
    assert_eq!(f["host"]["kind"], "char_device", "{f}");
    assert!(
        f["would_copy"]
            .as_array()
            .expect("steps")
            .iter()
            .any(|s| s["op"] == "mknod" && s["major"] == 1 && s["minor"] == 3),
        "{f}"
    );
    let d = diagnoses(&r, "missing_device");
    let command = format!("mknod -m 666 {}/dev/null c 1 3", jail.root.display());
    assert!(
        d.iter()
            .any(|d| d["message"].as_str().is_some_and(|m| m.contains(&command))),
        "{command:?} not in {d:?}\n{}",
        out.report()
    );
}

/// `bind PORT` (fixtures/doctor/bind.c), compiled once.
fn bind_fixture(test: &str) -> Option<&'static String> {
    static BUILT: OnceLock<Result<String, BuildError>> = OnceLock::new();
    fixtures::built(&BUILT, build_bind, test)
}

fn build_bind() -> Result<String, BuildError> {
    fixtures::Compiler::new("doctor")?.compile("bind", "bind.c", &[])
}

#[test]
fn doctor_names_a_port_in_use() {
    const NAME: &str = "doctor_names_a_port_in_use";
    if !require_root(NAME) {
        return;
    }
    let Some(bind) = bind_fixture(NAME) else {
        return;
    };
    let port = free_port().to_string();
    let argv = [bind.as_str(), port.as_str()];
    let jail = jail_intact("doctor-port", &argv, &[], &[]);
    let held = TcpListener::bind((Ipv4Addr::LOCALHOST, port.parse::<u16>().expect("a port")))
        .expect("bind the port the test holds");
    let out = doctor(&jail, true, &[], &argv);
    // The fixture's status when bind fails.
    out.assert_code(1);
    let r = report(&out);
    let address = format!("127.0.0.1:{port}");
    let d = diagnoses(&r, "port_in_use");
    assert!(
        d.iter().any(|d| d["address"] == address.as_str()
            && d["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("{address} is already in use")))),
        "{}",
        out.report()
    );
    drop(held);
}

#[test]
fn doctor_mirrors_the_programs_exit_and_fails_on_bad_input() {
    if !require_root("doctor_mirrors_the_programs_exit_and_fails_on_bad_input") {
        return;
    }
    let jail = jail_intact("doctor-exit", &["/bin/sh", "-c", "exit 0"], &[], &[]);
    let code = |extra: &[&str], script: &str| {
        let out = doctor(&jail, true, extra, &["/bin/sh", "-c", script]);
        let r = report(&out);
        assert_eq!(r["exit_code"], out.code().unwrap_or(-1), "{}", out.report());
        (out.code(), r)
    };
    assert_eq!(code(&[], "exit 7").0, Some(7));
    // 128 + SIGTERM.
    assert_eq!(code(&[], "kill -TERM $$").0, Some(143));
    // Killed at --timeout, or exited 0 without becoming ready: 3.
    let (c, r) = code(&["--timeout", "1s"], "while :; do :; done");
    assert_eq!(c, Some(exit::NOT_STARTED));
    assert!(r["status"]["killed"]["reason"].is_string(), "{r}");
    let (c, r) = code(&["--ready", "log:never printed"], "echo hello");
    assert_eq!(c, Some(exit::NOT_STARTED));
    assert_eq!(r["started"], false);

    // jailtrace's own errors: a root that does not exist, a program that
    // neither the jail nor the host has.
    let missing = jail.join("no-such-root");
    let out = jail.jailtrace(
        &[
            "doctor",
            "--root",
            missing.to_str().expect("UTF-8"),
            "--",
            "/bin/true",
        ],
        BASE_ENV,
    );
    out.assert_no_panic().assert_code(exit::ERROR);
    let root = jail.root.to_str().expect("UTF-8");
    let out = jail.jailtrace(
        &["doctor", "--root", root, "--", "/no/such/program"],
        BASE_ENV,
    );
    out.assert_no_panic().assert_code(exit::ERROR);
    assert!(
        out.stderr_text()
            .contains("error: /no/such/program: no such file"),
        "{}",
        out.report()
    );
}
