//! Accounts by experiment, and no run that cannot change anything.
//!
//! - sshd -t looks its privilege-separation user up by name and never
//!   switches to it: jailed without `--keep-user`, `sshd` is found by the
//!   account search in a number of runs that grows with the logarithm of
//!   the host's account count, and the jail then runs under plain chroot.
//! - `lookup CONFIG` (`fixtures/accounts/lookup.c`) looks up a user and a
//!   group named only in the configuration file it reads: both are found,
//!   nothing else is kept.
//! - A program that needs a denied secret ends after the runs that can
//!   change something, naming the denied path.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use jailtrace_manifest::{AccountKind, Cause};
use serde_json::Value;

use crate::cmd::chroot_output;
use crate::fixtures::{self, BuildError};
use crate::jail::{exit, Jail, Outcome};
use crate::util::{self, require_root, BASE_ENV};

/// `lookup CONFIG`, compiled once.
fn lookup_fixture(test: &str) -> Option<&'static String> {
    static BUILT: OnceLock<Result<String, BuildError>> = OnceLock::new();
    fixtures::built(&BUILT, build_lookup, test)
}

fn build_lookup() -> Result<String, BuildError> {
    fixtures::Compiler::new("accounts")?.compile("lookup", "lookup.c", &[])
}

/// The `--json` summary on stdout.
fn summary_json(out: &Outcome) -> Value {
    let stdout = out.finished.stdout_text();
    let start = stdout.find('{').unwrap_or_else(|| {
        panic!("no JSON summary on stdout\n{}", out.finished.report());
    });
    serde_json::from_str(&stdout[start..]).unwrap_or_else(|e| {
        panic!("the summary is not JSON: {e}\n{}", out.finished.report());
    })
}

/// The host's accounts: the entries of /etc/passwd and /etc/group.
fn host_accounts() -> usize {
    ["/etc/passwd", "/etc/group"]
        .iter()
        .map(|db| {
            fs::read_to_string(db)
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .count()
        })
        .sum()
}

fn log2_ceil(n: usize) -> usize {
    (usize::BITS - (n.max(1) - 1).leading_zeros()) as usize
}

/// The names in a jail's database.
fn names(root: &Path, db: &str) -> Vec<String> {
    fs::read_to_string(root.join(db))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            assert_eq!(fields.get(1), Some(&"x"), "a password field is not x: {l}");
            fields[0].to_string()
        })
        .collect()
}

