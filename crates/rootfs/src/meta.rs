//! File metadata as this crate reports it ([`Meta`], [`Kind`], a
//! directory's [`DirEntry`]s) and the attributes it sets on what it
//! creates ([`Attrs`]).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::stat::FileStat;

/// The type of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A Unix domain socket.
    Socket,
}

impl Kind {
    /// The kind encoded in the `S_IFMT` bits of `st_mode`.
    ///
    /// Linux defines exactly the seven types above; should a file system ever
    /// report another, it is called a [`Kind::File`], which is safe for every
    /// caller here because regular-file operations re-check `S_ISREG` on the
    /// opened descriptor.
    pub fn from_mode(st_mode: u32) -> Kind {
        match st_mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            _ => Kind::File,
        }
    }

    /// The kind a directory listing gives an entry (`d_type`).
    pub fn from_dir_type(t: nix::dir::Type) -> Kind {
        use nix::dir::Type;
        match t {
            Type::File => Kind::File,
            Type::Directory => Kind::Dir,
            Type::Symlink => Kind::Symlink,
            Type::CharacterDevice => Kind::CharDevice,
            Type::BlockDevice => Kind::BlockDevice,
            Type::Fifo => Kind::Fifo,
            Type::Socket => Kind::Socket,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::File => "regular file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::CharDevice => "character device",
            Kind::BlockDevice => "block device",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
        })
    }
}

/// Metadata of a file (the fields of `struct stat` jailtrace uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The file type.
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Device number of a device file.
    pub rdev: u64,
    /// Device of the file system holding the file.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Number of hard links.
    pub nlink: u64,
    /// Modification time: seconds and nanoseconds since the epoch.
    pub mtime: (i64, i64),
    /// Allocated 512-byte blocks (shows whether holes were kept).
    pub blocks: u64,
}

impl Meta {
    pub(crate) fn from_stat(st: &FileStat) -> Meta {
        Meta {
            kind: Kind::from_mode(st.st_mode),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: u64::try_from(st.st_size).unwrap_or(0),
            rdev: st.st_rdev,
            dev: st.st_dev,
            ino: st.st_ino,
            nlink: st.st_nlink,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            blocks: u64::try_from(st.st_blocks).unwrap_or(0),
        }
    }

    /// The attributes to give a copy of this file: same mode, owner, mtime.
    pub fn attrs(&self) -> Attrs {
        Attrs {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime: Some(self.mtime),
        }
    }
}

/// Attributes set on everything the crate creates in a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    /// Permission bits including setuid/setgid/sticky; file-type bits are
    /// ignored (except by [`crate::Root::mknod`], which refuses `S_IFBLK`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (seconds, nanoseconds); `None` leaves the time of
    /// creation.
    pub mtime: Option<(i64, i64)>,
}

/// One entry of a directory, as the file system lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: OsString,
    /// Its kind, when the listing gives it (`d_type`).
    pub kind: Option<Kind>,
    /// Its inode number.
    pub ino: u64,
}

/// The entries of the directory open at `fd` (read from its start), without
/// `.` and `..`: no call per entry, and one allocation (its name).
pub(crate) fn dir_entries(fd: OwnedFd) -> Result<Vec<DirEntry>, Errno> {
    // Owned, not borrowed: the borrowed iterator rewinds at its end.
    let dir = nix::dir::Dir::from_fd(fd)?;
    let mut entries = Vec::new();
    for item in dir {
        let item = item?;
        let name = OsStr::from_bytes(item.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        entries.push(DirEntry {
            name: name.to_owned(),
            kind: item.file_type().map(Kind::from_dir_type),
            ino: item.ino(),
        });
    }
    Ok(entries)
}
