//! Bad input to a jail that exists: a jail file or `run` flags that cannot
//! give a working jail (a readiness condition that never holds, an
//! exercise that fails, a bind of a missing host directory, a program name
//! used twice, a typo'd key, a missing command). Each is a clear error with
//! a non-zero exit that says what matters (the condition, the exercise's
//! command and output, the missing directory), writes nothing outside the
//! root, and leaves the jail's manifest byte for byte as it was: the
//! manifest still describes the jail that works.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::cmd::Finished;
use crate::jail::{exit, Jail};
use crate::util::{require_root, BASE_ENV};

/// What a path outside the root is: its kind, bytes (files) or target
/// (links), mode, and, for files, inode and modification time (a file
/// rewritten with the same bytes is still written).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    mode: u32,
    ino: u64,
    mtime_ns: i128,
    content: Option<Vec<u8>>,
    target: Option<PathBuf>,
}

/// Everything below the test's directory except the root itself.
fn outside_root(jail: &Jail) -> BTreeMap<PathBuf, Seen> {
    fn walk(dir: &Path, skip: &Path, seen: &mut BTreeMap<PathBuf, Seen>) {
        for item in fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            if path == skip {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            let kind = meta.file_type();
            seen.insert(
                path.clone(),
                Seen {
                    mode: meta.mode(),
                    ino: if kind.is_dir() { 0 } else { meta.ino() },
                    mtime_ns: if kind.is_dir() {
                        0
                    } else {
                        i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
                    },
                    content: kind.is_file().then(|| fs::read(&path).unwrap()),
                    target: kind.is_symlink().then(|| fs::read_link(&path).unwrap()),
                },
            );
            if kind.is_dir() {
                walk(&path, skip, seen);
            }
        }
    }
    let mut seen = BTreeMap::new();
    walk(&jail.path, &jail.root, &mut seen);
    seen
}

/// A jail of `/usr/bin/id`, made by `jailtrace up` of a jail file at
/// `T/good.toml` (root `T/root`, manifest `T/m.json`).
fn jail_up(name: &str) -> Jail {
    let jail = Jail::new(name);
    fs::write(jail.join("good.toml"), jail_file(&jail, GOOD)).unwrap();
    up(&jail, "good.toml").assert_success();
    assert!(jail.manifest.is_file());
    jail
}

/// A jail of `/usr/bin/id`, made by `jailtrace run` (root `T/root`,
/// manifest `T/m.json`).
fn jail_run(name: &str) -> Jail {
    let jail = Jail::new(name);
    jail.run(&["/usr/bin/id"], &[], BASE_ENV).expect_ok();
    jail
}

/// What `up` says when it put the manifest back.
const PUT_BACK: &str = "the jail is not up; its manifest";

/// What `run` says when it took what a failed run placed out of the root.
const TAKEN_OUT: &str = "the jail is as its manifest";

/// The jail's first program, as a jail file says it: `id` reads the
/// account databases, so the jail has a synthesized `/etc/passwd`.
const GOOD: &str = "[[program]]\ncommand = [\"/usr/bin/id\"]\n";

/// A jail file of the test's jail: its root and manifest, then `programs`.
fn jail_file(jail: &Jail, programs: &str) -> String {
    format!(
        "root = {:?}\nmanifest = {:?}\n{programs}",
        jail.root.to_str().unwrap(),
        jail.manifest.to_str().unwrap()
    )
}

fn up(jail: &Jail, file: &str) -> Finished {
    let file = jail.join(file);
    let out = jail.jailtrace(&["up", file.to_str().unwrap()], BASE_ENV);
    out.assert_no_panic();
    out
}

