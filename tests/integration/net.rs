//! What the server tests need besides the shared harness: whether a server
//! binary is installed, free loopback ports, a minimal HTTP/1.0 client, and
//! [`ServerGuard`], which finds (and on drop kills) every process of a test's
//! jail and takes down the mounts it applied.
//!
//! Guarantees: a server started in a test never outlives it. A
//! [`ServerGuard`] counts a process as the test's when its root directory
//! (`/proc/PID/root`) is one of the test's jail roots, or when its command
//! line contains one of the test's unique tags (its config path); nginx
//! renames its processes (`nginx: worker process`) and daemons leave the
//! process group they were started in, so neither argv nor process groups
//! alone would find them. Every network wait here is bounded.
//!
//! [`HostDir`] makes a runtime directory on the host the way a package's
//! `tmpfiles.d` entry would (path, mode, owner) and removes it on drop, so a
//! test that needs one never leaves it behind, however the test ends.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use jailtrace_manifest::Manifest;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Gid, Pid, Uid};

use crate::cmd::{self, Finished, Running, PROGRAM_TIMEOUT};

/// The variable that turns a missing server binary into a failure.
pub const REQUIRE_SERVERS_VAR: &str = "JAILTRACE_REQUIRE_SERVERS";

/// How long a server under plain chroot may take to answer its first request.
pub const SERVE_WITHIN: Duration = Duration::from_secs(10);

/// How long a stopped server may take to be gone.
pub const STOP_WITHIN: Duration = Duration::from_secs(10);

/// True when the executable `binary` exists. Otherwise prints
/// `SKIPPED <test>: …` and returns false, or panics when
/// `JAILTRACE_REQUIRE_SERVERS=1`.
pub fn require_server(test: &str, binary: &str, package: &str) -> bool {
    let present = fs::metadata(binary).is_ok_and(|m| m.is_file());
    if present {
        return true;
    }
    let required = std::env::var_os(REQUIRE_SERVERS_VAR).is_some_and(|v| v == "1");
    assert!(
        !required,
        "{test} cannot run: {binary} is missing (install the {package} package); \
         {REQUIRE_SERVERS_VAR}=1 forbids skipping"
    );
    eprintln!(
        "SKIPPED {test}: {binary} is missing (apt-get install {package}; \
         set {REQUIRE_SERVERS_VAR}=1 to make this a failure)"
    );
    false
}

/// A loopback port nothing listens on right now: bind `127.0.0.1:0`, read
/// the port the kernel chose, close the listener.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("cannot bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("a bound listener has a local address")
        .port()
}

/// An HTTP response, split at the first empty line.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code of the status line.
    pub status: u16,
    /// The status line and headers, for messages.
    pub head: String,
    /// Everything after the header block.
    pub body: Vec<u8>,
}

/// `GET path` from `127.0.0.1:port` over HTTP/1.0 with `Connection: close`,
/// reading until the server closes. Every step is bounded by 5 seconds.
pub fn http_get(port: u16, path: &str) -> io::Result<Response> {
    let step = Duration::from_secs(5);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, step)?;
    stream.set_read_timeout(Some(step))?;
    stream.set_write_timeout(Some(step))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad_response("no end of the header block", &raw))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad_response("no status code", &raw))?;
    Ok(Response {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    })
}

fn bad_response(what: &str, raw: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "malformed HTTP response ({what}): {:?}",
            String::from_utf8_lossy(raw)
        ),
    )
}

/// [`http_get`] retried every 100 ms while the connection fails (the server
/// is not up yet), for at most `within`. Returns the first response, or the
/// last error as text.
pub fn http_get_retry(port: u16, path: &str, within: Duration) -> Result<Response, String> {
    let deadline = Instant::now() + within;
    loop {
        match http_get(port, path) {
            Ok(response) => return Ok(response),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "GET http://127.0.0.1:{port}{path} failed for {within:?}: {e}"
                ))
            }
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `chroot ROOT ARGV` (plain `/usr/sbin/chroot`, not jailtrace) with exactly
/// `env`, from `/`.
pub fn chroot_command(root: &Path, argv: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new("/usr/sbin/chroot");
    command
        .arg(root)
        .args(argv.iter().map(OsStr::new))
        .env_clear()
        .envs(env.iter().copied())
        .current_dir("/");
    command
}

/// Starts `chroot ROOT ARGV` without waiting (see [`cmd::spawn`]).
pub fn spawn_chroot(root: &Path, argv: &[&str], env: &[(&str, &str)]) -> Running {
    cmd::spawn(chroot_command(root, argv, env))
}

/// Runs `chroot ROOT ARGV` to completion (killed after [`PROGRAM_TIMEOUT`]).
pub fn run_chroot(root: &Path, argv: &[&str], env: &[(&str, &str)]) -> Finished {
    cmd::run(chroot_command(root, argv, env), PROGRAM_TIMEOUT)
}

/// Sends SIGTERM to `pid`; a process that is already gone is not an error.
pub fn sigterm(pid: Pid) {
    let _ = kill(pid, Signal::SIGTERM);
}

/// A process the guard counts as the test's: its pid, root and command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The process id.
    pub pid: i32,
    /// `/proc/PID/root`.
    pub root: PathBuf,
    /// `/proc/PID/cmdline` with NULs shown as spaces (lossy, for messages).
    pub cmdline: String,
}

