//! Rootless: an ordinary account jails a program, and root builds the jail
//! from its manifest.
//!
//! The account is `jailtrace-test` (`.ci/run` creates it; these tests
//! create it when it is missing, with `useradd`, which also gives it a
//! range in /etc/subuid and /etc/subgid). jailtrace runs as that account
//! through `setpriv`, in a test directory the account owns; root runs of
//! the same program on the same host are the reference: `jailtrace diff`
//! of the two manifests must find nothing, and the jail root builds from
//! the rootless manifest must run under plain `chroot` as the program runs
//! on the host. Tests skip loudly without root or where the machine
//! refuses unprivileged user namespaces, unless JAILTRACE_TESTS_MUST_RUN=1.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use jailtrace_manifest::{Cause, EntryKind, Manifest, RunRole};

use crate::cmd::{self, Finished};
use crate::jail::{exit, Jail, JAILTRACE_TIMEOUT};
use crate::util::{self, require_root, BASE_ENV};

/// The unprivileged account the tests run jailtrace as.
const USER: &str = "jailtrace-test";

#[derive(Debug, Clone, Copy)]
struct Account {
    uid: u32,
    gid: u32,
}

/// The account, created when missing, and a lock that runs these tests
/// one at a time (each checks that no rootless helper is left when its
/// jailtrace has exited); `None` (after a loud skip) without root or where
/// the account may not create a user namespace.
fn account(test: &str) -> Option<(Account, MutexGuard<'static, ()>)> {
    if !require_root(test) {
        return None;
    }
    static ACCOUNT: OnceLock<Result<Account, String>> = OnceLock::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    match ACCOUNT.get_or_init(make_account) {
        Ok(a) => Some((*a, SERIAL.lock().unwrap_or_else(|e| e.into_inner()))),
        Err(why) => {
            util::skip(test, why);
            None
        }
    }
}

