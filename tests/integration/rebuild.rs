//! `jailtrace build`, `verify` and `update` on real jails: a root built from
//! a manifest runs the program under plain chroot like the traced root
//! does, a second build changes nothing, `--link` shares the host's inodes,
//! a host file that differs from the manifest is reported (and refused with
//! `--strict`), `verify` names every kind of problem, and `update` brings a
//! host change into the root and the manifest.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jailtrace_manifest::Manifest;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cmd::{self, Finished};
use crate::jail::{exit, Jail};
use crate::util::{require_root, unique, BASE_ENV};

/// The program every test here jails: a shell, a symlink chain, a device,
/// the time zone database.
const PROGRAM: &[&str] = &[
    "/bin/sh",
    "-c",
    "echo x > /dev/null; TZ=Asia/Tokyo date -d @0; id",
];

fn jailtrace(jail: &Jail, args: &[&str]) -> Finished {
    let finished = jail.jailtrace(args, BASE_ENV);
    finished.assert_no_panic();
    finished
}

fn text(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn json(out: &Finished) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", out.report()))
}

/// Jails [`PROGRAM`] in `jail`'s default root.
fn jail_program(jail: &Jail) -> Manifest {
    let out = jail.run(PROGRAM, &[], BASE_ENV);
    out.expect_ok();
    out.manifest()
}

/// Every entry under `root` (not following links) with what a user would
/// compare: kind, mode, owner, size, link target, device, and for files the
/// content.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for item in fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let ft = meta.file_type();
            let what = if ft.is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if ft.is_dir() {
                "dir".to_string()
            } else if ft.is_file() {
                format!("file {:x}", sha2_of(&fs::read(&path).unwrap()))
            } else {
                format!("special rdev {}", meta.rdev())
            };
            let mode = if ft.is_symlink() {
                0
            } else {
                meta.mode() & 0o7777
            };
            out.insert(
                rel,
                format!(
                    "{what} mode {mode:o} owner {}:{} size {}",
                    meta.uid(),
                    meta.gid(),
                    if ft.is_file() { meta.len() } else { 0 }
                ),
            );
            if ft.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn sha2_of(bytes: &[u8]) -> sha2::digest::Output<sha2::Sha256> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
}

