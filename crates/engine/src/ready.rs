//! Readiness: when `jailtrace run` counts the program as started.
//!
//! A command is started when its first process exits 0; a server never
//! exits when it works, so `--ready CONDITION` (repeatable, all must hold)
//! says what to wait for instead: `exit`, `tcp:HOST:PORT`, `http:URL`,
//! `log:REGEX`, `alive:DURATION`, `notify` or `pidfile:PATH`. The conditions, and their parsing, are
//! [`jailtrace_spec::ready`]'s: the engine watches them and never parses.
//!
//! [`Readiness`] tracks one run. Guarantees:
//!
//! - a condition that held once stays held (a port that answered need not
//!   answer again); `exit` fails for good on a non-zero exit or a signal,
//!   `alive` on a non-zero exit, a crash, or an empty tree before its
//!   duration; network and log conditions fail for good when no traced
//!   process is left ([`Readiness::tree_empty`]);
//! - the tracer is never blocked by the network: every `tcp`/`http` probe
//!   runs in a short-lived thread (a traced server may sit in a syscall stop
//!   that only the tracer ends, so a probe that waited for its answer on the
//!   tracer's thread could wait for itself); at most one probe per
//!   condition is in flight, started at most every [`PROBE_INTERVAL`];
//! - output is matched line by line, lines split on `\n` across chunk
//!   boundaries (a trailing `\r` is dropped), with at most [`MAX_LINE`]
//!   bytes buffered: a longer line is matched on its first [`MAX_LINE`]
//!   bytes; output need not be UTF-8;
//! - `notify` listens on a unix datagram socket of its own in the abstract
//!   namespace ([`Readiness::notify_socket`], `@jailtrace/notify/PID/N`):
//!   no file in the jail, and a service that dropped to its `User=` can
//!   send to it whatever its owner (a socket file would need a mode for
//!   it). The run's program gets its name in `NOTIFY_SOCKET`, as
//!   sd_notify(3) expects; the socket is read without blocking on each
//!   tick, `READY=1` makes the condition hold and `STATUS=` lines are
//!   kept for the progress display ([`Readiness::take_status`]);
//! - `pidfile:PATH` holds once PATH in the jail's root names a running
//!   process: one whose root is the jail's and whose pid in its own pid
//!   namespace (the jail's, `NSpid` in `/proc/PID/status`) is the one in
//!   the file.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

// The engine's modules name the condition type through this module.
pub(crate) use jailtrace_spec::ready::Condition;
use jailtrace_spec::ready::{format_duration, HttpUrl};

/// Shortest time between two probes of one network condition.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// How long a probe waits for the TCP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// How long an `http` probe waits for each read or write. Longer than the
/// connect timeout: a traced server stops at its syscalls, so its first
/// answer can be slow, and the probe's thread blocks nobody.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// Most bytes of one output line that are buffered and matched.
pub const MAX_LINE: usize = 64 * 1024;
/// Most bytes of an HTTP answer read to find its status line.
const MAX_STATUS_LINE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Waiting,
    Held,
    /// Can no longer hold in this run, and why.
    Failed(String),
}

/// One condition during a run.
#[derive(Debug)]
struct Item {
    condition: Condition,
    state: State,
    /// `log` conditions: the same pattern over bytes, as output need not be
    /// UTF-8.
    matcher: Option<regex::bytes::Regex>,
    /// The network probe in flight.
    probe: Option<JoinHandle<Result<(), String>>>,
    /// When (run time) the last probe started.
    last_try: Option<Duration>,
    /// What the last probe saw, for [`Readiness::pending`].
    note: Option<String>,
}

/// The notification socket of a `notify` condition.
#[derive(Debug)]
struct Notify {
    socket: UnixDatagram,
    /// Its abstract name with a leading `@` (sd_notify(3)'s form).
    name: String,
}

/// Makes each notification socket's name unique in the process.
static NOTIFY_SOCKETS: AtomicU32 = AtomicU32::new(0);

impl Notify {
    fn bind() -> std::io::Result<Notify> {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "jailtrace/notify/{}/{}",
            std::process::id(),
            NOTIFY_SOCKETS.fetch_add(1, Ordering::Relaxed)
        );
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        let socket = UnixDatagram::bind_addr(&addr)?;
        socket.set_nonblocking(true)?;
        Ok(Notify {
            socket,
            name: format!("@{name}"),
        })
    }

    /// The messages waiting, each split into its `KEY=VALUE` lines.
    fn drain(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            lines.extend(text.lines().map(str::to_string));
        }
        lines
    }
}

