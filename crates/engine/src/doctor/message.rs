//! The words of each [`Diagnosis`]: a stable kind name for scripts and one
//! plain sentence with the fix, whose commands name files under the root.

use std::path::Path;

use super::diagnose::{Account, Diagnosis};

/// `ROOT` joined with jail path `p`, for a command line.
fn in_jail(root: &Path, p: &Path) -> String {
    shell_word(&root.join(p.strip_prefix("/").unwrap_or(p)))
}

/// `p` as one shell word (quoted when it needs to be; lossy: for people).
fn shell_word(p: &Path) -> String {
    let s = p.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl Diagnosis {
    /// A stable name for scripts: `start_failed`, `missing_interpreter`,
    /// `missing_device`, `not_mounted`, `missing_account`,
    /// `permission_denied`, `missing_chroot_target`, `port_in_use`,
    /// `account_search`, `in_manifest`, `not_bound`.
    pub fn kind(&self) -> &'static str {
        match self {
            Diagnosis::StartFailed { .. } => "start_failed",
            Diagnosis::MissingInterpreter { .. } => "missing_interpreter",
            Diagnosis::MissingDevice { .. } => "missing_device",
            Diagnosis::NotMounted { .. } => "not_mounted",
            Diagnosis::MissingAccount { .. } => "missing_account",
            Diagnosis::PermissionDenied { .. } => "permission_denied",
            Diagnosis::MissingChrootTarget { .. } => "missing_chroot_target",
            Diagnosis::PortInUse { .. } => "port_in_use",
            Diagnosis::AccountSearch { .. } => "account_search",
            Diagnosis::InManifest { .. } => "in_manifest",
            Diagnosis::NotBound { .. } => "not_bound",
        }
    }

    /// One plain sentence with the fix; commands name files under `root`.
    pub fn message(&self, root: &Path) -> String {
        match self {
            Diagnosis::StartFailed {
                stage,
                errno,
                program,
                cwd,
            } => match stage.as_str() {
                "exec the program" => format!(
                    "execve of {} failed with {errno:?} before the program ran",
                    program.display()
                ),
                "change to the working directory" => format!(
                    "the working directory {} cannot be entered in the jail ({errno:?}): \
                     create it there, or pass another --cwd",
                    cwd.display()
                ),
                _ => format!("the program could not be started: cannot {stage} ({errno:?})"),
            },
            Diagnosis::MissingInterpreter {
                exe,
                interpreter,
                script,
                ..
            } => format!(
                "{} exists but its {} {} is missing from the jail, so execve fails with ENOENT; \
                 copy it in (`jailtrace run` places it with the program)",
                exe.display(),
                if *script {
                    "#! interpreter"
                } else {
                    "ELF interpreter"
                },
                interpreter.display()
            ),
            Diagnosis::MissingDevice {
                path,
                block,
                major,
                minor,
                mode,
                uid,
                gid,
                regular_file,
                who,
            } => {
                let node = in_jail(root, path);
                let mut fix = String::new();
                if *regular_file {
                    fix.push_str(&format!("rm {node} && "));
                }
                fix.push_str(&format!(
                    "mknod -m {:o} {node} {} {major} {minor}",
                    mode & 0o7777,
                    if *block { 'b' } else { 'c' }
                ));
                if (*uid, *gid) != (0, 0) {
                    fix.push_str(&format!(" && chown {uid}:{gid} {node}"));
                }
                let what = if *regular_file {
                    format!(
                        "{} is a regular file in the jail (the program created it because the \
                         device was missing)",
                        path.display()
                    )
                } else {
                    format!("{} is missing from the jail", path.display())
                };
                format!(
                    "{what}; {} opens it, and the host has the {} device {major}:{minor}: `{fix}`",
                    who,
                    if *block { "block" } else { "character" }
                )
            }
            Diagnosis::NotMounted {
                mount,
                fstype,
                paths,
                mount_point_exists,
                who,
            } => {
                let point = in_jail(root, mount);
                let mkdir = if *mount_point_exists {
                    String::new()
                } else {
                    format!("mkdir {point} && ")
                };
                let command = match *fstype {
                    "devpts" => format!("mount --bind /dev/pts {point}"),
                    t => format!("mount -t {t} {t} {point}"),
                };
                let looked: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "{} is not mounted in the jail, and {} looks for {} there: `{mkdir}{command}`",
                    mount.display(),
                    who,
                    looked.join(", ")
                )
            }
            Diagnosis::MissingAccount {
                name,
                account,
                id,
                line,
                source,
            } => {
                let (what, idname, db, flag) = match account {
                    Account::User => ("user", "uid", "/etc/passwd", "--keep-user"),
                    Account::Group => ("group", "gid", "/etc/group", "--keep-group"),
                };
                format!(
                    "the program looks up the {what} {name} (named in its {source}), which the \
                     jail's {db} lacks ({idname} {id} on the host): add the line `{line}` to {}, \
                     or rebuild with `jailtrace run {flag} {name}`",
                    in_jail(root, Path::new(db))
                )
            }
            Diagnosis::PermissionDenied {
                path,
                blocked_at,
                errno,
                who,
                creds,
                jail,
                host,
            } => {
                let ran_as = creds
                    .as_ref()
                    .map(|c| format!(" running as uid {} gid {}", c.uid, c.gid))
                    .unwrap_or_default();
                let mut text = format!("{} got {errno:?} on {}{ran_as}", who, path.display());
                let target = if blocked_at != path {
                    text.push_str(&format!(
                        ": the directory {} may not be searched",
                        blocked_at.display()
                    ));
                    blocked_at.display().to_string()
                } else {
                    path.display().to_string()
                };
                let Some(jail) = jail else {
                    return text;
                };
                text.push_str(&format!(": {target} is {jail} in the jail"));
                match host {
                    Some(h) if (h.uid, h.gid, h.mode) != (jail.uid, jail.gid, jail.mode) => {
                        let file = in_jail(root, blocked_at);
                        text.push_str(&format!(
                            ", {}:{} {:04o} on the host; give it the host's owner and mode: \
                             `chown {}:{} {file} && chmod {:04o} {file}`",
                            h.uid, h.gid, h.mode, h.uid, h.gid, h.mode
                        ));
                    }
                    Some(_) => text.push_str(
                        ", the same as on the host: run the program as a user the file \
                         admits (--user), or change its owner or mode in the jail",
                    ),
                    None => text.push_str(", and the host has no such file"),
                }
                text
            }
            Diagnosis::MissingChrootTarget { path, host, who } => {
                let dir = in_jail(root, path);
                match host {
                    Some(h) => format!(
                        "{who} chroots into {}, which the jail lacks, so its chroot fails \
                         (ENOENT); make the directory as the host has it: `mkdir -p {dir} && \
                         chown {}:{} {dir} && chmod {:04o} {dir}` (`jailtrace run` places it)",
                        path.display(),
                        h.uid,
                        h.gid,
                        h.mode
                    ),
                    None => format!(
                        "{who} chroots into {}, which neither the jail nor the host has, so its \
                         chroot fails (ENOENT); create the directory on the host (the program's \
                         configuration names it) and run `jailtrace run` again",
                        path.display()
                    ),
                }
            }
            Diagnosis::PortInUse { addr } => format!(
                "{addr} is already in use: another process (another server, or another copy \
                 of this jail) listens there; stop it or give the program another port"
            ),
            Diagnosis::AccountSearch { lacking, runs } => format!(
                "the program read the jail's /etc/passwd or /etc/group and did not start, and the \
                 jail lacks {lacking} of the host's users and groups: if it looks one up by name \
                 without switching to it, `jailtrace run` of it into {} again finds which by \
                 experiment (runs with subsets of them, about {runs} for one account; the summary's \
                 `accounts:` line names them), or add --keep-user NAME / --keep-group NAME",
                shell_word(root)
            ),
            Diagnosis::InManifest { path, cause } => format!(
                "the manifest lists {} (cause {}), but the jail lacks it: `jailtrace build` \
                 restores it",
                path.display(),
                cause.as_str()
            ),
            Diagnosis::NotBound { bind } => {
                format!(
                "the jail binds {} at {}, but lacks that directory, so the program ran without \
                 it: `mkdir -p {} && {}` (`jailtrace build` makes the directory)",
                bind.source.as_ref().map_or_else(|| "?".into(), |s| s.to_string()),
                bind.path,
                in_jail(root, bind.path.as_path()),
                bind.shell_command(root)
            )
            }
        }
    }
}
