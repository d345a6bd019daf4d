//! `jailtrace man` and `jailtrace completions`: generated from the clap
//! definitions, so they list exactly the subcommands and options `--help`
//! does. The pages are rendered by the real man(1) and the bash script is
//! loaded by a real bash, which must then complete the subcommands.

use std::fs;
use std::process::Command;

use crate::cmd;
use crate::jail::{exit, Jail};
use crate::util::BASE_ENV;

const SUBCOMMANDS: &[&str] = &[
    "run",
    "up",
    "ldd",
    "why",
    "diff",
    "build",
    "verify",
    "update",
    "doctor",
    "export",
    "completions",
];

#[test]
fn man_writes_a_page_per_subcommand_that_man_renders() {
    let jail = Jail::new("man");
    let dir = jail.join("man1");
    let out = jail.jailtrace(&["man", dir.to_str().unwrap()], BASE_ENV);
    out.assert_no_panic().assert_code(exit::OK);
    let mut pages: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    let mut want: Vec<String> = SUBCOMMANDS
        .iter()
        .map(|s| format!("jailtrace-{s}.1"))
        .chain(["jailtrace.1".to_string()])
        .collect();
    want.sort();
    assert_eq!(pages, want);
    // man(1) renders the page; the text carries the subcommand's own help.
    let mut man = Command::new("man");
    man.arg("-l")
        .arg(dir.join("jailtrace-build.1"))
        .env("MANWIDTH", "200");
    let rendered = cmd::run(man, cmd::PROGRAM_TIMEOUT);
    rendered.assert_success();
    // Undo the overstrike bold (`X\bX`) man uses on a non-terminal.
    let mut text = String::new();
    for c in rendered.stdout_text().chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    assert!(text.contains("jailtrace build"), "{text}");
    assert!(text.contains("--strict"), "{text}");
    assert!(
        text.contains("Recreate a jail root from a manifest"),
        "{text}"
    );
}

#[test]
fn bash_completion_completes_subcommands_and_options() {
    let jail = Jail::new("completions");
    let out = jail.jailtrace(&["completions", "bash"], BASE_ENV);
    out.assert_no_panic().assert_code(exit::OK);
    let script = jail.join("jailtrace.bash");
    fs::write(&script, &out.stdout).unwrap();
    // Ask bash's completion function what it offers after `jailtrace ` and
    // after `jailtrace export --format `.
    let probe = format!(
        r#"source {script}
complete_for() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=(); _jailtrace jailtrace "${{COMP_WORDS[-1]}}" "${{COMP_WORDS[-2]}}"; echo "${{COMPREPLY[*]}}"; }}
complete_for jailtrace ''
complete_for jailtrace export --format ''
"#,
        script = script.display()
    );
    let mut bash = Command::new("bash");
    bash.arg("-c").arg(probe);
    let done = cmd::run(bash, cmd::PROGRAM_TIMEOUT);
    done.assert_success();
    let text = done.stdout_text();
    let mut lines = text.lines();
    let subcommands = lines.next().unwrap_or_default();
    for s in SUBCOMMANDS {
        assert!(
            subcommands.split(' ').any(|w| w == *s),
            "{s} not offered: {text}"
        );
    }
    let formats = lines.next().unwrap_or_default();
    for f in ["sh", "tar", "dockerfile", "bwrap", "systemd", "oci"] {
        assert!(
            formats.split(' ').any(|w| w == f),
            "format {f} not offered: {text}"
        );
    }
}
