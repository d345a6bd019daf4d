//! The `systemd` format: a service drop-in (`[Service]` section) that runs
//! the program chrooted into the jail root with `RootDirectory=`.
//!
//! It sets `RootDirectory=ROOT` (the root given, by default the manifest's),
//! `MountAPIVFS=yes` when a proc or sysfs mount is recorded,
//! `BindPaths=/dev/pts` for devpts, `TemporaryFileSystem=` for tmpfs,
//! `BindPaths=HOST:PATH` for a bind (`run --bind`; `BindReadOnlyPaths=`
//! when it is read-only),
//! `WorkingDirectory=`, `User=`/`Group=` when recorded, one `Environment=`
//! per variable (the session variables left out, see [`crate::command`]),
//! and `ExecStart=` twice: empty, to reset the unit's own command, then the
//! program. A comment at the top says where to install it.
//!
//! A program jailed from its systemd unit (`run --unit`, the manifest's
//! `programs[].unit`) gets a drop-in for that unit that keeps the unit's
//! own settings (its `ExecStart=`, `User=`, environment, directories,
//! `Type=` and sandboxing) and adds only what the jail changes:
//! `RootDirectory=`, `MountAPIVFS=` and the binds. `NOTIFY_SOCKET` needs
//! nothing: systemd makes its notification socket reachable in the root
//! of a service with `RootDirectory=`.
//!
//! Guarantees: values are written with systemd's quoting rules — every
//! `ExecStart=` and `Environment=` word in double quotes with `\`, `"` and
//! control characters escaped C-style; `%` doubled (specifiers) everywhere;
//! `$` doubled in `ExecStart=` (variable expansion). What a unit file cannot
//! hold is refused or left out, never mangled: a non-UTF-8 argument or path
//! or one with a control character where no escape applies is
//! [`Error::Unrepresentable`]; a non-UTF-8 variable is left out with a note.
//! No host content is read: the root must already be built (`jailtrace
//! run`/`build`), so `strict` has nothing to check here.

use std::fmt::Write as _;
use std::path::Path;

use jailtrace_manifest::{EnvVar, Manifest, Program};

use crate::command::{argv, program_env, utf8};
use crate::plan::bytes;
use crate::{Error, Report};

const FORMAT: &str = "systemd drop-in";

/// Writes one drop-in per program of the jail, running it in `root`. With
/// several programs, each drop-in starts with a line naming the file it
/// belongs in (`# ===== NAME.service.d/jailtrace.conf =====`): the output
/// is to be split there, one file per service.
pub(crate) fn dropin(
    manifest: &Manifest,
    root: &Path,
    report: &mut Report,
) -> Result<Vec<u8>, Error> {
    if let [only] = &manifest.programs[..] {
        return dropin_for(manifest, only, root, report).map(String::into_bytes);
    }
    let mut out = String::new();
    for program in &manifest.programs {
        let name = plain("program name", program.name.as_bytes())?;
        let _ = writeln!(out, "# ===== {name}.service.d/jailtrace.conf =====");
        out.push_str(&dropin_for(manifest, program, root, report)?);
    }
    report.notes.push(format!(
        "{} drop-ins, one per program: split the output at the `# =====` lines",
        manifest.programs.len()
    ));
    Ok(out.into_bytes())
}

