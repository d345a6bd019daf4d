//! The `tar` format: an archive of the jail root with the manifest's owners
//! and modes, as GNU tar, Docker's `ADD` and OCI layer readers unpack it.
//! The `dockerfile` and `oci` formats use the same archive.
//!
//! Guarantees:
//! - GNU-format headers, written explicitly from the manifest: mode
//!   (setuid bits as the manifest has them), numeric uid and gid (no user
//!   or group names, so an unpacker never maps them through its own
//!   /etc/passwd), mtime of the host file for copied files and 0 for
//!   everything else (so the archive of an unchanged host is reproducible).
//! - Paths are relative (`usr/bin/date`, directories `usr/bin/`), in
//!   manifest order, parents first. Names and symlink targets longer than
//!   the 100 bytes a header holds use GNU long-name records (`L`, `K`).
//! - Symlink targets are stored byte for byte as the manifest has them
//!   (relative, absolute, with `..`); hard links name the earlier member;
//!   devices are character devices with their major and minor numbers.
//! - Copied files are read through [`crate::source`], hashed as they are
//!   archived; synthesized files hold the manifest's content.

use std::io::{self, Read, Write};
use std::path::Path;

use ::tar::{Builder, EntryType, Header};

use crate::plan::{Item, What};
use crate::source::Source;
use crate::Error;

/// Bytes a header's name and link-name fields hold.
const NAME_FIELD: usize = 100;

