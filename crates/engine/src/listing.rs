//! Directory listings without copying whole directories.
//!
//! A program that lists a directory (Python's import system, Apache's
//! `Include mods-enabled/*.load`) must see the host's entries there, but a
//! jail should not get a copy of everything. When a copying run sees the
//! first `getdents64` of a directory, each host entry the root lacks (and
//! the policy lets in: denied paths and host runtime state are not shown)
//! is created as a *placeholder*: symlinks as they are, directories empty,
//! regular files *hollow*: the host's size, mode, owner and times, no
//! content (a hole that reads as zeros), so `stat` sees the host's file.
//!
//! A call that needs a placeholder file's content (an open, an exec;
//! not `stat`, `access`, `readlink`) fills it from the host before the
//! call runs, found by its inode in the root whatever path led to it.
//! After the run, [`Session::prune`] decides what stays:
//!
//! - a file filled stays, recorded with cause `listed`;
//! - a file the program only looked at (`stat`, `access`) stays hollow,
//!   recorded with `hollow: true`: programs decide on a file's existence
//!   and metadata (Python validates a cached `.pyc` against its `.py`'s
//!   size and time) without reading it. A later run that reads it is a
//!   miss in a verifying run and fills it in a copying one;
//! - a file nothing looked at is removed;
//! - a directory stays when a path went through it or something in it
//!   stays; a symlink when a path went through it or its target is in the
//!   root; the others are removed;
//! - with `--keep-listing DIR`, every entry of DIR stays, files filled.
//!
//! So the verifying run runs in the root that ships. Listings of /proc,
//! /sys and /dev, and of directories in a bind (`--bind`), are never
//! touched.

use std::path::{Component, Path, PathBuf};

use jailtrace_manifest::{Cause, Entry, EntryKind, Mode};
use jailtrace_rootfs::{self as rootfs, Applied, Kind, Step};

use crate::placeholders::Placeholder;
use crate::policy::Verdict;
use crate::session::{entry_for, Observer, Session, Who};

/// `path` with `.` and `..` folded lexically (for placeholder lookups only).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

const NEVER_LISTED: &[&str] = &["/proc", "/sys", "/dev"];

impl Session {
    /// A copying run lists `dir`: create placeholders for the host entries
    /// the root lacks.
    pub(crate) fn list(
        &mut self,
        dir: &Path,
        who: &Who,
        observer: &mut dyn Observer,
    ) -> Result<(), rootfs::Error> {
        if self.read_only
            || NEVER_LISTED.iter().any(|n| dir.starts_with(n))
            || self.policy().is_bound(dir)
            || !self.placeholders.listed.insert(dir.to_path_buf())
        {
            return Ok(());
        }
        let Ok(read) = std::fs::read_dir(self.host.path_of(dir)) else {
            return Ok(());
        };
        let mut count = 0usize;
        for item in read.flatten() {
            let path = dir.join(item.file_name());
            if self.root.lstat(&path)?.is_some() {
                continue;
            }
            if !matches!(self.policy().verdict(&path), Verdict::Copy) {
                self.placeholders.stats.hidden += 1;
                continue;
            }
            let Some(meta) = self.host.lstat(&path)? else {
                continue;
            };
            count += 1;
            if count > self.placeholders.max {
                observer.warn(&format!(
                    "{}: listing has more than {} entries; the rest are not shown in the jail",
                    dir.display(),
                    self.placeholders.max
                ));
                break;
            }
            let mut attrs = meta.attrs();
            match meta.kind {
                // Size and times as on the host, no content: a `stat`
                // sees the host's file, a read fills it first.
                Kind::File => {
                    if !self.keep_setuid() {
                        attrs.mode &= !0o6000;
                    }
                    self.root.create_sparse(&path, &attrs, meta.size)?
                }
                Kind::Dir => self.root.mkdir(&path, &attrs)?,
                Kind::Symlink => {
                    let target = self.host.readlink(&path)?;
                    self.root.symlink(&path, &target, &attrs)?
                }
                _ => continue,
            }
            if meta.kind == Kind::File {
                if let Some(m) = self.root.lstat(&path)? {
                    self.placeholders
                        .by_inode
                        .insert((m.dev, m.ino), path.clone());
                }
            }
            self.placeholders.stats.shown += 1;
            let reason = who.reason(Cause::Listed, self.run, Some(dir));
            self.placeholders.map.insert(
                path,
                Placeholder {
                    kind: meta.kind,
                    host: meta,
                    reason,
                    touched: false,
                    seen: false,
                },
            );
        }
        Ok(())
    }

