//! The caller's environment stays out of everything jailtrace writes and
//! prints. A run is made from an environment holding credentials; the
//! program (a real shell) proves it received exactly the variables it was
//! given by writing a SHA-256 of their values into the jail; then every
//! export format and every read-only command runs, and no planted secret
//! value may appear in any file under the test's directory (gzip'd OCI
//! layers unpacked) or in any byte any command printed.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cmd::Finished;
use crate::jail::{exit, Jail};
use crate::util::{self, require_root};

/// Planted values, each distinctive enough never to occur by chance.
const TOKEN: &str = "ghp_PLANTEDtoken0123456789abcdef";
const CLOUD: &str = "PLANTEDcloudSecretKey/wJalrXUtnFEMI";
const PASSWORD: &str = "PLANTEDpassw0rd-correct-horse";
const PRIVATE_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----PLANTEDb3BlbnNzaC1rZXk";
const UNRELATED: &str = "PLANTEDunrelated-harmless-value";
const PASSED: &str = "PLANTEDpassed-harmless-value";

/// Values that must never be written or printed.
const SECRETS: &[&str] = &[TOKEN, CLOUD, PASSWORD, PRIVATE_KEY];

/// jailtrace's (the caller's) environment.
fn caller_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PATH", util::PATH),
        ("GITHUB_TOKEN", TOKEN),
        ("AWS_SECRET_ACCESS_KEY", CLOUD),
        ("DEPLOY_CERT", PRIVATE_KEY),
        ("UNRELATED_SETTING", UNRELATED),
        ("APP_MODE", PASSED),
        ("TZ", "Asia/Tokyo"),
    ]
}

/// The program: prints nothing, writes the SHA-256 of the variables'
/// values (one per line, `unset` for an unset one) to /env.sha256.
const PROGRAM: &[&str] = &[
    "/bin/sh",
    "-c",
    "for v in GITHUB_TOKEN AWS_SECRET_ACCESS_KEY DB_PASSWORD DEPLOY_CERT APP_MODE UNRELATED_SETTING TZ; do \
       eval \"printf '%s\\n' \\\"\\${$v-unset}\\\"\"; done | sha256sum > /env.sha256",
];

/// The digest the program writes when it got what it should.
fn expected_digest() -> String {
    let lines = [
        TOKEN,
        CLOUD,
        PASSWORD,
        PRIVATE_KEY,
        PASSED,
        "unset",
        "Asia/Tokyo",
    ];
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// The first program's recorded environment, `KEY=VALUE` each.
fn recorded_env(manifest: &jailtrace_manifest::Manifest) -> Vec<String> {
    let command = &manifest.first_program().command;
    command.env.iter().map(|e| e.to_string()).collect()
}

/// Asserts that no secret occurs in `bytes`.
fn assert_clean(bytes: &[u8], what: &str) {
    for secret in SECRETS {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "the planted secret {secret:?} appears in {what}");
    }
}

/// Asserts a command printed no secret.
fn assert_quiet(out: &Finished) {
    assert_clean(&out.stdout, &format!("the stdout of {}", out.what));
    assert_clean(&out.stderr, &format!("the stderr of {}", out.what));
}

/// Every regular file below `dir` (not following symlinks), but `skip`.
fn files(dir: &Path, skip: &[PathBuf], out: &mut Vec<PathBuf>) {
    for item in fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if skip.contains(&path) {
            continue;
        }
        if meta.is_dir() {
            files(&path, skip, out);
        } else if meta.is_file() {
            out.push(path);
        }
    }
}

/// Asserts no file below `dir` holds a secret; gzip files are checked
/// unpacked too.
fn assert_tree_clean(dir: &Path, skip: &[PathBuf]) -> usize {
    let mut all = Vec::new();
    files(dir, skip, &mut all);
    for path in &all {
        let bytes = fs::read(path).unwrap();
        assert_clean(&bytes, &path.display().to_string());
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut unpacked)
                .unwrap();
            assert_clean(&unpacked, &format!("{} (unpacked)", path.display()));
        }
    }
    all.len()
}

