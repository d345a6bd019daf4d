//! The manifest format end to end through the public API: round trips
//! (including non-UTF-8 paths), the JSON snapshot of a hand-built manifest,
//! the example in `docs/manifest.md`, lookups, and reading files.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use jailtrace_manifest::{
    AccountKind, Cause, Command, DeviceNumber, Entry, EntryKind, Error, Exercise, FoundAccount,
    Manifest, Mode, Mount, PathText, Probe, Program, Reason, Rootless, Run, RunRole, RunStatus,
    Socket, SocketFamily, SocketOp, SCHEMA_VERSION,
};

fn mode(bits: u32) -> Mode {
    Mode::new(bits).expect("test modes are within 0o7777")
}

fn entry(path: &str, kind: EntryKind, bits: u32, reason: Reason) -> Entry {
    Entry {
        path: path.into(),
        kind,
        mode: mode(bits),
        uid: 0,
        gid: 0,
        size: None,
        sha256: None,
        target: None,
        rdev: None,
        hardlink_to: None,
        setuid_stripped: false,
        hollow: false,
        content: None,
        reason,
        also_needed_by: Vec::new(),
    }
}

fn run(index: u32, role: RunRole, status: RunStatus) -> Run {
    Run {
        index,
        role,
        seccomp: true,
        status,
        ready: true,
        misses: 0,
        placed: 0,
        bytes: 0,
        wall_ms: 12,
        processes: 1,
        stops: 40,
        handler_us: Some(900),
        program: Some("tool".into()),
    }
}

fn socket(family: SocketFamily, op: SocketOp, address: &str, by: &Reason) -> Socket {
    let syscall = serde_json::to_value(op)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    Socket {
        family,
        op,
        address: address.into(),
        reason: Reason {
            syscall: Some(syscall),
            ..by.clone()
        },
    }
}

