//! Reading the host's files for an export, hashing them as they are read,
//! and the [`Report`] of what was read.
//!
//! Guarantees:
//! - A file is read through [`jailtrace_rootfs::Host::open_file`]: confined
//!   to the host base, the last component never followed, and nothing but a
//!   regular file is opened.
//! - Exactly the size the file had when opened is read, never more; if it
//!   shrank meanwhile the export fails with [`Error::Changed`] rather than
//!   writing an entry shorter than its header.
//! - The SHA-256 of the bytes actually read is compared with the manifest's:
//!   a difference is recorded in [`Report::differs`], never silently
//!   shipped. Whether that is an error is the caller's choice (`strict`).
//! - A missing host file is [`Error::Missing`], naming it.

use std::fs::File;
use std::io::{self, Read, Take};
use std::path::{Path, PathBuf};

use jailtrace_rootfs::Host;
use sha2::{Digest, Sha256};

use crate::plan::{Item, What};
use crate::Error;

/// What an export read and found; returned with every successful export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Host files whose content differs from the manifest's SHA-256, in
    /// manifest order. With `strict` a non-empty list is [`Error::Differs`].
    pub differs: Vec<Difference>,
    /// Things people should know that are not errors (e.g. an environment
    /// variable a format cannot express, left out), one sentence each.
    pub notes: Vec<String>,
    /// Regular files whose content the output holds or binds (copied,
    /// synthesized; not hard links).
    pub files: u64,
    /// Bytes of that content.
    pub bytes: u64,
}

/// A host file that is not what the manifest recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The entry's path in the jail.
    pub jail: PathBuf,
    /// The host file read.
    pub host: PathBuf,
    /// The SHA-256 the manifest records (lowercase hex).
    pub manifest_sha256: String,
    /// The SHA-256 of what was read from the host.
    pub host_sha256: String,
}

/// The host's files, read for one export; collects the [`Report`].
#[derive(Debug)]
pub(crate) struct Source<'h> {
    host: &'h Host,
    /// What was read so far.
    pub report: Report,
}

/// A host file opened for an item: read it to the end, then hand it to
/// [`Source::finish`].
#[derive(Debug)]
pub(crate) struct Opened {
    file: Take<File>,
    hasher: Sha256,
    read: u64,
    /// The first read error, kept so a caller whose writer failed can tell
    /// a read failure from a write failure.
    read_error: Option<io::ErrorKind>,
    /// The size when opened: exactly this many bytes are read.
    pub size: u64,
    /// Modification time in seconds since the epoch (0 if before it).
    pub mtime: u64,
    /// The host path, for messages.
    pub host_path: PathBuf,
}

impl Read for Opened {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.file.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.read_error.get_or_insert(e.kind());
                Err(e)
            }
        }
    }
}

impl Opened {
    /// The error for an I/O failure `e` while this file was being copied to
    /// `output`: a read error names the host file, anything else the output.
    pub fn io_error(&self, e: io::Error, output: &Path) -> Error {
        if self.read_error.is_some() {
            Error::Read {
                path: self.host_path.clone(),
                source: e,
            }
        } else {
            Error::Write {
                path: output.to_owned(),
                source: e,
            }
        }
    }
}

impl<'h> Source<'h> {
    /// A source reading from `host`, with an empty report.
    pub fn new(host: &'h Host) -> Self {
        Source {
            host,
            report: Report::default(),
        }
    }

    /// The host path of a jail path.
    pub fn host_path(&self, jail: &Path) -> PathBuf {
        self.host.path_of(jail)
    }

    /// Opens the host file of a copied item.
    pub fn open(&self, item: &Item<'_>) -> Result<Opened, Error> {
        let (file, meta) = self.host.open_file(&item.path).map_err(|source| {
            if source.raw_os_error().is_some_and(is_not_found) {
                Error::Missing {
                    host: self.host_path(&item.path),
                    jail: item.path.clone(),
                }
            } else {
                Error::Host {
                    jail: item.path.clone(),
                    source,
                }
            }
        })?;
        Ok(Opened {
            file: file.take(meta.size),
            hasher: Sha256::new(),
            read: 0,
            read_error: None,
            size: meta.size,
            mtime: u64::try_from(meta.mtime.0).unwrap_or(0),
            host_path: self.host_path(&item.path),
        })
    }

