//! The crate's error type.
//!
//! Every variant names the path it failed on (a jail path for operations in
//! the root, a host path for reads from the host) and keeps the OS error as
//! its `source`, so a caller printing the cause chain shows each once.

use std::io;
use std::path::PathBuf;

use crate::Kind;

/// What went wrong, and on which path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The jail root itself could not be opened (missing, not a directory,
    /// or a symlink).
    #[error("cannot open jail root {}", .path.display())]
    OpenRoot {
        /// The path given to [`crate::Root::open`].
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An operation inside the root failed.
    #[error("{op} {} in jail root {}", .path.display(), .root.display())]
    Root {
        /// The operation, e.g. `mkdir`.
        op: &'static str,
        /// The jail path it acted on.
        path: PathBuf,
        /// The root's host path.
        root: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Reading from the host failed.
    #[error("{op} host path {}", .path.display())]
    Host {
        /// The operation, e.g. `lstat`.
        op: &'static str,
        /// The host path (host base joined with the jail path).
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Something other than what was asked for is already in the root at
    /// this jail path; it is never replaced.
    #[error("{} already exists in the jail root as a {kind}", .path.display())]
    Exists {
        /// The jail path.
        path: PathBuf,
        /// What is there.
        kind: Kind,
    },
    /// The jail path has no last component to act on (`/`, or it ends in
    /// `.` or `..`).
    #[error("jail path {} names no directory entry", .path.display())]
    NoName {
        /// The jail path.
        path: PathBuf,
    },
    /// A file to copy from, or a placeholder to fill, is not a regular file.
    #[error("{} is a {kind}, not a regular file", .path.display())]
    NotRegular {
        /// The host path (for a copy) or the jail path (for a placeholder).
        path: PathBuf,
        /// What it is.
        kind: Kind,
    },
    /// Block devices are never created in a jail root.
    #[error("refusing to create block device {} in a jail root", .path.display())]
    BlockDevice {
        /// The jail path.
        path: PathBuf,
    },
}

impl Error {
    /// The OS error number behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::OpenRoot { source, .. }
            | Error::Root { source, .. }
            | Error::Host { source, .. } => source.raw_os_error(),
            Error::Exists { .. } => Some(libc::EEXIST),
            Error::NoName { .. } => Some(libc::EINVAL),
            Error::NotRegular { .. } => None,
            Error::BlockDevice { .. } => Some(libc::EPERM),
        }
    }
}
