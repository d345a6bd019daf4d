use std::os::unix::ffi::OsStrExt;

use goblin::elf::header::{EM_386, EM_AARCH64, EM_X86_64};

use super::*;
use crate::testelf::ElfSpec;

const DATE: &str = "/usr/bin/date";
const LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";

#[test]
fn host_date_is_dynamic_x86_64_needing_libc() {
    let info = ElfInfo::read(Path::new(DATE)).unwrap();
    assert_eq!(info.class, Class::Elf64);
    assert_eq!(info.machine, EM_X86_64);
    assert_eq!(
        info.interp.as_deref(),
        Some(Path::new("/lib64/ld-linux-x86-64.so.2"))
    );
    assert!(
        info.needed.iter().any(|n| n == "libc.so.6"),
        "{:?}",
        info.needed
    );
    assert_eq!(info.soname, None);
}

#[test]
fn host_libc_has_soname_and_needs_the_loader() {
    let info = ElfInfo::read(Path::new(LIBC)).unwrap();
    assert_eq!(
        info.soname.as_deref(),
        Some(std::ffi::OsStr::new("libc.so.6"))
    );
    assert_eq!(
        info.interp.as_deref(),
        Some(Path::new("/lib64/ld-linux-x86-64.so.2"))
    );
    assert!(
        info.needed.iter().any(|n| n == "ld-linux-x86-64.so.2"),
        "{:?}",
        info.needed
    );
}

#[test]
fn reading_a_file_equals_parsing_its_bytes() {
    for path in [DATE, LIBC, "/bin/bash"] {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(
            ElfInfo::read(Path::new(path)).unwrap(),
            parse(&bytes).unwrap(),
            "{path}"
        );
    }
}

#[test]
fn constructed_objects_round_trip_every_field() {
    let bad_utf8 = b"libn\xffn.so.1".to_vec();
    for (class, big_endian, machine) in [
        (Class::Elf64, false, EM_X86_64),
        (Class::Elf32, false, EM_386),
        (Class::Elf64, true, EM_AARCH64),
        (Class::Elf32, true, 8),
    ] {
        let spec = ElfSpec {
            class,
            big_endian,
            machine,
            interp: Some(b"/lib/ld-test.so.1".to_vec()),
            needed: vec![b"liba.so.1".to_vec(), bad_utf8.clone()],
            rpath: Some(b"$ORIGIN/../lib:/opt/x".to_vec()),
            runpath: Some(b"/run/path".to_vec()),
            soname: Some(b"libself.so.2".to_vec()),
            nodeflib: true,
        };
        let info = parse(&spec.build()).unwrap();
        assert_eq!(info.class, class);
        assert_eq!(info.machine, machine);
        assert_eq!(info.interp, Some(PathBuf::from("/lib/ld-test.so.1")));
        assert_eq!(info.needed.len(), 2);
        assert_eq!(info.needed[0], "liba.so.1");
        assert_eq!(
            info.needed[1].as_bytes(),
            &bad_utf8[..],
            "non-UTF-8 name kept byte for byte"
        );
        assert_eq!(info.rpath, vec![OsString::from("$ORIGIN/../lib:/opt/x")]);
        assert_eq!(info.runpath, vec![OsString::from("/run/path")]);
        assert_eq!(info.soname, Some(OsString::from("libself.so.2")));
        assert!(info.nodeflib);
    }
}

#[test]
fn static_object_without_dynamic_strings() {
    let info = parse(&ElfSpec::default().build()).unwrap();
    assert_eq!(info.interp, None);
    assert!(info.needed.is_empty() && info.rpath.is_empty() && info.runpath.is_empty());
    assert!(!info.nodeflib);
}

#[test]
fn non_elf_and_empty_inputs_are_not_elf() {
    for bytes in [&b""[..], b"\x7fEL", b"#!/bin/sh\n", b"MZ\x90\x00"] {
        assert!(
            matches!(
                parse(bytes),
                Err(Error::NotElf {
                    input: Input::Memory
                })
            ),
            "{bytes:?}"
        );
    }
    let err = ElfInfo::read(Path::new("/etc/hostname")).unwrap_err();
    assert!(err.to_string().contains("/etc/hostname"), "{err}");
    let err = ElfInfo::read(Path::new("/nonexistent/x")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert_eq!(err.to_string(), "cannot read /nonexistent/x");
}

#[test]
fn out_of_range_string_index_is_an_error() {
    let mut bytes = ElfSpec {
        needed: vec![b"liba.so".to_vec()],
        ..ElfSpec::default()
    }
    .build();
    // The first dynamic entry is DT_NEEDED; point its value far away.
    let dyn_off = bytes.len() - 16 * 4;
    bytes[dyn_off + 8..dyn_off + 16].copy_from_slice(&0xffff_u64.to_le_bytes());
    let err = parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("DT_NEEDED"), "{err}");
}

/// A deterministic byte stream, so a failing mutation can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn must_not_panic(what: &str, bytes: &[u8]) {
    let outcome = std::panic::catch_unwind(|| {
        let _ = parse(bytes);
    });
    assert!(outcome.is_ok(), "parse panicked on {what}");
}

#[test]
fn truncated_and_corrupted_host_elf_never_panics() {
    let whole = std::fs::read(DATE).unwrap();
    let dyn_start = {
        // Corrupt where it matters most: the headers and the dynamic segment.
        let info_bytes = &whole;
        let hdr = Elf::parse_header(info_bytes).unwrap();
        let ctx = Ctx::new(Container::Big, Endian::Little);
        let phdrs =
            ProgramHeader::parse(info_bytes, hdr.e_phoff as usize, hdr.e_phnum as usize, ctx)
                .unwrap();
        let d = phdrs.iter().find(|p| p.p_type == PT_DYNAMIC).unwrap();
        d.p_offset as usize
    };

    let mut cut = 0;
    while cut < whole.len() {
        must_not_panic(&format!("{DATE} cut at {cut}"), &whole[..cut]);
        cut += if cut < 4096 { 1 } else { 509 };
    }

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let regions = [(0, 64 + 56 * 14), (dyn_start, dyn_start + 600)];
    for round in 0..6000 {
        let mut bytes = whole.clone();
        let (lo, hi) = regions[round % regions.len()];
        for _ in 0..1 + rng.next() % 4 {
            let at = lo + (rng.next() as usize) % (hi - lo);
            bytes[at] ^= 1 << (rng.next() % 8);
            if rng.next() % 4 == 0 {
                bytes[at] = 0xff;
            }
        }
        must_not_panic(&format!("{DATE} mutation round {round}"), &bytes);
    }

    // Constructed objects of every class and byte order, cut everywhere.
    for (class, big_endian) in [(Class::Elf32, false), (Class::Elf64, true)] {
        let bytes = ElfSpec {
            class,
            big_endian,
            interp: Some(b"/lib/ld.so".to_vec()),
            needed: vec![b"liba.so".to_vec()],
            rpath: Some(b"/r".to_vec()),
            ..ElfSpec::default()
        }
        .build();
        for cut in 0..bytes.len() {
            must_not_panic(&format!("{class:?} cut at {cut}"), &bytes[..cut]);
        }
        assert!(parse(&bytes).is_ok());
    }
}

#[test]
fn truncated_file_reports_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short");
    let whole = std::fs::read(LIBC).unwrap();
    std::fs::write(&path, &whole[..2000]).unwrap();
    let err = ElfInfo::read(&path).unwrap_err();
    assert!(matches!(err, Error::MalformedElf { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );
}