/// The `accounts_found` of a summary as (kind, name).
fn found(summary: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = summary["accounts_found"]
        .as_array()
        .unwrap_or_else(|| panic!("no accounts_found in {summary}"))
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap_or_default().to_string(),
                a["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn sshd_finds_its_privilege_separation_user_by_experiment() {
    const NAME: &str = "sshd_finds_its_privilege_separation_user_by_experiment";
    if !require_root(NAME) {
        return;
    }
    if !Path::new("/usr/sbin/sshd").exists() {
        util::skip(NAME, "needs openssh-server (/usr/sbin/sshd)");
        return;
    }
    if !Path::new("/etc/ssh/ssh_host_ed25519_key").exists() {
        let keygen = std::process::Command::new("ssh-keygen")
            .arg("-A")
            .status()
            .expect("ssh-keygen runs");
        assert!(keygen.success(), "ssh-keygen -A failed");
    }
    let jail = Jail::new("sshd-lookup");
    let argv = ["/usr/sbin/sshd", "-t", "-f", "/etc/ssh/sshd_config"];
    let out = jail.run(
        &argv,
        &["--allow", "^/etc/ssh/ssh_host_", "--mkdir", "/run/sshd"],
        BASE_ENV,
    );
    let summary = out.expect_ok();
    let bound = 2 + log2_ceil(host_accounts()) + 2;
    assert!(
        summary.runs as usize <= bound,
        "{} runs, more than 2 + ⌈log2({})⌉ + 2 = {bound}\n{}",
        summary.runs,
        host_accounts(),
        out.finished.report()
    );
    assert_eq!(names(&jail.root, "etc/passwd"), ["root", "sshd"]);
    let json = summary_json(&out);
    assert_eq!(found(&json), [("user".into(), "sshd".into())]);
    assert!(json["account_search"]["runs"].as_u64().unwrap_or(0) >= 1);
    let text = out.finished.stderr_text();
    assert!(!text.contains("hint:"), "{text}");

    let manifest = out.manifest();
    let sshd = manifest
        .accounts
        .iter()
        .find(|a| a.name == "sshd")
        .expect("the manifest records sshd");
    assert_eq!(sshd.kind, AccountKind::User);
    assert_eq!(sshd.reason.cause, Cause::Lookup);
    let run = |i: u32| &manifest.runs[i as usize - 1];
    assert!(run(sshd.reason.run).ready, "sshd's run started");
    assert!(
        !run(sshd.failed_without).ready,
        "the run without sshd did not"
    );
    assert_eq!(manifest.runs.last().map(|r| r.misses), Some(0));

    let chrooted = chroot_output(&jail.root, &argv, BASE_ENV);
    chrooted.assert_success();
}

#[test]
fn a_user_and_a_group_named_in_a_config_file_are_found_and_nothing_else() {
    const NAME: &str = "a_user_and_a_group_named_in_a_config_file_are_found_and_nothing_else";
    if !require_root(NAME) {
        return;
    }
    let Some(lookup) = lookup_fixture(NAME) else {
        return;
    };
    // Debian's own: a user that owns no file of the jail, a group that is
    // no user's primary group.
    let (user, group) = ("news", "staff");
    let host_passwd = fs::read_to_string("/etc/passwd").unwrap();
    let host_group = fs::read_to_string("/etc/group").unwrap();
    if !host_passwd.lines().any(|l| l.starts_with("news:"))
        || !host_group.lines().any(|l| l.starts_with("staff:"))
    {
        util::skip(NAME, "needs Debian's `news` user and `staff` group");
        return;
    }
    let jail = Jail::new("lookup");
    let config = jail.join("lookup.conf");
    fs::write(&config, format!("user {user}\ngroup {group}\n")).unwrap();
    let config = config.to_str().unwrap();
    let allow = jail.allow_own_files();
    let allow: Vec<&str> = allow.iter().map(String::as_str).collect();
    let out = jail.run(&[lookup, config], &allow, BASE_ENV);
    out.expect_ok();
    let json = summary_json(&out);
    assert_eq!(
        found(&json),
        [("group".into(), group.into()), ("user".into(), user.into())]
    );
    // The user's primary group comes with it, as with --keep-user.
    assert_eq!(names(&jail.root, "etc/passwd"), ["root", user]);
    assert_eq!(names(&jail.root, "etc/group"), ["root", user, group]);
    let manifest = out.manifest();
    assert!(manifest
        .accounts
        .iter()
        .all(|a| a.reason.cause == Cause::Lookup));

    let chrooted = chroot_output(&jail.root, &[lookup, config], BASE_ENV);
    chrooted.assert_success();
    assert!(chrooted.stdout_text().contains("group staff"));
}

#[test]
fn a_denied_secret_that_stopped_the_first_run_is_named_when_a_later_run_stops_sooner() {
    const NAME: &str =
        "a_denied_secret_that_stopped_the_first_run_is_named_when_a_later_run_stops_sooner";
    if !require_root(NAME) {
        return;
    }
    let Some(lookup) = lookup_fixture(NAME) else {
        return;
    };
    // The discovering run (the host's accounts) finds www-data and stops
    // at the denied secret; the verifying run (the jail's accounts) stops
    // sooner, at www-data, and never asks for the secret. No run started,
    // so no account search says more: the secret is what to name.
    let jail = Jail::new("lookup-secret-first");
    let secret = jail.join("app.key");
    fs::write(&secret, "s3cret\n").unwrap();
    let config = jail.join("lookup.conf");
    fs::write(
        &config,
        format!("strict\nuser www-data\nsecret {}\n", secret.display()),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let out = jail.run(&[lookup, config], &["--deny", "/app\\.key$"], BASE_ENV);
    out.finished.assert_no_panic();
    assert_ne!(out.finished.status.code(), Some(exit::OK));
    let json = summary_json(&out);
    let cause = json["likely_cause"].as_array().expect("likely_cause");
    assert_eq!(cause.len(), 1, "{json}");
    assert_eq!(cause[0]["path"], secret.to_str().unwrap(), "{json}");
}

#[test]
fn a_program_that_needs_a_denied_secret_ends_naming_it() {
    const NAME: &str = "a_program_that_needs_a_denied_secret_ends_naming_it";
    if !require_root(NAME) {
        return;
    }
    let Some(lookup) = lookup_fixture(NAME) else {
        return;
    };
    let jail = Jail::new("lookup-secret");
    let secret = jail.join("app.key");
    fs::write(&secret, "s3cret\n").unwrap();
    let config = jail.join("lookup.conf");
    // It looks root up too: the account databases are read, and the
    // account search must not take the secret for an account.
    fs::write(&config, format!("user root\nsecret {}\n", secret.display())).unwrap();
    let config = config.to_str().unwrap();
    // The configuration is an argument: it is copied although it lies
    // in /tmp; the secret is not.
    let out = jail.run(&[lookup, config], &["--deny", "/app\\.key$"], BASE_ENV);
    out.finished
        .assert_no_panic()
        .assert_code(exit::NOT_STARTED);
    let json = summary_json(&out);
    assert_eq!(json["runs"], 2, "{}", out.finished.report());
    let cause = json["likely_cause"].as_array().expect("likely_cause");
    assert_eq!(cause.len(), 1, "{json}");
    assert_eq!(cause[0]["path"], secret.to_str().unwrap());
    let text = out.finished.stderr_text();
    assert!(
        text.contains(&format!(
            "likely cause: the program needs {}",
            secret.display()
        )),
        "{text}"
    );
    assert!(!jail.root.join(secret.strip_prefix("/").unwrap()).exists());
}

#[test]
fn a_run_that_would_repeat_an_earlier_one_is_not_made() {
    const NAME: &str = "a_run_that_would_repeat_an_earlier_one_is_not_made";
    if !require_root(NAME) {
        return;
    }
    // The program removes the file it reads: each verifying run misses
    // it, each retry places it again, and the root comes out as it was.
    // Without the rule this ran until --max-runs (50).
    let jail = Jail::new("consumed");
    let token = jail.join("token");
    fs::write(&token, "once\n").unwrap();
    let script = format!("cat {0} && rm {0}", token.display());
    let allow = jail.allow_own_files();
    let allow: Vec<&str> = allow.iter().map(String::as_str).collect();
    let out = jail.run(&["/bin/sh", "-c", &script], &allow, BASE_ENV);
    out.finished
        .assert_no_panic()
        .assert_code(exit::STILL_MISSING);
    let json = summary_json(&out);
    assert_eq!(json["runs"], 3, "{}", out.finished.report());
    assert_eq!(json["repeat"]["run"], 4, "{json}");
    assert_eq!(json["repeat"]["same_as"], 2, "{json}");
    assert_eq!(json["missing"][0], token.to_str().unwrap(), "{json}");
    assert!(
        out.finished.stderr_text().contains("stopped before run 4"),
        "{}",
        out.finished.report()
    );
    assert!(token.exists(), "the host's file is left alone");
}

#[test]
fn doctor_proposes_the_account_search_and_run_performs_it() {
    const NAME: &str = "doctor_proposes_the_account_search_and_run_performs_it";
    if !require_root(NAME) {
        return;
    }
    let Some(lookup) = lookup_fixture(NAME) else {
        return;
    };
    if !fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("staff:"))
    {
        util::skip(NAME, "needs Debian's `staff` group");
        return;
    }
    let jail = Jail::new("lookup-doctor");
    let config = jail.join("lookup.conf");
    fs::write(&config, "user root\ngroup root\n").unwrap();
    let config_text = config.to_str().unwrap();
    let argv = [lookup.as_str(), config_text];
    jail.run(&argv, &[], BASE_ENV).expect_ok();
    // The jail's copy of the configuration now names a group the jail
    // lacks, and the program's message does not name it.
    let in_jail = jail.root.join(config.strip_prefix("/").unwrap());
    fs::write(&in_jail, "quiet\nuser root\ngroup staff\n").unwrap();
    let root = jail.root.to_str().unwrap();
    let doctor = jail.jailtrace(
        &["doctor", "--root", root, "--json", "--", argv[0], argv[1]],
        BASE_ENV,
    );
    doctor.assert_no_panic().assert_code(2);
    let report: Value = serde_json::from_str(&doctor.stdout_text())
        .unwrap_or_else(|e| panic!("doctor --json: {e}\n{}", doctor.report()));
    let diagnoses = report["diagnoses"].as_array().expect("diagnoses");
    let search = diagnoses
        .iter()
        .find(|d| d["kind"] == "account_search")
        .unwrap_or_else(|| panic!("no account_search in {report}"));
    assert!(search["lacking"].as_u64().unwrap_or(0) > 0, "{search}");
    assert!(
        search["message"]
            .as_str()
            .unwrap_or_default()
            .contains("jailtrace run"),
        "{search}"
    );

    // What it proposes: a run into the jail finds the group.
    let again = jail.run(&argv, &[], BASE_ENV);
    again.expect_ok();
    assert_eq!(
        found(&summary_json(&again)),
        [("group".into(), "staff".into())]
    );
    assert_eq!(names(&jail.root, "etc/group"), ["root", "staff"]);
}

#[test]
fn a_program_that_starts_only_once_is_not_taken_for_an_account_lookup() {
    const NAME: &str = "a_program_that_starts_only_once_is_not_taken_for_an_account_lookup";
    if !require_root(NAME) {
        return;
    }
    // It reads /etc/passwd, and the directory its first run made stops
    // every later one: one run with every host account says accounts are
    // not the difference, and the loop ends.
    let jail = Jail::new("once");
    let script = "id -un >/dev/null && mkdir /var/tmp/once";
    let out = jail.run(&["/bin/sh", "-c", script], &[], BASE_ENV);
    out.finished
        .assert_no_panic()
        .assert_code(exit::NOT_STARTED);
    let json = summary_json(&out);
    assert_eq!(json["runs"], 3, "{}", out.finished.report());
    assert_eq!(json["roles"][2], "lookup", "{json}");
    assert_eq!(json["account_search"]["not_accounts"], 3, "{json}");
    assert_eq!(found(&json), Vec::<(String, String)>::new());
    let hints = json["hints"].to_string();
    assert!(hints.contains("accounts are not what it lacks"), "{hints}");
}
