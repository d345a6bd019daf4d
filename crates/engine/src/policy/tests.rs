//! Tests of [`super`].

use super::*;

#[test]
fn a_key_file_kept_from_others_in_etc_is_a_secret() {
    let p = Policy::default();
    for (path, mode) in [
        ("/etc/bind/rndc.key", 0o640),
        ("/etc/varnish/secret", 0o600),
        ("/etc/chrony/chrony.keys", 0o640),
        ("/etc/security/opasswd", 0o600),
        ("/etc/app/API_TOKEN", 0o600),
    ] {
        assert_eq!(
            p.secret_file(Path::new(path), mode),
            Some(SECRET_FILE_RULE),
            "{path}"
        );
    }
    for (path, mode) in [
        // Readable by others: not kept secret.
        ("/etc/bind/bind.keys", 0o644),
        // A configuration file kept from others, not named so.
        ("/etc/redis/redis.conf", 0o640),
        ("/etc/tomcat10/tomcat-users.xml", 0o640),
        // Not in /etc.
        ("/var/lib/app/session.key", 0o600),
        // A word of the name, not a part of one.
        ("/etc/monkey.conf", 0o600),
    ] {
        assert_eq!(p.secret_file(Path::new(path), mode), None, "{path}");
    }
    let allowed = Policy::new(&[], &[r"^/etc/varnish/secret$".into()]).unwrap();
    assert_eq!(
        allowed.secret_file(Path::new("/etc/varnish/secret"), 0o600),
        None
    );
}

#[test]
fn a_denied_path_names_the_first_rule_that_matches_it() {
    let rules = |v: &[&str]| v.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    let p = Policy::new(&rules(&["^/srv/a", "^/srv/"]), &rules(&["^/srv/a/ok$"])).unwrap();
    let deny = |path: &str| match p.verdict(Path::new(path)) {
        Verdict::Deny(rule) => Some(rule),
        _ => None,
    };
    // The built-in rules come first, then the user's, in order.
    assert_eq!(deny("/etc/shadow").as_deref(), Some(DEFAULT_DENY[0]));
    assert_eq!(deny("/srv/a/key").as_deref(), Some("^/srv/a"));
    assert_eq!(deny("/srv/b").as_deref(), Some("^/srv/"));
    assert_eq!(deny("/srv/a/ok"), None, "allowed");
    assert_eq!(deny("/usr/bin/env"), None);
    let names: Vec<&str> = p.deny_rules().collect();
    assert_eq!(names.len(), DEFAULT_DENY.len() + 2);
    assert_eq!(&names[DEFAULT_DENY.len()..], ["^/srv/a", "^/srv/"]);
}

#[test]
fn directories_hold_paths_component_by_component() {
    let runtime = |p: &str| Policy::runtime_dir(Path::new(p));
    let virt = |p: &str| virtual_fs(Path::new(p));
    assert_eq!(virt("/proc"), Some("/proc"));
    assert_eq!(virt("/proc/self/stat"), Some("/proc"));
    assert_eq!(virt("//proc/self/stat"), Some("/proc"));
    assert_eq!(virt("/proc/"), Some("/proc"));
    assert_eq!(virt("/procx/a"), None);
    assert_eq!(virt("/dev/pts/0"), Some("/dev/pts"));
    assert_eq!(virt("/dev/ptsx"), None);
    assert_eq!(
        runtime("/tmp"),
        None,
        "the directory itself is not below it"
    );
    assert_eq!(runtime("/tmp/"), None);
    assert_eq!(runtime("/tmp/x"), Some("/tmp"));
    assert_eq!(runtime("/tmpx"), None);
    assert_eq!(runtime("/var/log/./apt"), Some("/var/log"));
    assert_eq!(runtime("/var//tmp/a"), Some("/var/tmp"));
    assert_eq!(runtime("/usr/tmp/a"), None);
}

#[test]
fn account_backups_and_locks_are_denied_by_default() {
    let p = Policy::default();
    for path in [
        "/etc/passwd-",
        "/etc/group-",
        "/etc/shadow-",
        "/etc/gshadow-",
        "/etc/subuid",
        "/etc/subgid-",
        "/etc/.pwd.lock",
    ] {
        assert!(
            matches!(p.verdict(Path::new(path)), Verdict::Deny(_)),
            "{path}"
        );
    }
    for fine in ["/etc/passwd", "/etc/group", "/etc/passwd.d"] {
        assert_eq!(p.verdict(Path::new(fine)), Verdict::Copy, "{fine}");
    }
}

