//! Running processes with a deadline and capturing their output: the
//! jailtrace binary, programs under a plain `chroot(8)` (not jailtrace), and
//! the same programs on the host for comparison.
//!
//! Guarantees: a process started here runs in a process group of its own
//! with stdin from `/dev/null`; at its deadline, or when a test panics before
//! waiting for it, the whole group is SIGKILLed. Output goes to anonymous
//! files rather than pipes, so a leftover grandchild holding them open can
//! never hang a test.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// How long a program under plain chroot or on the host may take.
pub const PROGRAM_TIMEOUT: Duration = Duration::from_secs(120);

/// A started process (leader of its own process group).
#[derive(Debug)]
pub struct Running {
    /// `None` once waited for.
    child: Option<Child>,
    stdout: File,
    stderr: File,
    started: Instant,
    what: String,
}

/// A process that ended (or was killed at its deadline), with its output.
#[derive(Debug)]
pub struct Finished {
    /// The command line, for messages.
    pub what: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// From spawn to exit.
    pub elapsed: Duration,
    /// True when it was killed because it ran past its deadline.
    pub timed_out: bool,
}

/// Which of a process's output streams a reader has already closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Neither: both are captured.
    Neither,
    /// stdout is a pipe whose reading end is closed, as after `| head`
    /// exited: every write there fails with EPIPE (stderr is captured).
    Stdout,
    /// The same for stderr (stdout is captured).
    Stderr,
}

/// Starts `cmd` in a new process group with stdin from `/dev/null` and
/// stdout/stderr captured. Panics when it cannot start.
pub fn spawn(cmd: Command) -> Running {
    spawn_closing(cmd, Closed::Neither)
}

/// Like [`spawn`], with the stream `closed` a pipe nobody reads (its
/// captured output is then empty).
pub fn spawn_closing(mut cmd: Command, closed: Closed) -> Running {
    let what = format!("{cmd:?}");
    let stdout = tempfile::tempfile().expect("cannot create a temporary file for stdout");
    let stderr = tempfile::tempfile().expect("cannot create a temporary file for stderr");
    let capture = |file: &File| -> Stdio {
        file.try_clone()
            .expect("cannot duplicate a captured output file")
            .into()
    };
    let unread = || -> Stdio {
        // Close-on-exec, so no other test's child inherits the reading end
        // before it is dropped.
        let (reader, writer) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("cannot create a pipe");
        drop(reader);
        Stdio::from(writer)
    };
    let (out, err) = match closed {
        Closed::Neither => (capture(&stdout), capture(&stderr)),
        Closed::Stdout => (unread(), capture(&stderr)),
        Closed::Stderr => (capture(&stdout), unread()),
    };
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    Running {
        child: Some(child),
        stdout,
        stderr,
        started: Instant::now(),
        what,
    }
}

/// Runs `cmd` to completion (killed at `timeout`) and returns its output.
pub fn run(cmd: Command, timeout: Duration) -> Finished {
    spawn(cmd).wait(timeout)
}

/// Like [`run`], with the stream `closed` a pipe nobody reads.
pub fn run_closing(cmd: Command, closed: Closed, timeout: Duration) -> Finished {
    spawn_closing(cmd, closed).wait(timeout)
}

impl Running {
    /// The process id (also its process group id).
    pub fn pid(&self) -> Pid {
        let child = self
            .child
            .as_ref()
            .expect("pid() is only called before wait()");
        Pid::from_raw(i32::try_from(child.id()).expect("Linux pids fit in i32"))
    }

    /// Waits until the process exits, or kills its process group at `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let mut child = self.child.take().expect("wait() is called once");
        let (status, timed_out) = loop {
            match child.try_wait() {
                Ok(Some(status)) => break (status, false),
                Ok(None) if self.started.elapsed() >= timeout => {
                    kill_group(&child);
                    let status = child
                        .wait()
                        .unwrap_or_else(|e| panic!("cannot wait for {}: {e}", self.what));
                    break (status, true);
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("cannot wait for {}: {e}", self.what),
            }
        };
        let elapsed = self.started.elapsed();
        Finished {
            what: std::mem::take(&mut self.what),
            status,
            stdout: read_all(&mut self.stdout),
            stderr: read_all(&mut self.stderr),
            elapsed,
            timed_out,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&child);
            let _ = child.wait();
        }
    }
}

/// SIGKILLs the process group led by `child` (the group we created for it).
fn kill_group(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

fn read_all(file: &mut File) -> Vec<u8> {
    let mut out = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut out))
        .expect("cannot read captured output back");
    out
}

