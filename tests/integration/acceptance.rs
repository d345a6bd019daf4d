//! Acceptance tests: jail a real program with `jailtrace run`, check the
//! summary, manifest and root ([`check_jail`]), then run the program again
//! under a plain `chroot(8)` into that root and compare with the host.
//!
//! Each test prints `ACCEPTANCE <name> runs=.. files=.. bytes=.. wall_ms=..`
//! on stderr (see it with `--nocapture`).

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use jailtrace_manifest::{Cause, Manifest};

use crate::checks::check_jail;
use crate::cmd::{assert_same_stdout, chroot_output, chroot_output_with_mounts, host_output};
use crate::fixtures::fixtures;
use crate::jail::{Jail, Outcome};
use crate::resolve::{inside, resolve_in};
use crate::util::{self, require_root, BASE_ENV, PATH};

/// Jails `argv` with `env` into a fresh directory and runs [`check_jail`].
fn jail(name: &str, argv: &[&str], env: &[(&str, &str)]) -> (Jail, Outcome, Manifest) {
    let jail = Jail::new(name);
    let outcome = jail.run(argv, &[], env);
    let manifest = check_jail(name, &jail, &outcome, argv, env);
    (jail, outcome, manifest)
}

/// Asserts the host path `path` resolves inside the root to the same file
/// as on the host.
fn assert_resolves_like_host(root: &Path, path: &str) {
    let host = resolve_in(Path::new("/"), Path::new(path))
        .unwrap_or_else(|e| panic!("precondition: the host lacks {path}: {e}"));
    let jailed = resolve_in(root, Path::new(path))
        .unwrap_or_else(|e| panic!("{path} does not resolve inside the root: {e}"));
    assert_eq!(jailed, host, "{path} resolves differently inside the root");
}

#[test]
fn date_local_zone_matches_host() {
    if !require_root("date_local_zone_matches_host") {
        return;
    }
    let argv = ["/bin/date", "+%Z %z"];
    // BASE_ENV has no TZ: date reads /etc/localtime.
    let (jail, outcome, _) = jail("date", &argv, BASE_ENV);
    let host = host_output(&argv, BASE_ENV);
    assert_same_stdout(&chroot_output(&jail.root, &argv, BASE_ENV), &host);

    // With --json the program's stdout goes to stderr.
    let printed = host.stdout_text();
    assert!(
        outcome.finished.stderr_text().contains(printed.trim()),
        "with --json the program's output {printed:?} should appear on stderr\n{}",
        outcome.finished.report()
    );

    // /etc/localtime: a symlink (as on the host) whose chain stays in the root
    // and ends at a regular file with the host's bytes.
    let host_chain = resolve_in(Path::new("/"), Path::new("/etc/localtime"))
        .expect("precondition: the host has /etc/localtime");
    let chain = resolve_in(&jail.root, Path::new("/etc/localtime"))
        .unwrap_or_else(|e| panic!("ROOT/etc/localtime does not resolve inside the root: {e}"));
    assert_eq!(
        chain.links.first().map(PathBuf::as_path) == Some(Path::new("/etc/localtime")),
        host_chain.links.first().map(PathBuf::as_path) == Some(Path::new("/etc/localtime")),
        "ROOT/etc/localtime must be a symlink exactly when the host's is"
    );
    assert_eq!(
        chain, host_chain,
        "/etc/localtime's chain differs from the host's"
    );
    let file = inside(&jail.root, &chain.target);
    assert!(
        fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()),
        "{} is not a regular file",
        file.display()
    );
    let host_bytes = fs::read(fs::canonicalize("/etc/localtime").expect("host localtime resolves"))
        .expect("host localtime is readable");
    assert!(
        fs::read(&file).expect("the root's zone file is readable") == host_bytes,
        "{} differs from the host's resolved /etc/localtime",
        file.display()
    );
}

#[test]
fn date_with_tz_prints_jst() {
    if !require_root("date_with_tz_prints_jst") {
        return;
    }
    let env = [("PATH", PATH), ("TZ", "Asia/Tokyo")];
    let argv = ["/bin/date", "+%Z"];
    let (jail, _, _) = jail("date-tz", &argv, &env);
    let chrooted = chroot_output(&jail.root, &argv, &env);
    assert_same_stdout(&chrooted, &host_output(&argv, &env));
    assert_eq!(chrooted.stdout_text(), "JST\n", "{}", chrooted.report());
}