impl Item {
    fn fail(&mut self, why: impl Into<String>) {
        if self.state == State::Waiting {
            self.state = State::Failed(why.into());
        }
    }

    /// Takes the result of a finished probe.
    fn collect(&mut self) {
        if !self.probe.as_ref().is_some_and(JoinHandle::is_finished) {
            return;
        }
        let Some(handle) = self.probe.take() else {
            return;
        };
        match handle.join() {
            Ok(Ok(())) if self.state == State::Waiting => self.state = State::Held,
            Ok(Ok(())) => {}
            Ok(Err(note)) => self.note = Some(note),
            Err(_) => self.note = Some("the probe failed".into()),
        }
    }
}

/// Whether a process that ended so crashed (SIGSEGV, SIGABRT, SIGBUS,
/// SIGILL, SIGFPE): an `alive` condition fails.
pub(crate) fn is_crash(status: jailtrace_tracer::Status) -> bool {
    use jailtrace_tracer::Sig;
    matches!(
        status,
        jailtrace_tracer::Status::Signaled {
            signal: Sig(libc::SIGSEGV | libc::SIGABRT | libc::SIGBUS | libc::SIGILL | libc::SIGFPE),
            ..
        }
    )
}

/// Tracks a set of conditions during one run.
#[derive(Debug)]
pub struct Readiness {
    items: Vec<Item>,
    /// The output line being assembled.
    line: Vec<u8>,
    /// The current line passed [`MAX_LINE`]: skip to its end.
    discarding: bool,
    /// The socket of a `notify` condition.
    notify: Option<Notify>,
    /// `STATUS=` texts received, not yet taken.
    status: Vec<String>,
    /// The jail's root, where `pidfile:` paths are read.
    root: Option<PathBuf>,
}

impl Readiness {
    /// Tracks `conditions`; none means `[Exit]`.
    pub fn new(conditions: Vec<Condition>) -> Readiness {
        let conditions = if conditions.is_empty() {
            vec![Condition::Exit]
        } else {
            conditions
        };
        let items = conditions
            .into_iter()
            .map(|condition| {
                let matcher = match &condition {
                    // Every pattern `regex::Regex` accepts, `regex::bytes::Regex`
                    // accepts too (same syntax, Unicode on by default, same
                    // size limits), so this cannot fail.
                    Condition::Log(re) => Some(
                        regex::bytes::Regex::new(re.as_str())
                            .expect("a valid str regex is a valid bytes regex"),
                    ),
                    _ => None,
                };
                Item {
                    condition,
                    state: State::Waiting,
                    matcher,
                    probe: None,
                    last_try: None,
                    note: None,
                }
            })
            .collect();
        let mut readiness = Readiness {
            items,
            line: Vec::new(),
            discarding: false,
            notify: None,
            status: Vec::new(),
            root: None,
        };
        if readiness
            .items
            .iter()
            .any(|i| matches!(i.condition, Condition::Notify))
        {
            match Notify::bind() {
                Ok(n) => readiness.notify = Some(n),
                Err(e) => {
                    for item in &mut readiness.items {
                        if matches!(item.condition, Condition::Notify) {
                            item.fail(format!("cannot make the notification socket: {e}"));
                        }
                    }
                }
            }
        }
        readiness
    }

    /// Reads `pidfile:` paths in `root` (the jail's).
    pub fn in_root(mut self, root: &Path) -> Readiness {
        self.root = Some(root.to_path_buf());
        self
    }

    /// The value of `NOTIFY_SOCKET` for the program, when a condition is
    /// `notify`.
    pub fn notify_socket(&self) -> Option<&str> {
        self.notify.as_ref().map(|n| n.name.as_str())
    }

    /// The `STATUS=` texts the program sent since the last call.
    pub fn take_status(&mut self) -> Vec<String> {
        std::mem::take(&mut self.status)
    }

    /// Reads the notification socket: `READY=1` makes `notify` hold.
    fn read_notify(&mut self) {
        let Some(notify) = &self.notify else {
            return;
        };
        let mut ready = false;
        for line in notify.drain() {
            if line == "READY=1" {
                ready = true;
            } else if let Some(status) = line.strip_prefix("STATUS=") {
                self.status.push(status.to_string());
            } else if let Some(errno) = line.strip_prefix("ERRNO=") {
                self.status.push(format!("error {errno} (ERRNO=)"));
            }
        }
        if ready {
            for item in &mut self.items {
                if matches!(item.condition, Condition::Notify) && item.state == State::Waiting {
                    item.state = State::Held;
                }
            }
        }
    }

    /// Whether all conditions are `exit`.
    pub fn only_exit(&self) -> bool {
        self.items
            .iter()
            .all(|i| matches!(i.condition, Condition::Exit))
    }

