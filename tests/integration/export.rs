//! `jailtrace export`: each format checked by its real consumer. A real
//! program is jailed first (a shell running `date`, reading the synthesized
//! /etc/passwd and /proc, writing /dev/null: a symlink chain, a device, a
//! synthesized file and a mount); then the sh script is run by /bin/sh, the
//! archive unpacked by GNU tar, the Dockerfile built by buildah, the bwrap
//! script run by bubblewrap, the systemd drop-in checked by
//! `systemd-analyze`, the OCI layout unpacked by umoci and read by skopeo.
//! Each built root must run the program with the host's output and hold
//! every entry with the manifest's kind, mode, owner, target and content.
//! A consumer missing from this machine skips its test loudly.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use jailtrace_manifest::{Cause, EntryKind, Manifest};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cmd::{self, Finished};
use crate::jail::{exit, Jail};
use crate::resolve::inside;
use crate::util::{self, require_root, BASE_ENV};

/// The jailed program: a symlink chain (/bin, /lib64), a device
/// (/dev/null), a synthesized /etc/passwd and a proc mount.
const PROGRAM: &[&str] = &[
    "/bin/sh",
    "-c",
    "echo hi > /dev/null; date -u -d @0; cut -d: -f1,3 /etc/passwd | head -1; head -1 /proc/self/status",
];

/// Environment of the jail run: PATH, two session variables the exports
/// leave out, and one passed with `--pass-env` that they keep.
const RUN_ENV: &[(&str, &str)] = &[
    ("PATH", util::PATH),
    ("TERM", "xterm"),
    ("SHLVL", "3"),
    ("GREETING", "hello world"),
];

/// Jails [`PROGRAM`] and returns its manifest.
fn jail_program(jail: &Jail) -> Manifest {
    let out = jail.run(PROGRAM, &["--pass-env", "GREETING"], RUN_ENV);
    out.expect_ok();
    out.manifest()
}

/// `jailtrace export --manifest T/m.json ARGS`, asserting no panic.
pub fn export(jail: &Jail, args: &[&str]) -> Finished {
    let manifest = text(&jail.manifest);
    let mut all = vec!["export", "--manifest", manifest];
    all.extend_from_slice(args);
    let finished = jail.jailtrace(&all, BASE_ENV);
    finished.assert_no_panic();
    finished
}