/// (inode, mtime, ctime) of everything under `root`: a build that changes
/// nothing leaves all three alone.
fn inodes(root: &Path) -> BTreeMap<PathBuf, (u64, i64, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in fs::read_dir(&dir).unwrap() {
            let path = item.unwrap().path();
            let m = fs::symlink_metadata(&path).unwrap();
            out.insert(
                path.clone(),
                (m.ino(), m.mtime(), m.ctime(), m.ctime_nsec()),
            );
            if m.file_type().is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

#[test]
fn build_recreates_the_jail_and_a_second_build_changes_nothing() {
    if !require_root("build_recreates_the_jail_and_a_second_build_changes_nothing") {
        return;
    }
    let jail = Jail::new("build");
    let manifest = jail_program(&jail);
    let built = jail.join("built");
    let m = text(&jail.manifest);

    let first = jailtrace(
        &jail,
        &["build", "--manifest", m, "--root", text(&built), "--json"],
    );
    first.assert_code(exit::OK);
    let report = &json(&first)["report"];
    let files = manifest
        .entries
        .iter()
        .filter(|e| e.kind == jailtrace_manifest::EntryKind::File && e.content.is_none())
        .count() as u64;
    assert_eq!(report["copied"], files, "{}", first.report());
    assert_eq!(report["written"], 2, "passwd and group: {}", first.report());
    assert!(report["mismatches"].as_array().unwrap().is_empty());

    // The same tree as the traced root, entry for entry.
    assert_eq!(tree(&built), tree(&jail.root));
    let host = cmd::host_output(PROGRAM, BASE_ENV);
    let jailed = cmd::chroot_output_with_mounts(&built, &manifest, PROGRAM, BASE_ENV);
    cmd::assert_same_stdout(&jailed, &host);

    let before = inodes(&built);
    let second = jailtrace(
        &jail,
        &["build", "--manifest", m, "--root", text(&built), "--json"],
    );
    second.assert_code(exit::OK);
    let report = &json(&second)["report"];
    assert_eq!(
        report["unchanged"],
        manifest.entries.len() as u64,
        "{}",
        second.report()
    );
    assert_eq!(report["copied"], 0);
    assert!(report["replaced"].as_array().unwrap().is_empty());
    assert_eq!(inodes(&built), before, "a second build touched the root");

    // A wrong file and a missing device are put right; the rest is left.
    let date = built.join("usr/bin/date");
    fs::write(&date, b"not date").unwrap();
    fs::remove_file(built.join("dev/null")).unwrap();
    let third = jailtrace(
        &jail,
        &["build", "--manifest", m, "--root", text(&built), "--json"],
    );
    let report = &json(&third)["report"];
    assert_eq!(report["copied"], 1, "{}", third.report());
    assert_eq!(report["made"], 1, "{}", third.report());
    assert_eq!(report["replaced"], serde_json::json!(["/usr/bin/date"]));
    assert_eq!(tree(&built), tree(&jail.root));
}

#[test]
fn build_link_shares_the_hosts_inodes_and_says_so() {
    if !require_root("build_link_shares_the_hosts_inodes_and_says_so") {
        return;
    }
    let jail = Jail::new("build-link");
    let manifest = jail_program(&jail);
    let built = jail.join("linked");
    let out = jailtrace(
        &jail,
        &[
            "build",
            "--link",
            "--manifest",
            text(&jail.manifest),
            "--root",
            text(&built),
        ],
    );
    out.assert_code(exit::OK);
    assert!(
        out.stderr_text().contains("hard-linked:"),
        "the summary says files were hard-linked\n{}",
        out.report()
    );
    // The test directory is on the host's root file system here, so every
    // copied file is the host's own inode.
    let same_fs = fs::metadata(&built).unwrap().dev() == fs::metadata("/usr/bin").unwrap().dev();
    for e in manifest.entries.iter().filter(|e| {
        e.kind == jailtrace_manifest::EntryKind::File
            && e.content.is_none()
            && e.reason.cause != jailtrace_manifest::Cause::Created
    }) {
        let p = e.path.as_path();
        let in_jail = fs::metadata(built.join(p.strip_prefix("/").unwrap())).unwrap();
        let on_host = fs::metadata(p).unwrap();
        assert_eq!(
            (in_jail.dev(), in_jail.ino()) == (on_host.dev(), on_host.ino()),
            same_fs,
            "{} is {}the host's inode",
            p.display(),
            if same_fs { "not " } else { "" }
        );
    }
    let host = cmd::host_output(PROGRAM, BASE_ENV);
    let jailed = cmd::chroot_output_with_mounts(&built, &manifest, PROGRAM, BASE_ENV);
    cmd::assert_same_stdout(&jailed, &host);
}

/// Rewrites the manifest at `path` so that its entry for `jail_path`
/// records another SHA-256, as if the host's file had changed since.
fn pretend_host_changed(path: &Path, jail_path: &str) -> String {
    let mut value: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let fake = "0".repeat(64);
    let entry = value["entries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["path"] == jail_path)
        .unwrap_or_else(|| panic!("{jail_path} is in the manifest"));
    entry["sha256"] = Value::String(fake.clone());
    fs::write(path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    fake
}

#[test]
fn build_reports_a_host_file_that_differs_and_strict_refuses() {
    if !require_root("build_reports_a_host_file_that_differs_and_strict_refuses") {
        return;
    }
    let jail = Jail::new("build-strict");
    let manifest = jail_program(&jail);
    let libc = manifest
        .entries
        .iter()
        .find(|e| e.path.as_path().ends_with("libc.so.6") && e.sha256.is_some())
        .expect("libc is in the jail")
        .path
        .to_string();
    pretend_host_changed(&jail.manifest, &libc);
    let m = text(&jail.manifest);

    let strict_root = jail.join("strict");
    let strict = jailtrace(
        &jail,
        &[
            "build",
            "--strict",
            "--manifest",
            m,
            "--root",
            text(&strict_root),
        ],
    );
    strict.assert_code(exit::ERROR);
    let err = strict.stderr_text();
    assert!(
        err.contains(&format!("host file {libc} differs from the manifest")),
        "{}",
        strict.report()
    );
    assert!(err.contains("nothing was built"), "{}", strict.report());
    assert_eq!(
        fs::read_dir(&strict_root).map(|d| d.count()).unwrap_or(0),
        0,
        "--strict wrote into the root"
    );

    let lax_root = jail.join("lax");
    let lax = jailtrace(
        &jail,
        &["build", "--manifest", m, "--root", text(&lax_root)],
    );
    lax.assert_code(exit::OK);
    assert!(
        lax.stderr_text().contains(&format!(
            "warning: host file {libc} differs from the manifest"
        )),
        "{}",
        lax.report()
    );
}

#[test]
fn verify_names_every_kind_of_problem_and_exits_0_only_when_clean() {
    if !require_root("verify_names_every_kind_of_problem_and_exits_0_only_when_clean") {
        return;
    }
    let jail = Jail::new("verify");
    jail_program(&jail);
    let m = text(&jail.manifest);
    let clean = jailtrace(&jail, &["verify", "--manifest", m, "--json"]);
    clean.assert_code(exit::OK);
    assert_eq!(json(&clean)["clean"], true, "{}", clean.report());
    assert!(clean.stdout_text().contains("\"findings\": []"));

    let root = &jail.root;
    fs::remove_file(root.join("dev/null")).unwrap();
    fs::write(root.join("usr/bin/date"), b"tampered").unwrap();
    fs::set_permissions(root.join("usr/bin/id"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(root.join("etc/planted"), b"x").unwrap();
    symlink("/", root.join("escape")).unwrap();
    std::os::unix::fs::chown(root.join("usr/bin"), Some(1), Some(2)).unwrap();
    // The program's scratch space is not "extra".
    fs::write(root.join("tmp/scratch"), b"x").unwrap();
    let sh = fs::canonicalize("/bin/sh").unwrap();
    pretend_host_changed(&jail.manifest, sh.to_str().unwrap());

    let out = jailtrace(&jail, &["verify", "--manifest", m, "--json"]);
    out.assert_code(exit::ERROR);
    let report = json(&out);
    assert_eq!(report["clean"], false);
    assert_eq!(report["runtime_files"], 1, "{}", out.report());
    let findings: Vec<(String, String, Vec<String>)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["problem"].as_str().unwrap().to_string(),
                f["fields"]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let has = |path: &str, problem: &str, fields: &[&str]| {
        assert!(
            findings.iter().any(|(p, pr, f)| p == path
                && pr == problem
                && f.iter().map(String::as_str).collect::<Vec<_>>() == fields),
            "no {problem} {fields:?} finding for {path} in {findings:#?}"
        );
    };
    has("/dev/null", "missing", &[]);
    has("/usr/bin/date", "changed_in_root", &["content"]);
    has("/usr/bin/id", "changed_in_root", &["mode"]);
    has("/etc/planted", "extra", &[]);
    has("/escape", "extra", &[]);
    // sh is the same in the root and on the host; only the manifest says
    // otherwise: it is reported on both sides.
    has(sh.to_str().unwrap(), "changed_in_root", &["content"]);
    has(sh.to_str().unwrap(), "changed_on_host", &["content"]);
    has("/usr/bin", "changed_in_root", &["owner"]);
    assert_eq!(findings.len(), 8, "{findings:#?}");

    // Each change carries the manifest's value and the one found.
    let finding = |path: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path && f["problem"] == "changed_in_root")
            .unwrap_or_else(|| panic!("no change of {path} in {report:#}"))
            .clone()
    };
    let manifest = Manifest::read(&jail.manifest).unwrap();
    let recorded = |path: &str| manifest.entry(Path::new(path)).unwrap().clone();
    let id = finding("/usr/bin/id");
    assert_eq!(
        id["expected"]["mode"],
        recorded("/usr/bin/id").mode.to_string()
    );
    assert_eq!(id["found"]["mode"], "4755", "{id:#}");
    let date = finding("/usr/bin/date");
    assert_eq!(
        date["expected"]["size"],
        recorded("/usr/bin/date").size.unwrap()
    );
    assert_eq!(
        date["expected"]["sha256"].as_str(),
        recorded("/usr/bin/date").sha256.as_deref()
    );
    assert_eq!(date["found"]["size"], 8, "{date:#}");
    let tampered = format!("{:x}", Sha256::digest(b"tampered"));
    assert_eq!(date["found"]["sha256"], tampered.as_str(), "{date:#}");
    let usr_bin = finding("/usr/bin");
    assert_eq!(usr_bin["expected"]["uid"], 0, "{usr_bin:#}");
    assert_eq!(usr_bin["found"]["uid"], 1, "{usr_bin:#}");
    assert_eq!(usr_bin["found"]["gid"], 2, "{usr_bin:#}");
    assert!(
        usr_bin["found"].get("mode").is_none(),
        "only what differs: {usr_bin:#}"
    );

    // The text form names the same paths, one per line, with the values.
    let text_out = jailtrace(&jail, &["verify", "--manifest", m]);
    text_out.assert_code(exit::ERROR);
    let stdout = text_out.stdout_text();
    for path in ["/dev/null", "/usr/bin/date", "/etc/planted"] {
        assert!(stdout.contains(path), "{}", text_out.report());
    }
    let id_line = format!(
        "changed       /usr/bin/id: mode {} in the manifest, 4755 in the root\n",
        recorded("/usr/bin/id").mode
    );
    assert!(stdout.contains(&id_line), "no {id_line:?} in\n{stdout}");
    assert!(
        stdout.contains("changed       /usr/bin: owner 0:0 in the manifest, 1:2 in the root\n"),
        "{stdout}"
    );
    let date_sizes = format!(
        "changed       /usr/bin/date: size {} in the manifest, 8 in the root; sha256 {} in the manifest, {} in the root\n",
        recorded("/usr/bin/date").size.unwrap(),
        &recorded("/usr/bin/date").sha256.unwrap()[..12],
        &tampered[..12],
    );
    assert!(
        stdout.contains(&date_sizes),
        "no {date_sizes:?} in\n{stdout}"
    );
}

/// A directory under /opt that the test's program reads through a
/// symlink, removed when dropped: a stand-in for a package upgrade the
/// test can make without touching the host's real libraries.
struct FakePackage {
    dir: PathBuf,
}

impl FakePackage {
    fn new() -> FakePackage {
        let dir = PathBuf::from(format!("/opt/jailtrace-test-{}", unique()));
        fs::create_dir_all(dir.join("v1")).unwrap();
        fs::create_dir_all(dir.join("v2")).unwrap();
        fs::write(dir.join("v1/data"), "version 1\n").unwrap();
        fs::write(dir.join("v2/data"), "version 2\n").unwrap();
        fs::write(dir.join("v2/extra"), "needed since version 2\n").unwrap();
        fs::write(dir.join("conf"), "setting=old\n").unwrap();
        fs::write(dir.join("list"), "data\n").unwrap();
        symlink("v1", dir.join("current")).unwrap();
        FakePackage { dir }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.join(rel).to_str().unwrap().to_string()
    }

    /// The upgrade: new conf content, `current` -> v2, and the list names
    /// a file version 1 did not have.
    fn upgrade(&self) {
        fs::write(self.dir.join("conf"), "setting=new, longer\n").unwrap();
        fs::remove_file(self.dir.join("current")).unwrap();
        symlink("v2", self.dir.join("current")).unwrap();
        fs::write(self.dir.join("list"), "data\nextra\n").unwrap();
    }
}

impl Drop for FakePackage {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn update_brings_host_changes_into_the_root_and_the_manifest() {
    if !require_root("update_brings_host_changes_into_the_root_and_the_manifest") {
        return;
    }
    let pkg = FakePackage::new();
    let script = format!(
        "cat {conf}; for f in $(cat {list}); do cat {current}/$f; done",
        conf = pkg.path("conf"),
        list = pkg.path("list"),
        current = pkg.path("current"),
    );
    let argv = ["/bin/sh", "-c", script.as_str()];
    let jail = Jail::new("update");
    jail.run(&argv, &[], BASE_ENV).expect_ok();
    let m = text(&jail.manifest);
    let before = Manifest::read(&jail.manifest).unwrap();

    pkg.upgrade();
    let stale = jailtrace(&jail, &["verify", "--manifest", m, "--json"]);
    stale.assert_code(exit::ERROR);
    let stale = stale.stdout_text();
    assert!(stale.contains("changed_on_host"), "{stale}");

    let up = jailtrace(&jail, &["update", "--manifest", m]);
    up.assert_code(exit::OK);
    let err = up.stderr_text();
    assert!(
        err.contains(&format!("updated  {}: content", pkg.path("conf"))),
        "{}",
        up.report()
    );
    assert!(
        err.contains(&format!("updated  {}: target", pkg.path("current"))),
        "{}",
        up.report()
    );
    assert!(
        err.contains(&format!("added    {}", pkg.path("v2/data"))),
        "{}",
        up.report()
    );
    let after = Manifest::read(&jail.manifest).unwrap();
    assert_ne!(
        before.entry(Path::new(&pkg.path("conf"))).unwrap().sha256,
        after.entry(Path::new(&pkg.path("conf"))).unwrap().sha256
    );
    assert_eq!(
        fs::read(jail.root.join(pkg.path("conf").trim_start_matches('/'))).unwrap(),
        fs::read(pkg.path("conf")).unwrap()
    );
    // Clean against the host now, and a second update has nothing to do.
    jailtrace(&jail, &["verify", "--manifest", m]).assert_code(exit::OK);
    let again = jailtrace(&jail, &["update", "--manifest", m]);
    assert!(
        again.stderr_text().contains("up to date"),
        "{}",
        again.report()
    );

    // The new version needs a file the old one did not: only a traced run
    // finds it. Without it the jail fails; `update --run` adds it.
    let host = cmd::host_output(&argv, BASE_ENV);
    let broken = cmd::chroot_output(&jail.root, &argv, BASE_ENV);
    assert!(
        !broken.status.success(),
        "v2/extra should be missing\n{}",
        broken.report()
    );
    let rerun = jailtrace(&jail, &["update", "--run", "--manifest", m]);
    rerun.assert_code(exit::OK);
    assert!(
        Manifest::read(&jail.manifest)
            .unwrap()
            .entry(Path::new(&pkg.path("v2/extra")))
            .is_some(),
        "{}",
        rerun.report()
    );
    let fixed = cmd::chroot_output(&jail.root, &argv, BASE_ENV);
    cmd::assert_same_stdout(&fixed, &host);
}

#[test]
fn hollow_files_survive_build_and_the_sh_and_tar_exports() {
    if !require_root("hollow_files_survive_build_and_the_sh_and_tar_exports") {
        return;
    }
    // Python's import system only stats most .py files (it reads the
    // cached .pyc after comparing its recorded size and time with the
    // .py's): those stay hollow, and every rebuilt root must keep their
    // size and time, or Python reads the zeros.
    let argv = [
        "/usr/bin/python3",
        "-c",
        "import json, email.message; print('ok')",
    ];
    let jail = Jail::new("hollow-rebuild");
    let out = jail.run(&argv, &[], BASE_ENV);
    out.expect_ok();
    let manifest = out.manifest();
    let hollow: Vec<_> = manifest.entries.iter().filter(|e| e.hollow).collect();
    assert!(!hollow.is_empty(), "python3 left no hollow file");
    let host = cmd::host_output(&argv, BASE_ENV);
    let m = text(&jail.manifest);

    let built = jail.join("built");
    fs::create_dir(&built).unwrap();
    jailtrace(&jail, &["build", "--manifest", m, "--root", text(&built)]).assert_success();

    let from_sh = jail.join("from-sh");
    let script = jail.join("build.sh");
    jailtrace(
        &jail,
        &[
            "export",
            "--manifest",
            m,
            "--format",
            "sh",
            "-o",
            text(&script),
        ],
    )
    .assert_success();
    cmd::run(
        {
            let mut c = std::process::Command::new("/bin/sh");
            c.arg(&script).arg(&from_sh);
            c
        },
        cmd::PROGRAM_TIMEOUT,
    )
    .assert_success();

    let from_tar = jail.join("from-tar");
    let archive = jail.join("root.tar");
    jailtrace(
        &jail,
        &[
            "export",
            "--manifest",
            m,
            "--format",
            "tar",
            "-o",
            text(&archive),
        ],
    )
    .assert_success();
    fs::create_dir(&from_tar).unwrap();
    cmd::run(
        {
            let mut c = std::process::Command::new("tar");
            c.args([
                "-xpf",
                text(&archive),
                "--numeric-owner",
                "-C",
                text(&from_tar),
            ]);
            c
        },
        cmd::PROGRAM_TIMEOUT,
    )
    .assert_success();

    for root in [&built, &from_sh, &from_tar] {
        for e in &hollow {
            let rel = e.path.as_path().strip_prefix("/").unwrap();
            let (made, on_host) = (
                fs::metadata(root.join(rel)).unwrap(),
                fs::metadata(e.path.as_path()).unwrap(),
            );
            assert_eq!(
                (made.len(), made.mtime()),
                (on_host.len(), on_host.mtime()),
                "{} in {}",
                e.path,
                root.display()
            );
        }
        cmd::assert_same_stdout(&cmd::chroot_output(root, &argv, BASE_ENV), &host);
    }
    // A second build leaves the hollow files alone.
    let again = jailtrace(
        &jail,
        &["build", "--manifest", m, "--root", text(&built), "--json"],
    );
    again.assert_success();
    let report = &json(&again)["report"];
    assert_eq!(
        report["replaced"].as_array().map(Vec::len),
        Some(0),
        "{}",
        again.report()
    );
    assert_eq!(report["made"].as_u64(), Some(0), "{}", again.report());
    jailtrace(&jail, &["verify", "--manifest", m, "--root", text(&built)]).assert_success();
}

#[test]
fn what_the_program_created_is_recorded_but_never_built_nor_missing() {
    if !require_root("what_the_program_created_is_recorded_but_never_built_nor_missing") {
        return;
    }
    // Like `python3 -m venv`: directories made, some removed again.
    let script = "mkdir -p /var/tmp/out/a/b && echo x > /var/tmp/out/a/b/f && \
                  mkdir /var/tmp/scratch && rmdir /var/tmp/scratch";
    let jail = Jail::new("created");
    let out = jail.run(&["/bin/sh", "-c", script], &[], BASE_ENV);
    out.expect_ok();
    let manifest = out.manifest();
    for created in ["/var/tmp/out", "/var/tmp/out/a/b", "/var/tmp/scratch"] {
        let entry = manifest
            .entry(Path::new(created))
            .unwrap_or_else(|| panic!("{created} is not recorded"));
        assert_eq!(entry.reason.cause, jailtrace_manifest::Cause::Created);
    }
    let m = text(&jail.manifest);
    let verify = jailtrace(&jail, &["verify", "--manifest", m]);
    verify.assert_success();
    let built = jail.join("built");
    fs::create_dir(&built).unwrap();
    jailtrace(&jail, &["build", "--manifest", m, "--root", text(&built)]).assert_success();
    assert!(built.join("var/tmp").is_dir());
    assert!(
        !built.join("var/tmp/out").exists(),
        "build made the program's output"
    );
    jailtrace(&jail, &["verify", "--manifest", m, "--root", text(&built)]).assert_success();
    cmd::chroot_output(&built, &["/bin/sh", "-c", script], BASE_ENV).assert_success();
}

#[test]
fn update_says_a_changed_configuration_needs_update_run() {
    if !require_root("update_says_a_changed_configuration_needs_update_run") {
        return;
    }
    // The program reads a configuration file, which later includes another.
    let pkg = FakePackage::new();
    let conf = pkg.path("conf");
    let script = format!(". {conf}; echo \"$setting\"");
    let argv = ["/bin/sh", "-c", script.as_str()];
    let jail = Jail::new("update-conf");
    jail.run(&argv, &[], BASE_ENV).expect_ok();
    let m = text(&jail.manifest);
    fs::write(&conf, format!(". {}\n", pkg.path("v2/more.conf"))).unwrap();
    fs::write(pkg.path("v2/more.conf"), "setting=included\n").unwrap();

    let json_up = jailtrace(&jail, &["update", "--json", "--manifest", m]);
    json_up.assert_code(exit::OK);
    let report = json(&json_up);
    assert_eq!(report["run_needed"], true, "{report:#}");
    let changed = report["report"]["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{report:#}");
    assert_eq!(changed[0]["path"], conf.as_str());
    assert_eq!(changed[0]["configuration"], true, "{report:#}");

    // verify is clean, yet the jail lacks what the configuration includes:
    // the words say so, and `update --run` finds it.
    jailtrace(&jail, &["verify", "--manifest", m]).assert_code(exit::OK);
    let broken = cmd::chroot_output(&jail.root, &argv, BASE_ENV);
    assert!(!broken.status.success(), "{}", broken.report());
    // The same in words (the manifest made stale again to have a change).
    pretend_host_changed(&jail.manifest, &conf);
    let up = jailtrace(&jail, &["update", "--manifest", m]);
    up.assert_code(exit::OK);
    let err = up.stderr_text();
    assert!(
        err.contains(&format!("note: {conf} changed and is read by the program"))
            && err.contains("run `jailtrace update --run --manifest "),
        "{}",
        up.report()
    );
    jailtrace(&jail, &["update", "--run", "--manifest", m]).assert_code(exit::OK);
    let fixed = cmd::chroot_output(&jail.root, &argv, BASE_ENV);
    cmd::assert_same_stdout(&fixed, &cmd::host_output(&argv, BASE_ENV));

    // A changed ELF object is no configuration: no note.
    let sh = fs::canonicalize("/bin/sh").unwrap();
    pretend_host_changed(&jail.manifest, sh.to_str().unwrap());
    let up = jailtrace(&jail, &["update", "--json", "--manifest", m]);
    let report = json(&up);
    assert_eq!(report["run_needed"], false, "{report:#}");
    assert_eq!(report["report"]["changed"][0]["configuration"], false);
}
