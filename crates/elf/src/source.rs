//! Random-access reads from a byte slice or a file, for the ELF parser.
//!
//! The parser needs a handful of small pieces of an object (header, program
//! headers, dynamic segment, a few strings), never the whole file: shared
//! libraries run to hundreds of megabytes. Every read is checked against the
//! input's length before anything is allocated, so a corrupt size field gives
//! [`Fault::Malformed`], never a huge allocation or a panic.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Why a read or a parse step failed, before the input is attached.
#[derive(Debug)]
pub(crate) enum Fault {
    NotElf,
    Malformed(String),
    Io(io::Error),
}

/// Something the parser can read pieces of.
pub(crate) trait Source {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// Exactly `len` bytes at `offset`; `what` names the piece for messages.
    fn read_at(&self, offset: u64, len: u64, what: &str) -> Result<Cow<'_, [u8]>, Fault>;

    /// Up to `max` bytes at `offset`, fewer at the end of the input.
    fn read_upto(&self, offset: u64, max: u64, what: &str) -> Result<Cow<'_, [u8]>, Fault> {
        if offset >= self.len() {
            return Ok(Cow::Borrowed(&[]));
        }
        self.read_at(offset, (self.len() - offset).min(max), what)
    }
}

fn check_range(total: u64, offset: u64, len: u64, what: &str) -> Result<(), Fault> {
    match offset.checked_add(len) {
        Some(end) if end <= total => Ok(()),
        _ => Err(Fault::Malformed(format!(
            "{what} at offset {offset:#x}, {len:#x} bytes long, lies beyond the end ({total:#x} bytes)"
        ))),
    }
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, len: u64, what: &str) -> Result<Cow<'_, [u8]>, Fault> {
        check_range(Source::len(self), offset, len, what)?;
        // Both fit in usize: they are bounded by the slice length, checked above.
        let start = offset as usize;
        let end = start + len as usize;
        Ok(Cow::Borrowed(&self[start..end]))
    }
}

/// A file with its length taken once, when opened.
pub(crate) struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: u64, what: &str) -> Result<Cow<'_, [u8]>, Fault> {
        check_range(self.len, offset, len, what)?;
        let len = usize::try_from(len).map_err(|_| {
            Fault::Malformed(format!("{what}: {len:#x} bytes does not fit in memory"))
        })?;
        let mut buf = vec![0; len];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(Fault::Io)?;
        Ok(Cow::Owned(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_are_bounds_checked() {
        let bytes: &[u8] = b"0123456789";
        assert_eq!(&*bytes.read_at(2, 3, "x").unwrap(), b"234");
        assert!(matches!(bytes.read_at(8, 3, "x"), Err(Fault::Malformed(_))));
        assert!(matches!(
            bytes.read_at(u64::MAX, 2, "x"),
            Err(Fault::Malformed(_))
        ));
        assert_eq!(&*bytes.read_upto(7, 100, "x").unwrap(), b"789");
        assert_eq!(&*bytes.read_upto(70, 100, "x").unwrap(), b"");
    }

    #[test]
    fn file_reads_match_slice_reads() {
        let path = "/usr/bin/date";
        let whole = std::fs::read(path).unwrap();
        let src = FileSource::new(File::open(path).unwrap()).unwrap();
        assert_eq!(src.len(), whole.len() as u64);
        assert_eq!(&*src.read_at(100, 50, "x").unwrap(), &whole[100..150]);
        assert!(matches!(
            src.read_at(src.len() - 1, 2, "x"),
            Err(Fault::Malformed(_))
        ));
    }
}