    /// Program output, in chunks of any size.
    pub fn feed_output(&mut self, bytes: &[u8]) {
        let waiting = |i: &Item| i.matcher.is_some() && i.state == State::Waiting;
        if !self.items.iter().any(waiting) {
            return;
        }
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let (body, complete) = match piece.split_last() {
                Some((b'\n', body)) => (body, true),
                _ => (piece, false),
            };
            if !self.discarding {
                let room = MAX_LINE - self.line.len();
                if body.len() > room {
                    self.line.extend_from_slice(&body[..room]);
                    self.match_line();
                    self.discarding = true;
                } else {
                    self.line.extend_from_slice(body);
                }
            }
            if complete {
                if !self.discarding {
                    self.match_line();
                }
                self.line.clear();
                self.discarding = false;
            }
        }
    }

    /// Matches the buffered line against the `log` conditions still waiting.
    fn match_line(&mut self) {
        let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        for item in &mut self.items {
            if let (State::Waiting, Some(re)) = (&item.state, &item.matcher) {
                if re.is_match(line) {
                    item.state = State::Held;
                }
            }
        }
    }

    /// The program's first process ended: `Some(code)` when it exited,
    /// `None` when a signal killed it.
    pub fn leader_exited(&mut self, code: Option<i32>) {
        let why = match code {
            Some(0) => None,
            Some(code) => Some(format!("the program exited with code {code}")),
            None => Some("the program was killed by a signal".to_string()),
        };
        for item in &mut self.items {
            match (&item.condition, &why) {
                (Condition::Exit, None) if item.state == State::Waiting => item.state = State::Held,
                (Condition::Exit | Condition::Alive(_), Some(why)) => item.fail(why.clone()),
                _ => {}
            }
        }
    }

    /// A process of the tree died of SIGSEGV, SIGABRT, SIGBUS, SIGILL or
    /// SIGFPE.
    pub fn crashed(&mut self) {
        for item in &mut self.items {
            if matches!(item.condition, Condition::Alive(_)) {
                item.fail("a process crashed");
            }
        }
    }

    /// No traced process is left: what has not held yet never will.
    pub fn tree_empty(&mut self) {
        if !self.discarding && !self.line.is_empty() {
            // The last line had no newline.
            self.match_line();
        }
        self.line.clear();
        self.discarding = false;
        for item in &mut self.items {
            item.collect();
            let why = match &item.condition {
                Condition::Exit => "the program did not exit",
                Condition::Tcp { .. } | Condition::Http(_) => {
                    "the program ended before it answered"
                }
                Condition::Log(_) => "no line of output matched",
                Condition::Alive(_) => "the program ended before that",
                Condition::Notify => "the program ended before it sent READY=1",
                Condition::PidFile(_) => "the program ended before its pid file named a process",
            };
            let why = item.note.take().unwrap_or_else(|| why.to_string());
            item.fail(why);
            item.probe = None;
        }
    }

    /// Checks the conditions at `elapsed` into the run (probes the network
    /// ones at most every [`PROBE_INTERVAL`], without waiting for answers)
    /// and returns whether all of them hold.
    pub fn poll(&mut self, elapsed: Duration) -> bool {
        self.read_notify();
        let root = self.root.clone();
        for item in &mut self.items {
            item.collect();
            if item.state != State::Waiting {
                continue;
            }
            match &item.condition {
                Condition::Alive(d) if elapsed >= *d => item.state = State::Held,
                Condition::PidFile(path) => match pid_in(root.as_deref(), path) {
                    Ok(pid) if alive_in(root.as_deref(), pid) => item.state = State::Held,
                    Ok(pid) => {
                        item.note = Some(format!(
                            "{} names process {pid}, which is not running",
                            path.display()
                        ))
                    }
                    Err(note) => item.note = Some(note),
                },
                Condition::Tcp { .. } | Condition::Http(_) => {
                    let due = item
                        .last_try
                        .is_none_or(|t| elapsed.saturating_sub(t) >= PROBE_INTERVAL);
                    if item.probe.is_none() && due {
                        item.last_try = Some(elapsed);
                        match start_probe(&item.condition) {
                            Ok(handle) => item.probe = handle,
                            Err(e) => item.note = Some(format!("cannot start a probe: {e}")),
                        }
                    }
                }
                _ => {}
            }
        }
        self.items.iter().all(|i| i.state == State::Held)
    }

    /// Whether a condition failed: it will never hold in this run.
    pub fn failed(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i.state, State::Failed(_)))
    }

    /// The conditions not met (yet), each with why when known.
    pub fn pending(&self) -> Vec<String> {
        self.items
            .iter()
            .filter_map(|item| match (&item.state, &item.note) {
                (State::Held, _) => None,
                (State::Failed(why), _) | (State::Waiting, Some(why)) => {
                    Some(format!("{} ({why})", item.condition))
                }
                (State::Waiting, None) => Some(item.condition.to_string()),
            })
            .collect()
    }
}

