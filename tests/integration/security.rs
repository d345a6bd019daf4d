//! Hostile roots and host secrets: the host stays untouched whatever a
//! jailed program (root inside its jail) leaves in the root or does while
//! it is traced, dangerous roots are refused, and the deny rules keep
//! secrets out.
//!
//! The adversarial tests plant symlinks (absolute, climbing, relative
//! climbing, into a loop), hard links and fifos where jailtrace will write,
//! delete or list next, all pointing at a decoy directory `T/outside` that
//! holds canary files, then check that `T/outside` and the host
//! directories involved are exactly as before. Destructive traps aim at the
//! decoy, never at a real system directory, so a regression fails a test
//! instead of damaging the machine. Each test prints an `ADVERSARIAL <test>
//! traps=N` line; the traps are counted there.
//!
//! Every script run in a jail first checks that `/` is not the host's `/`
//! (exit 99): its `rm -rf` lines are only safe inside a chroot.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use jailtrace_manifest::{Manifest, RunStatus};
use sha2::{Digest, Sha256};

use crate::jail::{exit, Jail, Outcome, Summary};
use crate::util::{self, require_root, BASE_ENV};

/// How much of an entry [`snapshot`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// The names in the directory (for directories the system itself
    /// writes to, such as `/var/log`).
    Names,
    /// Every entry's kind, mode, owner, size and mtime, one level deep.
    Meta,
    /// [`Depth::Meta`] of the whole tree, with file contents and link targets.
    Tree,
}

/// What `path` looks like now, without following any symlink: one line per
/// entry, keyed by its path.
fn snapshot(path: &Path, depth: Depth) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    record(path, depth, true, &mut out);
    out
}

fn record(path: &Path, depth: Depth, top: bool, out: &mut BTreeMap<PathBuf, String>) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        out.insert(path.into(), "missing".into());
        return;
    };
    let ft = meta.file_type();
    let line = if depth == Depth::Names {
        String::new()
    } else {
        let extra = if ft.is_symlink() {
            format!("-> {:?}", fs::read_link(path).ok())
        } else if ft.is_file() && (depth == Depth::Tree || top) {
            let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            format!("sha256 {:x}", Sha256::digest(bytes))
        } else {
            String::new()
        };
        format!(
            "{:o} {}:{} size {} mtime {}.{} {extra}",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        )
    };
    out.insert(path.into(), line);
    if ft.is_dir() && (top || depth == Depth::Tree) {
        let entries = fs::read_dir(path).unwrap_or_else(|e| panic!("list {}: {e}", path.display()));
        for entry in entries {
            let entry = entry.expect("a readable directory entry");
            record(&entry.path(), depth, false, out);
        }
    }
}

/// The host paths the traps aim near, and how closely each is compared.
const HOST_WATCH: &[(&str, Depth)] = &[
    ("/etc", Depth::Meta),
    ("/etc/shadow", Depth::Meta),
    ("/etc/hostname", Depth::Meta),
    ("/etc/services", Depth::Meta),
    ("/usr/share/zoneinfo", Depth::Tree),
    ("/usr/share/common-licenses", Depth::Meta),
    ("/var/lib/dpkg", Depth::Names),
    ("/var/log", Depth::Names),
    ("/root", Depth::Names),
];

fn host_snapshot() -> BTreeMap<PathBuf, String> {
    HOST_WATCH
        .iter()
        .flat_map(|(p, depth)| snapshot(Path::new(p), *depth))
        .collect()
}

