//! Bad input and failing programs: `jailtrace run` must answer with the
//! documented exit code and an `error: …` message (never a panic), refuse
//! roots that would overwrite the host, stop programs that hang or when it
//! is interrupted, and never replace a good manifest with a failed run's.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use jailtrace_manifest::RunStatus;
use nix::sys::signal::{kill, Signal};

use crate::jail::{exit, Jail};
use crate::util::{self, require_root, BASE_ENV};

/// Asserts the manifest file was not created.
fn assert_no_manifest(jail: &Jail) {
    assert!(
        !jail.manifest.exists(),
        "a failed run wrote the manifest {}",
        jail.manifest.display()
    );
}

#[test]
fn usage_errors_exit_2() {
    // Argument parsing happens before anything needs root.
    let jail = Jail::new("usage");
    for args in [
        &["run"][..],
        &["run", "--no-such-flag", "--", "/bin/true"][..],
        &["run", "--max-runs", "many", "--", "/bin/true"][..],
        &["no-such-subcommand"][..],
    ] {
        let finished = jail.jailtrace(args, BASE_ENV);
        finished.assert_no_panic().assert_code(exit::USAGE);
        assert!(
            !finished.stderr.is_empty(),
            "no usage message\n{}",
            finished.report()
        );
    }
    assert!(!jail.join("true.jail").exists() && !jail.join("true.jail.json").exists());
}

#[test]
fn command_not_found_is_an_error() {
    if !require_root("command_not_found_is_an_error") {
        return;
    }
    let jail = Jail::new("not-found");
    let name = format!("jailtrace-it-no-such-command-{}", util::unique());
    let outcome = jail.run(&[&name], &[], BASE_ENV);
    let stderr = outcome.expect_error(exit::ERROR);
    assert!(
        stderr.contains(&name),
        "the message does not name {name}\n{stderr}"
    );
    assert_no_manifest(&jail);
}

#[test]
fn non_executable_file_is_an_error() {
    if !require_root("non_executable_file_is_an_error") {
        return;
    }
    let jail = Jail::new("not-exec");
    let script = jail.join("script.sh");
    fs::write(&script, "#!/bin/sh\necho hello\n").expect("write the script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    let path = script.to_str().expect("temp paths are UTF-8");
    let outcome = jail.run(&[path], &[], BASE_ENV);
    let stderr = outcome.expect_error(exit::ERROR);
    assert!(
        stderr.contains(path),
        "the message does not name {path}\n{stderr}"
    );
    assert_no_manifest(&jail);
}

#[test]
fn host_directories_are_refused_as_root() {
    if !require_root("host_directories_are_refused_as_root") {
        return;
    }
    let jail = Jail::new("host-root");
    let link = jail.join("link-to-slash");
    std::os::unix::fs::symlink("/", &link).expect("create a symlink to /");
    // What jailtrace would create if it accepted --root /usr for /bin/date.
    let sentinel = Path::new("/usr/usr");
    assert!(
        !sentinel.exists(),
        "precondition: the host has no {}",
        sentinel.display()
    );
    for root in [Path::new("/"), Path::new("/usr"), link.as_path()] {
        let outcome = jail.run_at(root, &jail.manifest, &["/bin/date"], &[], BASE_ENV);
        let stderr = outcome.expect_error(exit::ERROR);
        assert!(
            stderr.contains(root.to_str().expect("UTF-8")),
            "the message does not name the root {}\n{stderr}",
            root.display()
        );
        assert_no_manifest(&jail);
        assert!(
            !sentinel.exists(),
            "--root {} wrote {}",
            root.display(),
            sentinel.display()
        );
    }
}

#[test]
fn root_that_is_a_file_is_an_error() {
    if !require_root("root_that_is_a_file_is_an_error") {
        return;
    }
    let jail = Jail::new("root-file");
    let file = jail.join("not-a-dir");
    fs::write(&file, "keep me\n").expect("write the file");
    let outcome = jail.run_at(&file, &jail.manifest, &["/bin/date"], &[], BASE_ENV);
    let stderr = outcome.expect_error(exit::ERROR);
    let shown = file.to_str().expect("temp paths are UTF-8");
    assert!(
        stderr.contains(shown),
        "the message does not name {shown}\n{stderr}"
    );
    assert_eq!(
        fs::read_to_string(&file).expect("the file is still there"),
        "keep me\n"
    );
    assert_no_manifest(&jail);
}

#[test]
fn crashing_program_exits_3_with_its_signal() {
    if !require_root("crashing_program_exits_3_with_its_signal") {
        return;
    }
    let jail = Jail::new("crash");
    let outcome = jail.run(&["/bin/sh", "-c", "kill -SEGV $$"], &[], BASE_ENV);
    outcome
        .finished
        .assert_no_panic()
        .assert_code(exit::NOT_STARTED);
    let summary = outcome.summary();
    assert!(!summary.ok, "{}", outcome.finished.report());
    assert!(
        matches!(&summary.status, RunStatus::Signaled { signal, .. } if signal == "SIGSEGV"),
        "status {:?} is not signaled SIGSEGV\n{}",
        summary.status,
        outcome.finished.report()
    );
}

#[test]
fn program_that_never_exits_is_timed_out() {
    if !require_root("program_that_never_exits_is_timed_out") {
        return;
    }
    let jail = Jail::new("timeout");
    // A unique argument, so the /proc scan below finds only this test's sleep.
    let seconds = format!("1000.{}", util::unique_digits());
    let argv = ["/bin/sleep", seconds.as_str()];
    let outcome = jail.run(&argv, &["--timeout", "2s"], BASE_ENV);
    outcome
        .finished
        .assert_no_panic()
        .assert_code(exit::NOT_STARTED);
    assert!(
        outcome.finished.elapsed < Duration::from_secs(60),
        "--timeout 2s took {:?}",
        outcome.finished.elapsed
    );
    let summary = outcome.summary();
    assert!(!summary.ok);
    assert!(
        matches!(summary.status, RunStatus::Killed { .. }),
        "status {:?} is not killed\n{}",
        summary.status,
        outcome.finished.report()
    );
    let left = util::wait_until_gone(&argv, Duration::from_secs(2));
    assert!(
        left.is_empty(),
        "the timed-out sleep still runs: pids {left:?}"
    );
}

#[test]
fn failed_run_keeps_existing_manifest() {
    if !require_root("failed_run_keeps_existing_manifest") {
        return;
    }
    let jail = Jail::new("keep-manifest");
    jail.run(&["/bin/date"], &[], BASE_ENV).expect_ok();
    let good = fs::read(&jail.manifest).expect("the first run wrote the manifest");

    let other_root = jail.join("root2");
    let failed = jail.run_at(
        &other_root,
        &jail.manifest,
        &["/bin/sh", "-c", "exit 7"],
        &[],
        BASE_ENV,
    );
    failed
        .finished
        .assert_no_panic()
        .assert_code(exit::NOT_STARTED);
    let summary = failed.summary();
    assert!(!summary.ok);
    assert_eq!(
        summary.status,
        RunStatus::Exited { code: 7 },
        "{}",
        failed.finished.report()
    );
    assert!(
        fs::read(&jail.manifest).expect("the manifest is still there") == good,
        "a failed run replaced the existing manifest"
    );
    let leftovers: Vec<_> = fs::read_dir(&jail.path)
        .expect("readable")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".jailtrace-manifest-")
        })
        .map(|e| e.file_name())
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary manifest files left: {leftovers:?}"
    );
}