/// The drop-in of `program`.
fn dropin_for(
    manifest: &Manifest,
    program: &Program,
    root: &Path,
    report: &mut Report,
) -> Result<String, Error> {
    let command = &program.command;
    let name = &program.name;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Runs {} in the jail root {} (recorded by jailtrace).",
        command.executable,
        root.display()
    );
    if let Some(unit) = &program.unit {
        let unit_name = plain("unit name", unit.name.as_bytes())?;
        let _ = writeln!(
            out,
            "# Written by `jailtrace export --format systemd` for the unit it was jailed\n\
             # from. Install as\n\
             #   /etc/systemd/system/{unit_name}.d/jailtrace.conf\n\
             # then run `systemctl daemon-reload`. The unit keeps its own command, user,\n\
             # environment, directories and readiness; this adds the jail's root and mounts.\n\
             # NOTIFY_SOCKET works unchanged: systemd makes its notification socket\n\
             # reachable inside RootDirectory=."
        );
        companions(&mut out, program)?;
        out.push_str("[Service]\n");
        jail_settings(&mut out, manifest, root, report)?;
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "# Written by `jailtrace export --format systemd`. Install as\n\
         #   /etc/systemd/system/{name}.service.d/jailtrace.conf\n\
         # (a drop-in for the service that should run it; any NAME.service.d works),\n\
         # then run `systemctl daemon-reload`."
    );
    companions(&mut out, program)?;
    out.push_str("[Service]\n");
    jail_settings(&mut out, manifest, root, report)?;
    program_settings(&mut out, program, report)?;
    Ok(out)
}

/// The programs `program` runs with (`with`), as the services it needs
/// and starts after: their drop-ins are `NAME.service.d` of the same
/// export.
fn companions(out: &mut String, program: &Program) -> Result<(), Error> {
    if program.command.with.is_empty() {
        return Ok(());
    }
    let names = program
        .command
        .with
        .iter()
        .map(|n| plain("program name", n.as_bytes()).map(|n| format!("{n}.service")))
        .collect::<Result<Vec<_>, _>>()?
        .join(" ");
    let _ = writeln!(out, "[Unit]\nRequires={names}\nAfter={names}");
    Ok(())
}

/// `RootDirectory=`, `MountAPIVFS=` and the mounts of the jail.
fn jail_settings(
    out: &mut String,
    manifest: &Manifest,
    root: &Path,
    report: &mut Report,
) -> Result<(), Error> {
    if !root.is_absolute() {
        return Err(Error::Unrepresentable {
            format: FORMAT,
            what: format!("root directory {:?}", root.display().to_string()),
            why: "RootDirectory= needs an absolute path",
        });
    }
    let _ = writeln!(
        out,
        "RootDirectory={}",
        plain("root directory", bytes(root))?
    );
    let api = manifest
        .mounts
        .iter()
        .any(|m| m.fstype == "proc" || m.fstype == "sysfs");
    if api {
        out.push_str("MountAPIVFS=yes\n");
    }
    for m in &manifest.mounts {
        let path = plain("mount point", m.path.as_bytes())?;
        match (m.fstype.as_str(), &m.source) {
            ("devpts", _) if path == "/dev/pts" => out.push_str("BindPaths=/dev/pts\n"),
            ("devpts", _) => {
                let _ = writeln!(out, "BindPaths=/dev/pts:{path}");
            }
            ("tmpfs", _) => {
                let _ = writeln!(out, "TemporaryFileSystem={path}");
            }
            ("proc" | "sysfs", _) => {}
            ("bind", Some(host)) => {
                let setting = if m.read_only() {
                    "BindReadOnlyPaths"
                } else {
                    "BindPaths"
                };
                let _ = writeln!(
                    out,
                    "{setting}={}:{}",
                    bind_path("bind source", host.as_bytes())?,
                    bind_path("bind target", m.path.as_bytes())?
                );
            }
            (other, _) => report.notes.push(format!(
                "the {other} mount on {} has no systemd setting; left out",
                m.path
            )),
        }
    }
    Ok(())
}

