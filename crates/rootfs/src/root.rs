//! [`Root`]: a jail root and the confined operations on it.
//!
//! Every operation resolves the *parent* of its jail path inside the root
//! (see `resolve`) and acts on the last component with an `*at` call that
//! does not follow it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `O_EXCL`), so a
//! symlink planted in the root is at worst followed to somewhere else inside
//! the root. Attributes are set through a descriptor of the new file where
//! one exists (`fchown`, `fchmod`, `futimens`), else with non-following
//! `*at` calls. Nothing existing is replaced: creating over an entry of
//! another kind is [`Error::Exists`].
//!
//! Directory mtimes: adding an entry to a directory changes its mtime, so
//! the root remembers the mtime it gave each directory it created and puts
//! it back after every later change inside that directory.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, readlinkat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode,
    SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, UnlinkatFlags};

use crate::resolve::{self, Strategy};
use crate::{meta, owners, Attrs, Error, Kind, Meta};

/// A file copied into this root whose host inode has other links.
#[derive(Debug, Clone)]
pub(crate) struct CopyRecord {
    /// Where it was placed.
    pub(crate) jail: PathBuf,
    /// Its (dev, ino, ctime) in the root after our last change to it, to
    /// check it is still the same, unchanged file: an inode number alone
    /// can be reused once the program deletes the copy, while the ctime
    /// moves on every change to the inode and cannot be set back.
    pub(crate) root_id: (u64, u64, (i64, i64)),
    pub(crate) bytes: u64,
    pub(crate) sha256: crate::Sha256Sum,
}

/// A jail root directory, opened once; all operations are confined to it.
#[derive(Debug)]
pub struct Root {
    /// `O_PATH | O_DIRECTORY` descriptor of the root.
    pub(crate) fd: OwnedFd,
    path: PathBuf,
    pub(crate) strategy: Strategy,
    /// Host (dev, ino) -> the copy made of it, for hard links.
    pub(crate) copies: HashMap<(u64, u64), CopyRecord>,
    /// Root (dev, ino) of directories created here -> the mtime they got.
    dir_times: HashMap<(u64, u64), (i64, i64)>,
}

impl Root {
    /// Opens an existing directory as a jail root. A symlink is refused
    /// (`O_NOFOLLOW`), so the root is the directory named, not where a link
    /// points.
    pub fn open(path: &Path) -> Result<Root, Error> {
        let open_err = |e: Errno| Error::OpenRoot {
            path: path.to_path_buf(),
            source: e.into(),
        };
        let fd = open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(open_err)?;
        // The canonical path of the directory actually opened, from the
        // descriptor rather than by resolving `path` a second time.
        let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .or_else(|_| std::fs::canonicalize(path))
            .map_err(|e| Error::OpenRoot {
                path: path.to_path_buf(),
                source: e,
            })?;
        Ok(Root {
            fd,
            path,
            strategy: Strategy::detect(),
            copies: HashMap::new(),
            dir_times: HashMap::new(),
        })
    }

    /// Resolve with the component walk instead of `openat2`, as on kernels
    /// before 5.6. For tests of the fallback.
    #[doc(hidden)]
    pub fn force_fallback(&mut self) {
        self.strategy = Strategy::Walk;
    }

