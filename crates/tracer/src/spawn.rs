//! Starting the traced program: fork, wait for the tracer, a process group
//! of its own, enter the root, drop privileges, install the seccomp
//! filter, exec.
//!
//! Everything the child needs is prepared before `fork` (C strings, the
//! filter), because after `fork` in a possibly multi-threaded process only
//! async-signal-safe calls are allowed: the child uses raw `libc` calls and
//! never allocates. It waits on a pipe until the parent has seized it with
//! `PTRACE_SEIZE`, so the tracer sees its first `execve`. Failures before
//! `exec` are written to a close-on-exec pipe as (stage, errno) and become a
//! [`SpawnError`] in the parent.
//!
//! The process that execs the program first calls `setpgid(0, 0)`, as a
//! job-control shell does for each job, and, when the tracer lends it the
//! terminal (see `terminal`), makes its group the terminal's foreground
//! group. With a pid namespace that process is the namespace's pid 2: the
//! helpers (the process outside waiting for the init, and the init) stay in
//! jailtrace's group with jailtrace's signal mask, so neither the program's
//! signals to its group nor the terminal's reach them.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

use crate::seccomp::Filters;

/// Where one of the program's standard streams goes.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The tracer's own stream.
    #[default]
    Inherit,
    /// The tracer's standard error (for stdout: keeps the tracer's stdout
    /// free for its own output, e.g. a JSON summary).
    Stderr,
    /// `/dev/null` of the host, opened by the tracer.
    Null,
    /// A descriptor the caller opened (a log file, a pipe).
    Fd(OwnedFd),
}

/// What to run and in which surroundings.
#[derive(Debug, Default)]
pub struct Spawn {
    /// The program to exec, as a path inside `root`.
    pub program: PathBuf,
    /// `argv`, `argv[0]` included.
    pub argv: Vec<OsString>,
    /// The environment, as `KEY=VALUE` strings.
    pub env: Vec<OsString>,
    /// The directory to chroot into; `None` runs on the host's root.
    pub root: Option<PathBuf>,
    /// Working directory inside the root.
    pub cwd: PathBuf,
    /// Credentials to switch to after the chroot (all three or none).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Vec<u32>,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// Start the program in a new pid namespace, under a small init that
    /// reaps orphans (so a daemon outlives its parent's exit): the program
    /// sees only its own processes, and a `/proc` mounted for it (see
    /// [`crate::ns`]) shows only them. Needs CAP_SYS_ADMIN.
    pub pid_namespace: bool,
    /// The file mode creation mask the program starts with (a unit's
    /// `UMask=`), set just before `execve`; `None` keeps jailtrace's.
    pub umask: Option<u32>,
}

