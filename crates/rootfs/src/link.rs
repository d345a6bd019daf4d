//! Placing a file without copying its bytes: a hard link to a file already
//! in the root, a hard link to the host's own inode, or a reflink
//! (copy-on-write clone, `FICLONE`) of it.
//!
//! The same confinement as everywhere in this crate: the new name is made
//! in a parent resolved inside the root, never following its last
//! component, and nothing existing is replaced. A link is made to the inode
//! a descriptor holds (`linkat(fd, "", …, AT_EMPTY_PATH)`, or the
//! descriptor's `/proc/self/fd` link), never to whatever a path names by
//! then. A host inode is linked only when its mode and owner are the ones
//! asked for: its attributes are never changed, since they are the host's.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, Mode};
use sha2::{Digest, Sha256};

use crate::root::set_fd_attrs;
use crate::{Attrs, Error, Kind, Meta, Root};

/// How [`Root::share_file`] placed a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// A hard link to the host's inode: the jail's file *is* the host's.
    HardLink,
    /// A copy-on-write clone: its own inode sharing the host's extents.
    Reflink,
}

nix::ioctl_write_int!(ficlone, 0x94, 9);

impl Root {
    /// Makes `p` a hard link to the regular file `to` already in the root.
    /// `to` is resolved inside the root without following its last
    /// component.
    pub fn hardlink(&mut self, p: &Path, to: &Path) -> Result<(), Error> {
        let (tdir, tname) = self.parent("link", to)?;
        let old = openat(
            &tdir,
            tname,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err("open", to, e))?;
        let st = fstat(&old).map_err(|e| self.err("fstat", to, e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Error::NotRegular {
                path: to.to_path_buf(),
                kind: Kind::from_mode(st.st_mode),
            });
        }
        let (dir, name) = self.parent("link", p)?;
        crate::root::link_fd(old.as_fd(), &dir, name)
            .map_err(|e| self.link_err(p, &dir, name, e))?;
        self.restore_dir_time(p, &dir)
    }

    /// Places the host file open as `src` (with metadata `meta`) at `p`
    /// without copying its bytes: a hard link to the host inode when it has
    /// exactly `attrs`' mode and owner and lies on the root's file system,
    /// else a reflink given `attrs`. `Ok(None)` when neither is possible
    /// (copy it instead); nothing is left at `p` then.
    pub fn share_file(
        &mut self,
        p: &Path,
        src: &File,
        meta: &Meta,
        attrs: &Attrs,
    ) -> Result<Option<Shared>, Error> {
        let (dir, name) = self.parent("link", p)?;
        if meta.mode == attrs.mode && meta.uid == attrs.uid && meta.gid == attrs.gid {
            match crate::root::link_fd(src.as_fd(), &dir, name) {
                Ok(()) => {
                    self.restore_dir_time(p, &dir)?;
                    return Ok(Some(Shared::HardLink));
                }
                // Another file system, or links refused (protected_hardlinks
                // for a non-owner, a file system without links): try a clone.
                Err(Errno::EXDEV | Errno::EPERM | Errno::EMLINK | Errno::EOPNOTSUPP) => {}
                Err(e) => return Err(self.link_err(p, &dir, name, e)),
            }
        }
        let dst = self.create_excl(p, &dir, name)?;
        // SAFETY: FICLONE takes the source descriptor as its argument and
        // reads nothing from our memory; both descriptors are open for the
        // duration of the call.
        match unsafe { ficlone(dst.as_raw_fd(), src.as_raw_fd() as u64) } {
            Ok(_) => {
                set_fd_attrs(&dst, attrs).map_err(|e| self.err("set attributes of", p, e))?;
                self.restore_dir_time(p, &dir)?;
                Ok(Some(Shared::Reflink))
            }
            Err(_) => {
                drop(dst);
                nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| self.err("remove", p, e))?;
                self.restore_dir_time(p, &dir)?;
                Ok(None)
            }
        }
    }

    /// A failed `linkat`: an existing entry is [`Error::Exists`].
    fn link_err(&self, p: &Path, dir: &OwnedFd, name: &std::ffi::OsStr, e: Errno) -> Error {
        if e == Errno::EEXIST {
            if let Ok(st) = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                return Error::Exists {
                    path: p.to_path_buf(),
                    kind: Kind::from_mode(st.st_mode),
                };
            }
        }
        self.err("link", p, e)
    }
}

/// The size and SHA-256 (lowercase hex) of everything `file` reads from its
/// current offset on.
pub fn sha256_of(mut file: &File) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, format!("{:x}", hasher.finalize())))
}
