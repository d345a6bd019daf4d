//! Test-only: builds small, valid ELF objects byte by byte, so parsers and
//! the resolver can be tested on inputs whose every field is known.

use goblin::elf::dynamic::{
    DF_1_NODEFLIB, DT_FLAGS_1, DT_NEEDED, DT_NULL, DT_RPATH, DT_RUNPATH, DT_SONAME, DT_STRSZ,
    DT_STRTAB,
};
use goblin::elf::header::EM_X86_64;
use goblin::elf::program_header::{PT_DYNAMIC, PT_INTERP, PT_LOAD};

use crate::Class;

const BASE: u64 = 0x40_0000;

/// Fields of the object to build; everything else is fixed.
#[derive(Debug, Clone)]
pub(crate) struct ElfSpec {
    pub class: Class,
    pub big_endian: bool,
    pub machine: u16,
    pub interp: Option<Vec<u8>>,
    pub needed: Vec<Vec<u8>>,
    pub rpath: Option<Vec<u8>>,
    pub runpath: Option<Vec<u8>>,
    pub soname: Option<Vec<u8>>,
    pub nodeflib: bool,
}

impl Default for ElfSpec {
    fn default() -> Self {
        ElfSpec {
            class: Class::Elf64,
            big_endian: false,
            machine: EM_X86_64,
            interp: None,
            needed: Vec::new(),
            rpath: None,
            runpath: None,
            soname: None,
            nodeflib: false,
        }
    }
}

struct Out {
    buf: Vec<u8>,
    big: bool,
    wide: bool,
}

impl Out {
    fn u16(&mut self, v: u16) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    fn u32(&mut self, v: u32) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    fn u64(&mut self, v: u64) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    /// A word of the object's class.
    fn word(&mut self, v: u64) {
        if self.wide {
            self.u64(v);
        } else {
            self.u32(u32::try_from(v).expect("test ELF fits in 32 bits"));
        }
    }
}

impl ElfSpec {
    pub fn build(&self) -> Vec<u8> {
        let wide = self.class == Class::Elf64;
        let (ehsize, phentsize, dynsize) = if wide { (64, 56, 16) } else { (52, 32, 8) };
        let phnum = 3u64;

        // String table: index 0 is the empty string.
        let mut strtab = vec![0u8];
        let mut add = |s: &[u8]| {
            let at = strtab.len() as u64;
            strtab.extend_from_slice(s);
            strtab.push(0);
            at
        };
        let mut dyns: Vec<(u64, u64)> = Vec::new();
        for name in &self.needed {
            dyns.push((DT_NEEDED, add(name)));
        }
        if let Some(s) = &self.soname {
            dyns.push((DT_SONAME, add(s)));
        }
        if let Some(s) = &self.rpath {
            dyns.push((DT_RPATH, add(s)));
        }
        if let Some(s) = &self.runpath {
            dyns.push((DT_RUNPATH, add(s)));
        }
        if self.nodeflib {
            dyns.push((DT_FLAGS_1, DF_1_NODEFLIB));
        }
        let interp: Vec<u8> = match &self.interp {
            Some(p) => p.iter().copied().chain([0]).collect(),
            None => Vec::new(),
        };

        let interp_off = ehsize + phentsize * phnum;
        let strtab_off = interp_off + interp.len() as u64;
        let dyn_off = (strtab_off + strtab.len() as u64).next_multiple_of(8);
        dyns.push((DT_STRTAB, BASE + strtab_off));
        dyns.push((DT_STRSZ, strtab.len() as u64));
        dyns.push((DT_NULL, 0));
        let dyn_len = dynsize * dyns.len() as u64;
        let total = dyn_off + dyn_len;

        let mut o = Out {
            buf: Vec::new(),
            big: self.big_endian,
            wide,
        };
        o.buf.extend_from_slice(b"\x7fELF");
        o.buf.push(if wide { 2 } else { 1 });
        o.buf.push(if self.big_endian { 2 } else { 1 });
        o.buf.push(1); // EV_CURRENT
        o.buf.resize(16, 0);
        o.u16(3); // ET_DYN
        o.u16(self.machine);
        o.u32(1);
        o.word(0); // entry
        o.word(ehsize); // phoff
        o.word(0); // shoff
        o.u32(0); // flags
        o.u16(ehsize as u16);
        o.u16(phentsize as u16);
        o.u16(phnum as u16);
        o.u16(0); // shentsize
        o.u16(0); // shnum
        o.u16(0); // shstrndx
        assert_eq!(o.buf.len() as u64, ehsize);

        let interp_type = if interp.is_empty() {
            0x6fff_fff0
        } else {
            PT_INTERP
        }; // unused type when absent
        let segments = [
            (PT_LOAD, 0, total),
            (interp_type, interp_off, interp.len() as u64),
            (PT_DYNAMIC, dyn_off, dyn_len),
        ];
        for (kind, off, len) in segments {
            o.u32(kind);
            if wide {
                o.u32(4); // flags
            }
            o.word(off);
            o.word(BASE + off); // vaddr
            o.word(BASE + off); // paddr
            o.word(len);
            o.word(len);
            if !wide {
                o.u32(4);
            }
            o.word(8);
        }
        o.buf.extend_from_slice(&interp);
        o.buf.extend_from_slice(&strtab);
        o.buf.resize(dyn_off as usize, 0);
        for (tag, val) in dyns {
            o.word(tag);
            o.word(val);
        }
        assert_eq!(o.buf.len() as u64, total);
        o.buf
    }
}

