//! `jailtrace completions` and `jailtrace man`: shell completions and man
//! pages generated from the clap definitions in [`crate::cli`], so they
//! never disagree with `--help`.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit;

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    // clap_complete panics when its writer fails: generate in memory, and
    // print through `out`, where a closed stdout is not an error.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "jailtrace", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(exit::OK)
}

/// Writes `jailtrace.1` and `jailtrace-SUB.1` for each visible subcommand.
pub fn man(args: ManArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let cmd = Cli::command();
    write_page(&args.dir, "jailtrace", cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("jailtrace-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("jailtrace {}", sub.get_name()));
        write_page(&args.dir, &name, page)?;
    }
    Ok(exit::OK)
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .with_context(|| format!("cannot render the man page {name}"))?;
    std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))
}
