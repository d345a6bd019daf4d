//! The state of the directory listings of a session: the names a copying
//! run's listings showed, the placeholders made of them, the hollow files
//! kept across runs, and what the listings came to. [`crate::listing`]
//! shows, makes, fills and prunes them; the session only holds them.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
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

/// A host entry a listing showed by name only: it becomes a placeholder
/// when a path names it or goes through it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unmade {
    pub(crate) kind: Kind,
    /// Its listing, an index into [`Placeholders::listings`].
    pub(crate) listing: usize,
}

/// The names one directory's listing shows beyond the root's own entries.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) dir: PathBuf,
    /// Who listed the directory.
    pub(crate) reason: Reason,
    pub(crate) names: Vec<Shown>,
}

/// One name of a [`Listing`], as `getdents64` reports it.
#[derive(Debug)]
pub(crate) struct Shown {
    pub(crate) name: OsString,
    pub(crate) kind: Kind,
    /// The host's inode number.
    pub(crate) ino: u64,
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
    /// Names shown by this run's listings that are no placeholder yet,
    /// by path. Keyed by the path's bytes: the paths are the kernel's own
    /// (a listed directory's) joined with a name, and a `Path` key would
    /// be hashed component by component, tens of thousands of times for a
    /// listing-heavy program.
    pub(crate) unmade: HashMap<OsString, Unmade>,
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
