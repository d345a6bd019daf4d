//! Acceptance tests of `jailtrace run --unit NAME`: Debian's own packages
//! with their own systemd units, nothing configured by hand. Each service
//! is jailed with `--unit NAME` and no other option (OpenSSH also gets an
//! `--allow` for its host keys, which stay denied by default; nginx's
//! default page, which it reads only when asked for it, comes from
//! `--unit`'s default exercise of its listening ports),
//! then started again under a plain
//! `chroot(8)` with the command line, user and environment the manifest
//! records (the `sh`/`bwrap` exports' form: no systemd runs here as PID
//! 1), and must answer: nginx and apache2 their default page, redis-server
//! `PING`, MariaDB a query over its socket, sshd its banner (after `sshd
//! -t` passed in the jail), Tomcat its welcome page, dnsmasq a DNS query
//! over TCP, mosquitto an MQTT `CONNECT` (its `ExecStartPre=` lines make
//! its directories in the jail).
//!
//! The services listen on their default ports (80, 6379, 3306, 8080, 53,
//! 1883;
//! sshd on a free port that a drop-in the test writes in
//! `/etc/systemd/system/ssh.service.d/` gives it, removed afterwards), so
//! these tests take [`DEFAULT_PORTS`] and check first that nothing on the
//! host holds the port. No other test serves on those ports: the server
//! tests (`servers.rs`, `lamp.rs`) write their own configuration with a
//! [`free_port`](crate::net::free_port).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jailtrace_manifest::{Cause, EntryKind, Manifest};

use crate::cmd::{self, Finished};
use crate::jail::Jail;
use crate::net::{require_server, ServerGuard, STOP_WITHIN};
use crate::util::require_root;

/// Held by every test that serves on a default port.
static DEFAULT_PORTS: Mutex<()> = Mutex::new(());

fn default_ports() -> MutexGuard<'static, ()> {
    DEFAULT_PORTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Panics when something on the host already listens on `port`.
fn assert_port_free(port: u16) {
    if let Err(e) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        panic!(
            "port {port} is taken on this host ({e}): stop what holds it (the host's own service?)"
        );
    }
}

/// A unit jailed in `T` (the default root `T/NAME.jail`).
struct UnitJail {
    guard: ServerGuard,
    jail: Jail,
    root: PathBuf,
    manifest: Manifest,
    summary: serde_json::Value,
}

/// `jailtrace run --unit NAME --json EXTRA` in a fresh `T`; panics unless
/// the service came up.
fn jail_unit(test: &str, unit: &str, short: &str, extra: &[&str]) -> UnitJail {
    let jail = Jail::new(test);
    let guard = ServerGuard::new(&[&jail.path], &[&jail.path]);
    let mut args = vec!["run", "--unit", unit, "--json"];
    args.extend_from_slice(extra);
    let finished = jail.jailtrace(&args, &[]);
    assert!(finished.status.success(), "{}", finished.report());
    let summary: serde_json::Value = serde_json::from_slice(&finished.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", finished.report()));
    let root = jail.join(&format!("{short}.jail"));
    let manifest = Manifest::read(&jail.join(&format!("{short}.jail.json")))
        .unwrap_or_else(|e| panic!("{e}: {}", finished.report()));
    guard.assert_none_left(STOP_WITHIN, "after jailtrace run --unit");
    UnitJail {
        guard,
        jail,
        root,
        manifest,
        summary,
    }
}

impl UnitJail {
    /// Starts the recorded program under plain `chroot --userspec`, with
    /// its recorded environment, the jail's mounts made first.
    fn start(&mut self) -> cmd::Running {
        self.guard.mount(&self.root, &self.manifest);
        let program = &self.manifest.programs[0];
        let c = &program.command;
        let mut command = Command::new("/usr/sbin/chroot");
        if let Some(user) = &c.user {
            let u = nix::unistd::User::from_name(user).unwrap().unwrap();
            let gid = match &c.group {
                Some(g) => nix::unistd::Group::from_name(g).unwrap().unwrap().gid,
                None => u.gid,
            };
            command.arg(format!("--userspec={}:{}", u.uid, gid));
        }
        command
            .arg(&self.root)
            .args(c.argv.iter().map(|a| a.as_os_str()))
            .env_clear()
            .current_dir("/");
        for item in &c.env {
            let item = item.to_string();
            if let Some((k, v)) = item.split_once('=') {
                command.env(k, v);
            }
        }
        cmd::spawn(command)
    }

    /// The directory the unit asked for, as the manifest records it.
    fn requested_dir(&self, path: &str) -> (String, u32) {
        let e = self
            .manifest
            .entries
            .iter()
            .find(|e| e.path.to_string() == path)
            .unwrap_or_else(|| panic!("{path} is not in the manifest"));
        assert_eq!(e.kind, EntryKind::Dir);
        assert_eq!(e.reason.cause, Cause::Requested);
        // The unit's setting that asked for it is named.
        let setting = e.reason.setting.as_deref().unwrap_or_default();
        assert!(
            setting.contains(".service ") && setting.contains("Directory="),
            "{path}: reason.setting {setting:?}"
        );
        (e.mode.to_string(), e.uid)
    }
}

impl Drop for UnitJail {
    fn drop(&mut self) {
        self.guard.kill_all();
        self.guard.unmount_all();
    }
}

/// What `port` answers to `request` within `within` (retried until it
/// answers with something containing `expect`).
fn ask(port: u16, request: &[u8], expect: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let _ = s.write_all(request);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if String::from_utf8_lossy(&buf).contains(expect) {
                    return String::from_utf8_lossy(&buf).into_owned();
                }
            }
            last = String::from_utf8_lossy(&buf).into_owned();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("port {port} did not answer {expect:?} within {within:?}; last answer {last:?}");
}

