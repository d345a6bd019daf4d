//! [`verify`]: a root and the host compared with the manifest.
//!
//! Every entry is checked twice: in the root (is it there, with the
//! manifest's kind, mode, owner, content, target, device?) and on the host
//! (has the file the jail was built from changed since: an upgrade the jail
//! has not received?). Then the root is walked for files the manifest does
//! not list. Nothing is written.
//!
//! What a running program adds is not a problem (the rule is
//! [`crate::runtime`]'s):
//! - files the program creates (cause `created`) are only checked to be of
//!   their kind when present; their absence is not a problem;
//! - the content of the program's data (a file from the host in a
//!   directory the program writes in) is not compared, in the root or on
//!   the host; its kind, mode and owner are;
//! - the mount point of a bind is only checked to be a directory, mounted
//!   or not;
//! - not counted as extra, but as runtime files: sockets and fifos
//!   anywhere, whatever lies under the jail's mount points (`/proc`,
//!   `/sys`, `/dev/pts`, binds) or on another file system, and unlisted files in
//!   the directories the program writes in (sticky scratch directories
//!   such as `/tmp`, a `created` directory, the directory of a `created`
//!   entry).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use jailtrace_manifest::{Cause, Entry, EntryKind, Manifest, PathText};
use jailtrace_rootfs::{Host, Kind};
use nix::dir::{Dir, Type};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, Mode};
use serde::Serialize;

use crate::check::{self, Field, Side, Values};
use crate::runtime::{self, Runtime};
use crate::{parallel, Error};

/// What is wrong with one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// The manifest lists it; the root lacks it.
    Missing,
    /// The root has it, but not as the manifest says.
    ChangedInRoot(Differences),
    /// The host's file changed since the manifest was written.
    ChangedOnHost(Differences),
    /// The host no longer has it.
    GoneFromHost,
    /// The root has it; the manifest does not list it.
    Extra {
        /// What it is: `file`, `dir`, `symlink`, …
        kind: String,
    },
}

/// What differs between the manifest and the disk (the root or the host),
/// with the values on both sides. JSON: `"fields": ["mode"], "expected":
/// {"mode": "0644"}, "found": {"mode": "0600"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Differences {
    /// What differs.
    pub fields: Vec<Field>,
    /// The manifest's values of those fields.
    pub expected: Values,
    /// The values found on disk.
    pub found: Values,
}

impl Differences {
    fn new(entry: &Entry, fields: Vec<Field>, found: Values) -> Differences {
        Differences {
            expected: Values::recorded(entry).only(&fields),
            found: found.only(&fields),
            fields,
        }
    }
}

/// One finding of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The jail path.
    pub path: PathText,
    /// What is wrong.
    #[serde(flatten)]
    pub problem: Problem,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: usize,
    /// Files in the root's runtime places (see the module doc), not counted as extra.
    pub runtime_files: usize,
    /// Files of the program's data, whose content was not compared.
    pub data_files: usize,
    /// Everything found wrong, entries first (in manifest order), extras last.
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Verifies the root at `root` against `manifest` and `host`, hashing on
/// `jobs` threads (0: one per CPU).
pub fn verify(
    manifest: &Manifest,
    root: &Path,
    host: &Host,
    jobs: usize,
) -> Result<VerifyReport, Error> {
    let jobs = if jobs == 0 {
        parallel::default_jobs()
    } else {
        jobs
    };
    let view = Host::at(root);
    let state = Runtime::of(manifest);
    let checked = parallel::map(
        jobs,
        &manifest.entries,
        || Ok::<_, Error>(()),
        |(), entry| check_entry(entry, &view, host, manifest, &state),
    );
    let mut report = VerifyReport {
        entries: manifest.entries.len(),
        data_files: manifest.entries.iter().filter(|e| state.is_data(e)).count(),
        ..Default::default()
    };
    for found in checked {
        report.findings.extend(found?);
    }
    let mut walk = Walk::new(manifest, state);
    walk.dir(root, PathBuf::from("/"))?;
    report.runtime_files = walk.runtime_files;
    report.findings.extend(walk.extras);
    Ok(report)
}

