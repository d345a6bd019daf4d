//! Readiness: when `jailtrace run` counts the program as started.
//!
//! A command is started when its first process exits 0; a server never
//! exits when it works, so `--ready CONDITION` (repeatable, all must hold)
//! says what to wait for instead:
//!
//! | condition        | holds when                                               |
//! |------------------|----------------------------------------------------------|
//! | `exit`           | the first process exited 0 (the default)                 |
//! | `tcp:HOST:PORT`  | a TCP connection to HOST:PORT is accepted                |
//! | `http:URL`       | `GET PATH HTTP/1.0` to `http://HOST[:PORT][/PATH]` answers 2xx or 3xx |
//! | `log:REGEX`      | a line of the program's stdout or stderr matches REGEX   |
//! | `alive:DURATION` | the tree still runs after DURATION and nothing crashed   |
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
//!   bytes; output need not be UTF-8.
//!
//! `https:` is refused at parse time: there is no TLS client here
//! (`tcp:HOST:443` checks that such a server listens).

use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::thread::JoinHandle;
use std::time::Duration;

use regex::Regex;

/// Shortest time between two probes of one network condition.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(100);
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

const EXPECTED: &str = "expected exit, tcp:HOST:PORT, http:URL, log:REGEX or alive:DURATION";

/// One `--ready` condition.
#[derive(Debug, Clone)]
pub enum Condition {
    /// The program's first process exited 0.
    Exit,
    /// A TCP connection to `addr` is accepted; `addr` is `HOST:PORT` as
    /// given (HOST an IPv4 address, `[v6]` or a name), resolved at each probe.
    Tcp { addr: String },
    /// The URL answers a `GET` with 2xx or 3xx.
    Http(HttpUrl),
    /// A line of the program's stdout or stderr matches.
    Log(Regex),
    /// The tree still runs after this long, and nothing crashed.
    Alive(Duration),
}

/// An `http://HOST[:PORT][/PATH]` URL, as the HTTP client here uses it
/// (readiness conditions and `--probe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// As written in the URL (`[v6]` keeps its brackets).
    pub host: String,
    pub port: u16,
    /// Starts with `/` and keeps the query; no fragment.
    pub path: String,
}

/// Parses `http://HOST[:PORT][/PATH]`; the error says what is wrong.
impl FromStr for HttpUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let (host, port, path) = parse_url(url)?;
        Ok(HttpUrl { host, port, path })
    }
}

/// The URL again, without `:80`.
impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HttpUrl { host, port, path } = self;
        match port {
            80 => write!(f, "http://{host}{path}"),
            port => write!(f, "http://{host}:{port}{path}"),
        }
    }
}

/// Why a `--ready` argument is not a condition.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("unknown readiness condition `{0}` ({EXPECTED})")]
    Unknown(String),
    #[error("invalid readiness condition `{given}`: {reason}")]
    Invalid { given: String, reason: String },
    #[error("invalid regex in readiness condition `{given}`: {source}")]
    Regex {
        given: String,
        #[source]
        source: regex::Error,
    },
}

impl FromStr for Condition {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let invalid = |reason: String| ParseError::Invalid {
            given: s.to_string(),
            reason,
        };
        let (kind, arg) = match s.split_once(':') {
            Some((kind, arg)) => (kind.to_ascii_lowercase(), Some(arg)),
            None => (s.to_ascii_lowercase(), None),
        };
        match (kind.as_str(), arg) {
            ("exit", None) => Ok(Condition::Exit),
            ("exit", Some(_)) => Err(invalid("`exit` takes no argument".into())),
            ("tcp", Some(arg)) => parse_tcp(arg)
                .map(|addr| Condition::Tcp { addr })
                .map_err(invalid),
            // `http://host/` is itself the URL; `http:http://host/` is the
            // `http:URL` form spelt out.
            ("http" | "https", Some(arg)) => {
                let url = if arg.starts_with("//") { s } else { arg };
                url.parse().map(Condition::Http).map_err(invalid)
            }
            ("log", Some("")) => Err(invalid("empty regex".into())),
            ("log", Some(arg)) => {
                Regex::new(arg)
                    .map(Condition::Log)
                    .map_err(|source| ParseError::Regex {
                        given: s.to_string(),
                        source,
                    })
            }
            ("alive", Some(arg)) => parse_duration(arg).map(Condition::Alive).map_err(invalid),
            ("tcp", None) => Err(invalid("expected tcp:HOST:PORT".into())),
            ("http", None) => Err(invalid(
                "expected http:URL, like http://127.0.0.1:8080/".into(),
            )),
            ("log", None) => Err(invalid("expected log:REGEX".into())),
            ("alive", None) => Err(invalid("expected alive:DURATION, like alive:2s".into())),
            _ => Err(ParseError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Exit => f.write_str("exit"),
            Condition::Tcp { addr } => write!(f, "tcp:{addr}"),
            Condition::Http(url) => write!(f, "{url}"),
            Condition::Log(re) => write!(f, "log:{}", re.as_str()),
            Condition::Alive(d) => write!(f, "alive:{}", format_duration(*d)),
        }
    }
}

