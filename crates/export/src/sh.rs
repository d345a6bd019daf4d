//! The `sh` format: a standalone POSIX shell script that builds the jail
//! root on a host without jailtrace, from that host's files.
//!
//! The script takes the new root as `$1`, refuses one that exists and is
//! not an empty directory, checks every host file's SHA-256 against the
//! manifest (a warning each; with `JAILTRACE_STRICT=1`, or a script
//! exported with `strict`, any difference stops it before anything is
//! built), then creates the entries in manifest order: `mkdir`, `cp`,
//! `ln -s`, `ln` for hard links, `mknod`, `printf` for synthesized files,
//! each followed by `chown -h` (numeric ids) and `chmod` with the manifest's
//! mode. Mounts the program needs are printed at the end, not made.
//!
//! Guarantees: every path, target and content is written as one shell word
//! (see [`crate::shell`]), byte for byte, so non-UTF-8 names survive; the
//! script runs under `set -eu`, so any failed command stops it. It uses only
//! POSIX sh and coreutils (`sha256sum`, `cp`, `ln`, `mknod`, `chown`,
//! `chmod`, `mkdir`, `ls`, `truncate`, `touch`).

use std::io::Write as _;
use std::path::Path;

use jailtrace_manifest::Manifest;
use jailtrace_rootfs::Host;

use crate::plan::{bytes, Item, What};
use crate::shell::{check_nul, word};
use crate::{Error, Report};

const FORMAT: &str = "sh script";

/// The prologue: usage, the root check and the two helpers.
const PROLOGUE: &str = r#"set -eu
umask 022
if [ "$#" -ne 1 ]; then
	echo "usage: $0 NEWROOT" >&2
	exit 2
fi
root=$1
if [ -e "$root" ] || [ -L "$root" ]; then
	if [ -L "$root" ] || [ ! -d "$root" ] || [ -n "$(ls -A -- "$root")" ]; then
		echo "$0: $root exists and is not an empty directory; refusing to build in it" >&2
		exit 1
	fi
fi

# check HOST_FILE SHA256: warn when the host file is not what the manifest recorded.
differs=0
check() {
	if [ ! -f "$1" ]; then
		echo "$0: host file $1 is missing" >&2
		exit 1
	fi
	sum=$(sha256sum <"$1")
	sum=${sum%% *}
	if [ "$sum" != "$2" ]; then
		echo "warning: $1 differs from the manifest (sha256 $sum on this host, $2 in the manifest)" >&2
		differs=$((differs + 1))
	fi
}

# own UID:GID MODE PATH: the owner first, since chown may clear setuid bits.
own() {
	chown -h -- "$1" "$3"
	chmod -- "$2" "$3"
}
"#;

