//! The state of the directory listings of a session: the names a copying
//! run's listings showed, the placeholders made of them, the hollow files
//! kept across runs, and what the listings came to. [`crate::listing`]
//! shows, makes, fills and prunes them; the session only holds them.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use jailtrace_manifest::Reason;
use jailtrace_rootfs::{Kind, Meta};

#[derive(Debug, Clone)]
pub(crate) struct Placeholder {
    pub(crate) kind: Kind,
    pub(crate) host: Meta,
    /// Who listed the directory.
    pub(crate) reason: Reason,
    /// A path went through it (or, for a file, it was filled).
    pub(crate) touched: bool,
    /// Its metadata was looked at (`stat`, `access`).
    pub(crate) seen: bool,
    /// A file's (device, inode) in the root, while it is a placeholder.
    pub(crate) inode: Option<(u64, u64)>,
}

/// The names one directory's listing shows beyond the root's own entries.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) dir: PathBuf,
    /// Who listed the directory.
    pub(crate) reason: Reason,
    /// Sorted by name (see [`Listing::new`]).
    pub(crate) names: Vec<Shown>,
}

impl Listing {
    /// The listing of `dir`; `names` are sorted here, to be found by name.
    pub(crate) fn new(dir: PathBuf, reason: Reason, mut names: Vec<Shown>) -> Listing {
        names.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Listing { dir, reason, names }
    }
}

/// One name of a [`Listing`], as `getdents64` reports it.
#[derive(Debug)]
pub(crate) struct Shown {
    pub(crate) name: OsString,
    pub(crate) kind: Kind,
    /// The host's inode number.
    pub(crate) ino: u64,
    /// It is no longer a name only: a placeholder was made of it, or the
    /// root has an entry there now.
    pub(crate) made: bool,
}

/// How far one descriptor has read a [`Listing`]: the kernel's pass over
/// the root's directory comes first, then the names it did not return.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub(crate) listing: usize,
    /// The next name of the listing to consider.
    pub(crate) next: usize,
    /// What the kernel returned in this pass.
    pub(crate) seen: HashSet<OsString>,
    /// The kernel's pass reached the end of the directory.
    pub(crate) ended: bool,
}

impl Cursor {
    pub(crate) fn new(listing: usize) -> Cursor {
        Cursor {
            listing,
            next: 0,
            seen: HashSet::new(),
            ended: false,
        }
    }
}

/// What the listings of a whole `jailtrace run` came to, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListingStats {
    /// Host entries shown to the program as placeholders.
    pub shown: usize,
    /// Placeholders kept in the jail: the program used them (opened,
    /// executed, went through), or `--keep-listing` named their directory.
    pub kept: usize,
    /// Files kept hollow: the program only looked at their metadata.
    pub hollow: usize,
    /// Placeholders removed: the program only saw their names or metadata.
    pub left_out: usize,
    /// Host entries not shown at all: host runtime state or denied paths.
    pub hidden: usize,
}

/// The placeholders of the current copying run, and the hollow files of
/// the whole session.
#[derive(Debug, Default)]
pub(crate) struct Placeholders {
    /// How many names of [`Placeholders::listings`] are no placeholder yet
    /// (not [`Shown::made`]).
    unmade: usize,
    /// This run's listings that show names, added by
    /// [`Placeholders::add_listing`]. A name is found through its
    /// directory's entry in [`Placeholders::listed`], then by name: no map
    /// of every name's path (`find /usr/share` shows 35,000).
    pub(crate) listings: Vec<Listing>,
    /// Where each descriptor (thread id, fd) reading a listing is.
    pub(crate) cursors: HashMap<(i32, i32), Cursor>,
    pub(crate) map: HashMap<PathBuf, Placeholder>,
    /// Files kept hollow by an earlier prune (recorded `hollow: true`).
    pub(crate) hollow: HashMap<PathBuf, Placeholder>,
    /// Root (dev, ino) of each unfilled placeholder or hollow file.
    pub(crate) by_inode: HashMap<(u64, u64), PathBuf>,
    /// The directories listed in this run, with their [`Listing`] when it
    /// shows names.
    pub(crate) listed: HashMap<PathBuf, Option<usize>>,
    pub(crate) max: usize,
    /// The root's file system fills a `getdents64` buffer until the
    /// directory ends or the next record does not fit (ext4, xfs, btrfs,
    /// tmpfs; not so NFS or FUSE, whose calls may return one page of
    /// records): a call that left room for any record ended the kernel's
    /// pass ([`crate::listing`]).
    pub(crate) root_fills: bool,
    /// Directories whose entries all stay (`--keep-listing`).
    pub(crate) keep: Vec<PathBuf>,
    pub(crate) stats: ListingStats,
}

impl Placeholders {
    pub(crate) fn new(max: usize, root: &Path) -> Placeholders {
        use nix::sys::statfs::{
            statfs, BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, TMPFS_MAGIC, XFS_SUPER_MAGIC,
        };
        let root_fills = statfs(root).is_ok_and(|fs| {
            [
                EXT4_SUPER_MAGIC,
                XFS_SUPER_MAGIC,
                BTRFS_SUPER_MAGIC,
                TMPFS_MAGIC,
            ]
            .contains(&fs.filesystem_type())
        });
        Placeholders {
            max,
            root_fills,
            ..Default::default()
        }
    }

