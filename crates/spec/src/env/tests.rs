//! Tests of [`super`].
use super::*;

fn caller() -> Vec<(OsString, OsString)> {
    [
        ("PATH", "/root/.cargo/bin:/usr/bin"),
        ("HOME", "/home/caller"),
        ("TERM", "xterm-256color"),
        ("LANG", "C.UTF-8"),
        ("LC_TIME", "de_DE.UTF-8"),
        ("TZ", "Asia/Tokyo"),
        ("OLDPWD", "/home/caller/src"),
        ("GITHUB_TOKEN", "ghp_abc123"),
        ("JAVA_HOME", "/usr/lib/jvm/default"),
        ("JAVA_OPTS", "-Xmx1g"),
        ("EDITOR", "vi"),
    ]
    .iter()
    .map(|(k, v)| (OsString::from(k), OsString::from(v)))
    .collect()
}

fn root() -> Account {
    Account {
        name: "root".into(),
        home: "/root".into(),
        shell: "/bin/bash".into(),
    }
}

fn names(env: &Environment) -> Vec<String> {
    env.vars
        .iter()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect()
}

fn value<'a>(env: &'a Environment, key: &str) -> Option<&'a OsStr> {
    env.vars
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_os_str())
}

#[test]
fn the_clean_set_keeps_terminal_locale_and_time_zone_only() {
    let env = EnvSpec::default()
        .resolve(&caller(), Some(&root()), Path::new("/srv"))
        .unwrap();
    assert_eq!(
        names(&env),
        ["TERM", "LANG", "LC_TIME", "TZ", "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD"]
    );
    assert_eq!(value(&env, "PATH"), Some(OsStr::new(DEFAULT_PATH)));
    assert_eq!(value(&env, "HOME"), Some(OsStr::new("/root")));
    assert_eq!(value(&env, "PWD"), Some(OsStr::new("/srv")));
    assert!(env.redacted.is_empty());
    assert!(env.warnings.is_empty());
}

#[test]
fn passed_variables_and_globs_come_from_the_caller() {
    let spec = EnvSpec {
        pass: vec!["JAVA_*".into(), "EDITOR".into(), "NOT_SET".into()],
        ..EnvSpec::default()
    };
    let env = spec.resolve(&caller(), None, Path::new("/")).unwrap();
    assert_eq!(
        value(&env, "JAVA_HOME"),
        Some(OsStr::new("/usr/lib/jvm/default"))
    );
    assert_eq!(value(&env, "JAVA_OPTS"), Some(OsStr::new("-Xmx1g")));
    assert_eq!(value(&env, "EDITOR"), Some(OsStr::new("vi")));
    assert_eq!(value(&env, "HOME"), None, "no account, no HOME");
    assert_eq!(env.warnings.len(), 1);
    assert!(env.warnings[0].contains("NOT_SET"), "{:?}", env.warnings);
}

#[test]
fn later_steps_override_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vars");
    std::fs::write(
        &file,
        "export EDITOR=nano\nexport FROM_FILE=${TZ}\nunset LANG\n",
    )
    .unwrap();
    let spec = EnvSpec {
        pass: vec!["EDITOR".into()],
        env_files: vec![file],
        set: vec![
            ("FROM_FILE".into(), "flag".into()),
            ("PWD".into(), "/x".into()),
        ],
        ..EnvSpec::default()
    };
    let env = spec
        .resolve(&caller(), Some(&root()), Path::new("/"))
        .unwrap();
    assert_eq!(value(&env, "EDITOR"), Some(OsStr::new("nano")));
    assert_eq!(value(&env, "FROM_FILE"), Some(OsStr::new("flag")));
    assert_eq!(value(&env, "LANG"), None);
    assert_eq!(
        value(&env, "PWD"),
        Some(OsStr::new("/")),
        "PWD is the jail's cwd"
    );
}

#[test]
fn an_env_file_expands_against_what_was_set_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vars");
    std::fs::write(&file, "export GREETING=\"tz is $TZ\"\n").unwrap();
    let spec = EnvSpec {
        env_files: vec![file],
        ..EnvSpec::default()
    };
    let env = spec.resolve(&caller(), None, Path::new("/")).unwrap();
    assert_eq!(
        value(&env, "GREETING"),
        Some(OsStr::new("tz is Asia/Tokyo"))
    );
}

