//! The program's runtime state is not the jail's content: right after a
//! successful `jailtrace run`, `verify` says clean although the program
//! left sockets, a fifo and its data in the root; `build` never makes a
//! socket and never overwrites the program's data; `update` does not
//! bring in the host's copy of that data (docs/manifest.md, "Runtime
//! state"). Shown with a C fixture and with Debian's redis-server, whose
//! database is seeded from the host's and saved again at each stop.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use jailtrace_manifest::{Manifest, SocketFamily, SocketOp};
use serde_json::Value;
use sha2::Digest;

use crate::cmd::{self, Finished};
use crate::fixtures::{self, BuildError};
use crate::jail::{exit, Jail};
use crate::net::{require_server, HostDir, ServerGuard};
use crate::util::{require_root, unique, BASE_ENV};

/// `serve NAME` (fixtures/runtime/serve.c), compiled once.
fn serve_fixture(test: &str) -> Option<&'static String> {
    static BUILT: OnceLock<Result<String, BuildError>> = OnceLock::new();
    fixtures::built(
        &BUILT,
        || fixtures::Compiler::new("runtime")?.compile("serve", "serve.c", &[]),
        test,
    )
}

/// `/var/lib/NAME` on the host, root's, 0755; removed when dropped.
fn host_data_dir(name: &str) -> HostDir {
    let root = nix::unistd::Uid::from_raw(0);
    let wheel = nix::unistd::Gid::from_raw(0);
    HostDir::create(&Path::new("/var/lib").join(name), 0o755, root, wheel)
}

fn jailtrace(jail: &Jail, args: &[&str]) -> Finished {
    let out = jail.jailtrace(args, BASE_ENV);
    out.assert_no_panic();
    out
}

fn json(out: &Finished) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", out.report()))
}

