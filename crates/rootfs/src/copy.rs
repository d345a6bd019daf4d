//! Copying regular files from the host into a root.
//!
//! The destination is created with `O_CREAT | O_EXCL | O_NOFOLLOW` in a
//! parent resolved inside the root (or, for a placeholder, opened with
//! `O_NOFOLLOW` and checked to be a regular file), so a copy never writes
//! through a planted symlink and never replaces anything. Holes are kept:
//! only the data ranges `SEEK_DATA`/`SEEK_HOLE` report are written, and a
//! final `ftruncate` sets the size of a file that ends in a hole. The
//! SHA-256 of the full content (holes hashed as the zeros they read as) is
//! computed while copying a small file, and on the hashing thread for a
//! large one, which the kernel copies (see [`crate::digest`]). A host file
//! with several links whose inode was already copied into this root
//! becomes a hard link to that copy, provided the copy is still the same
//! inode.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{copy_file_range, openat, AtFlags, OFlag};
use nix::sys::sendfile::sendfile64;
use nix::sys::stat::{fstat, Mode};
use nix::unistd::{ftruncate, lseek, Whence};
use sha2::{Digest, Sha256};

use crate::digest::{Hashing, Sha256Sum};
use crate::resolve;
use crate::root::{set_fd_attrs, CopyRecord};
use crate::{Attrs, Error, Host, Kind, Meta, Root};

/// What a file copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The file's size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content: ready, or for a large file still being
    /// computed from the bytes written (see [`crate::digest`]).
    pub sha256: Sha256Sum,
    /// Set when the file was made a hard link to this earlier copy (a jail
    /// path) instead of being copied again.
    pub hardlink_to: Option<PathBuf>,
}

/// Which side of a copy failed.
enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

const CHUNK: usize = 128 * 1024;

