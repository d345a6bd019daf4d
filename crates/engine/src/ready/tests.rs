//! Tests of [`super`].
use super::*;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Instant;

fn parse(s: &str) -> Condition {
    s.parse()
        .unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
}

#[test]
fn no_condition_means_exit() {
    let mut r = Readiness::new(Vec::new());
    assert!(r.only_exit());
    assert_eq!(r.pending(), ["exit"]);
    assert!(!r.poll(Duration::from_secs(1)));
    r.leader_exited(Some(0));
    assert!(r.poll(Duration::from_secs(1)));
    assert!(r.pending().is_empty());
    assert!(!Readiness::new(vec![parse("alive:1s")]).only_exit());
}

#[test]
fn exit_needs_code_zero() {
    let mut r = Readiness::new(vec![Condition::Exit]);
    r.leader_exited(Some(1));
    r.tree_empty();
    assert!(!r.poll(Duration::ZERO));
    assert_eq!(r.pending(), ["exit (the program exited with code 1)"]);

    let mut r = Readiness::new(vec![Condition::Exit]);
    r.leader_exited(None);
    assert!(!r.poll(Duration::ZERO));
    assert_eq!(r.pending(), ["exit (the program was killed by a signal)"]);
}

#[test]
fn log_lines_split_across_chunks() {
    let mut r = Readiness::new(vec![parse("log:^server ready$")]);
    for chunk in [&b"starting\nser"[..], b"ver", b" rea", b"dy", b"\r"] {
        r.feed_output(chunk);
        assert!(!r.poll(Duration::ZERO), "ready too early, after {chunk:?}");
    }
    r.feed_output(b"\nmore output\n");
    assert!(r.poll(Duration::ZERO));
    // Held stays held.
    r.tree_empty();
    assert!(r.poll(Duration::ZERO));
}

#[test]
fn log_lines_are_not_glued_and_need_not_be_utf8() {
    let mut r = Readiness::new(vec![parse("log:^ready$"), parse("log:port 80")]);
    r.feed_output(b"rea\nd\xff\ny\n");
    assert!(!r.poll(Duration::ZERO));
    assert_eq!(r.pending(), ["log:^ready$", "log:port 80"]);
    r.feed_output(b"\xfe\xfflistening on port 8080\n");
    assert!(!r.poll(Duration::ZERO));
    assert_eq!(r.pending(), ["log:^ready$"]);
    // The last line may lack its newline: it counts when the tree ends.
    r.feed_output(b"ready");
    assert!(!r.poll(Duration::ZERO));
    r.tree_empty();
    assert!(r.poll(Duration::ZERO));
}

#[test]
fn long_lines_are_bounded() {
    let mut r = Readiness::new(vec![parse("log:^ready$")]);
    let long = vec![b'x'; 3 * MAX_LINE];
    r.feed_output(&long);
    r.feed_output(b"ready\n");
    assert!(r.line.is_empty());
    assert!(
        !r.poll(Duration::ZERO),
        "the tail of a long line is no line"
    );
    r.feed_output(&long[..MAX_LINE + 10]);
    assert!(r.line.len() <= MAX_LINE);
    r.feed_output(b"\nready\n");
    assert!(r.poll(Duration::ZERO));
}

#[test]
fn log_that_never_matched_fails_when_the_tree_ends() {
    let mut r = Readiness::new(vec![parse("log:ready")]);
    r.feed_output(b"error: cannot bind\n");
    r.tree_empty();
    r.feed_output(b"ready\n");
    assert!(!r.poll(Duration::ZERO));
    assert_eq!(r.pending(), ["log:ready (no line of output matched)"]);
}

#[test]
fn alive_holds_after_its_duration() {
    let mut r = Readiness::new(vec![parse("alive:2s")]);
    assert!(!r.poll(Duration::from_secs(1)));
    assert_eq!(r.pending(), ["alive:2s"]);
    // The first process exiting 0 is a daemon forking away: fine.
    r.leader_exited(Some(0));
    assert!(r.poll(Duration::from_secs(2)));
    // Held stays held, even if the stopped server then crashes.
    r.crashed();
    assert!(r.poll(Duration::from_secs(3)));
}

#[test]
fn alive_fails_on_a_crash_or_a_bad_exit() {
    let mut r = Readiness::new(vec![parse("alive:2s")]);
    assert!(!r.poll(Duration::from_secs(1)));
    r.crashed();
    assert!(!r.poll(Duration::from_secs(3)));
    assert_eq!(r.pending(), ["alive:2s (a process crashed)"]);

    let mut r = Readiness::new(vec![parse("alive:2s")]);
    r.leader_exited(Some(1));
    assert!(!r.poll(Duration::from_secs(3)));

    let mut r = Readiness::new(vec![parse("alive:2s")]);
    r.leader_exited(Some(0));
    r.tree_empty();
    assert!(!r.poll(Duration::from_secs(3)));
}

