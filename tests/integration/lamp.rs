//! A LAMP jail from one jail file (`examples/lamp.jail.toml`): Debian's
//! MariaDB and Apache with mod_php in one root. MariaDB runs as `mysql` on
//! a data directory this test initialises (bound into the jail) and
//! listens on a unix socket in the jail; Apache serves a PHP page that
//! connects over that socket, makes a table, adds a row and prints it.
//! Apache runs with MariaDB in each of its runs (a stack), so the page's
//! exercise reaches a live database. After `jailtrace up`, plain `chroot`
//! (with the mounts the summary prints) starts both servers and the page
//! returns the row; the same file without Apache's exercise gives a jail
//! whose page fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use jailtrace_manifest::Manifest;

use crate::cmd::{self, Mounted};
use crate::jail::Jail;
use crate::net::{
    free_port, http_get, http_get_retry, require_server, spawn_chroot, ServerGuard, SERVE_WITHIN,
    STOP_WITHIN,
};
use crate::servers::{prepare_apache_host, APACHE, APACHE_ENV};
use crate::util::{require_root, BASE_ENV};

const MARIADBD: &str = "/usr/sbin/mariadbd";
const PHP_MODULE: &str = "/usr/lib/apache2/modules/libphp8.2.so";
const MYSQLI: &str = "/etc/php/8.2/apache2/conf.d/20-mysqli.ini";
/// The port the example listens on; each test replaces it with a free one.
const EXAMPLE_PORT: &str = "8089";

/// The example copied into `dir` with its port replaced, and a data
/// directory initialised by `mariadb-install-db`; returns the jail file.
fn lamp_example(dir: &Path, port: u16, exercised: bool) -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let site = dir.join("lamp/site");
    fs::create_dir_all(&site).unwrap();
    for name in ["apache2.conf", "index.php"] {
        let text = fs::read_to_string(examples.join("lamp/site").join(name)).unwrap();
        fs::write(
            site.join(name),
            text.replace(EXAMPLE_PORT, &port.to_string()),
        )
        .unwrap();
    }
    // Apache's children (www-data) read the page through the bind.
    for d in [dir, &dir.join("lamp"), &site] {
        fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let mut text = fs::read_to_string(examples.join("lamp.jail.toml"))
        .unwrap()
        .replace(EXAMPLE_PORT, &port.to_string());
    if !exercised {
        let probe = format!("exercises = [{{ probe = \"http://127.0.0.1:{port}/\" }}]\n");
        assert!(
            text.contains(&probe),
            "the example's exercise changed: {text}"
        );
        text = text.replace(&probe, "");
    }
    let file = dir.join("lamp.jail.toml");
    fs::write(&file, text).unwrap();

    // A temporary directory of its own: the server it starts removes every
    // `#sql` file in its tmpdir as it starts, and the other LAMP test
    // installs its data directory at the same time (its tables vanished:
    // "Could not remove temporary table '/tmp/#sql-temptable-…', error: 2").
    let tmp = dir.join("lamp/install-tmp");
    fs::create_dir_all(&tmp).unwrap();
    fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let mut install = Command::new("mariadb-install-db");
    install
        .arg("--user=mysql")
        .arg(format!("--datadir={}", dir.join("lamp/data").display()))
        .args(["--auth-root-authentication-method=socket", "--skip-test-db"])
        .arg(format!("--tmpdir={}", tmp.display()));
    cmd::run(install, cmd::PROGRAM_TIMEOUT).assert_success();
    file
}

fn require_lamp(test: &str) -> bool {
    require_root(test)
        && require_server(test, MARIADBD, "mariadb-server")
        && require_server(test, APACHE, "apache2")
        && require_server(test, PHP_MODULE, "libapache2-mod-php")
        && require_server(test, MYSQLI, "php-mysql")
}

/// Removes the servers' pid files, as a boot's fresh /run would: a server
/// killed at a deadline (here, or in jailtrace's last run on a loaded
/// machine) leaves its pid file, and the next start would think it running
/// (Apache: "httpd (pid 13) already running", pid 13 being any host task).
fn clear_pid_files(root: &Path) {
    for pid_file in ["run/apache2/apache2.pid", "run/mysqld/mysqld.pid"] {
        let _ = std::fs::remove_file(root.join(pid_file));
    }
}

