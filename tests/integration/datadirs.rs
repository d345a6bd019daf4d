//! Data and runtime directories: `--bind` mounts a host directory into the
//! jail for the runs instead of copying what the program reads there, and
//! `--mkdir` makes a directory the host lacks too. Each is checked the way
//! a user meets it: sqlite3 keeps its database in a bound directory and a
//! plain `chroot` (after the `mount --bind` the summary prints) sees the
//! data; a read-only bind refuses writes; `build`, `verify`, `doctor`, the
//! bwrap script (run by bubblewrap) and the systemd drop-in (checked by
//! `systemd-analyze`) apply the bind; bad values are clear errors that
//! write and mount nothing. Also: a program that fails is told which
//! paths the host lacks too it looked for last.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use jailtrace_manifest::{Cause, Manifest};
use serde_json::Value;

use crate::cmd::{self, chroot_output, chroot_output_with_mounts, Mounted};
use crate::export::{assert_dropin_verifies, export, have, run_script, test_unit, text};
use crate::jail::{exit, Jail};
use crate::util::{mounts_under, require_root, BASE_ENV};

/// `sqlite3` on the host, or a loud skip.
fn sqlite3(test: &str) -> bool {
    have(test, "sqlite3")
}

/// Runs `sqlite3 DB SQL` on the host and returns its output.
fn host_sqlite(db: &Path, sql: &str) -> String {
    let mut command = Command::new("sqlite3");
    command.arg(db).arg(sql);
    let out = cmd::run(command, cmd::PROGRAM_TIMEOUT);
    out.assert_success();
    out.stdout_text()
}

/// Jails `sqlite3 /var/lib/app/app.db SQL` with `T/data` (mode `mode`,
/// holding `app.db` made on the host by `setup`) bound at `/var/lib/app`;
/// returns the jail, `T/data` and the run, which must have succeeded.
fn jail_sqlite(
    name: &str,
    mode: u32,
    setup: &str,
    sql: &str,
) -> (Jail, std::path::PathBuf, crate::jail::Outcome) {
    let jail = Jail::new(name);
    let data = jail.join("data");
    fs::create_dir(&data).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(mode)).unwrap();
    host_sqlite(&data.join("app.db"), setup);
    let bind = format!("{}:/var/lib/app", data.display());
    let argv = ["/usr/bin/sqlite3", "/var/lib/app/app.db", sql];
    let out = jail.run(&argv, &["--bind", &bind], BASE_ENV);
    out.expect_ok();
    assert_nothing_mounted(&jail, "jailtrace run");
    (jail, data, out)
}

/// Asserts that nothing is mounted below the test's directory.
fn assert_nothing_mounted(jail: &Jail, what: &str) {
    assert_eq!(
        mounts_under(&jail.path),
        Vec::<std::ffi::OsString>::new(),
        "{what} left something mounted"
    );
}

/// The `command` of the one bind in the `--json` summary of `out`.
fn bind_command(out: &crate::jail::Outcome) -> String {
    let summary: Value = serde_json::from_slice(&out.finished.stdout).unwrap();
    let binds = summary["binds"].as_array().expect("binds is a list");
    assert_eq!(binds.len(), 1, "{summary:#}");
    binds[0]["command"].as_str().expect("a command").to_owned()
}

/// The manifest's entries at or below `dir`.
fn entries_below<'m>(manifest: &'m Manifest, dir: &str) -> Vec<&'m jailtrace_manifest::Entry> {
    manifest
        .entries
        .iter()
        .filter(|e| e.path.as_path().starts_with(dir))
        .collect()
}