/// One entry to write: flags, key, value, hwcap.
pub(crate) type Row<'a> = (i32, &'a str, &'a str, u64);

/// Writes an `ld.so.cache` the way `ldconfig` lays it out.
pub(crate) fn ld_cache(
    old_prefix: bool,
    big: bool,
    rows: &[Row<'_>],
    hwcaps: &[&str],
    generator: Option<&str>,
) -> Vec<u8> {
    let w32 = |out: &mut Vec<u8>, v: u32| {
        out.extend_from_slice(&if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    };
    let w64 = |out: &mut Vec<u8>, v: u64| {
        out.extend_from_slice(&if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    };
    let mut out = Vec::new();
    if old_prefix {
        out.extend_from_slice(b"ld.so-1.7.0");
        out.push(0);
        w32(&mut out, 1); // one old entry, contents irrelevant
        out.extend_from_slice(&[0; 12]);
        out.resize(out.len().next_multiple_of(8), 0);
    }
    let base = out.len();
    let strings_at = 48 + rows.len() * 24; // relative to base
    let mut strings = Vec::new();
    let mut add = |s: &str| {
        let at = (strings_at + strings.len()) as u32;
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        at
    };
    let offsets: Vec<(u32, u32)> = rows.iter().map(|&(_, k, v, _)| (add(k), add(v))).collect();
    let hwcap_names: Vec<u32> = hwcaps.iter().map(|h| add(h)).collect();
    let ext_at = (base + strings_at + strings.len()).next_multiple_of(4);
    let has_ext = generator.is_some() || !hwcaps.is_empty();

    out.extend_from_slice(b"glibc-ld.so.cache1.1");
    w32(&mut out, rows.len() as u32);
    w32(&mut out, strings.len() as u32);
    out.push(if big { 3 } else { 2 });
    out.extend_from_slice(&[0; 3]);
    w32(&mut out, if has_ext { ext_at as u32 } else { 0 });
    out.extend_from_slice(&[0; 12]);
    for (&(flags, _, _, hwcap), (k, v)) in rows.iter().zip(&offsets) {
        w32(&mut out, flags as u32);
        w32(&mut out, *k);
        w32(&mut out, *v);
        w32(&mut out, 0);
        w64(&mut out, hwcap);
    }
    out.extend_from_slice(&strings);
    if has_ext {
        out.resize(ext_at, 0);
        let sections = usize::from(generator.is_some()) + usize::from(!hwcaps.is_empty());
        w32(&mut out, 0xeaa4_2174);
        w32(&mut out, sections as u32);
        let mut data_at = ext_at + 8 + 16 * sections;
        if let Some(g) = generator {
            for v in [0, 0, data_at as u32, g.len() as u32] {
                w32(&mut out, v);
            }
            data_at += g.len().next_multiple_of(4);
        }
        if !hwcaps.is_empty() {
            for v in [1, 0, data_at as u32, 4 * hwcaps.len() as u32] {
                w32(&mut out, v);
            }
        }
        if let Some(g) = generator {
            out.extend_from_slice(g.as_bytes());
            out.resize(out.len().next_multiple_of(4), 0);
        }
        for h in hwcap_names {
            w32(&mut out, h);
        }
    }
    out
}