/// Sends `signal` to jailtrace while it runs a `sleep` and expects exit
/// `code`, the sleep gone and no manifest.
fn interrupt(test: &str, signal: Signal, code: i32) {
    let jail = Jail::new(test);
    let seconds = format!("1000.{}", util::unique_digits());
    let argv = ["/bin/sleep", seconds.as_str()];
    let running = jail.spawn_at(&jail.root, &jail.manifest, &argv, &[], BASE_ENV);
    let started = util::wait_until_running(&argv, Duration::from_secs(120));
    let pid = running.pid();
    if !started {
        let finished = running.wait(Duration::ZERO);
        panic!("the jailed sleep never started\n{}", finished.report());
    }
    kill(pid, signal).expect("signal jailtrace");
    let finished = running.wait(Duration::from_secs(30));
    finished.assert_no_panic().assert_code(code);
    let left = util::wait_until_gone(&argv, Duration::from_secs(2));
    assert!(
        left.is_empty(),
        "after {signal} the jailed sleep still runs: pids {left:?}\n{}",
        finished.report()
    );
    assert_no_manifest(&jail);
}

#[test]
fn sigint_stops_jailtrace_and_its_program() {
    if !require_root("sigint_stops_jailtrace_and_its_program") {
        return;
    }
    interrupt("sigint", Signal::SIGINT, exit::SIGINT);
}

#[test]
fn sigterm_stops_jailtrace_and_its_program() {
    if !require_root("sigterm_stops_jailtrace_and_its_program") {
        return;
    }
    interrupt("sigterm", Signal::SIGTERM, exit::SIGTERM);
}

#[test]
fn a_program_a_rule_refuses_is_named_with_the_rule() {
    if !require_root("a_program_a_rule_refuses_is_named_with_the_rule") {
        return;
    }
    let jail = Jail::new("denied-program");
    // `env` found through PATH, then refused: say by which rule, before
    // anything is written.
    let out = jail.run(&["env"], &["--deny", "^/usr/bin/env$"], BASE_ENV);
    let stderr = out.expect_error(exit::ERROR);
    assert!(
        stderr.contains("refused by the rule `^/usr/bin/env$`"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow"), "{stderr}");
    assert!(!jail.root.join("usr").exists(), "something was placed");
    assert_no_manifest(&jail);
}
