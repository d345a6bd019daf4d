//! The `bwrap` format: a POSIX sh script that runs the program under
//! bubblewrap (0.5 or later, for `--perms`) with only the manifest's paths.
//!
//! The sandbox's root is bubblewrap's empty tmpfs; in manifest order each
//! directory becomes `--perms MODE --dir PATH`, each copied file (hard links
//! too) `--ro-bind HOST PATH`, each symlink `--symlink TARGET PATH`, each
//! device `--dev-bind HOST PATH`, each synthesized file (`/etc/passwd`)
//! `--perms MODE --ro-bind-data FD PATH` fed from the script itself. Then
//! the recorded mounts: `--proc` for proc, `--ro-bind /sys` for sysfs,
//! `--dev-bind /dev/pts` for devpts, `--tmpfs` for tmpfs, and for a bind
//! (`run --bind`) `--bind HOST PATH`, or `--ro-bind HOST PATH` when it is
//! read-only. The program runs
//! in the manifest's working directory with `--unshare-pid` (as under
//! `jailtrace run`), `--die-with-parent`, and `--new-session` unless it
//! uses a terminal (`/dev/tty` or devpts), since a new session has no
//! controlling terminal. Extra arguments to the script go to the program.
//!
//! Guarantees:
//! - Nothing from the host is visible but the bound files, devices and
//!   mounts; every bound file is read-only, and bubblewrap mounts them
//!   `nosuid`. The one writable host path is a bind recorded without `ro`.
//! - Every host file bound is read at export time and checked against the
//!   manifest's SHA-256 (the report lists differences), since the program
//!   will see the live host file.
//! - Every word is quoted by [`crate::shell`], byte for byte.
//!
//! Not done (see docs/export.md): owners and modes of bound files are the
//! host's (a bind mount cannot change them); directories and synthesized
//! files belong to whoever runs bwrap; `--uid`/`--gid` are not used (they
//! need a user namespace).
//!
//! The environment is the manifest's (`--clearenv`, then `--setenv` for each
//! recorded variable but the login session's), plus the caller's `TERM`;
//! a variable recorded by name only is read from the caller's environment
//! when the script runs, and the script stops naming it when it is unset.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use jailtrace_manifest::{secret, EnvVar, Manifest, Program};

use crate::command::{argv, program_env};
use crate::plan::{bytes, Item, What};
use crate::shell::{check_nul, word};
use crate::source::Source;
use crate::Error;

const FORMAT: &str = "bwrap script";

/// The lines of the script being assembled.
#[derive(Debug, Default)]
struct Script {
    /// Commands run before `exec bwrap` (data that cannot be a here-document).
    before: Vec<u8>,
    /// One bwrap option (with its arguments) per item.
    options: Vec<Vec<u8>>,
    /// Here-document redirections and bodies, after the command.
    redirections: Vec<u8>,
    bodies: Vec<u8>,
    /// The next free file descriptor for data.
    next_fd: u32,
}

impl Script {
    fn option(&mut self, words: &[&[u8]]) {
        let mut line = Vec::new();
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            word(&mut line, w);
        }
        self.options.push(line);
    }

    /// Feeds `content` on a new descriptor and returns its number: a
    /// here-document when the content ends in a newline (a here-document
    /// always does), else a temporary file opened before `exec`.
    fn data(&mut self, content: &[u8]) -> u32 {
        let fd = self.next_fd;
        self.next_fd += 1;
        if content.ends_with(b"\n") {
            let mut delimiter = format!("JAILTRACE_EOF_{fd}");
            while content
                .split(|&b| b == b'\n')
                .any(|line| line == delimiter.as_bytes())
            {
                delimiter.push('_');
            }
            write!(self.redirections, " {fd}<<'{delimiter}'").ok();
            self.bodies.extend_from_slice(content);
            writeln!(self.bodies, "{delimiter}").ok();
        } else {
            writeln!(self.before, "data{fd}=$(mktemp)").ok();
            self.before.extend_from_slice(b"printf '%s' ");
            word(&mut self.before, content);
            writeln!(self.before, " >\"$data{fd}\"").ok();
            writeln!(self.before, "exec {fd}<\"$data{fd}\"").ok();
            writeln!(self.before, "rm -f -- \"$data{fd}\"").ok();
        }
        fd
    }
}

