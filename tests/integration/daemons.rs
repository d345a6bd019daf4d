//! Daemons as Debian runs them (issue 11, item 5): a program that chroots
//! itself, one that signals its own process group, one that logs to
//! `/dev/log` by datagram, one that drops its privileges with threads
//! alive, and the terminal during a run; with the C
//! fixtures of `fixtures/daemons/` and with Debian's haproxy (its own
//! `chroot /var/lib/haproxy`, syslog by `sendmsg`) and Apache with the
//! prefork MPM and mod_php (`killpg(getpgrp(), SIGTERM)` when it stops).
//!
//! Guarantees: every jail is checked the way a user would, by running the
//! program again under a plain `chroot(8)` into the root and comparing its
//! output with the host's (a server: fetching its page). A test whose
//! failure would kill its caller (a program signalling jailtrace's group)
//! starts jailtrace from an `sh -c` wrapper in the same process group and
//! asserts the wrapper lives on. The fixtures are compiled once per run
//! of the test binary into `target/tmp/jailtrace-fixtures/daemons/`, as
//! [`crate::fixtures`] builds its own; the server tests follow
//! [`crate::servers`]' conventions (a free port, a [`ServerGuard`]).
//!
//! [`ServerGuard`]: crate::net::ServerGuard

use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use jailtrace_manifest::{EntryKind, Manifest, SocketFamily, SocketOp};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Gid, Pid, Uid};
use serde_json::Value;

use crate::cmd::{self, assert_same_stdout, chroot_output, host_output, Finished};
use crate::fixtures::{self, BuildError};
use crate::jail::{exit, Jail, Outcome, JAILTRACE_TIMEOUT};
use crate::net::{
    free_port, http_get_retry, require_server, run_chroot, sigterm, spawn_chroot, HostDir,
    REQUIRE_SERVERS_VAR, SERVE_WITHIN, STOP_WITHIN,
};
use crate::servers::{
    assert_listens, expect_ready, prepare_apache_host, Site, APACHE, APACHE_ENV, ENVVARS,
};
use crate::util::{self, require_root, BASE_ENV};

const HAPROXY: &str = "/usr/sbin/haproxy";
const PYTHON: &str = "/usr/bin/python3";
const HAPROXY_CFG: &str = "/etc/haproxy/haproxy.cfg";

// ---------------------------------------------------------------------------
// The fixtures

/// The compiled fixtures, canonical host paths (UTF-8: passed as argv).
#[derive(Debug)]
struct Daemons {
    /// `chroot-cat DIR FILE`: chroots into DIR, prints FILE from there.
    chroot_cat: String,
    /// `kill-group`: `kill(0, SIGTERM)`, waits for its own copy, exits 0.
    kill_group: String,
    /// `syslog-send syslog|sendto|sendmsg`: one line to `/dev/log`, then
    /// 1000 `send`s on a connected socketpair; prints `sent MODE`.
    syslog_send: String,
    /// `tty-pgrp LABEL`: whether it leads its group and has the terminal.
    tty_pgrp: String,
    /// `drop-privs FILE`: becomes nobody with a second thread alive (glibc
    /// signals it SIGSETXID, a real-time signal), then that thread reads
    /// FILE's first line; prints both uids and the line.
    drop_privs: String,
}

fn daemons(test: &str) -> Option<&'static Daemons> {
    static BUILT: OnceLock<Result<Daemons, BuildError>> = OnceLock::new();
    fixtures::built(&BUILT, build, test)
}

fn build() -> Result<Daemons, BuildError> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/daemons");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jailtrace-fixtures/daemons");
    fs::create_dir_all(&out)
        .map_err(|e| BuildError::Failed(format!("cannot create {}: {e}", out.display())))?;
    let out = fs::canonicalize(&out)
        .map_err(|e| BuildError::Failed(format!("cannot resolve {}: {e}", out.display())))?;
    // Built in a private staging dir and renamed into place, so a
    // concurrent run never executes a half-written file.
    let stage = tempfile::Builder::new()
        .prefix(".stage-")
        .tempdir_in(&out)
        .map_err(|e| BuildError::Failed(format!("cannot create a staging dir: {e}")))?;
    let compile = |name: &str, source: &str| -> Result<String, BuildError> {
        let staged = stage.path().join(name);
        fixtures::gcc(&[
            "-pthread".into(),
            "-o".into(),
            staged.clone().into(),
            src.join(source).into(),
        ])?;
        let placed = out.join(name);
        fs::rename(&staged, &placed).map_err(|e| {
            BuildError::Failed(format!("cannot move {name} to {}: {e}", placed.display()))
        })?;
        placed
            .into_os_string()
            .into_string()
            .map_err(|p| BuildError::Failed(format!("fixture path {p:?} is not UTF-8")))
    };
    Ok(Daemons {
        chroot_cat: compile("chroot-cat", "chroot_cat.c")?,
        kill_group: compile("kill-group", "kill_group.c")?,
        syslog_send: compile("syslog-send", "syslog_send.c")?,
        tty_pgrp: compile("tty-pgrp", "tty_pgrp.c")?,
        drop_privs: compile("drop-privs", "drop_privs.c")?,
    })
}

