//! Comparing a manifest entry with what is on disk (in the root or on the
//! host): the fields that differ, and their values on both sides
//! ([`Values`]), so that a report can say what was recorded and what was
//! found.

use std::path::Path;

use jailtrace_manifest::{Cause, DeviceNumber, Entry, EntryKind, Mode, PathText};
use jailtrace_rootfs::{self as rootfs, Attrs, Host, Kind, Meta};
use serde::Serialize;

use crate::Error;

/// A property of an entry that can differ from the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// File, directory, symlink or device.
    Kind,
    /// Permission bits.
    Mode,
    /// Owner or group.
    Owner,
    /// A file's size or content (SHA-256).
    Content,
    /// A symlink's target.
    Target,
    /// A device's number.
    Device,
    /// A hard link no longer shares its inode with the file it links to.
    HardLink,
}

impl Field {
    /// The JSON spelling, e.g. `"content"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Kind => "kind",
            Field::Mode => "mode",
            Field::Owner => "owner",
            Field::Content => "content",
            Field::Target => "target",
            Field::Device => "device",
            Field::HardLink => "hard_link",
        }
    }
}

/// Some properties of one path, as the manifest records them or as they
/// were found on disk. A finding sets only the properties of the
/// [`Field`]s that differ ([`Values::only`]); JSON omits the others, so
/// `{"mode": "0644"}` against `{"mode": "0600"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Values {
    /// What it is: as the manifest says (`file`, `dir`, `symlink`,
    /// `device`), or as found on disk (`file`, `dir`, `symlink`,
    /// `char device`, `block device`, `fifo`, `socket`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Permission bits, `"0644"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// A file's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// A file's SHA-256, lowercase hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target, as stored in the link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<PathText>,
    /// A device's number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceNumber>,
    /// The jail path of the file this one is a hard link to; found: absent
    /// when the file has an inode of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hard_link: Option<PathText>,
}

impl Values {
    /// Everything the manifest records for `entry`.
    pub(crate) fn recorded(entry: &Entry) -> Values {
        Values {
            kind: Some(entry.kind.as_str()),
            mode: Some(entry.mode),
            uid: Some(entry.uid),
            gid: Some(entry.gid),
            size: entry.size,
            sha256: entry.sha256.clone(),
            target: entry.target.clone(),
            device: entry.rdev,
            hard_link: entry.hardlink_to.clone(),
        }
    }

    /// What is on disk at jail path `p` seen through `view`, whose metadata
    /// is `meta` (`sha256`: the content's hash when it was computed;
    /// `hard_link`: the path it shares its inode with, when it does).
    pub(crate) fn found(
        meta: &Meta,
        view: &Host,
        p: &Path,
        sha256: Option<String>,
        hard_link: Option<PathText>,
    ) -> Result<Values, Error> {
        Ok(Values {
            kind: Some(kind_name(meta.kind)),
            mode: Some(Mode::from_st_mode(meta.mode)),
            uid: Some(meta.uid),
            gid: Some(meta.gid),
            size: (meta.kind == Kind::File).then_some(meta.size),
            sha256,
            target: match meta.kind {
                Kind::Symlink => Some(view.readlink(p)?.into()),
                _ => None,
            },
            device: matches!(meta.kind, Kind::CharDevice | Kind::BlockDevice)
                .then(|| crate::entry::device_number(meta.rdev)),
            hard_link,
        })
    }

    /// Only the properties that `fields` are about.
    pub(crate) fn only(self, fields: &[Field]) -> Values {
        let has = |f| fields.contains(&f);
        Values {
            kind: self.kind.filter(|_| has(Field::Kind)),
            mode: self.mode.filter(|_| has(Field::Mode)),
            uid: self.uid.filter(|_| has(Field::Owner)),
            gid: self.gid.filter(|_| has(Field::Owner)),
            size: self.size.filter(|_| has(Field::Content)),
            sha256: self.sha256.filter(|_| has(Field::Content)),
            target: self.target.filter(|_| has(Field::Target)),
            device: self.device.filter(|_| has(Field::Device)),
            hard_link: self.hard_link.filter(|_| has(Field::HardLink)),
        }
    }
}

/// The name of a kind of file on disk, as reports spell it: `file`,
/// `dir`, `symlink`, `char device`, `block device`, `fifo`, `socket`.
pub(crate) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::CharDevice => "char device",
        Kind::BlockDevice => "block device",
        Kind::Fifo => "fifo",
        Kind::Socket => "socket",
    }
}

/// Which side an entry is compared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The jail root: the manifest's mode exactly.
    Root,
    /// The host: a mode that lost its setuid/setgid bits by policy
    /// (`setuid_stripped`) matches the host's mode with them.
    Host,
}