#[test]
fn sqlite_keeps_its_data_in_a_bound_directory() {
    let test = "sqlite_keeps_its_data_in_a_bound_directory";
    if !require_root(test) || !sqlite3(test) {
        return;
    }
    let (jail, data, out) = jail_sqlite(
        "bind-sqlite",
        0o750,
        "create table t(x); insert into t values ('from the host');",
        "insert into t values ('from the jail'); select count(*) from t;",
    );
    let manifest = out.manifest();

    // The bind is a mount; nothing below it was copied or recorded.
    let mount = manifest
        .mounts
        .iter()
        .find(|m| m.is_bind())
        .unwrap_or_else(|| panic!("no bind mount: {:?}", manifest.mounts));
    assert_eq!(mount.path.as_path(), Path::new("/var/lib/app"));
    assert_eq!(
        mount.source.as_ref().map(|s| s.as_path()),
        Some(data.as_path())
    );
    assert!(mount.options.is_empty(), "{:?}", mount.options);
    assert_eq!(mount.reason.cause, Cause::Requested);
    let below = entries_below(&manifest, "/var/lib/app");
    assert_eq!(below.len(), 1, "only the mount point: {below:#?}");
    let point = below[0];
    assert_eq!(point.reason.cause, Cause::Requested);
    assert_eq!(
        point.mode.bits(),
        0o750,
        "the mount point is like its source"
    );
    assert!(
        !manifest
            .absent
            .iter()
            .any(|p| p.path.as_path().starts_with("/var/lib/app")),
        "a path in the bind is not absent: {:?}",
        manifest.absent
    );
    assert_eq!(
        fs::read_dir(jail.root.join("var/lib/app")).unwrap().count(),
        0,
        "nothing was copied into the mount point"
    );
    // Both runs wrote the host's database (sqlite's journal came and went there).
    assert_eq!(
        host_sqlite(&data.join("app.db"), "select count(*) from t;"),
        "3\n"
    );

    // The summary's command, then plain chroot: the program sees the data.
    let command = format!(
        "mount --bind {} {}/var/lib/app",
        data.display(),
        jail.root.display()
    );
    assert_eq!(bind_command(&out), command);
    let select = [
        "/usr/bin/sqlite3",
        "/var/lib/app/app.db",
        "select x from t order by rowid;",
    ];
    let chrooted = chroot_output_with_mounts(&jail.root, &manifest, &select, BASE_ENV);
    chrooted.assert_success();
    assert_eq!(
        chrooted.stdout_text(),
        "from the host\nfrom the jail\nfrom the jail\n"
    );

    // verify: clean, the bind mounted or not.
    let manifest_arg = text(&jail.manifest);
    let verify = || jail.jailtrace(&["verify", "--manifest", manifest_arg], BASE_ENV);
    verify().assert_code(exit::OK);
    {
        let _mounted = Mounted::manifest(&jail.root, &manifest);
        let mounted = verify();
        mounted.assert_code(exit::OK);
    }

    // build into a new root: the mount point is made, the command printed.
    let rebuilt = jail.join("rebuilt");
    let built = jail.jailtrace(
        &[
            "build",
            "--manifest",
            manifest_arg,
            "--root",
            text(&rebuilt),
        ],
        BASE_ENV,
    );
    built.assert_code(exit::OK);
    assert!(
        built.stderr_text().contains(&format!(
            "mount --bind {} {}/var/lib/app",
            data.display(),
            rebuilt.display()
        )),
        "{}",
        built.report()
    );
    let made = fs::metadata(rebuilt.join("var/lib/app")).unwrap();
    assert!(made.is_dir() && made.mode() & 0o7777 == 0o750);

    // doctor mounts the bind for its run, and leaves nothing mounted.
    let doctor = |extra: &[&str]| {
        let mut args = vec!["doctor", "--root", text(&jail.root), "--json"];
        args.extend_from_slice(extra);
        args.push("--");
        args.extend_from_slice(&select);
        let out = jail.jailtrace(&args, BASE_ENV);
        out.assert_no_panic();
        assert_nothing_mounted(&jail, "doctor");
        out
    };
    let examined = doctor(&["--manifest", manifest_arg]);
    examined.assert_code(exit::OK);
    // Without its mount point the jail lacks the data: doctor says so.
    fs::remove_dir(jail.root.join("var/lib/app")).unwrap();
    let examined = doctor(&["--manifest", manifest_arg]);
    let report: Value = serde_json::from_slice(&examined.stdout)
        .unwrap_or_else(|e| panic!("{e}\n{}", examined.report()));
    let unbound: Vec<&Value> = report["diagnoses"]
        .as_array()
        .expect("diagnoses")
        .iter()
        .filter(|d| d["kind"] == "not_bound")
        .collect();
    assert_eq!(unbound.len(), 1, "{}", examined.report());
    assert_eq!(unbound[0]["mount"], "/var/lib/app");
    assert_eq!(unbound[0]["source"], text(&data));
}