    /// Checks that all of `opened` was read and compares its hash with the
    /// item's; counts it in the report.
    pub fn finish(&mut self, item: &Item<'_>, opened: Opened) -> Result<(), Error> {
        if opened.read != opened.size {
            return Err(Error::Changed {
                path: opened.host_path,
                expected: opened.size,
                found: opened.read,
            });
        }
        let found = format!("{:x}", opened.hasher.finalize());
        self.report.files += 1;
        self.report.bytes += opened.read;
        match item.what {
            What::Copied {
                sha256: Some(recorded),
            } if recorded != found => {
                self.report.differs.push(Difference {
                    jail: item.path.clone(),
                    host: opened.host_path,
                    manifest_sha256: recorded.to_owned(),
                    host_sha256: found,
                });
            }
            What::Copied { sha256: None } => self.report.notes.push(format!(
                "{} has no sha256 in the manifest; it was not checked",
                item.path.display()
            )),
            _ => {}
        }
        Ok(())
    }

    /// Reads the whole host file of a copied item only to check it (for
    /// formats that bind the host file rather than copy it).
    pub fn check(&mut self, item: &Item<'_>) -> Result<(), Error> {
        let mut opened = self.open(item)?;
        io::copy(&mut opened, &mut io::sink()).map_err(|source| Error::Read {
            path: opened.host_path.clone(),
            source,
        })?;
        self.finish(item, opened)
    }

    /// Counts synthesized content in the report.
    pub fn count(&mut self, content: &[u8]) {
        self.report.files += 1;
        self.report.bytes += content.len() as u64;
    }
}

/// ENOENT and ENOTDIR: the file, or a directory on its way, is not there.
fn is_not_found(errno: i32) -> bool {
    let kind = io::Error::from_raw_os_error(errno).kind();
    kind == io::ErrorKind::NotFound || kind == io::ErrorKind::NotADirectory
}

/// SHA-256 of `bytes`, lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::plan::items;
    use crate::tests::{entry, manifest};
    use jailtrace_manifest::EntryKind;

    fn file_entry(path: &str, content: &[u8]) -> jailtrace_manifest::Entry {
        let mut e = entry(path, EntryKind::File, 0o644);
        e.sha256 = Some(sha256_hex(content));
        e.size = Some(content.len() as u64);
        e
    }

    #[test]
    fn reads_hash_and_report_differences() {
        let host = tempfile::tempdir().unwrap();
        fs::create_dir(host.path().join("etc")).unwrap();
        fs::write(host.path().join("etc/same"), b"same\n").unwrap();
        fs::write(host.path().join("etc/changed"), b"new\n").unwrap();
        let mut m = manifest();
        m.entries = vec![
            entry("/etc", EntryKind::Dir, 0o755),
            file_entry("/etc/same", b"same\n"),
            file_entry("/etc/changed", b"old\n"),
        ];
        let items = items(&m).unwrap();
        let host = Host::at(host.path());
        let mut source = Source::new(&host);
        for item in &items[1..] {
            let mut opened = source.open(item).unwrap();
            let mut content = Vec::new();
            opened.read_to_end(&mut content).unwrap();
            assert_eq!(opened.size, content.len() as u64);
            source.finish(item, opened).unwrap();
        }
        let report = source.report;
        assert_eq!((report.files, report.bytes), (2, 9));
        assert_eq!(report.differs.len(), 1, "{report:?}");
        let d = &report.differs[0];
        assert_eq!(d.jail, Path::new("/etc/changed"));
        assert_eq!(d.host, host.base().join("etc/changed"));
        assert_eq!(d.manifest_sha256, sha256_hex(b"old\n"));
        assert_eq!(d.host_sha256, sha256_hex(b"new\n"));
    }

    #[test]
    fn missing_and_non_regular_files_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::create_dir(dir.path().join("etc/dir")).unwrap();
        let mut m = manifest();
        m.entries = vec![
            entry("/etc", EntryKind::Dir, 0o755),
            file_entry("/etc/gone", b""),
            file_entry("/etc/dir", b""),
        ];
        let items = items(&m).unwrap();
        let host = Host::at(dir.path());
        let source = Source::new(&host);
        let err = source.open(&items[1]).unwrap_err();
        assert!(matches!(err, Error::Missing { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "host file {} is missing (the manifest lists it as /etc/gone)",
                dir.path().join("etc/gone").display()
            )
        );
        let err = source.open(&items[2]).unwrap_err();
        assert!(matches!(err, Error::Host { .. }), "{err:?}");
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            chain.contains("is a directory, not a regular file"),
            "{chain}"
        );
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