/// Writes the script for `items`, checking each bound host file.
pub(crate) fn script(
    manifest: &Manifest,
    items: &[Item<'_>],
    source: &mut Source<'_>,
) -> Result<Vec<u8>, Error> {
    let mut s = Script {
        next_fd: 3,
        ..Script::default()
    };
    s.option(&[b"--unshare-pid"]);
    s.option(&[b"--die-with-parent"]);
    let uses_terminal = items.iter().any(|i| i.path == Path::new("/dev/tty"))
        || manifest.mounts.iter().any(|m| m.fstype == "devpts");
    if !uses_terminal {
        s.option(&[b"--new-session"]);
    }

    let mut by_path: HashMap<&Path, &Item<'_>> = HashMap::new();
    for item in items {
        place(&mut s, item, &by_path, source)?;
        by_path.insert(&item.path, item);
    }
    for m in &manifest.mounts {
        let path = m.path.as_bytes();
        match (m.fstype.as_str(), &m.source) {
            ("proc", _) => s.option(&[b"--proc", path]),
            ("sysfs", _) => s.option(&[b"--ro-bind", b"/sys", path]),
            ("devpts", _) => s.option(&[b"--dev-bind", b"/dev/pts", path]),
            ("tmpfs", _) => s.option(&[b"--tmpfs", path]),
            ("bind", Some(host)) if m.read_only() => {
                s.option(&[b"--ro-bind", host.as_bytes(), path])
            }
            ("bind", Some(host)) => s.option(&[b"--bind", host.as_bytes(), path]),
            (other, _) => source.report.notes.push(format!(
                "the {other} mount on {} has no bwrap option; left out",
                m.path
            )),
        }
    }

    let mut out = Vec::new();
    let names: Vec<&str> = manifest.programs.iter().map(|p| p.name.as_str()).collect();
    out.extend_from_slice(b"#!/bin/sh\n# Runs ");
    out.extend_from_slice(names.join(", ").as_bytes());
    out.extend_from_slice(
        b" under bubblewrap with only the paths its jailtrace\n\
# manifest lists: host files bound read-only, directories and symlinks made in\n\
# bubblewrap's empty root. Written by `jailtrace export --format bwrap`.\n",
    );
    if let [only] = &manifest.programs[..] {
        out.extend_from_slice(
            b"# usage: sh THIS_SCRIPT [ARGS...]   (ARGS are appended to the program's)\nset -eu\n",
        );
        program(&mut out, only, &mut source.report.notes)?;
    } else {
        writeln!(
            out,
            "# usage: sh THIS_SCRIPT PROGRAM [ARGS...]   (PROGRAM: {}; ARGS are appended)\nset -eu\ncase \"${{1-}}\" in",
            names.join(", ")
        )
        .ok();
        for p in &manifest.programs {
            check_nul(FORMAT, "a program name", p.name.as_bytes())?;
            word(&mut out, p.name.as_bytes());
            out.extend_from_slice(b")\n\tshift\n");
            program(&mut out, p, &mut source.report.notes)?;
            out.extend_from_slice(b"\t;;\n");
        }
        out.extend_from_slice(b"*)\n\techo \"usage: $0 PROGRAM [ARGS...]; PROGRAM is one of:");
        for name in &names {
            out.push(b' ');
            word(&mut out, name.as_bytes());
        }
        out.extend_from_slice(b"\" >&2\n\texit 2\n\t;;\nesac\n");
    }
    out.extend_from_slice(&s.before);
    out.extend_from_slice(b"exec bwrap \\\n");
    for line in &s.options {
        out.push(b'\t');
        out.extend_from_slice(line);
        out.extend_from_slice(b" \\\n");
    }
    out.extend_from_slice(b"\t\"$@\"");
    out.extend_from_slice(&s.redirections);
    out.push(b'\n');
    out.extend_from_slice(&s.bodies);
    Ok(out)
}

/// The lines that set the script's arguments to what starts `program`:
/// its working directory and environment (bubblewrap starts from none,
/// `--clearenv`; then the recorded variables, the caller's `TERM` when
/// set, and each variable recorded by name only from the caller's
/// environment, the script stopping with a message naming one that is
/// unset), `--`, its argument vector and the script's own arguments.
fn program(out: &mut Vec<u8>, program: &Program, notes: &mut Vec<String>) -> Result<(), Error> {
    let command = &program.command;
    crate::command::before_note(command, FORMAT, notes);
    let mut words: Vec<Vec<u8>> = Vec::new();
    let mut quoted = |w: &[&[u8]]| {
        let mut line = Vec::new();
        for (i, x) in w.iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            word(&mut line, x);
        }
        words.push(line);
    };
    quoted(&[b"--chdir", command.cwd.as_bytes()]);
    quoted(&[b"--clearenv"]);
    let mut raw: Vec<Vec<u8>> = Vec::new();
    for var in program_env(command) {
        match var {
            EnvVar::Recorded(item) => {
                let (key, value) = secret::split_item(item.as_bytes());
                quoted(&[b"--setenv", key, value]);
            }
            EnvVar::Redacted(name) if is_shell_name(name) => {
                let name = String::from_utf8_lossy(name);
                writeln!(
                    out,
                    "\t: \"${{{name}?jailtrace: {name} is recorded by name only (secret-looking); set it in this script's environment}}\""
                )
                .ok();
                raw.push(format!("--setenv {name} \"${name}\"").into_bytes());
            }
            EnvVar::Redacted(name) => notes.push(format!(
                "{} is recorded by name only and is not a shell variable name; left out of the bwrap script",
                String::from_utf8_lossy(name)
            )),
        }
    }
    words.extend(raw);
    words.push(b"${TERM:+--setenv TERM \"$TERM\"}".to_vec());
    let mut tail = b"--".to_vec();
    for (i, arg) in argv(command).into_iter().enumerate() {
        check_nul(FORMAT, &format!("argument {i}"), arg)?;
        tail.push(b' ');
        word(&mut tail, arg);
    }
    tail.extend_from_slice(b" \"$@\"");
    words.push(tail);
    out.extend_from_slice(b"\tset --");
    for w in words {
        out.extend_from_slice(b" \\\n\t\t");
        out.extend_from_slice(&w);
    }
    out.push(b'\n');
    Ok(())
}

