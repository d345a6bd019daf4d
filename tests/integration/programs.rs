//! Several programs in one jail: `jailtrace run` into a root whose
//! manifest jailtrace wrote adds the program (and verifies every program
//! of the jail again), `--program NAME` replaces one, the manifest lists
//! them all, `why` names every program that needs an entry, and the bwrap
//! export runs any of them.

use std::fs;
use std::path::Path;

use jailtrace_manifest::{Manifest, RunRole};

use crate::cmd::{self, chroot_output, host_output};
use crate::jail::{exit, Jail};
use crate::util::{require_root, BASE_ENV};

const DATE: &[&str] = &["/bin/date", "-u", "-d", "@0"];
const LS: &[&str] = &["/bin/ls", "/"];
const PYTHON: &[&str] = &[
    "/usr/bin/python3",
    "-c",
    "import json; print(json.dumps([1, 2]))",
];

#[test]
fn programs_added_one_by_one_share_a_root_and_all_run() {
    if !require_root("programs_added_one_by_one_share_a_root_and_all_run") {
        return;
    }
    let jail = Jail::new("programs");
    for argv in [DATE, LS, PYTHON] {
        jail.run(argv, &[], BASE_ENV).expect_ok();
    }
    let manifest = Manifest::read(&jail.manifest).unwrap();
    let names: Vec<&str> = manifest.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["date", "ls", "python3"]);

    // Adding python3 verified date and ls again in the root that ships.
    let last: Vec<(&str, RunRole)> = manifest
        .runs
        .iter()
        .rev()
        .take(2)
        .map(|r| (r.program.as_deref().unwrap_or("?"), r.role))
        .collect();
    assert_eq!(last, [("ls", RunRole::Verify), ("date", RunRole::Verify)]);

    // Each runs under plain chroot as on the host (ls lists the jail's
    // root, so only its success is compared).
    for argv in [DATE, PYTHON] {
        cmd::assert_same_stdout(
            &chroot_output(&jail.root, argv, BASE_ENV),
            &host_output(argv, BASE_ENV),
        );
    }
    chroot_output(&jail.root, LS, BASE_ENV).assert_success();

    // libc is needed by all three; why says so.
    let why = jail.jailtrace(
        &[
            "why",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "--manifest",
            jail.manifest.to_str().unwrap(),
        ],
        BASE_ENV,
    );
    why.assert_success();
    let text = why.stdout_text();
    let needed = text
        .lines()
        .find(|l| l.trim_start().starts_with("needed by:"))
        .unwrap_or_else(|| panic!("no `needed by` line\n{}", why.report()));
    for name in ["date", "ls", "python3"] {
        assert!(needed.contains(name), "{needed}");
    }

    // verify checks the whole jail, every program's entries.
    jail.jailtrace(
        &["verify", "--manifest", jail.manifest.to_str().unwrap()],
        BASE_ENV,
    )
    .assert_success();

    // The bwrap export runs any of them by name.
    if which("bwrap") {
        let script = jail.join("run.sh");
        jail.jailtrace(
            &[
                "export",
                "--manifest",
                jail.manifest.to_str().unwrap(),
                "--format",
                "bwrap",
                "-o",
                script.to_str().unwrap(),
            ],
            BASE_ENV,
        )
        .assert_success();
        let bwrap = |args: &[&str]| {
            let mut c = std::process::Command::new("/bin/sh");
            c.arg(&script)
                .args(args)
                .env_clear()
                .envs(BASE_ENV.iter().copied());
            cmd::run(c, cmd::PROGRAM_TIMEOUT)
        };
        let out = bwrap(&["python3"]);
        out.assert_success();
        assert_eq!(out.stdout_text(), "[1, 2]\n", "{}", out.report());
        let out = bwrap(&["date", "+%Y"]);
        out.assert_success();
        assert_eq!(out.stdout_text(), "1970\n", "{}", out.report());
        let out = bwrap(&["nosuch"]);
        assert_eq!(out.code(), Some(2), "{}", out.report());
        assert!(
            out.stderr_text().contains("date ls python3"),
            "{}",
            out.report()
        );
    }
}

