//! Writing a jail manifest in formats other tools run: a shell script that
//! builds the root (`sh`), an archive of it (`tar`), a Docker build context
//! (`dockerfile`), a bubblewrap launcher (`bwrap`), a systemd drop-in
//! (`systemd`) and an OCI image layout (`oci`). `docs/export.md` describes
//! each format for users.
//!
//! The content comes from the **host** ([`Host::system`], or a fake tree in
//! tests) at each entry's path; modes and owners come from the manifest
//! (whose mode may have had setuid stripped); synthesized files
//! (`/etc/passwd`, `/etc/group`) get exactly the manifest's content; entries
//! the program created at run time are exported only when they are
//! directories.
//!
//! Guarantees:
//! - **Checked content.** Formats that read host files (`tar`,
//!   `dockerfile`, `oci`, and `bwrap`, which binds them) hash each file as
//!   they read it and list in [`Report::differs`] every one whose SHA-256
//!   differs from the manifest's. With [`Export::strict`] any difference is
//!   [`Error::Differs`]. The `sh` script checks at its own run time
//!   instead. A missing host file is [`Error::Missing`].
//! - **All or nothing.** The whole manifest is checked before anything is
//!   written, and output goes to a temporary file or directory next to the
//!   target that is renamed into place only when complete (and, with
//!   `strict`, only when nothing differs). On any error nothing is left at
//!   the output path, and nothing is written to a writer.
//! - **Lossless paths.** Shell formats carry non-UTF-8 paths byte for byte;
//!   formats that are text by definition (JSON, unit files, Dockerfiles)
//!   refuse what they cannot hold rather than mangle it.

mod bwrap;
mod command;
mod dockerfile;
mod error;
mod oci;
mod plan;
mod sh;
mod shell;
mod source;
mod systemd;
mod tar;

use std::fmt;
use std::fs::{self, Permissions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use jailtrace_manifest::Manifest;
pub use jailtrace_rootfs::Host;

pub use command::{is_session_var, program_env, SESSION_PREFIXES, SESSION_VARS};
pub use error::Error;
pub use oci::{architecture, REF_NAME};
pub use source::{Difference, Report};

/// The formats `jailtrace export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A POSIX sh script that builds the root from the host's files.
    Sh,
    /// A tar archive of the root.
    Tar,
    /// A directory with `Dockerfile` (FROM scratch) and `rootfs.tar`.
    Dockerfile,
    /// A sh script running the program under bubblewrap.
    Bwrap,
    /// A systemd service drop-in with `RootDirectory=`.
    Systemd,
    /// An OCI image layout directory.
    Oci,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 6] = [
        Format::Sh,
        Format::Tar,
        Format::Dockerfile,
        Format::Bwrap,
        Format::Systemd,
        Format::Oci,
    ];

    /// What the output is, for people: `sh script`, `OCI image layout`, ….
    pub fn describe(self) -> &'static str {
        match self {
            Format::Sh => "sh script",
            Format::Tar => "tar archive",
            Format::Dockerfile => "Dockerfile build context",
            Format::Bwrap => "bwrap script",
            Format::Systemd => "systemd drop-in",
            Format::Oci => "OCI image layout",
        }
    }

    /// True for the formats that write a directory (`dockerfile`, `oci`);
    /// the others write one file (or a writer such as stdout).
    pub fn writes_directory(self) -> bool {
        matches!(self, Format::Dockerfile | Format::Oci)
    }

    /// Mode of the file written by [`Export::to_file`]: 0755 for scripts,
    /// 0644 otherwise.
    fn file_mode(self) -> u32 {
        match self {
            Format::Sh | Format::Bwrap => 0o755,
            _ => 0o644,
        }
    }
}

impl fmt::Display for Format {
    /// The name on the command line: `sh`, `tar`, `dockerfile`, ….
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Sh => "sh",
            Format::Tar => "tar",
            Format::Dockerfile => "dockerfile",
            Format::Bwrap => "bwrap",
            Format::Systemd => "systemd",
            Format::Oci => "oci",
        })
    }
}

/// One manifest to export, and how.
#[derive(Debug, Clone)]
pub struct Export<'m> {
    manifest: &'m Manifest,
    host: Host,
    root: Option<PathBuf>,
    strict: bool,
}

