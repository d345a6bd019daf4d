//! Directory listings without copying whole directories.
//!
//! A program that lists a directory (Python's import system, Apache's
//! `Include mods-enabled/*.load`) must see the host's entries there, but a
//! jail should not get a copy of everything. When a copying run sees the
//! first `getdents64` of a directory, each host entry the root lacks is
//! created as a *placeholder*: symlinks as they are, directories empty,
//! regular files empty with the host's mode and owner. The first syscall
//! that touches a placeholder file by path fills it from the host before the
//! call runs (found by its inode in the root, whatever path led to it).
//! After the run, [`Session::prune`] removes the placeholder files nothing
//! touched, then the placeholder symlinks left dangling and the placeholder
//! directories left empty; what stays is recorded with cause `listed`.
//! Listings of /proc, /sys and /dev are never touched.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use jailtrace_manifest::{Cause, Reason};
use jailtrace_rootfs::{self as rootfs, Applied, Kind, Meta, Step};

use crate::policy::Verdict;
use crate::session::{entry_for, Observer, Session, Who};

#[derive(Debug, Clone)]
struct Placeholder {
    kind: Kind,
    host: Meta,
    /// Who listed the directory.
    reason: Reason,
    touched: bool,
}

/// The placeholders of the current copying run.
#[derive(Debug, Default)]
pub(crate) struct Placeholders {
    map: HashMap<PathBuf, Placeholder>,
    /// Root (dev, ino) of each unfilled placeholder file.
    by_inode: HashMap<(u64, u64), PathBuf>,
    listed: HashSet<PathBuf>,
    max: usize,
}

impl Placeholders {
    pub(crate) fn new(max: usize) -> Placeholders {
        Placeholders {
            max,
            ..Default::default()
        }
    }

    /// The unfilled placeholder file at root inode `(dev, ino)`, if any.
    pub(crate) fn file_at(&self, dev: u64, ino: u64) -> Option<PathBuf> {
        self.by_inode.get(&(dev, ino)).cloned()
    }
}

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
            if self.root.lstat(&path)?.is_some()
                || !matches!(self.policy().verdict(&path), Verdict::Copy)
            {
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
            let attrs = meta.attrs();
            match meta.kind {
                Kind::File => self.root.create_empty(&path, &attrs)?,
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
            let reason = who.reason(Cause::Listed, self.run, Some(dir));
            self.placeholders.map.insert(
                path,
                Placeholder {
                    kind: meta.kind,
                    host: meta,
                    reason,
                    touched: false,
                },
            );
        }
        Ok(())
    }

    /// Marks the placeholders `path` goes through (lexically, following
    /// placeholder symlinks) as touched.
    pub(crate) fn touch(&mut self, path: &Path) {
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
        if crate::etc::is_account_db(path) && self.synthesize_db(path, true, who, observer)? {
            self.placeholders.map.remove(path);
            self.placeholders.by_inode.retain(|_, p| p != path);
            return Ok(());
        }
        let Some(ph) = self.placeholders.map.remove(path) else {
            return Ok(());
        };
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
        self.record(
            entry_for(&step, &Applied::File(copied), stripped, reason),
            observer,
        );
        Ok(())
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
        for (path, ph) in &all {
            if ph.kind == Kind::File {
                self.remove_placeholder(path)?;
                removed += 1;
            }
        }
        for (path, ph) in &all {
            let stays = match ph.kind {
                Kind::File => false,
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
        self.placeholders.by_inode.clear();
        self.placeholders.listed.clear();
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