/// What the page answers when MariaDB and Apache run from `root` under
/// plain chroot, as the example's header says to start them.
fn serve_page(root: &Path, manifest: &Manifest, port: u16) -> Result<String, String> {
    clear_pid_files(root);
    let guard = ServerGuard::new(&[root], &[]);
    let _mounts = Mounted::manifest(root, manifest);
    let mut db = Command::new("/usr/sbin/chroot");
    db.arg("--userspec=mysql:mysql")
        .arg(root)
        .args([
            MARIADBD,
            "--no-defaults",
            "--datadir=/var/lib/mysql",
            "--socket=/run/mysqld/mysqld.sock",
            "--pid-file=/run/mysqld/mysqld.pid",
            "--skip-networking",
        ])
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .current_dir("/");
    let db = cmd::spawn(db);
    let socket = root.join("run/mysqld/mysqld.sock");
    let deadline = std::time::Instant::now() + SERVE_WITHIN;
    while !socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let web = spawn_chroot(
        root,
        &[APACHE, "-f", "/srv/lamp/apache2.conf", "-DFOREGROUND"],
        APACHE_ENV,
    );
    let answer = http_get_retry(port, "/apache2.conf", SERVE_WITHIN).and_then(|_| {
        let page = http_get(port, "/").map_err(|e| format!("GET /: {e}"))?;
        let body = String::from_utf8_lossy(&page.body).into_owned();
        if page.status == 200 {
            Ok(body)
        } else {
            Err(format!("GET / answered {}: {body}", page.head))
        }
    });
    for server in [&web, &db] {
        crate::net::sigterm(server.pid());
    }
    let web = web.wait(STOP_WITHIN);
    let db = db.wait(STOP_WITHIN);
    guard.kill_all();
    clear_pid_files(root);
    answer.map_err(|e| {
        format!(
            "{e}\n== apache ==\n{}\n== mariadb ==\n{}",
            web.report(),
            db.report()
        )
    })
}

#[test]
fn a_lamp_jail_from_one_jail_file_serves_its_php_page_under_plain_chroot() {
    const NAME: &str = "a_lamp_jail_from_one_jail_file_serves_its_php_page_under_plain_chroot";
    if !require_lamp(NAME) {
        return;
    }
    prepare_apache_host();
    let jail = Jail::new("lamp");
    let port = free_port();
    let file = lamp_example(&jail.path, port, true);
    let root = jail.join("lamp.jail");
    let _guard = ServerGuard::new(&[&root], &[]);
    let up = jail.jailtrace(&["up", file.to_str().unwrap()], BASE_ENV);
    up.assert_success();

    let manifest_path = jail.join("lamp.jail.json");
    let manifest = Manifest::read(&manifest_path).unwrap();
    let names: Vec<&str> = manifest.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["mariadb", "apache2"]);
    // Apache ran with MariaDB, a server listed before it.
    assert_eq!(manifest.programs[1].command.with, ["mariadb"]);
    // The data directory is bound, not copied.
    let data = manifest
        .mounts
        .iter()
        .find(|m| m.path.as_path() == Path::new("/var/lib/mysql"))
        .expect("the data directory is a mount");
    assert!(data.is_bind(), "{data:?}");
    let data_dir = Path::new("/var/lib/mysql");
    let copied: Vec<&Path> = manifest
        .entries
        .iter()
        .map(|e| e.path.as_path())
        .filter(|p| p.starts_with(data_dir) && *p != data_dir)
        .collect();
    assert!(
        copied.is_empty(),
        "the data directory is copied: {copied:?}"
    );
    // What only the page needed is placed with the exercise as its reason.
    let by_exercise: Vec<&Path> = manifest
        .entries
        .iter()
        .filter(|e| e.reason.exercise.is_some())
        .map(|e| e.path.as_path())
        .collect();
    assert!(
        by_exercise.contains(&Path::new("/usr/share/zoneinfo/America/New_York")),
        "{by_exercise:?}"
    );

    let body = serve_page(&root, &manifest, port).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        body.starts_with("row ") && body.contains(": hello from the jail at 1969-12-31 19:00 EST"),
        "{body}"
    );

    // Again, on the unchanged host: nothing placed, the same jail.
    crate::jailfile_up::assert_up_again_changes_nothing(&jail, &file, &manifest_path);
}

#[test]
fn without_its_exercise_the_lamp_jail_starts_but_its_page_fails() {
    const NAME: &str = "without_its_exercise_the_lamp_jail_starts_but_its_page_fails";
    if !require_lamp(NAME) {
        return;
    }
    prepare_apache_host();
    let jail = Jail::new("lamp-unexercised");
    let port = free_port();
    let file = lamp_example(&jail.path, port, false);
    let root = jail.join("lamp.jail");
    let _guard = ServerGuard::new(&[&root], &[]);
    jail.jailtrace(&["up", file.to_str().unwrap()], BASE_ENV)
        .assert_success();
    let manifest = Manifest::read(&jail.join("lamp.jail.json")).unwrap();
    assert!(manifest.programs[1].command.exercises.is_empty());
    let answer = serve_page(&root, &manifest, port);
    assert!(
        answer.is_err(),
        "the page works although nothing exercised it: {answer:?}"
    );
}
