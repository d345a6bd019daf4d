//! What an ELF object tells the dynamic loader: class, machine, `PT_INTERP`,
//! and the `DT_NEEDED` / `DT_RPATH` / `DT_RUNPATH` / `DT_SONAME` strings.
//!
//! Guarantees: strings come back as raw bytes (`OsString`), never through
//! UTF-8; only the ELF header, the program headers, the dynamic segment and
//! the referenced strings are read, so a 200 MB library costs a few reads;
//! any truncated or inconsistent input gives an [`Error`], never a panic or
//! an allocation larger than the input. `goblin` decodes the header, program
//! headers and dynamic entries; string addresses are mapped to file offsets
//! here, through `PT_LOAD` segments, with checked arithmetic.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::dynamic::{
    DF_1_NODEFLIB, DT_FLAGS_1, DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, DT_STRSZ, DT_STRTAB,
};
use goblin::elf::header::{EI_CLASS, EI_DATA, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB};
use goblin::elf::program_header::{PT_DYNAMIC, PT_INTERP, PT_LOAD};
use goblin::elf::{Dynamic, Elf, ProgramHeader};

use crate::error::{Error, Input};
use crate::source::{Fault, FileSource, Source};

/// The four bytes every ELF file starts with.
pub const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// `PATH_MAX`: the kernel refuses a longer `PT_INTERP`.
const MAX_INTERP: u64 = 4096;
/// Far beyond any real dynamic segment (a few hundred entries).
const MAX_DYNAMIC: u64 = 1 << 20;
/// Far beyond any real `DT_NEEDED` name or `DT_RPATH` list.
const MAX_STRING: u64 = 1 << 20;
/// Strings are read in pieces of this size until their NUL.
const STRING_CHUNK: u64 = 256;

/// ELF class: the word size of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// `ELFCLASS32`.
    Elf32,
    /// `ELFCLASS64`.
    Elf64,
}

/// The loader-relevant facts of one ELF object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// Word size.
    pub class: Class,
    /// `e_machine`, e.g. 62 for x86-64 (see [`goblin::elf::header`]).
    pub machine: u16,
    /// `PT_INTERP`, up to its first NUL; `None` for static executables and most libraries.
    pub interp: Option<PathBuf>,
    /// `DT_NEEDED` names, in file order.
    pub needed: Vec<OsString>,
    /// Each `DT_RPATH` string as written (colon-separated lists are not split).
    pub rpath: Vec<OsString>,
    /// Each `DT_RUNPATH` string as written.
    pub runpath: Vec<OsString>,
    /// `DT_SONAME`.
    pub soname: Option<OsString>,
    /// `DF_1_NODEFLIB` in `DT_FLAGS_1`: the loader skips ld.so.cache and the
    /// default directories for this object's dependencies.
    pub nodeflib: bool,
}

/// Parses an ELF object held in memory. Same as [`ElfInfo::parse`].
pub fn parse(bytes: &[u8]) -> Result<ElfInfo, Error> {
    ElfInfo::parse(bytes)
}

impl ElfInfo {
    /// Parses an ELF object held in memory.
    pub fn parse(bytes: &[u8]) -> Result<ElfInfo, Error> {
        parse_source(bytes).map_err(|fault| attach(fault, Input::Memory))
    }

    /// Reads the parts of the ELF file at `path` the loader looks at.
    pub fn read(path: &Path) -> Result<ElfInfo, Error> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let src = FileSource::new(file).map_err(|e| Error::io(path, e))?;
        parse_source(&src).map_err(|fault| attach(fault, Input::File(path.to_path_buf())))
    }
}

pub(crate) fn attach(fault: Fault, input: Input) -> Error {
    match fault {
        Fault::NotElf => Error::NotElf { input },
        Fault::Malformed(reason) => Error::MalformedElf { input, reason },
        Fault::Io(source) => match input {
            Input::File(path) => Error::Io { path, source },
            Input::Memory => Error::MalformedElf {
                input,
                reason: source.to_string(),
            },
        },
    }
}