thread_local! {
    /// The copy buffer, kept from one copy to the next: a new 128 KiB
    /// buffer per file was mapped, faulted in and zeroed every time (a
    /// tenth of a Python discovery's copying).
    static BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Root {
    /// Copies the host's regular file at jail path `p` to `p` in the root
    /// (which must not exist yet), then sets `attrs`. The host path must be
    /// resolved already: a symlink at its last component is an error.
    pub fn copy_file(&mut self, p: &Path, host: &Host, attrs: &Attrs) -> Result<Copied, Error> {
        let (src, hmeta) = host.open_file(p)?;
        let (dir, name) = self.parent("copy", p)?;
        if hmeta.nlink > 1 {
            if let Some(rec) = self.try_hardlink(p, (hmeta.dev, hmeta.ino), &dir, name)? {
                self.restore_dir_time(p, &dir)?;
                return Ok(Copied {
                    bytes: rec.bytes,
                    sha256: rec.sha256,
                    hardlink_to: Some(rec.jail),
                });
            }
        }
        let dst = self.create_excl(p, &dir, name)?;
        let copied = self.fill(p, host, &src, &hmeta, dst, attrs)?;
        self.restore_dir_time(p, &dir)?;
        Ok(copied)
    }

    /// Overwrites the existing empty regular file `p` in the root (a
    /// placeholder made by [`Root::create_empty`]) with the host's file at
    /// `p`, then sets `attrs`. The entry is opened with `O_NOFOLLOW` (and
    /// `O_NONBLOCK`, without `O_TRUNC`) and checked to be a regular file
    /// before it is truncated and written; content the program may have
    /// put there is replaced.
    pub fn fill_placeholder(
        &mut self,
        p: &Path,
        host: &Host,
        attrs: &Attrs,
    ) -> Result<Copied, Error> {
        let (src, hmeta) = host.open_file(p)?;
        let (dir, name) = self.parent("fill", p)?;
        let dst = self.open_regular_truncated(p, &dir, name, false)?;
        self.fill(p, host, &src, &hmeta, dst, attrs)
    }

    /// Writes `contents` as the regular file `p` (content jailtrace makes
    /// rather than copies, e.g. a synthesized `/etc/passwd`), replacing a
    /// regular file there; anything else at `p` is refused, and a symlink
    /// is never followed. Sets `attrs`.
    pub fn write_file(
        &mut self,
        p: &Path,
        contents: &[u8],
        attrs: &Attrs,
    ) -> Result<Copied, Error> {
        let (dir, name) = self.parent("write", p)?;
        let dst = self.open_regular_truncated(p, &dir, name, true)?;
        let file = File::from(dst);
        file.write_all_at(contents, 0)
            .map_err(|e| self.err("write", p, e))?;
        let dst = OwnedFd::from(file);
        set_fd_attrs(&dst, attrs).map_err(|e| self.err("set attributes of", p, e))?;
        self.restore_dir_time(p, &dir)?;
        Ok(Copied {
            bytes: contents.len() as u64,
            sha256: Sha256Sum::ready(format!("{:x}", Sha256::digest(contents))),
            hardlink_to: None,
        })
    }

    /// Opens `name` in `dir` for writing (creating it when `create`),
    /// refusing anything but a regular file, and empties it. `O_NOFOLLOW`
    /// never follows a planted link; `O_NONBLOCK|O_NOCTTY` keep a planted
    /// fifo or tty from blocking us or becoming our terminal before the
    /// type check.
    fn open_regular_truncated(
        &self,
        p: &Path,
        dir: &OwnedFd,
        name: &OsStr,
        create: bool,
    ) -> Result<OwnedFd, Error> {
        let mut flags = OFlag::O_WRONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        if create {
            flags |= OFlag::O_CREAT;
        }
        let dst = openat(dir, name, flags, Mode::from_bits_truncate(0o600))
            .map_err(|e| self.err("open", p, e))?;
        let st = fstat(&dst).map_err(|e| self.err("fstat", p, e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Error::NotRegular {
                path: p.to_path_buf(),
                kind: Kind::from_mode(st.st_mode),
            });
        }
        ftruncate(&dst, 0).map_err(|e| self.err("truncate", p, e))?;
        Ok(dst)
    }

    /// Copies `src` into the fresh or truncated `dst`, sets attributes and
    /// remembers the copy for hard links.
    fn fill(
        &mut self,
        p: &Path,
        host: &Host,
        src: &File,
        hmeta: &Meta,
        dst: OwnedFd,
        attrs: &Attrs,
    ) -> Result<Copied, Error> {
        let dst = File::from(dst);
        let (bytes, sha256) = sparse_copy(src, &dst, hmeta).map_err(|e| match e {
            CopyError::Read(e) => Error::Host {
                op: "read",
                path: host.path_of(p),
                source: e,
            },
            CopyError::Write(e) => self.err("write", p, e),
        })?;
        let dst = OwnedFd::from(dst);
        set_fd_attrs(&dst, attrs).map_err(|e| self.err("set attributes of", p, e))?;
        if hmeta.nlink > 1 {
            let st = fstat(&dst).map_err(|e| self.err("fstat", p, e))?;
            let jail = resolve::jail_path(&resolve::components(p));
            self.copies.insert(
                (hmeta.dev, hmeta.ino),
                CopyRecord {
                    jail,
                    root_id: inode_id(&st),
                    bytes,
                    sha256: sha256.clone(),
                },
            );
        }
        Ok(Copied {
            bytes,
            sha256,
            hardlink_to: None,
        })
    }

    /// Links `name` in `dir` to the earlier copy of host inode `host_id`, if
    /// there is one and it is still the inode we wrote, unchanged.
    /// `Ok(None)`: no link made, copy instead.
    fn try_hardlink(
        &mut self,
        p: &Path,
        host_id: (u64, u64),
        dir: &OwnedFd,
        name: &OsStr,
    ) -> Result<Option<CopyRecord>, Error> {
        let Some(rec) = self.copies.get(&host_id).cloned() else {
            return Ok(None);
        };
        let Some((qparent, qname)) = resolve::split_last(&rec.jail) else {
            return Ok(None);
        };
        let Ok(qdir) = resolve::resolve_dir(self.fd.as_fd(), &qparent, self.strategy) else {
            return Ok(None);
        };
        let Ok(old) = openat(
            &qdir,
            qname,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return Ok(None);
        };
        match fstat(&old) {
            Ok(st) if inode_id(&st) == rec.root_id => {}
            _ => return Ok(None),
        }
        // Link the inode held by `old` itself, not whatever the path names now.
        match crate::root::link_fd(old.as_fd(), dir, name) {
            Ok(()) => {
                // The new link changed the inode's ctime; remember the new one.
                if let (Ok(st), Some(r)) = (fstat(&old), self.copies.get_mut(&host_id)) {
                    r.root_id = inode_id(&st);
                }
                Ok(Some(rec))
            }
            Err(Errno::EEXIST) => Err(Error::Exists {
                path: p.to_path_buf(),
                kind: nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map(|st| Kind::from_mode(st.st_mode))
                    .map_err(|e| self.err("lstat", p, e))?,
            }),
            Err(_) => Ok(None),
        }
    }
}

/// What identifies an unchanged copy: (dev, ino, ctime).
fn inode_id(st: &nix::sys::stat::FileStat) -> (u64, u64, (i64, i64)) {
    (st.st_dev, st.st_ino, (st.st_ctime, st.st_ctime_nsec))
}

/// Copies the data ranges of `src` (`meta` is its `fstat`) into the empty
/// `dst` at the same offsets, sets `dst`'s size, and returns the size copied
/// and the SHA-256. Should `src` shrink meanwhile, the copy ends where its
/// data ends.
///
/// A file with at least as many bytes allocated as it is long is copied
/// whole without asking for its holes (two `lseek`s a file): should it
/// have any, with blocks allocated past its end, they are written as the
/// zeros they read as.
///
/// A file hashed on the hashing thread is copied by the kernel
/// ([`copy_in_kernel`]: one copy from page cache to page cache, none
/// through our buffer); a small one through our buffer, hashed on the way.
fn sparse_copy(src: &File, dst: &File, meta: &Meta) -> Result<(u64, Sha256Sum), CopyError> {
    let mut size = meta.size;
    let dense = meta.blocks.saturating_mul(512) >= size;
    let mut hasher = Hashing::new(size);
    let mut pos = 0u64;
    let mut written = 0u64;
    while pos < size {
        let data = if dense {
            pos
        } else {
            seek(src, pos, Whence::SeekData)?.map_or(size, |d| d.min(size))
        };
        hasher.zeros(data - pos);
        pos = data;
        if pos >= size {
            break;
        }
        let hole = if dense {
            size
        } else {
            seek(src, pos, Whence::SeekHole)?.map_or(size, |h| h.min(size))
        };
        // A hole reported at or before `pos` would not move us; copy to the
        // end instead.
        let end = if hole > pos { hole } else { size };
        let copied = if hasher.inline() {
            copy_through_buffer(src, dst, pos, end, &mut hasher)?
        } else {
            copy_in_kernel(src, dst, pos, end, &mut hasher)?
        };
        hasher.wrote(pos, copied);
        pos += copied;
        written = pos;
        if pos < end {
            // The source ended early.
            size = pos;
        }
    }
    // A hole at the end is the only thing the writes left short.
    if written < size {
        let len = i64::try_from(size).map_err(|_| CopyError::Write(Errno::EFBIG.into()))?;
        ftruncate(dst.as_fd(), len).map_err(|e| CopyError::Write(e.into()))?;
    }
    let sum = hasher.finish(src, size).map_err(CopyError::Read)?;
    Ok((size, sum))
}

/// Copies `src`'s bytes from `pos` to `end` (or to its end, if sooner) to
/// the same offsets of `dst` through our buffer, hashing them; returns how
/// many it copied.
fn copy_through_buffer(
    src: &File,
    dst: &File,
    mut pos: u64,
    end: u64,
    hasher: &mut Hashing,
) -> Result<u64, CopyError> {
    let start = pos;
    let mut buf = BUF.take();
    buf.resize(CHUNK, 0);
    let result = (|| {
        while pos < end {
            let want = usize::try_from(end - pos).map_or(CHUNK, |n| n.min(CHUNK));
            let n = src
                .read_at(&mut buf[..want], pos)
                .map_err(CopyError::Read)?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            dst.write_all_at(chunk, pos).map_err(CopyError::Write)?;
            hasher.bytes(chunk);
            pos += n as u64;
        }
        Ok(pos - start)
    })();
    BUF.set(buf);
    result
}

/// [`copy_through_buffer`] by the kernel, without hashing:
/// `copy_file_range`, which shares the extents where the file system can
/// (XFS, Btrfs: no bytes copied at all) and copies page cache to page
/// cache within one; between file systems (`EXDEV`), `sendfile`; where the
/// source cannot splice either, through our buffer after all.
fn copy_in_kernel(
    src: &File,
    dst: &File,
    pos: u64,
    end: u64,
    hasher: &mut Hashing,
) -> Result<u64, CopyError> {
    let offset = |n: u64| i64::try_from(n).map_err(|_| CopyError::Write(Errno::EFBIG.into()));
    let (start, stop) = (offset(pos)?, offset(end)?);
    let (mut at, mut at_dst) = (start, start);
    let mut range = true;
    while at < stop {
        let want = usize::try_from(stop - at)
            .unwrap_or(usize::MAX)
            .min(KERNEL_MAX);
        let moved = if range {
            copy_file_range(src, Some(&mut at), dst, Some(&mut at_dst), want)
        } else {
            sendfile64(dst, src, Some(&mut at), want)
        };
        match moved {
            Ok(0) => break,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::EXDEV | Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOSYS) if range => {
                range = false;
                // sendfile(2) writes at `dst`'s file offset.
                lseek(dst.as_fd(), at_dst, Whence::SeekSet)
                    .map_err(|e| CopyError::Write(e.into()))?;
            }
            Err(Errno::EINVAL | Errno::ENOSYS) if at == start => {
                return copy_through_buffer(src, dst, pos, end, hasher);
            }
            Err(e @ (Errno::ENOSPC | Errno::EDQUOT | Errno::EFBIG | Errno::EROFS)) => {
                return Err(CopyError::Write(e.into()))
            }
            Err(e) => return Err(CopyError::Read(e.into())),
        }
    }
    Ok(u64::try_from(at - start).unwrap_or(0))
}

/// The most one `copy_file_range` or `sendfile` moves (the kernel's
/// `MAX_RW_COUNT`).
const KERNEL_MAX: usize = 0x7fff_f000;

/// `lseek` for `SEEK_DATA`/`SEEK_HOLE`: `Ok(None)` means "no more data" (or
/// no hole support, where the rest counts as data for `SEEK_HOLE` and as
/// data at `pos` for `SEEK_DATA`).
fn seek(f: &File, pos: u64, whence: Whence) -> Result<Option<u64>, CopyError> {
    let off = i64::try_from(pos).map_err(|_| CopyError::Read(Errno::EFBIG.into()))?;
    match lseek(f.as_fd(), off, whence) {
        Ok(o) => Ok(Some(u64::try_from(o).unwrap_or(pos))),
        Err(Errno::ENXIO) => Ok(None),
        Err(Errno::EINVAL | Errno::EOPNOTSUPP) if matches!(whence, Whence::SeekData) => {
            Ok(Some(pos))
        }
        Err(Errno::EINVAL | Errno::EOPNOTSUPP) => Ok(None),
        Err(e) => Err(CopyError::Read(e.into())),
    }
}
