//! The host: the tree files are copied from.
//!
//! [`Host::system`] is `/`; [`Host::at`] is a fake host tree (tests). A jail
//! path `/a/b` names `base/a/b` on the host, and every lookup is confined to
//! `base` exactly as lookups in a root are (see `resolve`): a host symlink
//! never leads out of `base`. For `Host::system()` this is just the normal
//! lookup. The host is only read, never written.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode};

use crate::meta::{self, DirEntry};
use crate::resolve::{self, Strategy};
use crate::{owners, Error, Kind, Meta};

/// Where files are copied from.
#[derive(Debug, Clone)]
pub struct Host {
    base: PathBuf,
    /// Owners come from the installed [`crate::owners::OwnerSource`] when
    /// rootless (the real system only: a host based at a jail root is read
    /// as the namespace sees it, which is what the namespace could give).
    host_owners: bool,
    /// `base`, opened (`O_PATH`) at the first lookup and kept, shared by
    /// the clones: every lookup starts there.
    base_fd: Arc<OnceLock<OwnedFd>>,
    /// What lookups of the real system found lately, shared by the clones
    /// (`None` for a tree that jailtrace may be writing, such as a root
    /// read as a host).
    seen: Option<Arc<Mutex<Seen>>>,
}

/// What [`Host::system`] remembers of the paths every plan walks through
/// (a Python discovery looks up `/usr` and `/usr/lib` hundreds of times,
/// and glibc asks for the same absent locale names in every run):
/// directories' and symlinks' metadata, symlinks' targets and absent
/// paths, keyed by the jail path's bytes. The system is not jailtrace's to
/// change, and a plan made from a look a moment ago is as good as one made
/// from the next. What was seen is forgotten after [`SEEN_FOR`], so a long
/// session (a server exercised for minutes) sees what the host gained
/// meanwhile. Regular files are looked up anew: their size and content
/// matter.
#[derive(Debug)]
struct Seen {
    meta: HashMap<OsString, Option<Meta>>,
    targets: HashMap<OsString, PathBuf>,
    since: Instant,
}

impl Default for Seen {
    fn default() -> Seen {
        Seen {
            meta: HashMap::new(),
            targets: HashMap::new(),
            since: Instant::now(),
        }
    }
}

/// How long [`Seen`] keeps what it saw.
const SEEN_FOR: Duration = Duration::from_secs(10);

/// How many paths [`Seen`] keeps before it stops adding: a bound on memory
/// for a program that walks the whole file system.
const SEEN_MAX: usize = 1 << 16;

impl PartialEq for Host {
    fn eq(&self, other: &Host) -> bool {
        (&self.base, self.host_owners) == (&other.base, other.host_owners)
    }
}

impl Eq for Host {}

impl Host {
    /// The real system: jail path `/x` is host path `/x`.
    pub fn system() -> Host {
        Host {
            base: PathBuf::from("/"),
            host_owners: true,
            base_fd: Arc::default(),
            seen: Some(Arc::default()),
        }
    }

    /// A host tree rooted at `dir`: jail path `/x` is `dir/x`.
    pub fn at(dir: impl Into<PathBuf>) -> Host {
        Host {
            base: dir.into(),
            host_owners: false,
            base_fd: Arc::default(),
            seen: None,
        }
    }

    /// The directory jail paths are taken from.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The host path of a jail path, for messages (`base` joined with its
    /// components; no symlink resolved).
    pub fn path_of(&self, jail: &Path) -> PathBuf {
        let mut out = self.base.clone();
        for c in resolve::components(jail) {
            out.push(c);
        }
        out
    }

    fn err(&self, op: &'static str, jail: &Path, e: Errno) -> Error {
        Error::Host {
            op,
            path: self.path_of(jail),
            source: e.into(),
        }
    }

