//! `jailtrace build`, `verify` and `update`: the jail a manifest
//! describes, made from the host, checked, and kept current
//! (`jailtrace-jail` does the work; this module reads the manifest, picks
//! the root, and prints the result for people or as JSON).

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::HumanBytes;
use jailtrace_engine as engine;
use jailtrace_jail::{
    self as jail, BuildReport, Differences, Field, Host, Problem, Values, VerifyReport,
};
use jailtrace_manifest::Manifest;
use serde_json::json;

use crate::cli::{BuildArgs, UpdateArgs, VerifyArgs};
use crate::exit;
use crate::recorded;

pub fn build(args: BuildArgs) -> anyhow::Result<u8> {
    let manifest = read_manifest(&args.manifest)?;
    // Before anything is written: without root the first chown would fail
    // halfway through the root, with an error that does not say why.
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "build needs root: it makes the jail's owners and device nodes; run it as root, \
             or use `jailtrace run` rootless (it makes a root you can use, and a manifest \
             root can build from)"
        );
    }
    let root_arg = args
        .root
        .clone()
        .unwrap_or_else(|| manifest.root.as_path().to_path_buf());
    let root = engine::prepare_root(&root_arg, args.follow_root)?;
    let opts = jail::Options {
        link: args.link,
        strict: args.strict,
        jobs: args.jobs.map_or(0, |j| j as usize),
    };
    let report = match jail::build(&manifest, &root, &Host::system(), &opts) {
        Err(jail::Error::Strict(mismatches)) => {
            for m in &mismatches {
                errln!("error: {}", mismatch_text(m));
            }
            anyhow::bail!(
                "{} host file(s) differ from the manifest (--strict); nothing was built in {}",
                mismatches.len(),
                root.display()
            );
        }
        other => other.with_context(|| format!("cannot build {}", root.display()))?,
    };
    for m in &report.mismatches {
        errln!("warning: {}", mismatch_text(m));
    }
    if args.json {
        let value = json!({
            "root": root.to_string_lossy(),
            "report": report,
            "mounts": manifest.mounts.iter().map(|m| m.shell_command(&root)).collect::<Vec<_>>(),
        });
        outln!("{value:#}");
    } else {
        err!("{}", build_text(&report, &root, &manifest));
    }
    Ok(exit::OK)
}

fn mismatch_text(m: &jail::Mismatch) -> String {
    format!(
        "host file {} differs from the manifest (sha256 {} in the manifest, {} now); the jail gets the host's",
        m.path,
        short(&m.manifest),
        short(&m.host)
    )
}