    /// Adds the listing of a directory, whose [`Placeholders::listed`]
    /// entry the caller sets to the index returned.
    pub(crate) fn add_listing(&mut self, listing: Listing) -> usize {
        self.unmade += listing.names.iter().filter(|n| !n.made).count();
        self.listings.push(listing);
        self.listings.len() - 1
    }

    /// Whether some name of this run's listings is still no placeholder.
    pub(crate) fn any_unmade(&self) -> bool {
        self.unmade > 0
    }

    /// Where the name at `path` is among the listings: (listing, name).
    fn shown_at(&self, path: &Path) -> Option<(usize, usize)> {
        let (dir, name) = (path.parent()?, path.file_name()?);
        let listing = (*self.listed.get(dir)?)?;
        let names = &self.listings[listing].names;
        let at = names
            .binary_search_by(|shown| shown.name.as_os_str().cmp(name))
            .ok()?;
        (!names[at].made).then_some((listing, at))
    }

    /// Whether `path` is a name a listing showed that is no placeholder
    /// yet.
    pub(crate) fn is_unmade(&self, path: &Path) -> bool {
        self.shown_at(path).is_some()
    }

    /// Marks the name at `path`, if a listing showed it and it is no
    /// placeholder yet, as made; returns its listing, an index into
    /// [`Placeholders::listings`].
    pub(crate) fn take_unmade(&mut self, path: &Path) -> Option<usize> {
        let (listing, at) = self.shown_at(path)?;
        self.listings[listing].names[at].made = true;
        self.unmade -= 1;
        Some(listing)
    }

    /// The symlinks listings showed that are no placeholder yet: for each
    /// listing that has any, its index, its directory and their names.
    pub(crate) fn unmade_symlinks(&self) -> impl Iterator<Item = (usize, &Path, Vec<&OsStr>)> + '_ {
        self.listings.iter().enumerate().filter_map(|(index, l)| {
            let names: Vec<&OsStr> = l
                .names
                .iter()
                .filter(|n| !n.made && n.kind == Kind::Symlink)
                .map(|n| n.name.as_os_str())
                .collect();
            (!names.is_empty()).then_some((index, l.dir.as_path(), names))
        })
    }

    /// Forgets this run's listings; returns how many names were never
    /// made.
    pub(crate) fn end_listings(&mut self) -> usize {
        let unmade = std::mem::take(&mut self.unmade);
        self.listings.clear();
        self.cursors.clear();
        self.listed.clear();
        unmade
    }

    /// The unfilled placeholder or hollow file at root inode `(dev, ino)`,
    /// if any.
    pub(crate) fn file_at(&self, dev: u64, ino: u64) -> Option<PathBuf> {
        self.by_inode.get(&(dev, ino)).cloned()
    }

    /// Forgets that `path` is a placeholder file, if it is one.
    pub(crate) fn forget_inode(&mut self, path: &Path, inode: Option<(u64, u64)>) {
        if let Some(key) = inode {
            if self.by_inode.get(&key).is_some_and(|p| p == path) {
                self.by_inode.remove(&key);
            }
        }
    }

    /// Whether `path` is a hollow file (kept from an earlier run).
    pub(crate) fn is_hollow(&self, path: &Path) -> bool {
        self.hollow.contains_key(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jailtrace_manifest::Cause;

    fn shown(name: &str, kind: Kind) -> Shown {
        Shown {
            name: name.into(),
            kind,
            ino: 1,
            made: false,
        }
    }

    #[test]
    fn a_listed_name_is_found_through_its_directory_until_it_is_made() {
        let mut p = Placeholders::default();
        let names = vec![
            shown("zz", Kind::File),
            shown("link", Kind::Symlink),
            shown("a", Kind::Dir),
        ];
        let dir = PathBuf::from("/usr/share");
        let at = p.add_listing(Listing::new(
            dir.clone(),
            Reason::new(Cause::Listed, 1),
            names,
        ));
        p.listed.insert(dir, Some(at));
        // Sorted, so that a name is found by a binary search.
        let order: Vec<_> = p.listings[at]
            .names
            .iter()
            .map(|n| n.name.clone())
            .collect();
        assert_eq!(order, ["a", "link", "zz"]);

        assert!(p.any_unmade());
        assert!(p.is_unmade(Path::new("/usr/share/zz")));
        assert!(!p.is_unmade(Path::new("/usr/share/b")));
        assert!(!p.is_unmade(Path::new("/usr/zz")));
        assert!(!p.is_unmade(Path::new("/usr/share/a/zz")));
        assert_eq!(
            p.unmade_symlinks().collect::<Vec<_>>(),
            [(at, Path::new("/usr/share"), vec![OsStr::new("link")])]
        );

        assert_eq!(p.take_unmade(Path::new("/usr/share/a")), Some(at));
        assert!(!p.is_unmade(Path::new("/usr/share/a")));
        assert!(p.take_unmade(Path::new("/usr/share/a")).is_none());
        p.take_unmade(Path::new("/usr/share/link"));
        assert_eq!(p.unmade_symlinks().count(), 0);
        // One name was never made.
        assert_eq!(p.end_listings(), 1);
        assert!(!p.any_unmade());
        assert!(!p.is_unmade(Path::new("/usr/share/zz")));
    }
}