impl<'m> Export<'m> {
    /// Exports `manifest` from the real host, not strict, the systemd root
    /// being the manifest's.
    pub fn new(manifest: &'m Manifest) -> Self {
        Export {
            manifest,
            host: Host::system(),
            root: None,
            strict: false,
        }
    }

    /// Reads files from `host` instead of `/`.
    pub fn host(mut self, host: Host) -> Self {
        self.host = host;
        self
    }

    /// The jail root the `systemd` drop-in runs in (default: the manifest's).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Whether a host file differing from the manifest fails the export
    /// (and, for `sh`, whether the script fails by default).
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Writes a one-file format to `out` (stdout, say). Everything is
    /// produced first (a `tar` goes through an anonymous temporary file), so
    /// `out` gets nothing when the export fails.
    pub fn to_writer(&self, format: Format, out: &mut dyn Write) -> Result<Report, Error> {
        let name = Path::new("-");
        if format.writes_directory() {
            return Err(self.needs_directory(format));
        }
        if format == Format::Tar {
            let temp = tempfile::tempfile().map_err(Error::write(name))?;
            let (mut temp, report) = self.tar(temp, name)?;
            temp.rewind()
                .and_then(|()| io::copy(&mut temp, out))
                .and_then(|_| out.flush())
                .map_err(Error::write(name))?;
            return Ok(report);
        }
        let (bytes, report) = self.text(format)?;
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .map_err(Error::write(name))?;
        Ok(report)
    }

    /// Writes a one-file format to `path`: a temporary file in the same
    /// directory, renamed over `path` when complete (mode 0755 for the
    /// scripts, 0644 otherwise).
    pub fn to_file(&self, format: Format, path: &Path) -> Result<Report, Error> {
        if format.writes_directory() {
            return Err(self.needs_directory(format));
        }
        let dir = parent(path);
        let mut temp = tempfile::Builder::new()
            .prefix(".jailtrace-export-")
            .tempfile_in(dir)
            .map_err(Error::write(path))?;
        let report = if format == Format::Tar {
            let file = temp.as_file_mut();
            let (_, report) = self.tar(file, path)?;
            report
        } else {
            let (bytes, report) = self.text(format)?;
            temp.write_all(&bytes).map_err(Error::write(path))?;
            report
        };
        temp.as_file()
            .set_permissions(Permissions::from_mode(format.file_mode()))
            .and_then(|()| temp.as_file().sync_all())
            .map_err(Error::write(path))?;
        temp.persist(path).map_err(|e| Error::Write {
            path: path.to_owned(),
            source: e.error,
        })?;
        Ok(report)
    }

    /// Writes a directory format into `dir`, which must not exist or be an
    /// empty directory: a temporary directory next to it is filled, then
    /// renamed to `dir` (mode 0755).
    pub fn to_dir(&self, format: Format, dir: &Path) -> Result<Report, Error> {
        if !format.writes_directory() {
            return Err(Error::Destination {
                format: format.describe(),
                needs: "one file: give --output FILE, or none for stdout",
            });
        }
        if fs::symlink_metadata(dir).is_ok() && !is_empty_dir(dir) {
            return Err(Error::OutputExists {
                path: dir.to_owned(),
            });
        }
        let items = plan::items(self.manifest)?;
        let temp = tempfile::Builder::new()
            .prefix(".jailtrace-export-")
            .tempdir_in(parent(dir))
            .map_err(Error::write(dir))?;
        let mut source = source::Source::new(&self.host);
        match format {
            Format::Dockerfile => {
                dockerfile::write(self.manifest, &items, &mut source, temp.path())?
            }
            _ => oci::write(self.manifest, &items, &mut source, temp.path())?,
        }
        let report = self.verdict(source.report)?;
        fs::set_permissions(temp.path(), Permissions::from_mode(0o755))
            .map_err(Error::write(dir))?;
        let kept = temp.keep();
        fs::rename(&kept, dir).map_err(|source| {
            let _ = fs::remove_dir_all(&kept);
            Error::Write {
                path: dir.to_owned(),
                source,
            }
        })?;
        Ok(report)
    }

