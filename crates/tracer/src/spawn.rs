//! Starting the traced program: clone a child that shares jailtrace's
//! memory, wait for the tracer, a process group of its own, enter the
//! root, drop privileges, install the seccomp filter, exec.
//!
//! Everything the child needs is prepared before the clone (C strings, the
//! filter), and the child uses raw `libc` calls and never allocates: it
//! runs in jailtrace's memory, as a `posix_spawn` child does, so starting
//! it copies none of the tracer's page tables and write-protects none of
//! its pages (see [`spawn_child`]). It writes its pid to a pipe and waits on another until
//! the tracer has seized it with `PTRACE_SEIZE`, so the tracer sees its
//! first `execve`. Failures before `exec` are written to a close-on-exec
//! pipe as (stage, errno) and become a [`SpawnError`] in the parent.
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
use nix::unistd::Pid;

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

/// A child that waits for the go signal.
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

/// Starts the child described by `spec`; it blocks until [`Child::release`].
/// `tty`: a terminal whose foreground group the program's group becomes.
/// `join_pid_namespace`: a pid namespace (an `ns/pid` descriptor) the
/// program joins instead of starting one of its own (the later programs of
/// a stack share the first one's, so that one `/proc` serves them all).
///
/// The child shares jailtrace's memory until it execs (`CLONE_VM`, as
/// `posix_spawn` does): a `fork` of the tracer, whose heap grows with the
/// session, would copy its page tables and write-protect every page it
/// has, and each page the tracer then writes while a child still shares it
/// costs a copy and a TLB shoot-down on every CPU the tracer's threads run
/// on. The clone is made by a thread of its own ("jailtrace-spawn"), which
/// `CLONE_VFORK` suspends until the child has exec'd or exited; that
/// thread keeps what the child reads (the strings, the filters, its stacks)
/// alive until then, and it is the only thread whose thread-local storage
/// (`errno`) the child uses. The tracer's thread stays free to seize the
/// child, whose pid the child writes to a pipe.
pub(crate) fn spawn_child(
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
    let root = spec
        .root
        .as_ref()
        .map(|r| cstr(r.as_os_str().as_bytes(), "the root path"))
        .transpose()?;
    let cwd = cstr(spec.cwd.as_os_str().as_bytes(), "the working directory")?;

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
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| SpawnError::Os {
            what: "creating a pipe",
            errno,
        })
    };
    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (pid_r, pid_w) = pipe()?;
    let stacks = Stacks::new().map_err(|errno| SpawnError::Os {
        what: "mapping the child's stacks",
        errno,
    })?;

    let prepared = Prepared {
        program,
        argv,
        env,
        root,
        cwd,
        groups: spec.groups.clone(),
        filters: filters.map(|f| f.programs.clone()),
        creds: spec.uid.zip(spec.gid),
        stdio,
        tty,
        umask: spec.umask,
        pid_namespace: spec.pid_namespace,
        join_pid_namespace,
        go: go_r,
        errors: err_w,
        hello: pid_w,
        stacks,
        _null: null,
    };
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("jailtrace-spawn".into())
        .spawn(move || {
            let result = prepared.clone_child();
            // Drops the pipes' ends, the stacks and the strings: the child
            // has exec'd or exited.
            drop(prepared);
            let _ = done_tx.send(result);
        })
        .map_err(|e| SpawnError::Os {
            what: "starting the spawning thread",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)),
        })?;
    let mut pid = [0u8; 4];
    let said = loop {
        match nix::unistd::read(&pid_r, &mut pid) {
            Err(Errno::EINTR) => {}
            other => break other,
        }
    };
    match said {
        Ok(4) => Ok(Child {
            pid: Pid::from_raw(i32::from_ne_bytes(pid)),
            go: go_w,
            errors: err_r,
        }),
        // No pid: the clone failed (or the child died before it could
        // say its pid), and the spawning thread dropped the pipe's end.
        _ => {
            let errno = match done_rx.recv() {
                Ok(Err(errno)) => errno,
                _ => Errno::EIO,
            };
            Err(SpawnError::Os {
                what: "clone",
                errno,
            })
        }
    }
}