// ---------------------------------------------------------------------------
// Helpers

/// The `--json` summary on stdout, as JSON (for fields the typed
/// [`crate::jail::Summary`] leaves out).
fn summary_json(finished: &Finished) -> Value {
    serde_json::from_slice(&finished.stdout)
        .unwrap_or_else(|e| panic!("the --json summary is not JSON: {e}\n{}", finished.report()))
}

/// Makes `/var/lib/jailtrace-it-UNIQUE` on the host, the directory the
/// program chroots into, as a service's chroot directory would be (owner
/// daemon:daemon, uid and gid 1 on Debian, mode 0750), with an
/// `etc/hostname` unlike the host's: a jail that took the chrooted
/// program's `/etc/hostname` for the host's would print that. Removed on
/// drop.
fn nested_root() -> (HostDir, String) {
    let path = PathBuf::from(format!("/var/lib/jailtrace-it-{}", util::unique()));
    let dir = HostDir::create(&path, 0o750, Uid::from_raw(1), Gid::from_raw(1));
    fs::create_dir(path.join("etc")).expect("mkdir NESTED/etc");
    let text = format!("nested root {}\n", util::unique());
    fs::write(path.join("etc/hostname"), &text).expect("write NESTED/etc/hostname");
    (dir, text)
}

/// `sh -c 'jailtrace run --root T/root --manifest T/m.json --json EXTRA --
/// ARGV >T/summary.json; echo "jailtrace exited $?"; echo wrapper lives on'`,
/// in a process group of its own that jailtrace shares, as a shell script
/// calling jailtrace would be. Returns the wrapper's output and the summary.
fn run_from_wrapper(jail: &Jail, argv: &[&str], extra: &[&str]) -> (Finished, String) {
    let summary = jail.join("summary.json");
    let mut args: Vec<&str> = vec![
        "-c",
        r#"out="$1"; shift; "$@" >"$out"; echo "jailtrace exited $?"; echo wrapper lives on"#,
        "sh",
    ];
    let summary_arg = summary.to_str().expect("test paths are UTF-8");
    let root = jail.root.to_str().expect("test paths are UTF-8");
    let manifest = jail.manifest.to_str().expect("test paths are UTF-8");
    args.extend([summary_arg, env!("CARGO_BIN_EXE_jailtrace"), "run"]);
    args.extend(["--root", root, "--manifest", manifest, "--json"]);
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(argv);
    let mut wrapper = Command::new("/bin/sh");
    wrapper
        .args(&args)
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .current_dir(&jail.path);
    let finished = cmd::run(wrapper, JAILTRACE_TIMEOUT);
    let json = fs::read_to_string(&summary).unwrap_or_default();
    (finished, json)
}

/// Asserts the wrapper of [`run_from_wrapper`] lived on and saw jailtrace
/// exit 0 with a manifest; returns the manifest.
fn expect_wrapper_ok(jail: &Jail, wrapper: &Finished, summary: &str) -> Manifest {
    let report = format!("{}\nsummary: {summary}", wrapper.report());
    assert!(
        wrapper.status.success() && wrapper.stdout_text().contains("wrapper lives on\n"),
        "the shell that started jailtrace did not live on\n{report}"
    );
    assert!(
        wrapper.stdout_text().contains("jailtrace exited 0\n"),
        "jailtrace did not exit 0\n{report}"
    );
    let summary: Value = serde_json::from_str(summary)
        .unwrap_or_else(|e| panic!("the --json summary is not JSON: {e}\n{report}"));
    assert_eq!(summary["ok"], true, "{report}");
    let bytes = fs::read(&jail.manifest)
        .unwrap_or_else(|e| panic!("no manifest {}: {e}\n{report}", jail.manifest.display()));
    Manifest::from_slice(&bytes).unwrap_or_else(|e| panic!("the manifest does not parse: {e}"))
}

// ---------------------------------------------------------------------------
// A threaded program that drops its privileges

