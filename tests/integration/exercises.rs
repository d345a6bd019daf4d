//! Exercises after readiness (`--probe URL`, `--exercise CMD`): a server
//! whose startup does not read a page but whose request does.
//!
//! Debian's nginx is jailed with `--probe` of a page under the test's own
//! document root: the page is in the manifest with the probe as its
//! reason, and the jail serves it under plain `chroot`; the same jail made
//! without the probe lacks the page and answers 404, which is the
//! difference the probe makes. Python's `http.server` shows probes and
//! commands run in order in every run, with their results in the summary,
//! and `update --run` running them again; a command that exits 1 or
//! outlives `--exercise-timeout` makes the run fail with exit 3, its output
//! shown, no manifest written and nothing left running.
//!
//! Each test has its own [`Site`] (directory, free port, guard that kills
//! what is left), as the server tests do.

use std::fs;
use std::path::Path;
use std::time::Duration;

use jailtrace_manifest::{Cause, Exercise, Manifest};
use serde_json::Value;

use crate::jail::{exit, Outcome};
use crate::net::{free_port, http_get_retry, require_server, spawn_chroot, SERVE_WITHIN};
use crate::servers::{expect_ready, foreground_nginx_conf, Site, NGINX, RUN_TIMEOUT};
use crate::util::{self, require_root, BASE_ENV};

const PYTHON: &str = "/usr/bin/python3";

/// Writes `T/www/NAME` (mode 0644, readable by workers that dropped
/// privileges) with a line no other test uses; returns that content.
fn write_page(site: &Site, name: &str) -> Vec<u8> {
    let content = format!("jailtrace exercise page {name} {}\n", util::unique());
    let path = site.write(&format!("www/{name}"), &content);
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .unwrap_or_else(|e| panic!("chmod {path}: {e}"));
    content.into_bytes()
}

/// The `--json` summary's `exercises` array.
fn summary_exercises(outcome: &Outcome) -> Vec<Value> {
    let report = outcome.finished.report();
    let summary: Value = serde_json::from_slice(&outcome.finished.stdout)
        .unwrap_or_else(|e| panic!("the --json summary is not JSON: {e}\n{report}"));
    summary
        .get("exercises")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("the summary has no exercises array\n{report}"))
        .clone()
}

/// Asserts that `path` is in the manifest, placed because the program
/// asked for it while `exercise` ran.
fn assert_placed_by(manifest: &Manifest, path: &str, exercise: &Exercise, report: &str) {
    let entry = manifest
        .entry(Path::new(path))
        .unwrap_or_else(|| panic!("the manifest does not list {path}\n{report}"));
    assert_eq!(
        (entry.reason.cause, entry.reason.exercise.as_ref()),
        (Cause::Accessed, Some(exercise)),
        "{path}: its reason must name the exercise\n{report}"
    );
}

#[test]
fn nginx_probe_puts_a_page_only_a_request_reads_in_the_jail() {
    const NAME: &str = "nginx_probe_puts_a_page_only_a_request_reads_in_the_jail";
    if !require_root(NAME) || !require_server(NAME, NGINX, "nginx") {
        return;
    }
    let mut site = Site::new("nginx-probe");
    let content = write_page(&site, "page.html");
    let page = site.path("www/page.html");
    let conf = foreground_nginx_conf(&site);
    let argv = [NGINX, "-c", &conf];
    let url = format!("http://127.0.0.1:{}/page.html", site.port);

    // With the probe: the page is placed, with the probe as its reason.
    let outcome = site.jail_server(&argv, &["--probe", &url], BASE_ENV);
    let manifest = expect_ready(&site, &outcome);
    let report = outcome.finished.report();
    let probe = Exercise::Probe(url.clone());
    assert_eq!(
        manifest.first_program().command.exercises,
        std::slice::from_ref(&probe),
        "{report}"
    );
    assert_placed_by(&manifest, &page, &probe, &report);
    let exercises = summary_exercises(&outcome);
    assert_eq!(exercises.len(), 1, "{report}");
    assert_eq!(exercises[0]["exercise"], serde_json::json!({"probe": url}));
    assert_eq!(exercises[0]["passed"], true, "{report}");
    assert_eq!(
        exercises[0]["run"].as_u64(),
        manifest.runs.last().map(|r| u64::from(r.index)),
        "the summary shows the last run's exercises\n{report}"
    );

    // Without it: a jail of the same server lacks the page.
    let bare_root = site.jail.join("bare-root");
    let bare_manifest = site.jail.join("bare.json");
    let index_url = format!("http://127.0.0.1:{}/", site.port);
    let bare = site.jail.run_at(
        &bare_root,
        &bare_manifest,
        &argv,
        &["--ready", &index_url, "--timeout", RUN_TIMEOUT],
        BASE_ENV,
    );
    let bare_report = bare.finished.report();
    bare.finished.assert_no_panic().assert_code(exit::OK);
    let bare_manifest = bare.manifest();
    assert!(
        bare_manifest.entry(Path::new(&page)).is_none(),
        "without the probe, nothing should have read {page}\n{bare_report}"
    );
    assert!(bare_manifest.first_program().command.exercises.is_empty());

    // Under plain chroot: the probed jail serves the page, the other 404.
    for (root, manifest, status) in [
        (&site.jail.root, &manifest, 200),
        (&bare_root, &bare_manifest, 404),
    ] {
        site.guard.mount(root, manifest);
        let server = spawn_chroot(root, &argv, BASE_ENV);
        let response = http_get_retry(site.port, "/page.html", SERVE_WITHIN).unwrap_or_else(|e| {
            panic!(
                "{}: {e}\n{}",
                root.display(),
                server.wait(Duration::ZERO).report()
            )
        });
        assert_eq!(
            response.status,
            status,
            "GET /page.html from {} under plain chroot\n{}",
            root.display(),
            response.head
        );
        if status == 200 {
            assert_eq!(response.body, content, "the page's content");
        }
        site.guard.unmount_all();
    }
}