/// The manifest's kind as a rootfs kind.
pub(crate) fn kind_of(entry: &Entry) -> Kind {
    match entry.kind {
        EntryKind::File => Kind::File,
        EntryKind::Dir => Kind::Dir,
        EntryKind::Symlink => Kind::Symlink,
        EntryKind::Device => Kind::CharDevice,
    }
}

/// The attributes the entry asks for (no mtime: the manifest keeps none).
pub(crate) fn attrs_of(entry: &Entry) -> Attrs {
    Attrs {
        mode: entry.mode.bits(),
        uid: entry.uid,
        gid: entry.gid,
        mtime: None,
    }
}

/// Whether the host is the source of this entry (not the program, not
/// jailtrace, not the command line's `--mkdir` or `--bind`).
pub(crate) fn from_host(entry: &Entry) -> bool {
    !matches!(
        entry.reason.cause,
        Cause::Created | Cause::Synthesized | Cause::Requested
    )
}

/// The device number the entry records, as `dev_t`.
pub(crate) fn rdev_of(entry: &Entry) -> Result<u64, Error> {
    let DeviceNumber { major, minor } = entry.rdev.ok_or_else(|| incomplete(entry, "rdev"))?;
    Ok(nix::sys::stat::makedev(major.into(), minor.into()))
}

/// The symlink target the entry records.
pub(crate) fn target_of(entry: &Entry) -> Result<&Path, Error> {
    entry
        .target
        .as_ref()
        .map(|t| t.as_path())
        .ok_or_else(|| incomplete(entry, "target"))
}

pub(crate) fn incomplete(entry: &Entry, field: &'static str) -> Error {
    Error::Incomplete {
        path: entry.path.as_path().to_path_buf(),
        kind: entry.kind.as_str(),
        field,
    }
}

/// The fields of `entry` that `meta` (and, for symlinks, the link read at
/// `path` through `view`) contradict, without looking at file content.
/// Program-created entries are compared by kind alone: their mode and
/// owner are the program's business.
pub(crate) fn differences(
    entry: &Entry,
    meta: &Meta,
    view: &Host,
    side: Side,
) -> Result<Vec<Field>, Error> {
    let mut fields = Vec::new();
    if meta.kind != kind_of(entry) {
        fields.push(Field::Kind);
        return Ok(fields);
    }
    if entry.reason.cause == Cause::Created {
        return Ok(fields);
    }
    let want = entry.mode.bits();
    let mode_ok = match side {
        Side::Host if entry.setuid_stripped => meta.mode & !0o6000 == want,
        _ => meta.mode == want,
    };
    // A symlink's mode is always 0777 and means nothing.
    if !mode_ok && entry.kind != EntryKind::Symlink {
        fields.push(Field::Mode);
    }
    if (meta.uid, meta.gid) != (entry.uid, entry.gid) {
        fields.push(Field::Owner);
    }
    match entry.kind {
        EntryKind::Symlink => {
            if view.readlink(entry.path.as_path())? != target_of(entry)? {
                fields.push(Field::Target);
            }
        }
        EntryKind::Device => {
            if meta.rdev != rdev_of(entry)? {
                fields.push(Field::Device);
            }
        }
        EntryKind::File => {
            if entry.size.is_some_and(|size| size != meta.size) {
                fields.push(Field::Content);
            }
        }
        EntryKind::Dir => {}
    }
    Ok(fields)
}

/// Whether the regular file at jail path `p` on `host` is an ELF object
/// (it starts with the ELF magic), rather than a file the program reads.
pub(crate) fn is_elf(host: &Host, p: &Path) -> Result<bool, Error> {
    use std::io::Read;
    let (file, _) = host.open_file(p)?;
    let mut magic = Vec::with_capacity(jailtrace_elf::ELF_MAGIC.len());
    file.take(jailtrace_elf::ELF_MAGIC.len() as u64)
        .read_to_end(&mut magic)
        .map_err(|source| Error::ReadHost {
            path: host.path_of(p),
            source,
        })?;
    Ok(magic == jailtrace_elf::ELF_MAGIC)
}

/// Opens the regular file at jail path `p` through `view` and hashes it.
/// `in_root` picks the error's wording.
pub(crate) fn hash(view: &Host, p: &Path, in_root: bool) -> Result<(Meta, String), Error> {
    let (file, meta) = view.open_file(p)?;
    let (_, sha) = rootfs::sha256_of(&file).map_err(|source| {
        if in_root {
            Error::ReadRoot {
                path: p.to_path_buf(),
                source,
            }
        } else {
            Error::ReadHost {
                path: view.path_of(p),
                source,
            }
        }
    })?;
    Ok((meta, sha))
}