#[test]
fn a_threaded_program_that_drops_its_privileges_is_jailed() {
    const NAME: &str = "a_threaded_program_that_drops_its_privileges_is_jailed";
    if !require_root(NAME) {
        return;
    }
    let Some(fx) = daemons(NAME) else { return };
    // Each thread gets glibc's SIGSETXID (33), a real-time signal: the
    // run ended with `waitpid: EINVAL` before the tracer passed such
    // signals on by number.
    let jail = Jail::new("drop-privs");
    let argv = [fx.drop_privs.as_str(), "/etc/hostname"];
    let outcome = jail.run(&argv, &[], BASE_ENV);
    outcome.expect_ok();
    let host = host_output(&argv, BASE_ENV);
    assert!(
        host.stdout_text()
            .starts_with("main uid 65534, thread uid 65534: "),
        "{}",
        host.report()
    );
    assert_same_stdout(&chroot_output(&jail.root, &argv, BASE_ENV), &host);
}

// ---------------------------------------------------------------------------
// A program that chroots itself

#[test]
fn a_program_that_chroots_itself_is_jailed_with_its_new_root() {
    const NAME: &str = "a_program_that_chroots_itself_is_jailed_with_its_new_root";
    if !require_root(NAME) {
        return;
    }
    let Some(fx) = daemons(NAME) else { return };
    let jail = Jail::new("chroot-self");
    let (nested, text) = nested_root();
    let nested = nested.path();
    let dir = nested.to_str().expect("test paths are UTF-8");
    let argv = [fx.chroot_cat.as_str(), dir, "/etc/hostname"];
    let outcome = jail.run(&argv, &[], BASE_ENV);
    outcome.expect_ok();
    let manifest = outcome.manifest();
    let report = outcome.finished.report();

    // The chroot target: a directory with the host's owner and mode,
    // placed at the entry of the program's chroot.
    let entry = manifest
        .entry(nested)
        .unwrap_or_else(|| panic!("the manifest does not list {dir}\n{report}"));
    assert_eq!(entry.kind, EntryKind::Dir, "{dir}\n{report}");
    assert_eq!(entry.reason.syscall.as_deref(), Some("chroot"), "{dir}");
    let in_root = fs::symlink_metadata(jail.root.join(dir.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("ROOT{dir}: {e}\n{report}"));
    assert_eq!(
        (in_root.mode() & 0o7777, in_root.uid(), in_root.gid()),
        (0o750, 1, 1),
        "ROOT{dir}: mode and owner must be the host's"
    );
    // Its /etc/hostname is the nested one, not the host's.
    let nested_file = nested.join("etc/hostname");
    assert!(
        manifest.entry(&nested_file).is_some(),
        "the manifest does not list {}\n{report}",
        nested_file.display()
    );
    assert!(
        manifest.entry(Path::new("/etc/hostname")).is_none(),
        "the host's /etc/hostname was copied for the chrooted program's /etc/hostname\n{report}"
    );

    let chrooted = chroot_output(&jail.root, &argv, BASE_ENV);
    let host = host_output(&argv, BASE_ENV);
    assert_eq!(host.stdout_text(), text, "{}", host.report());
    assert_same_stdout(&chrooted, &host);
}

#[test]
fn doctor_names_a_missing_chroot_target() {
    const NAME: &str = "doctor_names_a_missing_chroot_target";
    if !require_root(NAME) {
        return;
    }
    let Some(fx) = daemons(NAME) else { return };
    let jail = Jail::new("doctor-chroot");
    let (nested, _) = nested_root();
    let dir = nested.path().to_str().expect("test paths are UTF-8");
    let argv = [fx.chroot_cat.as_str(), dir, "/etc/hostname"];
    jail.run(&argv, &[], BASE_ENV).expect_ok();
    let in_root = jail.root.join(dir.trim_start_matches('/'));
    fs::remove_dir_all(&in_root).expect("remove ROOT/NESTED");

    let doctor = |argv: &[&str]| -> (Finished, Value) {
        let root = jail.root.to_str().expect("test paths are UTF-8");
        let mut args = vec!["doctor", "--root", root, "--json", "--"];
        args.extend_from_slice(argv);
        let out = jail.jailtrace(&args, BASE_ENV);
        out.assert_no_panic();
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("doctor --json is not JSON: {e}\n{}", out.report()));
        (out, report)
    };
    let chroot_diagnoses = |report: &Value| -> Vec<Value> {
        report["diagnoses"]
            .as_array()
            .expect("diagnoses is an array")
            .iter()
            .filter(|d| d["kind"] == "missing_chroot_target")
            .cloned()
            .collect()
    };

    // The host has the directory: doctor says how to make it.
    let (out, report) = doctor(&argv);
    out.assert_code(1);
    let found = chroot_diagnoses(&report);
    assert_eq!(found.len(), 1, "{}", out.report());
    let d = &found[0];
    assert_eq!(d["path"], dir, "{d}");
    assert_eq!(d["syscall"], "chroot", "{d}");
    assert_eq!(d["host"]["mode"], "0750", "{d}");
    assert_eq!(
        (d["host"]["uid"].as_u64(), d["host"]["gid"].as_u64()),
        (Some(1), Some(1)),
        "{d}"
    );
    let message = d["message"].as_str().expect("a message");
    assert!(
        message.contains(&format!("chroots into {dir}"))
            && message.contains(&format!("mkdir -p {}", in_root.display())),
        "{message}"
    );

    // Neither the jail nor the host has it.
    let gone = PathBuf::from(format!("/var/lib/jailtrace-it-{}", util::unique()));
    let gone = gone.to_str().expect("test paths are UTF-8");
    let (out, report) = doctor(&[fx.chroot_cat.as_str(), gone, "/etc/hostname"]);
    out.assert_code(1);
    let found = chroot_diagnoses(&report);
    assert_eq!(found.len(), 1, "{}", out.report());
    assert_eq!(found[0]["path"], gone);
    assert_eq!(found[0]["host"], Value::Null);
    assert!(
        found[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("neither the jail nor the host")),
        "{}",
        found[0]
    );
}

