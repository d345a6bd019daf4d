//! Errors from reading, checking and writing manifests.
//!
//! Each message says what failed; those about a file name the file. The
//! underlying cause (an I/O error, or the content error of a file that could
//! not be used) is returned by [`std::error::Error::source`] and is not
//! repeated in the message, so a caller printing the chain prints each fact once.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why a manifest could not be read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The manifest was written by a newer jailtrace whose format this one does not know.
    #[error(
        "manifest schema version {found} is newer than this jailtrace understands ({supported}); upgrade jailtrace"
    )]
    FutureVersion {
        /// The `schema_version` in the manifest.
        found: u64,
        /// [`crate::SCHEMA_VERSION`].
        supported: u32,
    },
    /// `schema_version` is 0, which no jailtrace has written.
    #[error("manifest schema version {found} is not valid; versions start at 1")]
    InvalidVersion {
        /// The `schema_version` in the manifest.
        found: u64,
    },
    /// Not JSON, or JSON that does not have the manifest's shape. The message
    /// includes serde_json's explanation with its line and column
    /// (also available as `json.line()` and `json.column()`).
    #[error("malformed manifest: {json}")]
    Malformed {
        /// The parser's error.
        json: serde_json::Error,
    },
    /// The file could not be read.
    #[error("cannot read manifest {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file was read but its content is unusable; `source` says why
    /// ([`Error::FutureVersion`], [`Error::InvalidVersion`] or [`Error::Malformed`]).
    #[error("cannot use manifest {}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The content error.
        #[source]
        source: Box<Error>,
    },
    /// Writing failed at `step`; the previous file at `path`, if any, is untouched
    /// unless `step` is [`WriteStep::SyncDirectory`].
    #[error("cannot write manifest {}: could not {step}", path.display())]
    Write {
        /// The target file.
        path: PathBuf,
        /// What was being done.
        step: WriteStep,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The content error behind an [`Error::Invalid`], or `self` for every other kind.
    ///
    /// Lets a caller of [`crate::Manifest::read`] match on
    /// [`Error::FutureVersion`] without unwrapping the file context by hand.
    pub fn content(&self) -> &Error {
        match self {
            Error::Invalid { source, .. } => source.content(),
            other => other,
        }
    }
}

/// The steps of [`crate::Manifest::write_atomic`], for [`Error::Write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteStep {
    /// The target path has no file name (e.g. `/` or ends in `..`).
    NameTarget,
    /// Creating the temporary file in the target's directory.
    CreateTemporary,
    /// Writing the JSON into the temporary file.
    WriteTemporary,
    /// `fsync` of the temporary file.
    SyncTemporary,
    /// Renaming the temporary file over the target.
    Rename,
    /// `fsync` of the directory after the rename. The new manifest is already
    /// in place; only its durability across a crash is in doubt.
    SyncDirectory,
}

impl std::fmt::Display for WriteStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteStep::NameTarget => "find a file name in the path",
            WriteStep::CreateTemporary => "create a temporary file in its directory",
            WriteStep::WriteTemporary => "write the temporary file",
            WriteStep::SyncTemporary => "flush the temporary file to disk",
            WriteStep::Rename => "rename the temporary file over it",
            WriteStep::SyncDirectory => "flush its directory to disk after the rename",
        })
    }
}