/// `jailtrace run --root T/root --manifest T/m.json ARGS`.
fn run(jail: &Jail, args: &[&str]) -> Finished {
    let mut all = vec![
        "run",
        "--root",
        jail.root.to_str().unwrap(),
        "--manifest",
        jail.manifest.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = jail.jailtrace(&all, BASE_ENV);
    out.assert_no_panic();
    out
}

/// Runs `bad` on the jail and checks: a non-zero exit (`code`), every
/// needle in stderr, the manifest's bytes as they were, and nothing else
/// outside the root written (no new file, no file rewritten).
fn refused(jail: &Jail, what: &str, code: i32, needles: &[&str], bad: impl FnOnce() -> Finished) {
    let manifest = fs::read(&jail.manifest).unwrap();
    let before = outside_root(jail);
    let out = bad();
    assert_eq!(out.code(), Some(code), "{what}: exit\n{}", out.report());
    let stderr = out.stderr_text();
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{what}: {needle:?} is not in what the user sees\n{}",
            out.report()
        );
    }
    assert!(
        fs::read(&jail.manifest).unwrap() == manifest,
        "{what}: the manifest changed\n{}",
        out.report()
    );
    let after = outside_root(jail);
    let added: Vec<&PathBuf> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert!(
        added.is_empty(),
        "{what}: written outside the root: {added:?}\n{}",
        out.report()
    );
    // The manifest may have been put back (same bytes, another inode).
    let others = |seen: BTreeMap<PathBuf, Seen>| {
        seen.into_iter()
            .filter(|(p, _)| *p != jail.manifest)
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        others(before),
        others(after),
        "{what}: changed outside the root\n{}",
        out.report()
    );
}

/// The jail still is the one its manifest describes, and still works.
fn still_works(jail: &Jail) {
    let verify = jail.jailtrace(
        &["verify", "--manifest", jail.manifest.to_str().unwrap()],
        BASE_ENV,
    );
    verify.assert_success();
}

#[test]
fn a_readiness_condition_that_never_holds_leaves_the_jail_alone() {
    if !require_root("a_readiness_condition_that_never_holds_leaves_the_jail_alone") {
        return;
    }
    let jail = jail_up("untouched-ready");
    let never = "[[program]]\ncommand = [\"/bin/sleep\", \"30\"]\n\
                 ready = [\"tcp:127.0.0.1:1\"]\ntimeout = \"2s\"\n";
    fs::write(
        jail.join("ready.toml"),
        jail_file(&jail, &format!("{GOOD}{never}")),
    )
    .unwrap();
    refused(
        &jail,
        "up: ready never holds",
        exit::NOT_STARTED,
        &["not ready: tcp:127.0.0.1:1", TAKEN_OUT, PUT_BACK],
        || up(&jail, "ready.toml"),
    );
    refused(
        &jail,
        "run --ready: never holds",
        exit::NOT_STARTED,
        &["not ready: tcp:127.0.0.1:1", TAKEN_OUT],
        || {
            run(
                &jail,
                // As another user: the run writes that user into the
                // jail's /etc/passwd, which must be put back too.
                &[
                    "--user",
                    "nobody",
                    "--ready",
                    "tcp:127.0.0.1:1",
                    "--timeout",
                    "2s",
                    "--",
                    "/bin/sleep",
                    "30",
                ],
            )
        },
    );
    still_works(&jail);
    let passwd = fs::read_to_string(jail.root.join("etc/passwd")).unwrap();
    assert!(
        passwd.starts_with("root:") && !passwd.contains("nobody"),
        "{passwd}"
    );
}

#[test]
fn a_failing_exercise_leaves_the_jail_alone() {
    if !require_root("a_failing_exercise_leaves_the_jail_alone") {
        return;
    }
    let jail = jail_up("untouched-exercise");
    let command = "echo the exercise says no; exit 1";
    let failing = format!(
        "[[program]]\ncommand = [\"/bin/sleep\", \"30\"]\nready = [\"alive:300ms\"]\n\
         exercises = [{{ command = {command:?} }}]\n"
    );
    fs::write(
        jail.join("exercise.toml"),
        jail_file(&jail, &format!("{GOOD}{failing}")),
    )
    .unwrap();
    let needles = [
        &format!("`{command}` failed")[..],
        "exited with code 1",
        "| the exercise says no",
        TAKEN_OUT,
    ];
    refused(
        &jail,
        "up: exercise exits 1",
        exit::NOT_STARTED,
        &needles,
        || up(&jail, "exercise.toml"),
    );
    refused(
        &jail,
        "run --exercise: exits 1",
        exit::NOT_STARTED,
        &needles,
        || {
            run(
                &jail,
                &[
                    "--ready",
                    "alive:300ms",
                    "--exercise",
                    command,
                    "--",
                    "/bin/sleep",
                    "30",
                ],
            )
        },
    );
    still_works(&jail);
}