// ---------------------------------------------------------------------------
// A program that signals its own process group

#[test]
fn a_program_that_signals_its_group_spares_jailtrace_and_its_caller() {
    const NAME: &str = "a_program_that_signals_its_group_spares_jailtrace_and_its_caller";
    if !require_root(NAME) {
        return;
    }
    let Some(fx) = daemons(NAME) else { return };
    let argv = [fx.kill_group.as_str()];
    // With the pid namespace (the default) the program is its pid 2;
    // without, jailtrace's own child.
    for (tag, extra) in [("pidns", &[][..]), ("no-pidns", &["--no-pid-ns"][..])] {
        let jail = Jail::new(&format!("kill-group-{tag}"));
        let (wrapper, summary) = run_from_wrapper(&jail, &argv, extra);
        let manifest = expect_wrapper_ok(&jail, &wrapper, &summary);
        assert!(manifest.runs.len() >= 2, "{tag}: {:?}", manifest.runs);
        let chrooted = chroot_output(&jail.root, &argv, BASE_ENV);
        let host = host_output(&argv, BASE_ENV);
        assert_eq!(host.stdout_text(), "kill_group: got SIGTERM\n");
        assert_same_stdout(&chrooted, &host);
    }
}

/// Runs `script -qec COMMAND /dev/null`: COMMAND in `sh -c` on a new
/// pseudo-terminal that is its controlling terminal, as an interactive
/// user would. `input`, when given, is written to the terminal once
/// `ready` exists. Returns the terminal's output (CR LF turned into LF).
fn on_a_terminal(command: &str, ready: Option<&Path>, input: &[u8]) -> (Finished, String) {
    let mut script = Command::new("/usr/bin/script");
    script
        .args(["-qec", command, "/dev/null"])
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .env("TERM", "dumb")
        .current_dir("/")
        .stdin(Stdio::piped())
        .process_group(0);
    let mut out = tempfile::tempfile().expect("a temporary file");
    script
        .stdout(out.try_clone().expect("dup"))
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = script.spawn().expect("cannot start /usr/bin/script");
    let mut stdin = child.stdin.take().expect("piped stdin");
    if let Some(ready) = ready {
        while !ready.exists() && started.elapsed() < JAILTRACE_TIMEOUT {
            thread::sleep(Duration::from_millis(50));
        }
        stdin.write_all(input).expect("write to the terminal");
    }
    // script ends the session when its input ends (it sends the terminal
    // an end-of-file); keep it open until the command is done.
    let status = loop {
        match child.try_wait().expect("wait for script") {
            Some(status) => break status,
            None if started.elapsed() > JAILTRACE_TIMEOUT => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                }
                break child.wait().expect("wait for script");
            }
            None => thread::sleep(Duration::from_millis(50)),
        }
    };
    drop(stdin);
    let mut bytes = Vec::new();
    out.rewind()
        .and_then(|_| out.read_to_end(&mut bytes))
        .expect("read the output");
    let text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
    let finished = Finished {
        what: format!("script -qec {command:?}"),
        status,
        stdout: bytes,
        stderr: Vec::new(),
        elapsed: started.elapsed(),
        timed_out: started.elapsed() > JAILTRACE_TIMEOUT,
    };
    (finished, text)
}