/// What a program jailed from flags says: working directory, user,
/// environment and command.
fn program_settings(out: &mut String, program: &Program, report: &mut Report) -> Result<(), Error> {
    let command = &program.command;
    let name = &program.name;
    let _ = writeln!(
        out,
        "WorkingDirectory={}",
        plain("working directory", command.cwd.as_bytes())?
    );
    if let Some(user) = &command.user {
        let _ = writeln!(out, "User={}", plain("user", user.as_bytes())?);
    }
    if let Some(group) = &command.group {
        let _ = writeln!(out, "Group={}", plain("group", group.as_bytes())?);
    }
    let mut redacted = Vec::new();
    for var in program_env(command) {
        match var {
            EnvVar::Redacted(name) => redacted.push(String::from_utf8_lossy(name).into_owned()),
            EnvVar::Recorded(item) => match item.to_str() {
                Some(text) => {
                    let _ = writeln!(out, "Environment={}", quote(text, false));
                }
                None => report.notes.push(format!(
                    "environment variable {item} is not UTF-8; left out of the systemd drop-in"
                )),
            },
        }
    }
    if !redacted.is_empty() {
        // The values stay with the admin: a file of KEY=VALUE lines that
        // systemd reads when the service starts (and refuses to start
        // without, so a forgotten secret is an error, not an empty value).
        let file = plain(
            "environment file",
            format!("/etc/jailtrace/{name}.env").as_bytes(),
        )?;
        let _ = writeln!(
            out,
            "# {} recorded by name only (secret-looking): put `NAME=VALUE` lines\n\
             # for them in {file} (mode 0600).\n\
             EnvironmentFile={file}",
            redacted.join(", ")
        );
        report.notes.push(format!(
            "{} recorded by name only (secret-looking): the drop-in reads them from {file}, which you provide",
            redacted.join(", ")
        ));
    }
    out.push_str("ExecStart=\nExecStart=");
    for (i, arg) in argv(command).into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote(utf8(FORMAT, &format!("argument {i}"), arg)?, true));
    }
    out.push('\n');
    Ok(())
}

/// One double-quoted word: `\`, `"` and control characters escaped C-style,
/// `%` doubled, and `$` doubled when `exec` (an `ExecStart=` word).
fn quote(text: &str, exec: bool) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '%' => out.push_str("%%"),
            '$' if exec => out.push_str("$$"),
            c if c.is_control() && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One side of a `BindPaths=` item: [`plain`], and no blank or `:`
/// (which separate the items and their two sides).
fn bind_path(what: &str, value: &[u8]) -> Result<String, Error> {
    let text = plain(what, value)?;
    if text.contains(|c: char| c.is_whitespace() || c == ':') {
        return Err(Error::Unrepresentable {
            format: FORMAT,
            what: format!("{what} {text:?}"),
            why: "BindPaths= separates its paths with blanks and `:`",
        });
    }
    Ok(text)
}