pub fn text(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Whether `tool --version` runs; otherwise skips `test` loudly.
pub fn have(test: &str, tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found || util::skip(test, &format!("{tool} is not installed"))
}

/// Runs the script at `script` (an exported bwrap script) with `/bin/sh`
/// and exactly [`BASE_ENV`].
pub fn run_script(script: &Path) -> Finished {
    let mut command = Command::new("/bin/sh");
    command
        .arg(script)
        .env_clear()
        .envs(BASE_ENV.iter().copied());
    cmd::run(command, cmd::PROGRAM_TIMEOUT)
}

/// Runs `program` with `args` and asserts it succeeded.
fn run_ok(program: &str, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut command = Command::new(program);
    command.args(args).env_clear().envs(env.iter().copied());
    let finished = cmd::run(command, cmd::PROGRAM_TIMEOUT);
    finished.assert_success();
    finished
}

/// [`PROGRAM`] chrooted into `root` (with the manifest's mounts) prints
/// what it prints on the host.
fn assert_runs_like_the_host(root: &Path, manifest: &Manifest) {
    let jailed = cmd::chroot_output_with_mounts(root, manifest, PROGRAM, BASE_ENV);
    let host = cmd::host_output(PROGRAM, BASE_ENV);
    cmd::assert_same_stdout(&jailed, &host);
}

/// Every entry a builder places is in `root` with the manifest's kind,
/// mode, owner, symlink target, device number and content.
fn assert_tree(root: &Path, manifest: &Manifest) {
    for e in &manifest.entries {
        if e.reason.cause == Cause::Created && e.kind != EntryKind::Dir {
            continue;
        }
        let at = format!("{} in {}", e.path, root.display());
        let path = inside(root, e.path.as_path());
        let meta = fs::symlink_metadata(&path).unwrap_or_else(|err| panic!("{at}: {err}"));
        let ft = meta.file_type();
        match e.kind {
            EntryKind::Dir => assert!(ft.is_dir(), "{at}: not a directory"),
            EntryKind::Symlink => {
                assert!(ft.is_symlink(), "{at}: not a symlink");
                let target = fs::read_link(&path).unwrap();
                assert_eq!(
                    Some(target.as_os_str().as_bytes()),
                    e.target.as_ref().map(|t| t.as_bytes()),
                    "{at}: target"
                );
            }
            EntryKind::Device => {
                assert!(ft.is_char_device(), "{at}: not a character device");
                let rdev = e.rdev.expect("devices have rdev");
                assert_eq!(
                    (
                        nix::sys::stat::major(meta.rdev()),
                        nix::sys::stat::minor(meta.rdev())
                    ),
                    (u64::from(rdev.major), u64::from(rdev.minor)),
                    "{at}: device number"
                );
            }
            EntryKind::File => {
                assert!(ft.is_file(), "{at}: not a regular file");
                let content = fs::read(&path).unwrap();
                if let Some(synthesized) = &e.content {
                    assert_eq!(content, synthesized.as_bytes(), "{at}: content");
                }
                assert_eq!(
                    Some(format!("{:x}", Sha256::digest(&content))),
                    e.sha256,
                    "{at}: sha256"
                );
            }
        }
        if e.kind != EntryKind::Symlink {
            assert_eq!(meta.mode() & 0o7777, e.mode.bits(), "{at}: mode");
        }
        assert_eq!((meta.uid(), meta.gid()), (e.uid, e.gid), "{at}: owner");
    }
}

/// The program's argument vector as the exports start it.
fn exported_argv(manifest: &Manifest) -> Vec<String> {
    let mut argv = vec![manifest.first_program().command.executable.to_string()];
    argv.extend(
        manifest.first_program().command.argv[1..]
            .iter()
            .map(|a| a.to_string()),
    );
    argv
}

#[test]
fn export_sh_builds_a_root_that_runs_the_program() {
    if !require_root("export_sh_builds_a_root_that_runs_the_program") {
        return;
    }
    let jail = Jail::new("export-sh");
    let manifest = jail_program(&jail);
    let script = jail.join("build.sh");
    export(&jail, &["--format", "sh", "--output", text(&script)]).assert_code(exit::OK);
    assert_eq!(
        fs::metadata(&script).unwrap().mode() & 0o777,
        0o755,
        "the script is executable"
    );
    let root = jail.join("from-sh");
    let built = run_ok("/bin/sh", &[text(&script), text(&root)], BASE_ENV);
    assert!(
        built.stderr_text().contains("mount -t proc"),
        "the script prints the mounts the program needs\n{}",
        built.report()
    );
    assert_tree(&root, &manifest);
    assert_runs_like_the_host(&root, &manifest);
    // The root is not empty now: a second run refuses it.
    let mut again = Command::new("/bin/sh");
    again.arg(&script).arg(&root);
    let again = cmd::run(again, cmd::PROGRAM_TIMEOUT);
    again.assert_code(1);
    assert!(
        again.stderr_text().contains("not an empty directory"),
        "{}",
        again.report()
    );
}

#[test]
fn export_tar_unpacks_with_gnu_tar() {
    if !require_root("export_tar_unpacks_with_gnu_tar") {
        return;
    }
    let jail = Jail::new("export-tar");
    let manifest = jail_program(&jail);
    // To stdout: the archive is all stdout holds; the summary is on stderr.
    let out = export(&jail, &["--format", "tar"]);
    out.assert_code(exit::OK);
    assert!(
        out.stderr_text()
            .starts_with("wrote tar archive to stdout ("),
        "{}",
        out.report()
    );
    let archive = jail.join("root.tar");
    fs::write(&archive, &out.stdout).unwrap();
    let root = jail.join("from-tar");
    fs::create_dir(&root).unwrap();
    run_ok(
        "tar",
        &["--numeric-owner", "-xpf", text(&archive), "-C", text(&root)],
        BASE_ENV,
    );
    let null = fs::symlink_metadata(root.join("dev/null")).expect("/dev/null is in the archive");
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (
            nix::sys::stat::major(null.rdev()),
            nix::sys::stat::minor(null.rdev())
        ),
        (1, 3)
    );
    assert_tree(&root, &manifest);
    assert_runs_like_the_host(&root, &manifest);
    // --output FILE writes the same archive.
    let file = jail.join("again.tar");
    export(&jail, &["--format", "tar", "-o", text(&file)]).assert_code(exit::OK);
    assert!(
        fs::read(&file).unwrap() == out.stdout,
        "the archive is reproducible"
    );
}