/// `HOST:PORT` → itself, checked.
fn parse_tcp(arg: &str) -> Result<String, String> {
    let Some((host, port)) = arg.rsplit_once(':') else {
        return Err("missing port: expected tcp:HOST:PORT".into());
    };
    check_host(host)?;
    parse_port(port)?;
    Ok(arg.to_string())
}

/// `http://HOST[:PORT][/PATH]` → (host, port, path).
fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not an http:// URL (like http://127.0.0.1:8080/)"))?;
    if scheme.eq_ignore_ascii_case("https") {
        return Err(
            "https is not supported: jailtrace speaks plain HTTP only (no TLS); \
                    tcp:HOST:443 checks that the server listens"
                .into(),
        );
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "`{scheme}://` URLs are not supported (expected http://)"
        ));
    }
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err("user names and passwords in the URL are not supported".into());
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let close = v6.find(']').ok_or("unclosed `[` in the host")?;
            let after = &v6[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p)?,
                None if after.is_empty() => 80,
                None => return Err(format!("unexpected `{after}` after the host")),
            };
            (&authority[..close + 2], port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, parse_port(port)?),
            None => (authority, 80),
        },
    };
    check_host(host)?;
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the path holds a space or a control character; percent-encode it".into());
    }
    Ok((host.to_string(), port, path))
}

/// A name, an IPv4 address, or `[v6]`.
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("missing host".into());
    }
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
            Some(Ok(_)) => Ok(()),
            _ => Err(format!("`{host}` is not an IPv6 address in brackets")),
        };
    }
    if host.contains(':') {
        return Err(format!("an IPv6 address goes in brackets: [{host}]"));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(format!("`{host}` is not a host name or address"));
    }
    Ok(())
}

fn parse_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ if port.is_empty() => Err("missing port".into()),
        _ => Err(format!("invalid port `{port}` (expected 1-65535)")),
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`, bare seconds (`2`), decimals (`1.5s`)
/// and sums (`1m30s`); whole milliseconds only.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration `{s}`: {why}");
    let text = s.trim();
    if text.is_empty() {
        return Err(bad("empty (expected e.g. 500ms, 30s, 5m or 1h)"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            // A bare number is seconds, alone only.
            "" if rest.len() == text.len() => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "" => return Err(bad("a number without a unit after another part")),
            other => {
                return Err(bad(&format!(
                    "unknown unit `{other}` (expected ms, s, m or h)"
                )))
            }
        };
        let ms = number_times(number, unit_ms).ok_or_else(|| {
            bad("expected a number before each unit, in whole milliseconds (e.g. 500ms, 1.5s)")
        })?;
        total = total.checked_add(ms).ok_or_else(|| bad("too long"))?;
        rest = next;
    }
    Ok(Duration::from_millis(total))
}

/// `number` (digits, maybe one `.`) × `unit_ms`, if that is whole
/// milliseconds and fits.
fn number_times(number: &str, unit_ms: u64) -> Option<u64> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 9 {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut ms = whole.checked_mul(unit_ms)?;
    if !frac.is_empty() {
        let scale = 10u64.pow(frac.len() as u32);
        let part = frac.parse::<u64>().ok()?.checked_mul(unit_ms)?;
        if part % scale != 0 {
            return None;
        }
        ms = ms.checked_add(part / scale)?;
    }
    Some(ms)
}

/// The shortest form [`parse_duration`] reads back to the same value.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        ms => format!("{ms}ms"),
    }
}

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
    use nix::sys::signal::Signal;
    matches!(
        status,
        jailtrace_tracer::Status::Signaled {
            signal: Signal::SIGSEGV
                | Signal::SIGABRT
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE,
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
        Readiness {
            items,
            line: Vec::new(),
            discarding: false,
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
        for item in &mut self.items {
            item.collect();
            if item.state != State::Waiting {
                continue;
            }
            match &item.condition {
                Condition::Alive(d) if elapsed >= *d => item.state = State::Held,
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
