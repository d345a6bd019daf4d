//! glibc's `/etc/ld.so.cache`: the map from soname to library path that
//! `ldconfig` writes and the dynamic loader consults.
//!
//! Reads the "new" format (magic `glibc-ld.so.cache`, version `1.1`), alone
//! (glibc >= 2.32's default) or after an old `ld.so-1.7.0` table (which is
//! skipped), in either byte order, with the optional extension block
//! (generator string, `glibc-hwcaps` subdirectory names). Every count and
//! offset is checked against the file before use: a corrupt cache gives an
//! [`Error::MalformedCache`], never a panic.
//!
//! [`LdCache::lookup`] mirrors glibc's `search_cache` for the entries it can
//! judge statically: among the entries for a soname, in file order, the first
//! whose flags fit the requesting object's ABI, preferring entries without a
//! hwcap (those for `glibc-hwcaps/*` or legacy hwcap subdirectories depend on
//! the CPU the program will run on, which a static analysis does not know).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::abi::Abi;
use crate::error::{Error, Input};
use crate::Class;

/// Where glibc looks for the cache.
pub const DEFAULT_PATH: &str = "/etc/ld.so.cache";

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const OLD_HEADER: usize = 16;
const OLD_ENTRY: usize = 12;
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const TAG_GENERATOR: u32 = 0;
const TAG_GLIBC_HWCAPS: u32 = 1;
/// Bit 62 of an entry's hwcap: the low 32 bits index the `glibc-hwcaps` names.
const HWCAP_EXTENSION: u64 = 1 << 62;

/// One `ld.so.cache` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// ABI flags, e.g. `0x0303` for x86-64 libc6.
    pub flags: i32,
    /// The soname, e.g. `libc.so.6`.
    pub key: OsString,
    /// The library's path, e.g. `/lib/x86_64-linux-gnu/libc.so.6`.
    pub value: PathBuf,
    /// Unused by current glibc; kept as read.
    pub osversion: u32,
    /// Hardware capability bits; 0 for a plain entry.
    pub hwcap: u64,
    /// For `glibc-hwcaps` entries, the subdirectory name (e.g. `x86-64-v3`).
    pub hwcaps_subdir: Option<OsString>,
}

/// A parsed `ld.so.cache`.
#[derive(Debug, Clone)]
pub struct LdCache {
    entries: Vec<CacheEntry>,
    by_key: HashMap<OsString, Vec<usize>>,
    generator: Option<OsString>,
}

/// A bounds-checked view of the file in one byte order.
struct Reader<'a> {
    bytes: &'a [u8],
    big: bool,
}

type Fault = String;