/// `python3 -m http.server PORT -b 127.0.0.1 -d T/www`.
fn python_server(site: &Site) -> Vec<String> {
    vec![
        PYTHON.into(),
        "-m".into(),
        "http.server".into(),
        site.port.to_string(),
        "-b".into(),
        "127.0.0.1".into(),
        "-d".into(),
        site.path("www"),
    ]
}

/// Jails [`python_server`], ready when its port accepts, with `extra`.
fn jail_python(site: &Site, extra: &[&str]) -> Outcome {
    let argv = python_server(site);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let ready = format!("tcp:127.0.0.1:{}", site.port);
    let mut args = vec!["--ready", &ready, "--timeout", RUN_TIMEOUT];
    args.extend_from_slice(extra);
    site.jail.run(&argv, &args, BASE_ENV)
}

#[test]
fn probes_and_commands_run_in_order_and_update_runs_them_again() {
    const NAME: &str = "probes_and_commands_run_in_order_and_update_runs_them_again";
    if !require_root(NAME) || !require_server(NAME, PYTHON, "python3") {
        return;
    }
    let site = Site::new("python-exercises");
    write_page(&site, "one.html");
    write_page(&site, "two.html");
    let one = format!("http://127.0.0.1:{}/one.html", site.port);
    let fetch_two = format!(
        "{PYTHON} -c 'import urllib.request as u; u.urlopen(\"http://127.0.0.1:{}/two.html\")'",
        site.port
    );
    let outcome = jail_python(&site, &["--probe", &one, "--exercise", &fetch_two]);
    let manifest = expect_ready(&site, &outcome);
    let report = outcome.finished.report();
    let steps = [
        Exercise::Probe(one.clone()),
        Exercise::Command(fetch_two.clone()),
    ];
    assert_eq!(
        manifest.first_program().command.exercises,
        steps,
        "{report}"
    );
    assert_placed_by(&manifest, &site.path("www/one.html"), &steps[0], &report);
    assert_placed_by(&manifest, &site.path("www/two.html"), &steps[1], &report);
    let exercises = summary_exercises(&outcome);
    let shown: Vec<(&Value, &Value)> = exercises
        .iter()
        .map(|e| (&e["exercise"], &e["passed"]))
        .collect();
    assert_eq!(
        shown,
        [
            (&serde_json::json!({"probe": one}), &Value::Bool(true)),
            (
                &serde_json::json!({"command": fetch_two}),
                &Value::Bool(true)
            ),
        ],
        "{report}"
    );

    // update --run: the recorded exercises run again.
    let manifest_path = site.jail.manifest.to_str().expect("UTF-8 test path");
    let ready = format!("tcp:127.0.0.1:{}", site.port);
    let updated = site.jail.jailtrace(
        &[
            "update",
            "--manifest",
            manifest_path,
            "--run",
            "--ready",
            &ready,
            "--json",
        ],
        BASE_ENV,
    );
    updated.assert_no_panic().assert_success();
    let value: Value = serde_json::from_slice(&updated.stdout)
        .unwrap_or_else(|e| panic!("update --json: {e}\n{}", updated.report()));
    let rerun: Vec<&Value> = value["exercises"]
        .as_array()
        .unwrap_or_else(|| panic!("no exercises in\n{}", updated.report()))
        .iter()
        .map(|e| &e["exercise"])
        .collect();
    assert_eq!(
        rerun,
        [
            &serde_json::json!({"probe": one}),
            &serde_json::json!({"command": fetch_two})
        ],
        "{}",
        updated.report()
    );
    site.guard
        .assert_none_left(Duration::from_secs(2), "after update --run");
}