/// The processes and mounts of one test's servers; kills and unmounts on drop.
///
/// Create it before starting anything, and after the [`crate::jail::Jail`]
/// whose root it watches, so it is dropped first.
#[derive(Debug)]
pub struct ServerGuard {
    roots: Vec<PathBuf>,
    tags: Vec<Vec<u8>>,
    mounted: Vec<PathBuf>,
}

impl ServerGuard {
    /// Watches the processes chrooted into any of `roots` and those whose
    /// command line contains any of `tags`.
    pub fn new(roots: &[&Path], tags: &[&Path]) -> Self {
        Self {
            roots: roots.iter().map(|r| r.to_path_buf()).collect(),
            tags: tags
                .iter()
                .map(|t| t.as_os_str().as_bytes().to_vec())
                .collect(),
            mounted: Vec::new(),
        }
    }

    /// The live processes that are the test's (never this test process).
    pub fn processes(&self) -> Vec<Found> {
        let me = std::process::id();
        let Ok(dir) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let pid_i32 = i32::try_from(pid).ok()?;
                if pid == me {
                    return None;
                }
                let proc_dir = e.path();
                // A zombie's root link cannot be read and its cmdline is empty: it is not live.
                let root = fs::read_link(proc_dir.join("root")).ok()?;
                let cmdline = fs::read(proc_dir.join("cmdline")).unwrap_or_default();
                let chrooted = self.roots.iter().any(|r| root.starts_with(r));
                let tagged = self.tags.iter().any(|t| contains(&cmdline, t));
                (chrooted || tagged).then(|| Found {
                    pid: pid_i32,
                    root,
                    cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
                })
            })
            .collect()
    }

    /// Polls until none of the test's processes runs, for at most `within`;
    /// returns those still running.
    pub fn wait_until_gone(&self, within: Duration) -> Vec<Found> {
        let deadline = Instant::now() + within;
        loop {
            let left = self.processes();
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts that none of the test's processes is left within `within`.
    pub fn assert_none_left(&self, within: Duration, context: &str) {
        let left = self.wait_until_gone(within);
        assert!(
            left.is_empty(),
            "{context}: processes of this test are still running after {within:?}: {left:#?}"
        );
    }

    /// SIGKILLs every process of the test, repeatedly (a dying master may
    /// still fork), until none is left or 5 seconds have passed.
    pub fn kill_all(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.processes();
            if left.is_empty() || Instant::now() >= deadline {
                return;
            }
            for found in &left {
                let _ = kill(Pid::from_raw(found.pid), Signal::SIGKILL);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Applies `manifest.mounts` below `root` the way `jailtrace run`'s
    /// summary tells a user to (`mount -t TYPE -o ro TYPE ROOT/PATH`), as
    /// [`cmd::chroot_output_with_mounts`] does; they are taken down on drop
    /// or by [`ServerGuard::unmount_all`].
    pub fn mount(&mut self, root: &Path, manifest: &Manifest) {
        for m in &manifest.mounts {
            let relative = m
                .path
                .as_path()
                .strip_prefix("/")
                .unwrap_or_else(|_| panic!("mount path {:?} is not absolute", m.path));
            let target = root.join(relative);
            let mut mount = Command::new("mount");
            mount
                .args(["-t", &m.fstype, "-o", "ro", &m.fstype])
                .arg(&target);
            cmd::run(mount, PROGRAM_TIMEOUT).assert_success();
            self.mounted.push(target);
        }
    }

    /// Kills what is left, then unmounts what [`ServerGuard::mount`]
    /// mounted, newest first; panics when an unmount fails.
    pub fn unmount_all(&mut self) {
        self.kill_all();
        while let Some(target) = self.mounted.pop() {
            let mut umount = Command::new("umount");
            umount.arg(&target);
            cmd::run(umount, PROGRAM_TIMEOUT).assert_success();
        }
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.kill_all();
        // No panics here (the test may be unwinding): a busy mount is
        // detached lazily so the test directory can still be cleaned up.
        while let Some(target) = self.mounted.pop() {
            let unmounted = Command::new("umount")
                .arg(&target)
                .status()
                .is_ok_and(|s| s.success());
            if !unmounted {
                let _ = Command::new("umount").arg("-l").arg(&target).status();
            }
        }
    }
}

/// True when `needle` (non-empty) occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A directory this test made on the host (not in a jail); removed with
/// everything below it on drop.
#[derive(Debug)]
pub struct HostDir {
    path: PathBuf,
}

impl HostDir {
    /// Creates `path` (which must not exist yet; its parent must) with
    /// exactly `mode` and owner `uid:gid`, as `tmpfiles.d`'s `d PATH MODE
    /// USER GROUP` line would. Panics when any step fails.
    pub fn create(path: &Path, mode: u32, uid: Uid, gid: Gid) -> Self {
        fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        // From here on, drop removes it even if a step below panics.
        let dir = Self {
            path: path.to_owned(),
        };
        nix::unistd::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {uid}:{gid} {}: {e}", path.display()));
        // After chown, which may clear set-id bits; an explicit mode ignores the umask.
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
        dir
    }

    /// The directory's host path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        // No panic here (the test may be unwinding); say what was left.
        if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!(
                "cannot remove the host directory {}: {e}",
                self.path.display()
            );
        }
    }
}
