//! glibc's ld.so.cache format from arbitrary bytes, and lookups in it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(cache) = jailtrace_elf::LdCache::parse(data) {
        for class in [jailtrace_elf::Class::Elf32, jailtrace_elf::Class::Elf64] {
            let _ = cache.lookup(std::ffi::OsStr::new("libc.so.6"), class, 62);
        }
    }
});
