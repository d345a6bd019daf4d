//! Closed pipes: every command that prints, run with its stdout (or
//! stderr) a pipe whose reader is gone, as after `jailtrace … | head -2`.
//!
//! Each command must end quietly, without a panic or an error, and exit
//! with the code it has when its output is read whole (`exit.rs`).

use crate::cmd::{self, Closed, Finished};
use crate::jail::{exit, Jail, JAILTRACE_TIMEOUT};
use crate::util::{self, require_root, BASE_ENV};

/// `jailtrace ARGS` run twice in `jail`'s directory: with its output read,
/// then with the stream `closed` unread. Asserts that the second ends
/// quietly with the first one's exit code; returns the first.
fn same_code_when_closed(jail: &Jail, args: &[&str], closed: Closed) -> Finished {
    let read = jail.jailtrace(args, BASE_ENV);
    read.assert_no_panic();
    let cut = cmd::run_closing(
        jail.command(&util::os_args(args), BASE_ENV),
        closed,
        JAILTRACE_TIMEOUT,
    );
    let expected = read.code().expect("jailtrace exits, it is not killed");
    assert_ne!(
        cut.code(),
        Some(101),
        "jailtrace panicked\n{}",
        cut.report()
    );
    cut.assert_no_panic().assert_code(expected);
    if closed == Closed::Stdout {
        let stderr = cut.stderr_text();
        assert!(
            !stderr.contains("error:") && !stderr.contains("Broken pipe"),
            "a closed stdout is not an error to report\n{}",
            cut.report()
        );
    }
    read
}

#[test]
fn ldd_and_completions_end_quietly_on_a_closed_stdout() {
    let jail = Jail::new("pipes-nonroot");
    for args in [
        &["ldd", "/bin/date", "/bin/ls"][..],
        &["ldd", "--json", "/bin/date"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["completions", "fish"],
    ] {
        let read = same_code_when_closed(&jail, args, Closed::Stdout);
        read.assert_code(exit::OK);
        assert!(!read.stdout.is_empty(), "{}", read.report());
    }
}

#[test]
fn manifest_commands_end_quietly_on_a_closed_pipe() {
    if !require_root("manifest_commands_end_quietly_on_a_closed_pipe") {
        return;
    }
    let jail = Jail::new("pipes");
    jail.run(&["/bin/date"], &[], BASE_ENV).expect_ok();
    let other = jail.join("true.json");
    jail.run_at(
        &jail.join("true-root"),
        &other,
        &["/bin/true"],
        &[],
        BASE_ENV,
    )
    .expect_ok();
    let m = jail.manifest.to_str().expect("test paths are UTF-8");
    let other = other.to_str().expect("test paths are UTF-8");
    let root = jail.root.to_str().expect("test paths are UTF-8");
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";

    let commands: &[(&[&str], i32)] = &[
        (&["diff", m, other], 1),
        (&["diff", "--json", m, other], 1),
        (&["why", "--manifest", m, libc], exit::OK),
        (&["why", "--json", "--manifest", m, libc], exit::OK),
        (&["verify", "--manifest", m], exit::OK),
        (&["verify", "--json", "--manifest", m], exit::OK),
        (&["export", "--manifest", m, "--format", "sh"], exit::OK),
        // Megabytes: the pipe closes in the middle of the stream.
        (&["export", "--manifest", m, "--format", "tar"], exit::OK),
        (
            &["doctor", "--json", "--root", root, "--", "/bin/date"],
            exit::OK,
        ),
    ];
    for (args, code) in commands {
        let read = same_code_when_closed(&jail, args, Closed::Stdout);
        read.assert_code(*code);
        assert!(!read.stdout.is_empty(), "{}", read.report());
    }
    // Reports on stderr end quietly too.
    for args in [
        &["doctor", "--root", root, "--", "/bin/date"][..],
        &["build", "--manifest", m],
        &["update", "--manifest", m],
    ] {
        same_code_when_closed(&jail, args, Closed::Stderr).assert_code(exit::OK);
    }

    // A verdict survives the closed pipe: verify of a broken jail exits 1.
    std::fs::remove_file(jail.root.join("usr/bin/date")).expect("date is in the root");
    same_code_when_closed(&jail, &["verify", "--manifest", m], Closed::Stdout)
        .assert_code(exit::ERROR);
    same_code_when_closed(
        &jail,
        &["verify", "--json", "--manifest", m],
        Closed::Stdout,
    )
    .assert_code(exit::ERROR);
}

#[test]
fn run_json_ends_quietly_on_a_closed_stdout() {
    if !require_root("run_json_ends_quietly_on_a_closed_stdout") {
        return;
    }
    let jail = Jail::new("pipes-run");
    for (name, argv, code) in [
        ("date", &["/bin/date"][..], exit::OK),
        ("false", &["/bin/false"], exit::NOT_STARTED),
    ] {
        let root = jail.join(&format!("{name}-read"));
        let manifest = jail.join(&format!("{name}-read.json"));
        jail.run_at(&root, &manifest, argv, &[], BASE_ENV)
            .finished
            .assert_no_panic()
            .assert_code(code);
        // `Jail::spawn_at` passes --json: stdout carries the summary.
        let root = jail.join(&format!("{name}-cut"));
        let manifest = jail.join(&format!("{name}-cut.json"));
        let mut args = vec!["run".into(), "--json".into(), "--root".into()];
        args.extend([root.into_os_string(), "--manifest".into()]);
        args.extend([manifest.clone().into_os_string(), "--".into()]);
        args.extend(util::os_args(argv));
        let cut = cmd::run_closing(
            jail.command(&args, BASE_ENV),
            Closed::Stdout,
            JAILTRACE_TIMEOUT,
        );
        cut.assert_no_panic().assert_code(code);
        assert!(
            !cut.stderr_text().contains("Broken pipe"),
            "{}",
            cut.report()
        );
        // A ready program's manifest is written all the same.
        assert_eq!(manifest.exists(), code == exit::OK, "{}", cut.report());
    }
}
