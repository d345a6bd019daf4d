//! The crate's error type.
//!
//! Every variant names the path it is about: a jail path (as the manifest
//! lists it) for a manifest entry that cannot be exported, a host path for
//! a file that cannot be read, the output path for a failed write.

use std::io;
use std::path::PathBuf;

use crate::Report;

/// Why an export failed. Nothing is left at the output path when it does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file the manifest lists is not on the host.
    #[error("host file {} is missing (the manifest lists it as {})", .host.display(), .jail.display())]
    Missing {
        /// The host path looked for.
        host: PathBuf,
        /// The entry's path in the jail.
        jail: PathBuf,
    },
    /// The host file could not be opened or is not a regular file.
    #[error("cannot read the host file for {}", .jail.display())]
    Host {
        /// The entry's path in the jail.
        jail: PathBuf,
        /// What the host reader reported (it names the host path).
        source: jailtrace_rootfs::Error,
    },
    /// Reading an opened host file failed.
    #[error("reading host file {}", .path.display())]
    Read {
        /// The host path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The host file shrank while it was being read, so the archive entry
    /// would be shorter than its header says.
    #[error("host file {} changed while it was read ({expected} bytes expected, {found} read)", .path.display())]
    Changed {
        /// The host path.
        path: PathBuf,
        /// Its size when it was opened.
        expected: u64,
        /// The bytes that could be read.
        found: u64,
    },
    /// A manifest entry lacks a field its kind needs, or has a path that is
    /// not absolute and normal.
    #[error("manifest entry {}: {problem}", .path.display())]
    Entry {
        /// The entry's path in the jail.
        path: PathBuf,
        /// What is wrong, for people.
        problem: String,
    },
    /// A value the format cannot express (a NUL byte in a shell script, a
    /// non-UTF-8 argument in a JSON or unit file).
    #[error("{what} cannot be written in a {format}: {why}")]
    Unrepresentable {
        /// The format's name.
        format: &'static str,
        /// The value, described for people (e.g. `argument "a\u{0}b"`).
        what: String,
        /// Why not.
        why: &'static str,
    },
    /// The format writes a directory and none was given (or the reverse).
    #[error("the {format} format writes {needs}")]
    Destination {
        /// The format's name.
        format: &'static str,
        /// What it needs, e.g. `a directory: give --output DIR`.
        needs: &'static str,
    },
    /// The output directory exists and is not empty (or is not a directory).
    #[error("output {} exists and is not an empty directory", .path.display())]
    OutputExists {
        /// The output path.
        path: PathBuf,
    },
    /// Writing the output failed.
    #[error("writing {}", .path.display())]
    Write {
        /// The output path (`-` for stdout), or a file inside the output directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `strict` was set and host files differ from the manifest; nothing
    /// was written. The report lists them.
    #[error("{} host file(s) differ from the manifest; nothing was written (strict)", .report.differs.len())]
    Differs {
        /// What the export found, [`Report::differs`] non-empty.
        report: Box<Report>,
    },
}

impl Error {
    /// An [`Error::Entry`] for `path`.
    pub(crate) fn entry(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Entry {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// An [`Error::Write`] for `path`.
    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Error::Write { path, source }
    }
}