#[test]
fn runtime_state_keeps_directories_only() {
    let mut p = Policy::default();
    for path in [
        "/tmp/x",
        "/var/tmp/x/y",
        "/run/nginx.pid",
        "/var/run/utmp",
        "/var/log/dpkg.log",
        "/var/cache/debconf/config.dat",
        "/var/spool/cron/crontabs",
        "/var/lock/LCK..ttyS0",
        "/home/alice/.profile",
    ] {
        assert!(
            matches!(p.verdict(Path::new(path)), Verdict::DirsOnly(ref r) if r.starts_with("host runtime state under /")),
            "{path}"
        );
    }
    for fine in [
        "/tmp",
        "/var/log",
        "/home",
        "/var/lib/dpkg/status",
        "/var/www/html/index.html",
    ] {
        assert_eq!(p.verdict(Path::new(fine)), Verdict::Copy, "{fine}");
    }
    // Secrets stay denied, not merely runtime state.
    assert!(matches!(
        p.verdict(Path::new("/home/alice/.ssh/id_rsa")),
        Verdict::Deny(_)
    ));

    assert_eq!(
        Policy::runtime_top(Path::new("/tmp/build/bin/prog")),
        Some("/tmp/build".into())
    );
    assert_eq!(
        Policy::runtime_top(Path::new("/tmp/job.py")),
        Some("/tmp/job.py".into())
    );
    assert_eq!(Policy::runtime_top(Path::new("/usr/bin/env")), None);
    p.except_runtime(Path::new("/tmp/build"));
    assert_eq!(
        p.verdict(Path::new("/tmp/build/lib/libx.so")),
        Verdict::Copy
    );
    assert!(matches!(
        p.verdict(Path::new("/tmp/other")),
        Verdict::DirsOnly(_)
    ));

    let allowed = Policy::new(&[], &[r"^/var/cache/app/".into()]).unwrap();
    assert_eq!(
        allowed.verdict(Path::new("/var/cache/app/data")),
        Verdict::Copy
    );
}

#[test]
fn secrets_are_denied_by_default() {
    let p = Policy::default();
    for secret in [
        "/etc/shadow",
        "/etc/gshadow-",
        "/etc/sudoers.d/admins",
        "/etc/ssh/ssh_host_ed25519_key",
        "/etc/ssl/private/server.key",
        "/root/.bashrc",
        "/home/alice/.ssh/id_rsa",
        "/home/bob/.gnupg",
    ] {
        assert!(
            matches!(p.verdict(Path::new(secret)), Verdict::Deny(_)),
            "{secret}"
        );
    }
    // A name need not be UTF-8 (Latin-1 "josé"): the rules match bytes.
    for secret in [&b"/home/jos\xe9/.ssh/id_rsa"[..], b"/etc/ssh/\xff_key"] {
        let path = Path::new(std::ffi::OsStr::from_bytes(secret));
        assert!(
            matches!(p.verdict(path), Verdict::Deny(_)),
            "{}",
            path.display()
        );
    }
    for fine in [
        "/etc/passwd",
        "/etc/ssh/ssh_host_ed25519_key.pub",
        "/rootfs",
    ] {
        assert_eq!(p.verdict(Path::new(fine)), Verdict::Copy, "{fine}");
    }
    assert_eq!(
        p.verdict(Path::new("/proc/self/maps")),
        Verdict::Virtual("/proc")
    );
    assert_eq!(p.verdict(Path::new("/sys")), Verdict::Virtual("/sys"));
    assert_eq!(p.verdict(Path::new("/system")), Verdict::Copy);
}

#[test]
fn allow_makes_exceptions_and_deny_adds_rules() {
    let p = Policy::new(&[r"^/etc/secret".into()], &[r"^/root/\.gitconfig$".into()]).unwrap();
    assert_eq!(p.verdict(Path::new("/root/.gitconfig")), Verdict::Copy);
    assert!(matches!(
        p.verdict(Path::new("/root/.profile")),
        Verdict::Deny(_)
    ));
    assert!(matches!(
        p.verdict(Path::new("/etc/secret.txt")),
        Verdict::Deny(_)
    ));
    assert!(Policy::new(&["(".into()], &[]).is_err());
}