/// A small manifest that uses every type, every enum value and every optional field.
fn sample() -> Manifest {
    let odd = PathText::from(b"/data/caf\xe9.txt".to_vec());
    let accessed = Reason {
        pid: Some(4242),
        exe: Some("/usr/bin/tool".into()),
        syscall: Some("openat".into()),
        ..Reason::new(Cause::Accessed, 1)
    };
    let mut tool = entry(
        "/usr/bin/tool",
        EntryKind::File,
        0o755,
        Reason::new(Cause::Executable, 0),
    );
    tool.size = Some(1234);
    tool.sha256 = Some("ab".repeat(32));
    let mut ping = entry(
        "/usr/bin/ping",
        EntryKind::File,
        0o755,
        Reason::new(Cause::Listed, 0),
    );
    // The host's copy is 4755; policy stripped the setuid bit.
    ping.setuid_stripped = true;
    let mut ping_link = entry(
        "/usr/bin/ping4",
        EntryKind::File,
        0o755,
        Reason::new(Cause::Listed, 0),
    );
    ping_link.hardlink_to = Some("/usr/bin/ping".into());
    let mut lib = entry(
        "/lib",
        EntryKind::Symlink,
        0o777,
        Reason {
            requested: Some("/lib/libfoo.so.1".into()),
            ..accessed.clone()
        },
    );
    lib.reason.cause = Cause::SymlinkChain;
    lib.target = Some("usr/lib".into());
    let mut null = entry(
        "/dev/null",
        EntryKind::Device,
        0o666,
        Reason::new(Cause::Runtime, 1),
    );
    null.rdev = Some(DeviceNumber { major: 1, minor: 3 });
    let page = Exercise::Probe("http://127.0.0.1:8080/page.php".into());
    let mut data = entry(
        "/data/caf\u{e9}",
        EntryKind::File,
        0o640,
        Reason {
            exercise: Some(page.clone()),
            ..accessed.clone()
        },
    );
    data.path = odd.clone();
    data.uid = 1000;
    data.gid = 1000;
    data.size = Some(0);

    Manifest {
        schema_version: SCHEMA_VERSION,
        tool_version: "0.1.0".into(),
        created_unix: 1_700_000_000,
        programs: vec![Program {
            name: "tool".into(),
            command: Command {
                argv: vec!["tool".into(), "--input".into(), odd.clone()],
                executable: "/usr/bin/tool".into(),
                cwd: "/".into(),
                env: vec![
                    "PATH=/usr/bin:/bin".into(),
                    PathText::from(OsString::from_vec(b"NAME=\xff".to_vec())),
                ],
                env_redacted: None,
                user: Some("nobody".into()),
                group: None,
                supplementary_groups: Vec::new(),
                umask: None,
                ready: vec!["tcp:127.0.0.1:8080".into()],
                exercises: vec![
                    Exercise::Command("curl -fsS http://127.0.0.1:8080/".into()),
                    page,
                ],
                with: Vec::new(),
                before: Vec::new(),
            },
            unit: None,
        }],
        jail_file: None,
        root: "/srv/jails/tool".into(),
        runs: vec![
            Run {
                misses: 9,
                placed: 7,
                bytes: 1234,
                ..run(1, RunRole::Discover, RunStatus::Exited { code: 0 })
            },
            Run {
                ready: false,
                seccomp: false,
                ..run(
                    2,
                    RunRole::Retry,
                    RunStatus::Signaled {
                        signal: "SIGSEGV".into(),
                        core_dumped: true,
                    },
                )
            },
            run(
                3,
                RunRole::Verify,
                RunStatus::Killed {
                    reason: "timeout after 10s".into(),
                },
            ),
        ],
        entries: vec![
            entry("/usr", EntryKind::Dir, 0o755, Reason::new(Cause::Parent, 0)),
            entry(
                "/tmp",
                EntryKind::Dir,
                0o1777,
                Reason::new(Cause::Created, 0),
            ),
            tool,
            ping,
            ping_link,
            lib,
            entry(
                "/usr/lib/libfoo.so.1",
                EntryKind::File,
                0o644,
                Reason::new(Cause::Preseed, 0),
            ),
            entry(
                "/lib64/ld-linux-x86-64.so.2",
                EntryKind::File,
                0o755,
                Reason::new(Cause::Interpreter, 1),
            ),
            entry(
                "/etc/passwd",
                EntryKind::File,
                0o644,
                Reason::new(Cause::Synthesized, 1),
            ),
            null,
            data,
        ],
        absent: vec![Probe {
            path: "/etc/ld.so.preload".into(),
            reason: Reason {
                syscall: Some("access".into()),
                ..Reason::new(Cause::Accessed, 1)
            },
            rule: None,
        }],
        denied: vec![Probe {
            path: "/etc/shadow".into(),
            reason: accessed.clone(),
            rule: Some("deny /etc/shadow".into()),
        }],
        mounts: vec![Mount {
            fstype: "proc".into(),
            path: "/proc".into(),
            options: vec!["nosuid".into(), "nodev".into(), "noexec".into()],
            source: None,
            reason: Reason {
                requested: Some("/proc/self/exe".into()),
                ..Reason::new(Cause::Runtime, 1)
            },
        }],
        sockets: vec![
            socket(
                SocketFamily::Inet,
                SocketOp::Connect,
                "127.0.0.1:53",
                &accessed,
            ),
            socket(SocketFamily::Inet6, SocketOp::Bind, "[::1]:8080", &accessed),
            socket(
                SocketFamily::Unix,
                SocketOp::Listen,
                "/run/tool.sock",
                &accessed,
            ),
        ],
        accounts: vec![FoundAccount {
            name: "sshd".into(),
            kind: AccountKind::User,
            reason: Reason {
                program: Some("sshd".into()),
                ..Reason::new(Cause::Lookup, 9)
            },
            failed_without: 8,
        }],
        rootless: Some(Rootless {
            uid: 1000,
            gid: 1000,
            subordinate_ids: 65536,
        }),
    }
}

