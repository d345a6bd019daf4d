//! [`build`]: a root made from a manifest and the host.
//!
//! Three passes, in the manifest's order (parents before children):
//! 1. directories, symlinks, devices and synthesized files, one by one;
//!    every host file to place is hashed meanwhile, in parallel, so that
//!    `--strict` can refuse before anything is copied;
//! 2. regular files, in parallel (each worker with its own handle on the
//!    root): copied, or with [`Options::link`] hard-linked or reflinked;
//! 3. hard links between files of the jail.
//!
//! An entry already right is left alone; a wrong one (other kind, content,
//! target, device) is removed and placed again; a wrong mode or owner on a
//! directory is corrected in place. The program's data (a host file in a
//! directory the program writes in, [`crate::runtime`]) is placed only
//! where the root has no file of that name, always as a copy: a file there
//! already holds what the program wrote, and keeps it (its mode and owner
//! are corrected in place). The mount point of a bind is made when
//! missing and otherwise left alone (see [`crate::runtime`]).

use std::path::Path;

use jailtrace_manifest::{Cause, Entry, EntryKind, Manifest, PathText};
use jailtrace_rootfs::{Attrs, Host, Kind, Root, Shared};
use serde::Serialize;

use crate::check::{self, attrs_of, Side};
use crate::runtime::Runtime;
use crate::{parallel, Error};

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Hard-link (same file system) or reflink host files instead of copying.
    pub link: bool,
    /// Refuse to build when a host file differs from the manifest.
    pub strict: bool,
    /// Worker threads for files; 0 = one per CPU.
    pub jobs: usize,
}

/// A host file whose content is not the one the manifest recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The jail path (the same path on the host).
    pub path: PathText,
    /// The SHA-256 the manifest records.
    pub manifest: String,
    /// The host file's SHA-256 now.
    pub host: String,
}

/// What a build did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildReport {
    /// Entries in the manifest.
    pub entries: usize,
    /// Entries that were already right.
    pub unchanged: usize,
    /// Directories, symlinks and devices made.
    pub made: usize,
    /// Files copied.
    pub copied: usize,
    /// Files hard-linked to the host's inode (`--link`).
    pub hardlinked: usize,
    /// Files reflinked from the host (`--link` where hard links are not possible).
    pub reflinked: usize,
    /// Hard links made between files of the jail.
    pub linked_in_jail: usize,
    /// Synthesized files written.
    pub written: usize,
    /// Bytes copied.
    pub bytes: u64,
    /// Entries that were wrong and were placed again (or, for a directory,
    /// given the right mode and owner).
    pub replaced: Vec<PathText>,
    /// Files the program created at run time, not built.
    pub skipped_created: usize,
    /// Host files whose SHA-256 differs from the manifest.
    pub mismatches: Vec<Mismatch>,
}

/// One host file to place, with its hash as read now.
struct FileJob<'m> {
    entry: &'m Entry,
    host_sha: String,
    /// The program's data: an existing file keeps its content.
    data: bool,
}

/// What placing one file did.
enum Placed {
    Unchanged,
    Copied { bytes: u64, replaced: bool },
    Shared { how: Shared, replaced: bool },
}