#[test]
fn export_dockerfile_builds_with_buildah() {
    let test = "export_dockerfile_builds_with_buildah";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("export-docker");
    let manifest = jail_program(&jail);
    let context = jail.join("context");
    let out = export(&jail, &["--format", "dockerfile", "-o", text(&context)]);
    out.assert_code(exit::OK);
    let dockerfile = fs::read_to_string(context.join("Dockerfile")).unwrap();
    let lines: Vec<&str> = dockerfile.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines[..3],
        ["FROM scratch", "ADD rootfs.tar /", "WORKDIR \"/\""],
        "{dockerfile}"
    );
    assert!(
        lines.contains(&"ENV GREETING=\"hello world\""),
        "{dockerfile}"
    );
    assert!(
        !dockerfile.contains("TERM=") && !dockerfile.contains("SHLVL"),
        "session variables are left out\n{dockerfile}"
    );
    let entrypoint = lines
        .iter()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT line");
    let entrypoint: Vec<String> = serde_json::from_str(entrypoint).expect("ENTRYPOINT is JSON");
    assert_eq!(entrypoint, exported_argv(&manifest));

    // The build context's archive is a root that runs the program.
    let root = jail.join("from-context");
    fs::create_dir(&root).unwrap();
    let archive = context.join("rootfs.tar");
    run_ok(
        "tar",
        &["--numeric-owner", "-xpf", text(&archive), "-C", text(&root)],
        BASE_ENV,
    );
    assert_runs_like_the_host(&root, &manifest);

    // The real consumer: buildah builds the image; its root runs the program.
    if !have(test, "buildah") {
        return;
    }
    let storage = jail.join("buildah");
    let buildah = |args: &[&str]| -> Finished {
        let mut all = vec![
            "--storage-driver",
            "vfs",
            "--root",
            text(&storage),
            "--runroot",
            text(&storage),
        ];
        all.extend_from_slice(args);
        run_ok("buildah", &all, BASE_ENV)
    };
    let tag = format!("jailtrace-test-{}", util::unique());
    buildah(&[
        "bud",
        "--isolation",
        "chroot",
        "-q",
        "-t",
        &tag,
        text(&context),
    ]);
    let container = buildah(&["from", &tag]).stdout_text().trim().to_owned();
    let mounted = PathBuf::from(buildah(&["mount", &container]).stdout_text().trim());
    let image: Value =
        serde_json::from_slice(&buildah(&["inspect", "--type", "image", &tag]).stdout).unwrap();
    let config = &image["OCIv1"]["config"];
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(exported_argv(&manifest))
    );
    assert_tree(&mounted, &manifest);
    assert_runs_like_the_host(&mounted, &manifest);
    buildah(&["umount", &container]);
    buildah(&["rm", &container]);
    buildah(&["rmi", "-f", &tag]);
}