/// The `tty-pgrp after` line run by the shell after jailtrace says its
/// group has the terminal again.
fn gave_back(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("after: ") && l.ends_with(" foreground=yes"))
}

fn require_script(test: &str) -> bool {
    Path::new("/usr/bin/script").is_file()
        || util::skip(test, "/usr/bin/script (bsdutils) is missing")
}

#[test]
fn a_terminal_is_lent_to_the_program_and_given_back() {
    const NAME: &str = "a_terminal_is_lent_to_the_program_and_given_back";
    if !require_root(NAME) || !require_script(NAME) {
        return;
    }
    let Some(fx) = daemons(NAME) else { return };
    let jail = Jail::new("tty");
    let command = format!(
        "{tty} before; {jt} run --root {root} --manifest {m} -- {tty} jailed 2>/dev/null; \
         echo \"jailtrace exited $?\"; {tty} after",
        tty = fx.tty_pgrp,
        jt = env!("CARGO_BIN_EXE_jailtrace"),
        root = jail.root.display(),
        m = jail.manifest.display(),
    );
    let (finished, text) = on_a_terminal(&command, None, b"");
    let report = format!("{}\n{text}", finished.report());
    assert!(!finished.timed_out, "{report}");
    // The shell's own child shares the shell's group, which has the terminal.
    assert!(
        text.contains("before: own-group=no foreground=yes\n"),
        "{report}"
    );
    // The jailed program leads its own group, and that group has the terminal.
    assert!(
        text.contains("jailed: own-group=yes foreground=yes\n")
            && !text.contains("jailed: own-group=yes foreground=no"),
        "{report}"
    );
    assert!(text.contains("jailtrace exited 0\n"), "{report}");
    // Afterwards the shell's group has the terminal again.
    assert!(gave_back(&text), "{report}");
    assert!(jail.manifest.is_file(), "no manifest\n{report}");
}

#[test]
fn ctrl_c_on_the_programs_terminal_interrupts_the_run() {
    const NAME: &str = "ctrl_c_on_the_programs_terminal_interrupts_the_run";
    if !require_root(NAME) || !require_script(NAME) {
        return;
    }
    let Some(fx) = daemons(NAME) else { return };
    let jail = Jail::new("tty-intr");
    // The program marks that it runs (ROOT/tmp/started, a file inside the
    // jail) and sleeps; the test then types Ctrl-C on the terminal.
    let command = format!(
        "{jt} run --root {root} --manifest {m} -- /bin/sh -c 'echo >/tmp/started; exec sleep 60' \
         2>/dev/null; echo \"jailtrace exited $?\"; {tty} after",
        tty = fx.tty_pgrp,
        jt = env!("CARGO_BIN_EXE_jailtrace"),
        root = jail.root.display(),
        m = jail.manifest.display(),
    );
    let started = jail.root.join("tmp/started");
    let (finished, text) = on_a_terminal(&command, Some(&started), b"\x03");
    let report = format!("{}\n{text}", finished.report());
    assert!(started.exists(), "the program never started\n{report}");
    assert!(
        text.contains(&format!("jailtrace exited {}\n", exit::SIGINT)),
        "{report}"
    );
    assert!(
        finished.elapsed < Duration::from_secs(50),
        "the run was not interrupted\n{report}"
    );
    assert!(
        !jail.manifest.exists(),
        "an interrupted run wrote a manifest\n{report}"
    );
    assert!(gave_back(&text), "{report}");
}

// ---------------------------------------------------------------------------
// What a program leaves running when its first process exits 0

/// A Python daemon for the leftover tests, run as `python3 -c LATE PORT
/// SECONDS`: it listens on 127.0.0.1:PORT and answers every connection
/// with a page, then, SECONDS later, reads /etc/debian_version.
const LATE_READER: &str = r#"
import socket, sys, threading, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
def serve():
    while True:
        c, _ = s.accept()
        c.recv(1024)
        c.sendall(b"HTTP/1.0 200 OK\r\n\r\nok\n")
        c.close()
threading.Thread(target=serve, daemon=True).start()
time.sleep(float(sys.argv[2]))
open("/etc/debian_version").read()
time.sleep(60)
"#;

/// Whether the jail holds /etc/debian_version, in its manifest and its root.
fn holds_debian_version(jail: &Jail, outcome: &Outcome) -> bool {
    let in_manifest = outcome
        .manifest()
        .entry(Path::new("/etc/debian_version"))
        .is_some();
    let in_root = jail.root.join("etc/debian_version").exists();
    assert_eq!(
        in_manifest,
        in_root,
        "the manifest and the root disagree on /etc/debian_version\n{}",
        outcome.finished.report()
    );
    in_root
}

