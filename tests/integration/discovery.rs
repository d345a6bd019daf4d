//! Discovery itself: the seccomp and PTRACE_SYSCALL modes find the same
//! root, a listed directory shows the host's entries but keeps only the
//! used ones, and `jailtrace ldd` agrees with ldd(1).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use jailtrace_manifest::{Cause, Manifest, RunRole};

use crate::cmd::{assert_same_stdout, chroot_output, host_output, run, PROGRAM_TIMEOUT};
use crate::jail::Jail;
use crate::util::{require_root, BASE_ENV};

/// What a manifest says the root holds, without the per-run details
/// (pids, run numbers) that differ between two runs of the same program.
fn placed(m: &Manifest) -> BTreeMap<PathBuf, String> {
    m.entries
        .iter()
        .map(|e| {
            let what = format!("{:?} {} {:?} {:?}", e.kind, e.mode, e.sha256, e.target);
            (e.path.as_path().to_path_buf(), what)
        })
        .collect()
}

fn roles(m: &Manifest) -> Vec<RunRole> {
    m.runs.iter().map(|r| r.role).collect()
}

#[test]
fn seccomp_and_syscall_stepping_find_the_same_root() {
    if !require_root("seccomp_and_syscall_stepping_find_the_same_root") {
        return;
    }
    let programs: &[&[&str]] = &[
        &["/bin/date"],
        &["/bin/bash", "-c", "id; whoami; ls -l /"],
        &["/bin/sh", "-c", "uname -a; hostname; date +%Y"],
        &[
            "/usr/bin/perl",
            "-MPOSIX",
            "-e",
            "print strftime(\"%Y\", localtime), \"\\n\"",
        ],
        &[
            "/usr/bin/python3",
            "-c",
            "import json, sqlite3; print('ok')",
        ],
    ];
    for argv in programs {
        let jail = Jail::new("modes");
        let fast = jail.run_at(
            &jail.join("seccomp"),
            &jail.join("seccomp.json"),
            argv,
            &[],
            BASE_ENV,
        );
        fast.expect_ok();
        let slow = jail.run_at(
            &jail.join("ptrace"),
            &jail.join("ptrace.json"),
            argv,
            &["--no-seccomp"],
            BASE_ENV,
        );
        slow.expect_ok();
        let (fast, slow) = (fast.manifest(), slow.manifest());
        assert!(fast.runs.iter().all(|r| r.seccomp) && slow.runs.iter().all(|r| !r.seccomp));
        assert_eq!(
            roles(&fast),
            [RunRole::Discover, RunRole::Verify],
            "{argv:?} with seccomp"
        );
        assert_eq!(
            roles(&slow),
            [RunRole::Discover, RunRole::Verify],
            "{argv:?} without seccomp"
        );
        let (a, b) = (placed(&fast), placed(&slow));
        let only_fast: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
        let only_slow: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
        assert!(
            only_fast.is_empty() && only_slow.is_empty(),
            "{argv:?}: only with seccomp {only_fast:?}, only without {only_slow:?}"
        );
        assert_eq!(a, b, "{argv:?}: same paths, different content");
        // Syscall stepping stops far more often: the filter is doing its job.
        assert!(
            fast.runs[0].stops < slow.runs[0].stops,
            "{argv:?}: {} vs {} stops",
            fast.runs[0].stops,
            slow.runs[0].stops
        );
    }
}

#[test]
fn a_listed_directory_shows_the_host_entries_and_keeps_the_used_ones() {
    if !require_root("a_listed_directory_shows_the_host_entries_and_keeps_the_used_ones") {
        return;
    }
    let jail = Jail::new("glob");
    let conf = jail.join("host/conf.d");
    fs::create_dir_all(conf.join("unused-subdir")).unwrap();
    for (name, body) in [
        ("a.conf", "alpha\n"),
        ("b.conf", "beta\n"),
        ("c.conf", "gamma\n"),
        ("notes.txt", "not a conf\n"),
    ] {
        fs::write(conf.join(name), body).unwrap();
    }
    // The shell's glob lists the directory, then cat opens what matched:
    // like Apache's `IncludeOptional mods-enabled/*.load`.
    let script = format!("cat {}/*.conf", conf.display());
    let argv = ["/bin/sh", "-c", script.as_str()];
    let allow = jail.allow_own_files();
    let out = jail.run(&argv, &[&allow[0], &allow[1]], BASE_ENV);
    out.expect_ok();
    let host = host_output(&argv, BASE_ENV);
    assert_eq!(host.stdout_text(), "alpha\nbeta\ngamma\n");
    assert_same_stdout(&chroot_output(&jail.root, &argv, BASE_ENV), &host);

    let in_root = jail.root.join(conf.strip_prefix("/").unwrap());
    let names: BTreeSet<String> = fs::read_dir(&in_root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["a.conf".into(), "b.conf".into(), "c.conf".into()]),
        "only the used entries stay"
    );
    let manifest = out.manifest();
    for name in ["a.conf", "b.conf", "c.conf"] {
        let entry = manifest
            .entry(&conf.join(name))
            .unwrap_or_else(|| panic!("no entry for {name}"));
        assert_eq!(entry.reason.cause, Cause::Listed, "{name}");
        assert_eq!(
            fs::read(in_root.join(name)).unwrap(),
            fs::read(conf.join(name)).unwrap()
        );
    }
    assert!(manifest.entry(&conf.join("notes.txt")).is_none());
    assert!(manifest.entry(&conf.join("unused-subdir")).is_none());
}