fn text(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

const SEED: &[u8] = b"the host's database, longer than a pid line\n";

#[test]
fn sockets_fifos_and_the_programs_data_are_runtime_state() {
    const NAME: &str = "sockets_fifos_and_the_programs_data_are_runtime_state";
    if !require_root(NAME) {
        return;
    }
    let Some(serve) = serve_fixture(NAME) else {
        return;
    };
    let name = format!("jailtrace-test-{}", unique());
    let data = host_data_dir(&name);
    fs::write(data.path().join("db"), SEED).unwrap();
    let jail = Jail::new("runtime");
    jail.run(&[serve, &name], &[], BASE_ENV).expect_ok();
    let m = text(&jail.manifest);
    let in_root = |p: &str| jail.root.join(p.trim_start_matches('/'));
    let sock = format!("/run/{name}.sock");
    let ctl = format!("/var/lib/{name}/run/ctl");
    let db = format!("/var/lib/{name}/db");
    assert!(in_root(&sock).exists() && in_root(&ctl).exists());
    assert!(in_root(&format!("/run/{name}.fifo")).exists());
    let written = fs::read(in_root(&db)).unwrap();
    assert_ne!(written, SEED, "the program wrote its pid into db");
    assert!(!Path::new(&sock).exists(), "the program ran in the jail");

    // The manifest lists what the program bound, and no socket entry.
    let manifest = Manifest::read(&jail.manifest).unwrap();
    for address in [&sock, &ctl] {
        assert!(
            manifest
                .sockets
                .iter()
                .any(|s| s.family == SocketFamily::Unix
                    && s.op == SocketOp::Bind
                    && &s.address == address),
            "{address} not in {:#?}",
            manifest.sockets
        );
        assert!(manifest.entry(Path::new(address)).is_none());
    }

    // Right after the run: clean, the sockets and the fifo counted as
    // runtime files, db as the program's data.
    let verified = jailtrace(&jail, &["verify", "--manifest", m, "--json"]);
    let report = json(&verified);
    verified.assert_code(exit::OK);
    assert_eq!(report["clean"], true, "{report:#}");
    assert_eq!(report["runtime_files"], 3, "{report:#}");
    assert_eq!(report["data_files"], 1, "{report:#}");
    let words = jailtrace(&jail, &["verify", "--manifest", m]);
    words.assert_code(exit::OK);
    assert!(
        words.stdout_text().contains(": clean ("),
        "{}",
        words.report()
    );

    // A fresh build makes no socket and no fifo, and seeds db from the host.
    let fresh = jail.join("fresh");
    fs::create_dir(&fresh).unwrap();
    jailtrace(&jail, &["build", "--manifest", m, "--root", text(&fresh)]).assert_code(exit::OK);
    let in_fresh = |p: &str| fresh.join(p.trim_start_matches('/'));
    for p in [&sock, &ctl, &format!("/run/{name}.fifo")] {
        assert!(fs::symlink_metadata(in_fresh(p)).is_err(), "{p} was built");
    }
    assert_eq!(fs::read(in_fresh(&db)).unwrap(), SEED);
    // Nor does an export.
    let tar = jail.join("jail.tar");
    jailtrace(
        &jail,
        &[
            "export",
            "--manifest",
            m,
            "--format",
            "tar",
            "-o",
            text(&tar),
        ],
    )
    .assert_code(exit::OK);
    let listing = cmd::run(
        {
            let mut c = std::process::Command::new("tar");
            c.arg("-tf").arg(&tar);
            c
        },
        cmd::PROGRAM_TIMEOUT,
    );
    listing.assert_success();
    let names = listing.stdout_text();
    assert!(names.contains(&format!("var/lib/{name}/db")), "{names}");
    assert!(
        !names.contains(".sock") && !names.contains(".fifo") && !names.contains("run/ctl"),
        "{names}"
    );
    // A build over the program's root keeps what it wrote, even --link.
    jailtrace(&jail, &["build", "--manifest", m, "--link"]).assert_code(exit::OK);
    assert_eq!(fs::read(in_root(&db)).unwrap(), written);

    // The host's copy of the data changes: no change of the jail.
    fs::write(data.path().join("db"), b"the host's database, later").unwrap();
    let verified = jailtrace(&jail, &["verify", "--manifest", m]);
    verified.assert_code(exit::OK);
    let updated = jailtrace(&jail, &["update", "--manifest", m]);
    updated.assert_code(exit::OK);
    assert!(
        updated.stderr_text().contains("up to date with the host"),
        "{}",
        updated.report()
    );
    assert_eq!(fs::read(in_root(&db)).unwrap(), written);

    // What is not the program's is still reported: a file planted in
    // /run, a change of a file the program only reads.
    fs::write(in_root("/run/planted"), b"x").unwrap();
    let broken = jailtrace(&jail, &["verify", "--manifest", m]);
    broken.assert_code(exit::ERROR);
    assert!(
        broken
            .stdout_text()
            .contains("extra         /run/planted: a file the manifest does not list"),
        "{}",
        broken.report()
    );
}

#[test]
fn redis_saving_its_database_leaves_a_clean_jail() {
    const NAME: &str = "redis_saving_its_database_leaves_a_clean_jail";
    const REDIS: &str = "/usr/bin/redis-server";
    if !require_root(NAME) || !require_server(NAME, REDIS, "redis-server") {
        return;
    }
    let name = format!("jailtrace-test-redis-{}", unique());
    let data = host_data_dir(&name);
    let dir = data.path().to_str().expect("test paths are UTF-8");
    let jail = Jail::new("redis");
    let _guard = ServerGuard::new(&[&jail.path], &[data.path()]);
    let socket = format!("/run/{name}.sock");
    let argv = [
        REDIS,
        "--port",
        "0",
        "--unixsocket",
        &socket,
        "--dir",
        dir,
        "--daemonize",
        "no",
    ];
    let ready = [
        "--ready",
        "log:ready to accept connections",
        "--timeout",
        "60s",
    ];
    let rdb = format!("{dir}/dump.rdb");

    // A first jail, whose redis saves an empty database when it is
    // stopped: that file becomes the host's copy, the seed of the next.
    let first = jail.join("first");
    jail.run_at(&first, &jail.join("first.json"), &argv, &ready, BASE_ENV)
        .expect_ok();
    let seed = fs::read(first.join(rdb.trim_start_matches('/'))).expect("redis saved its database");
    fs::write(&rdb, &seed).unwrap();
    // The next save is in a later second (the file records its time).
    std::thread::sleep(Duration::from_millis(1100));

    jail.run(&argv, &ready, BASE_ENV).expect_ok();
    let saved = fs::read(jail.root.join(rdb.trim_start_matches('/'))).unwrap();
    assert_ne!(saved, seed, "redis saved its database again in the jail");
    let manifest = Manifest::read(&jail.manifest).unwrap();
    let entry = manifest
        .entry(Path::new(&rdb))
        .expect("the seed was copied from the host");
    assert_eq!(
        entry.sha256.as_deref(),
        Some(format!("{:x}", sha2::Sha256::digest(&seed)).as_str())
    );
    let m = text(&jail.manifest);
    let verified = jailtrace(&jail, &["verify", "--manifest", m, "--json"]);
    let report = json(&verified);
    verified.assert_code(exit::OK);
    assert_eq!(report["clean"], true, "{report:#}");
    assert_eq!(report["data_files"], 1, "{report:#}");
}

/// A pid file the program left in `/run` in the discovering run is gone
/// when the verifying run starts, as after a boot: a program that refuses
/// to start over a pid file (as Apache does, "httpd (pid 15) already
/// running") starts in every run. The manifest still records the file as
/// the program's own, and `verify` finds the jail clean without it.
#[test]
fn each_run_starts_with_the_run_directory_a_boot_gives() {
    const NAME: &str = "each_run_starts_with_the_run_directory_a_boot_gives";
    if !require_root(NAME) {
        return;
    }
    let pid_file = format!("/run/jailtrace-test-{}.pid", unique());
    let script = format!(
        "if [ -e {pid_file} ]; then echo \"already running: $(cat {pid_file})\"; exit 1; fi; \
         echo $$ > {pid_file}; echo started"
    );
    let jail = Jail::new("rundirs");
    let out = jail.run(&["/bin/sh", "-c", &script], &[], BASE_ENV);
    out.expect_ok();
    let manifest = Manifest::read(&jail.manifest).unwrap();
    let runs: Vec<_> = manifest.runs.iter().map(|r| r.ready).collect();
    assert_eq!(runs, [true, true], "{}", out.finished.report());
    let entry = manifest
        .entry(Path::new(&pid_file))
        .unwrap_or_else(|| panic!("no entry for {pid_file}"));
    assert_eq!(entry.reason.cause, jailtrace_manifest::Cause::Created);
    // The verifying run made it again; it is the program's, and the jail
    // is clean with it and without it.
    let in_root = jail.root.join(pid_file.trim_start_matches('/'));
    assert!(in_root.exists());
    let verify = jailtrace(&jail, &["verify", "--manifest", text(&jail.manifest)]);
    assert_eq!(verify.code(), Some(0), "{}", verify.report());
    fs::remove_file(&in_root).unwrap();
    let verify = jailtrace(&jail, &["verify", "--manifest", text(&jail.manifest)]);
    assert_eq!(verify.code(), Some(0), "{}", verify.report());
    // The program runs under plain chroot, once.
    let chrooted = cmd::run(
        {
            let mut c = std::process::Command::new("chroot");
            c.arg(&jail.root).args(["/bin/sh", "-c", &script]);
            c
        },
        Duration::from_secs(30),
    );
    assert_eq!(chrooted.stdout_text(), "started\n", "{}", chrooted.report());
}