/// Everything the child reads, owned by the spawning thread until the
/// child has exec'd or exited.
struct Prepared {
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    root: Option<CString>,
    cwd: CString,
    groups: Vec<libc::gid_t>,
    filters: Option<Vec<seccompiler::BpfProgram>>,
    creds: Option<(u32, u32)>,
    stdio: [RawFd; 3],
    tty: Option<RawFd>,
    umask: Option<libc::mode_t>,
    pid_namespace: bool,
    join_pid_namespace: Option<RawFd>,
    go: OwnedFd,
    errors: OwnedFd,
    hello: OwnedFd,
    stacks: Stacks,
    _null: OwnedFd,
}

impl Prepared {
    /// Clones the child sharing this process's memory and waits, suspended
    /// by `CLONE_VFORK`, until it has exec'd or exited; its pid, or why
    /// there is none.
    fn clone_child(&self) -> Result<Pid, Errno> {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut env: Vec<*const libc::c_char> = self.env.iter().map(|a| a.as_ptr()).collect();
        env.push(std::ptr::null());
        let setup = ChildSetup {
            go: self.go.as_raw_fd(),
            errors: self.errors.as_raw_fd(),
            hello: self.hello.as_raw_fd(),
            stdio: self.stdio,
            root: self.root.as_ref().map(|r| r.as_ptr()),
            cwd: self.cwd.as_ptr(),
            filters: self.filters.as_deref(),
            creds: self
                .creds
                .map(|(uid, gid)| (uid, gid, self.groups.as_slice())),
            program: self.program.as_ptr(),
            argv: argv.as_ptr(),
            env: env.as_ptr(),
            pid_namespace: self.pid_namespace,
            join_pid_namespace: self.join_pid_namespace,
            tty: self.tty,
            umask: self.umask,
            stacks: &self.stacks,
        };
        // The child is the program's process itself unless a pid namespace
        // puts the program below it.
        let vm = if self.pid_namespace || self.join_pid_namespace.is_some() {
            libc::CLONE_VM
        } else {
            setup.program_vm()
        };
        // SAFETY: `setup` and everything it points to live on this thread,
        // which CLONE_VFORK suspends until the child execs or exits; the
        // child runs on a stack of its own and only makes raw calls.
        let pid = unsafe {
            clone_on(
                self.stacks.top(0),
                vm | libc::CLONE_VFORK,
                ChildSetup::start,
                &setup,
            )
        };
        if pid < 0 {
            return Err(Errno::last());
        }
        Ok(Pid::from_raw(pid))
    }
}

/// Stacks for the processes that share jailtrace's memory before the
/// program execs, each above a guard page: 0 for the child; 1 for the
/// namespace's init, or for the program when the child joins a namespace;
/// 2 for the program below the init.
struct Stacks {
    base: *mut libc::c_void,
}

// SAFETY: the mapping is owned; only the spawning thread frees it.
unsafe impl Send for Stacks {}

const STACK: usize = 256 * 1024;
const GUARD: usize = 4096;
const STACKS: usize = 3;

impl Stacks {
    fn new() -> Result<Stacks, Errno> {
        // SAFETY: a fresh private mapping; the guard pages are made
        // inaccessible below each stack.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                STACKS * (GUARD + STACK),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(Errno::last());
            }
            let stacks = Stacks { base };
            for i in 0..STACKS {
                let guard = base.cast::<u8>().add(i * (GUARD + STACK));
                if libc::mprotect(guard.cast(), GUARD, libc::PROT_NONE) != 0 {
                    return Err(Errno::last());
                }
            }
            Ok(stacks)
        }
    }

    /// The top (highest address) of stack `i`.
    fn top(&self, i: usize) -> *mut libc::c_void {
        // SAFETY: within the mapping.
        unsafe { self.base.cast::<u8>().add((i + 1) * (GUARD + STACK)).cast() }
    }
}

impl Drop for Stacks {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, used by no process any more.
        unsafe {
            libc::munmap(self.base, STACKS * (GUARD + STACK));
        }
    }
}