#[test]
fn inherit_keeps_everything_but_oldpwd() {
    let spec = EnvSpec {
        base: Base::Inherit,
        ..EnvSpec::default()
    };
    let env = spec
        .resolve(&caller(), Some(&root()), Path::new("/"))
        .unwrap();
    assert_eq!(
        value(&env, "PATH"),
        Some(OsStr::new("/root/.cargo/bin:/usr/bin"))
    );
    assert_eq!(value(&env, "HOME"), Some(OsStr::new("/home/caller")));
    assert_eq!(value(&env, "OLDPWD"), None);
    assert_eq!(value(&env, "PWD"), Some(OsStr::new("/")));
    assert_eq!(env.redacted_names(), [OsString::from("GITHUB_TOKEN")]);
}

#[test]
fn empty_starts_from_nothing() {
    let spec = EnvSpec {
        base: Base::Empty,
        set: vec![("A".into(), "1".into())],
        ..EnvSpec::default()
    };
    let env = spec
        .resolve(&caller(), Some(&root()), Path::new("/"))
        .unwrap();
    assert_eq!(names(&env), ["A"]);
}

#[test]
fn secrets_are_redacted_whatever_brought_them_unless_recorded() {
    let spec = EnvSpec {
        pass: vec!["GITHUB_TOKEN".into()],
        set: vec![
            ("DB_PASSWORD".into(), "hunter2".into()),
            ("DEPLOY".into(), "-----BEGIN EC PRIVATE KEY-----".into()),
            ("MYSQL_PWD".into(), "x".into()),
        ],
        record: vec!["MYSQL_*".into(), "UNUSED".into()],
        ..EnvSpec::default()
    };
    let env = spec.resolve(&caller(), None, Path::new("/")).unwrap();
    let redacted: Vec<_> = env
        .redacted
        .iter()
        .map(|r| (r.name.to_str().unwrap(), r.rule))
        .collect();
    assert_eq!(
        redacted,
        [
            ("GITHUB_TOKEN", "name contains TOKEN"),
            ("DB_PASSWORD", "name contains PASSWORD"),
            ("DEPLOY", "value is a PEM private key"),
        ]
    );
    // The program still gets every one of them.
    assert_eq!(value(&env, "GITHUB_TOKEN"), Some(OsStr::new("ghp_abc123")));
    assert_eq!(value(&env, "DB_PASSWORD"), Some(OsStr::new("hunter2")));
    assert!(env
        .warnings
        .iter()
        .any(|w| w.contains("--record-env UNUSED")));
}

#[test]
fn bad_patterns_are_errors() {
    for bad in ["", "A=B", "$X", "a b", "[A]"] {
        let spec = EnvSpec {
            pass: vec![bad.into()],
            ..EnvSpec::default()
        };
        let err = spec.resolve(&caller(), None, Path::new("/")).unwrap_err();
        assert!(err.to_string().starts_with("--pass-env"), "{err}");
    }
}

/// Whole names only; `*` takes any run (none too), `?` exactly one byte,
/// and a later `*` backtracks as far as it must: a name, a prefix and `*`,
/// and the rest (a regex) alike.
#[test]
fn patterns_match_whole_names() {
    let cases = [
        ("LC_*", "LC_TIME", true),
        ("LC_*", "LC_", true),
        ("LC_*", "XLC_TIME", false),
        ("TERM", "TERMINFO", false),
        ("T?", "TZ", true),
        ("T?", "T", false),
        ("*_PROXY", "HTTPS_PROXY", true),
        ("*_PROXY", "HTTPS_PROXY_", false),
        ("A*B*C", "AxxBxxBxxC", true),
        ("A*B*C", "AxxBxxC_", false),
        ("**", "", true),
        ("*?*", "", false),
    ];
    for (pattern, name, matches) in cases {
        let p = Pattern::new("--pass-env", pattern).unwrap();
        assert_eq!(p.matches(OsStr::new(name)), matches, "{pattern} {name}");
    }
}

#[test]
fn items_are_key_equals_value() {
    let env = Environment {
        vars: vec![("A".into(), "b=c".into())],
        ..Environment::default()
    };
    assert_eq!(env.items(), [OsString::from("A=b=c")]);
}