/// The process id the pid file `path` (a jail path, read in `root`) holds.
fn pid_in(root: Option<&Path>, path: &Path) -> Result<u32, String> {
    let host = match root {
        Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    };
    let text = std::fs::read_to_string(&host).map_err(|e| format!("{}: {e}", path.display()))?;
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(format!("{} holds no process id", path.display())),
    }
}

/// Whether process `pid` runs: with a jail `root`, a process whose root
/// is the jail's and whose pid in its own (innermost) pid namespace is
/// `pid`, as a pid file in the jail names it; else the host's process.
fn alive_in(root: Option<&Path>, pid: u32) -> bool {
    let Some(root) = root else {
        return Path::new("/proc").join(pid.to_string()).exists();
    };
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let Ok(all) = procfs::process::all_processes() else {
        return false;
    };
    all.flatten().any(|p| {
        p.root().is_ok_and(|r| r.starts_with(&root))
            && p.status()
                .ok()
                .and_then(|s| s.nspid)
                .and_then(|ids| ids.last().copied())
                .is_some_and(|last| u32::try_from(last) == Ok(pid))
    })
}

/// Starts the probe of a network condition in its own thread.
fn start_probe(condition: &Condition) -> std::io::Result<Option<JoinHandle<Result<(), String>>>> {
    let probe: Box<dyn FnOnce() -> Result<(), String> + Send> = match condition {
        Condition::Tcp { addr } => {
            let addr = addr.clone();
            Box::new(move || connect(&addr, CONNECT_TIMEOUT).map(drop))
        }
        Condition::Http(url) => {
            let url = url.clone();
            Box::new(move || http_get(&url, READINESS_GET).map(drop))
        }
        _ => return Ok(None),
    };
    std::thread::Builder::new()
        .name("jailtrace-ready".into())
        .spawn(probe)
        .map(Some)
}

/// A connection to `addr` (`HOST:PORT`), trying each address it resolves to.
fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .collect();
    let mut last = format!("{addr} resolves to no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(last)
}

/// How long an HTTP `GET` may wait, and how much of the answer it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Get {
    /// For the TCP handshake.
    pub connect: Duration,
    /// For each read or write.
    pub io: Duration,
    /// Read the answer to its end (and discard the body) instead of
    /// stopping after the status line: a server may still be at work on
    /// the request after it sent its status (a PHP page that prints
    /// before it queries), and what it reads then belongs in the jail too.
    pub whole: bool,
}

/// A readiness probe: short waits (it is tried again), the status line only.
const READINESS_GET: Get = Get {
    connect: CONNECT_TIMEOUT,
    io: IO_TIMEOUT,
    whole: false,
};

/// `GET path HTTP/1.0`; the status line when the status is 2xx or 3xx.
pub(crate) fn http_get(url: &HttpUrl, get: Get) -> Result<String, String> {
    let HttpUrl { host, port, path } = url;
    let mut stream = connect(&format!("{host}:{port}"), get.connect)?;
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no answer within {}", format_duration(get.io))
        }
        _ => e.to_string(),
    };
    stream.set_read_timeout(Some(get.io)).map_err(io)?;
    stream.set_write_timeout(Some(get.io)).map_err(io)?;
    let host_header = if *port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: jailtrace\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.contains(&b'\n') && answer.len() < MAX_STATUS_LINE {
        match stream.read(&mut buf).map_err(io)? {
            0 => break,
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
    let line = answer.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or("").trim_end();
    let mut words = line.splitn(2, ' ');
    let status = match (words.next(), words.next()) {
        (Some(version), Some(rest)) if version.starts_with("HTTP/") => rest,
        _ if answer.is_empty() => return Err("closed without an answer".into()),
        _ => return Err("answered something that is not HTTP".into()),
    };
    match status.get(..3).and_then(|c| c.parse::<u16>().ok()) {
        Some(200..=399) => {}
        Some(_) => return Err(format!("answered {status}")),
        None => return Err(format!("answered an invalid status `{status}`")),
    }
    if get.whole {
        let mut rest = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut rest) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("answered {status}, then: {}", io(e))),
            }
        }
    }
    Ok(line.to_string())
}

#[cfg(test)]
pub(crate) mod tests;