fn make_account() -> Result<Account, String> {
    let exists = Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let made = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/bash", USER])
            .output()
            .map_err(|e| format!("cannot run useradd: {e}"))?;
        if !made.status.success() {
            return Err(format!(
                "useradd {USER} failed: {}",
                String::from_utf8_lossy(&made.stderr)
            ));
        }
    }
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, USER])
            .output()
            .map_err(|e| e.to_string())?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("id {flag} {USER}: {e}"))
    };
    let account = Account {
        uid: id("-u")?,
        gid: id("-g")?,
    };
    let probe = Command::new("setpriv")
        .args(setpriv_args(account))
        .args(["unshare", "--user", "--map-root-user", "true"])
        .output()
        .map_err(|e| format!("cannot run setpriv: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "{USER} cannot create a user namespace here (unshare -Ur: {})",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    Ok(account)
}

fn setpriv_args(a: Account) -> Vec<String> {
    vec![
        format!("--reuid={}", a.uid),
        format!("--regid={}", a.gid),
        "--init-groups".into(),
        "--".into(),
    ]
}

/// A test directory the account owns (the root and manifests go there).
fn owned_jail(name: &str, a: Account) -> Jail {
    let jail = Jail::new(name);
    std::os::unix::fs::chown(&jail.path, Some(a.uid), Some(a.gid)).unwrap();
    jail
}

/// `jailtrace ARGS` run as the account, from the test directory, with
/// exactly `env`.
fn as_user(jail: &Jail, a: Account, args: &[OsString], env: &[(&str, &str)]) -> Finished {
    let mut command = Command::new("setpriv");
    command
        .args(setpriv_args(a))
        .arg(env!("CARGO_BIN_EXE_jailtrace"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(&jail.path);
    let finished = cmd::run(command, JAILTRACE_TIMEOUT);
    finished.assert_no_panic();
    // Nothing left running: the helper outside the namespace (a fork of
    // jailtrace, so with its command line) exits with jailtrace.
    let mut helper = vec![env!("CARGO_BIN_EXE_jailtrace")];
    helper.extend(
        args.iter()
            .map(|a| a.to_str().expect("test arguments are UTF-8")),
    );
    let left = util::wait_until_gone(&helper, Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "rootless helpers left: {left:?}\n{}",
        finished.report()
    );
    finished
}

/// `jailtrace run --root ROOT --manifest MANIFEST EXTRA -- ARGV`.
fn run_args(root: &Path, manifest: &Path, extra: &[&str], argv: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["run".into(), "--root".into(), root.into()];
    args.push("--manifest".into());
    args.push(manifest.into());
    args.extend(util::os_args(extra));
    args.push("--".into());
    args.extend(util::os_args(argv));
    args
}

fn text(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// The rootless and the root manifest of `argv` (jailed with `env`), the
/// rootless one checked to say so.
struct Pair {
    jail: Jail,
    rootless: PathBuf,
    root_run: PathBuf,
}

/// Jails `argv` as the account and as root into two roots of one test
/// directory, and asserts that `jailtrace diff` finds the manifests equal.
fn jail_both_ways(name: &str, a: Account, argv: &[&str], env: &[(&str, &str)]) -> Pair {
    jail_both_ways_in(owned_jail(name, a), a, &[], argv, env)
}

/// [`jail_both_ways`] in `jail`, with `extra` options for both runs.
fn jail_both_ways_in(
    jail: Jail,
    a: Account,
    extra: &[&str],
    argv: &[&str],
    env: &[(&str, &str)],
) -> Pair {
    let (u_root, u_manifest) = (jail.join("user.jail"), jail.join("user.json"));
    let (r_root, r_manifest) = (jail.join("root.jail"), jail.join("root.json"));
    let user = as_user(&jail, a, &run_args(&u_root, &u_manifest, extra, argv), env);
    user.assert_code(exit::OK);
    let stderr = user.stderr_text();
    assert!(
        stderr.contains("rootless: made as uid"),
        "the summary does not say it was rootless\n{}",
        user.report()
    );
    let root = cmd::run(
        jail.command(&run_args(&r_root, &r_manifest, extra, argv), env),
        JAILTRACE_TIMEOUT,
    );
    root.assert_code(exit::OK);

    let made = Manifest::read(&u_manifest).unwrap();
    let rootless = made.rootless.as_ref().expect("the manifest says rootless");
    assert_eq!((rootless.uid, rootless.gid), (a.uid, a.gid));
    assert!(Manifest::read(&r_manifest).unwrap().rootless.is_none());
    // The root made rootless belongs to the account, nothing to root.
    assert_eq!(fs::metadata(&u_root).unwrap().uid(), a.uid);

    let diff = jail.jailtrace(&["diff", text(&r_manifest), text(&u_manifest)], BASE_ENV);
    assert_eq!(
        diff.code(),
        Some(0),
        "the rootless manifest differs from the root run's\n{}",
        diff.report()
    );
    Pair {
        rootless: u_manifest,
        root_run: r_manifest,
        jail,
    }
}

/// Root builds a root from the rootless manifest, `verify` finds it clean,
/// and each of `checks` prints under plain `chroot` (with the manifest's
/// mounts) what it prints on the host.
fn built_by_root_runs_like_the_host(pair: &Pair, checks: &[&[&str]], env: &[(&str, &str)]) {
    let built = pair.jail.join("built");
    pair.jail
        .jailtrace(
            &[
                "build",
                "--manifest",
                text(&pair.rootless),
                "--root",
                text(&built),
            ],
            BASE_ENV,
        )
        .assert_success();
    let verify = pair.jail.jailtrace(
        &[
            "verify",
            "--manifest",
            text(&pair.rootless),
            "--root",
            text(&built),
        ],
        BASE_ENV,
    );
    verify.assert_success();
    let manifest = Manifest::read(&pair.rootless).unwrap();
    // Real device nodes with the host's owners.
    for e in manifest
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Device)
    {
        let p = built.join(e.path.as_path().strip_prefix("/").unwrap());
        let m = fs::symlink_metadata(&p).unwrap();
        assert!(
            std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()),
            "{}",
            p.display()
        );
        assert_eq!((m.uid(), m.gid()), (e.uid, e.gid), "{}", p.display());
    }
    for argv in checks {
        let jailed = cmd::chroot_output_with_mounts(&built, &manifest, argv, env);
        let host = cmd::host_output(argv, env);
        cmd::assert_same_stdout(&jailed, &host);
    }
}

fn env_with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = BASE_ENV.to_vec();
    env.extend_from_slice(extra);
    env
}

#[test]
fn rootless_date_records_what_root_records_and_root_builds_it() {
    let test = "rootless_date_records_what_root_records_and_root_builds_it";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let pair = jail_both_ways("rootless-date", a, &["/bin/date"], BASE_ENV);
    // The date changes; its format and zone do not.
    built_by_root_runs_like_the_host(
        &pair,
        &[&["/bin/date", "-d", "@0"], &["/bin/date", "+%Z %z"]],
        BASE_ENV,
    );
    assert!(pair.root_run.exists());
}

#[test]
fn rootless_date_in_tokyo() {
    let test = "rootless_date_in_tokyo";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let env = env_with(&[("TZ", "Asia/Tokyo")]);
    let pair = jail_both_ways("rootless-tz", a, &["/bin/date"], &env);
    built_by_root_runs_like_the_host(
        &pair,
        &[&["/bin/date", "-d", "@0"], &["/bin/date", "+%Z %z"]],
        &env,
    );
    let jailed = cmd::chroot_output(&pair.jail.join("built"), &["/bin/date", "+%Z"], &env);
    assert_eq!(jailed.stdout_text().trim(), "JST", "{}", jailed.report());
}

#[test]
fn rootless_bash_id_whoami() {
    let test = "rootless_bash_id_whoami";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let argv: &[&str] = &["/bin/bash", "-c", "id; whoami"];
    let pair = jail_both_ways("rootless-bash", a, argv, BASE_ENV);
    built_by_root_runs_like_the_host(&pair, &[argv], BASE_ENV);
}

/// `ls -l /` rootless sees the namespace's `/proc` owned by uid 65534,
/// which the jail's own user database lacks (the copying runs read the
/// host's): the verifying run loads the NSS module for it, missing it and
/// then, one level per run, the libraries it needs. The retry places the
/// module with its ELF closure, so one retry is enough.
#[test]
fn rootless_a_library_a_verifying_run_missed_comes_with_what_it_needs() {
    let test = "rootless_a_library_a_verifying_run_missed_comes_with_what_it_needs";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let jail = owned_jail("rootless-nss", a);
    let (root, manifest) = (jail.join("root"), jail.join("m.json"));
    let out = as_user(
        &jail,
        a,
        &run_args(&root, &manifest, &[], &["/bin/ls", "-l", "/"]),
        BASE_ENV,
    );
    out.assert_code(exit::OK);
    let m = Manifest::read(&manifest).unwrap();
    let roles: Vec<RunRole> = m.runs.iter().map(|r| r.role).collect();
    assert!(
        roles.len() <= 4,
        "more than one retry: {roles:?}\n{}",
        out.report()
    );
    let Some(retry) = m.runs.iter().find(|r| r.role == RunRole::Retry) else {
        // A host whose NSS asks no module for a missing uid: nothing to
        // miss, nothing to retry.
        return;
    };
    assert!(
        retry.placed > 0,
        "the retry records what it placed: {retry:?}"
    );
    // The module came with the libraries it needs, in the retry.
    let module = m
        .entries
        .iter()
        .find(|e| e.path.as_path().to_string_lossy().contains("libnss_"))
        .unwrap_or_else(|| panic!("the missed NSS module is recorded\n{}", out.report()));
    assert_eq!(module.reason.run, retry.index);
    let needed: Vec<_> = m
        .entries
        .iter()
        .filter(|e| e.reason.cause == Cause::Preseed && e.reason.run == retry.index)
        .collect();
    assert!(
        !needed.is_empty(),
        "nothing placed with the module\n{}",
        out.report()
    );
    let last = m.runs.last().unwrap();
    assert_eq!((last.role, last.misses), (RunRole::Verify, 0));
}

#[test]
fn rootless_python_ssl_json_sqlite_hashlib() {
    let test = "rootless_python_ssl_json_sqlite_hashlib";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let argv: &[&str] = &[
        "/usr/bin/python3",
        "-c",
        "import ssl, json, sqlite3, hashlib",
    ];
    let pair = jail_both_ways("rootless-python", a, argv, BASE_ENV);
    built_by_root_runs_like_the_host(
        &pair,
        &[&[
            "/usr/bin/python3",
            "-c",
            "import ssl, json, sqlite3, hashlib; print(hashlib.sha256(b'x').hexdigest(), json.dumps([1]))",
        ]],
        BASE_ENV,
    );
}

#[test]
fn rootless_perl_posix_and_git_version() {
    let test = "rootless_perl_posix_and_git_version";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let perl: &[&str] = &["/usr/bin/perl", "-MPOSIX", "-e", "1"];
    let pair = jail_both_ways("rootless-perl", a, perl, BASE_ENV);
    built_by_root_runs_like_the_host(&pair, &[perl], BASE_ENV);
    let git: &[&str] = &["/usr/bin/git", "--version"];
    let pair = jail_both_ways("rootless-git", a, git, BASE_ENV);
    built_by_root_runs_like_the_host(&pair, &[git], BASE_ENV);
}

/// A jail with a device node (/dev/null): `verify` and `doctor` by the
/// account find it clean and working, in namespaces of their own.
#[test]
fn rootless_verify_and_doctor_of_a_rootless_jail() {
    let test = "rootless_verify_and_doctor_of_a_rootless_jail";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let argv: &[&str] = &["/bin/sh", "-c", "echo hi > /dev/null; id -un"];
    let pair = jail_both_ways("rootless-verify", a, argv, BASE_ENV);
    let manifest = Manifest::read(&pair.rootless).unwrap();
    assert!(
        manifest
            .entries
            .iter()
            .any(|e| e.kind == EntryKind::Device && e.path.as_path() == Path::new("/dev/null")),
        "{manifest:?}"
    );
    let root = pair.jail.join("user.jail");
    let verify = as_user(
        &pair.jail,
        a,
        &util::os_args(&[
            "verify",
            "--manifest",
            text(&pair.rootless),
            "--root",
            text(&root),
        ]),
        BASE_ENV,
    );
    verify.assert_success();
    assert!(
        verify.stdout_text().contains("clean"),
        "{}",
        verify.report()
    );

    let mut args = util::os_args(&["doctor", "--root", text(&root), "--manifest"]);
    args.push(pair.rootless.clone().into());
    args.push("--".into());
    args.extend(util::os_args(argv));
    let doctor = as_user(&pair.jail, a, &args, BASE_ENV);
    doctor.assert_success();
    assert_eq!(doctor.stdout_text().trim(), "root", "{}", doctor.report());

    built_by_root_runs_like_the_host(&pair, &[argv], BASE_ENV);
}

/// The account exports the date jail for bubblewrap and runs it.
#[test]
fn rootless_bwrap_export_of_the_date_jail_runs_as_the_account() {
    let test = "rootless_bwrap_export_of_the_date_jail_runs_as_the_account";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    if !crate::export::have(test, "bwrap") {
        return;
    }
    let argv: &[&str] = &["/bin/date", "-d", "@0"];
    let pair = jail_both_ways("rootless-bwrap", a, argv, BASE_ENV);
    let script = pair.jail.join("date.sh");
    let export = as_user(
        &pair.jail,
        a,
        &util::os_args(&[
            "export",
            "--manifest",
            text(&pair.rootless),
            "--format",
            "bwrap",
            "-o",
            text(&script),
        ]),
        BASE_ENV,
    );
    export.assert_success();
    let mut command = Command::new("setpriv");
    command
        .args(setpriv_args(a))
        .arg("/bin/sh")
        .arg(&script)
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .current_dir(&pair.jail.path);
    let sandboxed = cmd::run(command, cmd::PROGRAM_TIMEOUT);
    cmd::assert_same_stdout(&sandboxed, &cmd::host_output(argv, BASE_ENV));
}

/// A host file the account may not read is denied with the reason, and
/// nothing of it lands in the root.
#[test]
fn rootless_unreadable_host_file_is_denied_with_a_reason() {
    let test = "rootless_unreadable_host_file_is_denied_with_a_reason";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let jail = owned_jail("rootless-unreadable", a);
    let secret_dir = jail.join("private");
    fs::create_dir(&secret_dir).unwrap();
    let secret = secret_dir.join("key");
    fs::write(&secret, "not for you\n").unwrap();
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let allow = jail.allow_own_files();
    let extra: Vec<&str> = allow.iter().map(String::as_str).collect();
    let out = as_user(
        &jail,
        a,
        &run_args(
            &jail.root,
            &jail.manifest,
            &extra,
            &["/bin/cat", text(&secret)],
        ),
        BASE_ENV,
    );
    out.assert_code(exit::NOT_STARTED);
    let stderr = out.stderr_text();
    assert!(
        stderr.contains("not readable on the host by you")
            && stderr.contains("run jailtrace as root"),
        "{}",
        out.report()
    );
    let copy = jail.root.join(secret.strip_prefix("/").unwrap());
    assert!(!copy.exists(), "{} was copied", copy.display());
    assert!(!jail.manifest.exists(), "a manifest was written");
}

/// A `--bind` of a host directory owned by root and another group: the
/// rootless manifest records its mount point with the host's owners (not
/// the 65534 the namespace shows), as the root run does.
#[test]
fn rootless_bind_mount_point_has_the_host_owners() {
    let test = "rootless_bind_mount_point_has_the_host_owners";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let jail = owned_jail("rootless-bind", a);
    let source = jail.join("data");
    fs::create_dir(&source).unwrap();
    std::os::unix::fs::chown(&source, Some(0), Some(1)).unwrap();
    let bind = format!("{}:/data", text(&source));
    let pair = jail_both_ways_in(jail, a, &["--bind", &bind], &["/bin/ls", "/data"], BASE_ENV);
    let made = Manifest::read(&pair.rootless).unwrap();
    let point = made
        .entries
        .iter()
        .find(|e| e.path.as_path() == Path::new("/data"))
        .expect("the mount point is recorded");
    assert_eq!((point.uid, point.gid), (0, 1), "{point:?}");
}

/// Every entry of a rootless root has, seen from the host, the owner the
/// manifest records as the namespace's map gives it (0 to the account, n
/// to the n-th subordinate id): owned by root, the files a run places
/// before the map exists; owned by others (here a program of `daemon`'s
/// and the account's own test directory), the files placed after it. The
/// second root is setgid with a group the map lacks, where a file made
/// before the map would keep that group: jailtrace waits for the map
/// there, and the owners are the same.
#[test]
fn rootless_root_owners_are_the_manifest_through_the_id_map() {
    let test = "rootless_root_owners_are_the_manifest_through_the_id_map";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let jail = owned_jail("rootless-owners", a);
    let program = jail.join("bin/true");
    fs::create_dir(jail.join("bin")).unwrap();
    fs::copy("/bin/true", &program).unwrap();
    std::os::unix::fs::chown(&program, Some(1), Some(1)).unwrap();
    let argv = [text(&program)];
    let pair = jail_both_ways_in(jail, a, &[], &argv, BASE_ENV);
    assert_owners_mapped(&pair.jail.join("user.jail"), &pair.rootless, a);

    let setgid = pair.jail.join("setgid.jail");
    fs::create_dir(&setgid).unwrap();
    std::os::unix::fs::chown(&setgid, Some(a.uid), Some(50)).unwrap();
    fs::set_permissions(&setgid, fs::Permissions::from_mode(0o2775)).unwrap();
    let manifest = pair.jail.join("setgid.json");
    as_user(
        &pair.jail,
        a,
        &run_args(&setgid, &manifest, &[], &["/bin/date"]),
        BASE_ENV,
    )
    .assert_code(exit::OK);
    assert_owners_mapped(&setgid, &manifest, a);
}

/// Asserts that each entry of `manifest` (but `/`) has in `root` the owner
/// the manifest records, mapped as the account's namespace maps ids.
fn assert_owners_mapped(root: &Path, manifest: &Path, a: Account) {
    let first = |file: &str| -> u32 {
        let text = fs::read_to_string(file).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{USER}:")))
            .unwrap_or_else(|| panic!("{file} gives {USER} no range"));
        line.split(':').nth(1).unwrap().parse().unwrap()
    };
    let (subuid, subgid) = (first("/etc/subuid"), first("/etc/subgid"));
    let map = |id: u32, own: u32, start: u32| if id == 0 { own } else { start + id - 1 };
    let made = Manifest::read(manifest).unwrap();
    let mut checked = 0;
    for e in made
        .entries
        .iter()
        .filter(|e| e.path.as_path() != Path::new("/"))
    {
        let p = root.join(e.path.as_path().strip_prefix("/").unwrap());
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        assert_eq!(
            (m.uid(), m.gid()),
            (map(e.uid, a.uid, subuid), map(e.gid, a.gid, subgid)),
            "{} (the manifest records {}:{})",
            p.display(),
            e.uid,
            e.gid
        );
        checked += 1;
    }
    assert!(checked > 10, "only {checked} entries in {}", root.display());
}

/// A jail file brought `up` by the account (two programs, one as
/// `nobody`, an id the account's subordinate range maps), then `update
/// --run` by the account: both rootless, both ok, the manifest says so
/// and records root-owned host files as root's. `build` by the account is
/// one clear error that writes nothing; root builds the jail.
#[test]
fn rootless_up_update_run_and_build_needs_root() {
    let test = "rootless_up_update_run_and_build_needs_root";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let jail = owned_jail("rootless-up", a);
    let file = jail.join("small.jail.toml");
    fs::write(
        &file,
        "root = \"small.jail\"\nmanifest = \"small.jail.json\"\n\n\
         [accounts]\nkeep_users = [\"nobody\"]\nkeep_groups = [\"nogroup\"]\n\n\
         [[program]]\ncommand = [\"/bin/date\"]\n\n\
         [[program]]\ncommand = [\"/usr/bin/id\"]\nuser = \"nobody\"\n",
    )
    .unwrap();
    let manifest = jail.join("small.jail.json");
    let up = as_user(&jail, a, &util::os_args(&["up", text(&file)]), BASE_ENV);
    up.assert_code(exit::OK);
    let made = Manifest::read(&manifest).unwrap();
    assert!(made.rootless.is_some(), "{}", up.report());
    let date = made
        .entries
        .iter()
        .find(|e| e.path.as_path() == Path::new("/usr/bin/date"))
        .expect("date is placed");
    assert_eq!((date.uid, date.gid), (0, 0), "{}", up.report());

    let update = as_user(
        &jail,
        a,
        &util::os_args(&["update", "--run", "--manifest", text(&manifest)]),
        BASE_ENV,
    );
    update.assert_code(exit::OK);
    assert!(Manifest::read(&manifest).unwrap().rootless.is_some());

    let built = jail.join("built");
    let refused = as_user(
        &jail,
        a,
        &util::os_args(&[
            "build",
            "--manifest",
            text(&manifest),
            "--root",
            text(&built),
        ]),
        BASE_ENV,
    );
    refused.assert_code(exit::ERROR);
    let first = refused
        .stderr_text()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        first.starts_with("error: build needs root") && first.contains("jailtrace run"),
        "{}",
        refused.report()
    );
    assert!(!built.exists(), "{}", refused.report());
    jail.jailtrace(
        &[
            "build",
            "--manifest",
            text(&manifest),
            "--root",
            text(&built),
        ],
        BASE_ENV,
    )
    .assert_code(exit::OK);
    let id = cmd::chroot_output(&built, &["/usr/bin/id", "-u"], BASE_ENV);
    assert_eq!(
        String::from_utf8_lossy(&id.stdout).trim(),
        "0",
        "{}",
        id.report()
    );
}