#[test]
fn bwrap_and_systemd_exports_bind_the_directory() {
    let test = "bwrap_and_systemd_exports_bind_the_directory";
    if !require_root(test) || !sqlite3(test) {
        return;
    }
    let (jail, data, _) = jail_sqlite(
        "bind-export",
        0o755,
        "create table t(x);",
        "insert into t values (1); select count(*) from t;",
    );

    if have(test, "bwrap") {
        let script = jail.join("run.sh");
        export(&jail, &["--format", "bwrap", "-o", text(&script)]).assert_code(exit::OK);
        let body = fs::read_to_string(&script).unwrap();
        let line = format!("\t--bind {} /var/lib/app \\\n", data.display());
        assert!(body.contains(&line), "{line:?} not in\n{body}");
        let sandboxed = run_script(&script);
        sandboxed.assert_success();
        // Two rows from jailtrace's runs, the third from bubblewrap's.
        assert_eq!(sandboxed.stdout_text(), "3\n", "{}", sandboxed.report());
    }

    let out = export(&jail, &["--format", "systemd"]);
    out.assert_code(exit::OK);
    let dropin = out.stdout_text();
    let setting = format!("\nBindPaths={}:/var/lib/app\n", data.display());
    assert!(dropin.contains(&setting), "{setting:?} not in\n{dropin}");
    if have(test, "systemd-analyze") {
        assert_dropin_verifies(&test_unit(&jail), &dropin);
    }
}

#[test]
fn a_read_only_bind_refuses_writes() {
    let test = "a_read_only_bind_refuses_writes";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("bind-ro");
    let data = jail.join("site");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("index.html"), "hello from the host\n").unwrap();
    let argv = [
        "/bin/sh",
        "-c",
        "cat /srv/www/index.html; if echo x 2>/dev/null >/srv/www/new; then echo wrote; else echo refused; fi",
    ];
    let bind = format!("{}:/srv/www:ro", data.display());
    let out = jail.run(&argv, &["--bind", &bind], BASE_ENV);
    out.expect_ok();
    assert_nothing_mounted(&jail, "jailtrace run");
    assert!(
        !data.join("new").exists(),
        "the jailed program wrote the host's directory"
    );
    let manifest = out.manifest();
    let mount = manifest
        .mounts
        .iter()
        .find(|m| m.is_bind())
        .expect("a bind");
    assert_eq!(mount.options, ["ro"]);
    let point = format!("{}/srv/www", jail.root.display());
    let command = format!(
        "mount --bind {} {point} && mount -o remount,bind,ro {point}",
        data.display()
    );
    assert_eq!(bind_command(&out), command);
    // Plain chroot after the summary's commands: read, but not written.
    let chrooted = chroot_output_with_mounts(&jail.root, &manifest, &argv, BASE_ENV);
    chrooted.assert_success();
    assert_eq!(chrooted.stdout_text(), "hello from the host\nrefused\n");
    assert!(!data.join("new").exists());
    assert!(entries_below(&manifest, "/srv/www").len() == 1);
}

