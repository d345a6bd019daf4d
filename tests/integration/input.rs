//! The program's input and output across runs: what it reads from a piped
//! or redirected stdin is given again to every later run (so the verifying
//! run verifies what the first one did), its output is shown once, and on
//! a terminal the user is told before the program reads it again.

use std::fs;
use std::process::Command;

use jailtrace_manifest::{Manifest, RunRole};

use crate::cmd::{self, Finished};
use crate::jail::{exit, Jail, JAILTRACE_TIMEOUT};
use crate::util::{require_root, BASE_ENV};

/// A script the program reads on stdin: it runs python3, which only
/// the script names.
const SCRIPT: &str = "cat /etc/hostname >/dev/null\npython3 -c 'print(6 * 7)'\n";

/// `jailtrace run --root T/root --manifest T/m.json -- /bin/sh` run by a
/// shell that pipes `pipe`'s output into it or applies `redirect`
/// (`< FILE`) to it.
fn run_with_stdin(jail: &Jail, pipe: Option<&str>, redirect: Option<&str>) -> Finished {
    let command = format!(
        "{}{} run --root {} --manifest {} -- /bin/sh {}",
        pipe.map(|p| format!("{p} | ")).unwrap_or_default(),
        env!("CARGO_BIN_EXE_jailtrace"),
        jail.root.display(),
        jail.manifest.display(),
        redirect.unwrap_or(""),
    );
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", &command])
        .env_clear()
        .envs(BASE_ENV.iter().copied())
        .current_dir(&jail.path);
    cmd::run(sh, JAILTRACE_TIMEOUT)
}

/// Every run of `manifest` traced the same work: the shell started
/// python3, with about as many stops as the first run.
fn assert_runs_alike(manifest: &Manifest, report: &str) {
    let first = &manifest.runs[0];
    assert!(
        first.processes >= 2,
        "the first run did not run python3\n{report}"
    );
    let verify = manifest
        .runs
        .iter()
        .rfind(|r| r.role == RunRole::Verify)
        .expect("a verifying run");
    // sh and python3 (and the pid namespace's init), as in the first run;
    // a shell that read end-of-file starts nothing.
    assert!(
        verify.processes >= 3,
        "the verifying run got no input\n{report}"
    );
    assert!(
        verify.stops * 2 >= first.stops,
        "the verifying run stopped {} times, the first {}\n{report}",
        verify.stops,
        first.stops
    );
}

#[test]
fn a_piped_input_is_replayed_to_every_run_and_the_output_shown_once() {
    if !require_root("a_piped_input_is_replayed_to_every_run_and_the_output_shown_once") {
        return;
    }
    let jail = Jail::new("stdin-pipe");
    let out = run_with_stdin(
        &jail,
        Some(&format!(
            "printf '{}'",
            SCRIPT.replace('\n', "\\n").replace('\'', "'\\''")
        )),
        None,
    );
    out.assert_no_panic().assert_code(exit::OK);
    let manifest = Manifest::read(&jail.manifest).unwrap();
    assert_runs_alike(&manifest, &out.report());
    assert_eq!(
        out.stdout_text().matches("42").count(),
        1,
        "{}",
        out.report()
    );
    assert!(
        manifest
            .entries
            .iter()
            .any(|e| e.path.to_string().contains("python3")),
        "python3, which only the piped script names, is not in the jail"
    );
}

#[test]
fn a_redirected_file_is_read_from_its_start_by_every_run() {
    if !require_root("a_redirected_file_is_read_from_its_start_by_every_run") {
        return;
    }
    let jail = Jail::new("stdin-file");
    let script = jail.join("script.sh");
    fs::write(&script, SCRIPT).unwrap();
    let out = run_with_stdin(&jail, None, Some(&format!("< {}", script.display())));
    out.assert_no_panic().assert_code(exit::OK);
    assert_runs_alike(&Manifest::read(&jail.manifest).unwrap(), &out.report());
    assert_eq!(
        out.stdout_text().matches("42").count(),
        1,
        "{}",
        out.report()
    );
}

#[test]
fn a_failing_later_run_shows_its_output() {
    if !require_root("a_failing_later_run_shows_its_output") {
        return;
    }
    // The first run succeeds and leaves a mark; the verifying run fails.
    let jail = Jail::new("later-output");
    let script =
        "if [ -e /var/tmp/mark ]; then echo second-run-failed >&2; exit 5; fi; : > /var/tmp/mark";
    let out = jail.run(&["/bin/sh", "-c", script], &[], BASE_ENV);
    out.finished
        .assert_no_panic()
        .assert_code(exit::NOT_STARTED);
    let stderr = out.finished.stderr_text();
    assert!(stderr.contains("output in run 2"), "{stderr}");
    assert_eq!(stderr.matches("second-run-failed").count(), 1, "{stderr}");
}

#[test]
fn on_a_terminal_the_user_is_told_before_the_program_reads_it_again() {
    if !require_root("on_a_terminal_the_user_is_told_before_the_program_reads_it_again") {
        return;
    }
    // script(1) gives jailtrace a pseudo-terminal as stdin, fed from ours.
    let jail = Jail::new("stdin-tty");
    let inner = format!(
        "{} run --root {} --manifest {} -- /bin/sh -c 'read x; echo got:\\$x'",
        env!("CARGO_BIN_EXE_jailtrace"),
        jail.root.display(),
        jail.manifest.display()
    );
    let mut sh = Command::new("/bin/sh");
    sh.args([
        "-c",
        &format!("printf 'first\\nsecond\\n' | script -qec \"{inner}\" /dev/null"),
    ])
    .env_clear()
    .envs(BASE_ENV.iter().copied())
    .current_dir(&jail.path);
    let out = cmd::run(sh, JAILTRACE_TIMEOUT);
    out.assert_no_panic().assert_code(exit::OK);
    let text = out.stdout_text();
    let told = text
        .find("reads this terminal")
        .unwrap_or_else(|| panic!("not told\n{}", out.report()));
    let first = text.find("got:first").unwrap_or_else(|| {
        panic!(
            "the first run did not read the first line\n{}",
            out.report()
        )
    });
    let second = text.find("got:second").unwrap_or_else(|| {
        panic!(
            "the verifying run did not read the next line\n{}",
            out.report()
        )
    });
    assert!(first < told && told < second, "{}", out.report());
}
