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