#[test]
fn a_server_left_running_ends_the_run_once_it_sits_still() {
    const NAME: &str = "a_server_left_running_ends_the_run_once_it_sits_still";
    if !require_root(NAME) {
        return;
    }
    // `sh` exits 0 at once and leaves the daemon (as a `Type=forking`
    // unit's start command does). The daemon listens, then makes no call
    // for 1.2 s: 0.3 s of that is its start, and the tree is stopped
    // there, not after the 2 s grace, so its late read never happens.
    let jail = Jail::new("leftover-server");
    let port = free_port().to_string();
    let script = format!("{PYTHON} -c \"$0\" {port} 1.2 &");
    let outcome = jail.run(&["/bin/sh", "-c", &script, LATE_READER], &[], BASE_ENV);
    outcome.expect_ok();
    let manifest = outcome.manifest();
    assert!(
        manifest
            .sockets
            .iter()
            .any(|s| s.op == SocketOp::Listen && s.address == format!("127.0.0.1:{port}")),
        "the daemon's listening port is not recorded: {:?}\n{}",
        manifest.sockets,
        outcome.finished.report()
    );
    assert!(
        !holds_debian_version(&jail, &outcome),
        "the run waited out the grace for a server that sat still\n{}",
        outcome.finished.report()
    );
}

#[test]
fn a_background_job_without_a_port_keeps_the_whole_grace() {
    const NAME: &str = "a_background_job_without_a_port_keeps_the_whole_grace";
    if !require_root(NAME) {
        return;
    }
    // The same pause, by a job that listens on nothing: it may be a
    // script's work still to come, so it gets the whole grace.
    let jail = Jail::new("leftover-job");
    let script = "(sleep 1.2; cat /etc/debian_version >/dev/null) &";
    let outcome = jail.run(&["/bin/sh", "-c", script], &[], BASE_ENV);
    outcome.expect_ok();
    assert!(
        holds_debian_version(&jail, &outcome),
        "the background job's read within the grace is not in the jail\n{}",
        outcome.finished.report()
    );
    let host = fs::read_to_string("/etc/debian_version").expect("read /etc/debian_version");
    let jailed = run_chroot(&jail.root, &["/bin/cat", "/etc/debian_version"], BASE_ENV);
    jailed.assert_success();
    assert_eq!(jailed.stdout_text(), host, "{}", jailed.report());
}

// ---------------------------------------------------------------------------
// Syslog by datagram

#[test]
fn syslog_by_datagram_is_recorded_and_summarised() {
    const NAME: &str = "syslog_by_datagram_is_recorded_and_summarised";
    if !require_root(NAME) {
        return;
    }
    let Some(fx) = daemons(NAME) else { return };
    for (mode, syscall) in [
        ("syslog", "connect"),
        ("sendto", "sendto"),
        ("sendmsg", "sendmsg"),
    ] {
        let jail = Jail::new(&format!("syslog-{mode}"));
        let argv = [fx.syslog_send.as_str(), mode];
        let outcome = jail.run(&argv, &[], BASE_ENV);
        outcome.expect_ok();
        let report = outcome.finished.report();
        let manifest = outcome.manifest();
        let socket = manifest
            .sockets
            .iter()
            .find(|s| s.family == SocketFamily::Unix && s.address == "/dev/log")
            .unwrap_or_else(|| panic!("{mode}: no /dev/log socket\n{report}"));
        assert_eq!(socket.op, SocketOp::Connect, "{mode}");
        assert_eq!(socket.reason.syscall.as_deref(), Some(syscall), "{mode}");
        let summary = summary_json(&outcome.finished);
        assert_eq!(
            summary["syslog"],
            serde_json::json!(["/dev/log"]),
            "{mode}\n{report}"
        );
        // The 1000 sends on a connected socket are sendto(2) calls without
        // an address: the filter lets them through without a stop.
        for run in &manifest.runs {
            assert!(
                run.stops < 300,
                "{mode}: run {} had {} stops\n{report}",
                run.index,
                run.stops
            );
        }
        let chrooted = chroot_output(&jail.root, &argv, BASE_ENV);
        let host = host_output(&argv, BASE_ENV);
        assert_eq!(host.stdout_text(), format!("sent {mode}\n"));
        assert_same_stdout(&chrooted, &host);
    }

    // The text summary says the same.
    let jail = Jail::new("syslog-text");
    let argv = [fx.syslog_send.as_str(), "sendto"];
    let out = jail.jailtrace(
        &[
            "run",
            "--root",
            jail.root.to_str().expect("UTF-8"),
            "--manifest",
            jail.manifest.to_str().expect("UTF-8"),
            "--",
            argv[0],
            argv[1],
        ],
        BASE_ENV,
    );
    out.assert_code(exit::OK);
    let want = format!(
        "  syslog:  the program logs to /dev/log: give the jail a socket there (`syslogd -a {}/dev/log`",
        jail.root.display()
    );
    assert!(out.stderr_text().contains(&want), "{}", out.report());
}

