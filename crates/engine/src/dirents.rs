//! `getdents64` records (`struct linux_dirent64`, getdents(2)): the names
//! in what the kernel returned, and records for names it did not.
//!
//! A record is the inode (u64), the offset of the next record (i64), the
//! record's length (u16), the type (u8) and the NUL-terminated name, padded
//! to a multiple of 8 bytes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use jailtrace_rootfs::Kind;

/// Bytes before the name.
const HEAD: usize = 19;

/// Room for the record of any name (`NAME_MAX`, 255 bytes: 280 with the
/// head, the NUL and the padding), with a margin.
pub(crate) const ROOM_FOR_ANY: usize = 512;

/// The names of the records in `buf`, in order; stops at a malformed one.
pub(crate) fn names(buf: &[u8]) -> impl Iterator<Item = &OsStr> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let head = buf.get(at..at + HEAD)?;
        let len = usize::from(u16::from_ne_bytes([head[16], head[17]]));
        let record = buf.get(at..at + len).filter(|_| len > HEAD)?;
        at += len;
        let name = &record[HEAD..];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some(OsStr::from_bytes(&name[..end]))
    })
}

/// Appends the record of `name` to `out` unless that would make `out`
/// longer than `limit`; returns whether it did. Its offset is the end of
/// the directory (a `seekdir` to it ends the kernel's pass), its type
/// `DT_REG`, `DT_DIR` or `DT_LNK` for `kind` (`DT_UNKNOWN` otherwise).
pub(crate) fn push(out: &mut Vec<u8>, limit: usize, ino: u64, kind: Kind, name: &OsStr) -> bool {
    let len = (HEAD + name.len() + 1).next_multiple_of(8);
    if out.len() + len > limit {
        return false;
    }
    let Ok(reclen) = u16::try_from(len) else {
        return false;
    };
    let d_type = match kind {
        Kind::File => libc::DT_REG,
        Kind::Dir => libc::DT_DIR,
        Kind::Symlink => libc::DT_LNK,
        _ => libc::DT_UNKNOWN,
    };
    let start = out.len();
    out.extend_from_slice(&ino.to_ne_bytes());
    out.extend_from_slice(&i64::MAX.to_ne_bytes());
    out.extend_from_slice(&reclen.to_ne_bytes());
    out.push(d_type);
    out.extend_from_slice(name.as_bytes());
    out.resize(start + len, 0);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_made_here_read_back_and_respect_the_limit() {
        let mut out = Vec::new();
        assert!(push(&mut out, 64, 7, Kind::File, OsStr::new("x")));
        assert_eq!(out.len(), 24);
        assert!(push(&mut out, 64, 8, Kind::Dir, OsStr::new("lib")));
        assert_eq!(out.len(), 48);
        // A third needs 24 more bytes: over the limit, nothing appended.
        assert!(!push(&mut out, 64, 9, Kind::Symlink, OsStr::new("y")));
        assert_eq!(out.len(), 48);
        assert_eq!(names(&out).collect::<Vec<_>>(), ["x", "lib"]);
        assert_eq!(out[18], libc::DT_REG);
        assert_eq!(out[24 + 18], libc::DT_DIR);
    }

    #[test]
    fn a_truncated_buffer_ends_the_names() {
        let mut out = Vec::new();
        push(&mut out, 1024, 1, Kind::File, OsStr::new("whole"));
        push(&mut out, 1024, 2, Kind::File, OsStr::new("cut"));
        out.truncate(out.len() - 3);
        assert_eq!(names(&out).collect::<Vec<_>>(), ["whole"]);
    }
}
