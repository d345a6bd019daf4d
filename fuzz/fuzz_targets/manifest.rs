//! Manifests from arbitrary bytes; what parses must round-trip.
#![no_main]

use jailtrace_manifest::Manifest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_slice(data) {
        let again = Manifest::from_slice(m.to_json().as_bytes()).expect("a written manifest reads back");
        assert_eq!(m, again);
    }
});
