//! A fresh `/run` for every run, as a boot gives one.
//!
//! `/run` (and `/var/run`, `/var/lock`, which lead there on Debian) is a
//! tmpfs that every boot starts empty, and servers rely on it: a pid file
//! left there means "already running", a socket left there makes `bind`
//! fail. A run of the program in the root keeps what the earlier runs made,
//! and a server that jailtrace stopped may not have removed its pid file.
//! In a pid namespace of its own the program gets the same pids in each
//! run, so the stale pid is alive: Apache refused to start with "httpd
//! (pid 15) already running". So before each run, what is not a directory
//! there is removed from the root, unless jailtrace placed it from the
//! host (an `--allow`ed file): the program's pid files, locks and sockets.
//! Their entries stay (the program makes them when it runs: `build` skips
//! them, `verify` does not miss them). Apache writes its pid file under a
//! temporary name and renames it, so the entries alone do not name it:
//! the directories are read. The mount point of a bind is never entered.

use std::collections::HashSet;
use std::path::PathBuf;

use jailtrace_manifest::Cause;
use jailtrace_rootfs::{self as rootfs, Kind};

use crate::session::Session;

/// The directories a boot empties.
const EMPTIED_AT_BOOT: [&str; 3] = ["/run", "/var/run", "/var/lock"];

impl Session {
    /// Removes from the root what the program left under
    /// [`EMPTIED_AT_BOOT`] in earlier runs (see the module comment).
    pub(crate) fn empty_run_dirs(&mut self) -> Result<(), rootfs::Error> {
        let mut dirs: Vec<PathBuf> = EMPTIED_AT_BOOT.iter().map(PathBuf::from).collect();
        let mut walked = HashSet::new();
        let mut gone = Vec::new();
        while let Some(dir) = dirs.pop() {
            // A symlink (`/var/run -> /run`) is not followed: its target
            // is in the list.
            let Some(meta) = self.root.lstat(&dir)? else {
                continue;
            };
            if meta.kind != Kind::Dir
                || self.policy().is_bound(&dir)
                || !walked.insert((meta.dev, meta.ino))
            {
                continue;
            }
            let Ok(names) = self.root.read_dir(&dir) else {
                continue;
            };
            for (name, kind) in names {
                let path = dir.join(name);
                let kind = match kind {
                    Some(kind) => Some(kind),
                    None => self.root.lstat(&path)?.map(|m| m.kind),
                };
                match kind {
                    Some(Kind::Dir) => dirs.push(path),
                    Some(Kind::File | Kind::Socket | Kind::Fifo)
                        if !self.placed_from_host(&path) =>
                    {
                        gone.push(path)
                    }
                    _ => {}
                }
            }
        }
        for path in gone {
            if !self.policy().is_bound(&path) {
                self.root.remove(&path)?;
            }
        }
        Ok(())
    }

    /// Whether `path` is an entry jailtrace placed (not one the program
    /// made).
    fn placed_from_host(&self, path: &std::path::Path) -> bool {
        self.entry(path)
            .is_some_and(|e| e.reason.cause != Cause::Created)
    }
}