#[test]
fn export_bwrap_runs_the_program_with_only_the_manifest_paths() {
    let test = "export_bwrap_runs_the_program_with_only_the_manifest_paths";
    if !require_root(test) || !have(test, "bwrap") {
        return;
    }
    let jail = Jail::new("export-bwrap");
    let manifest = jail_program(&jail);
    let script = jail.join("run.sh");
    export(&jail, &["--format", "bwrap", "-o", text(&script)]).assert_code(exit::OK);
    let sandboxed = run_script(&script);
    let host = cmd::host_output(PROGRAM, BASE_ENV);
    cmd::assert_same_stdout(&sandboxed, &host);
    let text_of = fs::read_to_string(&script).unwrap();
    assert!(text_of.contains("\t--proc /proc \\\n"), "{text_of}");
    assert!(
        text_of.contains("\t--dev-bind /dev/null /dev/null \\\n"),
        "{text_of}"
    );
    assert!(
        text_of.contains("--ro-bind-data 3 /etc/passwd"),
        "{text_of}"
    );
    for e in manifest.entries.iter().filter(|e| {
        e.kind == EntryKind::File && e.content.is_none() && e.reason.cause != Cause::Created
    }) {
        let line = format!("\t--ro-bind {0} {0} \\\n", e.path);
        assert!(text_of.contains(&line), "{line:?} missing\n{text_of}");
    }

    // Only the manifest's paths: a shell jailed without probing anything
    // sees none of the host paths it is asked about under bwrap.
    let probe = Jail::new("export-bwrap-probe");
    let argv = [
        "/bin/sh",
        "-c",
        "for p; do if test -e \"$p\"; then echo \"present $p\"; else echo \"absent $p\"; fi; done",
        "sh",
    ];
    probe.run(&argv, &[], BASE_ENV).expect_ok();
    let script = probe.join("run.sh");
    let manifest = text(&probe.manifest);
    probe
        .jailtrace(
            &[
                "export",
                "--manifest",
                manifest,
                "--format",
                "bwrap",
                "-o",
                text(&script),
            ],
            BASE_ENV,
        )
        .assert_code(exit::OK);
    let outside: Vec<&str> = [
        "/usr/bin/perl",
        "/etc/hostname",
        "/etc/os-release",
        "/usr/bin/env",
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect();
    assert!(!outside.is_empty(), "the host has none of the probe paths");
    let mut args = vec![text(&script)];
    args.extend(&outside);
    args.push("/bin/sh");
    let out = run_ok("/bin/sh", &args, BASE_ENV);
    let mut expected: String = outside.iter().map(|p| format!("absent {p}\n")).collect();
    expected.push_str("present /bin/sh\n");
    assert_eq!(out.stdout_text(), expected, "{}", out.report());
}

#[test]
fn export_systemd_dropin_passes_systemd_analyze() {
    let test = "export_systemd_dropin_passes_systemd_analyze";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("export-systemd");
    let manifest = jail_program(&jail);
    let out = export(&jail, &["--format", "systemd"]);
    out.assert_code(exit::OK);
    let dropin = out.stdout_text();
    let body = dropin
        .split_once("[Service]\n")
        .expect("a [Service] section")
        .1;
    assert!(
        body.starts_with(&format!(
            "RootDirectory={}\nMountAPIVFS=yes\n",
            manifest.root
        )),
        "{dropin}"
    );
    let exec: Vec<String> = exported_argv(&manifest)
        .iter()
        .map(|a| {
            format!(
                "\"{}\"",
                a.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('$', "$$")
            )
        })
        .collect();
    assert!(
        body.ends_with(&format!("ExecStart=\nExecStart={}\n", exec.join(" "))),
        "{dropin}"
    );
    assert!(
        body.contains("Environment=\"GREETING=hello world\"\n"),
        "{dropin}"
    );
    assert!(
        !body.contains("TERM=") && !body.contains("SHLVL"),
        "{dropin}"
    );
    // --root puts the unit in another root.
    let other = export(&jail, &["--format", "systemd", "--root", "/srv/other"]);
    assert!(
        other.stdout_text().contains("\nRootDirectory=/srv/other\n"),
        "{}",
        other.report()
    );

    // The consumer: systemd-analyze loads a unit with the drop-in. The
    // unit's own ExecStart names no program, so it verifies only when the
    // drop-in's reset and ExecStart took effect.
    if !have(test, "systemd-analyze") {
        return;
    }
    let units = test_unit(&jail);
    let analyze = |args: &[&str]| systemd_analyze(&units, args);
    let without = analyze(&["verify", "jailtrace-test.service"]);
    assert_ne!(
        without.code(),
        Some(0),
        "the placeholder must fail\n{}",
        without.report()
    );
    assert_dropin_verifies(&units, &dropin);
    let security = analyze(&[
        "security",
        "--offline=yes",
        "--json=short",
        "jailtrace-test.service",
    ]);
    let checks: Value = serde_json::from_slice(&security.stdout)
        .unwrap_or_else(|e| panic!("{e}\n{}", security.report()));
    let root_check = checks
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "RootDirectory=/RootImage="))
        .unwrap_or_else(|| panic!("no RootDirectory check\n{}", security.report()));
    assert_eq!(
        root_check["set"],
        true,
        "RootDirectory= is not in effect\n{}",
        security.report()
    );
}