impl Finished {
    /// The exit code, `None` when ended by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout as text (lossy: for comparing program output, never paths).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy, for messages and substring checks).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Everything about the run, for a failure message.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "command: {}", self.what);
        let _ = writeln!(
            out,
            "status: {}{} after {:.1?}",
            self.status,
            if self.timed_out {
                " (killed at its deadline)"
            } else {
                ""
            },
            self.elapsed
        );
        let _ = writeln!(out, "--- stdout ---\n{}", tail(&self.stdout_text()));
        let _ = writeln!(out, "--- stderr ---\n{}", tail(&self.stderr_text()));
        out
    }

    /// Panics with [`Finished::report`] unless the process exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success() && !self.timed_out,
            "expected exit 0\n{}",
            self.report()
        );
        self
    }

    /// Panics with [`Finished::report`] unless the process exited with `code`.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit {code}\n{}",
            self.report()
        );
        self
    }

    /// Panics when stderr shows a Rust panic.
    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            !self.stderr_text().contains("panicked"),
            "the process panicked\n{}",
            self.report()
        );
        self
    }
}

/// The last 20,000 characters of `text` (jailtrace's `-v` logs can be long).
fn tail(text: &str) -> &str {
    const KEEP: usize = 20_000;
    if text.len() <= KEEP {
        return text;
    }
    let mut start = text.len() - KEEP;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Runs `argv` on the host with exactly the environment `env`, from `/`.
pub fn host_output(argv: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env.iter().copied())
        .current_dir("/");
    run(cmd, PROGRAM_TIMEOUT)
}

/// Runs `argv` under a plain `/usr/sbin/chroot ROOT` (not jailtrace) with
/// exactly the environment `env`.
pub fn chroot_output(root: &Path, argv: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut cmd = Command::new("/usr/sbin/chroot");
    cmd.arg(root)
        .args(argv.iter().map(OsStr::new))
        .env_clear()
        .envs(env.iter().copied())
        .current_dir("/");
    run(cmd, PROGRAM_TIMEOUT)
}

/// Like [`chroot_output`], with the manifest's recorded mounts applied the
/// way the summary tells a user to ([`Mounted::manifest`]), and taken down
/// afterwards.
pub fn chroot_output_with_mounts(
    root: &Path,
    manifest: &jailtrace_manifest::Manifest,
    argv: &[&str],
    env: &[(&str, &str)],
) -> Finished {
    let _mounted = Mounted::manifest(root, manifest);
    chroot_output(root, argv, env)
}

/// Mounts a test made, taken down (newest first) when this is dropped,
/// even when the test panics meanwhile: a test never leaves a mount behind.
#[derive(Debug)]
pub struct Mounted(Vec<std::path::PathBuf>);

impl Mounted {
    /// The manifest's mounts in `root`, each made by running under `sh -c`
    /// exactly the command the summary prints (`Mount::shell_command`:
    /// `mount -t proc -o ro proc ROOT/proc`, `mount --bind HOST
    /// ROOT/JAIL`, and the `ro` remount of a read-only bind).
    pub fn manifest(root: &Path, manifest: &jailtrace_manifest::Manifest) -> Mounted {
        let mut mounted = Mounted(Vec::new());
        for m in &manifest.mounts {
            let target = root.join(
                m.path
                    .as_path()
                    .strip_prefix("/")
                    .expect("mount paths are absolute"),
            );
            // Recorded first: a command that mounts and then fails (a
            // bind whose remount fails) is still taken down.
            mounted.0.push(target);
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c").arg(m.shell_command(root));
            run(cmd, PROGRAM_TIMEOUT).assert_success();
        }
        mounted
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            if crate::util::mounts_under(target).is_empty() {
                continue;
            }
            let mut cmd = Command::new("umount");
            cmd.arg(target);
            let out = run(cmd, PROGRAM_TIMEOUT);
            if !out.status.success() {
                eprintln!("cannot unmount {}\n{}", target.display(), out.report());
            }
        }
    }
}

/// Asserts that both runs exited 0 and printed the same stdout.
pub fn assert_same_stdout(jailed: &Finished, host: &Finished) {
    host.assert_success();
    jailed.assert_success();
    assert_eq!(
        jailed.stdout_text(),
        host.stdout_text(),
        "the chrooted program's stdout differs from the host's\n== chroot ==\n{}\n== host ==\n{}",
        jailed.report(),
        host.report()
    );
}
