//! A root that an earlier run made but did not finish (the program never
//! started, jailtrace was interrupted, the working directory was wrong) is
//! jailtrace's: a retry starts it again, `--fresh` too, and it never keeps
//! the host's account databases. A non-empty root jailtrace did not make is
//! refused with an error that says what to do.

use std::fs;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};

use crate::cmd::chroot_output;
use crate::jail::{exit, Jail};
use crate::util::{self, require_root, BASE_ENV};

/// `ROOT.unfinished`, the record beside the root.
fn record(jail: &Jail) -> std::path::PathBuf {
    jail.join("root.unfinished")
}

#[test]
fn a_root_left_by_a_failed_run_is_made_again_by_a_retry_or_fresh() {
    if !require_root("a_root_left_by_a_failed_run_is_made_again_by_a_retry_or_fresh") {
        return;
    }
    let jail = Jail::new("unfinished");
    let failed = jail.run(&["/bin/sleep", "30"], &["--timeout", "1s"], BASE_ENV);
    failed
        .finished
        .assert_no_panic()
        .assert_code(exit::NOT_STARTED);
    assert!(!jail.manifest.exists(), "a failed run wrote a manifest");
    assert!(record(&jail).is_file(), "no record of the unfinished root");
    assert!(
        jail.root.join("usr").exists(),
        "the failed run placed nothing"
    );

    // Another program, another default manifest name: the record is
    // beside the root, so the retry still knows the root is jailtrace's.
    let other_manifest = jail.join("other.json");
    for extra in [&[][..], &["--fresh"][..]] {
        let retry = jail.run_at(
            &jail.root,
            &other_manifest,
            &["/bin/echo", "again"],
            extra,
            BASE_ENV,
        );
        retry.expect_ok();
        if extra.is_empty() {
            assert!(
                retry
                    .finished
                    .stderr_text()
                    .contains("did not finish; starting it again"),
                "{}",
                retry.finished.report()
            );
            // Leave it unfinished again for the --fresh round.
            jail.run_at(
                &jail.root,
                &other_manifest,
                &["/bin/sh", "-c", "exit 4"],
                &["--fresh"],
                BASE_ENV,
            )
            .finished
            .assert_code(exit::NOT_STARTED);
        }
    }
    assert!(!record(&jail).exists(), "the record outlived the manifest");
    assert!(!jail.root.join("bin/sleep").exists() && !jail.root.join("usr/bin/sleep").exists());
    chroot_output(&jail.root, &["/bin/echo", "again"], BASE_ENV).assert_success();
}

#[test]
fn a_bad_working_directory_names_it_and_leaves_a_retryable_root() {
    if !require_root("a_bad_working_directory_names_it_and_leaves_a_retryable_root") {
        return;
    }
    let jail = Jail::new("bad-cwd");
    let out = jail.run(&["/bin/true"], &["--cwd", "/no/such/dir"], BASE_ENV);
    let stderr = out.expect_error(exit::ERROR);
    assert!(stderr.contains("--cwd /no/such/dir"), "{stderr}");
    let relative = jail.run(&["/bin/true"], &["--cwd", "srv"], BASE_ENV);
    relative.finished.assert_no_panic().assert_code(exit::USAGE);
    assert!(relative.finished.stderr_text().contains("absolute"));
    jail.run(&["/bin/true"], &[], BASE_ENV).expect_ok();
}

#[test]
fn an_interrupted_root_keeps_only_the_jails_accounts_and_is_made_again() {
    if !require_root("an_interrupted_root_keeps_only_the_jails_accounts_and_is_made_again") {
        return;
    }
    let jail = Jail::new("interrupted");
    // Reads every account (getent), then waits to be interrupted.
    let marker = format!("1000.{}", util::unique_digits());
    let script = format!("getent passwd >/dev/null; exec sleep {marker}");
    let argv = ["/bin/sh", "-c", script.as_str()];
    let running = jail.spawn_at(&jail.root, &jail.manifest, &argv, &[], BASE_ENV);
    let sleeping = ["sleep", marker.as_str()];
    assert!(
        util::wait_until_running(&sleeping, Duration::from_secs(120)),
        "the jailed program never got to sleep"
    );
    kill(running.pid(), Signal::SIGINT).unwrap();
    let finished = running.wait(Duration::from_secs(30));
    finished.assert_no_panic().assert_code(exit::SIGINT);

    let passwd = fs::read_to_string(jail.root.join("etc/passwd")).unwrap_or_default();
    let host = fs::read_to_string("/etc/passwd").unwrap();
    let names = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split(':').next().map(str::to_owned))
            .collect()
    };
    assert!(
        names(&host).len() > 2,
        "precondition: the host has several accounts"
    );
    assert_eq!(
        names(&passwd),
        ["root"],
        "the interrupted root holds host accounts\n{}",
        finished.report()
    );
    assert!(record(&jail).is_file());
    jail.run(&["/bin/true"], &[], BASE_ENV).expect_ok();
}

#[test]
fn a_root_jailtrace_did_not_make_is_refused_with_what_to_do() {
    if !require_root("a_root_jailtrace_did_not_make_is_refused_with_what_to_do") {
        return;
    }
    let jail = Jail::new("foreign");
    fs::create_dir_all(jail.root.join("data")).unwrap();
    fs::write(jail.root.join("data/keep-me"), "precious\n").unwrap();
    for extra in [&[][..], &["--fresh"][..]] {
        let out = jail.run(&["/bin/true"], extra, BASE_ENV);
        let stderr = out.expect_error(exit::ERROR);
        assert!(
            stderr.contains("choose an empty or new directory"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("rm -rf {}", jail.root.display())),
            "{stderr}"
        );
    }
    assert_eq!(
        fs::read_to_string(jail.root.join("data/keep-me")).unwrap(),
        "precious\n"
    );
    assert!(!Path::new(&record(&jail)).exists());
}

/// jailtrace killed outright (SIGKILL) in the middle of a run leaves
/// nothing mounted in the root: `/proc` and the `--bind` of a host
/// directory were made in a mount namespace of its own, which goes with
/// its last process. So removing the root afterwards cannot reach the
/// host directory through a bind left behind.
#[test]
fn a_killed_jailtrace_leaves_nothing_mounted_in_the_root() {
    if !require_root("a_killed_jailtrace_leaves_nothing_mounted_in_the_root") {
        return;
    }
    let jail = Jail::new("killed");
    let data = jail.join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("keep-me"), "host data\n").unwrap();
    let bind = format!("{}:/data", data.display());
    let marker = format!("1000.{}", util::unique_digits());
    let script = format!("ls /proc/self /data >/dev/null; exec sleep {marker}");
    let argv = ["/bin/sh", "-c", script.as_str()];
    let running = jail.spawn_at(
        &jail.root,
        &jail.manifest,
        &argv,
        &["--bind", &bind],
        BASE_ENV,
    );
    let sleeping = ["sleep", marker.as_str()];
    assert!(
        util::wait_until_running(&sleeping, Duration::from_secs(120)),
        "the jailed program never got to sleep"
    );
    kill(running.pid(), Signal::SIGKILL).unwrap();
    let finished = running.wait(Duration::from_secs(30));
    assert!(
        util::wait_until_gone(&sleeping, Duration::from_secs(10)).is_empty(),
        "the jailed program outlived jailtrace\n{}",
        finished.report()
    );
    let left = util::mounts_under(&jail.path);
    assert!(left.is_empty(), "mounts left in the root: {left:?}");
    fs::remove_dir_all(&jail.root).unwrap();
    assert_eq!(
        fs::read_to_string(data.join("keep-me")).unwrap(),
        "host data\n"
    );
}