/// Writes the archive of `items` to `out` (named `output` in errors) and
/// returns `out`.
pub(crate) fn write<W: Write>(
    items: &[Item<'_>],
    source: &mut Source<'_>,
    out: W,
    output: &Path,
) -> Result<W, Error> {
    let mut builder = Builder::new(out);
    for item in items {
        append(&mut builder, item, source, output)?;
    }
    builder.into_inner().map_err(Error::write(output))
}

/// Appends one item.
fn append<W: Write>(
    builder: &mut Builder<W>,
    item: &Item<'_>,
    source: &mut Source<'_>,
    output: &Path,
) -> Result<(), Error> {
    let mut header = Header::new_gnu();
    header.set_mode(item.mode());
    header.set_uid(u64::from(item.entry.uid));
    header.set_gid(u64::from(item.entry.gid));
    header.set_mtime(0);
    header.set_size(0);
    let name = item.relative();
    let written = match &item.what {
        What::Dir => {
            header.set_entry_type(EntryType::Directory);
            builder.append_data(&mut header, name.join(""), io::empty())
        }
        What::Symlink(target) => {
            header.set_entry_type(EntryType::Symlink);
            link_name(builder, &mut header, target)
                .and_then(|()| builder.append_data(&mut header, name, io::empty()))
        }
        What::Hardlink(to) => {
            header.set_entry_type(EntryType::Link);
            // Invariant (plan): `to` is absolute, so it has a `/` prefix.
            let to = to.strip_prefix("/").unwrap_or(to);
            builder.append_link(&mut header, name, to)
        }
        What::Device { major, minor } => {
            header.set_entry_type(EntryType::Char);
            header
                .set_device_major(*major)
                .and_then(|()| header.set_device_minor(*minor))
                .and_then(|()| builder.append_data(&mut header, name, io::empty()))
        }
        What::Synthesized(content) => {
            header.set_entry_type(EntryType::Regular);
            header.set_size(content.len() as u64);
            source.count(content);
            builder.append_data(&mut header, name, *content)
        }
        What::Hollow { size } => {
            header.set_entry_type(EntryType::Regular);
            header.set_size(*size);
            // The host's time: programs compare it (Python's .pyc check).
            if let Ok(meta) = std::fs::symlink_metadata(source.host_path(&item.path)) {
                header.set_mtime(
                    u64::try_from(std::os::unix::fs::MetadataExt::mtime(&meta)).unwrap_or(0),
                );
            }
            builder.append_data(&mut header, name, io::repeat(0).take(*size))
        }
        What::Copied { .. } => {
            let mut opened = source.open(item)?;
            header.set_entry_type(EntryType::Regular);
            header.set_size(opened.size);
            header.set_mtime(opened.mtime);
            builder
                .append_data(&mut header, name, &mut opened)
                .map_err(|e| opened.io_error(e, output))?;
            return source.finish(item, opened);
        }
    };
    written.map_err(Error::write(output))
}

/// Stores `target` as the header's link name, byte for byte: directly when
/// it fits, else after a GNU `K` record holding all of it.
fn link_name<W: Write>(
    builder: &mut Builder<W>,
    header: &mut Header,
    target: &[u8],
) -> io::Result<()> {
    if target.len() > NAME_FIELD {
        let mut long = Header::new_gnu();
        // The name GNU tar itself gives these records; readers go by the type.
        long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long.set_mode(0o644);
        long.set_uid(0);
        long.set_gid(0);
        long.set_mtime(0);
        long.set_size(target.len() as u64 + 1);
        long.set_entry_type(EntryType::GNULongLink);
        long.set_cksum();
        builder.append(&long, target.chain(&[0u8][..]))?;
    }
    header.set_link_name_literal(&target[..target.len().min(NAME_FIELD)])
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::process::Command;

    use super::*;
    use crate::plan::items;
    use crate::source::sha256_hex;
    use crate::tests::{entry, manifest};
    use jailtrace_manifest::{DeviceNumber, EntryKind, PathText};
    use jailtrace_rootfs::Host;

    /// A host tree and a manifest with every kind, long names and targets.
    fn fixture() -> (tempfile::TempDir, jailtrace_manifest::Manifest, String) {
        let host = tempfile::tempdir().unwrap();
        let long_dir = format!("/d/{}", "n".repeat(120));
        fs::create_dir_all(host.path().join(&long_dir[1..])).unwrap();
        fs::write(host.path().join(&long_dir[1..]).join("file"), b"content\n").unwrap();
        let mut m = manifest();
        let mut file = entry(format!("{long_dir}/file").as_str(), EntryKind::File, 0o4755);
        file.sha256 = Some(sha256_hex(b"content\n"));
        file.uid = 1234;
        file.gid = 5678;
        let long_target = format!("../{}", "t".repeat(150));
        let mut link = entry("/d/link", EntryKind::Symlink, 0o777);
        link.target = Some(PathText::from(long_target.as_str()));
        let mut rel = entry("/d/rel", EntryKind::Symlink, 0o777);
        rel.target = Some(PathText::from("./x//y/"));
        let mut hard = entry("/d/hard", EntryKind::File, 0o4755);
        hard.hardlink_to = Some(PathText::from(format!("{long_dir}/file")));
        let mut null = entry("/d/null", EntryKind::Device, 0o666);
        null.rdev = Some(DeviceNumber { major: 1, minor: 3 });
        let mut passwd = entry("/d/passwd", EntryKind::File, 0o644);
        passwd.content = Some(PathText::from("root:x:0:0::/:/bin/sh\n"));
        m.entries = vec![
            entry("/d", EntryKind::Dir, 0o1777),
            entry(long_dir.as_str(), EntryKind::Dir, 0o700),
            file,
            link,
            rel,
            hard,
            null,
            passwd,
        ];
        (host, m, long_target)
    }

    fn archive(host: &Path, m: &jailtrace_manifest::Manifest) -> (Vec<u8>, crate::Report) {
        let items = items(m).unwrap();
        let host = Host::at(host);
        let mut source = Source::new(&host);
        let bytes = write(&items, &mut source, Vec::new(), Path::new("-")).unwrap();
        (bytes, source.report)
    }

    /// The real consumer: GNU tar lists every member as the manifest says.
    #[test]
    fn gnu_tar_lists_owners_modes_links_and_devices() {
        let (host, m, long_target) = fixture();
        let (bytes, report) = archive(host.path(), &m);
        assert!(report.differs.is_empty(), "{report:?}");
        assert_eq!((report.files, report.bytes), (2, 8 + 22));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.tar");
        fs::write(&file, &bytes).unwrap();
        let out = Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(&file)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let listing = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = listing.lines().collect();
        let long = "n".repeat(120);
        let expect = [
            "drwxrwxrwt 0/0 0 1970-01-01 00:00 d/".to_string(),
            format!("drwx------ 0/0 0 1970-01-01 00:00 d/{long}/"),
            "-rwsr-xr-x 1234/5678 8 ".to_string(),
            format!("lrwxrwxrwx 0/0 0 1970-01-01 00:00 d/link -> {long_target}"),
            "lrwxrwxrwx 0/0 0 1970-01-01 00:00 d/rel -> ./x//y/".to_string(),
            format!("hrwsr-xr-x 0/0 0 1970-01-01 00:00 d/hard link to d/{long}/file"),
            "crw-rw-rw- 0/0 1,3 1970-01-01 00:00 d/null".to_string(),
            "-rw-r--r-- 0/0 22 1970-01-01 00:00 d/passwd".to_string(),
        ];
        assert_eq!(lines.len(), expect.len(), "{listing}");
        for (line, want) in lines.iter().zip(&expect) {
            let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                line.starts_with(want.as_str()),
                "{line:?} should start with {want:?}"
            );
        }
        assert!(lines[2].ends_with(&format!("d/{long}/file")), "{listing}");
    }

    /// GNU tar unpacks the content byte for byte (devices left out: they
    /// need root).
    #[test]
    fn gnu_tar_unpacks_the_content() {
        let (host, mut m, _) = fixture();
        m.entries.retain(|e| e.kind != EntryKind::Device);
        let (bytes, _) = archive(host.path(), &m);
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.tar"), &bytes).unwrap();
        fs::create_dir(dir.path().join("x")).unwrap();
        let out = Command::new("tar")
            .args(["-xf", "a.tar", "-C", "x"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let long = "n".repeat(120);
        assert_eq!(
            fs::read(dir.path().join(format!("x/d/{long}/file"))).unwrap(),
            b"content\n"
        );
        assert_eq!(fs::read(dir.path().join("x/d/hard")).unwrap(), b"content\n");
        assert_eq!(
            fs::read(dir.path().join("x/d/passwd")).unwrap(),
            b"root:x:0:0::/:/bin/sh\n"
        );
    }

    #[test]
    fn a_changed_file_is_archived_and_reported() {
        let (host, mut m, _) = fixture();
        m.entries[2].sha256 = Some(sha256_hex(b"older\n"));
        let (_, report) = archive(host.path(), &m);
        assert_eq!(report.differs.len(), 1);
        assert_eq!(report.differs[0].host_sha256, sha256_hex(b"content\n"));
        assert!(report.differs[0].host.starts_with(host.path()));
    }

    #[test]
    fn the_archive_is_reproducible() {
        let (host, m, _) = fixture();
        let (a, _) = archive(host.path(), &m);
        let (b, _) = archive(host.path(), &m);
        assert_eq!(a, b);
    }
}
