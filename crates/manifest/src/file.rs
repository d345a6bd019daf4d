//! Reading a manifest file, replacing one atomically, and putting one
//! back as it was ([`Saved`]).
//!
//! [`Manifest::write_atomic`] never leaves a partly written manifest at the
//! target: it writes a temporary file in the target's directory, `fsync`s
//! it, renames it over the target (`rename(2)` is atomic within a
//! filesystem) and `fsync`s the directory so the rename survives a crash.
//! A reader at any moment sees the complete old file or the complete new
//! one. If any step before the rename fails, the old file is untouched and
//! the temporary file is removed.

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{Error, Manifest, WriteStep};

/// Name prefix of the temporary file, so a leftover from a crash is recognisable.
const TEMP_PREFIX: &str = ".jailtrace-manifest-";
/// Mode of a newly written manifest, before the process umask applies.
const FILE_MODE: u32 = 0o644;

impl Manifest {
    /// Reads and parses the manifest file at `path` (see [`Manifest::from_slice`]).
    ///
    /// I/O failures are [`Error::Read`]; content errors are wrapped in
    /// [`Error::Invalid`] (use [`Error::content`] to match on them). Both name `path`.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let bytes = fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_slice(&bytes).map_err(|source| Error::Invalid {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Writes [`Manifest::to_json`] to `path`, replacing any file there atomically.
    ///
    /// Steps: create a temporary file `.jailtrace-manifest-*.tmp` in the same
    /// directory (mode 0644 less the umask), write, `fsync`, `rename` over
    /// `path`, `fsync` the directory. On failure before or at the rename, the
    /// previous file at `path` is untouched and the temporary file is removed;
    /// a failure of the final directory `fsync` ([`WriteStep::SyncDirectory`])
    /// is still reported, though the new manifest is already in place. If
    /// `path` is a symlink, the link itself is replaced. Errors are
    /// [`Error::Write`] naming `path` and the step.
    pub fn write_atomic(&self, path: &Path) -> Result<(), Error> {
        write_atomic(path, self.to_json().as_bytes(), Durability::Synced)
    }
}

/// A manifest file's bytes as they were when saved, to put back byte for
/// byte when what a command wrote since must not stay (`jailtrace up`
/// writes the manifest after each program, and a later program may fail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    path: PathBuf,
    /// `None`: there was no file.
    bytes: Option<Vec<u8>>,
}

impl Saved {
    /// The file at `path` as it is now; a missing file is saved as missing.
    /// Its content is not parsed. Errors are [`Error::Read`].
    pub fn read(path: &Path) -> Result<Saved, Error> {
        let bytes = match fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Ok(Saved {
            path: path.to_owned(),
            bytes,
        })
    }

    /// Whether there was a file.
    pub fn existed(&self) -> bool {
        self.bytes.is_some()
    }

    /// Puts the saved bytes back, atomically as [`Manifest::write_atomic`]
    /// writes, unless the file holds them now (then it is not touched).
    /// Returns whether it wrote. A file that did not exist is left as it
    /// is now: this never removes a manifest.
    pub fn restore(&self) -> Result<bool, Error> {
        let Some(bytes) = &self.bytes else {
            return Ok(false);
        };
        if fs::read(&self.path).is_ok_and(|now| now == *bytes) {
            return Ok(false);
        }
        write_atomic(&self.path, bytes, Durability::Synced).map(|()| true)
    }
}

/// Whether [`write_atomic`] waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `fsync` the file before the rename and the directory after it: the
    /// new file survives a power loss.
    Synced,
    /// Rename only: readers and a crash of jailtrace still see the old file
    /// or the whole new one, but after a power loss the file system may
    /// have kept neither. Two `fsync`s less (about 2.5 ms on ext4).
    Renamed,
}

/// Writes `bytes` to `path` as [`Manifest::write_atomic`] does, without
/// the `fsync`s when `durability` is [`Durability::Renamed`].
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durability: Durability) -> Result<(), Error> {
    {
        let fail = |step: WriteStep| {
            move |source: io::Error| Error::Write {
                path: path.to_owned(),
                step,
                source,
            }
        };
        if path.file_name().is_none() {
            return Err(fail(WriteStep::NameTarget)(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path does not end in a file name",
            )));
        }
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };

        // Dropping `temp` (on any early return below) deletes the temporary file.
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(".tmp")
            .permissions(Permissions::from_mode(FILE_MODE))
            .tempfile_in(dir)
            .map_err(fail(WriteStep::CreateTemporary))?;
        temp.write_all(bytes)
            .map_err(fail(WriteStep::WriteTemporary))?;
        let synced = durability == Durability::Synced;
        if synced {
            temp.as_file()
                .sync_all()
                .map_err(fail(WriteStep::SyncTemporary))?;
        }
        // On failure the error owns the temporary file; dropping it removes it.
        temp.persist(path)
            .map_err(|e| fail(WriteStep::Rename)(e.error))?;
        if !synced {
            return Ok(());
        }
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail(WriteStep::SyncDirectory))
    }
}
