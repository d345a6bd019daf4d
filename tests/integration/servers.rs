//! Acceptance tests with real servers: Debian's nginx and Apache, jailed with
//! `jailtrace run --ready http://…` in the foreground and daemonizing, then
//! started again under a plain `chroot(8)` into the root jailtrace built and
//! fetched over loopback; plus a service user (`user www-data;`, `--user`,
//! nginx run as www-data with host-style runtime directories),
//! `/proc` and `/dev` in the manifest, and a port that is already taken.
//!
//! Each test has its own [`Jail`] directory `T` (mode 0755, so workers that
//! dropped to `nobody` or `www-data` can read `T/www`), its own free loopback
//! port and a [`ServerGuard`] that kills every process chrooted below `T` or
//! naming `T` when the test ends, however it ends. A missing nginx or
//! apache2 skips loudly, or fails with `JAILTRACE_REQUIRE_SERVERS=1`.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jailtrace_manifest::{Cause, EntryKind, Manifest, RunRole, RunStatus, SocketFamily, SocketOp};
use nix::unistd::{Group, Pid, User};
use serde_json::Value;

use crate::checks::check_jail;
use crate::cmd::{self, assert_same_stdout, chroot_output_with_mounts, host_output};
use crate::jail::{exit, Jail, Outcome};
use crate::net::{
    free_port, http_get_retry, require_server, run_chroot, sigterm, spawn_chroot, HostDir,
    ServerGuard, SERVE_WITHIN, STOP_WITHIN,
};
use crate::resolve::{inside, resolve_in};
use crate::util::{self, require_root, BASE_ENV, PATH};

pub(crate) const NGINX: &str = "/usr/sbin/nginx";
pub(crate) const APACHE: &str = "/usr/sbin/apache2";
pub(crate) const ENVVARS: &str = "/etc/apache2/envvars";

/// What Debian's `/etc/apache2/envvars` exports (with `SUFFIX` empty), plus
/// `PATH`: the environment for Apache under plain chroot. Written out here
/// rather than parsed, so the test does not share jailtrace's parser.
pub(crate) const APACHE_ENV: &[(&str, &str)] = &[
    ("PATH", PATH),
    ("APACHE_RUN_USER", "www-data"),
    ("APACHE_RUN_GROUP", "www-data"),
    ("APACHE_PID_FILE", "/var/run/apache2/apache2.pid"),
    ("APACHE_RUN_DIR", "/var/run/apache2"),
    ("APACHE_LOCK_DIR", "/var/lock/apache2"),
    ("APACHE_LOG_DIR", "/var/log/apache2"),
    ("LANG", "C"),
];

/// Bounds one `jailtrace run` of a server that never becomes ready.
pub(crate) const RUN_TIMEOUT: &str = "60s";

/// One test's site: a jail directory `T` with `T/www/index.html`, a port,
/// and the guard (declared first, so it is dropped before the directory).
pub(crate) struct Site {
    pub(crate) guard: ServerGuard,
    pub(crate) jail: Jail,
    pub(crate) port: u16,
    page: Vec<u8>,
}

impl Site {
    /// A fresh site on a free port (see [`free_port`]).
    pub(crate) fn new(name: &str) -> Self {
        Self::on_port(name, free_port())
    }