fn malformed(what: &str, err: impl std::fmt::Display) -> Fault {
    Fault::Malformed(format!("{what}: {err}"))
}

pub(crate) fn parse_source<S: Source + ?Sized>(src: &S) -> Result<ElfInfo, Fault> {
    let ident = src.read_upto(0, 64, "ELF header")?;
    if ident.len() < ELF_MAGIC.len() || &ident[..4] != ELF_MAGIC {
        return Err(Fault::NotElf);
    }
    let header = Elf::parse_header(&ident).map_err(|e| malformed("ELF header", e))?;
    let class = match header.e_ident[EI_CLASS] {
        ELFCLASS32 => Class::Elf32,
        ELFCLASS64 => Class::Elf64,
        other => return Err(Fault::Malformed(format!("unknown ELF class {other}"))),
    };
    let endian = match header.e_ident[EI_DATA] {
        ELFDATA2LSB => Endian::Little,
        ELFDATA2MSB => Endian::Big,
        other => {
            return Err(Fault::Malformed(format!(
                "unknown ELF data encoding {other}"
            )))
        }
    };
    let container = match class {
        Class::Elf32 => Container::Little,
        Class::Elf64 => Container::Big,
    };
    let ctx = Ctx::new(container, endian);

    let phdrs = program_headers(src, &header, ctx)?;
    let interp = read_interp(src, &phdrs)?;
    let mut info = ElfInfo {
        class,
        machine: header.e_machine,
        interp,
        needed: Vec::new(),
        rpath: Vec::new(),
        runpath: Vec::new(),
        soname: None,
        nodeflib: false,
    };
    if let Some(dynamic) = phdrs.iter().find(|p| p.p_type == PT_DYNAMIC) {
        read_dynamic(src, &phdrs, dynamic, ctx, &mut info)?;
    }
    Ok(info)
}

fn program_headers<S: Source + ?Sized>(
    src: &S,
    header: &goblin::elf::Header,
    ctx: Ctx,
) -> Result<Vec<ProgramHeader>, Fault> {
    let count = u64::from(header.e_phnum);
    if count == 0 {
        return Ok(Vec::new());
    }
    let entry = ProgramHeader::size(ctx) as u64;
    if u64::from(header.e_phentsize) != entry {
        return Err(Fault::Malformed(format!(
            "program header entries are {} bytes, expected {entry}",
            header.e_phentsize
        )));
    }
    // count < 2^16 and entry <= 56: no overflow.
    let table = src.read_at(header.e_phoff, count * entry, "program header table")?;
    ProgramHeader::parse(&table, 0, count as usize, ctx)
        .map_err(|e| malformed("program headers", e))
}