#[test]
fn no_planted_secret_is_written_or_printed_and_the_program_gets_its_variables() {
    if !require_root("no_planted_secret_is_written_or_printed_and_the_program_gets_its_variables") {
        return;
    }
    let jail = Jail::new("secrets");
    let env_file = jail.join("app.env");
    fs::write(&env_file, format!("export DB_PASSWORD='{PASSWORD}'\n")).unwrap();
    let log = jail.join("debug.log");
    let mut env = caller_env();
    env.push(("JAILTRACE_LOG", "trace"));
    let out = jail.run(
        PROGRAM,
        &[
            "-v",
            "--log-file",
            log.to_str().unwrap(),
            "--env-file",
            env_file.to_str().unwrap(),
            "--pass-env",
            "GITHUB_*",
            "--pass-env",
            "AWS_SECRET_ACCESS_KEY",
            "--pass-env",
            "DEPLOY_CERT",
            "--pass-env",
            "APP_MODE",
        ],
        &env,
    );
    out.expect_ok();
    assert_quiet(&out.finished);

    // The program got every variable it was given, and not the unrelated one.
    let digest = fs::read_to_string(jail.root.join("env.sha256")).unwrap();
    assert_eq!(
        digest.split_whitespace().next(),
        Some(expected_digest().as_str()),
        "the program's environment is not what it was given"
    );

    // The manifest names the secrets, records the passed variable, and
    // knows nothing of the unrelated one.
    let manifest = out.manifest();
    let redacted: Vec<String> = manifest
        .first_program()
        .command
        .env_redacted
        .iter()
        .flatten()
        .map(|n| n.to_string())
        .collect();
    for name in [
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "DB_PASSWORD",
        "DEPLOY_CERT",
    ] {
        assert!(
            redacted.iter().any(|r| r == name),
            "{name} not in env_redacted {redacted:?}"
        );
    }
    let recorded = recorded_env(&manifest);
    assert!(
        recorded.contains(&format!("APP_MODE={PASSED}")),
        "{recorded:?}"
    );
    assert!(
        recorded.contains(&"TZ=Asia/Tokyo".to_string()),
        "{recorded:?}"
    );
    assert!(
        !recorded.iter().any(|e| e.starts_with("UNRELATED_SETTING=")),
        "a variable nobody passed is recorded: {recorded:?}"
    );
    let summary: Value = serde_json::from_slice(&out.finished.stdout).unwrap();
    assert_eq!(
        summary["env_redacted"].as_array().map(Vec::len),
        Some(4),
        "{summary}"
    );

    let m = jail.manifest.to_str().unwrap();
    let mut printed: Vec<Finished> = Vec::new();
    let mut jailtrace = |args: &[&str]| {
        let finished = jail.jailtrace(args, &caller_env());
        finished.assert_no_panic();
        assert_quiet(&finished);
        printed.push(finished);
    };

    // Every export format, to files and to stdout.
    for (format, output) in [
        ("sh", "out.sh"),
        ("tar", "out.tar"),
        ("dockerfile", "out.docker"),
        ("bwrap", "out.bwrap"),
        ("systemd", "out.conf"),
        ("oci", "out.oci"),
    ] {
        let path = jail.join(output);
        jailtrace(&[
            "export",
            "--manifest",
            m,
            "--format",
            format,
            "-o",
            path.to_str().unwrap(),
        ]);
    }
    jailtrace(&["export", "--manifest", m, "--format", "systemd"]);
    jailtrace(&["export", "--manifest", m, "--format", "bwrap"]);

    // Every read-only command.
    jailtrace(&["why", "/bin/sh", "--manifest", m]);
    jailtrace(&["why", "/bin/sh", "--manifest", m, "--json"]);
    jailtrace(&["verify", "--manifest", m]);
    jailtrace(&["verify", "--manifest", m, "--json"]);
    let root = jail.root.to_str().unwrap();
    let doctor = [
        "doctor",
        "--root",
        root,
        "--pass-env",
        "GITHUB_TOKEN",
        "--env-file",
        env_file.to_str().unwrap(),
        "--",
    ];
    jailtrace(&[&doctor[..], PROGRAM].concat());
    jailtrace(&[&doctor[..], &["--json"], PROGRAM].concat());

    // update --run gives the program the recorded environment again: the
    // redacted values come from the caller, and a missing one is an error
    // that names it.
    let rerun = jail.jailtrace(&["update", "--manifest", m, "--run"], &caller_env());
    assert_quiet(&rerun);
    rerun.assert_code(exit::ERROR);
    assert!(
        rerun.stderr_text().contains("DB_PASSWORD by name only"),
        "{}",
        rerun.report()
    );
    let mut with_password = caller_env();
    with_password.push(("DB_PASSWORD", PASSWORD));
    fs::remove_file(jail.root.join("env.sha256")).unwrap();
    let rerun = jail.jailtrace(&["update", "--manifest", m, "--run"], &with_password);
    assert_quiet(&rerun);
    rerun.assert_code(exit::OK);
    let digest = fs::read_to_string(jail.root.join("env.sha256")).unwrap();
    assert_eq!(
        digest.split_whitespace().next(),
        Some(expected_digest().as_str()),
        "update --run gave the program another environment\n{}",
        rerun.report()
    );

    // An older manifest (schema version 1, one `command`) that recorded
    // the whole environment: read, diffed and verified without printing
    // its values, and rewritten by update.
    let legacy = jail.join("legacy.json");
    let mut value: Value = serde_json::from_slice(&fs::read(&jail.manifest).unwrap()).unwrap();
    let map = value.as_object_mut().unwrap();
    let mut programs = map.remove("programs").unwrap();
    let mut program = programs[0].take();
    let command = program.as_object_mut().unwrap();
    command.remove("name");
    command.remove("env_redacted");
    map.insert("schema_version".into(), Value::from(1));
    map.insert("command".into(), program);
    let command = value["command"].as_object_mut().unwrap();
    let env = command["env"].as_array_mut().unwrap();
    for (k, v) in [
        ("GITHUB_TOKEN", TOKEN),
        ("DB_PASSWORD", PASSWORD),
        ("DEPLOY_CERT", PRIVATE_KEY),
    ] {
        env.push(Value::String(format!("{k}={v}")));
    }
    fs::write(&legacy, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    let l = legacy.to_str().unwrap();
    for args in [
        &["diff", m, l][..],
        &["diff", "--json", l, m],
        &["why", "/bin/sh", "--manifest", l],
        &["export", "--manifest", l, "--format", "systemd"],
        &[
            "export",
            "--manifest",
            l,
            "--format",
            "oci",
            "-o",
            jail.join("legacy.oci").to_str().unwrap(),
        ],
    ] {
        jailtrace(args);
    }
    let verify = jail.jailtrace(&["verify", "--manifest", l], &caller_env());
    assert_quiet(&verify);
    for name in ["GITHUB_TOKEN", "DB_PASSWORD", "DEPLOY_CERT"] {
        assert!(
            verify
                .stderr_text()
                .contains(&format!("records the value of {name}")),
            "verify does not name {name}\n{}",
            verify.report()
        );
    }
    let update = jail.jailtrace(&["update", "--manifest", l], &caller_env());
    assert_quiet(&update);
    update.assert_code(exit::OK);
    let rewritten = jailtrace_manifest::Manifest::read(&legacy).unwrap();
    assert_eq!(
        rewritten
            .first_program()
            .command
            .env_redacted
            .as_ref()
            .map(Vec::len),
        Some(3)
    );

    // Nothing anywhere below the test's directory (root, manifests,
    // exports, logs) holds a secret; only the test's own env file does.
    let n = assert_tree_clean(&jail.path, &[env_file]);
    assert!(n > 20, "only {n} files were checked");
    assert!(log.exists(), "no --log-file was written");
}

#[test]
fn inherit_env_records_the_callers_variables_but_not_its_secrets() {
    if !require_root("inherit_env_records_the_callers_variables_but_not_its_secrets") {
        return;
    }
    let jail = Jail::new("secrets-inherit");
    let out = jail.run(PROGRAM, &["--inherit-env"], &caller_env());
    out.expect_ok();
    assert_quiet(&out.finished);
    assert!(
        out.finished.stderr_text().contains("--inherit-env"),
        "no warning about --inherit-env\n{}",
        out.finished.report()
    );
    let recorded = recorded_env(&out.manifest());
    assert!(
        recorded.contains(&format!("UNRELATED_SETTING={UNRELATED}")),
        "{recorded:?}"
    );
    assert_clean(out.manifest_bytes.as_deref().unwrap(), "the manifest");
}

#[test]
fn record_env_keeps_a_value_the_user_asks_for() {
    if !require_root("record_env_keeps_a_value_the_user_asks_for") {
        return;
    }
    let jail = Jail::new("secrets-record");
    let out = jail.run(
        &["/bin/true"],
        &[
            "--env",
            "SESSION_COOKIE=not-secret-here",
            "--record-env",
            "SESSION_COOKIE",
        ],
        &caller_env(),
    );
    out.expect_ok();
    let m = out.manifest();
    assert!(m
        .first_program()
        .command
        .env
        .iter()
        .any(|e| e.to_string() == "SESSION_COOKIE=not-secret-here"));
    assert_eq!(m.first_program().command.env_redacted, Some(vec![]));
}
