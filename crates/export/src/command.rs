//! The program as the formats that start it write it (Dockerfile, bwrap,
//! systemd, OCI): its argument vector, environment, working directory and
//! user, and the host directories bound into its jail.
//!
//! Guarantees:
//! - The argument vector starts with the manifest's `executable` (the
//!   program's path after `PATH` lookup) followed by `argv[1..]`, so a
//!   runtime that does no `PATH` lookup starts the same file.
//! - The environment is the manifest's `command.env` in its order, minus
//!   the variables that belong to the login session jailtrace ran in rather
//!   than to the program ([`SESSION_VARS`], and names starting with one of
//!   [`SESSION_PREFIXES`]). Nothing else is added or changed.
//! - A variable recorded by name only (its value looked like a secret) is
//!   never written with a value: each format either reads it at run time
//!   or leaves it out and says so.

use std::os::unix::ffi::OsStrExt;

use jailtrace_manifest::{Command, EnvVar, Manifest, PathText};

use crate::Error;

/// Environment variables of a login session, left out of the exported
/// environment: a terminal, display or ssh connection of the person who ran
/// jailtrace, a shell's bookkeeping, the service manager's per-invocation ids.
pub const SESSION_VARS: &[&str] = &[
    "_",
    "COLORTERM",
    "DBUS_SESSION_BUS_ADDRESS",
    "DISPLAY",
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "LS_COLORS",
    "MAIL",
    "OLDPWD",
    "PWD",
    "SHLVL",
    "STY",
    "TERM",
    "TERM_PROGRAM",
    "TERM_PROGRAM_VERSION",
    "WAYLAND_DISPLAY",
    "WINDOW",
    "WINDOWID",
    "XAUTHORITY",
];

/// Name prefixes of session variables, left out like [`SESSION_VARS`]:
/// `SSH_` (`SSH_AUTH_SOCK`, `SSH_CONNECTION`, …), `XDG_` (`XDG_RUNTIME_DIR`,
/// `XDG_SESSION_ID`, …), `TMUX` (`TMUX`, `TMUX_PANE`) and `SUDO_`
/// (`SUDO_USER`, `SUDO_COMMAND`, …).
pub const SESSION_PREFIXES: &[&str] = &["SSH_", "XDG_", "TMUX", "SUDO_"];

/// True when the environment item `KEY=VALUE` (or a bare `KEY`) is a
/// session variable that exports leave out.
pub fn is_session_var(item: &[u8]) -> bool {
    let name = item.split(|&b| b == b'=').next().unwrap_or(item);
    SESSION_VARS.iter().any(|v| v.as_bytes() == name)
        || SESSION_PREFIXES
            .iter()
            .any(|p| name.starts_with(p.as_bytes()))
}

/// The manifest's environment without the session variables, in order,
/// the variables recorded by name only last (see
/// [`jailtrace_manifest::Command::environment`]: an older manifest's
/// secret-looking values count as recorded by name only too).
pub fn program_env(command: &Command) -> Vec<EnvVar<'_>> {
    command
        .environment()
        .into_iter()
        .filter(|var| !is_session_var(var.name()))
        .collect()
}

/// The values a format leaves out, for its report: one sentence naming
/// the variables (never their values) and how to give them at run time.
pub(crate) fn redacted_note(names: &[&[u8]], format: &str, how: &str) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let names: Vec<_> = names.iter().map(|n| String::from_utf8_lossy(n)).collect();
    Some(format!(
        "{} recorded by name only (secret-looking); left out of the {format}: {how}",
        names.join(", ")
    ))
}

/// The binds of the manifest (`run --bind`) for an image, which cannot
/// hold a mount: each mount point (UTF-8) to declare a volume, with a note
/// for `format`'s report giving the `-v HOST:JAIL[:ro]` that mounts the
/// host directory when the container starts. A bind whose paths are not
/// UTF-8 or hold a `:` is left out with a note.
/// A note for `format`'s report when `command` has commands run before
/// it (a unit's `ExecStartPre=`): the format starts the program alone; the
/// jail holds what those commands made in its runs.
pub(crate) fn before_note(command: &Command, format: &str, notes: &mut Vec<String>) {
    if command.before.is_empty() {
        return;
    }
    let shown: Vec<String> = command.before.iter().map(ToString::to_string).collect();
    notes.push(format!(
        "the {format} starts the program alone, not the commands its runs ran before it ({}): \
         the jail holds what they made (the systemd drop-in keeps the unit's ExecStartPre=, \
         which runs them)",
        shown.join(", ")
    ));
}

pub(crate) fn volumes(manifest: &Manifest, format: &str, notes: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for bind in manifest.mounts.iter().filter(|m| m.is_bind()) {
        let (Some(jail), Some(host)) = (
            bind.path.to_str(),
            bind.source.as_ref().and_then(|s| s.to_str()),
        ) else {
            notes.push(format!(
                "the bind at {} has a path that is not UTF-8; left out of the {format}",
                bind.path
            ));
            continue;
        };
        if jail.contains(':') || host.contains(':') {
            notes.push(format!(
                "the bind of {host} at {jail} has a `:` in a path; left out of the {format}"
            ));
            continue;
        }
        let ro = if bind.read_only() { ":ro" } else { "" };
        notes.push(format!(
            "{jail} is bound from the host's {host}, which an image cannot hold: the {format} \
             declares it a volume; give `-v {host}:{jail}{ro}` when the container starts"
        ));
        out.push(jail.to_string());
    }
    out
}

