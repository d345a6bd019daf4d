//! ELF headers and `#!` lines from arbitrary bytes: errors, never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = jailtrace_elf::parse(data);
    let _ = jailtrace_elf::interpreter_from_bytes(data);
});
