//! The exercise of the listening ports ([`Exercise::Listening`]): `GET
//! PATH` on each TCP port the program listens on, which `run --unit`
//! does when no exercise is given. A server that reads its content only
//! when asked (nginx's default page, a servlet container's welcome page)
//! is asked once; a server that does not speak HTTP is asked as little
//! as can be.
//!
//! Guarantees:
//! - it never fails: each port's outcome (answered with a status line,
//!   did not speak HTTP, spoke first, refused) is reported, none is an
//!   error;
//! - a port whose server speaks first (an SSH or SMTP banner, MySQL's
//!   handshake) within [`SPEAKS_FIRST`] is not sent anything; the wait
//!   ends sooner once the traced program has made no path call (but in
//!   `/proc` and `/sys`: the handler does not count those) and no process
//!   event for [`STILL`] ([`Activity`]): a server that greets its
//!   clients either does so at once or works to (an `sshd` re-executes
//!   itself for each connection), while one that waits for its client's
//!   request sits still;
//! - a port that took the request in an earlier run of the session
//!   ([`QuietPorts`]) is sent it at once: a later run asks each port as
//!   the first did;
//! - the request is `GET PATH HTTP/1.0` with a `User-Agent` and no
//!   `Host:` header (a server's default virtual host answers it; Redis
//!   takes a `Host:` line for a cross-protocol attack and logs a
//!   warning); an answer that does not begin with `HTTP/` is not read
//!   further;
//! - an answer is waited for while the server works on it (path calls,
//!   process events, CPU time), and not once it has sat still for
//!   [`SAT_STILL`]: a server of another protocol may wait for the rest of
//!   a message that never comes;
//! - a port refused is asked again, and with no port known in the first
//!   run the step waits for one, for at most [`SETTLE`] (the program may
//!   listen after it counted as ready), and not once the program has sat
//!   still for [`SAT_STILL`] without a port (a JVM that starts computes);
//!   a later run does not wait for a first port (the program listened on
//!   none in the first run); the ports are the tracer's as of each look;
//! - it ends before `deadline`, so that the exercise's timeout (which
//!   would fail the run) is never reached on its account.
//!
//! [`Exercise::Listening`]: super::Exercise::Listening

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jailtrace_spec::ready::format_duration;

/// The ports that took the request without speaking first, in the runs of
/// a session so far.
pub(crate) type QuietPorts = Arc<Mutex<HashSet<SocketAddr>>>;

/// How long a server may take to speak first before it is asked.
pub(crate) const SPEAKS_FIRST: Duration = Duration::from_millis(500);

/// How long a traced program that has not spoken must sit still (see
/// [`Activity`]) to be asked before [`SPEAKS_FIRST`].
pub(crate) const STILL: Duration = Duration::from_millis(100);

/// How often the wait for a first word looks at the program's activity.
const LOOK_STILL: Duration = Duration::from_millis(10);

/// What the traced program does, as the handler sees it: how many of its
/// stops and process events were handled, whether one is being handled
/// now (a copy may take longer than [`STILL`]), and its tasks, whose CPU
/// time tells a server that computes an answer from one that waits.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    events: AtomicU64,
    handling: AtomicBool,
    tasks: Mutex<HashSet<i32>>,
}