#[test]
fn a_program_name_given_again_replaces_that_program() {
    if !require_root("a_program_name_given_again_replaces_that_program") {
        return;
    }
    let jail = Jail::new("programs-replace");
    jail.run(DATE, &["--program", "clock"], BASE_ENV)
        .expect_ok();
    jail.run(LS, &[], BASE_ENV).expect_ok();
    jail.run(&["/bin/date", "+%s"], &["--program", "clock"], BASE_ENV)
        .expect_ok();
    let manifest = Manifest::read(&jail.manifest).unwrap();
    let names: Vec<&str> = manifest.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["clock", "ls"],
        "the replaced program keeps its place"
    );
    let argv: Vec<String> = manifest.programs[0]
        .command
        .argv
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(argv, ["/bin/date", "+%s"]);
    // --fresh starts over with the one program.
    jail.run(LS, &["--fresh"], BASE_ENV).expect_ok();
    let manifest = Manifest::read(&jail.manifest).unwrap();
    assert_eq!(manifest.programs.len(), 1);
    // A bad name is a usage error.
    let bad = jail.run(LS, &["--program", "a b"], BASE_ENV);
    bad.finished.assert_no_panic().assert_code(exit::USAGE);
}

#[test]
fn a_version_1_manifest_reads_as_one_program_and_is_rewritten_as_version_2() {
    if !require_root("a_version_1_manifest_reads_as_one_program_and_is_rewritten_as_version_2") {
        return;
    }
    let jail = Jail::new("programs-v1");
    jail.run(DATE, &[], BASE_ENV).expect_ok();
    // The same manifest as version 1 wrote it: one `command`.
    let mut value: serde_json::Value =
        serde_json::from_slice(&fs::read(&jail.manifest).unwrap()).unwrap();
    let map = value.as_object_mut().unwrap();
    let mut programs = map.remove("programs").unwrap();
    let mut command = programs[0].take();
    command.as_object_mut().unwrap().remove("name");
    map.insert("command".into(), command);
    map.insert("schema_version".into(), 1.into());
    fs::write(&jail.manifest, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    let m = jail.manifest.to_str().unwrap();
    jail.jailtrace(&["verify", "--manifest", m], BASE_ENV)
        .assert_success();
    // Adding a program rewrites it as version 2 with both.
    jail.run(LS, &[], BASE_ENV).expect_ok();
    let text = fs::read_to_string(&jail.manifest).unwrap();
    assert!(text.contains("\"schema_version\": 2") && !text.contains("\"command\""));
    let manifest = Manifest::read(Path::new(m)).unwrap();
    let names: Vec<&str> = manifest.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["date", "ls"]);
}

fn which(tool: &str) -> bool {
    std::env::split_paths(crate::util::PATH).any(|dir| dir.join(tool).is_file())
}

const REDIS: &str = "/usr/bin/redis-server";
const REDIS_CLI: &str = "/usr/bin/redis-cli";
/// A redis that listens only on a unix socket in the jail.
const REDIS_ARGV: &[&str] = &[
    REDIS,
    "--port",
    "0",
    "--unixsocket",
    "/tmp/redis.sock",
    "--save",
    "",
];
const PING: &[&str] = &[REDIS_CLI, "-s", "/tmp/redis.sock", "ping"];