/// What the server on `port` of 127.0.0.1 answers to `request` (the
/// bytes up to its first pause of 2 s or the end), asked again until it
/// answers something, within `within`.
fn ask_bytes(port: u16, request: &[u8], within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let _ = s.write_all(request);
            let mut chunk = [0u8; 4096];
            if let Ok(n @ 1..) = s.read(&mut chunk) {
                return chunk[..n].to_vec();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("port {port} did not answer within {within:?}");
}

fn expect_unit(summary: &serde_json::Value, name: &str, ty: &str) {
    assert_eq!(summary["unit"]["name"], name, "{summary:#}");
    assert_eq!(summary["unit"]["type"], ty, "{summary:#}");
}

#[test]
fn unit_nginx_serves_its_default_page() {
    const NAME: &str = "unit_nginx_serves_its_default_page";
    if !require_root(NAME) || !require_server(NAME, "/usr/sbin/nginx", "nginx") {
        return;
    }
    let _ports = default_ports();
    assert_port_free(80);
    // The default page is read only when it is asked for: without a
    // request nginx starts from the jail and answers 404. `--unit`'s
    // default exercise asks port 80 for it.
    let mut j = jail_unit(NAME, "nginx", "nginx", &[]);
    expect_unit(&j.summary, "nginx.service", "forking");
    assert_eq!(
        j.manifest.programs[0].command.exercises,
        [jailtrace_manifest::Exercise::Listening("/".into())]
    );
    let program = &j.manifest.programs[0];
    assert_eq!(
        program.unit.as_ref().map(|u| u.name.as_str()),
        Some("nginx.service")
    );
    assert_eq!(program.command.ready, ["exit", "pidfile:/run/nginx.pid"]);
    // The ExecStartPre= config test runs in the jail before nginx, as
    // systemd runs it in the service's root, and passes there.
    let pre = j.summary["unit"]["not_honoured"].as_array().unwrap();
    assert!(!pre.iter().any(|n| n["key"] == "ExecStartPre"), "{pre:?}");
    let before = &program.command.before;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(
        before[0]
            .argv
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "/usr/sbin/nginx",
            "-t",
            "-q",
            "-g",
            "daemon on; master_process on;"
        ]
    );
    let test = Command::new("/usr/sbin/chroot")
        .arg(&j.root)
        .args([
            "/usr/sbin/nginx",
            "-t",
            "-q",
            "-g",
            "daemon on; master_process on;",
        ])
        .output()
        .unwrap();
    assert!(test.status.success(), "{test:?}");
    let started = j.start();
    let finished: Finished = started.wait(Duration::from_secs(20));
    finished.assert_success();
    // Debian's default site: /var/www/html's index (Apache's page when
    // apache2 is installed too, else nginx's).
    let page = ask(
        80,
        b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n",
        "</html>",
        Duration::from_secs(10),
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("nginx") || page.contains("Debian Default Page"),
        "{page}"
    );
    let _ = &j.jail;
}

