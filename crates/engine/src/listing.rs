//! Directory listings without copying whole directories.
//!
//! A program that lists a directory (Python's import system, Apache's
//! `Include mods-enabled/*.load`) must see the host's entries there, but a
//! jail should not get a copy of everything. When a copying run sees the
//! first `getdents64` of a directory, the host entries the root lacks (and
//! the policy lets in: denied paths and host runtime state are not shown)
//! are *shown by name*: once the kernel's pass over the root's directory
//! ends, the handler writes their records into the program's buffer
//! ([`Session::listed_result`], [`crate::dirents`]), every pass (a rewound
//! or reopened directory starts a new one), and nothing is made in the
//! root. A name becomes a *placeholder* only when a path names it or goes
//! through it ([`Session::materialize`], before the call runs): symlinks
//! as they are, directories empty, regular files *hollow*: the host's
//! size, mode, owner and times, no content (a hole that reads as zeros),
//! so `stat` sees the host's file. `find /usr/share` sees 35,000 names and
//! the root gets the 1,500 it goes through. The old `getdents` (whose
//! records are not written here) and `--keep-listing` directories make
//! every placeholder at once.
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
//! - a file nothing looked at is removed, and a name nothing named was
//!   never made;
//! - a directory stays when a path went through it or something in it
//!   stays; a symlink when a path went through it or its target is in the
//!   root (a symlink shown by name is made then); the others are removed;
//! - with `--keep-listing DIR`, every entry of DIR stays, files filled.
//!
//! So the verifying run runs in the root that ships. Listings of /proc,
//! /sys and /dev, and of directories in a bind (`--bind`), are never
//! touched.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};

use jailtrace_manifest::{Cause, Entry, EntryKind, Mode, Reason};
use jailtrace_rootfs::{self as rootfs, Applied, Follow, Kind, Meta, Step};

use crate::dirents;
use crate::placeholders::{Cursor, Listing, Placeholder, Shown};
use crate::policy::Verdict;
use crate::session::{entry_deferred, entry_for, Observer, Session, Who};

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

