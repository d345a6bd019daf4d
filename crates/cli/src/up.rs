//! `jailtrace up FILE`: the jail a jail file describes, made or brought up
//! to date by one `jailtrace run` per program, in the file's order.
//!
//! Each program's section is turned into exactly the `run` arguments the
//! command line would take for it ([`jailtrace_spec::JailFile::run_args`])
//! and parsed by the same clap definitions, so a jail file can say nothing
//! the command line cannot. The first run makes the root (or, with
//! `--fresh`, makes it anew); each later one adds its program and verifies
//! the others. When all ran, the manifest records the jail file.
//!
//! Each run writes the manifest once its program is ready, so when a later
//! program fails (or `up` is interrupted), the manifest the jail had before
//! `up` is put back byte for byte: a jail's manifest changes only when
//! every program of the file is up. (A jail that `up` makes, new or anew,
//! keeps the manifest of the programs that were up: it describes the root.)

use std::path::Path;

use anyhow::Context;
use clap::Parser;
use jailtrace_manifest::{Manifest, PathText, Saved};
use jailtrace_spec::JailFile;

use crate::cli::{Cli, Command, UpArgs};
use crate::exit;

pub fn up(args: UpArgs) -> anyhow::Result<u8> {
    let file = std::path::absolute(&args.file).context("cannot resolve the jail file's path")?;
    let jail = JailFile::read(&file)?;
    let manifest_path = jail.manifest_path();
    // Only a jail the runs add to keeps its manifest: one they start over
    // (new, unfinished, --fresh) no longer is what that manifest describes.
    let before = if !args.fresh && crate::run::holds_finished_jail(&jail.root, &manifest_path) {
        Some(
            Saved::read(&manifest_path)
                .with_context(|| format!("cannot read the manifest {}", manifest_path.display()))?,
        )
    } else {
        None
    };
    let result = programs(&args, &file, &jail);
    if !matches!(result, Ok(exit::OK)) {
        let restored = before.as_ref().map(Saved::restore).transpose();
        match restored {
            Ok(Some(true)) => errln!(
                "jailtrace up: the jail is not up; its manifest {} is as it was before",
                manifest_path.display()
            ),
            Ok(_) => {}
            Err(e) => {
                let e = anyhow::Error::from(e).context(format!(
                    "cannot put back the manifest {} as it was before",
                    manifest_path.display()
                ));
                match &result {
                    // The run's own error comes first; this one is said too.
                    Err(_) => crate::print_error(&e),
                    Ok(_) => return Err(e),
                }
            }
        }
        return result;
    }
    let mut manifest = Manifest::read(&manifest_path)
        .with_context(|| format!("cannot read the manifest {}", manifest_path.display()))?;
    manifest.jail_file = Some(PathText::from(file.as_path()));
    manifest
        .write_atomic(&manifest_path)
        .with_context(|| format!("cannot write the manifest {}", manifest_path.display()))?;
    Ok(exit::OK)
}

/// One `jailtrace run` per program of `jail`, in order, until one fails.
fn programs(args: &UpArgs, file: &Path, jail: &JailFile) -> anyhow::Result<u8> {
    for (i, program) in jail.programs.iter().enumerate() {
        let mut argv: Vec<std::ffi::OsString> = vec!["jailtrace".into(), "run".into()];
        if i == 0 && args.fresh {
            argv.push("--fresh".into());
        }
        if args.json {
            argv.push("--json".into());
        }
        for _ in 0..args.global.verbose {
            argv.push("-v".into());
        }
        argv.extend(jail.run_args(i));
        let cli = Cli::try_parse_from(&argv).map_err(|e| {
            anyhow::anyhow!(
                "{}: program {} ({}): {}",
                file.display(),
                i + 1,
                shown(program),
                e.render().to_string().trim_end()
            )
        })?;
        let Command::Run(run_args) = cli.command else {
            unreachable!("the arguments start with `run`");
        };
        errln!(
            "jailtrace up: {} ({} of {})",
            shown(program),
            i + 1,
            jail.programs.len()
        );
        let code = crate::run::run(*run_args)?;
        if code != exit::OK {
            return Ok(code);
        }
    }
    Ok(exit::OK)
}

/// A program of a jail file as the user wrote it: its command, or its unit.
fn shown(program: &jailtrace_spec::jailfile::ProgramSection) -> String {
    match &program.unit {
        Some(unit) if program.command.is_empty() => format!("--unit {unit}"),
        _ => program.command.join(" "),
    }
}
