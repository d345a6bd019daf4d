//! [`update`]: a root and its manifest brought up to date with the host,
//! as jailkit's `jk_update` does for its jails.
//!
//! Every entry the host provided is looked at again on the host. What
//! changed (a library replaced by a security update, a new symlink target,
//! another mode or owner) is recorded in the manifest with the host's new
//! values, and the root is rebuilt from the updated manifest, which places
//! exactly the changed entries again. A symlink that now points elsewhere
//! gets its new target placed and recorded. Setuid/setgid bits the policy
//! stripped stay stripped. The content of the program's data
//! ([`crate::runtime`]) is the program's: the host's copy of it changing
//! is no change of the jail.
//!
//! A changed file that is not an ELF object (a configuration, a script)
//! is marked ([`Change::configuration`]): what it says now may need files
//! the jail lacks (an include), which only a traced run (`update --run`)
//! finds.

use std::path::Path;

use jailtrace_manifest::{Cause, Entry, EntryKind, Manifest, Mode, PathText, Reason};
use jailtrace_rootfs::{self as rootfs, Follow, Host, Kind, Meta, Root, Step};
use serde::Serialize;

use crate::check::{self, Field, Side};
use crate::runtime::Runtime;
use crate::{build, entry_for, BuildReport, Error, Options};

/// One entry that changed on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The jail path.
    pub path: PathText,
    /// What changed.
    pub fields: Vec<Field>,
    /// A file's SHA-256 before, when its content changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_sha256: Option<String>,
    /// …and now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_sha256: Option<String>,
    /// The new content is a file the program reads (not an ELF object: a
    /// configuration, a script), which may now name files the jail lacks
    /// (an include, a module): only a traced run (`update --run`) finds
    /// them.
    pub configuration: bool,
}

/// What [`update`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateReport {
    /// Entries that changed on the host, now updated in the root and manifest.
    pub changed: Vec<Change>,
    /// Entries the host no longer has: left in the root and the manifest.
    pub gone: Vec<PathText>,
    /// Entries added because a changed symlink now leads to them (the
    /// entries of the old target stay).
    pub added: Vec<PathText>,
    /// The rebuild of the root from the updated manifest.
    pub build: BuildReport,
}

impl UpdateReport {
    /// True when the manifest changed (and should be written back).
    pub fn manifest_changed(&self) -> bool {
        !self.changed.is_empty() || !self.added.is_empty()
    }

    /// The changed files the program reads ([`Change::configuration`]):
    /// the program should be traced again to find what they now need.
    pub fn configuration(&self) -> impl Iterator<Item = &PathText> {
        self.changed
            .iter()
            .filter(|c| c.configuration)
            .map(|c| &c.path)
    }
}