/// Writes `text` to `policy.conf` in a new temporary directory.
fn policy_file(text: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.conf");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn denied(p: &Policy, path: &str) -> Option<String> {
    match p.verdict(Path::new(path)) {
        Verdict::Deny(rule) => Some(rule),
        _ => None,
    }
}

#[test]
fn a_policy_file_adds_rules_to_the_defaults_and_the_flags_add_to_it() {
    let (_dir, path) = policy_file(
        b"# web server policy\n\
          \n\
          deny ^/srv/secret(/|$)\n\
          \t  allow   ^/root/\\.bashrc$  \r\n\
          # deny ^/etc/passwd$ is only a comment\n\
          deny ^/opt/a b#c$\n",
    );
    let p = Policy::from_file(
        &path,
        &[r"^/etc/hostname$".into()],
        &[r"^/srv/secret/ok$".into()],
    )
    .unwrap();
    let deny: Vec<&str> = p.deny_rules().collect();
    assert_eq!(deny.len(), DEFAULT_DENY.len() + 3, "{deny:?}");
    assert_eq!(&deny[..DEFAULT_DENY.len()], DEFAULT_DENY);
    assert_eq!(
        &deny[DEFAULT_DENY.len()..],
        [r"^/srv/secret(/|$)", "^/opt/a b#c$", r"^/etc/hostname$"]
    );
    assert_eq!(
        p.allow_rules().collect::<Vec<_>>(),
        [r"^/root/\.bashrc$", r"^/srv/secret/ok$"]
    );
    assert_eq!(
        denied(&p, "/etc/shadow").as_deref(),
        Some(r"^/etc/shadow-?$")
    );
    assert_eq!(
        denied(&p, "/srv/secret/key").as_deref(),
        Some(r"^/srv/secret(/|$)")
    );
    assert_eq!(denied(&p, "/opt/a b#c").as_deref(), Some("^/opt/a b#c$"));
    assert_eq!(
        denied(&p, "/etc/hostname").as_deref(),
        Some(r"^/etc/hostname$")
    );
    assert_eq!(p.verdict(Path::new("/srv/secret/ok")), Verdict::Copy);
    assert_eq!(p.verdict(Path::new("/root/.bashrc")), Verdict::Copy);
    assert!(denied(&p, "/root/.profile").is_some());
    assert_eq!(p.verdict(Path::new("/etc/passwd")), Verdict::Copy);
    assert_eq!(
        p.verdict(Path::new("/proc/1/environ")),
        Verdict::Virtual("/proc")
    );
}

#[test]
fn defaults_off_makes_the_file_the_complete_list() {
    let (_dir, path) = policy_file(b"  defaults off\ndeny ^/etc/gshadow$\n");
    let p = Policy::from_file(&path, &[], &[]).unwrap();
    assert_eq!(p.deny_rules().collect::<Vec<_>>(), [r"^/etc/gshadow$"]);
    assert_eq!(p.verdict(Path::new("/etc/shadow")), Verdict::Copy);
    assert_eq!(p.verdict(Path::new("/root/.ssh/id_rsa")), Verdict::Copy);
    assert!(denied(&p, "/etc/gshadow").is_some());

    let (_dir, empty) = policy_file(b"");
    let p = Policy::from_file(&empty, &[], &[]).unwrap();
    assert_eq!(p.deny_rules().count(), DEFAULT_DENY.len());
}

