//! The `dockerfile` format: a build context directory holding `rootfs.tar`
//! (the [`crate::tar`] archive) and a `Dockerfile` that makes an image of
//! exactly that root: `FROM scratch`, `ADD rootfs.tar /`, `WORKDIR`, `USER`
//! when recorded, one `ENV` per variable (session variables left out, see
//! [`crate::command`]), a `VOLUME` for each bind (`run --bind`: an image
//! cannot hold the host directory; the report says which `-v` mounts it)
//! and `ENTRYPOINT` in JSON (exec) form.
//!
//! Guarantees: `ADD` unpacks the archive with its owners and modes;
//! `ENV`, `WORKDIR` and `USER` values are double-quoted with `\`, `"` and
//! `$` escaped, so the builder's variable substitution leaves them as
//! recorded; `ENTRYPOINT` is JSON, which builders do not substitute in. A
//! value a Dockerfile line cannot hold (a newline, non-UTF-8) is refused for
//! the command and working directory, and left out with a note for a
//! variable.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use jailtrace_manifest::{EnvVar, Manifest};

use crate::command::{argv, container_user, program_env, redacted_note, utf8, volumes};
use crate::plan::Item;
use crate::source::Source;
use crate::Error;

const FORMAT: &str = "Dockerfile";

/// Writes `Dockerfile` and `rootfs.tar` into the (empty) directory `dir`.
pub(crate) fn write(
    manifest: &Manifest,
    items: &[Item<'_>],
    source: &mut Source<'_>,
    dir: &Path,
) -> Result<(), Error> {
    let text = dockerfile(manifest, &mut source.report.notes)?;
    let tar_path = dir.join("rootfs.tar");
    let file = File::create(&tar_path).map_err(Error::write(&tar_path))?;
    let out = crate::tar::write(items, source, BufWriter::new(file), &tar_path)?;
    out.into_inner()
        .map_err(|e| Error::Write {
            path: tar_path.clone(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(Error::write(&tar_path))?;
    let path = dir.join("Dockerfile");
    std::fs::write(&path, text).map_err(Error::write(&path))
}

/// The Dockerfile's text; variables left out are noted in `notes`.
fn dockerfile(manifest: &Manifest, notes: &mut Vec<String>) -> Result<String, Error> {
    let command = &manifest.first_program().command;
    crate::command::before_note(command, FORMAT, notes);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# The jail of {}, written by `jailtrace export --format dockerfile`.\n\
         # Build with `docker build -t NAME .` or `buildah bud -t NAME .` here.",
        command.executable
    );
    out.push_str("FROM scratch\nADD rootfs.tar /\n");
    let cwd = utf8(FORMAT, "working directory", command.cwd.as_bytes())?;
    let _ = writeln!(out, "WORKDIR {}", word("working directory", cwd)?);
    if let Some(user) = container_user(command) {
        let _ = writeln!(out, "USER {}", word("user", &user)?);
    }
    let mut redacted = Vec::new();
    for var in program_env(command) {
        let item = match var {
            EnvVar::Recorded(item) => item,
            EnvVar::Redacted(name) => {
                redacted.push(name);
                continue;
            }
        };
        let Some((key, value)) = item.to_str().and_then(|text| text.split_once('=')) else {
            notes.push(format!(
                "environment item {item} is not UTF-8 KEY=VALUE; left out of the Dockerfile"
            ));
            continue;
        };
        let key_ok =
            !key.is_empty() && !key.contains(|c: char| c.is_whitespace() || "\"'\\$".contains(c));
        match word("variable", value) {
            Ok(value) if key_ok => {
                let _ = writeln!(out, "ENV {key}={value}");
            }
            _ => notes.push(format!(
                "environment variable {key} cannot be written on a Dockerfile line; left out"
            )),
        }
    }
    notes.extend(redacted_note(
        &redacted,
        "Dockerfile",
        "give them when the container starts (`docker run -e NAME`, `--env-file`)",
    ));
    let volumes = volumes(manifest, FORMAT, notes);
    if !volumes.is_empty() {
        // Serialising a list of strings cannot fail.
        let json = serde_json::to_string(&volumes).unwrap_or_default();
        let _ = writeln!(out, "VOLUME {json}");
    }
    let args = argv(command)
        .into_iter()
        .enumerate()
        .map(|(i, arg)| utf8(FORMAT, &format!("argument {i}"), arg))
        .collect::<Result<Vec<_>, _>>()?;
    // Serialising a list of strings cannot fail.
    let json = serde_json::to_string(&args).unwrap_or_default();
    let _ = writeln!(out, "ENTRYPOINT {json}");
    // Every program of the jail, with the arguments that start it.
    let programs = crate::oci::programs_label(manifest)?;
    let _ = writeln!(
        out,
        "LABEL org.jailtrace.programs={}",
        word("label", &programs)?
    );
    Ok(out)
}

/// `text` double-quoted with `\`, `"` and `$` escaped; a line break or other
/// control character is refused.
fn word(what: &str, text: &str) -> Result<String, Error> {
    if text.chars().any(char::is_control) {
        return Err(Error::Unrepresentable {
            format: FORMAT,
            what: format!("{what} {text:?}"),
            why: "it contains a control character (a line break)",
        });
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::manifest;
    use jailtrace_manifest::PathText;

    #[test]
    fn the_dockerfile_is_from_scratch_with_a_json_entrypoint() {
        let mut m = manifest();
        m.programs[0].command.executable = PathText::from("/bin/sh");
        m.programs[0].command.argv = ["sh", "-c", "echo \"$HOME\" \\"]
            .map(PathText::from)
            .to_vec();
        m.programs[0].command.env = [
            "PATH=/usr/bin:/bin",
            "SHLVL=1",
            "PRICE=$5 \"net\"",
            "BAD=a\nb",
        ]
        .map(PathText::from)
        .to_vec();
        m.programs[0].command.user = Some("1000".into());
        m.programs[0].command.group = Some("100".into());
        m.programs[0].command.cwd = PathText::from("/srv/$app");
        let mut notes = Vec::new();
        let text = dockerfile(&m, &mut notes).unwrap();
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(
            body.last()
                .is_some_and(|l| l.starts_with("LABEL org.jailtrace.programs=")),
            "{text}"
        );
        let body = &body[..body.len() - 1];
        assert_eq!(
            body,
            [
                "FROM scratch",
                "ADD rootfs.tar /",
                "WORKDIR \"/srv/\\$app\"",
                "USER \"1000:100\"",
                "ENV PATH=\"/usr/bin:/bin\"",
                "ENV PRICE=\"\\$5 \\\"net\\\"\"",
                r#"ENTRYPOINT ["/bin/sh","-c","echo \"$HOME\" \\"]"#,
            ]
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("BAD"), "{notes:?}");
    }

    #[test]
    fn a_bind_is_a_volume() {
        let mut m = manifest();
        m.mounts = vec![crate::tests::bind(b"/srv/db", "/var/lib/db", true)];
        let mut notes = Vec::new();
        let text = dockerfile(&m, &mut notes).unwrap();
        assert!(
            text.contains("\nVOLUME [\"/var/lib/db\"]\nENTRYPOINT "),
            "{text}"
        );
        assert!(notes[0].contains("-v /srv/db:/var/lib/db:ro"), "{notes:?}");
    }

    #[test]
    fn a_non_utf8_argument_is_refused() {
        let mut m = manifest();
        m.programs[0].command.argv = vec![PathText::from("x"), PathText::from(b"\xff".to_vec())];
        let err = dockerfile(&m, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "argument 1 \"\u{fffd}\" cannot be written in a Dockerfile: it is not UTF-8"
        );
    }
}
