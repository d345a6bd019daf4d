//! `jailtrace up FILE`: the jail a jail file describes, made or brought up
//! to date by one `jailtrace run` per program, in the file's order.
//!
//! Each program's section is turned into exactly the `run` arguments the
//! command line would take for it ([`jailtrace_spec::JailFile::run_args`])
//! and parsed by the same clap definitions, so a jail file can say nothing
//! the command line cannot. The first run makes the root (or, with
//! `--fresh`, makes it anew); each later one adds its program and verifies
//! the others. When all ran, the manifest records the jail file.

use anyhow::Context;
use clap::Parser;
use jailtrace_manifest::{Manifest, PathText};
use jailtrace_spec::JailFile;

use crate::cli::{Cli, Command, UpArgs};
use crate::exit;

pub fn up(args: UpArgs) -> anyhow::Result<u8> {
    let file = std::path::absolute(&args.file).context("cannot resolve the jail file's path")?;
    let jail = JailFile::read(&file)?;
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
                program.command.join(" "),
                e.render().to_string().trim_end()
            )
        })?;
        let Command::Run(run_args) = cli.command else {
            unreachable!("the arguments start with `run`");
        };
        errln!(
            "jailtrace up: {} ({} of {})",
            program.command.join(" "),
            i + 1,
            jail.programs.len()
        );
        let code = crate::run::run(*run_args)?;
        if code != exit::OK {
            return Ok(code);
        }
    }
    let manifest_path = jail.manifest_path();
    let mut manifest = Manifest::read(&manifest_path)
        .with_context(|| format!("cannot read the manifest {}", manifest_path.display()))?;
    manifest.jail_file = Some(PathText::from(file.as_path()));
    manifest
        .write_atomic(&manifest_path)
        .with_context(|| format!("cannot write the manifest {}", manifest_path.display()))?;
    Ok(exit::OK)
}
