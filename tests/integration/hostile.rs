//! The tracer against hostile programs (issue "Security", item 7): hundreds
//! of short-lived processes, a fork bomb, sixteen threads racing to exec,
//! programs that kill themselves or crash, ignore SIGTERM and SIGINT, call
//! ptrace(2) themselves, or leave zombies behind.
//!
//! Guarantees: every test bounds `jailtrace run` by [`BOUND`] (the harness
//! kills it there and the test fails), checks that it did not panic, and
//! that no process of the test is left afterwards — neither one with the
//! test's unique argv ([`util::processes_with_argv`]) nor any process whose
//! root directory is the test's jail root ([`processes_rooted_in`]).
//! Leftovers found are SIGKILLed by pid after being recorded, so a failing
//! test never leaves a fork bomb running. The C fixtures of
//! `fixtures/hostile/` are compiled once per run of the test binary, into
//! `target/tmp/jailtrace-fixtures/hostile/`, the way [`crate::fixtures`]
//! builds its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use jailtrace_manifest::{EntryKind, Manifest, RunStatus};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::fixtures::{self, BuildError};

use crate::cmd::{chroot_output, host_output, Finished};
use crate::jail::{exit, Jail, Summary};
use crate::util::{self, require_root, BASE_ENV};

/// How long one `jailtrace run` of a hostile program may take.
const BOUND: Duration = Duration::from_secs(60);

/// The tracing modes the racier tests run in: seccomp-filtered stops (the
/// default) and a stop at every syscall.
const MODES: [&[&str]; 2] = [&[], &["--no-seccomp"]];

/// How long the processes of a test may take to disappear after jailtrace
/// returned (SIGKILLed processes still need to be reaped).
const GONE_WITHIN: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// The fixtures

/// The compiled hostile fixtures, canonical host paths (UTF-8, since they
/// are passed as `&str` argv).
#[derive(Debug)]
struct Hostile {
    /// `forkbomb [MARKER]`: forks children that pause, up to a cap of 1000.
    forkbomb: String,
    /// `exec-threads MARKER PROGRAM [ARGS…]`: 16 threads execv PROGRAM at once.
    exec_threads: String,
    /// `stubborn [MARKER]`: ignores SIGINT, SIGTERM, SIGHUP and pauses forever.
    stubborn: String,
    /// `self-ptrace [MARKER]`: prints `attach: …` and `traceme: …`.
    self_ptrace: String,
    /// `zombies [MARKER]`: 50 children exit unwaited, then it sleeps 1 s.
    zombies: String,
    /// `segv [MARKER]`: dies of a real SIGSEGV.
    segv: String,
}

/// The hostile fixtures, compiled on first use (see [`fixtures::built`]).
fn hostile(test: &str) -> Option<&'static Hostile> {
    static BUILT: OnceLock<Result<Hostile, BuildError>> = OnceLock::new();
    fixtures::built(&BUILT, build, test)
}

fn build() -> Result<Hostile, BuildError> {
    let c = fixtures::Compiler::new("hostile")?;
    let compile = |name: &str, source: &str| c.compile(name, source, &["-pthread"]);
    Ok(Hostile {
        forkbomb: compile("forkbomb", "forkbomb.c")?,
        exec_threads: compile("exec-threads", "exec_threads.c")?,
        stubborn: compile("stubborn", "stubborn.c")?,
        self_ptrace: compile("self-ptrace", "self_ptrace.c")?,
        zombies: compile("zombies", "zombies.c")?,
        segv: compile("segv", "segv.c")?,
    })
}

// ---------------------------------------------------------------------------
// Helpers

/// Runs `jailtrace run --root T/root --manifest T/m.json --json EXTRA --
/// ARGV`, killed after [`BOUND`]; asserts that it finished in time and did
/// not panic.
fn run_bounded(jail: &Jail, argv: &[&str], extra: &[&str]) -> Finished {
    let finished = jail
        .spawn_at(&jail.root, &jail.manifest, argv, extra, BASE_ENV)
        .wait(BOUND);
    assert!(
        !finished.timed_out,
        "jailtrace did not finish within {BOUND:?}\n{}",
        finished.report()
    );
    finished.assert_no_panic();
    finished
}

/// The `--json` summary on stdout.
fn summary(finished: &Finished) -> Summary {
    serde_json::from_slice(&finished.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not the --json summary: {e}\n{}",
            finished.report()
        )
    })
}