#[test]
fn unit_dnsmasq_answers_a_query_over_tcp() {
    const NAME: &str = "unit_dnsmasq_answers_a_query_over_tcp";
    if !require_root(NAME) || !require_server(NAME, "/usr/sbin/dnsmasq", "dnsmasq") {
        return;
    }
    let _ports = default_ports();
    assert_port_free(53);
    let mut j = jail_unit(NAME, "dnsmasq", "dnsmasq", &[]);
    expect_unit(&j.summary, "dnsmasq.service", "forking");
    // The default exercise sends `GET /` to port 53, which DNS over TCP
    // reads as the length of a query still to come: dnsmasq sits still
    // and is not waited for (it was, 15 s in each run).
    let exercises = j.summary["exercises"].as_array().unwrap();
    assert!(
        exercises.iter().any(|e| e["status"]
            .as_str()
            .is_some_and(|s| s.contains("127.0.0.1:53 gave no answer: it sat still"))),
        "{exercises:?}"
    );
    let started = j.start();
    let finished: Finished = started.wait(Duration::from_secs(20));
    finished.assert_success();
    // `localhost` from the jail's /etc/hosts, asked over TCP.
    let mut query = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x09localhost\x00\x00\x01\x00\x01");
    let mut request = u16::try_from(query.len()).unwrap().to_be_bytes().to_vec();
    request.extend_from_slice(&query);
    let answer = ask_bytes(53, &request, Duration::from_secs(10));
    // The header's answer count is 1 or more, and the answer is 127.0.0.1.
    assert!(answer.len() > 14, "{answer:?}");
    assert_eq!(&answer[2..4], &[0x12, 0x34], "{answer:?}");
    assert!(
        u16::from_be_bytes([answer[8], answer[9]]) >= 1,
        "{answer:?}"
    );
    assert!(answer.ends_with(&[0, 4, 127, 0, 0, 1]), "{answer:?}");
    let _ = &j.jail;
}

#[test]
fn unit_redis_server_answers_ping() {
    const NAME: &str = "unit_redis_server_answers_ping";
    if !require_root(NAME) || !require_server(NAME, "/usr/bin/redis-server", "redis-server") {
        return;
    }
    let _ports = default_ports();
    assert_port_free(6379);
    let mut j = jail_unit(NAME, "redis-server", "redis-server", &[]);
    expect_unit(&j.summary, "redis-server.service", "notify");
    let c = &j.manifest.programs[0].command;
    assert_eq!(c.ready, ["notify"]);
    assert_eq!(c.user.as_deref(), Some("redis"));
    // RuntimeDirectory=redis with RuntimeDirectoryMode=2755, the service's.
    let redis = nix::unistd::User::from_name("redis").unwrap().unwrap();
    assert_eq!(
        j.requested_dir("/run/redis"),
        ("2755".to_string(), redis.uid.as_raw())
    );
    let running = j.start();
    let pong = ask(6379, b"PING\r\n", "+PONG", Duration::from_secs(15));
    assert!(pong.contains("+PONG"), "{pong}");
    drop(running.wait(Duration::ZERO));
    assert_unit_dropin_verifies(&j, "redis-server.service");
}

/// The systemd export of a jail made with `--unit`, installed as a drop-in
/// of a copy of the host's unit: `systemd-analyze verify` accepts the unit
/// with it, and the drop-in puts the service in the jail's root.
fn assert_unit_dropin_verifies(j: &UnitJail, unit: &str) {
    let manifest = PathBuf::from(format!("{}.json", j.root.display()));
    let export = j.jail.jailtrace(
        &[
            "export",
            "--manifest",
            manifest.to_str().unwrap(),
            "--format",
            "systemd",
        ],
        &[],
    );
    export.assert_success();
    let dropin = export.stdout_text();
    assert!(
        dropin.contains(&format!("RootDirectory={}\n", j.root.display())),
        "{dropin}"
    );
    let units = j.jail.join("units");
    let dropins = units.join(format!("{unit}.d"));
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::copy(
        Path::new("/lib/systemd/system").join(unit),
        units.join(unit),
    )
    .unwrap();
    std::fs::write(dropins.join("jailtrace.conf"), &dropin).unwrap();
    let verify = crate::export::systemd_analyze(&units, &["verify", unit]);
    verify.assert_success();
}

