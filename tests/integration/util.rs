//! Test-wide helpers: whether a test may skip, the probe for what jailing
//! needs (root, `chroot(2)`, `ptrace(2)`), the environment programs run
//! with, unique names and `/proc` scans.
//!
//! Guarantees: [`require_root`] and [`skip`] never skip silently — each skip
//! prints `SKIPPED <test>: <why>` on stderr — and both panic instead of
//! skipping when [`must_run`] is true.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::ptrace;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{geteuid, Pid};

/// The variable that turns every skip into a failure (CI sets it to `1`).
pub const MUST_RUN_VAR: &str = "JAILTRACE_TESTS_MUST_RUN";

/// The `PATH` programs get in the tests: Debian's default for root, so
/// `/usr/local/*` is searched (and must not be copied when the host lacks
/// the program there) and nothing of the developer's own setup (pyenv
/// shims, cargo) leaks in.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The default environment of a jailed, chrooted or host program in a test.
pub const BASE_ENV: &[(&str, &str)] = &[("PATH", PATH)];

/// True when `JAILTRACE_TESTS_MUST_RUN=1`: tests may not skip.
pub fn must_run() -> bool {
    std::env::var_os(MUST_RUN_VAR).is_some_and(|v| v == "1")
}

/// Skips `test` loudly because of `why` and returns `false`, or panics when
/// [`must_run`] is true.
pub fn skip(test: &str, why: &str) -> bool {
    assert!(
        !must_run(),
        "{test} cannot run: {why}; {MUST_RUN_VAR}=1 forbids skipping"
    );
    eprintln!("SKIPPED {test}: {why} (set {MUST_RUN_VAR}=1 to make this a failure)");
    false
}

/// True when this process can jail (euid 0, `chroot(2)` and `ptrace(2)`
/// work). Otherwise prints `SKIPPED <test>: needs root (chroot, ptrace) …`
/// and returns false, or panics when [`must_run`] is true.
///
/// Every test that runs `jailtrace run` starts with
/// `if !require_root("name") { return; }`.
pub fn require_root(test: &str) -> bool {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    match PROBE.get_or_init(probe_jailing) {
        Ok(()) => true,
        Err(why) => skip(test, &format!("needs root (chroot, ptrace): {why}")),
    }
}

/// Checks what jailing needs by doing it: euid 0, a real `chroot(8)` of `/`,
/// and a `PTRACE_ATTACH` to a child of ours.
fn probe_jailing() -> Result<(), String> {
    let euid = geteuid();
    if !euid.is_root() {
        return Err(format!("not running as root (euid {euid})"));
    }
    let chroot = Command::new("/usr/sbin/chroot")
        .args(["/", "/bin/true"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run /usr/sbin/chroot: {e}"))?;
    if !chroot.status.success() {
        return Err(format!(
            "chroot / /bin/true failed ({}): {}",
            chroot.status,
            String::from_utf8_lossy(&chroot.stderr).trim()
        ));
    }
    probe_ptrace()
}

/// Attaches to a child `sleep`, waits for its attach stop, detaches and
/// kills it.
fn probe_ptrace() -> Result<(), String> {
    let mut child = Command::new("/bin/sleep")
        .arg("30")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start /bin/sleep for the ptrace probe: {e}"))?;
    let pid =
        Pid::from_raw(i32::try_from(child.id()).map_err(|_| "child pid out of range".to_owned())?);
    let result = ptrace::attach(pid)
        .map_err(|e| format!("ptrace(PTRACE_ATTACH) failed: {e}"))
        .and_then(|()| match waitpid(pid, None) {
            Ok(WaitStatus::Stopped(_, _)) => {
                ptrace::detach(pid, None).map_err(|e| format!("ptrace(PTRACE_DETACH) failed: {e}"))
            }
            other => Err(format!(
                "unexpected wait status after PTRACE_ATTACH: {other:?}"
            )),
        });
    // The child was only stopped, never reaped, so kill and wait still apply to it.
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// The per-process counter behind [`unique`] and [`unique_digits`].
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name no other test of any concurrent run uses: `PID-N`, digits and a dash.
pub fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A number unique like [`unique`], digits only (for `sleep 1000.<digits>`):
/// the pid and the counter at fixed widths.
pub fn unique_digits() -> String {
    format!(
        "{:07}{:04}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Pids of the live processes whose argument vector is exactly `argv`.
///
/// Zombies (already dead, not yet reaped) have an empty command line and so
/// never match: this finds processes that still run.
pub fn processes_with_argv(argv: &[&str]) -> Vec<i32> {
    let mut wanted = Vec::new();
    for arg in argv {
        wanted.extend_from_slice(arg.as_bytes());
        wanted.push(0);
    }
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = fs::read(e.path().join("cmdline")).ok()?;
            (cmdline == wanted).then_some(pid)
        })
        .collect()
}

/// Polls until no process has exactly `argv` or `within` has passed;
/// returns the pids still running.
pub fn wait_until_gone(argv: &[&str], within: Duration) -> Vec<i32> {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_with_argv(argv);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Polls until a process with exactly `argv` runs or `within` has passed.
pub fn wait_until_running(argv: &[&str], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !processes_with_argv(argv).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// `argv` as the `OsString`s `Command` takes.
pub fn os_args(argv: &[&str]) -> Vec<OsString> {
    argv.iter().map(OsString::from).collect()
}

/// Mount points (from `/proc/self/mountinfo`) at or below `dir`.
pub fn mounts_under(dir: &std::path::Path) -> Vec<OsString> {
    let Ok(info) = fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let prefix = dir.as_os_str().as_bytes();
    info.split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|point| {
            point.starts_with(prefix)
                && (point.len() == prefix.len() || point[prefix.len()] == b'/')
        })
        .map(|point| std::ffi::OsStr::from_bytes(&point).to_owned())
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape_mountinfo(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        });
        match (field[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}