// ---------------------------------------------------------------------------
// Debian's haproxy and Apache prefork

/// What a haproxy frontend on 127.0.0.1:PORT answers: a fixed page, so no
/// backend is needed.
fn haproxy_front(site: &Site, page: &str) -> String {
    let conf = format!(
        "frontend jailtrace\n\tbind 127.0.0.1:{}\n\thttp-request return status 200 \
         content-type text/plain string \"{page}\"\n",
        site.port
    );
    site.write("front.cfg", &conf)
}

#[test]
fn haproxy_chroots_itself_and_logs_to_dev_log_from_jail() {
    const NAME: &str = "haproxy_chroots_itself_and_logs_to_dev_log_from_jail";
    if !require_root(NAME) || !require_server(NAME, HAPROXY, "haproxy") {
        return;
    }
    let cfg = fs::read_to_string(HAPROXY_CFG).expect("precondition: Debian's haproxy.cfg");
    assert!(
        cfg.contains("chroot /var/lib/haproxy") && cfg.contains("log /dev/log"),
        "precondition: Debian's haproxy.cfg chroots into /var/lib/haproxy and logs to /dev/log"
    );
    let mut site = Site::new("haproxy");
    let page = format!("jailtrace haproxy {}", util::unique());
    let front = haproxy_front(&site, &page);
    // -db: the foreground, as `daemon` in Debian's config would fork.
    let argv = [HAPROXY, "-f", HAPROXY_CFG, "-f", &front, "-db"];
    let outcome = site.jail_server(&argv, &[], BASE_ENV);
    let manifest = expect_ready(&site, &outcome);
    let report = outcome.finished.report();

    let host = fs::metadata("/var/lib/haproxy").expect("the host has /var/lib/haproxy");
    let entry = manifest
        .entry(Path::new("/var/lib/haproxy"))
        .unwrap_or_else(|| panic!("no /var/lib/haproxy in the manifest\n{report}"));
    assert_eq!(entry.kind, EntryKind::Dir);
    assert_eq!(entry.reason.syscall.as_deref(), Some("chroot"), "{report}");
    let jailed =
        fs::metadata(site.jail.root.join("var/lib/haproxy")).expect("ROOT/var/lib/haproxy");
    assert_eq!(
        (jailed.mode() & 0o7777, jailed.uid(), jailed.gid()),
        (host.mode() & 0o7777, host.uid(), host.gid()),
        "ROOT/var/lib/haproxy: mode and owner must be the host's"
    );
    // After its chroot, haproxy's /dev/log is the jail's
    // /var/lib/haproxy/dev/log (where Debian's unit binds the host's).
    let log = "/var/lib/haproxy/dev/log";
    let socket = manifest
        .sockets
        .iter()
        .find(|s| s.family == SocketFamily::Unix && s.address == log)
        .unwrap_or_else(|| panic!("no {log} in sockets: {:#?}\n{report}", manifest.sockets));
    assert_eq!(socket.op, SocketOp::Connect);
    assert_eq!(socket.reason.syscall.as_deref(), Some("sendmsg"));
    assert!(
        site.jail.root.join("var/lib/haproxy/dev").is_dir(),
        "the syslog socket's directory is not in the root\n{report}"
    );
    let summary = summary_json(&outcome.finished);
    let syslog: Vec<&str> = summary["syslog"]
        .as_array()
        .unwrap_or_else(|| panic!("no syslog array in the summary\n{report}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(syslog.contains(&log), "syslog {syslog:?}\n{report}");
    assert_listens(&manifest, site.port);

    // Under plain chroot: haproxy chroots itself again and serves the page.
    site.guard.mount(&site.jail.root, &manifest);
    let server = spawn_chroot(&site.jail.root, &argv, BASE_ENV);
    let response = match http_get_retry(site.port, "/", SERVE_WITHIN) {
        Ok(r) => r,
        Err(e) => panic!(
            "under plain chroot: {e}\n{}",
            server.wait(Duration::ZERO).report()
        ),
    };
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(String::from_utf8_lossy(&response.body), page);
    let chrooted_into: Vec<PathBuf> = site
        .guard
        .processes()
        .iter()
        .filter(|p| p.cmdline.contains("haproxy"))
        .map(|p| p.root.clone())
        .collect();
    assert!(
        chrooted_into.contains(&site.jail.root.join("var/lib/haproxy")),
        "haproxy under plain chroot should have chrooted into ROOT/var/lib/haproxy: {chrooted_into:?}"
    );
    sigterm(server.pid());
    let stopped = server.wait(STOP_WITHIN);
    // haproxy ends by SIGTERM itself after cleaning up.
    let by_sigterm =
        stopped.status.signal() == Some(Signal::SIGTERM as i32) || stopped.code() == Some(0);
    assert!(
        !stopped.timed_out && by_sigterm,
        "haproxy did not stop on SIGTERM\n{}",
        stopped.report()
    );
    site.guard.assert_none_left(STOP_WITHIN, "after SIGTERM");
    site.guard.unmount_all();
}

#[test]
fn apache_prefork_with_php_kills_its_group_and_jailtrace_lives_on() {
    const NAME: &str = "apache_prefork_with_php_kills_its_group_and_jailtrace_lives_on";
    if !require_root(NAME) || !require_server(NAME, APACHE, "apache2") {
        return;
    }
    let prefork = Path::new("/etc/apache2/mods-enabled/mpm_prefork.load");
    let php = fs::read_dir("/etc/apache2/mods-enabled")
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("php"))
        })
        .unwrap_or(false);
    if !(prefork.exists() && php) {
        assert!(
            std::env::var_os(REQUIRE_SERVERS_VAR).is_none_or(|v| v != "1"),
            "{NAME} needs Apache with mpm_prefork and mod_php (apt-get install libapache2-mod-php)"
        );
        eprintln!("SKIPPED {NAME}: Apache is not prefork with mod_php (apt-get install libapache2-mod-php)");
        return;
    }
    prepare_apache_host();
    let mut site = Site::new("apache-prefork");
    let conf = site.apache_conf();
    let answer = format!("jailtrace php {}", util::unique());
    site.write(
        "www/hello.php",
        &format!("<?php echo \"{answer} \", 6 * 7, \"\\n\"; ?>\n"),
    );
    // Ready when both the page and PHP answer, so the run uses both.
    let (page_url, php_url) = (site.url(), format!("{}hello.php", site.url()));
    let argv = [APACHE, "-f", &conf, "-DFOREGROUND"];
    let jail = &site.jail;
    let extra = [
        "--env-file",
        ENVVARS,
        "--ready",
        &page_url,
        "--ready",
        &php_url,
        "--timeout",
        "60s",
    ];
    let (wrapper, summary) = run_from_wrapper(jail, &argv, &extra);
    let manifest = expect_wrapper_ok(jail, &wrapper, &summary);
    let report = wrapper.report();
    let libphp = |e: &&jailtrace_manifest::Entry| {
        e.path
            .as_path()
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("libphp") && n.ends_with(".so"))
    };
    assert!(
        manifest.entries.iter().any(|e| libphp(&e)),
        "mod_php is not in the jail\n{report}"
    );
    // Stopped once ready, Apache's parent signalled its group: every run
    // ended, none by killing jailtrace.
    for run in &manifest.runs {
        assert!(run.ready, "run {} never became ready\n{report}", run.index);
    }
    site.guard
        .assert_none_left(Duration::from_secs(2), "after jailtrace returned");

    // Under plain chroot: the page, and PHP.
    site.guard.mount(&site.jail.root, &manifest);
    let server = spawn_chroot(&site.jail.root, &argv, APACHE_ENV);
    if let Err(e) = http_get_retry(site.port, "/", SERVE_WITHIN) {
        panic!(
            "under plain chroot: {e}\n{}",
            server.wait(Duration::ZERO).report()
        );
    }
    site.assert_serves_page("under plain chroot");
    let response = match http_get_retry(site.port, "/hello.php", SERVE_WITHIN) {
        Ok(r) => r,
        Err(e) => panic!(
            "under plain chroot: {e}\n{}",
            server.wait(Duration::ZERO).report()
        ),
    };
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        format!("{answer} 42\n"),
        "{}",
        response.head
    );
    // Its parent's killpg(getpgrp(), SIGTERM) reaches only Apache's own
    // group here too; Apache exits 0.
    sigterm(server.pid());
    let stopped = server.wait(STOP_WITHIN);
    assert!(
        !stopped.timed_out && stopped.status.success(),
        "Apache did not exit 0 on SIGTERM\n{}",
        stopped.report()
    );
    site.guard.assert_none_left(STOP_WITHIN, "after SIGTERM");
    site.guard.unmount_all();
}
