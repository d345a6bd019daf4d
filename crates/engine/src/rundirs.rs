//! A fresh `/run` for every run, as a boot gives one.
//!
//! `/run` (and `/var/run`, `/var/lock`, which lead there) is a tmpfs that
//! every boot starts empty, and servers rely on it: a pid file left there
//! means "already running". A run of the program in the root keeps what
//! the earlier runs' programs made, and a server that jailtrace stopped
//! may not have removed its pid file. In a pid namespace of its own the
//! program gets the same pids in each run, so the stale pid is alive:
//! Apache refused to start with "httpd (pid 15) already running". So
//! before each run, the files the program made there in earlier runs
//! (entries of cause `created`) are removed; their entries stay (the
//! program makes them when it runs: `build` skips them, `verify` does not
//! miss them).

use std::path::Path;

use jailtrace_manifest::{Cause, EntryKind};
use jailtrace_rootfs as rootfs;

use crate::session::Session;

/// The directories a boot empties.
const EMPTIED_AT_BOOT: [&str; 3] = ["/run", "/var/run", "/var/lock"];

impl Session {
    /// Removes from the root the regular files the program made under
    /// [`EMPTIED_AT_BOOT`] in earlier runs (see the module comment).
    pub(crate) fn empty_run_dirs(&mut self) -> Result<(), rootfs::Error> {
        let made: Vec<&Path> = self
            .entries
            .iter()
            .filter(|e| e.reason.cause == Cause::Created && e.kind == EntryKind::File)
            .map(|e| e.path.as_path())
            .filter(|p| EMPTIED_AT_BOOT.iter().any(|dir| p.starts_with(dir)))
            .collect();
        let mut gone = Vec::new();
        for path in made {
            if self
                .root
                .lstat(path)?
                .is_some_and(|m| m.kind == rootfs::Kind::File)
            {
                gone.push(path.to_path_buf());
            }
        }
        for path in gone {
            self.root.remove(&path)?;
        }
        Ok(())
    }
}
