//! Tests of [`super`].
use super::*;

/// Debian 12's /etc/apache2/envvars (apache2 2.4.62), comments trimmed.
const APACHE_ENVVARS: &str = r#"# envvars - default environment variables for apache2ctl

# this won't be correct after changing uid
unset HOME

# for supporting multiple apache2 instances
if [ "${APACHE_CONFDIR##/etc/apache2-}" != "${APACHE_CONFDIR}" ] ; then
	SUFFIX="-${APACHE_CONFDIR##/etc/apache2-}"
else
	SUFFIX=
fi

# Since there is no sane way to get the parsed apache2 config in scripts, some
# settings are defined via environment variables and then used in apache2ctl,
# /etc/init.d/apache2, /etc/logrotate.d/apache2, etc.
export APACHE_RUN_USER=www-data
export APACHE_RUN_GROUP=www-data
# temporary state file location. This might be changed to /run in Wheezy+1
export APACHE_PID_FILE=/var/run/apache2$SUFFIX/apache2.pid
export APACHE_RUN_DIR=/var/run/apache2$SUFFIX
export APACHE_LOCK_DIR=/var/lock/apache2$SUFFIX
# Only /var/log/apache2 is handled by /etc/logrotate.d/apache2.
export APACHE_LOG_DIR=/var/log/apache2$SUFFIX

## The locale used by some modules like mod_dav
export LANG=C
## Uncomment the following line to use the system default locale instead:
#. /etc/default/locale

export LANG

## The command to get the status for 'apache2ctl status'.
## Some packages providing 'www-browser' need '--dump' instead of '-dump'.
#export APACHE_LYNX='www-browser -dump'

## If you need a higher file descriptor limit, uncomment and adjust the
## following line (default is 8192):
#APACHE_ULIMIT_MAX_FILES='ulimit -n 65536'
"#;

fn base(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
}

fn vars(file: &EnvFile) -> Vec<(&str, &str)> {
    file.vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn get<'f>(file: &'f EnvFile, name: &str) -> Option<&'f str> {
    file.vars
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn check_apache(file: &EnvFile) {
    for (name, value) in [
        ("APACHE_RUN_USER", "www-data"),
        ("APACHE_RUN_GROUP", "www-data"),
        ("APACHE_PID_FILE", "/var/run/apache2/apache2.pid"),
        ("APACHE_RUN_DIR", "/var/run/apache2"),
        ("APACHE_LOCK_DIR", "/var/lock/apache2"),
        ("APACHE_LOG_DIR", "/var/log/apache2"),
        ("LANG", "C"),
    ] {
        assert_eq!(get(file, name), Some(value), "{name} in {file:?}");
    }
    assert_eq!(get(file, "SUFFIX"), None, "set only inside the if block");
    assert_eq!(file.unset, ["HOME"]);
    assert!(
        file.warnings
            .iter()
            .any(|w| w.starts_with("lines 7-11: `if` block skipped")),
        "{:?}",
        file.warnings
    );
}

#[test]
fn apache_envvars_embedded_copy() {
    let file = parse(
        APACHE_ENVVARS,
        &base(&[("HOME", "/root"), ("LANG", "en_US.UTF-8")]),
    );
    check_apache(&file);
    assert_eq!(file.warnings.len(), 1, "{:?}", file.warnings);
    assert_eq!(file.vars.len(), 7, "{:?}", file.vars);
}

#[test]
fn apache_envvars_on_this_host() {
    let path = Path::new("/etc/apache2/envvars");
    if !path.exists() {
        eprintln!(
            "SKIPPED: {} is missing (apache2 is not installed)",
            path.display()
        );
        return;
    }
    check_apache(&read(path, &base(&[("HOME", "/root")])).unwrap());
}

#[test]
fn each_form() {
    let text = r#"
# a comment
  # an indented comment
PLAIN=one
export EXPORTED=two   # trailing comment
SINGLE='it is $PLAIN and "quoted"'
DOUBLE="$PLAIN and ${EXPORTED} cost \$5 \"quoted\" \\ \x"
GLUED=a'b c'"d"e\ f
HASH=not#a#comment
EMPTY=
A=1 B=$A
export C=3 PLAIN
DEF=${MISSING:-fallback}/${PLAIN:-unused}/${EMPTY-kept}${EMPTY:-empty}
ASSIGNED=${NEW:=made} ALT=${PLAIN:+set}${MISSING+never}
FROM_BASE=$USER@$HOSTNAME
export PATH="/opt/bin:$PATH"
unset B GONE
REDEF=first
REDEF=second
MULTI='line one
line two'
JOINED=a\
b
X=1; export Y=2
"#;
    let file = parse(
        text,
        &base(&[("USER", "ada"), ("PATH", "/usr/bin"), ("GONE", "x")]),
    );
    assert_eq!(file.warnings, Vec::<String>::new());
    assert_eq!(
        vars(&file),
        [
            ("PLAIN", "one"),
            ("EXPORTED", "two"),
            ("SINGLE", "it is $PLAIN and \"quoted\""),
            ("DOUBLE", "one and two cost $5 \"quoted\" \\ \\x"),
            ("GLUED", "ab cde f"),
            ("HASH", "not#a#comment"),
            ("EMPTY", ""),
            ("A", "1"),
            ("C", "3"),
            ("DEF", "fallback/one/empty"),
            ("NEW", "made"),
            ("ASSIGNED", "made"),
            ("ALT", "set"),
            ("FROM_BASE", "ada@"),
            ("PATH", "/opt/bin:/usr/bin"),
            ("REDEF", "second"),
            ("MULTI", "line one\nline two"),
            ("JOINED", "ab"),
            ("X", "1"),
            ("Y", "2"),
        ]
    );
    assert_eq!(file.unset, ["B", "GONE"]);
}

