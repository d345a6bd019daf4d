use goblin::elf::header::{EM_386, EM_AARCH64, EM_X86_64};

use super::*;
use crate::testelf::{ld_cache as build, Row};

const X86_64: i32 = 0x0303;
const I386: i32 = 0x0003;
const AARCH64: i32 = 0x0a03;

fn rows() -> Vec<Row<'static>> {
    vec![
        (
            X86_64,
            "libz.so.1",
            "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libz.so.1",
            HWCAP_EXTENSION,
        ),
        (X86_64, "libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", 0),
        (X86_64, "libz.so.1", "/usr/local/lib/libz.so.1", 0),
        (I386, "libz.so.1", "/lib/i386-linux-gnu/libz.so.1", 0),
        (AARCH64, "libz.so.1", "/lib/aarch64-linux-gnu/libz.so.1", 0),
        (I386, "libonly32.so", "/lib/i386-linux-gnu/libonly32.so", 0),
        (
            X86_64,
            "libhw.so",
            "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v2/libhw.so",
            HWCAP_EXTENSION,
        ),
    ]
}

#[test]
fn lookup_picks_the_entry_fitting_the_abi() {
    for (old_prefix, big) in [(false, false), (true, false), (false, true), (true, true)] {
        let bytes = build(
            old_prefix,
            big,
            &rows(),
            &["x86-64-v3"],
            Some("test generator"),
        );
        let cache =
            LdCache::parse(&bytes).unwrap_or_else(|e| panic!("old={old_prefix} big={big}: {e}"));
        let z = OsStr::new("libz.so.1");
        assert_eq!(
            cache.lookup(z, Class::Elf64, EM_X86_64),
            Some(Path::new("/lib/x86_64-linux-gnu/libz.so.1")),
            "plain entry preferred over glibc-hwcaps, first in file order wins"
        );
        assert_eq!(
            cache.lookup(z, Class::Elf32, EM_386),
            Some(Path::new("/lib/i386-linux-gnu/libz.so.1"))
        );
        assert_eq!(
            cache.lookup(z, Class::Elf64, EM_AARCH64),
            Some(Path::new("/lib/aarch64-linux-gnu/libz.so.1"))
        );
        assert_eq!(
            cache.lookup(OsStr::new("libonly32.so"), Class::Elf64, EM_X86_64),
            None
        );
        assert_eq!(
            cache.lookup(OsStr::new("libnothere.so"), Class::Elf64, EM_X86_64),
            None
        );
        assert_eq!(
            cache.lookup(OsStr::new("libhw.so"), Class::Elf64, EM_X86_64),
            Some(Path::new(
                "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v2/libhw.so"
            )),
            "a hwcap-only library is still found"
        );
        assert_eq!(cache.generator(), Some(OsStr::new("test generator")));
        assert_eq!(cache.entries().len(), 7);
        assert_eq!(
            cache.entries()[0].hwcaps_subdir.as_deref(),
            Some(OsStr::new("x86-64-v3"))
        );
        assert_eq!(cache.entries()[1].hwcaps_subdir, None);
    }
}

#[test]
fn host_cache_resolves_libc() {
    let cache = LdCache::read(Path::new(DEFAULT_PATH)).unwrap();
    assert!(cache.entries().len() > 10);
    assert_eq!(
        cache.lookup(OsStr::new("libc.so.6"), Class::Elf64, EM_X86_64),
        Some(Path::new("/lib/x86_64-linux-gnu/libc.so.6"))
    );
    assert!(cache.entries().iter().all(|e| e.value.is_absolute()));
    // Every x86-64 entry's file exists (ldconfig only records what it saw).
    let missing: Vec<_> = cache
        .entries()
        .iter()
        .filter(|e| e.flags == X86_64 && !e.value.exists())
        .collect();
    assert!(missing.len() < 3, "{missing:?}");
}

#[test]
fn corrupt_caches_are_errors_not_panics() {
    let good = build(true, false, &rows(), &["x86-64-v3"], Some("gen"));
    assert!(LdCache::parse(&good).is_ok());
    for cut in 0..good.len() {
        let r = std::panic::catch_unwind(|| LdCache::parse(&good[..cut]));
        assert!(r.is_ok(), "panic at cut {cut}");
    }
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bytes = good.clone();
        let at = (state % bytes.len() as u64) as usize;
        bytes[at] = (state >> 32) as u8;
        let r = std::panic::catch_unwind(|| {
            let _ = LdCache::parse(&bytes).map(|c| {
                c.lookup(OsStr::new("libz.so.1"), Class::Elf64, EM_X86_64)
                    .map(Path::to_path_buf)
            });
        });
        assert!(r.is_ok(), "panic in round {round}");
    }
    let host = std::fs::read(DEFAULT_PATH).unwrap();
    for cut in (0..host.len()).step_by(97) {
        assert!(std::panic::catch_unwind(|| LdCache::parse(&host[..cut])).is_ok());
    }
}

#[test]
fn specific_corruptions_are_reported() {
    let good = build(false, false, &rows(), &[], None);
    let err = LdCache::parse(b"not a cache at all").unwrap_err();
    assert!(err.to_string().contains("unknown magic"), "{err}");
    // Entry count far beyond the file.
    let mut bytes = good.clone();
    bytes[20..24].copy_from_slice(&0x00ff_ffff_u32.to_le_bytes());
    let err = LdCache::parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("entry table"), "{err}");
    // A key offset beyond the file.
    let mut bytes = good.clone();
    bytes[NEW_HEADER + 4..NEW_HEADER + 8].copy_from_slice(&0xffff_u32.to_le_bytes());
    let err = LdCache::parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("entry key"), "{err}");
    let err = LdCache::read(Path::new("/nonexistent/ld.so.cache")).unwrap_err();
    assert_eq!(err.to_string(), "cannot read /nonexistent/ld.so.cache");
}
