//! The one error type of `jailtrace-elf`.
//!
//! Every variant names its input: the file it came from, or `<memory>` when
//! the caller handed over bytes. Messages do not repeat their `source`, so a
//! caller printing the cause chain shows each fact once.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where the bytes being parsed came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file on the host, by the path the caller gave.
    File(PathBuf),
    /// A byte slice handed to a `*_from_bytes` / `parse` function.
    Memory,
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::File(path) => write!(f, "{}", path.display()),
            Input::Memory => f.write_str("<memory>"),
        }
    }
}

/// Errors of ELF, `#!`, `ld.so.cache` parsing and closure computation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened or read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The input does not start with the ELF magic.
    #[error("{input}: not an ELF file")]
    NotElf {
        /// The input.
        input: Input,
    },
    /// The input claims to be ELF but is truncated or inconsistent.
    #[error("{input}: malformed ELF: {reason}")]
    MalformedElf {
        /// The input.
        input: Input,
        /// What is wrong, in words.
        reason: String,
    },
    /// The input is not a usable `ld.so.cache`.
    #[error("{input}: malformed ld.so.cache: {reason}")]
    MalformedCache {
        /// The input.
        input: Input,
        /// What is wrong, in words.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