/// Why the program could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{what} contains a NUL byte")]
    Nul { what: &'static str },
    #[error("cannot {stage} before running the program: {errno}")]
    Child { stage: &'static str, errno: Errno },
    #[error("{what}: {errno}")]
    Os { what: &'static str, errno: Errno },
}

// The stages the child reports, by index.
const STAGES: [&str; 10] = [
    "read the start signal",
    "set up standard streams",
    "chroot into the root",
    "change to the working directory",
    "install the seccomp filter",
    "switch user and groups",
    "exec the program",
    "unblock signals",
    "start a new pid namespace",
    "start a process group of its own",
];

impl SpawnError {
    /// The kernel refused the seccomp filter (no `CONFIG_SECCOMP_FILTER`, or
    /// a container that forbids it): tracing can go on without one.
    pub fn is_seccomp_refused(&self) -> bool {
        matches!(self, SpawnError::Child { stage, .. } if *stage == STAGES[SECCOMP_STAGE])
    }
}

const SECCOMP_STAGE: usize = 4;
const PIDNS_STAGE: usize = 8;
const PGID_STAGE: usize = 9;

fn cstr(bytes: &[u8], what: &'static str) -> Result<CString, SpawnError> {
    CString::new(bytes).map_err(|_| SpawnError::Nul { what })
}

/// A forked child waiting for the go signal.
pub(crate) struct Child {
    pub pid: Pid,
    go: OwnedFd,
    errors: OwnedFd,
}

impl Child {
    /// Lets the child go on to exec.
    pub fn release(&self) -> Result<(), SpawnError> {
        nix::unistd::write(&self.go, &[1]).map_err(|errno| SpawnError::Os {
            what: "releasing the child",
            errno,
        })?;
        Ok(())
    }

    /// After the child exited: the error it reported before exec, if any.
    pub fn failure(&self) -> Option<SpawnError> {
        let mut buf = [0u8; 8];
        match nix::unistd::read(&self.errors, &mut buf) {
            Ok(8) => {
                let stage = u32::from_ne_bytes(buf[..4].try_into().ok()?) as usize;
                let errno = i32::from_ne_bytes(buf[4..].try_into().ok()?);
                Some(SpawnError::Child {
                    stage: STAGES.get(stage).copied().unwrap_or("start the program"),
                    errno: Errno::from_raw(errno),
                })
            }
            _ => None,
        }
    }
}

/// Forks the child described by `spec`; it blocks until [`Child::release`].
/// `tty`: a terminal whose foreground group the program's group becomes.
/// `join_pid_namespace`: a pid namespace (an `ns/pid` descriptor) the
/// program joins instead of starting one of its own (the later programs of
/// a stack share the first one's, so that one `/proc` serves them all).
pub(crate) fn fork_child(
    spec: &Spawn,
    filters: Option<&Filters>,
    tty: Option<RawFd>,
    join_pid_namespace: Option<RawFd>,
) -> Result<Child, SpawnError> {
    let program = cstr(spec.program.as_os_str().as_bytes(), "the program path")?;
    let argv: Vec<CString> = spec
        .argv
        .iter()
        .map(|a| cstr(a.as_bytes(), "an argument"))
        .collect::<Result<_, _>>()?;
    let env: Vec<CString> = spec
        .env
        .iter()
        .map(|a| cstr(a.as_bytes(), "an environment variable"))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let root = spec
        .root
        .as_ref()
        .map(|r| cstr(r.as_os_str().as_bytes(), "the root path"))
        .transpose()?;
    let cwd = cstr(spec.cwd.as_os_str().as_bytes(), "the working directory")?;
    let groups: Vec<libc::gid_t> = spec.groups.clone();

    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|errno| SpawnError::Os {
        what: "opening /dev/null",
        errno,
    })?;
    let stream = |s: &Stdio, own: RawFd| -> RawFd {
        match s {
            Stdio::Inherit => own,
            Stdio::Stderr => 2,
            Stdio::Null => null.as_raw_fd(),
            Stdio::Fd(fd) => fd.as_raw_fd(),
        }
    };
    let stdio = [
        stream(&spec.stdin, 0),
        stream(&spec.stdout, 1),
        stream(&spec.stderr, 2),
    ];

    let (go_r, go_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| SpawnError::Os {
            what: "creating a pipe",
            errno,
        })?;
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| SpawnError::Os {
            what: "creating a pipe",
            errno,
        })?;

    let child = ChildSetup {
        go: go_r.as_raw_fd(),
        errors: err_w.as_raw_fd(),
        stdio,
        root: root.as_ref().map(|r| r.as_ptr()),
        cwd: cwd.as_ptr(),
        filters: filters.map(|f| f.programs.as_slice()),
        creds: match (spec.uid, spec.gid) {
            (Some(uid), Some(gid)) => Some((uid, gid, groups.as_slice())),
            _ => None,
        },
        program: program.as_ptr(),
        argv: argv_ptrs.as_ptr(),
        env: env_ptrs.as_ptr(),
        pid_namespace: spec.pid_namespace,
        join_pid_namespace,
        tty,
        umask: spec.umask,
    };

    // SAFETY: the child runs only `ChildSetup::run`, which makes
    // async-signal-safe libc calls on memory prepared above and never
    // returns (it execs or `_exit`s).
    match unsafe { nix::unistd::fork() }.map_err(|errno| SpawnError::Os {
        what: "fork",
        errno,
    })? {
        ForkResult::Child => child.run(),
        ForkResult::Parent { child } => {
            drop(go_r);
            drop(err_w);
            Ok(Child {
                pid: child,
                go: go_w,
                errors: err_r,
            })
        }
    }
}

struct ChildSetup<'a> {
    go: RawFd,
    errors: RawFd,
    stdio: [RawFd; 3],
    root: Option<*const libc::c_char>,
    cwd: *const libc::c_char,
    filters: Option<&'a [seccompiler::BpfProgram]>,
    creds: Option<(u32, u32, &'a [libc::gid_t])>,
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    env: *const *const libc::c_char,
    pid_namespace: bool,
    join_pid_namespace: Option<RawFd>,
    tty: Option<RawFd>,
    umask: Option<libc::mode_t>,
}

