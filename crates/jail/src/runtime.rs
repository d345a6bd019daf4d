//! What in a root is the program's runtime state rather than the jail's
//! content: the one rule [`crate::verify`], [`crate::build`] and
//! [`crate::update`] share, read from the manifest alone.
//!
//! - **Sockets and fifos**, wherever they are. Only a running process
//!   makes them (`bind`, `mkfifo`), anew at each start, and they hold no
//!   data: `verify` never calls one extra (it counts it with the runtime
//!   files), and nothing builds or exports one (they are never entries; the
//!   unix sockets the program bound are listed in the manifest's
//!   `sockets`).
//! - **Directories the program writes in** ([`Runtime::is_dir`]): one it
//!   made (a `created` directory), the directory of an entry it made (a
//!   `created` file or directory), and sticky scratch directories
//!   (`/tmp`). What the manifest does not list there is the
//!   program's runtime files, not extra.
//! - **The program's data** ([`Runtime::is_data`]): a file copied from the
//!   host straight into such a directory, such as a database the program
//!   opens read-write, seeded from the host's copy. From its first start
//!   its content (size, SHA-256) is the program's: `verify` compares it
//!   neither in the root nor on the host, `update` does not bring in the
//!   host's, and `build` places it only where the root has no file of that
//!   name (and copies it even with `--link`, so the program never writes
//!   the host's inode). Its kind, mode and owner remain the jail's.
//!
//! - **Binds** ([`Runtime::is_bind_point`]): what lies under the mount
//!   point of a `--bind` is the host directory's, not the jail's: `verify`
//!   does not walk it and `build` and `update` never write there. The
//!   mount point itself is checked only to be a directory (mounted, it
//!   shows the host directory's mode and owner), and it is fine unmounted.
//!
//! The limit of the rule: the manifest does not say which files the
//! program opened for writing, only what it made. A program that makes a
//! file beside its configuration (in `/etc` itself) makes that
//! configuration look like its data, whose content `verify` then does not
//! compare (`docs/manifest.md`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use jailtrace_manifest::{Cause, Entry, EntryKind, Manifest};
use jailtrace_rootfs::Kind;

use crate::check;

/// The directories of one manifest where the program writes at run time.
#[derive(Debug, Default)]
pub(crate) struct Runtime {
    dirs: HashSet<PathBuf>,
    /// Mount points of binds.
    binds: HashSet<PathBuf>,
}

impl Runtime {
    /// The rule applied to `manifest`.
    pub(crate) fn of(manifest: &Manifest) -> Runtime {
        let mut dirs = HashSet::new();
        for e in &manifest.entries {
            let p = e.path.as_path();
            if e.reason.cause == Cause::Created {
                if e.kind == EntryKind::Dir {
                    dirs.insert(p.to_path_buf());
                }
                if let Some(parent) = p.parent() {
                    dirs.insert(parent.to_path_buf());
                }
            }
            // Sticky directories (/tmp) are scratch space.
            if e.kind == EntryKind::Dir && e.mode.bits() & 0o1000 != 0 {
                dirs.insert(p.to_path_buf());
            }
        }
        let binds = manifest
            .mounts
            .iter()
            .filter(|m| m.is_bind())
            .map(|m| m.path.as_path().to_path_buf())
            .collect();
        Runtime { dirs, binds }
    }

    /// Whether the jail path `path` is the mount point of a bind.
    pub(crate) fn is_bind_point(&self, path: &Path) -> bool {
        self.binds.contains(path)
    }

    /// Whether the program writes in the directory at jail path `dir`.
    pub(crate) fn is_dir(&self, dir: &Path) -> bool {
        self.dirs.contains(dir)
    }

    /// Whether `entry` is the program's data: a file from the host
    /// straight in a directory it writes in.
    pub(crate) fn is_data(&self, entry: &Entry) -> bool {
        entry.kind == EntryKind::File
            && check::from_host(entry)
            && entry
                .path
                .as_path()
                .parent()
                .is_some_and(|d| self.is_dir(d))
    }
}

/// Whether a file of `kind` is runtime state wherever it is (a socket, a
/// fifo).
pub(crate) fn is_runtime_kind(kind: Kind) -> bool {
    matches!(kind, Kind::Socket | Kind::Fifo)
}