#[test]
fn all_conditions_must_hold() {
    let mut r = Readiness::new(vec![Condition::Exit, parse("log:done")]);
    r.leader_exited(Some(0));
    assert!(!r.poll(Duration::ZERO));
    assert_eq!(r.pending(), ["log:done"]);
    r.feed_output(b"done\n");
    assert!(r.poll(Duration::ZERO));
}

/// Polls like the tracer's tick, for up to `limit` of real time.
fn poll_for(r: &mut Readiness, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if r.poll(start.elapsed()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn tcp_holds_once_a_port_accepts() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut r = Readiness::new(vec![parse(&format!("tcp:{addr}"))]);
    assert!(poll_for(&mut r, Duration::from_secs(5)));
    // Held stays held once the server is gone.
    drop(listener);
    r.tree_empty();
    assert!(r.poll(Duration::ZERO));
}

#[test]
fn tcp_on_a_closed_port_does_not_hold() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut r = Readiness::new(vec![parse(&format!("tcp:127.0.0.1:{port}"))]);
    assert!(!poll_for(&mut r, Duration::from_millis(600)));
    let pending = r.pending();
    assert!(pending[0].contains("refused"), "{pending:?}");
    r.tree_empty();
    assert!(!r.poll(Duration::from_secs(10)));
    assert!(r.pending()[0].starts_with(&format!("tcp:127.0.0.1:{port} (")));
}

/// An HTTP server on 127.0.0.1 answering every request with `status`;
/// the requests it got come out of the channel.
pub(crate) fn http_server(status: &'static str) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
            let _ = write!(stream, "{status}\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, rx)
}

#[test]
fn http_2xx_and_3xx_hold() {
    for status in ["HTTP/1.0 200 OK", "HTTP/1.1 302 Found"] {
        let (port, requests) = http_server(status);
        let mut r = Readiness::new(vec![parse(&format!("http://127.0.0.1:{port}/health"))]);
        assert!(poll_for(&mut r, Duration::from_secs(5)), "{status}");
        let request = requests.recv().unwrap();
        assert!(request.starts_with("GET /health HTTP/1.0\r\n"), "{request}");
        assert!(
            request.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
            "{request}"
        );
    }
}

#[test]
fn http_5xx_does_not_hold() {
    let (port, requests) = http_server("HTTP/1.0 500 Internal Server Error");
    let mut r = Readiness::new(vec![parse(&format!("http://127.0.0.1:{port}/"))]);
    assert!(!poll_for(&mut r, Duration::from_millis(800)));
    assert!(requests.recv().is_ok(), "the server was asked");
    // The probe in flight may not be back yet: wait for a note.
    let start = Instant::now();
    while r.pending()[0] == r.items[0].condition.to_string()
        && start.elapsed() < Duration::from_secs(5)
    {
        r.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        r.pending(),
        [format!(
            "http://127.0.0.1:{port}/ (answered 500 Internal Server Error)"
        )]
    );
    r.tree_empty();
    assert!(!r.poll(Duration::from_secs(60)));
}

#[test]
fn notify_holds_on_ready_and_keeps_status() {
    use std::os::linux::net::SocketAddrExt;
    let mut r = Readiness::new(vec![Condition::Notify]);
    let name = r.notify_socket().expect("a notify socket").to_string();
    assert!(name.starts_with("@jailtrace/notify/"), "{name}");
    assert!(!r.poll(Duration::ZERO));
    let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name.as_bytes()[1..]).unwrap();
    client
        .send_to_addr(b"STATUS=Loading\nMAINPID=2", &addr)
        .unwrap();
    assert!(!r.poll(Duration::from_millis(10)));
    assert_eq!(r.take_status(), ["Loading"]);
    client
        .send_to_addr(b"READY=1\nSTATUS=Ready to accept connections", &addr)
        .unwrap();
    assert!(r.poll(Duration::from_millis(20)));
    assert_eq!(r.take_status(), ["Ready to accept connections"]);
}

#[test]
fn pidfile_holds_when_the_file_names_a_process() {
    let root = tempfile::tempdir().unwrap();
    let mut r = Readiness::new(vec![parse("pidfile:/run/x.pid")]).in_root(root.path());
    assert!(!r.poll(Duration::ZERO));
    assert!(r.pending()[0].contains("/run/x.pid"), "{:?}", r.pending());
    std::fs::create_dir(root.path().join("run")).unwrap();
    std::fs::write(root.path().join("run/x.pid"), "\n").unwrap();
    assert!(!r.poll(Duration::ZERO));
    // A pid no process of this root has: not running.
    std::fs::write(root.path().join("run/x.pid"), "42\n").unwrap();
    assert!(!r.poll(Duration::ZERO));
    assert!(
        r.pending()[0].contains("names process 42, which is not running"),
        "{:?}",
        r.pending()
    );
    // This test's own process, whose root is `/`.
    assert!(alive_in(Some(Path::new("/")), std::process::id()));
    assert!(alive_in(None, std::process::id()));
    assert!(!alive_in(Some(root.path()), std::process::id()));
    let mut r = Readiness::new(vec![Condition::Notify]);
    r.tree_empty();
    assert!(r.failed());
}
