//! The state of the directory listings of a session: the placeholders a
//! copying run created, the hollow files kept across runs, and what the
//! listings came to. [`crate::listing`] creates, fills and prunes them;
//! the session only holds them.

use std::collections::{HashMap, HashSet};
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
    pub(crate) map: HashMap<PathBuf, Placeholder>,
    /// Files kept hollow by an earlier prune (recorded `hollow: true`).
    pub(crate) hollow: HashMap<PathBuf, Placeholder>,
    /// Root (dev, ino) of each unfilled placeholder or hollow file.
    pub(crate) by_inode: HashMap<(u64, u64), PathBuf>,
    pub(crate) listed: HashSet<PathBuf>,
    pub(crate) max: usize,
    /// Directories whose entries all stay (`--keep-listing`).
    pub(crate) keep: Vec<PathBuf>,
    pub(crate) stats: ListingStats,
}

impl Placeholders {
    pub(crate) fn new(max: usize) -> Placeholders {
        Placeholders {
            max,
            ..Default::default()
        }
    }

    /// The unfilled placeholder or hollow file at root inode `(dev, ino)`,
    /// if any.
    pub(crate) fn file_at(&self, dev: u64, ino: u64) -> Option<PathBuf> {
        self.by_inode.get(&(dev, ino)).cloned()
    }

    /// Whether `path` is a hollow file (kept from an earlier run).
    pub(crate) fn is_hollow(&self, path: &Path) -> bool {
        self.hollow.contains_key(path)
    }
}