    /// The root's canonical host path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self, op: &'static str, p: &Path, e: impl Into<std::io::Error>) -> Error {
        Error::Root {
            op,
            path: p.to_path_buf(),
            root: self.path.clone(),
            source: e.into(),
        }
    }

    /// Opens the parent directory of `p` inside the root and returns it with
    /// the last component.
    pub(crate) fn parent<'p>(
        &self,
        op: &'static str,
        p: &'p Path,
    ) -> Result<(ParentDir, &'p OsStr), Error> {
        let (parent, name) = resolve::split_last(p).ok_or_else(|| Error::NoName {
            path: p.to_path_buf(),
        })?;
        let (fd, st) = resolve::resolve_dir_stat(self.fd.as_fd(), &parent, self.strategy)
            .map_err(|e| self.err(op, p, e))?;
        let id = (st.st_dev, st.st_ino);
        Ok((ParentDir { fd, id }, name))
    }

    fn stat_impl(&self, op: &'static str, p: &Path, follow: bool) -> Result<Option<Meta>, Error> {
        match resolve::resolve(self.fd.as_fd(), p, follow, self.strategy).and_then(|fd| fstat(&fd))
        {
            Ok(st) => Ok(Some(Meta::from_stat(&st))),
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(self.err(op, p, e)),
        }
    }

    /// An `O_PATH` descriptor of the directory `p`, resolved inside the
    /// root: the safe way to name a mount point (mount onto
    /// `/proc/self/fd/N`, never onto a path a planted symlink could
    /// redirect).
    pub fn open_dir(&self, p: &Path) -> Result<OwnedFd, Error> {
        resolve::resolve_dir(self.fd.as_fd(), p, self.strategy).map_err(|e| self.err("open", p, e))
    }

    /// Where `p` is in the root: its directories resolved inside the root
    /// (symlinks followed, `.`, `..` and repeated slashes gone), its last
    /// component as it is. `//run/x` and `/var/run/x` (with `/var/run` a
    /// link to `/run`) are both `/run/x`.
    pub fn real_path(&self, p: &Path) -> Result<PathBuf, Error> {
        let (dir, name) = self.parent("resolve", p)?;
        let host = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))
            .map_err(|e| self.err("resolve", p, e))?;
        let inside = host.strip_prefix(&self.path).map_err(|_| {
            let outside = std::io::Error::other(format!("resolves to {}", host.display()));
            self.err("resolve", p, outside)
        })?;
        Ok(Path::new("/").join(inside).join(name))
    }

    /// The names in the directory `p` (without `.` and `..`), each with
    /// its kind when the file system gives it in the listing (`d_type`).
    pub fn read_dir(&self, p: &Path) -> Result<Vec<(OsString, Option<Kind>)>, Error> {
        let read = |e| self.err("read", p, e);
        let fd = resolve::open_dir_readable(self.fd.as_fd(), p, self.strategy).map_err(read)?;
        let entries = meta::dir_entries(fd).map_err(read)?;
        Ok(entries.into_iter().map(|e| (e.name, e.kind)).collect())
    }

    /// Metadata of `p`; intermediate symlinks are resolved inside the root,
    /// the last component is not followed. `Ok(None)` when it does not exist.
    pub fn lstat(&self, p: &Path) -> Result<Option<Meta>, Error> {
        self.stat_impl("lstat", p, false)
    }

    /// Whether `p` is a directory in the root and so is every prefix of it:
    /// no component is a symlink. `false` also when that cannot be told in
    /// one lookup; see [`Root::lstat`] for each component then.
    pub fn is_plain_dir(&self, p: &Path) -> bool {
        resolve::is_plain_dir(self.fd.as_fd(), p, self.strategy)
    }

    /// The deepest of `dir` (a jail path without `.` or `..`) and its
    /// ancestors that [`Root::is_plain_dir`] holds for, and the entry below
    /// it on the way to `dir`, which the root lacks. One lookup of `dir`,
    /// then one of each ancestor while the lookups find an entry missing
    /// (no symlink on the way). `None` when there is a symlink or a
    /// non-directory on the way, or without `openat2`.
    pub(crate) fn deepest_plain_dir(&self, dir: &Path) -> Option<(PathBuf, Option<PathBuf>)> {
        let mut missing: Option<&Path> = None;
        for a in dir.ancestors() {
            // `/`, the root itself, is a directory.
            let found = a.parent().is_none()
                || match resolve::plain_dir(self.fd.as_fd(), a, self.strategy) {
                    Ok(()) => true,
                    Err(Errno::ENOENT) => false,
                    Err(_) => return None,
                };
            if found {
                return Some((a.to_path_buf(), missing.map(Path::to_path_buf)));
            }
            missing = Some(a);
        }
        None
    }

    /// Like [`Root::lstat`] but a symlink at the last component is followed
    /// (inside the root); a dangling one gives `Ok(None)`.
    pub fn stat(&self, p: &Path) -> Result<Option<Meta>, Error> {
        self.stat_impl("stat", p, true)
    }

    /// The existing entry `name` in `dir`, for the `EEXIST` cases.
    fn existing(
        &self,
        op: &'static str,
        p: &Path,
        dir: &OwnedFd,
        name: &OsStr,
    ) -> Result<Meta, Error> {
        fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map(|st| Meta::from_stat(&st))
            .map_err(|e| self.err(op, p, e))
    }

    /// Creates directory `p` (its parent must exist) with `attrs`. An
    /// existing directory is left as it is; anything else there is
    /// [`Error::Exists`]. Returns the directory's metadata.
    pub fn mkdir(&mut self, p: &Path, attrs: &Attrs) -> Result<Meta, Error> {
        let (dir, name) = self.parent("mkdir", p)?;
        match mkdirat(&dir, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let m = self.existing("mkdir", p, &dir, name)?;
                return match m.kind {
                    Kind::Dir => Ok(m),
                    kind => Err(Error::Exists {
                        path: p.to_path_buf(),
                        kind,
                    }),
                };
            }
            Err(e) => return Err(self.err("mkdir", p, e)),
        }
        let new = openat(
            &dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err("open new directory", p, e))?;
        set_fd_attrs(&new, attrs).map_err(|e| self.err("set attributes of", p, e))?;
        let st = fstat(&new).map_err(|e| self.err("fstat", p, e))?;
        if let Some(mtime) = attrs.mtime {
            self.dir_times.insert((st.st_dev, st.st_ino), mtime);
        }
        self.restore_dir_time(p, &dir)?;
        Ok(Meta::from_stat(&st))
    }

    /// Creates symlink `p -> target`, owned by `attrs`' owner (and with its
    /// mtime). An identical symlink already there is fine.
    pub fn symlink(&mut self, p: &Path, target: &Path, attrs: &Attrs) -> Result<(), Error> {
        let (dir, name) = self.parent("symlink", p)?;
        match symlinkat(target, &dir, name) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let m = self.existing("symlink", p, &dir, name)?;
                if m.kind == Kind::Symlink
                    && readlinkat(&dir, name).is_ok_and(|t| t == target.as_os_str())
                {
                    return Ok(());
                }
                return Err(Error::Exists {
                    path: p.to_path_buf(),
                    kind: m.kind,
                });
            }
            Err(e) => return Err(self.err("symlink", p, e)),
        }
        self.set_attrs_at(p, &dir, name, attrs, false)?;
        self.restore_dir_time(p, &dir)
    }

    /// Creates an empty regular file at `p` (a placeholder), with `attrs`.
    pub fn create_empty(&mut self, p: &Path, attrs: &Attrs) -> Result<(), Error> {
        self.create_sparse(p, attrs, 0).map(drop)
    }

    /// Creates a regular file at `p` of `size` bytes that uses no disk
    /// blocks (a hole; it reads as zeros), with `attrs`: a placeholder that
    /// `stat` cannot tell from the host's file, before its content is
    /// copied with [`Root::fill_placeholder`]. Returns its metadata.
    pub fn create_sparse(&mut self, p: &Path, attrs: &Attrs, size: u64) -> Result<Meta, Error> {
        let (dir, name) = self.parent("create", p)?;
        let fd = self.create_excl(p, &dir, name)?;
        if size > 0 {
            let len = i64::try_from(size).map_err(|_| self.err("truncate", p, Errno::EFBIG))?;
            nix::unistd::ftruncate(&fd, len).map_err(|e| self.err("truncate", p, e))?;
        }
        set_fd_attrs(&fd, attrs).map_err(|e| self.err("set attributes of", p, e))?;
        let st = fstat(&fd).map_err(|e| self.err("fstat", p, e))?;
        self.restore_dir_time(p, &dir)?;
        Ok(Meta::from_stat(&st))
    }

    /// `openat(O_CREAT|O_EXCL|O_NOFOLLOW)` of `name` in `dir`, with an
    /// existing entry reported as [`Error::Exists`].
    pub(crate) fn create_excl(
        &self,
        p: &Path,
        dir: &OwnedFd,
        name: &OsStr,
    ) -> Result<OwnedFd, Error> {
        match openat(
            dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => Ok(fd),
            Err(Errno::EEXIST) => Err(Error::Exists {
                path: p.to_path_buf(),
                kind: self.existing("create", p, dir, name)?.kind,
            }),
            Err(e) => Err(self.err("create", p, e)),
        }
    }

    /// Creates character device `p` with device number `rdev` and `attrs`.
    /// Block devices are refused with [`Error::BlockDevice`] (an `S_IFBLK`
    /// in `attrs.mode` asks for one); a character device with the same
    /// number already there is fine. Rootless, the system's node at `p` is
    /// bind-mounted instead ([`Root::bind_device`]).
    pub fn mknod(&mut self, p: &Path, attrs: &Attrs, rdev: u64) -> Result<(), Error> {
        match attrs.mode & libc::S_IFMT {
            0 | libc::S_IFCHR => {}
            libc::S_IFBLK => {
                return Err(Error::BlockDevice {
                    path: p.to_path_buf(),
                })
            }
            _ => return Err(self.err("mknod", p, Errno::EINVAL)),
        }
        if owners::rootless() {
            return self.bind_device(p, &crate::Host::system(), attrs, rdev);
        }
        let (dir, name) = self.parent("mknod", p)?;
        let perm = Mode::from_bits_truncate(attrs.mode & 0o777);
        match mknodat(&dir, name, SFlag::S_IFCHR, perm, rdev) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let m = self.existing("mknod", p, &dir, name)?;
                return match m.kind {
                    Kind::CharDevice if m.rdev == rdev => Ok(()),
                    kind => Err(Error::Exists {
                        path: p.to_path_buf(),
                        kind,
                    }),
                };
            }
            Err(e) => return Err(self.err("mknod", p, e)),
        }
        self.set_attrs_at(p, &dir, name, attrs, true)?;
        self.restore_dir_time(p, &dir)
    }

    /// Rootless stand-in for [`Root::mknod`] (a user namespace may not
    /// create device nodes): the host's character device at the same jail
    /// path is bind-mounted onto an empty file at `p`, made with `attrs`
    /// (or one left by an earlier rootless run). The mount lasts as long as
    /// jailtrace's mount namespace, that is, until it exits; a root run or
    /// `jailtrace build` as root makes the real node.
    pub fn bind_device(
        &mut self,
        p: &Path,
        host: &crate::Host,
        attrs: &Attrs,
        rdev: u64,
    ) -> Result<(), Error> {
        let src = host.open_path(p)?;
        let st = fstat(&src).map_err(|e| self.err("fstat host node for", p, e))?;
        if Kind::from_mode(st.st_mode) != Kind::CharDevice || st.st_rdev != rdev {
            return Err(Error::Exists {
                path: p.to_path_buf(),
                kind: Kind::from_mode(st.st_mode),
            });
        }
        match self.lstat(p)? {
            None => self.create_empty(
                p,
                &Attrs {
                    mode: attrs.mode & 0o777,
                    ..*attrs
                },
            )?,
            Some(m) if m.kind == Kind::CharDevice && m.rdev == rdev => return Ok(()),
            Some(m) if m.kind == Kind::File && m.size == 0 => {}
            Some(m) => {
                return Err(Error::Exists {
                    path: p.to_path_buf(),
                    kind: m.kind,
                })
            }
        }
        let dst = resolve::resolve(self.fd.as_fd(), p, false, self.strategy)
            .map_err(|e| self.err("open", p, e))?;
        nix::mount::mount(
            Some(format!("/proc/self/fd/{}", src.as_raw_fd()).as_str()),
            format!("/proc/self/fd/{}", dst.as_raw_fd()).as_str(),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| self.err("bind-mount host device onto", p, e))
    }

    /// Removes `p`: unlinks a file, symlink or device, or removes an empty
    /// directory. The last component is never followed.
    pub fn remove(&mut self, p: &Path) -> Result<(), Error> {
        let (dir, name) = self.parent("remove", p)?;
        match unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => {}
            Err(Errno::EISDIR) => unlinkat(&dir, name, UnlinkatFlags::RemoveDir)
                .map_err(|e| self.err("rmdir", p, e))?,
            Err(e) => return Err(self.err("unlink", p, e)),
        }
        self.restore_dir_time(p, &dir)
    }

    /// Changes the owner of `p` (a symlink itself, not its target).
    pub fn chown(&mut self, p: &Path, uid: u32, gid: u32) -> Result<(), Error> {
        let (dir, name) = self.parent("chown", p)?;
        owners::chown_with(uid, gid, |u, g| {
            fchownat(&dir, name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW)
        })
        .map_err(|e| self.err("chown", p, e))
    }

    /// Changes the permission bits of `p`; a symlink at `p` is an error
    /// (Linux symlinks have no mode), never followed.
    pub fn chmod(&mut self, p: &Path, mode: u32) -> Result<(), Error> {
        let (dir, name) = self.parent("chmod", p)?;
        fchmodat(
            &dir,
            name,
            Mode::from_bits_truncate(mode & 0o7777),
            FchmodatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.err("chmod", p, e))
    }

    /// Owner, (unless `with_mode` is false) mode, and mtime of the entry
    /// `name` in `dir`, none of them following a symlink there.
    fn set_attrs_at(
        &self,
        p: &Path,
        dir: &OwnedFd,
        name: &OsStr,
        attrs: &Attrs,
        with_mode: bool,
    ) -> Result<(), Error> {
        owners::chown_with(attrs.uid, attrs.gid, |u, g| {
            fchownat(dir, name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW)
        })
        .map_err(|e| self.err("chown", p, e))?;
        if with_mode {
            // With AT_SYMLINK_NOFOLLOW glibc changes the mode through an
            // O_PATH descriptor of the entry (or fchmodat2), never a target.
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(attrs.mode & 0o7777),
                FchmodatFlags::NoFollowSymlink,
            )
            .map_err(|e| self.err("chmod", p, e))?;
        }
        if let Some((s, ns)) = attrs.mtime {
            utimensat(
                dir,
                name,
                &TimeSpec::UTIME_OMIT,
                &TimeSpec::new(s, ns),
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| self.err("set mtime of", p, e))?;
        }
        Ok(())
    }

    /// Puts back the mtime of `dir` (the parent of `p`) if this root created
    /// it with one; called after every change inside `dir`.
    pub(crate) fn restore_dir_time(&self, p: &Path, dir: &ParentDir) -> Result<(), Error> {
        let Some(&(s, ns)) = self.dir_times.get(&dir.id) else {
            return Ok(());
        };
        // `dir` is an O_PATH descriptor, which futimens(3) refuses.
        openat(
            &dir.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .and_then(|fd| futimens(&fd, &TimeSpec::UTIME_OMIT, &TimeSpec::new(s, ns)))
        .map_err(|e| self.err("restore mtime of parent of", p, e))
    }
}