/// A value written bare (a path, a user name): UTF-8, no control
/// characters, no surrounding whitespace; `%` doubled.
fn plain(what: &str, value: &[u8]) -> Result<String, Error> {
    let text = utf8(FORMAT, what, value)?;
    if text.chars().any(char::is_control) || text.trim() != text || text.is_empty() {
        return Err(Error::Unrepresentable {
            format: FORMAT,
            what: format!("{what} {text:?}"),
            why: "it is empty, has a control character or surrounding whitespace",
        });
    }
    Ok(text.replace('%', "%%"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::manifest;
    use jailtrace_manifest::{Cause, Mount, PathText, Reason};

    fn mount(fstype: &str, path: &str) -> Mount {
        Mount {
            fstype: fstype.into(),
            path: PathText::from(path),
            options: vec![],
            source: None,
            reason: Reason::new(Cause::Runtime, 1),
        }
    }

    #[test]
    fn the_dropin_resets_execstart_and_sets_the_root() {
        let mut m = manifest();
        m.programs[0].name = "sh".into();
        m.programs[0].command.executable = PathText::from("/bin/sh");
        m.programs[0].command.argv = ["sh", "-c", "echo \"$HOME\" 100% \\ done\n", ""]
            .map(PathText::from)
            .to_vec();
        m.programs[0].command.env = ["PATH=/usr/bin", "TERM=xterm", "GREETING=say \"hi\" 50%"]
            .map(PathText::from)
            .to_vec();
        m.programs[0]
            .command
            .env
            .push(PathText::from(b"ODD=\xff".to_vec()));
        m.programs[0].command.user = Some("nobody".into());
        m.programs[0].command.cwd = PathText::from("/srv/my app");
        m.mounts = vec![
            mount("proc", "/proc"),
            mount("devpts", "/dev/pts"),
            mount("tmpfs", "/run"),
        ];
        let mut report = Report::default();
        let text =
            String::from_utf8(dropin(&m, Path::new("/srv/jail%1"), &mut report).unwrap()).unwrap();
        let body = text.split_once("[Service]\n").unwrap().1;
        assert_eq!(
            body,
            "RootDirectory=/srv/jail%%1
MountAPIVFS=yes
BindPaths=/dev/pts
TemporaryFileSystem=/run
WorkingDirectory=/srv/my app
User=nobody
Environment=\"PATH=/usr/bin\"
Environment=\"GREETING=say \\\"hi\\\" 50%%\"
ExecStart=
ExecStart=\"/bin/sh\" \"-c\" \"echo \\\"$$HOME\\\" 100%% \\\\ done\\n\" \"\"
"
        );
        m.mounts = vec![
            crate::tests::bind(b"/srv/data", "/var/lib/app", false),
            crate::tests::bind(b"/srv/www", "/var/www", true),
        ];
        let mut other = Report::default();
        let binds = String::from_utf8(dropin(&m, Path::new("/j"), &mut other).unwrap()).unwrap();
        assert!(
            binds.contains(
                "\nBindPaths=/srv/data:/var/lib/app\nBindReadOnlyPaths=/srv/www:/var/www\n"
            ),
            "{binds}"
        );
        m.mounts = vec![crate::tests::bind(b"/srv/my data", "/data", false)];
        let err = dropin(&m, Path::new("/j"), &mut other).unwrap_err();
        assert!(err.to_string().contains("BindPaths="), "{err}");
        assert!(
            text.starts_with("# Runs /bin/sh in the jail root /srv/jail%1"),
            "{text}"
        );
        assert!(
            text.contains("#   /etc/systemd/system/sh.service.d/jailtrace.conf\n"),
            "{text}"
        );
        assert_eq!(report.notes.len(), 1, "{report:?}");
        assert!(report.notes[0].contains("not UTF-8"));
    }

    #[test]
    fn what_a_unit_cannot_hold_is_refused() {
        let mut m = manifest();
        m.programs[0].command.argv = vec![PathText::from("x"), PathText::from(b"\xff".to_vec())];
        let err = dropin(&m, Path::new("/r"), &mut Report::default()).unwrap_err();
        assert!(err.to_string().contains("argument 1"), "{err}");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        let m = manifest();
        let err = dropin(
            &m,
            Path::new("/r\nExecStart=/bin/evil"),
            &mut Report::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("control character"), "{err}");
        let err = dropin(&m, Path::new("jail"), &mut Report::default()).unwrap_err();
        assert!(err.to_string().contains("needs an absolute path"), "{err}");
    }

    #[test]
    fn a_program_run_with_others_requires_their_services() {
        let mut m = manifest();
        let mut web = m.programs[0].clone();
        m.programs[0].name = "mariadb".into();
        web.name = "apache2".into();
        web.command.with = vec!["mariadb".into()];
        m.programs.push(web);
        let text = String::from_utf8(dropin(&m, Path::new("/r"), &mut Report::default()).unwrap())
            .unwrap();
        let (db, web) = text
            .split_once("# ===== apache2.service.d/jailtrace.conf =====\n")
            .unwrap();
        assert!(!db.contains("[Unit]"), "{db}");
        assert!(
            web.contains("[Unit]\nRequires=mariadb.service\nAfter=mariadb.service\n[Service]\n"),
            "{web}"
        );
    }
}