/// Updates `manifest` and the root at `root` from `host`. The manifest is
/// changed in memory; the caller writes it.
pub fn update(
    manifest: &mut Manifest,
    root: &Path,
    host: &Host,
    opts: &Options,
) -> Result<UpdateReport, Error> {
    let mut report = UpdateReport::default();
    let mut retargeted = Vec::new();
    let state = Runtime::of(manifest);
    for i in 0..manifest.entries.len() {
        let entry = &manifest.entries[i];
        if !check::from_host(entry) {
            continue;
        }
        let p = entry.path.as_path().to_path_buf();
        let Some(meta) = host.lstat(&p)? else {
            report.gone.push(entry.path.clone());
            continue;
        };
        if !matches!(
            meta.kind,
            Kind::File | Kind::Dir | Kind::Symlink | Kind::CharDevice
        ) {
            // A fifo, socket or block device now: nothing a jail copies.
            report.gone.push(entry.path.clone());
            continue;
        }
        let mut fields = check::differences(entry, &meta, host, Side::Host)?;
        let mut new_sha = None;
        let data = state.is_data(entry);
        if data {
            // The program's data: the host's copy is not the jail's.
            fields.retain(|f| *f != Field::Content);
        } else if entry.hollow {
            // No content recorded: size, mode and owner say it all.
        } else if meta.kind == Kind::File && entry.kind == EntryKind::File {
            let (_, sha) = check::hash(host, &p, false)?;
            if entry.sha256.as_deref() != Some(sha.as_str()) && !fields.contains(&Field::Content) {
                fields.push(Field::Content);
            }
            new_sha = Some(sha);
        } else if meta.kind == Kind::File {
            new_sha = Some(check::hash(host, &p, false)?.1);
        }
        if fields.is_empty() {
            continue;
        }
        let entry = &mut manifest.entries[i];
        let old_sha = entry.sha256.clone();
        let old_size = entry.size;
        refresh(entry, &meta, host, new_sha.clone())?;
        if data && entry.kind == EntryKind::File {
            (entry.size, entry.sha256) = (old_size, old_sha.clone());
        }
        if entry.kind == EntryKind::Symlink
            && (fields.contains(&Field::Target) || fields.contains(&Field::Kind))
        {
            retargeted.push(p.clone());
        }
        let content = fields.contains(&Field::Content) || fields.contains(&Field::Kind);
        let configuration = content && entry.kind == EntryKind::File && !check::is_elf(host, &p)?;
        report.changed.push(Change {
            path: entry.path.clone(),
            fields,
            old_sha256: old_sha.filter(|_| content),
            new_sha256: new_sha.filter(|_| content),
            configuration,
        });
    }
    // A hard link whose file changed on its own is a file of its own now.
    let shas: std::collections::HashMap<PathText, Option<String>> = manifest
        .entries
        .iter()
        .map(|e| (e.path.clone(), e.sha256.clone()))
        .collect();
    for entry in &mut manifest.entries {
        if let Some(to) = &entry.hardlink_to {
            if shas.get(to).is_none_or(|sha| *sha != entry.sha256) {
                entry.hardlink_to = None;
            }
        }
    }

    let opts = Options {
        strict: false,
        ..opts.clone()
    };
    report.build = build(manifest, root, host, &opts)?;

    // The paths the program reached through a retargeted link (the link
    // itself, and every requested path that goes through it) are placed
    // again: they now lead to other files.
    let mut wanted: Vec<(std::path::PathBuf, Cause)> = Vec::new();
    for link in &retargeted {
        for e in &manifest.entries {
            let through = match &e.reason.requested {
                Some(req) if req.as_path().starts_with(link) => Some(req.as_path()),
                _ if e.path.as_path() == link => Some(link.as_path()),
                _ => None,
            };
            if let Some(p) = through {
                if !wanted.iter().any(|(w, _)| w == p) {
                    wanted.push((p.to_path_buf(), e.reason.cause));
                }
            }
        }
    }
    let mut r = Root::open(root)?;
    for (link, cause) in wanted {
        let plan = rootfs::plan(&r, host, &link, Follow::Yes)?;
        for step in &plan.steps {
            let applied = r.apply(host, step)?;
            let step_cause = match step {
                _ if step.path() == plan.resolved => cause,
                Step::Symlink { .. } => Cause::SymlinkChain,
                _ => Cause::Parent,
            };
            let mut reason = Reason::new(step_cause, 0);
            reason.requested = Some(link.as_path().into());
            let entry = entry_for(step, &applied, false, reason);
            report.added.push(entry.path.clone());
            manifest.entries.push(entry);
        }
    }
    Ok(report)
}

/// Gives `entry` the host's current kind, mode, owner and content fields.
fn refresh(entry: &mut Entry, meta: &Meta, host: &Host, sha: Option<String>) -> Result<(), Error> {
    let p = entry.path.as_path().to_path_buf();
    entry.kind = match meta.kind {
        Kind::Dir => EntryKind::Dir,
        Kind::Symlink => EntryKind::Symlink,
        Kind::CharDevice => EntryKind::Device,
        _ => EntryKind::File,
    };
    let mode = Mode::from_st_mode(meta.mode);
    // Bits the policy stripped stay stripped; bits the jail kept
    // (`--keep-setuid`) stay kept.
    let keep_setid = entry.mode.has_setid() && !entry.setuid_stripped;
    entry.setuid_stripped = mode.has_setid() && !keep_setid;
    entry.mode = if entry.setuid_stripped {
        mode.without_setid()
    } else {
        mode
    };
    entry.uid = meta.uid;
    entry.gid = meta.gid;
    entry.size = (entry.kind == EntryKind::File).then_some(meta.size);
    entry.sha256 = sha.filter(|_| entry.kind == EntryKind::File);
    entry.target = match entry.kind {
        EntryKind::Symlink => Some(host.readlink(&p)?.into()),
        _ => None,
    };
    entry.rdev = (entry.kind == EntryKind::Device).then(|| crate::entry::device_number(meta.rdev));
    if entry.kind != EntryKind::File {
        entry.hardlink_to = None;
    }
    Ok(())
}
