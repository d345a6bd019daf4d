//! Tests of [`super`].
use super::*;
use crate::ready::tests::http_server;

/// Polls until every step ended (at most 30 seconds).
fn run_all(ex: &mut Exercises) {
    let start = Instant::now();
    ex.poll();
    while !ex.done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{ex:?}");
        std::thread::sleep(POLL_INTERVAL);
        ex.poll();
    }
}

fn commands(list: &[&str]) -> Vec<Exercise> {
    list.iter().map(|c| Exercise::command(c).unwrap()).collect()
}

#[test]
fn a_command_that_exits_0_passes() {
    let mut ex = Exercises::new(commands(&["true"]), DEFAULT_TIMEOUT, 1);
    run_all(&mut ex);
    assert!(ex.passed());
    let r = &ex.results()[0];
    assert_eq!((r.run, r.index, r.passed), (1, 1, true));
    assert_eq!(r.status, "exited with code 0");
    assert_eq!(ex.pending(), Vec::<String>::new());
}

#[test]
fn a_failing_command_keeps_its_output_and_stops_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let log = log.to_str().unwrap();
    let steps = commands(&[
        &format!("echo one >> {log}"),
        "echo out; echo err >&2; exit 3",
        &format!("echo three >> {log}"),
    ]);
    let mut ex = Exercises::new(steps, DEFAULT_TIMEOUT, 2);
    run_all(&mut ex);
    assert!(!ex.passed());
    assert_eq!(ex.results().len(), 2, "the third step must not run");
    let r = &ex.results()[1];
    assert!(!r.passed);
    assert_eq!(r.status, "exited with code 3");
    assert_eq!(String::from_utf8_lossy(&r.output), "out\nerr\n");
    assert_eq!(std::fs::read_to_string(log).unwrap(), "one\n");
    assert_eq!(
        ex.pending(),
        ["exercise 2 `echo out; echo err >&2; exit 3` (exited with code 3)"]
    );
}

#[test]
fn output_keeps_its_end() {
    let mut ex = Exercises::new(
        commands(&["head -c 40000 /dev/zero | tr '\\0' a; echo END; exit 1"]),
        DEFAULT_TIMEOUT,
        1,
    );
    run_all(&mut ex);
    let r = &ex.results()[0];
    assert_eq!(r.output.len(), OUTPUT_MAX);
    assert!(r.output.ends_with(b"aaaEND\n"));
    assert_eq!(r.output_dropped, 40004 - OUTPUT_MAX as u64);
}

/// `/proc/PID/stat`'s state and parent, or `None` when PID is gone.
fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split(' ');
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

