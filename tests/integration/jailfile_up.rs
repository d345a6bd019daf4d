//! `jailtrace up FILE`: a whole jail from a jail file. The shell account's
//! jail of `examples/shell.jail.toml` is made, then used under plain
//! `chroot` by a script that runs each of its tools as the jail's user;
//! running `up` again places nothing; bad jail files are clear errors that
//! write nothing.

use std::fs;
use std::path::Path;

use jailtrace_manifest::Manifest;

use crate::cmd::{self, Finished};
use crate::jail::{exit, Jail};
use crate::util::{require_root, BASE_ENV};

/// The example, copied into the test's directory (its root and manifest
/// are relative to the file).
fn example(jail: &Jail) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shell.jail.toml");
    let dst = jail.join("shell.jail.toml");
    fs::copy(src, &dst).unwrap();
    dst
}

fn up(jail: &Jail, args: &[&str]) -> Finished {
    let mut all = vec!["up"];
    all.extend_from_slice(args);
    let out = jail.jailtrace(&all, BASE_ENV);
    out.assert_no_panic();
    out
}

#[test]
fn a_shell_accounts_jail_from_a_jail_file() {
    if !require_root("a_shell_accounts_jail_from_a_jail_file") {
        return;
    }
    let jail = Jail::new("up-shell");
    let file = example(&jail);
    let first = up(&jail, &[file.to_str().unwrap()]);
    first.assert_success();
    let root = jail.join("shell.jail");
    let manifest_path = jail.join("shell.jail.json");
    let manifest = Manifest::read(&manifest_path).unwrap();
    let names: Vec<&str> = manifest.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["bash", "ls", "cat", "grep", "sed", "id", "mkdir", "cp", "mv", "rm", "vi"]
    );
    assert_eq!(
        manifest
            .jail_file
            .as_ref()
            .map(|f| f.as_path().to_path_buf()),
        Some(file.clone())
    );

    // The account uses every tool in the finished jail.
    let script = "id -un; ls / >/tmp/ls.out; grep -c nobody /etc/passwd; sed -n 1p /etc/group; \
                  mkdir -p /tmp/w/x; cp /etc/passwd /tmp/w/p; mv /tmp/w/p /tmp/w/q; rm /tmp/w/q; \
                  vi -es -c \"call setline(1, 'typed')\" -c wq /tmp/w/v; cat /tmp/w/v";
    let mut c = std::process::Command::new("chroot");
    c.args([
        "--userspec=nobody:nogroup",
        root.to_str().unwrap(),
        "/bin/bash",
        "-c",
        script,
    ])
    .env_clear()
    .envs(BASE_ENV.iter().copied());
    let used = cmd::run(c, cmd::PROGRAM_TIMEOUT);
    used.assert_success();
    assert_eq!(
        used.stdout_text(),
        "nobody\n1\nroot:x:0:\ntyped\n",
        "{}",
        used.report()
    );

    assert_up_again_changes_nothing(&jail, &file, &manifest_path);
}

/// `jailtrace up FILE` again, on the unchanged host: it succeeds and the
/// manifest's entries, mounts and programs are the same (`jailtrace diff`
/// exits 0).
pub(crate) fn assert_up_again_changes_nothing(jail: &Jail, file: &Path, manifest: &Path) {
    let before = jail.join("before.json");
    fs::copy(manifest, &before).unwrap();
    up(jail, &[file.to_str().unwrap()]).assert_success();
    let diff = jail.jailtrace(
        &["diff", before.to_str().unwrap(), manifest.to_str().unwrap()],
        BASE_ENV,
    );
    assert_eq!(diff.code(), Some(0), "{}", diff.report());
}

#[test]
fn bad_jail_files_are_clear_errors_and_write_nothing() {
    if !require_root("bad_jail_files_are_clear_errors_and_write_nothing") {
        return;
    }
    let jail = Jail::new("up-bad");
    let cases = [
        ("typo", "root = \"r\"\n[[program]]\ncomand = [\"/bin/date\"]\n", "typo.toml:3:1: "),
        ("no-command", "root = \"r\"\n[[program]]\ncommand = []\n", "`command` is empty"),
        (
            "twice",
            "root = \"r\"\n[[program]]\ncommand = [\"/bin/date\"]\n[[program]]\ncommand = [\"/bin/date\", \"-u\"]\n",
            "two programs are called \"date\"",
        ),
        ("no-program", "root = \"r\"\n", "no-program.toml:1:1: missing field `program`"),
        (
            "bad-flag-value",
            "root = \"r\"\n[[program]]\ncommand = [\"/bin/date\"]\ntimeout = \"soon\"\n",
            "bad-flag-value.toml: program 1",
        ),
    ];
    for (name, text, needle) in cases {
        let file = jail.join(&format!("{name}.toml"));
        fs::write(&file, text).unwrap();
        let out = up(&jail, &[file.to_str().unwrap()]);
        out.assert_code(exit::ERROR);
        let stderr = out.stderr_text();
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert!(!jail.join("r").exists(), "{name}: a root was made");
        assert!(
            !jail.join("r.json").exists(),
            "{name}: a manifest was written"
        );
    }
}