#[test]
fn a_bind_of_a_missing_directory_leaves_the_jail_alone() {
    if !require_root("a_bind_of_a_missing_directory_leaves_the_jail_alone") {
        return;
    }
    let jail = jail_run("untouched-bind");
    let missing = jail.join("no-such-data");
    let missing = missing.to_str().unwrap();
    let bind = format!("{missing}:/data");
    fs::write(
        jail.join("bind.toml"),
        jail_file(&jail, &format!("binds = [{bind:?}]\n{GOOD}")),
    )
    .unwrap();
    refused(
        &jail,
        "up: binds a missing directory",
        exit::ERROR,
        &[missing],
        || up(&jail, "bind.toml"),
    );
    refused(
        &jail,
        "run --bind: a missing directory",
        exit::ERROR,
        &[missing],
        || run(&jail, &["--bind", &bind, "--", "/bin/ls", "/"]),
    );
    assert!(
        !Path::new(missing).exists(),
        "the missing directory was made"
    );
    still_works(&jail);
}

#[test]
fn bad_jail_files_leave_the_jail_alone() {
    if !require_root("bad_jail_files_leave_the_jail_alone") {
        return;
    }
    let jail = jail_up("untouched-file");
    let ls = "[[program]]\ncommand = [\"/bin/ls\", \"/\"]\n";
    let cases = [
        (
            "twice",
            format!("{GOOD}{ls}[[program]]\nname = \"ls\"\ncommand = [\"/bin/echo\"]\n"),
            vec!["twice.toml: two programs are called \"ls\"; give one a `name`"],
        ),
        (
            "typo",
            format!("{GOOD}[[program]]\ncomand = [\"/bin/ls\"]\n"),
            vec!["typo.toml:6:1: unknown field `comand`, expected one of"],
        ),
        (
            "typo-in-a-table",
            format!("[policy]\ndenny = ['^/etc/x']\n{GOOD}"),
            vec!["typo-in-a-table.toml:4:1: unknown field `denny`"],
        ),
        (
            "empty-command",
            format!("{GOOD}[[program]]\ncommand = []\n"),
            vec!["empty-command.toml: program 2: `command` is empty"],
        ),
        (
            "no-command",
            format!("{GOOD}[[program]]\nname = \"ls\"\n"),
            vec!["no-command.toml: program 2: `command` is empty (give a command or a `unit`)"],
        ),
        (
            "no-such-program",
            format!("{GOOD}[[program]]\ncommand = [\"/bin/no-such-program\"]\n"),
            vec!["/bin/no-such-program"],
        ),
    ];
    for (name, programs, needles) in cases {
        let file = format!("{name}.toml");
        fs::write(jail.join(&file), jail_file(&jail, &programs)).unwrap();
        let needles: Vec<&str> = needles.iter().map(|n| &n[..]).collect();
        refused(&jail, name, exit::ERROR, &needles, || up(&jail, &file));
    }
    still_works(&jail);
}

#[test]
fn bad_run_flags_leave_the_jail_alone() {
    if !require_root("bad_run_flags_leave_the_jail_alone") {
        return;
    }
    let jail = jail_run("untouched-flags");
    refused(
        &jail,
        "a typo'd flag",
        exit::USAGE,
        &["unexpected argument '--redy'"],
        || run(&jail, &["--redy", "exit", "--", "/bin/ls"]),
    );
    refused(
        &jail,
        "no command",
        exit::USAGE,
        &[
            "the following required arguments were not provided",
            "<PROGRAM>",
        ],
        || run(&jail, &["--ready", "exit"]),
    );
    refused(
        &jail,
        "a command that does not exist",
        exit::ERROR,
        &["/bin/no-such-program"],
        || run(&jail, &["--", "/bin/no-such-program"]),
    );
    refused(
        &jail,
        "a condition that is not one",
        exit::USAGE,
        &["unknown readiness condition `tpc:127.0.0.1:1`"],
        || run(&jail, &["--ready", "tpc:127.0.0.1:1", "--", "/bin/ls"]),
    );
    still_works(&jail);
}