#[test]
fn a_failing_exercise_fails_the_run_and_shows_its_output() {
    const NAME: &str = "a_failing_exercise_fails_the_run_and_shows_its_output";
    if !require_root(NAME) || !require_server(NAME, PYTHON, "python3") {
        return;
    }
    let site = Site::new("python-exercise-fails");
    let tag = util::unique();
    let command = format!("echo out-{tag}; echo err-{tag} >&2; false");
    let outcome = jail_python(&site, &["--exercise", &command]);
    let report = outcome.finished.report();
    let stderr = outcome.expect_error(exit::NOT_STARTED);
    assert!(
        stderr.contains(&format!("error: exercise 1 `{command}` failed in run"))
            && stderr.contains("exited with code 1"),
        "stderr names the exercise and how it failed\n{report}"
    );
    for line in [format!("| out-{tag}"), format!("| err-{tag}")] {
        assert!(stderr.contains(&line), "stderr shows {line:?}\n{report}");
    }
    assert!(
        outcome.manifest_bytes.is_none(),
        "a failed run writes no manifest\n{report}"
    );
    let summary = outcome.summary();
    assert!(!summary.ok, "{report}");
    let exercises = summary_exercises(&outcome);
    assert_eq!(exercises.len(), 1, "{report}");
    assert_eq!(exercises[0]["passed"], false);
    assert_eq!(exercises[0]["status"], "exited with code 1");
    assert_eq!(
        exercises[0]["output"],
        format!("out-{tag}\nerr-{tag}\n"),
        "{report}"
    );
    site.guard
        .assert_none_left(Duration::from_secs(2), "after jailtrace returned");
}

#[test]
fn an_exercise_that_hangs_hits_its_timeout() {
    const NAME: &str = "an_exercise_that_hangs_hits_its_timeout";
    if !require_root(NAME) || !require_server(NAME, PYTHON, "python3") {
        return;
    }
    let site = Site::new("python-exercise-hangs");
    let seconds = format!("1000.{}", util::unique_digits());
    let command = format!("sleep {seconds}");
    // Without --json: the text summary.
    let root = site.path("root");
    let manifest = site.path("m.json");
    let ready = format!("tcp:127.0.0.1:{}", site.port);
    let mut args = vec![
        "run",
        "--root",
        &root,
        "--manifest",
        &manifest,
        "--ready",
        &ready,
        "--timeout",
        RUN_TIMEOUT,
        "--exercise-timeout",
        "2s",
        "--exercise",
        &command,
        "--",
    ];
    let argv = python_server(&site);
    args.extend(argv.iter().map(String::as_str));
    let finished = site.jail.jailtrace(&args, BASE_ENV);
    let report = finished.report();
    finished.assert_no_panic().assert_code(exit::NOT_STARTED);
    let stderr = finished.stderr_text();
    for needle in [
        format!("error: exercise 1 `{command}` failed in run 2 (verify): timed out after 2s"),
        "but an exercise fails".to_string(),
        "  exercises: in run 2 (verify):".to_string(),
        format!("    1 `{command}`: FAILED: timed out after 2s"),
    ] {
        assert!(
            stderr.contains(&needle),
            "stderr lacks {needle:?}\n{report}"
        );
    }
    assert!(!Path::new(&manifest).exists(), "{report}");
    let left = util::wait_until_gone(&["sleep", &seconds], Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "the exercise still runs: {left:?}\n{report}"
    );
    site.guard
        .assert_none_left(Duration::from_secs(2), "after jailtrace returned");
}

/// A probe of a port nothing listens on fails (connection refused).
#[test]
fn a_probe_of_a_port_nobody_serves_fails_the_run() {
    const NAME: &str = "a_probe_of_a_port_nobody_serves_fails_the_run";
    if !require_root(NAME) || !require_server(NAME, PYTHON, "python3") {
        return;
    }
    let site = Site::new("python-probe-refused");
    let elsewhere = format!("http://127.0.0.1:{}/", free_port());
    let outcome = jail_python(&site, &["--probe", &elsewhere]);
    let report = outcome.finished.report();
    let stderr = outcome.expect_error(exit::NOT_STARTED);
    assert!(
        stderr.contains(&format!("error: exercise 1 probe {elsewhere} failed")),
        "{report}"
    );
    assert!(outcome.manifest_bytes.is_none(), "{report}");
    site.guard
        .assert_none_left(Duration::from_secs(2), "after jailtrace returned");
}