/// The argument vector to start: `executable`, then `argv[1..]`.
pub(crate) fn argv(command: &Command) -> Vec<&[u8]> {
    std::iter::once(command.executable.as_os_str().as_bytes())
        .chain(command.argv.iter().skip(1).map(PathText::as_bytes))
        .collect()
}

/// The user as containers spell it: `USER`, `USER:GROUP`, or `0:GROUP`
/// when only the group was recorded; `None` when neither was.
pub(crate) fn container_user(command: &Command) -> Option<String> {
    match (&command.user, &command.group) {
        (None, None) => None,
        (Some(user), None) => Some(user.clone()),
        (user, Some(group)) => Some(format!("{}:{group}", user.as_deref().unwrap_or("0"))),
    }
}

/// `bytes` as UTF-8, or [`Error::Unrepresentable`] naming `what`.
pub(crate) fn utf8<'a>(
    format: &'static str,
    what: &str,
    bytes: &'a [u8],
) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|_| Error::Unrepresentable {
        format,
        what: format!("{what} {:?}", String::from_utf8_lossy(bytes)),
        why: "it is not UTF-8",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{bind, manifest};

    #[test]
    fn commands_run_before_the_program_are_named_in_a_note() {
        let mut m = manifest();
        let mut notes = Vec::new();
        before_note(&m.programs[0].command, "bwrap script", &mut notes);
        assert!(notes.is_empty());
        m.programs[0].command.before = vec![jailtrace_manifest::Before {
            argv: ["/bin/mkdir", "-p", "/run/app"]
                .map(PathText::from)
                .to_vec(),
            executable: PathText::from("/bin/mkdir"),
            may_fail: false,
        }];
        before_note(&m.programs[0].command, "bwrap script", &mut notes);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("the bwrap script starts the program alone")
                && notes[0].contains("`/bin/mkdir -p /run/app`"),
            "{notes:?}"
        );
    }

    #[test]
    fn session_variables_are_left_out_in_order() {
        let mut m = manifest();
        m.programs[0].command.env = [
            "PATH=/usr/bin:/bin",
            "TERM=xterm",
            "SSH_AUTH_SOCK=/tmp/agent",
            "HOME=/root",
            "XDG_RUNTIME_DIR=/run/user/0",
            "_=/usr/bin/jailtrace",
            "TMUX_PANE=%1",
            "TERMINAL_APP=keep: only TERM itself is a session variable",
            "SHLVL=2",
            "LANG=C.UTF-8",
            "PWD=/",
            "GITHUB_TOKEN=ghp_abc123",
        ]
        .map(PathText::from)
        .to_vec();
        let kept: Vec<_> = program_env(&m.programs[0].command)
            .into_iter()
            .map(|var| match var {
                EnvVar::Recorded(item) => item.to_string(),
                EnvVar::Redacted(name) => String::from_utf8_lossy(name).into_owned(),
            })
            .collect();
        assert_eq!(
            kept,
            [
                "PATH=/usr/bin:/bin",
                "HOME=/root",
                "TERMINAL_APP=keep: only TERM itself is a session variable",
                "LANG=C.UTF-8",
                "GITHUB_TOKEN"
            ]
        );
        assert!(is_session_var(b"DISPLAY"));
        assert!(!is_session_var(b"DISPLAYS=1"));
    }

    #[test]
    fn argv_starts_with_the_executable() {
        let mut m = manifest();
        m.programs[0].command.argv = ["date", "-u"].map(PathText::from).to_vec();
        m.programs[0].command.executable = PathText::from("/usr/bin/date");
        assert_eq!(argv(&m.programs[0].command), [&b"/usr/bin/date"[..], b"-u"]);
    }

    #[test]
    fn binds_become_volumes_with_a_note() {
        let mut m = manifest();
        m.mounts = vec![
            bind(b"/srv/db", "/var/lib/db", true),
            bind(b"/srv/\xff", "/data", false),
            bind(b"/srv/a:b", "/ab", false),
        ];
        let mut notes = Vec::new();
        assert_eq!(volumes(&m, "image", &mut notes), ["/var/lib/db"]);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[0].contains("`-v /srv/db:/var/lib/db:ro`"),
            "{notes:?}"
        );
        assert!(notes[1].contains("not UTF-8"), "{notes:?}");
        assert!(notes[2].contains("`:`"), "{notes:?}");
    }

    #[test]
    fn container_user_spellings() {
        let mut m = manifest();
        assert_eq!(container_user(&m.programs[0].command), None);
        m.programs[0].command.group = Some("adm".into());
        assert_eq!(
            container_user(&m.programs[0].command).as_deref(),
            Some("0:adm")
        );
        m.programs[0].command.user = Some("nobody".into());
        assert_eq!(
            container_user(&m.programs[0].command).as_deref(),
            Some("nobody:adm")
        );
        m.programs[0].command.group = None;
        assert_eq!(
            container_user(&m.programs[0].command).as_deref(),
            Some("nobody")
        );
    }
}