    /// The `tar` archive written to `out`, checked.
    fn tar<W: Write>(&self, out: W, name: &Path) -> Result<(W, Report), Error> {
        let items = plan::items(self.manifest)?;
        let mut source = source::Source::new(&self.host);
        let out = tar::write(&items, &mut source, out, name)?;
        Ok((out, self.verdict(source.report)?))
    }

    /// The text formats (sh, bwrap, systemd), checked.
    fn text(&self, format: Format) -> Result<(Vec<u8>, Report), Error> {
        let items = plan::items(self.manifest)?;
        let mut source = source::Source::new(&self.host);
        let bytes = match format {
            Format::Sh => {
                let (bytes, report) = sh::script(self.manifest, &items, &self.host, self.strict)?;
                source.report = report;
                bytes
            }
            Format::Bwrap => bwrap::script(self.manifest, &items, &mut source)?,
            Format::Systemd => {
                let root = self
                    .root
                    .as_deref()
                    .unwrap_or_else(|| self.manifest.root.as_path());
                systemd::dropin(self.manifest, root, &mut source.report)?
            }
            // Invariant: callers route these elsewhere.
            Format::Tar | Format::Dockerfile | Format::Oci => {
                return Err(self.needs_directory(format));
            }
        };
        Ok((bytes, self.verdict(source.report)?))
    }

    /// `report`, or [`Error::Differs`] when strict and something differs.
    fn verdict(&self, report: Report) -> Result<Report, Error> {
        if self.strict && !report.differs.is_empty() {
            return Err(Error::Differs {
                report: Box::new(report),
            });
        }
        Ok(report)
    }

    fn needs_directory(&self, format: Format) -> Error {
        Error::Destination {
            format: format.describe(),
            needs: "a directory: give --output DIR",
        }
    }
}

