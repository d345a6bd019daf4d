//! Reading a manifest file, and replacing one atomically.
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
use std::path::Path;

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
        write_atomic(path, self.to_json().as_bytes())
    }
}

/// Writes `bytes` to `path` as [`Manifest::write_atomic`] does.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
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
        temp.as_file()
            .sync_all()
            .map_err(fail(WriteStep::SyncTemporary))?;
        // On failure the error owns the temporary file; dropping it removes it.
        temp.persist(path)
            .map_err(|e| fail(WriteStep::Rename)(e.error))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail(WriteStep::SyncDirectory))
    }
}