#[test]
fn a_command_is_not_a_child_and_a_timeout_kills_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // The command's `sh` and its parent, the subshell that waits for it.
    let step = format!("echo $$ $PPID > {}; sleep 1000", pids.display());
    let mut ex = Exercises::new(commands(&[&step]), Duration::from_millis(1500), 1);
    ex.poll();
    let start = Instant::now();
    let (sh, subshell) = loop {
        ex.poll();
        let text = std::fs::read_to_string(&pids).unwrap_or_default();
        let words: Vec<i32> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if let [sh, subshell] = words[..] {
            break (sh, subshell);
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no pids");
        std::thread::sleep(POLL_INTERVAL);
    };
    // The wrapper that started the subshell exits at once: the subshell
    // and the command are not this process's children.
    let me = std::process::id() as i32;
    while state_and_parent(subshell).is_some_and(|(_, parent)| parent == me) {
        assert!(start.elapsed() < Duration::from_secs(10), "still our child");
        std::thread::sleep(POLL_INTERVAL);
    }
    assert_eq!(state_and_parent(sh).map(|(_, p)| p), Some(subshell));
    assert_eq!(
        ex.current(),
        Some(&jailtrace_manifest::Exercise::Command(step.clone()))
    );
    run_all(&mut ex);
    let r = &ex.results()[0];
    assert_eq!(
        (r.passed, r.status.as_str()),
        (false, "timed out after 1500ms")
    );
    assert_eq!(ex.current(), None);
    // Killed (gone, or a zombie until its new parent reaps it).
    for pid in [sh, subshell] {
        while state_and_parent(pid).is_some_and(|(state, _)| state != 'Z') {
            assert!(start.elapsed() < Duration::from_secs(10), "{pid} lives");
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

#[test]
fn abort_and_drop_kill_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let step = format!("echo $$ > {}; exec sleep 1000", pid_file.display());
    for abort in [true, false] {
        let _ = std::fs::remove_file(&pid_file);
        let mut ex = Exercises::new(commands(&[&step, "true"]), DEFAULT_TIMEOUT, 1);
        let start = Instant::now();
        let pid: i32 = loop {
            ex.poll();
            if let Ok(pid) = std::fs::read_to_string(&pid_file)
                .unwrap_or_default()
                .trim()
                .parse()
            {
                break pid;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no pid");
            std::thread::sleep(POLL_INTERVAL);
        };
        if abort {
            ex.abort("stopped: timeout after 5m (--timeout)");
            assert!(ex.done());
            assert_eq!(ex.results().len(), 1, "the second step must not run");
            assert_eq!(
                ex.results()[0].status,
                "stopped: timeout after 5m (--timeout)"
            );
        } else {
            drop(ex);
        }
        while state_and_parent(pid).is_some_and(|(state, _)| state != 'Z') {
            assert!(start.elapsed() < Duration::from_secs(10), "{pid} lives");
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

#[test]
fn probes_need_2xx_or_3xx_and_run_in_order_with_commands() {
    let (ok, ok_requests) = http_server("HTTP/1.0 200 OK");
    let (bad, _) = http_server("HTTP/1.0 404 Not Found");
    let url =
        |port: u16, path: &str| Exercise::probe(&format!("http://127.0.0.1:{port}{path}")).unwrap();
    let steps = vec![
        url(ok, "/page.php?x=1"),
        Exercise::command("true").unwrap(),
        url(bad, "/missing"),
    ];
    let mut ex = Exercises::new(steps, Duration::from_secs(5), 1);
    run_all(&mut ex);
    let shown: Vec<(bool, &str)> = ex
        .results()
        .iter()
        .map(|r| (r.passed, r.status.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            (true, "answered HTTP/1.0 200 OK"),
            (true, "exited with code 0"),
            (false, "answered 404 Not Found"),
        ]
    );
    let request = ok_requests.recv().unwrap();
    assert!(
        request.starts_with("GET /page.php?x=1 HTTP/1.0\r\n"),
        "{request}"
    );
}

#[test]
fn a_probe_of_a_closed_port_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let probe = Exercise::probe(&format!("http://127.0.0.1:{port}/")).unwrap();
    let mut ex = Exercises::new(vec![probe], Duration::from_secs(5), 1);
    run_all(&mut ex);
    let r = &ex.results()[0];
    assert!(!r.passed);
    assert!(r.status.contains("refused"), "{}", r.status);
}

#[test]
fn a_command_does_not_inherit_blocked_signals() {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    // As the tracer's thread during a run.
    let mut set = SigSet::empty();
    for s in [Signal::SIGCHLD, Signal::SIGINT, Signal::SIGTERM] {
        set.add(s);
    }
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).unwrap();
    let mut ex = Exercises::new(
        commands(&["grep -E '^SigBlk:[[:space:]]+0+$' /proc/self/status"]),
        DEFAULT_TIMEOUT,
        1,
    );
    run_all(&mut ex);
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None).unwrap();
    let r = &ex.results()[0];
    assert!(r.passed, "{r:?}");
}

#[test]
fn a_command_with_much_output_is_seen_through_its_pipes_alone() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    // 1,988,895 bytes: 30 times what a pipe holds.
    let mut ex = Exercises::new(commands(&["seq 1 300000"]), DEFAULT_TIMEOUT, 1);
    ex.poll();
    // Wait only on what `watched` gives, as the tracer does: a command
    // blocked on a full pipe that is not among them would never end.
    while !ex.done() {
        let mut fds = Vec::new();
        ex.watched(&mut fds);
        assert!(!fds.is_empty(), "a running command has pipes to wait on");
        let mut polled: Vec<PollFd> = fds
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        let ready = poll(&mut polled, PollTimeout::from(10_000u16)).unwrap();
        assert!(ready > 0, "nothing to wake up for in 10 s: {ex:?}");
        drop(polled);
        drop(fds);
        ex.poll();
    }
    assert!(ex.passed());
    let r = &ex.results()[0];
    assert_eq!(r.output.len(), OUTPUT_MAX);
    assert!(r.output.ends_with(b"299999\n300000\n"));
    assert_eq!(r.output_dropped + r.output.len() as u64, 1_988_895);
}