/// The directory `path` is in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// True when `dir` is a directory (not a symlink to one) with no entries.
fn is_empty_dir(dir: &Path) -> bool {
    fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir())
        && fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use jailtrace_manifest::{Cause, Command, Entry, EntryKind, Mode, PathText, Reason};

    use super::*;
    use crate::source::sha256_hex;

    /// A manifest with no entries, running `/bin/true` in `/`.
    pub(crate) fn manifest() -> Manifest {
        Manifest {
            schema_version: jailtrace_manifest::SCHEMA_VERSION,
            tool_version: "0.1.0".into(),
            created_unix: 1_700_000_000,
            programs: vec![jailtrace_manifest::Program {
                name: "true".into(),
                command: Command {
                    argv: vec![PathText::from("/bin/true")],
                    executable: PathText::from("/bin/true"),
                    cwd: PathText::from("/"),
                    env: vec![],
                    env_redacted: None,
                    user: None,
                    group: None,
                    supplementary_groups: Vec::new(),
                    umask: None,
                    ready: Vec::new(),
                    exercises: Vec::new(),
                    with: Vec::new(),
                    before: Vec::new(),
                },
                unit: None,
            }],
            jail_file: None,
            root: PathText::from("/tmp/jail"),
            runs: vec![],
            entries: vec![],
            absent: vec![],
            denied: vec![],
            mounts: vec![],
            sockets: vec![],
            rootless: None,
            accounts: Vec::new(),
        }
    }

    /// A bind of the host's `host` at `jail` (`run --bind`).
    pub(crate) fn bind(host: &[u8], jail: &str, read_only: bool) -> jailtrace_manifest::Mount {
        jailtrace_manifest::Mount {
            fstype: "bind".into(),
            path: PathText::from(jail),
            options: if read_only { vec!["ro".into()] } else { vec![] },
            source: Some(PathText::from(host.to_vec())),
            reason: Reason::new(Cause::Requested, 0),
        }
    }

    /// An entry owned by 0:0, placed as `accessed` in run 1.
    pub(crate) fn entry(path: impl Into<PathText>, kind: EntryKind, mode: u32) -> Entry {
        Entry::new(
            path.into(),
            kind,
            Mode::new(mode).expect("test modes are valid"),
            0,
            0,
            Reason::new(Cause::Accessed, 1),
        )
    }

    /// A host tree with `/etc/conf`, and a manifest listing it with `sha`.
    fn fixture(sha: &str) -> (tempfile::TempDir, Manifest) {
        let host = tempfile::tempdir().unwrap();
        fs::create_dir(host.path().join("etc")).unwrap();
        fs::write(host.path().join("etc/conf"), b"on\n").unwrap();
        let mut m = manifest();
        let mut conf = entry("/etc/conf", EntryKind::File, 0o644);
        conf.sha256 = Some(sha.to_owned());
        m.entries = vec![entry("/etc", EntryKind::Dir, 0o755), conf];
        (host, m)
    }

    #[test]
    fn strict_writes_nothing_when_a_file_differs() {
        let (host, m) = fixture(&sha256_hex(b"off\n"));
        let out = tempfile::tempdir().unwrap();
        for format in Format::ALL {
            let export = Export::new(&m).host(Host::at(host.path())).strict(true);
            let target = out.path().join(format.to_string());
            let result = if format.writes_directory() {
                export.to_dir(format, &target)
            } else {
                export.to_file(format, &target)
            };
            match format {
                // Nothing read at export time: sh checks when it runs, systemd never reads.
                Format::Sh | Format::Systemd => {
                    result.unwrap();
                    fs::remove_file(&target).unwrap();
                }
                _ => {
                    let err = result.unwrap_err();
                    let Error::Differs { report } = &err else {
                        panic!("{format}: {err:?}")
                    };
                    assert_eq!(report.differs.len(), 1);
                    let mut stdout = Vec::new();
                    if !format.writes_directory() {
                        assert!(export.to_writer(format, &mut stdout).is_err());
                        assert!(stdout.is_empty());
                    }
                }
            }
        }
        // No output and no temporary file was left behind.
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);
    }

    #[test]
    fn without_strict_differences_are_reported() {
        let (host, m) = fixture(&sha256_hex(b"off\n"));
        let out = tempfile::tempdir().unwrap();
        let export = Export::new(&m).host(Host::at(host.path()));
        let report = export
            .to_file(Format::Tar, &out.path().join("a.tar"))
            .unwrap();
        assert_eq!(report.differs.len(), 1);
        assert_eq!(report.differs[0].host, host.path().join("etc/conf"));
        assert_eq!(report.files, 1);
        let mode = fs::metadata(out.path().join("a.tar"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        export
            .to_file(Format::Bwrap, &out.path().join("run"))
            .unwrap();
        let mode = fs::metadata(out.path().join("run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn directories_must_be_new_or_empty() {
        let (host, m) = fixture(&sha256_hex(b"on\n"));
        let out = tempfile::tempdir().unwrap();
        let export = Export::new(&m).host(Host::at(host.path()));
        // An empty directory is replaced; the result has the files.
        let empty = out.path().join("empty");
        fs::create_dir(&empty).unwrap();
        export.to_dir(Format::Dockerfile, &empty).unwrap();
        let mut names: Vec<_> = fs::read_dir(&empty)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["Dockerfile", "rootfs.tar"]);
        assert_eq!(
            fs::metadata(&empty).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // Now it is not empty: refused, and left as it was.
        let err = export.to_dir(Format::Oci, &empty).unwrap_err();
        assert!(matches!(err, Error::OutputExists { .. }), "{err:?}");
        assert!(!empty.join("index.json").exists());
        // A file is not a directory.
        let file = out.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(matches!(
            export.to_dir(Format::Oci, &file),
            Err(Error::OutputExists { .. })
        ));
        // Formats and destinations must match.
        assert!(matches!(
            export.to_file(Format::Oci, &out.path().join("x")),
            Err(Error::Destination { .. })
        ));
        assert!(matches!(
            export.to_dir(Format::Tar, &out.path().join("y")),
            Err(Error::Destination { .. })
        ));
        assert!(!out.path().join("x").exists() && !out.path().join("y").exists());
    }

    #[test]
    fn a_missing_host_file_fails_and_leaves_nothing() {
        let (host, m) = fixture(&sha256_hex(b"on\n"));
        fs::remove_file(host.path().join("etc/conf")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let export = Export::new(&m).host(Host::at(host.path()));
        let err = export
            .to_dir(Format::Oci, &out.path().join("img"))
            .unwrap_err();
        assert!(matches!(err, Error::Missing { .. }), "{err:?}");
        let err = export
            .to_file(Format::Tar, &out.path().join("a.tar"))
            .unwrap_err();
        assert!(err.to_string().contains("etc/conf is missing"), "{err}");
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);
    }
}