#[test]
fn bash_id_whoami_ls_resolve_names() {
    if !require_root("bash_id_whoami_ls_resolve_names") {
        return;
    }
    let argv = ["/bin/bash", "-c", "id; whoami; ls -l /"];
    let (jail, _, _) = jail("bash", &argv, BASE_ENV);
    let chrooted = chroot_output(&jail.root, &argv, BASE_ENV);
    chrooted.assert_success();
    let host = host_output(&argv, BASE_ENV);
    host.assert_success();
    let text = chrooted.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    let host_text = host.stdout_text();
    let host_lines: Vec<&str> = host_text.lines().collect();
    assert!(lines.len() > 3, "too little output\n{}", chrooted.report());
    assert_eq!(
        lines[..2],
        host_lines[..2],
        "id and whoami differ from the host's\n{}",
        chrooted.report()
    );

    // ls -l /: "total N" then one line per entry, with owner and group names.
    let ls = &lines[2..];
    assert!(ls[0].starts_with("total "), "{}", chrooted.report());
    assert!(
        ls.len() > 1,
        "ls -l / listed nothing\n{}",
        chrooted.report()
    );
    for line in &ls[1..] {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields.len() >= 4, "odd ls line {line:?}");
        for name in &fields[2..4] {
            assert!(
                !name.chars().all(|c| c.is_ascii_digit()) && !name.contains('?'),
                "ls shows {name:?} instead of a user or group name in {line:?}\n{}",
                chrooted.report()
            );
        }
    }
}

#[test]
fn python3_imports_stdlib_modules() {
    if !require_root("python3_imports_stdlib_modules") {
        return;
    }
    // /usr/bin/python3 explicitly: `python3` in a developer's PATH may be a pyenv shim.
    let argv = [
        "/usr/bin/python3",
        "-c",
        "import ssl, json, sqlite3, hashlib; print('ok')",
    ];
    let (jail, _, _) = jail("python3", &argv, BASE_ENV);
    let chrooted = chroot_output(&jail.root, &argv, BASE_ENV);
    chrooted.assert_success();
    assert_eq!(chrooted.stdout_text(), "ok\n", "{}", chrooted.report());
}

#[test]
fn perl_posix_strftime_matches_host() {
    if !require_root("perl_posix_strftime_matches_host") {
        return;
    }
    let argv = [
        "/usr/bin/perl",
        "-MPOSIX",
        "-e",
        r#"print strftime("%Y", localtime), "\n""#,
    ];
    let (jail, _, _) = jail("perl", &argv, BASE_ENV);
    assert_same_stdout(
        &chroot_output(&jail.root, &argv, BASE_ENV),
        &host_output(&argv, BASE_ENV),
    );
}

#[test]
fn git_version_matches_host() {
    if !require_root("git_version_matches_host") {
        return;
    }
    // /usr/bin/git explicitly: /usr/local/bin/git may shadow it.
    let argv = ["/usr/bin/git", "--version"];
    let (jail, _, _) = jail("git-version", &argv, BASE_ENV);
    assert_same_stdout(
        &chroot_output(&jail.root, &argv, BASE_ENV),
        &host_output(&argv, BASE_ENV),
    );
}

#[test]
fn git_init_works_in_chroot() {
    if !require_root("git_init_works_in_chroot") {
        return;
    }
    // HOME=/tmp: no user's ~/.gitconfig is looked up on (or copied from) the host.
    let env = [("PATH", PATH), ("HOME", "/tmp")];
    let id = util::unique();
    let traced = format!("/tmp/jailtrace-it-repo-{id}");
    let chrooted_repo = format!("/tmp/jailtrace-it-repo2-{id}");
    for repo in [&traced, &chrooted_repo] {
        assert!(
            !Path::new(repo).exists(),
            "precondition: the host has no {repo}"
        );
    }
    let argv = ["/usr/bin/git", "init", traced.as_str()];
    let (jail, _, _) = jail("git-init", &argv, &env);
    let chrooted = chroot_output(&jail.root, &["/usr/bin/git", "init", &chrooted_repo], &env);
    chrooted.assert_success();
    let head = inside(&jail.root, Path::new(&chrooted_repo)).join(".git/HEAD");
    assert!(
        head.is_file(),
        "{} is missing\n{}",
        head.display(),
        chrooted.report()
    );
    for repo in [&traced, &chrooted_repo] {
        assert!(
            !Path::new(repo).exists(),
            "git init in the jail created {repo} on the host"
        );
    }
}