/// The manifest the run wrote.
fn manifest(jail: &Jail, finished: &Finished) -> Manifest {
    let bytes = fs::read(&jail.manifest).unwrap_or_else(|e| {
        panic!(
            "cannot read the manifest {}: {e}\n{}",
            jail.manifest.display(),
            finished.report()
        )
    });
    Manifest::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "the manifest {} is invalid: {e}\n{}",
            jail.manifest.display(),
            finished.report()
        )
    })
}

/// Asserts exit 0, `ok`, nothing missing and the last run exited 0.
fn expect_ok(finished: &Finished) -> Summary {
    finished.assert_code(exit::OK);
    let summary = summary(finished);
    assert!(summary.ok, "exit 0 but ok=false\n{}", finished.report());
    assert!(
        summary.missing.is_empty(),
        "exit 0 but missing {:?}\n{}",
        summary.missing,
        finished.report()
    );
    assert_eq!(
        summary.status,
        RunStatus::Exited { code: 0 },
        "{}",
        finished.report()
    );
    summary
}

/// Asserts exit 3 (not ready) and a last run that ended by `signal`.
fn expect_signaled(finished: &Finished, signal: &str) {
    finished.assert_code(exit::NOT_STARTED);
    let summary = summary(finished);
    assert!(!summary.ok, "{}", finished.report());
    assert!(
        matches!(&summary.status, RunStatus::Signaled { signal: s, .. } if s == signal),
        "status {:?} is not signaled {signal}\n{}",
        summary.status,
        finished.report()
    );
}

/// Pids of the live processes whose root directory (`/proc/PID/root`) is
/// `root`: every process jailtrace started in this test's jail, whatever
/// it exec'd. Zombies have no root directory and never match.
fn processes_rooted_in(root: &Path) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let link = fs::read_link(e.path().join("root")).ok()?;
            (link == root).then_some(pid)
        })
        .collect()
}