/// A name `${NAME}` can expand: a letter or `_`, then letters, digits, `_`.
fn is_shell_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The option that places one item.
fn place(
    s: &mut Script,
    item: &Item<'_>,
    by_path: &HashMap<&Path, &Item<'_>>,
    source: &mut Source<'_>,
) -> Result<(), Error> {
    let path = bytes(&item.path);
    let mode = format!("{:04o}", item.mode());
    match &item.what {
        What::Dir => s.option(&[b"--perms", mode.as_bytes(), b"--dir", path]),
        What::Symlink(target) => s.option(&[b"--symlink", target, path]),
        What::Device { .. } => {
            s.option(&[b"--dev-bind", bytes(&source.host_path(&item.path)), path])
        }
        What::Copied { .. } => {
            source.check(item)?;
            s.option(&[b"--ro-bind", bytes(&source.host_path(&item.path)), path]);
        }
        // A bind cannot make a hollow file: the host's file is bound.
        What::Hollow { .. } => {
            s.option(&[b"--ro-bind", bytes(&source.host_path(&item.path)), path]);
        }
        What::Synthesized(content) => synthesized(s, item, content, source)?,
        What::Hardlink(to) => {
            // Bind what the earlier file was bound to: the same content.
            match by_path.get(to.as_path()).map(|earlier| &earlier.what) {
                Some(What::Synthesized(content)) => synthesized(s, item, content, source)?,
                _ => s.option(&[b"--ro-bind", bytes(&source.host_path(to)), path]),
            }
        }
    }
    Ok(())
}