/// The exit code that carries `status` (a `waitpid` status) on.
fn exit_code(status: libc::c_int) -> libc::c_int {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

impl ChildSetup<'_> {
    /// Moves the rest of `run` into a new pid namespace: this process stays
    /// outside and waits for the namespace's init; the init (pid 1) forks
    /// the program (pid 2) and reaps everything until nothing is left,
    /// then exits with the program's status. Returns in the program's
    /// process. Async-signal-safe only.
    ///
    /// # Safety
    /// Called only in the forked child, before exec.
    unsafe fn enter_pid_namespace(&self) -> Result<(), ()> {
        // SAFETY: raw syscalls on no shared state; every branch but the
        // program's ends in `_exit`.
        unsafe {
            if libc::unshare(libc::CLONE_NEWPID) != 0 {
                return Err(());
            }
            for level in 0..2 {
                let pid = libc::fork();
                if pid < 0 {
                    return Err(());
                }
                if pid == 0 {
                    continue;
                }
                // The outer process waits for the init; the init reaps
                // every process of the namespace until none is left.
                let mut code = 0;
                loop {
                    let mut status = 0;
                    let reaped =
                        libc::waitpid(if level == 0 { pid } else { -1 }, &mut status, libc::__WALL);
                    if reaped == pid {
                        code = exit_code(status);
                    }
                    if reaped < 0 && *libc::__errno_location() != libc::EINTR
                        || level == 0 && reaped == pid
                    {
                        break;
                    }
                }
                libc::_exit(code);
            }
        }
        Ok(())
    }

    /// Moves the rest of `run` into the existing pid namespace `ns`: this
    /// process joins it (`setns` takes effect for its children) and waits
    /// outside for the program, which it forks into it; orphans of the
    /// program are reaped by that namespace's init. Returns in the
    /// program's process. Async-signal-safe only.
    ///
    /// # Safety
    /// Called only in the forked child, before exec.
    unsafe fn join_pid_namespace(&self, ns: RawFd) -> Result<(), ()> {
        // SAFETY: raw syscalls on no shared state; the waiting branch ends
        // in `_exit`.
        unsafe {
            if libc::setns(ns, libc::CLONE_NEWPID) != 0 {
                return Err(());
            }
            let pid = libc::fork();
            if pid < 0 {
                return Err(());
            }
            if pid == 0 {
                return Ok(());
            }
            loop {
                let mut status = 0;
                let reaped = libc::waitpid(pid, &mut status, libc::__WALL);
                if reaped == pid {
                    libc::_exit(exit_code(status));
                }
                if reaped < 0 && *libc::__errno_location() != libc::EINTR {
                    libc::_exit(127);
                }
            }
        }
    }

    /// Runs in the forked child. Async-signal-safe only.
    fn run(&self) -> ! {
        let fail = |stage: u32| -> ! {
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&stage.to_ne_bytes());
            msg[4..].copy_from_slice(&Errno::last_raw().to_ne_bytes());
            // SAFETY: writes 8 bytes from a live stack buffer, then exits
            // without running destructors or atexit handlers.
            unsafe {
                libc::write(self.errors, msg.as_ptr().cast(), msg.len());
                libc::_exit(127)
            }
        };
        // SAFETY: plain syscalls on descriptors and NUL-terminated strings
        // prepared before fork; every pointer stays valid in the child's
        // copy of the address space.
        unsafe {
            let mut byte = 0u8;
            if libc::read(self.go, (&mut byte as *mut u8).cast(), 1) != 1 {
                fail(0);
            }
            // Still with jailtrace's signal mask: the namespace's helpers
            // keep it, and SIGTTOU stays blocked for tcsetpgrp from what is
            // a background group until then (tcsetpgrp(3)).
            let pid_namespace = match self.join_pid_namespace {
                Some(ns) => self.join_pid_namespace(ns),
                None if self.pid_namespace => self.enter_pid_namespace(),
                None => Ok(()),
            };
            if pid_namespace.is_err() {
                fail(PIDNS_STAGE as u32);
            }
            if libc::setpgid(0, 0) != 0 {
                fail(PGID_STAGE as u32);
            }
            if let Some(tty) = self.tty {
                // Not fatal: the program then runs as a background job.
                libc::tcsetpgrp(tty, libc::getpid());
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            if libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
                fail(7);
            }
            for (target, &fd) in self.stdio.iter().enumerate() {
                if fd != target as RawFd && libc::dup2(fd, target as RawFd) < 0 {
                    fail(1);
                }
            }
            if let Some(root) = self.root {
                if libc::chroot(root) != 0 {
                    fail(2);
                }
            }
            if libc::chdir(self.cwd) != 0 {
                fail(3);
            }
            // The filter goes on while we are still root: installing it
            // needs CAP_SYS_ADMIN unless no_new_privs is set, and we do not
            // want to take setuid programs' privileges away.
            if let Some(programs) = self.filters {
                for p in programs {
                    if crate::seccomp::install(p).is_err() {
                        fail(SECCOMP_STAGE as u32);
                    }
                }
            }
            if let Some((uid, gid, groups)) = self.creds {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    fail(5);
                }
            }
            if let Some(mask) = self.umask {
                // umask(2) cannot fail.
                libc::umask(mask & 0o777);
            }
            libc::execve(self.program, self.argv, self.env);
            fail(6)
        }
    }
}
