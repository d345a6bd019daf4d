//! `jailtrace why` and `jailtrace diff` on the manifests of real jails:
//! `why` names the run, process, syscall and cause recorded for a path and
//! explains symlink-chain components by the path that pulled them in;
//! `diff` exits like diff(1) (0 same, 1 different, 2 trouble).

use std::fs;
use std::path::Path;

use jailtrace_manifest::Manifest;
use serde_json::Value;

use crate::cmd::Finished;
use crate::jail::{exit, Jail};
use crate::util::{require_root, BASE_ENV};

/// `jailtrace ARGS` in `jail`'s directory, asserting no panic.
fn jailtrace(jail: &Jail, args: &[&str]) -> Finished {
    let finished = jail.jailtrace(args, BASE_ENV);
    finished.assert_no_panic();
    finished
}

fn text(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Jails `/bin/date` in `jail`'s default root and returns its manifest.
fn jail_date(jail: &Jail) -> Manifest {
    let out = jail.run(&["/bin/date"], &[], BASE_ENV);
    out.expect_ok();
    out.manifest()
}

#[test]
fn why_names_the_cause_and_explains_symlink_chains() {
    if !require_root("why_names_the_cause_and_explains_symlink_chains") {
        return;
    }
    let jail = Jail::new("why");
    let manifest = jail_date(&jail);
    let m = text(&jail.manifest);

    let libc_path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let libc = manifest
        .entry(Path::new(libc_path))
        .expect("libc is in date's jail");
    let why = jailtrace(&jail, &["why", libc_path, "--manifest", m]);
    why.assert_code(exit::OK);
    let out = why.stdout_text();
    assert!(
        out.starts_with(&format!("{libc_path}: file, mode ")),
        "{out}"
    );
    assert!(
        out.contains(&format!("  cause:     {} (", libc.reason.cause.as_str())),
        "{}",
        why.report()
    );
    assert!(
        out.contains(&format!("  run:       {}", libc.reason.run)),
        "{out}"
    );
    let libc_requested = libc
        .reason
        .requested
        .as_ref()
        .expect("libc is named /lib/x86_64-linux-gnu/libc.so.6 by date's ELF file");
    assert!(
        out.contains(&format!("  requested: {libc_requested}")),
        "{out}"
    );
    // The same path, spelled with `//` and a trailing `/`, is the same entry.
    let spelled = jailtrace(
        &jail,
        &[
            "why",
            "/usr//lib/x86_64-linux-gnu//libc.so.6/",
            "--manifest",
            m,
        ],
    );
    spelled.assert_code(exit::OK);
    assert_eq!(spelled.stdout_text(), out);

    // /lib64 is a link on the way to the ELF interpreter (merged /usr).
    let lib64 = manifest
        .entry(Path::new("/lib64"))
        .expect("/lib64 is placed");
    let requested = lib64
        .reason
        .requested
        .as_ref()
        .expect("a chain component names the path that pulled it in");
    let why = jailtrace(&jail, &["why", "/lib64", "--manifest", m]);
    why.assert_code(exit::OK);
    let out = why.stdout_text();
    for needle in [
        "/lib64: symlink -> usr/lib64".to_owned(),
        "  cause:     symlink_chain (".to_owned(),
        format!("  requested: {requested}"),
        format!("  {requested} resolves in the jail through:"),
        "    /lib64 -> usr/lib64   <- this".to_owned(),
        "    = /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 (file, interpreter)".to_owned(),
    ] {
        assert!(out.contains(&needle), "no {needle:?} in\n{out}");
    }

    // /lib was placed for the interpreter too, and libc's lookup goes through it.
    let why = jailtrace(&jail, &["why", "/lib", "--manifest", m, "--json"]);
    why.assert_code(exit::OK);
    let json: Value = serde_json::from_slice(&why.stdout).expect("why --json prints JSON");
    assert_eq!(json["entry"]["kind"], "symlink", "{json:#}");
    assert_eq!(
        json["entry"]["reason"]["cause"], "symlink_chain",
        "{json:#}"
    );
    let also = json["also_on_the_way_to"]
        .as_array()
        .expect("a list of lookups");
    assert!(
        also.iter().any(|l| l.as_str() == libc_requested.to_str()),
        "{json:#}"
    );

    // A path the host lacks too is reported as absent.
    let absent = manifest
        .absent
        .first()
        .expect("date probes a path the host lacks (/etc/ld.so.preload)");
    let why = jailtrace(
        &jail,
        &["why", text(absent.path.as_path()), "--manifest", m],
    );
    why.assert_code(exit::OK);
    assert!(
        why.stdout_text()
            .contains(&format!("{}: absent: ", absent.path)),
        "{}",
        why.report()
    );

    let why = jailtrace(&jail, &["why", "/nonexistent", "--manifest", m]);
    why.assert_code(exit::ERROR);
    assert!(why.stdout.is_empty(), "{}", why.report());
    assert!(
        why.stderr_text()
            .contains(&format!("error: /nonexistent is not in the manifest {m}")),
        "{}",
        why.report()
    );
}

#[test]
fn diff_shows_changed_entries_and_commands() {
    if !require_root("diff_shows_changed_entries_and_commands") {
        return;
    }
    let jail = Jail::new("diff");
    let manifest = jail_date(&jail);
    let m = text(&jail.manifest);

    let same = jailtrace(&jail, &["diff", m, m]);
    same.assert_code(0);
    assert!(same.stdout.is_empty(), "{}", same.report());

    // One entry's hash edited.
    let mut json: Value =
        serde_json::from_slice(&fs::read(&jail.manifest).expect("the manifest")).expect("JSON");
    let entries = json["entries"].as_array_mut().expect("entries");
    let date = entries
        .iter_mut()
        .find(|e| e["path"] == "/usr/bin/date")
        .expect("/usr/bin/date is an entry");
    let old_hash = date["sha256"]
        .as_str()
        .expect("a file has a hash")
        .to_owned();
    date["sha256"] = Value::from("ab".repeat(32));
    let edited = jail.join("edited.json");
    fs::write(
        &edited,
        serde_json::to_vec_pretty(&json).expect("serialise"),
    )
    .expect("write");
    let changed = jailtrace(&jail, &["diff", m, text(&edited)]);
    changed.assert_code(1);
    assert_eq!(
        changed.stdout_text(),
        format!(
            "~ /usr/bin/date: sha256 {}… -> abababababab…\n",
            &old_hash[..12]
        ),
        "{}",
        changed.report()
    );
    let as_json = jailtrace(&jail, &["diff", m, text(&edited), "--json"]);
    as_json.assert_code(1);
    let d: Value = serde_json::from_slice(&as_json.stdout).expect("diff --json prints JSON");
    assert_eq!(d["identical"], false, "{d:#}");
    assert_eq!(d["entries"][0]["change"], "changed", "{d:#}");
    assert_eq!(d["entries"][0]["fields"][0]["field"], "sha256", "{d:#}");
    assert_eq!(
        d["entries"][0]["fields"][0]["old"],
        old_hash.as_str(),
        "{d:#}"
    );

    // An exercise added to the program: a change of the program, by name.
    let mut json: Value =
        serde_json::from_slice(&fs::read(&jail.manifest).expect("the manifest")).expect("JSON");
    json["programs"][0]["exercises"] = serde_json::json!([{"probe": "http://127.0.0.1/"}]);
    let exercised = jail.join("exercised.json");
    fs::write(
        &exercised,
        serde_json::to_vec_pretty(&json).expect("serialise"),
    )
    .expect("write");
    let changed = jailtrace(&jail, &["diff", m, text(&exercised)]);
    changed.assert_code(1);
    assert_eq!(
        changed.stdout_text(),
        "~ program date: exercises [] -> [probe http://127.0.0.1/]\n",
        "{}",
        changed.report()
    );

    // Another command jailed elsewhere: the argv differs; the jail has the same files.
    let other_root = jail.join("other");
    let other = jail.join("other.json");
    let out = jail.run_at(&other_root, &other, &["/bin/date", "+%s"], &[], BASE_ENV);
    out.expect_ok();
    let differs = jailtrace(&jail, &["diff", m, text(&other)]);
    differs.assert_code(1);
    let first = differs.stdout_text();
    assert!(
        first.starts_with("~ program date: argv [\"/bin/date\"] -> [\"/bin/date\", \"+%s\"]\n"),
        "{}",
        differs.report()
    );
    // Every other line is an entry or mount difference in the diff format.
    let other_manifest = out.manifest();
    for line in first.lines().skip(1) {
        assert!(
            ["+ ", "- ", "~ "].iter().any(|p| line.starts_with(p)),
            "{line:?}\n{}",
            differs.report()
        );
    }
    assert_eq!(
        first.lines().count() - 1,
        jailtrace_manifest::diff(&manifest, &other_manifest)
            .entries
            .len()
            + jailtrace_manifest::diff(&manifest, &other_manifest)
                .mounts
                .len()
    );
}

#[test]
fn unreadable_manifests_are_trouble() {
    // No jailing: this runs without root.
    let jail = Jail::new("diff-trouble");
    let bad = jail.join("bad.json");
    fs::write(&bad, "{\"schema_version\": 1, \"entries\": [").expect("write");
    let bad = text(&bad);

    let d = jailtrace(&jail, &["diff", bad, bad]);
    d.assert_code(2);
    let stderr = d.stderr_text();
    assert!(
        stderr.starts_with(&format!("error: cannot use manifest {bad}\n")),
        "{}",
        d.report()
    );
    assert!(stderr.contains("malformed manifest"), "{}", d.report());
    assert!(d.stdout.is_empty(), "{}", d.report());

    let missing = text(&jail.join("missing.json")).to_owned();
    let d = jailtrace(&jail, &["diff", &missing, bad]);
    d.assert_code(2);
    assert!(
        d.stderr_text()
            .starts_with(&format!("error: cannot read manifest {missing}")),
        "{}",
        d.report()
    );

    let future = jail.join("future.json");
    fs::write(&future, "{\"schema_version\": 99}").expect("write");
    let d = jailtrace(&jail, &["diff", text(&future), bad]);
    d.assert_code(2);
    assert!(
        d.stderr_text().contains("schema version 99 is newer"),
        "{}",
        d.report()
    );

    // `why` reports the same errors with its usual exit code 1.
    let w = jailtrace(&jail, &["why", "/bin", "--manifest", bad]);
    w.assert_code(exit::ERROR);
    assert!(
        w.stderr_text().starts_with("error: cannot use manifest"),
        "{}",
        w.report()
    );
    // Usage errors are clap's 2.
    jailtrace(&jail, &["diff", bad]).assert_code(exit::USAGE);
    jailtrace(&jail, &["why", "/bin"]).assert_code(exit::USAGE);
}