/// The findings for one entry: root side, then host side.
fn check_entry(
    entry: &Entry,
    view: &Host,
    host: &Host,
    manifest: &Manifest,
    state: &Runtime,
) -> Result<Vec<Finding>, Error> {
    let p = entry.path.as_path();
    // The content of the program's data is the program's.
    let content = !state.is_data(entry);
    let compared = |mut fields: Vec<Field>| {
        if !content {
            fields.retain(|f| *f != Field::Content);
        }
        fields
    };
    let mut found = Vec::new();
    let finding = |problem| Finding {
        path: entry.path.clone(),
        problem,
    };
    match view.lstat(p)? {
        // The program makes its files (logs, pid files) when it runs;
        // a jail just built has none yet.
        None if entry.reason.cause == Cause::Created => {}
        None => found.push(finding(Problem::Missing)),
        Some(meta) => {
            let mut fields = compared(check::differences(entry, &meta, view, Side::Root)?);
            if state.is_bind_point(p) {
                // Mounted, it shows the host directory's mode and owner.
                fields.retain(|f| *f == Field::Kind);
            }
            let mut sha = None;
            if entry.kind == EntryKind::File
                && meta.kind == Kind::File
                && entry.reason.cause != Cause::Created
                && content
            {
                let (_, root_sha) = check::hash(view, p, true)?;
                if entry.sha256.as_deref().is_some_and(|want| want != root_sha)
                    && !fields.contains(&Field::Content)
                {
                    fields.push(Field::Content);
                }
                sha = Some(root_sha);
            }
            let mut linked = None;
            if let Some(to) = &entry.hardlink_to {
                let shared = view
                    .lstat(to.as_path())?
                    .is_some_and(|t| (t.dev, t.ino) == (meta.dev, meta.ino));
                if shared {
                    linked = Some(to.clone());
                } else if manifest.entry(to.as_path()).is_some() {
                    fields.push(Field::HardLink);
                }
            }
            if !fields.is_empty() {
                let values = Values::found(&meta, view, p, sha, linked)?;
                found.push(finding(Problem::ChangedInRoot(Differences::new(
                    entry, fields, values,
                ))));
            }
        }
    }
    if check::from_host(entry) {
        match host.lstat(p)? {
            None => found.push(finding(Problem::GoneFromHost)),
            Some(meta) => {
                let mut fields = compared(check::differences(entry, &meta, host, Side::Host)?);
                let mut sha = None;
                if entry.kind == EntryKind::File && meta.kind == Kind::File && content {
                    let (_, host_sha) = check::hash(host, p, false)?;
                    if entry.sha256.as_deref().is_some_and(|want| want != host_sha)
                        && !fields.contains(&Field::Content)
                    {
                        fields.push(Field::Content);
                    }
                    sha = Some(host_sha);
                }
                if !fields.is_empty() {
                    let values = Values::found(&meta, host, p, sha, None)?;
                    found.push(finding(Problem::ChangedOnHost(Differences::new(
                        entry, fields, values,
                    ))));
                }
            }
        }
    }
    Ok(found)
}

/// The walk of the root for extra files.
struct Walk {
    listed: HashSet<PathBuf>,
    /// Where the program writes at run time.
    state: Runtime,
    /// Mount points: not descended into.
    mounts: HashSet<PathBuf>,
    extras: Vec<Finding>,
    runtime_files: usize,
    root_dev: Option<u64>,
}

impl Walk {
    fn new(manifest: &Manifest, state: Runtime) -> Walk {
        Walk {
            listed: manifest
                .entries
                .iter()
                .map(|e| e.path.as_path().to_path_buf())
                .collect(),
            state,
            mounts: manifest
                .mounts
                .iter()
                .map(|m| m.path.as_path().to_path_buf())
                .collect(),
            extras: Vec::new(),
            runtime_files: 0,
            root_dev: None,
        }
    }

    /// Walks the directory at host path `at`, jail path `jail`.
    fn dir(&mut self, at: &Path, jail: PathBuf) -> Result<(), Error> {
        let walk_err = |source| Error::Walk {
            path: jail.clone(),
            source,
        };
        let fd = open(
            at,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(walk_err)?;
        self.walk_fd(fd, jail)
    }

    fn walk_fd(&mut self, fd: OwnedFd, jail: PathBuf) -> Result<(), Error> {
        let walk_err = |source| Error::Walk {
            path: jail.clone(),
            source,
        };
        let st = fstat(&fd).map_err(walk_err)?;
        let root_dev = *self.root_dev.get_or_insert(st.st_dev);
        if st.st_dev != root_dev {
            return Ok(());
        }
        let runtime_dir = self.state.is_dir(&jail);
        let mut dir = Dir::from_fd(fd).map_err(walk_err)?;
        let mut subdirs = Vec::new();
        for item in dir.iter() {
            let item = item.map_err(walk_err)?;
            let name = OsStr::from_bytes(item.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let path = jail.join(name);
            let is_dir = item.file_type() == Some(Type::Directory);
            if self.mounts.contains(&path) {
                continue;
            }
            // An unlisted directory is counted once, not file by file.
            if !self.listed.contains(&path) {
                let kind = item.file_type().map(Kind::from_dir_type);
                if runtime_dir || kind.is_some_and(runtime::is_runtime_kind) {
                    self.runtime_files += 1;
                } else {
                    self.extras.push(Finding {
                        path: path.as_path().into(),
                        problem: Problem::Extra {
                            kind: kind.map_or("unknown", check::kind_name).into(),
                        },
                    });
                }
                continue;
            }
            if is_dir {
                subdirs.push((name.to_os_string(), path));
            }
        }
        for (name, path) in subdirs {
            let child = nix::fcntl::openat(
                dir.as_fd(),
                name.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            );
            match child {
                Ok(child) => self.walk_fd(child, path)?,
                // Swapped for something else meanwhile: nothing to descend.
                Err(nix::errno::Errno::ENOTDIR | nix::errno::Errno::ELOOP) => {}
                Err(source) => return Err(Error::Walk { path, source }),
            }
        }
        Ok(())
    }
}
