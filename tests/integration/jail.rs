//! Running `jailtrace run` in a fresh temporary directory and reading back
//! what it produced: the `--json` summary on stdout and the manifest file.
//!
//! Guarantees: jailtrace runs with exactly the environment the test passes
//! (plus the logging variables `JAILTRACE_LOG`, `RUST_LOG`, `RUST_BACKTRACE`
//! when set, for debugging), from the test's directory (so a default
//! `NAME.jail` would land there), and is killed after [`JAILTRACE_TIMEOUT`].
//! A test directory with something still mounted below it is never deleted.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jailtrace_manifest::{Manifest, PathText, RunStatus};
use serde::Deserialize;
use serde_json::Value;
use tempfile::TempDir;

use crate::cmd::{self, Finished, Running};
use crate::util;

/// How long one `jailtrace run` may take.
pub const JAILTRACE_TIMEOUT: Duration = Duration::from_secs(300);

/// Variables passed through to jailtrace when set, so a failing test can be
/// rerun with logs.
const PASS_THROUGH: &[&str] = &["JAILTRACE_LOG", "RUST_LOG", "RUST_BACKTRACE"];

/// The exit codes of `jailtrace run` (its CLI contract).
pub mod exit {
    /// The program runs from the jail.
    pub const OK: i32 = 0;
    /// An error: bad input, I/O.
    pub const ERROR: i32 = 1;
    /// A usage error (clap).
    pub const USAGE: i32 = 2;
    /// The program did not start although nothing more could be copied.
    pub const NOT_STARTED: i32 = 3;
    /// Files still missing when the runs ended.
    pub const STILL_MISSING: i32 = 4;
    /// Interrupted by SIGINT.
    pub const SIGINT: i32 = 130;
    /// Interrupted by SIGTERM.
    pub const SIGTERM: i32 = 143;
}

/// The `--json` summary `jailtrace run` prints on stdout.
#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    /// Whether the program runs from the jail.
    pub ok: bool,
    /// The root directory.
    pub root: PathText,
    /// The manifest file; `null` when none was written (a failed run).
    pub manifest: Option<PathText>,
    /// Number of runs.
    pub runs: u64,
    /// Number of manifest entries.
    pub entries: u64,
    /// Regular files placed.
    pub files: u64,
    /// Bytes of file content placed.
    pub bytes: u64,
    /// Wall-clock time of the whole `jailtrace run`, milliseconds.
    pub wall_ms: u64,
    /// Paths still missing when it failed.
    pub missing: Vec<PathText>,
    /// How the last run ended.
    pub status: RunStatus,
}

/// A test's private directory `T`, with the default root `T/root` and
/// manifest `T/m.json`.
#[derive(Debug)]
pub struct Jail {
    dir: Option<TempDir>,
    /// `T`, canonical.
    pub path: PathBuf,
    /// `T/root` (not created: jailtrace creates it).
    pub root: PathBuf,
    /// `T/m.json`.
    pub manifest: PathBuf,
}

/// What one `jailtrace run` did.
#[derive(Debug)]
pub struct Outcome {
    /// The process: exit status, stdout, stderr.
    pub finished: Finished,
    /// The manifest file's bytes after the run, if it exists.
    pub manifest_bytes: Option<Vec<u8>>,
    manifest_path: PathBuf,
}