/// `name => path` pairs of ldd(1)'s output, paths as (dev, ino) so that
/// `/lib/x` and `/usr/lib/x` (merged /usr) compare equal.
fn identities(pairs: impl Iterator<Item = (String, PathBuf)>) -> BTreeSet<(String, (u64, u64))> {
    pairs
        .filter_map(|(name, path)| fs::metadata(&path).ok().map(|m| (name, (m.dev(), m.ino()))))
        .collect()
}

#[test]
fn jailtrace_ldd_agrees_with_ldd() {
    let candidates = [
        "/usr/bin/date",
        "/bin/bash",
        "/usr/bin/python3.11",
        "/usr/bin/perl",
        "/usr/bin/git",
        "/usr/bin/ls",
        "/usr/bin/tar",
        "/usr/bin/gpg",
        "/usr/bin/curl",
        "/usr/bin/ssh",
        "/usr/bin/openssl",
        "/usr/bin/strace",
        "/usr/bin/gcc",
        "/usr/sbin/chroot",
    ];
    let mut compared = 0;
    for bin in candidates.iter().filter(|b| Path::new(b).exists()) {
        let mut ldd = Command::new("/usr/bin/ldd");
        ldd.arg(bin);
        let ldd = run(ldd, PROGRAM_TIMEOUT);
        ldd.assert_success();
        let theirs = identities(ldd.stdout_text().lines().filter_map(|l| {
            let (name, rest) = l.trim().split_once(" => ")?;
            let path = rest.split(" (").next()?.trim();
            Some((name.to_string(), PathBuf::from(path)))
        }));
        let mut ours = Command::new(env!("CARGO_BIN_EXE_jailtrace"));
        ours.args(["ldd", "--json", bin]);
        let ours = run(ours, PROGRAM_TIMEOUT);
        ours.assert_success().assert_no_panic();
        let json: serde_json::Value =
            serde_json::from_str(&ours.stdout_text()).expect("ldd --json prints JSON");
        let objects = json[0]["objects"].as_array().expect("objects").clone();
        let ours = identities(objects.iter().filter(|o| o["kind"] == "needed").map(|o| {
            (
                o["name"].as_str().unwrap_or_default().to_string(),
                PathBuf::from(o["path"].as_str().unwrap_or_default()),
            )
        }));
        assert!(!theirs.is_empty(), "{bin}: ldd listed nothing");
        assert_eq!(ours, theirs, "{bin}: jailtrace ldd and ldd disagree");
        compared += 1;
    }
    assert!(compared >= 10, "only {compared} binaries to compare");
}

#[test]
fn a_change_of_mode_owner_or_times_finds_its_file() {
    const NAME: &str = "a_change_of_mode_owner_or_times_finds_its_file";
    if !require_root(NAME) {
        return;
    }
    // Each command only changes the file's metadata: no open, no stat of
    // it. Without the call traced the jail lacks the file and the command
    // fails there with ENOENT.
    let file = "/etc/debian_version";
    let host = fs::read(file).expect("read /etc/debian_version");
    let chmod = format!("import os; os.chmod('{file}', 0o644)");
    let chown = format!("import os; os.chown('{file}', 0, 0)");
    for (argv, syscall) in [
        (vec!["/usr/bin/python3", "-c", &chmod], "chmod"),
        (vec!["/usr/bin/python3", "-c", &chown], "chown"),
        (vec!["/usr/bin/touch", "-c", file], "utimensat"),
    ] {
        let jail = Jail::new("attr");
        let outcome = jail.run(&argv, &[], BASE_ENV);
        outcome.expect_ok();
        let manifest = outcome.manifest();
        let entry = manifest
            .entry(Path::new(file))
            .unwrap_or_else(|| panic!("{argv:?}: {file} is not in the manifest"));
        assert_eq!(entry.reason.syscall.as_deref(), Some(syscall), "{argv:?}");
        // The file itself, not a hollow one, and the command runs again
        // under plain chroot.
        assert_eq!(
            fs::read(jail.root.join("etc/debian_version")).unwrap(),
            host
        );
        let jailed = chroot_output(&jail.root, &argv, BASE_ENV);
        jailed.assert_success();
    }
}
