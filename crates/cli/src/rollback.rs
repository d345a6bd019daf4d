//! A failed run into a jail that exists, undone in its root.
//!
//! A run that adds a program to a jail places what the program misses in
//! the jail's root as it goes; when the program then does not start (its
//! readiness never holds, an exercise fails) the manifest is not written,
//! so without this the root would hold files its manifest does not list
//! (`verify` reports them as extra). [`roll_back`] makes the root again
//! the one the untouched manifest describes:
//!
//! - every entry the run placed that the jail's manifest lacks is removed,
//!   children before parents, through `jailtrace_rootfs::Root` (confined
//!   to the root); a directory the program wrote other files into is left,
//!   and said;
//! - then the manifest is built over the root (`jailtrace_jail::build`,
//!   which leaves what is right alone): an entry the run changed, such as
//!   the synthesized `/etc/passwd` with the new program's user, or a
//!   listed file it filled, is put back as recorded.
//!
//! It never fails the command: the run has failed already, and what could
//! not be undone is returned for the user to see.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use jailtrace_jail::{self as jail, Host};
use jailtrace_manifest::Manifest;
use jailtrace_rootfs::Root;

/// What undoing a failed run did.
#[derive(Debug, Default)]
pub(crate) struct RolledBack {
    /// Entries of the failed run taken out of the root.
    pub removed: usize,
    /// What could not be undone, for people.
    pub left: Vec<String>,
}

/// Takes out of `root` what the failed run that recorded `failed` placed
/// there, and builds `earlier` (the jail's manifest, which the run did not
/// replace) over it.
pub(crate) fn roll_back(root: &Path, earlier: &Manifest, failed: &Manifest) -> RolledBack {
    let mut done = RolledBack::default();
    let kept: HashSet<PathBuf> = earlier
        .entries
        .iter()
        .map(|e| e.path.as_path().components().collect())
        .collect();
    let mut handle = match Root::open(root) {
        Ok(handle) => handle,
        Err(e) => {
            done.left.push(chain(&e));
            return done;
        }
    };
    // Entries are in the order they were placed, parents first.
    for entry in failed.entries.iter().rev() {
        let path: PathBuf = entry.path.as_path().components().collect();
        if kept.contains(&path) {
            continue;
        }
        match handle.lstat(&path) {
            Ok(None) => {}
            Ok(Some(_)) => match handle.remove(&path) {
                Ok(()) => done.removed += 1,
                Err(e) => done.left.push(chain(&e)),
            },
            Err(e) => done.left.push(chain(&e)),
        }
    }
    let opts = jail::Options {
        link: false,
        strict: false,
        jobs: 0,
    };
    // Host files that changed since the manifest was written are not this
    // run's doing: `verify` and `update` speak of them.
    if let Err(e) = jail::build(earlier, root, &Host::system(), &opts) {
        done.left.push(chain(&e));
    }
    done
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