impl Activity {
    /// The handler begins (`true`) or ends handling a stop.
    pub(crate) fn handling(&self, now: bool) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.handling.store(now, Ordering::Relaxed);
    }

    /// A process event (a fork, an exec, an exit) of task `tid`, which
    /// lives on (`alive`) or not.
    pub(crate) fn event(&self, tid: i32, alive: bool) {
        self.events.fetch_add(1, Ordering::Relaxed);
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if alive {
            tasks.insert(tid);
        } else {
            tasks.remove(&tid);
        }
    }

    /// The CPU time the program's tasks have had, in nanoseconds (the
    /// first field of each `/proc/TID/schedstat`; a task gone counts 0).
    fn cpu_ns(&self) -> u64 {
        let tasks: Vec<i32> = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        tasks
            .into_iter()
            .filter_map(|tid| {
                let stat = std::fs::read_to_string(format!("/proc/{tid}/schedstat")).ok()?;
                stat.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum()
    }

    /// The events so far, and whether one is being handled.
    fn look(&self) -> (u64, bool) {
        (
            self.events.load(Ordering::Relaxed),
            self.handling.load(Ordering::Relaxed),
        )
    }
}

/// The longest wait for a connection or for each read of an answer.
const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the traced program may sit still (no path call, no process
/// event, and less than a tenth of a CPU: [`Stillness`]) before it is
/// taken to wait for nothing the exercise will bring: an answer to the
/// request (a server of another protocol may wait for the rest of a
/// message that never comes: DNS over TCP reads `GE` as the length of a
/// query), or a first port (rsyslogd, cron listen on none). A server that
/// works on an answer, or starts, opens files, starts processes or
/// computes.
const SAT_STILL: Duration = Duration::from_secs(1);

/// How often the wait for an answer looks at the program's activity.
const LOOK_ANSWER: Duration = Duration::from_millis(50);

/// How long to wait for a port to ask: a first one when none is known,
/// or one the program listened on (in this run or an earlier one) that
/// refuses the connection. A `Type=simple` service counts as ready once
/// it has lived a second, often before it listens.
pub(crate) const SETTLE: Duration = Duration::from_secs(10);

/// How often to look again for a port to ask.
const LOOK_AGAIN: Duration = Duration::from_millis(20);

/// Asks each port `ports` gives (the program's listening ports as the
/// tracer sees them now) for `path`; what each did, for people, one
/// `ADDRESS OUTCOME` per port joined with `; `. `wait_for_first`: wait
/// for a first port when none is known. Each port that takes the request
/// goes into `quiet`; `activity` is the traced program's.
pub(crate) fn ask_each(
    ports: impl Fn() -> Vec<SocketAddr>,
    path: &str,
    deadline: Instant,
    wait_for_first: bool,
    quiet: &QuietPorts,
    activity: &Activity,
) -> String {
    let known_quiet = |addr: &SocketAddr| {
        quiet
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(addr)
    };
    let settle = (Instant::now() + SETTLE).min(deadline);
    let mut asked: Vec<(SocketAddr, String)> = Vec::new();
    let mut refused: Vec<(SocketAddr, String)> = Vec::new();
    let mut still = Stillness::new(activity);
    loop {
        let mut waiting = false;
        for addr in ports() {
            if asked.iter().any(|(a, _)| *a == addr) {
                continue;
            }
            match ask(addr, path, deadline, activity, !known_quiet(&addr)) {
                Ok((outcome, requested)) => {
                    if requested {
                        quiet.lock().unwrap_or_else(|e| e.into_inner()).insert(addr);
                    }
                    refused.retain(|(a, _)| *a != addr);
                    asked.push((addr, outcome));
                }
                Err(why) => {
                    waiting = true;
                    refused.retain(|(a, _)| *a != addr);
                    refused.push((addr, why));
                }
            }
        }
        let past = Instant::now() >= settle;
        let portless = asked.is_empty() && refused.is_empty();
        if past
            || (!waiting && (!asked.is_empty() || !wait_for_first))
            || (portless && still.for_(activity) >= SAT_STILL)
        {
            break;
        }
        std::thread::sleep(LOOK_AGAIN);
    }
    asked.append(&mut refused);
    if asked.is_empty() {
        return "no TCP port listened on".to_string();
    }
    asked
        .iter()
        .map(|(addr, outcome)| format!("{addr} {outcome}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The wait allowed before `deadline`, at most `most`; `None` when it is past.
fn wait(deadline: Instant, most: Duration) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    (left > Duration::from_millis(10)).then(|| left.min(most))
}

/// What asking `addr` came to, and whether the request was sent; `Err`
/// when it refused the connection (it may listen later). With
/// `first_word`, the server (whose activity `activity` is) may speak
/// first.
fn ask(
    addr: SocketAddr,
    path: &str,
    deadline: Instant,
    activity: &Activity,
    first_word: bool,
) -> Result<(String, bool), String> {
    let Some(connect) = wait(deadline, IO_TIMEOUT) else {
        return Ok(("not asked: no time left".to_string(), false));
    };
    let stream = match TcpStream::connect_timeout(&addr, connect) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            return Err(format!("not connected: {e}"))
        }
        Err(e) => return Ok((format!("not connected: {e}"), false)),
    };
    Ok(asked(stream, path, deadline, activity, first_word))
}

/// What a server that accepted the connection did, and whether it was sent
/// the request.
fn asked(
    mut stream: TcpStream,
    path: &str,
    deadline: Instant,
    activity: &Activity,
    first_word: bool,
) -> (String, bool) {
    if first_word {
        if let Some(before) = before_asked(&mut stream, deadline, activity) {
            return (before, false);
        }
    }
    let mut buf = [0u8; 512];
    let request = format!("GET {path} HTTP/1.0\r\nUser-Agent: jailtrace\r\nAccept: */*\r\n\r\n");
    let Some(io) = wait(deadline, IO_TIMEOUT) else {
        return ("not asked: no time left".to_string(), false);
    };
    let _ = stream.set_write_timeout(Some(io));
    if let Err(e) = stream.write_all(request.as_bytes()) {
        return (format!("not asked: {e}"), false);
    }
    // The whole answer: the server may still read for it after its status.
    let mut answer = Vec::new();
    let mut still = Stillness::new(activity);
    let mut waits = false;
    while let Some(io) = wait(deadline, IO_TIMEOUT) {
        // Until the first byte, the server's activity is looked at.
        let look = if answer.is_empty() {
            io.min(LOOK_ANSWER)
        } else {
            io
        };
        let _ = stream.set_read_timeout(Some(look));
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if answer.len() < 512 {
                    answer.extend_from_slice(&buf[..n]);
                }
                let k = answer.len().min(5);
                if answer[..k] != b"HTTP/"[..k] {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e)
                if answer.is_empty()
                    && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                if still.for_(activity) >= SAT_STILL {
                    waits = true;
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let outcome = if waits {
        format!(
            "gave no answer: it sat still {} after the request (another protocol?)",
            format_duration(SAT_STILL)
        )
    } else if answer.is_empty() {
        "gave no answer".to_string()
    } else if answer.starts_with(b"HTTP/") {
        format!("answered {}", line_of(&answer))
    } else {
        format!("does not speak HTTP ({})", line_of(&answer))
    };
    (outcome, true)
}

/// What the server did before any request (spoke, closed the
/// connection) within [`SPEAKS_FIRST`], or until the traced program had
/// sat still for [`STILL`] (`activity`); `None` when it waited.
fn before_asked(stream: &mut TcpStream, deadline: Instant, activity: &Activity) -> Option<String> {
    let Some(first) = wait(deadline, SPEAKS_FIRST) else {
        return Some("not asked: no time left".to_string());
    };
    let until = Instant::now() + first;
    let mut seen = activity.look();
    let mut still_since = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        let now = Instant::now();
        if now >= until || now - still_since >= STILL {
            return None;
        }
        let look = (until - now).clamp(Duration::from_millis(1), LOOK_STILL);
        let _ = stream.set_read_timeout(Some(look));
        match stream.read(&mut buf) {
            Ok(0) => return Some("closed the connection without a request".to_string()),
            Ok(n) => {
                return Some(format!(
                    "not asked: it spoke first ({})",
                    line_of(&buf[..n])
                ))
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Some(format!("not asked: {e}")),
        }
        let now_seen = activity.look();
        if now_seen != seen || now_seen.1 {
            seen = now_seen;
            still_since = Instant::now();
        }
    }
}

/// How long the traced program has sat still: no path call, no process
/// event, and less than a tenth of a CPU between two looks at its
/// [`Activity`].
#[derive(Debug)]
pub(crate) struct Stillness {
    seen: (u64, bool),
    cpu_ns: u64,
    looked: Instant,
    since: Instant,
}

impl Stillness {
    pub(crate) fn new(activity: &Activity) -> Stillness {
        let now = Instant::now();
        Stillness {
            seen: activity.look(),
            cpu_ns: activity.cpu_ns(),
            looked: now,
            since: now,
        }
    }

    /// How long the program has sat still, as of now.
    pub(crate) fn for_(&mut self, activity: &Activity) -> Duration {
        let now = Instant::now();
        let (seen, cpu_ns) = (activity.look(), activity.cpu_ns());
        let window = now.duration_since(self.looked).as_nanos();
        let busy = u128::from(cpu_ns.saturating_sub(self.cpu_ns)) * 10 > window;
        if seen != self.seen || seen.1 || busy {
            self.since = now;
        }
        (self.seen, self.cpu_ns, self.looked) = (seen, cpu_ns, now);
        now - self.since
    }
}

/// The first line of `bytes`, printable, at most 60 characters.
fn line_of(bytes: &[u8]) -> String {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let text: String = String::from_utf8_lossy(line)
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .take(60)
        .collect();
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    fn serve(answer: &'static [u8], speaks_first: bool) -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            if speaks_first {
                s.write_all(answer).unwrap();
                return;
            }
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"GET /x HTTP/1.0\r\n"));
            assert!(!String::from_utf8_lossy(&buf[..n]).contains("Host:"));
            s.write_all(answer).unwrap();
        });
        addr
    }

    #[test]
    fn every_outcome_is_reported_and_none_fails() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let http = serve(b"HTTP/1.1 404 Not Found\r\n\r\nno", false);
        assert_eq!(
            ask(http, "/x", deadline, &Activity::default(), true).unwrap(),
            ("answered \"HTTP/1.1 404 Not Found\"".to_string(), true)
        );
        let banner = serve(b"SSH-2.0-OpenSSH_9.2p1\r\n", true);
        assert_eq!(
            ask(banner, "/x", deadline, &Activity::default(), true).unwrap(),
            (
                "not asked: it spoke first (\"SSH-2.0-OpenSSH_9.2p1\")".to_string(),
                false
            )
        );
        let redis = serve(b"-ERR wrong number of arguments\r\n", false);
        assert_eq!(
            ask(redis, "/x", deadline, &Activity::default(), true).unwrap(),
            (
                "does not speak HTTP (\"-ERR wrong number of arguments\")".to_string(),
                true
            )
        );
        let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        assert!(ask(addr, "/x", deadline, &Activity::default(), true)
            .unwrap_err()
            .starts_with("not connected: "));
        // Nothing listens yet: the wait ends at the deadline.
        let soon = Instant::now() + Duration::from_millis(300);
        assert_eq!(
            ask_each(
                Vec::new,
                "/",
                soon,
                true,
                &QuietPorts::default(),
                &Activity::default()
            ),
            "no TCP port listened on"
        );
        // Or at once when not asked to wait for one.
        let later = Instant::now() + Duration::from_secs(10);
        let began = Instant::now();
        assert_eq!(
            ask_each(
                Vec::new,
                "/",
                later,
                false,
                &QuietPorts::default(),
                &Activity::default()
            ),
            "no TCP port listened on"
        );
        assert!(began.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_port_that_listens_later_is_waited_for() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let free = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let later = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            let listener = TcpListener::bind(addr).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.0 200 OK\r\n\r\nhi").unwrap();
        });
        assert_eq!(
            ask_each(
                || vec![addr],
                "/",
                deadline,
                false,
                &QuietPorts::default(),
                &Activity::default()
            ),
            format!("{addr} answered \"HTTP/1.0 200 OK\"")
        );
        later.join().unwrap();
    }

    /// [`ask_each`] of `addr` alone for `/x`, within 10 s.
    fn ask_one(addr: SocketAddr, quiet: &QuietPorts, activity: &Activity) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        ask_each(|| vec![addr], "/x", deadline, false, quiet, activity)
    }

    #[test]
    fn a_port_that_took_the_request_before_is_sent_it_at_once() {
        let quiet = QuietPorts::default();
        let ask_one = |addr| ask_one(addr, &quiet, &Activity::default());
        // An HTTP server: it takes the request, and its port is remembered.
        let http = serve(b"HTTP/1.0 200 OK\r\n\r\nhi", false);
        ask_one(http);
        assert!(quiet.lock().unwrap().contains(&http));
        // A server that greets first: not sent the request, not remembered.
        let banner = serve(b"SSH-2.0-OpenSSH_9.2p1\r\n", true);
        ask_one(banner);
        assert!(!quiet.lock().unwrap().contains(&banner));
        // Once remembered, a port is sent the request without waiting to
        // hear it first: this one greets and then reads what it is sent.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let greets = listener.local_addr().unwrap();
        let (sent, got) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"220 ready\r\n").unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap();
            sent.send(buf[..n].to_vec()).unwrap();
        });
        quiet.lock().unwrap().insert(greets);
        assert_eq!(
            ask_one(greets),
            format!("{greets} does not speak HTTP (\"220 ready\")")
        );
        assert!(got.recv().unwrap().starts_with(b"GET /x HTTP/1.0\r\n"));
    }

    /// A server that greets `after` its client connects, then reads what
    /// it is sent (handed back).
    fn greets_late(after: Duration) -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let (sent, got) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(after);
            let _ = s.write_all(b"220 ready\r\n");
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = sent.send(buf[..n].to_vec());
        });
        (addr, got)
    }

    #[test]
    fn the_wait_for_a_first_word_lasts_while_the_program_is_busy() {
        // Busy (a stop every 5 ms): the late greeting is waited for.
        let activity = Arc::new(Activity::default());
        let busy = Arc::clone(&activity);
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let worker = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                busy.event(0, false);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let (addr, _) = greets_late(STILL * 5 / 2);
        let quiet = QuietPorts::default();
        assert_eq!(
            ask_one(addr, &quiet, &activity),
            format!("{addr} not asked: it spoke first (\"220 ready\")")
        );
        done.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        // Still: asked before the greeting comes, which is then its answer.
        let (addr, got) = greets_late(STILL * 4);
        assert_eq!(
            ask_one(addr, &quiet, &Activity::default()),
            format!("{addr} does not speak HTTP (\"220 ready\")")
        );
        assert!(got.recv().unwrap().starts_with(b"GET /x HTTP/1.0\r\n"));
    }

    /// A server that takes the request and, after `work` (spent on the
    /// CPU of the task whose id it sends on the channel first), answers
    /// `answer`, or keeps the connection open and says nothing when that
    /// is empty.
    fn answers_after(work: Duration, answer: &'static [u8]) -> (SocketAddr, i32) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).unwrap();
            let began = Instant::now();
            while began.elapsed() < work {
                std::hint::spin_loop();
            }
            if answer.is_empty() {
                // As DNS over TCP: waits for the rest of its "message".
                let _ = s.read(&mut buf);
            } else {
                s.write_all(answer).unwrap();
            }
        });
        (addr, tid_rx.recv().unwrap())
    }

    #[test]
    fn a_server_that_sits_still_after_the_request_is_not_waited_for() {
        let (addr, _) = answers_after(Duration::ZERO, b"");
        let began = Instant::now();
        assert_eq!(
            ask_one(addr, &QuietPorts::default(), &Activity::default()),
            format!("{addr} gave no answer: it sat still 1s after the request (another protocol?)")
        );
        // Not the 15 s of a read's timeout.
        assert!(began.elapsed() < IO_TIMEOUT / 3, "{:?}", began.elapsed());
    }

    #[test]
    fn a_server_that_computes_its_answer_is_waited_for() {
        // Longer on the CPU than SAT_STILL, without a path call.
        let (addr, tid) = answers_after(SAT_STILL * 2, b"HTTP/1.0 200 OK\r\n\r\nhi");
        let activity = Activity::default();
        activity.event(tid, true);
        assert_eq!(
            ask_one(addr, &QuietPorts::default(), &activity),
            format!("{addr} answered \"HTTP/1.0 200 OK\"")
        );
    }

    #[test]
    fn the_wait_for_a_first_port_ends_once_the_program_sits_still() {
        let deadline = Instant::now() + SETTLE * 2;
        let began = Instant::now();
        assert_eq!(
            ask_each(
                Vec::new,
                "/",
                deadline,
                true,
                &QuietPorts::default(),
                &Activity::default()
            ),
            "no TCP port listened on"
        );
        assert!(began.elapsed() < SETTLE / 2, "{:?}", began.elapsed());
        // Busy (a process event every 5 ms) and listening only after
        // SAT_STILL and more: waited for.
        let free = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let activity = Arc::new(Activity::default());
        let busy = Arc::clone(&activity);
        let listens = Arc::new(AtomicBool::new(false));
        let listening = Arc::clone(&listens);
        let server = std::thread::spawn(move || {
            let began = Instant::now();
            while began.elapsed() < SAT_STILL * 3 / 2 {
                busy.event(0, false);
                std::thread::sleep(Duration::from_millis(5));
            }
            let listener = TcpListener::bind(addr).unwrap();
            listening.store(true, Ordering::Relaxed);
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.0 200 OK\r\n\r\nhi").unwrap();
        });
        let ports = || {
            if listens.load(Ordering::Relaxed) {
                vec![addr]
            } else {
                Vec::new()
            }
        };
        assert_eq!(
            ask_each(
                ports,
                "/",
                deadline,
                true,
                &QuietPorts::default(),
                &activity
            ),
            format!("{addr} answered \"HTTP/1.0 200 OK\"")
        );
        server.join().unwrap();
    }
}