/// The path a listed symlink in `dir` with `target` names, when that is
/// plain from its spelling: `dir` is the kernel's own path of a listed
/// directory (no symlink in it), so `..` there or right after `/` is
/// exact; a `..` after a name (which may be a symlink) needs a lookup.
fn plain_target(dir: &Path, target: &Path) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    let mut named = false;
    for c in target.components() {
        match c {
            Component::RootDir => {
                out = PathBuf::from("/");
                named = false;
            }
            Component::Normal(n) => {
                out.push(n);
                named = true;
            }
            Component::ParentDir if !named => {
                out.pop();
            }
            Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

const NEVER_LISTED: &[&str] = &["/proc", "/sys", "/dev"];

/// What [`Session::materialize`] has to do for a path, as far as one
/// lookup tells ([`Session::shortcut`]).
enum Shortcut {
    /// Nothing: no name on the way is a listed name left to make.
    Nothing,
    /// Make the last component, a listed name in a directory the root has
    /// (reached through directories only); walk on only if it is a
    /// symlink.
    Last(PathBuf),
    /// Walk the path component by component.
    Walk,
}

/// What [`Session::make_placeholder`] made.
enum Made {
    /// Nothing: the host lacks the entry, or the root has one there.
    Nothing,
    /// A symlink placeholder.
    Symlink,
    /// A directory or hollow file placeholder, with its metadata in the
    /// root.
    Entry(Meta),
}

impl Made {
    fn any(&self) -> bool {
        !matches!(self, Made::Nothing)
    }
}

/// What [`Session::materialize`] made.
#[derive(Debug, Default)]
pub(crate) struct Materialized {
    /// A placeholder on the way to the path, or the path's own.
    pub made: bool,
    /// The path's own placeholder when the path names it directly (not
    /// through a symlink): its metadata, as a lookup in the root finds it.
    pub meta: Option<Meta>,
}

/// What a `getdents64` on a listed directory returns instead of what the
/// kernel returned ([`Session::listed_result`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shows {
    /// The kernel's records.
    Kernel,
    /// The kernel's first `at` bytes of records, then these: names the
    /// kernel's pass did not return.
    Names { at: usize, records: Vec<u8> },
    /// `EINVAL`: the buffer cannot hold the next name's record.
    TooSmall,
}

impl Session {
    /// A copying run lists `dir`: the host entries the root lacks are
    /// shown, by name only ([`Session::listed_result`]); each becomes a
    /// placeholder once a path names it ([`Session::materialize`]). With
    /// `eager` (the old `getdents`, whose records are not made here, or a
    /// directory of `--keep-listing`), each is a placeholder at once.
    /// `who` (which costs the caller /proc reads) is asked for only when
    /// `dir` is listed for the first time.
    pub(crate) fn list(
        &mut self,
        dir: &Path,
        who: impl FnOnce() -> Who,
        eager: bool,
        observer: &mut dyn Observer,
    ) -> Result<(), rootfs::Error> {
        if self.read_only
            || NEVER_LISTED.iter().any(|n| dir.starts_with(n))
            || self.policy().is_bound(dir)
            || self.placeholders.listed.contains_key(dir)
        {
            return Ok(());
        }
        self.placeholders.listed.insert(dir.to_path_buf(), None);
        let Ok(entries) = self.host.read_dir(dir) else {
            return Ok(());
        };
        let present = self.root_names(dir);
        let eager = eager || self.placeholders.keep.iter().any(|k| k == dir);
        let reason = who().reason(Cause::Listed, self.run, Some(dir));
        let mut names = Vec::new();
        let mut count = 0usize;
        // Each name's path, for the policy: one buffer for all of them.
        let mut path = dir.to_path_buf();
        for entry in entries {
            if present.contains(&entry.name) {
                continue;
            }
            path.push(&entry.name);
            let verdict = self.policy().verdict(&path);
            path.pop();
            if !matches!(verdict, Verdict::Copy) {
                self.placeholders.stats.hidden += 1;
                continue;
            }
            let kind = match entry.kind {
                Some(kind @ (Kind::File | Kind::Dir | Kind::Symlink)) => kind,
                Some(_) => continue,
                // A file system that leaves the type out (`DT_UNKNOWN`).
                None => match self.host.lstat(&dir.join(&entry.name))? {
                    Some(Meta {
                        kind: kind @ (Kind::File | Kind::Dir | Kind::Symlink),
                        ..
                    }) => kind,
                    _ => continue,
                },
            };
            // A key file is not shown: filled once opened, its content
            // would be copied past the policy. Only a name that may be one
            // costs a host lookup.
            path.push(&entry.name);
            let secret = kind == Kind::File
                && self.policy().may_be_secret_file(&path)
                && self
                    .host
                    .lstat(&path)?
                    .is_some_and(|m| self.policy().secret_file(&path, m.mode).is_some());
            path.pop();
            if secret {
                self.placeholders.stats.hidden += 1;
                continue;
            }
            count += 1;
            if count > self.placeholders.max {
                observer.warn(&format!(
                    "{}: listing has more than {} entries; the rest are not shown in the jail",
                    dir.display(),
                    self.placeholders.max
                ));
                break;
            }
            if eager {
                if !self
                    .make_placeholder(&dir.join(&entry.name), reason.clone())?
                    .any()
                {
                    continue;
                }
            } else {
                names.push(Shown {
                    name: entry.name,
                    kind,
                    ino: entry.ino,
                    made: false,
                });
            }
            self.placeholders.stats.shown += 1;
        }
        if !names.is_empty() {
            let listing = Listing::new(dir.to_path_buf(), reason, names);
            let index = self.placeholders.add_listing(listing);
            self.placeholders
                .listed
                .insert(dir.to_path_buf(), Some(index));
        }
        Ok(())
    }

    /// The names in the root's directory `dir` (none when it cannot be
    /// read).
    fn root_names(&self, dir: &Path) -> HashSet<OsString> {
        self.root
            .read_dir(dir)
            .map(|names| names.into_iter().map(|(name, _)| name).collect())
            .unwrap_or_default()
    }

    /// Makes the placeholder of the host entry `path` that a listing by
    /// `reason` showed: symlinks as they are, directories empty, files
    /// hollow. [`Made::Nothing`] when the host no longer has it, or the
    /// root has something there already (the program made it).
    fn make_placeholder(&mut self, path: &Path, reason: Reason) -> Result<Made, rootfs::Error> {
        let Some(meta) = self.host.lstat(path)? else {
            return Ok(Made::Nothing);
        };
        let mut attrs = meta.attrs();
        let made = match meta.kind {
            // Size and times as on the host, no content: a `stat` sees the
            // host's file, a read fills it first.
            Kind::File => {
                if !self.keep_setuid() {
                    attrs.mode &= !0o6000;
                }
                self.root.create_sparse(path, &attrs, meta.size).map(Some)
            }
            Kind::Dir => self.root.mkdir(path, &attrs).map(Some),
            Kind::Symlink => {
                let target = self.host.readlink(path)?;
                self.root.symlink(path, &target, &attrs).map(|()| None)
            }
            _ => return Ok(Made::Nothing),
        };
        let made = match made {
            Err(rootfs::Error::Exists { .. }) => return Ok(Made::Nothing),
            other => other?,
        };
        // A file's inode: the placeholder is found by it, whatever path
        // leads there.
        let inode = made
            .filter(|m| m.kind == Kind::File)
            .map(|m| (m.dev, m.ino));
        if let Some(id) = inode {
            self.placeholders.by_inode.insert(id, path.to_path_buf());
        }
        self.placeholders.map.insert(
            path.to_path_buf(),
            Placeholder {
                kind: meta.kind,
                host: meta,
                reason,
                touched: false,
                seen: false,
                inode,
            },
        );
        Ok(match made {
            Some(m) => Made::Entry(m),
            None => Made::Symlink,
        })
    }

    /// Makes a placeholder of every name a listing showed that `path`
    /// names or goes through, as the kernel would resolve it in the root
    /// (symlinks followed, as the host has them). Called when a lookup of
    /// `path` in the root found nothing: `follow` says which (after an
    /// `lstat`, [`Follow::No`], its last component is known missing).
    pub(crate) fn materialize(
        &mut self,
        path: &Path,
        follow: Follow,
    ) -> Result<Materialized, rootfs::Error> {
        let none = Materialized::default();
        if !self.placeholders.any_unmade() {
            return Ok(none);
        }
        let mut made = match self.shortcut(path)? {
            Shortcut::Nothing => return Ok(none),
            Shortcut::Last(key) => {
                let Some(listing) = self.placeholders.take_unmade(&key) else {
                    return Ok(none);
                };
                let found = match follow {
                    Follow::No => None,
                    Follow::Yes => self.root.lstat(&key)?,
                };
                let made = match found {
                    None => {
                        let reason = self.placeholders.listings[listing].reason.clone();
                        match self.make_placeholder(&key, reason)? {
                            Made::Nothing => return Ok(none),
                            // What `path` names: nothing to follow.
                            Made::Entry(meta) => {
                                return Ok(Materialized {
                                    made: true,
                                    meta: Some(meta),
                                })
                            }
                            Made::Symlink => true,
                        }
                    }
                    // The root's own symlink there is followed below.
                    Some(m) if m.kind == Kind::Symlink => false,
                    Some(_) => return Ok(none),
                };
                // A symlink is followed: the walk below does that.
                made
            }
            Shortcut::Walk => false,
        };
        let mut walk = rootfs::PathWalk::new(path);
        while let Some(next) = walk.next_path() {
            let mut found = self.root.lstat(&next)?;
            if let Some(listing) = self.placeholders.take_unmade(&next) {
                let reason = self.placeholders.listings[listing].reason.clone();
                if found.is_none() && self.make_placeholder(&next, reason)?.any() {
                    made = true;
                    found = self.root.lstat(&next)?;
                }
            }
            match found {
                None => break,
                Some(m) if m.kind == Kind::Symlink => {
                    let Ok(target) = self.host.readlink(&next) else {
                        break;
                    };
                    if !walk.follow(&target) {
                        break;
                    }
                }
                Some(_) => walk.enter(next),
            }
        }
        Ok(Materialized { made, meta: None })
    }

    /// What [`Session::materialize`] can tell without its walk. Most
    /// missed paths are in a directory the root has, reached through
    /// directories only (one lookup tells): then every name on the way is
    /// the root's, and only the last component could be a listed name (to
    /// make, then follow if a symlink), or a symlink of the root's to
    /// follow.
    fn shortcut(&mut self, path: &Path) -> Result<Shortcut, rootfs::Error> {
        let mut key = PathBuf::from("/");
        for c in path.components() {
            match c {
                Component::Normal(c) => key.push(c),
                Component::ParentDir => return Ok(Shortcut::Walk),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        let Some(parent) = key.parent().filter(|p| p.parent().is_some()) else {
            return Ok(Shortcut::Walk);
        };
        if !self.root.is_plain_dir(parent) {
            return Ok(Shortcut::Walk);
        }
        // The walk would find each of these in the root: no longer unmade.
        for dir in parent.ancestors() {
            self.placeholders.take_unmade(dir);
        }
        if self.placeholders.is_unmade(&key) {
            return Ok(Shortcut::Last(key));
        }
        Ok(match self.root.lstat(&key)? {
            Some(m) if m.kind == Kind::Symlink => Shortcut::Walk,
            _ => Shortcut::Nothing,
        })
    }

    /// A `getdents64` of the listed directory `dir` on descriptor `fd` of
    /// task `tid` is about to run: whether its listing shows names (then
    /// its result goes to [`Session::listed_result`]).
    pub(crate) fn shows(&mut self, tid: i32, fd: i32, dir: &Path) -> bool {
        let Some(Some(listing)) = self.placeholders.listed.get(dir).copied() else {
            return false;
        };
        let cursor = self
            .placeholders
            .cursors
            .entry((tid, fd))
            .or_insert_with(|| Cursor::new(listing));
        if cursor.listing != listing {
            // The descriptor was closed and reused for another directory.
            *cursor = Cursor::new(listing);
        }
        true
    }

    /// The kernel returned `got` (records; empty at the end of its pass) to
    /// a `getdents64` with a buffer of `count` bytes on descriptor `fd` of
    /// task `tid` ([`Session::shows`]). Once the kernel's pass is over, the
    /// listing's names it did not return follow, as many as fit; names
    /// that became placeholders meanwhile are the root's now.
    ///
    /// A pass is over when the kernel returns nothing, or, on a file
    /// system that fills the buffer
    /// ([`crate::placeholders::Placeholders::root_fills`]), when
    /// it left room for any record ([`dirents::ROOM_FOR_ANY`]): such a file
    /// system stops only at the end of the directory or when the next
    /// record does not fit. The names then follow the kernel's records in
    /// the same call, which saves a `getdents64` (two stops) per directory.
    pub(crate) fn listed_result(&mut self, tid: i32, fd: i32, got: &[u8], count: usize) -> Shows {
        let p = &mut self.placeholders;
        let Some(cursor) = p.cursors.get_mut(&(tid, fd)) else {
            return Shows::Kernel;
        };
        if !got.is_empty() {
            if cursor.ended {
                // Records after the end: the directory was rewound or
                // opened again, a new pass.
                *cursor = Cursor::new(cursor.listing);
            }
            cursor.seen.extend(dirents::names(got).map(OsStr::to_owned));
            if !p.root_fills || count.saturating_sub(got.len()) < dirents::ROOM_FOR_ANY {
                return Shows::Kernel;
            }
        }
        cursor.ended = true;
        let listing = &p.listings[cursor.listing];
        let mut out = Vec::new();
        let room = count.saturating_sub(got.len());
        while let Some(shown) = listing.names.get(cursor.next) {
            let wanted = !shown.made && !cursor.seen.contains(&shown.name);
            if wanted && !dirents::push(&mut out, room, shown.ino, shown.kind, &shown.name) {
                break;
            }
            cursor.next += 1;
        }
        match (out.is_empty(), cursor.next < listing.names.len()) {
            (false, _) => Shows::Names {
                at: got.len(),
                records: out,
            },
            (true, true) if got.is_empty() => Shows::TooSmall,
            (true, _) => Shows::Kernel,
        }
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
            if let Some(ph) = self.placeholders.map.remove(path) {
                self.placeholders.forget_inode(path, ph.inode);
            }
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
        self.placeholders.forget_inode(path, ph.inode);
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
        let (entry, pending) = entry_deferred(&step, &Applied::File(copied), stripped, reason);
        self.digests.add(path, pending);
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
                inode: Some((in_root.dev, in_root.ino)),
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

    /// Makes the symlinks a listing showed whose target is in the root:
    /// they stay, as a placeholder symlink does (the listing shows them at
    /// no cost).
    fn make_links_into_root(&mut self) -> Result<(), rootfs::Error> {
        // Each link's target, read once: a round after the first checks
        // the same links again.
        let mut links: Vec<(PathBuf, usize, PathBuf, Option<PathBuf>)> = Vec::new();
        for (listing, dir, names) in self.placeholders.unmade_symlinks() {
            let targets = self.host.readlinks_in(dir, &names);
            for (name, target) in names.into_iter().zip(targets) {
                let Some(target) = target else { continue };
                let plain = plain_target(dir, &target);
                links.push((dir.join(name), listing, dir.join(target), plain));
            }
        }
        // Until nothing changes: a link may lead to another link shown.
        loop {
            let mut made = false;
            let mut left = Vec::with_capacity(links.len());
            for (path, listing, at, plain) in links {
                // Most links lead to a name shown beside them that nothing
                // made (`man3/x.3.gz -> y.3.gz`): not in the root, known
                // without a lookup there. (Only a name the program made
                // by rename(2) or link(2), which are not traced, is in the
                // root unrecorded; its link is then left out, unused.)
                let unmade = plain
                    .as_ref()
                    .is_some_and(|p| self.placeholders.is_unmade(p));
                if unmade || self.root.stat(&at)?.is_none() {
                    left.push((path, listing, at, plain));
                    continue;
                }
                self.placeholders.take_unmade(&path);
                let reason = self.placeholders.listings[listing].reason.clone();
                made |= self.make_placeholder(&path, reason)?.any();
            }
            if !made {
                return Ok(());
            }
            links = left;
        }
    }

    /// After a copying run: remove what nothing used, record what stays.
    pub(crate) fn prune(&mut self, observer: &mut dyn Observer) -> Result<usize, rootfs::Error> {
        if self.read_only {
            return Ok(0);
        }
        let mut removed = 0;
        self.make_links_into_root()?;
        // Deepest first, so a directory is empty once its children are gone.
        let mut all: Vec<(PathBuf, Placeholder)> = self.placeholders.map.drain().collect();
        all.sort_by_cached_key(|(path, _)| {
            (std::cmp::Reverse(path.components().count()), path.clone())
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
                self.placeholders.forget_inode(path, ph.inode);
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
        // The names shown that nothing named were never made.
        removed += self.placeholders.end_listings();
        self.placeholders.stats.left_out += removed;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_target_is_plain_only_where_its_spelling_says_where_it_leads() {
        let dir = Path::new("/usr/share/man/man3");
        let plain = |t: &str| plain_target(dir, Path::new(t));
        assert_eq!(plain("x.3.gz"), Some("/usr/share/man/man3/x.3.gz".into()));
        assert_eq!(plain("../man1/y.1"), Some("/usr/share/man/man1/y.1".into()));
        assert_eq!(
            plain("/etc/alternatives/z"),
            Some("/etc/alternatives/z".into())
        );
        assert_eq!(plain("/../../a"), Some("/a".into()));
        // After a name, which may be a symlink, `..` needs a lookup.
        assert_eq!(plain("sub/../x"), None);
        assert_eq!(plain("./x"), Some("/usr/share/man/man3/x".into()));
    }

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("/../x")), Path::new("/x"));
    }
}