#[test]
fn with_starts_the_server_a_client_needs_in_each_of_its_runs() {
    const NAME: &str = "with_starts_the_server_a_client_needs_in_each_of_its_runs";
    if !require_root(NAME)
        || !crate::net::require_server(NAME, REDIS, "redis-server")
        || !crate::net::require_server(NAME, REDIS_CLI, "redis-tools")
    {
        return;
    }
    let jail = Jail::new("with");
    let _guard = crate::net::ServerGuard::new(&[&jail.root], &[]);
    jail.run(
        REDIS_ARGV,
        &[
            "--program",
            "redis",
            "--ready",
            "log:ready to accept connections",
        ],
        BASE_ENV,
    )
    .expect_ok();
    let before = fs::read(&jail.manifest).unwrap();

    // Alone, the client finds no server: it does not start, and the jail
    // is left as it was.
    let alone = jail.run(PING, &["--max-runs", "2"], BASE_ENV);
    alone.finished.assert_code(exit::NOT_STARTED);
    assert_eq!(fs::read(&jail.manifest).unwrap(), before);

    // A program that ends without being ready ends the run then, though
    // the server it runs with would keep running: no wait for --timeout.
    let gone = jail.run(
        &["/bin/true"],
        &[
            "--with",
            "redis",
            "--ready",
            "log:never printed",
            "--timeout",
            "10m",
        ],
        BASE_ENV,
    );
    gone.finished.assert_code(exit::NOT_STARTED);
    // (--json: the summary is on stdout.)
    let said = gone.finished.stdout_text() + &gone.finished.stderr_text();
    assert!(
        said.contains("log:never printed (no line of output matched)")
            && !said.contains("timeout after"),
        "{}",
        gone.finished.report()
    );
    assert_eq!(fs::read(&jail.manifest).unwrap(), before);

    // A name the jail does not have is refused before anything runs.
    let unknown = jail.run(PING, &["--with", "redis-serverr"], BASE_ENV);
    let stderr = unknown.expect_error(exit::ERROR);
    assert!(
        stderr
            .contains("--with redis-serverr: the jail has no program of that name (it has: redis)"),
        "{stderr}"
    );
    assert_eq!(fs::read(&jail.manifest).unwrap(), before);

    // With the server, it starts: each of its runs started redis first.
    let with = jail.run(PING, &["--with", "redis"], BASE_ENV);
    with.expect_ok();
    // (--json: the program's output goes to stderr.)
    assert!(
        with.finished.stderr_text().lines().any(|l| l == "PONG"),
        "{}",
        with.finished.report()
    );
    let manifest = Manifest::read(&jail.manifest).unwrap();
    let cli = manifest
        .program("redis-cli")
        .expect("redis-cli is recorded");
    assert_eq!(cli.command.with, ["redis"]);
    // redis read nothing new for the client, but its socket is its own:
    // recorded as bound by redis, connected to by the client.
    let socket = |op: jailtrace_manifest::SocketOp| {
        manifest
            .sockets
            .iter()
            .find(|s| s.address == "/tmp/redis.sock" && s.op == op)
            .and_then(|s| s.reason.program.clone())
    };
    assert_eq!(
        socket(jailtrace_manifest::SocketOp::Bind).as_deref(),
        Some("redis")
    );
    assert_eq!(
        socket(jailtrace_manifest::SocketOp::Connect).as_deref(),
        Some("redis-cli")
    );

    // Under plain chroot: the server from the jail, then the client.
    let server = crate::net::spawn_chroot(&jail.root, REDIS_ARGV, BASE_ENV);
    let socket_path = jail.root.join("tmp/redis.sock");
    let deadline = std::time::Instant::now() + crate::net::SERVE_WITHIN;
    while !socket_path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pong = chroot_output(&jail.root, PING, BASE_ENV);
    crate::net::sigterm(server.pid());
    server.wait(crate::net::STOP_WITHIN);
    pong.assert_success();
    assert_eq!(pong.stdout_text(), "PONG\n", "{}", pong.report());

    // verify checks the jail; update --run runs the client with redis
    // again, from the manifest's record.
    jail.jailtrace(
        &["verify", "--manifest", jail.manifest.to_str().unwrap()],
        BASE_ENV,
    )
    .assert_success();
    let update = jail.jailtrace(
        &[
            "update",
            "--manifest",
            jail.manifest.to_str().unwrap(),
            "--run",
        ],
        BASE_ENV,
    );
    update.assert_success();
    let manifest = Manifest::read(&jail.manifest).unwrap();
    let last = manifest
        .runs
        .iter()
        .rev()
        .find(|r| r.program.as_deref() == Some("redis-cli"))
        .expect("a run of redis-cli");
    assert!(last.ready, "{last:?}\n{}", update.report());
}