#[test]
fn sh_uname_hostname_touch_date() {
    if !require_root("sh_uname_hostname_touch_date") {
        return;
    }
    let scratch = format!("/tmp/jailtrace-it-x-{}", util::unique());
    assert!(
        !Path::new(&scratch).exists(),
        "precondition: the host has no {scratch}"
    );
    let script = format!("set -e; uname -a; hostname; touch {scratch}; date +%Y");
    let argv = ["/bin/sh", "-c", script.as_str()];
    let (jail, _, _) = jail("sh", &argv, BASE_ENV);
    // The host runs the same script without the touch, so it creates nothing.
    let host = host_output(
        &["/bin/sh", "-c", "set -e; uname -a; hostname; date +%Y"],
        BASE_ENV,
    );
    let chrooted = chroot_output(&jail.root, &argv, BASE_ENV);
    assert_same_stdout(&chrooted, &host);
    assert!(
        inside(&jail.root, Path::new(&scratch)).is_file(),
        "touch {scratch} did not create it inside the root"
    );
    assert!(
        !Path::new(&scratch).exists(),
        "the jailed touch created {scratch} on the host"
    );

    // PATH probing copies only what the host has: each program is found where
    // the host has it first, and nothing appears where the host has nothing.
    for program in ["uname", "hostname", "touch", "date"] {
        let mut found = false;
        for dir in PATH.split(':') {
            let candidate = format!("{dir}/{program}");
            let on_host = resolve_in(Path::new("/"), Path::new(&candidate)).is_ok();
            if on_host && !found {
                found = true;
                assert_resolves_like_host(&jail.root, &candidate);
            } else if !on_host {
                assert!(
                    resolve_in(&jail.root, Path::new(&candidate)).is_err(),
                    "the root has {candidate}, which the host lacks"
                );
            }
        }
        assert!(found, "precondition: the host has {program} in {PATH}");
    }
    assert!(inside(&jail.root, Path::new("/usr/bin/uname")).is_file());
}

#[test]
fn threads_fixture_reads_four_files() {
    if !require_root("threads_fixture_reads_four_files") {
        return;
    }
    let Some(fx) = fixtures("threads_fixture_reads_four_files") else {
        return;
    };
    let exe = fx.threads.to_str().expect("the fixture path is UTF-8");
    let argv = [exe];
    let (jail, _, _) = jail("threads", &argv, BASE_ENV);
    let host = host_output(&argv, BASE_ENV);
    assert_same_stdout(&chroot_output(&jail.root, &argv, BASE_ENV), &host);
    assert_eq!(host.stdout_text().lines().count(), 4, "{}", host.report());
    for path in [
        "/etc/services",
        "/etc/protocols",
        "/usr/share/zoneinfo/Etc/UTC",
        "/etc/ethertypes",
    ] {
        assert_resolves_like_host(&jail.root, path);
    }
}

#[test]
fn origin_fixture_finds_its_library() {
    if !require_root("origin_fixture_finds_its_library") {
        return;
    }
    let Some(fx) = fixtures("origin_fixture_finds_its_library") else {
        return;
    };
    let exe = fx.origin_main.to_str().expect("the fixture path is UTF-8");
    let argv = [exe];
    let (jail, _, manifest) = jail("origin", &argv, BASE_ENV);
    // glibc's loader finds $ORIGIN through /proc/self/exe: the jail needs /proc.
    assert!(
        manifest
            .mounts
            .iter()
            .any(|m| m.fstype == "proc" && m.path.as_path() == Path::new("/proc")),
        "the manifest does not record the /proc mount: {:?}",
        manifest.mounts
    );
    let chrooted = chroot_output_with_mounts(&jail.root, &manifest, &argv, BASE_ENV);
    assert_same_stdout(&chrooted, &host_output(&argv, BASE_ENV));
    assert!(chrooted.stdout_text().contains("hello from libgreet"));
    // The library sits at $ORIGIN/../lib relative to the executable, as on the host.
    let lib = inside(&jail.root, &fx.origin_lib);
    assert!(lib.is_file(), "{} was not copied", lib.display());
    assert!(
        manifest.entry(&fx.origin_lib).is_some(),
        "the manifest has no entry for {}",
        fx.origin_lib.display()
    );
    assert_eq!(
        fx.origin_lib.parent().and_then(Path::parent),
        fx.origin_main.parent().and_then(Path::parent),
        "precondition: bin/ and lib/ share a parent"
    );
}

#[test]
fn static_fixture_needs_no_libc() {
    if !require_root("static_fixture_needs_no_libc") {
        return;
    }
    let Some(fx) = fixtures("static_fixture_needs_no_libc") else {
        return;
    };
    let exe = fx.static_bin.to_str().expect("the fixture path is UTF-8");
    let argv = [exe, "one", "two words"];
    let (jail, _, manifest) = jail("static", &argv, BASE_ENV);
    assert_same_stdout(
        &chroot_output(&jail.root, &argv, BASE_ENV),
        &host_output(&argv, BASE_ENV),
    );
    for entry in &manifest.entries {
        let name = entry
            .path
            .as_path()
            .file_name()
            .unwrap_or_default()
            .as_bytes();
        assert!(
            !name.starts_with(b"libc.so") && !name.starts_with(b"ld-linux"),
            "a static program got {} in its root",
            entry.path.as_path().display()
        );
        assert_ne!(
            entry.reason.cause,
            Cause::Interpreter,
            "a static program has no interpreter"
        );
    }
}