/// `--perms MODE --ro-bind-data FD PATH` with `content` on FD.
fn synthesized(
    s: &mut Script,
    item: &Item<'_>,
    content: &[u8],
    source: &mut Source<'_>,
) -> Result<(), Error> {
    check_nul(
        FORMAT,
        &format!("the content of {}", item.path.display()),
        content,
    )?;
    source.count(content);
    let fd = s.data(content).to_string();
    let mode = format!("{:04o}", item.mode());
    s.option(&[
        b"--perms",
        mode.as_bytes(),
        b"--ro-bind-data",
        fd.as_bytes(),
        bytes(&item.path),
    ]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::process::Command;

    use super::*;
    use crate::plan::items;
    use crate::source::sha256_hex;
    use crate::tests::{entry, manifest};
    use jailtrace_manifest::{Cause, DeviceNumber, EntryKind, Mount, PathText, Reason};
    use jailtrace_rootfs::Host;

    fn fixture() -> (tempfile::TempDir, Manifest) {
        let host = tempfile::tempdir().unwrap();
        fs::create_dir(host.path().join("etc")).unwrap();
        fs::write(host.path().join("etc/conf"), b"setting\n").unwrap();
        let mut m = manifest();
        m.programs[0].command.argv = ["sh", "-c", "cat /etc/conf; echo \"$0 $1\"", "it's"]
            .map(PathText::from)
            .to_vec();
        m.programs[0].command.executable = PathText::from("/bin/sh");
        m.programs[0].name = "sh".into();
        m.programs[0].command.cwd = PathText::from("/etc");
        let mut conf = entry("/etc/conf", EntryKind::File, 0o644);
        conf.sha256 = Some(sha256_hex(b"setting\n"));
        let mut passwd = entry("/etc/passwd", EntryKind::File, 0o644);
        passwd.content = Some(PathText::from("root:x:0:0::/:/bin/sh\nJAILTRACE_EOF_3\n"));
        let mut group = entry("/etc/group", EntryKind::File, 0o640);
        group.content = Some(PathText::from("root:x:0:"));
        let mut null = entry("/dev/null", EntryKind::Device, 0o666);
        null.rdev = Some(DeviceNumber { major: 1, minor: 3 });
        let mut lib = entry("/lib", EntryKind::Symlink, 0o777);
        lib.target = Some(PathText::from("usr/lib"));
        m.entries = vec![
            entry("/etc", EntryKind::Dir, 0o755),
            conf,
            passwd,
            group,
            entry("/dev", EntryKind::Dir, 0o755),
            null,
            lib,
        ];
        m.mounts = vec![Mount {
            fstype: "proc".into(),
            path: PathText::from("/proc"),
            options: vec![],
            source: None,
            reason: Reason::new(Cause::Runtime, 1),
        }];
        (host, m)
    }

    #[test]
    fn one_option_per_entry_in_manifest_order() {
        let (host, m) = fixture();
        let items = items(&m).unwrap();
        let host = Host::at(host.path());
        let mut source = Source::new(&host);
        let text = String::from_utf8(script(&m, &items, &mut source).unwrap()).unwrap();
        let base = host.base().display();
        let expected = format!(
            "set -eu
\tset -- \\
\t\t--chdir /etc \\
\t\t--clearenv \\
\t\t${{TERM:+--setenv TERM \"$TERM\"}} \\
\t\t-- /bin/sh -c 'cat /etc/conf; echo \"$0 $1\"' 'it'\\''s' \"$@\"
data4=$(mktemp)
printf '%s' root:x:0: >\"$data4\"
exec 4<\"$data4\"
rm -f -- \"$data4\"
exec bwrap \\
\t--unshare-pid \\
\t--die-with-parent \\
\t--new-session \\
\t--perms 0755 --dir /etc \\
\t--ro-bind {base}/etc/conf /etc/conf \\
\t--perms 0644 --ro-bind-data 3 /etc/passwd \\
\t--perms 0640 --ro-bind-data 4 /etc/group \\
\t--perms 0755 --dir /dev \\
\t--dev-bind {base}/dev/null /dev/null \\
\t--symlink usr/lib /lib \\
\t--proc /proc \\
\t\"$@\" 3<<'JAILTRACE_EOF_3_'
root:x:0:0::/:/bin/sh
JAILTRACE_EOF_3
JAILTRACE_EOF_3_
"
        );
        assert!(text.ends_with(&expected), "{text}");
        assert!(text.starts_with("#!/bin/sh\n"));
        assert_eq!((source.report.files, source.report.bytes), (3, 8 + 38 + 9));
        assert!(source.report.differs.is_empty());
    }

    #[test]
    fn bound_files_are_checked_binds_bound_and_a_terminal_keeps_the_session() {
        let (host, mut m) = fixture();
        m.entries[1].sha256 = Some(sha256_hex(b"other\n"));
        let mut tty = entry("/dev/tty", EntryKind::Device, 0o666);
        tty.rdev = Some(DeviceNumber { major: 5, minor: 0 });
        m.entries.push(tty);
        m.mounts = vec![
            crate::tests::bind(b"/srv/data", "/var/lib/app", false),
            crate::tests::bind(b"/srv/www", "/var/www", true),
        ];
        let items = items(&m).unwrap();
        let host = Host::at(host.path());
        let mut source = Source::new(&host);
        let text = String::from_utf8(script(&m, &items, &mut source).unwrap()).unwrap();
        assert!(!text.contains("--new-session"), "{text}");
        assert!(
            text.contains("\t--bind /srv/data /var/lib/app \\\n\t--ro-bind /srv/www /var/www \\\n"),
            "{text}"
        );
        assert_eq!(source.report.differs.len(), 1);
        assert_eq!(source.report.differs[0].jail, Path::new("/etc/conf"));
    }

    /// The real consumer, when this machine has it: bwrap runs the script.
    #[test]
    fn bwrap_runs_the_script_when_available() {
        let usable = Command::new("bwrap")
            .args(["--ro-bind", "/", "/", "--", "/bin/true"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !usable {
            eprintln!(
                "SKIPPED bwrap_runs_the_script_when_available: bwrap is missing or cannot run here"
            );
            return;
        }
        let (host, mut m) = fixture();
        // The host's own shell and its libraries, bound read-only; no
        // device (the fake host has none).
        m.entries
            .retain(|e| !matches!(e.kind, EntryKind::Symlink | EntryKind::Device));
        for (dir, link) in [
            ("/usr", None),
            ("/bin", Some("usr/bin")),
            ("/lib", Some("usr/lib")),
            ("/lib64", Some("usr/lib64")),
        ] {
            let mut e = entry(
                dir,
                if link.is_some() {
                    EntryKind::Symlink
                } else {
                    EntryKind::Dir
                },
                0o755,
            );
            e.target = link.map(PathText::from);
            m.entries.push(e);
        }
        let items = items(&m).unwrap();
        let host_tree = Host::at(host.path());
        let mut source = Source::new(&host_tree);
        let mut text = script(&m, &items, &mut source).unwrap();
        // Bind the host's /usr over the empty directory (test scaffolding:
        // the exported options stay as they are).
        let at = text.windows(9).position(|w| w == b"\t--chdir ").unwrap();
        text.splice(at..at, b"\t--ro-bind /usr /usr \\\n".iter().copied());
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("run.sh"), &text).unwrap();
        let out = Command::new("/bin/sh")
            .arg(dir.path().join("run.sh"))
            .arg("extra")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{out:?}",
            String::from_utf8_lossy(&text)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "setting\nit's extra\n"
        );
    }
}
