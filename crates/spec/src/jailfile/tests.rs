//! Tests of [`super`].
use super::*;

fn parse(text: &str) -> Result<JailFile, JailFileError> {
    JailFile::parse(Path::new("/etc/jails/web.toml"), text)
}

#[test]
fn a_whole_jail_file_reads_and_becomes_run_arguments() {
    let file = parse(
        r#"
root = "web.jail"
[policy]
deny = ['^/etc/secret']
[accounts]
keep_users = ["www-data"]
[[program]]
command = ["/bin/date", "+%F"]
[[program]]
name = "web"
command = ["/usr/sbin/nginx", "-g", "daemon off;"]
ready = ["tcp:127.0.0.1:8080"]
env = { TZ = "UTC" }
env_file = "web.env"
"#,
    )
    .unwrap();
    assert_eq!(file.root, Path::new("/etc/jails/web.jail"));
    assert_eq!(file.manifest_path(), Path::new("/etc/jails/web.jail.json"));
    assert_eq!(file.programs.len(), 2);
    let args: Vec<String> = file
        .run_args(1)
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        args,
        [
            "--root",
            "/etc/jails/web.jail",
            "--manifest",
            "/etc/jails/web.jail.json",
            "--deny",
            "^/etc/secret",
            "--keep-user",
            "www-data",
            "--program",
            "web",
            "--env",
            "TZ=UTC",
            "--env-file",
            "/etc/jails/web.env",
            "--ready",
            "tcp:127.0.0.1:8080",
            "--",
            "/usr/sbin/nginx",
            "-g",
            "daemon off;"
        ]
    );
}

#[test]
fn a_typo_names_the_file_line_and_column() {
    let err = parse("root = \"r\"\n[[program]]\ncomand = [\"/bin/date\"]\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("/etc/jails/web.toml:3:1: "), "{text}");
    assert!(text.contains("comand"), "{text}");
}

#[test]
fn a_wrong_type_names_the_place() {
    let err = parse("root = \"r\"\n[[program]]\ncommand = \"/bin/date\"\n").unwrap_err();
    assert!(
        err.to_string().starts_with("/etc/jails/web.toml:3:11: "),
        "{err}"
    );
}

#[test]
fn programs_must_be_there_named_once_with_a_command() {
    for (text, needle) in [
        ("root = \"r\"\n", "program"),
        ("root = \"r\"\n[[program]]\ncommand = []\n", "`command` is empty"),
        (
            "root = \"r\"\n[[program]]\ncommand = [\"/bin/date\"]\n[[program]]\ncommand = [\"/usr/bin/date\"]\n",
            "two programs are called \"date\"",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[test]
fn binds_go_with_the_first_program_and_exercises_keep_their_order() {
    let file = parse(
        r#"
root = "r"
binds = ["/srv/www:/var/www:ro"]
mkdirs = ["/run/app:0700"]
[[program]]
command = ["/usr/sbin/nginx"]
exercises = [{ command = "true" }, { probe = "http://127.0.0.1/" }, { command = "false" }]
[[program]]
command = ["/bin/date"]
"#,
    )
    .unwrap();
    let args = |i| -> Vec<String> {
        file.run_args(i)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    let first = args(0).join(" ");
    assert!(
        first.contains("--exercise true --probe http://127.0.0.1/ --exercise false"),
        "{first}"
    );
    assert!(
        first.contains("--bind /srv/www:/var/www:ro --mkdir /run/app:0700"),
        "{first}"
    );
    let second = args(1).join(" ");
    assert!(
        !second.contains("--bind") && !second.contains("--mkdir"),
        "{second}"
    );
    let err = parse(
        "root = \"r\"\n[[program]]\ncommand = [\"/bin/date\"]\nexercises = [{ curl = \"x\" }]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(":4:"), "{err}");
}

#[test]
fn later_programs_run_with_the_earlier_servers_unless_told_otherwise() {
    let file = parse(
        r#"
root = "lamp.jail"
[[program]]
command = ["/bin/true"]
[[program]]
name = "db"
command = ["/usr/sbin/mariadbd"]
ready = ["log:ready for connections"]
[[program]]
name = "cache"
command = ["/usr/bin/redis-server"]
ready = ["tcp:127.0.0.1:6379"]
[[program]]
name = "web"
command = ["/usr/sbin/apache2", "-DFOREGROUND"]
ready = ["tcp:127.0.0.1:8080"]
[[program]]
name = "alone"
command = ["/bin/date"]
with = []
[[program]]
name = "client"
command = ["/usr/bin/mariadb", "-e", "select 1"]
with = ["db"]
"#,
    )
    .unwrap();
    let with: Vec<Vec<String>> = (0..file.programs.len()).map(|i| file.with(i)).collect();
    assert_eq!(
        with,
        [
            vec![],
            vec![],
            vec!["db".to_string()],
            vec!["db".to_string(), "cache".to_string()],
            vec![],
            vec!["db".to_string()],
        ]
    );
    let args: Vec<String> = file
        .run_args(3)
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let at = args.iter().position(|a| a == "--with").unwrap();
    assert_eq!(args[at..at + 4], ["--with", "db", "--with", "cache"]);
}

#[test]
fn with_names_only_programs_listed_before() {
    for (text, needle) in [
        (
            "root = \"r\"\n[[program]]\nname = \"a\"\ncommand = [\"/bin/true\"]\nwith = [\"b\"]\n[[program]]\nname = \"b\"\ncommand = [\"/bin/true\"]\n",
            "program \"a\": `with` names \"b\", which is not a program listed before it",
        ),
        (
            "root = \"r\"\n[[program]]\nname = \"a\"\ncommand = [\"/bin/true\"]\nwith = [\"a\"]\n",
            "program \"a\": `with` names \"a\"",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn a_relative_bind_is_the_files_neighbour() {
    let file = parse(
        "root = \"r\"\nbinds = [\"site:/srv/site:ro\", \"/var/lib/db:/var/lib/mysql\", \"/srv/x\", \"data\"]\n[[program]]\ncommand = [\"/bin/true\"]\n",
    )
    .unwrap();
    assert_eq!(
        file.binds,
        [
            "/etc/jails/site:/srv/site:ro",
            "/var/lib/db:/var/lib/mysql",
            "/srv/x",
            // No jail path: left for `--bind` to refuse or take as it is.
            "data"
        ]
    );
}

#[test]
fn a_unit_program_needs_no_command() {
    let path = Path::new("/srv/j/web.jail.toml");
    let file = JailFile::parse(
        path,
        "root = \"r\"\n[[program]]\nunit = \"redis-server\"\n[[program]]\nunit = \"/etc/x/nginx.service\"\nready = [\"tcp:127.0.0.1:80\"]\n",
    )
    .unwrap();
    assert_eq!(file.program_name(0), "redis-server");
    assert_eq!(file.program_name(1), "nginx");
    assert_eq!(file.with(1), ["redis-server"]);
    let args: Vec<String> = file
        .run_args(0)
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert!(
        args.windows(2).any(|w| w == ["--unit", "redis-server"]),
        "{args:?}"
    );
    assert!(!args.contains(&"--".to_string()), "{args:?}");
    let err = JailFile::parse(path, "root = \"r\"\n[[program]]\nname = \"x\"\n").unwrap_err();
    assert!(
        err.to_string().contains("give a command or a `unit`"),
        "{err}"
    );
}
