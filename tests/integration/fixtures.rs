//! The C fixtures in `fixtures/`, compiled with gcc once per run of the test
//! binary into `target/tmp/jailtrace-fixtures/` (`CARGO_TARGET_TMPDIR`).
//!
//! - `bin/threads`: four threads read four host files at once (`threads.c`).
//! - `bin/origin-main` + `lib/libgreet.so`: an executable that finds its
//!   library only through `RUNPATH $ORIGIN/../lib` (`origin/`).
//! - `bin/static`: a `-static` program that needs no file (`static.c`).
//! - `bin/dirents`: lists a directory through a small `getdents64` buffer,
//!   passes after a rewind, and counts names shown twice (`dirents.c`).
//!
//! Guarantees: every output is built in a private staging directory and
//! renamed into place, so concurrent test runs never see a half-written
//! binary. A missing gcc is a skip ([`crate::util::skip`]); a failing
//! compile is always a test failure, with gcc's messages.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::util;

/// The compiled fixtures, all paths canonical host paths.
#[derive(Debug)]
pub struct Fixtures {
    /// `bin/threads`.
    pub threads: PathBuf,
    /// `bin/origin-main`, RUNPATH `$ORIGIN/../lib`.
    pub origin_main: PathBuf,
    /// `lib/libgreet.so`, the library `origin-main` needs.
    pub origin_lib: PathBuf,
    /// `bin/static`, linked with `-static`.
    pub static_bin: PathBuf,
    /// `bin/dirents`: `dirents SIZE PASSES DIR`.
    pub dirents: PathBuf,
}

#[derive(Debug)]
pub(crate) enum BuildError {
    /// gcc is not installed: the fixture tests skip.
    NoCompiler(String),
    /// Anything else: the fixture tests fail.
    Failed(String),
}

/// The fixtures, compiled on first use; `None` (after a loud skip message)
/// when gcc is missing and skipping is allowed. Panics when compiling fails.
pub fn fixtures(test: &str) -> Option<&'static Fixtures> {
    static BUILT: OnceLock<Result<Fixtures, BuildError>> = OnceLock::new();
    built(&BUILT, build, test)
}

/// A set of fixtures built once per test binary by `build`: `None` after a
/// loud skip when gcc is missing (and skipping is allowed); a panic when
/// compiling fails.
pub(crate) fn built<T>(
    cell: &'static OnceLock<Result<T, BuildError>>,
    build: fn() -> Result<T, BuildError>,
    test: &str,
) -> Option<&'static T> {
    match cell.get_or_init(build) {
        Ok(fixtures) => Some(fixtures),
        Err(BuildError::NoCompiler(why)) => {
            util::skip(test, &format!("needs gcc to build the C fixtures: {why}"));
            None
        }
        Err(BuildError::Failed(why)) => panic!("cannot build the C fixtures: {why}"),
    }
}

fn build() -> Result<Fixtures, BuildError> {
    // The fixtures of `fixtures/` itself, staged by hand: origin-main links
    // against the staged libgreet.so.
    let c = Compiler::new("")?;
    let (src, out, st) = (&c.src, &c.out, c.stage.path());
    for dir in [out.join("bin"), out.join("lib")] {
        fs::create_dir_all(&dir)
            .map_err(|e| BuildError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    let src_arg = |rel: &str| src.join(rel).into_os_string();
    let st_arg = |rel: &str| st.join(rel).into_os_string();

    gcc(&[
        "-pthread".into(),
        "-o".into(),
        st_arg("threads"),
        src_arg("threads.c"),
    ])?;
    gcc(&[
        "-shared".into(),
        "-fPIC".into(),
        "-o".into(),
        st_arg("libgreet.so"),
        src_arg("origin/greet.c"),
    ])?;
    gcc(&[
        "-o".into(),
        st_arg("origin-main"),
        src_arg("origin/main.c"),
        format!("-L{}", st.display()).into(),
        "-lgreet".into(),
        // Literal `$ORIGIN`: no shell is involved.
        "-Wl,-rpath,$ORIGIN/../lib".into(),
    ])?;
    gcc(&[
        "-static".into(),
        "-o".into(),
        st_arg("static"),
        src_arg("static.c"),
    ])?;
    gcc(&["-o".into(), st_arg("dirents"), src_arg("dirents.c")])?;

    for (staged, placed) in [
        ("threads", "bin/threads"),
        ("origin-main", "bin/origin-main"),
        ("libgreet.so", "lib/libgreet.so"),
        ("static", "bin/static"),
        ("dirents", "bin/dirents"),
    ] {
        fs::rename(st.join(staged), out.join(placed)).map_err(|e| {
            BuildError::Failed(format!(
                "cannot move {staged} to {}: {e}",
                out.join(placed).display()
            ))
        })?;
    }
    let dir = out;
    Ok(Fixtures {
        threads: dir.join("bin/threads"),
        origin_main: dir.join("bin/origin-main"),
        origin_lib: dir.join("lib/libgreet.so"),
        static_bin: dir.join("bin/static"),
        dirents: dir.join("bin/dirents"),
    })
}

/// Compiles C fixtures of one directory `fixtures/DIR` into
/// `target/tmp/jailtrace-fixtures/DIR/`, each in a private staging
/// directory first and renamed into place, so a concurrent run never
/// executes a half-written file.
pub(crate) struct Compiler {
    src: PathBuf,
    out: PathBuf,
    stage: tempfile::TempDir,
}

impl Compiler {
    /// A compiler for `fixtures/DIR`.
    pub(crate) fn new(dir: &str) -> Result<Compiler, BuildError> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(dir);
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("jailtrace-fixtures")
            .join(dir);
        fs::create_dir_all(&out)
            .map_err(|e| BuildError::Failed(format!("cannot create {}: {e}", out.display())))?;
        let out = fs::canonicalize(&out)
            .map_err(|e| BuildError::Failed(format!("cannot resolve {}: {e}", out.display())))?;
        let stage = tempfile::Builder::new()
            .prefix(".stage-")
            .tempdir_in(&out)
            .map_err(|e| {
                BuildError::Failed(format!(
                    "cannot create a staging dir in {}: {e}",
                    out.display()
                ))
            })?;
        Ok(Compiler { src, out, stage })
    }

    /// Compiles `SOURCE` (in DIR) with `flags` into `NAME`; returns its
    /// canonical path (UTF-8, to be passed as a `&str` argv).
    pub(crate) fn compile(
        &self,
        name: &str,
        source: &str,
        flags: &[&str],
    ) -> Result<String, BuildError> {
        let staged = self.stage.path().join(name);
        let mut args: Vec<std::ffi::OsString> = flags.iter().map(Into::into).collect();
        args.extend([
            "-o".into(),
            staged.clone().into(),
            self.src.join(source).into(),
        ]);
        gcc(&args)?;
        let placed = self.out.join(name);
        fs::rename(&staged, &placed).map_err(|e| {
            BuildError::Failed(format!(
                "cannot move {} to {}: {e}",
                staged.display(),
                placed.display()
            ))
        })?;
        placed
            .into_os_string()
            .into_string()
            .map_err(|p| BuildError::Failed(format!("fixture path {p:?} is not UTF-8")))
    }
}

/// Runs `gcc -O2 -Wall -Wextra -Werror ARGS`.
pub(crate) fn gcc(args: &[std::ffi::OsString]) -> Result<(), BuildError> {
    let output = Command::new("gcc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror"])
        .args(args)
        .output()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => BuildError::NoCompiler("gcc is not in PATH".to_owned()),
            _ => BuildError::Failed(format!("cannot run gcc: {e}")),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BuildError::Failed(format!(
            "gcc {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