/// The first 12 hex digits of a hash, for messages.
pub(crate) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn build_text(r: &BuildReport, root: &Path, m: &Manifest) -> String {
    let mut out = format!("built {} ({} entries)\n", root.display(), r.entries);
    let mut line = |label: &str, n: usize, note: String| {
        if n > 0 {
            out.push_str(&format!("  {label:<12} {n}{note}\n"));
        }
    };
    line("unchanged:", r.unchanged, String::new());
    line(
        "copied:",
        r.copied,
        format!(" files, {}", HumanBytes(r.bytes)),
    );
    line(
        "hard-linked:",
        r.hardlinked,
        " files from the host (they are the host's files: a write in the jail changes the host)"
            .into(),
    );
    line(
        "reflinked:",
        r.reflinked,
        " files from the host (copy-on-write)".into(),
    );
    line(
        "linked:",
        r.linked_in_jail,
        " hard links within the jail".into(),
    );
    line("made:", r.made, " directories, symlinks and devices".into());
    line("written:", r.written, " synthesized files".into());
    line(
        "not built:",
        r.skipped_created,
        " files the program creates itself".into(),
    );
    for p in &r.replaced {
        out.push_str(&format!("  replaced:    {p}\n"));
    }
    for mt in &m.mounts {
        out.push_str(&format!(
            "  mount:       before `chroot {} …`, run `{}`\n",
            root.display(),
            mt.shell_command(root)
        ));
    }
    out
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<u8> {
    let manifest = read_manifest(&args.manifest)?;
    let root = existing_root(args.root.as_deref(), &manifest)?;
    crate::rootless::bind_devices(Some(&manifest), &root);
    let report = jail::verify(&manifest, &root, &Host::system(), 0)
        .with_context(|| format!("cannot verify {}", root.display()))?;
    let secrets: Vec<_> = manifest
        .programs
        .iter()
        .flat_map(|p| p.command.legacy_secrets())
        .collect();
    for (name, rule) in &secrets {
        errln!(
            "warning: the manifest records the value of {name}, which looks like a secret ({}); \
             `jailtrace update` rewrites it with the name only",
            rule.id
        );
    }
    if args.json {
        let value = json!({
            "root": root.to_string_lossy(),
            "clean": report.is_clean(),
            "entries": report.entries,
            "runtime_files": report.runtime_files,
            "data_files": report.data_files,
            "findings": report.findings,
            "secret_looking_env": secrets.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        });
        outln!("{value:#}");
    } else {
        out!("{}", verify_text(&report, &root));
    }
    Ok(if report.is_clean() {
        exit::OK
    } else {
        exit::ERROR
    })
}

fn verify_text(r: &VerifyReport, root: &Path) -> String {
    let mut out = String::new();
    for f in &r.findings {
        let line = match &f.problem {
            Problem::Missing => {
                format!("missing       {}: in the manifest, not in the root", f.path)
            }
            Problem::ChangedInRoot(d) => {
                format!(
                    "changed       {}: {}",
                    f.path,
                    differences_text(d, "in the root")
                )
            }
            Problem::ChangedOnHost(d) => format!(
                "host changed  {}: {} (`jailtrace update` brings it in)",
                f.path,
                differences_text(d, "on the host")
            ),
            Problem::GoneFromHost => format!("host lacks    {}: no longer on the host", f.path),
            Problem::Extra { kind } => {
                format!(
                    "extra         {}: a {kind} the manifest does not list",
                    f.path
                )
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    if r.is_clean() {
        out.push_str(&format!(
            "{}: clean ({} entries match the manifest and the host)\n",
            root.display(),
            r.entries
        ));
    } else {
        out.push_str(&format!(
            "{}: {} problem(s) in {} entries\n",
            root.display(),
            r.findings.len(),
            r.entries
        ));
    }
    if r.data_files > 0 {
        out.push_str(&format!(
            "  ({} file(s) of the program's data, in directories it writes in: content not compared)\n",
            r.data_files
        ));
    }
    out
}

/// Each differing field with the manifest's value and the one found
/// `place`: `mode 0644 in the manifest, 0600 in the root; owner 0:0 in
/// the manifest, 33:33 in the root`.
fn differences_text(d: &Differences, place: &str) -> String {
    let (want, got) = (&d.expected, &d.found);
    let pair = |what: &str, want: Option<String>, got: Option<String>| {
        let unknown = || "unknown".to_owned();
        format!(
            "{what} {} in the manifest, {} {place}",
            want.unwrap_or_else(unknown),
            got.unwrap_or_else(unknown)
        )
    };
    let owner = |v: &Values| v.uid.zip(v.gid).map(|(u, g)| format!("{u}:{g}"));
    let sha = |v: &Values| v.sha256.as_deref().map(|s| short(s).to_owned());
    let mut parts = Vec::new();
    for field in &d.fields {
        match field {
            Field::Kind => parts.push(pair(
                "kind",
                want.kind.map(str::to_owned),
                got.kind.map(str::to_owned),
            )),
            Field::Mode => parts.push(pair(
                "mode",
                want.mode.map(|m| m.to_string()),
                got.mode.map(|m| m.to_string()),
            )),
            Field::Owner => parts.push(pair("owner", owner(want), owner(got))),
            Field::Content => {
                if want.size != got.size {
                    parts.push(pair(
                        "size",
                        want.size.map(|n| n.to_string()),
                        got.size.map(|n| n.to_string()),
                    ));
                }
                if sha(want) != sha(got) {
                    parts.push(pair("sha256", sha(want), sha(got)));
                }
            }
            Field::Target => parts.push(pair(
                "target",
                want.target.as_ref().map(ToString::to_string),
                got.target.as_ref().map(ToString::to_string),
            )),
            Field::Device => {
                let dev = |v: &Values| v.device.map(|d| format!("{}:{}", d.major, d.minor));
                parts.push(pair("device", dev(want), dev(got)));
            }
            Field::HardLink => parts.push(format!(
                "a hard link to {} in the manifest, a file of its own {place}",
                want.hard_link
                    .as_ref()
                    .map_or_else(|| "another file".to_owned(), ToString::to_string)
            )),
        }
    }
    parts.join("; ")
}

pub fn update(args: UpdateArgs) -> anyhow::Result<u8> {
    let mut manifest = read_manifest(&args.manifest)?;
    let root = existing_root(args.root.as_deref(), &manifest)?;
    crate::rootless::bind_devices(Some(&manifest), &root);
    let report = jail::update(
        &mut manifest,
        &root,
        &Host::system(),
        &jail::Options::default(),
    )
    .with_context(|| format!("cannot update {}", root.display()))?;
    let redacted: Vec<String> = manifest
        .programs
        .iter_mut()
        .flat_map(|p| p.command.redact_legacy())
        .collect();
    for name in &redacted {
        errln!("redacted {name}: its value looked like a secret; the manifest now records the name only");
    }
    if report.manifest_changed() || !redacted.is_empty() {
        manifest
            .write_atomic(&args.manifest)
            .with_context(|| format!("cannot write the manifest {}", args.manifest.display()))?;
    }
    let configuration: Vec<_> = report.configuration().collect();
    if args.json && !args.run {
        let value = json!({
            "root": root.to_string_lossy(),
            "manifest_changed": report.manifest_changed(),
            "run_needed": !configuration.is_empty(),
            "report": report,
        });
        outln!("{value:#}");
    } else {
        for c in &report.changed {
            let fields: Vec<_> = c.fields.iter().map(|f| f.as_str()).collect();
            let hashes = match (&c.old_sha256, &c.new_sha256) {
                (Some(old), Some(new)) => format!(" (sha256 {} -> {})", short(old), short(new)),
                _ => String::new(),
            };
            errln!("updated  {}: {}{hashes}", c.path, fields.join(", "));
        }
        for p in &report.added {
            errln!("added    {p}");
        }
        for p in &report.gone {
            errln!("warning: {p} is no longer on the host; it stays in the jail");
        }
        if report.manifest_changed() {
            errln!(
                "{}: {} changed, {} added; manifest {} rewritten",
                root.display(),
                report.changed.len(),
                report.added.len(),
                args.manifest.display()
            );
        } else {
            errln!("{}: up to date with the host", root.display());
        }
        if !configuration.is_empty() && !args.run {
            let list: Vec<String> = configuration.iter().map(ToString::to_string).collect();
            errln!(
                "note: {} changed and {} read by the program, not loaded as code: what {} now \
                 may need files the jail lacks (an include, a module), which `verify` cannot \
                 see; run `jailtrace update --run --manifest {}` to trace the program and place them",
                list.join(", "),
                if list.len() == 1 { "is" } else { "are" },
                if list.len() == 1 { "it says" } else { "they say" },
                args.manifest.display()
            );
        }
    }
    if args.run {
        return rerun(manifest, &root, &args);
    }
    Ok(exit::OK)
}

/// `update --run`: the manifest's command traced again in the updated
/// root, continuing from the manifest, so that what the new files need is
/// placed and recorded too.
fn rerun(manifest: Manifest, root: &Path, args: &UpdateArgs) -> anyhow::Result<u8> {
    // Every program of the jail runs again: the first is traced as
    // discovery, the others are verified after it.
    let mut configs = Vec::with_capacity(manifest.programs.len());
    for (i, program) in manifest.programs.iter().enumerate() {
        let ready = (i == 0 && !args.ready.is_empty()).then_some(&args.ready[..]);
        let input = if i == 0 {
            crate::run::program_input()?
        } else {
            engine::Input::Null
        };
        configs.push(recorded::config(
            program,
            &manifest,
            root,
            args.timeout,
            ready,
            input,
            args.exercise_timeout,
        )?);
    }
    let mut config = configs.remove(0);
    config.others = configs;
    let mut progress = crate::progress::Progress::new(args.global.verbose > 0);
    let result = engine::run(&config, &mut progress);
    progress.finish();
    let mut report = match result {
        Ok(report) => report,
        Err(engine::Error::Interrupted(sig)) => {
            errln!("jailtrace: interrupted by {sig}; the manifest was not changed");
            return Ok(exit::signaled(sig));
        }
        Err(e) => return Err(e).context("the traced run failed"),
    };
    // Made rootless now, or earlier: the root's files are still the
    // caller's either way, until root builds it.
    report.manifest.rootless = crate::rootless::entered()
        .map(|e| e.manifest_record())
        .or_else(|| manifest.rootless.clone());
    let added: Vec<_> = report
        .manifest
        .entries
        .iter()
        .filter(|e| manifest.entry(e.path.as_path()).is_none())
        .collect();
    let code = match &report.outcome {
        engine::Outcome::Ready => {
            report
                .manifest
                .write_atomic(&args.manifest)
                .with_context(|| {
                    format!("cannot write the manifest {}", args.manifest.display())
                })?;
            exit::OK
        }
        engine::Outcome::NotReady { .. } => exit::NOT_READY,
        engine::Outcome::StillMissing { .. } => exit::STILL_MISSING,
    };
    crate::summary::print_failed_exercises(&report.exercises, &report.manifest.runs);
    if args.json {
        let value = json!({
            "root": root.to_string_lossy(),
            "ready": code == exit::OK,
            "added": added.iter().map(|e| &e.path).collect::<Vec<_>>(),
            "exercises": crate::summary::exercises_json(&report),
        });
        outln!("{value:#}");
    } else {
        for e in &added {
            errln!("added    {} ({})", e.path, e.reason.cause.as_str());
        }
        // The exercises of the last run's program (the last one verified).
        if let Some(name) = report
            .manifest
            .runs
            .last()
            .and_then(|r| r.program.as_deref())
        {
            err!("{}", crate::summary::exercises_text(&report, name));
        }
        let runs = report.manifest.runs.len() - manifest.runs.len();
        match code {
            exit::OK => errln!(
                "re-ran the program: ready after {runs} run(s), {} new entries; manifest {} rewritten",
                added.len(),
                args.manifest.display()
            ),
            _ => errln!(
                "re-ran the program: it does not start after {runs} run(s); the manifest was not changed"
            ),
        }
    }
    Ok(code)
}

/// Reads the manifest a command was given, naming it in the error.
pub(crate) fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    Manifest::read(path).with_context(|| format!("cannot read the manifest {}", path.display()))
}

/// The root to verify or update: it must exist already.
fn existing_root(arg: Option<&Path>, manifest: &Manifest) -> anyhow::Result<PathBuf> {
    let root = arg.unwrap_or(manifest.root.as_path());
    let canon = root
        .canonicalize()
        .with_context(|| format!("cannot open jail root {}", root.display()))?;
    engine::check_root(&canon)?;
    Ok(canon)
}
