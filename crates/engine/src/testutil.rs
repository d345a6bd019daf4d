//! What the engine's unit tests share.

/// Whether a root-only test can run: true as root; otherwise it skips with
/// a loud message naming `why` root is needed, unless
/// `JAILTRACE_TESTS_MUST_RUN=1` makes that a failure.
pub(crate) fn need_root(test: &str, why: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let must = std::env::var_os("JAILTRACE_TESTS_MUST_RUN").is_some_and(|v| v == "1");
    assert!(!must, "{test} needs root and JAILTRACE_TESTS_MUST_RUN=1");
    eprintln!("SKIPPED {test}: needs root ({why})");
    false
}