fn read_interp<S: Source + ?Sized>(
    src: &S,
    phdrs: &[ProgramHeader],
) -> Result<Option<PathBuf>, Fault> {
    let Some(ph) = phdrs.iter().find(|p| p.p_type == PT_INTERP) else {
        return Ok(None);
    };
    if ph.p_filesz > MAX_INTERP {
        return Err(Fault::Malformed(format!(
            "PT_INTERP is {:#x} bytes, longer than PATH_MAX",
            ph.p_filesz
        )));
    }
    let bytes = src.read_at(ph.p_offset, ph.p_filesz, "PT_INTERP")?;
    let path = until_nul(&bytes);
    if path.is_empty() {
        return Err(Fault::Malformed("PT_INTERP is empty".to_owned()));
    }
    Ok(Some(PathBuf::from(OsString::from_vec(path.to_vec()))))
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// Where the dynamic string table lies in the file.
struct StrTab {
    offset: u64,
    /// `DT_STRSZ`, or what is left of the input when it is absent.
    size: u64,
}

fn read_dynamic<S: Source + ?Sized>(
    src: &S,
    phdrs: &[ProgramHeader],
    dynamic: &ProgramHeader,
    ctx: Ctx,
    info: &mut ElfInfo,
) -> Result<(), Fault> {
    if dynamic.p_filesz > MAX_DYNAMIC {
        return Err(Fault::Malformed(format!(
            "PT_DYNAMIC is {:#x} bytes long",
            dynamic.p_filesz
        )));
    }
    let bytes = src.read_at(dynamic.p_offset, dynamic.p_filesz, "PT_DYNAMIC")?;
    // goblin reads the segment at the p_offset of the first PT_DYNAMIC it is
    // given; it is given exactly the segment, so that offset becomes 0.
    let mut local = dynamic.clone();
    local.p_offset = 0;
    let Some(parsed) =
        Dynamic::parse(&bytes, &[local], ctx).map_err(|e| malformed("PT_DYNAMIC", e))?
    else {
        return Ok(());
    };

    let mut strtab_addr = None;
    let mut strsz = None;
    for entry in &parsed.dyns {
        match entry.d_tag {
            DT_STRTAB => strtab_addr = Some(entry.d_val),
            DT_STRSZ => strsz = Some(entry.d_val),
            DT_FLAGS_1 => info.nodeflib = entry.d_val & DF_1_NODEFLIB != 0,
            _ => {}
        }
    }
    let wants_strings = parsed
        .dyns
        .iter()
        .any(|d| matches!(d.d_tag, DT_NEEDED | DT_RPATH | DT_RUNPATH | DT_SONAME));
    if !wants_strings {
        return Ok(());
    }
    let addr = strtab_addr.ok_or_else(|| Fault::Malformed("DT_STRTAB missing".to_owned()))?;
    let offset = vm_to_offset(phdrs, addr).ok_or_else(|| {
        Fault::Malformed(format!(
            "DT_STRTAB address {addr:#x} is not in any PT_LOAD segment"
        ))
    })?;
    let left = src.len().saturating_sub(offset);
    let strtab = StrTab {
        offset,
        size: strsz.map_or(left, |s| s.min(left)),
    };

    for entry in &parsed.dyns {
        let slot = match entry.d_tag {
            DT_NEEDED => &mut info.needed,
            DT_RPATH => &mut info.rpath,
            DT_RUNPATH => &mut info.runpath,
            DT_SONAME => {
                info.soname = Some(read_string(src, &strtab, entry.d_val, "DT_SONAME")?);
                continue;
            }
            _ => continue,
        };
        let what = match entry.d_tag {
            DT_NEEDED => "DT_NEEDED",
            DT_RPATH => "DT_RPATH",
            _ => "DT_RUNPATH",
        };
        slot.push(read_string(src, &strtab, entry.d_val, what)?);
    }
    Ok(())
}

/// The file offset of virtual address `addr`, through the `PT_LOAD` segment
/// whose file-backed part holds it.
fn vm_to_offset(phdrs: &[ProgramHeader], addr: u64) -> Option<u64> {
    phdrs.iter().filter(|p| p.p_type == PT_LOAD).find_map(|p| {
        let delta = addr.checked_sub(p.p_vaddr)?;
        (delta < p.p_filesz).then(|| p.p_offset.checked_add(delta))?
    })
}

fn read_string<S: Source + ?Sized>(
    src: &S,
    strtab: &StrTab,
    index: u64,
    what: &str,
) -> Result<OsString, Fault> {
    if index >= strtab.size {
        return Err(Fault::Malformed(format!(
            "{what} string index {index:#x} is outside the string table ({:#x} bytes)",
            strtab.size
        )));
    }
    let start = strtab
        .offset
        .checked_add(index)
        .ok_or_else(|| Fault::Malformed(format!("{what} string offset overflows")))?;
    let limit = (strtab.size - index).min(MAX_STRING);
    let mut out = Vec::new();
    let mut done = 0;
    while done < limit {
        let chunk: Cow<'_, [u8]> =
            src.read_upto(start + done, STRING_CHUNK.min(limit - done), what)?;
        if chunk.is_empty() {
            break;
        }
        if let Some(end) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(OsString::from_vec(out));
        }
        out.extend_from_slice(&chunk);
        done += chunk.len() as u64;
    }
    Err(Fault::Malformed(format!(
        "{what} string at {start:#x} has no terminating NUL"
    )))
}

#[cfg(test)]
mod tests;