/// `clone(2)` of a process that runs `f(setup)` on `stack` (its top) with
/// `flags` and SIGCHLD as its exit signal; the child's pid, or -1.
///
/// # Safety
/// `setup` must outlive the child's use of it, and `f` must never return
/// into the caller's frames (it execs or `_exit`s).
unsafe fn clone_on(
    stack: *mut libc::c_void,
    flags: libc::c_int,
    f: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    setup: &ChildSetup<'_>,
) -> libc::pid_t {
    // SAFETY: per the caller.
    unsafe {
        libc::clone(
            f,
            stack,
            flags | libc::SIGCHLD,
            (setup as *const ChildSetup<'_>).cast_mut().cast(),
        )
    }
}

struct ChildSetup<'a> {
    go: RawFd,
    errors: RawFd,
    /// Where the child writes its pid for the tracer.
    hello: RawFd,
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
    stacks: &'a Stacks,
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
    /// The child's entry (see [`spawn_child`]): reports its pid, waits for
    /// the tracer, then goes on in [`ChildSetup::run`].
    extern "C" fn start(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `ChildSetup` the spawning thread keeps alive
        // while suspended (see `clone_on`).
        let setup = unsafe { &*arg.cast_const().cast::<ChildSetup<'_>>() };
        setup.run()
    }

    /// The entry of the pid namespace's init: clones the program and reaps
    /// every process of the namespace until none is left, then exits with
    /// the program's status.
    extern "C" fn init(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: as in `start`.
        let setup = unsafe { &*arg.cast_const().cast::<ChildSetup<'_>>() };
        let pid = setup.clone_program(2);
        // SAFETY: raw calls and `_exit`.
        unsafe {
            let mut code = 0;
            loop {
                let mut status = 0;
                let reaped = libc::waitpid(-1, &mut status, libc::__WALL);
                if reaped == pid {
                    code = exit_code(status);
                }
                if reaped < 0 && *libc::__errno_location() != libc::EINTR {
                    break;
                }
            }
            libc::_exit(code)
        }
    }

    /// The entry of the program's process when it is not the child itself.
    extern "C" fn program_entry(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: as in `start`.
        let setup = unsafe { &*arg.cast_const().cast::<ChildSetup<'_>>() };
        setup.program()
    }

    /// Clones the program's process below this one, on stack `stack`;
    /// this process waits, suspended, until the program execs (or exits).
    /// Its pid; on failure, reports the pid namespace stage and exits.
    fn clone_program(&self, stack: usize) -> libc::pid_t {
        // SAFETY: the program runs on a stack of its own, and what it reads
        // lives while the spawning thread is suspended (see `clone_on`).
        let pid = unsafe {
            clone_on(
                self.stacks.top(stack),
                self.program_vm() | libc::CLONE_VFORK,
                ChildSetup::program_entry,
                self,
            )
        };
        if pid < 0 {
            self.fail(PIDNS_STAGE as u32);
        }
        pid
    }

    /// `CLONE_VM` for the program's process, unless it switches user: a
    /// change of credentials makes the memory it runs in undumpable
    /// (`commit_creds` sets `suid_dumpable`), and that memory would be
    /// jailtrace's, whose later children it could then no longer trace
    /// without CAP_SYS_PTRACE. That process gets a copy of its own.
    fn program_vm(&self) -> libc::c_int {
        if self.creds.is_some() {
            0
        } else {
            libc::CLONE_VM
        }
    }

    /// Waits for `pid`, a process this one cloned, and exits with its
    /// status. Async-signal-safe only.
    fn wait_and_exit(&self, pid: libc::pid_t) -> ! {
        // SAFETY: raw calls, then `_exit`.
        unsafe {
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

    /// Reports the failed `stage` (with `errno`) to the tracer and exits.
    fn fail(&self, stage: u32) -> ! {
        let mut msg = [0u8; 8];
        msg[..4].copy_from_slice(&stage.to_ne_bytes());
        msg[4..].copy_from_slice(&Errno::last_raw().to_ne_bytes());
        // SAFETY: writes 8 bytes from a live stack buffer, then exits
        // without running destructors or atexit handlers.
        unsafe {
            libc::write(self.errors, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    }

    /// Runs in the child: tells the tracer its pid, waits for it, and
    /// moves into the pid namespace before the program's set-up.
    /// Async-signal-safe only.
    fn run(&self) -> ! {
        // SAFETY: plain syscalls on descriptors prepared before the clone.
        unsafe {
            // The spawning thread's name came with the clone; the waiting
            // helpers (with a pid namespace) show as jailtrace in `ps`, as
            // forked ones did.
            libc::prctl(libc::PR_SET_NAME, c"jailtrace".as_ptr());
            let pid = libc::getpid();
            if libc::write(self.hello, (&pid as *const libc::pid_t).cast(), 4) != 4 {
                self.fail(0);
            }
            let mut byte = 0u8;
            if libc::read(self.go, (&mut byte as *mut u8).cast(), 1) != 1 {
                self.fail(0);
            }
            // Still with jailtrace's signal mask: the namespace's helpers
            // keep it, and SIGTTOU stays blocked for tcsetpgrp from what is
            // a background group until then (tcsetpgrp(3)).
            if let Some(ns) = self.join_pid_namespace {
                // This process joins the namespace (`setns` takes effect for
                // its children) and waits outside for the program; orphans
                // of the program are reaped by that namespace's init.
                if libc::setns(ns, libc::CLONE_NEWPID) != 0 {
                    self.fail(PIDNS_STAGE as u32);
                }
                self.wait_and_exit(self.clone_program(1))
            }
            if self.pid_namespace {
                // This process stays outside and waits for the namespace's
                // init (pid 1), which clones the program (pid 2). The init
                // shares the memory too, without CLONE_VFORK: it lives as
                // long as the namespace, and this process only waits for
                // it (neither touches `errno` while the other runs code).
                if libc::unshare(libc::CLONE_NEWPID) != 0 {
                    self.fail(PIDNS_STAGE as u32);
                }
                let pid = clone_on(self.stacks.top(1), libc::CLONE_VM, ChildSetup::init, self);
                if pid < 0 {
                    self.fail(PIDNS_STAGE as u32);
                }
                self.wait_and_exit(pid)
            }
        }
        self.program()
    }

    /// The program's process: its own process group, the standard
    /// streams, the root, the filter, the credentials, exec.
    /// Async-signal-safe only, and no libc call that acts on other threads
    /// (glibc's `setuid` family signals every thread it knows of, and the
    /// threads it knows of are jailtrace's): the credentials are set by
    /// raw system calls.
    fn program(&self) -> ! {
        // SAFETY: plain syscalls on descriptors and NUL-terminated strings
        // prepared before the clone; every pointer stays valid while the
        // spawning thread is suspended.
        unsafe {
            if libc::setpgid(0, 0) != 0 {
                self.fail(PGID_STAGE as u32);
            }
            if let Some(tty) = self.tty {
                // Not fatal: the program then runs as a background job.
                libc::tcsetpgrp(tty, libc::getpid());
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            if libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
                self.fail(7);
            }
            for (target, &fd) in self.stdio.iter().enumerate() {
                if fd != target as RawFd && libc::dup2(fd, target as RawFd) < 0 {
                    self.fail(1);
                }
            }
            if let Some(root) = self.root {
                if libc::chroot(root) != 0 {
                    self.fail(2);
                }
            }
            if libc::chdir(self.cwd) != 0 {
                self.fail(3);
            }
            // The filter goes on while we are still root: installing it
            // needs CAP_SYS_ADMIN unless no_new_privs is set, and we do not
            // want to take setuid programs' privileges away.
            if let Some(programs) = self.filters {
                for p in programs {
                    if crate::seccomp::install(p).is_err() {
                        self.fail(SECCOMP_STAGE as u32);
                    }
                }
            }
            if let Some((uid, gid, groups)) = self.creds {
                if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0
                    || libc::syscall(libc::SYS_setgid, gid) != 0
                    || libc::syscall(libc::SYS_setuid, uid) != 0
                {
                    self.fail(5);
                }
            }
            if let Some(mask) = self.umask {
                // umask(2) cannot fail.
                libc::umask(mask & 0o777);
            }
            libc::execve(self.program, self.argv, self.env);
            self.fail(6)
        }
    }
}