/// Where user namespaces are refused (here: user.max_user_namespaces is 0
/// in a namespace of the account's own), one error names the setting and
/// the alternatives, exit 1, and nothing is written.
#[test]
fn rootless_refused_user_namespaces_are_one_clear_error() {
    let test = "rootless_refused_user_namespaces_are_one_clear_error";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    let jail = owned_jail("rootless-refused", a);
    let mut command = Command::new("setpriv");
    command
        .args(setpriv_args(a))
        .args(["unshare", "--user", "--map-root-user", "/bin/sh", "-c"])
        .arg(r#"echo 0 > /proc/sys/user/max_user_namespaces && exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_jailtrace"))
        .args(run_args(
            &jail.root,
            &jail.manifest,
            &["--rootless"],
            &["/bin/date"],
        ))
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .current_dir(&jail.path);
    let out = cmd::run(command, JAILTRACE_TIMEOUT);
    assert_refused(
        &out,
        "error: cannot work without root",
        "run jailtrace as root",
        "user.max_user_namespaces is 0",
    );
    assert!(!jail.root.exists() && !jail.manifest.exists());
}

/// `out` is one clear error: exit 1, no panic, a first line that starts
/// with `starts` and names the way out (`way_out`), and the refusing
/// `setting` named below it. Returns the stderr.
fn assert_refused(out: &Finished, starts: &str, way_out: &str, setting: &str) -> String {
    out.assert_no_panic().assert_code(exit::ERROR);
    let stderr = out.stderr_text();
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(starts) && first.contains(way_out),
        "{}",
        out.report()
    );
    assert!(stderr.contains(setting), "{}", out.report());
    stderr
}