/// `PID: ARGV` for each pid, for a failure message.
fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv: Vec<String> = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            format!("{pid}: {argv:?}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that, within [`GONE_WITHIN`], no process runs with one of
/// `argvs` or chrooted into the jail's root. Leftovers are listed in the
/// failure message and then SIGKILLed by pid.
fn assert_none_left(jail: &Jail, argvs: &[&[&str]], finished: &Finished) {
    let deadline = Instant::now() + GONE_WITHIN;
    let left = loop {
        let mut left: Vec<i32> = argvs
            .iter()
            .flat_map(|argv| util::processes_with_argv(argv))
            .chain(processes_rooted_in(&jail.root))
            .collect();
        left.sort_unstable();
        left.dedup();
        if left.is_empty() || Instant::now() >= deadline {
            break left;
        }
        thread::sleep(Duration::from_millis(50));
    };
    if left.is_empty() {
        return;
    }
    let listing = describe(&left);
    for pid in &left {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    panic!(
        "{} process(es) of the test still run {GONE_WITHIN:?} after jailtrace returned \
         (now SIGKILLed):\n{listing}\n{}",
        left.len(),
        finished.report()
    );
}

// ---------------------------------------------------------------------------
// The tests

#[test]
fn hundreds_of_short_lived_processes() {
    if !require_root("hundreds_of_short_lived_processes") {
        return;
    }
    let jail = Jail::new("many-procs");
    let marker = format!("many-procs-{}", util::unique());
    // `$0` is the marker, passed on to each /bin/true so the scan finds them.
    let script = r#"for i in $(seq 300); do /bin/true "$0" & done; wait"#;
    let argv = ["/bin/sh", "-c", script, marker.as_str()];
    let finished = run_bounded(&jail, &argv, &[]);
    expect_ok(&finished);
    let last = manifest(&jail, &finished).runs.pop().expect("a run");
    assert!(
        last.processes >= 301,
        "the last run traced {} processes, not the shell and its 300 children\n{}",
        last.processes,
        finished.report()
    );
    assert_none_left(&jail, &[&argv, &["/bin/true", &marker]], &finished);
}

#[test]
fn fork_bomb_is_stopped_by_max_procs() {
    if !require_root("fork_bomb_is_stopped_by_max_procs") {
        return;
    }
    let Some(fx) = hostile("fork_bomb_is_stopped_by_max_procs") else {
        return;
    };
    for mode in MODES {
        let jail = Jail::new("fork-bomb");
        let marker = format!("fork-bomb-{}", util::unique());
        let argv = [fx.forkbomb.as_str(), marker.as_str()];
        // A --timeout well below BOUND: if --max-procs did not act, the run
        // ends killed for the timeout and the reason check below fails.
        let mut extra = vec!["--max-procs", "50", "--timeout", "30s"];
        extra.extend_from_slice(mode);
        let finished = run_bounded(&jail, &argv, &extra);
        finished.assert_code(exit::NOT_STARTED);
        let summary = summary(&finished);
        assert!(!summary.ok, "{}", finished.report());
        assert_eq!(
            summary.status,
            RunStatus::Killed {
                reason: "more than 50 processes and threads (--max-procs)".to_owned()
            },
            "{}",
            finished.report()
        );
        assert_none_left(&jail, &[&argv], &finished);
    }
}

#[test]
fn threads_racing_to_exec() {
    if !require_root("threads_racing_to_exec") {
        return;
    }
    let Some(fx) = hostile("threads_racing_to_exec") else {
        return;
    };
    // Which thread wins differs from run to run: try a few, in both modes.
    for mode in MODES {
        for _ in 0..3 {
            let jail = Jail::new("exec-race");
            let marker = format!("exec-race-{}", util::unique());
            let argv = [
                fx.exec_threads.as_str(),
                marker.as_str(),
                "/bin/true",
                marker.as_str(),
            ];
            let finished = run_bounded(&jail, &argv, mode);
            expect_ok(&finished);
            assert_none_left(&jail, &[&argv, &["/bin/true", &marker]], &finished);
        }
    }
}

#[test]
fn threads_racing_to_exec_a_reader_get_its_file() {
    if !require_root("threads_racing_to_exec_a_reader_get_its_file") {
        return;
    }
    let Some(fx) = hostile("threads_racing_to_exec_a_reader_get_its_file") else {
        return;
    };
    let jail = Jail::new("exec-race-read");
    let marker = format!("exec-race-read-{}", util::unique());
    // Exits 0 only when /etc/host.conf could be read and is not empty.
    let script = r#"read -r line < /etc/host.conf; test -n "$line""#;
    let argv = [
        fx.exec_threads.as_str(),
        marker.as_str(),
        "/bin/sh",
        "-c",
        script,
        marker.as_str(),
    ];
    let finished = run_bounded(&jail, &argv, &[]);
    expect_ok(&finished);
    let manifest = manifest(&jail, &finished);
    assert!(
        manifest
            .entries
            .iter()
            .any(|e| e.path.as_path() == Path::new("/etc/host.conf") && e.kind == EntryKind::File),
        "the manifest has no file entry /etc/host.conf\n{}",
        finished.report()
    );
    let copied: PathBuf = jail.root.join("etc/host.conf");
    assert_eq!(
        fs::read(&copied).unwrap_or_default(),
        fs::read("/etc/host.conf").expect("the host has /etc/host.conf"),
        "{} is not the host's /etc/host.conf",
        copied.display()
    );
    assert_none_left(
        &jail,
        &[&argv, &["/bin/sh", "-c", script, &marker]],
        &finished,
    );
    // The finished root runs the racing program under a plain chroot.
    chroot_output(&jail.root, &argv, BASE_ENV).assert_success();
}

#[test]
fn program_that_sigkills_itself() {
    if !require_root("program_that_sigkills_itself") {
        return;
    }
    let jail = Jail::new("self-kill");
    let marker = format!("self-kill-{}", util::unique());
    let argv = ["/bin/sh", "-c", "kill -9 $$", marker.as_str()];
    let finished = run_bounded(&jail, &argv, &[]);
    expect_signaled(&finished, "SIGKILL");
    assert_none_left(&jail, &[&argv], &finished);
}

#[test]
fn program_that_segfaults() {
    if !require_root("program_that_segfaults") {
        return;
    }
    let Some(fx) = hostile("program_that_segfaults") else {
        return;
    };
    let jail = Jail::new("segv");
    let marker = format!("segv-{}", util::unique());
    let argv = [fx.segv.as_str(), marker.as_str()];
    let finished = run_bounded(&jail, &argv, &[]);
    expect_signaled(&finished, "SIGSEGV");
    assert_none_left(&jail, &[&argv], &finished);
}

#[test]
fn ready_program_ignoring_sigterm_is_killed_after_the_grace() {
    let test = "ready_program_ignoring_sigterm_is_killed_after_the_grace";
    if !require_root(test) {
        return;
    }
    let Some(fx) = hostile(test) else {
        return;
    };
    let jail = Jail::new("stubborn-ready");
    let marker = format!("stubborn-ready-{}", util::unique());
    let argv = [fx.stubborn.as_str(), marker.as_str()];
    let finished = run_bounded(
        &jail,
        &argv,
        &["--ready", "alive:1s", "--stop-timeout", "1s"],
    );
    finished.assert_code(exit::OK);
    let summary = summary(&finished);
    assert!(summary.ok, "{}", finished.report());
    assert!(
        finished
            .stderr_text()
            .contains("stubborn: ignoring SIGINT, SIGTERM and SIGHUP"),
        "the fixture never ran (its greeting is missing)\n{}",
        finished.report()
    );
    let manifest = manifest(&jail, &finished);
    for run in &manifest.runs {
        assert!(
            run.ready,
            "run {} was not ready\n{}",
            run.index,
            finished.report()
        );
        // It ignores SIGTERM: only the SIGKILL after the grace can end it.
        assert!(
            !matches!(&run.status, RunStatus::Exited { .. })
                && !matches!(&run.status, RunStatus::Signaled { signal, .. } if signal != "SIGKILL"),
            "run {} ended with {:?}, not by SIGKILL after the grace\n{}",
            run.index,
            run.status,
            finished.report()
        );
        // 1 s alive + 1 s grace; a kill without the grace would take ~1 s.
        assert!(
            run.wall_ms >= 1500,
            "run {} took {} ms: it was not given the 1 s grace after 1 s alive\n{}",
            run.index,
            run.wall_ms,
            finished.report()
        );
    }
    assert_none_left(&jail, &[&argv], &finished);
}

#[test]
fn program_calling_ptrace_gets_eperm() {
    if !require_root("program_calling_ptrace_gets_eperm") {
        return;
    }
    let Some(fx) = hostile("program_calling_ptrace_gets_eperm") else {
        return;
    };
    // On the host, nothing traces it: both calls succeed.
    let host = host_output(&[&fx.self_ptrace], BASE_ENV);
    host.assert_success();
    assert_eq!(host.stdout_text(), "attach: ok\ntraceme: ok\n");

    let jail = Jail::new("self-ptrace");
    let marker = format!("self-ptrace-{}", util::unique());
    let argv = [fx.self_ptrace.as_str(), marker.as_str()];
    let finished = run_bounded(&jail, &argv, &[]);
    expect_ok(&finished);
    // With --json the program's stdout is on jailtrace's stderr.
    let stderr = finished.stderr_text();
    for line in ["attach: EPERM", "traceme: EPERM"] {
        assert!(
            stderr.lines().any(|l| l == line),
            "the program did not print `{line}`\n{}",
            finished.report()
        );
    }
    assert_none_left(&jail, &[&argv], &finished);
}

#[test]
fn parent_leaving_zombies() {
    if !require_root("parent_leaving_zombies") {
        return;
    }
    let Some(fx) = hostile("parent_leaving_zombies") else {
        return;
    };
    let jail = Jail::new("zombies");
    let marker = format!("zombies-{}", util::unique());
    let argv = [fx.zombies.as_str(), marker.as_str()];
    let finished = run_bounded(&jail, &argv, &[]);
    expect_ok(&finished);
    assert_none_left(&jail, &[&argv], &finished);
}

#[test]
fn sigint_while_the_program_ignores_it() {
    if !require_root("sigint_while_the_program_ignores_it") {
        return;
    }
    let Some(fx) = hostile("sigint_while_the_program_ignores_it") else {
        return;
    };
    let jail = Jail::new("stubborn-sigint");
    let marker = format!("stubborn-sigint-{}", util::unique());
    let argv = [fx.stubborn.as_str(), marker.as_str()];
    let running = jail.spawn_at(&jail.root, &jail.manifest, &argv, &[], BASE_ENV);
    let started = util::wait_until_running(&argv, BOUND);
    let pid = running.pid();
    if !started {
        let finished = running.wait(Duration::ZERO);
        panic!("the jailed program never started\n{}", finished.report());
    }
    // It runs inside the jail (this also shows the leftover scan can see it).
    assert!(
        !processes_rooted_in(&jail.root).is_empty(),
        "no process is chrooted into {}",
        jail.root.display()
    );
    let signaled = Instant::now();
    kill(pid, Signal::SIGINT).expect("signal jailtrace");
    let finished = running.wait(BOUND);
    let took = signaled.elapsed();
    assert!(
        !finished.timed_out,
        "jailtrace did not finish within {BOUND:?}\n{}",
        finished.report()
    );
    finished.assert_no_panic().assert_code(exit::SIGINT);
    assert!(
        took < Duration::from_secs(10),
        "jailtrace took {took:?} to stop after SIGINT\n{}",
        finished.report()
    );
    assert_none_left(&jail, &[&argv], &finished);
    assert!(
        !jail.manifest.exists(),
        "an interrupted run wrote the manifest {}",
        jail.manifest.display()
    );
}