/// A unit `jailtrace-test.service` in `T/units` whose own `ExecStart=`
/// names no program, so that it verifies only with a drop-in that resets
/// it; returns `T/units`.
pub fn test_unit(jail: &Jail) -> PathBuf {
    let units = jail.join("units");
    fs::create_dir_all(units.join("jailtrace-test.service.d")).unwrap();
    fs::write(
        units.join("jailtrace-test.service"),
        "[Unit]\nDescription=jailtrace export test\n[Service]\nType=oneshot\nExecStart=/nonexistent/placeholder\n",
    )
    .unwrap();
    units
}

/// `systemd-analyze ARGS` with the units of `units` (see [`test_unit`]).
pub fn systemd_analyze(units: &Path, args: &[&str]) -> Finished {
    let mut command = Command::new("systemd-analyze");
    command
        .args(args)
        .env_clear()
        .env("PATH", util::PATH)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()));
    cmd::run(command, cmd::PROGRAM_TIMEOUT)
}

/// Installs `dropin` for the unit of [`test_unit`] and asserts that
/// `systemd-analyze verify` accepts it without a warning.
pub fn assert_dropin_verifies(units: &Path, dropin: &str) {
    let dir = units.join("jailtrace-test.service.d");
    fs::write(dir.join("jailtrace.conf"), dropin).unwrap();
    let with = systemd_analyze(units, &["verify", "jailtrace-test.service"]);
    with.assert_success();
    assert_eq!(
        with.stderr_text(),
        "",
        "systemd-analyze warns\n{}",
        with.report()
    );
}

#[test]
fn export_oci_unpacks_with_umoci_and_reads_with_skopeo() {
    let test = "export_oci_unpacks_with_umoci_and_reads_with_skopeo";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("export-oci");
    let manifest = jail_program(&jail);
    let layout = jail.join("image");
    let out = export(&jail, &["--format", "oci", "-o", text(&layout)]);
    out.assert_code(exit::OK);
    assert!(
        out.stderr_text()
            .contains(&format!("wrote OCI image layout {} (", layout.display())),
        "{}",
        out.report()
    );
    // The run's environment in its order, without the session variables
    // RUN_ENV set and those jailtrace's environment adds (PWD, `_`).
    let session = ["TERM=", "SHLVL=", "PWD=", "_="];
    let expected_env: Vec<String> = manifest
        .first_program()
        .command
        .env
        .iter()
        .map(|e| e.to_string())
        .filter(|e| !session.iter().any(|s| e.starts_with(s)))
        .collect();
    assert!(
        expected_env.contains(&"GREETING=hello world".to_owned())
            && expected_env.contains(&format!("PATH={}", util::PATH)),
        "{expected_env:?}"
    );

    if have(test, "skopeo") {
        let image = format!("oci:{}:latest", layout.display());
        let config = run_ok("skopeo", &["inspect", "--config", &image], BASE_ENV);
        let config: Value = serde_json::from_slice(&config.stdout).unwrap();
        assert_eq!(config["os"], "linux");
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(exported_argv(&manifest))
        );
        assert_eq!(config["config"]["Env"], serde_json::json!(expected_env));
        assert_eq!(config["config"]["WorkingDir"], "/");
        let inspect = run_ok("skopeo", &["inspect", &image], BASE_ENV);
        let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(
            inspect["Layers"].as_array().map(Vec::len),
            Some(1),
            "{inspect:#}"
        );
    }
    if have(test, "umoci") {
        let bundle = jail.join("bundle");
        run_ok(
            "umoci",
            &[
                "unpack",
                "--image",
                &format!("{}:latest", layout.display()),
                text(&bundle),
            ],
            BASE_ENV,
        );
        let root = bundle.join("rootfs");
        assert_tree(&root, &manifest);
        assert_runs_like_the_host(&root, &manifest);
        let runtime: Value =
            serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(
            runtime["process"]["args"],
            serde_json::json!(exported_argv(&manifest)),
            "umoci's runtime config starts the program"
        );
    }
}