#[test]
fn mkdir_makes_a_directory_the_host_lacks() {
    let test = "mkdir_makes_a_directory_the_host_lacks";
    if !require_root(test) {
        return;
    }
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        crate::util::skip(test, "the host has no user nobody");
        return;
    };
    let path = format!("/run/jt-test-{}", crate::util::unique());
    assert!(!Path::new(&path).exists());
    let jail = Jail::new("mkdir");
    let script = format!("stat -c '%a %u' {path}");
    let argv = ["/bin/sh", "-c", script.as_str()];
    let spec = format!("{path}:0700:nobody");
    let out = jail.run(&argv, &["--mkdir", &spec], BASE_ENV);
    out.expect_ok();
    let uid = nobody.uid.as_raw();
    // With --json the program's stdout goes to stderr.
    let stderr = out.finished.stderr_text();
    assert!(stderr.contains(&format!("700 {uid}\n")), "{stderr}");
    let manifest = out.manifest();
    let entry = manifest
        .entry(Path::new(&path))
        .unwrap_or_else(|| panic!("no entry for {path}"));
    assert_eq!(entry.reason.cause, Cause::Requested);
    assert_eq!(
        (entry.mode.bits(), entry.uid, entry.gid),
        (0o700, uid, nobody.gid.as_raw())
    );
    assert!(!Path::new(&path).exists(), "nothing was made on the host");
    let manifest_arg = text(&jail.manifest);
    jail.jailtrace(&["verify", "--manifest", manifest_arg], BASE_ENV)
        .assert_code(exit::OK);
    let rebuilt = jail.join("rebuilt");
    jail.jailtrace(
        &[
            "build",
            "--manifest",
            manifest_arg,
            "--root",
            text(&rebuilt),
        ],
        BASE_ENV,
    )
    .assert_code(exit::OK);
    let made = fs::metadata(rebuilt.join(path.trim_start_matches('/'))).unwrap();
    assert_eq!(
        (made.mode() & 0o7777, made.uid(), made.gid()),
        (0o700, uid, nobody.gid.as_raw())
    );
    let chrooted = chroot_output(&rebuilt, &argv, BASE_ENV);
    chrooted.assert_success();
    assert_eq!(chrooted.stdout_text(), format!("700 {uid}\n"));
}

#[test]
fn bad_binds_are_clear_errors_that_write_and_mount_nothing() {
    let test = "bad_binds_are_clear_errors_that_write_and_mount_nothing";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("bind-bad");
    let data = jail.join("data");
    fs::create_dir(&data).unwrap();
    let missing = format!("{}/missing:/data", jail.path.display());
    let relative = format!("{}:var/data", data.display());
    let dotdot = format!("{}:/var/../etc", data.display());
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--bind", &missing],
            exit::ERROR,
            "cannot find the host directory",
        ),
        (&["--bind", "/:/host"], exit::ERROR, "the host's root"),
        (
            &["--bind", "/etc:/host-etc"],
            exit::ERROR,
            "host system directory",
        ),
        (&["--bind", &relative], exit::USAGE, "is not absolute"),
        (&["--bind", &dotdot], exit::USAGE, "`..`"),
        (
            &["--mkdir", "/run/x:0700:no-such-user-jt"],
            exit::ERROR,
            "no user",
        ),
    ];
    for (extra, code, says) in cases {
        let out = jail.run(&["/bin/true"], extra, BASE_ENV);
        out.finished.assert_no_panic().assert_code(*code);
        let stderr = out.finished.stderr_text();
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{extra:?}: {says:?} not in\n{stderr}"
        );
        assert!(!jail.root.exists(), "{extra:?}: the root was made");
        assert!(
            out.manifest_bytes.is_none(),
            "{extra:?}: a manifest was written"
        );
        assert_nothing_mounted(&jail, "a refused --bind");
    }
}

#[test]
fn a_failing_program_is_told_the_absent_paths_it_looked_for_last() {
    let test = "a_failing_program_is_told_the_absent_paths_it_looked_for_last";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("last-absent");
    let missing = format!("/run/jt-absent-{}", crate::util::unique());
    let script = format!(
        "test -e /etc/jt-not-here; test -d {missing} || {{ echo \"Missing directory: {missing}\" >&2; exit 255; }}"
    );
    let argv = ["/bin/sh", "-c", script.as_str()];
    let out = jail.run(&argv, &[], BASE_ENV);
    out.finished
        .assert_no_panic()
        .assert_code(exit::NOT_STARTED);
    let summary: Value = serde_json::from_slice(&out.finished.stdout).unwrap();
    let last: Vec<&str> = summary["last_absent"]
        .as_array()
        .expect("last_absent is a list")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert_eq!(last.last(), Some(&missing.as_str()), "{summary:#}");
    assert!(last.contains(&"/etc/jt-not-here"), "{summary:#}");
    // The text summary names them too.
    let text_out = jail.jailtrace(
        &[
            "run",
            "--root",
            text(&jail.join("root2")),
            "--manifest",
            text(&jail.join("m2.json")),
            "--",
            "/bin/sh",
            "-c",
            &script,
        ],
        BASE_ENV,
    );
    let stderr = text_out.stderr_text();
    assert!(
        stderr.contains("the last the program looked for before it failed:")
            && stderr.contains(&format!("           {missing} (")),
        "{stderr}"
    );
}