/// Builds the root at `root` (an existing directory) from `manifest` and
/// `host`. See the module documentation.
pub fn build(
    manifest: &Manifest,
    root: &Path,
    host: &Host,
    opts: &Options,
) -> Result<BuildReport, Error> {
    let jobs = if opts.jobs == 0 {
        parallel::default_jobs()
    } else {
        opts.jobs
    };
    let mut report = BuildReport {
        entries: manifest.entries.len(),
        ..Default::default()
    };
    let files: Vec<&Entry> = manifest
        .entries
        .iter()
        .filter(|e| {
            e.kind == EntryKind::File
                && check::from_host(e)
                && e.content.is_none()
                && e.hardlink_to.is_none()
                && !e.hollow
        })
        .collect();
    let hashed = parallel::map(
        jobs,
        &files,
        || Ok::<_, Error>(()),
        |(), entry| check::hash(host, entry.path.as_path(), false).map(|(_, sha)| sha),
    );
    let state = Runtime::of(manifest);
    let mut file_jobs = Vec::with_capacity(files.len());
    for (entry, sha) in files.iter().zip(hashed) {
        let host_sha = sha?;
        let data = state.is_data(entry);
        // The host's copy of the program's data is the host's business.
        if !data && entry.sha256.as_deref().is_some_and(|want| want != host_sha) {
            report.mismatches.push(Mismatch {
                path: entry.path.clone(),
                manifest: entry.sha256.clone().unwrap_or_default(),
                host: host_sha.clone(),
            });
        }
        file_jobs.push(FileJob {
            entry,
            host_sha,
            data,
        });
    }
    if opts.strict && !report.mismatches.is_empty() {
        return Err(Error::Strict(report.mismatches));
    }

    let mut r = Root::open(root)?;
    let view = Host::at(r.path());
    for entry in &manifest.entries {
        match entry.kind {
            // What the program made is its output, not the jail's: it
            // makes it again when it runs.
            _ if entry.reason.cause == Cause::Created => {
                report.skipped_created += 1;
            }
            EntryKind::File if entry.hollow => {
                if write_hollow(&mut r, &view, host, entry)? {
                    report.made += 1;
                } else {
                    report.unchanged += 1;
                }
            }
            EntryKind::File if entry.content.is_some() => {
                let changed = write_synthesized(&mut r, &view, entry)?;
                match changed {
                    None => report.unchanged += 1,
                    Some(replaced) => {
                        report.written += 1;
                        if replaced {
                            report.replaced.push(entry.path.clone());
                        }
                    }
                }
            }
            // Written by a jailtrace that did not record synthesized content.
            EntryKind::File if entry.reason.cause == Cause::Synthesized => {
                return Err(check::incomplete(entry, "content (re-run `jailtrace run`)"));
            }
            EntryKind::File => {}
            EntryKind::Dir if state.is_bind_point(entry.path.as_path()) => {
                match place_bind_point(&mut r, &view, entry)? {
                    true => report.made += 1,
                    false => report.unchanged += 1,
                }
            }
            _ => match place_node(&mut r, &view, entry)? {
                NodeResult::Unchanged => report.unchanged += 1,
                NodeResult::Made => report.made += 1,
                NodeResult::Replaced => {
                    report.made += 1;
                    report.replaced.push(entry.path.clone());
                }
                NodeResult::Fixed => report.replaced.push(entry.path.clone()),
            },
        }
    }

    let root_path = r.path().to_path_buf();
    let placed = parallel::map(
        jobs,
        &file_jobs,
        || Root::open(&root_path).map_err(Error::from),
        |root, job| place_file(root, host, job, opts.link),
    );
    for (job, result) in file_jobs.iter().zip(placed) {
        match result? {
            Placed::Unchanged => report.unchanged += 1,
            Placed::Copied { bytes, replaced } => {
                report.copied += 1;
                report.bytes += bytes;
                if replaced {
                    report.replaced.push(job.entry.path.clone());
                }
            }
            Placed::Shared { how, replaced } => {
                match how {
                    Shared::HardLink => report.hardlinked += 1,
                    Shared::Reflink => report.reflinked += 1,
                }
                if replaced {
                    report.replaced.push(job.entry.path.clone());
                }
            }
        }
    }

    for entry in manifest.entries.iter().filter(|e| e.hardlink_to.is_some()) {
        let p = entry.path.as_path();
        let Some(to) = entry.hardlink_to.as_ref().map(|t| t.as_path()) else {
            continue;
        };
        let have = view.lstat(p)?;
        let target = view.lstat(to)?;
        match (have, target) {
            (Some(h), Some(t)) if (h.dev, h.ino) == (t.dev, t.ino) => report.unchanged += 1,
            (have, _) => {
                if have.is_some() {
                    r.remove(p)?;
                    report.replaced.push(entry.path.clone());
                }
                r.hardlink(p, to)?;
                report.linked_in_jail += 1;
            }
        }
    }
    Ok(report)
}

enum NodeResult {
    Unchanged,
    Made,
    Replaced,
    /// A directory's mode or owner corrected.
    Fixed,
}

/// Places a directory, symlink or device entry.
fn place_node(r: &mut Root, view: &Host, entry: &Entry) -> Result<NodeResult, Error> {
    let p = entry.path.as_path();
    let attrs = attrs_of(entry);
    let mut replaced = false;
    if let Some(meta) = view.lstat(p)? {
        let diffs = check::differences(entry, &meta, view, Side::Root)?;
        if diffs.is_empty() {
            return Ok(NodeResult::Unchanged);
        }
        if entry.kind == EntryKind::Dir && meta.kind == Kind::Dir {
            r.chmod(p, attrs.mode)?;
            r.chown(p, attrs.uid, attrs.gid)?;
            return Ok(NodeResult::Fixed);
        }
        r.remove(p)?;
        replaced = true;
    }
    match entry.kind {
        EntryKind::Dir => r.mkdir(p, &attrs).map(drop)?,
        EntryKind::Symlink => r.symlink(p, check::target_of(entry)?, &attrs)?,
        EntryKind::Device => r.mknod(p, &attrs, check::rdev_of(entry)?)?,
        EntryKind::File => unreachable!("files are placed by place_file"),
    }
    Ok(if replaced {
        NodeResult::Replaced
    } else {
        NodeResult::Made
    })
}