impl Reader<'_> {
    fn slice(&self, at: usize, len: usize, what: &str) -> Result<&[u8], Fault> {
        at.checked_add(len)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or_else(|| {
                format!(
                    "{what} at offset {at:#x} lies beyond the end ({:#x} bytes)",
                    self.bytes.len()
                )
            })
    }

    fn u32(&self, at: usize, what: &str) -> Result<u32, Fault> {
        let b: [u8; 4] = self
            .slice(at, 4, what)?
            .try_into()
            .map_err(|_| what.to_owned())?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&self, at: usize, what: &str) -> Result<u64, Fault> {
        let b: [u8; 8] = self
            .slice(at, 8, what)?
            .try_into()
            .map_err(|_| what.to_owned())?;
        Ok(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// The NUL-terminated string at `base + offset`.
    fn string(&self, base: usize, offset: u32, what: &str) -> Result<OsString, Fault> {
        let at = base
            .checked_add(offset as usize)
            .filter(|&at| at < self.bytes.len())
            .ok_or_else(|| format!("{what} string offset {offset:#x} lies beyond the end"))?;
        let rest = &self.bytes[at..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("{what} string at {at:#x} has no terminating NUL"))?;
        Ok(OsString::from_vec(rest[..len].to_vec()))
    }
}

fn u32_at(bytes: &[u8], at: usize, big: bool) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

/// Where the new-format header starts, after an optional old-format table.
fn find_new_header(bytes: &[u8]) -> Result<usize, Fault> {
    if bytes.starts_with(NEW_MAGIC) {
        return Ok(0);
    }
    if !bytes.starts_with(OLD_MAGIC) {
        return Err("unknown magic".to_owned());
    }
    // The old table's count is in the writer's byte order; try both.
    for big in [cfg!(target_endian = "big"), cfg!(target_endian = "little")] {
        let Some(nlibs) = u32_at(bytes, OLD_MAGIC.len() + 1, big) else {
            break;
        };
        let start = (nlibs as usize)
            .checked_mul(OLD_ENTRY)
            .and_then(|n| n.checked_add(OLD_HEADER))
            .and_then(|n| n.checked_next_multiple_of(8));
        if let Some(start) = start {
            if bytes
                .get(start..)
                .is_some_and(|rest| rest.starts_with(NEW_MAGIC))
            {
                return Ok(start);
            }
        }
    }
    Err("old-format cache without a new-format part (unsupported)".to_owned())
}

impl LdCache {
    /// Parses a cache held in memory.
    pub fn parse(bytes: &[u8]) -> Result<LdCache, Error> {
        Self::parse_inner(bytes).map_err(|reason| Error::MalformedCache {
            input: Input::Memory,
            reason,
        })
    }

    /// Reads and parses the cache at `path` (usually [`DEFAULT_PATH`]).
    pub fn read(path: &Path) -> Result<LdCache, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse_inner(&bytes).map_err(|reason| Error::MalformedCache {
            input: Input::File(path.to_path_buf()),
            reason,
        })
    }

    fn parse_inner(bytes: &[u8]) -> Result<LdCache, Fault> {
        let base = find_new_header(bytes)?;
        let endian = *bytes
            .get(base + 28)
            .ok_or_else(|| "header is truncated".to_owned())?;
        let big = match endian {
            0 => cfg!(target_endian = "big"),
            2 => false,
            3 => true,
            other => return Err(format!("invalid byte-order flag {other}")),
        };
        let r = Reader { bytes, big };
        r.slice(base, NEW_HEADER, "header")?;
        let nlibs = r.u32(base + 20, "entry count")? as usize;
        let extension = r.u32(base + 32, "extension offset")? as usize;
        let table = base + NEW_HEADER;
        let table_len = nlibs
            .checked_mul(NEW_ENTRY)
            .ok_or_else(|| format!("entry count {nlibs} overflows"))?;
        r.slice(table, table_len, "entry table")?;

        let (generator, hwcaps) = if extension == 0 {
            (None, Vec::new())
        } else {
            read_extension(&r, base, extension)?
        };

        let mut entries = Vec::with_capacity(nlibs);
        let mut by_key: HashMap<OsString, Vec<usize>> = HashMap::new();
        for i in 0..nlibs {
            let at = table + i * NEW_ENTRY;
            let flags = r.u32(at, "entry flags")? as i32;
            let key = r.string(base, r.u32(at + 4, "entry key")?, "entry key")?;
            let value = r.string(base, r.u32(at + 8, "entry value")?, "entry value")?;
            let osversion = r.u32(at + 12, "entry osversion")?;
            let hwcap = r.u64(at + 16, "entry hwcap")?;
            let hwcaps_subdir = if hwcap & HWCAP_EXTENSION != 0 {
                hwcaps.get(hwcap as u32 as usize).cloned()
            } else {
                None
            };
            by_key.entry(key.clone()).or_default().push(i);
            entries.push(CacheEntry {
                flags,
                key,
                value: PathBuf::from(value),
                osversion,
                hwcap,
                hwcaps_subdir,
            });
        }
        Ok(LdCache {
            entries,
            by_key,
            generator,
        })
    }

    /// All entries, in file order.
    pub fn entries(&self) -> &[CacheEntry] {
        &self.entries
    }

    /// Who wrote the cache, e.g. `ldconfig (Debian GLIBC 2.36-9) ...`, if recorded.
    pub fn generator(&self) -> Option<&OsStr> {
        self.generator.as_deref()
    }

    /// The path the loader takes from the cache for `soname`, requested by an
    /// object of this class and machine; `None` when no entry fits.
    pub fn lookup(&self, soname: &OsStr, class: Class, machine: u16) -> Option<&Path> {
        let abi = Abi::of(class, machine);
        let mut fitting = self
            .by_key
            .get(soname)?
            .iter()
            .map(|&i| &self.entries[i])
            .filter(|e| abi.cache_flags.contains(&e.flags));
        let first = fitting.next()?;
        if first.hwcap == 0 {
            return Some(&first.value);
        }
        let plain = fitting.find(|e| e.hwcap == 0).unwrap_or(first);
        Some(&plain.value)
    }
}

/// The generator string and `glibc-hwcaps` names of the extension block.
/// Extension and section offsets are file offsets; strings named by the
/// hwcaps section are relative to the new-format header, like entry strings.
fn read_extension(
    r: &Reader<'_>,
    base: usize,
    at: usize,
) -> Result<(Option<OsString>, Vec<OsString>), Fault> {
    if at % 4 != 0 {
        return Err(format!("extension offset {at:#x} is misaligned"));
    }
    if r.u32(at, "extension magic")? != EXTENSION_MAGIC {
        return Err(format!("bad extension magic at {at:#x}"));
    }
    let count = r.u32(at + 4, "extension count")? as usize;
    let sections = at + 8;
    r.slice(
        sections,
        count.checked_mul(16).ok_or("extension count overflows")?,
        "extension sections",
    )?;
    let mut generator = None;
    let mut hwcaps = Vec::new();
    for i in 0..count {
        let s = sections + i * 16;
        let tag = r.u32(s, "section tag")?;
        let offset = r.u32(s + 8, "section offset")? as usize;
        let size = r.u32(s + 12, "section size")? as usize;
        let data = r.slice(offset, size, "extension section")?;
        match tag {
            TAG_GENERATOR => generator = Some(OsString::from_vec(data.to_vec())),
            TAG_GLIBC_HWCAPS => {
                for j in 0..size / 4 {
                    let name = r.u32(offset + 4 * j, "glibc-hwcaps entry")?;
                    hwcaps.push(r.string(base, name, "glibc-hwcaps")?);
                }
            }
            _ => {}
        }
    }
    Ok((generator, hwcaps))
}

#[cfg(test)]
mod tests;