    /// Marks the placeholders `path` goes through (lexically, following
    /// placeholder symlinks) as touched. With `metadata_only` (a `stat`,
    /// `access`, `readlink` of `path`) the last component is only seen:
    /// looking at an entry's metadata does not need its content.
    pub(crate) fn touch(&mut self, path: &Path, metadata_only: bool) {
        if self.placeholders.map.is_empty() {
            return;
        }
        let mut todo = vec![normalize(path)];
        let mut hops = 0;
        while let Some(p) = todo.pop() {
            hops += 1;
            if hops > 40 {
                break;
            }
            for prefix in p.ancestors() {
                let Some(ph) = self.placeholders.map.get_mut(prefix) else {
                    continue;
                };
                if metadata_only && prefix == p && ph.kind != Kind::Symlink {
                    ph.seen = true;
                    continue;
                }
                ph.touched = true;
                if ph.kind == Kind::Symlink {
                    if let Ok(target) = self.host.readlink(prefix) {
                        let rest = p.strip_prefix(prefix).unwrap_or(Path::new(""));
                        let base = prefix.parent().unwrap_or(Path::new("/"));
                        let spliced = normalize(&base.join(target).join(rest));
                        todo.push(spliced);
                    }
                }
            }
        }
    }

    /// Fills the placeholder file at `path` from the host.
    pub(crate) fn fill(
        &mut self,
        path: &Path,
        who: &Who,
        observer: &mut dyn Observer,
    ) -> Result<(), rootfs::Error> {
        if self.read_only {
            return Ok(());
        }
        if crate::accounts::is_account_db(path) && self.synthesize_db(path, true, who, observer)? {
            self.placeholders.map.remove(path);
            self.placeholders.by_inode.retain(|_, p| p != path);
            return Ok(());
        }
        let (ph, was_hollow) = match self.placeholders.map.remove(path) {
            Some(ph) => (ph, false),
            None => match self.placeholders.hollow.remove(path) {
                Some(ph) => (ph, true),
                None => return Ok(()),
            },
        };
        if was_hollow {
            self.placeholders.stats.hollow -= 1;
        }
        self.placeholders.stats.kept += 1;
        self.placeholders.by_inode.retain(|_, p| p != path);
        let mut attrs = ph.host.attrs();
        let stripped = attrs.mode & 0o6000 != 0;
        attrs.mode &= !0o6000;
        let copied = self.root.fill_placeholder(path, &self.host, &attrs)?;
        self.counters.bytes += copied.bytes;
        let step = Step::File {
            path: path.to_path_buf(),
            attrs,
            size: ph.host.size,
            host_dev: ph.host.dev,
            host_ino: ph.host.ino,
            nlink: ph.host.nlink,
        };
        let mut reason = who.reason(Cause::Listed, self.run, None);
        reason.requested = ph.reason.requested.clone();
        let entry = entry_for(&step, &Applied::File(copied), stripped, reason);
        if was_hollow {
            self.replace_entry(entry);
        } else {
            self.record(entry, observer);
        }
        Ok(())
    }

    /// Registers the hollow entries of an earlier manifest of this root
    /// (`update --run`), so that a read of one fills it.
    pub(crate) fn seed_hollow(&mut self, entries: &[Entry]) -> Result<(), rootfs::Error> {
        for e in entries.iter().filter(|e| e.hollow) {
            let path = e.path.as_path();
            let (Some(in_root), Some(host)) = (self.root.lstat(path)?, self.host.lstat(path)?)
            else {
                continue;
            };
            self.placeholders
                .by_inode
                .insert((in_root.dev, in_root.ino), path.to_path_buf());
            let ph = Placeholder {
                kind: Kind::File,
                host,
                reason: e.reason.clone(),
                touched: false,
                seen: true,
            };
            self.placeholders.hollow.insert(path.to_path_buf(), ph);
            self.placeholders.stats.hollow += 1;
        }
        Ok(())
    }