/// Makes the mount point of a bind unless the root has a directory there;
/// one that exists is left alone (a bind mounted there shows the host
/// directory, which a build must never change). Returns whether it made it.
fn place_bind_point(r: &mut Root, view: &Host, entry: &Entry) -> Result<bool, Error> {
    match view.lstat(entry.path.as_path())? {
        Some(meta) if meta.kind == Kind::Dir => Ok(false),
        _ => place_node(r, view, entry).map(|_| true),
    }
}

/// Writes a synthesized file unless the root has it already.
/// `None`: unchanged; `Some(replaced)`: written.
fn write_synthesized(r: &mut Root, view: &Host, entry: &Entry) -> Result<Option<bool>, Error> {
    let p = entry.path.as_path();
    let content = entry.content.as_ref().map_or(&[][..], |c| c.as_bytes());
    let existing = view.lstat(p)?;
    if let Some(meta) = existing {
        if meta.kind == Kind::File && check::differences(entry, &meta, view, Side::Root)?.is_empty()
        {
            let (_, sha) = check::hash(view, p, true)?;
            if entry.sha256.as_deref() == Some(sha.as_str()) {
                return Ok(None);
            }
        }
        if meta.kind != Kind::File {
            r.remove(p)?;
        }
    }
    r.write_file(p, content, &attrs_of(entry))?;
    Ok(Some(existing.is_some()))
}

/// Places a hollow file: the manifest's size, mode and owner, the host
/// file's modification time (programs compare it: Python's `.pyc`
/// check), no content. Returns false when the root has it already.
fn write_hollow(r: &mut Root, view: &Host, host: &Host, entry: &Entry) -> Result<bool, Error> {
    let p = entry.path.as_path();
    let existing = view.lstat(p)?;
    if let Some(meta) = &existing {
        if check::differences(entry, meta, view, Side::Root)?.is_empty() {
            return Ok(false);
        }
        r.remove(p)?;
    }
    let mut attrs = attrs_of(entry);
    attrs.mtime = host.lstat(p)?.map(|m| m.mtime);
    r.create_sparse(p, &attrs, entry.size.unwrap_or(0))?;
    Ok(true)
}

/// Places one host file (in a worker thread).
fn place_file(r: &mut Root, host: &Host, job: &FileJob<'_>, link: bool) -> Result<Placed, Error> {
    let entry = job.entry;
    let p = entry.path.as_path();
    let view = Host::at(r.path());
    let (src, hmeta) = host.open_file(p)?;
    let attrs = Attrs {
        mtime: Some(hmeta.mtime),
        ..attrs_of(entry)
    };
    let existing = view.lstat(p)?;
    if let Some(meta) = existing.filter(|m| job.data && m.kind == Kind::File) {
        if (meta.mode, meta.uid, meta.gid) != (attrs.mode, attrs.uid, attrs.gid) {
            // chown(2) clears setuid and setgid bits: chmod after it.
            r.chown(p, attrs.uid, attrs.gid)?;
            r.chmod(p, attrs.mode)?;
        }
        return Ok(Placed::Unchanged);
    }
    if let Some(meta) = existing {
        let right_attrs = meta.kind == Kind::File
            && (meta.mode, meta.uid, meta.gid) == (attrs.mode, attrs.uid, attrs.gid)
            && meta.size == hmeta.size;
        if right_attrs
            && ((meta.dev, meta.ino) == (hmeta.dev, hmeta.ino)
                || check::hash(&view, p, true)?.1 == job.host_sha)
        {
            return Ok(Placed::Unchanged);
        }
        r.remove(p)?;
    }
    let replaced = existing.is_some();
    // The program writes its data: never into the host's inode.
    if link && !job.data {
        if let Some(how) = r.share_file(p, &src, &hmeta, &attrs)? {
            return Ok(Placed::Shared { how, replaced });
        }
    }
    let copied = r.copy_file(p, host, &attrs)?;
    Ok(Placed::Copied {
        bytes: copied.bytes,
        replaced,
    })
}