    fn on_port(name: &str, port: u16) -> Self {
        let jail = Jail::new(name);
        fs::set_permissions(&jail.path, fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the test directory");
        let www = jail.join("www");
        fs::create_dir(&www).expect("create T/www");
        fs::set_permissions(&www, fs::Permissions::from_mode(0o755)).expect("chmod T/www");
        let page = format!("jailtrace {name} page {}\n", util::unique()).into_bytes();
        fs::write(www.join("index.html"), &page).expect("write T/www/index.html");
        fs::set_permissions(www.join("index.html"), fs::Permissions::from_mode(0o644))
            .expect("chmod index.html");
        Self {
            guard: ServerGuard::new(&[&jail.path], &[&jail.path]),
            jail,
            port,
            page,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// `T/rel` as text (test directories are UTF-8).
    pub(crate) fn path(&self, rel: &str) -> String {
        self.jail
            .join(rel)
            .to_str()
            .expect("test directories are UTF-8")
            .to_owned()
    }

    /// Writes `T/nginx.conf`: `main` (top-level directives), one worker, and
    /// a server on 127.0.0.1:PORT with root `T/www`. Returns its path.
    fn nginx_conf(&self, main: &str) -> String {
        let conf = format!(
            "{main}\nworker_processes 1;\nevents {{}}\nhttp {{\n    include /etc/nginx/mime.types;\n    \
             access_log off;\n    server {{\n        listen 127.0.0.1:{};\n        root {};\n    }}\n}}\n",
            self.port,
            self.path("www"),
        );
        self.write("nginx.conf", &conf)
    }

    /// Writes `T/apache2.conf` in Debian's layout, listening on 127.0.0.1:PORT.
    pub(crate) fn apache_conf(&self) -> String {
        let www = self.path("www");
        let conf = format!(
            "ServerRoot /etc/apache2\n\
             Mutex file:${{APACHE_LOCK_DIR}} default\n\
             PidFile ${{APACHE_PID_FILE}}\n\
             User ${{APACHE_RUN_USER}}\n\
             Group ${{APACHE_RUN_GROUP}}\n\
             ErrorLog /dev/stderr\n\
             Include /etc/apache2/mods-enabled/*.load\n\
             Include /etc/apache2/mods-enabled/*.conf\n\
             IncludeOptional /etc/apache2/conf-enabled/*.conf\n\
             Listen 127.0.0.1:{}\n\
             ServerName localhost\n\
             DocumentRoot {www}\n\
             <Directory {www}>\n    Require all granted\n</Directory>\n",
            self.port
        );
        self.write("apache2.conf", &conf)
    }

    pub(crate) fn write(&self, rel: &str, text: &str) -> String {
        let path = self.path(rel);
        fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        path
    }

    /// `jailtrace run --ready URL --timeout 60s EXTRA -- ARGV` into `T/root`.
    pub(crate) fn jail_server(
        &self,
        argv: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Outcome {
        let url = self.url();
        let mut args = vec!["--ready", &url, "--timeout", RUN_TIMEOUT];
        args.extend_from_slice(extra);
        self.jail.run(argv, &args, env)
    }

    /// GETs `/` (retrying while the server comes up) and asserts a 200 with
    /// exactly `T/www/index.html` as the body.
    pub(crate) fn assert_serves_page(&self, context: &str) {
        let response = http_get_retry(self.port, "/", SERVE_WITHIN)
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(
            response.status,
            200,
            "{context}: GET {} answered\n{}",
            self.url(),
            response.head
        );
        assert!(
            response.body == self.page,
            "{context}: GET {} returned {:?}, not the page {:?}",
            self.url(),
            String::from_utf8_lossy(&response.body),
            String::from_utf8_lossy(&self.page)
        );
    }
}

/// Asserts that a `jailtrace run --ready …` of a server succeeded: exit 0,
/// `ok`, nothing missing, at least a discover and a final verify run, every
/// run ready and stopped by jailtrace (not failed), no mount and no process
/// of the test left. Returns the manifest.
pub(crate) fn expect_ready(site: &Site, outcome: &Outcome) -> Manifest {
    let report = outcome.finished.report();
    outcome.finished.assert_no_panic().assert_code(exit::OK);
    let summary = outcome.summary();
    assert!(summary.ok, "exit 0 but ok=false\n{report}");
    assert!(
        summary.missing.is_empty(),
        "missing: {:?}\n{report}",
        summary.missing
    );
    let manifest = outcome.manifest();
    assert!(
        manifest.runs.len() >= 2,
        "expected a discover and a verify run, got {:?}\n{report}",
        manifest.runs
    );
    assert_eq!(
        manifest.runs.last().map(|r| r.role),
        Some(RunRole::Verify),
        "the last run must be the verify run\n{report}"
    );
    for run in &manifest.runs {
        assert!(run.ready, "run {} never became ready\n{report}", run.index);
        let stopped = match &run.status {
            RunStatus::Exited { code } => *code == 0,
            RunStatus::Signaled { signal, .. } => signal == "SIGTERM" || signal == "SIGKILL",
            RunStatus::Killed { .. } => true,
        };
        assert!(
            stopped,
            "run {} ended with {:?}, not by being stopped once ready\n{report}",
            run.index, run.status
        );
    }
    let mounts = util::mounts_under(&site.jail.path);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}\n{report}");
    site.guard
        .assert_none_left(Duration::from_secs(2), "after jailtrace returned");
    manifest
}

/// Asserts that the manifest records an inet bind and listen on 127.0.0.1:PORT.
pub(crate) fn assert_listens(manifest: &Manifest, port: u16) {
    let address = format!("127.0.0.1:{port}");
    for op in [SocketOp::Bind, SocketOp::Listen] {
        assert!(
            manifest
                .sockets
                .iter()
                .any(|s| s.family == SocketFamily::Inet && s.op == op && s.address == address),
            "the manifest has no inet {op:?} of {address}: {:#?}",
            manifest.sockets
        );
    }
}

/// Starts `argv` (a server that stays in the foreground) under plain chroot
/// with the manifest's mounts, fetches the page, stops it with SIGTERM and
/// asserts it exited 0 and left nothing running.
pub(crate) fn serve_foreground(
    site: &mut Site,
    manifest: &Manifest,
    argv: &[&str],
    env: &[(&str, &str)],
) {
    site.guard.mount(&site.jail.root, manifest);
    let server = spawn_chroot(&site.jail.root, argv, env);
    if let Err(e) = http_get_retry(site.port, "/", SERVE_WITHIN) {
        panic!(
            "under plain chroot: {e}\n{}",
            server.wait(Duration::ZERO).report()
        );
    }
    site.assert_serves_page("under plain chroot");
    sigterm(server.pid());
    let stopped = server.wait(STOP_WITHIN);
    assert!(
        !stopped.timed_out && stopped.status.success(),
        "the server did not exit 0 on SIGTERM\n{}",
        stopped.report()
    );
    site.guard.assert_none_left(STOP_WITHIN, "after SIGTERM");
    site.guard.unmount_all();
}

/// Starts a daemonizing `argv` under plain chroot with the manifest's
/// mounts (the command must return 0), fetches the page, then sends SIGTERM
/// to the pid in `pid_file` (a path inside the jail) and asserts that
/// nothing is left.
fn serve_daemon(
    site: &mut Site,
    manifest: &Manifest,
    argv: &[&str],
    env: &[(&str, &str)],
    pid_file: &str,
) {
    site.guard.mount(&site.jail.root, manifest);
    let started = run_chroot(&site.jail.root, argv, env);
    started.assert_success();
    site.assert_serves_page("daemon under plain chroot");
    // Resolved the way the jail sees it: /var/run -> /run is an absolute
    // link, which a host-side join would follow to the host's /run.
    let in_jail = resolve_in(&site.jail.root, Path::new(pid_file))
        .unwrap_or_else(|e| panic!("{pid_file} does not resolve in the root: {e}"));
    let pid_path = inside(&site.jail.root, &in_jail.target);
    let text = fs::read_to_string(&pid_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", pid_path.display()));
    let pid: i32 = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{} holds {text:?}: {e}", pid_path.display()));
    assert!(
        site.guard.processes().iter().any(|p| p.pid == pid),
        "the pid file's {pid} is not a process of this jail: {:#?}",
        site.guard.processes()
    );
    sigterm(Pid::from_raw(pid));
    site.guard
        .assert_none_left(STOP_WITHIN, "after SIGTERM to the daemon");
    site.guard.unmount_all();
}

#[test]
fn nginx_foreground_serves_from_jail() {
    const NAME: &str = "nginx_foreground_serves_from_jail";
    if !require_root(NAME) || !require_server(NAME, NGINX, "nginx") {
        return;
    }
    let mut site = Site::new("nginx-fg");
    let pid = site.path("nginx.pid");
    let conf = site.nginx_conf(&format!(
        "daemon off;\nmaster_process on;\nerror_log stderr;\npid {pid};"
    ));
    let argv = [NGINX, "-c", &conf];
    let outcome = site.jail_server(&argv, &[], BASE_ENV);
    let manifest = expect_ready(&site, &outcome);
    assert!(
        manifest.entry(Path::new(&conf)).is_some(),
        "the config {conf} is not in the manifest"
    );
    serve_foreground(&mut site, &manifest, &argv, BASE_ENV);
    assert_listens(&manifest, site.port);
}

#[test]
fn nginx_daemon_serves_from_jail() {
    const NAME: &str = "nginx_daemon_serves_from_jail";
    if !require_root(NAME) || !require_server(NAME, NGINX, "nginx") {
        return;
    }
    let mut site = Site::new("nginx-daemon");
    let pid = site.path("nginx.pid");
    let conf = site.nginx_conf(&format!(
        "master_process on;\nerror_log stderr;\npid {pid};"
    ));
    let argv = [NGINX, "-c", &conf];
    let outcome = site.jail_server(&argv, &[], BASE_ENV);
    let manifest = expect_ready(&site, &outcome);
    serve_daemon(&mut site, &manifest, &argv, BASE_ENV, &pid);
    assert_listens(&manifest, site.port);
}

/// Creates Apache's runtime directories on the host as `apache2ctl` does
/// before it starts Apache (they live on tmpfs and are gone after a boot),
/// so jailtrace has them to copy.
pub(crate) fn prepare_apache_host() {
    let www_data = User::from_name("www-data")
        .ok()
        .flatten()
        .expect("precondition: the host has a www-data user");
    fs::create_dir_all("/run/apache2").expect("mkdir -p /run/apache2");
    if !Path::new("/run/lock/apache2").is_dir() {
        fs::create_dir_all("/run/lock/apache2").expect("mkdir -p /run/lock/apache2");
        nix::unistd::chown("/run/lock/apache2", Some(www_data.uid), None)
            .expect("chown www-data /run/lock/apache2");
    }
}

#[test]
fn apache_foreground_serves_from_jail() {
    const NAME: &str = "apache_foreground_serves_from_jail";
    if !require_root(NAME) || !require_server(NAME, APACHE, "apache2") {
        return;
    }
    prepare_apache_host();
    let mut site = Site::new("apache-fg");
    let conf = site.apache_conf();
    let log = site.path("apache.out");
    let argv = [APACHE, "-f", &conf, "-DFOREGROUND"];
    let extra = [
        "--env-file",
        ENVVARS,
        "--ready",
        "log:resuming normal operations",
        "--log",
        &log,
    ];
    let outcome = site.jail_server(&argv, &extra, BASE_ENV);
    let manifest = expect_ready(&site, &outcome);
    let saved = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        saved.contains("resuming normal operations"),
        "--log {log} does not hold Apache's output: {saved:?}\n{}",
        outcome.finished.report()
    );
    serve_foreground(&mut site, &manifest, &argv, APACHE_ENV);
    assert_listens(&manifest, site.port);
}

#[test]
fn apache_daemon_serves_from_jail() {
    const NAME: &str = "apache_daemon_serves_from_jail";
    if !require_root(NAME) || !require_server(NAME, APACHE, "apache2") {
        return;
    }
    prepare_apache_host();
    let mut site = Site::new("apache-daemon");
    let conf = site.apache_conf();
    let argv = [APACHE, "-f", &conf];
    let outcome = site.jail_server(&argv, &["--env-file", ENVVARS], BASE_ENV);
    let manifest = expect_ready(&site, &outcome);
    serve_daemon(
        &mut site,
        &manifest,
        &argv,
        APACHE_ENV,
        "/var/run/apache2/apache2.pid",
    );
    assert_listens(&manifest, site.port);
}

#[test]
fn apache_config_test_in_jail() {
    const NAME: &str = "apache_config_test_in_jail";
    if !require_root(NAME) || !require_server(NAME, APACHE, "apache2") {
        return;
    }
    prepare_apache_host();
    let site = Site::new("apache-t");
    let conf = site.apache_conf();
    let argv = [APACHE, "-f", &conf, "-t"];
    let outcome = site.jail.run(&argv, &["--env-file", ENVVARS], BASE_ENV);
    let manifest = check_jail("apache-config-test", &site.jail, &outcome, &argv, BASE_ENV);
    let chrooted = chroot_output_with_mounts(&site.jail.root, &manifest, &argv, APACHE_ENV);
    chrooted.assert_success();
    assert!(
        chrooted.stderr_text().contains("Syntax OK"),
        "apache2 -t under plain chroot\n{}",
        chrooted.report()
    );
}

#[test]
fn nginx_master_drops_workers_to_www_data() {
    const NAME: &str = "nginx_master_drops_workers_to_www_data";
    if !require_root(NAME) || !require_server(NAME, NGINX, "nginx") {
        return;
    }
    let mut site = Site::new("nginx-user");
    let tag = format!("jailtrace-{}", util::unique());
    let log = format!("/var/log/nginx/{tag}.log");
    let pid = format!("/run/{tag}.pid");
    let conf = site.nginx_conf(&format!(
        "user www-data;\ndaemon off;\nmaster_process on;\nerror_log {log};\npid {pid};"
    ));
    let argv = [NGINX, "-c", &conf];
    let outcome = site.jail_server(&argv, &[], BASE_ENV);
    let manifest = expect_ready(&site, &outcome);
    let root = &site.jail.root;

    let host_dir =
        fs::metadata("/var/log/nginx").expect("precondition: the host has /var/log/nginx");
    let dir = fs::symlink_metadata(root.join("var/log/nginx"))
        .unwrap_or_else(|e| panic!("ROOT/var/log/nginx: {e}"));
    assert!(dir.is_dir(), "ROOT/var/log/nginx is not a directory");
    assert_eq!(
        (dir.mode() & 0o7777, dir.uid(), dir.gid()),
        (host_dir.mode() & 0o7777, host_dir.uid(), host_dir.gid()),
        "ROOT/var/log/nginx: mode and owner differ from the host's"
    );

    assert!(
        fs::symlink_metadata(&log).is_err(),
        "precondition: the host has no {log}"
    );
    assert!(
        fs::symlink_metadata(inside(root, Path::new(&log))).is_ok_and(|m| m.is_file()),
        "the error log {log} is not a file in the root"
    );
    for created in [&log, &pid] {
        let entry = manifest
            .entry(Path::new(created))
            .unwrap_or_else(|| panic!("the manifest does not list {created}"));
        assert_eq!(
            (entry.kind, entry.reason.cause),
            (EntryKind::File, Cause::Created),
            "{created}: kind and cause"
        );
        assert_eq!(
            entry.sha256, None,
            "{created}: a created file has no sha256"
        );
    }

    let passwd = fs::read_to_string(inside(root, Path::new("/etc/passwd")))
        .expect("ROOT/etc/passwd is readable");
    assert!(
        passwd.lines().any(|l| l.starts_with("www-data:")),
        "ROOT/etc/passwd has no www-data line:\n{passwd}"
    );

    // Under plain chroot: the workers run as www-data and serve the page.
    let www_data = User::from_name("www-data")
        .ok()
        .flatten()
        .expect("precondition: the host has a www-data user");
    site.guard.mount(root, &manifest);
    let server = spawn_chroot(root, &argv, BASE_ENV);
    site.assert_serves_page("under plain chroot");
    let workers: Vec<u32> = site
        .guard
        .processes()
        .iter()
        .filter(|p| p.cmdline.contains("worker process"))
        .filter_map(|p| fs::metadata(format!("/proc/{}", p.pid)).ok())
        .map(|m| m.uid())
        .collect();
    assert!(
        !workers.is_empty() && workers.iter().all(|&uid| uid == www_data.uid.as_raw()),
        "nginx workers should run as www-data (uid {}); their uids: {workers:?}",
        www_data.uid
    );
    sigterm(server.pid());
    let stopped = server.wait(STOP_WITHIN);
    assert!(!stopped.timed_out, "{}", stopped.report());
    site.guard.assert_none_left(STOP_WITHIN, "after SIGTERM");
    site.guard.unmount_all();
}

#[test]
fn user_option_runs_program_as_www_data() {
    const NAME: &str = "user_option_runs_program_as_www_data";
    if !require_root(NAME) {
        return;
    }
    let jail = Jail::new("user-id");
    let argv = ["/usr/bin/id", "-un"];
    let outcome = jail.run(&argv, &["--user", "www-data"], BASE_ENV);
    let manifest = check_jail("user-id", &jail, &outcome, &argv, BASE_ENV);
    assert_eq!(
        manifest.first_program().command.user.as_deref(),
        Some("www-data"),
        "manifest command.user"
    );
    assert!(
        outcome
            .finished
            .stderr_text()
            .lines()
            .any(|l| l == "www-data"),
        "the program under --user www-data should print www-data\n{}",
        outcome.finished.report()
    );
    let mut chroot = Command::new("/usr/sbin/chroot");
    chroot
        .arg("--userspec=www-data:www-data")
        .arg(&jail.root)
        .args(argv)
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .current_dir("/");
    let chrooted = cmd::run(chroot, cmd::PROGRAM_TIMEOUT);
    chrooted.assert_success();
    assert_eq!(
        chrooted.stdout_text(),
        "www-data\n",
        "{}",
        chrooted.report()
    );
}

/// The `nginx.conf` of a server that runs as a service user from the start:
/// no `user` directive (that needs root), the error log and pid file in the
/// runtime directories `log_dir` and `run_dir`, and every temp path under
/// `/tmp` (the compiled-in `/var/lib/nginx/*` is root's).
fn service_user_nginx_conf(site: &Site, tag: &str, log_dir: &Path, run_dir: &Path) -> String {
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\n\
         error_log {log}/error.log;\npid {run}/nginx.pid;\nevents {{}}\nhttp {{\n    \
         include /etc/nginx/mime.types;\n    access_log off;\n    \
         client_body_temp_path /tmp/{tag}-body;\n    proxy_temp_path /tmp/{tag}-proxy;\n    \
         fastcgi_temp_path /tmp/{tag}-fastcgi;\n    uwsgi_temp_path /tmp/{tag}-uwsgi;\n    \
         scgi_temp_path /tmp/{tag}-scgi;\n    server {{\n        listen 127.0.0.1:{port};\n        \
         root {www};\n    }}\n}}\n",
        log = log_dir.display(),
        run = run_dir.display(),
        port = site.port,
        www = site.path("www"),
    );
    site.write("nginx.conf", &conf)
}

#[test]
fn nginx_runs_as_www_data_with_user_option() {
    const NAME: &str = "nginx_runs_as_www_data_with_user_option";
    if !require_root(NAME) || !require_server(NAME, NGINX, "nginx") {
        return;
    }
    let www_data = User::from_name("www-data")
        .ok()
        .flatten()
        .expect("precondition: the host has a www-data user");
    let adm = Group::from_name("adm")
        .ok()
        .flatten()
        .expect("precondition: the host has an adm group");
    let tag = format!("jailtrace-{}", util::unique());
    // Host-style runtime directories, as the package's tmpfiles.d would make
    // them; declared before the site so its guard stops the servers first.
    let run_dir = HostDir::create(
        &Path::new("/run").join(&tag),
        0o755,
        www_data.uid,
        www_data.gid,
    );
    let log_dir = HostDir::create(
        &Path::new("/var/log").join(&tag),
        0o750,
        www_data.uid,
        adm.gid,
    );
    let log = log_dir.path().join("error.log");
    let pid = run_dir.path().join("nginx.pid");

    let mut site = Site::new("nginx-as-www-data");
    let conf = service_user_nginx_conf(&site, &tag, log_dir.path(), run_dir.path());
    let argv = [NGINX, "-c", &conf];
    let outcome = site.jail_server(&argv, &["--user", "www-data"], BASE_ENV);
    let manifest = expect_ready(&site, &outcome);
    let report = outcome.finished.report();
    let root = &site.jail.root;
    assert_eq!(
        manifest.first_program().command.user.as_deref(),
        Some("www-data"),
        "manifest command.user\n{report}"
    );

    for dir in [run_dir.path(), log_dir.path()] {
        let host = fs::metadata(dir).unwrap_or_else(|e| panic!("host {}: {e}", dir.display()));
        let jailed = fs::symlink_metadata(inside(root, dir))
            .unwrap_or_else(|e| panic!("ROOT{}: {e}\n{report}", dir.display()));
        assert!(jailed.is_dir(), "ROOT{} is not a directory", dir.display());
        assert_eq!(
            (jailed.mode() & 0o7777, jailed.uid(), jailed.gid()),
            (host.mode() & 0o7777, host.uid(), host.gid()),
            "ROOT{}: mode and owner differ from the host's\n{report}",
            dir.display()
        );
    }

    for created in [&log, &pid] {
        let entry = manifest.entry(created).unwrap_or_else(|| {
            panic!("the manifest does not list {}\n{report}", created.display())
        });
        assert_eq!(
            (entry.kind, entry.reason.cause),
            (EntryKind::File, Cause::Created),
            "{}: kind and cause",
            created.display()
        );
        assert_eq!(
            entry.sha256,
            None,
            "{}: a created file has no sha256",
            created.display()
        );
    }
    // nginx wrote its error log itself, so the file is www-data's: the
    // program really ran as www-data in the jail.
    let error_log = fs::symlink_metadata(inside(root, &log))
        .unwrap_or_else(|e| panic!("ROOT{}: {e}\n{report}", log.display()));
    assert_eq!(
        error_log.uid(),
        www_data.uid.as_raw(),
        "ROOT{} should be owned by www-data",
        log.display()
    );

    let passwd = fs::read_to_string(inside(root, Path::new("/etc/passwd")))
        .expect("ROOT/etc/passwd is readable");
    assert!(
        passwd.lines().any(|l| l.starts_with("www-data:")),
        "ROOT/etc/passwd has no www-data line:\n{passwd}"
    );

    // Under plain chroot as www-data, with the manifest's mounts.
    site.guard.mount(root, &manifest);
    let mut chroot = Command::new("/usr/sbin/chroot");
    chroot
        .arg("--userspec=www-data:www-data")
        .arg(root)
        .args(argv)
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .current_dir("/");
    let server = cmd::spawn(chroot);
    if let Err(e) = http_get_retry(site.port, "/", SERVE_WITHIN) {
        panic!(
            "under plain chroot as www-data: {e}\n{}",
            server.wait(Duration::ZERO).report()
        );
    }
    site.assert_serves_page("under plain chroot as www-data");
    let uids: Vec<u32> = site
        .guard
        .processes()
        .iter()
        .filter_map(|p| fs::metadata(format!("/proc/{}", p.pid)).ok())
        .map(|m| m.uid())
        .collect();
    assert!(
        !uids.is_empty() && uids.iter().all(|&uid| uid == www_data.uid.as_raw()),
        "every nginx process should run as www-data (uid {}); their uids: {uids:?}",
        www_data.uid
    );
    sigterm(server.pid());
    let stopped = server.wait(STOP_WITHIN);
    assert!(
        !stopped.timed_out && stopped.status.success(),
        "nginx as www-data did not exit 0 on SIGTERM\n{}",
        stopped.report()
    );
    site.guard.assert_none_left(STOP_WITHIN, "after SIGTERM");
    site.guard.unmount_all();
}

#[test]
fn proc_mount_and_device_nodes_are_recorded() {
    const NAME: &str = "proc_mount_and_device_nodes_are_recorded";
    if !require_root(NAME) {
        return;
    }
    let jail = Jail::new("proc-dev");
    let argv = [
        "/bin/sh",
        "-c",
        "head -c 16 /dev/urandom | od -An -tx1 >/dev/null; cat /proc/self/status | head -1; echo ok >/dev/null",
    ];
    let outcome = jail.run(&argv, &[], BASE_ENV);
    let manifest = check_jail("proc-dev", &jail, &outcome, &argv, BASE_ENV);
    assert!(
        manifest
            .mounts
            .iter()
            .any(|m| m.fstype == "proc" && m.path.as_path() == Path::new("/proc")),
        "no proc mount at /proc in the manifest: {:#?}",
        manifest.mounts
    );
    for device in ["/dev/urandom", "/dev/null"] {
        let host = fs::metadata(device).expect("precondition: the host has the device");
        let entry = manifest
            .entry(Path::new(device))
            .unwrap_or_else(|| panic!("the manifest does not list {device}"));
        assert_eq!(entry.kind, EntryKind::Device, "{device}: kind");
        let rdev = entry.rdev.unwrap_or_else(|| panic!("{device}: no rdev"));
        assert_eq!(
            (u64::from(rdev.major), u64::from(rdev.minor)),
            (
                nix::sys::stat::major(host.rdev()),
                nix::sys::stat::minor(host.rdev())
            ),
            "{device}: major/minor differ from the host's"
        );
        let in_root = fs::symlink_metadata(inside(&jail.root, Path::new(device)))
            .unwrap_or_else(|e| panic!("ROOT{device}: {e}"));
        assert!(
            in_root.file_type().is_char_device(),
            "ROOT{device} is not a character device"
        );
    }
    for tmp in ["tmp", "var/tmp"] {
        let meta =
            fs::symlink_metadata(jail.root.join(tmp)).unwrap_or_else(|e| panic!("ROOT/{tmp}: {e}"));
        assert!(
            meta.is_dir() && meta.mode() & 0o7777 == 0o1777,
            "ROOT/{tmp} must be a directory with mode 1777, is {:o}",
            meta.mode()
        );
    }
    let chrooted = chroot_output_with_mounts(&jail.root, &manifest, &argv, BASE_ENV);
    assert_same_stdout(&chrooted, &host_output(&argv, BASE_ENV));
}

/// Asserts that a jailtrace run failed with exit 3 because `127.0.0.1:PORT`
/// was in use: stderr names the port and says "in use", and the `--json`
/// summary's `port_conflicts` lists it.
fn assert_port_conflict(outcome: &Outcome, port: u16) {
    let stderr = outcome.expect_error(exit::NOT_STARTED);
    let report = outcome.finished.report();
    assert!(
        stderr.contains(&format!(":{port}")) && stderr.contains("in use"),
        "stderr should name port {port} and say it is in use\n{report}"
    );
    let summary: Value = serde_json::from_slice(&outcome.finished.stdout)
        .unwrap_or_else(|e| panic!("the --json summary is not JSON: {e}\n{report}"));
    let conflicts: Vec<&str> = summary
        .get("port_conflicts")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("the summary has no port_conflicts array\n{report}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        conflicts.contains(&format!("127.0.0.1:{port}").as_str()),
        "port_conflicts {conflicts:?} lacks 127.0.0.1:{port}\n{report}"
    );
}

pub(crate) fn foreground_nginx_conf(site: &Site) -> String {
    let pid = site.path("nginx.pid");
    site.nginx_conf(&format!(
        "daemon off;\nmaster_process on;\nerror_log stderr;\npid {pid};"
    ))
}

#[test]
fn nginx_port_held_by_test_is_named() {
    const NAME: &str = "nginx_port_held_by_test_is_named";
    if !require_root(NAME) || !require_server(NAME, NGINX, "nginx") {
        return;
    }
    let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let port = holder
        .local_addr()
        .expect("a bound listener has an address")
        .port();
    let site = Site::on_port("nginx-conflict", port);
    let conf = foreground_nginx_conf(&site);
    let outcome = site.jail_server(&[NGINX, "-c", &conf], &[], BASE_ENV);
    assert_port_conflict(&outcome, port);
    site.guard
        .assert_none_left(Duration::from_secs(2), "after jailtrace returned");
    drop(holder);
}

#[test]
fn nginx_port_held_by_running_jail_is_named() {
    const NAME: &str = "nginx_port_held_by_running_jail_is_named";
    if !require_root(NAME) || !require_server(NAME, NGINX, "nginx") {
        return;
    }
    let mut site = Site::new("nginx-conflict-jail");
    let conf = foreground_nginx_conf(&site);
    let argv = [NGINX, "-c", &conf];
    let manifest = expect_ready(&site, &site.jail_server(&argv, &[], BASE_ENV));
    site.guard.mount(&site.jail.root, &manifest);
    let first = spawn_chroot(&site.jail.root, &argv, BASE_ENV);
    site.assert_serves_page("the first nginx under plain chroot");

    let url = site.url();
    let second_root: PathBuf = site.jail.join("root2");
    let outcome = site.jail.run_at(
        &second_root,
        &site.jail.join("m2.json"),
        &argv,
        &["--ready", &url, "--timeout", RUN_TIMEOUT],
        BASE_ENV,
    );
    assert_port_conflict(&outcome, site.port);
    let second = ServerGuard::new(&[&second_root], &[]);
    second.assert_none_left(
        Duration::from_secs(2),
        "after the second jailtrace run returned",
    );
    site.assert_serves_page("the first nginx after the second jailtrace run");

    sigterm(first.pid());
    let stopped = first.wait(STOP_WITHIN);
    assert!(!stopped.timed_out, "{}", stopped.report());
    site.guard.assert_none_left(STOP_WITHIN, "after SIGTERM");
    site.guard.unmount_all();
}