/// Writes the script for `items` (the manifest's, from [`crate::plan`]).
pub(crate) fn script(
    manifest: &Manifest,
    items: &[Item<'_>],
    host: &Host,
    strict: bool,
) -> Result<(Vec<u8>, Report), Error> {
    let mut report = Report::default();
    let mut out = Vec::new();
    header(&mut out, manifest, strict);
    out.extend_from_slice(PROLOGUE.as_bytes());

    out.extend_from_slice(b"\n# Check every host file before building anything.\n");
    for item in items {
        if let What::Copied { sha256: Some(sum) } = item.what {
            out.extend_from_slice(b"check ");
            word(&mut out, bytes(&host.path_of(&item.path)));
            writeln!(out, " {sum}").ok();
        }
    }
    out.extend_from_slice(
        br#"if [ "$differs" -gt 0 ] && [ "$strict" = 1 ]; then
	echo "$0: $differs host file(s) differ from the manifest; nothing was built (JAILTRACE_STRICT=1)" >&2
	exit 1
fi

mkdir -p -- "$root"
"#,
    );

    for item in items {
        entry(&mut out, item, host, &mut report)?;
    }

    writeln!(
        out,
        "\necho \"$0: built $root ({} entries)\" >&2",
        items.len()
    )
    .ok();
    mounts(&mut out, manifest);
    Ok((out, report))
}

/// The comment block and the `strict` default.
fn header(out: &mut Vec<u8>, manifest: &Manifest, strict: bool) {
    out.extend_from_slice(b"#!/bin/sh\n# The jail root of ");
    let names: Vec<&str> = manifest.programs.iter().map(|p| p.name.as_str()).collect();
    out.extend_from_slice(names.join(", ").as_bytes());
    out.extend_from_slice(b", recorded by jailtrace ");
    out.extend_from_slice(manifest.tool_version.as_bytes());
    out.extend_from_slice(b" (manifest of ");
    out.extend_from_slice(manifest.root.as_bytes());
    out.extend_from_slice(
        b").\n\
# Written by `jailtrace export --format sh`: builds the same root on a host\n\
# with the same files, without jailtrace.\n\
#\n\
# usage: sh THIS_SCRIPT NEWROOT     (as root: it sets owners, makes devices)\n\
#\n\
# NEWROOT must not exist or be an empty directory. Every host file is checked\n\
# against the manifest's SHA-256 first: a difference is a warning, or stops the\n\
# script before it builds anything when JAILTRACE_STRICT=1.\n",
    );
    let default = if strict { 1 } else { 0 };
    writeln!(out, "strict=${{JAILTRACE_STRICT:-{default}}}").ok();
}

/// The commands that place one item.
fn entry(
    out: &mut Vec<u8>,
    item: &Item<'_>,
    host: &Host,
    report: &mut Report,
) -> Result<(), Error> {
    let target = |out: &mut Vec<u8>| in_root(out, &item.path);
    match &item.what {
        What::Dir => {
            out.extend_from_slice(b"mkdir -- ");
            target(out);
        }
        What::Symlink(to) => {
            out.extend_from_slice(b"ln -s -- ");
            word(out, to);
            out.push(b' ');
            target(out);
            // A symlink's own mode means nothing on Linux: only its owner is set.
            write!(out, "\nchown -h -- {}:{} ", item.entry.uid, item.entry.gid).ok();
            target(out);
            out.push(b'\n');
            return Ok(());
        }
        What::Device { major, minor } => {
            write!(out, "mknod -m {:04o} -- ", item.mode()).ok();
            target(out);
            write!(out, " c {major} {minor}").ok();
        }
        What::Hardlink(to) => {
            // The link shares the earlier file's inode: owner and mode are set.
            out.extend_from_slice(b"ln -- ");
            in_root(out, to);
            out.push(b' ');
            target(out);
            out.push(b'\n');
            return Ok(());
        }
        What::Synthesized(content) => {
            check_nul(
                FORMAT,
                &format!("the content of {}", item.path.display()),
                content,
            )?;
            out.extend_from_slice(b"printf '%s' ");
            word(out, content);
            out.extend_from_slice(b" >");
            target(out);
            report.files += 1;
            report.bytes += content.len() as u64;
        }
        What::Hollow { size } => {
            // The host's size and time, no content (the manifest's `hollow`).
            write!(out, "truncate -s {size} -- ").ok();
            target(out);
            out.extend_from_slice(b"\ntouch -r ");
            word(out, bytes(&host.path_of(&item.path)));
            out.extend_from_slice(b" -- ");
            target(out);
        }
        What::Copied { .. } => {
            out.extend_from_slice(b"cp -- ");
            word(out, bytes(&host.path_of(&item.path)));
            out.push(b' ');
            target(out);
            report.files += 1;
            report.bytes += item.entry.size.unwrap_or(0);
        }
    }
    write!(
        out,
        "\nown {}:{} {:04o} ",
        item.entry.uid,
        item.entry.gid,
        item.mode()
    )
    .ok();
    target(out);
    out.push(b'\n');
    Ok(())
}

/// `"$root"PATH`, the path quoted.
fn in_root(out: &mut Vec<u8>, path: &Path) {
    out.extend_from_slice(b"\"$root\"");
    word(out, bytes(path));
}

/// The mounts the program needs, printed as commands for the user.
fn mounts(out: &mut Vec<u8>, manifest: &Manifest) {
    if manifest.mounts.is_empty() {
        return;
    }
    out.extend_from_slice(
        b"echo \"$0: the program needs these mounted (this script does not mount them):\" >&2\n",
    );
    for m in &manifest.mounts {
        if let (true, Some(host)) = (m.is_bind(), &m.source) {
            out.extend_from_slice(b"printf '  mount --bind %s %s\\n' ");
            word(out, host.as_bytes());
            out.push(b' ');
            in_root(out, m.path.as_path());
            out.extend_from_slice(b" >&2\n");
            if !m.read_only() {
                continue;
            }
            out.extend_from_slice(b"printf '  mount -o remount,bind,ro %s\\n' ");
        } else if m.fstype == "devpts" {
            out.extend_from_slice(b"printf '  mount --bind /dev/pts %s\\n' ");
        } else {
            out.extend_from_slice(b"printf '  mount -t %s");
            if !m.options.is_empty() {
                out.extend_from_slice(b" -o %s");
            }
            out.extend_from_slice(b" %s %s\\n' ");
            word(out, m.fstype.as_bytes());
            out.push(b' ');
            if !m.options.is_empty() {
                word(out, m.options.join(",").as_bytes());
                out.push(b' ');
            }
            word(out, m.fstype.as_bytes());
            out.push(b' ');
        }
        in_root(out, m.path.as_path());
        out.extend_from_slice(b" >&2\n");
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::Command;

    use super::*;
    use crate::plan::{items, path_of};
    use crate::source::sha256_hex;
    use crate::tests::{entry, manifest};
    use jailtrace_manifest::{EntryKind, Mount, PathText, Reason};

    /// A host tree with a directory, a file (odd name), a symlink and a
    /// synthesized file, and its manifest; runs the script as the current
    /// user (owners are the user's own, so chown works unprivileged).
    fn fixture() -> (tempfile::TempDir, Manifest) {
        let host = tempfile::tempdir().unwrap();
        let odd = path_of(b"/data/it's \xff.txt");
        fs::create_dir(host.path().join("data")).unwrap();
        fs::write(
            host.path().join("data").join(odd.file_name().unwrap()),
            b"payload\n",
        )
        .unwrap();
        let (uid, gid) = {
            let meta = fs::metadata(host.path()).unwrap();
            (meta.uid(), meta.gid())
        };
        let own = |mut e: jailtrace_manifest::Entry| {
            e.uid = uid;
            e.gid = gid;
            e
        };
        let mut m = manifest();
        let mut file = own(entry(odd, EntryKind::File, 0o640));
        file.sha256 = Some(sha256_hex(b"payload\n"));
        file.size = Some(8);
        let mut link = own(entry("/data/link", EntryKind::Symlink, 0o777));
        link.target = Some(PathText::from(path_of(b"it's \xff.txt")));
        let mut synth = own(entry("/data/passwd", EntryKind::File, 0o644));
        synth.content = Some(PathText::from(
            "root:x:0:0:'$HOME' `x`:/:/bin/sh\nno newline",
        ));
        let mut hard = own(entry("/data/hard", EntryKind::File, 0o640));
        hard.hardlink_to = Some(PathText::from(odd));
        m.entries = vec![
            own(entry("/data", EntryKind::Dir, 0o750)),
            file,
            link,
            synth,
            hard,
            own(entry("/data/sticky", EntryKind::Dir, 0o1777)),
        ];
        m.mounts = vec![Mount {
            fstype: "proc".into(),
            path: PathText::from("/proc"),
            options: vec!["ro".into(), "nosuid".into()],
            source: None,
            reason: Reason::new(jailtrace_manifest::Cause::Runtime, 1),
        }];
        m.mounts
            .push(crate::tests::bind(b"/srv/it's data", "/data/sticky", true));
        (host, m)
    }

    fn run(script: &[u8], dir: &Path, root: &Path, env: &[(&str, &str)]) -> std::process::Output {
        let file = dir.join("build.sh");
        fs::write(&file, script).unwrap();
        Command::new("/bin/sh")
            .arg(&file)
            .arg(root)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// The real consumer: /bin/sh builds the tree the manifest describes.
    #[test]
    fn the_script_builds_the_tree() {
        let (host, m) = fixture();
        let items = items(&m).unwrap();
        let (script, report) = script(&m, &items, &Host::at(host.path()), false).unwrap();
        assert_eq!((report.files, report.bytes), (2, 8 + 43));
        let out_dir = tempfile::tempdir().unwrap();
        let root = out_dir.path().join("new root");
        let out = run(&script, out_dir.path(), &root, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("built "), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "  mount -t proc -o ro,nosuid proc {}/proc",
                root.display()
            )),
            "{stderr}"
        );
        let sticky = format!("{}/data/sticky", root.display());
        assert!(
            stderr.contains(&format!(
                "  mount --bind /srv/it's data {sticky}\n  mount -o remount,bind,ro {sticky}\n"
            )),
            "{stderr}"
        );

        let file = root
            .join("data")
            .join(std::ffi::OsStr::from_bytes(b"it's \xff.txt"));
        assert_eq!(fs::read(&file).unwrap(), b"payload\n");
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(
            fs::read_link(root.join("data/link"))
                .unwrap()
                .as_os_str()
                .as_bytes(),
            b"it's \xff.txt"
        );
        assert_eq!(
            fs::read(root.join("data/passwd")).unwrap(),
            b"root:x:0:0:'$HOME' `x`:/:/bin/sh\nno newline"
        );
        assert_eq!(
            fs::metadata(root.join("data/hard")).unwrap().ino(),
            fs::metadata(&file).unwrap().ino()
        );
        let mode = |p: &str| fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("data"), 0o750);
        assert_eq!(mode("data/sticky"), 0o1777);

        // A second run refuses the now non-empty root and changes nothing.
        let again = run(&script, out_dir.path(), &root, &[]);
        assert_eq!(again.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&again.stderr).contains("is not an empty directory"));
    }

    #[test]
    fn a_changed_host_file_warns_or_stops_the_script() {
        let (host, mut m) = fixture();
        m.entries[1].sha256 = Some(sha256_hex(b"what the manifest saw\n"));
        let items = items(&m).unwrap();
        let host = Host::at(host.path());
        let out_dir = tempfile::tempdir().unwrap();

        let (lenient, _) = script(&m, &items, &host, false).unwrap();
        let root = out_dir.path().join("lenient");
        let out = run(&lenient, out_dir.path(), &root, &[]);
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("warning: ") && stderr.contains("differs from the manifest (sha256 "),
            "{stderr}"
        );

        // JAILTRACE_STRICT=1, or a script exported strict: nothing is built.
        let root = out_dir.path().join("strict-env");
        let out = run(
            &lenient,
            out_dir.path(),
            &root,
            &[("JAILTRACE_STRICT", "1")],
        );
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(!root.exists());
        let (strict, _) = script(&m, &items, &host, true).unwrap();
        let root = out_dir.path().join("strict");
        let out = run(&strict, out_dir.path(), &root, &[]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was built"));
        assert!(!root.exists());
    }

    #[test]
    fn a_missing_host_file_stops_the_script() {
        let (host, m) = fixture();
        let items = items(&m).unwrap();
        let (script, _) = script(&m, &items, &Host::at(host.path()), false).unwrap();
        fs::remove_dir_all(host.path().join("data")).unwrap();
        let out_dir = tempfile::tempdir().unwrap();
        let out = run(&script, out_dir.path(), &out_dir.path().join("r"), &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is missing"),
            "{out:?}"
        );
    }

    #[test]
    fn devices_and_nul_content() {
        let mut m = manifest();
        let mut null = entry("/dev/null", EntryKind::Device, 0o666);
        null.rdev = Some(jailtrace_manifest::DeviceNumber { major: 1, minor: 3 });
        m.entries = vec![entry("/dev", EntryKind::Dir, 0o755), null];
        let placed = items(&m).unwrap();
        let (text, _) = script(&m, &placed, &Host::system(), false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(
                "mknod -m 0666 -- \"$root\"/dev/null c 1 3\nown 0:0 0666 \"$root\"/dev/null\n"
            ),
            "{text}"
        );

        let mut bad = entry("/etc", EntryKind::File, 0o644);
        bad.content = Some(PathText::from("a\0b"));
        m.entries = vec![bad];
        let placed = items(&m).unwrap();
        let err = script(&m, &placed, &Host::system(), false).unwrap_err();
        assert!(err.to_string().contains("contains a NUL byte"), "{err}");
    }
}