/// `jailtrace ARGS` as root, in a user namespace of its own (root mapped
/// to root) in which `sysctl` (a file under /proc/sys/user) is set to 0
/// first: a root run on a machine that refuses that kind of namespace.
fn as_root_refused(jail: &Jail, sysctl: &str, args: Vec<OsString>) -> Finished {
    let mut command = Command::new("unshare");
    command
        .args(["--user", "--map-root-user", "/bin/sh", "-c"])
        .arg(format!(r#"echo 0 > /proc/sys/user/{sysctl} && exec "$@""#))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_jailtrace"))
        .args(args)
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .current_dir(&jail.path);
    cmd::run(command, JAILTRACE_TIMEOUT)
}

/// Nothing but what the test made is left in the jail's directory: no
/// root, no manifest, no record of an unfinished run.
fn assert_nothing_written(jail: &Jail, out: &Finished) {
    let left: Vec<_> = fs::read_dir(&jail.path)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left: {left:?}\n{}", out.report());
}

/// A root run that cannot create the pid namespace it gives the program
/// (here: user.max_pid_namespaces is 0) fails with one error that names
/// the setting and the way out (`--no-pid-ns`), exit 1, nothing written;
/// with `--no-pid-ns` it jails the program.
#[test]
fn rootless_root_run_without_a_pid_namespace_is_one_clear_error() {
    let test = "rootless_root_run_without_a_pid_namespace_is_one_clear_error";
    let Some((_, _serial)) = account(test) else {
        return;
    };
    let jail = Jail::new("root-refused-pidns");
    let out = as_root_refused(
        &jail,
        "max_pid_namespaces",
        run_args(&jail.root, &jail.manifest, &[], &["/bin/date"]),
    );
    let stderr = assert_refused(
        &out,
        "error: cannot give the program a pid namespace of its own",
        "--no-pid-ns",
        "user.max_pid_namespaces is 0",
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1
    );
    assert_nothing_written(&jail, &out);

    let out = as_root_refused(
        &jail,
        "max_pid_namespaces",
        run_args(&jail.root, &jail.manifest, &["--no-pid-ns"], &["/bin/date"]),
    );
    out.assert_no_panic().assert_code(exit::OK);
    assert!(jail.manifest.exists(), "{}", out.report());
}

/// `--rootless` as root where user namespaces are refused: one error that
/// says to run without `--rootless`, exit 1, nothing written.
#[test]
fn rootless_asked_as_root_where_user_namespaces_are_refused() {
    let test = "rootless_asked_as_root_where_user_namespaces_are_refused";
    let Some((_, _serial)) = account(test) else {
        return;
    };
    let jail = Jail::new("root-refused-userns");
    let out = as_root_refused(
        &jail,
        "max_user_namespaces",
        run_args(&jail.root, &jail.manifest, &["--rootless"], &["/bin/date"]),
    );
    assert_refused(
        &out,
        "error: cannot work --rootless",
        "without --rootless",
        "user.max_user_namespaces is 0",
    );
    assert_nothing_written(&jail, &out);
}

/// nginx with its own configuration on a high port, jailed by the account
/// (its workers run as `nobody`, an id the namespace maps from the
/// account's subordinate range), equals a root run's jail; root builds it
/// and it serves its page under plain `chroot`.
#[test]
fn rootless_nginx_on_a_high_port() {
    let test = "rootless_nginx_on_a_high_port";
    let Some((a, _serial)) = account(test) else {
        return;
    };
    if !crate::net::require_server(test, "/usr/sbin/nginx", "nginx") {
        return;
    }
    let port = crate::net::free_port();
    let jail = owned_jail("rootless-nginx", a);
    fs::set_permissions(
        &jail.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let www = jail.join("www");
    fs::create_dir(&www).unwrap();
    let page = format!("rootless nginx {}\n", util::unique());
    fs::write(www.join("index.html"), &page).unwrap();
    let conf = jail.join("nginx.conf");
    fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process on;\nerror_log stderr;\npid {pid};\nworker_processes 1;\n\
             events {{}}\nhttp {{\n    include /etc/nginx/mime.types;\n    access_log off;\n    \
             server {{\n        listen 127.0.0.1:{port};\n        root {www};\n    }}\n}}\n",
            pid = jail.join("nginx.pid").display(),
            www = www.display(),
        ),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let argv = ["/usr/sbin/nginx", "-c", text(&conf)];
    let extra = ["--ready", url.as_str(), "--timeout", "60s"];
    let (u_root, u_manifest) = (jail.join("user.jail"), jail.join("user.json"));
    let (r_root, r_manifest) = (jail.join("root.jail"), jail.join("root.json"));
    as_user(
        &jail,
        a,
        &run_args(&u_root, &u_manifest, &extra, &argv),
        BASE_ENV,
    )
    .assert_code(exit::OK);
    cmd::run(
        jail.command(&run_args(&r_root, &r_manifest, &extra, &argv), BASE_ENV),
        JAILTRACE_TIMEOUT,
    )
    .assert_code(exit::OK);
    let diff = jail.jailtrace(&["diff", text(&r_manifest), text(&u_manifest)], BASE_ENV);
    assert_eq!(diff.code(), Some(0), "{}", diff.report());

    let built = jail.join("built");
    jail.jailtrace(
        &[
            "build",
            "--manifest",
            text(&u_manifest),
            "--root",
            text(&built),
        ],
        BASE_ENV,
    )
    .assert_success();
    let manifest = Manifest::read(&u_manifest).unwrap();
    let _mounted = cmd::Mounted::manifest(&built, &manifest);
    let mut server = Command::new("/usr/sbin/chroot");
    server
        .arg(&built)
        .args(argv)
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .current_dir("/");
    let running = cmd::spawn(server);
    let response = crate::net::http_get_retry(port, "/", crate::net::SERVE_WITHIN);
    drop(running);
    let response = response.unwrap_or_else(|e| panic!("nginx in the built root: {e}"));
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(String::from_utf8_lossy(&response.body), page);
}
