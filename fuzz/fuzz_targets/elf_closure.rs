//! The whole closure walk on an arbitrary executable: the input is written
//! to a file whose dependencies are then looked up on this host.
#![no_main]

use std::io::Write;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else { return };
    if file.write_all(data).is_err() {
        return;
    }
    let opts = jailtrace_elf::ClosureOptions::default();
    let _ = jailtrace_elf::closure(file.path(), &opts);
});