impl Jail {
    /// A fresh directory for the test `name`.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("jailtrace-it-{name}-"))
            .tempdir()
            .expect("cannot create a temporary directory");
        let path = fs::canonicalize(dir.path()).expect("a new temporary directory resolves");
        Self {
            root: path.join("root"),
            manifest: path.join("m.json"),
            path,
            dir: Some(dir),
        }
    }

    /// `T/rel`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// An `--allow` rule for everything below `T`: a test's host files
    /// live there, and `T` is under /tmp, whose content jailtrace treats
    /// as host runtime state and does not copy unless allowed.
    pub fn allow_own_files(&self) -> [String; 2] {
        allow_below(&self.path)
    }

    /// Runs `jailtrace run --root T/root --manifest T/m.json --json EXTRA -- ARGV`.
    pub fn run(&self, argv: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Outcome {
        self.run_at(&self.root, &self.manifest, argv, extra, env)
    }

    /// Like [`Jail::run`] with another root and manifest.
    pub fn run_at(
        &self,
        root: &Path,
        manifest: &Path,
        argv: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Outcome {
        let running = self.spawn_at(root, manifest, argv, extra, env);
        Outcome::new(running.wait(JAILTRACE_TIMEOUT), manifest)
    }

    /// Starts `jailtrace run --root ROOT --manifest MANIFEST --json EXTRA -- ARGV`
    /// without waiting (for the signal tests).
    pub fn spawn_at(
        &self,
        root: &Path,
        manifest: &Path,
        argv: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Running {
        let mut args: Vec<OsString> = vec!["run".into(), "--root".into()];
        args.push(root.into());
        args.push("--manifest".into());
        args.push(manifest.into());
        args.push("--json".into());
        args.extend(util::os_args(extra));
        args.push("--".into());
        args.extend(util::os_args(argv));
        cmd::spawn(self.command(&args, env))
    }

    /// `jailtrace ARGS` with exactly `env` (plus the logging variables), run
    /// from `T`.
    pub fn command(&self, args: &[OsString], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jailtrace"));
        cmd.args(args)
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(&self.path);
        for var in PASS_THROUGH {
            if let Some(value) = std::env::var_os(var) {
                cmd.env(var, value);
            }
        }
        cmd
    }

    /// Runs `jailtrace ARGS` (any subcommand, any arguments) to completion.
    pub fn jailtrace(&self, args: &[&str], env: &[(&str, &str)]) -> Finished {
        cmd::run(self.command(&util::os_args(args), env), JAILTRACE_TIMEOUT)
    }
}

impl Drop for Jail {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let mounts = util::mounts_under(&self.path);
        if !mounts.is_empty() {
            let kept = dir.keep();
            eprintln!(
                "NOT deleting {} because something is still mounted below it: {mounts:?}",
                kept.display()
            );
        } else if std::env::var_os("JAILTRACE_TESTS_KEEP").is_some_and(|v| v == "1") {
            eprintln!("kept test directory {}", dir.keep().display());
        }
    }
}

impl Outcome {
    fn new(finished: Finished, manifest: &Path) -> Self {
        Self {
            manifest_bytes: fs::read(manifest).ok(),
            manifest_path: manifest.to_owned(),
            finished,
        }
    }

    /// The summary on stdout. Panics unless stdout is exactly one JSON
    /// object with every summary field.
    pub fn summary(&self) -> Summary {
        let value: Value = serde_json::from_slice(&self.finished.stdout).unwrap_or_else(|e| {
            panic!(
                "with --json, stdout must be exactly one JSON object: {e}\n{}",
                self.finished.report()
            )
        });
        assert!(
            value.is_object(),
            "the --json summary is not an object\n{}",
            self.finished.report()
        );
        serde_json::from_value(value).unwrap_or_else(|e| {
            panic!(
                "the --json summary lacks a field or has a wrong type: {e}\n{}",
                self.finished.report()
            )
        })
    }

    /// The manifest, read with the real reader (version check, full schema).
    /// Panics when it is missing or invalid.
    pub fn manifest(&self) -> Manifest {
        let bytes = self.manifest_bytes.as_deref().unwrap_or_else(|| {
            panic!(
                "no manifest at {}\n{}",
                self.manifest_path.display(),
                self.finished.report()
            )
        });
        Manifest::from_slice(bytes).unwrap_or_else(|e| {
            panic!(
                "the manifest {} is invalid: {e}\n{}",
                self.manifest_path.display(),
                self.finished.report()
            )
        })
    }

    /// The manifest as untyped JSON (to check the literal form of fields).
    pub fn manifest_json(&self) -> Value {
        serde_json::from_slice(self.manifest_bytes.as_deref().unwrap_or_default())
            .unwrap_or_else(|e| panic!("the manifest is not JSON: {e}\n{}", self.finished.report()))
    }

    /// Asserts exit 0, no panic, and a summary saying `ok` with the last run
    /// exited 0 and nothing missing; returns the summary.
    pub fn expect_ok(&self) -> Summary {
        self.finished.assert_no_panic().assert_code(exit::OK);
        let summary = self.summary();
        assert!(
            summary.ok,
            "exit 0 but the summary says ok=false\n{}",
            self.finished.report()
        );
        assert_eq!(
            summary.status,
            RunStatus::Exited { code: 0 },
            "exit 0 but the last run did not exit 0\n{}",
            self.finished.report()
        );
        assert!(
            summary.missing.is_empty(),
            "exit 0 but the summary lists missing paths {:?}\n{}",
            summary.missing,
            self.finished.report()
        );
        summary
    }

    /// Asserts an `error: …` exit with `code`, no panic; returns stderr.
    pub fn expect_error(&self, code: i32) -> String {
        self.finished.assert_no_panic().assert_code(code);
        let stderr = self.finished.stderr_text();
        assert!(
            stderr.lines().any(|l| l.starts_with("error: ")),
            "expected an `error: …` line on stderr\n{}",
            self.finished.report()
        );
        stderr
    }
}

/// An `--allow` rule for everything below `dir` (a test's fixtures may be
/// built below /tmp, whose content jailtrace treats as host runtime state).
pub fn allow_below(dir: &Path) -> [String; 2] {
    let escaped: String = dir
        .to_string_lossy()
        .chars()
        .flat_map(|c| match c {
            '.' | '+' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' | '*' | '?' | '|' | '\\' => {
                vec!['\\', c]
            }
            c => vec![c],
        })
        .collect();
    ["--allow".into(), format!("^{escaped}/")]
}
