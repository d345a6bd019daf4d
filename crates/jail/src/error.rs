//! The crate's error type: what failed, on which path.

use std::path::PathBuf;

use jailtrace_rootfs as rootfs;

use crate::Mismatch;

/// Why a build, verification or update could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the root, or reading the host, failed.
    #[error(transparent)]
    Fs(#[from] rootfs::Error),
    /// A host file could not be read to hash it.
    #[error("cannot read host file {}", .path.display())]
    ReadHost {
        /// The host path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file in the root could not be read to hash it.
    #[error("cannot read {} in the jail root", .path.display())]
    ReadRoot {
        /// The jail path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The manifest lacks a field this entry needs (a symlink's target, a
    /// device's number).
    #[error("manifest entry {} ({kind}) has no {field}", .path.display())]
    Incomplete {
        /// The entry's jail path.
        path: PathBuf,
        /// Its kind.
        kind: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// `--strict`: host files differ from the manifest; nothing was written.
    #[error("{} host file(s) differ from the manifest (first: {}); nothing was built", .0.len(), first_path(.0))]
    Strict(Vec<Mismatch>),
    /// The root could not be walked.
    #[error("cannot list {} in the jail root", .path.display())]
    Walk {
        /// The jail path of the directory.
        path: PathBuf,
        /// The OS error.
        source: nix::errno::Errno,
    },
}

fn first_path(m: &[Mismatch]) -> String {
    m.first().map(|m| m.path.to_string()).unwrap_or_default()
}