    fn base_fd(&self, op: &'static str, jail: &Path) -> Result<BorrowedFd<'_>, Error> {
        if let Some(fd) = self.base_fd.get() {
            return Ok(fd.as_fd());
        }
        let fd = open(
            &self.base,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err(op, jail, e))?;
        Ok(self.base_fd.get_or_init(|| fd).as_fd())
    }

    /// When owners come from an [`crate::owners::OwnerSource`], asks it
    /// for everything on the way to each of `jail` at once (plans are
    /// about to `lstat` each of those): a caller that knows several paths
    /// it will place gives them together, for one round trip.
    pub fn prefetch_owners(&self, jail: &[&Path]) {
        if self.host_owners {
            let paths: Vec<PathBuf> = jail.iter().map(|p| self.path_of(p)).collect();
            let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            owners::prefetch(&paths);
        }
    }

    /// Metadata of `jail` on the host, last component not followed;
    /// `Ok(None)` when it does not exist (`ENOENT`, `ENOTDIR`).
    pub fn lstat(&self, jail: &Path) -> Result<Option<Meta>, Error> {
        if let Some(meta) = self.remembered(|seen| seen.meta.get(jail.as_os_str()).copied()) {
            return Ok(meta);
        }
        let base = self.base_fd("lstat", jail)?;
        let found = resolve::resolve(base, jail, false, Strategy::detect())
            .and_then(|fd| self.meta_of(jail, &fd));
        match found {
            Ok(meta) => {
                if matches!(meta.kind, Kind::Dir | Kind::Symlink) {
                    self.remember(|seen| seen.meta.insert(jail.as_os_str().to_owned(), Some(meta)));
                }
                Ok(Some(meta))
            }
            Err(Errno::ENOENT | Errno::ENOTDIR) => {
                self.remember(|seen| seen.meta.insert(jail.as_os_str().to_owned(), None));
                Ok(None)
            }
            Err(e) => Err(self.err("lstat", jail, e)),
        }
    }

    /// The target of the symlink at `jail` on the host.
    pub fn readlink(&self, jail: &Path) -> Result<PathBuf, Error> {
        if let Some(target) = self.remembered(|seen| seen.targets.get(jail.as_os_str()).cloned()) {
            return Ok(target);
        }
        let base = self.base_fd("readlink", jail)?;
        let target = resolve::resolve(base, jail, false, Strategy::detect())
            .and_then(|fd| readlinkat(&fd, ""))
            .map(PathBuf::from)
            .map_err(|e| self.err("readlink", jail, e))?;
        self.remember(|seen| {
            seen.targets
                .insert(jail.as_os_str().to_owned(), target.clone())
        });
        Ok(target)
    }

    /// The entries of the directory `dir` on the host (without `.` and
    /// `..`), in the order the file system lists them.
    pub fn read_dir(&self, dir: &Path) -> Result<Vec<DirEntry>, Error> {
        let base = self.base_fd("read", dir)?;
        resolve::open_dir_readable(base, dir, Strategy::detect())
            .and_then(meta::dir_entries)
            .map_err(|e| self.err("read", dir, e))
    }

    /// The targets of the symlinks `names` in the directory `dir` on the
    /// host, in order; `None` for a name that is no symlink (any more).
    /// The directory is looked up once, where [`Host::readlink`] of each
    /// would look up its whole path.
    pub fn readlinks_in(&self, dir: &Path, names: &[&OsStr]) -> Vec<Option<PathBuf>> {
        let found = self
            .base_fd("readlink", dir)
            .ok()
            .and_then(|base| resolve::resolve_dir(base, dir, Strategy::detect()).ok());
        let Some(dir) = found else {
            return vec![None; names.len()];
        };
        names
            .iter()
            .map(|name| readlinkat(&dir, *name).ok().map(PathBuf::from))
            .collect()
    }

    /// Asks what the system host remembers (see [`Seen`]).
    fn remembered<T>(&self, get: impl FnOnce(&Seen) -> Option<T>) -> Option<T> {
        let mut seen = self.seen.as_ref()?.lock().ok()?;
        if seen.since.elapsed() > SEEN_FOR {
            *seen = Seen::default();
        }
        get(&seen)
    }

    /// Adds to what the system host remembers, up to [`SEEN_MAX`] paths.
    fn remember<T>(&self, add: impl FnOnce(&mut Seen) -> T) {
        if let Some(Ok(mut seen)) = self.seen.as_ref().map(|s| s.lock()) {
            if seen.meta.len() + seen.targets.len() < SEEN_MAX {
                add(&mut seen);
            }
        }
    }

    /// Opens the regular file at `jail` for reading. The last component must
    /// not be a symlink (the planner resolved it already); anything but a
    /// regular file is [`Error::NotRegular`], checked before it is opened for
    /// reading so a fifo or device is never opened.
    pub fn open_file(&self, jail: &Path) -> Result<(File, Meta), Error> {
        let base = self.base_fd("open", jail)?;
        let Some((parent, name)) = resolve::split_last(jail) else {
            return Err(Error::NoName {
                path: jail.to_path_buf(),
            });
        };
        let dir = resolve::resolve_dir(base, &parent, Strategy::detect())
            .map_err(|e| self.err("open", jail, e))?;
        let st = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| self.err("lstat", jail, e))?;
        let not_regular = |st: &nix::sys::stat::FileStat| Error::NotRegular {
            path: self.path_of(jail),
            kind: Kind::from_mode(st.st_mode),
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(not_regular(&st));
        }
        // O_NONBLOCK|O_NOCTTY: should the entry be swapped for a fifo or a
        // tty after the check, opening it neither blocks nor adopts it.
        let fd = openat(
            &dir,
            name,
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err("open", jail, e))?;
        let st = fstat(&fd).map_err(|e| self.err("fstat", jail, e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(not_regular(&st));
        }
        let mut meta = Meta::from_stat(&st);
        if self.host_owners {
            owners::host_owner(&self.path_of(jail), &st, &mut meta.uid, &mut meta.gid)
                .map_err(|e| self.err("owner of", jail, e))?;
        }
        Ok((File::from(fd), meta))
    }

    /// An `O_PATH` descriptor of `jail` on the host, the last component not
    /// followed (what a bind mount of a device node is made from).
    pub(crate) fn open_path(&self, jail: &Path) -> Result<OwnedFd, Error> {
        let base = self.base_fd("open", jail)?;
        resolve::resolve(base, jail, false, Strategy::detect())
            .map_err(|e| self.err("open", jail, e))
    }

    /// `fstat` of `fd` (the host's `jail`), with the host's owners when
    /// rootless.
    fn meta_of(&self, jail: &Path, fd: &OwnedFd) -> Result<Meta, Errno> {
        let st = fstat(fd)?;
        let mut meta = Meta::from_stat(&st);
        if self.host_owners {
            owners::host_owner(&self.path_of(jail), &st, &mut meta.uid, &mut meta.gid)?;
        } else if meta.kind == Kind::CharDevice {
            // A device node in a rootless root is a bind mount of the
            // host's node at the same jail path (mknod is refused there):
            // its owners are that node's.
            owners::host_owner(jail, &st, &mut meta.uid, &mut meta.gid)?;
        }
        Ok(meta)
    }
}
