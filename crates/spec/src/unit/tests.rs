use std::fs;
use std::path::Path;

use super::*;

/// A search path of two directories (`etc`, `lib`) in a temporary dir.
struct Dirs {
    _tmp: tempfile::TempDir,
    etc: PathBuf,
    lib: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let etc = tmp.path().join("etc");
        let lib = tmp.path().join("lib");
        fs::create_dir_all(&etc).unwrap();
        fs::create_dir_all(&lib).unwrap();
        Dirs {
            _tmp: tmp,
            etc,
            lib,
        }
    }

    fn write(&self, dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn find(&self, name: &str) -> Result<Unit, UnitError> {
        Unit::find_in(name, &[&self.etc, &self.lib])
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn a_synthetic_unit_with_dropins_quoting_and_specifiers() {
    let d = Dirs::new();
    d.write(
        &d.lib,
        "app@.service",
        "[Unit]\nDescription=x\n[Service]\nType=notify\nUser=nobody\n\
         Environment=\"GREETING=hello world\" MODE=fast\n\
         ExecStart=/bin/echo first\nExecStart=\n\
         ExecStart=-/usr/bin/app --name %i --unit %n --dir %t/%p \\\n  $OPTS \"${GREETING}\" 'a b' $$literal\n\
         RuntimeDirectory=app/%i\nRuntimeDirectoryMode=2750\nStateDirectory=app\n\
         ConfigurationDirectory=app\nPIDFile=%t/app.pid\nUMask=0027\n\
         ProtectSystem=strict\nRestart=always\nExecStartPre=/bin/systemctl start other\n",
    );
    d.write(
        &d.lib,
        "app@.service.d/10-env.conf",
        "[Service]\nEnvironment=OPTS=-v\\s-x\n",
    );
    d.write(
        &d.etc,
        "app@one.service.d/20-more.conf",
        "[Service]\nEnvironment=OPTS=-a -q\n",
    );
    let u = d.find("app@one").unwrap();
    assert_eq!(u.name, "app@one.service");
    assert_eq!(u.dropins.len(), 2);
    assert_eq!(u.service_type, ServiceType::Notify);
    assert_eq!(u.start.executable, Path::new("/usr/bin/app"));
    assert!(u.start.prefix.ignore_failure);
    // Environment=OPTS=-a -q: two words, the second not KEY=VALUE.
    assert!(
        u.warnings.iter().any(|w| w.contains("`-q`")),
        "{:?}",
        u.warnings
    );
    assert_eq!(
        u.argv(&u.env),
        s(&[
            "/usr/bin/app",
            "--name",
            "one",
            "--unit",
            "app@one.service",
            "--dir",
            "/run/app",
            "-a",
            "hello world",
            "a b",
            "$literal"
        ])
    );
    assert!(matches!(u.ready()[..], [Condition::Notify]));
    assert_eq!(u.umask, Some(0o027));
    assert_eq!(u.pid_file.as_deref(), Some(Path::new("/run/app.pid")));
    let dirs = u.mkdirs();
    assert_eq!(dirs[0].path, Path::new("/run/app/one"));
    assert_eq!(
        (dirs[0].mode, dirs[0].user.as_deref()),
        (0o2750, Some("nobody"))
    );
    assert_eq!(dirs[1].path, Path::new("/var/lib/app"));
    assert_eq!(
        (dirs[2].path.as_path(), dirs[2].user.as_deref()),
        (Path::new("/etc/app"), None)
    );
    let lines = u.not_honoured_lines().join("\n");
    assert!(lines.contains("ProtectSystem"), "{lines}");
    assert!(
        lines.contains("ExecStartPre=/bin/systemctl start other: not run: it calls systemctl"),
        "{lines}"
    );
    assert!(lines.contains("Restart: service management"), "{lines}");
}

#[test]
fn argv0_no_expansion_and_env_files() {
    let d = Dirs::new();
    let envfile = d.etc.join("defaults");
    fs::write(&envfile, "# comment\nOPTS=\"-D -x\"\nexport PORT=8080\n").unwrap();
    d.write(
        &d.lib,
        "a.service",
        &format!(
            "[Service]\nType=forking\nEnvironment=OPTS=none PORT=1\nEnvironmentFile={}\nEnvironmentFile=-/nonexistent/x\n\
             ExecStart=@/bin/sleep sleeper $OPTS\nPIDFile=/run/a.pid\nWorkingDirectory=~\n",
            envfile.display()
        ),
    );
    let u = d.find("a.service").unwrap();
    assert_eq!(u.start.executable, Path::new("/bin/sleep"));
    assert_eq!(u.argv(&u.env), s(&["sleeper", "-D", "-x"]));
    assert_eq!(
        u.env,
        vec![
            ("OPTS".into(), "-D -x".into()),
            ("PORT".into(), "8080".into())
        ]
    );
    assert_eq!(u.working_directory.as_deref(), Some(Path::new("/root")));
    assert!(u.warnings.iter().any(|w| w.contains("/nonexistent/x")));
    let ready: Vec<String> = u.ready().iter().map(|c| c.to_string()).collect();
    assert_eq!(ready, ["exit", "pidfile:/run/a.pid"]);
    d.write(
        &d.lib,
        "b.service",
        "[Service]\nExecStart=:/bin/echo $HOME\n",
    );
    let u = d.find("b").unwrap();
    assert_eq!(
        u.argv(&[("HOME".into(), "/x".into())]),
        s(&["/bin/echo", "$HOME"])
    );
    assert!(matches!(u.ready()[..], [Condition::Alive(_)]));
}

#[test]
fn exec_start_pre_runs_in_the_root_unless_it_cannot() {
    let d = Dirs::new();
    d.write(
        &d.lib,
        "pre.service",
        "[Service]\nExecStart=/usr/sbin/app\n\
         ExecStartPre=/bin/mkdir -m 740 -p /run/app\n\
         ExecStartPre=-chown app $APP_DIR\n\
         ExecStartPre=+/usr/libexec/app/on-the-host\n\
         ExecStartPre=!/usr/libexec/app/as-root\n\
         ExecStartPre=/bin/systemctl start other\n\
         ExecStartPost=/usr/libexec/app/after\n\
         Environment=APP_DIR=/var/lib/app\n",
    );
    let u = d.find("pre").unwrap();
    let runs: Vec<_> = u
        .start_pre
        .iter()
        .map(|c| (c.argv(&u.env), c.prefix.ignore_failure))
        .collect();
    assert_eq!(
        runs,
        [
            (s(&["/bin/mkdir", "-m", "740", "-p", "/run/app"]), false),
            (s(&["chown", "app", "/var/lib/app"]), true),
        ]
    );
    // A bare name is looked up where systemd looks.
    assert!(
        u.start_pre[1].executable.is_absolute(),
        "{:?}",
        u.start_pre[1]
    );
    let not_run: Vec<_> = u
        .not_honoured
        .iter()
        .filter(|n| n.key.starts_with("ExecStart"))
        .map(|n| n.value.as_str())
        .collect();
    assert_eq!(
        not_run,
        [
            "+/usr/libexec/app/on-the-host",
            "!/usr/libexec/app/as-root",
            "/bin/systemctl start other",
            "/usr/libexec/app/after",
        ]
    );
    // An empty assignment resets the list, as systemd does.
    d.write(
        &d.etc,
        "pre.service.d/reset.conf",
        "[Service]\nExecStartPre=\n",
    );
    assert!(d.find("pre").unwrap().start_pre.is_empty());
}

#[test]
fn clear_errors() {
    let d = Dirs::new();
    let e = d.find("nope").unwrap_err();
    assert!(e.to_string().contains("no unit nope.service"), "{e}");
    assert!(matches!(
        d.find("x.socket").unwrap_err(),
        UnitError::NotAService { .. }
    ));
    // A dot in a service's name is no unit type (Debian's php8.2-fpm).
    d.write(
        &d.lib,
        "php8.2-fpm.service",
        "[Service]\nExecStart=/usr/sbin/php-fpm8.2\n",
    );
    assert_eq!(d.find("php8.2-fpm").unwrap().name, "php8.2-fpm.service");
    assert_eq!(
        d.find("php8.2-fpm.service").unwrap().name,
        "php8.2-fpm.service"
    );
    let e = d.find("app.v2").unwrap_err();
    assert!(e.to_string().contains("no unit app.v2.service"), "{e}");
    d.write(&d.lib, "noexec.service", "[Service]\nType=simple\n");
    assert!(matches!(
        d.find("noexec").unwrap_err(),
        UnitError::NoExecStart { .. }
    ));
    d.write(
        &d.lib,
        "two.service",
        "[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n",
    );
    assert!(matches!(
        d.find("two").unwrap_err(),
        UnitError::SeveralExecStart { count: 2, .. }
    ));
    d.write(
        &d.lib,
        "bus.service",
        "[Service]\nType=dbus\nBusName=x\nExecStart=/bin/a\n",
    );
    let e = d.find("bus").unwrap_err();
    assert!(e.to_string().contains("Type=dbus"), "{e}");
    d.write(
        &d.lib,
        "weird.service",
        "[Service]\nType=bogus\nExecStart=/bin/a\n",
    );
    assert!(d
        .find("weird")
        .unwrap_err()
        .to_string()
        .contains("unknown Type=bogus"));
    d.write(&d.lib, "sock.service", "[Service]\nExecStart=/bin/a\n");
    d.write(&d.lib, "sock.socket", "[Socket]\nListenStream=80\n");
    d.find("sock").unwrap();
    std::fs::create_dir_all(d.etc.join("sockets.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        d.lib.join("sock.socket"),
        d.etc.join("sockets.target.wants/sock.socket"),
    )
    .unwrap();
    let e = d.find("sock").unwrap_err();
    assert!(e.to_string().contains("socket-activated"), "{e}");
    // Accept=yes starts sock2@.service, not sock2.service.
    d.write(&d.lib, "sock2.service", "[Service]\nExecStart=/bin/a\n");
    d.write(
        &d.lib,
        "sock2.socket",
        "[Socket]\nListenStream=22\nAccept=yes\n",
    );
    d.find("sock2").unwrap();
    d.write(
        &d.lib,
        "inetd.service",
        "[Service]\nExecStart=/bin/a\nStandardInput=socket\n",
    );
    assert!(matches!(
        d.find("inetd").unwrap_err(),
        UnitError::SocketActivated { .. }
    ));
    std::os::unix::fs::symlink("/dev/null", d.etc.join("masked.service")).unwrap();
    d.write(&d.lib, "masked.service", "[Service]\nExecStart=/bin/a\n");
    assert!(matches!(
        d.find("masked").unwrap_err(),
        UnitError::Masked { .. }
    ));
    d.write(&d.lib, "bad.service", "[Service]\nExecStart=/bin/a 'open\n");
    let e = d.find("bad").unwrap_err();
    assert!(e.to_string().contains("bad.service:2"), "{e}");
}

#[test]
fn an_alias_is_its_target_and_etc_overrides_lib() {
    let d = Dirs::new();
    d.write(&d.lib, "real.service", "[Service]\nExecStart=/bin/lib\n");
    std::os::unix::fs::symlink(d.lib.join("real.service"), d.etc.join("alias.service")).unwrap();
    d.write(&d.lib, "real.service.d/a.conf", "[Service]\nUser=lib\n");
    d.write(&d.etc, "real.service.d/a.conf", "[Service]\nUser=etc\n");
    let u = d.find("alias").unwrap();
    assert_eq!(u.name, "real.service");
    assert_eq!(u.user.as_deref(), Some("etc"));
    assert_eq!(u.dropins.len(), 1);
}

/// Debian's own units, where the host has them.
fn host_unit(name: &str) -> Option<Unit> {
    if !Path::new("/lib/systemd/system")
        .join(format!("{name}.service"))
        .exists()
    {
        eprintln!("SKIPPED host unit {name}: not installed");
        return None;
    }
    Some(Unit::find(name).unwrap_or_else(|e| panic!("{name}: {e}")))
}

#[test]
fn debian_units() {
    if let Some(u) = host_unit("nginx") {
        assert_eq!(u.service_type, ServiceType::Forking);
        assert_eq!(
            u.argv(&u.env),
            s(&["/usr/sbin/nginx", "-g", "daemon on; master_process on;"])
        );
        assert_eq!(u.pid_file.as_deref(), Some(Path::new("/run/nginx.pid")));
        // `nginx -t` runs in the jail before nginx, as systemd runs it.
        assert!(!u.not_honoured.iter().any(|n| n.key == "ExecStartPre"));
        assert_eq!(u.start_pre.len(), 1);
        assert_eq!(u.start_pre[0].executable, Path::new("/usr/sbin/nginx"));
        assert_eq!(
            u.start_pre[0].argv(&u.env),
            s(&[
                "/usr/sbin/nginx",
                "-t",
                "-q",
                "-g",
                "daemon on; master_process on;"
            ])
        );
    }
    if let Some(u) = host_unit("redis-server") {
        assert_eq!(u.service_type, ServiceType::Notify);
        assert_eq!(u.user.as_deref(), Some("redis"));
        assert_eq!(u.dirs[0].path, Path::new("/run/redis"));
        assert_eq!(u.dirs[0].mode, 0o2755);
        assert_eq!(u.umask, Some(0o007));
        assert!(u.not_honoured.iter().any(|n| n.key == "SystemCallFilter"));
    }
    if let Some(u) = host_unit("mariadb") {
        assert_eq!(u.service_type, ServiceType::Notify);
        assert_eq!(
            (u.user.as_deref(), u.group.as_deref()),
            (Some("mysql"), Some("mysql"))
        );
        let argv = u.argv(&u.env);
        assert_eq!(argv[..2], s(&["/bin/sh", "-c"]));
        // Line continuations joined; $VAR inside the quoted script is the shell's.
        assert!(
            argv[2].contains("exec /usr/sbin/mariadbd $MYSQLD_OPTS $_WSREP_NEW_CLUSTER $VAR"),
            "{}",
            argv[2]
        );
        assert!(!argv[2].contains('\\'), "{}", argv[2]);
        assert!(u.not_honoured.iter().any(|n| n.key == "ExecStartPost"));
    }
    if let Some(u) = host_unit("apache2") {
        assert_eq!(u.service_type, ServiceType::Forking);
        assert_eq!(u.argv(&u.env), s(&["/usr/sbin/apachectl", "start"]));
        assert_eq!(
            u.env,
            vec![("APACHE_STARTED_BY_SYSTEMD".into(), "true".into())]
        );
    }
    if let Some(u) = host_unit("ssh") {
        assert_eq!(u.service_type, ServiceType::Notify);
        assert!(u.dirs.iter().any(|d| d.path == Path::new("/run/sshd")));
    }
}

#[test]
fn a_secret_in_a_setting_not_honoured_is_not_repeated() {
    let d = Dirs::new();
    let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    d.write(
        &d.lib,
        "vault.service",
        &format!(
            "[Service]\nExecStart=/bin/true\nSetCredential=db-password:hunter2\n\
             ExecStartPre=/usr/bin/curl -H \"Authorization: token {token}\" https://example.org/\n\
             Restart=always\n"
        ),
    );
    let u = d.find("vault").unwrap();
    let value = |key: &str| {
        u.not_honoured
            .iter()
            .find(|n| n.key == key)
            .map(|n| n.value.clone())
            .unwrap()
    };
    assert_eq!(value("SetCredential"), NotHonoured::HIDDEN);
    assert_eq!(value("ExecStartPre"), NotHonoured::HIDDEN);
    assert_eq!(value("Restart"), "always");
    let lines = u.not_honoured_lines().join("\n");
    assert!(
        !lines.contains("hunter2") && !lines.contains(token),
        "{lines}"
    );
}