#[test]
fn unit_mariadb_answers_a_query_over_its_socket() {
    const NAME: &str = "unit_mariadb_answers_a_query_over_its_socket";
    if !require_root(NAME)
        || !require_server(NAME, "/usr/sbin/mariadbd", "mariadb-server")
        || !require_server(NAME, "/usr/bin/mariadb", "mariadb-client")
    {
        return;
    }
    // Debian's package made the data directory; the jail gets copies of
    // what the server reads there.
    assert!(
        Path::new("/var/lib/mysql/mysql").is_dir(),
        "/var/lib/mysql holds no database"
    );
    let _ports = default_ports();
    assert_port_free(3306);
    let mut j = jail_unit(NAME, "mariadb", "mariadb", &[]);
    expect_unit(&j.summary, "mariadb.service", "notify");
    let c = &j.manifest.programs[0].command;
    assert_eq!(
        (c.user.as_deref(), c.ready.as_slice()),
        (Some("mysql"), &["notify".to_string()][..])
    );
    assert_eq!(c.argv[0].to_string(), "/bin/sh");
    let running = j.start();
    let socket = j.root.join("run/mysqld/mysqld.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let out = Command::new("/usr/bin/mariadb")
            .arg(format!("--socket={}", socket.display()))
            .args(["-N", "-e", "SELECT 6*7"])
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no answer over {}: {}",
            socket.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(answer, "42");
    drop(running.wait(Duration::ZERO));
}

#[test]
fn unit_errors_are_clear() {
    const NAME: &str = "unit_errors_are_clear";
    if !require_root(NAME) {
        return;
    }
    let jail = Jail::new("unit-errors");
    let error = |args: &[&str]| {
        let f = jail.jailtrace(args, &[]);
        assert_eq!(f.status.code(), Some(1), "{}", f.report());
        String::from_utf8_lossy(&f.stderr).into_owned()
    };
    let e = error(&["run", "--unit", "no-such-unit-jt"]);
    assert!(e.contains("no unit no-such-unit-jt.service"), "{e}");
    let e = error(&["run", "--unit", "ssh.socket"]);
    assert!(e.contains("not a service unit"), "{e}");
    let dir = jail.join("units");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("empty.service"), "[Service]\nType=simple\n").unwrap();
    std::fs::write(
        dir.join("bus.service"),
        "[Service]\nType=dbus\nExecStart=/bin/true\n",
    )
    .unwrap();
    let e = error(&[
        "run",
        "--unit",
        &dir.join("empty.service").to_string_lossy(),
    ]);
    assert!(e.contains("has no ExecStart="), "{e}");
    let e = error(&["run", "--unit", &dir.join("bus.service").to_string_lossy()]);
    assert!(e.contains("Type=dbus"), "{e}");
}