/// Asserts two snapshots are equal, listing the entries that differ.
fn assert_same(
    what: &str,
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
    report: &str,
) {
    let mut diff = Vec::new();
    for (path, line) in before {
        match after.get(path) {
            Some(now) if now == line => {}
            now => diff.push(format!("{}: {line:?} -> {now:?}", path.display())),
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        diff.push(format!("{}: new entry {:?}", path.display(), after[path]));
    }
    assert!(
        diff.is_empty(),
        "jailtrace changed {what}:\n{}\n{report}",
        diff.join("\n")
    );
}

/// Creates the decoy `T/outside`: a canary file, a `UTC` named like a
/// zoneinfo entry, and `Etc/keep`.
fn make_outside(jail: &Jail) -> PathBuf {
    let outside = jail.join("outside");
    fs::create_dir_all(outside.join("Etc")).expect("create T/outside/Etc");
    fs::write(outside.join("canary"), "canary: must survive\n").expect("write the canary");
    fs::write(outside.join("UTC"), "not a zoneinfo file\n").expect("write T/outside/UTC");
    fs::write(outside.join("Etc/keep"), "keep\n").expect("write T/outside/Etc/keep");
    outside
}

/// `../` enough times to climb from any directory of the root to the
/// host's `/`, were the link followed on the host.
fn climb() -> String {
    "../".repeat(24)
}

/// The shell line that stops a script unless it runs chrooted.
fn chroot_guard() -> String {
    let ino = fs::metadata("/").expect("stat /").ino();
    format!("set -- $(ls -di /); [ \"$1\" = {ino} ] && exit 99\n")
}

/// Runs the checks every adversarial run shares: no panic, no timeout, a
/// documented exit code, `T/outside` and the host untouched.
fn check_untouched(
    test: &str,
    traps: usize,
    outcome: &Outcome,
    outside: (&Path, &BTreeMap<PathBuf, String>),
    host: &BTreeMap<PathBuf, String>,
) {
    let report = outcome.finished.report();
    outcome.finished.assert_no_panic();
    assert!(!outcome.finished.timed_out, "jailtrace hung\n{report}");
    let code = outcome.finished.code();
    eprintln!("ADVERSARIAL {test} traps={traps} exit={code:?}");
    assert!(
        matches!(code, Some(0 | 1 | 3 | 4)),
        "exit {code:?} is not a documented code\n{report}"
    );
    assert_same(
        "the decoy outside the root",
        outside.1,
        &snapshot(outside.0, Depth::Tree),
        &report,
    );
    assert_same("the host", host, &host_snapshot(), &report);
}

/// Plants the traps a hostile program could leave in a finished root;
/// returns how many.
fn plant_in_finished_root(root: &Path, outside: &Path) -> usize {
    let mut traps = 0;
    let mut plant = |what: &str, result: std::io::Result<()>| {
        result.unwrap_or_else(|e| panic!("cannot plant {what}: {e}"));
        traps += 1;
    };
    let abs = outside.as_os_str().as_bytes();
    let rel = String::from_utf8_lossy(&abs[1..]).into_owned();
    let zoneinfo = root.join("usr/share/zoneinfo");
    plant(
        "zoneinfo -> T/outside",
        fs::remove_dir_all(&zoneinfo).and_then(|()| symlink(outside, &zoneinfo)),
    );
    plant(
        "var/log -> /../../../../T/outside",
        fs::create_dir_all(root.join("var")).and_then(|()| {
            symlink(
                format!("/../../../..{}", outside.display()),
                root.join("var/log"),
            )
        }),
    );
    let tmp = root.join("tmp");
    let _ = fs::remove_dir_all(&tmp);
    plant(
        "tmp -> ../../…/T/outside",
        symlink(format!("{}{rel}", climb()), &tmp),
    );
    let hostname = root.join("etc/hostname");
    plant(
        "etc/hostname -> /etc/shadow",
        fs::remove_file(&hostname).and_then(|()| symlink("/etc/shadow", &hostname)),
    );
    plant(
        "root -> /../../T/outside (a top-level link)",
        symlink(format!("/../..{}", outside.display()), root.join("root")),
    );
    plant(
        "etc/canary: a hard link to T/outside/canary",
        fs::hard_link(outside.join("canary"), root.join("etc/canary")),
    );
    let deep = root.join("usr/share/evil/deeper");
    plant(
        "usr/share/evil/deeper/escape -> T/outside (inside a tree the wipe recurses into)",
        fs::create_dir_all(&deep).and_then(|()| symlink(outside, deep.join("escape"))),
    );
    plant(
        "usr/share/evil/deeper/canary -> T/outside/canary",
        symlink(outside.join("canary"), deep.join("canary")),
    );
    plant(
        "etc/fifo: a fifo",
        nix::unistd::mkfifo(
            &root.join("etc/fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .map_err(std::io::Error::from),
    );
    plant("etc/loop -> loop", symlink("loop", root.join("etc/loop")));
    traps
}

#[test]
fn fresh_removes_planted_links_without_following_them() {
    let test = "fresh_removes_planted_links_without_following_them";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("sec-fresh");
    let outside = make_outside(&jail);
    let argv = [
        "/bin/sh",
        "-c",
        "cat /etc/hostname; ls /usr/share/zoneinfo/Etc >/dev/null",
    ];
    jail.run(&argv, &[], BASE_ENV).expect_ok();
    let decoy = snapshot(&outside, Depth::Tree);
    let host = host_snapshot();
    let traps = plant_in_finished_root(&jail.root, &outside);

    let outcome = jail.run(&argv, &["--fresh"], BASE_ENV);
    check_untouched(test, traps, &outcome, (&outside, &decoy), &host);
    outcome.expect_ok();
    let report = outcome.finished.report();
    // The wipe really happened and the root was rebuilt from the host.
    assert!(
        fs::symlink_metadata(jail.root.join("usr/share/zoneinfo")).is_ok_and(|m| m.is_dir()),
        "zoneinfo is not a directory again\n{report}"
    );
    assert_eq!(
        fs::read(jail.root.join("etc/hostname")).ok(),
        fs::read("/etc/hostname").ok(),
        "etc/hostname is not the host's file again\n{report}"
    );
    for gone in ["etc/canary", "usr/share/evil", "etc/fifo", "etc/loop"] {
        assert!(
            fs::symlink_metadata(jail.root.join(gone)).is_err(),
            "--fresh left the planted {gone}\n{report}"
        );
    }
    // The host has these: the new root may have them again, as directories.
    for replaced in ["var/log", "tmp", "root"] {
        if let Ok(m) = fs::symlink_metadata(jail.root.join(replaced)) {
            assert!(
                m.is_dir(),
                "--fresh left the planted {replaced} link\n{report}"
            );
        }
    }
    assert_eq!(
        fs::metadata(outside.join("canary"))
            .expect("the canary")
            .nlink(),
        1,
        "the planted hard link was not removed"
    );
}

/// Runs `script` (after the chroot guard) in a jail next to a fresh decoy
/// and checks the host stayed untouched; returns the outcome and the decoy.
fn run_hostile(
    test: &str,
    traps: usize,
    script: impl Fn(&Path) -> String,
) -> (Jail, Outcome, PathBuf) {
    run_hostile_with(test, traps, &[], script)
}

/// [`run_hostile`] with more options for `jailtrace run` (`--rootless`).
fn run_hostile_with(
    test: &str,
    traps: usize,
    extra: &[&str],
    script: impl Fn(&Path) -> String,
) -> (Jail, Outcome, PathBuf) {
    let jail = Jail::new(test);
    let outside = make_outside(&jail);
    let decoy = snapshot(&outside, Depth::Tree);
    let host = host_snapshot();
    let script = format!("{}{}", chroot_guard(), script(&outside));
    // The decoy lives in the test's directory under /tmp: allowed, so
    // that the traps have host files to lead to.
    let allow = jail.allow_own_files();
    let mut options = vec![allow[0].as_str(), allow[1].as_str()];
    options.extend_from_slice(extra);
    let outcome = jail.run(&["/bin/sh", "-c", &script], &options, BASE_ENV);
    check_untouched(test, traps, &outcome, (&outside, &decoy), &host);
    if let Ok(summary) = serde_json::from_slice::<Summary>(&outcome.finished.stdout) {
        assert_ne!(
            summary.status,
            RunStatus::Exited { code: 99 },
            "the script did not run chrooted\n{}",
            outcome.finished.report()
        );
    }
    (jail, outcome, outside)
}

/// The jail path of the decoy's `name`, as a jail path (the host path).
fn in_root(jail: &Jail, outside: &Path, name: &str) -> PathBuf {
    let rel = outside.strip_prefix("/").expect("absolute");
    jail.root.join(rel).join(name)
}

fn manifest_paths(m: &Manifest) -> Vec<PathBuf> {
    m.entries
        .iter()
        .map(|e| e.path.as_path().to_path_buf())
        .collect()
}

#[test]
fn links_planted_by_the_traced_program_never_lead_writes_out() {
    let test = "links_planted_by_the_traced_program_never_lead_writes_out";
    if !require_root(test) {
        return;
    }
    links_planted(test, &[]);
}

/// The same traps for a rootless jailtrace (in a user namespace of its own,
/// where writes fall back on what the namespace allows).
#[test]
fn links_planted_by_the_traced_program_never_lead_writes_out_rootless() {
    let test = "links_planted_by_the_traced_program_never_lead_writes_out_rootless";
    if !require_root(test) {
        return;
    }
    links_planted(test, &["--rootless"]);
}

fn links_planted(test: &str, extra: &[&str]) {
    // Each trap replaces a directory the host has (renamed away rather
    // than removed: a removed listed directory makes jailtrace's pruning
    // fail, which is not what this test is about), so jailtrace then places
    // files through it. `cat $O/canary` first gives the root its own copy
    // of the decoy's path, which the links resolve to inside the root.
    let traps = 7;
    let (jail, outcome, outside) = run_hostile_with(test, traps, extra, |o| {
        let o = o.display();
        let up = climb();
        format!(
            r#"O={o}
cat $O/canary >/dev/null
cat /usr/share/zoneinfo/Etc/GMT >/dev/null
[ -L /usr/share/zoneinfo ] || mv /usr/share/zoneinfo /usr/share/zoneinfo.old
ln -sfn /../../../..$O /usr/share/zoneinfo
cat /usr/share/zoneinfo/Etc/UTC /usr/share/zoneinfo/Europe/Paris >/dev/null 2>&1
ls /usr/share/zoneinfo/ /usr/share/zoneinfo/Etc/ >/dev/null 2>&1
[ -L /usr/share/common-licenses ] || mv /usr/share/common-licenses /usr/share/licenses.old
ln -sfn {up}${{O#/}} /usr/share/common-licenses
cat /usr/share/common-licenses/GPL-3 >/dev/null 2>&1
ln -sf /etc/shadow /etc/hostname && cat /etc/hostname >/dev/null 2>&1
mkdir -p /var && {{ [ -L /var/lib ] || mv /var/lib /var/lib.old; }} && ln -sfn $O /var/lib
cat /var/lib/dpkg/status >/dev/null 2>&1
echo created >/var/lib/created-by-the-program
[ -L /etc/ssl ] || mv /etc/ssl /etc/ssl.old
ln -sfn $O/ /etc/ssl
cat /etc/ssl/openssl.cnf /etc/ssl/private/nothing >/dev/null 2>&1
exit 0
"#
        )
    });
    let report = outcome.finished.report();
    outcome.expect_ok();
    // The traps engaged: what the program asked for through them was
    // placed where the planted links lead, inside the root.
    for name in [
        "Etc/UTC",
        "Europe/Paris",
        "GPL-3",
        "dpkg/status",
        "created-by-the-program",
        "openssl.cnf",
    ] {
        assert!(
            fs::symlink_metadata(in_root(&jail, &outside, name)).is_ok(),
            "{name} was not placed through the planted link inside the root\n{report}"
        );
    }
    for secret in ["etc/shadow", "etc/ssl.old/private"] {
        assert!(
            fs::symlink_metadata(jail.root.join(secret)).is_err(),
            "the host's /{secret} reached the root\n{report}"
        );
    }
    assert!(
        fs::symlink_metadata(in_root(&jail, &outside, "private")).is_err(),
        "the host's /etc/ssl/private reached the root through a link\n{report}"
    );
    let paths = manifest_paths(&outcome.manifest());
    assert!(
        paths.iter().any(|p| p.ends_with("Etc/UTC")),
        "{paths:?}\n{report}"
    );
}

#[test]
fn a_program_racing_jailtrace_with_link_swaps_stays_inside() {
    let test = "a_program_racing_jailtrace_with_link_swaps_stays_inside";
    if !require_root(test) {
        return;
    }
    // Two traps: a directory swapped for a link to the decoy and back while
    // jailtrace places files beneath it, then a /tmp that loops into itself
    // on the way to the decoy.
    let traps = 2;
    run_hostile(test, traps, |o| {
        let o = o.display();
        let up = climb();
        format!(
            r#"O={o}
cat $O/canary >/dev/null
i=0
while [ $i -lt 60 ]; do
  mv /usr/share/zoneinfo /usr/share/old.$i.a 2>/dev/null; mkdir -p /usr/share/zoneinfo
  mv /usr/share/zoneinfo /usr/share/old.$i.b 2>/dev/null; ln -s $O /usr/share/zoneinfo
  i=$((i+1))
done &
j=0
while [ $j -lt 60 ]; do
  cat /usr/share/zoneinfo/Etc/UTC /usr/share/zoneinfo/UTC /usr/share/zoneinfo/Europe/Paris >/dev/null 2>&1
  j=$((j+1))
done
wait
[ -L /tmp ] || mv /tmp /tmp.old 2>/dev/null
ln -sfn {up}${{O#/}} /tmp
cat /tmp/x $O/UTC >/dev/null 2>&1
ls /tmp/ >/dev/null 2>&1
exit 0
"#
        )
    });
}

/// Asserts `outcome` is a refusal (exit 1, `error: …`) that wrote no manifest.
fn assert_refused(jail: &Jail, outcome: &Outcome, root: &str) -> String {
    let stderr = outcome.expect_error(exit::ERROR);
    assert!(
        !jail.manifest.exists(),
        "--root {root} was refused but a manifest was written"
    );
    stderr
}

#[test]
fn system_directories_and_paths_inside_them_are_refused_as_roots() {
    let test = "system_directories_and_paths_inside_them_are_refused_as_roots";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("sec-roots");
    let watch = [
        ("/etc", Depth::Meta),
        ("/var", Depth::Meta),
        ("/home", Depth::Meta),
        ("/usr/lib", Depth::Meta),
        ("/usr/lib/x86_64-linux-gnu", Depth::Names),
    ];
    let look = || -> BTreeMap<PathBuf, String> {
        watch
            .iter()
            .flat_map(|(p, d)| snapshot(Path::new(p), *d))
            .collect()
    };
    let before = look();
    let new_inside = format!("/usr/lib/jailtrace-it-{}", util::unique());
    // Relative paths are taken from T (jailtrace runs there).
    let climbing = format!("{}etc", climb());
    let roots = [
        "/etc",
        "/var",
        "/home",
        "/tmp/..",
        "/usr/lib/x86_64-linux-gnu",
        new_inside.as_str(),
        climbing.as_str(),
    ];
    for root in roots {
        let outcome = jail.run_at(
            Path::new(root),
            &jail.manifest,
            &["/bin/true"],
            &[],
            BASE_ENV,
        );
        let stderr = assert_refused(&jail, &outcome, root);
        assert!(
            stderr.contains("refusing to use"),
            "--root {root}: not refused as dangerous\n{stderr}"
        );
    }
    assert!(
        fs::symlink_metadata(&new_inside).is_err(),
        "--root {new_inside} was created before it was refused"
    );
    assert_same("system directories", &before, &look(), "");
}

/// `T/real` and `T/link -> T/real`.
fn linked_root(jail: &Jail) -> (PathBuf, PathBuf) {
    let real = jail.join("real");
    fs::create_dir(&real).expect("create T/real");
    let link = jail.join("link");
    symlink(&real, &link).expect("create T/link -> T/real");
    (real, link)
}

#[test]
fn a_symlinked_root_is_refused_without_follow_root() {
    let test = "a_symlinked_root_is_refused_without_follow_root";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("sec-link-root");
    let (real, link) = linked_root(&jail);
    let outcome = jail.run_at(&link, &jail.manifest, &["/bin/true"], &[], BASE_ENV);
    let stderr = assert_refused(&jail, &outcome, "T/link");
    assert!(
        stderr.contains("--follow-root"),
        "no hint at --follow-root\n{stderr}"
    );
    assert_eq!(
        fs::read_dir(&real).expect("T/real").count(),
        0,
        "T/real was written"
    );
}

#[test]
fn follow_root_jails_into_the_target_after_checking_it() {
    let test = "follow_root_jails_into_the_target_after_checking_it";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("sec-follow-root");
    // The target of a followed link is checked like any root.
    let sentinel = Path::new("/usr/usr");
    assert!(!sentinel.exists(), "precondition: the host has no /usr/usr");
    for (name, target) in [("to-usr", "/usr"), ("to-etc", "/etc"), ("to-slash", "/")] {
        let l = jail.join(name);
        symlink(target, &l).expect("create a link to a system directory");
        let outcome = jail.run_at(
            &l,
            &jail.manifest,
            &["/bin/true"],
            &["--follow-root"],
            BASE_ENV,
        );
        let stderr = assert_refused(&jail, &outcome, target);
        assert!(
            stderr.contains("refusing to use"),
            "--follow-root to {target}: not refused as dangerous\n{stderr}"
        );
    }
    assert!(
        !sentinel.exists(),
        "a followed root link wrote {}",
        sentinel.display()
    );

    let (real, link) = linked_root(&jail);
    let outcome = jail.run_at(
        &link,
        &jail.manifest,
        &["/bin/true"],
        &["--follow-root"],
        BASE_ENV,
    );
    outcome.expect_ok();
    assert!(
        real.join("usr/bin/true").is_file(),
        "--follow-root did not jail into the link's target\n{}",
        outcome.finished.report()
    );
    assert_eq!(outcome.manifest().root.as_path(), real.as_path());
    assert!(
        fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
        "the root link itself was replaced"
    );
}

#[test]
fn fresh_refuses_a_directory_jailtrace_did_not_make() {
    let test = "fresh_refuses_a_directory_jailtrace_did_not_make";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("sec-fresh-foreign");
    let data = jail.join("data");
    fs::create_dir_all(data.join("sub")).expect("create T/data/sub");
    fs::write(data.join("sub/precious"), "precious\n").expect("write T/data/sub/precious");
    symlink("/etc", data.join("etc")).expect("create T/data/etc");
    let before = snapshot(&data, Depth::Tree);

    // No manifest at all.
    let outcome = jail.run_at(
        &data,
        &jail.manifest,
        &["/bin/true"],
        &["--fresh"],
        BASE_ENV,
    );
    assert_refused(&jail, &outcome, "T/data");
    assert_same(
        "a directory jailtrace did not make",
        &before,
        &snapshot(&data, Depth::Tree),
        "",
    );

    // A manifest that describes another root.
    jail.run(&["/bin/true"], &[], BASE_ENV).expect_ok();
    let manifest = fs::read(&jail.manifest).expect("the manifest of T/root");
    let outcome = jail.run_at(
        &data,
        &jail.manifest,
        &["/bin/true"],
        &["--fresh"],
        BASE_ENV,
    );
    outcome.expect_error(exit::ERROR);
    assert_same(
        "a directory jailtrace did not make",
        &before,
        &snapshot(&data, Depth::Tree),
        "",
    );
    assert_eq!(
        fs::read(&jail.manifest).expect("the manifest"),
        manifest,
        "a refused run replaced the manifest"
    );
}

/// The `denied` record of `path` in `m`: (rule, syscall).
fn denied(m: &Manifest, path: &str) -> Option<(Option<String>, Option<String>)> {
    m.denied
        .iter()
        .find(|p| p.path.as_path() == Path::new(path))
        .map(|p| (p.rule.clone(), p.reason.syscall.clone()))
}

#[test]
fn secrets_are_denied_recorded_and_named_and_rules_change_that() {
    let test = "secrets_are_denied_recorded_and_named_and_rules_change_that";
    if !require_root(test) {
        return;
    }
    let jail = Jail::new("sec-secrets");
    let argv = ["/bin/sh", "-c", "cat /etc/shadow >/dev/null 2>&1; true"];

    let outcome = jail.run(&argv, &[], BASE_ENV);
    outcome.expect_ok();
    let report = outcome.finished.report();
    assert!(
        fs::symlink_metadata(jail.root.join("etc/shadow")).is_err(),
        "/etc/shadow was copied\n{report}"
    );
    let (rule, syscall) = denied(&outcome.manifest(), "/etc/shadow")
        .unwrap_or_else(|| panic!("denied does not list /etc/shadow\n{report}"));
    assert_eq!(rule.as_deref(), Some(r"^/etc/shadow-?$"), "{report}");
    assert!(
        syscall.is_some_and(|s| !s.is_empty()),
        "no reason.syscall\n{report}"
    );

    // The text summary names it.
    let (text_root, text_manifest) = (jail.join("text-root"), jail.join("text.json"));
    let args = [
        "run",
        "--root",
        text_root.to_str().expect("UTF-8"),
        "--manifest",
        text_manifest.to_str().expect("UTF-8"),
        "--",
    ];
    let all: Vec<&str> = args.iter().chain(argv.iter()).copied().collect();
    let text = jail.jailtrace(&all, BASE_ENV);
    text.assert_no_panic().assert_code(exit::OK);
    assert!(
        text.stderr_text()
            .lines()
            .any(|l| l.contains("denied:") && l.contains("/etc/shadow")),
        "the text summary does not name /etc/shadow\n{}",
        text.report()
    );

    // --allow makes an exception.
    let allowed = jail.run_at(
        &jail.join("allow-root"),
        &jail.join("allow.json"),
        &argv,
        &["--allow", "^/etc/shadow$"],
        BASE_ENV,
    );
    allowed.expect_ok();
    let report = allowed.finished.report();
    assert_eq!(
        fs::read(jail.join("allow-root/etc/shadow")).ok(),
        fs::read("/etc/shadow").ok(),
        "--allow did not copy /etc/shadow\n{report}"
    );
    let m = allowed.manifest();
    assert!(denied(&m, "/etc/shadow").is_none(), "{report}");
    assert!(
        manifest_paths(&m).contains(&PathBuf::from("/etc/shadow")),
        "{report}"
    );

    // --deny adds a rule.
    let kept_out = jail.run_at(
        &jail.join("deny-root"),
        &jail.join("deny.json"),
        &["/bin/sh", "-c", "cat /etc/hostname 2>/dev/null; true"],
        &["--deny", "^/etc/hostname$"],
        BASE_ENV,
    );
    kept_out.expect_ok();
    let report = kept_out.finished.report();
    assert!(
        fs::symlink_metadata(jail.join("deny-root/etc/hostname")).is_err(),
        "--deny did not keep /etc/hostname out\n{report}"
    );
    let (rule, _) = denied(&kept_out.manifest(), "/etc/hostname")
        .unwrap_or_else(|| panic!("denied does not list /etc/hostname\n{report}"));
    assert_eq!(rule.as_deref(), Some("^/etc/hostname$"), "{report}");
}

/// A file of the test in /etc, removed on drop.
struct EtcFile(PathBuf);

impl Drop for EtcFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn a_key_file_the_host_keeps_from_others_is_denied_unless_allowed() {
    let test = "a_key_file_the_host_keeps_from_others_is_denied_unless_allowed";
    if !require_root(test) {
        return;
    }
    // As /etc/bind/rndc.key or /etc/varnish/secret are: in /etc, mode
    // 0600, a key by its name. No deny rule names it.
    let key = EtcFile(PathBuf::from(format!(
        "/etc/jailtrace-it-{}.key",
        util::unique()
    )));
    fs::write(&key.0, b"key \"rndc-key\" { secret \"c2VjcmV0\"; };\n").expect("write the key");
    fs::set_permissions(&key.0, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let path = key.0.to_str().expect("UTF-8");
    // Listed first: a name a listing shows is filled from the host once
    // opened, so the listing must not show it either.
    let script = format!("ls /etc >/dev/null; cat {path} >/dev/null 2>&1; true");
    let argv = ["/bin/sh", "-c", script.as_str()];
    let jail = Jail::new("sec-key-file");
    let outcome = jail.run(&argv, &[], BASE_ENV);
    outcome.expect_ok();
    let report = outcome.finished.report();
    assert!(
        fs::symlink_metadata(jail.root.join(path.trim_start_matches('/'))).is_err(),
        "the key file was copied\n{report}"
    );
    let (rule, _) = denied(&outcome.manifest(), path)
        .unwrap_or_else(|| panic!("denied does not list {path}\n{report}"));
    assert_eq!(
        rule.as_deref(),
        Some("key file: in /etc, not readable by others, named like a key or secret"),
        "{report}"
    );
    // The same file readable by others is no secret the host keeps.
    fs::set_permissions(&key.0, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let open = jail.run_at(
        &jail.join("open-root"),
        &jail.join("open.json"),
        &argv,
        &[],
        BASE_ENV,
    );
    open.expect_ok();
    assert!(
        jail.join("open-root")
            .join(path.trim_start_matches('/'))
            .exists(),
        "{}",
        open.finished.report()
    );
    // --allow lets it in.
    fs::set_permissions(&key.0, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let rule = format!("^{}$", path.replace('.', "\\."));
    let allowed = jail.run_at(
        &jail.join("allow-root"),
        &jail.join("allow.json"),
        &argv,
        &["--allow", &rule],
        BASE_ENV,
    );
    allowed.expect_ok();
    assert_eq!(
        fs::read(jail.join("allow-root").join(path.trim_start_matches('/'))).ok(),
        fs::read(&key.0).ok(),
        "{}",
        allowed.finished.report()
    );
}
