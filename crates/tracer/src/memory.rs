//! Reading a stopped tracee's memory, and writing a call's results into
//! it.
//!
//! Strings are read with `process_vm_readv(2)` in chunks that never cross a
//! page boundary, so a path that ends just before an unmapped page is still
//! read; `PTRACE_PEEKDATA` is the fallback where `process_vm_readv` is
//! refused (e.g. a kernel without `CONFIG_CROSS_MEMORY_ATTACH`). Bytes are
//! kept as bytes: a path is an `OsString`, never a lossy `String`.

use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::unistd::Pid;

/// Longest path the kernel accepts, terminating NUL included (`PATH_MAX`).
pub const PATH_MAX: usize = 4096;

const PAGE: usize = 4096;

/// Why a tracee string could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("reading tracee {pid} memory at {addr:#x}: {errno}")]
    Read { pid: Pid, addr: u64, errno: Errno },
    #[error("writing tracee {pid} memory at {addr:#x}: {errno}")]
    Write { pid: Pid, addr: u64, errno: Errno },
    #[error("string at {addr:#x} in tracee {pid} is longer than {limit} bytes")]
    TooLong { pid: Pid, addr: u64, limit: usize },
    #[error("null pointer passed as a path by tracee {pid}")]
    Null { pid: Pid },
}

/// Reads the NUL-terminated string at `addr`, at most `limit` bytes before
/// the NUL.
pub fn read_cstring(pid: Pid, addr: u64, limit: usize) -> Result<OsString, MemoryError> {
    if addr == 0 {
        return Err(MemoryError::Null { pid });
    }
    let mut out = Vec::with_capacity(256);
    let mut cursor = addr;
    let mut buf = [0u8; PAGE];
    while out.len() <= limit {
        // Never cross a page: the next page may be unmapped.
        let chunk = PAGE - (cursor as usize % PAGE);
        let got = read_bytes(pid, cursor, &mut buf[..chunk])?;
        if let Some(nul) = got.iter().position(|&b| b == 0) {
            out.extend_from_slice(&got[..nul]);
            if out.len() > limit {
                break;
            }
            return Ok(OsString::from_vec(out));
        }
        out.extend_from_slice(got);
        cursor += chunk as u64;
    }
    Err(MemoryError::TooLong { pid, addr, limit })
}

/// Reads exactly `buf.len()` bytes at `addr` (a struct such as `open_how` or
/// `sockaddr_un`), returning the filled slice.
pub fn read_bytes(pid: Pid, addr: u64, buf: &mut [u8]) -> Result<&[u8], MemoryError> {
    let len = buf.len();
    let remote = [RemoteIoVec {
        base: addr as usize,
        len,
    }];
    match process_vm_readv(pid, &mut [IoSliceMut::new(buf)], &remote) {
        Ok(n) if n == len => Ok(&buf[..len]),
        Ok(_) | Err(Errno::ENOSYS) | Err(Errno::EPERM) => peek(pid, addr, buf),
        Err(errno) => Err(MemoryError::Read { pid, addr, errno }),
    }
}

/// Writes `data` at `addr` (a buffer the tracee passed to the call it is
/// stopped in), with `process_vm_writev(2)`, or `PTRACE_POKEDATA` where
/// that is refused.
pub fn write_bytes(pid: Pid, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
    let remote = [RemoteIoVec {
        base: addr as usize,
        len: data.len(),
    }];
    match process_vm_writev(pid, &[IoSlice::new(data)], &remote) {
        Ok(n) if n == data.len() => Ok(()),
        Ok(_) | Err(Errno::ENOSYS) | Err(Errno::EPERM) => poke(pid, addr, data),
        Err(errno) => Err(MemoryError::Write { pid, addr, errno }),
    }
}

/// `PTRACE_POKEDATA` fallback, one word at a time; the last word keeps the
/// tracee's bytes beyond `data`.
fn poke(pid: Pid, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
    const WORD: usize = std::mem::size_of::<libc::c_long>();
    let mut done = 0;
    while done < data.len() {
        let at = addr + done as u64;
        let n = WORD.min(data.len() - done);
        let mut bytes = [0u8; WORD];
        if n < WORD {
            read_bytes(pid, at, &mut bytes)?;
        }
        bytes[..n].copy_from_slice(&data[done..done + n]);
        let word = libc::c_long::from_ne_bytes(bytes);
        ptrace::write(pid, at as ptrace::AddressType, word).map_err(|errno| {
            MemoryError::Write {
                pid,
                addr: at,
                errno,
            }
        })?;
        done += n;
    }
    Ok(())
}

/// `PTRACE_PEEKDATA` fallback, one word at a time.
fn peek(pid: Pid, addr: u64, buf: &mut [u8]) -> Result<&[u8], MemoryError> {
    const WORD: usize = std::mem::size_of::<libc::c_long>();
    let mut done = 0;
    while done < buf.len() {
        let at = addr + done as u64;
        let word =
            ptrace::read(pid, at as ptrace::AddressType).map_err(|errno| MemoryError::Read {
                pid,
                addr: at,
                errno,
            })?;
        let bytes = word.to_ne_bytes();
        let n = WORD.min(buf.len() - done);
        buf[done..done + n].copy_from_slice(&bytes[..n]);
        done += n;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reading our own memory exercises the page-splitting logic: a string
    // that ends right before a page boundary and one that spans it.
    #[test]
    fn reads_own_strings_across_pages() {
        let me = nix::unistd::getpid();
        let mut page = vec![b'a'; PAGE * 3];
        let base = page.as_ptr() as usize;
        let start = (PAGE - base % PAGE) % PAGE + PAGE - 10; // 10 bytes before a boundary
        page[start + 20] = 0;
        let s = read_cstring(me, (base + start) as u64, PATH_MAX).unwrap();
        assert_eq!(s.len(), 20);
        let too_long = read_cstring(me, (base + start) as u64, 5);
        assert!(matches!(too_long, Err(MemoryError::TooLong { .. })));
        assert!(matches!(
            read_cstring(me, 0, 10),
            Err(MemoryError::Null { .. })
        ));
    }

    #[test]
    fn non_utf8_is_kept() {
        let me = nix::unistd::getpid();
        let bytes = b"/tmp/\xff\xfe\0";
        let s = read_cstring(me, bytes.as_ptr() as u64, PATH_MAX).unwrap();
        assert_eq!(s.into_vec(), b"/tmp/\xff\xfe");
    }
}