#[test]
fn round_trip_is_lossless_including_non_utf8_paths() {
    let manifest = sample();
    let json = manifest.to_json();
    let back = Manifest::from_slice(json.as_bytes()).unwrap();
    assert_eq!(back, manifest);
    // The non-UTF-8 bytes survive exactly, in entries, argv and env.
    let odd = back.entries.last().unwrap();
    assert_eq!(odd.path.as_bytes(), b"/data/caf\xe9.txt");
    assert_eq!(
        back.programs[0].command.argv[2].as_bytes(),
        b"/data/caf\xe9.txt"
    );
    assert_eq!(back.programs[0].command.env[1].as_bytes(), b"NAME=\xff");
    // And they are written in the bytes form, not lossily.
    assert!(
        json.contains(r#""bytes": "L2RhdGEvY2Fm6S50eHQ=""#),
        "{json}"
    );
    assert!(!json.contains('\u{fffd}'));
    // Writing what was read gives the same text.
    assert_eq!(back.to_json(), json);
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!("sample_manifest", sample().to_json());
}

#[test]
fn optional_fields_are_omitted_and_default_when_missing() {
    let json = sample().to_json();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let usr = &value["entries"][0];
    for key in [
        "size",
        "sha256",
        "target",
        "rdev",
        "hardlink_to",
        "setuid_stripped",
    ] {
        assert!(usr.get(key).is_none(), "{key} should be omitted: {usr}");
    }
    assert_eq!(
        usr["reason"],
        serde_json::json!({"cause": "parent", "run": 0})
    );
    assert_eq!(value["entries"][3]["setuid_stripped"], true);
    assert_eq!(
        value["runs"][0]["status"],
        serde_json::json!({"exited": {"code": 0}})
    );
    assert_eq!(
        value["runs"][1]["status"],
        serde_json::json!({"signaled": {"signal": "SIGSEGV", "core_dumped": true}})
    );
    assert_eq!(value["entries"][1]["mode"], "1777");
    assert_eq!(
        value["entries"][9]["rdev"],
        serde_json::json!({"major": 1, "minor": 3})
    );
    assert_eq!(value["programs"][0]["group"], serde_json::Value::Null);
    assert_eq!(
        value["programs"][0]["exercises"],
        serde_json::json!([
            {"command": "curl -fsS http://127.0.0.1:8080/"},
            {"probe": "http://127.0.0.1:8080/page.php"}
        ])
    );
    assert_eq!(
        value["entries"][10]["reason"]["exercise"],
        serde_json::json!({"probe": "http://127.0.0.1:8080/page.php"})
    );
    // Without exercises, neither key is written, and both read back empty.
    let mut plain = sample();
    plain.programs[0].command.exercises.clear();
    plain.entries[10].reason.exercise = None;
    let json = plain.to_json();
    assert!(!json.contains("exercise"), "{json}");
    assert_eq!(Manifest::from_slice(json.as_bytes()).unwrap(), plain);
}

#[test]
fn entry_finds_by_jail_path() {
    let manifest = sample();
    let lib = manifest.entry(Path::new("/lib")).unwrap();
    assert_eq!(lib.kind, EntryKind::Symlink);
    assert_eq!(lib.target.as_ref().unwrap().as_path(), Path::new("usr/lib"));
    assert!(manifest
        .entry(Path::new("/usr//lib/libfoo.so.1/"))
        .is_some());
    let odd = OsString::from_vec(b"/data/caf\xe9.txt".to_vec());
    assert_eq!(manifest.entry(Path::new(&odd)).unwrap().uid, 1000);
    assert!(manifest.entry(Path::new("/usr/lib")).is_none());
    assert!(
        manifest.entry(Path::new("usr")).is_none(),
        "jail paths are absolute"
    );
}

#[test]
fn modes_of_real_host_files() {
    let bits = |p: &str| Mode::from_st_mode(fs::symlink_metadata(p).unwrap().mode()).to_string();
    assert_eq!(bits("/usr/bin/date"), "0755");
    assert_eq!(bits("/tmp"), "1777");
    assert_eq!(bits("/etc/passwd"), "0644");
    // util-linux's su is setuid root on Debian.
    assert_eq!(bits("/usr/bin/su"), "4755");
}

#[test]
fn read_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let err = Manifest::read(&missing).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("cannot read manifest {}", missing.display())
    );

    let future = dir.path().join("future.json");
    fs::write(&future, r#"{"schema_version": 3, "entries": "new shape"}"#).unwrap();
    let err = Manifest::read(&future).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot use manifest {}", future.display())
    );
    assert!(matches!(
        err.content(),
        Error::FutureVersion {
            found: 3,
            supported: 2
        }
    ));
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("version 3 is newer"), "{cause}");

    let good = dir.path().join("good.json");
    fs::write(&good, sample().to_json()).unwrap();
    assert_eq!(Manifest::read(&good).unwrap(), sample());
}

/// The example in docs/manifest.md is a valid manifest, written exactly as `to_json` writes it.
#[test]
fn documentation_example_is_valid_and_canonical() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/manifest.md");
    let doc = fs::read_to_string(&doc_path).unwrap();
    let start_marker = "<!-- example:begin -->\n```json\n";
    let start = doc.find(start_marker).expect("example start marker") + start_marker.len();
    let len = doc[start..]
        .find("```\n<!-- example:end -->")
        .expect("example end marker");
    let example = &doc[start..start + len];
    let manifest = Manifest::from_slice(example.as_bytes()).unwrap();
    assert_eq!(manifest.to_json(), example);
    assert!(manifest
        .entry(Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6"))
        .is_some());
}