#[test]
fn export_reports_a_changed_host_file_and_strict_refuses_it() {
    if !require_root("export_reports_a_changed_host_file_and_strict_refuses_it") {
        return;
    }
    let jail = Jail::new("export-strict");
    jail_program(&jail);
    // The host is left alone: the manifest is made to disagree with it.
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let mut json: Value = serde_json::from_slice(&fs::read(&jail.manifest).unwrap()).unwrap();
    let entry = json["entries"]
        .as_array_mut()
        .and_then(|entries| entries.iter_mut().find(|e| e["path"] == libc))
        .expect("libc is in the jail");
    entry["sha256"] = Value::String(format!("{:x}", Sha256::digest(b"another libc")));
    fs::write(&jail.manifest, serde_json::to_vec_pretty(&json).unwrap()).unwrap();

    let lenient = jail.join("lenient.tar");
    let out = export(&jail, &["--format", "tar", "-o", text(&lenient)]);
    out.assert_code(exit::OK);
    let warning = format!("warning: {libc} differs from the manifest (sha256 ");
    assert!(out.stderr_text().contains(&warning), "{}", out.report());
    assert!(lenient.exists());

    for (format, output) in [
        ("tar", "strict.tar"),
        ("oci", "strict-image"),
        ("bwrap", "strict.sh"),
    ] {
        let target = jail.join(output);
        let out = export(
            &jail,
            &["--format", format, "--strict", "-o", text(&target)],
        );
        let stderr = failed(&out);
        assert!(
            stderr.contains(&format!("error: {libc} differs from the manifest")),
            "{stderr}"
        );
        assert!(stderr.contains("nothing was written"), "{stderr}");
        assert!(
            !target.exists(),
            "{format}: --strict left {}",
            target.display()
        );
    }
    let out = export(&jail, &["--format", "tar", "--strict"]);
    failed(&out);
    assert!(out.stdout.is_empty(), "--strict wrote to stdout");
    let leftovers: Vec<_> = fs::read_dir(&jail.path)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".jailtrace-export-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // The sh script checks when it runs: a warning, or nothing built
    // with JAILTRACE_STRICT=1.
    let script = jail.join("build.sh");
    export(&jail, &["--format", "sh", "-o", text(&script)]).assert_code(exit::OK);
    let root = jail.join("strict-root");
    let mut strict = Command::new("/bin/sh");
    strict
        .arg(&script)
        .arg(&root)
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .env("JAILTRACE_STRICT", "1");
    let strict = cmd::run(strict, cmd::PROGRAM_TIMEOUT);
    strict.assert_code(1);
    assert!(
        strict.stderr_text().contains(&warning),
        "{}",
        strict.report()
    );
    assert!(
        !root.exists(),
        "JAILTRACE_STRICT=1 built {}",
        root.display()
    );
}

/// Asserts that an export failed with exit 1 and an `error:` line; returns stderr.
fn failed(out: &Finished) -> String {
    out.assert_code(exit::ERROR);
    let stderr = out.stderr_text();
    assert!(
        stderr.lines().any(|l| l.starts_with("error: ")),
        "expected an `error: …` line\n{}",
        out.report()
    );
    stderr
}