    /// Keeps the placeholder file `path` hollow and records it so.
    fn keep_hollow(&mut self, path: &Path, ph: &Placeholder, observer: &mut dyn Observer) {
        let mut attrs = ph.host.attrs();
        let stripped = attrs.mode & 0o6000 != 0 && !self.keep_setuid();
        if stripped {
            attrs.mode &= !0o6000;
        }
        let mut entry = Entry::new(
            path.into(),
            EntryKind::File,
            Mode::from_st_mode(attrs.mode),
            attrs.uid,
            attrs.gid,
            ph.reason.clone(),
        );
        entry.size = Some(ph.host.size);
        entry.hollow = true;
        entry.setuid_stripped = stripped;
        self.record(entry, observer);
        self.placeholders
            .hollow
            .insert(path.to_path_buf(), ph.clone());
        self.placeholders.stats.hollow += 1;
    }

    /// Removes a placeholder; one the program already removed or moved
    /// away (it may rebuild its directories) is fine.
    fn remove_placeholder(&mut self, path: &Path) -> Result<(), rootfs::Error> {
        match self.root.remove(path) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                Ok(())
            }
            other => other,
        }
    }

    /// After a copying run: remove what nothing used, record what stays.
    pub(crate) fn prune(&mut self, observer: &mut dyn Observer) -> Result<usize, rootfs::Error> {
        if self.read_only {
            return Ok(0);
        }
        let mut removed = 0;
        // Deepest first, so a directory is empty once its children are gone.
        let mut all: Vec<(PathBuf, Placeholder)> = self.placeholders.map.drain().collect();
        all.sort_by(|a, b| {
            b.0.components()
                .count()
                .cmp(&a.0.components().count())
                .then(a.0.cmp(&b.0))
        });
        let mut keep = Vec::new();
        let keep_dirs = self.placeholders.keep.clone();
        let kept_listing = |p: &Path| p.parent().is_some_and(|d| keep_dirs.iter().any(|k| k == d));
        for (path, ph) in all.iter().filter(|(_, ph)| ph.kind == Kind::File) {
            // Still there unless the program removed or replaced it.
            let in_root = self.root.lstat(path)?;
            let ours = in_root
                .as_ref()
                .is_some_and(|m| self.placeholders.by_inode.get(&(m.dev, m.ino)) == Some(path));
            if ours && kept_listing(path) {
                let who = Who {
                    pid: ph.reason.pid,
                    exe: ph.reason.exe.as_ref().map(|e| e.as_path().to_path_buf()),
                    syscall: None,
                    exercise: ph.reason.exercise.clone(),
                };
                self.placeholders.map.insert(path.clone(), ph.clone());
                self.fill(path, &who, observer)?;
            } else if ours && ph.seen {
                self.keep_hollow(path, ph, observer);
            } else {
                self.remove_placeholder(path)?;
                self.placeholders.by_inode.retain(|_, p| p != path);
                removed += 1;
            }
        }
        for (path, ph) in all.iter().filter(|(_, ph)| ph.kind != Kind::File) {
            let stays = match ph.kind {
                _ if kept_listing(path) => true,
                Kind::Symlink => ph.touched || self.root.stat(path)?.is_some(),
                _ => ph.touched || self.root.remove(path).is_err(),
            };
            if stays {
                keep.push((path.clone(), ph.clone()));
            } else {
                if ph.kind == Kind::Symlink {
                    self.remove_placeholder(path)?;
                }
                removed += 1;
            }
        }
        // Record survivors shallowest first, like every other entry.
        self.placeholders.stats.kept += keep.len();
        keep.reverse();
        for (path, ph) in keep {
            let attrs = ph.host.attrs();
            let step = match ph.kind {
                Kind::Symlink => Step::Symlink {
                    path: path.clone(),
                    target: self.host.readlink(&path)?,
                    attrs,
                },
                _ => Step::Dir {
                    path: path.clone(),
                    attrs,
                },
            };
            let applied = if ph.kind == Kind::Symlink {
                Applied::Symlink
            } else {
                Applied::Dir
            };
            self.record(
                entry_for(&step, &applied, false, ph.reason.clone()),
                observer,
            );
        }
        self.placeholders.listed.clear();
        self.placeholders.stats.left_out += removed;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("/../x")), Path::new("/x"));
    }
}