#[test]
fn unit_mosquitto_makes_its_directories_before_it_starts() {
    const NAME: &str = "unit_mosquitto_makes_its_directories_before_it_starts";
    if !require_root(NAME) || !require_server(NAME, "/usr/sbin/mosquitto", "mosquitto") {
        return;
    }
    let _ports = default_ports();
    assert_port_free(1883);
    // Its unit makes /run/mosquitto and /var/log/mosquitto with
    // ExecStartPre=/bin/mkdir and /bin/chown: without them it cannot
    // write its pid file.
    let mut j = jail_unit(NAME, "mosquitto", "mosquitto", &[]);
    expect_unit(&j.summary, "mosquitto.service", "notify");
    let before: Vec<String> = j.manifest.programs[0]
        .command
        .before
        .iter()
        .map(|b| {
            b.argv
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert!(
        before.contains(&"/bin/mkdir -m 740 -p /run/mosquitto".to_string())
            && before.contains(&"/bin/chown mosquitto /run/mosquitto".to_string()),
        "{before:?}"
    );
    let mosquitto = nix::unistd::User::from_name("mosquitto").unwrap().unwrap();
    let run_dir = std::fs::metadata(j.root.join("run/mosquitto")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&run_dir),
        mosquitto.uid.as_raw()
    );
    let running = j.start();
    // MQTT 3.1.1 CONNECT (clean session, client id "t"): CONNACK, accepted.
    let connect = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01t";
    let answer = ask_bytes(1883, connect, Duration::from_secs(15));
    assert_eq!(answer, [0x20, 0x02, 0x00, 0x00], "{answer:?}");
    drop(running.wait(Duration::ZERO));
}

/// Writes `DIR/NAME.service` with `service` (lines of its `[Service]`
/// section) and `ExecStart=start`; returns its path.
fn unit_file(dir: &Path, name: &str, service: &str, start: &str) -> String {
    let path = dir.join(format!("{name}.service"));
    std::fs::write(&path, format!("[Service]\n{service}ExecStart={start}\n")).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn exec_start_pre_runs_in_the_jail_before_the_program() {
    const NAME: &str = "exec_start_pre_runs_in_the_jail_before_the_program";
    if !require_root(NAME) {
        return;
    }
    // A unit of our own: what its ExecStartPre= lines make, the program
    // reads; systemd would run them in the service's root.
    let jail = Jail::new("exec-start-pre");
    let dir = jail.join("units");
    std::fs::create_dir(&dir).unwrap();
    let unit = |name: &str, pre: &str| {
        unit_file(
            &dir,
            name,
            &format!("Type=oneshot\n{pre}"),
            "/bin/cat /var/lib/jt-pre/file",
        )
    };
    let made = unit(
        "made",
        "ExecStartPre=-/bin/false\n\
         ExecStartPre=/bin/mkdir -p -m 750 /var/lib/jt-pre\n\
         ExecStartPre=/bin/sh -c 'echo made by ExecStartPre > /var/lib/jt-pre/file'\n",
    );
    let root = jail.join("made.jail");
    let manifest = jail.join("made.json");
    let args = [
        "run",
        "--unit",
        &made,
        "--root",
        root.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ];
    let finished = jail.jailtrace(&args, &[]);
    finished.assert_success();
    let m = Manifest::read(&manifest).unwrap_or_else(|e| panic!("{e}: {}", finished.report()));
    let before: Vec<(String, bool)> = m.programs[0]
        .command
        .before
        .iter()
        .map(|b| (b.argv[0].to_string(), b.may_fail))
        .collect();
    assert_eq!(
        before,
        [
            ("/bin/false".to_string(), true),
            ("/bin/mkdir".to_string(), false),
            ("/bin/sh".to_string(), false)
        ]
    );
    // What they ran is in the jail, what they made is, and the program,
    // run again under plain chroot, reads it.
    for path in ["/usr/bin/mkdir", "/usr/bin/dash", "/var/lib/jt-pre/file"] {
        assert!(
            m.entry(Path::new(path)).is_some(),
            "{path} not in the manifest"
        );
    }
    let mode = std::fs::metadata(root.join("var/lib/jt-pre"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o7777,
        0o750
    );
    let out = Command::new("/usr/sbin/chroot")
        .arg(&root)
        .args(["/bin/cat", "/var/lib/jt-pre/file"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "made by ExecStartPre\n"
    );

    // A program of the jail run with another (`--with`) runs its own
    // ExecStartPre= lines first in the other's runs too: this one must
    // remove the lock its program leaves, or the program refuses to start.
    let companion = unit_file(
        &dir,
        "locked",
        "Type=simple\n\
         ExecStartPre=/bin/rm -f /var/lib/jt-pre/lock\n",
        "/bin/sh -c 'test ! -e /var/lib/jt-pre/lock && touch /var/lib/jt-pre/lock && exec sleep 100'",
    );
    let jailtrace_in_root = |args: &[&str]| {
        let mut all = vec![
            "run",
            "--root",
            root.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        jail.jailtrace(&all, &[])
    };
    jailtrace_in_root(&["--unit", &companion]).assert_success();
    let with = jailtrace_in_root(&["--with", "locked", "--", "/bin/cat", "/var/lib/jt-pre/file"]);
    with.assert_success();

    // One that fails, without `-`, fails the run and is named.
    let fails = unit("fails", "ExecStartPre=/bin/false\n");
    let finished = jail.jailtrace(
        &[
            "run",
            "--unit",
            &fails,
            "--root",
            jail.join("fails.jail").to_str().unwrap(),
            "--manifest",
            jail.join("fails.json").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(finished.status.code(), Some(3), "{}", finished.report());
    let stderr = String::from_utf8_lossy(&finished.stderr);
    assert!(
        stderr.contains(
            "`/bin/false`, run before the program (ExecStartPre=), ended with exit code 1"
        ),
        "{stderr}"
    );
}

#[test]
fn unit_apache2_serves_its_default_page() {
    const NAME: &str = "unit_apache2_serves_its_default_page";
    if !require_root(NAME) || !require_server(NAME, "/usr/sbin/apache2", "apache2") {
        return;
    }
    let _ports = default_ports();
    assert_port_free(80);
    // Type=forking through `apachectl start`, a shell script that runs
    // /etc/apache2/envvars and starts apache2, which daemonizes.
    let mut j = jail_unit(NAME, "apache2", "apache2", &[]);
    expect_unit(&j.summary, "apache2.service", "forking");
    let c = &j.manifest.programs[0].command;
    assert_eq!(c.argv[0].to_string(), "/usr/sbin/apachectl");
    assert_eq!(c.ready, ["exit"]);
    let finished: Finished = j.start().wait(Duration::from_secs(20));
    finished.assert_success();
    let page = ask(
        80,
        b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n",
        "</html>",
        Duration::from_secs(10),
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Debian Default Page"), "{page}");
}

/// A drop-in that makes `ssh.service` listen on a port of the test's
/// choosing; removed when dropped.
struct SshPortDropIn(PathBuf);

impl SshPortDropIn {
    const DIR: &'static str = "/etc/systemd/system/ssh.service.d";

    fn new(port: u16) -> SshPortDropIn {
        let dir = Path::new(Self::DIR);
        let made_dir = !dir.exists();
        std::fs::create_dir_all(dir).unwrap();
        let file = dir.join("jailtrace-test-port.conf");
        std::fs::write(
            &file,
            format!("[Service]\nExecStart=\nExecStart=/usr/sbin/sshd -D -p {port} $SSHD_OPTS\n"),
        )
        .unwrap();
        SshPortDropIn(if made_dir { dir.to_path_buf() } else { file })
    }
}

impl Drop for SshPortDropIn {
    fn drop(&mut self) {
        let _ = if self.0.is_dir() {
            std::fs::remove_dir_all(&self.0)
        } else {
            std::fs::remove_file(&self.0)
        };
    }
}

#[test]
fn unit_ssh_passes_its_config_test_and_answers_with_its_banner() {
    const NAME: &str = "unit_ssh_passes_its_config_test_and_answers_with_its_banner";
    if !require_root(NAME) || !require_server(NAME, "/usr/sbin/sshd", "openssh-server") {
        return;
    }
    // The drop-in changes the host's view of ssh.service while it exists.
    let _ports = default_ports();
    let port = crate::net::free_port();
    let _dropin = SshPortDropIn::new(port);
    // The host keys stay denied unless allowed.
    let mut j = jail_unit(NAME, "ssh", "ssh", &["--allow", "^/etc/ssh/ssh_host_"]);
    expect_unit(&j.summary, "ssh.service", "notify");
    let program = &j.manifest.programs[0];
    let files: Vec<String> = program
        .unit
        .as_ref()
        .unwrap()
        .files
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("jailtrace-test-port.conf")),
        "{files:?}"
    );
    let c = &program.command;
    assert_eq!(c.ready, ["notify"]);
    let argv: Vec<String> = c.argv.iter().map(ToString::to_string).collect();
    assert_eq!(argv, ["/usr/sbin/sshd", "-D", "-p", &port.to_string()]);
    // RuntimeDirectory=sshd, mode 0755, root's.
    assert_eq!(j.requested_dir("/run/sshd"), ("0755".to_string(), 0));
    // The ExecStartPre= config test, not run by jailtrace, passes in the jail.
    let test = Command::new("/usr/sbin/chroot")
        .arg(&j.root)
        .args(["/usr/sbin/sshd", "-t"])
        .env_clear()
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "sshd -t in the jail: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    let running = j.start();
    let banner = ask(port, b"", "SSH-2.0-", Duration::from_secs(15));
    assert!(banner.starts_with("SSH-2.0-OpenSSH"), "{banner}");
    drop(running.wait(Duration::ZERO));
}

#[test]
fn unit_tomcat10_serves_its_default_page() {
    const NAME: &str = "unit_tomcat10_serves_its_default_page";
    if !require_root(NAME)
        || !require_server(NAME, "/usr/share/tomcat10/bin/catalina.sh", "tomcat10")
    {
        return;
    }
    let _ports = default_ports();
    assert_port_free(8080);
    // Type=simple, User=tomcat, four Environment= lines, CacheDirectory=.
    let mut j = jail_unit(NAME, "tomcat10", "tomcat10", &[]);
    expect_unit(&j.summary, "tomcat10.service", "simple");
    let c = &j.manifest.programs[0].command;
    assert_eq!(c.user.as_deref(), Some("tomcat"));
    let env: Vec<String> = c.env.iter().map(ToString::to_string).collect();
    for set in [
        "CATALINA_HOME=/usr/share/tomcat10",
        "CATALINA_BASE=/var/lib/tomcat10",
        "CATALINA_TMPDIR=/tmp",
        "JAVA_OPTS=-Djava.awt.headless=true",
    ] {
        assert!(env.iter().any(|e| e == set), "{set} not in {env:?}");
    }
    let tomcat = nix::unistd::User::from_name("tomcat").unwrap().unwrap();
    assert_eq!(
        j.requested_dir("/var/cache/tomcat10"),
        ("0750".to_string(), tomcat.uid.as_raw())
    );
    // The welcome page is read only on request: the default exercise of
    // the listening ports asked for it.
    let running = j.start();
    let page = ask(
        8080,
        b"GET / HTTP/1.0\r\n\r\n",
        "</html>",
        Duration::from_secs(60),
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("It works"), "{page}");
    drop(running.wait(Duration::ZERO));
}

#[test]
fn unit_supplementary_groups_and_umask_are_applied_and_recorded() {
    const NAME: &str = "unit_supplementary_groups_and_umask_are_applied_and_recorded";
    if !require_root(NAME) {
        return;
    }
    let jail = Jail::new("unit-groups-umask");
    let unit = jail.join("groups.service");
    std::fs::write(
        &unit,
        "[Service]\nType=oneshot\nUser=nobody\nSupplementaryGroups=adm\nUMask=0027\n\
         ExecStart=/bin/sh -c 'echo groups $(id -G); echo umask $(umask)'\n",
    )
    .unwrap();
    let f = jail.jailtrace(&["run", "--unit", &unit.to_string_lossy(), "--json"], &[]);
    assert!(f.status.success(), "{}", f.report());
    // With --json the program's stdout goes to stderr.
    let said = String::from_utf8_lossy(&f.stderr);
    assert!(said.contains("umask 0027"), "{said}");
    let adm = nix::unistd::Group::from_name("adm").unwrap().unwrap().gid;
    let groups = said
        .lines()
        .find_map(|l| l.strip_prefix("groups "))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(groups.split(' ').any(|g| g == adm.to_string()), "{groups}");
    let manifest = Manifest::read(&jail.join("groups.jail.json")).unwrap();
    let c = &manifest.programs[0].command;
    assert_eq!(c.supplementary_groups, ["adm"]);
    assert_eq!(c.umask.as_deref(), Some("0027"));
    // update --run starts it again the same way, from the manifest.
    let u = jail.jailtrace(&["update", "--run", "--manifest", "groups.jail.json"], &[]);
    assert!(u.status.success(), "{}", u.report());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&u.stdout),
        String::from_utf8_lossy(&u.stderr)
    );
    assert!(said.contains("umask 0027"), "{said}");
    let again = said.lines().find_map(|l| l.strip_prefix("groups "));
    assert_eq!(again, Some(groups), "{said}");
}