#[test]
fn errors_name_the_file_and_the_line() {
    let cases: &[(&[u8], usize, &str)] = &[
        (
            b"deny ^/a$\n\n# c\npermit ^/b$\n",
            4,
            "unknown rule \"permit\"; expected deny or allow",
        ),
        (
            b"allow ^/a$\ndeny (\n",
            2,
            "invalid regular expression \"(\"",
        ),
        (b"deny\n", 1, "deny needs a regular expression after it"),
        (
            b"# x\nallow   \n",
            2,
            "allow needs a regular expression after it",
        ),
        (
            b"defaults on\n",
            1,
            "unknown setting \"defaults on\"; expected \"defaults off\"",
        ),
        (
            b"defaults\n",
            1,
            "unknown setting \"defaults \"; expected \"defaults off\"",
        ),
        (
            b"deny ^/a$\ndeny ^/\xff$\n",
            2,
            "the line is not valid UTF-8",
        ),
        (b"Deny ^/a$\n", 1, "unknown rule \"Deny\""),
    ];
    for (text, line, message) in cases {
        let (_dir, path) = policy_file(text);
        let err = Policy::from_file(&path, &[], &[]).unwrap_err();
        let shown = err.to_string();
        let prefix = format!("{}:{line}: ", path.display());
        assert!(
            shown.starts_with(&prefix) && shown[prefix.len()..].starts_with(message),
            "{shown:?} is not {prefix}{message}…"
        );
    }
    let (_dir, path) = policy_file(b"deny ^/a$\ndeny [z-a]\n");
    let err = Policy::from_file(&path, &[], &[]).unwrap_err();
    assert!(
        matches!(&err, PolicyError::InvalidRegex { line: 2, rule, .. } if rule == "[z-a]"),
        "{err:?}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the regex error is the cause"
    );
}

#[test]
fn unreadable_files_and_bad_flags_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such.policy");
    let err = Policy::from_file(&missing, &[], &[]).unwrap_err();
    assert!(matches!(err, PolicyError::Read { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    let err = Policy::from_file(dir.path(), &[], &[]).unwrap_err();
    assert!(
        matches!(err, PolicyError::Read { .. }),
        "a directory: {err:?}"
    );

    let (_dir, path) = policy_file(b"deny ^/a$\n");
    let err = Policy::from_file(&path, &[], &["(".into()]).unwrap_err();
    assert!(matches!(err, PolicyError::Flag(_)), "{err:?}");
    let err = Policy::from_file(&path, &["[".into()], &[]).unwrap_err();
    assert!(matches!(err, PolicyError::Flag(_)), "{err:?}");
}

#[test]
fn paths_in_a_bind_are_bound_whatever_else_applies() {
    let mut p = Policy::default();
    p.bind(Path::new("/var/lib/app"));
    p.bind(Path::new("/run/data"));
    for path in ["/var/lib/app", "/var/lib/app/db.sqlite", "/run/data/x/y"] {
        assert_eq!(p.verdict(Path::new(path)), Verdict::Bound, "{path}");
    }
    // Not the parents, nor a sibling that shares a prefix.
    assert_eq!(p.verdict(Path::new("/var/lib")), Verdict::Copy);
    assert_eq!(p.verdict(Path::new("/var/lib/app2")), Verdict::Copy);
    assert!(matches!(
        p.verdict(Path::new("/run/other")),
        Verdict::DirsOnly(_)
    ));
    assert!(p.is_bound(Path::new("/run/data")) && !p.is_bound(Path::new("/run")));
}

/// Whether a process running as `nobody` may read host files of
/// these modes: only what its class (owner, group, others) allows,
/// whatever the other classes allow.
#[test]
fn a_file_is_unreadable_by_a_process_whose_class_may_not_read_it() {
    if !crate::testutil::need_root(
        "a_file_is_unreadable_by_a_process_whose_class_may_not_read_it",
        "setpriv",
    ) {
        return;
    }
    let mut nobody = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sleep",
            "30",
        ])
        .spawn()
        .unwrap();
    let pid = nobody.id() as i32;
    // setpriv has switched ids once it runs `sleep`.
    let switched = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        crate::creds::creds_of(pid).is_some_and(|c| c.uid == 65534)
    });
    let file = |mode: u32, uid: u32, gid: u32| jailtrace_rootfs::Attrs {
        mode: 0o100000 | mode,
        uid,
        gid,
        mtime: None,
    };
    let verdicts = [
        unreadable_by(pid, &file(0o600, 0, 0)),
        unreadable_by(pid, &file(0o644, 0, 0)),
        unreadable_by(pid, &file(0o640, 0, 65534)),
        unreadable_by(pid, &file(0o044, 65534, 0)),
        unreadable_by(pid, &file(0o444, 65534, 0)),
        unreadable_by(pid, &file(0o400, 65534, 0)),
    ];
    let _ = nobody.kill();
    let _ = nobody.wait();
    assert!(switched, "setpriv did not switch to uid 65534");
    assert_eq!(
        verdicts,
        [Some(65534), None, None, Some(65534), None, None],
        "0600 root's; 0644; 0640 its group's; 0044 its own; 0444; 0400 its own"
    );
}