/// A directory of the root opened as the parent of an entry being made or
/// removed, with its (device, inode) from the `fstat` that checked it is a
/// directory: what [`Root::restore_dir_time`] looks up, without another.
pub(crate) struct ParentDir {
    fd: OwnedFd,
    id: (u64, u64),
}

impl std::ops::Deref for ParentDir {
    type Target = OwnedFd;

    fn deref(&self) -> &OwnedFd {
        &self.fd
    }
}

impl AsFd for ParentDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Owner, then mode (chown may clear setuid/setgid), then mtime, all through
/// `fd`.
pub(crate) fn set_fd_attrs(fd: &OwnedFd, attrs: &Attrs) -> Result<(), Errno> {
    owners::fchown(fd, attrs.uid, attrs.gid)?;
    fchmod(fd, Mode::from_bits_truncate(attrs.mode & 0o7777))?;
    if let Some((s, ns)) = attrs.mtime {
        futimens(fd, &TimeSpec::UTIME_OMIT, &TimeSpec::new(s, ns))?;
    }
    Ok(())
}

/// Links the inode `fd` holds as `name` in `dir`: `AT_EMPTY_PATH` (needs
/// CAP_DAC_READ_SEARCH), else the descriptor's /proc link with
/// `AT_SYMLINK_FOLLOW` (open(2), O_PATH).
pub(crate) fn link_fd(
    fd: BorrowedFd<'_>,
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
) -> Result<(), Errno> {
    match linkat(fd, "", dir, name, AtFlags::AT_EMPTY_PATH) {
        Err(Errno::ENOENT | Errno::EPERM | Errno::EINVAL) => linkat(
            AT_FDCWD,
            format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
            dir,
            name,
            AtFlags::AT_SYMLINK_FOLLOW,
        ),
        other => other,
    }
}