#[test]
fn unset_hides_the_base_and_a_later_definition_wins() {
    let file = parse(
        "unset HOME\nH=${HOME:-none}\nHOME=/srv\nunset X\nX=$HOME\nY=1\nunset Y\n",
        &base(&[("HOME", "/root")]),
    );
    assert_eq!(
        vars(&file),
        [("H", "none"), ("HOME", "/srv"), ("X", "/srv")]
    );
    assert_eq!(file.unset, ["Y"]);
}

#[test]
fn what_is_not_understood_is_skipped_with_its_line() {
    let text = "\
A=1
echo hello
B=$(hostname)
C=`date`
D=${A#x}
[ -f /etc/x ] && E=1
for f in a b; do
  F=$f
done
G=1 make
case $A in
  1) H=1 ;;
esac
if true; then I=1; fi
J=~/bin
K=$1
L='unclosed
M=2
N=${A:?unset}
fi
. /etc/default/locale
";
    let file = parse(text, &[]);
    assert_eq!(vars(&file), [("A", "1"), ("M", "2")]);
    let w = &file.warnings;
    let expect = [
        "line 2: skipped `echo hello`: `echo` is a command",
        "line 3: skipped `B=$(hostname)`: command substitution",
        "line 4: skipped `C=`date``: command substitution (backquotes)",
        "line 5: skipped `D=${A#x}`: pattern removal",
        "line 6: skipped `[ -f /etc/x ] && E=1`: `&&` lists",
        "lines 7-9: `for` block skipped",
        "line 10: skipped `G=1 make`: a command run with variables",
        "lines 11-13: `case` block skipped",
        "line 14: `if` skipped",
        "line 15: skipped `J=~/bin`: `~` is not expanded",
        "line 16: skipped `K=$1`: the special parameter `$1`",
        "line 17: skipped `L='unclosed`: unterminated quote",
        "line 19: skipped `N=${A:?unset}`",
        "line 20: skipped `fi`: `fi` outside its block",
        "line 21: skipped `. /etc/default/locale`: other files are not read",
    ];
    assert_eq!(w.len(), expect.len(), "{w:#?}");
    for (got, want) in w.iter().zip(expect) {
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }
}

#[test]
fn a_line_applies_whole_or_not_at_all() {
    let file = parse("A=1; echo x\nB=${C:=2} D=$(x)\n", &[]);
    assert_eq!(file.vars, Vec::<(String, String)>::new());
    assert_eq!(file.warnings.len(), 2);
}

#[test]
fn unterminated_blocks_and_functions() {
    let file = parse("A=1\nf() {\n  B=2\n}\nC=3\nwhile true\nD=4\n", &[]);
    assert_eq!(vars(&file), [("A", "1"), ("C", "3")]);
    assert!(
        file.warnings[0].starts_with("lines 2-4: `function` block skipped"),
        "{:?}",
        file.warnings
    );
    assert!(
        file.warnings[1].starts_with("lines 6-7: `while` without its end"),
        "{:?}",
        file.warnings
    );
}

#[test]
fn non_utf8_base_values_are_not_guessed() {
    use std::os::unix::ffi::OsStringExt;
    let base = vec![(
        OsString::from("RAW"),
        OsString::from_vec(b"caf\xe9".to_vec()),
    )];
    let file = parse("A=$RAW\nB='$RAW'\n", &base);
    assert_eq!(vars(&file), [("B", "$RAW")]);
    assert_eq!(
        file.warnings,
        ["line 1: skipped `A=$RAW`: the value of `$RAW` is not UTF-8"]
    );
}

#[test]
fn crlf_and_bom() {
    let file = parse("\u{feff}A=1\r\nexport B=\"x y\"\r\n", &[]);
    assert_eq!(vars(&file), [("A", "1"), ("B", "x y")]);
    assert!(file.warnings.is_empty());
}

#[test]
fn read_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.env");
    let e = read(&missing, &[]).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cannot read the env file {}: ", missing.display())),
        "{e}"
    );

    let latin1 = dir.path().join("latin1.env");
    std::fs::write(&latin1, b"A=1\nB=caf\xe9\n").unwrap();
    let e = read(&latin1, &[]).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "the env file {} is not UTF-8 text (line 2)",
            latin1.display()
        )
    );

    let good = dir.path().join("good.env");
    std::fs::write(&good, "export A=1\n").unwrap();
    assert_eq!(vars(&read(&good, &[]).unwrap()), [("A", "1")]);
}

#[test]
fn a_skipped_line_that_sets_a_secret_is_named_not_shown() {
    let file = parse("export DB_PASSWORD=hunter2; restart-db\n", &[]);
    assert_eq!(file.warnings.len(), 1);
    assert!(
        file.warnings[0].contains("DB_PASSWORD"),
        "{:?}",
        file.warnings
    );
    assert!(!file.warnings[0].contains("hunter2"), "{:?}", file.warnings);
}
